-- The CronJob controller on the real API stack, in process, with a fake
-- clock: Jobs named <cronjob>-<unix minutes> from the template with the
-- scheduled-timestamp annotation and controller reference, status.active /
-- lastScheduleTime / lastSuccessfulTime, SawCompletedJob, history pruning
-- (oldest first), Forbid / Replace / Allow, suspend, startingDeadlineSeconds
-- (MissSchedule), more than 100 missed (TooManyMissedTimes, the latest
-- runs), MissingJob, and the example catch-up policy. Job completion is
-- faked by writing Job status, as no Job controller runs here.
require("moonlet_core")
local loop = require("moonlet.loop")
local json = require("moonlet.json")
local tz = require("moonlet.tz")
local plugins = require("moonlet.plugins")
local kinds = require("moonlet.api.kinds")
local manager = require("moonlet.controller.manager")
local policies = require("moonlet.cron_policy")
local fake = require("fake_client") -- for fake.run only

local CJ = "batch/v1/CronJob"
local JOB = "batch/v1/Job"

local function cj_obj(name, schedule, extra, annotations)
  local obj = {
    apiVersion = "batch/v1", kind = "CronJob",
    metadata = { name = name, namespace = "default", annotations = annotations },
    spec = {
      schedule = schedule,
      jobTemplate = {
        metadata = { labels = { tier = "batch" } },
        spec = { template = { metadata = { labels = { app = name } },
          spec = { restartPolicy = "OnFailure", containers = { { name = "main", image = "busybox",
            command = { "true" } } } } } },
      },
    },
  }
  for k, v in pairs(extra or {}) do obj.spec[k] = v end
  return obj
end

