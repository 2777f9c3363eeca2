-- The batch CronJob kind definition per served version: batch/v1 and the
-- chapter's batch/v1beta1 as an alias of the same stored kind (writes are
-- stored as batch/v1). Schema, SetDefaults_CronJob, Kubernetes' validation
-- (schedule, timeZone, 52-character names, the job template like a Job's)
-- and kubectl 1.32's printCronJob columns.
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local validation = require("moonlet.validation")
local selector = require("moonlet.selector")
local json = require("moonlet.json")
local podspec = require("moonlet.api.podspec")
local duration = require("moonlet.printers.duration")
local schedule = require("moonlet.cronjob_schedule")

local M = {}

-- 63 (DNS-1035 label) minus the 11 characters of "-<unix minutes>".
M.MAX_NAME = 52
M.POLICIES = { "Allow", "Forbid", "Replace" }

local function is_table(v) return type(v) == "table" end
local function set(v) return v ~= nil and v ~= json.null end

local workload = require("moonlet.api.workload")
local jobspec = require("moonlet.api.jobspec")

local JobSpec = jobspec.schema

local ObjectReference = S.struct("v1.ObjectReference", {
  kind = S.string, namespace = S.string, name = S.string, uid = S.string, apiVersion = S.string,
  resourceVersion = S.string, fieldPath = S.string,
})

local Spec = S.struct("v1.CronJobSpec", {
  schedule = S.string, timeZone = S.string, startingDeadlineSeconds = S.int64,
  concurrencyPolicy = S.string, suspend = S.boolean,
  jobTemplate = S.struct("v1.JobTemplateSpec", { metadata = S.ObjectMeta, spec = JobSpec }),
  successfulJobsHistoryLimit = S.integer, failedJobsHistoryLimit = S.integer,
})

local Status = S.struct("v1.CronJobStatus", {
  active = S.list(ObjectReference), lastScheduleTime = S.time, lastSuccessfulTime = S.time,
})

local function add_all(errs, list)
  for _, e in ipairs(list) do errs:add(e) end
end

local function nonneg(v, path, errs)
  if math.type(v) and v < 0 then
    errs:add(validation.invalid(path, v, "must be greater than or equal to 0"))
  end
end

-- ValidateJobTemplateSpec: the Job spec rules a template can break.
local function validate_job_template(jt, errs)
  local path = "spec.jobTemplate.spec"
  local meta = is_table(jt) and jt.metadata or nil
  if is_table(meta) then
    if meta.labels ~= nil then validation.validate_labels(meta.labels, "spec.jobTemplate.metadata.labels", errs) end
    if meta.annotations ~= nil then
      validation.validate_annotations(meta.annotations, "spec.jobTemplate.metadata.annotations", errs)
    end
  end
  local js = is_table(jt) and is_table(jt.spec) and jt.spec or {}
  if js.manualSelector == true then
    if not is_table(js.selector) then
      errs:add(validation.required(path .. ".selector", ""))
    else
      local _, serrs = selector.from_table(js.selector, path .. ".selector")
      if serrs then add_all(errs, serrs:list()) end
    end
  end
  jobspec.validate(js, path, errs)
end

-- ValidateCronJobSpec (+ the create-only name and TZ rules).
local function validate_spec(obj, old, errs)
  local spec = is_table(obj.spec) and obj.spec or {}
  local tzone = set(spec.timeZone) and spec.timeZone or nil
  -- TZ in the schedule is grandfathered only when the old object had it.
  local allow_tz = old ~= nil and type((old.spec or {}).schedule) == "string"
    and old.spec.schedule:find("TZ", 1, true) ~= nil
  add_all(errs, schedule.validate_schedule(set(spec.schedule) and spec.schedule or "", tzone, allow_tz))
  nonneg(spec.startingDeadlineSeconds, "spec.startingDeadlineSeconds", errs)
  local cp = spec.concurrencyPolicy
  if not set(cp) or cp == "" then
    errs:add(validation.required("spec.concurrencyPolicy", ""))
  elseif cp ~= "Allow" and cp ~= "Forbid" and cp ~= "Replace" then
    errs:add(validation.not_supported("spec.concurrencyPolicy", cp, M.POLICIES))
  end
  add_all(errs, schedule.validate_time_zone(tzone))
  nonneg(spec.successfulJobsHistoryLimit, "spec.successfulJobsHistoryLimit", errs)
  nonneg(spec.failedJobsHistoryLimit, "spec.failedJobsHistoryLimit", errs)
  validate_job_template(spec.jobTemplate, errs)
end

-- The Job template's pod spec and selector, for the wide columns.
local function job_spec(cj)
  local spec = is_table(cj.spec) and cj.spec or {}
  return is_table(spec.jobTemplate) and is_table(spec.jobTemplate.spec) and spec.jobTemplate.spec or {}
end

M.columns = {
  columns.name(),
  { name = "Schedule", type = "string", description = "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
    value = function(cj) return (cj.spec or {}).schedule or "" end },
  { name = "Timezone", type = "string",
    description = "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones.",
    value = function(cj)
      local z = (cj.spec or {}).timeZone
      return set(z) and z or "<none>"
    end },
  { name = "Suspend", type = "boolean",
    description = "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.",
    value = function(cj)
      local s = (cj.spec or {}).suspend
      if s == true then return "True" elseif s == false then return "False" end
      return "<unset>"
    end },
  { name = "Active", type = "integer", description = "A list of pointers to currently running jobs.",
    value = function(cj) return #(((cj.status or {}).active) or {}) end },
  { name = "Last Schedule", type = "string",
    description = "Information when was the last time the job was successfully scheduled.",
    value = function(cj, now)
      local t = (cj.status or {}).lastScheduleTime
      if not set(t) then return "<none>" end
      return duration.since(t, now)
    end },
  columns.age(),
  table.unpack(workload.wide_columns(
    function(cj) return workload.template_pod_spec({ spec = job_spec(cj) }) end,
    function(cj) return job_spec(cj).selector end,
    "A label query over pods that should match the pod count.")),
}

--- SetDefaults_CronJob plus the template's pod defaults.
function M.defaults(obj)
  obj.spec = is_table(obj.spec) and obj.spec or {}
  local spec = obj.spec
  if not set(spec.concurrencyPolicy) or spec.concurrencyPolicy == "" then spec.concurrencyPolicy = "Allow" end
  if not set(spec.suspend) then spec.suspend = false end
  if not set(spec.successfulJobsHistoryLimit) then spec.successfulJobsHistoryLimit = 3 end
  if not set(spec.failedJobsHistoryLimit) then spec.failedJobsHistoryLimit = 1 end
  local jt = spec.jobTemplate
  if is_table(jt) and is_table(jt.spec) and is_table(jt.spec.template) then
    jt.spec.template.spec = is_table(jt.spec.template.spec) and jt.spec.template.spec or {}
    podspec.defaults(jt.spec.template.spec, {})
  end
end

--- The kind definition for one served version ("v1" or "v1beta1").
function M.def(version)
  local def = {
    group = "batch", version = version, kind = "CronJob", plural = "cronjobs", singular = "cronjob",
    short_names = { "cj" }, namespaced = true, categories = { "all" },
    status_subresource = true, generation = true,
    schema = S.kind("CronJob", { spec = Spec, status = Status }),
    prepare_create = function(obj)
      obj.status = nil
      -- One stored version: an alias version's create is stored as batch/v1.
      obj.apiVersion = "batch/v1"
    end,
    -- An update through the alias version is stored as batch/v1 too.
    prepare_update = function(obj) obj.apiVersion = "batch/v1" end,
    defaults = M.defaults,
    validate = function(obj, errs, old)
      if old == nil and type((obj.metadata or {}).name) == "string" and #obj.metadata.name > M.MAX_NAME then
        errs:add(validation.invalid("metadata.name", obj.metadata.name,
          string.format("must be no more than %d characters", M.MAX_NAME)))
      end
      validate_spec(obj, old, errs)
    end,
    columns = M.columns,
  }
  return def
end

return M
