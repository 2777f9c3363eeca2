# The Deployment CLI end to end, with the chapter's kubia Deployment on the
# real server and real processes: `rollout status|history|undo|pause|resume|
# restart`, `scale` and `describe deployment`, each run with moonlet and with
# kubectl 1.32, checking both print the same lines wherever kubectl's output
# is deterministic, plus a progress deadline that makes `rollout status` fail.
source "$(dirname "$0")/lib.sh"

if [ ! -f "$ML_SRC/plugins/kinds/deployment.lua" ] || [ ! -f "$ML_SRC/plugins/controllers/deployment.lua" ]; then
  echo "1..0 # SKIP the Deployment kind and controller are not in this tree"
  exit 0
fi
command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
start_server --node-name n1 --image-path "$ML_SRC/examples/images"
ok "server started"
export KUBECONFIG="$ML_DATA/kubeconfig"
kc() { kubectl --request-timeout=20s "$@"; }

match() { grep -Eq -- "$2" <<<"$1" || fail "$3: /$2/ does not match [$1]"; }
# same_output DESC CMD...: the command run with moonlet and with kubectl
# prints the same stdout and stderr and exits alike.
same_output() {
  local desc=$1 mo me mr ko ke kr
  shift
  mr=0; mo=$(ml "$@" 2>"$ML_TMP/me") || mr=$?
  kr=0; ko=$(kc "$@" 2>"$ML_TMP/ke") || kr=$?
  me=$(cat "$ML_TMP/me"); ke=$(cat "$ML_TMP/ke")
  expect_eq "$mo" "$ko" "$desc (stdout)"
  expect_eq "$me" "$ke" "$desc (stderr)"
  expect_eq "$mr" "$kr" "$desc (exit status)"
}
field() { ml get deploy kubia -o "jsonpath=$1"; }
# the rollout is complete: every replica updated and available, and observed
rolled_out() {
  local want gen obs upd avail total
  want=$(field '{.spec.replicas}'); gen=$(field '{.metadata.generation}')
  obs=$(field '{.status.observedGeneration}'); upd=$(field '{.status.updatedReplicas}')
  avail=$(field '{.status.availableReplicas}'); total=$(field '{.status.replicas}')
  [ "$gen" = "$obs" ] && [ "$upd" = "$want" ] && [ "$avail" = "$want" ] && [ "$total" = "$want" ]
}
rs_count() { [ "$(ml get rs -l app=kubia -o name | wc -l)" = "$1" ]; }
observed() { [ "$(field '{.metadata.generation}')" = "$(field '{.status.observedGeneration}')" ]; }
revision_is() { [ "$(field '{.metadata.annotations.deployment\.kubernetes\.io/revision}')" = "$1" ]; }

# the chapter's manifest, unchanged
expect_eq "$(kc create -f "$ML_SRC/examples/chapter/kubia-deployment.yaml")" "deployment.apps/kubia created" "create"

# {====== status
out=$(ml rollout status deployment/kubia) || fail "moonlet rollout status failed: $out"
expect_eq "$(tail -n1 <<<"$out")" 'deployment "kubia" successfully rolled out' "moonlet rollout status"
while IFS= read -r line; do
  match "$line" '^(Waiting for deployment "kubia" rollout to finish: [0-9]+ (out of 3 new replicas have been updated|old replicas are pending termination|of [0-9]+ updated replicas are available)\.\.\.|Waiting for deployment spec update to be observed\.\.\.|deployment "kubia" successfully rolled out)$' "status line"
done <<<"$out"
wait_for 20 "rolled out" rolled_out
same_output "rollout status (done)" rollout status deployment/kubia
same_output "rollout status deploy NAME" rollout status deploy kubia --watch=false
ok "rollout status watches to the end, both CLIs agree"
# }======

# {====== a template change, history
kc patch deployment kubia -p '{"metadata":{"annotations":{"kubernetes.io/change-cause":"set VERSION=v2"}},"spec":{"template":{"spec":{"containers":[{"name":"kubia","env":[{"name":"VERSION","value":"v2"}]}]}}}}' >/dev/null \
  || fail "patch template"
ml rollout status deployment/kubia >"$ML_TMP/ml-status" 2>&1 &
mlpid=$!
ko=$(kc rollout status deployment/kubia --timeout=60s) || fail "kubectl rollout status failed: $ko"
wait "$mlpid" || fail "moonlet rollout status failed: $(cat "$ML_TMP/ml-status")"
expect_eq "$(tail -n1 "$ML_TMP/ml-status")" 'deployment "kubia" successfully rolled out' "moonlet status after the change"
expect_eq "$(tail -n1 <<<"$ko")" 'deployment "kubia" successfully rolled out' "kubectl status after the change"
wait_for 20 "rolled out" rolled_out
out=$(ml rollout history deployment/kubia)
expect_eq "$out" "$(printf 'deployment.apps/kubia \nREVISION  CHANGE-CAUSE\n1         <none>\n2         set VERSION=v2')" "history"
same_output "rollout history" rollout history deployment/kubia
same_output "rollout history --revision=1" rollout history deployment/kubia --revision=1
same_output "rollout history --revision=2" rollout history deploy kubia --revision=2
same_output "rollout history --revision=9" rollout history deploy/kubia --revision=9
same_output "undo --dry-run=client" rollout undo deployment/kubia --dry-run=client
ok "rollout history and --revision print kubectl's text"

