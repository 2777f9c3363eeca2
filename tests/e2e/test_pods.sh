# Pods as processes through the real server: node registration and lease,
# the scheduler (Scheduled, FailedScheduling, hostPort conflicts), env and
# the downward API, restart policies and crash-loop back-off, StartError,
# image pull back-off, init containers, logs (previous, follow, errors),
# activeDeadlineSeconds, graceful deletion, and a kill -9 of the server:
# no orphan left, pods restarted with truthful status.
source "$(dirname "$0")/lib.sh"

IMAGES="$ML_SRC/examples/images"
start_server --node-name n1 --image-path "$IMAGES" --crashloop-initial 1s --crashloop-max 2s
ok "server started"

jp() { ml get "$1" "$2" -o "jsonpath=$3" 2>/dev/null; }
phase() { jp pod "$1" '{.status.phase}'; }
is_phase() { [ "$(phase "$1")" = "$2" ]; }
restarts_at_least() { [ "$(jp pod "$1" '{.status.containerStatuses[0].restartCount}')" -ge "$2" ] 2>/dev/null; }
waiting_reason() { jp pod "$1" '{.status.containerStatuses[0].state.waiting.reason}'; }
has_waiting() { [ "$(waiting_reason "$1")" = "$2" ]; }
events_for() { ml get events --field-selector "involvedObject.name=$1" -o 'jsonpath={range .items[*]}{.reason}|{.message}{"\n"}{end}'; }
has_event() { events_for "$1" | grep -q -- "$2"; }
del() { ml delete pod "$@" --timeout=60s >/dev/null; }
# A process that is alive (not a zombie: PID 1 may not reap here).
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$s" ] && [ "${s#Z}" = "$s" ]; }
# Pod processes are the server's children (other servers may run the same commands).
children() { pgrep -P "$ML_PID" -f "$1" || true; }

# --- the node
wait_for 10 "node n1 Ready" sh -c "[ \"\$($ML_BIN get node n1 -o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].status}')\" = True ]"
labels=$(jp node n1 '{.metadata.labels}')
expect_contains "$labels" '"kubernetes.io/hostname":"n1"' "hostname label"
expect_contains "$labels" '"kubernetes.io/os":"linux"' "os label"
expect_match "$(jp node n1 '{.status.capacity.pods}')" '^110$' "pods capacity"
expect_match "$(jp node n1 '{.status.capacity.cpu}')" '^[0-9]+$' "cpu capacity"
expect_match "$(ml get node n1)" 'n1 +Ready +<none> ' "get nodes"
expect_eq "$(ml get leases.coordination.k8s.io -n kube-node-lease n1 -o 'jsonpath={.spec.holderIdentity}')" n1 "node lease"
ok "node registered with labels, capacity, Ready and a lease"

# --- scheduling and a plain pod
cat >"$ML_TMP/sleep.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: sleeper
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: main
    image: busybox
    command: ["sleep", "987651"]
EOF
ml create -f "$ML_TMP/sleep.yaml" >/dev/null
wait_for 10 "sleeper Running" is_phase sleeper Running
expect_eq "$(jp pod sleeper '{.spec.nodeName}')" n1 "bound to n1"
expect_match "$(ml get pod sleeper)" 'sleeper +1/1 +Running +0 +' "get pod"
has_event sleeper 'Scheduled|Successfully assigned default/sleeper to n1' || fail "Scheduled event"
has_event sleeper 'Started|Started container main' || fail "Started event"
pid=$(children "^sleep 987651$" | sed -n 1p)
[ -n "$pid" ] || fail "no sleep process"
ok "a pod is scheduled and its container runs as a process"

# --- nodeSelector: unschedulable until the node gets the label
cat >"$ML_TMP/ssd.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: ssd
spec:
  nodeSelector:
    disk: ssd
  containers:
  - name: main
    image: idealism/ssd-monitor
EOF
ml create -f "$ML_TMP/ssd.yaml" >/dev/null
wait_for 10 "FailedScheduling" has_event ssd "FailedScheduling|0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
expect_eq "$(phase ssd)" Pending "unschedulable pod stays Pending"
expect_eq "$(jp pod ssd '{.status.conditions[?(@.type=="PodScheduled")].reason}')" Unschedulable "PodScheduled reason"
ml label node n1 disk=ssd >/dev/null
wait_for 10 "ssd Running after labelling the node" is_phase ssd Running
wait_for 10 "SSD OK in the log" sh -c "$ML_BIN logs ssd | grep -q 'SSD OK'"
ok "nodeSelector: FailedScheduling, then scheduled when the node matches"

# --- hostPort conflict: the second pod is not scheduled
cat >"$ML_TMP/hp.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: hp1
spec:
  containers:
  - name: web
    image: idealism/kubia
    ports:
    - containerPort: 8080
      hostPort: 39123
EOF
ml create -f "$ML_TMP/hp.yaml" >/dev/null
sed 's/name: hp1/name: hp2/' "$ML_TMP/hp.yaml" | ml create -f - >/dev/null
wait_for 10 "hp2 FailedScheduling" has_event hp2 "didn't have free ports for the requested pod ports"
wait_for 10 "hp1 Running" is_phase hp1 Running
wait_for 10 "kubia answers on the hostPort" sh -c "curl -s http://127.0.0.1:39123/ | grep -q \"You've hit hp1\""
del hp1 --grace-period=1
wait_for 15 "hp2 scheduled once hp1 is gone" is_phase hp2 Running
del hp2 --grace-period=1
ok "explicit hostPorts: one pod per port on a node; kubia answers with its pod name"

# --- env, $(VAR) expansion, downward API; restartPolicy Never -> Completed
cat >"$ML_TMP/env.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: envpod
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo name=$MY_NAME ns=$MY_NS node=$MY_NODE ip=$MY_IP host=$HOSTNAME greet=$GREETING port=$PORT; echo $(GREETING) arg"]
    ports:
    - containerPort: 8080
      name: http
    env:
    - name: MY_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: MY_NS
      valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
    - name: MY_NODE
      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    - name: MY_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - name: GREETING
      value: "hello-$(MY_NAME)"
EOF
ml create -f "$ML_TMP/env.yaml" >/dev/null
wait_for 10 "envpod Succeeded" is_phase envpod Succeeded
out=$(ml logs envpod)
expect_contains "$out" "name=envpod ns=default node=n1 ip=127.0.0.1 host=envpod greet=hello-envpod port=" "env values"
expect_contains "$out" "hello-envpod arg" "command expansion"
expect_match "$(ml get pod envpod)" 'envpod +0/1 +Completed +0 ' "Completed"
expect_eq "$(jp pod envpod '{.status.containerStatuses[0].state.terminated.reason}')" Completed "terminated reason"
ok "env with \$(VAR) expansion and fieldRef; Never + exit 0 = Succeeded/Completed"

# --- crash loop with back-off; logs --previous
cat >"$ML_TMP/crash.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: crasher
spec:
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo run at $(date +%s%N); exit 3"]
EOF
ml create -f "$ML_TMP/crash.yaml" >/dev/null
wait_for 20 "crasher restarted 3 times" restarts_at_least crasher 3
wait_for 10 "CrashLoopBackOff" has_waiting crasher CrashLoopBackOff
expect_match "$(ml get pod crasher)" 'crasher +0/1 +(CrashLoopBackOff|Error|Running) +[0-9]+ \([0-9]+s ago\) ' "get pod crasher"
expect_eq "$(jp pod crasher '{.status.containerStatuses[0].lastState.terminated.exitCode}')" 3 "lastState exit code"
expect_eq "$(phase crasher)" Running "Always pod with exited containers is Running"
has_event crasher "BackOff|Back-off restarting failed container main in pod crasher_default(" || fail "BackOff event"
expect_match "$(ml logs crasher --previous)" '^run at [0-9]+$' "logs --previous"
expect_match "$(ml logs crasher)" '^run at [0-9]+$' "logs of the last instance"
del crasher --grace-period=1
ok "crash loop: restarts, CrashLoopBackOff, BackOff event, lastState, logs --previous"

# --- StartError, ErrImagePull
cat >"$ML_TMP/bad.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: nocmd
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["/no/such/command"]
---
apiVersion: v1
kind: Pod
metadata:
  name: noimage
spec:
  containers:
  - name: main
    image: nosuch/image:1.0
EOF
ml create -f "$ML_TMP/bad.yaml" >/dev/null
wait_for 10 "nocmd Failed" is_phase nocmd Failed
expect_eq "$(jp pod nocmd '{.status.containerStatuses[0].state.terminated.reason}')" StartError "StartError"
expect_eq "$(jp pod nocmd '{.status.containerStatuses[0].state.terminated.exitCode}')" 128 "exit 128"
has_event nocmd 'Failed|Error: failed to start container "main": exec: "/no/such/command"' || fail "Failed event"
wait_for 10 "ImagePullBackOff" has_waiting noimage ImagePullBackOff
has_event noimage 'Failed|Failed to pull image "nosuch/image:1.0": ' || fail "pull failure event"
expect_match "$(ml get pod noimage)" 'noimage +0/1 +(ImagePullBackOff|ErrImagePull) +0 ' "get pod noimage"
out=$(ml logs noimage 2>&1 || true)
# The back-off cycles ImagePullBackOff -> ErrImagePull: on a slow machine
# the state may have turned by now, and each has kubectl's own message.
expect_match "$out" 'Error from server \(BadRequest\): container "main" in pod "noimage" is waiting to start: (trying and failing to pull image|image can.t be pulled)' "logs of a waiting container"
del nocmd noimage --grace-period=1
ok "a missing command is StartError (128) with an event; a missing image backs off"

# --- memory limit: OOMKilled when the host lets us enforce it
echo 'print((require("moonlet.proc").cgroups_available()) and "yes" or "no")' >"$ML_TMP/cg.lua"
if [ "$("$ML_BIN" lua "$ML_TMP/cg.lua")" = yes ]; then
  cat >"$ML_TMP/hog.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: hog
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "a=$(head -c 400000000 /dev/zero | tr '\\0' x); echo ${#a}"]
    resources:
      limits:
        memory: 32Mi
