-- The batch/v1 Job kind on the in-process API: defaults, the generated
-- selector and job labels, Kubernetes' validation messages (restart
-- policy, immutable template and completions, selectors), kubectl 1.32's
-- columns, and the orphaning default of a DELETE without a policy.
require("moonlet_core")
local json = require("moonlet.json")
local fake = require("fake_client") -- for fake.run only

local JOB = "batch/v1/Job"

local function job(name, spec)
  local obj = {
    apiVersion = "batch/v1", kind = "Job", metadata = { name = name, namespace = "default" },
    spec = {
      template = { metadata = { labels = { app = name } },
        spec = { restartPolicy = "OnFailure", containers = { { name = "main", image = "idealism/batch-job" } } } },
    },
  }
  for k, v in pairs(spec or {}) do obj.spec[k] = v end
  return obj
end

local function with_stack(fn)
  fake.run(function()
    local s = require("api_stack").new()
    local ok, err = pcall(fn, s)
    require("moonlet.api.handlers").stop_watches()
    s.store:close()
    if not ok then error(err, 0) end
  end)
end

local function table_of(s, path)
  local res = s.transport({ method = "GET", path = path,
    headers = { Accept = "application/json;as=Table;v=v1;g=meta.k8s.io" } })
  assert.are.equal(200, res.status, res.body)
  return json.decode(res.body)
end

