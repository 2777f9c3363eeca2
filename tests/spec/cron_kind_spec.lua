-- The batch/v1 CronJob kind through the real API stack in process:
-- SetDefaults_CronJob, Kubernetes' validation messages (schedule parse
-- errors, TZ in the schedule, timeZone, 52-character names, the job
-- template's restartPolicy), the TZ grandfathering on update, the
-- batch/v1beta1 alias (the chapter's manifest) stored as batch/v1, and
-- kubectl 1.32's table columns.
require("moonlet_core")
local json = require("moonlet.json")
local yaml = require("moonlet.yaml")
local stack = require("api_stack")
local fake = require("fake_client") -- for fake.run only

local CJ = "batch/v1/CronJob"

local function cj(name, schedule, extra)
  local obj = {
    apiVersion = "batch/v1", kind = "CronJob", metadata = { name = name },
    spec = { schedule = schedule, jobTemplate = { spec = { template = { spec = {
      restartPolicy = "OnFailure", containers = { { name = "main", image = "idealism/batch-job" } } } } } } },
  }
  for k, v in pairs(extra or {}) do obj.spec[k] = v end
  return obj
end

local function rejected(client, obj)
  local res, st = client:create(CJ, obj)
  assert.is_nil(res, "accepted")
  assert.are.equal(422, st.code)
  return st.message
end

describe("batch/v1 CronJob kind", function()
  it("defaults as SetDefaults_CronJob does", function()
    fake.run(function()
      local c = stack.new().client
      local obj = assert(c:create(CJ, cj("d", "*/5 * * * *")))
      assert.are.same({ "Allow", false, 3, 1 }, { obj.spec.concurrencyPolicy, obj.spec.suspend,
        obj.spec.successfulJobsHistoryLimit, obj.spec.failedJobsHistoryLimit })
      assert.is_nil(obj.spec.startingDeadlineSeconds)
      assert.are.equal("ClusterFirst", obj.spec.jobTemplate.spec.template.spec.dnsPolicy)
      assert.are.equal(1, obj.metadata.generation)
    end)
  end)

  it("rejects what Kubernetes rejects, in its words", function()
    fake.run(function()
      local c = stack.new().client
      assert.are.equal('CronJob.batch "a" is invalid: spec.schedule: Invalid value: "xyz": '
        .. 'expected exactly 5 fields, found 1: [xyz]', rejected(c, cj("a", "xyz")))
      assert.are.equal('CronJob.batch "a" is invalid: spec.schedule: Invalid value: "60 * * * *": '
        .. 'end of range (60) above maximum (59): 60', rejected(c, cj("a", "60 * * * *")))
      assert.are.equal('CronJob.batch "a" is invalid: spec.schedule: Invalid value: "TZ=UTC 0 * * * *": '
        .. 'cannot use TZ or CRON_TZ in schedule, use timeZone field instead', rejected(c, cj("a", "TZ=UTC 0 * * * *")))
      assert.are.equal('CronJob.batch "a" is invalid: spec.schedule: Required value',
        rejected(c, cj("a", "")))
      assert.are.equal('CronJob.batch "a" is invalid: spec.timeZone: Invalid value: "Mars/Olympus": '
        .. 'unknown time zone Mars/Olympus', rejected(c, cj("a", "@hourly", { timeZone = "Mars/Olympus" })))
      assert.are.equal('CronJob.batch "a" is invalid: spec.timeZone: Invalid value: "": '
        .. 'timeZone must be nil or non-empty string', rejected(c, cj("a", "@hourly", { timeZone = "" })))
      assert.truthy(rejected(c, cj("a", "@hourly", { timeZone = "Local" })):find(
        "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones", 1, true))
      assert.are.equal('CronJob.batch "a" is invalid: spec.concurrencyPolicy: Unsupported value: "Sometimes": '
        .. 'supported values: "Allow", "Forbid", "Replace"',
        rejected(c, cj("a", "@hourly", { concurrencyPolicy = "Sometimes" })))
      local long = string.rep("x", 53)
      assert.are.equal('CronJob.batch "' .. long .. '" is invalid: metadata.name: Invalid value: "' .. long
        .. '": must be no more than 52 characters', rejected(c, cj(long, "@hourly")))
      assert(c:create(CJ, cj(string.rep("y", 52), "@hourly")))
      local always = cj("a", "@hourly")
      always.spec.jobTemplate.spec.template.spec.restartPolicy = "Always"
      assert.are.equal('CronJob.batch "a" is invalid: spec.jobTemplate.spec.template.spec.restartPolicy: '
        .. 'Unsupported value: "Always": supported values: "OnFailure", "Never"', rejected(c, always))
      local unset = cj("a", "@hourly")
      unset.spec.jobTemplate.spec.template.spec.restartPolicy = nil
      assert.truthy(rejected(c, unset):find('restartPolicy: Unsupported value: "Always"', 1, true))
      assert.truthy(rejected(c, cj("a", "@hourly", { startingDeadlineSeconds = -1 })):find(
        "spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0", 1, true))
      -- accepted forms
      for _, s in ipairs({ "* * * * ?", "@every 90s", "0,15,30,45 * * * *", "30 6-16/4 * * mon-fri", "@yearly" }) do
        assert(c:create(CJ, cj("ok-" .. tostring(#s), s, { timeZone = "America/New_York" })), s)
        assert(c:delete(CJ, "default", "ok-" .. tostring(#s)))
      end
    end)
  end)

  it("keeps a grandfathered TZ schedule on update, but never adds one", function()
    fake.run(function()
      local env = stack.new()
      local c = env.client
      local obj = assert(c:create(CJ, cj("tz", "0 * * * *")))
      obj.spec.schedule = "TZ=UTC 0 * * * *"
      local res, st = c:update(CJ, obj)
      assert.is_nil(res)
      assert.truthy(st.message:find("cannot use TZ or CRON_TZ in schedule", 1, true))
      -- an old object stored before the rule (written to the store directly)
      local stored = env.store:get("batch/cronjobs", "default", "tz")
      stored.spec.schedule = "CRON_TZ=UTC 0 * * * *"
      assert(env.store:update("batch/cronjobs", stored, {}))
      local cur = assert(c:get(CJ, "default", "tz"))
      cur.spec.suspend = true
      assert(c:update(CJ, cur))
      cur = assert(c:get(CJ, "default", "tz"))
      cur.spec.timeZone = "UTC"
      res, st = c:update(CJ, cur)
      assert.is_nil(res)
      assert.truthy(st.message:find("cannot use both timeZone field and TZ or CRON_TZ in schedule", 1, true))
    end)
  end)

  it("accepts the chapter's batch/v1beta1 manifest and stores it as batch/v1", function()
    fake.run(function()
      local c = stack.new().client
      -- the chapter's file, as the book prints it
      local f = assert(io.open((os.getenv("ML_SRC") or ".") .. "/examples/chapter/cronjob.yaml", "rb"))
      local manifest = f:read("a")
      f:close()
      local obj = assert(yaml.decode(manifest))
      local res = assert(c:create("batch/v1beta1/CronJob", obj))
      assert.are.equal("batch/v1", res.apiVersion)
      local got = assert(c:get(CJ, "default", "batch-job-every-fifteen-minutes"))
      assert.are.equal(15, got.spec.startingDeadlineSeconds)
      assert.are.equal("Allow", got.spec.concurrencyPolicy)
      -- the table kubectl 1.32 prints
      local t = assert(c:table(CJ, { namespace = "default" }))
      local names = {}
      for i, col in ipairs(t.columnDefinitions) do names[i] = col.name end
      assert.are.same({ "Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age", "Containers",
        "Images", "Selector" }, names)
      local cells = t.rows[1].cells
      assert.are.same({ "batch-job-every-fifteen-minutes", "0,15,30,45 * * * *", "<none>", "False", 0, "<none>" },
        { cells[1], cells[2], cells[3], cells[4], cells[5], cells[6] })
      assert.are.same({ "main", "idealism/batch-job", "<none>" }, { cells[8], cells[9], cells[10] })
      -- with a zone and a last schedule time
      got.spec.timeZone = "Europe/Berlin"
      assert(c:update(CJ, got))
      got = assert(c:get(CJ, "default", "batch-job-every-fifteen-minutes"))
      got.status = { lastScheduleTime = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - 130) }
      assert(c:update_status(CJ, got))
      cells = assert(c:table(CJ, { namespace = "default" })).rows[1].cells
      assert.are.equal("Europe/Berlin", cells[3])
      assert.truthy(cells[6]:match("^2m1%ds$"), cells[6])
      assert.is_nil(json.null == cells[6] or nil)
    end)
  end)
end)