local function with_api(fn)
  fake.run(function()
    local store = assert(require("moonlet.store").open({ backend = "memory" }))
    local loaded, errors = plugins.load({})
    assert.are.same({}, errors)
    kinds.reset()
    for _, name in ipairs(plugins.names(loaded, "kinds")) do
      kinds.register(loaded.kinds[name].value, loaded.kinds[name].display)
    end
    -- The Job kind comes from its own plugin; a bare stand-in when absent.
    if not kinds.by_kind(JOB) then
      kinds.register({ group = "batch", version = "v1", kind = "Job", plural = "jobs", status_subresource = true },
        "test")
    end
    local lines = {}
    local log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end
    local router = require("moonlet.api.router").new({ store = store, token = "t", version = "0.0.0", log = log })
    local client = require("moonlet.client").new({ transport = require("moonlet.api.inproc").transport(router) })
    assert(client:create("v1/Namespace", { apiVersion = "v1", kind = "Namespace", metadata = { name = "default" } }))
    local env = { client = client, lines = lines, now = os.time() }
    local m = manager.new({ client = client, log = log, clock = function() return env.now end })
    local plugin = loaded.controllers["cronjob"].value
    plugin.zone = tz.utc
    local ctl = m:add(plugin)
    m:start()
    env.m, env.ctl = m, ctl
    -- Polls until cond() holds (watch events arrive a few turns later).
    function env.eventually(cond, what)
      for _ = 1, 300 do
        if cond() then return end
        loop.sleep(10)
      end
      error("timed out waiting for " .. (what or "condition"), 2)
    end
    -- Sets the fake clock and has the controller look now.
    function env.tick(t, name)
      env.now = t
      ctl.queue:add("default/" .. name)
      loop.sleep(30)
      env.eventually(function() return ctl.queue:len() == 0 end, "queue")
      loop.sleep(30)
    end
    function env.jobs(name)
      local out = {}
      for _, j in ipairs(assert(client:list(JOB, { namespace = "default" })).items) do
        if not name or j.metadata.name:sub(1, #name + 1) == name .. "-" then out[#out + 1] = j end
      end
      table.sort(out, function(a, b) return a.metadata.name < b.metadata.name end)
      return out
    end
    function env.events(name)
      local out = {}
      for _, e in ipairs(assert(client:list("v1/Event", { namespace = "default" })).items) do
        if e.involvedObject.kind == "CronJob" and e.involvedObject.name == name then
          out[#out + 1] = e.reason .. ": " .. e.message
        end
      end
      return out
    end
    function env.has_event(name, text)
      for _, e in ipairs(env.events(name)) do if e == text then return true end end
      return false
    end
    function env.complete(job, how, at)
      local j = assert(client:get(JOB, "default", job.metadata.name))
      j.status = { startTime = tz.rfc3339(at - 1), completionTime = how == "Complete" and tz.rfc3339(at) or nil,
        conditions = { { type = how, status = "True", lastTransitionTime = tz.rfc3339(at) } } }
      assert(client:update_status(JOB, j))
    end
    local ok, err = pcall(fn, env)
    m:stop()
    require("moonlet.api.handlers").stop_watches()
    loop.sleep(5)
    store:close()
    if not ok then error(tostring(err) .. "\n" .. table.concat(lines, "\n"), 0) end
  end)
end

-- The first minute boundary after the CronJob's creation.
local function first_minute(cj)
  local c = tz.parse_rfc3339(cj.metadata.creationTimestamp)
  return (c // 60 + 1) * 60
end

describe("cronjob controller", function()
  it("creates the scheduled job, tracks it and records its success", function()
    with_api(function(env)
      local c = env.client
      local cj = assert(c:create(CJ, cj_obj("hello", "*/1 * * * *")))
      local t1 = first_minute(cj)
      env.tick(t1 - 5, "hello")
      assert.are.equal(0, #env.jobs("hello"))
      -- the next look is one timer, set for just after the activation 5 s away
      local d = env.ctl.queue.delayed["default/hello"]
      assert.is_truthy(d)
      local wait_ms = d.due - loop.now()
      assert.is_true(wait_ms > 4500 and wait_ms <= 5005, tostring(wait_ms))

      env.tick(t1 + 0.5, "hello")
      env.eventually(function() return #env.jobs("hello") == 1 end, "job")
      local job = env.jobs("hello")[1]
      assert.are.equal("hello-" .. (t1 // 60), job.metadata.name)
      assert.are.equal(tz.rfc3339(t1), job.metadata.annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"])
      assert.are.equal("batch", job.metadata.labels.tier)
      local ref = job.metadata.ownerReferences[1]
      assert.are.same({ "batch/v1", "CronJob", "hello", cj.metadata.uid, true, true },
        { ref.apiVersion, ref.kind, ref.name, ref.uid, ref.controller, ref.blockOwnerDeletion })
      assert.are.equal("hello", job.spec.template.metadata.labels.app)
      env.eventually(function()
        local cur = c:get(CJ, "default", "hello")
        return cur.status and cur.status.active and #cur.status.active == 1
      end, "status.active")
      local cur = assert(c:get(CJ, "default", "hello"))
      assert.are.equal(tz.rfc3339(t1), cur.status.lastScheduleTime)
      assert.are.same({ "Job", job.metadata.name, job.metadata.uid },
        { cur.status.active[1].kind, cur.status.active[1].name, cur.status.active[1].uid })
      assert.is_true(env.has_event("hello", "SuccessfulCreate: Created job " .. job.metadata.name))
      -- the next look is a timer set for right after the next activation

      -- a second sync at the same time creates nothing more
      env.tick(t1 + 1, "hello")
      assert.are.equal(1, #env.jobs("hello"))

      env.complete(job, "Complete", t1 + 10)
      env.tick(t1 + 11, "hello")
      env.eventually(function()
        local x = c:get(CJ, "default", "hello")
        return x.status.active == nil and x.status.lastSuccessfulTime == tz.rfc3339(t1 + 10)
      end, "completion recorded")
      assert.is_true(env.has_event("hello", "SawCompletedJob: Saw completed job: " .. job.metadata.name
        .. ", condition: Complete"))
      assert.are.equal(0, env.ctl.stats.errors)
    end)
  end)

  it("prunes finished jobs beyond the history limits, oldest first", function()
    with_api(function(env)
      local c = env.client
      local cj = assert(c:create(CJ, cj_obj("hist", "*/1 * * * *",
        { successfulJobsHistoryLimit = 1, failedJobsHistoryLimit = 1 })))
      local t1 = first_minute(cj)
      local names = {}
      for i = 0, 2 do
        local t = t1 + i * 60
        env.tick(t + 1, "hist")
        env.eventually(function() return c:get(JOB, "default", "hist-" .. (t // 60)) ~= nil end, "job " .. i)
        local j = assert(c:get(JOB, "default", "hist-" .. (t // 60)))
        names[#names + 1] = j.metadata.name
        env.complete(j, i == 1 and "Failed" or "Complete", t + 5)
        env.tick(t + 6, "hist")
      end
      env.eventually(function() return c:get(JOB, "default", names[1]) == nil end, "oldest pruned")
      assert.is_truthy(c:get(JOB, "default", names[2])) -- the only failed one stays
      assert.is_truthy(c:get(JOB, "default", names[3]))
      assert.is_true(env.has_event("hist", "SuccessfulDelete: Deleted job " .. names[1]))
    end)
  end)

  it("Forbid skips while a job runs; Replace deletes it first; suspend starts nothing", function()
    with_api(function(env)
      local c = env.client
      local cj = assert(c:create(CJ, cj_obj("forbid", "*/1 * * * *", { concurrencyPolicy = "Forbid" })))
      local t1 = first_minute(cj)
      env.tick(t1 + 1, "forbid")
      env.eventually(function() return #env.jobs("forbid") == 1 end, "first job")
      env.eventually(function() return (c:get(CJ, "default", "forbid").status or {}).active ~= nil end, "active")
      env.tick(t1 + 61, "forbid")
      assert.are.equal(1, #env.jobs("forbid"))
      assert.is_true(env.has_event("forbid",
        "JobAlreadyActive: Not starting job because prior execution is running and concurrency policy is Forbid"))

      local rj = assert(c:create(CJ, cj_obj("replace", "*/1 * * * *", { concurrencyPolicy = "Replace" })))
      local r1 = first_minute(rj)
      env.tick(r1 + 1, "replace")
      env.eventually(function() return (c:get(CJ, "default", "replace").status or {}).active ~= nil end, "active")
      local first = env.jobs("replace")[1].metadata.name
      env.tick(r1 + 61, "replace")
      env.eventually(function() return c:get(JOB, "default", "replace-" .. ((r1 + 60) // 60)) ~= nil end, "second")
      env.eventually(function() return c:get(JOB, "default", first) == nil end, "first deleted")
      assert.is_true(env.has_event("replace", "SuccessfulDelete: Deleted job " .. first))
      local cur = c:get(CJ, "default", "replace")
      assert.are.equal(1, #cur.status.active)
      assert.are.equal("replace-" .. ((r1 + 60) // 60), cur.status.active[1].name)

      local sj = assert(c:create(CJ, cj_obj("sleepy", "*/1 * * * *", { suspend = true })))
      env.tick(first_minute(sj) + 1, "sleepy")
      assert.are.equal(0, #env.jobs("sleepy"))
      assert.are.equal(0, env.ctl.stats.errors)
    end)
  end)

  it("honours startingDeadlineSeconds, warns past 100 missed times and notices missing jobs", function()
    with_api(function(env)
      local c = env.client
      -- hourly at minute 0, deadline 10 s: 30 s late is too late
      local cj = assert(c:create(CJ, cj_obj("late", "0 * * * *", { startingDeadlineSeconds = 10 })))
      local created = tz.parse_rfc3339(cj.metadata.creationTimestamp)
      local h = (created // 3600 + 1) * 3600
      env.tick(h + 30, "late")
      assert.are.equal(0, #env.jobs("late"))
      -- the deadline also bounds the search: nothing unmet within it
      local cur = c:get(CJ, "default", "late")
      assert.is_nil((cur.status or {}).lastScheduleTime)
      cur.spec.startingDeadlineSeconds = 60
      assert(c:update(CJ, cur))
      env.tick(h + 30, "late")
      env.eventually(function() return #env.jobs("late") == 1 end, "job within deadline")

      -- 200 minutes of missed every-minute runs: warning, and the latest runs
      local many = assert(c:create(CJ, cj_obj("many", "*/1 * * * *")))
      local m1 = first_minute(many)
      local now = m1 + 200 * 60 + 7
      env.tick(now, "many")
      env.eventually(function() return #env.jobs("many") == 1 end, "latest job")
      assert.are.equal("many-" .. ((now - 7) // 60), env.jobs("many")[1].metadata.name)
      assert.is_true(env.has_event("many", "TooManyMissedTimes: too many missed start times. Set or decrease "
        .. ".spec.startingDeadlineSeconds or check clock skew"))

      -- a tracked job deleted behind the controller's back
      env.eventually(function() return (c:get(CJ, "default", "many").status or {}).active ~= nil end, "active")
      assert(c:delete(JOB, "default", env.jobs("many")[1].metadata.name, { propagation_policy = "Background" }))
      env.eventually(function() return #env.jobs("many") == 0 end, "job gone")
      env.tick(now + 1, "many")
      env.eventually(function() return c:get(CJ, "default", "many").status.active == nil end, "dropped")
      assert.is_true(env.has_event("many", "MissingJob: Active job went missing: many-" .. ((now - 7) // 60)))

      -- a missed window is reported with the time in RFC 1123Z
      local miss = assert(c:create(CJ, cj_obj("miss", "*/1 * * * *", { startingDeadlineSeconds = 5 })))
      local x1 = first_minute(miss)
      local st = c:get(CJ, "default", "miss")
      st.status = { lastScheduleTime = tz.rfc3339(x1 - 60) }
      assert(c:update_status(CJ, st))
      env.eventually(function() return (c:get(CJ, "default", "miss").status or {}).lastScheduleTime end, "status")
      loop.sleep(50)
      env.tick(x1 + 3, "miss")
      env.eventually(function() return #env.jobs("miss") == 1 end, "in time")
      assert.are.equal(0, env.ctl.stats.errors)
    end)
  end)

  it("runs every missed time one at a time under the example catch-up policy", function()
    with_api(function(env)
      local src = assert(os.getenv("ML_SRC"), "ML_SRC not set")
      local p = assert(loadfile(src .. "/examples/policies/policies/cron/catch-up.lua"))()
      policies.register(p)
      local c = env.client
      local cj = assert(c:create(CJ, cj_obj("catch", "*/1 * * * *", nil,
        { ["cron.moonlet.dev/policy"] = "catch-up" })))
      local t1 = first_minute(cj)
      -- three activations missed
      env.tick(t1 + 150, "catch")
      env.eventually(function() return #env.jobs("catch") == 1 end, "first")
      assert.are.equal("catch-" .. (t1 // 60), env.jobs("catch")[1].metadata.name)
      env.eventually(function() return (c:get(CJ, "default", "catch").status or {}).active ~= nil end, "active")
      -- one at a time: nothing more while it runs
      env.tick(t1 + 151, "catch")
      assert.are.equal(1, #env.jobs("catch"))
      for i = 1, 2 do
        local prev = env.jobs("catch")[i]
        env.complete(prev, "Complete", t1 + 151 + i)
        env.tick(t1 + 152 + i, "catch")
        env.eventually(function() return #env.jobs("catch") == i + 1 end, "run " .. (i + 1))
        assert.are.equal("catch-" .. ((t1 + i * 60) // 60), env.jobs("catch")[i + 1].metadata.name)
        env.eventually(function()
          local a = (c:get(CJ, "default", "catch").status or {}).active
          return a ~= nil and a[1].name == "catch-" .. ((t1 + i * 60) // 60)
        end, "active " .. i)
      end
      -- the built-in policy would have run only the latest
      assert.are.equal(0, env.ctl.stats.errors)
      policies.reset()
    end)
  end)
end)
