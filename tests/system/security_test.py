#!/usr/bin/env python3
"""Security regression tests against a real sigild (docs/SECURITY.md lists where each threat is tested):

1. ECDSA r = s = 0 ("psychic signature", CVE-2022-21449) and r = s = n refused on mobile-biometrics
   authenticate and as the signature of a bearer JWT.
2. BER-encoded (not DER) ECDSA signatures refused on mobile-biometrics authenticate: long-form lengths,
   non-minimal integers, trailing bytes; the DER encoding of the same (r, s) then passes.
3. JWT alg "none" and HS256 keyed with the server's public key (PEM, JWK JSON, raw point) as bearer -> 401.
4. A credential or key owned by another user than the one named -> 401: mobile key of user A with user B's
   user_id; WebAuthn credential of user A in a ceremony started for user B's username.
5. WebAuthn origins that differ only by scheme or port (or lack the port) are refused, at registration and
   at authentication; the exact origin passes.
(The self-signed root inside x5c is an engine test: WebAuthnSpecVectors.SelfSignedCertificateInX5cIsNeverAnAnchor
in tests/engine/webauthn/vectors_test.cc.)

usage: security_test.py SIGILD
"""

import hashlib
import hmac
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sigil_sys import (check_clean_exit, N, EcKey, Results, Server, Sigil, SoftAuthenticator, b64, b64url, b64url_decode,  # noqa: E402
                       der_int, der_len, der_signature, main_args, unique_email, webauthn_finish, webauthn_register,
                       webauthn_start)

INVALID_TOKEN = {"message": "Invalid token", "error_code": 401}


def auth_failed(r):
    return r.status == 401 and r.get("ts_error_code") == "auth_invalid_signature"


def ber_variants(r, s):
    """Encodings of (r, s) that are valid BER but not DER, plus other non-DER forms."""
    ri, si = der_int(r), der_int(s)
    body = ri + si
    out = {
        "long-form sequence length": b"\x30\x81" + bytes([len(body)]) + body,
        "long-form integer length": b"\x30" + der_len(len(body) + 1) + b"\x02\x81" + bytes([len(ri) - 2]) + ri[2:] + si,
        "non-minimal integer (extra leading zero)": (lambda r2: b"\x30" + der_len(len(r2) + len(si)) + r2 + si)(
            b"\x02" + bytes([len(ri) - 2 + 1]) + b"\x00" + ri[2:]),
        "trailing byte after the sequence": der_signature(r, s) + b"\x00",
        "indefinite-length sequence": b"\x30\x80" + body + b"\x00\x00",
        "raw r||s (IEEE P1363) instead of DER": r.to_bytes(32, "big") + s.to_bytes(32, "big"),
    }
    return out


