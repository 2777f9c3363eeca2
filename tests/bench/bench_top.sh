#!/usr/bin/env bash
# bench_top.sh BUILD_DIR [PODS]: the cost of the resource metrics API with
# PODS (default 1000) running `sleep` pods of one Deployment: wall time of
# GET /apis/metrics.k8s.io/v1beta1/pods (every pod, JSON) and of `moonlet
# top pod -A`, the first request (averages since start) and later ones at
# least a second apart (rates: one pass over /proc each) and inside the
# second (answered from the last samples), with the server's CPU seconds per
# request. The node agent samples /proc only on request: an idle server
# reads nothing.
set -euo pipefail
BUILD=${1:?usage: bench_top.sh BUILD_DIR [PODS]}
PODS=${2:-1000}
BIN=$BUILD/moonlet
TMP=$(mktemp -d /tmp/bench-top.XXXXXX)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
export MOONLET_SERVER="unix:$TMP/moonlet.sock"

"$BIN" server --data-dir "$TMP" --store memory --node-name bench >"$TMP/log" 2>&1 &
SERVER_PID=$!
deadline=$((SECONDS + 20))
until "$BIN" get ns default -o name >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || { echo "server did not start" >&2; exit 1; }
  sleep 0.1
done
cat <<EOF | "$BIN" apply -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: {name: sleepers}
spec:
  replicas: $PODS
  selector: {matchLabels: {app: sleepers}}
  template:
    metadata: {labels: {app: sleepers}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - {name: main, image: sleep, command: ["sleep", "100000"]}
EOF
deadline=$((SECONDS + 600))
while :; do
  n=$("$BIN" get deployment sleepers -o 'jsonpath={.status.availableReplicas}' 2>/dev/null || true)
  [ "${n:-0}" -ge "$PODS" ] && break
  [ $SECONDS -lt $deadline ] || { echo "only ${n:-0} of $PODS pods available" >&2; exit 1; }
  sleep 0.5
done

cpu_s() { awk '{ printf "%.3f", ($14 + $15) / 100 }' "/proc/$SERVER_PID/stat"; }
get_ms() {
  curl -s -o "$TMP/out.json" -w '%{time_total}' --unix-socket "$TMP/moonlet.sock" \
    http://localhost/apis/metrics.k8s.io/v1beta1/pods | awk '{ printf "%.1f", $1 * 1000 }'
}
items() { grep -o '"kind":"PodMetrics"' "$TMP/out.json" | wc -l; }

echo "pods=$PODS processes=$(ls /proc | grep -c '^[0-9]') load=$(cut -d' ' -f1-3 /proc/loadavg)"
c0=$(cpu_s)
t=$(get_ms)
echo "first GET (since start): ${t} ms, $(items) PodMetrics, server CPU $(awk -v a="$c0" -v b="$(cpu_s)" 'BEGIN { printf "%.0f", (b - a) * 1000 }') ms"
for i in 1 2 3 4 5; do
  sleep 1.1 # the window rule: a new sample needs a second since the last
  c0=$(cpu_s)
  t=$(get_ms)
  r=$(get_ms)
  echo "GET (rate, new /proc pass): ${t} ms, then within the second: ${r} ms; server CPU for both $(awk -v a="$c0" -v b="$(cpu_s)" 'BEGIN { printf "%.0f", (b - a) * 1000 }') ms"
done
for i in 1 2 3; do
  sleep 1.1
  s=$(date +%s%N)
  "$BIN" top pod -A --no-headers >/dev/null
  echo "moonlet top pod -A: $(( ($(date +%s%N) - s) / 1000000 )) ms"
done
