#!/usr/bin/env bash
# `moonlet server --keep-pods`: containers run under keepers and outlive the
# server. A clean stop and a kill -9 leave the process running; the next
# server (with or without the flag) adopts it: same pid, same containerID,
# no restart counted, Ready again, log lines written while no server ran are
# kept. A container that ended while no server ran is reported with its
# real exit code and restarted by policy. A pod's host ports survive too:
# its HTTP readiness probe finds the adopted server where it was. Deleting
# the pod ends it and its keeper; a kept container whose pod was deleted
# while no node agent ran is stopped when the next one starts.
source "$(dirname "$0")/lib.sh"

# Kept processes outlive servers by design: never let a failed run leave
# them behind (killing a keeper takes its container with it).
trap 'rc=$?; set +e; pkill -KILL -f "__keeper $ML_DATA/" 2>/dev/null; (exit $rc); cleanup' EXIT

MARK="keep-e2e-$$"
jp() { ml get "$1" "$2" -o "jsonpath=$3" 2>/dev/null; }
cstatus() { jp pod kept "{.status.containerStatuses[0].$1}"; }
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$s" ] && [ "${s#Z}" = "$s" ]; }
container_pid() { pgrep -f "^sh -c .* $MARK\$" | head -1; }
running_ready() { [ "$(cstatus ready)" = true ] && [ -n "$(cstatus state.running.startedAt)" ]; }
ticks() { ml logs kept 2>/dev/null | grep -c '^tick' || true; }
more_ticks() { [ "$(ticks)" -gt "$1" ]; }
keepers() { pgrep -f "__keeper $ML_DATA/" | wc -l; }
# tick lines in the log files themselves (readable with no server running)
file_ticks() { find "$ML_DATA/pods" -name '*.log' -exec cat {} + | grep -c ' F tick' || true; }
file_ticks_above() { [ "$(file_ticks)" -gt "$1" ]; }

start_server --keep-pods --image-path "$ML_SRC/examples/images"
cat >"$ML_TMP/kept.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: kept
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: none
    command: ["sh", "-c", "echo started; while :; do echo tick; sleep 0.1; done", "$MARK"]
    readinessProbe:
      exec:
        command: ["true"]
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: kubia
    image: idealism/kubia
    ports:
    - containerPort: 8080
    readinessProbe:
      httpGet:
        port: 8080
      periodSeconds: 1
EOF
ml apply -f "$ML_TMP/kept.yaml" >/dev/null
wait_for 20 "kept Running and Ready" running_ready
web_ready() { [ "$(jp pod web '{.status.containerStatuses[0].ready}')" = true ]; }
wait_for 20 "web Ready" web_ready
web_cid=$(jp pod web '{.status.containerStatuses[0].containerID}')
pid=$(container_pid)
[ -n "$pid" ] || fail "no container process"
cid=$(cstatus containerID)
expect_eq "$(keepers)" 2 "one keeper per container"
ok "a kept pod runs under its keeper"

# --- clean stop: the process stays; the next server adopts it
stop_server TERM
alive "$pid" || fail "the container ended with the server despite --keep-pods"
before=$(file_ticks)
wait_for 10 "log lines written while no server runs" file_ticks_above "$((before + 3))"
start_server
wait_for 20 "kept Ready after adoption" running_ready
expect_eq "$(container_pid)" "$pid" "same process after a clean stop"
expect_eq "$(cstatus containerID)" "$cid" "same containerID"
expect_eq "$(cstatus restartCount)" 0 "no restart counted"
wait_for 20 "web Ready after adoption: probed on its own host port" web_ready
expect_eq "$(jp pod web '{.status.containerStatuses[0].containerID}')" "$web_cid" "web adopted"
n=$(ticks)
[ "$n" -gt "$((before + 3))" ] || fail "logs lost the lines written while no server ran ($n <= $before + 3)"
wait_for 10 "the adopted container's log grows" more_ticks "$n"
ok "SIGTERM leaves the pod running; a server without the flag adopts it (pid, containerID, logs)"

# --- kill -9 of the server: adopted again
stop_server KILL
alive "$pid" || fail "the container ended with a killed server"
start_server --keep-pods
wait_for 20 "kept Ready after kill -9" running_ready
expect_eq "$(container_pid)" "$pid" "same process after kill -9"
expect_eq "$(cstatus restartCount)" 0 "no restart counted after kill -9"
ok "kill -9 of the server: the pod runs on and is adopted"

# --- an exit while no server runs: the real exit code, then a restart
stop_server TERM
kill -TERM "$pid"
wait_for 10 "container ended" sh -c "! kill -0 $pid 2>/dev/null"
start_server --keep-pods
wait_for 20 "kept restarted" sh -c "[ \"\$($ML_BIN get pod kept -o 'jsonpath={.status.containerStatuses[0].restartCount}')\" = 1 ]"
expect_eq "$(cstatus lastState.terminated.exitCode)" 143 "exit code recorded while no server ran"
expect_eq "$(cstatus lastState.terminated.containerID)" "$cid" "lastState names the old container"
wait_for 20 "kept Ready again" running_ready
pid2=$(container_pid)
[ -n "$pid2" ] && [ "$pid2" != "$pid" ] || fail "no new container process"
expect_eq "$(keepers)" 2 "one keeper per container after the restart"
ok "an exit while no server ran: lastState exit 143, restarted by policy"

# --- a kept container whose pod went while no node agent ran is ended
# its keeper's record: keeper pid, its start time, container pid, start
web_pid=$(awk '{print $3}' "$ML_DATA/proc/keep-${web_cid#moonlet://}.run")
[ -n "$web_pid" ] || fail "no web process"
stop_server TERM
start_server --no-kubelet
ml delete pod web --grace-period=0 --force >/dev/null 2>&1
wait_for 10 "web gone from the API" sh -c "! $ML_BIN get pod web >/dev/null 2>&1"
alive "$web_pid" || fail "web ended before any node agent saw the delete"
stop_server TERM
start_server --keep-pods
wait_for 20 "the unclaimed container ended" sh -c "! kill -0 $web_pid 2>/dev/null"
expect_eq "$(keepers)" 1 "only the claimed keeper is left"
expect_contains "$(cat "$ML_LOG")" "stopped 1 kept container(s) that no pod claims" "sweep logged"
ok "a kept container no pod claims is stopped at start"

# --- delete: the container and its keeper end
ml delete pod kept --timeout=30s >/dev/null
wait_for 10 "the container ended" sh -c "! kill -0 $pid2 2>/dev/null"
no_keepers() { [ "$(keepers)" = 0 ]; }
wait_for 10 "its keeper ended" no_keepers
stop_server TERM
ok "delete ends the container and its keeper"
finish
