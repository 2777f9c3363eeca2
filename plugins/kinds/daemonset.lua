-- apps/v1 DaemonSet: schema (pod template through moonlet.api.podspec),
-- SetDefaults_DaemonSet (RollingUpdate 1/0, revisionHistoryLimit 10), the
-- registry strategy's template generation annotation, ValidateDaemonSet /
-- ValidateDaemonSetUpdate (selector matching the template, immutable;
-- restartPolicy Always; update strategy) and kubectl 1.32's columns.
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local validation = require("moonlet.validation")
local selector = require("moonlet.selector")
local json = require("moonlet.json")
local podspec = require("moonlet.api.podspec")

-- The annotation through which apps/v1 carries the internal
-- spec.templateGeneration (bumped only when the pod template changes).
local TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"

local workload = require("moonlet.api.workload")

local LabelSelector = workload.LabelSelector

local Spec = S.struct("v1.DaemonSetSpec", {
  selector = LabelSelector, minReadySeconds = S.integer, revisionHistoryLimit = S.integer,
  template = S.struct("v1.PodTemplateSpec", { metadata = S.ObjectMeta, spec = podspec.schema }),
  updateStrategy = S.struct("v1.DaemonSetUpdateStrategy", {
    type = S.string,
    rollingUpdate = S.struct("v1.RollingUpdateDaemonSet", { maxUnavailable = S.intstr, maxSurge = S.intstr }),
  }),
})

local Status = S.struct("v1.DaemonSetStatus", {
  currentNumberScheduled = S.integer, numberMisscheduled = S.integer, desiredNumberScheduled = S.integer,
  numberReady = S.integer, observedGeneration = S.int64, updatedNumberScheduled = S.integer,
  numberAvailable = S.integer, numberUnavailable = S.integer, collisionCount = S.integer,
  conditions = S.list(S.struct("v1.DaemonSetCondition", {
    type = S.string, status = S.string, lastTransitionTime = S.time, reason = S.string, message = S.string,
  })),
})

local function is_table(v) return type(v) == "table" end
local function present(v) return v ~= nil and v ~= json.null end

local nonneg = workload.nonneg

-- intstr value for the "is it zero" test (getIntOrPercentValue).
local function intstr_value(v)
  if math.type(v) then return v end
  if type(v) == "string" then return tonumber(v:match("^(%d+)%%$")) or 0 end
  return 0
end

local PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%' "
  .. "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"

-- ValidatePositiveIntOrPercent + IsNotMoreThan100Percent.
local function validate_intstr(v, path, errs)
  if type(v) == "string" then
    local n = v:match("^(%d+)%%$")
    if not n then
      errs:add(validation.invalid(path, v, PERCENT_MSG))
    elseif tonumber(n) > 100 then
      errs:add(validation.invalid(path, v, "must not be greater than 100%"))
    end
  elseif math.type(v) then
    nonneg(v, path, errs)
  end
end

-- ValidateDaemonSetUpdateStrategy.
local function validate_strategy(st, errs)
  local path = "spec.updateStrategy"
  st = is_table(st) and st or {}
  if st.type == "OnDelete" then return end
  if st.type ~= "RollingUpdate" then
    errs:add(validation.not_supported(path, st, { "RollingUpdate", "OnDelete" }))
    return
  end
  local ru = st.rollingUpdate
  if not is_table(ru) then
    errs:add(validation.required(path .. ".rollingUpdate", ""))
    return
  end
  local unavailable = present(ru.maxUnavailable) and intstr_value(ru.maxUnavailable) ~= 0
  local surge = present(ru.maxSurge) and intstr_value(ru.maxSurge) ~= 0
  if unavailable then validate_intstr(ru.maxUnavailable, path .. ".rollingUpdate.maxUnavailable", errs) end
  if surge then validate_intstr(ru.maxSurge, path .. ".rollingUpdate.maxSurge", errs) end
  if unavailable and surge then
    errs:add(validation.invalid(path .. ".rollingUpdate.maxSurge", ru.maxSurge,
      "may not be set when maxUnavailable is non-zero"))
  elseif not unavailable and not surge then
    errs:add(validation.required(path .. ".rollingUpdate.maxUnavailable", "cannot be 0 when maxSurge is 0"))
  end
end

-- ValidateDaemonSetSpec.
local function validate_spec(spec, errs)
  local sel = workload.validate_selector(spec, errs, "daemonset")
  workload.validate_template(spec.template, sel, errs, "DaemonSet")
  nonneg(spec.minReadySeconds, "spec.minReadySeconds", errs)
  validate_strategy(spec.updateStrategy, errs)
  nonneg(spec.revisionHistoryLimit, "spec.revisionHistoryLimit", errs)
end