EOF
  ml create -f "$ML_TMP/hog.yaml" >/dev/null
  wait_for 30 "hog Failed" is_phase hog Failed
  expect_eq "$(jp pod hog '{.status.containerStatuses[0].state.terminated.reason}')" OOMKilled "OOMKilled"
  expect_eq "$(jp pod hog '{.status.containerStatuses[0].state.terminated.exitCode}')" 137 "OOM exit code"
  del hog --grace-period=1
  ok "resources.limits.memory is enforced: OOMKilled, exit 137"
else
  echo "# memory cgroups not writable here: OOM check skipped"
fi

# --- logs: errors and follow
cat >"$ML_TMP/two.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: two
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: a
    image: busybox
    command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"]
  - name: b
    image: busybox
    command: ["sleep", "987652"]
EOF
ml create -f "$ML_TMP/two.yaml" >/dev/null
wait_for 10 "two Running" is_phase two Running
tok=$(cat "$ML_DATA/token")
raw=$(curl -s --unix-socket "$ML_DATA/moonlet.sock" "http://x/api/v1/namespaces/default/pods/two/log")
expect_contains "$raw" 'a container name must be specified for pod two, choose one of: [a b]' "container required"
out=$(ml logs two -c a --previous 2>&1 || true)
expect_eq "$out" 'Error from server (BadRequest): previous terminated container "a" in pod "two" not found' "no previous"
out=$(ml logs two -c nope 2>&1 || true)
expect_contains "$out" 'container nope is not valid for pod two' "unknown container"
err=$(ml logs two 2>&1 >/dev/null | sed -n 1p)
expect_eq "$err" 'Defaulted container "a" out of: a, b' "kubectl's default container note"
wait_for 10 "three ticks" sh -c "$ML_BIN logs two -c a | grep -q 'tick 3'"
expect_eq "$(ml logs two -c a --tail 1 | wc -l)" 1 "--tail 1"
expect_match "$(ml logs two -c a --tail 1 --timestamps)" '^20[0-9-]+T[0-9:.]+Z tick [0-9]+$' "--timestamps"
timeout 2 "$ML_BIN" logs -f two -c a >"$ML_TMP/follow.out" 2>&1 || true
n1=$(grep -c tick "$ML_TMP/follow.out")
[ "$n1" -ge 8 ] || fail "follow streamed only $n1 lines"
ok "logs: container errors, --previous, --tail, --timestamps, -f"

