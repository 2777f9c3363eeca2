# HorizontalPodAutoscaler through the real server: a Deployment whose pod
# burns CPU in a shell loop with a 100m request; `kubectl autoscale` (an
# autoscaling/v1 protobuf create) makes an HPA; with a 1 s sync period it
# scales the Deployment up, `kubectl get hpa` shows kubectl's columns and a
# measured utilization, `kubectl describe hpa` Kubernetes' layout; a new
# idle template brings it back to 1 after the (shortened) downscale
# stabilization window; the SuccessfulRescale events say why.
source "$(dirname "$0")/lib.sh"

command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed (.ci/install-deps installs it)"
kc() { kubectl --request-timeout=20s "$@"; }

start_server --node-name n1 --horizontal-pod-autoscaler-sync-period 1s \
  --horizontal-pod-autoscaler-downscale-stabilization 3s
ok "server started"

cat >"$ML_TMP/web.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: spin
        image: sh
        command: ["sh", "-c", "while :; do :; done"]
        resources:
          requests: {cpu: 100m}
YAML
kc create -f "$ML_TMP/web.yaml" >/dev/null || fail "create deployment"
expect_eq "$(kc autoscale deployment web --min 1 --max 5 --cpu-percent 50)" \
  "horizontalpodautoscaler.autoscaling/web autoscaled" "kubectl autoscale"
hpa_get=$(kc get hpa web)
expect_match "$hpa_get" '^NAME +REFERENCE +TARGETS +MINPODS +MAXPODS +REPLICAS +AGE' "get hpa header"
expect_match "$hpa_get" 'web +Deployment/web +cpu: (<unknown>|[0-9]+%)/50% +1 +5 ' "get hpa row"
expect_eq "$(kc get --raw /apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["spec"]["targetCPUUtilizationPercentage"])')" \
  "50" "v1 view"
expect_eq "$(kc get hpa web -o 'jsonpath={.apiVersion} {.spec.metrics[0].resource.target.averageUtilization}')" \
  "autoscaling/v2 50" "stored as v2"
watched=$(kc get --raw '/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers?watch=1&timeoutSeconds=1')
expect_contains "$watched" '"targetCPUUtilizationPercentage":50' "v1 watch"
expect_match "$(ml get hpa web)" 'web +Deployment/web +cpu: (<unknown>|[0-9]+%)/50% +1 +5 ' "moonlet get hpa"
ok "kubectl autoscale, get hpa, v1 and v2 views"

replicas() { kc get deploy web -o 'jsonpath={.spec.replicas}'; }
scaled_up() { [ "$(replicas)" -ge 2 ]; }
wait_for 40 "the HPA to scale web up" scaled_up
measured() { kc get hpa web | grep -Eq 'cpu: [0-9]+%/50%'; }
wait_for 20 "get hpa to show a utilization" measured
expect_match "$(kc get events --field-selector reason=SuccessfulRescale -o 'jsonpath={.items[*].message}')" \
  'New size: [2-5]; reason: cpu resource utilization \(percentage of request\) above target' "scale-up event"
desc=$(kc describe hpa web)
for line in '^Reference: +Deployment/web' '^Metrics: +\( current / target \)' \
  'resource cpu on pods +\(as a percentage of request\): +[0-9]+% \([0-9]+m\) / 50%' \
  '^Min replicas: +1' '^Max replicas: +5' '^Deployment pods: +[0-9]+ current / [0-9]+ desired' \
  '^Conditions:' 'ScalingActive +True +ValidMetricFound' '^Events:' 'SuccessfulRescale'; do
  expect_match "$desc" "$line" "describe hpa"
done
ok "scaled up on CPU, utilization shown, describe hpa"

# idle pods: a new template; old pods go, the new ones measure near 0%
kc patch deploy web --type json -p \
  '[{"op":"replace","path":"/spec/template/spec/containers/0/command","value":["sh","-c","exec sleep 100000"]}]' \
  >/dev/null || fail "patch template"
scaled_down() { [ "$(replicas)" = 1 ]; }
wait_for 60 "the HPA to scale web back to 1" scaled_down
expect_match "$(kc get events --field-selector reason=SuccessfulRescale -o 'jsonpath={.items[*].message}')" \
  'New size: 1; reason: All metrics below target' "scale-down event"
expect_match "$(kc get hpa web -o 'jsonpath={.status.lastScaleTime}')" '^[0-9T:-]+Z$' "lastScaleTime"
ok "idle pods: scaled back to 1 after the stabilization window"

# a pod without a CPU request has no utilization
kc patch deploy web --type json -p \
  '[{"op":"remove","path":"/spec/template/spec/containers/0/resources"}]' >/dev/null || fail "patch resources"
no_request() {
  kc get hpa web -o 'jsonpath={.status.conditions[?(@.type=="ScalingActive")].message}' \
    | grep -q 'failed to get cpu utilization: missing request for cpu in container spin of Pod web-'
}
wait_for 30 "ScalingActive to name the missing request" no_request
ok "missing CPU request reported in ScalingActive"

kc delete hpa web >/dev/null || fail "delete hpa"
stop_server
ok "server stopped"
finish
