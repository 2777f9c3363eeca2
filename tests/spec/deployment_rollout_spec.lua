-- Rolling updates step by step (plugins/controllers/deployment.lua): the
-- other direction runs in the same sync as a scale up or down, and an old
-- ReplicaSet whose status is behind its just lowered size is never scaled
-- back up. The real API stack in process, the spec playing the kubelet.
require("moonlet_core")
local loop = require("moonlet.loop")
local json = require("moonlet.json")
local manager = require("moonlet.controller.manager")
local util = require("moonlet.controller.util")
local du = require("moonlet.controller.deployment_util")
local api_stack = require("api_stack")
local fake = require("fake_client") -- for fake.run only

local D, RS, POD = "apps/v1/Deployment", "apps/v1/ReplicaSet", "v1/Pod"

local function deploy_obj(name, replicas)
  return {
    apiVersion = "apps/v1", kind = "Deployment",
    metadata = { name = name, namespace = "default" },
    spec = {
      replicas = replicas,
      selector = { matchLabels = { app = name } },
      strategy = { type = "RollingUpdate", rollingUpdate = { maxSurge = "25%", maxUnavailable = "25%" } },
      template = { metadata = { labels = { app = name } },
        spec = { containers = { { name = "main", image = "kubia", command = { "sleep", "3600" } } } } },
    },
  }
end

