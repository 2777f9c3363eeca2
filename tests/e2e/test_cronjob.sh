# CronJobs through the real server with real processes, driven by both
# `moonlet` and kubectl: the chapter's batch/v1beta1 cronjob.yaml accepted
# and listed; an `@every 2s` CronJob creating Jobs named
# <cronjob>-<scheduled minutes> with the scheduled-timestamp annotation
# (runs within one minute share that name, as in Kubernetes), LAST
# SCHEDULE / ACTIVE columns, SawCompletedJob; `create job
# --from=cronjob/NAME` (moonlet's and kubectl's), whose Jobs count towards
# successfulJobsHistoryLimit (the oldest are pruned); suspend; Kubernetes'
# validation errors (TZ in the schedule, a bad schedule, an unknown
# timeZone); `describe cronjob` as kubectl prints it; deleting the CronJob
# removes its Jobs.
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
start_server --node-name n1 --image-path "$ML_SRC/examples/images"
ok "server started"
kc() { kubectl --request-timeout=20s "$@"; }
match() { grep -Eq -- "$2" <<<"$1" || fail "$3: /$2/ does not match [$1]"; }

# The chapter's manifest, unchanged (batch/v1beta1).
CRONJOB="$ML_SRC/examples/chapter/cronjob.yaml"
out=$(kc apply -f "$CRONJOB" 2>&1) || fail "kubectl apply chapter cronjob: $out"
match "$out" '^cronjob.batch/batch-job-every-fifteen-minutes created' "kubectl apply v1beta1"
match "$(kc get cronjobs)" 'batch-job-every-fifteen-minutes +0,15,30,45 \* \* \* \* +<none> +False +0 +<none> +[0-9]+s' \
  "kubectl get cronjobs"
match "$(ml get cj)" '^NAME +SCHEDULE +TIMEZONE +SUSPEND +ACTIVE +LAST SCHEDULE +AGE' "moonlet get cj header"
[ "$(ml get cronjob batch-job-every-fifteen-minutes -o 'jsonpath={.apiVersion} {.spec.startingDeadlineSeconds}')" \
  = "batch/v1 15" ] || fail "stored as batch/v1 with the deadline"
ml delete -f "$CRONJOB" >/dev/null || fail "moonlet delete -f"
out=$(ml apply -f "$CRONJOB") || fail "moonlet apply chapter cronjob"
match "$out" 'cronjob.batch/batch-job-every-fifteen-minutes created' "moonlet apply v1beta1"
ok "the chapter's batch/v1beta1 CronJob is accepted by both CLIs"

# Kubernetes' validation, through kubectl.
bad() { # schedule, extra spec line, expected message
  cat >"$ML_TMP/bad.yaml" <<YAML
apiVersion: batch/v1
kind: CronJob
metadata:
  name: bad
spec:
  schedule: "$1"
  $2
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: kubia
YAML
  local o
  if o=$(kc create -f "$ML_TMP/bad.yaml" 2>&1); then fail "accepted: $1"; fi
  grep -Fq -- "$3" <<<"$o" || fail "message for '$1': [$o] lacks [$3]"
}
bad "TZ=UTC 0 * * * *" "suspend: false" \
  'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead'
bad "61 * * * *" "suspend: false" 'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61'
bad "0 * * * *" "timeZone: Mars/Olympus" 'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'
ok "invalid schedules and zones are refused in Kubernetes' words"

# A CronJob every 2 s; each run is a short real process.
cat >"$ML_TMP/ticker.yaml" <<'YAML'
apiVersion: batch/v1
kind: CronJob
metadata:
  name: ticker
spec:
  schedule: "@every 2s"
  timeZone: Asia/Tokyo
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        metadata:
          labels:
            app: ticker
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: kubia
            command: ["sh", "-c", "echo tick; sleep 1"]
YAML
ml apply -f "$ML_TMP/ticker.yaml" >/dev/null || fail "create ticker"
ticker_jobs() { ml get jobs -o 'jsonpath={range .items[*]}{.metadata.name} {.metadata.ownerReferences[0].name}{"\n"}{end}' \
  | awk '$2 == "ticker" { print $1 }'; }
has_job() { [ -n "$(ticker_jobs)" ]; }
wait_for 20 "the first ticker job" has_job
job=$(ticker_jobs | head -n1)
match "$job" '^ticker-[0-9]+$' "job name"
ts=$(ml get job "$job" -o 'jsonpath={.metadata.annotations.batch\.kubernetes\.io/cronjob-scheduled-timestamp}')
match "$ts" '^[0-9-]+T[0-9:]+\+09:00$' "scheduled timestamp in the CronJob's zone"
[ "${job#ticker-}" = "$(( $(date -d "$ts" +%s) / 60 ))" ] || fail "job $job is not named for its scheduled minute ($ts)"
ok "jobs are named <cronjob>-<scheduled unix minutes> with the scheduled-timestamp annotation"