describe("job kind", function()
  it("defaults, generates the selector and labels once the uid exists", function()
    with_stack(function(s)
      local j = assert(s.client:create(JOB, job("batch-job")))
      local uid = j.metadata.uid
      assert.truthy(uid and #uid == 36)
      local spec = j.spec
      assert.are.same({ 1, 1, 6, "NonIndexed", false, false, "TerminatingOrFailed" },
        { spec.completions, spec.parallelism, spec.backoffLimit, spec.completionMode, spec.suspend,
          spec.manualSelector, spec.podReplacementPolicy })
      assert.are.same({ matchLabels = { ["batch.kubernetes.io/controller-uid"] = uid } }, spec.selector)
      local want = { app = "batch-job", ["batch.kubernetes.io/controller-uid"] = uid,
        ["batch.kubernetes.io/job-name"] = "batch-job", ["controller-uid"] = uid, ["job-name"] = "batch-job" }
      assert.are.same(want, spec.template.metadata.labels)
      -- labels copied from the template share the generated ones
      assert.are.same(want, j.metadata.labels)
      assert.are.equal(1, j.metadata.generation)
      -- the stored object is the one answered
      local got = assert(s.client:get(JOB, "default", "batch-job"))
      assert.are.same(j.spec.selector, got.spec.selector)
      assert.are.equal(j.metadata.resourceVersion, got.metadata.resourceVersion)

      -- own labels stay as given; parallelism alone leaves completions unset
      local o = job("queue", { parallelism = 3 })
      o.metadata.labels = { team = "a" }
      local q = assert(s.client:create(JOB, o))
      assert.are.same({ team = "a" }, q.metadata.labels)
      assert.is_nil(q.spec.completions)
      assert.are.equal(3, q.spec.parallelism)
    end)
  end)

  it("validates podFailurePolicy, successPolicy and backoffLimitPerIndex as Kubernetes does", function()
    with_stack(function(s)
      local function rejected(name, spec, policy)
        local o = job(name, spec)
        o.spec.template.spec.restartPolicy = policy or "Never"
        local res, st = s.client:create(JOB, o)
        assert.is_nil(res, name .. " was accepted")
        assert.are.equal(422, st.code)
        return st.message
      end
      local function has(msg, want) assert.truthy(msg:find(want, 1, true), msg) end
      local m = rejected("pfp", { podFailurePolicy = { rules = {
        { action = "FailJob", onExitCodes = { containerName = "other", operator = "In", values = { 0, 5, 5, 2 } } },
        { action = "Retry", onExitCodes = { operator = "Within", values = { 1 } } },
        { action = "FailIndex", onPodConditions = { { type = "Bad Type", status = "Maybe" } } },
        { action = "Ignore" },
      } } })
      has(m, 'spec.podFailurePolicy.rules[0].onExitCodes.containerName: Invalid value: "other": must be one of '
        .. "the container or initContainer names in the pod template")
      has(m, "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator")
      has(m, "spec.podFailurePolicy.rules[0].onExitCodes.values[2]: Duplicate value: 5")
      has(m, "spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: [0,5,5,2]: must be ordered")
      has(m, 'spec.podFailurePolicy.rules[1].action: Unsupported value: "Retry": supported values: "Count", '
        .. '"FailIndex", "FailJob", "Ignore"')
      has(m, 'spec.podFailurePolicy.rules[1].onExitCodes.operator: Unsupported value: "Within"')
      has(m, 'spec.podFailurePolicy.rules[2].action: Invalid value: "FailIndex": requires the backoffLimitPerIndex to be set')
      has(m, 'spec.podFailurePolicy.rules[2].onPodConditions[0].type: Invalid value: "Bad Type"')
      has(m, 'spec.podFailurePolicy.rules[2].onPodConditions[0].status: Unsupported value: "Maybe"')
      has(m, "spec.podFailurePolicy.rules[3]: Invalid value: null: specifying one of OnExitCodes and "
        .. "OnPodConditions is required")
      has(rejected("pfp-onfailure", { podFailurePolicy = { rules = {
        { action = "Count", onExitCodes = { operator = "In", values = { 1 } } } } } }, "OnFailure"),
        'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when '
          .. "podFailurePolicy is specified")

      has(rejected("sp-nonindexed", { successPolicy = { rules = { { succeededCount = 1 } } } }),
        "spec.successPolicy: Invalid value: ")
      m = rejected("sp", { completionMode = "Indexed", completions = 3, successPolicy = { rules = {
        {}, { succeededIndexes = "0-3" }, { succeededIndexes = "2,1" }, { succeededIndexes = "0-1", succeededCount = 3 },
      } } })
      has(m, "spec.successPolicy.rules[0]: Required value: at least one of succeededCount or succeededIndexes must be specified")
      has(m, 'spec.successPolicy.rules[1].succeededIndexes: Invalid value: "0-3": error parsing succeededIndexes: '
        .. 'too large index: "3"')
      has(m, 'error parsing succeededIndexes: non-increasing order, previous: 2, current: 1')
      has(m, "spec.successPolicy.rules[3].succeededCount: Invalid value: 3: must be less than or equal to 2 "
        .. "(the number of indexes in the specified succeededIndexes field)")

      has(rejected("bpi", { backoffLimitPerIndex = 1 }), "spec.backoffLimitPerIndex: Invalid value: 1: requires "
        .. "indexed completion mode")
      m = rejected("mfi", { completionMode = "Indexed", completions = 2, maxFailedIndexes = 3 })
      has(m, "spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified")
      has(m, "spec.maxFailedIndexes: Invalid value: 3: must be less than or equal to completions")

      -- a valid one is accepted, its pattern status defaulted
      local o = job("ok", { completionMode = "Indexed", completions = 2, backoffLimitPerIndex = 0,
        podFailurePolicy = { rules = { { action = "FailIndex", onPodConditions = { { type = "DisruptionTarget" } } } } },
        successPolicy = { rules = { { succeededIndexes = "0,1" } } } })
      o.spec.template.spec.restartPolicy = "Never"
      local res = assert(s.client:create(JOB, o))
      assert.are.equal("True", res.spec.podFailurePolicy.rules[1].onPodConditions[1].status)
      assert.are.equal("Failed", res.spec.podReplacementPolicy)
    end)
  end)

  it("a status PUT carrying only status takes the rest from the stored Job", function()
    with_stack(function(s)
      local j = assert(s.client:create(JOB, job("st")))
      local res = s.transport({ method = "PUT", path = "/apis/batch/v1/namespaces/default/jobs/st/status",
        headers = { ["Content-Type"] = "application/json" },
        body = json.encode({ apiVersion = "batch/v1", kind = "Job",
          metadata = { name = "st", namespace = "default", resourceVersion = j.metadata.resourceVersion },
          status = { active = 1 } }) })
      assert.are.equal(200, res.status, res.body)
      local got = assert(s.client:get(JOB, "default", "st"))
      assert.are.equal(1, got.status.active)
      assert.are.same(j.spec, got.spec)
    end)
  end)

  it("rejects restartPolicy Always and other invalid specs with Kubernetes' messages", function()
    with_stack(function(s)
      local o = job("always")
      o.spec.template.spec.restartPolicy = "Always"
      local res, st = s.client:create(JOB, o)
      assert.is_nil(res)
      assert.are.equal(422, st.code)
      assert.are.equal('Job.batch "always" is invalid: spec.template.spec.restartPolicy: Unsupported value: '
        .. '"Always": supported values: "OnFailure", "Never"', st.message)
      -- omitted: defaulted to Always, so the same error
      o.spec.template.spec.restartPolicy = nil
      res, st = s.client:create(JOB, o)
      assert.is_nil(res)
      assert.truthy(st.message:find('Unsupported value: "Always"', 1, true))

      res, st = s.client:create(JOB, job("neg", { parallelism = -1, backoffLimit = -2 }))
      assert.is_nil(res)
      assert.truthy(st.message:find("spec.parallelism: Invalid value: -1: must be greater than or equal to 0", 1, true))
      assert.truthy(st.message:find("spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0", 1, true))

      -- (both unset default completions to 1, so parallelism is explicit)
      res, st = s.client:create(JOB, job("idx", { completionMode = "Indexed", parallelism = 2 }))
      assert.is_nil(res)
      assert.truthy(st.message:find("spec.completions: Required value: when completion mode is Indexed", 1, true))
      res, st = s.client:create(JOB, job("mode", { completionMode = "Sometimes" }))
      assert.truthy(st.message:find('spec.completionMode: Unsupported value: "Sometimes": supported values: '
        .. '"NonIndexed", "Indexed"', 1, true))

      -- a selector without manualSelector is not the generated one
      res, st = s.client:create(JOB, job("sel", { selector = { matchLabels = { app = "sel" } } }))
      assert.is_nil(res)
      assert.truthy(st.message:find("spec.selector: Invalid value: .*`selector` not auto%-generated"))
      -- with manualSelector it must match the template
      res, st = s.client:create(JOB, job("man", { manualSelector = true, selector = { matchLabels = { app = "x" } } }))
      assert.is_nil(res)
      assert.truthy(st.message:find("`selector` does not match template `labels`", 1, true))
      local m = assert(s.client:create(JOB, job("man", { manualSelector = true,
        selector = { matchLabels = { app = "man" } } })))
      assert.are.same({ app = "man" }, m.spec.template.metadata.labels)
    end)
  end)

  it("keeps the template, completions and selector immutable", function()
    with_stack(function(s)
      local j = assert(s.client:create(JOB, job("imm", { completions = 3 })))
      j.spec.template.spec.containers[1].image = "other"
      local res, st = s.client:update(JOB, j)
      assert.is_nil(res)
      assert.truthy(st.message:find("spec.template: Invalid value: .*: field is immutable"))
      j = assert(s.client:get(JOB, "default", "imm"))
      j.spec.completions = 4
      res, st = s.client:update(JOB, j)
      assert.is_nil(res)
      assert.truthy(st.message:find("spec.completions: Invalid value: 4: field is immutable", 1, true))
      j = assert(s.client:get(JOB, "default", "imm"))
      j.spec.selector.matchLabels.extra = "x"
      res, st = s.client:update(JOB, j)
      assert.is_nil(res)
      assert.truthy(st.message:find("`selector` not auto-generated", 1, true))
      -- parallelism, suspend and the deadline may change
      j = assert(s.client:get(JOB, "default", "imm"))
      j.spec.parallelism, j.spec.suspend, j.spec.activeDeadlineSeconds = 2, true, 30
      assert(s.client:update(JOB, j))
      -- a suspended Job that never started may change scheduling directives
      local sus = assert(s.client:create(JOB, job("sus", { suspend = true })))
      sus.spec.template.spec.nodeSelector = { disk = "ssd" }
      sus.spec.template.metadata.labels.extra = "y"
      assert(s.client:update(JOB, sus))
      -- elastic Indexed Jobs scale completions with parallelism
      local ix = assert(s.client:create(JOB, job("ix", { completionMode = "Indexed", completions = 2, parallelism = 2 })))
      ix.spec.completions, ix.spec.parallelism = 4, 4
      assert(s.client:update(JOB, ix))
      ix = assert(s.client:get(JOB, "default", "ix"))
      ix.spec.completions = 5
      res, st = s.client:update(JOB, ix)
      assert.is_nil(res)
      assert.truthy(st.message:find("spec.completions: Invalid value: 5: can only be modified in tandem with "
        .. "spec.parallelism", 1, true))
    end)
  end)

  it("prints kubectl 1.32's columns", function()
    with_stack(function(s)
      local j = assert(s.client:create(JOB, job("batch-job")))
      assert(s.client:create(JOB, job("multi", { completions = 5, parallelism = 2 })))
      assert(s.client:create(JOB, job("queue", { parallelism = 3 })))
      assert(s.client:create(JOB, job("deadline")))
      local t = table_of(s, "/apis/batch/v1/namespaces/default/jobs")
      local names = {}
      for i, c in ipairs(t.columnDefinitions) do names[i] = c.name .. ":" .. c.priority end
      assert.are.same({ "Name:0", "Status:0", "Completions:0", "Duration:0", "Age:0", "Containers:1", "Images:1",
        "Selector:1" }, names)
      local rows = {}
      for _, r in ipairs(t.rows) do rows[r.cells[1]] = r.cells end
      assert.are.same({ "batch-job", "Running", "0/1", "" }, { table.unpack(rows["batch-job"], 1, 4) })
      assert.are.equal("0/5", rows.multi[3])
      assert.are.equal("0/1 of 3", rows.queue[3])
      assert.are.same({ "main", "idealism/batch-job", "batch.kubernetes.io/controller-uid=" .. j.metadata.uid },
        { table.unpack(rows["batch-job"], 6, 8) })

      -- status drives STATUS, COMPLETIONS and DURATION
      j = assert(s.client:get(JOB, "default", "batch-job"))
      j.status = { startTime = "2020-06-07T22:36:04Z", completionTime = "2020-06-07T22:38:49Z", succeeded = 1,
        conditions = { { type = "Complete", status = "True" } } }
      assert(s.client:update_status(JOB, j))
      local m = assert(s.client:get(JOB, "default", "multi"))
      m.status = { conditions = { { type = "Suspended", status = "True" } } }
      assert(s.client:update_status(JOB, m))
      local q = assert(s.client:get(JOB, "default", "queue"))
      q.status = { startTime = "2020-06-07T22:36:04Z", failed = 7,
        conditions = { { type = "FailureTarget", status = "True" }, { type = "Failed", status = "True" } } }
      assert(s.client:update_status(JOB, q))
      -- kubectl 1.32 shows the interim SuccessCriteriaMet as Running
      local d = assert(s.client:get(JOB, "default", "deadline"))
      d.status = { startTime = "2020-06-07T22:36:04Z", succeeded = 1,
        conditions = { { type = "SuccessCriteriaMet", status = "True" } } }
      assert(s.client:update_status(JOB, d))
      t = table_of(s, "/apis/batch/v1/namespaces/default/jobs")
      rows = {}
      for _, r in ipairs(t.rows) do rows[r.cells[1]] = r.cells end
      assert.are.same({ "Complete", "1/1", "2m45s" }, { table.unpack(rows["batch-job"], 2, 4) })
      assert.are.equal("Suspended", rows.multi[2])
      assert.are.equal("Failed", rows.queue[2])
      assert.are.equal("Running", rows.deadline[2])
      assert.truthy(rows.queue[4]:match("^%d+y")) -- still counting: no completionTime
    end)
  end)

  it("orphans pods on a DELETE without a propagation policy", function()
    with_stack(function(s)
      local def = require("moonlet.api.kinds").by_kind("batch/v1", "Job")
      assert.are.equal("Orphan", def.default_propagation)
      assert.are.equal("child pods are preserved by default when jobs are deleted; set propagationPolicy=Background "
        .. "to remove them or set propagationPolicy=Orphan to suppress this warning", def.default_propagation_warning)
    end)
  end)
end)
