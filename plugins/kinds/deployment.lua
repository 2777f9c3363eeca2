-- apps/v1 Deployment: schema (the pod template through moonlet.api.podspec),
-- SetDefaults_Deployment plus a selector defaulted from the template labels
-- when a manifest leaves it out (the chapter relies on it), ValidateDeployment
-- and ValidateDeploymentUpdate (selector matching the template, immutable;
-- strategy and int-or-percent rules), kubectl's printer columns and the
-- `scale` subresource (autoscaling/v1 Scale).
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local validation = require("moonlet.validation")
local json = require("moonlet.json")
local podspec = require("moonlet.api.podspec")
local dutil = require("moonlet.controller.deployment_util")

local workload = require("moonlet.api.workload")

local LabelSelector = workload.LabelSelector

local Condition = S.struct("v1.DeploymentCondition", {
  type = S.string, status = S.string, lastUpdateTime = S.time, lastTransitionTime = S.time,
  reason = S.string, message = S.string,
})

local Spec = S.struct("v1.DeploymentSpec", {
  replicas = S.integer, selector = LabelSelector,
  template = S.struct("v1.PodTemplateSpec", { metadata = S.ObjectMeta, spec = podspec.schema }),
  strategy = S.struct("v1.DeploymentStrategy", {
    type = S.string,
    rollingUpdate = S.struct("v1.RollingUpdateDeployment", { maxUnavailable = S.intstr, maxSurge = S.intstr }),
  }),
  minReadySeconds = S.integer, revisionHistoryLimit = S.integer, paused = S.boolean,
  progressDeadlineSeconds = S.integer,
})

local Status = S.struct("v1.DeploymentStatus", {
  observedGeneration = S.int64, replicas = S.integer, updatedReplicas = S.integer,
  readyReplicas = S.integer, availableReplicas = S.integer, unavailableReplicas = S.integer,
  terminatingReplicas = S.integer, conditions = S.list(Condition), collisionCount = S.integer,
})

local function is_table(v) return type(v) == "table" end
local function given(v) return v ~= nil and v ~= json.null end

local nonneg = workload.nonneg

