-- The Job controller holds back a status whose only change is `ready` for
-- its ready batch period (Kubernetes batches every pod change of a Job for
-- syncJobBatchPeriod, 1 s): the count is written at the end of the period,
-- or folded into the write of a pod's end that comes first. On the
-- in-process API (memory store, router, built-in kinds); the spec plays the
-- node by writing pod status.
require("moonlet_core")
local loop = require("moonlet.loop")
local manager = require("moonlet.controller.manager")
local fake = require("fake_client") -- for fake.run only

local JOB = "batch/v1/Job"
local POD = "v1/Pod"

local function job(name)
  return { apiVersion = "batch/v1", kind = "Job", metadata = { name = name, namespace = "default" },
    spec = { template = { spec = { restartPolicy = "Never",
      containers = { { name = "main", image = "busybox", command = { "true" } } } } } } }
end

-- Runs fn(env) with the job controller and a ready batch of `period` s;
-- env.status_writes() counts the controller's Job status writes so far.
local function with_api(period, fn)
  fake.run(function()
    local s = require("api_stack").new()
    local m = manager.new({ client = s.client, log = function() end })
    local plugin = s.loaded.controllers["job"].value
    local saved = plugin.ready_batch
    plugin.ready_batch = period
    local c = s.client
    local writes = 0
    local raw = c.raw
    c.raw = function(self, method, path, ...)
      if method == "PATCH" and path:match("/jobs/[^/]+/status$") then writes = writes + 1 end
      return raw(self, method, path, ...)
    end
    m:add(plugin)
    m:start()
    local env = { client = c }
    function env.status_writes() return writes end
    function env.settle() assert.is_true(m:wait_idle(5, 20)) end
    function env.pod(j)
      for _, p in ipairs(assert(c:list(POD, { namespace = "default" })).items) do
        if p.metadata.ownerReferences[1].uid == j.metadata.uid then return p end
      end
    end
    -- Plays the kubelet: the pod runs and is ready, or ends.
    function env.running(p)
      p = assert(c:get(POD, "default", p.metadata.name))
      p.status.phase = "Running"
      p.status.conditions = { { type = "Ready", status = "True" } }
      return assert(c:update_status(POD, p))
    end
    function env.succeeded(p)
      p = assert(c:get(POD, "default", p.metadata.name))
      p.status.phase = "Succeeded"
      p.status.conditions = { { type = "Ready", status = "False", reason = "PodCompleted" } }
      return assert(c:update_status(POD, p))
    end
    function env.job(name) return assert(c:get(JOB, "default", name)) end
    local ok, err = pcall(fn, env)
    plugin.ready_batch = saved
    m:stop()
    require("api_stack").close(s, ok, err)
  end)
end

describe("job controller ready batch", function()
  it("writes a change of ready alone at the end of the period", function()
    with_api(0.4, function(env)
      local j = assert(env.client:create(JOB, job("r1")))
      env.settle()
      assert.are.equal(1, env.status_writes()) -- active 1, ready 0, startTime
      env.running(env.pod(j))
      loop.sleep(200) -- the pod change's sync has run (its window is 10 ms)
      assert.are.equal(0, env.job("r1").status.ready)
      assert.are.equal(1, env.status_writes())
      local deadline = loop.time() + 3
      while env.job("r1").status.ready ~= 1 and loop.time() < deadline do loop.sleep(20) end
      assert.are.equal(1, env.job("r1").status.ready)
      assert.are.equal(2, env.status_writes())
    end)
  end)

  it("folds a held ready count into the write of the pod's end", function()
    with_api(0.4, function(env)
      local j = assert(env.client:create(JOB, job("r2")))
      env.settle()
      local p = env.running(env.pod(j))
      loop.sleep(100)
      env.succeeded(p)
      local deadline = loop.time() + 3
      local cur
      repeat
        loop.sleep(20)
        cur = env.job("r2")
      until (cur.status.conditions and #cur.status.conditions > 0) or loop.time() > deadline
      assert.are.equal(1, cur.status.succeeded)
      assert.are.equal(0, cur.status.ready)
      assert.are.equal(2, env.status_writes()) -- the first status, then the end
      loop.sleep(500) -- past the period: nothing more to write
      env.settle()
      assert.are.equal(2, env.status_writes())
    end)
  end)

  it("writes ready at once with a period of 0", function()
    with_api(0, function(env)
      local j = assert(env.client:create(JOB, job("r3")))
      env.settle()
      env.running(env.pod(j))
      local deadline = loop.time() + 1
      while env.job("r3").status.ready ~= 1 and loop.time() < deadline do loop.sleep(10) end
      assert.are.equal(1, env.job("r3").status.ready)
      assert.are.equal(2, env.status_writes())
    end)
  end)
end)
