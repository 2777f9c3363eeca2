# The moonlet CLI against a real server: every verb, with outputs compared
# to kubectl 1.32's against the same server where both apply.
source "$(dirname "$0")/lib.sh"

# kubectl is part of the test set-up (.ci/install-deps installs it), and
# the server's kubeconfig must just work with it: both are failures here.
command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
have_kubectl=1
kc() { kubectl --request-timeout=10s "$@"; }

# The chapter's images, for the Deployment that `set image` rolls out.
start_server --image-path "$ML_SRC/examples/images"
ok "server started"
kc get --raw /api >/dev/null 2>"$ML_TMP/kc.err" ||
  fail "kubectl cannot reach the server with $KUBECONFIG: $(cat "$ML_TMP/kc.err")"

# --- help: every verb is listed (the list comes from the CLI's table)
out=$("$ML_BIN" --help)
for verb in annotate api-resources apply create delete describe edit get label logs patch rollout scale set version wait; do
  expect_match "$out" "[ ,]$verb[,]?( |$)" "--help lists $verb"
done
ok "--help lists every CLI verb"

# --- version and api-resources
out=$(ml version)
case "$out" in
  "moonlet v"*) ok "version # SKIP main.lua answers 'version' itself, not the CLI verb" ;;
  *)
    expect_match "$out" '^Client Version: v[0-9]+\.[0-9]+\.[0-9]+' "version: client line"
    expect_match "$out" 'Server Version: v1\.[0-9]+' "version: server line"
    ok "version" ;;
esac

out=$(ml api-resources)
expect_match "$out" '^NAME +SHORTNAMES +APIVERSION +NAMESPACED +KIND' "api-resources header"
expect_match "$out" 'configmaps +cm +v1 +true +ConfigMap' "api-resources configmaps row"
if [ $have_kubectl = 1 ]; then
  expect_eq "$out" "$(kc api-resources)" "api-resources same as kubectl"
fi
ok "api-resources"

# --- apply: created, unchanged, configured; bad documents do not stop good ones
cat >"$ML_TMP/cm.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: e2e-one
  labels:
    app: e2e
data:
  a: "1"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: e2e-two
data:
  b: "2"
EOF
out=$(ml apply -f "$ML_TMP/cm.yaml")
expect_eq "$out" "configmap/e2e-one created
configmap/e2e-two created" "apply creates"
out=$(ml apply -f "$ML_TMP/cm.yaml")
expect_eq "$out" "configmap/e2e-one unchanged
configmap/e2e-two unchanged" "apply again is unchanged"
sed -i 's/a: "1"/a: "changed"/' "$ML_TMP/cm.yaml"
out=$(ml apply -f "$ML_TMP/cm.yaml")
expect_eq "$out" "configmap/e2e-one configured
configmap/e2e-two unchanged" "apply after an edit configures"
expect_eq "$(ml get cm e2e-one -o 'jsonpath={.data.a}')" "changed" "applied value"
if [ $have_kubectl = 1 ]; then
  out=$(kc apply -f "$ML_TMP/cm.yaml")
  expect_eq "$out" "configmap/e2e-one unchanged
configmap/e2e-two unchanged" "kubectl agrees nothing changed"
fi
ok "apply created/unchanged/configured"

cat >"$ML_TMP/mixed.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: e2e-good
---
apiVersion: v1
metadata:
  name: no-kind
EOF
rc=0
out=$(ml apply -f "$ML_TMP/mixed.yaml" 2>"$ML_TMP/err") || rc=$?
expect_eq "$rc" "1" "apply with a bad document fails"
expect_eq "$out" "configmap/e2e-good created" "the good document is applied"
expect_contains "$(cat "$ML_TMP/err")" "Object 'Kind' is missing" "the bad document is reported"
ok "apply reports bad documents"

rc=0
ml create -f "$ML_TMP/cm.yaml" >/dev/null 2>"$ML_TMP/err" || rc=$?
expect_eq "$rc" "1" "create of existing objects fails"
expect_contains "$(cat "$ML_TMP/err")" "Error from server (AlreadyExists): error when creating \"$ML_TMP/cm.yaml\": configmaps \"e2e-one\" already exists" "AlreadyExists message"
ok "create reports AlreadyExists"

