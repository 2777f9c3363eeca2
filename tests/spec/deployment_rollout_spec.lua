-- Rolling updates step by step (plugins/controllers/deployment.lua): the
-- other direction runs in the same sync as a scale up or down, and an old
-- ReplicaSet whose status is behind its just lowered size is never scaled
-- back up. The real API stack in process, the spec playing the kubelet.
require("moonlet_core")
local loop = require("moonlet.loop")
local json = require("moonlet.json")
local denv = require("deployment_env")

local D, RS = denv.D, denv.RS
local complete = denv.complete

local function deploy_obj(name, replicas)
  return denv.deploy_obj(name, replicas, {
    strategy = { type = "RollingUpdate", rollingUpdate = { maxSurge = "25%", maxUnavailable = "25%" } } })
end

-- The controllers on the API stack; every ReplicaSet write is recorded with
-- the number of the Deployment sync that made it.
local function with_api(fn, deployment_only)
  denv.with_api(fn, { deployment_only = deployment_only, record_writes = true })
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

-- Every write of the old ReplicaSet `first` after write number `before`
-- sizes it no larger than the one before (it starts at 8). @return the
-- last size written
local function old_set_shrinks(env, first, before)
  local last = 8
  for i = before + 1, #env.writes do
    local w = env.writes[i]
    if w.name == first then
      assert.is_true(w.size <= last, string.format("old set written %d after %d", w.size, last))
      last = w.size
    end
  end
  return last
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
      -- the events of the first rollout are in the sink until it writes them
      require("moonlet.controller.events").flush()
      for _, msg in ipairs(env.events("ScalingReplicaSet")) do events_before[msg] = true end
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
      local last = old_set_shrinks(env, first, before)
      local both = false
      local by_sync = {}
      for i = before + 1, #env.writes do
        local w = env.writes[i]
        by_sync[w.sync] = by_sync[w.sync] or {}
        by_sync[w.sync][w.name == first and "old" or "new"] = true
      end
      for _, s in pairs(by_sync) do if s.old and s.new then both = true end end
      assert.are.equal(0, last)
      assert.is_true(both, "no sync scaled both sets")
      for _, msg in ipairs(env.events("ScalingReplicaSet")) do
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
      old_set_shrinks(env, first, before)
      assert.are.equal(0, env.ctl.stats.errors)
    end, true)
  end)
end)
