-- Batching and pacing of controller work, on the real loop with the fake
-- API client: the work queue's add_batched window, the manager's
-- batch_period (owned changes and status-only updates of the primary
-- wake it once per window; a spec change at once), util.pacer giving the
-- loop a turn, and the kubelet agent leaving a worker asleep on a
-- status-only pod update.
require("moonlet_core")
local loop = require("moonlet.loop")
local workqueue = require("moonlet.controller.workqueue")
local manager = require("moonlet.controller.manager")
local util = require("moonlet.controller.util")
local agent_mod = require("moonlet.kubelet.agent")
local fake = require("fake_client")

local run = fake.run

local function drain(q)
  local out = {}
  while q:len() > 0 do
    local k = q:get()
    out[#out + 1] = k
    q:done(k)
  end
  return out
end

describe("workqueue add_batched", function()
  it("adds every key of a window once, in arrival order, when the window ends", function()
    run(function()
      local q = workqueue.new()
      q:add_batched("a", 0.05)
      q:add_batched("b", 0.05)
      q:add_batched("a", 0.05)
      assert.are.equal(0, q:len())
      assert.is_false(q:idle())
      loop.sleep(20)
      q:add_batched("c", 0.05) -- joins the open window
      assert.are.equal(0, q:len())
      loop.sleep(60)
      assert.are.same({ "a", "b", "c" }, drain(q))
      assert.is_true(q:idle())
    end)
  end)

  it("does not batch a key that is queued already, and shutdown drops the window", function()
    run(function()
      local q = workqueue.new()
      q:add("a")
      q:add_batched("a", 0.03)
      assert.is_true(#q.batch == 0)
      assert.are.same({ "a" }, drain(q))
      q:add_batched("b", 0.03)
      q:shutdown()
      loop.sleep(50)
      assert.are.equal(0, q:len())
      assert.is_true(q:idle())
    end)
  end)
end)

local function rs(name)
  return { apiVersion = "apps/v1", kind = "ReplicaSet", metadata = { namespace = "ns", name = name },
           spec = { replicas = 1, selector = { matchLabels = { app = name } } } }
end

local function pod(name, owner)
  return { apiVersion = "v1", kind = "Pod", spec = {}, metadata = { namespace = "ns", name = name,
    labels = { app = owner.metadata.name },
    ownerReferences = { { apiVersion = owner.apiVersion, kind = owner.kind, name = owner.metadata.name,
      uid = owner.metadata.uid, controller = true } } } }
end

describe("manager batch_period", function()
  local function setup(c, period)
    local keys = {}
    local m = manager.new({ client = c, log = function() end })
    m:add({ name = "b", kind = "apps/v1/ReplicaSet", owns = { "v1/Pod" }, batch_period = period,
            reconcile = function(_, key) keys[#keys + 1] = key end })
    m:start()
    assert.is_true(m:wait_idle(3))
    for i = #keys, 1, -1 do keys[i] = nil end
    return m, keys
  end

  -- Four changes of an owned pod 10 ms apart: one sync with a 100 ms
  -- window, one per change without.
  local function spaced_pod_changes(c, owner)
    local p = c:create("v1/Pod", pod("p", owner))
    for i = 1, 3 do
      loop.sleep(10)
      p.status = { phase = "Running", n = i }
      p = c:update_status("v1/Pod", p)
    end
  end

  it("gathers owned changes into one sync per window", function()
    run(function()
      local c = fake.new()
      local owner = c:create("apps/v1/ReplicaSet", rs("web"))
      local m, keys = setup(c, 0.1)
      spaced_pod_changes(c, owner)
      assert.is_true(m:wait_idle(3))
      assert.are.same({ "ns/web" }, keys)
      m:stop()
    end)
  end)

  it("syncs once per change without a window", function()
    run(function()
      local c = fake.new()
      local owner = c:create("apps/v1/ReplicaSet", rs("web"))
      local m, keys = setup(c, nil)
      spaced_pod_changes(c, owner)
      assert.is_true(m:wait_idle(3))
      assert.is_true(#keys >= 3, "syncs: " .. #keys)
      m:stop()
    end)
  end)

  it("batches status-only updates of the primary, not spec changes", function()
    run(function()
      local c = fake.new()
      local owner = c:create("apps/v1/ReplicaSet", rs("web"))
      local m, keys = setup(c, 0.2)
      owner.status = { replicas = 1 }
      owner = c:update_status("apps/v1/ReplicaSet", owner)
      loop.sleep(50)
      assert.are.same({}, keys) -- still in the window
      assert.is_true(m:wait_idle(3))
      assert.are.same({ "ns/web" }, keys)
      owner.spec.replicas = 3
      c:update("apps/v1/ReplicaSet", owner)
      loop.sleep(50)
      assert.are.same({ "ns/web", "ns/web" }, keys) -- at once
      m:stop()
    end)
  end)
end)

describe("util.pacer", function()
  it("yields one loop turn once its budget is used, not before", function()
    run(function()
      local p = util.pacer(5)
      local ran = false
      loop.timer(0, function() ran = true end)
      assert.is_false(p:tick())
      local t0 = loop.hrtime()
      while loop.hrtime() - t0 < 6e6 do end
      assert.is_false(ran)
      assert.is_true(p:tick())
      assert.is_true(ran)
      assert.is_false(p:tick())
    end)
  end)
end)

describe("kubelet agent pod updates", function()
  local function bound(extra)
    local p = { apiVersion = "v1", kind = "Pod",
      metadata = { namespace = "ns", name = "p", uid = "u1", generation = 1, resourceVersion = "5",
        labels = { app = "a" } },
      spec = { nodeName = "n1", containers = { { name = "c", image = "i" } } },
      status = { phase = "Running" } }
    for k, v in pairs(extra or {}) do p[k] = v end
    return p
  end

  local function agent_with_worker(pod)
    local a = agent_mod.new({ client = {}, data_dir = "/nonexistent", node_name = "n1" })
    local w = { pod = pod, updates = 0 }
    function w:update(p) self.pod = p; self.updates = self.updates + 1 end
    a.workers["u1"] = w
    return a, w
  end

  it("hands a status-only change to the worker without waking it", function()
    local a, w = agent_with_worker(bound())
    local echo = bound()
    echo.metadata.resourceVersion = "6"
    echo.status = { phase = "Succeeded" }
    a:ensure_worker(echo)
    assert.are.equal(0, w.updates)
    assert.are.equal(echo, w.pod)
  end)

  it("wakes the worker on spec, deletion, label changes and for readiness gates", function()
    local cases = {
      function(p) p.metadata.generation = 2 end,
      function(p) p.metadata.deletionTimestamp = "2024-01-01T00:00:00Z" end,
      function(p) p.metadata.labels = { app = "b" } end,
      function(p) p.metadata.annotations = { x = "y" } end,
    }
    for i, change in ipairs(cases) do
      local a, w = agent_with_worker(bound())
      local p = bound()
      change(p)
      a:ensure_worker(p)
      assert.are.equal(1, w.updates, "case " .. i)
    end
    local gated = bound()
    gated.spec.readinessGates = { { conditionType = "x" } }
    local a, w = agent_with_worker(gated)
    local p = bound()
    p.spec.readinessGates = gated.spec.readinessGates
    p.status = { phase = "Running", conditions = { { type = "x", status = "True" } } }
    a:ensure_worker(p)
    assert.are.equal(1, w.updates)
  end)
end)
