#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions are called indirectly (run_flow, traps)
# End-to-end tests for sigild: a real server on loopback, driven by curl, openssl, jq and node (jose).
#
# usage: bash tests/e2e/run.sh /path/to/sigild /path/to/sigil
#
# Prints one line per check ("ok - NAME" / "not ok - NAME: DETAILS") and finally "N passed, M failed"
# (always the last line). Exits 0 only when every check passed. The server log is printed when anything
# failed. Environment: E2E_KEEP=1 keeps the temp dirs; E2E_ONLY="A C" runs only those flows
# (A B C D1 ... D12).
set -euo pipefail

SIGILD=${1:?usage: run.sh SIGILD SIGIL}
SIGIL=${2-}
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$E2E_DIR/lib.sh"

SERVER_PID=""
DATA=""
PORT=""
BASE=""
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sigil-e2e-work.XXXXXX")
RESULTS=$WORK/results
: >"$RESULTS"

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "$SERVER_PID" ]; then wait "$SERVER_PID" 2>/dev/null || true; fi
  SERVER_PID=""
}

print_log() {
  if [ -n "$DATA" ] && [ -f "$DATA/sigild.log" ]; then
    echo "# ---- sigild log (last 300 lines of $DATA/sigild.log) ----"
    tail -n 300 "$DATA/sigild.log" | sed 's/^/# /'
    echo "# ---- end of sigild log ----"
  fi
}