last_set() { [ -n "$(ml get cronjob ticker -o 'jsonpath={.status.lastScheduleTime}')" ]; }
wait_for 20 "lastScheduleTime" last_set
match "$(kc get cronjob ticker)" 'ticker +@every 2s +Asia/Tokyo +False +[0-9]+ +[0-9]+s +[0-9]+s' "kubectl columns"
match "$(kc get cronjob ticker -o wide)" 'ticker +@every 2s +Asia/Tokyo +False +[0-9]+ +[0-9]+s +[0-9]+s +main +kubia +<none>' \
  "kubectl wide columns"
event_seen() { ml get events --field-selector involvedObject.name=ticker -o 'jsonpath={.items[*].reason}' | grep -q "$1"; }
wait_for 30 "SawCompletedJob" event_seen SawCompletedJob
last_ok() { [ -n "$(ml get cronjob ticker -o 'jsonpath={.status.lastSuccessfulTime}')" ]; }
wait_for 20 "lastSuccessfulTime" last_ok
match "$(ml get events --field-selector involvedObject.name=ticker -o 'jsonpath={.items[*].message}')" \
  'Created job ticker-[0-9]+' "SuccessfulCreate message"
ok "runs on schedule and records completions"

# create job --from=cronjob/NAME; those Jobs are the
# CronJob's too, so successfulJobsHistoryLimit 1 prunes the older ones.
out=$(ml create job manual-a --from=cronjob/ticker -o yaml) || fail "create job manual-a"
grep -Eq 'cronjob.kubernetes.io/instantiate: manual' <<<"$out" || fail "manual job annotation: $out"
grep -Eq 'kind: CronJob' <<<"$out" || fail "manual job owner: $out"
# The second through kubectl, whose typed client posts it as protobuf.
match "$(kc create job manual-b --from cj/ticker)" '^job.batch/manual-b created$' "kubectl create job (short name)"
[ "$(ml get job manual-b -o 'jsonpath={.metadata.ownerReferences[0].name}')" = ticker ] || fail "manual-b owner"
wait_for 30 "history pruned (SuccessfulDelete)" event_seen SuccessfulDelete
succeeded_left() { # at most 1 finished job is kept
  local n
  n=$(ml get jobs -o 'jsonpath={range .items[*]}{.metadata.ownerReferences[0].name} {.status.succeeded} {.metadata.deletionTimestamp}{"\n"}{end}' \
    | awk '$1 == "ticker" && $2 == "1" && $3 == "" { c++ } END { print c + 0 }')
  [ "$n" -le 1 ]
}
wait_for 30 "at most 1 succeeded job kept" succeeded_left
ok "create job --from=cronjob/ticker instantiates the template; history keeps 1 job"

# Suspend: no new job once the last scheduled one is 5 s old.
kc patch cronjob ticker -p '{"spec":{"suspend":true}}' >/dev/null || fail "suspend"
match "$(ml get cronjob ticker)" 'ticker +@every 2s +Asia/Tokyo +True ' "SUSPEND True"
before=$(ml get cronjob ticker -o 'jsonpath={.status.lastScheduleTime}')
quiet_for() { # lastScheduleTime unchanged and at least $1 s old
  local now t
  now=$(date +%s)
  t=$(ml get cronjob ticker -o 'jsonpath={.status.lastScheduleTime}')
  [ "$t" = "$before" ] || fail "a job was scheduled while suspended ($before -> $t)"
  [ $((now - $(date -d "$t" +%s))) -ge "$1" ]
}
wait_for 20 "5 quiet seconds while suspended" quiet_for 5
ok "suspend stops new runs"

# describe, compared with kubectl's while nothing moves (Events aside: ages).
no_events() { sed '/^Events:/,$d'; }
same_describe() { [ "$(ml describe cronjob ticker | no_events)" = "$(kc describe cronjob ticker | no_events)" ]; }
wait_for 20 "describe cronjob as kubectl prints it" same_describe
ok "describe cronjob prints what kubectl prints"

# Deleting the CronJob removes its Jobs (background propagation).
kc delete cronjob ticker >/dev/null || fail "delete cronjob"
no_jobs() { [ -z "$(ticker_jobs)" ]; }
wait_for 30 "ticker's jobs garbage collected" no_jobs
ok "deleting the CronJob deletes its Jobs"

echo "1..$ML_TESTS"
