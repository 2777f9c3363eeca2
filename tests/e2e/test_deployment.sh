# The chapter's Deployment experiments through the real server with real
# processes, driven by both `moonlet` and kubectl, with the chapter's
# kubia-deployment.yaml unchanged: 3 pods kubia-<hash>-<5> Running; a deleted
# pod replaced; an unrelated label ignored; a relabelled pod released and
# replaced; delete --cascade=orphan then create again adopts the ReplicaSet
# with no pod restarted; `kubectl edit` of the template rolls to a new
# ReplicaSet with a surge and the old one at 0; `kubectl scale`; a deleted
# owned ReplicaSet made again; `get deploy` columns; the selector defaulted
# from the template labels; a selector/labels mismatch refused with a 422.
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
start_server --node-name n1 --image-path "$ML_SRC/examples/images"
ok "server started"
export KUBECONFIG="$ML_DATA/kubeconfig"
kc() { kubectl --request-timeout=20s "$@"; }
match() { grep -Eq -- "$2" <<<"$1" || fail "$3: /$2/ does not match [$1]"; }

SAFE='[bcdfghjklmnpqrstvwxz2456789]'
field() { ml get deploy kubia -o "jsonpath=$1"; }
new_rs() { # the ReplicaSet holding the Deployment's revision
  local rev
  rev=$(field '{.metadata.annotations.deployment\.kubernetes\.io/revision}')
  ml get rs -o 'jsonpath={range .items[*]}{.metadata.name} {.metadata.annotations.deployment\.kubernetes\.io/revision}{"\n"}{end}' \
    | awk -v r="$rev" '$2 == r { print $1 }'
}
owned_pods() { # live pods controlled by rs $1
  local uid
  uid=$(ml get rs "$1" -o 'jsonpath={.metadata.uid}')
  ml get pods -o 'jsonpath={range .items[*]}{.metadata.name} {.metadata.ownerReferences[0].uid} {.status.phase} {.metadata.deletionTimestamp}{"\n"}{end}' \
    | awk -v u="$uid" '$2 == u && $4 == "" { print $1 }'
}
running_of() { # rs n: n live pods of rs, all Running
  local uid n
  uid=$(ml get rs "$1" -o 'jsonpath={.metadata.uid}') || return 1
  n=$(ml get pods -o 'jsonpath={range .items[*]}{.metadata.ownerReferences[0].uid} {.status.phase} {.metadata.deletionTimestamp}{"\n"}{end}' \
    | awk -v u="$uid" '$1 == u && $2 == "Running" && $3 == "" { c++ } END { print c + 0 }')
  [ "$n" = "$2" ]
}
rolled_out() { # n: the Deployment reports n updated, available, observed
  [ "$(field '{.metadata.generation}')" = "$(field '{.status.observedGeneration}')" ] &&
    [ "$(field '{.status.updatedReplicas}/{.status.availableReplicas}/{.status.replicas}')" = "$1/$1/$1" ]
}
live_pods() { ml get pods -o 'jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{"\n"}{end}' | awk '$2 == "" { print $1 }'; }

# the chapter's manifest, unchanged
DEPLOY="$ML_SRC/examples/chapter/kubia-deployment.yaml"

expect_eq "$(kc create -f "$DEPLOY")" "deployment.apps/kubia created" "create"
has_new_rs() { [ -n "$(new_rs)" ]; }
wait_for 20 "a new replica set" has_new_rs
rs1=$(new_rs)
match "$rs1" "^kubia-$SAFE{1,10}\$" "replica set name"
wait_for 30 "3 pods Running" running_of "$rs1" 3
for p in $(owned_pods "$rs1"); do match "$p" "^$rs1-$SAFE{5}\$" "pod name"; done
wait_for 20 "deployment status 3/3" rolled_out 3
match "$(kc get deploy kubia)" '^NAME +READY +UP-TO-DATE +AVAILABLE +AGE' "kubectl get deploy header"
match "$(kc get deploy kubia)" 'kubia +3/3 +3 +3 +[0-9]+s' "kubectl get deploy row"
match "$(ml get deploy kubia)" 'kubia +3/3 +3 +3 +[0-9]+s' "moonlet get deploy row"
match "$(kc get deploy -o wide)" 'CONTAINERS +IMAGES +SELECTOR' "wide header"
match "$(kc get deploy -o wide)" 'kubia +3/3 +3 +3 +[0-9]+s +kubia +idealism/kubia +app=kubia' "wide row"
match "$(kc get rs)" "$rs1 +3 +3 +3 " "kubectl get rs"
expect_eq "$(ml get rs "$rs1" -o 'jsonpath={.spec.selector.matchLabels.pod-template-hash}')" "${rs1#kubia-}" \
  "pod-template-hash in the rs selector"
expect_eq "$(ml get rs "$rs1" -o 'jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}')" \
  "Deployment/kubia" "rs owned by the deployment"
match "$(kc describe deploy kubia 2>/dev/null || ml get events -o 'jsonpath={.items[*].message}')" \
  "Scaled up replica set $rs1 to 3" "ScalingReplicaSet event"
