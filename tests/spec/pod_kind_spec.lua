-- The v1 Pod kind through the real API stack in process (memory store,
-- router, in-process transport): Kubernetes' defaults and admission on
-- create, validation messages with field paths, the pod update rules,
-- graceful deletion, field selectors and the server-side Table columns;
-- plus the STATUS/READY/RESTARTS derivation and the QoS class.
require("moonlet_core")
local json = require("moonlet.json")
local plugins = require("moonlet.plugins")
local kinds = require("moonlet.api.kinds")
local podspec = require("moonlet.api.podspec")
local printer = require("moonlet.printers.pod")
local duration = require("moonlet.printers.duration")
local fake = require("fake_client") -- for fake.run only

-- A client on a fresh in-process API server with the built-in kinds.
local function api()
  local store = assert(require("moonlet.store").open({ backend = "memory" }))
  local loaded, errors = plugins.load({})
  assert.are.same({}, errors)
  kinds.reset()
  for _, name in ipairs(plugins.names(loaded, "kinds")) do
    kinds.register(loaded.kinds[name].value, loaded.kinds[name].display)
  end
  local router = require("moonlet.api.router").new({ store = store, token = "t", version = "0.0.0",
    log = function() end })
  local transport = require("moonlet.api.inproc").transport(router)
  local client = require("moonlet.client").new({ transport = transport })
  assert(client:create("v1/Namespace", { apiVersion = "v1", kind = "Namespace", metadata = { name = "default" } }))
  return client, transport
end

-- The chapter's kubia-liveness pod.
local function kubia()
  return {
    apiVersion = "v1", kind = "Pod", metadata = { name = "kubia-liveness" },
    spec = { containers = { {
      image = "idealism/kubia-unhealthy", name = "kubia",
      ports = { { containerPort = 8080, protocol = "TCP" } },
      livenessProbe = { httpGet = { port = 8080, path = "/" } },
    } } },
  }
end

local function with(fn, mutate)
  local pod = kubia()
  if mutate then mutate(pod) end
  return fn(pod)
end

-- Creates and returns the Status message of the expected failure.
local function rejected(client, pod)
  local obj, st = client:create("v1/Pod", pod)
  assert.is_nil(obj, "the pod was accepted")
  return st.message, st
end

