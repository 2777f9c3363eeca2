-- The kubelet's pure parts: crash-loop back-off arithmetic, $(VAR)
-- expansion and the downward API, image resolution, host port env, pod
-- phase and conditions (getPhase / generate.go rules), restart policies.
require("moonlet_core")
local backoff = require("moonlet.kubelet.backoff")
local env = require("moonlet.kubelet.env")
local images = require("moonlet.kubelet.images")
local ports = require("moonlet.kubelet.ports")
local status = require("moonlet.kubelet.status")
local policies = require("moonlet.kubelet.policies")

local SRC = os.getenv("ML_SRC") or "."

describe("kubelet back-off", function()
  it("restarts at once, then after 10, 20, 40 ... capped at 300 s", function()
    local now = 1000
    local b = backoff.new({ initial = 10, max = 300, clock = function() return now end })
    local waits = {}
    for _ = 1, 9 do
      -- the container ran 1 s and exited; wait until the back-off allows
      now = now + 1
      local finished = now
      local inb, remaining = b:in_backoff_since("k", finished)
      local w = inb and math.floor(remaining + 0.5) or 0
      waits[#waits + 1] = w
      now = now + w
      assert.is_false((b:in_backoff_since("k", finished)))
      b:next("k", finished)
    end
    assert.are.same({ 0, 10, 20, 40, 80, 160, 300, 300, 300 }, waits)
  end)

  it("forgets an entry after 2 x max of quiet (10 minutes by default)", function()
    local now = 0
    local b = backoff.new({ clock = function() return now end })
    b:next("k", 0)
    b:next("k", 1)
    assert.are.equal(20, b:get("k"))
    now = 700 -- more than 600 s after the last update
    assert.is_false((b:in_backoff_since("k", 700)))
    assert.are.equal(10, b:next("k", 700))
  end)

  it("formats Go durations", function()
    assert.are.equal("10s", backoff.go_duration(10))
    assert.are.equal("1m20s", backoff.go_duration(80))
    assert.are.equal("5m0s", backoff.go_duration(300))
  end)
end)

describe("kubelet env", function()
  local function lookup(t) return function(k) return t[k] end end

  it("expands $(VAR) as Kubernetes does", function()
    local m = lookup({ VAR_A = "A", VAR_B = "B", EMPTY = "" })
    local cases = {
      { "$(VAR_A)", "A" }, { "___$(VAR_B)___", "___B___" }, { "$(VAR_A)-$(VAR_B)", "A-B" },
      { "$(UNKNOWN)", "$(UNKNOWN)" }, { "$$(VAR_A)", "$(VAR_A)" }, { "$$$(VAR_A)", "$A" },
      { "$(VAR_A", "$(VAR_A" }, { "$VAR_A", "$VAR_A" }, { "$(EMPTY)x", "x" }, { "a$", "a$" },
      { "$$", "$" }, { "$()", "$()" },
    }
    for _, c in ipairs(cases) do assert.are.equal(c[2], env.expand(c[1], m), c[1]) end
  end)

  it("builds env in order with the downward API and expands command/args", function()
    local pod = { metadata = { name = "p", namespace = "ns", uid = "u1", labels = { app = "web" } },
      spec = { nodeName = "n1" }, status = { podIP = "127.0.0.1" } }
    local c = { name = "c", command = { "echo", "$(GREETING)" }, args = { "$(POD)", "$$(POD)" },
      env = {
        { name = "POD", valueFrom = { fieldRef = { fieldPath = "metadata.name" } } },
        { name = "NS", valueFrom = { fieldRef = { fieldPath = "metadata.namespace" } } },
        { name = "UID", valueFrom = { fieldRef = { fieldPath = "metadata.uid" } } },
        { name = "NODE", valueFrom = { fieldRef = { fieldPath = "spec.nodeName" } } },
        { name = "IP", valueFrom = { fieldRef = { fieldPath = "status.podIP" } } },
        { name = "APP", valueFrom = { fieldRef = { fieldPath = "metadata.labels['app']" } } },
        { name = "GREETING", value = "hi $(POD) in $(NS) on $(LATER)" },
        { name = "LATER", value = "x" },
      } }
    local list, lk = env.build(pod, c, { base = { { "HOSTNAME", "p" } } })
    assert.are.same({ "HOSTNAME=p", "POD=p", "NS=ns", "UID=u1", "NODE=n1", "IP=127.0.0.1", "APP=web",
      "GREETING=hi p in ns on $(LATER)", "LATER=x" }, list)
    assert.are.same({ "echo", "hi p in ns on $(LATER)", "p", "$(POD)" }, env.argv(c, lk))
    assert.are.same({ "/img/entrypoint", "p", "$(POD)" },
      env.argv({ args = c.args }, lk, "/img/entrypoint"))
  end)

  it("reports missing ConfigMaps and unsupported field paths", function()
    local pod = { metadata = { name = "p", namespace = "ns" }, spec = {} }
    local _, _, err = env.build(pod, { env = { { name = "X", valueFrom = {
      configMapKeyRef = { name = "cfg", key = "k" } } } } }, { get_configmap = function() return nil end })
    assert.are.equal('configmap "cfg" not found', err)
    local list = env.build(pod, { env = { { name = "X", valueFrom = {
      configMapKeyRef = { name = "cfg", key = "k" } } } } },
      { get_configmap = function() return { data = { k = "v" } } end })
    assert.are.same({ "X=v" }, list)
    _, _, err = env.build(pod, { env = { { name = "X", valueFrom = { fieldRef = { fieldPath = "spec.bogus" } } } } })
    assert.are.equal("unsupported fieldPath: spec.bogus", err)
  end)
end)

describe("kubelet images", function()
  it("strips tags and digests, keeping registry ports", function()
    assert.are.equal("idealism/kubia", images.strip("idealism/kubia:latest"))
    assert.are.equal("idealism/kubia", images.strip("idealism/kubia@sha256:abc"))
    assert.are.equal("localhost:5000/x", images.strip("localhost:5000/x:1"))
    assert.are.equal("busybox", images.strip("busybox"))
  end)

  it("resolves the chapter's images over the image path", function()
    local dirs = { "/nonexistent", SRC .. "/examples/images" }
    for _, img in ipairs({ "idealism/kubia", "idealism/kubia-unhealthy:1.0", "docker.io/idealism/ssd-monitor",
      "idealism/batch-job:latest" }) do
      local p = images.resolve(img, dirs)
      assert.is_truthy(p, img)
      assert.is_truthy(p:match("/entrypoint$"))
    end
    local p, err = images.resolve("nosuch/image", dirs)
    assert.is_nil(p)
    assert.is_truthy(err:find('image "nosuch/image" not found', 1, true))
    assert.is_nil((images.resolve("../etc", dirs)))
  end)
end)

describe("kubelet ports", function()
  it("gives each declared port its own host port, hostPort when set", function()
    local next_port = 40000
    local a = ports.new({ pick = function() next_port = next_port + 1; return next_port end })
    local spec = { containers = { { name = "web", ports = { { containerPort = 8080, name = "http" },
      { containerPort = 9090 } } }, { name = "side", ports = { { containerPort = 8080, hostPort = 30080 } } } } }
    local m = assert(a:assign("u1", spec))
    assert.are.equal(40001, ports.lookup(m, spec.containers[1], 8080))
    assert.are.equal(40001, ports.lookup(m, spec.containers[1], "http"))
    assert.are.equal(40002, ports.lookup(m, spec.containers[1], 9090))
    assert.are.equal(30080, ports.lookup(m, spec.containers[2], 8080))
    assert.are.same({ { "PORT", "40001" }, { "PORT_HTTP", "40001" }, { "PORT_8080", "40001" },
      { "PORT_9090", "40002" } }, ports.env(m, spec.containers[1]))
    -- a second pod asking for the same hostPort is refused; the same spec
    -- in another pod gets other ephemeral ports
    local m2, err = a:assign("u2", spec)
    assert.is_nil(m2)
    assert.are.equal("host port 30080 is already in use", err)
    a:release("u1")
    m2 = assert(a:assign("u2", spec))
    assert.are.equal(30080, ports.lookup(m2, spec.containers[2], 8080))
  end)
end)

describe("kubelet status", function()
  local function cs(name, state, last)
    return { name = name, state = state, lastState = last or {}, ready = state.running ~= nil }
  end
  local running = { running = { startedAt = "x" } }
  local waiting = { waiting = { reason = "ContainerCreating" } }
  local function term(code) return { terminated = { exitCode = code } } end

  it("computes the phase as getPhase", function()
    local spec = function(policy, n) local s = { restartPolicy = policy, containers = {} }
      for i = 1, n or 1 do s.containers[i] = { name = "c" .. i } end
      return s end
    assert.are.equal("Pending", status.phase(spec("Always"), {}, {}))
    assert.are.equal("Pending", status.phase(spec("Always"), {}, { cs("c1", waiting) }))
    assert.are.equal("Running", status.phase(spec("Always"), {}, { cs("c1", running) }))
    assert.are.equal("Running", status.phase(spec("Always"), {}, { cs("c1", term(0)) }))
    assert.are.equal("Running", status.phase(spec("Always"), {}, { cs("c1", waiting, term(1)) }))
    assert.are.equal("Succeeded", status.phase(spec("OnFailure"), {}, { cs("c1", term(0)) }))
    assert.are.equal("Running", status.phase(spec("OnFailure"), {}, { cs("c1", term(1)) }))
    assert.are.equal("Failed", status.phase(spec("Never"), {}, { cs("c1", term(1)) }))
    assert.are.equal("Succeeded", status.phase(spec("Never"), {}, { cs("c1", term(0)) }))
    assert.are.equal("Running", status.phase(spec("Never", 2), {}, { cs("c1", term(1)), cs("c2", running) }))
    assert.are.equal("Failed", status.phase(spec("Always"), {}, { cs("c1", term(143)) }, { terminal = true }))
    assert.are.equal("Succeeded", status.phase(spec("Always"), {}, { cs("c1", term(0)) }, { terminal = true }))
    -- init containers
    local s = spec("Always")
    s.initContainers = { { name = "i1" } }
    assert.are.equal("Pending", status.phase(s, { cs("i1", running) }, { cs("c1", { waiting = { reason = "PodInitializing" } }) }))
    s.restartPolicy = "Never"
    assert.are.equal("Failed", status.phase(s, { cs("i1", term(1)) }, { cs("c1", { waiting = { reason = "PodInitializing" } }) }))
  end)

  it("writes conditions with the kubelet's reasons and messages", function()
    local s = { containers = { { name = "a" }, { name = "b" } }, initContainers = { { name = "i" } } }
    local conds = status.conditions(s, { cs("i", running) }, { cs("a", running), cs("b", waiting) }, "Pending", nil, 0)
    local by = {}
    for i, c in ipairs(conds) do by[c.type] = c; by[i] = c.type end
    assert.are.same({ "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled" },
      { by[1], by[2], by[3], by[4], by[5] })
    assert.are.equal("ContainersNotInitialized", by.Initialized.reason)
    assert.are.equal("containers with incomplete status: [i]", by.Initialized.message)
    assert.are.equal("containers with unready status: [b]", by.ContainersReady.message)
    assert.are.equal("ContainersNotReady", by.Ready.reason)
    assert.are.equal("1970-01-01T00:00:00Z", by.Ready.lastTransitionTime)
    local again = status.conditions(s, { cs("i", term(0)) }, { cs("a", running), cs("b", running) }, "Running", conds, 60)
    for _, c in ipairs(again) do
      assert.are.equal("True", c.status, c.type)
      local old
      for _, o in ipairs(conds) do if o.type == c.type then old = o end end
      -- transition time moves only when the status flips
      assert.are.equal(old.status == "True" and old.lastTransitionTime or "1970-01-01T00:01:00Z", c.lastTransitionTime)
    end
    local done = status.conditions({ containers = { { name = "a" } } }, {}, { cs("a", term(0)) }, "Succeeded", nil, 0)
    assert.are.equal("PodCompleted", done[4].reason)
    assert.are.equal("False", done[3].status)
  end)

  it("names exit reasons as container runtimes do", function()
    assert.are.equal("Completed", status.exit_reason({ exit_code = 0 }))
    assert.are.equal("Error", status.exit_reason({ exit_code = 137 }))
    assert.are.equal("OOMKilled", status.exit_reason({ exit_code = 137, oom_killed = true }))
  end)
end)

describe("kubelet restart policies", function()
  after_each(function() policies.reset() end)

  it("loads the three built-ins from plugins/policies/restart", function()
    assert.are.same({ "Always", "OnFailure", "Never" }, policies.names())
    local ok = { exit_code = 0 }
    local bad = { exit_code = 1 }
    local killed = { exit_code = 0, killed_by = "liveness" }
    assert.is_true(policies.decide("Always", {}, {}, ok).restart)
    assert.is_false(policies.decide("OnFailure", {}, {}, ok).restart)
    assert.is_true(policies.decide("OnFailure", {}, {}, bad).restart)
    assert.is_true(policies.decide("OnFailure", {}, {}, killed).restart)
    assert.is_false(policies.decide("Never", {}, {}, bad).restart)
  end)

  it("accepts loaded custom policies and contains their failures", function()
    policies.register({ name = "Twice", decide = function(_, _, exit) return { restart = exit.restart_count < 2, delay = 1 } end })
    policies.register({ name = "Broken", decide = function() error("boom") end })
    assert.are.same({ "Always", "OnFailure", "Never", "Broken", "Twice" }, policies.names())
    assert.are.same({ restart = true, delay = 1 }, policies.decide("Twice", {}, {}, { restart_count = 1 }))
    assert.are.same({ restart = false, delay = 1 }, policies.decide("Twice", {}, {}, { restart_count = 2 }))
    local d, err = policies.decide("Broken", {}, {}, {})
    assert.is_false(d.restart)
    assert.is_truthy(err:find("boom", 1, true))
    d, err = policies.decide("Nope", {}, {}, {})
    assert.is_false(d.restart)
    assert.are.equal('unknown restart policy "Nope"', err)
    assert.is_truthy(policies.check({ name = "x" }))
  end)
end)
