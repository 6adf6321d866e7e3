#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions are called indirectly (traps)
# Real-browser test of sigil's hosted login and OpenID Provider (API.md 1.1, 1.4, 1.5, 3.7, 4.1-4.3): a real
# sigild (--demo-rp) on loopback, a headless Debian Chromium (npm playwright-core; no browser is ever
# downloaded) with CDP virtual authenticators, a node callback server as the relying party's redirect URI, npm
# jose and npm openid-client as the relying party (hosted.mjs, oidc_client.mjs).
#
# usage: bash tests/browser/hosted_run.sh /path/to/sigild /path/to/sigil
#
# Prints one line per check ("ok - ..." / "not ok - ...: DETAILS") and finally "N passed, M failed" (always
# the last line). Exits 0 only when every check passed. The sigild log is printed when anything failed.
# Screenshots of every hosted page (desktop 1280x800 and phone 390x844) are always taken; they are written to
# docs/images/ only with SIGIL_UPDATE_SCREENSHOTS=1 (so that a normal run leaves the tree clean), otherwise
# to the work dir. Environment: E2E_KEEP=1 keeps the temp dirs; CHROMIUM=/path overrides `command -v
# chromium`; BROWSER_TEST_TIMEOUT_MS bounds hosted.mjs (default 170000).
set -euo pipefail

SIGILD=${1:?usage: hosted_run.sh SIGILD SIGIL}
SIGIL=${2:?usage: hosted_run.sh SIGILD SIGIL}
BROWSER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_DIR=$(cd "$BROWSER_DIR/../e2e" && pwd)
# shellcheck source=../e2e/lib.sh
source "$E2E_DIR/lib.sh"

SERVER_PID=""
NODE_PID=""
TEE_PID=""
DATA=""
PORT=""
PAGE_PORT=""
BASE=""
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sigil-hosted-work.XXXXXX")
RESULTS=$WORK/results
: >"$RESULTS"

