# The chapter's Job experiments through the real server with real
# processes, driven by both `moonlet` and kubectl, with the chapter's YAML
# unchanged: batch-job (0/1, then 1/1, the pod Completed and its logs
# readable), multi-completion-parallel-batch-job (never more than 2 running,
# ends 5/5), a failing job stopped by backoffLimit, activeDeadlineSeconds,
# restartPolicy Always refused with 422, `describe job`, and deleting a Job
# removing its pods.
# The batch-job image sleeps 120 s unless BATCH_JOB_SECONDS says otherwise;
# pods get no server environment, so a second image dir in the test's temp
# dir wraps the real image with BATCH_JOB_SECONDS=5 and comes first in
# --image-path. MOONLET_JOB_BACKOFF shortens the failure back-off.
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
mkdir -p "$ML_TMP/images/idealism/batch-job"
cat >"$ML_TMP/images/idealism/batch-job/entrypoint" <<EOF
#!/bin/sh
BATCH_JOB_SECONDS=5 exec "$ML_SRC/examples/images/idealism/batch-job/entrypoint"
EOF
chmod +x "$ML_TMP/images/idealism/batch-job/entrypoint"
export MOONLET_JOB_BACKOFF=200ms
start_server --node-name n1 --image-path "$ML_TMP/images" --image-path "$ML_SRC/examples/images"
ok "server started"
export KUBECONFIG="$ML_DATA/kubeconfig"
kc() { kubectl --request-timeout=20s "$@"; }
match() { grep -Eq -- "$2" <<<"$1" || fail "$3: /$2/ does not match [$1]"; }

