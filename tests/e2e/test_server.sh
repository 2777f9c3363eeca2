# The server's own contract, end to end: socket and token modes, durable
# store across SIGTERM and kill -9 (same uids, rising resourceVersion),
# user scripts (custom kind + controller, load errors, --check-scripts,
# SIGHUP reload), Event aggregation, watch expiry (410), bad input.
source "$(dirname "$0")/lib.sh"

sock() { curl -s --unix-socket "$ML_DATA/moonlet.sock" "$@"; }
api() { sock -o "$ML_TMP/body" -w '%{http_code}' "$@"; }

# --- scripts: a broken one is reported with file:line, the server runs on
mkdir -p "$ML_TMP/bad/controllers"
printf 'return {\n  name = "broken",\n  kind = ,\n}\n' >"$ML_TMP/bad/controllers/broken.lua"
if "$ML_BIN" server --check-scripts "$ML_TMP/bad" 2>"$ML_TMP/check.err"; then
  fail "--check-scripts accepted a broken script"
fi
expect_contains "$(cat "$ML_TMP/check.err")" "broken.lua:3:" "check-scripts names file:line"
out=$("$ML_BIN" server --check-scripts "$ML_SRC/examples/greeting")
expect_eq "$out" "2 script(s) OK" "check-scripts on the example"
ok "--check-scripts"

start_server --scripts "$ML_SRC/examples/greeting" --scripts "$ML_TMP/bad"
expect_contains "$(cat "$ML_LOG")" "broken.lua:3:" "server log names the broken script"
ok "server starts despite a broken script"

mode=$(stat -c %a "$ML_DATA/moonlet.sock")
expect_eq "$mode" "600" "socket mode"
expect_eq "$(stat -c %a "$ML_DATA/token")" "600" "token mode"
expect_eq "$(stat -c %a "$ML_DATA/kubeconfig")" "600" "kubeconfig mode"
ok "socket, token and kubeconfig are 0600"

url=$(sed -n 's/^ *server: //p' "$ML_DATA/kubeconfig")
code=$(curl -sk -o /dev/null -w '%{http_code}' "$url/api/v1/namespaces")
expect_eq "$code" "401" "TCP without token"
ok "TCP requires the bearer token"
# As kube-apiserver's public-info-viewer: health and version for anyone,
# nothing else (a POST to the same path still needs the token).
expect_eq "$(curl -sk "$url/readyz")" "ok" "readyz without token"
expect_contains "$(curl -sk "$url/version")" '"gitVersion"' "version without token"
expect_eq "$(curl -sk -o /dev/null -w '%{http_code}' -X POST "$url/healthz")" "401" "POST healthz without token"
ok "health checks and /version are public over TCP"

# --- one server per data dir: a second one (even on the memory store, which
# has no lock of its own) must refuse at once and leave the first serving.
rc=0
timeout 20 "$ML_BIN" server --data-dir "$ML_DATA" --store memory --no-kubelet \
  2>"$ML_TMP/second.err" || rc=$?
expect_eq "$rc" "1" "second server's exit status"
expect_contains "$(cat "$ML_TMP/second.err")" "another moonlet server (pid $ML_PID) is using the data dir" \
  "second server names the first"
expect_eq "$(ml get ns default -o name)" "namespace/default" "first server still answers"
ok "a second server on the same data dir is refused"

# --- names that are no path segment never reach the server: over HTTP the
# dot segments would be resolved, and `delete pod .. -n NS` deleted NS.
ml create namespace keepme >/dev/null
if ml delete pod .. -n keepme 2>"$ML_TMP/dots.err"; then fail "delete pod .. succeeded"; fi
expect_eq "$(cat "$ML_TMP/dots.err")" "error: invalid resource name \"..\": [may not be '..']" "delete pod .."
expect_eq "$(ml get ns keepme -o name)" "namespace/keepme" "namespace survives"
ml delete namespace keepme >/dev/null
ok "names . and .. are refused by the CLI"

