#!/usr/bin/env python3
"""System test (a): bad input. At least SIGIL_BAD_INPUT_REQUESTS (default 10,000) malformed requests across
every endpoint of docs/ENDPOINTS.md — truncated and oversized bodies, wrong content types, invalid UTF-8,
1000-deep nesting, huge numbers, duplicate keys, bad base64, wrong token types, headers over the limits,
invalid Content-Length/chunking, garbage HTTP, a few slow clients that send one byte at a time — and every
answer must be a 4xx with the API.md 0.4 error body (or the RFC 6749 body on /oidc/token), or a closed
connection. No 2xx/3xx, no 5xx; sigild stays alive, GET /healthz answers 200, and a mobile-biometrics login
with an openssl-generated key (register with a user token, start, sign with openssl, authenticate) succeeds
right after. Prints the counts per endpoint and status.

usage: bad_input_test.py SIGILD
"""

import collections
import hashlib
import hmac
import json
import os
import random
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sigil_sys import (check_clean_exit, EcKey, Results, Server, Sigil, b64, b64url, build_request, main_args, openssl_ec_key,  # noqa: E402
                       openssl_sign, raw_request, unique_email, is_api_error_body, webauthn_register,
                       b64url_decode)

TOTAL = int(os.environ.get("SIGIL_BAD_INPUT_REQUESTS", "10000"))
SEED = int(os.environ.get("SIGIL_BAD_INPUT_SEED", str(random.randrange(1 << 30))))
THREADS = 4

INVALID_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xe2\x82", b"\xf4\x90\x80\x80",
                b"abc\x80def", b"\xfe\xfe\xff\xff"]
HUGE_NUMBERS = [b"1e999999", b"-1e999999", b"18446744073709551616", b"-18446744073709551617",
                b"340282366920938463463374607431768211456", b"1" * 400, b"9" * 5000, b"1e-999999x",
                b"0x10", b"NaN", b"Infinity", b"-", b"01", b"1.", b".5", b"1e", b"+1"]
WRONG_TYPES = ["123", "-1", "1.5", "true", "false", "null", "[]", "[\"a\"]", "{}", "{\"a\":\"b\"}", "\"\""]
BAD_BASE64 = ["!!!!", "%%%%", "a", "ab=c", "====", "YW Jj", "\u00e9t\u00e9", "A" * 5, "*" * 64, "YWJj\n", "-_-_~",
              "YWJjZA=", "YWJjZA===", "Zm9v" * 600]
WRONG_CONTENT_TYPES = ["text/plain", "application/xml", "multipart/form-data; boundary=x", "image/png",
                       "application/jsonx", "application/octet-stream", "text/json", "application/json-patch+json"]


class Case:
    __slots__ = ("endpoint", "kind", "data", "oauth", "trickle")

    def __init__(self, endpoint, kind, data, oauth=False, trickle=None):
        self.endpoint = endpoint
        self.kind = kind
        self.data = data
        self.oauth = oauth
        self.trickle = trickle


