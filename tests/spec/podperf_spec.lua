-- Pod start/memory work: the node agent reading the controller manager's
-- shared pod informer (one cache of pods instead of two), and the
-- scheduler's per-pod host port memo staying right across pod updates.
require("moonlet_core")
local loop = require("moonlet.loop")
local fake = require("fake_client") -- for fake.run only

local function stack()
  local s = require("api_stack").new()
  return { client = s.client, m = require("api_stack").with_scheduler(s) }
end

local function pod(name, ports)
  return { apiVersion = "v1", kind = "Pod", metadata = { name = name, namespace = "default" },
    spec = { terminationGracePeriodSeconds = 1, containers = { { name = "main", image = "busybox",
      command = { "sleep", "9" }, ports = ports } } } }
end

local wait_until = require("api_stack").wait_until

-- A process runtime that records spawns and never exits on its own.
local function recording_runtime()
  local rt = { spawned = {} }
  function rt.spawn(opts)
    local name
    for _, kv in ipairs(opts.env) do name = name or kv:match("^HOSTNAME=(.*)$") end
    rt.spawned[#rt.spawned + 1] = name
    return { pid = 4242, stop = function() end, kill = function() end }
  end
  return rt
end

describe("podperf", function()
  it("the agent runs pods from the manager's shared pod informer", function()
    fake.run(function()
      local s = stack()
      local shared = s.m:informer("v1/Pod")
      local handlers_before = #shared.handlers
      local rt = recording_runtime()
      local agent = require("moonlet.kubelet.agent").new({ client = s.client, data_dir = os.tmpname() .. ".d",
        node_name = "node-a", runtime = rt, log = function() end, pod_informer = shared })
      agent.probes = false
      assert(agent:start())
      -- no second cache: the agent keeps no informer of its own
      assert.is_nil(agent.informer)
      assert.are.equal(handlers_before + 1, #shared.handlers)
      assert(s.client:create("v1/Pod", pod("p1")))
      assert.is_true(wait_until(function() return rt.spawned[1] == "p1" end))
      -- the worker holds the shared cache's object, not a copy of its own
      local _, w = next(agent.workers)
      assert.are.equal(shared:peek("default/p1"), w.pod)
      agent.keep_pods = true
      agent:stop()
      -- a stopped agent ignores the informer it does not own (still running)
      assert(s.client:create("v1/Pod", pod("p2")))
      assert.is_true(s.m:wait_idle(5))
      loop.sleep(50)
      assert.are.same({ "p1" }, rt.spawned)
      assert.is_false(shared.stopped)
      s.m:stop()
    end)
  end)

  it("the scheduler sees host ports of updated pods, not a stale memo", function()
    fake.run(function()
      local s = stack()
      local n = assert(s.client:create("v1/Node", { apiVersion = "v1", kind = "Node",
        metadata = { name = "a" } }))
      n.status = { conditions = { { type = "Ready", status = "True" } } }
      assert(s.client:update_status("v1/Node", n))
      local hp = { { containerPort = 80, hostPort = 8080 } }
      assert(s.client:create("v1/Pod", pod("first", hp)))
      assert.is_true(s.m:wait_idle(5))
      assert.are.equal("a", s.client:get("v1/Pod", "default", "first").spec.nodeName)
      -- the port is taken: a second pod asking for it waits
      assert(s.client:create("v1/Pod", pod("second", hp)))
      assert.is_true(s.m:wait_idle(5))
      assert.is_nil(s.client:get("v1/Pod", "default", "second").spec.nodeName)
      -- the first pod ends: its port is free and the waiting pod binds
      local first = s.client:get("v1/Pod", "default", "first")
      first.status.phase = "Succeeded"
      assert(s.client:update_status("v1/Pod", first))
      assert.is_true(wait_until(function()
        return s.client:get("v1/Pod", "default", "second").spec.nodeName == "a"
      end))
      s.m:stop()
    end)
  end)
end)