# --- init containers
cat >"$ML_TMP/init.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: withinit
spec:
  terminationGracePeriodSeconds: 2
  initContainers:
  - name: setup
    image: busybox
    command: ["sh", "-c", "sleep 3; echo init done"]
  containers:
  - name: main
    image: busybox
    command: ["sleep", "987653"]
EOF
ml create -f "$ML_TMP/init.yaml" >/dev/null
wait_for 5 "Init:0/1" sh -c "$ML_BIN get pod withinit | grep -q 'Init:0/1'"
wait_for 10 "withinit Running" is_phase withinit Running
expect_eq "$(ml logs withinit -c setup)" "init done" "init container log"
ok "init containers run to completion first (Init:0/1, then Running)"

# --- activeDeadlineSeconds
cat >"$ML_TMP/deadline.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: deadline
spec:
  activeDeadlineSeconds: 2
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox
    command: ["sleep", "987654"]
EOF
ml create -f "$ML_TMP/deadline.yaml" >/dev/null
wait_for 15 "deadline Failed" is_phase deadline Failed
expect_eq "$(jp pod deadline '{.status.reason}')" DeadlineExceeded "reason DeadlineExceeded"
expect_match "$(ml get pod deadline)" 'deadline +0/1 +(DeadlineExceeded|Error) +0 ' "get pod deadline"
ok "activeDeadlineSeconds ends the pod as Failed/DeadlineExceeded"

