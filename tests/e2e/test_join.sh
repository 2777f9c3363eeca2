# A second node joins a server: `moonlet node --kubeconfig` with its own data
# dir and name registers a Ready node, runs its DaemonSet pod and the pods a
# nodeSelector pins there, restarts a killed container, serves its logs to
# `kubectl logs` through the server (plain, --tail, --previous, -f) and its
# pods' and its own figures to `kubectl top` (left out once it stops), and
# goes NotReady (unreachable taint) once it stops heartbeating; its logs then
# fail fast with the proxy's error.
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
IMAGES="$ML_SRC/examples/images"
start_server --node-name first --image-path "$IMAGES" \
  --node-monitor-grace-period 4s --node-status-update-frequency 1s
ok "server started"
kc() { kubectl --request-timeout=20s "$@"; }
match() { grep -Eq -- "$2" <<<"$1" || fail "$3: /$2/ does not match [$1]"; }

N2_DATA="$ML_TMP/node2"
N2_LOG="$ML_TMP/node2.log"
N2_PID=""
stop_node2() {
  if [ -n "$N2_PID" ] && kill -0 "$N2_PID" 2>/dev/null; then kill -KILL "$N2_PID" 2>/dev/null || true; fi
}
on_exit() {
  local rc=$?
  set +e
  stop_node2
  if [ $rc -ne 0 ] && [ -f "$N2_LOG" ]; then
    echo "---- node log (last 40 lines) ----" >&2
    tail -n 40 "$N2_LOG" >&2
  fi
  (exit $rc)
  cleanup
}
trap on_exit EXIT

"$ML_BIN" node --kubeconfig "$ML_DATA/kubeconfig" --node-name second --data-dir "$N2_DATA" \
  --image-path "$IMAGES" --listen tcp://127.0.0.1:0 --node-status-update-frequency 1s \
  --crashloop-initial 1s >>"$N2_LOG" 2>&1 &
N2_PID=$!

