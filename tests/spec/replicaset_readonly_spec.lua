-- The ReplicaSet controller reads the informer's own objects: a sync lists
-- every pod of the namespace, and copying each one on every sync made a
-- 1,000-pod scale-up quadratic. Its status write goes on a copy (the
-- cached ReplicaSet keeps what the API last said), and scale-down policies
-- still get copies. On the in-process API (memory store, router, built-in
-- kinds; no scheduler or kubelet: pods stay Pending).
require("moonlet_core")
local loop = require("moonlet.loop")
local manager = require("moonlet.controller.manager")
local util = require("moonlet.controller.util")
local fake = require("fake_client") -- for fake.run only

local RS = "apps/v1/ReplicaSet"

local function rs_obj(name, replicas)
  return { apiVersion = "apps/v1", kind = "ReplicaSet", metadata = { name = name, namespace = "default" },
    spec = { replicas = replicas, selector = { matchLabels = { app = name } },
      template = { metadata = { labels = { app = name } },
        spec = { containers = { { name = "main", image = "busybox", command = { "sleep", "3600" } } } } } } }
end

local function with_api(fn)
  fake.run(function()
    local s = require("api_stack").new()
    local m = manager.new({ client = s.client, log = function() end })
    local ctl = m:add(s.loaded.controllers["replicaset"].value)
    m:start()
    local env = { client = s.client, m = m, ctl = ctl }
    function env.settle()
      assert.is_true(m:wait_idle(5, 40))
      loop.sleep(150)
      assert.is_true(m:wait_idle(5, 40))
    end
    local ok, err = pcall(fn, env)
    m:stop()
    require("api_stack").close(s, ok, err)
  end)
end

describe("replicaset controller reads", function()
  it("copies no pod on a sync, and writes status on a copy", function()
    with_api(function(env)
      local c = env.client
      -- 40 pods of someone else in the namespace: listed on every sync
      for i = 1, 40 do
        assert(c:create("v1/Pod", { apiVersion = "v1", kind = "Pod",
          metadata = { name = "other-" .. i, namespace = "default", labels = { app = "other" } },
          spec = { containers = { { name = "main", image = "busybox" } } } }))
      end
      assert(c:create(RS, rs_obj("web", 3)))
      env.settle()
      local inf = env.m:informer(RS)
      local cached = inf:peek("default/web")
      assert.are.equal(3, cached.status.replicas)
      local copy = util.copy
      local copies = 0
      util.copy = function(v) copies = copies + 1; return copy(v) end
      local syncs = env.ctl.stats.reconciles
      local ok, err = pcall(function()
        -- a pod of the set goes: the set syncs, makes a new one, writes status
        local mine = {}
        for _, p in ipairs(assert(c:list("v1/Pod", { namespace = "default" })).items) do
          if p.metadata.labels.app == "web" then mine[#mine + 1] = p end
        end
        assert(c:delete("v1/Pod", "default", mine[1].metadata.name, { grace_period_seconds = 0 }))
        env.settle()
      end)
      util.copy = copy
      assert(ok, err)
      assert.is_true(env.ctl.stats.reconciles > syncs)
      assert.are.equal(0, copies)
      local n = 0
      for _, p in ipairs(assert(c:list("v1/Pod", { namespace = "default" })).items) do
        if p.metadata.labels.app == "web" and not p.metadata.deletionTimestamp then n = n + 1 end
      end
      assert.are.equal(3, n)
    end)
  end)

  it("hands scale-down policies copies of the pods", function()
    with_api(function(env)
      local c = env.client
      local rs = assert(c:create(RS, rs_obj("api", 4)))
      env.settle()
      local scaledown = require("moonlet.scaledown")
      local victims = scaledown.victims
      local seen
      scaledown.victims = function(pods, ...)
        seen = pods
        return victims(pods, ...)
      end
      local ok, err = pcall(function()
        rs = assert(c:get(RS, "default", "api"))
        rs.spec.replicas = 2
        assert(c:update(RS, rs))
        env.settle()
      end)
      scaledown.victims = victims
      assert(ok, err)
      assert.truthy(seen)
      local pods = env.m:informer("v1/Pod")
      for _, p in ipairs(seen) do
        assert.are_not.equal(pods:peek("default/" .. p.metadata.name), p)
      end
    end)
  end)
end)
