#!/usr/bin/env python3
"""Regenerates the seed corpora under fuzz/corpus/<target>/ from real material.

Keys, signatures and JWT signatures come from the openssl CLI (fresh keys on every run, so the corpus
changes when this is re-run; commit the result). Everything else is written out literally below: request
bodies of the API.md endpoints, form bodies and query strings, base64 strings. Only the Python standard
library and `openssl` (3.x) are needed:  python3 fuzz/gen_corpus.py
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def sh(*args, stdin=None):
    return subprocess.run(args, input=stdin, check=True, capture_output=True).stdout


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def b64(b):
    return base64.b64encode(b).decode()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


# --- DER helpers for hand-made malformed signatures -------------------------------------------------------

def der_len(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_int(v, pad=0):
    body = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")  # keeps a leading 0 when the top bit is set
    body = b"\x00" * pad + body
    return b"\x02" + der_len(len(body)) + body


def der_seq(body, long_form=False):
    if long_form:
        return b"\x30\x81" + bytes([len(body)]) + body
    return b"\x30" + der_len(len(body)) + body


def parse_ecdsa_der(sig):
    assert sig[0] == 0x30
    i = 2
    out = []
    for _ in range(2):
        assert sig[i] == 0x02
        n = sig[i + 1]
        out.append(int.from_bytes(sig[i + 2:i + 2 + n], "big"))
        i += 2 + n
    return out


P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def main():
    # Rewrite every generated seed; keep crash-* regression inputs added by hand after a fix.
    if os.path.isdir(ROOT):
        for target in os.listdir(ROOT):
            for name in os.listdir(os.path.join(ROOT, target)):
                if not name.startswith("crash-"):
                    os.remove(os.path.join(ROOT, target, name))
    tmp = tempfile.mkdtemp(prefix="sigil-corpus-")
    os.chdir(tmp)

    # --- keys ---------------------------------------------------------------------------------------
    sh("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ec.pem")
    ec_spki = sh("openssl", "pkey", "-in", "ec.pem", "-pubout", "-outform", "DER")
    ec_spki_c = sh("openssl", "ec", "-in", "ec.pem", "-pubout", "-outform", "DER", "-conv_form", "compressed")
    ec_spki_explicit = sh("openssl", "ec", "-in", "ec.pem", "-pubout", "-outform", "DER", "-param_enc", "explicit")
    sh("openssl", "ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "p384.pem")
    p384_spki = sh("openssl", "pkey", "-in", "p384.pem", "-pubout", "-outform", "DER")
    sh("openssl", "ecparam", "-name", "secp256k1", "-genkey", "-noout", "-out", "k1.pem")
    k1_spki = sh("openssl", "pkey", "-in", "k1.pem", "-pubout", "-outform", "DER")
    sh("openssl", "genrsa", "-out", "rsa2048.pem", "2048")
    rsa_spki = sh("openssl", "rsa", "-in", "rsa2048.pem", "-pubout", "-outform", "DER")
    rsa_pkcs1 = sh("openssl", "rsa", "-in", "rsa2048.pem", "-RSAPublicKey_out", "-outform", "DER")
    sh("openssl", "genrsa", "-out", "rsa1024.pem", "1024")
    rsa1024_spki = sh("openssl", "rsa", "-in", "rsa1024.pem", "-pubout", "-outform", "DER")
    sh("openssl", "genrsa", "-3", "-out", "rsa3072.pem", "3072")
    rsa3072_pkcs1 = sh("openssl", "rsa", "-in", "rsa3072.pem", "-RSAPublicKey_out", "-outform", "DER")
    sh("openssl", "genpkey", "-algorithm", "ed25519", "-out", "ed.pem")
    ed_spki = sh("openssl", "pkey", "-in", "ed.pem", "-pubout", "-outform", "DER")
    sh("openssl", "genpkey", "-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "pss.pem")
    pss_spki = sh("openssl", "pkey", "-in", "pss.pem", "-pubout", "-outform", "DER")
    point = ec_spki[-65:]
    off_curve = point[:-1] + bytes([point[-1] ^ 1])

    keys = {
        "ec_p256_spki.der": ec_spki,
        "ec_p256_spki_compressed.der": ec_spki_c,
        "ec_p256_spki_explicit_params.der": ec_spki_explicit,
        "ec_p256_point_uncompressed.raw": point,
        "ec_p256_point_compressed.raw": ec_spki_c[-33:],
        "ec_p256_point_off_curve.raw": off_curve,
        "ec_p256_spki_off_curve.der": ec_spki[:-65] + off_curve,
        "ec_p256_spki_truncated.der": ec_spki[:-7],
        "ec_p256_spki_trailing_byte.der": ec_spki + b"\x00",
        "ec_p256_spki_ber_long_length.der": b"\x30\x81" + ec_spki[1:],
        "ec_p384_spki.der": p384_spki,
        "ec_secp256k1_spki.der": k1_spki,
        "rsa2048_spki.der": rsa_spki,
        "rsa2048_pkcs1.der": rsa_pkcs1,
        "rsa2048_pkcs1_truncated.der": rsa_pkcs1[:100],
        "rsa2048_spki_trailing_byte.der": rsa_spki + b"\x00",
        "rsa1024_spki.der": rsa1024_spki,
        "rsa3072_e3_pkcs1.der": rsa3072_pkcs1,
        "rsa_pss_spki.der": pss_spki,
        "ed25519_spki.der": ed_spki,
        "empty.bin": b"",
    }
    for name, data in keys.items():
        write("public_key", name, data)

    # mobile_key: byte 0 = encryptionType selector (0 none, 1 ec, 2 rsa, 3 dsa), then the publicKey text.
    mk = [
        ("ec_spki_b64_notype", 0, b64(ec_spki)),
        ("ec_spki_b64_ec", 1, b64(ec_spki)),
        ("ec_spki_b64url_ec", 1, b64url(ec_spki)),
        ("ec_spki_b64_as_rsa", 2, b64(ec_spki)),
        ("ec_spki_compressed_b64", 0, b64(ec_spki_c)),
        ("ec_point_b64_ec", 1, b64(point)),
        ("ec_point_b64url_notype", 0, b64url(point)),
        ("ec_point_off_curve_b64", 1, b64(off_curve)),
        ("p384_spki_b64_ec", 1, b64(p384_spki)),
        ("secp256k1_spki_b64", 0, b64(k1_spki)),
        ("rsa_spki_b64_rsa", 2, b64(rsa_spki)),
        ("rsa_pkcs1_b64_rsa", 2, b64(rsa_pkcs1)),
        ("rsa_pkcs1_b64url_notype", 0, b64url(rsa_pkcs1)),
        ("rsa_spki_b64_as_ec", 1, b64(rsa_spki)),
        ("rsa1024_spki_b64", 2, b64(rsa1024_spki)),
        ("rsa3072_e3_pkcs1_b64", 2, b64(rsa3072_pkcs1)),
        ("ed25519_spki_b64", 0, b64(ed_spki)),
        ("ec_spki_b64_dsa", 3, b64(ec_spki)),
        ("ec_spki_b64_unpadded", 0, b64(ec_spki).rstrip("=")),
        ("ec_spki_b64_mixed_alphabets", 0, b64(ec_spki)[:-4] + "-_=="),
        ("ec_spki_b64_whitespace", 0, b64(ec_spki)[:20] + "\n" + b64(ec_spki)[20:]),
        ("pem_text", 0, sh("openssl", "pkey", "-in", "ec.pem", "-pubout").decode()),
        ("empty", 0, ""),
    ]
    for name, sel, text in mk:
        write("mobile_key", name, bytes([sel]) + text.encode())

    # --- DER signatures -----------------------------------------------------------------------------
    msg = b"sigil der_signature_fuzz: the signed message"
    with open("msg", "wb") as f:
        f.write(msg)
    sigs = [sh("openssl", "dgst", "-sha256", "-sign", "ec.pem", "msg") for _ in range(4)]
    for i, s in enumerate(sigs):
        write("der_signature", f"openssl_p256_sha256_{i}.der", s)
    r, s = parse_ecdsa_der(sigs[0])
    write("der_signature", "high_s.der", der_seq(der_int(r) + der_int(P256_N - s)))
    write("der_signature", "ber_long_form_seq_length.der", der_seq(der_int(r) + der_int(s), long_form=True))
    write("der_signature", "r_zero_padded.der", der_seq(der_int(r, pad=1) + der_int(s)))
    write("der_signature", "trailing_zero.der", sigs[0] + b"\x00")
    write("der_signature", "truncated.der", sigs[0][:-3])
    write("der_signature", "r_zero.der", der_seq(der_int(0) + der_int(s)))
    write("der_signature", "s_equals_n.der", der_seq(der_int(r) + der_int(P256_N)))
    write("der_signature", "negative_r.der", der_seq(b"\x02\x01\xff" + der_int(s)))
    write("der_signature", "jose_raw_r_s.bin", r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    sh("openssl", "dgst", "-sha256", "-sign", "rsa2048.pem", "-out", "rsa.sig", "msg")
    write("der_signature", "rsa2048_pkcs1v15.sig", open("rsa.sig", "rb").read())
    write("der_signature", "empty.bin", b"")

    # --- JWTs ---------------------------------------------------------------------------------------
    def es256(signing_input):
        with open("si", "wb") as f:
            f.write(signing_input)
        der = sh("openssl", "dgst", "-sha256", "-sign", "ec.pem", "si")
        rr, ss = parse_ecdsa_der(der)
        return rr.to_bytes(32, "big") + ss.to_bytes(32, "big")

    def jwt(header, payload, sign=True):
        h = b64url(json.dumps(header, separators=(",", ":")).encode())
        p = b64url(payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode())
        si = f"{h}.{p}".encode()
        return f"{h}.{p}." + (b64url(es256(si)) if sign else "")

    iss = "https://sigil.test/oidc"
    claims = {"iss": iss, "sub": "user-1", "aud": "app", "exp": 1800003600, "iat": 1800000000,
              "sid": "s-1", "client_id": "c-1", "scope": "openid"}
    hdr = {"alg": "ES256", "typ": "at+jwt", "kid": "k1"}
    write("jwt", "es256_access_token.jwt", jwt(hdr, claims))
    write("jwt", "es256_id_token.jwt", jwt({"alg": "ES256", "typ": "JWT", "kid": "k1"},
                                           {**claims, "amr": ["mobile_biometrics"], "approval_data": {"tx": "1"}}))
    write("jwt", "es256_unknown_kid.jwt", jwt({"alg": "ES256", "kid": "other"}, claims))
    write("jwt", "alg_none.jwt", jwt({"alg": "none", "kid": "k1"}, claims, sign=False))
    write("jwt", "alg_hs256.jwt", jwt({"alg": "HS256", "kid": "k1"}, claims, sign=False) + "c2lnbmF0dXJl")
    write("jwt", "alg_rs256.jwt", jwt({"alg": "RS256", "kid": "k1"}, claims))
    write("jwt", "crit_header.jwt", jwt({"alg": "ES256", "kid": "k1", "crit": ["exp"]}, claims))
    write("jwt", "duplicate_alg.jwt", b64url(b'{"alg":"ES256","alg":"none","kid":"k1"}') + "."
          + b64url(json.dumps(claims).encode()) + "." + b64url(b"\x01" * 64))
    write("jwt", "jwe_five_segments.jwt", "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d")
    write("jwt", "two_segments.jwt", jwt(hdr, claims).rsplit(".", 1)[0])
    write("jwt", "padded_segments.jwt", jwt(hdr, claims).replace(".", "==.", 1))
    write("jwt", "empty.jwt", "")
    # Payload-shaped inputs (used by the "payload replaced" and "sign the input" properties).
    for name, payload in [
        ("payload_valid.json", claims),
        ("payload_expired.json", {**claims, "exp": 1700000000}),
        ("payload_no_exp.json", {"iss": iss, "sub": "u"}),
        ("payload_wrong_iss.json", {**claims, "iss": "https://evil.test"}),
        ("payload_nbf_future.json", {**claims, "nbf": 1900000000}),
        ("payload_fractional_exp.json", {**claims, "exp": 1800003600.5}),
    ]:
        write("jwt", name, json.dumps(payload, separators=(",", ":")))
    write("jwt", "payload_duplicate_exp.json", '{"iss":"%s","exp":1800003600,"exp":1}' % iss)
    write("jwt", "payload_string_exp.json", '{"iss":"%s","exp":"1800003600"}' % iss)
    write("jwt", "payload_trailing.json", '{"iss":"%s","exp":1800003600}{}' % iss)
    write("jwt", "payload_bad_nested.json", '{"iss":"%s","exp":1800003600,"x":[1,}' % iss)

    # --- request bodies (API.md) --------------------------------------------------------------------
    bodies = {
        "mb_start_identifier.json": {"identifier": "alice@example.com", "identifier_type": "email",
                                     "device_id": "dev-1", "timeout": 120},
        "mb_start_user_id_approval.json": {"user_id": "u-123", "approval_data": {"amount": "12.50",
                                           "currency": "EUR", "payee": "ACME Corp", "tx:id": "a-b_c.d"}},
        "mb_authenticate.json": {"user_id": "u-123", "key_id": "key-1", "challenge": "q8x3" * 11,
                                 "signature": b64(sigs[0]), "resource": "https://api.example.com",
                                 "claims": {"id_token": {"roles": None}}, "org_id": "org-1",
                                 "client_attributes": {"user_agent": "Mozilla/5.0", "ip_address": "203.0.113.7"},
                                 "session_id": "s-1", "device_id": "dev-1"},
        "mb_register.json": {"publicKey": b64(ec_spki), "publicKeyId": "key-1", "encryptionType": "ec",
                             "os": "Android", "device_id": "dev-1", "displayName": "Pixel 8"},
        "mb_register_rsa.json": {"publicKey": b64(rsa_pkcs1), "publicKeyId": "key-2", "encryptionType": "rsa",
                                 "os": "iOS"},
        "mb_delete.json": {"publicKeyId": "key-1"},
        "otp_email.json": {"email": "alice@example.com", "redirect_uri": "https://app.example.com/cb",
                           "create_new_user": True, "require_mfa": False,
                           "email_content": {"subject": "Your code", "primaryColor": "#6981FF",
                                             "headerText": "Hi", "senderName": "ACME"},
                           "approval_data": {"action": "login"}},
        "otp_email_validation.json": {"email": "alice@example.com", "passcode": "123456",
                                      "response_type": "code", "nonce": "n-0S6_WzA2Mj"},
        "magic_link.json": {"email": "bob@example.com", "redirect_uri": "https://app.example.com/cb",
                            "claims": {"id_token": {"email": None}}, "org_id": "org-9"},
        "v1_token.json": {"code": "Zm9vYmFy", "client_id": "client-1", "client_secret": "s3cr3t"},
        "webauthn_authenticate.json": {"webauthnSessionId": "ws-1", "publicKeyCredential": {
            "id": "AQID", "rawId": "AQID", "type": "public-key", "authenticatorAttachment": None,
            "response": {"clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0In0=", "authenticatorData": "AAAA",
                         "signature": b64(sigs[1]), "userHandle": ""}}, "userAgent": "Mozilla/5.0"},
    }
    for name, body in bodies.items():
        write("params_json", name, json.dumps(body))
    literal = {
        "approval_data_canonical.json": '{"a":"1","b":"x y:z"}',
        "approval_data_unsorted.json": '{"z":"last","A":"first","m-1":"mid.dle"}',
        "approval_data_eleven.json": json.dumps({f"k{i}": "v" for i in range(11)}),
        "approval_data_bad_char.json": '{"amount":"12,50"}',
        "approval_data_number.json": '{"amount":12.5}',
        "duplicate_key.json": '{"user_id":"a","user_id":"b"}',
        "nested_duplicate_key.json": '{"claims":{"x":1,"x":2}}',
        "too_deep.json": '{"a":' * 10 + "1" + "}" * 10,
        "not_object.json": '["user_id","u"]',
        "escapes.json": '{"user_id":"\\u00e9\\ud83d\\ude00\\n","claims":"{\\"id_token\\":{}}"}',
        "invalid_utf8.json": b'{"user_id":"\xff\xfe"}',
        "numbers.json": '{"timeout":-12345678901,"big":1e400,"neg":-0,"f":0.5,"t":true,"n":null}',
        "trailing_garbage.json": '{"user_id":"u"} x',
        "empty_object.json": "{}",
        "whitespace.json": ' \n\t{ "user_id" : "u" }\r\n',
    }
    for name, body in literal.items():
        write("params_json", name, body)

    # --- form bodies and query strings --------------------------------------------------------------
    forms = {
        "oidc_token_client_credentials.txt": "grant_type=client_credentials&client_id=c-1&client_secret=s%2B3%2Fcr%3Dt&scope=openid+profile",
        "oidc_token_code.txt": "grant_type=authorization_code&code=Zm9v&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&client_id=c-1&client_secret=x",
        "oidc_token_refresh.txt": "grant_type=refresh_token&refresh_token=rt.abc-def_ghi&client_id=c-1",
        "mb_register_form.txt": "publicKey=" + b64(ec_spki).replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
                                + "&publicKeyId=key-1&encryptionType=ec&os=Android",
        "mb_start_form_approval.txt": "user_id=u-1&approval_data=%7B%22amount%22%3A%2212.50%22%7D",
        "query_social.txt": "client_id=app&redirect_uri=https%3A%2F%2Fapp%2Fcb&create_new_user=true&claims=%7B%22id_token%22%3A%7B%7D%7D&state=xyz&nonce=n",
        "query_delete.txt": "publicKeyId=key%201",
        "utf8_escapes.txt": "name=%C3%A9t%C3%A9&emoji=%F0%9F%98%80",
        "empty_pairs.txt": "&&a=1&&=&b&",
        "equals_in_value.txt": "a=b=c&d==",
        "bad_escape.txt": "a=%zz",
        "truncated_escape.txt": "a=%4",
        "nul_escape.txt": "a=%00",
        "raw_nul.txt": b"a=\x00",
        "lowercase_hex.txt": "a=%2f%2B",
        "plus_and_space.txt": "q=a+b%20c+%2B",
        "empty.txt": "",
    }
    for name, body in forms.items():
        write("form", name, body)

    # --- base64 strings -----------------------------------------------------------------------------
    b64s = {
        "std_padded_1.txt": b64(b"\x00"),
        "std_padded_2.txt": b64(b"\x00\x01"),
        "std_unpadded.txt": b64(b"\xfb\xff").rstrip("="),
        "std_key.txt": b64(ec_spki),
        "url_key.txt": b64url(ec_spki),
        "url_padded.txt": base64.urlsafe_b64encode(b"\xfb\xff").decode(),
        "nonzero_trailing_bits.txt": "AB==",
        "too_much_padding.txt": "A===",
        "pad_in_middle.txt": "AA==AAAA",
        "mixed_alphabets.txt": "+-__",
        "whitespace.txt": "QU JD\n",
        "one_char.txt": "A",
        "jwt_segment.txt": b64url(b'{"alg":"ES256","typ":"at+jwt","kid":"k1"}'),
        "signature.txt": b64(sigs[2]),
        "empty.txt": "",
    }
    for name, body in b64s.items():
        write("base64", name, body)

    shutil.rmtree(tmp)
    for t in sorted(os.listdir(ROOT)):
        print(f"{t}: {len(os.listdir(os.path.join(ROOT, t)))} files")


if __name__ == "__main__":
    sys.exit(main())