local function int_col(name, desc, field)
  return { name = name, type = "integer", description = desc,
    value = function(ds) return (is_table(ds.status) and ds.status[field]) or 0 end }
end

local function template_spec(ds)
  local tpl = is_table(ds.spec) and ds.spec.template
  return is_table(tpl) and is_table(tpl.spec) and tpl.spec or {}
end

local DOC = " More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"

return {
  group = "apps", version = "v1", kind = "DaemonSet", plural = "daemonsets", singular = "daemonset",
  short_names = { "ds" }, namespaced = true, categories = { "all" },
  status_subresource = true,
  generation = true,
  subresources = { "status" },
  schema = S.kind("DaemonSet", { spec = Spec, status = Status }),
  TEMPLATE_GENERATION = TEMPLATE_GENERATION,

  -- The registry strategy: no status from the client, template generation 1.
  prepare_create = function(obj)
    obj.status = nil
    obj.metadata.annotations = is_table(obj.metadata.annotations) and obj.metadata.annotations or {}
    obj.metadata.annotations[TEMPLATE_GENERATION] = "1"
  end,

  -- The template generation belongs to the server: carried over, and
  -- bumped when the pod template changes.
  prepare_update = function(obj, old)
    local oa = is_table(old.metadata.annotations) and old.metadata.annotations or {}
    local gen = tonumber(oa[TEMPLATE_GENERATION]) or 1
    local ot = is_table(old.spec) and old.spec.template or nil
    local nt = is_table(obj.spec) and obj.spec.template or nil
    if not podspec.equal(ot, nt) then gen = gen + 1 end
    obj.metadata.annotations = is_table(obj.metadata.annotations) and obj.metadata.annotations or {}
    obj.metadata.annotations[TEMPLATE_GENERATION] = tostring(math.tointeger(gen) or gen)
  end,

  -- SetDefaults_DaemonSet (apps/v1) and the pod template's defaults.
  defaults = function(obj)
    obj.spec = is_table(obj.spec) and obj.spec or {}
    local spec = obj.spec
    spec.updateStrategy = is_table(spec.updateStrategy) and spec.updateStrategy or {}
    local st = spec.updateStrategy
    if not present(st.type) or st.type == "" then st.type = "RollingUpdate" end
    if st.type == "RollingUpdate" then
      st.rollingUpdate = is_table(st.rollingUpdate) and st.rollingUpdate or {}
      if not present(st.rollingUpdate.maxUnavailable) then st.rollingUpdate.maxUnavailable = 1 end
      if not present(st.rollingUpdate.maxSurge) then st.rollingUpdate.maxSurge = 0 end
    end
    if not present(spec.revisionHistoryLimit) then spec.revisionHistoryLimit = 10 end
    if is_table(spec.template) then
      spec.template.spec = is_table(spec.template.spec) and spec.template.spec or {}
      podspec.defaults(spec.template.spec, {})
    end
  end,

  validate = function(obj, errs)
    validate_spec(obj.spec or {}, errs)
  end,

  validate_update = function(obj, old, errs)
    validate_spec(obj.spec or {}, errs)
    local ns, os_ = (obj.spec or {}).selector, (old.spec or {}).selector
    if not podspec.equal(ns, os_) then
      errs:add(validation.invalid("spec.selector", ns or json.null, "field is immutable"))
    end
  end,

  columns = {
    columns.name(),
    int_col("Desired", "The total number of nodes that should be running the daemon pod (including nodes "
      .. "correctly running the daemon pod)." .. DOC, "desiredNumberScheduled"),
    int_col("Current", "The number of nodes that are running at least 1 daemon pod and are supposed to run "
      .. "the daemon pod." .. DOC, "currentNumberScheduled"),
    int_col("Ready", "numberReady is the number of nodes that should be running the daemon pod and have one "
      .. "or more of the daemon pod running with a Ready Condition.", "numberReady"),
    int_col("Up-to-date", "The total number of nodes that are running updated daemon pod",
      "updatedNumberScheduled"),
    int_col("Available", "The number of nodes that should be running the daemon pod and have one or more of "
      .. "the daemon pod running and available (ready for at least spec.minReadySeconds)", "numberAvailable"),
    { name = "Node Selector", type = "string",
      description = "NodeSelector is a selector which must be true for the pod to fit on a node. Selector "
        .. "which must match a node's labels for the pod to be scheduled on that node. More info: "
        .. "https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
      value = function(ds)
        local ns = template_spec(ds).nodeSelector
        return selector.format_labels(is_table(ns) and ns or nil)
      end },
    columns.age(),
    table.unpack(workload.wide_columns(workload.template_pod_spec, workload.spec_selector,
      "A label query over pods that are managed by the daemon set. Must match in order to be "
        .. "controlled. It must match the pod template's labels. More info: "
        .. "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors")),
  },
}
