# Garbage collection through the real server, with both CLIs: deleting a
# ReplicaSet deletes its pods (background), --cascade=orphan and the legacy
# --cascade=false keep the pods and strip their ownerReferences (with
# kubectl's warning for the boolean), --cascade=foreground keeps the
# ReplicaSet visible with a deletionTimestamp until its pods are gone, and
# a kind loaded by a SIGHUP reload has its dependents collected too.
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
mkdir -p "$ML_TMP/scripts/kinds"
start_server --node-name n1 --image-path "$ML_SRC/examples/images" --scripts "$ML_TMP/scripts"
ok "server started"
export KUBECONFIG="$ML_DATA/kubeconfig"
kc() { kubectl --request-timeout=20s "$@"; }

# rs NAME REPLICAS [SLOW]: a ReplicaSet of sleeping pods labelled app=NAME;
# with SLOW its pods take 4 s to stop after SIGTERM.
rs() {
  local cmd='["sleep", "3600"]'
  [ "${3:-}" = slow ] && cmd='["sh", "-c", "trap \"sleep 4; exit 0\" TERM; while :; do sleep 0.1; done"]'
  cat >"$ML_TMP/$1.yaml" <<YAML
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: $1
spec:
  replicas: $2
  selector:
    matchLabels:
      app: $1
  template:
    metadata:
      labels:
        app: $1
    spec:
      containers:
      - name: main
        image: kubia
        command: $cmd
YAML
  ml apply -f "$ML_TMP/$1.yaml" >/dev/null || fail "create rs $1"
}
# pods_of APP: "name ownerUid phase deletionTimestamp" of the pods labelled app=APP
pods_of() {
  ml get pods -l "app=$1" -o 'jsonpath={range .items[*]}{.metadata.name} {.metadata.ownerReferences[*].uid} {.status.phase} {.metadata.deletionTimestamp}{"\n"}{end}'
}
running() { # APP N: N pods Running, none terminating
  [ "$(pods_of "$1" | awk '$3 == "Running" && $4 == "" { c++ } END { print c + 0 }')" = "$2" ]
}
no_pods() { [ -z "$(pods_of "$1")" ]; }
rs_gone() { ! ml get rs "$1" >/dev/null 2>&1; }
names_of() { pods_of "$1" | awk '{ print $1 }' | sort | tr '\n' ' '; }
# orphans APP NAMES: exactly these pods, Running, without ownerReferences
orphans() {
  [ "$(pods_of "$1" | awk 'NF == 2 && $2 == "Running" { print $1 }' | sort | tr '\n' ' ')" = "$2" ]
}

# --- background (the default) with both CLIs
rs bg1 2
rs bg2 2
wait_for 30 "bg1 running" running bg1 2
wait_for 30 "bg2 running" running bg2 2
expect_eq "$(ml delete rs bg1)" 'replicaset.apps "bg1" deleted' "moonlet delete rs"
wait_for 30 "bg1's pods collected" no_pods bg1
expect_eq "$(kc delete rs bg2)" 'replicaset.apps "bg2" deleted' "kubectl delete rs"
wait_for 30 "bg2's pods collected" no_pods bg2
ok "delete rs: its pods go (background)"

