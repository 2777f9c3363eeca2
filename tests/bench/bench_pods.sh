#!/usr/bin/env bash
# Pod benchmarks of the Pods issue (not part of ctest):
#  - pod start: create -> process running, 200 sleep pods one at a time
#    (p50/p99), in process (pods_bench.lua start)
#  - restart after kill -9 of a pod's process (restartPolicy Always, first
#    restart) p50, in process (pods_bench.lua restart), kills GAP_MS apart
#  - the machine's floor for both in the same run (restart_floor.c, built
#    here with $CC), so that figures on a loaded machine come with a ratio
#  - server RSS with 1,000 running pods on a real `moonlet server`
# Usage: tests/bench/bench_pods.sh [BUILD_DIR] [N_START] [N_RSS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build}"
nstart="${2:-200}"
nrss="${3:-1000}"
bin="$build/moonlet"
tmp="$(mktemp -d)"
spid=""
cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null; sleep 0.5; rm -rf "$tmp"; }
trap cleanup EXIT

echo "== pod start and restart (in process, $nstart pods; load: $(cut -d' ' -f1-3 /proc/loadavg))"
"$bin" lua "$here/pods_bench.lua" restart "$nstart"
# The machine's floor in the same conditions: a bare kill -9 -> pidfd ->
# vfork+exec loop (restart_floor.c), for the ratio.
if ${CC:-cc} -O2 -o "$tmp/restart_floor" "$here/restart_floor.c" 2>/dev/null; then
  echo "== floor: bare kill -> pidfd -> vfork+exec of sleep (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$tmp/restart_floor" 100 "${GAP_MS:-30}"
else
  echo "== floor: no C compiler, skipped"
fi

echo "== server RSS with $nrss running pods"
# No --keep-pods: its containers would outlive the SIGKILL at the end.
"$bin" server --data-dir "$tmp/data" --store-sync normal >"$tmp/server.log" 2>&1 &
spid=$!
for _ in $(seq 1 200); do [ -S "$tmp/data/moonlet.sock" ] && break; sleep 0.05; done
sleep 0.5
base=$(awk '/VmRSS/ {print $2}' /proc/$spid/status)
"$bin" lua --server "unix:$tmp/data/moonlet.sock" "$here/pods_load.lua" "$nrss"
sleep 2
rss=$(awk '/VmRSS/ {print $2}' /proc/$spid/status)
pss=$(awk '/^Pss:/ {print $2}' /proc/$spid/smaps_rollup 2>/dev/null || echo 0)
procs=$(pgrep -P "$spid" -c || true)
echo "{\"rss_idle_kib\":$base,\"rss_with_pods_kib\":$rss,\"pss_with_pods_kib\":${pss:-0},\"pods\":$nrss,\"child_processes\":$procs,\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
kill -KILL "$spid"; spid=""
