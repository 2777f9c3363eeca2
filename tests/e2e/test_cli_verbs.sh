# The moonlet CLI against a real server: every verb, with outputs compared
# to kubectl 1.32's against the same server where both apply.
source "$(dirname "$0")/lib.sh"

# kubectl is part of the test set-up (.ci/install-deps installs it), and
# the server's kubeconfig must just work with it: both are failures here.
command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
have_kubectl=1
kc() { kubectl --request-timeout=10s "$@"; }

start_server
ok "server started"
kc get --raw /api >/dev/null 2>"$ML_TMP/kc.err" ||
  fail "kubectl cannot reach the server with $KUBECONFIG: $(cat "$ML_TMP/kc.err")"

# --- help: every verb is listed (the list comes from the CLI's table)
out=$("$ML_BIN" --help)
for verb in annotate api-resources apply create delete describe edit get label logs rollout scale version; do
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

stop_server
finish
