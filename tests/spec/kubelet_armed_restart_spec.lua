-- Restarts the process runtime does by itself (Proc:arm_restart, through
-- the runtime handle's arm): the worker arms the next instance only when
-- its answer at the exit cannot differ (an app container, a policy that
-- declares `restarts`, no crash-loop back-off pending, an environment that
-- cannot change, a pod that is not going away), a stop or a pod change
-- disarms it, and the bookkeeping after such a restart (restartCount,
-- lastState, containerID, events, back-off, the next arming) is what the
-- ordinary restart path gives. The runtimes here are fakes that act as the
-- real one does at an exit.
require("moonlet_core")
local worker = require("moonlet.kubelet.worker")
local backoff = require("moonlet.kubelet.backoff")
local ports = require("moonlet.kubelet.ports")
local policies = require("moonlet.kubelet.policies")
local json = require("moonlet.json")

-- A fake agent; with `armable` its runtime's handles take arm/disarm and,
-- at an exit, start the armed replacement as the process runtime does.
local function fake_agent(armable)
  local a = { node_name = "n1", host_ip = "127.0.0.1", now = 1000, trail = {}, spawned = {},
    statuses = {}, events = {}, image_dirs = {}, base_env = { { "PATH", "/usr/bin:/bin" } } }
  local function note(what) a.trail[#a.trail + 1] = what end
  a.clock = function() return a.now end
  a.crash_backoff = backoff.new({ initial = 10, max = 300, clock = a.clock })
  a.image_backoff = backoff.new({ initial = 10, max = 300, clock = a.clock })
  a.ports = ports.new({ pick = function() return 42000 end })
  local function handle(o, on_exit, how)
    local h = { opts = o }
    a.spawned[#a.spawned + 1] = h
    note(how)
    function h.stop()
      h.armed = nil
      note("stop")
    end
    function h.kill() h.armed = nil end
    if armable then
      function h.arm(_, opts, when, cb, not_before)
        h.armed = { opts = opts, when = when, cb = cb, not_before = not_before or 0,
          at = a.now + (not_before or 0) }
        return true
      end
      function h.disarm() h.armed = nil end
    end
    function h.exit(code)
      local res = { exit_code = code, signal = code > 128 and code - 128 or nil }
      local armed = h.armed
      h.armed = nil
      if armed and (armed.when == "any" or code ~= 0) and a.now >= armed.at then
        res.next_handle = handle(armed.opts, armed.cb, "runtime spawn")
      end
      on_exit(res)
    end
    return h
  end
  a.runtime = { spawn = function(o, on_exit) return handle(o, on_exit, "spawn") end }
  a.api = {
    status = function(_, st)
      a.statuses[#a.statuses + 1] = json.decode(json.encode(st))
      return true
    end,
    delete = function() end,
    event = function(_, _, typ, reason, message)
      a.events[#a.events + 1] = typ .. " " .. reason .. ": " .. message
    end,
  }
  a.timer = function() return { stop = function() end } end
  local id = 0
  a.new_id = function() id = id + 1; return string.format("%064x", id) end
  a.log = function() end
  function a.pod_dir() return "/tmp" end
  function a.make_pod_dir() return false end
  function a.log_path(_, _, _, i) return "/dev/null/" .. tostring(i) end
  function a.prune_logs(_, _, _, keep) a.kept = keep end
  function a.forget() end
  return a
end

local function pod(policy, container)
  return { apiVersion = "v1", kind = "Pod",
    metadata = { name = "p", namespace = "default", uid = "uid-a" },
    spec = { restartPolicy = policy or "Always", terminationGracePeriodSeconds = 30, nodeName = "n1",
      containers = { container or { name = "c", image = "x", command = { "sleep", "1000" } } } },
    status = { phase = "Pending" } }
end

local function last_status(a) return a.statuses[#a.statuses].containerStatuses[1] end

describe("restarts the process runtime does by itself", function()
  before_each(function() policies.reset() end)

  it("gives what the ordinary path gives: counts, last state, ids, events, back-off", function()
    local runs = {}
    for _, armable in ipairs({ false, true }) do
      local a = fake_agent(armable)
      local w = worker.new(a, pod())
      w:start()
      a.now = a.now + 5
      a.spawned[1].exit(137)
      a.now = a.now + 1
      w:wake()
      runs[#runs + 1] = { a = a, w = w, status = last_status(a) }
    end
    local plain, armed = runs[1], runs[2]
    assert.are.same({ "spawn", "spawn" }, plain.a.trail)
    assert.are.same({ "spawn", "runtime spawn" }, armed.a.trail)
    -- The replacement was made from the first instance's options, with the
    -- next instance's id and log.
    local o1, o2 = armed.a.spawned[1].opts, armed.a.spawned[2].opts
    assert.are.same(o1.command, o2.command)
    assert.are.same(o1.env, o2.env)
    assert.are.equal(string.format("%064x", 2), o2.keep_id)
    assert.are.equal("/dev/null/" .. string.format("%064x", 2), o2.stdout_log)
    assert.are.same(plain.status, armed.status)
    assert.are.equal(1, armed.status.restartCount)
    assert.are.equal(137, armed.status.lastState.terminated.exitCode)
    assert.is_truthy(armed.status.state.running)
    assert.are.equal("moonlet://" .. string.format("%064x", 2), armed.status.containerID)
    assert.are.same(plain.a.events, armed.a.events)
    assert.are.same(plain.a.kept, armed.a.kept)
    assert.are.same(plain.a.crash_backoff.entries, armed.a.crash_backoff.entries)
    -- A back-off is pending now: the replacement is armed only for exits
    -- after it has expired (twice the maximum, and a second), so the next
    -- exit waits for it the ordinary way.
    assert.are.equal(601, armed.a.spawned[2].armed.not_before)
    armed.a.spawned[2].exit(1)
    assert.are.equal(2, #armed.a.spawned)
    assert.are.equal("CrashLoopBackOff", last_status(armed.a).state.waiting.reason)
  end)

  it("restarts at once again after a container ran past its back-off", function()
    local a = fake_agent(true)
    worker.new(a, pod()):start()
    a.spawned[1].exit(137)
    assert.are.equal(2, #a.spawned)
    a.now = a.now + 700 -- past 2 x the maximum back-off: the entry expired
    a.spawned[2].exit(2)
    assert.are.same({ "spawn", "runtime spawn", "runtime spawn" }, a.trail)
    local s = last_status(a)
    assert.are.equal(2, s.restartCount)
    assert.are.equal(2, s.lastState.terminated.exitCode)
    assert.are.equal(10, a.crash_backoff:get("uid-a/c")) -- armed anew, as the kubelet does
  end)

  it("follows the policy's declaration: OnFailure only on failures, Never and undeclared policies never", function()
    local a = fake_agent(true)
    worker.new(a, pod("OnFailure")):start()
    assert.are.equal("failure", a.spawned[1].armed.when)
    a.spawned[1].exit(0)
    assert.are.same({ "spawn" }, a.trail)
    assert.are.equal("Completed", last_status(a).state.terminated.reason)

    a = fake_agent(true)
    worker.new(a, pod("Never")):start()
    assert.is_nil(a.spawned[1].armed)

    policies.register({ name = "Custom", decide = function() return { restart = true } end })
    a = fake_agent(true)
    worker.new(a, pod("Custom")):start()
    assert.is_nil(a.spawned[1].armed)
  end)

  it("does not arm where the next instance could differ", function()
    -- ConfigMap values and labels are read again at each start.
    local a = fake_agent(true)
    worker.new(a, pod("Always", { name = "c", image = "x", command = { "sleep", "1" },
      env = { { name = "L", valueFrom = { fieldRef = { fieldPath = "metadata.labels['a']" } } } } })):start()
    assert.is_nil(a.spawned[1].armed)
    a = fake_agent(true)
    a.get_configmap = function() return { data = { k = "v" } } end
    worker.new(a, pod("Always", { name = "c", image = "x", command = { "sleep", "1" },
      env = { { name = "K", valueFrom = { configMapKeyRef = { name = "cm", key = "k" } } } } })):start()
    assert.is_nil(a.spawned[1].armed)
    -- Stable downward-API fields are fine.
    a = fake_agent(true)
    worker.new(a, pod("Always", { name = "c", image = "x", command = { "sleep", "1" },
      env = { { name = "N", valueFrom = { fieldRef = { fieldPath = "metadata.name" } } } } })):start()
    assert.is_truthy(a.spawned[1].armed)
    -- Init containers run to completion: never armed.
    a = fake_agent(true)
    local p = pod()
    p.spec.initContainers = { { name = "i", image = "x", command = { "true" } } }
    worker.new(a, p):start()
    assert.is_nil(a.spawned[1].armed)
  end)

  it("disarms on a stop, a deletion and an image change", function()
    local a = fake_agent(true)
    local w = worker.new(a, pod())
    w:start()
    local rec = w.cs.c
    w:kill(rec, "liveness")
    assert.is_nil(a.spawned[1].armed)
    a.spawned[1].exit(137) -- the ordinary path restarts it
    assert.are.same({ "spawn", "stop", "spawn" }, a.trail)

    a = fake_agent(true)
    w = worker.new(a, pod())
    w:start()
    local p2 = pod()
    p2.spec.containers[1].image = "y"
    w:update(p2)
    assert.is_nil(a.spawned[1].armed)

    a = fake_agent(true)
    w = worker.new(a, pod())
    w:start()
    p2 = pod()
    p2.metadata.deletionTimestamp = "2026-01-01T00:00:00Z"
    w:update(p2)
    assert.is_nil(a.spawned[1].armed)
  end)

  it("stops a replacement no record tracks", function()
    local a = fake_agent(true)
    local w = worker.new(a, pod())
    w:start()
    local h = a.spawned[1]
    w.cs.c.inst = { id = "other" } -- the record moved on (as after an adoption)
    h.exit(137)
    assert.are.equal(2, #a.spawned)
    assert.are.equal("stop", a.trail[#a.trail])
  end)
end)