def main():
    sigild = main_args("bad_input_test.py SIGILD")
    res = Results("bad_input")
    rnd = random.Random(SEED)
    res.note(f"seed {SEED} (SIGIL_BAD_INPUT_SEED reproduces the request mix), {TOTAL} requests")
    server = Server(sigild, name="bad-input")
    try:
        if not server.start():
            res.fail("setup: sigild starts")
            return res.finish(server)
        api = Sigil(server)
        c = api.client()
        api.get_client_token(c)
        ct = api.client_token
        user = api.otp_login(unique_email("bad-input"), c)
        ut, uid = user["access_token"], user["sub"]
        idt, rt = user["id_token"], user["refresh_token"]
        key = EcKey()
        kid = "bad-input-key"
        res.check(api.register_key(ut, key.spki_der(), kid, c).status == 200, "setup: register a device key")
        _, r = webauthn_register(api, c, "bad-input-wa", "bad-input-ext")
        res.check(r.status == 200, "setup: register a WebAuthn credential", repr(r))
        jwks = c.request("GET", "/cis/oidc/jwks").json()
        tokens = Tokens(ct, ut, idt, rt, jwks)
        cases = build_cases(rnd, api, tokens, uid, kid)
        res.note(f"{len(cases)} malformed requests over {len({x.endpoint for x in cases})} endpoints")

        counts, failures = run_cases(server.port, cases)
        print_table(counts)
        total = sum(sum(v.values()) for v in counts.values())
        res.check(total >= TOTAL, f"sent at least {TOTAL} malformed requests", f"sent {total}")
        by_kind = collections.Counter()
        for f in failures:
            by_kind[(f[0], f[1], f[2])] += 1
        for (endpoint, kind, what), n in sorted(by_kind.items()):
            example = next(f for f in failures if (f[0], f[1], f[2]) == (endpoint, kind, what))
            res.fail(f"{endpoint}: {kind}: {what}", f"{n} times; e.g. request {example[3][:300]!r} -> {example[4][:300]!r}")
        five = sum(n for ep in counts.values() for st, n in ep.items() if isinstance(st, int) and st >= 500)
        res.check(five == 0, "no 5xx answer", f"{five} answers were 5xx")
        unexpected = sum(n for ep in counts.values() for st, n in ep.items() if isinstance(st, int) and st < 400)
        res.check(unexpected == 0, "no 1xx/2xx/3xx answer to a malformed request", f"{unexpected} were accepted")
        res.check(len(failures) == 0, "every answer is a 4xx with the API error body, or a closed connection",
                  f"{len(failures)} did not")

        chunk_extension_probe(server, res)
        slow_ok = slow_clients(server.port, tokens, uid, kid, res)
        res.check(slow_ok, "slow clients (one byte at a time) answered 4xx or were dropped")

        res.check(server.alive(), "sigild still running after the flood")
        res.check(server.healthz() == 200, "GET /healthz -> 200 after the flood")
        c = api.client()
        res.check(api.session_alive(ut, c) == 404, "the user token used throughout is still valid (no logout slipped through)")
        with tempfile.TemporaryDirectory() as tmp:
            pem = os.path.join(tmp, "device.pem")
            spki = openssl_ec_key(pem)
            r = api.register_key(ut, spki, "openssl-key", c)
            res.check(r.status == 200, "register an openssl-generated EC key with the user token", repr(r))
            r = api.start(uid, c)
            ok = r.status == 200
            res.check(ok, "mobile-biometrics start after the flood", repr(r))
            if ok:
                challenge = r.json()["challenge"]
                r = api.authenticate(uid, "openssl-key", challenge, openssl_sign(pem, challenge), c)
                res.check(r.status == 200 and "access_token" in r.json(),
                          "mobile-biometrics authenticate (openssl signature) after the flood", repr(r))
        check_clean_exit(res, server)
    finally:
        server.stop()
    status = res.finish(server)
    server.cleanup()
    return status


