# The chapter's ReplicaSet experiments through the real server with real
# processes, driven by both `moonlet` and kubectl: 3 pods Running, a deleted
# pod replaced, a relabelled pod released and replaced, an unrelated label
# ignored, `kubectl scale rs`, `delete --cascade=orphan` then adoption by a
# new ReplicaSet without restarts, `describe rs`, and the chapter's
# matchExpressions typo refused with a 422 naming the missing key.
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
# A relative --image-path is the server's working directory's, not the
# pods' (they run elsewhere).
cd "$ML_SRC"
start_server --node-name n1 --image-path examples/images
cd - >/dev/null
ok "server started (relative --image-path)"
export KUBECONFIG="$ML_DATA/kubeconfig"
kc() { kubectl --request-timeout=20s "$@"; }

jp() { ml get "$@" 2>/dev/null; }
owned_pods() { # names of the running-or-pending pods controlled by rs $1
  local uid
  uid=$(ml get rs "$1" -o 'jsonpath={.metadata.uid}')
  ml get pods -o 'jsonpath={range .items[*]}{.metadata.name} {.metadata.ownerReferences[0].uid} {.status.phase} {.metadata.deletionTimestamp}{"\n"}{end}' \
    | awk -v u="$uid" '$2 == u && $4 == "" { print $1 }'
}
count_running() { # rs, n: n owned pods and all Running
  local uid n
  uid=$(ml get rs "$1" -o 'jsonpath={.metadata.uid}')
  n=$(ml get pods -o 'jsonpath={range .items[*]}{.metadata.ownerReferences[0].uid} {.status.phase} {.metadata.deletionTimestamp}{"\n"}{end}' \
    | awk -v u="$uid" '$1 == u && $2 == "Running" && $3 == "" { c++ } END { print c + 0 }')
  [ "$n" = "$2" ]
}
# expect_match over a here-string: `echo | grep -q` under pipefail fails
# when grep exits before echo has written everything.
match() { grep -Eq -- "$2" <<<"$1" || fail "$3: /$2/ does not match [$1]"; }
ready_is() { [ "$(ml get rs "$1" -o 'jsonpath={.status.readyReplicas}')" = "$2" ]; }

# kubia-replicaset.yaml: the chapter's kubia Deployment as a bare ReplicaSet
RS_YAML="$ML_SRC/examples/chapter/kubia-replicaset.yaml"
ml apply -f "$RS_YAML" >/dev/null || fail "create rs"
wait_for 30 "3 pods Running" count_running kubia 3
wait_for 20 "status ready 3" ready_is kubia 3
match "$(kc get rs kubia)" 'kubia +3 +3 +3 ' "kubectl get rs"
match "$(kc get rs -o wide)" 'kubia +3 +3 +3 +[0-9a-z]+ +kubia +idealism/kubia +app=kubia' "get rs -o wide"
expect_contains "$(ml get events --field-selector involvedObject.name=kubia -o 'jsonpath={.items[*].message}')" \
  "Created pod: kubia-" "SuccessfulCreate events"
ok "rs created 3 Running pods"

victim=$(owned_pods kubia | sed -n 1p)
kc delete pod "$victim" --wait=false >/dev/null || fail "delete pod"
wait_for 30 "replacement Running" sh -c "! $ML_BIN get pod $victim >/dev/null 2>&1"
wait_for 30 "3 pods Running again" count_running kubia 3
ok "a deleted pod is replaced"

moved=$(owned_pods kubia | sed -n 1p)
kc label pod "$moved" app=foo --overwrite >/dev/null || fail "relabel"
wait_for 20 "released" sh -c "[ -z \"\$($ML_BIN get pod $moved -o 'jsonpath={.metadata.ownerReferences}')\" ]"
wait_for 30 "replaced" count_running kubia 3
expect_eq "$(ml get pod "$moved" -o 'jsonpath={.status.phase}')" Running "released pod keeps running"
kc delete pod "$moved" --wait=false >/dev/null
ok "a relabelled pod is released and replaced"

before=$(owned_pods kubia | sort | tr '\n' ' ')
kc label pod "$(owned_pods kubia | sed -n 1p)" env=debug >/dev/null || fail "label env"
sleep 1
expect_eq "$(owned_pods kubia | sort | tr '\n' ' ')" "$before" "unrelated label changes nothing"
ok "an unrelated label changes nothing"

kc scale rs kubia --replicas=5 >/dev/null || fail "kubectl scale up"
wait_for 30 "5 Running" count_running kubia 5
kc scale rs kubia --current-replicas=5 --replicas=2 >/dev/null || fail "kubectl scale down with a precondition"
two_left() { [ "$(owned_pods kubia | wc -l)" -eq 2 ]; }
wait_for 30 "2 left" two_left
ok "kubectl scale rs up and down (scale subresource)"

desc=$(kc describe rs kubia)
match "$desc" 'Replicas: +2 current / 2 desired' "describe replicas"
match "$desc" 'Pods Status: +2 Running / 0 Waiting / 0 Succeeded / 0 Failed' "describe pods status"
match "$desc" 'SuccessfulDelete +[0-9a-z]+ +replicaset-controller +Deleted pod: kubia-' "describe events"
match "$(ml describe rs kubia)" 'Selector: +app=kubia' "moonlet describe rs"
ok "describe rs"

kept=$(owned_pods kubia | sort | tr '\n' ' ')
kc delete rs kubia --cascade=orphan >/dev/null || fail "delete orphan"
wait_for 20 "rs gone" sh -c "! $ML_BIN get rs kubia >/dev/null 2>&1"
sleep 1
for p in $kept; do
  expect_eq "$(ml get pod "$p" -o 'jsonpath={.status.phase}')" Running "orphaned pod $p still running"
done
ok "delete rs --cascade=orphan keeps the pods"

sed 's/replicas: 3/replicas: 2/; s/name: kubia$/name: kubia2/' "$RS_YAML" >"$ML_TMP/kubia2.yaml"
kc apply -f "$ML_TMP/kubia2.yaml" >/dev/null || fail "create kubia2"
adopted_ok() { [ "$(owned_pods kubia2 | sort | tr '\n' ' ')" = "$kept" ]; }
wait_for 20 "kubia2 adopts the orphans" adopted_ok
for p in $kept; do
  expect_eq "$(ml get pod "$p" -o 'jsonpath={.status.containerStatuses[0].restartCount}')" 0 "no restart of $p"
done
ok "a new rs adopts the orphans without restarts"

# the chapter's matchExpressions example as it prints it (a Deployment)
TYPO="$ML_SRC/examples/chapter/kubia-deployment-matchexpressions-typo.yaml"
out=$(kc create -f "$TYPO" --validate=false 2>&1) && fail "typo accepted"
expect_contains "$out" 'spec.selector.matchExpressions[0].key' "422 names the missing key"
out=$(kc create -f "$TYPO" 2>&1) && fail "typo accepted (strict)"
expect_contains "$out" 'unknown field "spec.selector.matchExpressions[0].app"' "strict names the unknown field"
ok "the chapter's matchExpressions typo is refused"

kc delete rs kubia2 >/dev/null || fail "delete kubia2"
wait_for 30 "pods of kubia2 deleted" sh -c "! $ML_BIN get pods -o name | grep -q ."
ok "delete rs removes its pods"

stop_server
finish