ok "create: one replica set kubia-<hash>, 3 pods kubia-<hash>-<5> Running, kubectl's columns"

# `logs deploy/NAME` reads one of its pods, as kubectl does (same choice).
wait_for 20 "a kubia pod has logged" sh -c "$ML_BIN logs deploy/kubia 2>/dev/null | grep -q 'Kubia server starting'"
ml logs deploy/kubia >/dev/null 2>"$ML_TMP/logs.err"
kc logs deploy/kubia >/dev/null 2>"$ML_TMP/klogs.err"
match "$(cat "$ML_TMP/logs.err")" "^Found 3 pods, using pod/$rs1-[a-z0-9]{5}\$" "moonlet logs deploy names its pod"
expect_eq "$(cat "$ML_TMP/logs.err")" "$(cat "$ML_TMP/klogs.err")" "moonlet and kubectl read the same pod"
ok "logs deploy/kubia"

victim=$(owned_pods "$rs1" | sed -n 1p)
kc delete pod "$victim" --wait=false >/dev/null || fail "delete pod"
wait_for 30 "victim gone" sh -c "! $ML_BIN get pod $victim >/dev/null 2>&1"
wait_for 30 "3 pods Running again" running_of "$rs1" 3
ok "a deleted pod is replaced"

before=$(owned_pods "$rs1" | sort | tr '\n' ' ')
special=$(owned_pods "$rs1" | sed -n 1p)
kc label pod "$special" type=special >/dev/null || fail "label type=special"
sleep 1 # an absence of change: nothing to wait for
expect_eq "$(owned_pods "$rs1" | sort | tr '\n' ' ')" "$before" "unrelated label changes nothing"
ok "label type=special changes nothing"

ml label pod "$special" app=foo --overwrite >/dev/null || fail "relabel"
wait_for 20 "released" sh -c "[ -z \"\$($ML_BIN get pod $special -o 'jsonpath={.metadata.ownerReferences}')\" ]"
wait_for 30 "replaced" running_of "$rs1" 3
expect_eq "$(ml get pod "$special" -o 'jsonpath={.status.phase}')" Running "released pod keeps running"
kc delete pod "$special" --wait=false >/dev/null
ok "label app=foo --overwrite: released and replaced"

kept=$(owned_pods "$rs1" | sort | tr '\n' ' ')
uids=$(ml get pods -l app=kubia -o 'jsonpath={range .items[*]}{.metadata.uid}{"\n"}{end}' | sort | tr '\n' ' ')
kc delete deployment kubia --cascade=orphan >/dev/null || fail "delete --cascade=orphan"
wait_for 20 "deployment gone" sh -c "! $ML_BIN get deploy kubia >/dev/null 2>&1"
wait_for 20 "rs orphaned" sh -c "[ -z \"\$($ML_BIN get rs $rs1 -o 'jsonpath={.metadata.ownerReferences}')\" ]"
expect_eq "$(owned_pods "$rs1" | sort | tr '\n' ' ')" "$kept" "pods stay with the orphaned rs"
ml apply -f "$DEPLOY" >/dev/null || fail "create again"
adopted() { [ "$(ml get rs "$rs1" -o 'jsonpath={.metadata.ownerReferences[0].uid}')" = "$(field '{.metadata.uid}')" ]; }
wait_for 20 "the new deployment adopts the rs" adopted
wait_for 20 "deployment status 3/3 again" rolled_out 3
expect_eq "$(new_rs)" "$rs1" "no new replica set"
expect_eq "$(ml get rs -o name | wc -l | tr -d ' ')" 1 "one replica set"
expect_eq "$(ml get pods -l app=kubia -o 'jsonpath={range .items[*]}{.metadata.uid}{"\n"}{end}' | sort | tr '\n' ' ')" \
  "$uids" "same pods"
for p in $kept; do
  expect_eq "$(ml get pod "$p" -o 'jsonpath={.status.containerStatuses[0].restartCount}')" 0 "no restart of $p"
done
ok "delete --cascade=orphan, create again: adopted, same pods, no restarts"

# the chapter's `kubectl edit deployment kubia`: a new image (tags are
# ignored by the image path, so v2 runs the same server)
KUBE_EDITOR="sed -i 's|image: idealism/kubia\$|image: idealism/kubia:v2|'" kc edit deployment kubia >/dev/null \
  || fail "kubectl edit"
