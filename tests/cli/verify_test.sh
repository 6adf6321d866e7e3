#!/usr/bin/env bash
# `sigil verify` against the WebAuthn Level 3 specification's test vectors (API.md 3.1: they must all verify).
#
#   verify_test.sh <path to sigil> [vectors dir]     (vectors dir defaults to $SIGIL_VECTORS_DIR)
#
# python3 turns each vector into JSON lines (hex -> base64url, toJSON()-shaped credentials); they are piped
# through `sigil verify` in two passes: registrations first, then authentications that use the public key,
# alg and sign count the registration pass printed. Expected: every registration and authentication ok
# (crossOrigin/topOrigin vectors with top_origins ["https://example.com"]); failures for those two without
# top_origins, for a flipped signature byte, for a wrong challenge and for a garbage line.
set -euo pipefail

SIGIL="${1:?usage: verify_test.sh <sigil> [vectors dir]}"
VECTORS_DIR="${2:-${SIGIL_VECTORS_DIR:-}}"
VECTORS="${VECTORS_DIR%/}/webauthn-spec/webauthn-l3-test-vectors.json"
[[ -x "$SIGIL" ]] || { echo "not executable: $SIGIL" >&2; exit 2; }
[[ -f "$VECTORS" ]] || { echo "no vectors at '$VECTORS' (give the dir or set SIGIL_VECTORS_DIR)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is required (tools/setup-deps installs it)" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sigil-verify-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# lines.py MODE: "create" writes create lines and their expectations; "get" reads the create pass's output
# and writes get lines and expectations; "check" compares outputs with expectations.
cat >"$WORK/lines.py" <<'PY'
import base64, json, sys

mode, work, vectors_path = sys.argv[1], sys.argv[2], sys.argv[3]
doc = json.load(open(vectors_path))

def b64url(hex_text):
    return base64.urlsafe_b64encode(bytes.fromhex(hex_text)).rstrip(b"=").decode()

def cross(name):
    return "crossOrigin" in name or "topOrigin" in name

def base(challenge_hex, top):
    line = {"rp_id": doc["rp_id"], "origins": [doc["origin"]], "challenge": b64url(challenge_hex)}
    if top:
        line["top_origins"] = [doc["top_origin"]]
    return line

def create(v, top, challenge_hex=None):
    r = v["registration"]
    line = base(challenge_hex or r["challenge"], top)
    line["ceremony"] = "create"
    line["credential"] = {
        "id": b64url(r["credential_id"]), "rawId": b64url(r["credential_id"]), "type": "public-key",
        "response": {"clientDataJSON": b64url(r["clientDataJSON"]),
                     "attestationObject": b64url(r["attestationObject"])}}
    return line

def get(v, created, top, signature_hex=None, challenge_hex=None):
    r, a = v["registration"], v["authentication"]
    line = base(challenge_hex or a["challenge"], top)
    line.update(ceremony="get", public_key=created["public_key"], alg=created["alg"],
                sign_count=created["sign_count"])
    line["credential"] = {
        "id": b64url(r["credential_id"]), "rawId": b64url(r["credential_id"]), "type": "public-key",
        "response": {"clientDataJSON": b64url(a["clientDataJSON"]),
                     "authenticatorData": b64url(a["authenticatorData"]),
                     "signature": b64url(signature_hex or a["signature"])}}
    return line

def write(name, lines):
    with open(f"{work}/{name}.jsonl", "w") as out, open(f"{work}/{name}.expect", "w") as exp:
        for label, ok, line in lines:
            out.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
            exp.write(f"{'ok' if ok else 'fail'} {label}\n")

if mode == "create":
    lines = []
    for v in doc["vectors"]:
        n = v["name"]
        lines.append((f"{n} create", True, create(v, cross(n))))
        if cross(n):
            lines.append((f"{n} create without top_origins", False, create(v, False)))
        lines.append((f"{n} create with the authentication challenge", False,
                      create(v, cross(n), v["authentication"]["challenge"])))
    lines.append(("garbage line", False, "{not json"))
    write("create", lines)
elif mode == "get":
    outputs = [json.loads(l) for l in open(f"{work}/create.out")]
    labels = [l.split(" ", 1)[1].strip() for l in open(f"{work}/create.expect")]
    created = {label[:-len(" create")]: out for label, out in zip(labels, outputs) if label.endswith(" create")}
    lines = []
    for v in doc["vectors"]:
        n = v["name"]
        c = created.get(n)
        if not c or not c.get("ok"):
            continue  # its create line already counts as a failure
        lines.append((f"{n} get", True, get(v, c, cross(n))))
        if cross(n):
            lines.append((f"{n} get without top_origins", False, get(v, c, False)))
        sig = bytearray.fromhex(v["authentication"]["signature"])
        sig[-3] ^= 0x01
        lines.append((f"{n} get with a flipped signature byte", False, get(v, c, cross(n), sig.hex())))
        lines.append((f"{n} get with the registration challenge", False,
                      get(v, c, cross(n), challenge_hex=v["registration"]["challenge"])))
    write("get", lines)
elif mode == "check":
    passed = failed = 0
    for name in ("create", "get"):
        outputs = [l for l in open(f"{work}/{name}.out")]
        expects = [l.rstrip("\n") for l in open(f"{work}/{name}.expect")]
        if len(outputs) != len(expects):
            print(f"FAIL {name}: {len(expects)} lines in, {len(outputs)} lines out")
            failed += 1
        for exp, out in zip(expects, outputs):
            want_ok, label = exp.split(" ", 1)
            try:
                got = json.loads(out)
            except ValueError:
                got = {"ok": None, "error": "output is not JSON: " + out.strip()}
            if got.get("ok") is (want_ok == "ok"):
                passed += 1
                print(f"ok   {label}")
            else:
                failed += 1
                print(f"FAIL {label}: expected {want_ok}, got {json.dumps(got)}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
PY

python3 "$WORK/lines.py" create "$WORK" "$VECTORS"
"$SIGIL" verify <"$WORK/create.jsonl" >"$WORK/create.out"
python3 "$WORK/lines.py" get "$WORK" "$VECTORS"
"$SIGIL" verify <"$WORK/get.jsonl" >"$WORK/get.out"
python3 "$WORK/lines.py" check "$WORK" "$VECTORS"
