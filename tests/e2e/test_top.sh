# The resource metrics API (metrics.k8s.io/v1beta1) through the real server:
# a pod whose container burns CPU in a shell loop and two that hold 64 MiB
# (one with a memory limit: its cgroup's working set where cgroups work),
# then the same under --keep-pods (containers run under keepers),
# seen with kubectl top pod / top node and moonlet top; the API is listed
# in discovery and read-only. Bounds are generous: the machine is noisy.
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
command -v python3 >/dev/null 2>&1 || fail "python3 is not installed (the memory pod needs it)"
kc() { kubectl --request-timeout=20s "$@"; }

start_server --node-name n1
ok "server started"

cat >"$ML_TMP/pods.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: busy
  labels: {app: busy}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: spin
    image: sh
    command: ["sh", "-c", "while :; do :; done"]
---
apiVersion: v1
kind: Pod
metadata:
  name: hog
  labels: {app: hog}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: hold
    image: python3
    command: ["python3", "-c", "import time\nb = b'x' * (64 << 20)\nwhile True: time.sleep(1000)"]
---
apiVersion: v1
kind: Pod
metadata:
  name: hogcg
  labels: {app: hog}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: hold
    image: python3
    command: ["python3", "-c", "import time\nb = b'x' * (64 << 20)\nwhile True: time.sleep(1000)"]
    resources:
      limits: {memory: 256Mi}
EOF
ml apply -f "$ML_TMP/pods.yaml" >/dev/null
running() { [ "$(ml get pod "$1" -o 'jsonpath={.status.phase}')" = Running ]; }
wait_for 30 "busy running" running busy
wait_for 30 "hog running" running hog
wait_for 30 "hogcg running" running hogcg
ok "a busy pod and two 64 MiB pods run"

# --- discovery and read-only
expect_contains "$(kc api-resources --api-group=metrics.k8s.io)" "PodMetrics" "api-resources lists PodMetrics"
rc=0
out=$(kc delete podmetrics busy 2>&1) || rc=$?
expect_eq "$rc" 1 "delete podmetrics fails"
expect_contains "$out" "MethodNotAllowed" "delete podmetrics: 405"
ok "metrics.k8s.io is discovered and read-only"

# --- figures: NAME CPU MEM rows of `top pod --no-headers`
# millicores of pod $2 in the output of command $1...
cpu_of() { local pod=$1; shift; "$@" --no-headers 2>/dev/null | awk -v p="$pod" '$1 == p { sub("m", "", $2); print $2 }'; }
mem_of() { local pod=$1; shift; "$@" --no-headers 2>/dev/null | awk -v p="$pod" '$1 == p { sub("Mi", "", $3); print $3 }'; }
busy_ok() { local m; m=$(cpu_of busy "$@"); [ -n "$m" ] && [ "$m" -ge 250 ] && [ "$m" -le 2100 ]; }
hog_ok() { local m; m=$(mem_of "$1" "${@:2}"); [ -n "$m" ] && [ "$m" -ge 60 ] && [ "$m" -le 120 ]; }
wait_for 30 "kubectl top pod: busy burns several hundred millicores" busy_ok kc top pod
wait_for 30 "kubectl top pod: hog holds ~64Mi" hog_ok hog kc top pod
wait_for 30 "kubectl top pod: hogcg holds ~64Mi" hog_ok hogcg kc top pod
wait_for 30 "moonlet top pod: busy burns several hundred millicores" busy_ok ml top pod
wait_for 30 "moonlet top pod: hog holds ~64Mi" hog_ok hog ml top pod
wait_for 30 "moonlet top pod: hogcg holds ~64Mi" hog_ok hogcg ml top pod
ok "kubectl top pod and moonlet top pod: busy $(cpu_of busy ml top pod)m, hog $(mem_of hog ml top pod)Mi, hogcg $(mem_of hogcg ml top pod)Mi"

# Both print the same layout: header, then one row per pod, by name.
expect_eq "$(kc top pod | head -1 | tr -s ' ')" "NAME CPU(cores) MEMORY(bytes) " "kubectl header"
expect_eq "$(ml top pod | head -1 | tr -s ' ')" "NAME CPU(cores) MEMORY(bytes) " "moonlet header"
expect_eq "$(ml top pod --no-headers | awk '{print $1}' | tr '\n' ' ')" "busy hog hogcg " "rows by name"
expect_eq "$(ml top pod --sort-by=memory --no-headers | awk '{print $1}' | tail -1)" "busy" "--sort-by=memory"
expect_eq "$(kc top pod -l app=hog --no-headers | awk '{print $1}' | tr '\n' ' ')" "hog hogcg " "kubectl -l"
expect_eq "$(ml top pod hog --containers --no-headers | awk '{print $1, $2}')" "hog hold" "--containers"
expect_match "$(ml top pod -A --no-headers)" '^default +busy +[0-9]+m +[0-9]+Mi' "-A adds NAMESPACE"
ok "top pod: headers, names, selector, containers, sort, all namespaces"

# --- nodes
node_ok() { "$@" --no-headers 2>/dev/null | grep -Eq '^n1 +[0-9]+m +[0-9]+% +[0-9]+Mi +[0-9]+% *$'; }
wait_for 20 "kubectl top node" node_ok kc top node
wait_for 20 "moonlet top node" node_ok ml top node n1
expect_eq "$(kc top node | head -1 | tr -s ' ')" "$(ml top node | head -1 | tr -s ' ')" "node headers"
ok "kubectl top node and moonlet top node: $(ml top node --no-headers | tr -s ' ')"

# --- pods gone: nothing left to show
ml delete pod busy hog hogcg --grace-period=1 >/dev/null
gone() { [ -z "$(ml get pods -o name 2>/dev/null)" ]; }
wait_for 30 "pods deleted" gone
out=$(kc top pod 2>&1)
expect_contains "$out" "No resources found in default namespace." "kubectl top pod with no pods"
expect_eq "$(ml top pod 2>&1)" "No resources found in default namespace." "moonlet top pod with no pods"
ok "no pods: No resources found"

# --- a kept container (--keep-pods): the keeper reports the container's
# own pid, whose group is counted
stop_server
start_server --node-name n1 --keep-pods
ml apply -f "$ML_TMP/pods.yaml" >/dev/null
wait_for 30 "kept busy running" running busy
wait_for 30 "kubectl top pod: kept busy burns CPU" busy_ok kc top pod
wait_for 30 "moonlet top pod: kept hog holds ~64Mi" hog_ok hog ml top pod
ok "a kept container's usage: busy $(cpu_of busy ml top pod)m"
ml delete pod busy hog hogcg --grace-period=1 >/dev/null
wait_for 30 "kept pods deleted" gone

stop_server
finish
