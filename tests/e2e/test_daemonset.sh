# The chapter's DaemonSet experiments on the real server, with moonlet and
# kubectl: ssd-monitor-daemonset.yaml (unchanged) has 0 desired until the node
# is labelled disk=ssd, then runs a pod printing SSD OK; disk=hdd removes it; a
# cordoned node still runs it; a template change rolls out (ControllerRevision,
# rollout status/history/undo); deleting the DaemonSet removes its pods.
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
start_server --node-name n1 --image-path "$ML_SRC/examples/images"
ok "server started"
export KUBECONFIG="$ML_DATA/kubeconfig"
kc() { kubectl --request-timeout=20s "$@"; }
match() { grep -Eq -- "$2" <<<"$1" || fail "$3: /$2/ does not match [$1]"; }

# name of the live (not terminating) pod of the DaemonSet, if any
ds_pod() {
  ml get pods -l app=ssd-monitor \
    -o 'jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{"\n"}{end}' \
    | awk '$2 == "" { print $1 }'
}
pod_count() { [ "$(ml get pods -l app=ssd-monitor -o name | wc -l)" -eq "$1" ]; }
running_on_n1() {
  local p
  p=$(ds_pod)
  [ -n "$p" ] && [ "$(ml get pod "$p" -o 'jsonpath={.status.phase} {.spec.nodeName}')" = "Running n1" ]
}
ds_status() { [ "$(ml get ds ssd-monitor -o "jsonpath=$1")" = "$2" ]; }

# the chapter's manifest, as printed
DS_YAML="$ML_SRC/examples/chapter/ssd-monitor-daemonset.yaml"

expect_eq "$(kc create -f "$DS_YAML")" "daemonset.apps/ssd-monitor created" "kubectl create"
wait_for 20 "status observed" ds_status '{.status.observedGeneration}' 1
match "$(kc get daemonsets)" '^NAME +DESIRED +CURRENT +READY +UP-TO-DATE +AVAILABLE +NODE SELECTOR +AGE' \
  "kubectl get ds header"
match "$(kc get daemonsets)" 'ssd-monitor +0 +0 +0 +0 +0 +disk=ssd +[0-9]+s' "kubectl get ds: all 0"
match "$(ml get ds)" 'ssd-monitor +0 +0 +0 +0 +0 +disk=ssd +[0-9]+s' "moonlet get ds: all 0"
match "$(kc get ds -o wide)" 'CONTAINERS +IMAGES +SELECTOR' "get ds -o wide header"
match "$(kc get ds -o wide)" 'disk=ssd +[0-9]+s +main +idealism/ssd-monitor +app=ssd-monitor' "get ds -o wide"
expect_eq "$(kc get pods 2>&1)" "No resources found in default namespace." "no pods yet"
ok "the DaemonSet exists with 0 desired and no pods"

expect_eq "$(kc label node n1 disk=ssd)" "node/n1 labeled" "label node"
wait_for 30 "a daemon pod Running on n1" running_on_n1
pod=$(ds_pod)
match "$pod" '^ssd-monitor-[bcdfghjklmnpqrstvwxz2456789]{5}$' "pod name"
logs_ok() { ml logs "$pod" | grep -q 'SSD OK'; }
wait_for 20 "SSD OK in the logs" logs_ok
match "$(kc logs "$pod")" 'SSD OK' "kubectl logs"
wait_for 20 "ready and available" ds_status '{.status.numberAvailable}' 1
match "$(kc get ds ssd-monitor)" 'ssd-monitor +1 +1 +1 +1 +1 +disk=ssd ' "get ds: 1 everywhere"
expect_eq "$(kc rollout status ds/ssd-monitor --timeout=20s)" 'daemon set "ssd-monitor" successfully rolled out' \
  "kubectl rollout status"
expect_eq "$(ml rollout status ds/ssd-monitor --timeout=20s)" 'daemon set "ssd-monitor" successfully rolled out' \
  "moonlet rollout status"
ok "label node disk=ssd: a pod starts there and logs SSD OK"