describe("v1 Pod kind", function()
  it("defaults a pod as the API server does on create", function()
    fake.run(function()
      local client = api()
      local pod = assert(client:create("v1/Pod", kubia()))
      local spec, c = pod.spec, pod.spec.containers[1]
      assert.are.equal("Always", spec.restartPolicy)
      assert.are.equal(30, spec.terminationGracePeriodSeconds)
      assert.are.equal("ClusterFirst", spec.dnsPolicy)
      assert.are.equal("default-scheduler", spec.schedulerName)
      assert.are.same({}, spec.securityContext)
      assert.is_true(spec.enableServiceLinks)
      assert.are.equal("default", spec.serviceAccountName)
      assert.are.equal("default", spec.serviceAccount)
      assert.are.equal(0, spec.priority)
      assert.are.equal("PreemptLowerPriority", spec.preemptionPolicy)
      assert.are.same({
        { key = "node.kubernetes.io/not-ready", operator = "Exists", effect = "NoExecute", tolerationSeconds = 300 },
        { key = "node.kubernetes.io/unreachable", operator = "Exists", effect = "NoExecute", tolerationSeconds = 300 },
      }, spec.tolerations)
      assert.are.equal("Always", c.imagePullPolicy) -- no tag means :latest
      assert.are.equal("/dev/termination-log", c.terminationMessagePath)
      assert.are.equal("File", c.terminationMessagePolicy)
      assert.are.same({ path = "/", port = 8080, scheme = "HTTP" }, c.livenessProbe.httpGet)
      assert.are.equal(1, c.livenessProbe.timeoutSeconds)
      assert.are.equal(10, c.livenessProbe.periodSeconds)
      assert.are.equal(1, c.livenessProbe.successThreshold)
      assert.are.equal(3, c.livenessProbe.failureThreshold)
      assert.are.same({ phase = "Pending", qosClass = "BestEffort" }, pod.status)
      assert.are.equal(1, pod.metadata.generation)
    end)
  end)

  it("defaults ports, env, pull policy, requests and volumes", function()
    local spec = {
      containers = {
        { name = "a", image = "web:1.2", ports = { { containerPort = 80 } },
          env = { { name = "POD", valueFrom = { fieldRef = { fieldPath = "metadata.name" } } } },
          resources = { limits = { cpu = "0.5", memory = "1024Mi" } } },
        { name = "b", image = "web:latest", readinessProbe = { grpc = { port = 9 } } },
        { name = "c", image = "reg:5000/web@sha256:abcd", startupProbe = { tcpSocket = { port = 1 } } },
      },
      volumes = { { name = "scratch" }, { name = "cfg", configMap = { name = "x" } } },
    }
    podspec.defaults(spec, { pod = true })
    local a = spec.containers[1]
    assert.are.equal("IfNotPresent", a.imagePullPolicy)
    assert.are.equal("TCP", a.ports[1].protocol)
    assert.are.equal("v1", a.env[1].valueFrom.fieldRef.apiVersion)
    assert.are.same({ cpu = "500m", memory = "1Gi" }, a.resources.limits)
    assert.are.same({ cpu = "500m", memory = "1Gi" }, a.resources.requests)
    assert.are.equal("Always", spec.containers[2].imagePullPolicy)
    assert.are.equal("", spec.containers[2].readinessProbe.grpc.service)
    assert.are.equal("IfNotPresent", spec.containers[3].imagePullPolicy)
    assert.are.same({}, spec.volumes[1].emptyDir)
    assert.are.equal(420, spec.volumes[2].configMap.defaultMode)
    -- only container a has limits: the others make the pod Burstable
    assert.are.equal("Burstable", podspec.qos_class(spec))
  end)

  it("computes the QoS class", function()
    local function qos(res1, res2)
      return podspec.qos_class({ containers = { { resources = res1 }, res2 and { resources = res2 } or nil } })
    end
    assert.are.equal("BestEffort", qos({}))
    assert.are.equal("Guaranteed", qos({ limits = { cpu = "1", memory = "1Gi" }, requests = { cpu = "1000m", memory = "1Gi" } }))
    assert.are.equal("Burstable", qos({ limits = { cpu = "1", memory = "1Gi" }, requests = { cpu = "500m", memory = "1Gi" } }))
    assert.are.equal("Burstable", qos({ requests = { memory = "64Mi" } }))
    assert.are.equal("Burstable", qos({ limits = { cpu = "1", memory = "1Gi" }, requests = { cpu = "1", memory = "1Gi" } }, {}))
  end)

  it("drops a status sent on create", function()
    fake.run(function()
      local client = api()
      local pod = assert(client:create("v1/Pod", with(function(p) return p end, function(p)
        p.status = { phase = "Running", podIP = "1.2.3.4" } end)))
      assert.are.same({ phase = "Pending", qosClass = "BestEffort" }, pod.status)
    end)
  end)

  it("rejects invalid pods with Kubernetes' field errors", function()
    fake.run(function()
      local client = api()
      local msg, st = rejected(client, with(function(p) return p end, function(p) p.spec.containers = json.array() end))
      assert.are.equal(422, st.code)
      assert.are.equal('Pod "kubia-liveness" is invalid: spec.containers: Required value', msg)

      msg = rejected(client, with(function(p) return p end, function(p)
        p.spec.containers[2] = { name = "kubia", image = "x" } end))
      assert.are.equal('Pod "kubia-liveness" is invalid: spec.containers[1].name: Duplicate value: "kubia"', msg)

      msg = rejected(client, with(function(p) return p end, function(p)
        p.spec.containers[1].ports[1].containerPort = 70000 end))
      assert.are.equal('Pod "kubia-liveness" is invalid: spec.containers[0].ports[0].containerPort: '
        .. 'Invalid value: 70000: must be between 1 and 65535, inclusive', msg)

      msg = rejected(client, with(function(p) return p end, function(p) p.spec.restartPolicy = "Sometimes" end))
      assert.are.equal('Pod "kubia-liveness" is invalid: spec.restartPolicy: Unsupported value: "Sometimes": '
        .. 'supported values: "Always", "OnFailure", "Never"', msg)

      msg = rejected(client, with(function(p) return p end, function(p)
        p.spec.containers[1].livenessProbe.tcpSocket = { port = 8080 } end))
      assert.are.equal('Pod "kubia-liveness" is invalid: spec.containers[0].livenessProbe.tcpSocket: '
        .. 'Forbidden: may not specify more than 1 handler type', msg)

      msg = rejected(client, with(function(p) return p end, function(p)
        p.spec.containers[1].livenessProbe = { periodSeconds = 5 } end))
      assert.are.equal('Pod "kubia-liveness" is invalid: spec.containers[0].livenessProbe: '
        .. 'Required value: must specify a handler type', msg)

      msg = rejected(client, with(function(p) return p end, function(p)
        p.spec.containers[1].livenessProbe.failureThreshold = -1
        p.spec.containers[1].livenessProbe.successThreshold = 2 end))
      assert.are.equal('Pod "kubia-liveness" is invalid: [spec.containers[0].livenessProbe.failureThreshold: '
        .. 'Invalid value: -1: must be greater than or equal to 0, spec.containers[0].livenessProbe.successThreshold: '
        .. 'Invalid value: 2: must be 1]', msg)

      msg = rejected(client, with(function(p) return p end, function(p)
        p.spec.containers[1].ports = { { name = "Web_Port", containerPort = 80 }, { name = "http", containerPort = 81 },
          { name = "http", containerPort = 82 } } end))
      assert.are.equal('Pod "kubia-liveness" is invalid: [spec.containers[0].ports[0].name: Invalid value: '
        .. '"Web_Port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), '
        .. 'spec.containers[0].ports[2].name: Duplicate value: "http"]', msg)

      msg = rejected(client, with(function(p) return p end, function(p)
        p.spec.containers[1].image = nil
        p.spec.containers[1].env = { { name = "1BAD", value = "x" } } end))
      assert.are.equal('Pod "kubia-liveness" is invalid: [spec.containers[0].image: Required value, '
        .. 'spec.containers[0].env[0].name: Invalid value: "1BAD": a valid environment variable name must '
        .. "consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit "
        .. "(e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is "
        .. "'[-._a-zA-Z][-._a-zA-Z0-9]*')]", msg)

      msg = rejected(client, with(function(p) return p end, function(p)
        p.spec.activeDeadlineSeconds = 0
        p.spec.terminationGracePeriodSeconds = nil
        p.spec.nodeSelector = { disk = "ssd!" } end))
      assert.truthy(msg:find("spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive", 1, true))
      assert.truthy(msg:find('spec.nodeSelector: Invalid value: "ssd!": a valid label must be', 1, true))

      msg = rejected(client, with(function(p) return p end, function(p)
        p.spec.containers[1].resources = { limits = { cpu = "1" }, requests = { cpu = "2" } } end))
      assert.are.equal('Pod "kubia-liveness" is invalid: spec.containers[0].resources.requests: '
        .. 'Invalid value: "2": must be less than or equal to cpu limit of 1', msg)
    end)
  end)

  it("reports wrong JSON types the way the decoder does", function()
    fake.run(function()
      local client = api()
      local _, st = client:create("v1/Pod", with(function(p) return p end, function(p)
        p.spec.containers[1].ports[1].containerPort = "http" end))
      assert.are.equal(400, st.code)
      assert.are.equal('Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into '
        .. 'Go struct field ContainerPort.spec.containers.ports.containerPort of type int32', st.message)
    end)
  end)

  it("accepts a command that does not exist (it fails at run time)", function()
    fake.run(function()
      local client = api()
      assert(client:create("v1/Pod", with(function(p) return p end, function(p)
        p.spec.containers[1].command = { "/no/such/binary" } end)))
    end)
  end)

  it("accepts the restart policies the kubelet has loaded", function()
    package.loaded["moonlet.kubelet.policies"] = { names = function() return { "Always", "OnFailure", "Never", "GiveUpAfter3" } end }
    local ok, err = pcall(fake.run, function()
      local client = api()
      assert(client:create("v1/Pod", with(function(p) return p end, function(p) p.spec.restartPolicy = "GiveUpAfter3" end)))
      local msg = rejected(client, with(function(p) return p end, function(p)
        p.metadata.name = "other"
        p.spec.restartPolicy = "Sometimes" end))
      assert.are.equal('Pod "other" is invalid: spec.restartPolicy: Unsupported value: "Sometimes": '
        .. 'supported values: "Always", "OnFailure", "Never", "GiveUpAfter3"', msg)
    end)
    package.loaded["moonlet.kubelet.policies"] = nil
    assert(ok, err)
  end)

  it("lets updates change only images, deadlines and tolerations", function()
    fake.run(function()
      local client = api()
      local pod = assert(client:create("v1/Pod", kubia()))
      pod.spec.containers[1].image = "idealism/kubia"
      pod.spec.activeDeadlineSeconds = 600
      pod.spec.tolerations[#pod.spec.tolerations + 1] = { key = "dedicated", operator = "Exists", effect = "NoSchedule" }
      pod = assert(client:update("v1/Pod", pod))
      assert.are.equal("idealism/kubia", pod.spec.containers[1].image)
      assert.are.equal(2, pod.metadata.generation)

      pod.spec.activeDeadlineSeconds = 900
      local _, st = client:update("v1/Pod", pod)
      assert.are.equal('Pod "kubia-liveness" is invalid: spec.activeDeadlineSeconds: Invalid value: 900: '
        .. 'must be less than or equal to previous value', st.message)

      pod.spec.activeDeadlineSeconds = 600
      pod.spec.restartPolicy = "Never"
      _, st = client:update("v1/Pod", pod)
      assert.are.equal(422, st.code)
      local first = st.message:match("^[^\n]*")
      assert.are.equal('Pod "kubia-liveness" is invalid: spec: Forbidden: pod updates may not change fields other than '
        .. '`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,'
        .. '`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` '
        .. '(allow it to be set to 1 if it was previously negative)', first)
      assert.truthy(st.message:find('spec.restartPolicy:\n  - "Always"\n  + "Never"', 1, true))

      pod.spec.restartPolicy = "Always"
      pod.spec.containers[2] = { name = "extra", image = "x" }
      _, st = client:update("v1/Pod", pod)
      assert.are.equal('Pod "kubia-liveness" is invalid: spec.containers: Forbidden: pod updates may not add or remove containers',
        st.message)
    end)
  end)

  it("keeps the spec on status writes and checks status rules", function()
    fake.run(function()
      local client = api()
      local pod = assert(client:create("v1/Pod", with(function(p) return p end, function(p)
        p.spec.restartPolicy = "Never" end)))
      -- a status write carrying a changed spec: the spec is ignored
      pod.spec.containers[1].image = "changed"
      pod.spec.dnsPolicy = "Default"
      pod.status = { phase = "Failed", qosClass = "BestEffort", containerStatuses = { { name = "kubia",
        restartCount = 0, ready = false, state = { terminated = { exitCode = 1, reason = "Error" } } } } }
      local got = assert(client:update_status("v1/Pod", pod))
      assert.are.equal("Failed", got.status.phase)
      assert.are.equal("idealism/kubia-unhealthy", got.spec.containers[1].image)
      assert.are.equal("ClusterFirst", got.spec.dnsPolicy)
      got.status.containerStatuses[1].state = { running = { startedAt = "2024-01-01T00:00:00Z" } }
      got.status.qosClass = "Guaranteed"
      local _, st = client:update_status("v1/Pod", got)
      assert.are.equal('Pod "kubia-liveness" is invalid: [status.qosClass: Invalid value: "Guaranteed": field is immutable, '
        .. 'status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state]', st.message)
    end)
  end)

  it("deletes unscheduled pods at once and scheduled ones gracefully", function()
    fake.run(function()
      local client = api()
      assert(client:create("v1/Pod", kubia()))
      assert(client:delete("v1/Pod", "default", "kubia-liveness"))
      assert.is_nil(client:get("v1/Pod", "default", "kubia-liveness"))

      assert(client:create("v1/Pod", with(function(p) return p end, function(p) p.spec.nodeName = "node-1" end)))
      assert(client:delete("v1/Pod", "default", "kubia-liveness"))
      local pod = assert(client:get("v1/Pod", "default", "kubia-liveness"))
      assert.is_string(pod.metadata.deletionTimestamp)
      assert.are.equal(30, pod.metadata.deletionGracePeriodSeconds)
      assert.are.equal("Terminating", printer.status(pod))
    end)
  end)

  it("supports kubectl's pod field selectors", function()
    fake.run(function()
      local client = api()
      assert(client:create("v1/Pod", with(function(p) return p end, function(p) p.spec.nodeName = "n1" end)))
      assert(client:create("v1/Pod", with(function(p) return p end, function(p) p.metadata.name = "other" end)))
      local list = assert(client:list("v1/Pod", { namespace = "default", field_selector = "spec.nodeName=n1" }))
      assert.are.equal(1, #list.items)
      assert.are.equal("kubia-liveness", list.items[1].metadata.name)
      list = assert(client:list("v1/Pod", { namespace = "default", field_selector = "status.phase=Pending,spec.restartPolicy=Always" }))
      assert.are.equal(2, #list.items)
    end)
  end)

  it("prints kubectl's pod columns in server-side tables", function()
    fake.run(function()
      local client = api()
      assert(client:create("v1/Pod", kubia()))
      local t = assert(client:table("v1/Pod", { namespace = "default" }))
      local names = {}
      for i, c in ipairs(t.columnDefinitions) do names[i] = c.name .. (c.priority == 1 and "*" or "") end
      assert.are.same({ "Name", "Ready", "Status", "Restarts", "Age", "IP*", "Node*", "Nominated Node*",
        "Readiness Gates*" }, names)
      local cells = t.rows[1].cells
      assert.are.same({ "kubia-liveness", "0/1", "Pending", "0" }, { cells[1], cells[2], cells[3], cells[4] })
      assert.are.same({ "<none>", "<none>", "<none>", "<none>" }, { cells[6], cells[7], cells[8], cells[9] })
    end)
  end)
end)

describe("pod STATUS, READY and RESTARTS", function()
  local NOW = duration.parse("2020-06-07T10:04:09Z")
  local function pod(status, spec)
    return { metadata = { name = "p", creationTimestamp = "2020-06-07T10:00:00Z" },
      spec = spec or { containers = { { name = "kubia" } } }, status = status }
  end

  it("shows the chapter's restarted pod", function()
    local p = pod({ phase = "Running", conditions = { { type = "Ready", status = "True" } },
      containerStatuses = { { name = "kubia", ready = true, restartCount = 2,
        state = { running = { startedAt = "2020-06-07T10:03:35Z" } },
        lastState = { terminated = { exitCode = 137, reason = "Error", finishedAt = "2020-06-07T10:03:27Z" } } } } })
    assert.are.equal("1/1", printer.ready(p))
    assert.are.equal("Running", printer.status(p))
    assert.are.equal("2 (42s ago)", printer.restarts(p, NOW))
  end)

  it("derives waiting, terminated and init reasons", function()
    local crash = pod({ phase = "Running", containerStatuses = { { name = "kubia", restartCount = 3,
      state = { waiting = { reason = "CrashLoopBackOff" } } } } })
    assert.are.equal("CrashLoopBackOff", printer.status(crash))
    assert.are.equal("3", printer.restarts(crash, NOW))
    assert.are.equal("ExitCode:2", printer.status(pod({ phase = "Failed", containerStatuses = {
      { name = "kubia", state = { terminated = { exitCode = 2 } } } } })))
    assert.are.equal("Signal:9", printer.status(pod({ phase = "Failed", containerStatuses = {
      { name = "kubia", state = { terminated = { exitCode = 137, signal = 9 } } } } })))
    assert.are.equal("Completed", printer.status(pod({ phase = "Succeeded", containerStatuses = {
      { name = "kubia", state = { terminated = { exitCode = 0, reason = "Completed" } } } } })))
    local spec = { initContainers = { { name = "i1" }, { name = "i2" } }, containers = { { name = "kubia" } } }
    assert.are.equal("Init:1/2", printer.status(pod({ phase = "Pending", initContainerStatuses = {
      { name = "i1", state = { terminated = { exitCode = 0 } } },
      { name = "i2", state = { running = {} } } } }, spec)))
    assert.are.equal("Init:CrashLoopBackOff", printer.status(pod({ phase = "Pending", initContainerStatuses = {
      { name = "i1", state = { waiting = { reason = "CrashLoopBackOff" } } } } }, spec)))
    assert.are.equal("Init:Error", printer.status(pod({ phase = "Pending", initContainerStatuses = {
      { name = "i1", state = { terminated = { exitCode = 1, reason = "Error" } } } } }, spec)))
    -- a started sidecar counts toward READY and does not block
    local side = { initContainers = { { name = "s", restartPolicy = "Always" } }, containers = { { name = "kubia" } } }
    local p = pod({ phase = "Running", initContainerStatuses = { { name = "s", started = true, ready = true,
      state = { running = {} } } }, containerStatuses = { { name = "kubia", ready = true, state = { running = {} } } } }, side)
    assert.are.equal("2/2", printer.ready(p))
    assert.are.equal("Running", printer.status(p))
    assert.are.equal("Evicted", printer.status(pod({ phase = "Failed", reason = "Evicted" })))
    local lost = pod({ phase = "Running", reason = "NodeLost" })
    lost.metadata.deletionTimestamp = "2020-06-07T10:05:00Z"
    assert.are.equal("Unknown", printer.status(lost))
    assert.are.equal("1/2", printer.readiness_gates({ spec = { readinessGates = { { conditionType = "a" },
      { conditionType = "b" } } }, status = { conditions = { { type = "a", status = "True" }, { type = "b", status = "False" } } } }))
  end)
end)
