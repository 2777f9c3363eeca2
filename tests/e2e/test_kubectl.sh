# The machine's kubectl (1.32) against `moonlet server --listen tcp://...`:
# HTTPS with the data dir's self-signed certificate, the bearer token and the
# kubeconfig the server writes, then every verb of the foundation issue on
# Namespace, ConfigMap, Event and the example Greeting kind. Fails (never
# skips) when kubectl is missing: CI installs it.
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
kc() { kubectl --request-timeout=20s "$@"; }

start_server --scripts "$ML_SRC/examples/greeting"
ok "server started"

# --- TLS, kubeconfig, token
server=$(sed -n 's/^ *server: //p' "$KUBECONFIG")
expect_match "$server" '^https://127\.0\.0\.1:[0-9]+$' "kubeconfig names the HTTPS listener"
grep -q 'certificate-authority-data: ' "$KUBECONFIG" || fail "kubeconfig carries the CA"
[ "$(stat -c %a "$ML_DATA/tls.key")" = 600 ] || fail "tls.key is not 0600"
[ "$(stat -c %a "$ML_DATA/kubeconfig")" = 600 ] || fail "kubeconfig is not 0600"
out=$(kc version)
expect_match "$out" 'Server Version: v1\.32\.[0-9]+' "kubectl version reaches the server"
ok "kubectl version over HTTPS with the written kubeconfig"

rc=0
out=$(kc --token=not-the-token get ns 2>&1) || rc=$?
expect_eq "$rc" 1 "wrong token fails"
# As against kube-apiserver: discovery is refused first, then the verb.
expect_match "$(echo "$out" | tail -1)" '^error: You must be logged in to the server \(' "401 message"
out=$(curl -s --cacert "$ML_DATA/tls.crt" -w ' %{http_code}' "$server/api/v1/namespaces")
expect_contains "$out" '"reason":"Unauthorized"' "no token: Status"
expect_match "$out" ' 401$' "no token is 401"
ok "TCP needs the bearer token"

# A CA that did not sign the server's certificate is refused by the client.
cat >"$ML_TMP/mkcert.lua" <<'EOF'
assert(require("moonlet.httpd").ensure_cert(arg[1]) ~= nil)
EOF
mkdir -p "$ML_TMP/other"
ml lua "$ML_TMP/mkcert.lua" "$ML_TMP/other"
rc=0
out=$(kc --certificate-authority "$ML_TMP/other/tls.crt" get ns 2>&1) || rc=$?
expect_eq "$rc" 1 "wrong CA fails"
expect_contains "$out" "x509: certificate signed by unknown authority" "certificate verified"
rc=0
out=$(kc --tls-server-name=not-in-the-cert.example get ns 2>&1) || rc=$?
expect_eq "$rc" 1 "a name outside the SANs fails"
expect_contains "$out" "x509: certificate is valid for localhost" "host name verified"
out=$(curl -s "http://${server#https://}/version")
expect_eq "$out" "Client sent an HTTP request to an HTTPS server." "plain HTTP answered in plain text"
crt1=$(md5sum <"$ML_DATA/tls.crt")
ok "the TLS certificate is verified"

# --- discovery
out=$(kc api-resources)
expect_match "$out" 'configmaps +cm +v1 +true +ConfigMap' "api-resources configmaps"
expect_match "$out" 'events +ev +v1 +true +Event' "api-resources events"
expect_match "$out" 'namespaces +ns +v1 +false +Namespace' "api-resources namespaces"
expect_match "$out" 'greetings +gr +example\.moonlet\.dev/v1 +true +Greeting' "api-resources greetings"
out=$(kc get --raw /openapi/v3)
expect_contains "$out" '"apis/example.moonlet.dev/v1":{"serverRelativeURL":"/openapi/v3/apis/example.moonlet.dev/v1"}' "openapi v3 index"
out=$(kc get --raw /openapi/v3/api/v1)
expect_contains "$out" '"name":"fieldValidation"' "openapi v3 declares fieldValidation"
ok "api-resources and OpenAPI v3"

# --- create -f (strict validation by default: server-side fieldValidation)
cat >"$ML_TMP/cm.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: k-one
  labels:
    app: kdemo
data:
  a: "1"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: k-two
  labels:
    app: other
data:
  b: "2"