desc=$(ml describe ds ssd-monitor)
match "$desc" 'Node-Selector: +disk=ssd' "describe node selector"
match "$desc" 'Desired Number of Nodes Scheduled: 1' "describe desired"
match "$desc" 'Pods Status: +1 Running / 0 Waiting / 0 Succeeded / 0 Failed' "describe pods status"
match "$desc" "SuccessfulCreate +[0-9a-z]+ +daemonset-controller +Created pod: $pod" "describe events"
# both describers agree up to the Events section (event ages move)
expect_eq "$(sed '/^Events:/,$d' <<<"$desc")" "$(kc describe ds ssd-monitor | sed '/^Events:/,$d')" \
  "moonlet and kubectl describe ds"
ok "describe ds as kubectl prints it"

expect_eq "$(kc label node n1 disk=hdd --overwrite)" "node/n1 labeled" "relabel node"
wait_for 30 "the daemon pod is gone" pod_count 0
match "$(kc get ds ssd-monitor)" 'ssd-monitor +0 +0 +0 +0 +0 +disk=ssd ' "get ds: back to 0"
match "$(ml get events --field-selector involvedObject.name=ssd-monitor -o 'jsonpath={.items[*].message}')" \
  "Deleted pod: $pod" "SuccessfulDelete event"
ok "label node disk=hdd --overwrite: the pod terminates"

# a cordoned node still runs daemons (they tolerate node.kubernetes.io/unschedulable)
kc patch node n1 -p '{"spec":{"unschedulable":true}}' >/dev/null || fail "cordon"
match "$(kc get node n1)" 'SchedulingDisabled' "node cordoned"
ml label node n1 disk=ssd --overwrite >/dev/null || fail "moonlet label node"
wait_for 30 "a daemon pod Running on the cordoned node" running_on_n1
ok "a cordoned node still runs the daemon pod"
kc patch node n1 -p '{"spec":{"unschedulable":false}}' >/dev/null || fail "uncordon"

# a template change rolls out (maxUnavailable 1): new pod, new revision
old=$(ds_pod)
old_hash=$(ml get pod "$old" -o 'jsonpath={.metadata.labels.controller-revision-hash}')
kc set env ds/ssd-monitor SSD_MONITOR_PERIOD=1 >/dev/null || fail "set env"
rolled() {
  local p
  p=$(ds_pod)
  [ -n "$p" ] && [ "$p" != "$old" ] && running_on_n1 \
    && [ "$(ml get pod "$p" -o 'jsonpath={.metadata.labels.controller-revision-hash}')" != "$old_hash" ]
}
wait_for 40 "the new template's pod Running" rolled
wait_for 20 "old pod gone" sh -c "! $ML_BIN get pod $old >/dev/null 2>&1"
expect_eq "$(kc rollout status ds/ssd-monitor --timeout=30s | tail -n 1)" \
  'daemon set "ssd-monitor" successfully rolled out' "rollout status after the update"
expect_eq "$(ml get pod "$(ds_pod)" -o 'jsonpath={.metadata.labels.pod-template-generation}')" 2 "template generation"
match "$(kc get controllerrevisions)" "ssd-monitor-$old_hash +daemonset.apps/ssd-monitor +1 " "revision 1"
match "$(kc rollout history ds/ssd-monitor)" '^1 +<none>' "rollout history"
match "$(kc rollout history ds/ssd-monitor)" $'\n2 +<none>' "rollout history 2"
ok "a template change rolls out with a new ControllerRevision"

# kubectl's rollback applies revision 1's template; that revision becomes 3
new=$(ds_pod)
expect_eq "$(kc rollout undo ds/ssd-monitor)" "daemonset.apps/ssd-monitor rolled back" "rollout undo"
back() {
  local p
  p=$(ds_pod)
  [ -n "$p" ] && [ "$p" != "$new" ] && running_on_n1 \
    && [ "$(ml get pod "$p" -o 'jsonpath={.metadata.labels.controller-revision-hash}')" = "$old_hash" ]
}
wait_for 40 "revision 1's pod back" back
expect_eq "$(ml get controllerrevision "ssd-monitor-$old_hash" -o 'jsonpath={.revision}')" 3 "renumbered revision"
expect_eq "$(ml get ds ssd-monitor -o 'jsonpath={.spec.template.spec.containers[0].env}')" "" "env gone again"
ok "kubectl rollout undo ds brings the previous template back"

kc delete ds ssd-monitor >/dev/null || fail "delete ds"
wait_for 30 "daemon pods gone" pod_count 0
no_revisions() { [ -z "$(ml get controllerrevisions -o name)" ]; }
wait_for 30 "revisions gone" no_revisions
ok "deleting the DaemonSet removes its pods and revisions"

finish
