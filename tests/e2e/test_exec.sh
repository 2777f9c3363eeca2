# kubectl exec / kubectl cp and moonlet exec through the real server: the
# command runs in the container's context (env, working dir), output on
# stdout and stderr, stdin, exit status, a tty on a /dev/pts device, the
# API's errors (unknown container or pod, a container not running, a pod on
# a joined node), a client that goes away (the command is hung up), and a
# WebSocket peer that breaks the protocol (close 1002, server unharmed).
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
command -v python3 >/dev/null 2>&1 || fail "python3 is not installed (the raw WebSocket check needs it)"
kc() { kubectl --request-timeout=30s "$@"; }

start_server --node-name n1
ok "server started"

cat >"$ML_TMP/pods.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: sh
    command: ["sh", "-c", "exec sleep 100000"]
    env: [{name: FOO, value: from-spec}]
---
apiVersion: v1
kind: Pod
metadata: {name: done}
spec:
  restartPolicy: Never
  containers:
  - name: once
    image: sh
    command: ["true"]
---
apiVersion: v1
kind: Pod
metadata: {name: far}
spec:
  nodeName: n2
  containers:
  - name: main
    image: sh
    command: ["sleep", "1000"]
YAML
ml apply -f "$ML_TMP/pods.yaml" >/dev/null
phase() { [ "$(ml get pod "$1" -o 'jsonpath={.status.phase}')" = "$2" ]; }
wait_for 30 "web running" phase web Running
wait_for 30 "done succeeded" phase done Succeeded
ok "pods up"

# --- kubectl
expect_eq "$(kc exec web -- echo hi)" "hi" "kubectl exec echo"
expect_eq "$(kc exec web -- sh -c 'echo $FOO')" "from-spec" "env of the pod spec"
poddir=$(kc exec web -- pwd)
expect_contains "$poddir" "/pods/default_web_" "working dir is the pod dir"
rc=0
out=$(kc exec web -- sh -c 'exit 3' 2>&1) || rc=$?
expect_eq "$rc" 3 "kubectl exits with the command's status"
expect_contains "$out" "command terminated with exit code 3" "kubectl's message"
expect_eq "$(printf 'data\nmore\n' | kc exec -i web -- cat)" "$(printf 'data\nmore\n')" "stdin to cat"
out=$(kc exec web -- sh -c 'echo out; echo err >&2' 2>"$ML_TMP/err")
expect_eq "$out" "out" "stdout alone on stdout"
expect_eq "$(cat "$ML_TMP/err")" "err" "stderr on stderr"
head -c 300000 /dev/urandom >"$ML_TMP/big"
expect_eq "$(kc exec -i web -- cat <"$ML_TMP/big" | cksum)" "$(cksum <"$ML_TMP/big")" "300 kB through stdin and stdout"
ok "kubectl exec: output, env, cwd, exit status, stdin, stderr"

if command -v tar >/dev/null 2>&1; then
  echo "copied content" >"$ML_TMP/in.txt"
  kc cp "$ML_TMP/in.txt" web:in.txt >/dev/null
  expect_eq "$(kc exec web -- cat in.txt)" "copied content" "kubectl cp into the pod's working dir"
  kc cp web:in.txt "$ML_TMP/back.txt" >/dev/null 2>&1
  expect_eq "$(cat "$ML_TMP/back.txt")" "copied content" "kubectl cp back"
  ok "kubectl cp both ways"
fi

if command -v script >/dev/null 2>&1; then
  out=$(script -qc "kubectl --request-timeout=30s exec -it web -- sh -c 'tty; exit 0'" /dev/null </dev/null)
  expect_contains "$out" "/dev/pts/" "kubectl exec -it sees a terminal"
  out=$(script -qc "kubectl --request-timeout=30s exec -it web -- sh -c 'exit 4'" /dev/null </dev/null) || true
  expect_contains "$out" "command terminated with exit code 4" "tty session's exit status"
  ok "kubectl exec -it: a pty"
fi

rc=0
out=$(kc exec -c nope web -- true 2>&1) || rc=$?
expect_eq "$rc" 1 "unknown container fails"
expect_contains "$out" "container nope is not valid for pod web" "unknown container message"
rc=0
out=$(kc exec ghost -- true 2>&1) || rc=$?
expect_eq "$rc" 1 "unknown pod fails"
expect_contains "$out" 'pods "ghost" not found' "unknown pod message"
ok "kubectl exec errors"

