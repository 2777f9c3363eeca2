# Services through the real server: a 3-replica kubia Deployment with an
# exec readiness probe that a file flips; `kubectl expose` makes a
# ClusterIP Service (a loopback cluster IP), the endpoints controller lists
# the 3 pods (127.0.0.1 with each pod's host port), the proxy spreads
# connections over all three; a pod made unready leaves the endpoints and
# gets no more traffic; a NodePort Service answers on 127.0.0.1:nodePort;
# kubectl get svc/ep, describe svc and cluster-info; a port that cannot be
# bound is a Warning event, not a dead server; deleting a Service frees its
# node port for the next.
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
command -v curl >/dev/null 2>&1 || fail "curl is not installed"
start_server --node-name n1 --image-path "$ML_SRC/examples/images"
ok "server started"
kc() { kubectl --request-timeout=20s "$@"; }
match() { grep -Eq -- "$2" <<<"$1" || fail "$3: /$2/ does not match [$1]"; }

FLAGS="$ML_TMP/flags"
mkdir -p "$FLAGS"
cat >"$ML_TMP/deploy.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: kubia
spec:
  replicas: 3
  selector:
    matchLabels:
      app: kubia
  template:
    metadata:
      labels:
        app: kubia
    spec:
      containers:
      - name: kubia
        image: idealism/kubia
        ports:
        - name: http
          containerPort: 8080
        readinessProbe:
          exec:
            command: ["sh", "-c", "test ! -e $FLAGS/unready-\$HOSTNAME"]
          periodSeconds: 1
EOF
kc apply -f "$ML_TMP/deploy.yaml" >/dev/null
ready_pods() {
  [ "$(ml get deploy kubia -o 'jsonpath={.status.readyReplicas}')" = "$1" ]
}
wait_for 60 "3 ready pods" ready_pods 3
ok "deployment ready"

expect_eq "$(kc expose deployment kubia --port 80 --target-port http)" "service/kubia exposed" "kubectl expose"
IP=$(ml get svc kubia -o 'jsonpath={.spec.clusterIP}')
match "$IP" '^127\.100\.[0-9]+\.[0-9]+$' "cluster IP from the loopback range"
ok "cluster IP $IP allocated"

ep_count() { # n: ready addresses in the Endpoints
  local n
  n=$(ml get ep kubia -o 'jsonpath={range .subsets[*]}{range .addresses[*]}{.ip}{"\n"}{end}{end}' | grep -c . || true)
  [ "$n" = "$1" ]
}
wait_for 30 "3 endpoints" ep_count 3
ports=$(ml get ep kubia -o 'jsonpath={range .subsets[*]}{.ports[0].port}{" "}{end}')
for p in $ports; do
  match "$(curl -s --max-time 5 "http://127.0.0.1:$p/")" "You've hit kubia-" "pod answers on its host port $p"
done
slices() {
  [ "$(ml get endpointslices -l kubernetes.io/service-name=kubia -o name | grep -c .)" = "$1" ]
}
wait_for 30 "3 endpoint slices (one per host port)" slices 3
ok "3 endpoints, one subset and one slice per pod's host port"