EOF
out=$(kc create -f "$ML_TMP/cm.yaml")
expect_eq "$out" "configmap/k-one created
configmap/k-two created" "create -f"
rc=0
kc create -f "$ML_TMP/cm.yaml" >/dev/null 2>"$ML_TMP/err" || rc=$?
expect_eq "$rc" 1 "create of existing objects fails"
expect_contains "$(cat "$ML_TMP/err")" 'Error from server (AlreadyExists): error when creating' "AlreadyExists"
cat >"$ML_TMP/bad.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: k-bad
datta:
  a: "1"
EOF
rc=0
kc create -f "$ML_TMP/bad.yaml" >/dev/null 2>"$ML_TMP/err" || rc=$?
expect_eq "$rc" 1 "unknown field rejected"
expect_contains "$(cat "$ML_TMP/err")" 'unknown field "datta"' "strict field validation"
out=$(kc create -f "$ML_TMP/bad.yaml" --validate=false)
expect_eq "$out" "configmap/k-bad created" "--validate=false drops the field"
ok "create -f with strict validation"

# --- duplicate fields. kubectl decodes a manifest itself (the last value of
# a repeated key wins) and sends JSON without them: no error, no warning,
# as against kube-apiserver, and `moonlet create -f` does the same. A body
# sent as it is (--raw) gets the server's strict decoding: Strict refuses
# it with kube-apiserver's text, the default (Warn) warns.
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: k-dup\n  name: k-dup2\ndata:\n  a: "1"\n  a: "2"\n' \
  >"$ML_TMP/dup.yaml"
out=$(kc create --validate=strict -f "$ML_TMP/dup.yaml" 2>&1)
expect_eq "$out" "configmap/k-dup2 created" "kubectl keeps a repeated key's last value, silently"
expect_eq "$(kc get cm k-dup2 -o jsonpath='{.data.a}')" "2" "the last value"
kc delete cm k-dup2 >/dev/null
out=$(ml create -f "$ML_TMP/dup.yaml" 2>&1)
expect_eq "$out" "configmap/k-dup2 created" "moonlet create -f as kubectl"
printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"k-raw","name":"k-raw2"},"data":{"a":"1","a":"2"}}' \
  >"$ML_TMP/dup.json"
rc=0
kc create --raw '/api/v1/namespaces/default/configmaps?fieldValidation=Strict' -f "$ML_TMP/dup.json" \
  >/dev/null 2>"$ML_TMP/err" || rc=$?
expect_eq "$rc" 1 "a duplicate field under Strict fails"
expect_eq "$(cat "$ML_TMP/err")" \
  'Error from server (BadRequest): strict decoding error: duplicate field "metadata.name", duplicate field "data.a"' \
  "Strict names the duplicates"
kc create --raw '/api/v1/namespaces/default/configmaps' -f "$ML_TMP/dup.json" >"$ML_TMP/out" 2>"$ML_TMP/err"
expect_eq "$(cat "$ML_TMP/err")" 'Warning: duplicate field "metadata.name"
Warning: duplicate field "data.a"' "the default warns"
expect_eq "$(kc get cm k-raw2 -o jsonpath='{.data.a}')" "2" "and keeps the last value"
ok "duplicate fields: kubectl's own decoding, the server's strict decoding"

# A typo in `kind:` is a kind the v3 documents lack: kubectl then looks in
# /openapi/v2, and without one said "failed to download openapi".
printf 'apiVersion: apps/v1\nkind: Deplyment\nmetadata:\n  name: typo\n' >"$ML_TMP/kind.yaml"
rc=0
kc apply -f "$ML_TMP/kind.yaml" >/dev/null 2>"$ML_TMP/err" || rc=$?
expect_eq "$rc" 1 "unknown kind rejected"
expect_contains "$(cat "$ML_TMP/err")" 'no matches for kind "Deplyment" in version "apps/v1"' "unknown kind named"
expect_eq "$(kc get --raw /openapi/v2)" \
  '{"definitions":{},"info":{"title":"Kubernetes","version":"'"$(kc version -o json | sed -n 's/.*"gitVersion": "\(v[^"]*moonlet[^"]*\)".*/\1/p')"'"},"paths":{},"swagger":"2.0"}' \
  "an empty OpenAPI v2 document"
ok "apply of an unknown kind names it (OpenAPI v2)"

