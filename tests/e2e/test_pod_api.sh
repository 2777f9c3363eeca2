# The Pod and Node kinds through a running server, API level only (no
# processes: pods name a scheduler nobody runs or a node no kubelet serves):
# defaults, 422 validation messages, get columns, graceful deletion, and
# `describe pod` / `describe node` compared byte for byte with kubectl 1.32
# when kubectl can reach the server.
source "$(dirname "$0")/lib.sh"

have_kubectl=0
if command -v kubectl >/dev/null 2>&1; then have_kubectl=1; fi
kc() { kubectl --request-timeout=10s "$@"; }

start_server
ok "server started"
if [ $have_kubectl = 1 ] && ! kc get --raw /api >/dev/null 2>&1; then
  echo "# kubectl cannot reach the server: skipping kubectl comparisons"
  have_kubectl=0
fi

# same_output DESC CMD...: moonlet and kubectl print the same text. Both
# read the live object, so a status write or a clock tick between the two
# reads is retried a few times before it counts as a difference.
same_output() {
  local desc=$1
  shift
  [ $have_kubectl = 1 ] || { ok "$desc # SKIP no kubectl"; return; }
  local m k i
  # Ages move between the two calls (slowly, under sanitizers): compare
  # everything but the durations and the padding they change. The exact
  # layout is compared where nothing moves (describe of fixed objects).
  local ages='s/\b[0-9]+[smhdy]([0-9]+[smhd])?\b/<age>/g'
  for i in 1 2 3 4 5; do
    m=$(ml "$@" 2>&1 | sed -E "$ages" | tr -s ' ') || true
    k=$(kc "$@" 2>&1 | sed -E "$ages" | tr -s ' ') || true
    if [ "$m" = "$k" ]; then ok "$desc"; return; fi
    sleep 0.3
  done
  diff <(echo "$k") <(echo "$m") >&2 || true
  fail "$desc: moonlet and kubectl differ (< kubectl, > moonlet)"
}

# --- the chapter's pod, held back from any scheduler: its file with a
# schedulerName nobody serves (so it stays Pending) and a label
sed -e 's/^  name: kubia-liveness$/&\n  labels:\n    app: kubia/' \
    -e 's/^spec:$/&\n  schedulerName: e2e-nobody/' \
    "$ML_SRC/examples/chapter/kubia-liveness-probe.yaml" >"$ML_TMP/pod.yaml"
grep -q 'schedulerName: e2e-nobody' "$ML_TMP/pod.yaml" || fail "derived pod.yaml"
out=$(ml apply -f "$ML_TMP/pod.yaml")
expect_eq "$out" "pod/kubia-liveness created" "apply creates the pod"
out=$(ml get pod kubia-liveness -o jsonpath='{.spec.restartPolicy} {.spec.terminationGracePeriodSeconds} {.spec.dnsPolicy} {.spec.serviceAccountName} {.spec.containers[0].imagePullPolicy} {.spec.containers[0].livenessProbe.periodSeconds} {.spec.containers[0].livenessProbe.httpGet.scheme} {.status.phase} {.status.qosClass}')
expect_eq "$out" "Always 30 ClusterFirst default Always 10 HTTP Pending BestEffort" "Kubernetes defaults"
out=$(ml get pods)
expect_match "$out" '^NAME +READY +STATUS +RESTARTS +AGE$' "get pods header"
expect_match "$out" '^kubia-liveness +0/1 +Pending +0 +[0-9]+s$' "get pods row"
out=$(ml get po -o wide)
expect_match "$out" 'IP +NODE +NOMINATED NODE +READINESS GATES' "wide header"
expect_match "$out" 'Pending +0 +[0-9]+s +<none> +<none> +<none> +<none>' "wide row"
ok "create, defaults and columns"