-- The controllers on the API stack; every ReplicaSet write is recorded with
-- the number of the Deployment sync that made it.
local function with_api(fn, deployment_only)
  fake.run(function()
    local stack = api_stack.new()
    local lines = {}
    local c = stack.client
    local writes, sync_no = {}, 0
    local update = c.update
    c.update = function(self, kind, obj, ...)
      if kind == RS then
        writes[#writes + 1] = { sync = sync_no, name = obj.metadata.name, size = obj.spec.replicas }
      end
      return update(self, kind, obj, ...)
    end
    local m = manager.new({ client = c, log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end })
    local ctl = m:add(stack.loaded.controllers["deployment"].value)
    local reconcile = ctl.plugin.reconcile
    ctl.plugin = setmetatable({ reconcile = function(...)
      sync_no = sync_no + 1
      return reconcile(...)
    end }, { __index = ctl.plugin })
    if not deployment_only then m:add(stack.loaded.controllers["replicaset"].value) end
    if not deployment_only and stack.loaded.controllers["garbagecollector"] then
      m:add(stack.loaded.controllers["garbagecollector"].value)
    end
    m:start()
    local env = { client = c, m = m, ctl = ctl, writes = writes }
    function env.pods()
      local out = {}
      for _, p in ipairs(assert(c:list(POD, { namespace = "default" })).items) do
        if not p.metadata.deletionTimestamp then out[#out + 1] = p end
      end
      return out
    end
    -- plays the kubelet: every pod Running and Ready (long ago: available)
    function env.ready_all()
      local n = 0
      for _, p in ipairs(env.pods()) do
        if (p.status or {}).phase ~= "Running" then
          p.status = p.status or {}
          p.status.phase = "Running"
          p.status.conditions = { { type = "Ready", status = "True", lastTransitionTime = "2020-01-01T00:00:00Z" } }
          if c:update_status(POD, p) then n = n + 1 end
        end
      end
      return n
    end
    function env.get(name) return assert(c:get(D, "default", name)) end
    function env.rs(name) return assert(c:get(RS, "default", name)) end
    function env.wait(pred, what)
      for _ = 1, 300 do
        if pred() then return end
        loop.sleep(10)
      end
      error("timed out waiting for " .. what)
    end
    function env.events()
      local out = {}
      for _, e in ipairs(assert(c:list("v1/Event", { namespace = "default" })).items) do
        if e.reason == "ScalingReplicaSet" then out[#out + 1] = e.message end
      end
      return out
    end
    local ok, err = pcall(fn, env)
    m:stop()
    require("moonlet.api.handlers").stop_watches()
    loop.sleep(5)
    stack.store:close()
    if not ok then error(tostring(err) .. "\n" .. table.concat(lines, "\n"), 0) end
  end)
end

local function complete(d)
  local st = d.status or {}
  return st.observedGeneration == d.metadata.generation and st.updatedReplicas == d.spec.replicas
    and st.replicas == d.spec.replicas and st.availableReplicas == d.spec.replicas
end

-- Readies pods as they come (a few ms apart, like a kubelet) until done.
local function drive(env, name, done)
  for _ = 1, 400 do
    env.ready_all()
    if done(env.get(name)) then return end
    loop.sleep(10)
  end
  error("did not converge: " .. json.encode(env.get(name).status))
end

describe("rolling update steps", function()
  it("scales the other way in the same sync, never an old set back up, floor kept", function()
    with_api(function(env)
      local c = env.client
      assert(c:create(D, deploy_obj("roll", 8)))
      drive(env, "roll", complete)
      local first = assert(c:list(RS, { namespace = "default" })).items[1].metadata.name
      local cur = env.get("roll")
      cur.spec.template.spec.containers[1].env = { { name = "V", value = "2" } }
      local before, events_before = #env.writes, {}
      for _, msg in ipairs(env.events()) do events_before[msg] = true end
      assert(c:update(D, cur))
      local min_ready, max_pods = math.huge, 0
      drive(env, "roll", function(d)
        local ready, all = 0, env.pods()
        for _, p in ipairs(all) do if (p.status or {}).phase == "Running" then ready = ready + 1 end end
        min_ready = math.min(min_ready, ready)
        max_pods = math.max(max_pods, #all)
        return complete(d) and d.status.updatedReplicas == 8 and #env.pods() == 8
      end)
      -- each old-set size written is below the one before it
      local last, both = 8, false
      local by_sync = {}
      for i = before + 1, #env.writes do
        local w = env.writes[i]
        if w.name == first then
          assert.is_true(w.size <= last, string.format("old set written %d after %d", w.size, last))
          last = w.size
        end
        by_sync[w.sync] = by_sync[w.sync] or {}
        by_sync[w.sync][w.name == first and "old" or "new"] = true
      end
      for _, s in pairs(by_sync) do if s.old and s.new then both = true end end
      assert.are.equal(0, last)
      assert.is_true(both, "no sync scaled both sets")
      for _, msg in ipairs(env.events()) do
        if not events_before[msg] then
          assert.is_nil(msg:find("Scaled up replica set " .. first, 1, true), msg)
        end
      end
      assert.is_true(min_ready >= 6, "ready fell to " .. min_ready) -- 8 - maxUnavailable (2)
      assert.is_true(max_pods <= 10, "pods rose to " .. max_pods)   -- 8 + maxSurge (2)
      assert.are.equal(0, env.ctl.stats.errors)
    end)
  end)

  it("waits while an old set's status is behind its lowered size (never scales it back up)", function()
    with_api(function(env)
      local c = env.client
      -- the ReplicaSet controller's part is played here: statuses by hand
      local function set_status(name, n)
        local rs = env.rs(name)
        rs.status = { replicas = n, fullyLabeledReplicas = n, readyReplicas = n, availableReplicas = n,
          observedGeneration = rs.metadata.generation }
        assert(c:update_status(RS, rs))
      end
      assert(c:create(D, deploy_obj("lag", 8)))
      env.wait(function() return #assert(c:list(RS, { namespace = "default" })).items == 1 end, "the set")
      local first = assert(c:list(RS, { namespace = "default" })).items[1].metadata.name
      set_status(first, 8)
      env.wait(function() return complete(env.get("lag")) end, "the first rollout")
      local cur = env.get("lag")
      cur.spec.template.spec.containers[1].env = { { name = "V", value = "2" } }
      local before = #env.writes
      assert(c:update(D, cur))
      local new
      env.wait(function()
        for _, rs in ipairs(assert(c:list(RS, { namespace = "default" })).items) do
          if rs.metadata.name ~= first then new = rs.metadata.name end
        end
        return new and env.rs(first).spec.replicas == 6 and env.rs(new).spec.replicas == 4
      end, "old 6 / new 4")
      -- the new pods are available; the old set's status still says 8
      set_status(new, 4)
      loop.sleep(300)
      assert.are.equal(6, env.rs(first).spec.replicas)
      -- its status catches up: the rollout goes on (available 10, floor 6)
      set_status(first, 6)
      env.wait(function() return env.rs(first).spec.replicas == 2 and env.rs(new).spec.replicas == 8 end,
        "old 2 / new 8")
      local last = 8
      for i = before + 1, #env.writes do
        local w = env.writes[i]
        if w.name == first then
          assert.is_true(w.size <= last, string.format("old set written %d after %d", w.size, last))
          last = w.size
        end
      end
      assert.are.equal(0, env.ctl.stats.errors)
    end, true)
  end)
end)
