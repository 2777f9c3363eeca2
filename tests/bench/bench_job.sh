#!/usr/bin/env bash
# Job benchmarks of the Jobs issue (not part of ctest), each on a fresh
# `moonlet server` (the default durable sqlite store; STORE=memory for the
# in-memory one) with its kubelet running real processes:
#  - 1,000 Jobs of one `true` pod each, created at once: until all Complete
#  - one Job with completions 1,000 and parallelism 50: until Complete
#  - baseline in the same run: a bare fork/exec loop of the same number of
#    `true` processes (bash), and the ratio of each figure to it; and the
#    same processes from C (spawn_loop.c: posix_spawn, one at a time and P
#    at once), the floor without bash's own fork cost
#  - the controller alone: N one-pod Jobs in process with a fake node that
#    marks each pod Succeeded at once (jobs_inproc.lua)
#  - for each server run: the server's CPU seconds (utime+stime) and the
#    API writes per pod (from the resourceVersion)
# Usage: tests/bench/bench_job.sh [BUILD_DIR] [N] [PARALLELISM]
# Environment: PARTS, the parts to run (default "floor inproc many one");
# STORE, the server's --store (default sqlite);
# a ratio is printed only when "floor" ran.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build}"
n="${2:-1000}"
par="${3:-50}"
PARTS="${PARTS:-floor inproc many one}"
store="${STORE:-sqlite}"
has() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
bin="$build/moonlet"
tmp="$(mktemp -d)"
spid=""
cleanup() { [ -n "$spid" ] && kill -KILL "$spid" 2>/dev/null; sleep 0.5; rm -rf "$tmp"; }
trap cleanup EXIT

now() { date +%s.%N; }

# utime+stime of a process in seconds (fields 14 and 15 of /proc/PID/stat;
# the command name in field 2 has no spaces for moonlet).
server_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"
}

run_server() { # mode args...
  rm -rf "$tmp/data"
  "$bin" server --data-dir "$tmp/data" --store "$store" >"$tmp/server.log" 2>&1 &
  spid=$!
  for _ in $(seq 1 200); do [ -S "$tmp/data/moonlet.sock" ] && break; sleep 0.05; done
  sleep 0.5
  local cpu0 out
  cpu0=$(server_cpu "$spid")
  out=$("$bin" lua --server "unix:$tmp/data/moonlet.sock" "$here/jobs_load.lua" "$@")
  # The server's own CPU for the load (utime+stime of the server process,
  # not of the pods it spawned), appended to the load's JSON line.
  printf '%s,"server_cpu_s":%.2f}\n' "${out%\}}" "$(echo "$(server_cpu "$spid") - $cpu0" | bc -l)"
  kill -TERM "$spid"; wait "$spid" 2>/dev/null || true; spid=""
}

echo "== load: $(cut -d" " -f1-3 /proc/loadavg) on $(nproc) cores; store: $store"
base="" cbase=""
if has floor; then
  t0=$(now)
  for _ in $(seq 1 "$n"); do /bin/true; done
  t1=$(now)
  base=$(echo "$t1 - $t0" | bc -l)
  printf '{"baseline":"fork/exec loop","processes":%d,"seconds":%.3f}\n' "$n" "$base"
  if ${CC:-cc} -O2 -o "$tmp/spawn_loop" "$here/spawn_loop.c" 2>/dev/null; then
    "$tmp/spawn_loop" "$n" 1
    cbase=$("$tmp/spawn_loop" "$n" "$par")
    echo "$cbase"
    cbase=$(sed -E 's/.*"seconds":([0-9.]+).*/\1/' <<<"$cbase")
  fi
fi

if has inproc; then
  echo "== controller alone: $n one-pod Jobs, pods marked Succeeded at once (in process)"
  "$bin" lua "$here/jobs_inproc.lua" "$n"
fi
results=()
if has many; then
  echo "== $n Jobs of one pod each"
  many=$(run_server many "$n")
  echo "$many"
  results+=("$many")
fi
if has one; then
  echo "== one Job, completions $n, parallelism $par"
  one=$(run_server one "$n" "$par")
  echo "$one"
  results+=("$one")
fi
[ -n "$base" ] || exit 0
for r in "${results[@]}"; do
  s=$(sed -E 's/.*"all_complete_s":([0-9.e+-]+).*/\1/' <<<"$r")
  printf 'ratio to the fork/exec loop: %.1fx (%s s vs %.3f s)\n' "$(echo "$s / $base" | bc -l)" "$s" "$base"
  if [ -n "$cbase" ]; then
    printf 'ratio to the C posix_spawn loop, %d at once: %.1fx (%s s vs %s s)\n' "$par" \
      "$(echo "$s / $cbase" | bc -l)" "$s" "$cbase"
  fi
done