-- {====== validation (K: pkg/apis/apps/validation/validation.go)

local PERCENT_MSG = validation.regex_error(
  "a valid percent string must be a numeric string followed by an ending '%'", "[0-9]+%", "1%", "93%")

-- ValidatePositiveIntOrPercent.
local function int_or_percent(v, path, errs)
  if type(v) == "string" then
    if not v:match("^[0-9]+%%$") then errs:add(validation.invalid(path, v, PERCENT_MSG)) end
  elseif math.type(v) == "integer" then
    nonneg(v, path, errs)
  elseif given(v) then
    errs:add(validation.invalid(path, v, "must be an integer or percentage (e.g '5%')"))
  end
end

-- getIntOrPercentValue: the number before the %, or the integer.
local function int_or_percent_value(v)
  if type(v) == "string" then return math.tointeger(tonumber(v:match("^(%d+)%%$") or "")) end
  if math.type(v) == "integer" then return v end
  return nil
end

local function validate_strategy(st, errs)
  if not is_table(st) then return end
  local t = st.type
  if t == "Recreate" then
    if given(st.rollingUpdate) then
      errs:add(validation.forbidden("spec.strategy.rollingUpdate",
        "may not be specified when strategy `type` is 'Recreate'"))
    end
  elseif t == "RollingUpdate" then
    local ru = st.rollingUpdate
    if not is_table(ru) then
      errs:add(validation.required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"))
      return
    end
    int_or_percent(ru.maxUnavailable, "spec.strategy.rollingUpdate.maxUnavailable", errs)
    int_or_percent(ru.maxSurge, "spec.strategy.rollingUpdate.maxSurge", errs)
    if int_or_percent_value(ru.maxUnavailable) == 0 and int_or_percent_value(ru.maxSurge) == 0 then
      errs:add(validation.invalid("spec.strategy.rollingUpdate.maxUnavailable", ru.maxUnavailable,
        "may not be 0 when `maxSurge` is 0"))
    end
    if type(ru.maxUnavailable) == "string" then
      local n = int_or_percent_value(ru.maxUnavailable)
      if n and n > 100 then
        errs:add(validation.invalid("spec.strategy.rollingUpdate.maxUnavailable", ru.maxUnavailable,
          "must not be greater than 100%"))
      end
    end
  else
    errs:add(validation.not_supported("spec.strategy.type", t or "", { "Recreate", "RollingUpdate" }))
  end
end

-- ValidateDeploymentSpec.
local function validate_spec(spec, errs)
  nonneg(spec.replicas, "spec.replicas", errs)
  local sel = workload.validate_selector(spec, errs, "deployment")
  -- ValidatePodTemplateSpecForReplicaSet: Deployments use the same rules.
  if sel or not is_table(spec.selector) then workload.validate_template(spec.template, sel, errs, "ReplicaSet") end
  validate_strategy(spec.strategy, errs)
  nonneg(spec.minReadySeconds, "spec.minReadySeconds", errs)
  nonneg(spec.revisionHistoryLimit, "spec.revisionHistoryLimit", errs)
  local pds = spec.progressDeadlineSeconds
  if math.type(pds) then
    nonneg(pds, "spec.progressDeadlineSeconds", errs)
    if pds <= (math.type(spec.minReadySeconds) and spec.minReadySeconds or 0) then
      errs:add(validation.invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"))
    end
  end
end

-- }======


return {
  group = "apps", version = "v1", kind = "Deployment", plural = "deployments", singular = "deployment",
  short_names = { "deploy" }, namespaced = true, categories = { "all" },
  status_subresource = true,
  generation = true,
  subresources = { "status", "scale" },
  subresource_handlers = { scale = require("moonlet.api.scale").handler },
  schema = S.kind("Deployment", { spec = Spec, status = Status }),

  prepare_create = function(obj)
    obj.status = nil
  end,

  -- SetDefaults_Deployment (apps/v1), the pod template's defaults, and the
  -- selector taken from the template labels when none was given.
  defaults = function(obj)
    obj.spec = is_table(obj.spec) and obj.spec or {}
    local spec = obj.spec
    if not given(spec.replicas) then spec.replicas = 1 end
    if not given(spec.selector) and is_table(spec.template) and is_table(spec.template.metadata)
      and is_table(spec.template.metadata.labels) and next(spec.template.metadata.labels) then
      spec.selector = { matchLabels = json.copy(spec.template.metadata.labels) }
    end
    if not is_table(spec.strategy) then spec.strategy = {} end
    local st = spec.strategy
    if not given(st.type) or st.type == "" then st.type = "RollingUpdate" end
    if st.type == "RollingUpdate" then
      if not is_table(st.rollingUpdate) then st.rollingUpdate = {} end
      if not given(st.rollingUpdate.maxUnavailable) then st.rollingUpdate.maxUnavailable = "25%" end
      if not given(st.rollingUpdate.maxSurge) then st.rollingUpdate.maxSurge = "25%" end
    end
    if not given(spec.revisionHistoryLimit) then spec.revisionHistoryLimit = 10 end
    if not given(spec.progressDeadlineSeconds) then spec.progressDeadlineSeconds = 600 end
    if is_table(spec.template) then
      spec.template.spec = is_table(spec.template.spec) and spec.template.spec or {}
      podspec.defaults(spec.template.spec, {})
    end
  end,

  validate = function(obj, errs)
    validate_spec(obj.spec or {}, errs)
  end,

  validate_update = function(obj, old, errs)
    local ns, os_ = (obj.spec or {}).selector, (old.spec or {}).selector
    if not dutil.same(ns, os_) then
      errs:add(validation.invalid("spec.selector", ns or json.null, "field is immutable"))
    end
  end,

  columns = {
    columns.name(),
    { name = "Ready", type = "string", description = "Number of the pod with ready state",
      value = function(d)
        return string.format("%d/%d", (d.status or {}).readyReplicas or 0, (d.spec or {}).replicas or 0)
      end },
    { name = "Up-to-date", type = "string",
      description = "Total number of non-terminated pods targeted by this deployment that have the desired "
        .. "template spec.",
      value = function(d) return (d.status or {}).updatedReplicas or 0 end },
    { name = "Available", type = "string",
      description = "Total number of available pods (ready for at least minReadySeconds) targeted by this "
        .. "deployment.",
      value = function(d) return (d.status or {}).availableReplicas or 0 end },
    columns.age(),
    table.unpack(workload.wide_columns(workload.template_pod_spec, workload.spec_selector,
      "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the "
        .. "ones affected by this deployment.")),
  },
}
