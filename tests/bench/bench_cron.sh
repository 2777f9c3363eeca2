#!/usr/bin/env bash
# CronJob benchmark of the Jobs/CronJobs issue (not part of ctest): a
# CronJob's Job is created within 100 ms of its scheduled time (median over
# N runs of fresh `@every 1s` CronJobs, measured with a watch), against a
# plain timer's lateness measured in the same run (cron_bench.lua).
# Usage: tests/bench/bench_cron.sh [BUILD_DIR] [N]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build}"
n="${2:-20}"
bin="$build/moonlet"
tmp="$(mktemp -d)"
spid=""
cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null; sleep 0.5; rm -rf "$tmp"; }
trap cleanup EXIT

"$bin" server --data-dir "$tmp/data" --image-path "$here/../../examples/images" >"$tmp/server.log" 2>&1 &
spid=$!
for _ in $(seq 1 200); do [ -S "$tmp/data/moonlet.sock" ] && break; sleep 0.05; done
for _ in $(seq 1 100); do
  "$bin" lua --server "unix:$tmp/data/moonlet.sock" /dev/stdin <<<'assert(require("moonlet.client").default():get("v1/Namespace", nil, "default"))' \
    >/dev/null 2>&1 && break
  sleep 0.05
done
echo "== CronJob lateness ($n runs; load: $(cut -d' ' -f1-3 /proc/loadavg))"
"$bin" lua --server "unix:$tmp/data/moonlet.sock" "$here/cron_bench.lua" "$n"