# --- invalid pods: 422 with field paths
bad() { # bad YAML_SED_EXPR EXPECTED_MESSAGE DESC
  sed -e "$1" "$ML_TMP/pod.yaml" | sed -e 's/name: kubia-liveness/name: bad/' >"$ML_TMP/bad.yaml"
  local out rc=0
  out=$(ml apply -f "$ML_TMP/bad.yaml" 2>&1) || rc=$?
  [ $rc -ne 0 ] || fail "$3: accepted"
  expect_contains "$out" "$2" "$3"
}
bad 's/^spec:/spec:\n  restartPolicy: Sometimes/' \
  'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"' \
  "unknown restart policy"
bad 's/          path: \//          path: \/\n        tcpSocket:\n          port: 8080/' \
  'spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type' \
  "two probe handlers"
bad 's/containerPort: 8080/containerPort: 0/' \
  'spec.containers[0].ports[0].containerPort: Required value' "port 0"
bad 's/- containerPort: 8080/- containerPort: 8080\n          name: Not_Valid/' \
  'spec.containers[0].ports[0].name: Invalid value: "Not_Valid"' "bad port name"
ok "invalid pods are rejected with Kubernetes' messages"
if [ $have_kubectl = 1 ]; then
  rc=0
  out=$(kc create --validate=false -f "$ML_TMP/bad.yaml" 2>&1) || rc=$?
  [ $rc -ne 0 ] || fail "kubectl create of an invalid pod succeeded"
  expect_contains "$out" 'The Pod "bad" is invalid: spec.containers[0].ports[0].name: Invalid value: "Not_Valid"' \
    "kubectl shows the 422"
fi
ok "kubectl sees the same 422"

# --- status as a kubelet would write it, then describe/get compared with kubectl
cat >"$ML_TMP/status.lua" <<'EOF'
local ns, name, body = ...
local ok, st = require("moonlet.client").default():patch("v1/Pod", ns, name, "merge", body,
  { subresource = "status" })
if not ok then io.stderr:write(tostring(st and st.message), "\n") return 1 end
return 0
EOF
status_patch() { ml lua --server "$MOONLET_SERVER" "$ML_TMP/status.lua" default "$@"; }
status_patch kubia-liveness '{"status":{"phase":"Running",
  "hostIP":"10.0.0.5","podIP":"10.1.0.7","podIPs":[{"ip":"10.1.0.7"}],"startTime":"2020-06-07T09:57:44Z",
  "conditions":[{"type":"Initialized","status":"True"},{"type":"Ready","status":"True"},
    {"type":"ContainersReady","status":"True"},{"type":"PodScheduled","status":"True"}],
  "containerStatuses":[{"name":"kubia","ready":true,"started":true,"restartCount":2,
    "image":"idealism/kubia-unhealthy","imageID":"moonlet://sha256:1","containerID":"moonlet://c2",
    "state":{"running":{"startedAt":"2020-06-07T09:59:35Z"}},
    "lastState":{"terminated":{"exitCode":137,"reason":"Error","startedAt":"2020-06-07T09:57:44Z",
      "finishedAt":"2020-06-07T09:59:27Z"}}}]}}' >/dev/null
out=$(ml describe pod kubia-liveness)
expect_contains "$out" "    Last State:     Terminated
      Reason:       Error
      Exit Code:    137
      Started:      Sun, 07 Jun 2020 09:57:44 +0000
      Finished:     Sun, 07 Jun 2020 09:59:27 +0000
    Ready:          True
    Restart Count:  2
    Liveness:       http-get http://:8080/ delay=0s timeout=1s period=10s #success=1 #failure=3" "describe container block"
expect_contains "$out" "Conditions:
  Type              Status
  Initialized       True 
  Ready             True 
  ContainersReady   True 
  PodScheduled      True 
Volumes:            <none>
QoS Class:          BestEffort" "describe conditions"
out=$(ml get pods)
expect_match "$out" 'kubia-liveness +1/1 +Running +2 \([0-9y]+d ago\)' "RESTARTS with the last restart's age"

# events as the kubelet records them, aggregated by the server
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
uid=$(ml get pod kubia-liveness -o jsonpath='{.metadata.uid}')
for i in 1 2 3; do
  cat <<EOF | ml apply -f - >/dev/null