# stop_pid PID: TERM, wait up to 5 s, then KILL.
stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# stop_group PID: like stop_pid for a process group leader (node and the chromium it launched): TERM to the
# group, then KILL to whatever of the group is left.
stop_group() {
  local pid=$1
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_all() {
  stop_group "$NODE_PID"
  NODE_PID=""
  stop_pid "$TEE_PID"
  TEE_PID=""
  stop_pid "$SERVER_PID"
  SERVER_PID=""
}

print_log() {
  if [ -n "$DATA" ] && [ -f "$DATA/sigild.log" ]; then
    echo "# ---- sigild log (last 200 lines of $DATA/sigild.log) ----"
    tail -n 200 "$DATA/sigild.log" | sed 's/^/# /'
    echo "# ---- end of sigild log ----"
  fi
}

SUMMARY_DONE=""
# finish STATUS: stop everything, print the server log if anything failed, print the summary line (always
# the last line), exit 0 only if no check failed.
finish() {
  local passed failed
  stop_all
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
  stop_all
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

for tool in curl jq node npm python3; do
  command -v "$tool" >/dev/null 2>&1 || die "required tool '$tool' not found (run tools/setup-deps)"
done
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ] || [ ! -x "$CHROMIUM" ]; then die "chromium not found (run tools/setup-deps, or set CHROMIUM=/path)"; fi
[ -x "$SIGILD" ] || die "sigild '$SIGILD' is not executable"
[ -x "$SIGIL" ] || die "sigil CLI '$SIGIL' is not executable"

# Node modules (pinned by package-lock.json). playwright-core only drives the system chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ] || [ ! -d "$BROWSER_DIR/node_modules/jose" ] ||
  [ ! -d "$BROWSER_DIR/node_modules/openid-client" ] ||
  [ "$BROWSER_DIR/package-lock.json" -nt "$BROWSER_DIR/node_modules" ]; then
  note "installing node modules in $BROWSER_DIR"
  (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund >"$WORK/npm.log" 2>&1) ||
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

# start_server: sigild (with the demo relying party) on a free port with a fresh data dir; waits for
# GET /healthz -> 200. Its public URL (issuer, hosted pages' origin) is http://localhost:PORT.
# Returns 1 if the process exited (e.g. it lost a race for the port), 2 on timeout.
start_server() {
  PORT=$(pick_port) || die "no free port found"
  BASE="http://127.0.0.1:$PORT"
  DATA=$(mktemp -d "${TMPDIR:-/tmp}/sigil-hosted-data.XXXXXX")
  "$SIGILD" --listen "127.0.0.1:$PORT" --data-dir "$DATA" --public-url "http://localhost:$PORT" --demo --demo-rp \
    >"$DATA/sigild.log" 2>&1 </dev/null &
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

# The relying party's callback server port: free now, and not sigild's.
PAGE_PORT=$(pick_port) || die "no free port found for the callback server"
while [ "$PAGE_PORT" = "$PORT" ]; do PAGE_PORT=$(pick_port) || die "no free port found for the callback server"; done
REDIRECT="http://localhost:$PAGE_PORT/callback"
APP_NAME="Acme Store"

# The hosted ceremonies run on sigil's own origin (its public URL); rpId localhost.
if ! APP=$("$SIGIL" --data-dir "$DATA" app create --name "$APP_NAME" --redirect-uri "$REDIRECT" \
  --origin "http://localhost:$PORT" --rp-id localhost 2>"$WORK/sigil.err"); then
  die "sigil app create failed: $(trunc "$(cat "$WORK/sigil.err")")"
fi
check_json "sigil app create prints {app_id, tenant_id, name, client_id, client_secret}" "$APP" \
  '(.app_id|type)=="string" and (.client_id|type)=="string" and (.client_secret|type)=="string"' ||
  die "unexpected output of sigil app create: $(trunc "$APP")"
CLIENT_ID=$(jget .client_id "$APP")
CLIENT_SECRET=$(jget .client_secret "$APP")
note "app $(jget .app_id "$APP"): client_id $CLIENT_ID, redirect URI $REDIRECT, rpId localhost"

if [ "${SIGIL_UPDATE_SCREENSHOTS:-0}" = 1 ]; then
  SCREENS=$(cd "$BROWSER_DIR/../.." && pwd)/docs/images
  note "SIGIL_UPDATE_SCREENSHOTS=1: screenshots go to $SCREENS"
else
  SCREENS=$WORK/screens
fi

# ---------------------------------------------------------------------------------------------------------
# The browser test. Its "ok"/"not ok" lines are counted with ours.

note "chromium: $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"
# Output goes through a FIFO to tee: shown live and kept in node.out; node runs in the background so that
# the traps can stop it.
mkfifo "$WORK/node.fifo"
tee "$WORK/node.out" <"$WORK/node.fifo" &
TEE_PID=$!
# setsid: node leads its own process group, so that chromium goes with it whatever happens.
SETSID=$(command -v setsid || true)
$SETSID node "$BROWSER_DIR/hosted.mjs" --sigil-port "$PORT" --page-port "$PAGE_PORT" --data-dir "$DATA" \
  --client-id "$CLIENT_ID" --client-secret "$CLIENT_SECRET" --app-name "$APP_NAME" --screens-dir "$SCREENS" \
  --chromium "$CHROMIUM" \
  >"$WORK/node.fifo" 2>&1 </dev/null &
NODE_PID=$!
node_rc=0
wait "$NODE_PID" || node_rc=$?
if [ -n "$SETSID" ]; then kill -KILL -- "-$NODE_PID" 2>/dev/null || true; fi # leftovers of its group, if any
NODE_PID=""
# tee ends at the end of node's output; bounded in case a stray child still holds the pipe.
for _ in $(seq 1 50); do
  kill -0 "$TEE_PID" 2>/dev/null || break
  sleep 0.1
done
stop_pid "$TEE_PID"
TEE_PID=""
grep -E '^(not )?ok - ' "$WORK/node.out" >>"$RESULTS" || true
if [ "$node_rc" -ne 0 ] && ! grep -q '^not ok - ' "$WORK/node.out"; then
  fail "hosted.mjs" "exited with status $node_rc without a failed check" || true
fi

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  fail "sigild still running at the end" "the server process exited during the tests" || true
fi

finish 0