class Tokens:
    def __init__(self, ct, ut, idt, rt, jwks):
        self.ct, self.ut, self.idt, self.rt = ct, ut, idt, rt
        self.jwks = jwks

    def forged(self, rnd):
        """Bearer values that must all be refused with 401 (or 431 when too long)."""
        header = json.loads(b64url_decode(self.ut.split(".")[0]))
        payload_b64 = self.ut.split(".")[1]
        none_h = b64url(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
        none_h2 = b64url(json.dumps({"alg": "None", "typ": "at+jwt", "kid": header.get("kid")}).encode())
        hs_h = b64url(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": header.get("kid")}).encode())
        jwk = self.jwks["keys"][0]
        pem = jwk_to_pem(jwk)
        hs_sig = b64url(hmac.new(pem, f"{hs_h}.{payload_b64}".encode(), hashlib.sha256).digest())
        hs_sig2 = b64url(hmac.new(json.dumps(jwk).encode(), f"{hs_h}.{payload_b64}".encode(), hashlib.sha256).digest())
        zero_sig = b64url(bytes(64))
        h, p, s = self.ut.split(".")
        flipped = s[:-2] + ("A" if s[-2] != "A" else "B") + s[-1]
        other_payload = b64url(json.dumps({**json.loads(b64url_decode(p)), "sub": "someone-else"}).encode())
        options = [
            None, "", "Bearer", "Bearer ", "Bearer x", "Bearer a.b.c", "Bearer ...", "Basic dXNlcjpwYXNz",
            f"Bearer {none_h}.{payload_b64}.", f"Bearer {none_h2}.{payload_b64}.", f"Bearer {hs_h}.{payload_b64}.{hs_sig}",
            f"Bearer {hs_h}.{payload_b64}.{hs_sig2}", f"Bearer {h}.{p}.{zero_sig}", f"Bearer {h}.{p}.{flipped}",
            f"Bearer {h}.{other_payload}.{s}", f"Bearer {self.idt}", f"Bearer {self.rt}", f"Bearer {self.ut}.{s}",
            f"Bearer {h}.{p}", f"Bearer {self.ut} extra", "Bearer " + "A" * 9000, f"Bearer {h}.{p}.{s}=",
            "Bearer \x7f\x01", f"Token {self.ut}", f"Bearer {h}..{s}", f"Bearer .{p}.{s}",
        ]
        return rnd.choice(options)


def jwk_to_pem(jwk):
    x = b64url_decode(jwk["x"])
    y = b64url_decode(jwk["y"])
    der = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200") + b"\x04" + x + y
    body = b64(der)
    return ("-----BEGIN PUBLIC KEY-----\n" + "\n".join(body[i:i + 64] for i in range(0, len(body), 64)) +
            "\n-----END PUBLIC KEY-----\n").encode()


# ---------------------------------------------------------------------------------------------------------
# Endpoints and their templates


class Endpoint:
    def __init__(self, name, method, path, auth, template=None, required=(), b64_fields=(), oauth=False,
                 form=False, body_must_fail=False, query=None, numeric=()):
        self.name = name
        self.method = method
        self.path = path
        self.auth = auth  # None, "client", "user"
        self.template = template or {}
        self.required = list(required)  # string fields whose invalidity must fail the request
        self.b64_fields = list(b64_fields)
        self.oauth = oauth
        self.form = form
        self.body_must_fail = body_must_fail  # a parseable body with a valid token would succeed
        self.query = query
        self.numeric = list(numeric)  # numeric fields the endpoint reads (range-checked)


def endpoints(api, tokens, uid, kid):
    cid, sec, redir = api.client_id, api.client_secret, api.redirect_uri
    return [
        Endpoint("GET /healthz", "GET", "/healthz", None),
        Endpoint("GET /.well-known/openid-configuration", "GET", "/.well-known/openid-configuration", None),
        Endpoint("GET /cis/oidc/jwks", "GET", "/cis/oidc/jwks", None),
        Endpoint("POST /oidc/token", "POST", "/oidc/token", None,
                 {"grant_type": "refresh_token", "refresh_token": "bogus-" + "r" * 40, "client_id": cid,
                  "client_secret": sec}, ["grant_type", "refresh_token", "client_id", "client_secret"], oauth=True,
                 form=True),
        Endpoint("POST /cis/v1/token", "POST", "/cis/v1/token", None,
                 {"code": "bogus-code-" + "c" * 40, "client_id": cid, "client_secret": sec},
                 ["code", "client_id", "client_secret"]),
        Endpoint("POST /cis/v1/auth/logout", "POST", "/cis/v1/auth/logout", "user", {"x": "y"}, [],
                 body_must_fail=True),
        Endpoint("POST mobile-biometrics/start", "POST", "/cis/v1/auth/mobile-biometrics/start", "client",
                 {"user_id": uid}, ["user_id"], numeric=["timeout"]),
        Endpoint("POST mobile-biometrics/authenticate", "POST", "/cis/v1/auth/mobile-biometrics/authenticate", "client",
                 {"user_id": uid, "key_id": kid, "challenge": b64url(os.urandom(32)),
                  "signature": b64(EcKey().sign("x"))}, ["user_id", "key_id", "challenge", "signature"],
                 ["signature", "challenge"]),
        Endpoint("POST mobile-biometrics/register", "POST", "/cis/v1/auth/mobile-biometrics/register", "user",
                 {"publicKey": b64(EcKey().spki_der()), "publicKeyId": "never-" + os.urandom(4).hex(),
                  "encryptionType": "ec", "os": "Android"}, ["publicKey", "publicKeyId", "os"], ["publicKey"]),
        Endpoint("DELETE mobile-biometrics/delete", "DELETE", "/cis/v1/auth/mobile-biometrics/delete", "user",
                 {"publicKeyId": "never-registered"}, ["publicKeyId"]),
        Endpoint("POST webauthn/authenticate/start", "POST", "/cis/v1/auth/webauthn/authenticate/start", None,
                 {"client_id": cid, "username": "bad-input-wa"}, ["client_id"], numeric=["timeout"]),
        Endpoint("POST webauthn/authenticate", "POST", "/cis/v1/auth/webauthn/authenticate", "client",
                 {"webauthn_encoded_result": b64(b'{"webauthnSessionId":"x","publicKeyCredential":{}}')},
                 ["webauthn_encoded_result"], ["webauthn_encoded_result"]),
        Endpoint("POST webauthn/register/start", "POST", "/cis/v1/auth/webauthn/register/start", None,
                 {"client_id": cid, "username": "bad-input-new"}, ["client_id", "username"], numeric=["timeout"]),
        Endpoint("POST webauthn/register", "POST", "/cis/v1/auth/webauthn/register", "user",
                 {"webauthn_encoded_result": b64(b'{"webauthnSessionId":"x","publicKeyCredential":{}}')},
                 ["webauthn_encoded_result"], ["webauthn_encoded_result"]),
        Endpoint("POST webauthn/external/register", "POST", "/cis/v1/auth/webauthn/external/register", "client",
                 {"webauthn_encoded_result": b64(b'{"webauthnSessionId":"x","publicKeyCredential":{}}'),
                  "external_user_id": "ext-bad"}, ["webauthn_encoded_result"], ["webauthn_encoded_result"]),
        Endpoint("POST webauthn/external/register/hosted/hint", "POST",
                 "/cis/v1/auth/webauthn/external/register/hosted/hint", "client",
                 {"webauthn_identifier": "hint-user", "redirect_uri": redir}, ["webauthn_identifier", "redirect_uri"]),
        Endpoint("DELETE webauthn/credentials/{id}", "DELETE", "/cis/v1/auth/webauthn/credentials/", "user"),
        Endpoint("POST otp/email", "POST", "/cis/v1/auth/otp/email", "client",
                 {"email": "bad-input-otp@example.com", "redirect_uri": redir, "create_new_user": True},
                 ["email", "redirect_uri"]),
        Endpoint("POST otp/email/validation", "POST", "/cis/v1/auth/otp/email/validation", "client",
                 {"email": "bad-input-otp@example.com", "passcode": "000000"}, ["email", "passcode"]),
        Endpoint("GET auth/complete", "GET", "/cis/v1/auth/complete", None, query="t"),
    ]


def token_for(ep, tokens):
    if ep.auth == "client":
        return tokens.ct
    if ep.auth == "user":
        return tokens.ut
    return None


def alias(rnd, path):
    if path.startswith("/cis/v1/") and rnd.random() < 0.3:
        return path[4:]
    if path == "/oidc/token" and rnd.random() < 0.2:
        return "/cis/oidc/token"
    return path


def json_bytes(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def form_bytes(obj):
    import urllib.parse
    return urllib.parse.urlencode({k: (json.dumps(v) if isinstance(v, (dict, list, bool)) else v)
                                   for k, v in obj.items()}).encode()


def body_with_marker(ep, field, marker=b"@@M@@"):
    obj = dict(ep.template)
    obj[field] = marker.decode()
    return json_bytes(obj).replace(b'"' + marker + b'"', marker)


# Each generator returns (kind, request bytes). Generators that need a parseable body to fail on their own
# merit are only used where failing is certain (see body_must_fail).


def gen_truncated(rnd, ep, tokens):
    body = form_bytes(ep.template) if ep.form else json_bytes(ep.template or {"a": "b"})
    if ep.form:
        # A truncated form is still a form; make it invalid with a dangling escape.
        cut = body[:rnd.randrange(1, len(body))] + b"%"
    else:
        cut = body[:rnd.randrange(0, len(body) - 1)] if len(body) > 1 else b"{"
        if not cut.strip():
            cut = b"{"
    ctype = "application/x-www-form-urlencoded" if ep.form else "application/json"
    return "truncated body", req(rnd, ep, tokens, cut, ctype)


def gen_oversized(rnd, ep, tokens):
    size = rnd.choice([64 * 1024 + 1, 70000, 200000, 1 << 20])
    pad = {"pad": "x" * size}
    pad.update(ep.template)
    body = json_bytes(pad)
    return "oversized body", req(rnd, ep, tokens, body, "application/json")


def gen_huge_content_length(rnd, ep, tokens):
    n = rnd.choice(["65537", "99999999999", "18446744073709551615", "18446744073709551616", "1" * 40])
    return "Content-Length over the limit", req(rnd, ep, tokens, b"{}", "application/json",
                                                 headers=[("Content-Length", n)], raw_body=b"{}")


def gen_bad_content_length(rnd, ep, tokens):
    v = rnd.choice([("Content-Length", "abc"), ("Content-Length", "-1"), ("Content-Length", "1 2"),
                    ("Content-Length", "0x10"), ("Content-Length", "")])
    extra = [v]
    if rnd.random() < 0.3:
        extra = [("Content-Length", "2"), ("Content-Length", "3")]
    return "invalid Content-Length", req(rnd, ep, tokens, b"{}", "application/json", headers=extra, raw_body=b"{}")


def gen_bad_chunked(rnd, ep, tokens):
    bodies = [b"zz\r\n{}\r\n0\r\n\r\n", b"2\r\n{}\r\n-1\r\n\r\n", b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
              b"2;\x01\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n",
              b"10000\r\n" + b"a" * 0x10000 + b"\r\n10\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n"]
    body = rnd.choice(bodies)
    return "bad chunked encoding", req(rnd, ep, tokens, body, "application/json",
                                       headers=[("Transfer-Encoding", "chunked")], raw_body=body)


def gen_header_limits(rnd, ep, tokens):
    if rnd.random() < 0.5:
        headers = [("X-Big", "a" * rnd.choice([33000, 60000]))]
    else:
        headers = [(f"X-H{i}", "v" * 20) for i in range(rnd.choice([1500, 3000]))]
    return "headers over the limit", req(rnd, ep, tokens, json_bytes(ep.template) if ep.template else b"",
                                         "application/json", headers=headers)


def gen_long_target(rnd, ep, tokens):
    path = alias(rnd, ep.path) + "?" + "q=" + "a" * rnd.choice([17000, 40000])
    return "request target over the limit", build_request(ep.method, path, b"", token=token_for(ep, tokens))


def gen_garbage_http(rnd, ep, tokens):
    path = alias(rnd, ep.path).encode()
    options = [
        os.urandom(rnd.randrange(1, 200)) + b"\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET " + path + b" HTTP/1.1\r\nHost localhost\r\n\r\n",
        b"GET " + path + b" HTTP/1.1\r\n: empty-name\r\n\r\n",
        b"GET " + path + b" FTP/1.1\r\nHost: x\r\n\r\n",
        b"G\x00T " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET  HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET " + path + b"\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nX-Bad\x01Header: v\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(40) + b"\r\n\r\n",
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}",
    ]
    return "garbage HTTP", rnd.choice(options)


def gen_wrong_method(rnd, ep, tokens):
    methods = ["PUT", "PATCH", "TRACE", "FOO", "OPTIONS", "DELETE", "POST", "GET"]
    methods = [m for m in methods if m != ep.method and not (ep.method == "GET" and m == "HEAD")]
    if ep.path.endswith("/start"):
        methods = [m for m in methods if m != "OPTIONS"]  # CORS preflight answers 204 by design
    m = rnd.choice(methods)
    body = json_bytes(ep.template) if ep.template and m != "GET" else b""
    return "wrong method", build_request(m, alias(rnd, ep.path) + ("x" if ep.name.startswith("DELETE webauthn") else ""),
                                         body, token=token_for(ep, tokens),
                                         content_type="application/json" if body else None)


def gen_wrong_content_type(rnd, ep, tokens):
    body = json_bytes(ep.template or {"a": "b"})
    return "wrong content type", req(rnd, ep, tokens, body, rnd.choice(WRONG_CONTENT_TYPES))


def gen_invalid_utf8(rnd, ep, tokens):
    bad = rnd.choice(INVALID_UTF8)
    if ep.form:
        field = rnd.choice(ep.required)
        obj = dict(ep.template)
        obj[field] = "@@M@@"
        body = form_bytes(obj).replace(b"%40%40M%40%40", b"".join(b"%%%02X" % ch for ch in bad))
        if rnd.random() < 0.5:
            body = form_bytes(obj).replace(b"%40%40M%40%40", bad)
        return "invalid UTF-8", req(rnd, ep, tokens, body, "application/x-www-form-urlencoded")
    fields = ep.required or list(ep.template) or ["a"]
    field = rnd.choice(fields)
    if not ep.template:
        body = b'{"a":"' + bad + b'"}'
    elif rnd.random() < 0.3:
        body = json_bytes(ep.template)[:-1] + b',"' + bad + b'":"v"}'  # in a member name
    else:
        body = body_with_marker(ep, field).replace(b"@@M@@", b'"x' + bad + b'y"')
    return "invalid UTF-8", req(rnd, ep, tokens, body, "application/json")


def gen_deep_nesting(rnd, ep, tokens):
    depth = rnd.choice([9, 10, 100, 1000, 1000, 5000])
    kind = rnd.choice(["array", "object", "mixed"])
    if kind == "array":
        inner = b"[" * depth + b"1" + b"]" * depth
    elif kind == "object":
        inner = b'{"a":' * depth + b"1" + b"}" * depth
    else:
        inner = b'[{"a":' * (depth // 2) + b"1" + b"}]" * (depth // 2)
    fields = ep.required or list(ep.template) or ["a"]
    obj = dict(ep.template) if ep.template else {"a": 1}
    obj[rnd.choice(fields)] = "@@M@@"
    body = json_bytes(obj).replace(b'"@@M@@"', inner)
    return f"nesting {depth} deep", req(rnd, ep, tokens, body, "application/json")


def gen_huge_number(rnd, ep, tokens):
    number = rnd.choice(HUGE_NUMBERS)
    fields = ((ep.required or []) + ep.numeric) or list(ep.template)  # only fields the endpoint reads
    field = rnd.choice(fields)
    if ep.body_must_fail:
        # Only numbers that are not JSON at all (the parse must fail with a valid token on logout).
        number = rnd.choice([b"0x10", b"NaN", b"Infinity", b"-", b"01", b"1.", b".5", b"1e", b"+1", b"1e-999999x"])
    obj = dict(ep.template) if ep.template else {}
    obj[field] = "@@M@@"
    body = json_bytes(obj).replace(b'"@@M@@"', number)
    return "huge or invalid number", req(rnd, ep, tokens, body, "application/json")


def gen_duplicate_keys(rnd, ep, tokens):
    fields = ep.required or list(ep.template) or ["a"]
    field = rnd.choice(fields)
    obj = dict(ep.template) if ep.template else {field: "v"}
    obj.setdefault(field, "v")
    body = json_bytes(obj)
    dup = b'"' + field.encode() + b'":' + json_bytes(obj[field])
    body = body[:-1] + b"," + dup + b"}"
    if rnd.random() < 0.3:  # a duplicate inside a nested object
        body = body[:-1] + b',"claims":{"a":1,"a":2}}'
    return "duplicate keys", req(rnd, ep, tokens, body, "application/json")


def gen_bad_base64(rnd, ep, tokens):
    field = rnd.choice(ep.b64_fields)
    obj = dict(ep.template)
    obj[field] = rnd.choice(BAD_BASE64)
    if ep.form:
        return "bad base64", req(rnd, ep, tokens, form_bytes(obj), "application/x-www-form-urlencoded")
    return "bad base64", req(rnd, ep, tokens, json_bytes(obj), "application/json")


def gen_wrong_type(rnd, ep, tokens):
    field = rnd.choice(ep.required)
    obj = dict(ep.template)
    obj[field] = "@@M@@"
    body = json_bytes(obj).replace(b'"@@M@@"', rnd.choice(WRONG_TYPES).encode())
    if rnd.random() < 0.3:
        del obj[field]
        body = json_bytes(obj)
        return "missing required field", req(rnd, ep, tokens, body, "application/json")
    return "wrong JSON type", req(rnd, ep, tokens, body, "application/json")


def gen_not_object(rnd, ep, tokens):
    body = rnd.choice([b"null", b"[]", b"[{}]", b'"str"', b"123", b"true", b"{", b"}", b"{,}", b'{"a"}',
                       b'{"a":1,}', b"{'a':1}", b'{"a":1}{"b":2}', b'{"a":1} x', b"{\"a\":\"\\x\"}",
                       b'{"a":"\x01"}', b"/*c*/{}", b"\x00"]
                      + ([] if ep.body_must_fail else [b"\xef\xbb\xbf{}", b'{"a":"\\ud800"}']))
    return "not a JSON object", req(rnd, ep, tokens, body, "application/json")


def gen_bad_token(rnd, ep, tokens):
    value = tokens.forged(rnd)
    body = json_bytes(ep.template) if ep.template else b""
    if ep.auth == "user" and rnd.random() < 0.3:
        value = "Bearer " + tokens.ct  # client token on a user endpoint -> 403
    elif ep.auth == "client" and rnd.random() < 0.3:
        value = "Bearer " + tokens.ut  # user token on a client endpoint -> 403
    headers = [] if value is None else [("Authorization", value)]
    path = alias(rnd, ep.path) + ("some-credential-id" if ep.name.startswith("DELETE webauthn") else "")
    return "wrong or forged bearer token", build_request(ep.method, path, body, headers=headers,
                                                         content_type="application/json" if body else None)


def gen_bad_form(rnd, ep, tokens):
    options = [b"grant_type=%zz", b"grant_type=%4", b"grant_type=%00", b"a=%ff%fe", b"%=x", b"grant_type=refresh_token&%",
               b"grant_type=client_credentials&client_id=" + ep.template.get("client_id", "x").encode() +
               b"&client_secret=wrong", b"grant_type=password&client_id=x", b"grant_type=&client_id=",
               b"grant_type=authorization_code&code=%00&redirect_uri=x&client_id=" +
               ep.template.get("client_id", "x").encode() + b"&client_secret=" +
               ep.template.get("client_secret", "x").encode(),
               b"grant_type=refresh_token&refresh_token=" + b"r" * 600 + b"&client_id=x&client_secret=y",
               b"client_id=" + b"c" * 200 + b"&grant_type=client_credentials&client_secret=x"]
    return "bad form body", req(rnd, ep, tokens, rnd.choice(options), "application/x-www-form-urlencoded")


def gen_basic_auth(rnd, ep, tokens):
    import base64 as b64mod
    values = ["Basic", "Basic !!!", "Basic " + b64mod.b64encode(b"nocolon").decode(),
              "Basic " + b64mod.b64encode(b"\xff\xfe:x").decode(), "Basic " + "A" * 5000,
              "Basic " + b64mod.b64encode(f"{ep.template['client_id']}:wrong".encode()).decode(),
              "Basic " + b64mod.b64encode(b"other-client:" + ep.template["client_secret"].encode()).decode()]
    body = b"grant_type=client_credentials"
    return "bad Basic credentials", req(rnd, ep, tokens, body, "application/x-www-form-urlencoded",
                                        headers=[("Authorization", rnd.choice(values))], no_token=True)


def gen_complete_query(rnd, ep, tokens):
    t = rnd.choice(["", "x", "%zz", "%00", "a" * 200, "a" * 5000, "%ff%fe", "AAAA" * 10, "t&t=2", "\u00e9"])
    path = alias(rnd, ep.path) + "?t=" + t
    if rnd.random() < 0.2:
        path = alias(rnd, ep.path)
    return "bad one-time token", build_request("GET", path.encode("utf-8").decode("latin-1"), b"")


def gen_credential_path(rnd, ep, tokens):
    ids = ["", "x", "%00", "%zz", "..%2F..%2Fhealthz", "A" * 3000, "!!!", "%ff%fe", "a/b", "AAAA", "?x=1",
           b64url(os.urandom(32)), b64url(os.urandom(1100))]
    path = alias(rnd, ep.path) + rnd.choice(ids)
    return "bad credential id", build_request("DELETE", path, b"", token=tokens.ut)


def req(rnd, ep, tokens, body, ctype, headers=None, raw_body=None, no_token=False):
    path = alias(rnd, ep.path)
    if ep.name.startswith("DELETE webauthn"):
        path += "some-credential-id"
    token = None if no_token else token_for(ep, tokens)
    hdrs = list(headers or [])
    data = body if raw_body is None else raw_body
    return build_request(ep.method, path, data, headers=hdrs, content_type=ctype, token=token)


def generators_for(ep):
    common = [gen_oversized, gen_huge_content_length, gen_bad_content_length, gen_bad_chunked, gen_header_limits,
              gen_long_target, gen_garbage_http, gen_wrong_method]
    if ep.method == "GET":
        extra = [gen_complete_query] * 4 if ep.query else []
        return common + extra
    if ep.name.startswith("DELETE webauthn"):
        return common + [gen_credential_path] * 3 + [gen_bad_token] * 2 + [gen_wrong_content_type, gen_truncated,
                                                                              gen_invalid_utf8, gen_not_object]
    gens = common + [gen_truncated, gen_truncated, gen_invalid_utf8, gen_invalid_utf8, gen_deep_nesting,
                     gen_huge_number, gen_duplicate_keys, gen_not_object]
    if not ep.form:
        gens += [gen_wrong_content_type]
    if ep.required and not ep.body_must_fail:
        gens += [gen_wrong_type, gen_wrong_type]
    if ep.b64_fields:
        gens += [gen_bad_base64, gen_bad_base64]
    if ep.auth:
        gens += [gen_bad_token, gen_bad_token]
    if ep.form:
        gens += [gen_bad_form, gen_bad_form, gen_basic_auth]
    return gens


def build_cases(rnd, api, tokens, uid, kid):
    eps = endpoints(api, tokens, uid, kid)
    per = -(-TOTAL // len(eps))
    cases = []
    for ep in eps:
        gens = generators_for(ep)
        for _ in range(per):
            g = rnd.choice(gens)
            kind, data = g(rnd, ep, tokens)
            cases.append(Case(ep.name, kind, data, ep.oauth))
    rnd.shuffle(cases)
    return cases


# ---------------------------------------------------------------------------------------------------------
# Running


def judge(case, resp):
    """None when the answer is acceptable, else a short description."""
    if resp.status == 0:
        return None  # closed without an answer
    if resp.status < 0:
        return "unparseable response"
    if resp.status >= 500:
        return f"HTTP {resp.status}"
    if resp.status < 400:
        return f"accepted with HTTP {resp.status}"
    if not is_api_error_body(resp.body, oauth=case.oauth):
        return f"HTTP {resp.status} without the API error body"
    return None


def run_cases(port, cases):
    counts = collections.defaultdict(collections.Counter)
    failures = []
    lock = threading.Lock()
    chunks = [cases[i::THREADS] for i in range(THREADS)]

    def worker(chunk):
        sock = None
        local_counts = collections.defaultdict(collections.Counter)
        local_fail = []
        for case in chunk:
            t0 = time.monotonic()
            resp, sock = raw_request(port, case.data, timeout=15.0, sock=sock)
            if time.monotonic() - t0 > 2.0:
                print(f"# slow answer ({time.monotonic() - t0:.1f} s, status {resp.status}): {case.endpoint}: "
                      f"{case.kind}: {case.data[:120]!r}", flush=True)
            if resp.status == 0 and sock is None:
                # A stale keep-alive connection may have been closed by the server: retry once, fresh.
                resp, sock = raw_request(port, case.data, timeout=15.0)
            local_counts[case.endpoint]["closed" if resp.status == 0 else resp.status] += 1
            why = judge(case, resp)
            if why:
                local_fail.append((case.endpoint, case.kind, why, case.data, resp.body))
        if sock is not None:
            sock.close()
        with lock:
            for ep, cnt in local_counts.items():
                counts[ep].update(cnt)
            failures.extend(local_fail)

    threads = [threading.Thread(target=worker, args=(ch,)) for ch in chunks]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"# {len(cases)} requests in {time.monotonic() - t0:.1f} s with {THREADS} client threads", flush=True)
    return counts, failures


def print_table(counts):
    statuses = sorted({s for c in counts.values() for s in c}, key=lambda s: (isinstance(s, str), str(s)))
    width = max(len(e) for e in counts) + 2
    print("# " + "endpoint".ljust(width) + "".join(str(s).rjust(7) for s in statuses) + "  total".rjust(8))
    for ep in sorted(counts):
        row = counts[ep]
        print("# " + ep.ljust(width) + "".join(str(row.get(s, 0)).rjust(7) for s in statuses) +
              str(sum(row.values())).rjust(8))
    totals = collections.Counter()
    for c in counts.values():
        totals.update(c)
    print("# " + "ALL".ljust(width) + "".join(str(totals.get(s, 0)).rjust(7) for s in statuses) +
          str(sum(totals.values())).rjust(8), flush=True)


def chunk_extension_probe(server, res):
    """One connection sends a chunked body whose first chunk header carries an endless chunk extension
    (valid syntax, no CRLF). Neither header_limit nor body_limit covers it; the read buffer must still be
    bounded: the connection is refused or dropped before sigild's resident memory grows by 32 MiB."""
    import socket as s
    before = server.rss_kb()
    sent = 0
    limit = 48 << 20
    try:
        conn = s.create_connection(("127.0.0.1", server.port), timeout=5)
        conn.sendall(b"POST /cis/v1/auth/webauthn/authenticate/start HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2;ext=")
        chunk = b"e" * (1 << 20)
        t0 = time.monotonic()
        while sent < limit and time.monotonic() - t0 < 15:
            conn.sendall(chunk)
            sent += len(chunk)
        conn.close()
    except OSError:
        pass
    growth = server.rss_kb() - before
    res.note(f"chunk extension probe: sent {sent >> 20} MiB of chunk extension, RSS grew {growth >> 10} MiB")
    res.check(growth < (32 << 10), "an endless chunk extension does not grow memory without bound",
              f"{sent >> 20} MiB of chunk extension on one connection grew RSS by {growth >> 10} MiB")


def slow_clients(port, tokens, uid, kid, res):
    """A few clients that send a malformed request one byte at a time (5 ms apart), two that stop half-way
    and hang up. Bounded: about 2-3 s in all."""
    body = b'{"user_id":"' + uid.encode() + b'","key_id":"' + kid.encode() + b'","challenge":"x",' + b'"signature":!}'
    requests = [
        build_request("POST", "/cis/v1/auth/mobile-biometrics/authenticate", body, token=tokens.ct,
                      content_type="application/json"),
        build_request("POST", "/oidc/token", b"grant_type=%zz", content_type="application/x-www-form-urlencoded"),
        build_request("POST", "/cis/v1/auth/webauthn/authenticate/start", b'{"client_id":1}',
                      content_type="application/json"),
        build_request("DELETE", "/cis/v1/auth/mobile-biometrics/delete", b'{"publicKeyId":', token=tokens.ut,
                      content_type="application/json"),
    ]
    results = [None] * (len(requests) + 2)

    def trickle(i, data):
        resp, sock = raw_request(port, data, timeout=20.0, trickle=(1, 0.005))
        if sock is not None:
            sock.close()
        results[i] = resp

    def hang_up(i, data):
        import socket as s
        try:
            conn = s.create_connection(("127.0.0.1", port), timeout=5)
            for b in data[:len(data) // 2]:
                conn.sendall(bytes([b]))
                time.sleep(0.005)
            conn.close()
        except OSError:
            pass
        results[i] = "hung up"

    threads = [threading.Thread(target=trickle, args=(i, d)) for i, d in enumerate(requests)]
    threads += [threading.Thread(target=hang_up, args=(len(requests) + j, requests[j])) for j in range(2)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = True
    for i, r in enumerate(results[:len(requests)]):
        desc = "closed" if r.status == 0 else r.status
        res.note(f"slow client {i}: {len(requests[i])} bytes one at a time -> {desc}")
        if r.status != 0 and not (400 <= r.status < 500 and is_api_error_body(r.body, oauth=(i == 1))):
            ok = False
    res.note(f"slow clients took {time.monotonic() - t0:.1f} s")
    return ok


if __name__ == "__main__":
    sys.exit(main())