# --- a patch type the server does not apply gets 415 with the types it
# does apply (server-side apply among them: tests/e2e/test_server_side_apply.sh).
ml create configmap patchme --from-literal=a=1 >/dev/null
body=$(sock -X PATCH -H 'Content-Type: application/x-patch+json' --data '{"data": {"a": "2"}}' \
  "http://x/api/v1/namespaces/default/configmaps/patchme")
expect_contains "$body" '"code":415' "unknown patch type refused"
expect_contains "$body" "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml" "415 lists the patch types"
body=$(sock -X PATCH -H 'Content-Type: application/apply-patch+yaml' --data 'data: {a: "2"}' \
  "http://x/api/v1/namespaces/default/configmaps/patchme")
expect_contains "$body" '"code":422' "an apply without fieldManager"
expect_contains "$body" 'fieldManager: Required value: is required for apply patch' "says what is missing"
ml delete configmap patchme >/dev/null
ok "unsupported patch types get 415 naming the supported ones"

# --- custom kind through the example controller
cat >"$ML_TMP/greeting.yaml" <<'EOF2'
apiVersion: example.moonlet.dev/v1
kind: Greeting
metadata:
  name: hello
spec:
  message: hi there
EOF2
expect_eq "$(ml apply -f "$ML_TMP/greeting.yaml")" "greeting.example.moonlet.dev/hello created" "apply greeting"
wait_for 10 "controller creates the ConfigMap" ml get cm hello-greeting
expect_eq "$(ml get cm hello-greeting -o jsonpath='{.data.message}')" "hi there" "ConfigMap data"
expect_eq "$(ml get cm hello-greeting -o jsonpath='{.metadata.ownerReferences[0].kind}')" "Greeting" "owner ref"
code=$(api -XPOST -H 'Content-Type: application/json' \
  -d '{"apiVersion":"example.moonlet.dev/v1","kind":"Greeting","metadata":{"name":"empty"},"spec":{}}' \
  http://x/apis/example.moonlet.dev/v1/namespaces/default/greetings)
expect_eq "$code" "422" "invalid Greeting"
expect_contains "$(cat "$ML_TMP/body")" 'Greeting.example.moonlet.dev \"empty\" is invalid: spec.message: Required value' \
  "Invalid names the kind with its group"
ok "example controller reconciles a custom kind"
ml delete greeting hello >/dev/null
wait_for 10 "ConfigMap collected with its owner" bash -c "! '$ML_BIN' get cm hello-greeting"
ok "garbage collection of a custom kind's dependents"

# --- Event aggregation
ev='{"apiVersion":"v1","kind":"Event","metadata":{"generateName":"demo-"},"involvedObject":{"kind":"ConfigMap","namespace":"default","name":"x"},"reason":"Tested","message":"same message","type":"Normal","source":{"component":"e2e"}}'
for i in 1 2 3; do
  code=$(api -XPOST -H 'Content-Type: application/json' -d "$ev" http://x/api/v1/namespaces/default/events)
  expect_eq "$code" "201" "event create $i"
done
expect_eq "$(ml get events --field-selector reason=Tested -o jsonpath='{range .items[*]}{.count}{end}')" "3" "one event with count 3"
ok "events aggregate"

# --- bad input: clear Status errors, server survives
code=$(api -XPOST -H 'Content-Type: application/json' -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Foo_"}}' \
  http://x/api/v1/namespaces/default/configmaps)
expect_eq "$code" "422" "invalid name"
expect_contains "$(cat "$ML_TMP/body")" 'metadata.name: Invalid value: \"Foo_\": a lowercase RFC 1123 subdomain' "422 message"
code=$(api -XPOST -H 'Content-Type: application/json' -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"u"},"dta":{}}' \
  'http://x/api/v1/namespaces/default/configmaps?fieldValidation=Strict')
expect_eq "$code" "400" "unknown field under Strict"
expect_contains "$(cat "$ML_TMP/body")" 'unknown field \"dta\"' "strict message"
code=$(api -XPOST -H 'Content-Type: application/json' -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"w"},"dta":{}}' \
  -D "$ML_TMP/headers" 'http://x/api/v1/namespaces/default/configmaps?fieldValidation=Warn')
expect_eq "$code" "201" "unknown field under Warn"
expect_contains "$(cat "$ML_TMP/headers")" 'unknown field \"dta\"' "warning header"
code=$(api -XPOST -H 'Content-Type: application/json' -d '{"apiVersion":"v1","kind":"ConfigMap",' \
  http://x/api/v1/namespaces/default/configmaps)
expect_eq "$code" "400" "malformed JSON"
code=$(api 'http://x/api/v1/configmaps?labelSelector=a%20in%20(')
expect_eq "$code" "400" "bad selector"
head -c 3200000 /dev/zero | tr '\0' 'a' >"$ML_TMP/big"
code=$(api -XPOST -H 'Content-Type: application/json' --data-binary @"$ML_TMP/big" \
  http://x/api/v1/namespaces/default/configmaps)
expect_eq "$code" "413" "oversized body"
code=$(api http://x/api/v1/namespaces/..%2F..%2Fetc/configmaps/passwd)
expect_match "$code" '^4' "hostile path is a client error"
wait_for 5 "server still answers" ml get ns default
ok "bad input answered with Status errors"

# --- watch from an expired resourceVersion gets 410 Expired
stop_server TERM
start_server
for i in $(seq 1 5); do ml create configmap "w$i" >/dev/null 2>&1 || \
  sock -XPOST -H 'Content-Type: application/json' -d "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"w$i\"}}" \
    http://x/api/v1/namespaces/default/configmaps >/dev/null; done
out=$(sock --max-time 5 'http://x/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&timeoutSeconds=1')
expect_contains "$out" '"code":410' "410 in watch"
expect_contains "$out" '"reason":"Expired"' "Expired reason"
ok "watch from a compacted resourceVersion is 410 Expired"

# --- durability: SIGTERM and kill -9 keep every acknowledged write
uid_before=$(ml get cm w1 -o jsonpath='{.metadata.uid}')
rv_before=$(ml get cm w5 -o jsonpath='{.metadata.resourceVersion}')
stop_server KILL
start_server
expect_eq "$(ml get cm w1 -o jsonpath='{.metadata.uid}')" "$uid_before" "uid after kill -9"
sock -XPOST -H 'Content-Type: application/json' -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"after"}}' \
  http://x/api/v1/namespaces/default/configmaps >/dev/null
rv_after=$(ml get cm after -o jsonpath='{.metadata.resourceVersion}')
[ "$rv_after" -gt "$rv_before" ] || fail "resourceVersion went back: $rv_after <= $rv_before"
ok "writes survive kill -9; resourceVersion keeps rising"

# --- SIGHUP reloads scripts without losing state
kill -HUP "$ML_PID"
wait_for 5 "reload logged" grep -q "reloaded scripts" "$ML_LOG"
expect_eq "$(ml get cm after -o name)" "configmap/after" "state kept across SIGHUP"
ok "SIGHUP reloads scripts"

stop_server TERM
ok "SIGTERM stops the server with status 0"

# --- --event-ttl: Events go once older than the TTL; bad values are refused
out=$("$ML_BIN" server --data-dir "$ML_DATA" --event-ttl soon 2>&1) && fail "--event-ttl soon accepted"
expect_contains "$out" "--event-ttl must be a positive duration" "bad --event-ttl message"
start_server --event-ttl 2s
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sock -XPOST -H 'Content-Type: application/json' -d "{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{\"name\":\"ttl-test\"},\"involvedObject\":{\"kind\":\"ConfigMap\",\"name\":\"after\",\"namespace\":\"default\"},\"reason\":\"Test\",\"message\":\"expires\",\"lastTimestamp\":\"$now\"}" \
  http://x/api/v1/namespaces/default/events >/dev/null
expect_eq "$(ml get events ttl-test -o name)" "event/ttl-test" "event stored"
wait_for 10 "event deleted after its TTL" sh -c "! '$ML_BIN' get events ttl-test -o name"
ok "--event-ttl expires Events"
kill -USR1 "$ML_PID"
wait_for 5 "memory report after SIGUSR1" grep -q "memory: rss [0-9]* KiB, lua heap" "$ML_LOG"
ok "SIGUSR1 logs a memory report"
stop_server TERM
finish