# Round robin: every pod answers through the cluster IP.
declare -A seen=()
all_seen() {
  local body
  body=$(curl -s --max-time 5 "http://$IP:80/") || return 1
  case "$body" in "You've hit "*) seen[${body#You\'ve hit }]=1 ;; esac
  [ "${#seen[@]}" -ge 3 ]
}
wait_for 30 "all three pods answer through $IP:80" all_seen
ok "the proxy reached all three pods"

# One pod unready: it leaves the endpoints and gets no more traffic.
victim=$(ml get pods -l app=kubia -o 'jsonpath={.items[0].metadata.name}')
touch "$FLAGS/unready-$victim"
not_ready_listed() {
  ep_count 2 && [ "$(ml get ep kubia -o 'jsonpath={.subsets[*].notReadyAddresses[*].targetRef.name}')" = "$victim" ]
}
wait_for 30 "$victim among notReadyAddresses" not_ready_listed
slice_unready() {
  ml get endpointslices -l kubernetes.io/service-name=kubia \
    -o 'jsonpath={range .items[*]}{range .endpoints[*]}{.targetRef.name}={.conditions.ready}{"\n"}{end}{end}' \
    | grep -qx "$victim=false"
}
wait_for 30 "$victim ready=false in its slice" slice_unready
for _ in $(seq 1 12); do
  body=$(curl -s --max-time 5 "http://$IP:80/")
  match "$body" "You've hit kubia-" "answer through the cluster IP"
  [ "$body" != "You've hit $victim" ] || fail "unready pod $victim got traffic"
done
ok "unready pod left the endpoints and got no traffic in 12 requests"
rm -f "$FLAGS/unready-$victim"
wait_for 30 "3 endpoints again" ep_count 3

# moonlet expose: the same generator from the moonlet CLI.
expect_eq "$(ml expose deployment kubia --port 8083 --target-port http --name kubia-ml --type NodePort)" \
  "service/kubia-ml exposed" "moonlet expose"
expect_eq "$(ml get svc kubia-ml -o 'jsonpath={.spec.type} {.spec.selector.app} {.spec.ports[0].targetPort}')" \
  "NodePort kubia http" "moonlet expose's Service"
ml_np=$(ml get svc kubia-ml -o 'jsonpath={.spec.ports[0].nodePort}')
answers_ml() { curl -s --max-time 5 "http://127.0.0.1:$ml_np/" | grep -q "You've hit kubia-"; }
wait_for 30 "kubia-ml answers on its node port $ml_np" answers_ml
ml delete svc kubia-ml >/dev/null
ok "moonlet expose"

# kubectl's views.
out=$(kc get svc kubia)
match "$out" '^NAME +TYPE +CLUSTER-IP +EXTERNAL-IP +PORT\(S\) +AGE' "get svc header"
match "$out" "kubia +ClusterIP +$IP +<none> +80/TCP +[0-9]+s" "get svc row"
match "$(kc get svc kubia -o wide)" 'AGE +SELECTOR$' "get svc -o wide header"
match "$(kc get svc kubia -o wide)" '80/TCP +[0-9]+s +app=kubia$' "get svc -o wide selector"
out=$(kc get ep kubia)
match "$out" '^NAME +ENDPOINTS +AGE' "get ep header"
match "$out" 'kubia +127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+ +[0-9]+s' "get ep row"
match "$(kc get svc,ep)" 'service/kubia' "get svc,ep"
match "$(kc get endpointslices)" 'kubia-[a-z0-9]+ +IPv4 +[0-9]+ +127\.0\.0\.1' "get endpointslices"
out=$(kc describe svc kubia)
match "$out" 'Name: +kubia' "describe Name"
match "$out" 'Selector: +app=kubia' "describe Selector"
match "$out" 'Type: +ClusterIP' "describe Type"
match "$out" "IP: +$IP" "describe IP"
match "$out" 'Port: +<unset> +80/TCP' "describe Port"
match "$out" 'TargetPort: +http/TCP' "describe TargetPort"
match "$out" 'Endpoints: +127\.0\.0\.1:[0-9]+' "describe Endpoints"
out=$(ml describe svc kubia)
match "$out" "IP: +$IP" "moonlet describe IP"
match "$out" 'Endpoints: +127\.0\.0\.1:[0-9]+' "moonlet describe Endpoints"
match "$(ml get svc)" "kubia +ClusterIP +$IP" "moonlet get svc"
match "$(kc cluster-info)" 'Kubernetes control plane is running at' "cluster-info"
match "$(kc explain svc.spec.clusterIP)" 'loopback range' "kubectl explain svc.spec.clusterIP"
ok "kubectl get svc/ep/endpointslices, describe svc, cluster-info, explain"

# NodePort: the node port answers on 127.0.0.1.
cat >"$ML_TMP/np.yaml" <<EOF
apiVersion: v1
kind: Service
metadata:
  name: kubia-np
spec:
  type: NodePort
  selector:
    app: kubia
  ports:
  - port: 8081
    targetPort: 8080
    nodePort: 30123
EOF
kc apply -f "$ML_TMP/np.yaml" >/dev/null
match "$(kc get svc kubia-np)" 'kubia-np +NodePort +127\.100\.[0-9.]+ +<none> +8081:30123/TCP' "get svc NodePort row"
answers_np() { curl -s --max-time 5 "http://127.0.0.1:30123/" | grep -q "You've hit kubia-"; }
wait_for 30 "127.0.0.1:30123 answers" answers_np
ok "NodePort service answers on 127.0.0.1:30123"

# A taken node port is refused with kube-apiserver's message.
sed 's/name: kubia-np/name: kubia-np2/' "$ML_TMP/np.yaml" >"$ML_TMP/np2.yaml"
err=$(kc apply -f "$ML_TMP/np2.yaml" 2>&1) && fail "a taken node port was accepted"
expect_contains "$err" 'spec.ports[0].nodePort: Invalid value: 30123: provided port is already allocated' "taken node port"
# Deleting the first frees it for the second.
kc delete svc kubia-np >/dev/null
gone_np() { ! curl -s --max-time 2 "http://127.0.0.1:30123/" >/dev/null; }
wait_for 30 "the deleted Service's node port stops answering" gone_np
expect_eq "$(kc apply -f "$ML_TMP/np2.yaml")" "service/kubia-np2 created" "node port reused after delete"
answers_np2() { curl -s --max-time 5 "http://127.0.0.1:30123/" | grep -q "You've hit kubia-"; }
wait_for 30 "kubia-np2 answers on 30123" answers_np2
ok "deleting a Service releases its node port"

# kubectl's typed generator sends the Service as protobuf.
expect_eq "$(kc create service clusterip by-generator --tcp=5678:8080)" "service/by-generator created" "kubectl create service"
expect_eq "$(kc get svc by-generator -o 'jsonpath={.spec.ports[0].port}/{.spec.ports[0].targetPort}/{.spec.selector.app}')" \
  "5678/8080/by-generator" "the generator's Service"
kc delete svc by-generator >/dev/null
ok "kubectl create service (protobuf)"

# A port the server cannot bind: a Warning event, the server goes on.
# 127.0.0.1 is outside the cluster IP range, so a busy port is made on a
# cluster IP the test picks and then asks for.
busy_ip=127.100.250.7
cat >"$ML_TMP/busy.lua" <<EOF
local httpd = require("moonlet.httpd")
assert(httpd.listen("tcp://$busy_ip:9090", function(req) req:respond(200, {}, "busy") end))
require("moonlet.sched").wait(require("moonlet.loop").next_id())
EOF
"$ML_BIN" lua "$ML_TMP/busy.lua" &
busy_pid=$!
# lib.sh's cleanup runs too, with the test's exit status.
trap 'rc=$?; set +e; kill "$busy_pid" 2>/dev/null; (exit $rc); cleanup' EXIT
busy_up() { [ "$(curl -s --max-time 2 "http://$busy_ip:9090/")" = busy ]; }
wait_for 10 "the busy listener" busy_up
cat >"$ML_TMP/busy.yaml" <<EOF
apiVersion: v1
kind: Service
metadata:
  name: busy
spec:
  clusterIP: $busy_ip
  selector:
    app: kubia
  ports:
  - port: 9090
    targetPort: 8080
EOF
kc apply -f "$ML_TMP/busy.yaml" >/dev/null
warned() { kc get events --field-selector involvedObject.name=busy -o 'jsonpath={.items[*].reason}' | grep -q FailedToListen; }
wait_for 30 "a FailedToListen event on Service busy" warned
kill "$busy_pid" 2>/dev/null || true
wait "$busy_pid" 2>/dev/null || true
match "$(curl -s --max-time 5 "http://$IP:80/")" "You've hit kubia-" "other Services still answer"
ok "an address in use is a Warning event, the server goes on"

# Deleting a Service closes its listener and removes its Endpoints.
kc delete svc kubia >/dev/null
ep_gone() { ! ml get ep kubia >/dev/null 2>&1; }
wait_for 30 "endpoints of the deleted Service gone" ep_gone
closed() { ! curl -s --max-time 2 "http://$IP:80/" >/dev/null; }
wait_for 30 "$IP:80 closed" closed
ok "deleted Service: endpoints gone, listener closed"

stop_server
ok "server stopped cleanly"
finish