# --- orphan, and the legacy boolean with its warning
rs or1 2
rs or2 2
rs or3 1
wait_for 30 "or1 running" running or1 2
wait_for 30 "or2 running" running or2 2
wait_for 30 "or3 running" running or3 1
keep1=$(names_of or1)
keep2=$(names_of or2)
keep3=$(names_of or3)
expect_eq "$(ml delete rs or1 --cascade=orphan 2>&1)" 'replicaset.apps "or1" deleted' "moonlet --cascade=orphan"
out=$(kc delete rs or2 --cascade=false 2>&1)
expect_eq "$out" 'warning: --cascade=false is deprecated (boolean value) and can be replaced with --cascade=orphan.
replicaset.apps "or2" deleted' "kubectl --cascade=false"
out=$(ml delete rs or3 --cascade=false 2>&1)
expect_eq "$out" 'warning: --cascade=false is deprecated (boolean value) and can be replaced with --cascade=orphan.
replicaset.apps "or3" deleted' "moonlet --cascade=false"
for r in or1 or2 or3; do wait_for 30 "rs $r gone" rs_gone $r; done
# the owner goes only after its references are stripped: no waiting here
orphans or1 "$keep1" || fail "or1's pods kept without ownerReferences: $(pods_of or1)"
orphans or2 "$keep2" || fail "or2's pods kept without ownerReferences: $(pods_of or2)"
orphans or3 "$keep3" || fail "or3's pods kept without ownerReferences: $(pods_of or3)"
expect_eq "$(kc get pods -l app=or2 -o 'jsonpath={.items[*].metadata.ownerReferences}')" "" "kubectl sees no ownerReferences"
ok "--cascade=orphan and --cascade=false keep the pods and drop their ownerReferences"
out=$(kc delete rs nothing --cascade=sideways 2>&1) && fail "invalid cascade accepted"
expect_eq "$out" 'error: invalid cascade value (sideways). Must be "background", "foreground", or "orphan"' "kubectl invalid cascade"
out=$(ml delete rs nothing --cascade=sideways 2>&1) && fail "invalid cascade accepted"
expect_eq "$out" 'error: invalid cascade value (sideways). Must be "background", "foreground", or "orphan"' "moonlet invalid cascade"
ok "invalid --cascade refused in kubectl's words"
ml delete pods -l 'app in (or1, or2, or3)' --wait=false >/dev/null

# --- foreground: the owner stays, marked, until its pods are gone
rs fg 2 slow
wait_for 30 "fg running" running fg 2
expect_eq "$(kc delete rs fg --cascade=foreground --wait=false)" 'replicaset.apps "fg" deleted' "kubectl --cascade=foreground"
terminating_with_owner() {
  local rs
  rs=$(ml get rs fg -o 'jsonpath={.metadata.deletionTimestamp} {.metadata.finalizers}') || return 1
  grep -Eq '^[0-9TZ:-]+ \["foregroundDeletion"\]$' <<<"$rs" || return 1
  [ "$(pods_of fg | awk '$4 != "" { c++ } END { print c + 0 }')" -ge 1 ]
}
wait_for 30 "rs fg marked while its pods terminate" terminating_with_owner
out=$(kc get rs fg -o 'jsonpath={.metadata.deletionTimestamp}')
[ -n "$out" ] || fail "kubectl sees the deletionTimestamp"
wait_for 30 "rs fg gone" rs_gone fg
no_pods fg || fail "pods of fg outlived their foreground owner: $(pods_of fg)"
ok "delete --cascade=foreground: rs visible with deletionTimestamp while pods terminate, then gone"

# moonlet's foreground waits like kubectl's --wait
rs fg2 1 slow
wait_for 30 "fg2 running" running fg2 1
expect_eq "$(ml delete rs fg2 --cascade=foreground)" 'replicaset.apps "fg2" deleted' "moonlet --cascade=foreground"
rs_gone fg2 || fail "moonlet delete returned before fg2 was gone"
no_pods fg2 || fail "pods of fg2 outlived their foreground owner"
ok "moonlet delete --cascade=foreground waits until owner and pods are gone"

wait_for 30 "orphans cleaned up" sh -c "[ -z \"\$($ML_BIN get pods -o name)\" ]"

# --- a kind added by a SIGHUP reload owns objects the collector follows
cp "$ML_SRC/examples/greeting/kinds/greeting.lua" "$ML_TMP/scripts/kinds/"
kill -HUP "$ML_PID"
wait_for 20 "the Greeting kind is served" ml get greetings
ml apply -f - >/dev/null <<'YAML' || fail "create greeting"
apiVersion: example.moonlet.dev/v1
kind: Greeting
metadata:
  name: hello
spec:
  message: hi
YAML
guid=$(ml get greeting hello -o 'jsonpath={.metadata.uid}')
ml apply -f - >/dev/null <<YAML || fail "create owned ConfigMap"
apiVersion: v1
kind: ConfigMap
metadata:
  name: hello-owned
  ownerReferences:
  - apiVersion: example.moonlet.dev/v1
    kind: Greeting
    name: hello
    uid: $guid
YAML
ml get cm hello-owned >/dev/null || fail "a dependent of a live Greeting was collected"
expect_eq "$(ml delete greeting hello)" 'greeting.example.moonlet.dev "hello" deleted' "delete the Greeting"
wait_for 20 "the Greeting's ConfigMap collected" sh -c "! $ML_BIN get cm hello-owned"
ok "a kind loaded by SIGHUP: its dependents are collected"

stop_server
finish
