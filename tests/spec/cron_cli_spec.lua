-- `moonlet create job NAME --from=cronjob/NAME` (kubectl's create job) and
-- `moonlet get cronjobs` against the real API stack in process.
require("moonlet_core")
local stack = require("api_stack")
local kinds = require("moonlet.api.kinds")
local fake = require("fake_client") -- for fake.run only

local CJ = "batch/v1/CronJob"

local function env()
  local e = stack.new()
  if not kinds.by_kind("batch/v1/Job") then -- the Job plugin's stand-in when absent
    kinds.register({ group = "batch", version = "v1", kind = "Job", plural = "jobs", status_subresource = true },
      "test")
  end
  function e.run(argv)
    local out, err = {}, {}
    local rc = require("moonlet.cli").main(argv, {
      out = function(s) out[#out + 1] = s end, err = function(s) err[#err + 1] = s end,
      getenv = function() return nil end, client = e.client })
    return rc, table.concat(out), table.concat(err)
  end
  return e
end

local function cronjob()
  return { apiVersion = "batch/v1", kind = "CronJob",
    metadata = { name = "nightly", namespace = "default" },
    spec = { schedule = "0 3 * * *", jobTemplate = {
      metadata = { labels = { team = "ops" }, annotations = { note = "from-template" } },
      spec = { backoffLimit = 2, template = { spec = { restartPolicy = "Never",
        containers = { { name = "main", image = "idealism/batch-job" } } } } } } } }
end

describe("moonlet create job --from=cronjob/NAME", function()
  it("instantiates the job template as kubectl does", function()
    fake.run(function()
      local e = env()
      local cj = assert(e.client:create(CJ, cronjob()))
      local rc, out, err = e.run({ "create", "job", "manual-1", "--from=cronjob/nightly" })
      assert.are.equal(0, rc, err)
      assert.are.equal("job.batch/manual-1 created\n", out)
      local job = assert(e.client:get("batch/v1/Job", "default", "manual-1"))
      assert.are.equal("manual", job.metadata.annotations["cronjob.kubernetes.io/instantiate"])
      assert.are.equal("from-template", job.metadata.annotations.note)
      assert.are.equal("ops", job.metadata.labels.team)
      assert.are.equal(2, job.spec.backoffLimit)
      assert.are.equal("idealism/batch-job", job.spec.template.spec.containers[1].image)
      local ref = job.metadata.ownerReferences[1]
      assert.are.same({ "batch/v1", "CronJob", "nightly", cj.metadata.uid, true },
        { ref.apiVersion, ref.kind, ref.name, ref.uid, ref.controller })
      assert.is_nil(ref.blockOwnerDeletion)
      -- the short and plural names work too; -o name
      rc, out = e.run({ "create", "job", "manual-2", "--from", "cj/nightly", "-o", "name" })
      assert.are.equal(0, rc)
      assert.are.equal("job.batch/manual-2\n", out)
    end)
  end)

  it("reports kubectl's errors", function()
    fake.run(function()
      local e = env()
      local rc, _, err = e.run({ "create", "job", "x", "--from=cronjob/nope" })
      assert.are.equal(1, rc)
      assert.are.equal('Error from server (NotFound): cronjobs.batch "nope" not found\n', err)
      rc, _, err = e.run({ "create", "job", "x" })
      assert.are.equal(1, rc)
      assert.truthy(err:find("either --image or --from must be specified", 1, true))
      rc, _, err = e.run({ "create", "job" })
      assert.are.equal(1, rc)
      assert.truthy(err:find("exactly one NAME is required, got 0", 1, true))
      rc, _, err = e.run({ "create", "job", "x", "--from=configmap/y" })
      assert.are.equal(1, rc)
      assert.truthy(err:find("unknown object type", 1, true))
    end)
  end)

  it("creates a one-container job from --image", function()
    fake.run(function()
      local e = env()
      local rc, out, err = e.run({ "create", "job", "once", "--image=idealism/batch-job" })
      assert.are.equal(0, rc, err)
      assert.are.equal("job.batch/once created\n", out)
      local job = assert(e.client:get("batch/v1/Job", "default", "once"))
      assert.are.same({ "once", "idealism/batch-job", "Never" }, { job.spec.template.spec.containers[1].name,
        job.spec.template.spec.containers[1].image, job.spec.template.spec.restartPolicy })
    end)
  end)

  it("get cronjobs prints kubectl 1.32's columns", function()
    fake.run(function()
      local e = env()
      assert(e.client:create(CJ, cronjob()))
      local rc, out, err = e.run({ "get", "cronjobs" })
      assert.are.equal(0, rc, err)
      local header, row = out:match("^([^\n]*)\n([^\n]*)\n$")
      assert.are.equal("NAME      SCHEDULE    TIMEZONE   SUSPEND   ACTIVE   LAST SCHEDULE   AGE", header)
      assert.truthy(row:match("^nightly   0 3 %* %* %*   <none>     False     0        <none>          %d+s$"), row)
    end)
  end)
end)