job_field() { ml get job "$1" -o "jsonpath=$2" 2>/dev/null; }
job_row() { # job, regex over `get jobs` (both CLIs)
  grep -Eq -- "$2" <<<"$(ml get jobs "$1" 2>/dev/null)" && grep -Eq -- "$2" <<<"$(kc get jobs "$1" 2>/dev/null)"
}
condition_is() { # job, type, reason
  [ "$(job_field "$1" "{.status.conditions[?(@.type==\"$2\")].reason}")" = "$3" ]
}
pod_phases() { ml get pods -l "job-name=$1" -o 'jsonpath={range .items[*]}{.status.phase}{"\n"}{end}' 2>/dev/null; }
count_phase() { pod_phases "$1" | grep -c "^$2\$" || true; }
no_pods() { [ -z "$(ml get pods -l "job-name=$1" -o name 2>/dev/null)" ]; }

# {====== batch-job.yaml: one pod, 0/1 then 1/1, logs of the finished pod

CHAPTER="$ML_SRC/examples/chapter"
expect_eq "$(ml create -f "$CHAPTER/batch-job.yaml")" "job.batch/batch-job created" "create batch-job"
match "$(kc get jobs)" '^NAME +STATUS +COMPLETIONS +DURATION +AGE' "get jobs header"
match "$(kc get jobs batch-job)" 'batch-job +Running +0/1 ' "kubectl get jobs: 0/1"
match "$(ml get jobs batch-job)" 'batch-job +Running +0/1 ' "moonlet get jobs: 0/1"
ok "batch-job created, 0/1"
wait_for 20 "batch-job pod Running" test "$(count_phase batch-job Running)" = 1
pod=$(ml get pods -l job-name=batch-job -o 'jsonpath={.items[0].metadata.name}')
match "$pod" '^batch-job-[a-z0-9]{5}$' "pod name"
match "$(kc get pods "$pod")" "$pod +1/1 +Running +0 " "pod Running"
wait_for 30 "batch-job 1/1 Complete" job_row batch-job 'batch-job +Complete +1/1 +[0-9]+s +'
match "$(kc get pods "$pod")" "$pod +0/1 +Completed +0 " "pod Completed (kept)"
match "$(ml get pods "$pod")" "$pod +0/1 +Completed +0 " "moonlet: pod Completed"
ok "batch-job 1/1, pod Completed"
for logs in "$(ml logs "$pod")" "$(kc logs "$pod")"; do
  match "$logs" 'Batch job starting' "logs: start line"
  match "$logs" 'Finished succesfully' "logs: finish line"
done
ok "logs of the finished pod"
expect_eq "$(job_field batch-job '{.status.conditions[?(@.type=="Complete")].status}')" "True" "Complete condition"
expect_eq "$(job_field batch-job '{.status.succeeded}')" "1" "status.succeeded"
[ -n "$(job_field batch-job '{.status.completionTime}')" ] || fail "completionTime set"
for d in "$(ml describe job batch-job)" "$(kc describe job batch-job)"; do
  match "$d" 'Pods Statuses: +0 Active \(0 Ready\) / 1 Succeeded / 0 Failed' "describe: pod statuses"
  match "$d" 'Completions: +1' "describe: completions"
  match "$d" "Normal +SuccessfulCreate +.*Created pod: $pod" "describe: create event"
  match "$d" 'Normal +Completed +.*Job completed' "describe: completed event"
done
ok "describe job (both CLIs)"

# }======

# {====== multi-completion-parallel-batch-job.yaml: 5 completions, 2 at once

MULTI=multi-completion-parallel-batch-job
expect_eq "$(kc create -f "$CHAPTER/multi-completion-parallel-batch-job.yaml")" "job.batch/$MULTI created" "kubectl create multi"
wait_for 20 "two pods Running" test "$(count_phase $MULTI Running)" = 2
# Sample until done: never more than 2 pods running or pending at once.
deadline=$((SECONDS + 60 * ${ML_TIMEOUT_SCALE:-1}))
max_active=0
until job_row $MULTI "$MULTI +Complete +5/5 "; do
  [ $SECONDS -lt $deadline ] || fail "multi job did not reach 5/5"
  active=$(pod_phases $MULTI | grep -cE '^(Running|Pending)$' || true)
  [ "$active" -gt "$max_active" ] && max_active=$active
  [ "$active" -le 2 ] || fail "$active pods active at once (parallelism 2)"
  sleep 0.1
done
expect_eq "$max_active" "2" "two pods ran in parallel"
expect_eq "$(count_phase $MULTI Succeeded)" "5" "five pods Succeeded and kept"
ok "multi-completion parallel job: 5/5, at most 2 at once"

# }======

# {====== failures: backoffLimit, activeDeadlineSeconds, restartPolicy Always

cat >"$ML_TMP/failing.yaml" <<'YAML'
apiVersion: batch/v1
kind: Job
metadata:
  name: failing
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: main
          image: idealism/batch-job
          command: ["sh", "-c", "echo trying; exit 3"]
YAML
ml apply -f "$ML_TMP/failing.yaml" >/dev/null || fail "create failing job"
wait_for 40 "failing job Failed" condition_is failing Failed BackoffLimitExceeded
expect_eq "$(job_field failing '{.status.failed}')" "3" "3 failed pods (backoffLimit 2)"
expect_eq "$(job_field failing '{.status.conditions[?(@.type=="Failed")].message}')" \
  "Job has reached the specified backoff limit" "Failed message"
expect_eq "$(count_phase failing Failed)" "3" "failed pods kept"
match "$(kc get jobs failing)" 'failing +Failed +0/1 ' "get jobs: Failed"
match "$(kc describe job failing)" 'Warning +BackoffLimitExceeded .*Job has reached the specified backoff limit' \
  "BackoffLimitExceeded event"
ok "backoffLimit: Failed BackoffLimitExceeded after 3 failed pods"

cat >"$ML_TMP/deadline.yaml" <<'YAML'
apiVersion: batch/v1
kind: Job
metadata:
  name: deadline
spec:
  activeDeadlineSeconds: 2
  parallelism: 2
  completions: 4
  template:
    spec:
      restartPolicy: OnFailure
      containers:
        - name: main
          image: idealism/batch-job
          command: ["sleep", "600"]
YAML
kc apply -f "$ML_TMP/deadline.yaml" >/dev/null || fail "create deadline job"
wait_for 20 "deadline pods Running" test "$(count_phase deadline Running)" = 2
wait_for 30 "deadline job Failed" condition_is deadline Failed DeadlineExceeded
expect_eq "$(job_field deadline '{.status.conditions[?(@.type=="Failed")].message}')" \
  "Job was active longer than specified deadline" "DeadlineExceeded message"
wait_for 30 "deadline pods gone" no_pods deadline
match "$(kc describe job deadline)" 'Warning +DeadlineExceeded .*Job was active longer than specified deadline' \
  "DeadlineExceeded event"
ok "activeDeadlineSeconds: running pods end, Failed DeadlineExceeded"

# podFailurePolicy: exit code 42 fails the Job at once (no retries), exit 3
# is ignored (not counted, the pod is replaced).
cat >"$ML_TMP/policy.yaml" <<'YAML'
apiVersion: batch/v1
kind: Job
metadata:
  name: policy
spec:
  backoffLimit: 6
  podFailurePolicy:
    rules:
      - action: FailJob
        onExitCodes: {containerName: main, operator: In, values: [42]}
      - action: Ignore
        onExitCodes: {operator: In, values: [3]}
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: main
          image: idealism/batch-job
          command: ["sh", "-c", "exit 42"]
YAML
kc apply -f "$ML_TMP/policy.yaml" >/dev/null || fail "create policy job"
wait_for 30 "policy job Failed" condition_is policy Failed PodFailurePolicy
pod=$(ml get pods -l job-name=policy -o 'jsonpath={.items[0].metadata.name}')
expect_eq "$(job_field policy '{.status.conditions[?(@.type=="Failed")].message}')" \
  "Container main for pod default/$pod failed with exit code 42 matching FailJob rule at index 0" "FailJob message"
expect_eq "$(job_field policy '{.status.failed}')" "1" "one failed pod, no retry"
match "$(kc describe job policy)" 'Warning +PodFailurePolicy .*matching FailJob rule at index 0' "PodFailurePolicy event"
out=$(kc create -f - 2>&1 <<'YAML'
apiVersion: batch/v1
kind: Job
metadata: {name: bad-policy}
spec:
  podFailurePolicy: {rules: [{action: FailJob, onExitCodes: {operator: In, values: [0]}}]}
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: idealism/batch-job}]}}
YAML
) && fail "kubectl accepted exit code 0 with In"
expect_contains "$out" 'spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator' \
  "podFailurePolicy validation (422)"