apiVersion: v1
kind: Event
metadata: {name: kubia-liveness.unhealthy$i, namespace: default}
involvedObject: {kind: Pod, name: kubia-liveness, namespace: default, uid: "$uid", apiVersion: v1, fieldPath: "spec.containers{kubia}"}
reason: Unhealthy
message: "Liveness probe failed: HTTP probe failed with statuscode: 500"
type: Warning
source: {component: kubelet, host: node-a}
firstTimestamp: "$now"
lastTimestamp: "$now"
EOF
done
out=$(ml describe pod kubia-liveness)
expect_match "$out" 'Warning +Unhealthy +[0-9]+s \(x3 over [0-9]+s\) +kubelet +Liveness probe failed: HTTP probe failed with statuscode: 500' \
  "describe events aggregated"
ok "describe pod"
same_output "describe pod same as kubectl" describe pod kubia-liveness
same_output "get pods same as kubectl" get pods
same_output "get pods -o wide same as kubectl" get pods -o wide

# --- a node and a pod bound to it
cat >"$ML_TMP/node.yaml" <<'EOF'
apiVersion: v1
kind: Node
metadata:
  name: e2e-node
  labels: {kubernetes.io/hostname: e2e-node, node-role.kubernetes.io/worker: ""}
spec:
  unschedulable: true
  taints: [{key: dedicated, value: gpu, effect: NoSchedule}]
status:
  capacity: {cpu: "4", memory: 8Gi, pods: "110", ephemeral-storage: 100Gi}
  conditions:
  - {type: Ready, status: "False", reason: KubeletNotReady, message: not yet, lastHeartbeatTime: "2024-05-01T10:00:00Z", lastTransitionTime: "2024-05-01T09:00:00Z"}
  addresses: [{type: InternalIP, address: 10.0.0.9}]
  nodeInfo: {osImage: Debian, kernelVersion: 6.1.0, containerRuntimeVersion: "moonlet://0.1", kubeletVersion: v1.32.0}
EOF
out=$(ml apply -f "$ML_TMP/node.yaml")
expect_eq "$out" "node/e2e-node created" "create node"
cat >"$ML_TMP/bound.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: bound}
spec:
  nodeName: e2e-node
  containers:
  - name: app
    image: web:1.0
    resources: {requests: {cpu: 250m, memory: 64Mi}, limits: {cpu: 500m, memory: 128Mi}}
EOF
ml apply -f "$ML_TMP/bound.yaml" >/dev/null
out=$(ml get nodes e2e-node)
expect_match "$out" '^e2e-node +NotReady,SchedulingDisabled +worker +[0-9]+s +v1.32.0$' "get nodes row"
out=$(ml describe node e2e-node)
expect_contains "$out" "Taints:             dedicated=gpu:NoSchedule" "describe node taints"
expect_contains "$out" "  cpu                250m (6%)  500m (12%)" "describe node allocated cpu"
expect_contains "$out" "  memory             64Mi (0%)  128Mi (1%)" "describe node allocated memory"
ok "node kind and describe node"
same_output "describe node same as kubectl" describe node e2e-node
same_output "get nodes -o wide same as kubectl" get nodes e2e-node -o wide
same_output "describe bound pod same as kubectl" describe pod bound

# --- deletion: an unscheduled pod goes at once, a bound one gracefully
ml delete pod kubia-liveness >/dev/null
rc=0; ml get pod kubia-liveness >/dev/null 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "unscheduled pod still there after delete"
ml delete pod bound --wait=false >/dev/null
out=$(ml get pod bound -o jsonpath='{.metadata.deletionGracePeriodSeconds}')
expect_eq "$out" "30" "bound pod waits for its grace period"
out=$(ml get pods)
expect_match "$out" 'bound +0/1 +Terminating' "STATUS Terminating"
ok "graceful deletion"
same_output "describe terminating pod same as kubectl" describe pod bound

finish
