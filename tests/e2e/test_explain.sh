# `kubectl explain` and `moonlet explain` against the server's OpenAPI v3
# schemas (the chapter's `kubectl explain pod.spec.containers.livenessProbe`),
# and kubectl apply's strategic merge patch, which kubectl builds from the
# same schemas: lists must merge by their keys (containers, env, ports).
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
kc() { kubectl --request-timeout=20s "$@"; }

start_server --scripts "$ML_SRC/examples/greeting"
ok "server started"

# --- the chapter's command
out=$(kc explain pod.spec.containers.livenessProbe)
expect_contains "$out" "KIND:       Pod" "explain names the kind"
expect_contains "$out" "FIELD: livenessProbe <Probe>" "explain names the field and its type"
for f in "initialDelaySeconds	<integer>" "periodSeconds	<integer>" "timeoutSeconds	<integer>" \
         "failureThreshold	<integer>" "successThreshold	<integer>" "httpGet	<HTTPGetAction>" \
         "tcpSocket	<TCPSocketAction>" "exec	<ExecAction>" "grpc	<GRPCAction>"; do
  expect_contains "$out" "$f" "probe field $f"
done
expect_contains "$out" "Seconds between two checks. Defaults to 10" "periodSeconds is described"
expect_contains "$out" "Seconds to wait after the container starts before the first check" "initialDelaySeconds is described"
ok "kubectl explain pod.spec.containers.livenessProbe lists the probe fields with descriptions"

out=$(kc explain pod.spec.containers.livenessProbe.httpGet)
expect_match "$out" "port	<IntOrString> -required-" "int-or-string and required fields"
out=$(kc explain deployment.spec.template.spec.containers.resources)
expect_contains "$out" "limits	<map[string]Quantity>" "maps of quantities"
out=$(kc explain greetings.spec)
expect_contains "$out" "message	<string>" "a plugin kind from --scripts has a schema"
ok "kubectl explain: types of nested fields, a plugin kind"

# --- moonlet explain prints what kubectl prints
for p in pods pod.spec.containers.livenessProbe deployment.spec cronjob.spec.jobTemplate \
         "pod.spec.containers.livenessProbe --recursive" "jobs.spec --recursive" greetings \
         "cronjobs.spec --api-version=batch/v1"; do
  # shellcheck disable=SC2086  # $p holds flags
  expect_eq "$(ml explain $p)" "$(kc explain $p)" "moonlet explain $p"
done
ok "moonlet explain prints the same text as kubectl explain"

rc=0
out=$(ml explain pod.spec.nosuch 2>&1) || rc=$?
expect_eq "$rc" 1 "an unknown field fails"
expect_contains "$out" 'error: field "nosuch" does not exist' "unknown field message"
rc=0
out=$(ml explain nosuchkind 2>&1) || rc=$?
expect_eq "$rc" 1 "an unknown resource fails"
expect_eq "$out" 'the server doesn'"'"'t have a resource type "nosuchkind"' "unknown resource message"
ok "moonlet explain errors"

# --- kubectl apply merges lists by the schema's merge keys
cat >"$ML_TMP/d1.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 0
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      # nested objects under fields moonlet's decoder takes as any JSON:
      # kubectl apply walks them in the published schema too
      securityContext: {runAsUser: 1000, sysctls: [{name: net.core.somaxconn, value: "1024"}]}
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms: [{matchExpressions: [{key: disk, operator: In, values: [ssd]}]}]
      volumes:
      - name: conf
        configMap: {name: web-conf, items: [{key: a, path: a.txt}]}
      containers:
      - name: app
        image: busybox:1
        command: ["sleep", "1000"]
        securityContext: {capabilities: {drop: [ALL]}}
        env:
        - {name: A, value: "1"}
        ports:
        - {containerPort: 8080}
      - name: side
        image: busybox:1
        command: ["sleep", "1000"]
EOF
sed -e 's/busybox:1/busybox:2/' -e 's/runAsUser: 1000/runAsUser: 1001/' -e 's/\[ssd\]/[nvme]/' \
  -e 's/^        - {name: A, value: "1"}$/        - {name: A, value: "1"}\n        - {name: B, value: "2"}/' \
  "$ML_TMP/d1.yaml" >"$ML_TMP/d2.yaml"
expect_eq "$(kc apply -f "$ML_TMP/d1.yaml")" "deployment.apps/web created" "apply creates"
kc set env deployment/web -c app C=3 >/dev/null
kc label deployment web extra=yes >/dev/null
kc apply -f "$ML_TMP/d2.yaml" -v=9 >"$ML_TMP/apply.out" 2>"$ML_TMP/apply.err"
# A schema kubectl cannot use makes it warn and fall back to its own types.
if grep -q "^warning:" "$ML_TMP/apply.err"; then fail "kubectl apply: $(grep "^warning:" "$ML_TMP/apply.err")"; fi
expect_eq "$(cat "$ML_TMP/apply.out")" "deployment.apps/web configured" "apply configures"
body=$(grep -F '"Request Body"' "$ML_TMP/apply.err" | grep -F 'setElementOrder' | sed 's/.*body="//; s/"$//; s/\\"/"/g' || true)
# shellcheck disable=SC2016  # literal $setElementOrder
expect_contains "$body" '"$setElementOrder/containers":[{"name":"app"},{"name":"side"}]' "patch orders containers by name"
# shellcheck disable=SC2016
expect_contains "$body" '"$setElementOrder/env":[{"name":"A"},{"name":"B"}],"env":[{"name":"B","value":"2"}]' "patch adds one env var"
expect_contains "$(grep -F 'Content-Type: application/' "$ML_TMP/apply.err")" "strategic-merge-patch+json" "a strategic merge patch"
got=$(kc get deploy web -o 'jsonpath={range .spec.template.spec.containers[*]}{.name}={.image} env={.env[*].name} ports={.ports[*].containerPort};{end}')
expect_eq "$got" "app=busybox:2 env=A B C ports=8080;side=busybox:2 env= ports=;" "lists merged, kubectl set env's C kept"
expect_eq "$(kc get deploy web -o 'jsonpath={.metadata.labels.extra}')" "yes" "a label set outside the manifest is kept"
got=$(kc get deploy web -o 'jsonpath={.spec.template.spec.securityContext.runAsUser} {.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]}')
expect_eq "$got" "1001 nvme" "changes under securityContext and affinity applied"
ok "kubectl apply merges containers and env by name from the OpenAPI schema"

finish
