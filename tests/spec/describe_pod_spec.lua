-- `describe pod` against text kubectl 1.32 printed: a pod using most of
-- what describePod shows (fixture captured from kubectl against a moonlet
-- server), the book chapter's restarted container block and events, probe
-- and toleration formats, and a terminating pod.
require("moonlet_core")
local json = require("moonlet.json")
local duration = require("moonlet.printers.duration")
local describe_pod = require("moonlet.cli.describe_pod")
local describe_cli = require("moonlet.cli.describe")

local SRC = os.getenv("ML_SRC") or "."

local function read(path)
  local f = assert(io.open(SRC .. "/tests/spec/fixtures/" .. path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local NOW = duration.parse("2020-06-07T10:02:25Z")

-- The chapter's kubia-liveness after two restarts (its times in UTC).
local function chapter_pod()
  return {
    metadata = { name = "kubia-liveness", namespace = "default", uid = "u-1",
      creationTimestamp = "2020-06-07T09:57:40Z" },
    spec = {
      nodeName = "minikube-m02", serviceAccountName = "default", priority = 0,
      containers = { {
        name = "kubia", image = "idealism/kubia-unhealthy",
        ports = { { containerPort = 8080, protocol = "TCP" } },
        livenessProbe = { httpGet = { path = "/", port = 8080, scheme = "HTTP" }, timeoutSeconds = 1,
          periodSeconds = 10, successThreshold = 1, failureThreshold = 3 },
      } },
      tolerations = {
        { key = "node.kubernetes.io/not-ready", operator = "Exists", effect = "NoExecute", tolerationSeconds = 300 },
        { key = "node.kubernetes.io/unreachable", operator = "Exists", effect = "NoExecute", tolerationSeconds = 300 },
      },
    },
    status = {
      phase = "Running", hostIP = "192.168.49.3", podIP = "10.244.1.2", podIPs = { { ip = "10.244.1.2" } },
      startTime = "2020-06-07T09:57:44Z", qosClass = "BestEffort",
      conditions = { { type = "Initialized", status = "True" }, { type = "Ready", status = "True" },
        { type = "ContainersReady", status = "True" }, { type = "PodScheduled", status = "True" } },
      containerStatuses = { {
        name = "kubia", ready = true, restartCount = 2, containerID = "docker://1", imageID = "docker-pullable://k",
        state = { running = { startedAt = "2020-06-07T09:59:35Z" } },
        lastState = { terminated = { exitCode = 137, reason = "Error", startedAt = "2020-06-07T09:57:44Z",
          finishedAt = "2020-06-07T09:59:27Z" } },
      } },
    },
  }
end

describe("describe pod", function()
  it("prints what kubectl 1.32 prints for a pod using most fields", function()
    local pod = json.decode(read("describe_pod_rich.json"))
    assert.are.equal(read("describe_pod_rich.kubectl.txt"), describe_pod.render(pod, {}, NOW))
  end)

  it("prints the chapter's restarted container and its events", function()
    local events = {
      { type = "Normal", reason = "Scheduled", message = "Successfully assigned default/kubia-liveness to minikube-m02",
        source = { component = "default-scheduler" }, count = 1 },
      { type = "Warning", reason = "Unhealthy", count = 6, source = { component = "kubelet", host = "minikube-m02" },
        message = "Liveness probe failed: HTTP probe failed with statuscode: 500",
        involvedObject = { fieldPath = "spec.containers{kubia}" },
        firstTimestamp = "2020-06-07T09:59:27Z", lastTimestamp = "2020-06-07T10:01:37Z" },
      { type = "Normal", reason = "Killing", count = 2, source = { component = "kubelet", host = "minikube-m02" },
        message = "Container kubia failed liveness probe, will be restarted",
        firstTimestamp = "2020-06-07T09:59:47Z", lastTimestamp = "2020-06-07T10:01:37Z" },
    }
    local text = describe_pod.render(chapter_pod(), events, NOW)
    assert.truthy(text:find([[
Containers:
  kubia:
    Container ID:   docker://1
    Image:          idealism/kubia-unhealthy
    Image ID:       docker-pullable://k
    Port:           8080/TCP
    Host Port:      0/TCP
    State:          Running
      Started:      Sun, 07 Jun 2020 09:59:35 +0000
    Last State:     Terminated
      Reason:       Error
      Exit Code:    137
      Started:      Sun, 07 Jun 2020 09:57:44 +0000
      Finished:     Sun, 07 Jun 2020 09:59:27 +0000
    Ready:          True
    Restart Count:  2
    Liveness:       http-get http://:8080/ delay=0s timeout=1s period=10s #success=1 #failure=3
    Environment:    <none>
    Mounts:         <none>
Conditions:
  Type              Status
  Initialized       True 
  Ready             True 
  ContainersReady   True 
  PodScheduled      True 
Volumes:            <none>
QoS Class:          BestEffort
Node-Selectors:     <none>
Tolerations:        node.kubernetes.io/not-ready:NoExecute op=Exists for 300s
                    node.kubernetes.io/unreachable:NoExecute op=Exists for 300s
]], 1, true), text)
    -- the seed's own lines; kubectl 1.32 prints only source.component in From
    assert.truthy(text:find([[
Events:
  Type     Reason     Age                  From               Message
  ----     ------     ----                 ----               -------
  Normal   Scheduled  <unknown>            default-scheduler  Successfully assigned default/kubia-liveness to minikube-m02
  Warning  Unhealthy  48s (x6 over 2m58s)  kubelet            Liveness probe failed: HTTP probe failed with statuscode: 500
  Normal   Killing    48s (x2 over 2m38s)  kubelet            Container kubia failed liveness probe, will be restarted
]], 1, true), text)
    assert.truthy(text:find("Name:             kubia-liveness\nNamespace:        default\nPriority:         0\n"
      .. "Service Account:  default\nNode:             minikube-m02/192.168.49.3\n"
      .. "Start Time:       Sun, 07 Jun 2020 09:57:44 +0000\n", 1, true), text)
  end)

  it("formats every probe handler as DescribeProbe does", function()
    local attrs = { initialDelaySeconds = 5, timeoutSeconds = 2, periodSeconds = 7, successThreshold = 1, failureThreshold = 4 }
    local function probe(h)
      local p = json.copy(attrs)
      for k, v in pairs(h) do p[k] = v end
      return describe_pod.probe(p)
    end
    local tail = " delay=5s timeout=2s period=7s #success=1 #failure=4"
    assert.are.equal("exec [test -f /tmp/ready]" .. tail, probe({ exec = { command = { "test", "-f", "/tmp/ready" } } }))
    assert.are.equal("http-get http://:8080/healthz" .. tail, probe({ httpGet = { port = 8080, path = "/healthz", scheme = "HTTP" } }))
    assert.are.equal("http-get https://[::1]:http/" .. tail, probe({ httpGet = { host = "::1", port = "http", path = "/", scheme = "HTTPS" } }))
    assert.are.equal("tcp-socket :8080" .. tail, probe({ tcpSocket = { port = 8080 } }))
    assert.are.equal("grpc <pod>:9090 health" .. tail, probe({ grpc = { port = 9090, service = "health" } }))
    assert.are.equal("lua http-json" .. tail, probe({ lua = { check = "http-json" } }))
    assert.are.equal("unknown" .. tail, probe({}))
  end)

  it("prints a terminating pod's grace period", function()
    local pod = chapter_pod()
    pod.metadata.deletionTimestamp = "2020-06-07T10:02:55Z"
    pod.metadata.deletionGracePeriodSeconds = 30
    local text = describe_pod.render(pod, nil, NOW)
    assert.truthy(text:find("Status:                    Terminating (lasts <invalid>)\n"
      .. "Termination Grace Period:  30s\n", 1, true), text)
    assert.is_nil(text:find("Events:", 1, true))
  end)

  it("is the describer the CLI uses for pods and nodes", function()
    assert.are.equal("moonlet.cli.describe_pod", describe_cli.describers["/Pod"])
    assert.are.equal("moonlet.cli.describe_node", describe_cli.describers["/Node"])
  end)
end)