# --- graceful deletion: Terminating, SIGTERM, then the object goes
ml delete pod sleeper --wait=false >/dev/null
wait_for 5 "Terminating" sh -c "$ML_BIN get pod sleeper 2>/dev/null | grep -q Terminating || ! $ML_BIN get pod sleeper >/dev/null 2>&1"
wait_for 10 "sleeper gone" sh -c "! $ML_BIN get pod sleeper >/dev/null 2>&1"
alive "$pid" && fail "sleep process still running after delete"
ok "delete: Terminating, SIGTERM to the group, object removed after the process ended"

# --- kill -9 of the server: no orphan; restart with truthful status
rc_before=$(jp pod withinit '{.status.containerStatuses[0].restartCount}')
pids=$(children "^sleep 98765[23]$" | tr '\n' ' ')
[ -n "$pids" ] || fail "no pod processes before the crash"
stop_server KILL
sleep 0.5
for p in $pids; do alive "$p" && fail "process $p outlived the server"; done
start_server --node-name n1 --image-path "$IMAGES" --crashloop-initial 1s --crashloop-max 2s
wait_for 15 "withinit running again" sh -c "[ \"\$($ML_BIN get pod withinit -o 'jsonpath={.status.containerStatuses[0].state.running.startedAt}')\" != '' ] && [ \"\$($ML_BIN get pod withinit -o 'jsonpath={.status.containerStatuses[0].restartCount}')\" -gt $rc_before ]"
expect_eq "$(jp pod withinit '{.status.containerStatuses[0].lastState.terminated.exitCode}')" 137 "lastState after the crash"
expect_eq "$(children '^sleep 98765[23]$' | wc -l)" "2" "one process per container, never two"
ok "after kill -9 of the server: no orphans; pods restarted, restartCount up, lastState set"

del two withinit ssd deadline envpod --grace-period=1
stop_server TERM
ok "clean stop"
finish