SUMMARY_DONE=""
# finish STATUS: stop the server, print its log if anything failed, print the summary line (always the
# last line), exit 0 only if no check failed.
finish() {
  local passed failed
  stop_server
  passed=$(grep -c '^ok - ' "$RESULTS" 2>/dev/null) || passed=0
  failed=$(grep -c '^not ok - ' "$RESULTS" 2>/dev/null) || failed=0
  if [ "${1:-0}" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "not ok - harness: aborted with status $1"
    failed=1
  fi
  [ "$failed" -eq 0 ] || print_log
  SUMMARY_DONE=1
  echo "$passed passed, $failed failed"
  if [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; then exit 0; fi
  exit 1
}

remove_dirs() {
  if [ "${E2E_KEEP:-0}" = 1 ]; then
    echo "# kept: data dir $DATA, work dir $WORK" >&2
  else
    if [ -n "$DATA" ]; then rm -rf "$DATA"; fi
    rm -rf "$WORK"
  fi
}

on_exit() {
  local rc=$?
  set +e
  trap - EXIT
  if [ -z "$SUMMARY_DONE" ]; then (finish "$rc"); rc=$?; fi
  stop_server
  remove_dirs
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
  fail "setup" "$*" || true
  finish 1
}

# ---------------------------------------------------------------------------------------------------------
# Setup

for tool in curl jq openssl node base64 od; do
  command -v "$tool" >/dev/null 2>&1 || die "required tool '$tool' not found"
done
[ -x "$SIGILD" ] || die "sigild '$SIGILD' is not executable"
[ -z "$SIGIL" ] || [ -x "$SIGIL" ] || note "sigil CLI '$SIGIL' is not executable (not used by these tests)"

if [ ! -d "$E2E_DIR/node_modules/jose" ]; then
  note "installing node modules in $E2E_DIR"
  (cd "$E2E_DIR" && npm ci --no-audit --no-fund >"$WORK/npm.log" 2>&1) ||
    die "npm ci failed: $(tail -n 20 "$WORK/npm.log")"
fi

pick_port() {
  local p
  if p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null) &&
    [ -n "$p" ]; then
    echo "$p"
    return 0
  fi
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# start_server: sigild on a free port with a fresh data dir; waits for GET /healthz -> 200.
# Returns 1 if the process exited (e.g. it lost a race for the port), 2 on timeout.
start_server() {
  PORT=$(pick_port) || die "no free port found"
  BASE="http://127.0.0.1:$PORT"
  DATA=$(mktemp -d "${TMPDIR:-/tmp}/sigil-e2e-data.XXXXXX")
  "$SIGILD" --listen "127.0.0.1:$PORT" --data-dir "$DATA" >"$DATA/sigild.log" 2>&1 </dev/null &
  SERVER_PID=$!
  local deadline=$((SECONDS + 20)) code
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null || true
      SERVER_PID=""
      return 1
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/healthz" 2>/dev/null) || true
    if [ "$code" = 200 ]; then return 0; fi
    sleep 0.1
  done
  return 2
}

started=""
for attempt in 1 2 3; do
  rc=0
  start_server || rc=$?
  if [ "$rc" -eq 0 ]; then
    started=1
    break
  fi
  [ "$rc" -eq 2 ] && die "sigild did not answer GET /healthz with 200 within 20 s (port $PORT)"
  note "sigild exited during start (attempt $attempt, port $PORT); log: $(trunc "$(cat "$DATA/sigild.log")")"
  if [ "$attempt" -lt 3 ]; then rm -rf "$DATA"; fi
done
[ -n "$started" ] || die "sigild did not start (3 attempts); see log below"
note "sigild pid $SERVER_PID listening on $BASE, data dir $DATA"

http GET /healthz
check_resp "GET /healthz" 200 '.status == "ok"' || true

for _ in $(seq 1 50); do
  [ -s "$DATA/demo-app.json" ] && break
  sleep 0.1
done
[ -s "$DATA/demo-app.json" ] || die "$DATA/demo-app.json not written"
DEMO=$(cat "$DATA/demo-app.json")
CLIENT_ID=$(jget .client_id "$DEMO")
CLIENT_SECRET=$(jget .client_secret "$DEMO")
REDIRECT_URI=$(jget '.redirect_uris[0]' "$DEMO")
ISSUER=$(jget .issuer "$DEMO")
if [ -z "$CLIENT_ID" ] || [ -z "$CLIENT_SECRET" ] || [ -z "$REDIRECT_URI" ] || [ -z "$ISSUER" ]; then
  die "demo-app.json lacks client_id/client_secret/redirect_uris/issuer: $DEMO"
fi
check_json "demo-app.json has the documented fields" "$DEMO" \
  "(.tenant_id|type)==\"string\" and (.app_id|type)==\"string\" and .rp_id==\"localhost\" and (.origins|type)==\"array\" and .issuer==\"http://localhost:$PORT\" and .base_url==\"$BASE\" and .redirect_uris[0]==\"http://localhost:$PORT/demo/callback\"" ||
  true

get_client_token || die "cannot get a client token"
check_json "client token: typ at+jwt" "$(jwt_header "$CLIENT_TOKEN")" '.typ == "at+jwt"' || true
verify_token "client token verifies (iss, aud userid-api)" "$CLIENT_TOKEN" userid-api at+jwt || true
check_json "client token: sub = client_id, no sid" "$VERIFIED" \
  ".sub == \"$CLIENT_ID\" and (has(\"sid\") | not) and .client_id == \"$CLIENT_ID\"" || true
token_req grant_type=client_credentials "client_id=$CLIENT_ID" "client_secret=$CLIENT_SECRET"
check_resp "client_credentials response: expires_in 3600, scope, no refresh token" 200 \
  '.expires_in == 3600 and (.scope|type)=="string" and (has("refresh_token") | not)' || true
token_req grant_type=client_credentials "client_id=$CLIENT_ID" "client_secret=wrong-$CLIENT_SECRET"
check_resp "token endpoint: wrong client_secret -> 401 invalid_client" 401 '.error == "invalid_client"' || true
http POST /cis/oidc/token --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$CLIENT_ID" \
  --data-urlencode "client_secret=$CLIENT_SECRET"
check_resp "token endpoint also at /cis/oidc/token" 200 '(.access_token|type)=="string"' || true

# ---------------------------------------------------------------------------------------------------------
# Flows. Each runs in a subshell with set -e: the first failed step that is not marked `|| true` stops that
# flow only (reported as one more "not ok" line); later flows still run.

run_flow() {
  local id=$1 title=$2 rc
  shift 2
  if [ -n "${E2E_ONLY:-}" ] && [[ " $E2E_ONLY " != *" $id "* ]]; then return 0; fi
  echo "# --- $id: $title"
  set +e
  (
    set -e
    "$@"
  )
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    fail "$id: $title" "flow stopped after the failed step above (remaining steps of $id not run)" || true
  fi
}

# full_flow LABEL KEYTYPE: OTP login, register key, biometric login, jose verification, refresh, logout.
full_flow() {
  local L=$1 type=$2 email key kid at1 idt1 rt1 sid1 at2 idt2 rt2
  email=$(unique_id "e2e-$type")@example.com
  key=$WORK/$L.pem
  kid=$(unique_id "$L-$type-key")
  gen_key "$type" "$key"

  otp_login "$L" "$email"
  verify_token "$L: OTP-flow access token verifies" "$USER_AT" userid-api at+jwt
  check_json "$L: OTP-flow access token has sid" "$VERIFIED" '(.sid|type)=="string"' || true
  verify_token "$L: OTP-flow ID token verifies (aud = client_id)" "$USER_IDT" "$CLIENT_ID" JWT
  check_json "$L: OTP-flow ID token: sub, amr eotp" "$VERIFIED" \
    ".sub == \"$USER_ID\" and (.amr | index(\"eotp\") != null)" || true

  register_key "$L: register $type key" "$USER_AT" "$key" "$kid" "$type"

  bio_login "$L: biometric login ($type)" "$USER_ID" "$kid" "$key"
  at1=$BIO_AT idt1=$BIO_IDT rt1=$BIO_RT sid1=$BIO_SID
  verify_token "$L: biometric access token verifies (aud userid-api)" "$at1" userid-api at+jwt
  check_json "$L: biometric access token: sub = user, sid = session_id" "$VERIFIED" \
    ".sub == \"$USER_ID\" and .sid == \"$sid1\"" || true
  verify_token "$L: biometric ID token verifies (aud client_id)" "$idt1" "$CLIENT_ID" JWT
  check_json "$L: biometric ID token: sub, amr mobile_biometrics, no approval_data" "$VERIFIED" \
    ".sub == \"$USER_ID\" and (.amr | index(\"mobile_biometrics\") != null) and (has(\"approval_data\") | not)" ||
    true

  refresh "$rt1"
  check_resp "$L: refresh" 200 \
    '(.access_token|type)=="string" and (.id_token|type)=="string" and (.refresh_token|type)=="string" and .token_type=="Bearer"'
  at2=$(jget .access_token) idt2=$(jget .id_token) rt2=$(jget .refresh_token)
  check_ne "$L: refresh rotates the refresh token" "$rt2" "$rt1" || true
  verify_token "$L: refreshed access token verifies" "$at2" userid-api at+jwt
  check_json "$L: refreshed access token: same user and session" "$VERIFIED" \
    ".sub == \"$USER_ID\" and .sid == \"$sid1\"" || true
  verify_token "$L: refreshed ID token verifies" "$idt2" "$CLIENT_ID" JWT
  check_json "$L: refreshed ID token: same user" "$VERIFIED" ".sub == \"$USER_ID\"" || true

  api POST /cis/v1/auth/logout "$at2"
  check_resp "$L: logout" 200 '.sessions_count == 1'
  api POST /cis/v1/auth/logout "$at2"
  check_resp "$L: logged-out access token refused on logout" 401 "$ERR_INVALID_TOKEN" || true
  expect_token_refused "$L: logged-out access token refused on register" "$at2" || true
  expect_token_refused "$L: earlier access token of the session refused" "$at1" || true
  refresh "$rt2"
  check_resp "$L: refresh token refused after logout" 400 "$ERR_INVALID_GRANT" || true

  # The key stays registered: a new login works after logout.
  bio_login "$L: biometric login again after logout" "$USER_ID" "$kid" "$key"
}

flow_a() { full_flow A ec; }
flow_b() { full_flow B rsa; }

# setup_user LABEL [TYPE]: a user logged in by email OTP with one registered key.
# Sets U_EMAIL U_ID U_AT U_KEY U_KID.
setup_user() {
  local L=$1 type=${2:-ec}
  U_EMAIL=$(unique_id "e2e-$L")@example.com
  otp_login "$L: setup" "$U_EMAIL"
  U_ID=$USER_ID U_AT=$USER_AT
  U_KEY=$WORK/$L-$RANDOM.pem
  U_KID=$(unique_id "$L-key")
  gen_key "$type" "$U_KEY"
  register_key "$L: setup: register key" "$U_AT" "$U_KEY" "$U_KID" "$type"
}

start_body() { jq -nc --arg u "$1" '{user_id:$u}'; }

flow_c() {
  local L=C approval='{"amount":"100","payee":"bob"}'
  setup_user C ec
  bio_start "$L: start by identifier (email) with approval_data" \
    "$(jq -nc --arg e "$U_EMAIL" --argjson a "$approval" '{identifier:$e, identifier_type:"email", approval_data:$a}')"
  bio_authenticate "$U_ID" "$U_KID" "$CHALLENGE" "$(sign_b64 "$U_KEY" "$CHALLENGE")"
  check_resp "$L: authenticate approval challenge" 200 "$BIO_TOKENS_OK"
  verify_token "$L: ID token verifies" "$(jget .id_token)" "$CLIENT_ID" JWT
  check_eq "$L: ID token approval_data equals the given object" \
    "$(jq -cS '.approval_data' <<<"$VERIFIED")" "$(jq -cS . <<<"$approval")"
  check_json "$L: ID token: sub, amr mobile_biometrics" "$VERIFIED" \
    ".sub == \"$U_ID\" and (.amr | index(\"mobile_biometrics\") != null)" || true
  # Through the /v1 aliases, without approval_data: no approval_data claim.
  api POST /v1/auth/mobile-biometrics/start "$CLIENT_TOKEN" "$(start_body "$U_ID")"
  check_resp "$L: start via /v1 alias" 200 '(.challenge|type)=="string"'
  CHALLENGE=$(jget .challenge)
  api POST /v1/auth/mobile-biometrics/authenticate "$CLIENT_TOKEN" \
    "$(jq -nc --arg u "$U_ID" --arg k "$U_KID" --arg c "$CHALLENGE" --arg s "$(sign_b64 "$U_KEY" "$CHALLENGE")" \
      '{user_id:$u, key_id:$k, challenge:$c, signature:$s}')"
  check_resp "$L: authenticate via /v1 alias" 200 "$BIO_TOKENS_OK"
  check_json "$L: plain login has no approval_data" "$(jwt_payload "$(jget .id_token)")" \
    '(has("approval_data") | not)' || true
}

# D1: replayed challenge.
flow_d1() {
  local L=D1 sig
  setup_user D1 ec
  bio_start "$L: start" "$(start_body "$U_ID")"
  sig=$(sign_b64 "$U_KEY" "$CHALLENGE")
  bio_authenticate "$U_ID" "$U_KID" "$CHALLENGE" "$sig"
  check_resp "$L: first authenticate" 200 "$BIO_TOKENS_OK"
  bio_authenticate "$U_ID" "$U_KID" "$CHALLENGE" "$sig"
  check_resp "$L: replayed challenge+signature -> 401 auth_invalid_signature" 401 "$ERR_BAD_SIGNATURE" || true
  bio_login "$L: normal login afterwards" "$U_ID" "$U_KID" "$U_KEY"
}

# D2: signature by an unregistered key, key_id of the registered one.
flow_d2() {
  local L=D2 other=$WORK/D2-other.pem
  setup_user D2 ec
  gen_key ec "$other"
  bio_start "$L: start" "$(start_body "$U_ID")"
  bio_authenticate "$U_ID" "$U_KID" "$CHALLENGE" "$(sign_b64 "$other" "$CHALLENGE")"
  check_resp "$L: signature by another key -> 401 auth_invalid_signature" 401 "$ERR_BAD_SIGNATURE" || true
  bio_login "$L: normal login afterwards" "$U_ID" "$U_KID" "$U_KEY"
}

# D3: user B's user_id with user A's key_id and A's valid signature over a challenge started for B.
flow_d3() {
  local L=D3 a_id a_kid a_key
  setup_user D3a ec
  a_id=$U_ID a_kid=$U_KID a_key=$U_KEY
  setup_user D3b ec
  bio_start "$L: start for user B" "$(start_body "$U_ID")"
  bio_authenticate "$U_ID" "$a_kid" "$CHALLENGE" "$(sign_b64 "$a_key" "$CHALLENGE")"
  check_resp "$L: key of another user -> 401 auth_invalid_signature" 401 "$ERR_BAD_SIGNATURE" || true
  bio_login "$L: normal login for user B afterwards" "$U_ID" "$U_KID" "$U_KEY"
  bio_login "$L: normal login for user A afterwards" "$a_id" "$a_kid" "$a_key"
}

# D4: deleted key. Two keys: delete the second, authenticate with it -> 401; then delete the last key and
# start -> 404 auth_no_registered_authenticator.
flow_d4() {
  local L=D4 key2=$WORK/D4-key2.pem kid2
  setup_user D4 ec
  kid2=$(unique_id D4-key2)
  gen_key ec "$key2"
  register_key "$L: register second key" "$U_AT" "$key2" "$kid2" ec
  bio_login "$L: login with second key" "$U_ID" "$kid2" "$key2"
  delete_key "$L: delete second key" "$U_AT" "$kid2"
  bio_start "$L: start (first key still registered)" "$(start_body "$U_ID")"
  bio_authenticate "$U_ID" "$kid2" "$CHALLENGE" "$(sign_b64 "$key2" "$CHALLENGE")"
  check_resp "$L: authenticate with deleted key -> 401 auth_invalid_signature" 401 "$ERR_BAD_SIGNATURE" || true
  bio_login "$L: normal login with first key afterwards" "$U_ID" "$U_KID" "$U_KEY"
  api DELETE /cis/v1/auth/mobile-biometrics/delete "$U_AT" "$(jq -nc --arg i "$kid2" '{publicKeyId:$i}')"
  check_resp "$L: delete already-deleted key -> 404 Key not found" 404 \
    '.message == "Key not found" and .error_code == 404' || true
  api DELETE /cis/v1/auth/mobile-biometrics/delete "$U_AT" '{"publicKeyId":"no-such-key-e2e"}'
  check_resp "$L: delete unknown key -> 404 Key not found" 404 \
    '.message == "Key not found" and .error_code == 404' || true
  delete_key "$L: delete last key" "$U_AT" "$U_KID"
  api POST /cis/v1/auth/mobile-biometrics/start "$CLIENT_TOKEN" "$(start_body "$U_ID")"
  check_resp "$L: start without keys -> 404 auth_no_registered_authenticator" 404 \
    '.error_code == 404 and .ts_error_code == "auth_no_registered_authenticator"' || true
  # Normal requests afterwards: register a new key and log in with it.
  local key3=$WORK/D4-key3.pem kid3
  kid3=$(unique_id D4-key3)
  gen_key ec "$key3"
  register_key "$L: register a key again" "$U_AT" "$key3" "$kid3" ec
  bio_login "$L: login with the new key" "$U_ID" "$kid3" "$key3"
}

# Register-side negatives: each is followed by a valid register + delete for the same user.
# register_ok_roundtrip LABEL: registers a fresh EC key with U_AT and deletes it again.
register_ok_roundtrip() {
  local key=$WORK/rt-$RANDOM.pem kid
  kid=$(unique_id rt-key)
  gen_key ec "$key"
  register_key "$1: valid register afterwards" "$U_AT" "$key" "$kid" ec
  delete_key "$1: delete that key" "$U_AT" "$kid"
}

# register_raw PUBLICKEY TYPE: register with a given publicKey string for U_AT (no check).
register_raw() {
  api POST /cis/v1/auth/mobile-biometrics/register "$U_AT" \
    "$(jq -nc --arg k "$1" --arg i "$(unique_id bad-key)" --arg t "$2" \
      '{publicKey:$k, publicKeyId:$i, encryptionType:$t, os:"Android"}')"
}

ERR_KEY_ENCODING='.error_code == 400 and .ts_error_code == "auth_invalid_key_encoding"'
ERR_KEY_ENC_OR_TYPE='.error_code == 400 and (.ts_error_code == "auth_invalid_key_encoding" or .ts_error_code == "auth_invalid_key_type")'

# D5: malformed base64 public key.
flow_d5() {
  local L=D5
  setup_user D5 ec
  register_raw '!!not*base64@@' ec
  check_resp "$L: malformed base64 publicKey -> 400 auth_invalid_key_encoding" 400 "$ERR_KEY_ENCODING" || true
  register_ok_roundtrip "$L"
}

# D6: truncated SPKI DER (EC and RSA).
flow_d6() {
  local L=D6 key=$WORK/D6.pem rkey=$WORK/D6r.pem
  setup_user D6 ec
  gen_key ec "$key"
  spki_der_file "$key" "$WORK/D6.der"
  register_raw "$(head -c 40 "$WORK/D6.der" | base64 -w0)" ec
  check_resp "$L: truncated EC DER (40 of 91 bytes) -> 400 auth_invalid_key_encoding" 400 "$ERR_KEY_ENCODING" || true
  gen_key rsa "$rkey"
  spki_der_file "$rkey" "$WORK/D6r.der"
  register_raw "$(head -c 200 "$WORK/D6r.der" | base64 -w0)" rsa
  check_resp "$L: truncated RSA DER (200 bytes) -> 400 auth_invalid_key_encoding" 400 "$ERR_KEY_ENCODING" || true
  register_ok_roundtrip "$L"
}

# D7: off-curve EC point, raw (04||X||Y') and wrapped in SPKI.
flow_d7() {
  local L=D7 key=$WORK/D7.pem last
  setup_user D7 ec
  gen_key ec "$key"
  spki_der_file "$key" "$WORK/D7.der"
  tail -c 65 "$WORK/D7.der" >"$WORK/D7.point"
  head -c 64 "$WORK/D7.point" >"$WORK/D7.bad"
  last=$(tail -c 1 "$WORK/D7.point" | od -An -tu1 | tr -d ' \n')
  # shellcheck disable=SC2059 # the format is the escaped byte
  printf "\\x$(printf '%02x' $((last ^ 1)))" >>"$WORK/D7.bad"
  check_eq "$L: altered point is 65 bytes starting with 04" \
    "$(wc -c <"$WORK/D7.bad" | tr -d ' ')/$(head -c 1 "$WORK/D7.bad" | od -An -tx1 | tr -d ' \n')" "65/04" || true
  register_raw "$(base64 -w0 "$WORK/D7.bad")" ec
  check_resp "$L: off-curve raw point -> 400 key encoding/type error" 400 "$ERR_KEY_ENC_OR_TYPE" || true
  { head -c 26 "$WORK/D7.der"; cat "$WORK/D7.bad"; } >"$WORK/D7.badspki"
  register_raw "$(base64 -w0 "$WORK/D7.badspki")" ec
  check_resp "$L: off-curve point in SPKI -> 400 key encoding/type error" 400 "$ERR_KEY_ENC_OR_TYPE" || true
  register_ok_roundtrip "$L"
}

# D8: body over 64 KiB.
flow_d8() {
  local L=D8 pad
  setup_user D8 ec
  pad=$(head -c 70000 /dev/zero | tr '\0' 'A')
  printf '{"publicKey":"%s","publicKeyId":"too-big","encryptionType":"ec","os":"Android","user_id":"x"}' "$pad" \
    >"$WORK/D8.json"
  check_eq "$L: generated body is over 64 KiB" "$(($(wc -c <"$WORK/D8.json") > 65536))" 1 || true
  api_file POST /cis/v1/auth/mobile-biometrics/register "$U_AT" "$WORK/D8.json"
  check_resp "$L: 70000-byte body on register -> 413" 413 \
    '.message == "Request body too large" and .error_code == 413' || true
  register_ok_roundtrip "$L"
  api_file POST /cis/v1/auth/mobile-biometrics/start "$CLIENT_TOKEN" "$WORK/D8.json"
  check_resp "$L: 70000-byte body on start -> 413" 413 \
    '.message == "Request body too large" and .error_code == 413' || true
  bio_login "$L: normal login afterwards" "$U_ID" "$U_KID" "$U_KEY"
}

# D9: wrong token kinds and bad bearer tokens.
flow_d9() {
  local L=D9 key=$WORK/D9.pem kid body t sig
  setup_user D9 ec
  gen_key ec "$key"
  kid=$(unique_id D9-key)
  api POST /cis/v1/auth/mobile-biometrics/register "$CLIENT_TOKEN" \
    "$(jq -nc --arg k "$(spki_b64 "$key")" --arg i "$kid" '{publicKey:$k, publicKeyId:$i, encryptionType:"ec", os:"Android"}')"
  check_resp "$L: client token on register -> 403" 403 "$ERR_FORBIDDEN" || true
  register_key "$L: same register with the user token afterwards" "$U_AT" "$key" "$kid" ec
  api DELETE /cis/v1/auth/mobile-biometrics/delete "$CLIENT_TOKEN" "$(jq -nc --arg i "$kid" '{publicKeyId:$i}')"
  check_resp "$L: client token on delete -> 403" 403 "$ERR_FORBIDDEN" || true
  delete_key "$L: same delete with the user token afterwards" "$U_AT" "$kid"
  api POST /cis/v1/auth/logout "$CLIENT_TOKEN"
  check_resp "$L: client token on logout -> 403" 403 "$ERR_FORBIDDEN" || true

  api POST /cis/v1/auth/mobile-biometrics/start "$U_AT" "$(start_body "$U_ID")"
  check_resp "$L: user token on start -> 403" 403 "$ERR_FORBIDDEN" || true
  bio_start "$L: same start with the client token afterwards" "$(start_body "$U_ID")"
  bio_authenticate "$U_ID" "$U_KID" "$CHALLENGE" "$(sign_b64 "$U_KEY" "$CHALLENGE")"
  check_resp "$L: authenticate with the client token" 200 "$BIO_TOKENS_OK"
  body=$HTTP_BODY
  bio_start "$L: start (for the user-token-on-authenticate check)" "$(start_body "$U_ID")"
  api POST /cis/v1/auth/mobile-biometrics/authenticate "$(jget .access_token "$body")" \
    "$(jq -nc --arg u "$U_ID" --arg k "$U_KID" --arg c "$CHALLENGE" --arg s "$(sign_b64 "$U_KEY" "$CHALLENGE")" \
      '{user_id:$u, key_id:$k, challenge:$c, signature:$s}')"
  check_resp "$L: user token on authenticate -> 403" 403 "$ERR_FORBIDDEN" || true

  api POST /cis/v1/auth/mobile-biometrics/start "" "$(start_body "$U_ID")"
  check_resp "$L: start without Authorization -> 401 Invalid token" 401 "$ERR_INVALID_TOKEN" || true
  api POST /cis/v1/auth/mobile-biometrics/start "not.a.jwt" "$(start_body "$U_ID")"
  check_resp "$L: start with garbage bearer -> 401 Invalid token" 401 "$ERR_INVALID_TOKEN" || true
  t=$CLIENT_TOKEN
  sig=${t##*.}
  if [ "${sig:0:1}" = A ]; then sig="B${sig:1}"; else sig="A${sig:1}"; fi
  api POST /cis/v1/auth/mobile-biometrics/start "${t%.*}.$sig" "$(start_body "$U_ID")"
  check_resp "$L: start with tampered token signature -> 401 Invalid token" 401 "$ERR_INVALID_TOKEN" || true
  bio_login "$L: normal login afterwards" "$U_ID" "$U_KID" "$U_KEY"
}

# D10: malformed base64 signature.
flow_d10() {
  local L=D10
  setup_user D10 ec
  bio_start "$L: start" "$(start_body "$U_ID")"
  bio_authenticate "$U_ID" "$U_KID" "$CHALLENGE" '%%%not base64!!!'
  check_resp "$L: malformed base64 signature -> 401 auth_invalid_signature / 400 system_invalid_input" "400|401" \
    '(.error_code == 401 and .ts_error_code == "auth_invalid_signature") or (.error_code == 400 and .ts_error_code == "system_invalid_input")' ||
    true
  bio_login "$L: normal login afterwards" "$U_ID" "$U_KID" "$U_KEY"
}

# D11: reuse of a rotated refresh token revokes the family and the session.
flow_d11() {
  local L=D11 at1 rt1 at2 rt2
  setup_user D11 rsa
  bio_login "$L: login" "$U_ID" "$U_KID" "$U_KEY"
  at1=$BIO_AT rt1=$BIO_RT
  refresh "$rt1"
  check_resp "$L: first refresh" 200 '(.access_token|type)=="string" and (.refresh_token|type)=="string"'
  at2=$(jget .access_token) rt2=$(jget .refresh_token)
  refresh "$rt1"
  check_resp "$L: reused (rotated) refresh token -> 400 invalid_grant" 400 "$ERR_INVALID_GRANT" || true
  refresh "$rt2"
  check_resp "$L: newest refresh token of the family -> 400 invalid_grant" 400 "$ERR_INVALID_GRANT" || true
  expect_token_refused "$L: session's newest access token -> 401" "$at2" || true
  expect_token_refused "$L: session's first access token -> 401" "$at1" || true
  api POST /cis/v1/auth/logout "$at2"
  check_resp "$L: logout with the revoked session's token -> 401" 401 "$ERR_INVALID_TOKEN" || true
  # Another session of the same user (the OTP login) is unaffected.
  api POST /cis/v1/auth/logout "$U_AT"
  check_resp "$L: the user's other session still works (logout 200)" 200 '.sessions_count == 1' || true
  bio_login "$L: new login afterwards" "$U_ID" "$U_KID" "$U_KEY"
  refresh "$BIO_RT"
  check_resp "$L: refresh in the new session works" 200 '(.access_token|type)=="string"' || true
}

# D12: wrong OTP, then the authorization code is single use.
flow_d12() {
  local L=D12 email otp code
  email=$(unique_id e2e-D12)@example.com
  api POST /cis/v1/auth/otp/email "$CLIENT_TOKEN" \
    "$(jq -nc --arg e "$email" --arg r "$REDIRECT_URI" '{email:$e, redirect_uri:$r, create_new_user:true}')"
  check_resp "$L: send email OTP" 200
  otp=$(outbox_otp "$email")
  check_nonempty "$L: OTP in outbox" "$otp"
  api POST /cis/v1/auth/otp/email/validation "$CLIENT_TOKEN" "$(jq -nc --arg e "$email" '{email:$e, passcode:"0000000"}')"
  check_resp "$L: wrong passcode -> 400" 400 '.error_code == 400' || true
  api POST /cis/v1/auth/otp/email/validation "$CLIENT_TOKEN" \
    "$(jq -nc --arg e "$email" --arg p "$otp" '{email:$e, passcode:$p}')"
  check_resp "$L: correct passcode afterwards" 200 '(.result|type)=="string"'
  http GET "$(jget .result)"
  check_resp "$L: result redirects" "302|303"
  code=$(query_param "$HTTP_LOCATION" code)
  token_req grant_type=authorization_code "code=$code" "redirect_uri=$REDIRECT_URI" "client_id=$CLIENT_ID" \
    "client_secret=$CLIENT_SECRET"
  check_resp "$L: code exchange" 200 '(.access_token|type)=="string"'
  token_req grant_type=authorization_code "code=$code" "redirect_uri=$REDIRECT_URI" "client_id=$CLIENT_ID" \
    "client_secret=$CLIENT_SECRET"
  check_resp "$L: second use of the code -> 400 invalid_grant" 400 "$ERR_INVALID_GRANT" || true
}

run_flow A "EC P-256 full flow" flow_a
run_flow B "RSA-2048 full flow" flow_b
run_flow C "approval_data" flow_c
run_flow D1 "replayed challenge" flow_d1
run_flow D2 "signature by another key" flow_d2
run_flow D3 "key of another user" flow_d3
run_flow D4 "deleted key" flow_d4
run_flow D5 "malformed base64 public key" flow_d5
run_flow D6 "truncated DER public key" flow_d6
run_flow D7 "off-curve EC point" flow_d7
run_flow D8 "body over 64 KiB" flow_d8
run_flow D9 "wrong token kinds" flow_d9
run_flow D10 "malformed base64 signature" flow_d10
run_flow D11 "refresh token reuse" flow_d11
run_flow D12 "authorization code reuse" flow_d12

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  fail "sigild still running at the end" "the server process exited during the tests" || true
fi

finish 0
