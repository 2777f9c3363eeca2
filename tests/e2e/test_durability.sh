#!/usr/bin/env bash
# Durability under load: 16 creates in flight, the server killed with
# SIGKILL in the middle of them; after a restart every ConfigMap whose 201
# reached the client is there (an acknowledged write survives kill -9: no
# answer leaves before its commit). Then the same with --store-sync normal,
# and a clean SIGTERM under load: every acknowledged write is there and the
# server exits 0.
source "$(dirname "$0")/lib.sh"
load="$ML_SRC/tests/e2e/durability/ack_load.lua"

acked_count() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
at_least() { [ "$(acked_count "$1")" -ge "$2" ]; }

# check_acked ACKFILE DESC: every acknowledged name is stored.
check_acked() {
  local n
  n=$(acked_count "$1")
  [ "$n" -gt 0 ] || fail "$2: nothing was acknowledged"
  ml get configmaps -o name | sed -n "s|^configmap/||p" | sort >"$ML_TMP/stored"
  sort "$1" >"$ML_TMP/acked"
  local missing
  missing=$(comm -23 "$ML_TMP/acked" "$ML_TMP/stored" | wc -l)
  [ "$missing" -eq 0 ] || fail "$2: $missing of $n acknowledged creates lost: $(comm -23 "$ML_TMP/acked" "$ML_TMP/stored" | head -5 | tr '\n' ' ')"
  ok "$2: all $n acknowledged creates present"
}

# crash_round ACKFILE SIGNAL [server flags]: load, signal mid-load, restart.
crash_round() {
  local ack=$1 sig=$2
  shift 2
  start_server "$@"
  "$ML_BIN" lua "$load" "$ML_DATA/moonlet.sock" "$ack" 16 "$(basename "$ack")" 2>/dev/null &
  local lpid=$!
  wait_for 30 "300 acknowledged creates" at_least "$ack" 300
  stop_server "$sig"
  wait "$lpid" 2>/dev/null || true
  start_server "$@"
  check_acked "$ack" "$*${*:+ }SIG$sig under 16 in-flight creates"
  stop_server TERM
}

crash_round "$ML_TMP/ack1" KILL
crash_round "$ML_TMP/ack2" KILL
crash_round "$ML_TMP/ack3" KILL --store-sync normal
crash_round "$ML_TMP/ack4" TERM
finish