def main():
    sigild = main_args("security_test.py SIGILD")
    res = Results("security")
    server = Server(sigild, name="security")
    try:
        if not server.start():
            res.fail("setup: sigild starts")
            return res.finish(server)
        api = Sigil(server)
        c = api.client()
        api.get_client_token(c)
        a = api.otp_login(unique_email("sec-a"), c)
        b = api.otp_login(unique_email("sec-b"), c)
        key_a, key_b = EcKey(), EcKey()
        res.check(api.register_key(a["access_token"], key_a.spki_der(), "sec-key-a", c).status == 200, "setup: key of A")
        res.check(api.register_key(b["access_token"], key_b.spki_der(), "sec-key-b", c).status == 200, "setup: key of B")
        uid_a, uid_b = a["sub"], b["sub"]

        # 1. r = s = 0 on mobile authenticate.
        for name, sig in [("r = s = 0", der_signature(0, 0)), ("r = s = n", der_signature(N, N)),
                          ("r = 0, s = 1", der_signature(0, 1)), ("r = n, s = 1", der_signature(N, 1))]:
            ch = api.start(uid_a, c).json()["challenge"]
            r = api.authenticate(uid_a, "sec-key-a", ch, sig, c)
            res.check(auth_failed(r), f"mobile authenticate: ECDSA signature {name} (CVE-2022-21449) -> 401", repr(r))
        # ... and as the signature of a JWT (raw r||s of 64 bytes).
        ut = a["access_token"]
        h, p, _ = ut.split(".")
        for name, raw in [("r = s = 0", bytes(64)), ("r = s = n", N.to_bytes(32, "big") * 2)]:
            forged = f"{h}.{p}.{b64url(raw)}"
            r = c.request("POST", "/cis/v1/auth/mobile-biometrics/register", token=forged,
                          json_body={"publicKey": "AAAA", "publicKeyId": "x", "os": "Android"})
            res.check(r.status == 401 and r.json() == INVALID_TOKEN, f"bearer JWT with ECDSA signature {name} -> 401",
                      repr(r))
            r = c.request("POST", "/cis/v1/auth/mobile-biometrics/start", token=f"{h}.{p}.{b64url(raw)}",
                          json_body={"user_id": uid_a})
            res.check(r.status == 401, f"client endpoint: JWT with ECDSA signature {name} -> 401", repr(r))

        # 2. BER-encoded signatures.
        for name, sig_fn in ber_variants(1, 1).items():
            ch = api.start(uid_a, c).json()["challenge"]
            rr, ss = key_a.sign_rs(ch.encode())
            sig = ber_variants(rr, ss)[name]
            r = api.authenticate(uid_a, "sec-key-a", ch, sig, c)
            res.check(auth_failed(r), f"mobile authenticate: {name} of a valid signature -> 401", repr(r))
        ch = api.start(uid_a, c).json()["challenge"]
        rr, ss = key_a.sign_rs(ch.encode())
        r = api.authenticate(uid_a, "sec-key-a", ch, der_signature(rr, ss), c)
        res.check(r.status == 200, "mobile authenticate: the DER encoding of such a signature passes", repr(r))
        ch = api.start(uid_a, c).json()["challenge"]
        rr, ss = key_a.sign_rs(ch.encode())
        r = api.authenticate(uid_a, "sec-key-a", ch, der_signature(rr, N - ss), c)
        res.check(r.status == 200, "mobile authenticate: the high-S twin passes (API.md 2.2: high S accepted)", repr(r))

        # 3. alg none / HS256 with the public key.
        jwks = c.request("GET", "/cis/oidc/jwks").json()
        jwk = jwks["keys"][0]
        x, y = b64url_decode(jwk["x"]), b64url_decode(jwk["y"])
        spki = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200") + b"\x04" + x + y
        pem = ("-----BEGIN PUBLIC KEY-----\n" + "\n".join(b64(spki)[i:i + 64] for i in range(0, len(b64(spki)), 64)) +
               "\n-----END PUBLIC KEY-----\n").encode()
        header = json.loads(b64url_decode(h))
        for alg in ["none", "None", "NONE", "nOnE"]:
            nh = b64url(json.dumps({"alg": alg, "typ": "at+jwt", "kid": header.get("kid")}).encode())
            for sig in ["", b64url(b"x")]:
                r = c.request("DELETE", "/cis/v1/auth/mobile-biometrics/delete", token=f"{nh}.{p}.{sig}",
                              json_body={"publicKeyId": "x"})
                res.check(r.status == 401 and r.json() == INVALID_TOKEN,
                          f"bearer JWT alg \"{alg}\" (signature {'empty' if not sig else 'garbage'}) -> 401", repr(r))
        hh = b64url(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": header.get("kid")}).encode())
        for name, secret in [("PEM public key", pem), ("PEM without final newline", pem.rstrip(b"\n")),
                             ("JWK JSON", json.dumps(jwk).encode()), ("SPKI DER", spki), ("raw point", b"\x04" + x + y),
                             ("x coordinate", x)]:
            sig = b64url(hmac.new(secret, f"{hh}.{p}".encode(), hashlib.sha256).digest())
            r = c.request("DELETE", "/cis/v1/auth/mobile-biometrics/delete", token=f"{hh}.{p}.{sig}",
                          json_body={"publicKeyId": "x"})
            res.check(r.status == 401 and r.json() == INVALID_TOKEN, f"bearer JWT HS256 keyed with the {name} -> 401",
                      repr(r))
        res.check(api.session_alive(ut, c) == 404, "control: the genuine user token is accepted")

        # 4. Key / credential of another user.
        ch = api.start(uid_b, c).json()["challenge"]
        r = api.authenticate(uid_b, "sec-key-a", ch, key_a.sign(ch), c)
        res.check(auth_failed(r), "mobile: user B named, A's key id and A's valid signature -> 401", repr(r))
        ch = api.start(uid_a, c).json()["challenge"]
        r = api.authenticate(uid_b, "sec-key-a", ch, key_a.sign(ch), c)
        res.check(auth_failed(r), "mobile: challenge started for A, redeemed naming B with A's key -> 401", repr(r))
        r = c.request("DELETE", "/cis/v1/auth/mobile-biometrics/delete", token=b["access_token"],
                      json_body={"publicKeyId": "sec-key-a"})
        res.check(r.status == 404, "mobile: B cannot delete A's key (404 Key not found)", repr(r))
        res.check(api.bio_login(uid_a, "sec-key-a", key_a, c).status == 200, "control: A's key still logs A in")

        auth_a, r = webauthn_register(api, c, "sec-wa-a", "sec-ext-a")
        res.check(r.status == 200, "setup: WebAuthn credential for username sec-wa-a", repr(r))
        auth_b, r = webauthn_register(api, c, "sec-wa-b", "sec-ext-b")
        res.check(r.status == 200, "setup: WebAuthn credential for username sec-wa-b", repr(r))
        st = webauthn_start(api, c, "sec-wa-b").json()
        r = webauthn_finish(api, c, auth_a, st)
        res.check(r.status == 401 and r.get("ts_error_code") == "auth_webauthn_failed",
                  "WebAuthn: ceremony for username B completed with A's credential -> 401", repr(r))
        auth_a.user_handle = auth_b.user_handle
        st = webauthn_start(api, c, "sec-wa-b").json()
        r = webauthn_finish(api, c, auth_a, st)
        res.check(r.status == 401, "WebAuthn: A's credential claiming B's user handle -> 401", repr(r))
        r = c.request("DELETE", f"/cis/v1/auth/webauthn/credentials/{b64url(auth_a.credential_id)}",
                      token=b["access_token"])
        res.check(r.status in (403, 404), "WebAuthn: a user cannot delete another user's credential", repr(r))

        # 5. Origins differing only by scheme or port.
        origin = api.origins[0]  # http://localhost:PORT
        scheme, rest = origin.split("://", 1)
        host, _, port = rest.partition(":")
        other_scheme = ("https" if scheme == "http" else "http") + "://" + rest
        other_port = f"{scheme}://{host}:{int(port or 443) + 1}"
        no_port = f"{scheme}://{host}"
        variants = [("scheme", other_scheme), ("port", other_port), ("missing port", no_port),
                    ("trailing slash", origin + "/"), ("upper-case host", origin.upper())]
        for what, o in variants:
            _, r = webauthn_register(api, c, f"sec-origin-{what.replace(' ', '-')}", "sec-origin-ext",
                                     auth=SoftAuthenticator(api.rp_id, o))
            res.check(r.status == 400 and r.get("ts_error_code") == "auth_invalid_attestation",
                      f"WebAuthn registration from an origin differing by {what} ({o}) -> 400", repr(r))
        for what, o in variants:
            st = webauthn_start(api, c, "sec-wa-b").json()
            r = webauthn_finish(api, c, auth_b, st, origin=o)
            res.check(r.status == 401 and r.get("ts_error_code") == "auth_webauthn_failed",
                      f"WebAuthn authentication from an origin differing by {what} ({o}) -> 401", repr(r))
        st = webauthn_start(api, c, "sec-wa-b").json()
        r = webauthn_finish(api, c, auth_b, st, origin=origin)
        res.check(r.status == 200, f"control: WebAuthn authentication from the exact origin {origin} -> 200", repr(r))
        check_clean_exit(res, server)
    finally:
        server.stop()
    status = res.finish(server)
    server.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())