expect_eq "$(field '{.spec.template.spec.containers[0].image}')" "idealism/kubia:v2" "edited"
wait_for 20 "revision 2" sh -c "[ \"\$($ML_BIN get deploy kubia -o 'jsonpath={.metadata.annotations.deployment\.kubernetes\.io/revision}')\" = 2 ]"
rs2=$(new_rs)
[ "$rs2" != "$rs1" ] || fail "no new replica set"
wait_for 60 "rolled out to $rs2" rolled_out 3
wait_for 30 "3 new pods Running" running_of "$rs2" 3
wait_for 30 "old rs at 0" sh -c "[ \"\$($ML_BIN get rs $rs1 -o 'jsonpath={.spec.replicas}/{.status.replicas}')\" = 0/0 ]"
events=$(ml get events --field-selector involvedObject.name=kubia -o 'jsonpath={range .items[*]}{.message}{"\n"}{end}')
expect_contains "$events" "Scaled up replica set $rs2 to 1" "surge: the new rs starts at 1"
expect_contains "$events" "Scaled down replica set $rs1 to 2 from 3" "old rs scaled down after the surge"
expect_contains "$events" "Scaled down replica set $rs1 to 0 from 1" "old rs at 0"
# with 3 replicas maxSurge 25% is 1 and maxUnavailable 0: the first scale-up
# happened while the old set still had 3, i.e. 4 pods for a while
first_up=$(grep -n "Scaled up replica set $rs2 to 1" <<<"$events" | cut -d: -f1 | head -1)
first_down=$(grep -n "Scaled down replica set $rs1 to 2 from 3" <<<"$events" | cut -d: -f1 | head -1)
[ "$first_up" -lt "$first_down" ] || fail "scale-up before scale-down: [$events]"
match "$(kc get rs)" "$rs1 +0 +0 +0 " "old rs shows 0"
for p in $(owned_pods "$rs2"); do match "$p" "^$rs2-$SAFE{5}\$" "new pod name"; done
ok "kubectl edit of the template: new replica set, surge, old one at 0"

expect_eq "$(kc scale deployment kubia --replicas=5)" "deployment.apps/kubia scaled" "kubectl scale"
wait_for 30 "5 Running" running_of "$rs2" 5
wait_for 20 "deployment 5/5" rolled_out 5
match "$(ml get deploy kubia)" 'kubia +5/5 +5 +5 ' "get deploy after scale"
expect_eq "$(ml get rs "$rs2" -o 'jsonpath={.spec.replicas}')" 5 "rs scaled"
expect_eq "$(ml get rs "$rs1" -o 'jsonpath={.spec.replicas}')" 0 "old rs stays at 0"
ok "kubectl scale deployment kubia --replicas=5"

old_uid=$(ml get rs "$rs2" -o 'jsonpath={.metadata.uid}')
kc delete rs "$rs2" --wait=false >/dev/null || fail "delete owned rs"
remade() {
  local u
  u=$(ml get rs "$rs2" -o 'jsonpath={.metadata.uid}' 2>/dev/null) || return 1
  [ -n "$u" ] && [ "$u" != "$old_uid" ]
}
wait_for 30 "rs made again" remade
wait_for 60 "5 Running in the new copy" running_of "$rs2" 5
ok "a deleted owned replica set is made again (same name)"

cat >"$ML_TMP/noselector.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nosel
spec:
  replicas: 1
  template:
    metadata:
      labels:
        app: nosel
    spec:
      containers:
        - name: main
          image: idealism/kubia
YAML
ml apply -f "$ML_TMP/noselector.yaml" >/dev/null || fail "create without selector"
expect_eq "$(ml get deploy nosel -o 'jsonpath={.spec.selector.matchLabels.app}')" nosel "selector defaulted"
wait_for 30 "nosel rolled out" sh -c "[ \"\$($ML_BIN get deploy nosel -o 'jsonpath={.status.availableReplicas}')\" = 1 ]"
ml delete deploy nosel >/dev/null || fail "delete nosel"
ok "a manifest without a selector gets the template labels"

sed 's/^        app: kubia$/        app: foo/; s/name: kubia$/name: mismatch/' "$DEPLOY" >"$ML_TMP/mismatch.yaml"
grep -q 'app: foo' "$ML_TMP/mismatch.yaml" || fail "mismatch manifest"
out=$(kc create -f "$ML_TMP/mismatch.yaml" 2>&1) && fail "mismatch accepted"
expect_contains "$out" 'The Deployment "mismatch" is invalid: spec.template.metadata.labels: Invalid value: {"app":"foo"}: `selector` does not match template `labels`' "kubectl 422"
out=$(ml apply -f "$ML_TMP/mismatch.yaml" 2>&1) && fail "mismatch accepted by moonlet"
expect_contains "$out" 'spec.template.metadata.labels: Invalid value: {"app":"foo"}: `selector` does not match template `labels`' "moonlet 422"
out=$(kc patch deploy kubia -p '{"spec":{"selector":{"matchLabels":{"app":"other"}},"template":{"metadata":{"labels":{"app":"other"}}}}}' 2>&1) \
  && fail "selector changed"
expect_contains "$out" 'spec.selector: Invalid value: ' "immutable selector"
expect_contains "$out" 'field is immutable' "immutable selector message"
ok "selector mismatch and selector change refused with 422"

kc delete deploy kubia >/dev/null || fail "delete deployment"
all_gone() { [ -z "$(ml get rs -o name)" ] && [ -z "$(live_pods)" ]; }
wait_for 60 "everything collected" all_gone
ok "delete deployment removes its replica sets and pods"

stop_server
finish
