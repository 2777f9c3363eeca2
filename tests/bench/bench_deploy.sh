#!/usr/bin/env bash
# Deployment benchmarks of the Controllers issue (not part of ctest), each
# on a fresh `moonlet server` (sqlite store, defaults):
#  1. scale a Deployment of `sleep` pods 0 -> N (1000): time until all
#     Running; in the same run a bare fork/exec loop of N `sleep`s (ratio),
#     the same from C (spawn_loop.c `live`: posix_spawn one after the
#     other, the machine's floor for starting N processes), and
#     `pm2 scale` to N when pm2 is installed
#  2. rolling update of a 100-replica Deployment of kubia pods with a TCP
#     readiness probe, maxSurge 25%: time to complete, and the fewest ready
#     pods seen during it (asserted >= replicas - maxUnavailable)
#  3. 100 Deployments x 3 sleep replicas at rest: server CPU % of one core
#     over a window (utime+stime from /proc/PID/stat; the whole server, so
#     an upper bound for the controllers)
# Usage: tests/bench/bench_deploy.sh [BUILD_DIR]
# Env: SCALE_N (1000), ROLL_N (100), MANY_D (100), MANY_R (3), WINDOW (30),
#      PARTS ("scale rolling idle"), PM2 (1: also run pm2 when installed),
#      BARE (1: also run the bare fork/exec loop; 0 for A/B runs)
# Part 1 also prints the server CPU once settled (2.5 s after all Running):
# the work the kubelet leaves for a quiet node (arming restarts) included.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$(cd "$here/../.." && pwd)"
build="${1:-$src/build-deploy-rel}"
bin="$(cd "$build" && pwd)/moonlet"
SCALE_N="${SCALE_N:-1000}" ROLL_N="${ROLL_N:-100}" MANY_D="${MANY_D:-100}" MANY_R="${MANY_R:-3}"
WINDOW="${WINDOW:-30}" PARTS="${PARTS:-scale rolling idle}" PM2="${PM2:-1}" BARE="${BARE:-1}"
tmp="$(mktemp -d)"
spid=""
declare -a bare=()
cleanup() {
  [ -n "$spid" ] && kill -TERM "$spid" 2>/dev/null && wait "$spid" 2>/dev/null || true
  for p in "${bare[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -d "$tmp/pm2" ] && PM2_HOME="$tmp/pm2" pm2 kill >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true
has() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
now_ns() { date +%s%N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

start_server() {
  local d="$tmp/data-$1"
  "$bin" server --data-dir "$d" --image-path "$src/examples/images" >"$tmp/server-$1.log" 2>&1 &
  spid=$!
  for _ in $(seq 1 400); do [ -S "$d/moonlet.sock" ] && break; sleep 0.05; done
  sock="unix:$d/moonlet.sock"
  MOONLET_SERVER="$sock" "$bin" get namespaces default -o name >/dev/null 2>&1 || sleep 1
}
stop_server() {
  kill -TERM "$spid"
  for _ in $(seq 1 1200); do kill -0 "$spid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  spid=""
}
bench() { "$bin" lua --server "$sock" "$here/deploy_bench.lua" "$@"; }

echo "# machine: $(nproc) cores, load average at start: $(load)"

if has scale; then
  echo "== 1. scale a Deployment of sleep pods 0 -> $SCALE_N"
  start_server scale
  # The server's own CPU for the load (utime+stime, not its pods') and the
  # time it waited for a core (schedstat): on a shared machine the wall
  # time says little without them.
  cpu0=$(awk '{ print $14 + $15 }' "/proc/$spid/stat"); read -r _ wait0 _ <"/proc/$spid/schedstat"
  ours=$(bench scale "$SCALE_N")
  cpu1=$(awk '{ print $14 + $15 }' "/proc/$spid/stat"); read -r _ wait1 _ <"/proc/$spid/schedstat"
  sleep 2.5
  cpu2=$(awk '{ print $14 + $15 }' "/proc/$spid/stat")
  hz=$(getconf CLK_TCK)
  echo "moonlet: $ours (load $(load); server CPU $(awk -v a="$cpu0" -v b="$cpu1" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }') s, $(awk -v a="$cpu0" -v b="$cpu2" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }') s once settled, waited for a core $(awk -v a="$wait0" -v b="$wait1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }') s)"
  stop_server
fi

if has scale && [ "$BARE" = 1 ]; then
  # bare fork/exec: start N sleeps, done when every one has exec'd
  t0=$(now_ns)
  for _ in $(seq 1 "$SCALE_N"); do sleep 100000 & bare+=($!); done
  for p in "${bare[@]}"; do
    comm=""
    until [ "$comm" = sleep ]; do read -r comm <"/proc/$p/comm" || comm=""; done
  done
  t1=$(now_ns)
  base_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  for p in "${bare[@]}"; do kill "$p" 2>/dev/null || true; done
  bare=()
  ours_s=$(sed 's/.*"all_running_s":\([0-9.e+-]*\).*/\1/' <<<"$ours")
  echo "bare fork/exec loop: ${base_s}s; moonlet / bare = $(awk -v a="$ours_s" -v b="$base_s" 'BEGIN { printf "%.1f", a / b }')x (target <= 3x)"
  if ${CC:-cc} -O2 -o "$tmp/spawn_loop" "$here/spawn_loop.c" 2>/dev/null; then
    floor=$("$tmp/spawn_loop" "$SCALE_N" 1 live)
    floor_s=$(sed 's/.*"seconds":\([0-9.]*\).*/\1/' <<<"$floor")
    echo "C floor: $floor; moonlet / floor = $(awk -v a="$ours_s" -v b="$floor_s" 'BEGIN { printf "%.2f", a / b }')x"
  fi

  if [ "$PM2" = 1 ] && command -v pm2 >/dev/null 2>&1; then
    export PM2_HOME="$tmp/pm2"
    pm2 start "$(command -v sleep)" --name bench --interpreter none -- 100000 >/dev/null 2>&1
    t0=$(now_ns)
    timeout 600 pm2 scale bench "$SCALE_N" >/dev/null 2>&1 || echo "pm2 scale exited non-zero"
    online() { pm2 jlist 2>/dev/null | python3 -c 'import json,sys; print(sum(1 for p in json.load(sys.stdin) if p["pm2_env"]["status"] == "online"))' 2>/dev/null || echo 0; }
    deadline=$((SECONDS + 600))
    while [ "$(online)" -lt "$SCALE_N" ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    t1=$(now_ns)
    pm2_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    echo "pm2 scale to $SCALE_N: ${pm2_s}s ($(online) online); pm2 / moonlet = $(awk -v a="$pm2_s" -v b="$ours_s" 'BEGIN { printf "%.1f", a / b }')x (target >= 10x)"
    pm2 kill >/dev/null 2>&1 || true
    unset PM2_HOME
  else
    echo "pm2: skipped (not installed or PM2=0)"
  fi
fi

if has rolling; then
  echo "== 2. rolling update of $ROLL_N kubia pods, TCP readiness probe, maxSurge 25%"
  start_server rolling
  res=$(bench rolling "$ROLL_N") || { echo "moonlet: $res"; echo "FAIL: ready pods dropped below the floor"; stop_server; exit 1; }
  echo "moonlet: $res (load $(load)) (target <= 3 s)"
  stop_server
fi

if has idle; then
  echo "== 3. $MANY_D Deployments x $MANY_R replicas at rest: server CPU over ${WINDOW}s"
  start_server idle
  echo "moonlet: $(bench many "$MANY_D" "$MANY_R")"
  sleep 5
  ticks() { awk '{ print $14 + $15 }' "/proc/$spid/stat"; }
  hz=$(getconf CLK_TCK)
  c0=$(ticks); t0=$(now_ns)
  sleep "$WINDOW"
  c1=$(ticks); t1=$(now_ns)
  awk -v c="$((c1 - c0))" -v hz="$hz" -v a="$t0" -v b="$t1" -v l="$(load)" \
    'BEGIN { printf "server CPU at rest: %.2f%% of one core over %.1fs (load %s) (target <= 1%%)\n", 100 * c / hz / ((b - a) / 1e9), (b - a) / 1e9, l }'
  stop_server
fi