# A client that goes away: its command is hung up, as a closed terminal's.
kubectl exec web -- sh -c 'echo $$ > exec.pid; exec sleep 1000' &
kpid=$!
wait_for 20 "the exec'd command's pid file" test -s "$poddir/exec.pid"
epid=$(cat "$poddir/exec.pid")
kill -0 "$epid" || fail "exec'd command not running"
kill -KILL "$kpid"
wait "$kpid" 2>/dev/null || true
gone() { ! kill -0 "$epid" 2>/dev/null; }
wait_for 20 "the command of a vanished client ends" gone
ok "client gone: command ended"

# --- moonlet exec
expect_eq "$(ml exec web -- echo hi)" "hi" "moonlet exec echo"
expect_eq "$(ml exec web -- sh -c 'echo $FOO')" "from-spec" "moonlet exec env"
rc=0
out=$(ml exec web -- sh -c 'exit 3' 2>&1) || rc=$?
expect_eq "$rc" 3 "moonlet exec exits with the command's status"
expect_contains "$out" "command terminated with exit code 3" "moonlet exec message"
expect_eq "$(printf 'x\ny\n' | ml exec -i web -- cat)" "$(printf 'x\ny\n')" "moonlet exec stdin"
out=$(ml exec web -- sh -c 'echo out; echo err >&2' 2>"$ML_TMP/err2")
expect_eq "$out" "out" "moonlet exec stdout"
expect_eq "$(cat "$ML_TMP/err2")" "err" "moonlet exec stderr"
if command -v script >/dev/null 2>&1; then
  out=$(script -qc "$ML_BIN exec -it web -- sh -c 'tty; exit 0'" /dev/null </dev/null)
  expect_contains "$out" "/dev/pts/" "moonlet exec -it sees a terminal"
fi
rc=0
out=$(ml exec web -c nope -- true 2>&1) || rc=$?
expect_eq "$rc" 1 "moonlet exec unknown container fails"
expect_contains "$out" "container nope is not valid for pod web" "moonlet exec unknown container"
rc=0
out=$(ml exec ghost -- true 2>&1) || rc=$?
expect_contains "$out" 'pods "ghost" not found' "moonlet exec unknown pod"
rc=0
out=$(ml exec done -- true 2>&1) || rc=$?
expect_eq "$rc" 1 "exec into a finished container fails"
expect_contains "$out" 'unable to upgrade connection: container not found ("once")' "not running message"
rc=0
out=$(ml exec far -- true 2>&1) || rc=$?
expect_eq "$rc" 1 "exec on a joined node's pod fails"
expect_contains "$out" "joined node n2 is not supported yet" "joined node message"
rc=0
out=$(ml exec web -- no-such-command 2>&1) || rc=$?
expect_eq "$rc" 1 "a command that does not exist fails"
expect_contains "$out" 'exec: "no-such-command"' "start failure message"
ok "moonlet exec"

# --- a peer that breaks the protocol: close 1002, and the server goes on.
code=$(python3 - "$ML_DATA/moonlet.sock" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sys.argv[1])
s.sendall(b"GET /api/v1/namespaces/default/pods/web/exec?command=cat&stdin=true&stdout=true HTTP/1.1\r\n"
          b"Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n")
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(4096)
head, rest = buf.split(b"\r\n\r\n", 1)
assert b" 101 " in head and b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head, head
s.sendall(b"\x82\x02\x00x")  # unmasked: a protocol error from a client
data = rest
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
i = 0
while i + 2 <= len(data):  # walk the frames to the close
    op, ln = data[i] & 15, data[i + 1] & 127
    i += 2
    if ln == 126:
        ln = struct.unpack(">H", data[i:i + 2])[0]; i += 2
    elif ln == 127:
        ln = struct.unpack(">Q", data[i:i + 8])[0]; i += 8
    if op == 8:
        print(struct.unpack(">H", data[i:i + 2])[0])
        break
    i += ln
PY
)
expect_eq "$code" 1002 "unmasked frame closes with 1002"
expect_eq "$(kc exec web -- echo still)" "still" "server serves exec after a bad peer"
ok "protocol errors close the session"

stop_server
ok "server stopped"
echo "1..$ML_TESTS"