# --- get in every format
out=$(ml get cm e2e-one e2e-two -o name)
expect_eq "$out" "configmap/e2e-one
configmap/e2e-two" "get -o name"
out=$(ml get cm -l app=e2e -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}')
expect_eq "$out" "e2e-one" "get -l with jsonpath range"
out=$(ml get cm e2e-one)
expect_match "$out" '^NAME +DATA +AGE' "table header"
expect_match "$out" 'e2e-one +1 +[0-9]+s' "table row"
if [ $have_kubectl = 1 ]; then
  expect_eq "$(ml get cm e2e-one -o yaml)" "$(kc get cm e2e-one -o yaml)" "get -o yaml same as kubectl"
  expect_eq "$(ml get cm e2e-one -o json)" "$(kc get cm e2e-one -o json)" "get -o json same as kubectl"
  expect_eq "$(ml get ns -o name)" "$(kc get ns -o name)" "get ns -o name same as kubectl"
  expect_eq "$(ml get cm -A --show-labels -l app=e2e | sed 's/[0-9]*s  *app/X app/')" \
    "$(kc get cm -A --show-labels -l app=e2e | sed 's/[0-9]*s  *app/X app/')" "get -A --show-labels same as kubectl"
fi
rc=0
ml get cm nope 2>"$ML_TMP/err" || rc=$?
expect_eq "$rc" "1" "get of a missing object fails"
expect_eq "$(cat "$ML_TMP/err")" 'Error from server (NotFound): configmaps "nope" not found' "NotFound message"
rc=0
ml get foo 2>"$ML_TMP/err" || rc=$?
expect_eq "$(cat "$ML_TMP/err")" 'error: the server doesn'"'"'t have a resource type "foo"' "unknown type message"
out=$(ml get cm -n e2e-empty 2>&1)
expect_eq "$out" "No resources found in e2e-empty namespace." "empty list message"
ok "get formats and errors"

# --- get -w prints rows as events arrive
ml get cm -w --output-watch-events -l app=watched --request-timeout=20s >"$ML_TMP/watch.out" 2>&1 &
wpid=$!
sleep 0.5
ml create configmap e2e-watched >/dev/null
ml label cm e2e-watched app=watched >/dev/null
wait_for 10 "watch shows the labelled configmap" grep -q "e2e-watched" "$ML_TMP/watch.out"
kill "$wpid" 2>/dev/null || true
wait "$wpid" 2>/dev/null || true
expect_contains "$(cat "$ML_TMP/watch.out")" "e2e-watched" "watch output"
ok "get -w"

# --- label and annotate
expect_eq "$(ml label cm e2e-two tier=back)" "configmap/e2e-two labeled" "label"
rc=0
ml label cm e2e-two tier=front 2>"$ML_TMP/err" || rc=$?
expect_eq "$rc" "1" "label without --overwrite fails"
expect_eq "$(cat "$ML_TMP/err")" "error: 'tier' already has a value (back), and --overwrite is false" "overwrite message"
expect_eq "$(ml label cm e2e-two tier=front --overwrite)" "configmap/e2e-two labeled" "label --overwrite"
expect_eq "$(ml get cm e2e-two -o 'jsonpath={.metadata.labels.tier}')" "front" "label value"
expect_eq "$(ml label cm e2e-two tier-)" "configmap/e2e-two unlabeled" "label removal"
expect_eq "$(ml annotate cm e2e-two note=hi)" "configmap/e2e-two annotated" "annotate"
ok "label and annotate"

# --- describe
out=$(ml describe cm e2e-two)
expect_match "$out" '^Name: +e2e-two' "describe name"
expect_contains "$out" "note: hi" "describe annotation"
expect_contains "$out" "b:
----
2" "describe data"
if [ $have_kubectl = 1 ]; then
  expect_eq "$out" "$(kc describe cm e2e-two)" "describe cm same as kubectl"
  expect_eq "$(ml describe ns default)" "$(kc describe ns default)" "describe ns same as kubectl"
fi
ok "describe"

# --- edit with a scripted editor
cat >"$ML_TMP/editor.sh" <<'EOF'
#!/bin/sh
sed -i 's/b: "2"/b: "edited"/; s/^  b: .2.$/  b: edited/' "$1"
EOF
chmod +x "$ML_TMP/editor.sh"
out=$(KUBE_EDITOR="$ML_TMP/editor.sh" ml edit cm e2e-two)
expect_eq "$out" "configmap/e2e-two edited" "edit"
expect_eq "$(ml get cm e2e-two -o 'jsonpath={.data.b}')" "edited" "edited value"
out=$(KUBE_EDITOR=true ml edit cm e2e-two 2>&1)
expect_eq "$out" "Edit cancelled, no changes made." "edit without changes"
ok "edit"

