# `moonlet node` started while its server is down keeps retrying to
# register (as the kubelet does) and joins once the server is back on the
# same port; SIGTERM ends a node that is still retrying with status 0; a
# wrong token (401) ends it at once with status 1.
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
kc() { kubectl --request-timeout=10s "$@"; }

# A first run on port 0 picks a free port and writes the kubeconfig and
# token the nodes use; the restart below takes the same port.
start_server --node-name first
URL=$(awk '$1 == "server:" { print $2 }' "$ML_DATA/kubeconfig")
PORT=${URL##*:}
[ "${PORT:-0}" -gt 0 ] || fail "no port in the kubeconfig's server: [$URL]"
stop_server
ok "server ran on $URL and stopped"

N_PIDS=()
on_exit() {
  local rc=$? p
  set +e
  for p in "${N_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  if [ $rc -ne 0 ]; then
    for p in "$ML_TMP"/node-*.log; do echo "---- $p ----" >&2; tail -n 20 "$p" >&2; done
  fi
  (exit $rc)
  cleanup
}
trap on_exit EXIT

start_node() { # start_node NAME [KUBECONFIG]: starts a node in the background, its pid in NODE_PID
  "$ML_BIN" node --kubeconfig "${2:-$ML_DATA/kubeconfig}" --node-name "$1" --data-dir "$ML_TMP/node-$1" \
    --node-status-update-frequency 1s >>"$ML_TMP/node-$1.log" 2>&1 &
  NODE_PID=$!
  N_PIDS+=("$NODE_PID")
}
retried() { grep -q "unable to register node with the server $URL, retrying" "$ML_TMP/node-$1.log"; }
exits_within() { # exits_within SECONDS PID: waits for PID's exit, its status in EXIT_RC
  local deadline=$((SECONDS + $1 * ${ML_TIMEOUT_SCALE:-1}))
  while kill -0 "$2" 2>/dev/null; do
    [ $SECONDS -ge $deadline ] && fail "pid $2 did not exit within $1 s"
    sleep 0.05
  done
  EXIT_RC=0
  wait "$2" || EXIT_RC=$?
}

# a node still retrying stops on SIGTERM with status 0
start_node early
EARLY=$NODE_PID
wait_for 10 "node early logs a retry" retried early
wait_for 10 "node early retries a second time" \
  bash -c "[ \$(grep -c 'unable to register node' '$ML_TMP/node-early.log') -ge 2 ]"
kill -0 "$EARLY" || fail "node early exited while the server is down"
kill -TERM "$EARLY"
exits_within 5 "$EARLY"
expect_eq "$EXIT_RC" 0 "exit status of a retrying node after SIGTERM"
ok "a node started with its server down retries (logged) and exits 0 on SIGTERM"

# a node started with the server down joins once the server is back
start_node second
wait_for 10 "node second logs a retry" retried second
"$ML_BIN" server --data-dir "$ML_DATA" --listen "tcp://127.0.0.1:$PORT" --node-name first >>"$ML_LOG" 2>&1 &
ML_PID=$!
wait_for 20 "server answers again" ml get namespaces default -o name
ready() { [ "$(kc get node "$1" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
wait_for 30 "node second Ready" ready second
expect_match "$(kc get nodes)" $'\n''second +Ready ' "kubectl get nodes: second"
grep -q "node second joined $URL" "$ML_TMP/node-second.log" || fail "no join line in the node's log"
ok "the retrying node joins once the server is back on $URL: kubectl get nodes shows it Ready"

# a wrong token: 401, no retry, status 1 at once
sed 's/^\( *token:\).*/\1 not-the-token/' "$ML_DATA/kubeconfig" >"$ML_TMP/wrong.kubeconfig"
start_node wrong "$ML_TMP/wrong.kubeconfig"
exits_within 10 "$NODE_PID"
expect_eq "$EXIT_RC" 1 "exit status with a wrong token"
grep -q "Unauthorized" "$ML_TMP/node-wrong.log" || fail "no 401 message: [$(cat "$ML_TMP/node-wrong.log")]"
grep -q "unable to register node" "$ML_TMP/node-wrong.log" && fail "a 401 was retried"
ok "a wrong token exits 1 at once with the server's 401"

SECOND=${N_PIDS[1]}
kill -TERM "$SECOND"
exits_within 30 "$SECOND"
expect_eq "$EXIT_RC" 0 "exit status of the joined node after SIGTERM"
stop_server
ok "node and server stopped"
finish
