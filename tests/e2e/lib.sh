# shellcheck shell=bash
# shellcheck disable=SC2034 # globals set here are read by run.sh
# Helpers for the sigild end-to-end tests (sourced by run.sh).
#
# Globals expected from the caller: BASE (http://127.0.0.1:PORT), PORT, WORK (scratch dir), RESULTS
# (file collecting one line per check), DATA (sigild data dir), E2E_DIR (this directory), ISSUER.
#
# Conventions:
# - `http`/`api` never fail; they set HTTP_STATUS, HTTP_BODY, HTTP_LOCATION, HTTP_ERR. Call them
#   directly (not inside $(...)), so the globals survive.
# - check helpers print "ok - NAME" or "not ok - NAME: DETAILS", append the line to $RESULTS and return
#   0/1. Inside a flow (a subshell running with set -e) a bare failing check aborts the flow; append
#   `|| true` for a check whose failure should not stop the flow.

# ---------------------------------------------------------------------------------------------------------
# Reporting

pass() {
  printf 'ok - %s\n' "$1"
  printf 'ok - %s\n' "$1" >>"$RESULTS"
}

fail() {
  local line="not ok - $1: $2"
  line=${line//$'\n'/ }
  printf '%s\n' "$line"
  printf '%s\n' "$line" >>"$RESULTS"
  return 1
}

# Informational line (not counted).
note() { printf '# %s\n' "$*"; }

# First 400 chars of a string, on one line.
trunc() {
  local s=${1//$'\n'/ }
  if [ "${#s}" -gt 400 ]; then s="${s:0:400}..."; fi
  printf '%s' "$s"
}

# ---------------------------------------------------------------------------------------------------------
# HTTP

# http METHOD PATH_OR_URL [curl args...]
# PATH_OR_URL starting with http is used as is (localhost:PORT is routed to 127.0.0.1:PORT); otherwise it is
# appended to $BASE. Sets HTTP_STATUS ("000" when no response), HTTP_BODY, HTTP_LOCATION, HTTP_ERR.
http() {
  local method=$1 target=$2 url
  shift 2
  if [[ $target == http://* || $target == https://* ]]; then url=$target; else url=$BASE$target; fi
  : >"$WORK/resp.body"
  : >"$WORK/resp.headers"
  HTTP_STATUS=$(curl -sS --max-time 10 -H 'Expect:' \
    --connect-to "localhost:$PORT:127.0.0.1:$PORT" \
    -X "$method" -o "$WORK/resp.body" -D "$WORK/resp.headers" -w '%{http_code}' \
    "$@" "$url" 2>"$WORK/curl.err") || true
  [ -n "$HTTP_STATUS" ] || HTTP_STATUS=000
  HTTP_BODY=$(cat "$WORK/resp.body")
  HTTP_ERR=$(cat "$WORK/curl.err")
  HTTP_LOCATION=$(grep -i '^location:' "$WORK/resp.headers" | tail -n 1 | cut -d: -f2- | tr -d '\r' |
    sed 's/^[[:space:]]*//') || true
  HTTP_LAST="$method $url"
}

# api METHOD PATH BEARER_TOKEN [JSON]   (empty token: no Authorization header; no JSON: empty body)
api() {
  local method=$1 path=$2 token=$3 json=${4-}
  local -a args=()
  [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
  if [ $# -ge 4 ]; then
    printf '%s' "$json" >"$WORK/req.json"
    args+=(-H 'Content-Type: application/json' --data-binary "@$WORK/req.json")
  else
    args+=(--data-binary '')
  fi
  http "$method" "$path" "${args[@]}"
}

# api_file METHOD PATH BEARER_TOKEN FILE   (JSON body read from FILE)
api_file() {
  local method=$1 path=$2 token=$3 file=$4
  local -a args=(-H 'Content-Type: application/json' --data-binary "@$file")
  [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
  http "$method" "$path" "${args[@]}"
}

# token_req FIELD=VALUE...   POST /oidc/token with a form body (values url-encoded).
token_req() {
  local -a args=()
  local kv
  for kv in "$@"; do args+=(--data-urlencode "$kv"); done
  http POST /oidc/token "${args[@]}"
}

# ---------------------------------------------------------------------------------------------------------
# JSON / JWT

# jget FILTER [JSON]: jq -r FILTER on JSON (default $HTTP_BODY); empty output when null/absent/not JSON.
jget() {
  local json=${2-$HTTP_BODY}
  jq -r "($1) // empty" 2>/dev/null <<<"$json" || true
}

# b64url_decode STRING
b64url_decode() {
  local s
  s=$(printf '%s' "$1" | tr '_-' '/+')
  case $((${#s} % 4)) in
    2) s="$s==" ;;
    3) s="$s=" ;;
  esac
  printf '%s' "$s" | base64 -d 2>/dev/null
}

# jwt_payload JWT / jwt_header JWT: decoded JSON (no verification).
jwt_payload() { b64url_decode "$(printf '%s' "$1" | cut -d. -f2)"; }
jwt_header() { b64url_decode "$(printf '%s' "$1" | cut -d. -f1)"; }

# urldecode STRING
urldecode() {
  local s=${1//+/ }
  printf '%b' "${s//%/\\x}"
}

# query_param URL NAME: the (decoded) value of NAME in URL's query string.
query_param() {
  local v
  v=$(printf '%s' "$1" | sed -n "s/.*[?&]$2=\([^&#]*\).*/\1/p")
  urldecode "$v"
}

# ---------------------------------------------------------------------------------------------------------
# Checks

# check_resp NAME CODES [JQ_FILTER]
# CODES: "200" or alternatives "400|401". JQ_FILTER must evaluate truthy on the body (jq -e).
check_resp() {
  local name=$1 codes=$2 filter=${3-}
  if [[ "|$codes|" != *"|$HTTP_STATUS|"* ]]; then
    fail "$name" "$HTTP_LAST -> HTTP $HTTP_STATUS (want $codes); body: $(trunc "$HTTP_BODY")${HTTP_ERR:+; curl: $(trunc "$HTTP_ERR")}"
    return 1
  fi
  if [ -n "$filter" ] && ! jq -e "$filter" >/dev/null 2>&1 <<<"$HTTP_BODY"; then
    fail "$name" "$HTTP_LAST -> HTTP $HTTP_STATUS but body fails [$filter]: $(trunc "$HTTP_BODY")"
    return 1
  fi
  pass "$name"
}

# check_json NAME JSON JQ_FILTER: JQ_FILTER truthy on JSON.
check_json() {
  local name=$1 json=$2 filter=$3
  if jq -e "$filter" >/dev/null 2>&1 <<<"$json"; then
    pass "$name"
  else
    fail "$name" "[$filter] is false on: $(trunc "$json")"
  fi
}

# check_eq NAME ACTUAL EXPECTED
check_eq() {
  if [ "$2" == "$3" ]; then pass "$1"; else fail "$1" "got '$(trunc "$2")', want '$(trunc "$3")'"; fi
}

# check_ne NAME A B
check_ne() {
  if [ "$2" != "$3" ]; then pass "$1"; else fail "$1" "both are '$(trunc "$2")'"; fi
}

# check_nonempty NAME VALUE
check_nonempty() {
  if [ -n "$2" ]; then pass "$1"; else fail "$1" "empty; last response $HTTP_LAST -> HTTP $HTTP_STATUS: $(trunc "$HTTP_BODY")"; fi
}

# verify_token NAME TOKEN AUDIENCE [TYP]: jose verification against /cis/oidc/jwks; sets VERIFIED (payload).
verify_token() {
  local name=$1 token=$2 aud=$3 typ=${4-}
  VERIFIED=""
  if VERIFIED=$(node "$E2E_DIR/verify_tokens.mjs" "$BASE" "$ISSUER" "$token" "$aud" "$typ" 2>"$WORK/verify.err"); then
    pass "$name"
  else
    fail "$name" "$(trunc "$(cat "$WORK/verify.err")"); header $(trunc "$(jwt_header "$token")"); payload $(trunc "$(jwt_payload "$token")")"
  fi
}

# Error bodies (API.md 0.2, 0.4).
ERR_INVALID_TOKEN='.message == "Invalid token" and .error_code == 401'
ERR_FORBIDDEN='(.message | type) == "string" and .error_code == 403'
ERR_BAD_SIGNATURE='.message == "Authentication failed" and .error_code == 401 and .ts_error_code == "auth_invalid_signature"'
ERR_INVALID_GRANT='.error == "invalid_grant"'

# ---------------------------------------------------------------------------------------------------------
# Keys and signatures (openssl)

# gen_key TYPE FILE: TYPE ec (P-256) or rsa (2048).
gen_key() {
  case $1 in
    ec) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$2" 2>/dev/null ;;
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$2" 2>/dev/null ;;
    *) return 2 ;;
  esac
}

# spki_der_file KEYFILE OUTFILE
spki_der_file() { openssl pkey -in "$1" -pubout -outform DER -out "$2" 2>/dev/null; }

# spki_b64 KEYFILE: base64 of the SubjectPublicKeyInfo DER.
spki_b64() { openssl pkey -in "$1" -pubout -outform DER 2>/dev/null | base64 -w0; }

# sign_b64 KEYFILE MESSAGE: base64 of the SHA-256 signature (ECDSA DER / RSASSA-PKCS1-v1_5) over MESSAGE.
sign_b64() { printf '%s' "$2" | openssl dgst -sha256 -sign "$1" 2>/dev/null | base64 -w0; }

# ---------------------------------------------------------------------------------------------------------
# Flows shared by several tests

# unique_id PREFIX
unique_id() { printf '%s-%s-%s' "$1" "$(date +%s%N | tail -c 7)" "$RANDOM$RANDOM"; }

# outbox_otp EMAIL: OTP of the newest outbox mail to EMAIL (waits up to 5 s). Empty when none.
# sigil lower-cases addresses, so they are compared case-insensitively.
outbox_otp() {
  local email=$1 f otp
  local -a files
  for _ in $(seq 1 50); do
    files=()
    if [ -d "$DATA/outbox" ]; then
      # Names are <epoch-ms>-<random>.json: reverse name order is newest first.
      while IFS= read -r f; do files+=("$f"); done < <(find "$DATA/outbox" -maxdepth 1 -name '*.json' -type f | sort -r)
    fi
    for f in "${files[@]}"; do
      otp=$(jq -r --arg e "$email" 'select((.to|ascii_downcase) == ($e|ascii_downcase)) | .otp // empty' "$f" 2>/dev/null) || otp=""
      if [ -n "$otp" ]; then
        printf '%s' "$otp"
        return 0
      fi
    done
    sleep 0.1
  done
  return 0
}

# get_client_token: sets CLIENT_TOKEN (fresh client_credentials token). Returns 1 on failure.
get_client_token() {
  CLIENT_TOKEN=""
  token_req grant_type=client_credentials "client_id=$CLIENT_ID" "client_secret=$CLIENT_SECRET"
  check_resp "client_credentials token" 200 '(.access_token|type)=="string" and .token_type=="Bearer"' || return 1
  CLIENT_TOKEN=$(jget .access_token)
}

# otp_login LABEL EMAIL: email-OTP login, code exchange. Sets USER_ID, USER_AT, USER_IDT, USER_RT.
# Needs CLIENT_TOKEN. Returns 1 on the first failed step.
otp_login() {
  local label=$1 email=$2 otp result code
  USER_ID="" USER_AT="" USER_IDT="" USER_RT=""
  api POST /cis/v1/auth/otp/email "$CLIENT_TOKEN" \
    "$(jq -nc --arg e "$email" --arg r "$REDIRECT_URI" '{email:$e, redirect_uri:$r, create_new_user:true}')"
  check_resp "$label: send email OTP" 200 '.message == "OTP email sent"' || return 1
  otp=$(outbox_otp "$email")
  check_nonempty "$label: OTP found in outbox for $email" "$otp" || return 1
  api POST /cis/v1/auth/otp/email/validation "$CLIENT_TOKEN" \
    "$(jq -nc --arg e "$email" --arg p "$otp" '{email:$e, passcode:$p}')"
  check_resp "$label: validate email OTP" 200 '(.result|type)=="string" and (.result|test("^https?://"))' || return 1
  result=$(jget .result)
  http GET "$result"
  check_resp "$label: GET result URI redirects" "302|303" || return 1
  if [[ $HTTP_LOCATION != "$REDIRECT_URI?"* ]]; then
    fail "$label: redirect goes to redirect_uri with a query" "Location: '$HTTP_LOCATION', want '$REDIRECT_URI?code=...'"
    return 1
  fi
  code=$(query_param "$HTTP_LOCATION" code)
  check_nonempty "$label: redirect carries a code" "$code" || return 1
  token_req grant_type=authorization_code "code=$code" "redirect_uri=$REDIRECT_URI" \
    "client_id=$CLIENT_ID" "client_secret=$CLIENT_SECRET"
  check_resp "$label: exchange code for tokens" 200 \
    '(.access_token|type)=="string" and (.id_token|type)=="string" and (.refresh_token|type)=="string" and .token_type=="Bearer"' ||
    return 1
  USER_AT=$(jget .access_token)
  USER_IDT=$(jget .id_token)
  USER_RT=$(jget .refresh_token)
  USER_ID=$(jget .sub "$(jwt_payload "$USER_AT")")
  check_nonempty "$label: user access token has sub" "$USER_ID" || return 1
}

# register_key LABEL USER_TOKEN KEYFILE KEY_ID TYPE: register KEYFILE's public key. Returns 1 on failure.
register_key() {
  local label=$1 token=$2 keyfile=$3 kid=$4 type=$5
  api POST /cis/v1/auth/mobile-biometrics/register "$token" \
    "$(jq -nc --arg k "$(spki_b64 "$keyfile")" --arg i "$kid" --arg t "$type" \
      '{publicKey:$k, publicKeyId:$i, encryptionType:$t, os:"Android"}')"
  check_resp "$label" 200 '.message == "Key registered"'
}

# delete_key LABEL USER_TOKEN KEY_ID
delete_key() {
  api DELETE /cis/v1/auth/mobile-biometrics/delete "$2" "$(jq -nc --arg i "$3" '{publicKeyId:$i}')"
  check_resp "$1" 200 '.message == "Key deleted"'
}

# bio_start LABEL BODY_JSON: start with the client token; sets CHALLENGE. Returns 1 on failure.
bio_start() {
  CHALLENGE=""
  api POST /cis/v1/auth/mobile-biometrics/start "$CLIENT_TOKEN" "$2"
  check_resp "$1" 200 '(.challenge|type)=="string" and (.challenge|length) > 0' || return 1
  CHALLENGE=$(jget .challenge)
}

# bio_authenticate USER_ID KEY_ID CHALLENGE SIGNATURE: POST authenticate (no check).
bio_authenticate() {
  api POST /cis/v1/auth/mobile-biometrics/authenticate "$CLIENT_TOKEN" \
    "$(jq -nc --arg u "$1" --arg k "$2" --arg c "$3" --arg s "$4" '{user_id:$u, key_id:$k, challenge:$c, signature:$s}')"
}

BIO_TOKENS_OK='(.access_token|type)=="string" and (.id_token|type)=="string" and (.refresh_token|type)=="string" and .token_type=="Bearer" and .expires_in==3600 and (.session_id|type)=="string"'

# bio_login LABEL USER_ID KEY_ID KEYFILE: start (by user_id) + sign + authenticate.
# Sets BIO_AT, BIO_IDT, BIO_RT, BIO_SID. Returns 1 on failure.
bio_login() {
  local label=$1 uid=$2 kid=$3 keyfile=$4
  BIO_AT="" BIO_IDT="" BIO_RT="" BIO_SID=""
  bio_start "$label: start" "$(jq -nc --arg u "$uid" '{user_id:$u}')" || return 1
  bio_authenticate "$uid" "$kid" "$CHALLENGE" "$(sign_b64 "$keyfile" "$CHALLENGE")"
  check_resp "$label: authenticate" 200 "$BIO_TOKENS_OK" || return 1
  BIO_AT=$(jget .access_token)
  BIO_IDT=$(jget .id_token)
  BIO_RT=$(jget .refresh_token)
  BIO_SID=$(jget .session_id)
}

# refresh RT: POST /oidc/token grant_type=refresh_token (no check).
refresh() {
  token_req grant_type=refresh_token "refresh_token=$1" "client_id=$CLIENT_ID" "client_secret=$CLIENT_SECRET"
}

# expect_token_refused LABEL ACCESS_TOKEN: the token gets 401 Invalid token on register (a harmless body).
expect_token_refused() {
  api POST /cis/v1/auth/mobile-biometrics/register "$2" \
    '{"publicKey":"AAAA","publicKeyId":"never-registered","encryptionType":"ec","os":"Android"}'
  check_resp "$1" 401 "$ERR_INVALID_TOKEN"
}
