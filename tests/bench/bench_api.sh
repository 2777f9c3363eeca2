#!/usr/bin/env bash
# API benchmarks of the foundation issue, with etcd measured in the same run
# as the baseline (ratios, because these machines are noisy):
#  - create N ConfigMaps one at a time and with 16 in flight (durable store)
#    vs etcd's v3 JSON gateway at the same concurrency, both driven by a C
#    epoll client (create_load.c; CLIENT=lua drives them from api_load.lua,
#    one Lua/libcurl process, whose own CPU then shares the 2 cores); at
#    one in flight also the disk's floor (fsync_floor.c: pwrite + fdatasync)
#    and, with the C client, a durable server's floor (durable_floor.c: a
#    server that only writes each body in place, fdatasyncs and answers)
#  - list N objects as JSON and as Table
#  - server RSS with N objects; idle CPU over the 5 s after the last
#    request (the first quiet tick after a burst runs one full GC and
#    malloc_trim) and over the 5 s after those (steady state)
#  - 100 watchers seeing an update (p50/p99 latency), read by a Lua
#    client and by a C epoll client (watch_latency.c)
# Usage: tests/bench/bench_api.sh [BUILD_DIR] [N]   (not part of ctest)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build}"
n="${2:-10000}"
bin="$build/moonlet"
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

wait_sock() { for _ in $(seq 1 200); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 1; }
load() { "$bin" lua "$here/api_load.lua" "$@"; }
field() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p"; }

start_moonlet() { # start_moonlet DIR [flags]
  local dir=$1; shift
  "$bin" server --data-dir "$dir" "$@" >"$dir.log" 2>&1 &
  mpid=$!; pids+=("$mpid")
  wait_sock "$dir/moonlet.sock"
}

start_etcd() {
  local port=$(( 23000 + RANDOM % 20000 ))
  etcd --data-dir "$tmp/etcd" --listen-client-urls "http://127.0.0.1:$port" \
    --advertise-client-urls "http://127.0.0.1:$port" --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-cluster "default=http://127.0.0.1:$((port + 1))" >"$tmp/etcd.log" 2>&1 &
  epid=$!; pids+=("$epid")
  etcd_url="http://127.0.0.1:$port"
  for _ in $(seq 1 200); do curl -sf "$etcd_url/health" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "etcd did not start" >&2; exit 1
}

# The create client: C when a compiler and http_parser are there.
client=lua
if [ "${CLIENT:-c}" = c ] && ${CC:-cc} -O2 -o "$tmp/create_load" "$here/create_load.c" -lhttp_parser 2>/dev/null; then
  client=c
fi
create() { # create moonlet|etcd TARGET N CONCURRENCY
  if [ "$client" = c ]; then "$tmp/create_load" "$@"
  elif [ "$1" = etcd ]; then load create-etcd "http://$2" "$3" "$4"
  else load create-moonlet "$2" "$3" "$4"; fi
}