# describe: the same text up to the events (same-second events have no order)
mo=$(ml describe deployment kubia | sed '/^Events:/,$d')
ko=$(kc describe deployment kubia | sed '/^Events:/,$d')
expect_eq "$mo" "$ko" "describe deployment"
match "$mo" 'Replicas: +3 desired \| 3 updated \| 3 total \| 3 available \| 0 unavailable' "describe replicas"
match "$mo" 'NewReplicaSet: +kubia-[a-z0-9]+ \(3/3 replicas created\)' "describe new rs"
match "$(ml describe deployment kubia)" 'ScalingReplicaSet .*Scaled up replica set kubia-' "describe events"
ok "describe deployment matches kubectl"
# }======

# {====== pause / resume
expect_eq "$(ml rollout pause deployment/kubia)" "deployment.apps/kubia paused" "pause"
expect_eq "$(field '{.spec.paused}')" "true" "spec.paused"
same_output "pause twice" rollout pause deployment/kubia
same_output "restart while paused" rollout restart deployment/kubia
kc set env deployment/kubia VERSION=v3 >/dev/null || fail "set env v3"
wait_for 20 "paused change observed" observed
rs_count 2 || fail "a paused deployment rolled out a new ReplicaSet"
mo=$(ml rollout undo deployment/kubia 2>&1) && fail "undo of a paused deployment succeeded"
ko=$(kc rollout undo deployment/kubia 2>&1) && fail "kubectl undo of a paused deployment succeeded"
expect_eq "$mo" "${ko//kubectl/moonlet}" "undo while paused"
expect_eq "$(kc rollout resume deployment/kubia)" "deployment.apps/kubia resumed" "kubectl resume"
same_output "resume twice" rollout resume deployment/kubia
wait_for 60 "v3 rolled out" rolled_out
wait_for 20 "revision 3" revision_is 3
ok "pause holds the rollout, resume lets it go; both CLIs agree on the errors"
# }======

# {====== undo
same_output "undo to a missing revision" rollout undo deployment/kubia --to-revision=7
expect_eq "$(ml rollout undo deployment/kubia)" "deployment.apps/kubia rolled back" "undo"
wait_for 20 "revision 4" revision_is 4
wait_for 60 "undo rolled out" rolled_out
match "$(field '{.spec.template.spec.containers[0].env}')" '"value":"v2"' "undo brings back v2"
same_output "history after undo" rollout history deployment/kubia
expect_eq "$(ml rollout history deployment/kubia)" \
  "$(printf 'deployment.apps/kubia \nREVISION  CHANGE-CAUSE\n1         <none>\n3         set VERSION=v2\n4         set VERSION=v2')" "revisions 1 3 4"
same_output "undo to the current revision" rollout undo deployment/kubia --to-revision=4
expect_eq "$(kc rollout undo deployment/kubia --to-revision=1)" "deployment.apps/kubia rolled back" "kubectl undo"
wait_for 20 "revision 5" revision_is 5
wait_for 60 "undo to 1 rolled out" rolled_out
expect_eq "$(field '{.spec.template.spec.containers[0].env}')" "" "revision 1 has no env"
ok "rollout undo (previous and --to-revision) restores the templates"
# }======

# {====== restart
old_pods=$(ml get pods -l app=kubia -o name | sort | tr '\n' ' ')
restarted_s=$(date +%s)
expect_eq "$(ml rollout restart deployment/kubia)" "deployment.apps/kubia restarted" "restart"
match "$(field '{.spec.template.metadata.annotations}')" 'kubectl.kubernetes.io/restartedAt":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}(Z|[+-][0-9:]{5})"' "restartedAt"
wait_for 20 "revision 6" revision_is 6
wait_for 60 "restart rolled out" rolled_out
no_old_pods() {
  local p
  for p in $old_pods; do ml get "$p" >/dev/null 2>&1 && return 1; done
  return 0
}
wait_for 60 "the old pods are gone" no_old_pods
# restartedAt has one-second resolution: kubectl refuses a second restart in
# the same second ("already been triggered within the past second").
later_than() { [ "$(date +%s)" -gt $(($1 + 1)) ]; }
wait_for 5 "the restart's second is over" later_than "$restarted_s"
expect_eq "$(kc rollout restart deployment/kubia)" "deployment.apps/kubia restarted" "kubectl restart"
wait_for 20 "revision 7" revision_is 7
ok "rollout restart replaces every pod"
# }======

