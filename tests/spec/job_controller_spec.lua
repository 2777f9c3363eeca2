-- The Job controller on the in-process API (memory store, router, built-in
-- kinds; no kubelet: the spec plays the node by writing pod status):
-- pods and their labels, parallelism and completions, Indexed jobs, the
-- back-off limit (failed pods, and restarts under OnFailure) with the
-- failure back-off between replacements, activeDeadlineSeconds, suspend and
-- resume, the interim then terminal conditions, events, and the TTL.
require("moonlet_core")
local loop = require("moonlet.loop")
local manager = require("moonlet.controller.manager")
local util = require("moonlet.controller.util")
local fake = require("fake_client") -- for fake.run only

local JOB = "batch/v1/Job"
local POD = "v1/Pod"

local function job(name, spec, policy)
  local obj = {
    apiVersion = "batch/v1", kind = "Job", metadata = { name = name, namespace = "default" },
    spec = {
      template = { metadata = { labels = { app = name } },
        spec = { restartPolicy = policy or "OnFailure",
          containers = { { name = "main", image = "idealism/batch-job" } } } },
    },
  }
  for k, v in pairs(spec or {}) do obj.spec[k] = v end
  return obj
end

-- Runs fn(env) against a fresh API with the job controller; env.advance(s)
-- moves the controller's clock forward.
local function with_api(fn)
  fake.run(function()
    local s = require("api_stack").new()
    local lines = {}
    local log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end
    local offset = 0
    local m = manager.new({ client = s.client, log = log, clock = function() return loop.time() + offset end })
    local plugin = s.loaded.controllers["job"].value
    local saved = { plugin.backoff.initial, plugin.backoff.max }
    plugin.backoff.initial, plugin.backoff.max = 0.2, 0.8
    local ctl = m:add(plugin)
    m:start()
    local c = s.client
    local env = { client = c, m = m, ctl = ctl, lines = lines, plugin = plugin }
    function env.advance(sec) offset = offset + sec end
    function env.settle()
      assert.is_true(m:wait_idle(5, 40))
      loop.sleep(100)
      assert.is_true(m:wait_idle(5, 40))
    end
    function env.pods(j, filter)
      local out = {}
      for _, p in ipairs(assert(c:list(POD, { namespace = "default" })).items) do
        local ref = (p.metadata.ownerReferences or {})[1]
        if ref and ref.uid == j.metadata.uid and (not filter or filter(p)) then out[#out + 1] = p end
      end
      return out
    end
    function env.active(j)
      return env.pods(j, function(p)
        local ph = (p.status or {}).phase
        return ph ~= "Succeeded" and ph ~= "Failed"
      end)
    end
    -- Plays the kubelet: the pod ends with `phase` (its container too).
    function env.finish(pod, phase, code)
      local p = assert(c:get(POD, "default", pod.metadata.name))
      p.status.phase = phase
      p.status.containerStatuses = { { name = "main", ready = false, restartCount = 0, image = "x", imageID = "",
        state = { terminated = { exitCode = code or (phase == "Succeeded" and 0 or 1),
          reason = phase == "Succeeded" and "Completed" or "Error" } } } }
      assert(c:update_status(POD, p))
    end
    function env.job(name) return assert(c:get(JOB, "default", name)) end
    function env.condition(j, type_)
      for _, cnd in ipairs((j.status or {}).conditions or {}) do
        if cnd.type == type_ then return cnd end
      end
      return nil
    end
    function env.events(j)
      local out = {}
      for _, e in ipairs(assert(c:list("v1/Event", { namespace = "default" })).items) do
        if e.involvedObject.uid == j.metadata.uid then
          out[#out + 1] = e
        end
      end
      table.sort(out, function(a, b) return a.metadata.name < b.metadata.name end)
      return out
    end
    function env.reasons(j)
      local out = {}
      for _, e in ipairs(env.events(j)) do out[e.reason] = (out[e.reason] or 0) + (e.count or 1) end
      return out
    end
    local ok, err = pcall(fn, env)
    plugin.backoff.initial, plugin.backoff.max = saved[1], saved[2]
    m:stop()
    require("moonlet.api.handlers").stop_watches()
    loop.sleep(5)
    s.store:close()
    if not ok then error(tostring(err) .. "\n" .. table.concat(lines, "\n"), 0) end
  end)
end

describe("job controller", function()
  it("runs one pod to completion and keeps it", function()
    with_api(function(env)
      local j = assert(env.client:create(JOB, job("batch-job")))
      env.settle()
      local pods = env.pods(j)
      assert.are.equal(1, #pods)
      local p = pods[1]
      assert.truthy(p.metadata.name:match("^batch%-job%-[bcdfghjklmnpqrstvwxz2456789]+$"))
      assert.are.equal(5, #p.metadata.name - #"batch-job-")
      local ref = p.metadata.ownerReferences[1]
      assert.are.same({ "batch/v1", "Job", "batch-job", j.metadata.uid, true, true },
        { ref.apiVersion, ref.kind, ref.name, ref.uid, ref.controller, ref.blockOwnerDeletion })
      assert.are.same({ app = "batch-job", ["batch.kubernetes.io/controller-uid"] = j.metadata.uid,
        ["batch.kubernetes.io/job-name"] = "batch-job", ["controller-uid"] = j.metadata.uid,
        ["job-name"] = "batch-job" }, p.metadata.labels)
      local cur = env.job("batch-job")
      assert.are.equal(1, cur.status.active)
      assert.are.equal(0, cur.status.ready)
      assert.are.equal(0, cur.status.terminating)
      assert.truthy(cur.status.startTime)
      assert.is_nil(cur.status.completionTime)
      assert.is_nil(cur.status.conditions)

      env.finish(p, "Succeeded")
      env.settle()
      cur = env.job("batch-job")
      assert.are.equal(1, cur.status.succeeded)
      assert.is_nil(cur.status.active)
      assert.truthy(cur.status.completionTime)
      local scm, done = env.condition(cur, "SuccessCriteriaMet"), env.condition(cur, "Complete")
      assert.are.same({ "True", "CompletionsReached", "Reached expected number of succeeded pods" },
        { scm.status, scm.reason, scm.message })
      assert.are.same({ "True", "CompletionsReached", "Reached expected number of succeeded pods" },
        { done.status, done.reason, done.message })
      assert.are.equal(cur.status.completionTime, done.lastTransitionTime)
      -- the finished pod stays (its logs are still readable)
      assert.are.equal(1, #env.pods(j))
      local r = env.reasons(j)
      assert.are.same({ SuccessfulCreate = 1, Completed = 1 }, r)
      for _, e in ipairs(env.events(j)) do
        if e.reason == "Completed" then assert.are.equal("Job completed", e.message) end
        if e.reason == "SuccessfulCreate" then assert.are.equal("Created pod: " .. p.metadata.name, e.message) end
      end
      assert.are.equal(0, env.ctl.stats.errors)
    end)
  end)

  it("runs completions 5 with parallelism 2, never more than 2 at once", function()
    with_api(function(env)
      local j = assert(env.client:create(JOB, job("multi", { completions = 5, parallelism = 2 })))
      env.settle()
      for round = 1, 5 do
        local act = env.active(j)
        assert.is_true(#act <= 2, "round " .. round)
        assert.are.equal(math.min(2, 5 - round + 1), #act, "round " .. round)
        env.finish(act[1], "Succeeded")
        env.settle()
        assert.are.equal(round, env.job("multi").status.succeeded)
      end
      local cur = env.job("multi")
      assert.truthy(env.condition(cur, "Complete"))
      assert.are.equal(5, #env.pods(j))
      assert.are.equal(5, env.reasons(j).SuccessfulCreate)
    end)
  end)

  it("a work queue (parallelism only) completes once one pod succeeded and the rest ended", function()
    with_api(function(env)
      local j = assert(env.client:create(JOB, job("queue", { parallelism = 3 })))
      env.settle()
      local act = env.active(j)
      assert.are.equal(3, #act)
      env.finish(act[1], "Succeeded")
      env.settle()
      assert.are.equal(2, #env.active(j)) -- no replacement once one succeeded
      assert.is_nil(env.condition(env.job("queue"), "Complete"))
      env.finish(act[2], "Succeeded")
      env.finish(act[3], "Succeeded")
      env.settle()
      local cur = env.job("queue")
      assert.truthy(env.condition(cur, "Complete"))
      assert.are.equal(3, cur.status.succeeded)
    end)
  end)

  it("Indexed: one pod per index with JOB_COMPLETION_INDEX, completedIndexes", function()
    with_api(function(env)
      local j = assert(env.client:create(JOB, job("ix", { completionMode = "Indexed", completions = 4,
        parallelism = 2 })))
      env.settle()
      local act = env.active(j)
      assert.are.equal(2, #act)
      local by_index = {}
      for _, p in ipairs(act) do
        local i = p.metadata.annotations["batch.kubernetes.io/job-completion-index"]
        assert.are.equal(i, p.metadata.labels["batch.kubernetes.io/job-completion-index"])
        assert.truthy(p.metadata.name:match("^ix%-" .. i .. "%-%w%w%w%w%w$"), p.metadata.name)
        assert.are.equal("ix-" .. i, p.spec.hostname)
        local env_var = p.spec.containers[1].env[1]
        assert.are.same({ "JOB_COMPLETION_INDEX", "metadata.labels['batch.kubernetes.io/job-completion-index']" },
          { env_var.name, env_var.valueFrom.fieldRef.fieldPath })
        by_index[i] = p
      end
      assert.truthy(by_index["0"] and by_index["1"])
      env.finish(by_index["1"], "Succeeded")
      env.settle()
      local cur = env.job("ix")
      assert.are.equal("1", cur.status.completedIndexes)
      assert.are.equal(1, cur.status.succeeded)
      -- index 2 is next; a failed index is retried
      env.finish(by_index["0"], "Failed")
      env.settle()
      loop.sleep(300) -- the failure back-off (0.2 s here)
      env.settle()
      local idx = {}
      for _, p in ipairs(env.active(j)) do
        idx[#idx + 1] = p.metadata.annotations["batch.kubernetes.io/job-completion-index"]
      end
      table.sort(idx)
      assert.are.same({ "0", "2" }, idx)
      for _, p in ipairs(env.active(j)) do env.finish(p, "Succeeded") end
      env.settle()
      for _, p in ipairs(env.active(j)) do env.finish(p, "Succeeded") end
      env.settle()
      cur = env.job("ix")
      assert.are.equal("0-3", cur.status.completedIndexes)
      assert.are.equal(4, cur.status.succeeded)
      assert.are.equal(1, cur.status.failed)
      assert.truthy(env.condition(cur, "Complete"))
    end)
  end)

  it("Never: counts failed pods, backs off between replacements, fails past backoffLimit", function()
    with_api(function(env)
      env.plugin.backoff.initial, env.plugin.backoff.max = 0.6, 5
      local j = assert(env.client:create(JOB, job("fail", { backoffLimit = 2 }, "Never")))
      env.settle()
      local first = env.active(j)[1]
      local t0 = loop.now()
      env.finish(first, "Failed")
      -- the replacement waits out the back-off (0.6 s, then 1.2 s)
      assert.is_true(util.wait_for(function() return (env.job("fail").status.failed or 0) == 1 end, 3))
      assert.are.equal(0, #env.active(j))
      assert.is_true(util.wait_for(function() return #env.active(j) == 1 end, 5))
      local waited = loop.now() - t0
      assert.is_true(waited >= 550, "back-off " .. waited)
      t0 = loop.now()
      env.finish(env.active(j)[1], "Failed")
      assert.is_true(util.wait_for(function() return #env.active(j) == 1 end, 5))
      waited = loop.now() - t0
      assert.is_true(waited >= 1150, "back-off doubles: " .. waited)
      env.finish(env.active(j)[1], "Failed")
      env.settle()
      local cur = env.job("fail")
      assert.are.equal(3, cur.status.failed)
      local ft, failed = env.condition(cur, "FailureTarget"), env.condition(cur, "Failed")
      assert.are.same({ "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit" },
        { ft.status, ft.reason, ft.message })
      assert.are.same({ "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit" },
        { failed.status, failed.reason, failed.message })
      assert.is_nil(cur.status.completionTime)
      assert.are.equal(3, #env.pods(j)) -- failed pods are kept
      local r = env.reasons(j)
      assert.are.equal(1, r.BackoffLimitExceeded)
      assert.are.equal(3, r.SuccessfulCreate)
    end)
  end)

  it("OnFailure: container restarts count toward backoffLimit", function()
    with_api(function(env)
      local j = assert(env.client:create(JOB, job("restarts", { backoffLimit = 2 })))
      env.settle()
      local p = assert(env.client:get(POD, "default", env.active(j)[1].metadata.name))
      p.status.phase = "Running"
      p.status.containerStatuses = { { name = "main", ready = false, restartCount = 1, image = "x", imageID = "",
        state = { waiting = { reason = "CrashLoopBackOff" } } } }
      assert(env.client:update_status(POD, p))
      env.settle()
      assert.is_nil(env.condition(env.job("restarts"), "Failed"))
      p = assert(env.client:get(POD, "default", p.metadata.name))
      p.status.containerStatuses[1].restartCount = 2
      assert(env.client:update_status(POD, p))
      env.settle()
      local cur = env.job("restarts")
      assert.are.equal("BackoffLimitExceeded", env.condition(cur, "Failed").reason)
      -- the still-running pod was deleted
      assert.are.equal(0, #env.active(j))
    end)
  end)

  it("activeDeadlineSeconds: active pods end, Failed DeadlineExceeded", function()
    with_api(function(env)
      local j = assert(env.client:create(JOB, job("late", { activeDeadlineSeconds = 1, parallelism = 2,
        completions = 4 })))
      assert.is_true(util.wait_for(function() return #env.active(j) == 2 end, 3))
      assert.is_nil(env.condition(env.job("late"), "Failed"))
      -- the controller wakes itself at the deadline
      assert.is_true(util.wait_for(function() return env.condition(env.job("late"), "Failed") ~= nil end, 5))
      env.settle()
      local cur = env.job("late")
      local failed = env.condition(cur, "Failed")
      assert.are.same({ "DeadlineExceeded", "Job was active longer than specified deadline" },
        { failed.reason, failed.message })
      assert.are.equal("DeadlineExceeded", env.condition(cur, "FailureTarget").reason)
      assert.are.equal(0, #env.pods(j))
      assert.are.equal(1, env.reasons(j).DeadlineExceeded)
      assert.are.equal(2, env.reasons(j).SuccessfulDelete)
    end)
  end)

  it("suspend deletes active pods, resume starts again and resets startTime", function()
    with_api(function(env)
      local j = assert(env.client:create(JOB, job("sus", { parallelism = 2, completions = 2 })))
      env.settle()
      assert.are.equal(2, #env.active(j))
      local cur = env.job("sus")
      local started = cur.status.startTime
      cur.spec.suspend = true
      assert(env.client:update(JOB, cur))
      env.settle()
      assert.are.equal(0, #env.active(j))
      cur = env.job("sus")
      local c = env.condition(cur, "Suspended")
      assert.are.same({ "True", "JobSuspended", "Job suspended" }, { c.status, c.reason, c.message })
      assert.is_nil(cur.status.failed) -- pods deleted by suspension are no failures
      assert.is_nil(cur.status.active)
      env.advance(5)
      cur.spec.suspend = false
      assert(env.client:update(JOB, cur))
      env.settle()
      assert.are.equal(2, #env.active(j))
      cur = env.job("sus")
      c = env.condition(cur, "Suspended")
      assert.are.same({ "False", "JobResumed", "Job resumed" }, { c.status, c.reason, c.message })
      assert.are_not.equal(started, cur.status.startTime)
      local r = env.reasons(j)
      assert.are.same({ 1, 1, 4, 2 }, { r.Suspended, r.Resumed, r.SuccessfulCreate, r.SuccessfulDelete })
    end)
  end)

  it("ttlSecondsAfterFinished deletes the finished Job", function()
    with_api(function(env)
      local j = assert(env.client:create(JOB, job("ttl", { ttlSecondsAfterFinished = 0 })))
      env.settle()
      env.finish(env.active(j)[1], "Succeeded")
      assert.is_true(util.wait_for(function() return env.client:get(JOB, "default", "ttl") == nil end, 5))
      -- a TTL in the future: the controller's clock says when
      local k = assert(env.client:create(JOB, job("ttl2", { ttlSecondsAfterFinished = 1000 })))
      env.settle()
      env.finish(env.active(k)[1], "Succeeded")
      assert.is_true(util.wait_for(function() return env.condition(env.job("ttl2"), "Complete") ~= nil end, 5))
      loop.sleep(100)
      assert.truthy(env.client:get(JOB, "default", "ttl2"))
      env.advance(1001)
      local cur = env.job("ttl2")
      cur.metadata.annotations = { poke = "1" }
      assert(env.client:update(JOB, cur))
      assert.is_true(util.wait_for(function() return env.client:get(JOB, "default", "ttl2") == nil end, 5))
    end)
  end)

  it("formats and parses completedIndexes as Kubernetes does", function()
    with_api(function(env)
      local p = env.plugin
      assert.are.equal("", p.format_indexes({}))
      assert.are.equal("0", p.format_indexes({ [0] = true }))
      assert.are.equal("0,1,3,5-7", p.format_indexes({ [0] = true, [1] = true, [3] = true, [5] = true,
        [6] = true, [7] = true }))
      local set = p.parse_indexes("0-1,3,5-7,12", 10)
      assert.are.same({ [0] = true, [1] = true, [3] = true, [5] = true, [6] = true, [7] = true }, set)
      assert.are.equal(1.5, p.parse_duration("1500ms"))
      assert.are.equal(90, p.parse_duration("1m30s"))
      assert.is_nil(p.parse_duration("soon"))
    end)
  end)
  describe("pod failure policy", function()
    local function policy_job(name, rules, extra)
      local spec = { backoffLimit = 6, podFailurePolicy = { rules = rules } }
      for k, v in pairs(extra or {}) do spec[k] = v end
      return job(name, spec, "Never")
    end

    it("FailJob: an exit code the rule names fails the Job at once", function()
      with_api(function(env)
        local j = assert(env.client:create(JOB, policy_job("pfp-fail", {
          { action = "FailJob", onExitCodes = { containerName = "main", operator = "In", values = { 42 } } },
        })))
        env.settle()
        local pod = env.active(j)[1]
        env.finish(pod, "Failed", 42)
        env.settle()
        local cur = env.job("pfp-fail")
        local failed = env.condition(cur, "Failed")
        assert.are.same({ "True", "PodFailurePolicy",
          "Container main for pod default/" .. pod.metadata.name .. " failed with exit code 42 matching FailJob rule at index 0" },
          { failed.status, failed.reason, failed.message })
        assert.are.equal("PodFailurePolicy", env.condition(cur, "FailureTarget").reason)
        assert.are.equal(1, cur.status.failed)
        assert.are.equal(1, #env.pods(j)) -- no replacement
      end)
    end)

    it("Ignore: matching failures are not counted; Count and unmatched ones are", function()
      with_api(function(env)
        local j = assert(env.client:create(JOB, policy_job("pfp-ignore", {
          { action = "Ignore", onPodConditions = { { type = "DisruptionTarget" } } },
          { action = "Ignore", onExitCodes = { operator = "In", values = { 3 } } },
          { action = "Count", onExitCodes = { operator = "NotIn", values = { 3, 42 } } },
        }, { backoffLimit = 1 })))
        -- the pattern's status defaults to True
        assert.are.equal("True", j.spec.podFailurePolicy.rules[1].onPodConditions[1].status)
        env.settle()
        env.finish(env.active(j)[1], "Failed", 3)
        env.settle()
        loop.sleep(300) -- the failure back-off still applies (0.2 s here)
        env.settle()
        local cur = env.job("pfp-ignore")
        assert.is_nil(cur.status.failed)
        assert.is_nil(env.condition(cur, "Failed"))
        -- a disrupted pod (condition DisruptionTarget) is ignored too
        local p = assert(env.client:get(POD, "default", env.active(j)[1].metadata.name))
        env.finish(p, "Failed", 9)
        p = assert(env.client:get(POD, "default", p.metadata.name))
        p.status.conditions = { { type = "DisruptionTarget", status = "True", reason = "DeletionByTest" } }
        assert(env.client:update_status(POD, p))
        env.settle()
        loop.sleep(700)
        env.settle()
        assert.is_nil(env.job("pfp-ignore").status.failed)
        assert.are.equal(1, #env.active(j))
        -- exit 9 without the condition is counted; two counted > backoffLimit 1
        env.finish(env.active(j)[1], "Failed", 9)
        env.settle()
        loop.sleep(900)
        env.settle()
        assert.are.equal(1, env.job("pfp-ignore").status.failed)
        env.finish(env.active(j)[1], "Failed", 9)
        env.settle()
        cur = env.job("pfp-ignore")
        assert.are.equal(2, cur.status.failed)
        assert.are.equal("BackoffLimitExceeded", env.condition(cur, "Failed").reason)
      end)
    end)
  end)

  describe("Indexed Jobs", function()
    local function index_of(p) return p.metadata.annotations["batch.kubernetes.io/job-completion-index"] end
    local function by_index(env, j)
      local out = {}
      for _, p in ipairs(env.active(j)) do out[index_of(p)] = p end
      return out
    end

    it("successPolicy: the Job completes once the named indexes succeeded", function()
      with_api(function(env)
        local j = assert(env.client:create(JOB, job("sp", { completionMode = "Indexed", completions = 3,
          parallelism = 3, successPolicy = { rules = { { succeededIndexes = "0", succeededCount = 1 } } } }, "Never")))
        env.settle()
        local act = by_index(env, j)
        env.finish(act["0"], "Succeeded")
        env.settle()
        local cur = env.job("sp")
        local met, done = env.condition(cur, "SuccessCriteriaMet"), env.condition(cur, "Complete")
        assert.are.same({ "SuccessPolicy", "Matched rules at index 0" }, { met.reason, met.message })
        assert.are.same({ "SuccessPolicy", "Matched rules at index 0" }, { done.reason, done.message })
        assert.are.equal("0", cur.status.completedIndexes)
        assert.are.equal(0, #env.active(j)) -- the other indexes' pods were ended
      end)
    end)

    it("backoffLimitPerIndex: an index fails alone, its pods carry the failure count", function()
      with_api(function(env)
        local j = assert(env.client:create(JOB, job("bpi", { completionMode = "Indexed", completions = 2,
          parallelism = 2, backoffLimitPerIndex = 1 }, "Never")))
        assert.are.equal(2147483647, j.spec.backoffLimit)
        env.settle()
        local act = by_index(env, j)
        assert.are.equal("0", act["0"].metadata.annotations["batch.kubernetes.io/job-index-failure-count"])
        env.finish(act["0"], "Failed")
        env.settle()
        loop.sleep(300) -- this index's back-off (0.2 s here)
        env.settle()
        act = by_index(env, j)
        assert.truthy(act["0"], "index 0 is retried")
        assert.are.equal("1", act["0"].metadata.annotations["batch.kubernetes.io/job-index-failure-count"])
        env.finish(act["0"], "Failed")
        env.settle()
        local cur = env.job("bpi")
        assert.are.equal("0", cur.status.failedIndexes)
        assert.is_nil(env.condition(cur, "Failed")) -- index 1 still runs
        assert.is_nil(by_index(env, j)["0"])
        env.finish(by_index(env, j)["1"], "Succeeded")
        env.settle()
        cur = env.job("bpi")
        assert.are.same({ "FailedIndexes", "Job has failed indexes" },
          { env.condition(cur, "Failed").reason, env.condition(cur, "Failed").message })
        assert.are.equal("1", cur.status.completedIndexes)
        assert.are.equal(2, cur.status.failed)
      end)
    end)

    it("FailIndex and maxFailedIndexes: too many failed indexes fail the Job", function()
      with_api(function(env)
        local j = assert(env.client:create(JOB, job("fi", { completionMode = "Indexed", completions = 3,
          parallelism = 3, backoffLimitPerIndex = 5, maxFailedIndexes = 0,
          podFailurePolicy = { rules = { { action = "FailIndex", onExitCodes = { operator = "In", values = { 7 } } } } },
        }, "Never")))
        env.settle()
        env.finish(by_index(env, j)["2"], "Failed", 7)
        env.settle()
        local cur = env.job("fi")
        assert.are.equal("2", cur.status.failedIndexes)
        assert.are.same({ "MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of failed indexes" },
          { env.condition(cur, "Failed").reason, env.condition(cur, "Failed").message })
        assert.are.equal(0, #env.active(j))
      end)
    end)
  end)
end)