echo "# moonlet API benchmark: N=$n, $(nproc) cores, create client: $client"
sync="${ML_STORE_SYNC:-full}"
echo "# store: sqlite, --store-sync $sync"
for conc in 1 16; do
  start_moonlet "$tmp/m$conc" --store-sync "$sync"
  m=$(create moonlet "$tmp/m$conc/moonlet.sock" "$n" "$conc")
  if [ "$conc" = 1 ]; then
    rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$mpid/status")
    l=$(load list "$tmp/m$conc/moonlet.sock" 5)
    t0=$(awk '{print $14 + $15}' "/proc/$mpid/stat"); sleep 5; t1=$(awk '{print $14 + $15}' "/proc/$mpid/stat")
    sleep 5; t2=$(awk '{print $14 + $15}' "/proc/$mpid/stat")
    idle=$(awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz / 5 * 100 }')
    steady=$(awk -v a="$t1" -v b="$t2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz / 5 * 100 }')
  fi
  kill "$mpid"; wait "$mpid" 2>/dev/null || true
  start_etcd
  e=$(create etcd "${etcd_url#http://}" "$n" "$conc")
  kill "$epid"; wait "$epid" 2>/dev/null || true
  rm -rf "$tmp/etcd"
  mr=$(echo "$m" | field per_second); er=$(echo "$e" | field per_second)
  printf 'create, %2d in flight: moonlet %8.0f/s   etcd %8.0f/s   ratio %.2fx   (target: %s/s and %sx etcd)\n' \
    "$conc" "$mr" "$er" "$(awk -v a="$mr" -v b="$er" 'BEGIN{print a/b}')" \
    "$([ "$conc" = 1 ] && echo 5000 || echo 12000)" "$([ "$conc" = 1 ] && echo 2 || echo 1.5)"
  # One in flight waits for one fdatasync per write: the disk's own rate
  # for that (fsync_floor.c, same directory, right after) bounds it.
  if [ "$conc" = 1 ] && ${CC:-cc} -O2 -o "$tmp/fsync_floor" "$here/fsync_floor.c" 2>/dev/null; then
    f=$("$tmp/fsync_floor" "$tmp" "$n")
    printf '  disk floor (pwrite + fdatasync, one at a time): %8.0f/s\n' "$(echo "$f" | field per_second)"
  fi
  # The same client against a server that only stores each body durably
  # and answers (durable_floor.c): the disk plus the socket round trip.
  if [ "$conc" = 1 ] && [ "$client" = c ] && ${CC:-cc} -O2 -o "$tmp/durable_floor" "$here/durable_floor.c" 2>/dev/null; then
    mkdir -p "$tmp/df"
    "$tmp/durable_floor" "$tmp/df/floor.sock" "$tmp/df" & dpid=$!; pids+=("$dpid")
    wait_sock "$tmp/df/floor.sock"
    f=$(create moonlet "$tmp/df/floor.sock" "$n" 1)
    kill "$dpid"; wait "$dpid" 2>/dev/null || true
    fr=$(echo "$f" | field per_second)
    printf '  durable floor (a server that only writes and fdatasyncs each body): %8.0f/s   moonlet at %.0f%% of it\n' \
      "$fr" "$(awk -v a="$mr" -v b="$fr" 'BEGIN{print a/b*100}')"
  fi
done
printf 'list %d objects: JSON %.1f ms (target 150), Table %.1f ms (target 250)\n' "$n" \
  "$(echo "$l" | field json_ms)" "$(echo "$l" | field table_ms)"
printf 'server RSS with %d ConfigMaps: %.1f MiB (target 60)\n' "$n" "$(awk -v k="$rss_kb" 'BEGIN{print k/1024}')"
printf 'idle CPU: %s%% of a core in the 5 s after the load, %s%% in the next 5 s (target 0.5)\n' "$idle" "$steady"

start_moonlet "$tmp/w" --store memory
w=$(load watch-latency "$tmp/w/moonlet.sock" 100 20)
printf '100 watchers, 20 updates: p50 %.2f ms, p99 %.2f ms (target p99 5), received %s\n' \
  "$(echo "$w" | field p50_ms)" "$(echo "$w" | field p99_ms)" "$(echo "$w" | field received)"
# The same with a C epoll client (watch_latency.c): what the server and the
# kernel take, without one Lua process reading 100 streams in turn.
if ${CC:-cc} -O2 -o "$tmp/watch_latency" "$here/watch_latency.c" 2>/dev/null; then
  w=$("$tmp/watch_latency" "$tmp/w/moonlet.sock" 100 20)
  printf '100 watchers, 20 updates, C client: p50 %.2f ms, p99 %.2f ms (target p99 5), received %s\n' \
    "$(echo "$w" | field p50_ms)" "$(echo "$w" | field p99_ms)" "$(echo "$w" | field received)"
fi