# {====== scale
expect_eq "$(ml scale deployment kubia --replicas=5)" "deployment.apps/kubia scaled" "scale up"
wait_for 60 "5 replicas" rolled_out
expect_eq "$(field '{.status.availableReplicas}')" 5 "5 available"
same_output "scale precondition" scale deploy/kubia --replicas=2 --current-replicas=4
expect_eq "$(ml scale deploy/kubia --replicas=2 --current-replicas=5)" "deployment.apps/kubia scaled" "scale with a precondition"
wait_for 60 "2 replicas" rolled_out
# (kubectl's own --current-replicas PUT needs discovery to name the scale
# subresource's kind autoscaling/v1 Scale: not served yet)
expect_eq "$(kc scale deployment kubia --replicas=4)" "deployment.apps/kubia scaled" "kubectl scale"
wait_for 60 "4 replicas" rolled_out
expect_eq "$(ml scale deploy kubia --replicas=3 -o name)" "deployment.apps/kubia" "scale -o name"
wait_for 60 "3 replicas" rolled_out
ok "scale through the scale subresource, with --current-replicas"
# }======

# {====== DaemonSets: status, history and undo through ControllerRevisions
if [ -f "$ML_SRC/plugins/kinds/controllerrevision.lua" ] && [ -f "$ML_SRC/plugins/controllers/daemonset.lua" ]; then
  cat >"$ML_TMP/ds.yaml" <<'YAML'
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels:
      app: agent
  template:
    metadata:
      labels:
        app: agent
    spec:
      containers:
        - name: main
          image: agent
          command: ["sleep", "3600"]
YAML
  ml apply -f "$ML_TMP/ds.yaml" >/dev/null || fail "create ds"
  expect_eq "$(ml rollout status ds/agent --timeout=60s | tail -n1)" 'daemon set "agent" successfully rolled out' "ds status"
  kc set env ds/agent MODE=v2 >/dev/null || fail "ds set env"
  expect_eq "$(ml rollout status daemonset agent --timeout=60s | tail -n1)" 'daemon set "agent" successfully rolled out' "ds status v2"
  crs() { [ "$(ml get controllerrevisions -l app=agent -o name | wc -l)" = "$1" ]; }
  wait_for 20 "two ControllerRevisions" crs 2
  same_output "ds history" rollout history ds/agent
  same_output "ds history --revision=1" rollout history ds/agent --revision=1
  # (kubectl compares the revision's bytes with its own Go encoding of the
  # DaemonSet, which a Lua controller cannot reproduce: it patches instead)
  expect_eq "$(ml rollout undo ds/agent --to-revision=2)" \
    "daemonset.apps/agent skipped rollback (current template already matches revision 2)" "ds undo to the current revision"
  same_output "ds undo to a missing revision" rollout undo ds/agent --to-revision=9
  expect_eq "$(ml rollout undo ds/agent)" "daemonset.apps/agent rolled back" "ds undo"
  expect_eq "$(ml get ds agent -o 'jsonpath={.spec.template.spec.containers[0].env}')" "" "ds undo restores revision 1"
  expect_eq "$(ml rollout status ds/agent --timeout=60s | tail -n1)" 'daemon set "agent" successfully rolled out' "ds status after undo"
  ok "DaemonSet rollout status, history and undo agree with kubectl"
fi
# }======

# {====== progress deadline
cat >"$ML_TMP/stuck.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: stuck
spec:
  replicas: 1
  progressDeadlineSeconds: 2
  selector:
    matchLabels:
      app: stuck
  template:
    metadata:
      labels:
        app: stuck
    spec:
      containers:
        - name: main
          image: stuck
          command: ["sleep", "3600"]
          readinessProbe:
            exec:
              command: ["false"]
            periodSeconds: 1
YAML
ml apply -f "$ML_TMP/stuck.yaml" >/dev/null || fail "create stuck"
mr=0; mo=$(ml rollout status deployment/stuck 2>"$ML_TMP/me") || mr=$?
expect_eq "$mr" 1 "moonlet status exit on deadline"
expect_eq "$(cat "$ML_TMP/me")" 'error: deployment "stuck" exceeded its progress deadline' "moonlet deadline message"
match "$mo" 'Waiting for deployment "stuck" rollout to finish: 0 of 1 updated replicas are available\.\.\.' "waiting line"
same_output "status after the deadline" rollout status deployment/stuck
ok "rollout status fails once the progress deadline is exceeded"
# }======

finish