# --- get in every format
out=$(kc get cm k-one)
expect_match "$out" '^NAME +DATA +AGE' "table header"
expect_match "$out" 'k-one +1 +[0-9]+s' "table row"
expect_match "$(kc get cm k-one -o wide)" 'k-one +1 +[0-9]+s' "-o wide"
out=$(kc get cm k-one -o yaml)
expect_contains "$out" "name: k-one" "-o yaml name"
expect_contains "$out" 'a: "1"' "-o yaml data"
expect_eq "$(kc get cm k-one -o json | sed -n 's/^    "kind": //p;s/^  "kind": //p' | sed -n 1p)" '"ConfigMap",' "-o json"
expect_eq "$(kc get cm k-one k-two -o name)" "configmap/k-one
configmap/k-two" "-o name"
expect_eq "$(kc get cm -l app=kdemo -o 'jsonpath={.items[*].metadata.name}')" "k-one" "-l with jsonpath"
expect_eq "$(kc get cm -l 'app in (kdemo,other)' -o name)" "configmap/k-one
configmap/k-two" "-l set-based"
expect_eq "$(kc get cm --field-selector metadata.name=k-two -o name)" "configmap/k-two" "--field-selector"
expect_eq "$(kc get ns --field-selector metadata.name!=default -o name | sed -n 1p)" "namespace/kube-node-lease" "--field-selector !="
out=$(kc get cm -A -l app=kdemo)
expect_match "$out" '^NAMESPACE +NAME +DATA +AGE' "-A header"
expect_match "$out" 'default +k-one +1 ' "-A row"
expect_eq "$(kc get ns default -o 'jsonpath={.status.phase}')" "Active" "namespace jsonpath"
rc=0
kc get cm nope 2>"$ML_TMP/err" || rc=$?
expect_eq "$rc" 1 "get missing fails"
expect_eq "$(cat "$ML_TMP/err")" 'Error from server (NotFound): configmaps "nope" not found' "NotFound"
expect_eq "$(kc get cm -n k-empty 2>&1)" "No resources found in k-empty namespace." "empty list"
ok "get plain, -o wide|yaml|json|name|jsonpath, -l, --field-selector, -A"

# --- get -w: background watchers see ADDED, MODIFIED, DELETED. A first
# object makes each watcher print a row once its list is done, so the test
# knows the watches are open before it changes anything.
cat >"$ML_TMP/w.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: k-seed
  labels:
    app: watched
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: k-watched
  labels:
    app: watched
data:
  x: "1"
EOF
sed -n '1,6p' "$ML_TMP/w.yaml" | kc create -f - >/dev/null
kc get cm -w -l app=watched >"$ML_TMP/w.out" 2>&1 &
w1=$!
kc get cm -w -l app=watched --output-watch-events >"$ML_TMP/we.out" 2>&1 &
w2=$!
kc get cm -w -l app=watched -o name >"$ML_TMP/wn.out" 2>&1 &
w3=$!
wait_for 20 "table watcher listed" grep -q '^k-seed ' "$ML_TMP/w.out"
wait_for 20 "event watcher listed" grep -q '^ADDED  *k-seed ' "$ML_TMP/we.out"
wait_for 20 "name watcher listed" grep -q '^configmap/k-seed$' "$ML_TMP/wn.out"
sleep 0.5 # list done and printed; the watch request follows at once
sed -n '8,$p' "$ML_TMP/w.yaml" | kc create -f - >/dev/null
kc label cm k-watched extra=1 >/dev/null
kc delete cm k-watched >/dev/null
wait_for 20 "watch saw DELETED" grep -q '^DELETED ' "$ML_TMP/we.out"
wait_for 10 "plain watch saw three rows" test "$(grep -c '^k-watched ' "$ML_TMP/w.out")" -ge 3
wait_for 10 "name watch saw three rows" test "$(grep -c '^configmap/k-watched$' "$ML_TMP/wn.out")" -ge 3
kill $w1 $w2 $w3 2>/dev/null || true
wait $w1 $w2 $w3 2>/dev/null || true
expect_match "$(head -1 "$ML_TMP/w.out")" '^NAME +DATA +AGE' "watch prints the header once"
expect_eq "$(awk '{print $1, $2}' "$ML_TMP/we.out")" "EVENT NAME
ADDED k-seed
ADDED k-watched
MODIFIED k-watched
DELETED k-watched" "watch events in order"
ok "get -w (table, --output-watch-events, -o name)"

# --- apply: client-side apply with last-applied, strategic merge patches
cat >"$ML_TMP/app.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: k-applied
  labels:
    app: kdemo
data:
  a: "1"
  b: "2"
