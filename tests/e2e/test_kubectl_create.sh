# kubectl 1.32's imperative generators against the real server: `create
# configmap|namespace|deployment|job|cronjob`, `create job
# --from=cronjob/NAME` and `run`. The `create` ones post their body as
# Kubernetes protobuf (application/vnd.kubernetes.protobuf) through
# client-go's typed clients, with fieldValidation=Strict; the objects made
# must be the ones their JSON would make, and they must run. Fails (never
# skips) when kubectl is missing: CI installs it.
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
start_server --node-name n1 --image-path "$ML_SRC/examples/images"
ok "server started"
kc() { kubectl --request-timeout=20s "$@"; }
field() { kc get "$1" "$2" -o "jsonpath=$3"; }

# --- configmap: literals and a binary file (binaryData, base64)
printf 'bin\000\001\377' >"$ML_TMP/bin.dat"
out=$(kc create configmap cm1 --from-literal=a=b --from-literal=c=d --from-file="$ML_TMP/bin.dat" 2>&1) \
  || fail "kubectl create configmap: $out"
expect_eq "$out" "configmap/cm1 created" "create configmap"
expect_eq "$(field cm cm1 '{.data.a} {.data.c} {.binaryData.bin\.dat}')" "b d YmluAAH/" "configmap data"
# The body really was protobuf (the request log names the content type).
out=$(kc create configmap cm2 --from-literal=x=y -v=8 2>&1) || fail "create cm2: $out"
expect_contains "$out" "Content-Type: application/vnd.kubernetes.protobuf" "kubectl sent protobuf"
expect_match "$out" 'Response Status: 201 Created' "protobuf create answered 201"
ok "kubectl create configmap (protobuf body)"

# --- namespace
expect_eq "$(kc create namespace ns1)" "namespace/ns1 created" "create namespace"
expect_eq "$(field ns ns1 '{.status.phase} {.spec.finalizers[0]}')" "Active kubernetes" "namespace defaults"
ok "kubectl create namespace"

# --- deployment: its pods run the image
out=$(kc create deployment web --image=idealism/kubia --replicas=2 --port=8080 2>&1) \
  || fail "kubectl create deployment: $out"
expect_eq "$out" "deployment.apps/web created" "create deployment"
expect_eq "$(field deploy web '{.spec.replicas} {.spec.selector.matchLabels.app} {.spec.template.spec.containers[0].ports[0].containerPort}')" \
  "2 web 8080" "deployment spec"
# Defaults applied as for JSON: the zero values protobuf carries were unset.
expect_eq "$(field deploy web '{.spec.strategy.type} {.spec.progressDeadlineSeconds} {.spec.template.spec.containers[0].ports[0].protocol}')" \
  "RollingUpdate 600 TCP" "deployment defaults"
ready() { [ "$(field deploy web '{.status.readyReplicas}')" = 2 ]; }
wait_for 60 "2 ready web pods" ready
running=$(ml get pods -l app=web -o 'jsonpath={range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Running$' || true)
expect_eq "$running" 2 "web pods Running"
ok "kubectl create deployment: 2 pods of idealism/kubia running"

# --- job with a command
out=$(kc create job j1 --image=idealism/batch-job -- sh -c 'echo from-j1' 2>&1) || fail "kubectl create job: $out"
expect_eq "$out" "job.batch/j1 created" "create job"
expect_eq "$(field job j1 '{.spec.template.spec.containers[0].command[2]} {.spec.template.spec.restartPolicy} {.spec.backoffLimit}')" \
  "echo from-j1 Never 6" "job spec and defaults"
done_j() { [ "$(field job "$1" '{.status.succeeded}')" = 1 ]; }
wait_for 60 "job j1 succeeded" done_j j1
expect_eq "$(kc logs job/j1)" "from-j1" "job output"
ok "kubectl create job runs to completion"

# --- cronjob, then a manual run from it
out=$(kc create cronjob c1 --image=idealism/batch-job --schedule='0 0 1 1 *' -- sh -c 'echo from-c1' 2>&1) \
  || fail "kubectl create cronjob: $out"
expect_eq "$out" "cronjob.batch/c1 created" "create cronjob"
expect_eq "$(field cj c1 '{.spec.schedule} {.spec.concurrencyPolicy} {.spec.jobTemplate.spec.template.spec.restartPolicy}')" \
  "0 0 1 1 * Allow OnFailure" "cronjob spec and defaults"
out=$(kc create job manual --from=cronjob/c1 2>&1) || fail "kubectl create job --from: $out"
expect_eq "$out" "job.batch/manual created" "create job --from"
cj_uid=$(field cj c1 '{.metadata.uid}')
expect_eq "$(field job manual '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name} {.metadata.ownerReferences[0].uid} {.metadata.annotations.cronjob\.kubernetes\.io/instantiate}')" \
  "CronJob/c1 $cj_uid manual" "manual job owner and annotation"
wait_for 60 "job manual succeeded" done_j manual
expect_eq "$(kc logs job/manual)" "from-c1" "manual job output"
ok "kubectl create cronjob; create job --from=cronjob/c1 runs the template"

# --- run (kubectl posts this one as JSON)
out=$(kc run p1 --image=idealism/kubia --labels=app=solo --env=GREETING=hi 2>&1) || fail "kubectl run: $out"
expect_eq "$out" "pod/p1 created" "run"
running_p1() { [ "$(field pod p1 '{.status.phase}')" = Running ]; }
wait_for 60 "pod p1 Running" running_p1
expect_eq "$(field pod p1 '{.metadata.labels.app} {.spec.containers[0].env[0].value}')" "solo hi" "run pod spec"
ok "kubectl run"

# --- a generator's object already there: the usual 409 over protobuf
rc=0
out=$(kc create configmap cm1 --from-literal=a=b 2>&1) || rc=$?
expect_eq "$rc" 1 "duplicate create fails"
expect_contains "$out" 'configmaps "cm1" already exists' "AlreadyExists"
ok "protobuf create of an existing name is 409 AlreadyExists"

# --- auth: no RBAC, so every access review is allowed; one identity
expect_eq "$(kc auth can-i create deployments)" "yes" "auth can-i (protobuf review)"
expect_eq "$(kc auth can-i delete nodes --all-namespaces)" "yes" "auth can-i cluster-scoped"
expect_contains "$(kc auth whoami)" "moonlet-admin" "auth whoami"
rc=0
out=$(kc get selfsubjectaccessreviews 2>&1) || rc=$?
expect_eq "$rc" 1 "reviews cannot be listed"
expect_contains "$out" "(MethodNotAllowed)" "list of a create-only kind is 405"
ok "kubectl auth can-i and whoami"

finish