ready() { # ready NODE: the node's Ready condition is True
  [ "$(kc get node "$1" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
wait_for 30 "node second Ready" ready second
wait_for 30 "node first Ready" ready first
nodes=$(kc get nodes)
match "$nodes" '^first +Ready ' "kubectl get nodes: first"
match "$nodes" $'\n''second +Ready ' "kubectl get nodes: second"
match "$(kc get lease -n kube-node-lease second -o 'jsonpath={.spec.holderIdentity}')" '^second$' "lease"
port=$(kc get node second -o 'jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}')
[ "${port:-0}" -gt 0 ] || fail "no kubelet port published: [$port]"
ok "moonlet node joins: both nodes Ready, lease held, log endpoint published"

# a DaemonSet without a nodeSelector: one pod on each node
kc apply -f - >/dev/null <<'EOF' || fail "create the DaemonSet"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: mon}
spec:
  selector: {matchLabels: {app: mon}}
  template:
    metadata: {labels: {app: mon}}
    spec:
      containers:
      - name: main
        image: idealism/ssd-monitor
        env: [{name: SSD_MONITOR_PERIOD, value: "1"}]
EOF
running_on() { # running_on LABEL NODE: a pod with LABEL is Running on NODE (-o wide: NODE is
  # third from the end, as RESTARTS may take two words)
  kc get pods -l "$1" -o wide --no-headers | awk -v n="$2" '$3 == "Running" && $(NF - 2) == n { f = 1 } END { exit !f }'
}
wait_for 40 "a DaemonSet pod Running on first" running_on app=mon first
wait_for 40 "a DaemonSet pod Running on second" running_on app=mon second
ok "DaemonSet: one pod Running on each node (kubectl get pods -o wide)"

pod2=$(kc get pods -l app=mon --field-selector spec.nodeName=second -o 'jsonpath={.items[0].metadata.name}')
logs_ok() { kc logs "$pod2" | grep -q 'SSD OK'; }
wait_for 20 "logs of the pod on second" logs_ok
expect_eq "$(kc logs "$pod2" --tail=1)" "SSD OK" "kubectl logs --tail=1 through the server"
follow=$( (timeout 20 kubectl logs -f "$pod2" --tail=1 || true) | head -n 3)
expect_eq "$(wc -l <<<"$follow")" "3" "kubectl logs -f streams new lines"
ok "kubectl logs of a pod on the joined node: plain, --tail, -f"

# a Deployment pinned to the joined node runs there
kc apply -f - >/dev/null <<'EOF' || fail "create the pinned Deployment"
apiVersion: apps/v1
kind: Deployment
metadata: {name: pinned}
spec:
  replicas: 2
  selector: {matchLabels: {app: pinned}}
  template:
    metadata: {labels: {app: pinned}}
    spec:
      nodeSelector: {kubernetes.io/hostname: second}
      containers:
      - name: main
        image: idealism/ssd-monitor
EOF
pinned_running() {
  [ "$(kc get pods -l app=pinned -o wide --no-headers | awk '$3 == "Running" && $(NF - 2) == "second"' | wc -l)" -eq 2 ]
}
wait_for 40 "the pinned Deployment's 2 pods Running on second" pinned_running
expect_eq "$(kc get pods -l app=pinned -o 'jsonpath={.items[*].spec.nodeName}')" "second second" "no pinned pod elsewhere"
ok "a Deployment with nodeSelector kubernetes.io/hostname=second runs its pods on the joined node"

# resource metrics: the server asks the joined node's /stats/usage
top_nodes() { # both nodes have a CPU and memory figure
  local t; t=$(kc top node --no-headers 2>/dev/null) || return 1
  grep -Eq '^first +[0-9]+m +[0-9]+%? +[0-9]+Mi' <<<"$t" && grep -Eq '^second +[0-9]+m +[0-9]+%? +[0-9]+Mi' <<<"$t"
}
wait_for 20 "kubectl top node shows first and second" top_nodes
top_pod_ok() { # top_pod_ok POD: kubectl top pod -A has a figure for POD
  kc top pod -A --no-headers 2>/dev/null | grep -Eq "^default +$1 +[0-9]+m +[0-9]+Mi"
}
pod1=$(kc get pods -l app=mon --field-selector spec.nodeName=first -o 'jsonpath={.items[0].metadata.name}')
wait_for 20 "kubectl top pod -A: $pod2 on second" top_pod_ok "$pod2"
wait_for 20 "kubectl top pod -A: $pod1 on first" top_pod_ok "$pod1"
pinned1=$(kc get pods -l app=pinned -o 'jsonpath={.items[0].metadata.name}')
match "$(kc top pod "$pinned1" --no-headers)" "^$pinned1 +[0-9]+m +[0-9]+Mi" "kubectl top pod of a pinned pod"
ok "kubectl top node / top pod show the joined node and its pods beside the server's"

# the container process on the joined node is killed: the node restarts it
# the container is the process whose environment names the pod (HOSTNAME)
container_pid() {
  local p
  for p in $(pgrep -f "idealism/ssd-monitor/entrypoint"); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "HOSTNAME=$pod2"; then echo "$p"; return; fi
  done
}
pid=$(container_pid)
[ -n "$pid" ] || fail "cannot find the container process of $pod2"
kill -KILL "$pid"
restarted() { [ "$(kc get pod "$pod2" -o 'jsonpath={.status.containerStatuses[0].restartCount}')" = 1 ] && running_on app=mon second; }
wait_for 40 "$pod2 restarted on second" restarted
match "$(kc get pod "$pod2" --no-headers)" "^$pod2 +1/1 +Running +1 " "RESTARTS 1"
prev=$(kc logs "$pod2" --previous --tail=1)
expect_eq "$prev" "SSD OK" "kubectl logs --previous through the server"
ok "a killed container on the joined node restarts (RESTARTS 1); --previous has its log"

# a pod bound to second that tolerates an unreachable node for 2 s only
kc apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: brief
spec:
  nodeName: second
  tolerations:
  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
  containers:
  - name: main
    image: idealism/ssd-monitor
EOF
brief_running() { [ "$(kc get pod brief -o 'jsonpath={.status.phase}')" = Running ]; }
wait_for 40 "pod brief Running on second" brief_running

# the node stops (SIGTERM): it exits 0, the server marks it NotReady
kill -TERM "$N2_PID"
deadline=$((SECONDS + 30))
while kill -0 "$N2_PID" 2>/dev/null; do
  [ $SECONDS -ge $deadline ] && fail "moonlet node did not exit within 30s of SIGTERM"
  sleep 0.05
done
rc=0
wait "$N2_PID" || rc=$?
N2_PID=""
expect_eq "$rc" 0 "moonlet node exit status after SIGTERM"
# the node is gone (still Ready for a grace period): top answers without it
t0=$SECONDS
top=$(kc top pod -A --no-headers) || fail "kubectl top pod -A with the node gone"
[ $((SECONDS - t0)) -le $((5 * ${ML_TIMEOUT_SCALE:-1})) ] || fail "kubectl top pod -A took $((SECONDS - t0)) s"
match "$top" "^default +$pod1 " "top pod -A keeps the server's pods"
grep -q "$pod2" <<<"$top" && fail "top pod -A still lists $pod2 of the stopped node: [$top]"
# (asked only while Ready: if it still is, it was when top ran)
if ready second; then
  grep -q "metrics: node second left out" "$ML_LOG" || fail "no log line for the node left out"
fi
ok "with the joined node stopped, kubectl top pod -A answers without it"
not_ready() {
  [ "$(kc get node second -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = Unknown ]
}
wait_for 30 "node second NotReady" not_ready
match "$(kc get nodes)" $'\n''second +NotReady ' "kubectl get nodes: second NotReady"
match "$(kc get node second -o 'jsonpath={.spec.taints[*].key}')" 'node.kubernetes.io/unreachable' "unreachable taint"
ready first || fail "the server's own node stays Ready"
out=$(kc logs "$pod2" 2>&1) && fail "logs of a pod on a stopped node should fail: [$out]"
match "$out" '^Error from server.*Get "https://127\.0\.0\.1:[0-9]+/containerLogs/default/' "error of a gone node"
ok "a stopped node goes NotReady with the unreachable taint; its logs fail fast"

# the taint-eviction-controller: brief (2 s) is deleted, the DaemonSet's pod
# (which tolerates it forever) and the pinned pods (300 s) stay
evicted() { [ -n "$(kc get pod brief -o 'jsonpath={.metadata.deletionTimestamp}' 2>/dev/null)" ]; }
wait_for 20 "pod brief evicted" evicted
match "$(kc get events --field-selector involvedObject.name=brief -o 'jsonpath={.items[*].reason}')" \
  'TaintManagerEviction' "TaintManagerEviction event"
expect_eq "$(kc get pod "$pod2" -o 'jsonpath={.metadata.deletionTimestamp}')" "" "the DaemonSet's pod stays"
expect_eq "$(kc get pods -l app=pinned -o 'jsonpath={.items[*].metadata.deletionTimestamp}')" "" \
  "the pinned pods stay (300 s by default)"
ok "NoExecute taint: a pod tolerating 2 s is evicted, those tolerating longer stay"

stop_server
ok "server stopped"
finish