# --- delete
expect_eq "$(ml delete cm e2e-one)" 'configmap "e2e-one" deleted' "delete by name"
out=$(ml delete -f "$ML_TMP/mixed.yaml" 2>/dev/null || true)
expect_eq "$out" 'configmap "e2e-good" deleted' "delete -f"
expect_eq "$(ml delete cm -l app=watched)" 'configmap "e2e-watched" deleted' "delete -l"
expect_eq "$(ml delete cm -l app=watched)" "No resources found" "delete -l with nothing left"
rc=0
ml delete cm e2e-one 2>"$ML_TMP/err" || rc=$?
expect_eq "$rc" "1" "deleting a missing object fails"
expect_eq "$(cat "$ML_TMP/err")" 'Error from server (NotFound): configmaps "e2e-one" not found' "delete NotFound"
ok "delete"

# --- patch: the three types, "(no change)", kubectl's lines for the same commands
ml create configmap e2e-p --from-literal=a=1 >/dev/null
expect_eq "$(ml patch cm e2e-p -p '{"data":{"a":"2"}}')" "configmap/e2e-p patched" "strategic patch"
expect_eq "$(ml patch configmap/e2e-p -p '{"data":{"a":"2"}}')" "configmap/e2e-p patched (no change)" "patch without change"
expect_eq "$(ml patch cm e2e-p --type merge -p 'data: {b: "3"}')" "configmap/e2e-p patched" "merge patch from YAML"
expect_eq "$(ml patch cm e2e-p --type json -p '[{"op":"replace","path":"/data/b","value":"4"}]' -o name)" \
  "configmap/e2e-p" "json patch -o name"
expect_eq "$(ml get cm e2e-p -o 'jsonpath={.data.a}{.data.b}')" "24" "patched values"
if [ $have_kubectl = 1 ]; then
  expect_eq "$(ml patch cm e2e-p -p '{"data":{"a":"5"}}')" "$(kc patch cm e2e-p -p '{"data":{"a":"6"}}')" "patch line same as kubectl"
  expect_eq "$(ml patch cm e2e-p --type merge -p '{"data":{"a":"6"}}')" \
    "$(kc patch cm e2e-p --type merge -p '{"data":{"a":"6"}}')" "no-change line same as kubectl"
  for args in "cm e2e-p --type foo -p {}" "cm e2e-p" "cm e2e-nope -p {}" "cm -p {}"; do
    # shellcheck disable=SC2086
    expect_eq "$(ml patch $args 2>&1)" "$(kc patch $args 2>&1)" "patch $args: same error as kubectl"
  done
fi
ok "patch"

# --- set image on a Deployment starts a rollout; wait sees it Available
ml apply -f "$ML_SRC/examples/chapter/kubia-deployment.yaml" >/dev/null
out=$(ml wait deploy/kubia --for=condition=Available --timeout=$((60 * ${ML_TIMEOUT_SCALE:-1}))s)
expect_eq "$out" "deployment.apps/kubia condition met" "wait for Available"
if [ $have_kubectl = 1 ]; then
  expect_eq "$(kc wait deploy/kubia --for=condition=Available --timeout=5s)" "$out" "kubectl's wait agrees"
fi
expect_eq "$(ml set image deployment/kubia kubia=idealism/kubia:v2)" "deployment.apps/kubia image updated" "set image"
expect_eq "$(ml set image deployment/kubia kubia=idealism/kubia:v2)" "" "set image again: nothing to do, nothing printed"
out=$(ml rollout status deployment/kubia --timeout=$((120 * ${ML_TIMEOUT_SCALE:-1}))s)
expect_contains "$out" 'deployment "kubia" successfully rolled out' "rollout status sees the set image rollout complete"
expect_eq "$(ml get deploy kubia -o 'jsonpath={.spec.template.spec.containers[0].image}')" "idealism/kubia:v2" "template image"
expect_eq "$(ml get rs -l app=kubia -o name | wc -l | tr -d ' ')" "2" "a second ReplicaSet for the new image"
out=$(ml wait deploy/kubia --for=condition=Available --timeout=60s)
expect_eq "$out" "deployment.apps/kubia condition met" "Available after the rollout"
out=$(ml wait deploy/kubia "--for=jsonpath={.status.updatedReplicas}=3" --timeout=60s)
expect_eq "$out" "deployment.apps/kubia condition met" "wait --for=jsonpath"
rc=0
ml set image deploy/kubia nope=x 2>"$ML_TMP/err" || rc=$?
expect_eq "$rc" "1" "set image of an unknown container fails"
expect_eq "$(cat "$ML_TMP/err")" 'error: unable to find container named "nope"' "unknown container message"
if [ $have_kubectl = 1 ]; then
  expect_eq "$(kc set image deploy/kubia nope=x 2>&1)" "$(cat "$ML_TMP/err")" "same message as kubectl"
  expect_eq "$(ml set image deploy/kubia 'kubia=idealism/kubia:v3' 2>&1)" \
    "$(kc set image deploy/kubia 'kubia=idealism/kubia:v4' 2>&1)" "set image line same as kubectl"
