# Server-side apply with the machine's kubectl and with `moonlet apply
# --server-side`: the apply creates, records its fields in managedFields,
# another writer's change makes the next apply conflict (kubectl's message,
# exit 1) until --force-conflicts, fields the manager stops applying go
# unless someone else owns them, `kubectl scale` takes spec.replicas, and
# a Deployment applied server-side still rolls out.
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
kc() { kubectl --request-timeout=20s "$@"; }

start_server --image-path "$ML_SRC/examples/images"
ok "server started"

managers() { kc get "$@" -o jsonpath='{range .metadata.managedFields[*]}{.manager}/{.operation}/{.subresource};{end}'; }

cat >"$ML_TMP/cm.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: ssa
  labels: {team: a}
data:
  k1: v1
  k2: v2
EOF
out=$(kc apply --server-side -f "$ML_TMP/cm.yaml")
expect_eq "$out" "configmap/ssa serverside-applied" "kubectl apply --server-side creates"
expect_eq "$(managers cm ssa)" "kubectl/Apply/;" "the applier owns the object's fields"
fields=$(kc get cm ssa -o jsonpath='{.metadata.managedFields[0].fieldsV1}')
expect_eq "$fields" '{"f:data":{"f:k1":{},"f:k2":{}},"f:metadata":{"f:labels":{"f:team":{}}}}' "FieldsV1 of the applied fields"
out=$(kc apply --server-side -f "$ML_TMP/cm.yaml")
expect_eq "$out" "configmap/ssa serverside-applied" "applying again is no conflict"
ok "apply creates and owns what it applied"

kc patch cm ssa --type merge -p '{"data":{"k1":"edited"}}' >/dev/null
expect_eq "$(managers cm ssa)" "kubectl/Apply/;kubectl-patch/Update/;" "the patch is recorded as an Update"
rc=0
out=$(kc apply --server-side -f "$ML_TMP/cm.yaml" 2>&1) || rc=$?
expect_eq "$rc" 1 "a conflicting apply fails"
expect_contains "$out" 'error: Apply failed with 1 conflict: conflict with "kubectl-patch" using v1: .data.k1' "kubectl shows the conflict"
expect_eq "$(kc get cm ssa -o jsonpath='{.data.k1}')" edited "nothing changed"
rc=0
out=$(ml apply --server-side -f "$ML_TMP/cm.yaml" 2>&1) || rc=$?
expect_eq "$rc" 1 "moonlet apply --server-side fails the same way"
expect_contains "$out" 'error: Apply failed with 1 conflict: conflict with "kubectl-patch" using v1: .data.k1' "moonlet shows the conflict"
expect_contains "$out" "--force-conflicts" "and how to force it"
out=$(kc apply --server-side --force-conflicts -f "$ML_TMP/cm.yaml")
expect_eq "$out" "configmap/ssa serverside-applied" "--force-conflicts applies"
expect_eq "$(kc get cm ssa -o jsonpath='{.data.k1}')" v1 "the forced value"
expect_eq "$(managers cm ssa)" "kubectl/Apply/;" "the field changed hands"
ok "conflicts with another manager, and forcing them"

kc label cm ssa extra=kept >/dev/null
cat >"$ML_TMP/cm2.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: ssa
data:
  k2: v2
EOF
out=$(ml apply --server-side -f "$ML_TMP/cm2.yaml")
expect_eq "$out" "configmap/ssa serverside-applied" "moonlet apply --server-side"
expect_eq "$(kc get cm ssa -o jsonpath='{.data}')" '{"k2":"v2"}' "k1, no longer applied, is gone"
expect_eq "$(kc get cm ssa -o jsonpath='{.metadata.labels}')" '{"extra":"kept"}' "team goes, extra (kubectl-label's) stays"
ok "fields the manager stops applying are removed unless another manager owns them"

cat >"$ML_TMP/deploy.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: main
        image: busybox
        command: ["sleep", "987652"]
EOF
kc apply --server-side -f "$ML_TMP/deploy.yaml" >/dev/null
wait_for 30 "2 ready replicas" test "$(kc get deploy web -o jsonpath='{.status.readyReplicas}')" = 2
kc scale deploy web --replicas=3 >/dev/null
expect_contains "$(managers deploy web)" "kubectl/Update/scale;" "kubectl scale owns spec.replicas"
expect_contains "$(managers deploy web)" "moonlet/Update/status;" "the controller's status writes are recorded"
rc=0
out=$(kc apply --server-side -f "$ML_TMP/deploy.yaml" 2>&1) || rc=$?
expect_eq "$rc" 1 "re-applying replicas: 2 conflicts"
expect_contains "$out" 'conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas' "with the scaler"
sed -i 's/^  replicas: 2$//' "$ML_TMP/deploy.yaml"
sed -i 's/image: busybox/image: busybox\n        env: [{name: V, value: "2"}]/' "$ML_TMP/deploy.yaml"
kc apply --server-side -f "$ML_TMP/deploy.yaml" >/dev/null
wait_for 60 "the rollout of the new template" kc rollout status deploy/web --timeout=1s
expect_eq "$(kc get deploy web -o jsonpath='{.spec.replicas}')" 3 "replicas stay the scaler's"
ok "a Deployment applied server-side scales and rolls out"

echo "1..$ML_TESTS"