ok "podFailurePolicy: FailJob on exit code 42, validation"

sed 's/OnFailure/Always/; s/name: batch-job$/name: always/' "$CHAPTER/batch-job.yaml" >"$ML_TMP/always.yaml"
want='"always" is invalid: spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"'
out=$(kc create -f "$ML_TMP/always.yaml" 2>&1) && fail "kubectl accepted restartPolicy Always"
expect_contains "$out" "The Job $want" "kubectl: 422"
out=$(ml create -f "$ML_TMP/always.yaml" 2>&1) && fail "moonlet accepted restartPolicy Always"
expect_contains "$out" "$want" "moonlet: 422"
ok "restartPolicy Always refused (422) by both CLIs"

# }======

# {====== delete: both CLIs ask for background propagation, pods go

[ -n "$(ml get pods -l job-name=batch-job -o name)" ] || fail "batch-job pod present before delete"
expect_eq "$(kc delete job batch-job)" 'job.batch "batch-job" deleted' "kubectl delete job"
wait_for 30 "batch-job pods gone" no_pods batch-job
expect_eq "$(ml delete job $MULTI)" "job.batch \"$MULTI\" deleted" "moonlet delete job"
wait_for 30 "multi pods gone" no_pods $MULTI
ok "delete job removes its pods (both CLIs)"

# }======

finish