fi
ok "set image rolls the Deployment out; wait --for=condition and jsonpath"

# --- wait --for=delete: a finalizer holds the object until the test lets go
cat >"$ML_TMP/held.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata:
  name: e2e-held
  finalizers: ["e2e.moonlet.dev/hold"]
YAML
ml apply -f "$ML_TMP/held.yaml" >/dev/null
ml delete cm e2e-held --wait=false >/dev/null
expect_match "$(ml get cm e2e-held -o 'jsonpath={.metadata.deletionTimestamp}')" '^[0-9]{4}-' "held object is being deleted"
# -v=6 logs each request: the finalizer goes once both waiters watch
ml wait cm/e2e-held --for=delete --timeout=60s -v=6 >"$ML_TMP/wait.out" 2>"$ML_TMP/wait.log" &
wpid=$!
wait_for 30 "moonlet wait watches" grep -q "watch=true" "$ML_TMP/wait.log"
kpid=""
if [ $have_kubectl = 1 ]; then
  kc wait cm/e2e-held --for=delete --timeout=60s -v=6 >"$ML_TMP/kwait.out" 2>"$ML_TMP/kwait.log" &
  kpid=$!
  wait_for 30 "kubectl wait watches" grep -q "watch=true" "$ML_TMP/kwait.log"
fi
ml patch cm e2e-held --type json -p '[{"op":"remove","path":"/metadata/finalizers"}]' >/dev/null
rc=0
wait "$wpid" || rc=$?
expect_eq "$rc" "0" "wait --for=delete exits 0"
expect_eq "$(cat "$ML_TMP/wait.out")" "configmap/e2e-held condition met" "wait --for=delete line"
if [ -n "$kpid" ]; then
  wait "$kpid" || true
  expect_eq "$(cat "$ML_TMP/kwait.out")" "$(cat "$ML_TMP/wait.out")" "kubectl's wait --for=delete agrees"
fi
rc=0
ml wait cm/e2e-p --for=condition=Ready --timeout=1s 2>"$ML_TMP/err" || rc=$?
expect_eq "$rc" "1" "wait times out"
expect_eq "$(cat "$ML_TMP/err")" "error: timed out waiting for the condition on configmaps/e2e-p" "timeout message"
if [ $have_kubectl = 1 ]; then
  expect_eq "$(kc wait cm/e2e-p --for=condition=Ready --timeout=1s 2>&1)" "$(cat "$ML_TMP/err")" "kubectl's timeout message"
fi
ok "wait --for=delete and the timeout"

# --- get --sort-by in every output, as kubectl sorts
for n in 10 9 100; do
  ml create configmap "e2e-s$n" --from-literal=n="$n" >/dev/null
  ml label cm "e2e-s$n" sorted=yes >/dev/null
done
out=$(ml get cm -o name --sort-by=.metadata.name | grep e2e-s)
expect_eq "$out" "configmap/e2e-s10
configmap/e2e-s100
configmap/e2e-s9" "names sort bytewise, as kubectl 1.32's"
expect_eq "$(ml get cm -l sorted=yes --sort-by='{.data.n}' -o 'jsonpath={range .items[*]}{.data.n} {end}')" "9 10 100 " \
  "numeric strings sort as quantities"
if [ $have_kubectl = 1 ]; then
  for spec in .metadata.name '{.data.n}' .metadata.creationTimestamp; do
    expect_eq "$(ml get cm --sort-by="$spec" -o name)" "$(kc get cm --sort-by="$spec" -o name)" "sort-by $spec -o name same as kubectl"
    expect_eq "$(ml get cm --sort-by="$spec" --no-headers | awk '{print $1}')" \
      "$(kc get cm --sort-by="$spec" --no-headers | awk '{print $1}')" "sort-by $spec table same as kubectl"
    expect_eq "$(ml get cm --sort-by="$spec" -o json)" "$(kc get cm --sort-by="$spec" -o json)" "sort-by $spec -o json same as kubectl"
  done
  expect_eq "$(ml get rs --sort-by=.metadata.creationTimestamp -o name)" \
    "$(kc get rs --sort-by=.metadata.creationTimestamp -o name)" "ReplicaSets by creation time as kubectl"
  expect_eq "$(ml get pods --sort-by='{.metadata.name}' -o yaml)" "$(kc get pods --sort-by='{.metadata.name}' -o yaml)" \
    "pods -o yaml sorted as kubectl"
fi
ok "get --sort-by"

stop_server
finish
