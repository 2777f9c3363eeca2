-- The node agent readies a started container's replacement (the runtime's
-- armed restart and its spare log) later, once no container has started
-- for a moment, not on the start's path: right after a start the pod's
-- directory is empty (a log is made by its first line); then the spare
-- appears, the replacement is armed, and a kill -9 is followed by the
-- runtime's own restart. A container that ends before costs neither. Real processes on
-- the in-process API stack with the scheduler.
require("moonlet_core")
local loop = require("moonlet.loop")
local sys = require("moonlet.core.sys")
local proc = require("moonlet.proc")
local fake = require("fake_client") -- for fake.run only
local agent_mod = require("moonlet.kubelet.agent")

local function stack()
  local s = require("api_stack").new()
  return s, require("api_stack").with_scheduler(s)
end

local function pod(name, command, policy)
  return { apiVersion = "v1", kind = "Pod", metadata = { name = name, namespace = "default" },
    spec = { terminationGracePeriodSeconds = 1, restartPolicy = policy,
      containers = { { name = "main", image = "busybox", command = command } } } }
end

local function wait_until(fn, ms)
  return require("api_stack").wait_until(fn, ms or 5000)
end

local function entries(dir)
  local out = sys.listdir(dir) or {}
  table.sort(out)
  return out
end

local function worker_of(agent, name)
  for _, w in pairs(agent.workers) do
    if w.pod.metadata.name == name then return w end
  end
end

describe("kubelet: arming later", function()
  it("makes no spare on the start's path, arms once quiet, restarts through the runtime", function()
    fake.run(function()
      local s, m = stack()
      local dir = os.tmpname() .. ".d"
      local agent = agent_mod.new({ client = s.client, data_dir = dir, node_name = "node-a",
        log = function() end, pod_informer = m:informer("v1/Pod") })
      agent.probes = false
      local ok, err = pcall(function()
        assert(agent:start())
        assert(s.client:create("v1/Pod", pod("p1", { "sleep", "30" })))
        local w, rec
        assert.is_true(wait_until(function()
          w = worker_of(agent, "p1")
          rec = w and w.cs.main
          return rec ~= nil and rec.inst ~= nil and rec.inst.handle ~= nil
        end))
        -- Started: no file at all (the log is made by the first line; a
        -- sleep writes none), nothing armed.
        local pdir = agent:pod_dir(w.pod)
        local first = rec.inst
        assert.are.same({}, entries(pdir))
        assert.is_nil(first.next)
        -- Then, the node quiet: armed, and the runtime made the spare.
        assert.is_true(wait_until(function() return first.next ~= nil end, 3000))
        assert.is_true(rec.spare_ready)
        assert.are.same({ "main_spare.log" }, entries(pdir))
        -- A kill -9 from outside: the runtime starts the replacement itself
        -- on the spare.
        local nxt = first.next
        assert(proc.kill_pid(first.handle.pid, proc.signal("KILL")))
        assert.is_true(wait_until(function() return rec.inst == nxt end))
        assert.are.equal(1, rec.restart_count)
        assert.is_true(wait_until(function()
          local names = entries(pdir)
          return #names == 1 and names[1] == "main_" .. nxt.id .. ".log"
        end))

        -- A container that ends at once is never armed, and gets no spare.
        assert(s.client:create("v1/Pod", pod("p2", { "true" }, "OnFailure")))
        local w2
        assert.is_true(wait_until(function()
          w2 = worker_of(agent, "p2")
          local p = s.client:get("v1/Pod", "default", "p2")
          return w2 ~= nil and p and p.status and p.status.phase == "Succeeded"
        end))
        loop.sleep(300)
        assert.are.same({}, entries(agent:pod_dir(w2.pod)))
      end)
      agent:stop(2)
      m:stop()
      agent_mod.rm_rf(dir)
      assert(ok, err)
    end)
  end)
end)
