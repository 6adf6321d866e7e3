#!/usr/bin/env python3
"""Regenerates the seed corpora under fuzz/corpus/<target>/ from real material.

Keys, signatures and JWT signatures come from the openssl CLI (fresh keys on every run, so the corpus
changes when this is re-run; commit the result). Everything else is written out literally below: request
bodies of the API.md endpoints, form bodies and query strings, base64 strings. Only the Python standard
library and `openssl` (3.x) are needed:  python3 fuzz/gen_corpus.py [TARGET ...]
(with TARGETs, only those corpora are rewritten, e.g. `python3 fuzz/gen_corpus.py cbor pem`).

The WebAuthn corpora (cbor, cose_key, authenticator_data, client_data, attestation, assertion,
encoded_result, pem) are cut from the W3C WebAuthn L3 spec test vectors, read at generation time from
$SIGIL_VECTORS_DIR/webauthn-spec/webauthn-l3-test-vectors.json (default: ../shared/vectors next to the
repository); the JSON file itself is not copied, only the inputs built from it are written.
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
VECTORS = os.path.join(
    os.environ.get("SIGIL_VECTORS_DIR",
                   os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "vectors")),
    "webauthn-spec", "webauthn-l3-test-vectors.json")


def sh(*args, stdin=None):
    return subprocess.run(args, input=stdin, check=True, capture_output=True).stdout


ONLY = set(sys.argv[1:])  # targets to rewrite; empty = all


def write(target, name, data):
    if ONLY and target not in ONLY:
        return
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


# --- CBOR helpers for the WebAuthn corpora --------------------------------------------------------------

def cbor_item_end(b, i=0):
    """Offset just past the definite-length CBOR item starting at b[i] (enough for attestationObjects)."""
    ib = b[i]
    major, info = ib >> 5, ib & 0x1F
    i += 1
    if info < 24:
        arg = info
    else:
        n = {24: 1, 25: 2, 26: 4, 27: 8}[info]
        arg = int.from_bytes(b[i:i + n], "big")
        i += n
    if major in (0, 1, 7):
        return i
    if major in (2, 3):
        return i + arg
    if major == 4:
        for _ in range(arg):
            i = cbor_item_end(b, i)
        return i
    if major == 5:
        for _ in range(2 * arg):
            i = cbor_item_end(b, i)
        return i
    if major == 6:
        return cbor_item_end(b, i)
    raise ValueError("unsupported CBOR")


def cbor_decode(b, i=0):
    """(value, end) for the subset in attestationObjects: ints, bytes, text, arrays, maps (as dicts)."""
    ib = b[i]
    major, info = ib >> 5, ib & 0x1F
    j = i + 1
    if info < 24:
        arg = info
    else:
        n = {24: 1, 25: 2, 26: 4, 27: 8}[info]
        arg = int.from_bytes(b[j:j + n], "big")
        j += n
    if major == 0:
        return arg, j
    if major == 1:
        return -1 - arg, j
    if major == 2:
        return bytes(b[j:j + arg]), j + arg
    if major == 3:
        return b[j:j + arg].decode(), j + arg
    if major == 4:
        out = []
        for _ in range(arg):
            v, j = cbor_decode(b, j)
            out.append(v)
        return out, j
    if major == 5:
        out = {}
        for _ in range(arg):
            k, j = cbor_decode(b, j)
            v, j = cbor_decode(b, j)
            out[k] = v
        return out, j
    if major == 7:
        return {20: False, 21: True, 22: None}[info], j
    raise ValueError("unsupported CBOR")


def cbor_head(major, arg):
    if arg < 24:
        return bytes([(major << 5) | arg])
    for n, info in ((1, 24), (2, 25), (4, 26), (8, 27)):
        if arg < (1 << (8 * n)):
            return bytes([(major << 5) | info]) + arg.to_bytes(n, "big")
    raise ValueError("too large")


def cbor_encode(v):
    """Canonical CTAP2 encoding (keys sorted by encoded length, then bytewise)."""
    if isinstance(v, bool):
        return b"\xf5" if v else b"\xf4"
    if v is None:
        return b"\xf6"
    if isinstance(v, int):
        return cbor_head(0, v) if v >= 0 else cbor_head(1, -1 - v)
    if isinstance(v, bytes):
        return cbor_head(2, len(v)) + v
    if isinstance(v, str):
        e = v.encode()
        return cbor_head(3, len(e)) + e
    if isinstance(v, list):
        return cbor_head(4, len(v)) + b"".join(cbor_encode(x) for x in v)
    if isinstance(v, dict):
        items = sorted(((cbor_encode(k), cbor_encode(x)) for k, x in v.items()), key=lambda kv: (len(kv[0]), kv[0]))
        return cbor_head(5, len(items)) + b"".join(k + x for k, x in items)
    raise TypeError(type(v))


def split_auth_data(ad):
    """(header37, aaguid, cred_id, cose_key_bytes, extensions) of an authenticatorData."""
    flags = ad[32]
    if not flags & 0x40:
        return ad[:37], None, None, None, ad[37:]
    cl = int.from_bytes(ad[53:55], "big")
    key_start = 55 + cl
    key_end = cbor_item_end(ad, key_start)
    return ad[:37], ad[37:53], ad[55:key_start], ad[key_start:key_end], ad[key_end:]


def u16(n):
    return n.to_bytes(2, "big")


def pem_cert(der, width=64):
    body = "\n".join(textwrap.wrap(b64(der), width))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def webauthn_corpora(vectors):
    vs = {v["name"]: v for v in vectors["vectors"]}
    reg = {n: {k: bytes.fromhex(x) for k, x in v["registration"].items()
               if k in ("clientDataJSON", "attestationObject", "challenge", "credential_id")}
           for n, v in vs.items()}
    auth = {n: {k: bytes.fromhex(x) for k, x in v["authentication"].items()
                if k in ("clientDataJSON", "authenticatorData", "signature", "challenge")}
            for n, v in vs.items()}
    att_objs = {n: cbor_decode(r["attestationObject"])[0] for n, r in reg.items()}
    auth_datas = {n: o["authData"] for n, o in att_objs.items()}
    cose_keys = {n: split_auth_data(ad)[3] for n, ad in auth_datas.items()}

    # --- attestation: the 15 registrations, u16 BE length ‖ clientDataJSON ‖ attestationObject -----------
    for n, r in reg.items():
        write("attestation", f"{n}.bin", u16(len(r["clientDataJSON"])) + r["clientDataJSON"] + r["attestationObject"])

    # --- assertion: u16 ‖ clientDataJSON ‖ u16 ‖ authenticatorData ‖ signature, against none-es256's key ---
    def assertion(cdj, ad, sig):
        return u16(len(cdj)) + cdj + u16(len(ad)) + ad + sig

    a = auth["none-es256"]
    cdj, ad, sig = a["clientDataJSON"], a["authenticatorData"], a["signature"]
    r_, s_ = parse_ecdsa_der(sig)
    write("assertion", "none_es256_valid.bin", assertion(cdj, ad, sig))
    write("assertion", "none_es256_low_s_twin.bin", assertion(cdj, ad, der_seq(der_int(r_) + der_int(P256_N - s_))))
    write("assertion", "sig_flipped_bit.bin", assertion(cdj, ad, sig[:-1] + bytes([sig[-1] ^ 1])))
    write("assertion", "sig_trailing_zero.bin", assertion(cdj, ad, sig + b"\x00"))
    write("assertion", "sig_raw_r_s.bin", assertion(cdj, ad, r_.to_bytes(32, "big") + s_.to_bytes(32, "big")))
    write("assertion", "authdata_uv_set.bin", assertion(cdj, ad[:32] + bytes([ad[32] | 0x04]) + ad[33:], sig))
    write("assertion", "authdata_count_1.bin", assertion(cdj, ad[:33] + b"\x00\x00\x00\x01", sig))
    write("assertion", "authdata_rpid_flipped.bin", assertion(cdj, bytes([ad[0] ^ 0x80]) + ad[1:], sig))
    write("assertion", "cdj_type_create.bin",
          assertion(cdj.replace(b"webauthn.get", b"webauthn.create"), ad, sig))
    write("assertion", "cdj_origin_changed.bin", assertion(cdj.replace(b"example.org", b"example.com"), ad, sig))
    write("assertion", "cdj_space_added.bin", assertion(cdj.replace(b",", b", ", 1), ad, sig))
    write("assertion", "truncated.bin", assertion(cdj, ad, sig)[:-20])
    for n in ("packed-es256", "none-es256-crossOrigin", "packed-eddsa"):
        o = auth[n]
        write("assertion", f"{n}_other_key.bin",
              assertion(o["clientDataJSON"], o["authenticatorData"], o["signature"]))

    # --- authenticator_data: every registration's authData, distinct assertion authData, hand-made -------
    for n, adata in auth_datas.items():
        write("authenticator_data", f"reg_{n}.bin", adata)
    seen = set()
    for n, o in auth.items():
        if o["authenticatorData"] not in seen:
            seen.add(o["authenticatorData"])
            write("authenticator_data", f"auth_{n}.bin", o["authenticatorData"])
    base = auth_datas["none-es256"]
    hdr, aaguid, cid, key, _ = split_auth_data(base)
    ext = cbor_encode({"credProtect": 2, "hmac-secret": True})
    write("authenticator_data", "attested_with_extensions.bin",
          hdr[:32] + bytes([hdr[32] | 0x80]) + hdr[33:] + aaguid + u16(len(cid)) + cid + key + ext)
    write("authenticator_data", "assertion_with_extensions.bin", ad[:32] + bytes([ad[32] | 0x80]) + ad[33:] + ext)
    write("authenticator_data", "ed_flag_without_extensions.bin", ad[:32] + bytes([ad[32] | 0x80]) + ad[33:])
    write("authenticator_data", "at_flag_without_data.bin", ad[:32] + bytes([ad[32] | 0x40]) + ad[33:])
    write("authenticator_data", "bs_without_be.bin", ad[:32] + bytes([(ad[32] & ~0x08) | 0x10]) + ad[33:])
    write("authenticator_data", "trailing_byte.bin", base + b"\x00")
    write("authenticator_data", "truncated_36.bin", ad[:36])
    write("authenticator_data", "cred_id_len_1024.bin", hdr + aaguid + u16(1024) + b"\x01" * 1024 + key)

    # --- cose_key: every credential key of the vectors, plus malformed EC2/OKP/RSA keys ---------------------
    for n, k in cose_keys.items():
        write("cose_key", f"{n}.cbor", k)
    ec = cbor_decode(cose_keys["none-es256"])[0]
    write("cose_key", "ec2_with_private_d.cbor", cbor_encode({**ec, -4: b"\x01" * 32}))
    write("cose_key", "ec2_crv_p384_alg_es256.cbor", cbor_encode({**ec, -1: 2}))
    write("cose_key", "ec2_compressed_y_bool.cbor", cbor_encode({**ec, -3: True}))
    write("cose_key", "ec2_off_curve.cbor", cbor_encode({**ec, -3: ec[-3][:-1] + bytes([ec[-3][-1] ^ 1])}))
    write("cose_key", "ec2_no_alg.cbor", cbor_encode({k: v for k, v in ec.items() if k != 3}))
    write("cose_key", "ec2_alg_rs256.cbor", cbor_encode({**ec, 3: -257}))
    write("cose_key", "ec2_with_kid.cbor", cbor_encode({**ec, 2: b"kid-1"}))
    write("cose_key", "ec2_unsorted.cbor", cose_keys["none-es256"][:1] + cose_keys["none-es256"][3:5]
          + cose_keys["none-es256"][1:3] + cose_keys["none-es256"][5:])
    write("cose_key", "ec2_trailing_byte.cbor", cose_keys["none-es256"] + b"\x00")
    okp = cbor_decode(cose_keys["packed-eddsa"])[0]
    write("cose_key", "okp_ed25519_alg_minus19.cbor", cbor_encode({**okp, 3: -19}))
    write("cose_key", "okp_ed25519_small_order.cbor", cbor_encode({**okp, -2: b"\x01" + b"\x00" * 31}))
    rsa = cbor_decode(cose_keys["packed-rs256"])[0]
    write("cose_key", "rsa_ps256.cbor", cbor_encode({**rsa, 3: -37}))
    write("cose_key", "rsa_n_leading_zero.cbor", cbor_encode({**rsa, -1: b"\x00" + rsa[-1]}))
    write("cose_key", "rsa_e_even.cbor", cbor_encode({**rsa, -2: b"\x01\x00\x00"}))
    write("cose_key", "rsa_with_private_d.cbor", cbor_encode({**rsa, -3: b"\x01" * 256}))

    # --- cbor: attestationObjects and statements, then the strictness cases ---------------------------------
    for n in ("none-es256", "packed-es256", "tpm-es256", "fido-u2f-es256"):
        write("cbor", f"attestation_object_{n}.cbor", reg[n]["attestationObject"])
    write("cbor", "cose_key_es256.cbor", cose_keys["none-es256"])
    write("cbor", "extensions_map.cbor", ext)
    write("cbor", "authdata_prefix_key_then_ext.cbor", key + ext)  # decode_prefix stops after the key
    cases = {
        "uint_max.cbor": b"\x1b" + b"\xff" * 8,
        "nint_min.cbor": b"\x3b" + b"\xff" * 8,
        "non_shortest_int.cbor": b"\x18\x05",
        "non_shortest_length.cbor": b"\x59\x00\x01\x41",
        "indefinite_bytes.cbor": b"\x5f\x41\x00\xff",
        "indefinite_map.cbor": b"\xbf\x01\x02\xff",
        "tag_datetime.cbor": b"\xc1\x1a\x5f\x00\x00\x00",
        "float16.cbor": b"\xf9\x3c\x00",
        "simple_bools_null.cbor": cbor_encode([True, False, None, 0, -1, b"", ""]),
        "map_unsorted.cbor": b"\xa2\x03\x00\x01\x00",
        "map_duplicate_key.cbor": b"\xa2\x01\x00\x01\x01",
        "map_length_order.cbor": cbor_encode({1: 1, -1: 2, 24: 3, "a": 4, "bb": 5, -25: 6}),
        "map_bytes_key.cbor": b"\xa1\x41\x00\x00",
        "depth_5.cbor": b"\x81" * 4 + b"\xa1\x01\x00",
        "depth_6.cbor": b"\x81" * 5 + b"\xa1\x01\x00",
        "bytes_huge_length.cbor": b"\x5a\xff\xff\xff\xff",
        "array_huge_count.cbor": b"\x9b" + b"\xff" * 8,
        "text_invalid_utf8.cbor": b"\x62\xc3\x28",
        "text_utf8.cbor": cbor_encode("h\u00e9llo \u20ac \U0001f600"),
        "trailing_byte.cbor": b"\xa0\x00",
        "truncated.cbor": reg["none-es256"]["attestationObject"][:-5],
        "empty.cbor": b"",
    }
    for name, data in cases.items():
        write("cbor", name, data)

    # --- client_data: the vectors' clientDataJSON, browser-shaped ones, malformed ones ----------------------
    seen = set()
    for n in ("none-es256", "none-es256-crossOrigin", "none-es256-topOrigin", "packed-es512", "tpm-es256"):
        for kind, src in (("create", reg[n]), ("get", auth[n])):
            if src["clientDataJSON"] not in seen:
                seen.add(src["clientDataJSON"])
                write("client_data", f"{n}_{kind}.json", src["clientDataJSON"])
    chal = b64url(reg["none-es256"]["challenge"])
    chrome = ('{"type":"webauthn.get","challenge":"%s","origin":"https://example.org","crossOrigin":false,'
              '"other_keys_can_be_added_here":"do not compare clientDataJSON against a template. '
              'See https://goo.gl/yabPex"}' % chal)
    client_data = {
        "chrome_get.json": chrome,
        "chrome_create.json": '{"type":"webauthn.create","challenge":"%s","origin":"https://example.org",'
                              '"crossOrigin":false}' % chal,
        "chrome_iframe_top_origin.json": '{"type":"webauthn.get","challenge":"%s","origin":"https://example.org",'
                                         '"crossOrigin":true,"topOrigin":"https://example.com"}' % chal,
        "safari_no_cross_origin.json": '{"type":"webauthn.get","challenge":"%s","origin":"https://example.org"}' % chal,
        "android_apk_origin.json": '{"type":"webauthn.get","challenge":"%s","origin":"android:apk-key-hash:'
                                   'Pa6dBMd6Zyw3YjhHk8P1Oz-ZBvQxSG2CKjDFxQ4RAg8","androidPackageName":'
                                   '"org.example.app"}' % chal,
        "token_binding_member.json": '{"type":"webauthn.get","challenge":"%s","origin":"https://example.org",'
                                     '"tokenBinding":{"status":"supported"}}' % chal,
        "escaped_member_name.json": '{"\\u0074ype":"webauthn.get","challenge":"%s","origin":"https:\\/\\/example.org"}' % chal,
        "duplicate_type.json": '{"type":"webauthn.get","type":"webauthn.create","challenge":"%s",'
                               '"origin":"https://example.org"}' % chal,
        "challenge_padded.json": '{"type":"webauthn.get","challenge":"%s=","origin":"https://example.org"}' % chal[:-1],
        "challenge_std_alphabet.json": '{"type":"webauthn.get","challenge":"ab+/","origin":"https://example.org"}',
        "challenge_empty.json": '{"type":"webauthn.get","challenge":"","origin":"https://example.org"}',
        "cross_origin_string.json": '{"type":"webauthn.get","challenge":"%s","origin":"https://example.org",'
                                    '"crossOrigin":"false"}' % chal,
        "top_origin_empty.json": '{"type":"webauthn.get","challenge":"%s","origin":"https://example.org",'
                                 '"topOrigin":""}' % chal,
        "origin_missing.json": '{"type":"webauthn.get","challenge":"%s"}' % chal,
        "not_object.json": '["webauthn.get"]',
        "trailing_garbage.json": chrome + "x",
        "invalid_utf8.json": b'{"type":"webauthn.get","challenge":"AAAA","origin":"https://\xff.org"}',
        "empty.json": "",
    }
    for name, body in client_data.items():
        write("client_data", name, body)

    # --- encoded_result: toJSON() credentials and SDK envelopes, as JSON and as base64 of it -------------
    def reg_json(n, transports=("usb",), attachment="cross-platform"):
        r = reg[n]
        return {"id": b64url(r["credential_id"]), "rawId": b64url(r["credential_id"]), "type": "public-key",
                "authenticatorAttachment": attachment, "clientExtensionResults": {},
                "response": {"clientDataJSON": b64url(r["clientDataJSON"]),
                             "attestationObject": b64url(r["attestationObject"]),
                             "transports": list(transports)}}

    def auth_json(n, user_handle="dXNlci0x"):
        r, o = reg[n], auth[n]
        return {"id": b64url(r["credential_id"]), "rawId": b64url(r["credential_id"]), "type": "public-key",
                "authenticatorAttachment": "platform", "clientExtensionResults": {},
                "response": {"clientDataJSON": b64url(o["clientDataJSON"]),
                             "authenticatorData": b64url(o["authenticatorData"]),
                             "signature": b64url(o["signature"]), "userHandle": user_handle}}

    def envelope(cred, device=True):
        e = {"webauthnSessionId": "ws-3f2a9c", "publicKeyCredential": cred}
        if device:
            e["deviceInfo"] = {"publicKeyId": "pk-1", "os": "Android"}
        return e

    def js(o):
        return json.dumps(o, separators=(",", ":"))

    enc = {
        "tojson_register_none_es256.b64": b64(js(reg_json("none-es256")).encode()),
        "tojson_register_packed_rs256.b64url": b64url(js(reg_json("packed-rs256", ("internal", "hybrid"))).encode()),
        "tojson_authenticate_none_es256.b64": b64(js(auth_json("none-es256")).encode()),
        "tojson_authenticate_eddsa.b64url": b64url(js(auth_json("packed-eddsa", None)).encode()),
        "envelope_register_packed_es256.b64": b64(js(envelope(reg_json("packed-es256"))).encode()),
        "envelope_authenticate_none_es256.b64": b64(js(envelope(auth_json("none-es256"), device=False)).encode()),
        "envelope_no_session.b64": b64(js({"publicKeyCredential": auth_json("none-es256")}).encode()),
        "envelope_device_info_without_id.b64": b64(js({**envelope(auth_json("none-es256")),
                                                       "deviceInfo": {"os": "iOS"}}).encode()),
        "id_differs_from_raw_id.b64": b64(js({**auth_json("none-es256"), "id": "AAAA"}).encode()),
        "type_not_public_key.b64": b64(js({**auth_json("none-es256"), "type": "password"}).encode()),
        "not_base64.txt": "eyJpZCI6@@",
        "base64_of_array.b64": b64(b"[1,2,3]"),
        "json_raw_register_none_es256.json": js(reg_json("none-es256")),
        "json_raw_authenticate_none_es256.json": js(auth_json("none-es256")),
        "json_raw_authenticate_std_alphabet.json": js({**auth_json("none-es256"), "response": {
            **auth_json("none-es256")["response"], "signature": b64(auth["none-es256"]["signature"])}}),
        "json_raw_raw_id_only.json": js({k: v for k, v in auth_json("apple-es256").items() if k != "id"}),
        "json_raw_unknown_attachment.json": js(reg_json("none-es256", attachment="smartwatch")),
        "json_raw_nine_transports.json": js(reg_json("none-es256", transports=("usb",) * 9)),
        "json_raw_transport_not_string.json": js(reg_json("none-es256", transports=(1,))),
        "json_raw_no_response.json": js({k: v for k, v in auth_json("none-es256").items() if k != "response"}),
        "json_raw_client_data_null.json": js({**auth_json("none-es256"), "response": {"clientDataJSON": None}}),
        "json_raw_envelope.json": js(envelope(auth_json("none-es256"))),
        "empty.txt": "",
    }
    for name, body in enc.items():
        write("encoded_result", name, body)

    # --- pem: the vectors' attestation certificates (x5c) and trust root as PEM, and malformed bundles --------
    ca = bytes.fromhex(vectors["attestation_ca_cert"])
    certs = {}
    for n, o in att_objs.items():
        for i, c in enumerate(o["attStmt"].get("x5c", [])):
            certs[f"{n}_x5c{i}"] = c
    for name, der in sorted(certs.items()):
        write("pem", f"{name}.pem", pem_cert(der))
    chain = certs["packed-es256_x5c0"]
    write("pem", "attestation_ca.pem", pem_cert(ca))
    write("pem", "bundle_leaf_and_ca.pem", pem_cert(chain) + pem_cert(ca))
    write("pem", "bundle_with_comments.pem", "# trust anchors\nSubject: test\n" + pem_cert(ca) + "\ntrailer\n")
    write("pem", "crlf_line_endings.pem", pem_cert(ca).replace("\n", "\r\n"))
    write("pem", "one_long_line.pem", pem_cert(ca, width=10000))
    write("pem", "x509_certificate_label.pem", pem_cert(ca).replace("CERTIFICATE", "X509 CERTIFICATE"))
    write("pem", "trusted_certificate_label.pem", pem_cert(ca).replace("CERTIFICATE", "TRUSTED CERTIFICATE"))
    write("pem", "private_key_block_first.pem",
          "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" + pem_cert(ca))
    write("pem", "truncated_base64.pem", pem_cert(ca)[:200] + "\n-----END CERTIFICATE-----\n")
    write("pem", "no_end_line.pem", pem_cert(ca).replace("-----END CERTIFICATE-----\n", ""))
    write("pem", "second_block_malformed.pem", pem_cert(ca) + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    write("pem", "der_with_trailing_byte.pem", pem_cert(ca + b"\x00"))
    write("pem", "not_pem.pem", "hello")


def main():
    if not os.path.isfile(VECTORS):
        sys.exit(f"gen_corpus.py: WebAuthn spec vectors not found at {VECTORS} (set SIGIL_VECTORS_DIR)")
    with open(VECTORS) as f:
        vectors = json.load(f)
    # Rewrite every generated seed; keep crash-* regression inputs added by hand after a fix.
    if os.path.isdir(ROOT):
        for target in os.listdir(ROOT):
            if ONLY and target not in ONLY:
                continue
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

    webauthn_corpora(vectors)

    shutil.rmtree(tmp)
    for t in sorted(os.listdir(ROOT)):
        print(f"{t}: {len(os.listdir(os.path.join(ROOT, t)))} files")


if __name__ == "__main__":
    sys.exit(main())