EOF
expect_eq "$(kc apply -f "$ML_TMP/app.yaml")" "configmap/k-applied created" "apply creates"
expect_contains "$(kc get cm k-applied -o yaml)" "kubectl.kubernetes.io/last-applied-configuration" "last-applied annotation"
expect_eq "$(kc apply -f "$ML_TMP/app.yaml")" "configmap/k-applied unchanged" "apply unchanged"
kc label cm k-applied live=yes >/dev/null
sed -i 's/  b: "2"/  c: "3"/' "$ML_TMP/app.yaml"
expect_eq "$(kc apply -f "$ML_TMP/app.yaml" 2>&1)" "configmap/k-applied configured" "apply configures"
expect_eq "$(kc get cm k-applied -o 'jsonpath={.data}')" '{"a":"1","c":"3"}' "removed key pruned, new key added"
expect_eq "$(kc get cm k-applied -o 'jsonpath={.metadata.labels.live}')" "yes" "a field apply does not own is kept"
out=$(kc apply -f "$ML_TMP/cm.yaml" 2>&1)
expect_contains "$out" "configmap/k-one configured" "apply over create (annotation added)"
expect_eq "$(kc apply -f "$ML_TMP/cm.yaml")" "configmap/k-one unchanged
configmap/k-two unchanged" "then unchanged"
ok "apply -f created/unchanged/configured"

# --- label, annotate
expect_eq "$(kc label cm k-two tier=back)" "configmap/k-two labeled" "label"
rc=0
kc label cm k-two tier=front 2>"$ML_TMP/err" || rc=$?
expect_eq "$rc" 1 "label without --overwrite fails"
expect_eq "$(cat "$ML_TMP/err")" "error: 'tier' already has a value (back), and --overwrite is false" "overwrite message"
expect_eq "$(kc label cm k-two tier=front --overwrite)" "configmap/k-two labeled" "label --overwrite"
expect_eq "$(kc get cm -l tier=front -o name)" "configmap/k-two" "label selects"
expect_eq "$(kc label cm k-two tier-)" "configmap/k-two unlabeled" "label removal"
expect_eq "$(kc annotate cm k-two note=hi)" "configmap/k-two annotated" "annotate"
expect_eq "$(kc get cm k-two -o 'jsonpath={.metadata.annotations.note}')" "hi" "annotation value"
expect_eq "$(kc annotate cm k-two note-)" "configmap/k-two annotated" "annotation removal"
expect_eq "$(kc label ns default team=core)" "namespace/default labeled" "label a namespace"
ok "label and annotate"

# --- edit with a scripted editor (GET, then a patch of the difference)
cat >"$ML_TMP/editor.sh" <<'EOF'
#!/bin/sh
sed -i 's/^  b: .*$/  b: edited/' "$1"
EOF
chmod +x "$ML_TMP/editor.sh"
expect_eq "$(KUBE_EDITOR="$ML_TMP/editor.sh" kc edit cm k-two)" "configmap/k-two edited" "edit"
expect_eq "$(kc get cm k-two -o 'jsonpath={.data.b}')" "edited" "edited value"
expect_eq "$(KUBE_EDITOR=true kc edit cm k-two 2>&1)" "Edit cancelled, no changes made." "edit without change"
cat >"$ML_TMP/bad-editor.sh" <<'EOF'
#!/bin/sh
# kubectl reopens the editor after a failed save: change the file once only.
grep -q '^bogus:' "$1" || sed -i 's/^kind: ConfigMap$/kind: ConfigMap\nbogus: 1/' "$1"
EOF
chmod +x "$ML_TMP/bad-editor.sh"
rc=0
KUBE_EDITOR="$ML_TMP/bad-editor.sh" kc edit cm k-two >"$ML_TMP/out" 2>&1 </dev/null || rc=$?
expect_eq "$rc" 1 "an edit with an unknown field fails"
expect_contains "$(cat "$ML_TMP/out")" 'unknown field "bogus"' "edit reports the strict error"
ok "edit"

# --- the custom kind and its controller; cascading deletes
cat >"$ML_TMP/gr.yaml" <<'EOF'
apiVersion: example.moonlet.dev/v1
kind: Greeting
metadata:
  name: hello
spec:
  message: Hello, moon
EOF
expect_eq "$(kc apply -f "$ML_TMP/gr.yaml")" "greeting.example.moonlet.dev/hello created" "apply a Greeting"
wait_for 20 "the controller made the ConfigMap" kc get cm hello-greeting
out=$(kc get gr)
expect_match "$out" '^NAME +MESSAGE +CONFIGMAP +AGE' "greeting columns"
sed -i 's/Hello, moon/Hi there/' "$ML_TMP/gr.yaml"
expect_eq "$(kc apply -f "$ML_TMP/gr.yaml")" "greeting.example.moonlet.dev/hello configured" "apply a change (merge patch)"
wait_for 20 "the controller followed the change" \
  test "$(kc get cm hello-greeting -o 'jsonpath={.data.message}')" = "Hi there"
