# Shared helpers for end-to-end tests: start the real `moonlet server` on a
# temporary data dir, drive it with the moonlet CLI and kubectl, and wait on
# conditions with deadlines (polling, never a fixed sleep).
# Usage: source "$(dirname "$0")/lib.sh"; start_server [flags...]
set -euo pipefail

: "${ML_BIN:?ML_BIN must name the moonlet binary}"
: "${ML_SRC:?ML_SRC must name the source tree}"

ML_TMP="$(mktemp -d "${TMPDIR:-/tmp}/moonlet-e2e.XXXXXX")"
ML_DATA="$ML_TMP/data"
ML_LOG="$ML_TMP/server.log"
ML_PID=""
ML_TESTS=0
export MOONLET_SERVER="unix:$ML_DATA/moonlet.sock"
export KUBECONFIG="$ML_DATA/kubeconfig"
export KUBECACHEDIR="$ML_TMP/kubecache"
export HOME="$ML_TMP/home"
mkdir -p "$HOME"

cleanup() {
  local rc=$?
  if [ -n "$ML_PID" ] && kill -0 "$ML_PID" 2>/dev/null; then
    kill -KILL "$ML_PID" 2>/dev/null || true
  fi
  if [ $rc -ne 0 ] && [ -f "$ML_LOG" ]; then
    echo "---- server log (last 60 lines) ----" >&2
    tail -n 60 "$ML_LOG" >&2
  fi
  rm -rf "$ML_TMP"
  exit $rc
}
trap cleanup EXIT

fail() {
  echo "not ok - $*" >&2
  exit 1
}

ok() {
  ML_TESTS=$((ML_TESTS + 1))
  echo "ok $ML_TESTS - $*"
}

ml() { "$ML_BIN" "$@"; }

# wait_for SECONDS DESCRIPTION CMD... : polls CMD until it succeeds.
# ML_TIMEOUT_SCALE stretches every deadline (sanitizer builds run slower).
wait_for() {
  local secs=$(( $1 * ${ML_TIMEOUT_SCALE:-1} )) desc=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then fail "timed out after ${secs}s waiting for: $desc"; fi
    sleep 0.05
  done
}

start_server() {
  "$ML_BIN" server --data-dir "$ML_DATA" --listen tcp://127.0.0.1:0 "$@" >>"$ML_LOG" 2>&1 &
  ML_PID=$!
  wait_for 20 "server socket and kubeconfig" test -S "$ML_DATA/moonlet.sock" -a -f "$ML_DATA/kubeconfig"
  wait_for 20 "server answers /version" ml get namespaces default -o name
}

# stop_server [SIGNAL]: stops the server and checks it exits 0 in time.
stop_server() {
  local sig=${1:-TERM}
  kill -"$sig" "$ML_PID"
  local deadline=$((SECONDS + 15))
  while kill -0 "$ML_PID" 2>/dev/null; do
    [ $SECONDS -ge $deadline ] && fail "server did not exit within 15s of SIG$sig"
    sleep 0.05
  done
  local rc=0
  wait "$ML_PID" || rc=$?
  ML_PID=""
  [ "$sig" = KILL ] || [ $rc -eq 0 ] || fail "server exited with status $rc after SIG$sig"
}

expect_eq() { # expect_eq ACTUAL EXPECTED DESC
  [ "$1" = "$2" ] || fail "$3: expected [$2], got [$1]"
}

expect_contains() { # expect_contains HAYSTACK NEEDLE DESC
  case "$1" in *"$2"*) ;; *) fail "$3: [$2] not found in [$1]" ;; esac
}

expect_match() { # expect_match TEXT EXTENDED_REGEX DESC
  grep -Eq -- "$2" <<<"$1" || fail "$3: /$2/ does not match [$1]"
}

finish() {
  echo "1..$ML_TESTS"
}
