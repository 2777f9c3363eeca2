-- The pod worker against a fake agent: a process runtime whose exits the
-- spec triggers, a recording API, a clock and timers the spec advances.
-- Covers starts and events, restarts with crash-loop back-off, restart
-- policies, liveness kills, StartError, image pull back-off, init
-- containers, deletion with grace, activeDeadlineSeconds and adoption of an
-- earlier status after a server restart.
require("moonlet_core")
local worker = require("moonlet.kubelet.worker")
local backoff = require("moonlet.kubelet.backoff")
local ports = require("moonlet.kubelet.ports")
local json = require("moonlet.json")

local SRC = os.getenv("ML_SRC") or "."

local function fake_agent()
  local a = { node_name = "n1", host_ip = "127.0.0.1", now = 1000, spawned = {}, events = {},
    statuses = {}, deleted = {}, timers = {}, image_dirs = { SRC .. "/examples/images" },
    base_env = { { "PATH", "/usr/bin:/bin" } } }
  a.clock = function() return a.now end
  a.crash_backoff = backoff.new({ initial = 10, max = 300, clock = a.clock })
  a.image_backoff = backoff.new({ initial = 10, max = 300, clock = a.clock })
  local port = 41000
  a.ports = ports.new({ pick = function() port = port + 1; return port end })
  a.runtime = { spawn = function(o, on_exit)
    if o.command[1] == "/no/such/command" then
      return nil, "ENOENT: no such file or directory", "ENOENT"
    end
    local h = { opts = o, on_exit = on_exit, stops = {} }
    function h.stop(_, g) h.stops[#h.stops + 1] = g end
    function h.kill() end
    function h.exit(code) on_exit({ exit_code = code }) end
    a.spawned[#a.spawned + 1] = h
    return h
  end }
  a.api = {
    status = function(_, st) a.statuses[#a.statuses + 1] = st; a.last = json.decode(json.encode(st)); return true end,
    delete = function(pod) a.deleted[#a.deleted + 1] = pod.metadata.name end,
    event = function(_, fp, typ, reason, msg) a.events[#a.events + 1] = { typ, reason, msg, fp } end,
  }
  a.timer = function(ms, fn)
    local t = { at = a.now + ms / 1000, fn = fn }
    function t.stop() t.stopped = true end
    a.timers[#a.timers + 1] = t
    return t
  end
  local id = 0
  a.new_id = function() id = id + 1; return string.format("%064x", id) end
  a.log = function() end
  function a.pod_dir() return "/tmp" end
  function a.make_pod_dir() return false end
  function a.log_path(_, _, _, i) return "/dev/null/" .. tostring(i) end
  function a.prune_logs() end
  function a.forget() a.forgotten = true end
  function a.advance(sec)
    a.now = a.now + sec
    local due = {}
    for _, t in ipairs(a.timers) do
      if not t.stopped and not t.fired and t.at <= a.now then due[#due + 1] = t end
    end
    for _, t in ipairs(due) do t.fired = true; t.fn() end
  end
  function a.reasons()
    local out = {}
    for _, e in ipairs(a.events) do out[#out + 1] = e[2] end
    return out
  end
  function a.find_event(reason)
    for _, e in ipairs(a.events) do if e[2] == reason then return e end end
  end
  return a
end

local uid = 0
local function pod(spec)
  uid = uid + 1
  spec.restartPolicy = spec.restartPolicy or "Always"
  spec.terminationGracePeriodSeconds = spec.terminationGracePeriodSeconds or 30
  spec.nodeName = "n1"
  return { apiVersion = "v1", kind = "Pod", metadata = { name = "p", namespace = "default",
    uid = "uid-" .. uid }, spec = spec, status = { phase = "Pending" } }
end

local function cstatus(a, name)
  for _, s in ipairs(a.last.containerStatuses or {}) do if s.name == name then return s end end
  for _, s in ipairs(a.last.initContainerStatuses or {}) do if s.name == name then return s end end
end

local function cond(a, typ)
  for _, c in ipairs(a.last.conditions) do if c.type == typ then return c end end
end

describe("kubelet pod worker", function()
  it("starts a container with its env and reports it running", function()
    local a = fake_agent()
    local p = pod({ containers = { { name = "web", image = "idealism/kubia", ports = { { containerPort = 8080 } },
      env = { { name = "X", value = "$(HOSTNAME)-x" } } } } })
    worker.new(a, p):start()
    assert.are.equal(1, #a.spawned)
    local o = a.spawned[1].opts
    assert.is_truthy(o.command[1]:match("idealism/kubia/entrypoint$"))
    assert.are.same({ "PATH=/usr/bin:/bin", "HOSTNAME=p", "PORT=41001", "PORT_8080=41001", "X=p-x" }, o.env)
    assert.are.equal("Running", a.last.phase)
    local s = cstatus(a, "web")
    assert.is_truthy(s.state.running)
    assert.is_true(s.ready)
    assert.is_true(s.started)
    assert.are.equal(0, s.restartCount)
    assert.is_truthy(s.containerID:match("^moonlet://%x+$"))
    assert.are.equal("True", cond(a, "Ready").status)
    assert.are.same({ "Pulled", "Created", "Started" }, a.reasons())
    assert.are.equal('Container image "idealism/kubia" already present on machine', a.events[1][3])
    assert.are.equal("Created container: web", a.events[2][3])
    assert.are.equal("Started container web", a.events[3][3])
    assert.are.equal("spec.containers{web}", a.events[3][4])
    assert.are.equal("127.0.0.1", a.last.podIP)
  end)

  it("restarts at once, then backs off with CrashLoopBackOff", function()
    local a = fake_agent()
    local p = pod({ containers = { { name = "c", image = "x", command = { "false" } } } })
    worker.new(a, p):start()
    a.spawned[1].exit(1)
    assert.are.equal(2, #a.spawned) -- first restart: immediate
    local s = cstatus(a, "c")
    assert.are.equal(1, s.restartCount)
    assert.are.equal(1, s.lastState.terminated.exitCode)
    assert.are.equal("Error", s.lastState.terminated.reason)
    a.now = a.now + 1
    a.spawned[2].exit(2)
    assert.are.equal(2, #a.spawned)
    s = cstatus(a, "c")
    assert.are.equal("CrashLoopBackOff", s.state.waiting.reason)
    assert.are.equal(string.format("back-off 10s restarting failed container=c pod=p_default(%s)", p.metadata.uid),
      s.state.waiting.message)
    assert.are.equal(2, s.lastState.terminated.exitCode)
    assert.are.equal("Running", a.last.phase)
    local bo = a.find_event("BackOff")
    assert.are.equal(string.format("Back-off restarting failed container c in pod p_default(%s)", p.metadata.uid), bo[3])
    assert.are.equal("Warning", bo[1])
    a.advance(9)
    assert.are.equal(2, #a.spawned)
    a.advance(1)
    assert.are.equal(3, #a.spawned)
    assert.are.equal(2, cstatus(a, "c").restartCount)
    a.spawned[3].exit(1)
    a.advance(19)
    assert.are.equal(3, #a.spawned)
    a.advance(1)
    assert.are.equal(4, #a.spawned) -- 20 s the second time
  end)

  it("follows OnFailure and Never to Succeeded and Failed", function()
    local a = fake_agent()
    worker.new(a, pod({ restartPolicy = "OnFailure", containers = { { name = "c", image = "x", command = { "true" } } } })):start()
    a.spawned[1].exit(0)
    assert.are.equal(1, #a.spawned)
    assert.are.equal("Succeeded", a.last.phase)
    assert.are.equal("Completed", cstatus(a, "c").state.terminated.reason)
    assert.are.equal("PodCompleted", cond(a, "Ready").reason)

    local b = fake_agent()
    worker.new(b, pod({ restartPolicy = "Never", containers = { { name = "c", image = "x", command = { "false" } } } })):start()
    b.spawned[1].exit(3)
    assert.are.equal(1, #b.spawned)
    assert.are.equal("Failed", b.last.phase)
    assert.are.equal(3, cstatus(b, "c").state.terminated.exitCode)
  end)

  it("kills on liveness failure with the grace period and restarts", function()
    local a = fake_agent()
    local groups = {}
    a.probes = function(o)
      local g = { opts = o, stop = function(self) self.stopped = true end }
      groups[#groups + 1] = g
      return g
    end
    local p = pod({ containers = { { name = "kubia", image = "idealism/kubia-unhealthy",
      livenessProbe = { httpGet = { port = 8080, path = "/" } } } } })
    local w = worker.new(a, p):start()
    assert.are.equal(1, #groups)
    assert.is_true(cstatus(a, "kubia").ready)
    groups[1].opts.on_change("liveness", false)
    local k = a.find_event("Killing")
    assert.are.equal("Container kubia failed liveness probe, will be restarted", k[3])
    assert.are.equal("Normal", k[1])
    assert.are.same({ 30 }, a.spawned[1].stops)
    assert.is_true(groups[1].stopped)
    a.spawned[1].exit(137)
    assert.are.equal(2, #a.spawned)
    local s = cstatus(a, "kubia")
    assert.are.equal(1, s.restartCount)
    assert.are.equal(137, s.lastState.terminated.exitCode)
    assert.are.equal("Error", s.lastState.terminated.reason)
    assert.are.equal(2, #groups)
    -- a probe-level grace period wins for probe kills
    w.pod.spec.containers[1].livenessProbe.terminationGracePeriodSeconds = 5
    groups[2].opts.on_change("liveness", false)
    assert.are.same({ 5 }, a.spawned[2].stops)
  end)

  it("readiness drives ready and the Ready condition", function()
    local a = fake_agent()
    local g
    a.probes = function(o) g = { opts = o, stop = function() end }; return g end
    worker.new(a, pod({ containers = { { name = "c", image = "x", command = { "sleep", "9" },
      readinessProbe = { tcpSocket = { port = 1 } } } } })):start()
    assert.is_false(cstatus(a, "c").ready)
    assert.are.equal("False", cond(a, "ContainersReady").status)
    g.opts.on_change("readiness", true)
    assert.is_true(cstatus(a, "c").ready)
    assert.are.equal("True", cond(a, "Ready").status)
    g.opts.on_change("readiness", false)
    assert.are.equal("containers with unready status: [c]", cond(a, "Ready").message)
  end)

  it("reports a command that cannot run as StartError (exit 128)", function()
    local a = fake_agent()
    worker.new(a, pod({ restartPolicy = "Never", containers = { { name = "c", image = "x",
      command = { "/no/such/command" } } } })):start()
    local s = cstatus(a, "c")
    assert.are.equal("StartError", s.state.terminated.reason)
    assert.are.equal(128, s.state.terminated.exitCode)
    assert.are.equal("Failed", a.last.phase)
    local f = a.find_event("Failed")
    assert.are.equal("Warning", f[1])
    assert.is_truthy(f[3]:find('exec: "/no/such/command": no such file or directory', 1, true))
  end)

  it("waits with ErrImagePull then ImagePullBackOff for a missing image", function()
    local a = fake_agent()
    worker.new(a, pod({ containers = { { name = "c", image = "nosuch/image:1" } } })):start()
    assert.are.equal(0, #a.spawned)
    assert.are.equal("ErrImagePull", cstatus(a, "c").state.waiting.reason)
    assert.are.equal("Pending", a.last.phase)
    local msgs = {}
    for _, e in ipairs(a.events) do msgs[#msgs + 1] = e[3] end
    assert.is_truthy(msgs[2]:find('^Failed to pull image "nosuch/image:1": '))
    assert.are.equal("Error: ErrImagePull", msgs[3])
    a.advance(1)
    assert.are.equal("ImagePullBackOff", cstatus(a, "c").state.waiting.reason)
    assert.are.equal('Back-off pulling image "nosuch/image:1"', cstatus(a, "c").state.waiting.message)
    assert.is_truthy(a.find_event("BackOff"))
    a.advance(9)
    assert.are.equal("ErrImagePull", cstatus(a, "c").state.waiting.reason) -- tried again
  end)

  it("runs init containers in order before the app containers", function()
    local a = fake_agent()
    worker.new(a, pod({ initContainers = { { name = "i1", image = "x", command = { "true" } },
      { name = "i2", image = "x", command = { "true" } } },
      containers = { { name = "app", image = "x", command = { "sleep", "9" } } } })):start()
    assert.are.equal(1, #a.spawned)
    assert.are.equal("true", a.spawned[1].opts.command[1])
    assert.are.equal("PodInitializing", cstatus(a, "app").state.waiting.reason)
    assert.are.equal("Pending", a.last.phase)
    assert.are.equal("containers with incomplete status: [i1 i2]", cond(a, "Initialized").message)
    a.spawned[1].exit(0)
    assert.are.equal(2, #a.spawned)
    a.spawned[2].exit(0)
    assert.are.equal(3, #a.spawned)
    assert.are.equal("sleep", a.spawned[3].opts.command[1])
    assert.are.equal("Running", a.last.phase)
    assert.are.equal("True", cond(a, "Initialized").status)
  end)

  it("stops containers with the deletion grace period, then deletes the pod", function()
    local a = fake_agent()
    local p = pod({ containers = { { name = "c", image = "x", command = { "sleep", "9" } } } })
    local w = worker.new(a, p):start()
    local d = json.decode(json.encode(p))
    d.metadata.deletionTimestamp = "2026-01-01T00:00:30Z"
    d.metadata.deletionGracePeriodSeconds = 30
    w:update(d)
    assert.are.same({ 30 }, a.spawned[1].stops)
    assert.are.equal("Stopping container c", a.find_event("Killing")[3])
    assert.are.same({}, a.deleted)
    a.spawned[1].exit(143)
    assert.are.same({ "p" }, a.deleted)
    assert.are.equal("Failed", a.last.phase)
    assert.are.equal(143, cstatus(a, "c").state.terminated.exitCode)
    assert.are.equal(1, #a.spawned) -- never restarted while terminating
    w:remove()
    assert.is_true(a.forgotten)
  end)

  it("ends a pod past activeDeadlineSeconds as Failed/DeadlineExceeded", function()
    local a = fake_agent()
    worker.new(a, pod({ activeDeadlineSeconds = 5, containers = { { name = "c", image = "x", command = { "sleep", "9" } } } })):start()
    a.advance(5)
    assert.are.same({ 30 }, a.spawned[1].stops)
    assert.are.equal("Failed", a.last.phase)
    assert.are.equal("DeadlineExceeded", a.last.reason)
    assert.are.equal("Pod was active on the node longer than the specified deadline", a.last.message)
    a.spawned[1].exit(143)
    assert.are.equal(1, #a.spawned)
    assert.are.equal("Failed", a.last.phase)
  end)

  it("adopts an earlier status after a restart: counts kept, last state true", function()
    local a = fake_agent()
    local p = pod({ containers = { { name = "c", image = "x", command = { "sleep", "9" } } } })
    p.status = { phase = "Running", startTime = "2026-01-01T00:00:00Z", containerStatuses = { {
      name = "c", restartCount = 3, containerID = "moonlet://abc", ready = true,
      state = { running = { startedAt = "2026-01-01T00:00:10Z" } }, lastState = {} } } }
    worker.new(a, p):start()
    assert.are.equal(1, #a.spawned)
    local s = cstatus(a, "c")
    assert.are.equal(4, s.restartCount)
    assert.are.equal(137, s.lastState.terminated.exitCode)
    assert.are.equal("moonlet://abc", s.lastState.terminated.containerID)
    assert.are.equal("2026-01-01T00:00:10Z", s.lastState.terminated.startedAt)
    assert.is_truthy(s.state.running)
    assert.are.equal("2026-01-01T00:00:00Z", a.last.startTime)
  end)

  it("syncs again after waiting for the pod's dir, with the pod as it is then", function()
    local a = fake_agent()
    local p = pod({ containers = { { name = "c", image = "x", command = { "sleep", "9" } } } })
    local w = worker.new(a, p)
    local waits = 0
    -- The dir is made off the loop thread; the pod is deleted meanwhile.
    function a.make_pod_dir(_, _)
      if waits > 0 then return false end
      waits = waits + 1
      local d = json.decode(json.encode(p))
      d.metadata.deletionTimestamp = "2026-01-01T00:00:30Z"
      d.metadata.deletionGracePeriodSeconds = 30
      w:update(d)
      return true
    end
    w:start()
    assert.are.equal(1, waits)
    assert.are.equal(0, #a.spawned) -- nothing starts for a pod being deleted
    -- and a pod that stays gets its container once the dir is there
    local a2 = fake_agent()
    local made = 0
    function a2.make_pod_dir() made = made + 1; return made == 1 end
    worker.new(a2, pod({ containers = { { name = "c", image = "x", command = { "sleep", "9" } } } })):start()
    assert.are.equal(2, made)
    assert.are.equal(1, #a2.spawned)
  end)
end)