cat >"$ML_TMP/gr-editor.sh" <<'EOF'
#!/bin/sh
sed -i 's/^  message: .*$/  message: edited/' "$1"
EOF
chmod +x "$ML_TMP/gr-editor.sh"
expect_eq "$(KUBE_EDITOR="$ML_TMP/gr-editor.sh" kc edit gr hello)" "greeting.example.moonlet.dev/hello edited" "edit a Greeting"
expect_eq "$(kc get greetings.example.moonlet.dev hello -o 'jsonpath={.spec.message}')" "edited" "edited Greeting"
wait_for 20 "a Created event for the Greeting" sh -c "kubectl get events -o name | grep -q ."
ev=$(kc get events --field-selector involvedObject.name=hello -o name | sed -n 1p)
expect_match "$ev" '^event/hello\.' "event for the Greeting"
ok "custom kind: apply, controller, edit"

owner_uid=$(kc get gr hello -o 'jsonpath={.metadata.uid}')
expect_eq "$(kc get cm hello-greeting -o 'jsonpath={.metadata.ownerReferences[0].uid}')" "$owner_uid" "owned ConfigMap"
expect_eq "$(kc delete gr hello --cascade=orphan)" 'greeting.example.moonlet.dev "hello" deleted' "delete --cascade=orphan"
rc=0
kc get gr hello >/dev/null 2>&1 || rc=$?
expect_eq "$rc" 1 "the Greeting is gone when delete returns"
sleep 1
kc get cm hello-greeting >/dev/null || fail "orphaned ConfigMap must survive"
expect_eq "$(kc get cm hello-greeting -o 'jsonpath={.metadata.ownerReferences[*].uid}')" "" "ownerReference removed"
ok "delete --cascade=orphan keeps the dependent"

kc delete cm hello-greeting >/dev/null
sed -i 's/Hi there/Again/' "$ML_TMP/gr.yaml"
kc apply -f "$ML_TMP/gr.yaml" >/dev/null
wait_for 20 "the controller made the ConfigMap again" kc get cm hello-greeting
expect_eq "$(kc delete gr hello --cascade=foreground)" 'greeting.example.moonlet.dev "hello" deleted' "delete --cascade=foreground"
rc=0
kc get cm hello-greeting >/dev/null 2>&1 || rc=$?
expect_eq "$rc" 1 "foreground deletion removed the dependent before the owner"
ok "delete --cascade=foreground waits for the dependents"

# --- describe
out=$(kc describe cm k-two)
expect_match "$out" '^Name: +k-two' "describe cm name"
expect_contains "$out" "b:
----
edited" "describe cm data"
out=$(kc describe ns default)
expect_match "$out" '^Name: +default' "describe ns name"
expect_match "$out" 'Status: +Active' "describe ns status"
expect_contains "$out" "team=core" "describe ns labels"
out=$(kc describe "$ev")
expect_match "$out" 'Reason: +Created' "describe event reason"
expect_match "$out" 'Kind: +Greeting' "describe event involved object"
ok "describe ConfigMap, Namespace, Event"

# --- delete
expect_eq "$(kc delete cm k-one)" 'configmap "k-one" deleted' "delete by name"
expect_eq "$(kc delete -f "$ML_TMP/app.yaml")" 'configmap "k-applied" deleted' "delete -f"
expect_eq "$(kc delete cm -l app=other)" 'configmap "k-two" deleted' "delete -l"
kc delete cm k-seed k-bad >/dev/null
expect_eq "$(kc delete cm -l app=other 2>&1)" "No resources found" "delete -l with nothing left"
rc=0
kc delete cm k-one 2>"$ML_TMP/err" || rc=$?
expect_eq "$rc" 1 "deleting a missing object fails"
expect_eq "$(cat "$ML_TMP/err")" 'Error from server (NotFound): configmaps "k-one" not found' "delete NotFound"
kc create -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: k-scratch
EOF
expect_eq "$(kc delete ns k-scratch)" 'namespace "k-scratch" deleted' "delete a namespace (waits)"
ok "delete"

# --- restart: the certificate is reused, the kubeconfig still works
stop_server
start_server --scripts "$ML_SRC/examples/greeting"
expect_eq "$(md5sum <"$ML_DATA/tls.crt")" "$crt1" "certificate reused on restart"
expect_eq "$(kc get ns default -o name)" "namespace/default" "kubectl after restart"
ok "restart keeps the certificate"

stop_server
finish
