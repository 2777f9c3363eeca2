-- The Deployment controller on the real API stack, in process, for the
-- deployment specs: with the ReplicaSet controller and the garbage
-- collector (as in the server) unless opts.deployment_only. No kubelet: the
-- spec plays it (ready_all marks pods Running and Ready). With
-- opts.record_writes, env.writes lists every ReplicaSet write with the
-- number of the Deployment sync that made it.
require("moonlet_core")
local loop = require("moonlet.loop")
local json = require("moonlet.json")
local manager = require("moonlet.controller.manager")
local util = require("moonlet.controller.util")
local du = require("moonlet.controller.deployment_util")
local api_stack = require("api_stack")
local fake = require("fake_client") -- for fake.run only

local M = {}
local D, RS, POD = "apps/v1/Deployment", "apps/v1/ReplicaSet", "v1/Pod"
M.D, M.RS, M.POD = D, RS, POD

--- A Deployment of `sleep` pods labelled app=name; `extra` is merged into
--- its spec.
function M.deploy_obj(name, replicas, extra)
  local obj = {
    apiVersion = "apps/v1", kind = "Deployment",
    metadata = { name = name, namespace = "default" },
    spec = {
      replicas = replicas,
      selector = { matchLabels = { app = name } },
      template = { metadata = { labels = { app = name } },
        spec = { containers = { { name = "main", image = "kubia", command = { "sleep", "3600" } } } } },
    },
  }
  for k, v in pairs(extra or {}) do obj.spec[k] = v end
  return obj
end

--- True when the Deployment's status shows the rollout of its current
--- generation done.
function M.complete(d)
  local st = d.status or {}
  return st.observedGeneration == d.metadata.generation and st.updatedReplicas == d.spec.replicas
    and st.replicas == d.spec.replicas and st.availableReplicas == d.spec.replicas
end

-- Wraps the client's ReplicaSet updates and the controller's reconcile to
-- record { sync, name, size } per write.
local function record_writes(c, ctl)
  local writes, sync_no = {}, 0
  local update = c.update
  c.update = function(self, kind, obj, ...)
    if kind == RS then
      writes[#writes + 1] = { sync = sync_no, name = obj.metadata.name, size = obj.spec.replicas }
    end
    return update(self, kind, obj, ...)
  end
  local reconcile = ctl.plugin.reconcile
  ctl.plugin = setmetatable({ reconcile = function(...)
    sync_no = sync_no + 1
    return reconcile(...)
  end }, { __index = ctl.plugin })
  return writes
end

--- Runs fn(env) with the controllers started; opts: deployment_only,
--- record_writes.
function M.with_api(fn, opts)
  opts = opts or {}
  fake.run(function()
    local stack = api_stack.new()
    local lines = {}
    local log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end
    local c = stack.client
    local m = manager.new({ client = c, log = log })
    local ctl = m:add(stack.loaded.controllers["deployment"].value)
    local writes = opts.record_writes and record_writes(c, ctl) or nil
    if not opts.deployment_only then
      m:add(stack.loaded.controllers["replicaset"].value)
      -- deletes propagate through the garbage collector, as in the server
      if stack.loaded.controllers["garbagecollector"] then
        m:add(stack.loaded.controllers["garbagecollector"].value)
      end
    end
    m:start()
    local env = { client = c, m = m, ctl = ctl, lines = lines, writes = writes }
    -- Quiet = nothing queued or in hand for 60 ms. Delayed keys do not
    -- count: a Deployment always has one (the progress-deadline check).
    local function quiet()
      for _, x in ipairs(m.controllers) do
        local s = x.queue:stats()
        if not x.workers_started or s.queued > 0 or s.processing > 0 then return false end
      end
      return true
    end
    function env.settle()
      for _ = 1, 2 do
        local since
        local went_quiet = util.wait_for(function()
          if not quiet() then
            since = nil
            return false
          end
          since = since or loop.now()
          return loop.now() - since >= 60
        end, 10, 2)
        if not went_quiet then error("controllers never went quiet") end
        loop.sleep(50)
      end
    end
    function env.pods(filter)
      local out = {}
      for _, p in ipairs(assert(c:list(POD, { namespace = "default" })).items) do
        if not p.metadata.deletionTimestamp and (not filter or filter(p)) then out[#out + 1] = p end
      end
      return out
    end
    function env.rss(name)
      local out = {}
      for _, rs in ipairs(assert(c:list(RS, { namespace = "default" })).items) do
        if not name or rs.metadata.name:find("^" .. name .. "%-") then out[#out + 1] = rs end
      end
      table.sort(out, function(a, b) return du.revision(a) < du.revision(b) end)
      return out
    end
    function env.rs(name) return assert(c:get(RS, "default", name)) end
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
    -- drive to a fixed point: ready pods, let controllers react, repeat
    function env.converge(name, check)
      for _ = 1, 60 do
        env.settle()
        local n = env.ready_all()
        env.settle()
        if n == 0 and (not check or check(env.get(name))) then return end
      end
      error("did not converge: " .. json.encode(env.get(name).status))
    end
    -- polls pred every 10 ms for up to 3 s
    function env.wait(pred, what)
      for _ = 1, 300 do
        if pred() then return end
        loop.sleep(10)
      end
      error("timed out waiting for " .. what)
    end
    function env.events(reason)
      local out = {}
      for _, e in ipairs(assert(c:list("v1/Event", { namespace = "default" })).items) do
        if e.involvedObject.kind == "Deployment" and (not reason or e.reason == reason) then
          out[#out + 1] = e.message
        end
      end
      return out
    end
    local ok, err = pcall(fn, env)
    m:stop()
    require("api_stack").close(stack, ok, err, lines)
  end)
end

return M
