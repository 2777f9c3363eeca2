-- The autoscaling HorizontalPodAutoscaler kind per served version:
-- autoscaling/v2 (stored) and autoscaling/v1 (targetCPUUtilizationPercentage,
-- converted by moonlet.api.hpa_convert on the way in and out). Schema,
-- SetDefaults_HorizontalPodAutoscaler, ValidateHorizontalPodAutoscaler
-- (pkg/apis/autoscaling/validation) and kubectl 1.32's printer columns
-- (printHorizontalPodAutoscaler, formatHPAMetrics).
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local validation = require("moonlet.validation")
local json = require("moonlet.json")
local quantity = require("moonlet.api.quantity")
local convert = require("moonlet.api.hpa_convert")
local LabelSelector = require("moonlet.api.workload").LabelSelector

local M = {}

local function is_table(v) return type(v) == "table" end
local function set(v) return v ~= nil and v ~= json.null end

-- {====== schema (k8s.io/api/autoscaling/v2 and v1)

local CrossVersionObjectReference = S.struct("v2.CrossVersionObjectReference", {
  kind = S.string, name = S.string, apiVersion = S.string,
})
local MetricIdentifier = S.struct("v2.MetricIdentifier", { name = S.string, selector = LabelSelector })
local MetricTarget = S.struct("v2.MetricTarget", {
  type = S.string, value = S.quantity, averageValue = S.quantity, averageUtilization = S.integer,
})
local MetricValueStatus = S.struct("v2.MetricValueStatus", {
  value = S.quantity, averageValue = S.quantity, averageUtilization = S.integer,
})

local MetricSpec = S.struct("v2.MetricSpec", {
  type = S.string,
  object = S.struct("v2.ObjectMetricSource", { describedObject = CrossVersionObjectReference,
    target = MetricTarget, metric = MetricIdentifier }),
  pods = S.struct("v2.PodsMetricSource", { metric = MetricIdentifier, target = MetricTarget }),
  resource = S.struct("v2.ResourceMetricSource", { name = S.string, target = MetricTarget }),
  containerResource = S.struct("v2.ContainerResourceMetricSource", { name = S.string,
    target = MetricTarget, container = S.string }),
  external = S.struct("v2.ExternalMetricSource", { metric = MetricIdentifier, target = MetricTarget }),
})

local MetricStatus = S.struct("v2.MetricStatus", {
  type = S.string,
  object = S.struct("v2.ObjectMetricStatus", { metric = MetricIdentifier, current = MetricValueStatus,
    describedObject = CrossVersionObjectReference }),
  pods = S.struct("v2.PodsMetricStatus", { metric = MetricIdentifier, current = MetricValueStatus }),
  resource = S.struct("v2.ResourceMetricStatus", { name = S.string, current = MetricValueStatus }),
  containerResource = S.struct("v2.ContainerResourceMetricStatus", { name = S.string,
    current = MetricValueStatus, container = S.string }),
  external = S.struct("v2.ExternalMetricStatus", { metric = MetricIdentifier, current = MetricValueStatus }),
})

local ScalingRules = S.struct("v2.HPAScalingRules", {
  stabilizationWindowSeconds = S.integer, selectPolicy = S.string,
  policies = S.list(S.struct("v2.HPAScalingPolicy", { type = S.string, value = S.integer,
    periodSeconds = S.integer })),
})

local Condition = S.struct("v2.HorizontalPodAutoscalerCondition", {
  type = S.string, status = S.string, lastTransitionTime = S.time, reason = S.string, message = S.string,
})

local SpecV2 = S.struct("v2.HorizontalPodAutoscalerSpec", {
  scaleTargetRef = CrossVersionObjectReference, minReplicas = S.integer, maxReplicas = S.integer,
  metrics = S.list(MetricSpec),
  behavior = S.struct("v2.HorizontalPodAutoscalerBehavior", { scaleUp = ScalingRules, scaleDown = ScalingRules }),
})
local StatusV2 = S.struct("v2.HorizontalPodAutoscalerStatus", {
  observedGeneration = S.int64, lastScaleTime = S.time, currentReplicas = S.integer,
  desiredReplicas = S.integer, currentMetrics = S.list(MetricStatus), conditions = S.list(Condition),
})

local SpecV1 = S.struct("v1.HorizontalPodAutoscalerSpec", {
  scaleTargetRef = S.struct("v1.CrossVersionObjectReference", { kind = S.string, name = S.string,
    apiVersion = S.string }),
  minReplicas = S.integer, maxReplicas = S.integer, targetCPUUtilizationPercentage = S.integer,
})
local StatusV1 = S.struct("v1.HorizontalPodAutoscalerStatus", {
  observedGeneration = S.int64, lastScaleTime = S.time, currentReplicas = S.integer,
  desiredReplicas = S.integer, currentCPUUtilizationPercentage = S.integer,
})

-- }======

-- {====== defaults (pkg/apis/autoscaling/v2/defaults.go)

M.DEFAULT_CPU_UTILIZATION = 80

local function default_up()
  return { stabilizationWindowSeconds = 0, selectPolicy = "Max", policies = {
    { type = "Pods", value = 4, periodSeconds = 15 }, { type = "Percent", value = 100, periodSeconds = 15 } } }
end

-- The scale-down window stays unset: the controller takes the
-- --horizontal-pod-autoscaler-downscale-stabilization flag's (300 s).
local function default_down()
  return { selectPolicy = "Max", policies = { { type = "Percent", value = 100, periodSeconds = 15 } } }
end

-- copyHPAScalingRules: the given fields over the defaults.
local function rules(given, defaults)
  if not is_table(given) then return defaults end
  for _, k in ipairs({ "selectPolicy", "stabilizationWindowSeconds", "policies" }) do
    if set(given[k]) then defaults[k] = given[k] end
  end
  return defaults
end

--- SetDefaults_HorizontalPodAutoscaler (v2): minReplicas 1, a CPU target
--- of 80% when no metric is given, the behavior's rules filled in when a
--- behavior is given.
function M.defaults(obj)
  obj.spec = is_table(obj.spec) and obj.spec or {}
  local spec = obj.spec
  if not set(spec.minReplicas) then spec.minReplicas = 1 end
  if not is_table(spec.metrics) or #spec.metrics == 0 then
    spec.metrics = { convert.cpu_metric(M.DEFAULT_CPU_UTILIZATION) }
  end
  if is_table(spec.behavior) then
    spec.behavior.scaleUp = rules(spec.behavior.scaleUp, default_up())
    spec.behavior.scaleDown = rules(spec.behavior.scaleDown, default_down())
  end
end

-- }======

-- {====== validation (pkg/apis/autoscaling/validation/validation.go)

M.MAX_PERIOD_SECONDS = 1800
M.MAX_STABILIZATION_WINDOW_SECONDS = 3600
local SOURCE_TYPES = { "ContainerResource", "External", "Object", "Pods", "Resource" }
local SOURCE_FIELD = { Object = "object", Pods = "pods", Resource = "resource",
  ContainerResource = "containerResource", External = "external" }
local SELECT_POLICIES = { "Disabled", "Max", "Min" }
local POLICY_TYPES = { "Percent", "Pods" }
local STANDARD_CONTAINER_RESOURCES = { cpu = true, memory = true, ["ephemeral-storage"] = true }

local function str(v) return type(v) == "string" and v or "" end

-- IsValidPathSegmentName.
local function path_segment(v, path, errs)
  if v == "." or v == ".." then
    errs:add(validation.invalid(path, v, "may not be '" .. v .. "'"))
    return
  end
  for _, bad in ipairs({ "/", "%" }) do
    if v:find(bad, 1, true) then errs:add(validation.invalid(path, v, "may not contain '" .. bad .. "'")) end
  end
end

--- ValidateCrossVersionObjectReference.
function M.validate_ref(ref, path, errs)
  ref = is_table(ref) and ref or {}
  for _, f in ipairs({ "kind", "name" }) do
    local v = str(ref[f])
    if v == "" then errs:add(validation.required(path .. "." .. f, ""))
    else path_segment(v, path .. "." .. f, errs) end
  end
end

-- The sign of a quantity field, or nil when it is not given.
local function sign(v)
  if not set(v) then return nil end
  local q = quantity.parse(v)
  if not q then return 0 end
  return q.milli > 0 and 1 or (q.milli < 0 and -1 or 0)
end

local function validate_target(t, path, errs)
  t = is_table(t) and t or {}
  if str(t.type) == "" then errs:add(validation.required(path .. ".type", "must specify a metric target type")) end
  if t.type ~= "Utilization" and t.type ~= "Value" and t.type ~= "AverageValue" then
    errs:add(validation.invalid(path .. ".type", str(t.type), "must be either Utilization, Value, or AverageValue"))
  end
  if sign(t.value) and sign(t.value) ~= 1 then
    errs:add(validation.invalid(path .. ".value", t.value, "must be positive"))
  end
  if sign(t.averageValue) and sign(t.averageValue) ~= 1 then
    errs:add(validation.invalid(path .. ".averageValue", t.averageValue, "must be positive"))
  end
  if math.type(t.averageUtilization) and t.averageUtilization < 1 then
    errs:add(validation.invalid(path .. ".averageUtilization", t.averageUtilization, "must be greater than 0"))
  end
  return t
end

local function validate_identifier(m, path, errs)
  m = is_table(m) and m or {}
  if str(m.name) == "" then errs:add(validation.required(path .. ".name", "must specify a metric name")) end
end

local function validate_resource(src, path, errs, container)
  if str(src.name) == "" then
    errs:add(validation.required(path .. ".name", "must specify a resource name"))
  elseif not src.name:find("/", 1, true) and not STANDARD_CONTAINER_RESOURCES[src.name]
      and not src.name:match("^hugepages%-") then
    errs:add(validation.invalid(path .. ".name", src.name, "must be a standard resource for containers"))
  end
  if container and str(src.container) == "" then
    errs:add(validation.required(path .. ".container", "must specify a container"))
  end
  local t = validate_target(src.target, path .. ".target", errs)
  if not set(t.averageUtilization) and not set(t.averageValue) then
    errs:add(validation.required(path .. ".target.averageUtilization",
      "must set either a target raw value or a target utilization"))
  end
  if set(t.averageUtilization) and set(t.averageValue) then
    errs:add(validation.forbidden(path .. ".target.averageValue",
      "may not set both a target raw value and a target utilization"))
  end
end

local function validate_source(typ, src, path, errs)
  if typ == "resource" then return validate_resource(src, path, errs, false) end
  if typ == "containerResource" then return validate_resource(src, path, errs, true) end
  validate_identifier(src.metric, path .. ".metric", errs)
  local t = validate_target(src.target, path .. ".target", errs)
  if typ == "pods" then
    if not set(t.averageValue) then
      errs:add(validation.required(path .. ".target.averageValue", "must specify a positive target averageValue"))
    end
  elseif typ == "object" then
    M.validate_ref(src.describedObject, path .. ".describedObject", errs)
    if not set(t.value) and not set(t.averageValue) then
      errs:add(validation.required(path .. ".target.value", "must set either a target value or averageValue"))
    end
  elseif typ == "external" then
    if not set(t.value) and not set(t.averageValue) then
      errs:add(validation.required(path .. ".target.value", "must set either a target value for metric or a per-pod target"))
    end
    if set(t.value) and set(t.averageValue) then
      errs:add(validation.forbidden(path .. ".target.value",
        "may not set both a target value for metric and a per-pod target"))
    end
  end
end

local function validate_metric(spec, path, errs)
  spec = is_table(spec) and spec or {}
  local typ = str(spec.type)
  if typ == "" then errs:add(validation.required(path .. ".type", "must specify a metric source type")) end
  local expected = SOURCE_FIELD[typ]
  if not expected then errs:add(validation.not_supported(path .. ".type", typ, SOURCE_TYPES)) end
  local present = {}
  for _, t in ipairs(SOURCE_TYPES) do
    local f = SOURCE_FIELD[t]
    if is_table(spec[f]) then
      present[#present + 1] = f
      if #present == 1 then validate_source(f, spec[f], path .. "." .. f, errs) end
    end
  end
  if expected and not is_table(spec[expected]) then
    errs:add(validation.required(path .. "." .. expected, "must populate information for the given metric source"))
  end
  if #present > 1 or (#present == 1 and present[1] ~= expected) then
    for _, f in ipairs(present) do
      if f ~= expected then
        errs:add(validation.forbidden(path .. "." .. f, "must populate the given metric source only"))
      end
    end
  end
end

local function validate_rules(r, path, errs)
  if not is_table(r) then return end
  local w = r.stabilizationWindowSeconds
  if math.type(w) and w < 0 then
    errs:add(validation.invalid(path .. ".stabilizationWindowSeconds", w, "must be greater than or equal to zero"))
  end
  if math.type(w) and w > M.MAX_STABILIZATION_WINDOW_SECONDS then
    errs:add(validation.invalid(path .. ".stabilizationWindowSeconds", w,
      "must be less than or equal to " .. M.MAX_STABILIZATION_WINDOW_SECONDS))
  end
  local sp = r.selectPolicy
  if set(sp) and sp ~= "Max" and sp ~= "Min" and sp ~= "Disabled" then
    errs:add(validation.not_supported(path .. ".selectPolicy", sp, SELECT_POLICIES))
  end
  local policies = is_table(r.policies) and r.policies or {}
  if #policies == 0 then errs:add(validation.required(path .. ".policies", "must specify at least one Policy")) end
  for i, p in ipairs(policies) do
    local pp = string.format("%s.policies[%d]", path, i - 1)
    if p.type ~= "Pods" and p.type ~= "Percent" then
      errs:add(validation.not_supported(pp .. ".type", str(p.type), POLICY_TYPES))
    end
    local v, per = p.value or 0, p.periodSeconds or 0
    if v <= 0 then errs:add(validation.invalid(pp .. ".value", v, "must be greater than zero")) end
    if per <= 0 then errs:add(validation.invalid(pp .. ".periodSeconds", per, "must be greater than zero")) end
    if per > M.MAX_PERIOD_SECONDS then
      errs:add(validation.invalid(pp .. ".periodSeconds", per, "must be less than or equal to " .. M.MAX_PERIOD_SECONDS))
    end
  end
end

--- validateHorizontalPodAutoscalerSpec (minReplicas' lower bound 1: the
--- HPAScaleToZero gate is off, as in Kubernetes by default).
function M.validate(obj, errs)
  local spec = is_table(obj.spec) and obj.spec or {}
  local min, max = spec.minReplicas, spec.maxReplicas
  if math.type(min) and min < 1 then
    errs:add(validation.invalid("spec.minReplicas", min, "must be greater than or equal to 1"))
  end
  if not math.type(max) or max < 1 then
    errs:add(validation.invalid("spec.maxReplicas", math.type(max) and max or 0, "must be greater than 0"))
  end
  if math.type(min) and math.type(max) and max < min then
    errs:add(validation.invalid("spec.maxReplicas", max, "must be greater than or equal to `minReplicas`"))
  end
  local before = #errs
  M.validate_ref(spec.scaleTargetRef, "spec.scaleTargetRef", errs)
  if #errs > before then return end
  for i, m in ipairs(is_table(spec.metrics) and spec.metrics or {}) do
    validate_metric(m, string.format("spec.metrics[%d]", i - 1), errs)
  end
  if #errs > before then return end
  if is_table(spec.behavior) then
    validate_rules(spec.behavior.scaleUp, "spec.behavior.scaleUp", errs)
    validate_rules(spec.behavior.scaleDown, "spec.behavior.scaleDown", errs)
  end
end

-- }======

-- {====== columns (kubectl's printHorizontalPodAutoscaler)

local function q_string(v)
  local q = quantity.parse(v)
  return q and q:string() or tostring(v)
end

local function current_of(statuses, i, field)
  local st = is_table(statuses) and statuses[i]
  return is_table(st) and is_table(st[field]) and st[field].current or nil
end

--- formatHPAMetrics: one "current/target" per metric, "<unknown>" before
--- the first measurement; "<none>" without metrics.
function M.format_metrics(specs, statuses)
  if not is_table(specs) or #specs == 0 then return "<none>" end
  local list = {}
  for i, spec in ipairs(specs) do
    local typ, text = spec.type, nil
    local field = SOURCE_FIELD[typ]
    local src = field and spec[field]
    local t = is_table(src) and src.target or {}
    local cur = field and current_of(statuses, i, field)
    if typ == "Resource" or typ == "ContainerResource" then
      if set(t.averageValue) then
        text = string.format("%s/%s", cur and set(cur.averageValue) and q_string(cur.averageValue) or "<unknown>",
          q_string(t.averageValue))
      else
        local c = cur and math.type(cur.averageUtilization) and (cur.averageUtilization .. "%") or "<unknown>"
        local target = math.type(t.averageUtilization) and (t.averageUtilization .. "%") or "<auto>"
        text = string.format("%s: %s/%s", tostring(src and src.name or ""), c, target)
      end
    elseif typ == "Pods" then
      text = string.format("%s/%s", cur and set(cur.averageValue) and q_string(cur.averageValue) or "<unknown>",
        set(t.averageValue) and q_string(t.averageValue) or "<unset>")
    elseif typ == "Object" or typ == "External" then
      local per_pod = set(t.averageValue)
      local cv = cur and (per_pod and cur.averageValue or cur.value)
      local tv = per_pod and t.averageValue or t.value
      text = string.format("%s/%s%s", set(cv) and q_string(cv) or "<unknown>", set(tv) and q_string(tv) or "<unset>",
        per_pod and " (avg)" or "")
    else
      text = "<unknown type>"
    end
    list[#list + 1] = text
  end
  if #list > 4 then
    return table.concat(list, ", ", 1, 4) .. string.format(" + %d more...", #list - 4)
  end
  return table.concat(list, ", ")
end

-- The columns read the stored (v2) form; a v1 row is converted first.
local function v2_of(obj)
  if obj.apiVersion == "autoscaling/v1" then return convert.to_v2(obj) end
  return obj
end

local COLUMNS = {
  columns.name(),
  { name = "Reference", type = "string",
    description = "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.",
    value = function(h)
      local ref = (h.spec or {}).scaleTargetRef or {}
      return string.format("%s/%s", tostring(ref.kind or ""), tostring(ref.name or ""))
    end },
  { name = "Targets", type = "string",
    description = "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).  The desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.  Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for more information about how each type of metric must respond. If not set, the default metric will be set to 80% average CPU utilization.",
    value = function(h)
      h = v2_of(h)
      return M.format_metrics((h.spec or {}).metrics, (h.status or {}).currentMetrics)
    end },
  { name = "MinPods", type = "string",
    description = "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is active as long as at least one metric value is available.",
    value = function(h)
      local m = (h.spec or {}).minReplicas
      return math.type(m) and tostring(m) or "<unset>"
    end },
  { name = "MaxPods", type = "integer",
    description = "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas.",
    value = function(h) return (h.spec or {}).maxReplicas or 0 end },
  { name = "Replicas", type = "integer",
    description = "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.",
    value = function(h) return (h.status or {}).currentReplicas or 0 end },
  columns.age(),
}

-- }======

--- The kind definition for one served version ("v2" or "v1").
function M.def(version)
  local v1 = version == "v1"
  local def = {
    group = "autoscaling", version = version, kind = "HorizontalPodAutoscaler",
    plural = "horizontalpodautoscalers", singular = "horizontalpodautoscaler",
    short_names = { "hpa" }, namespaced = true, categories = { "all" },
    status_subresource = true, generation = true,
    schema = S.kind("HorizontalPodAutoscaler", v1 and { spec = SpecV1, status = StatusV1 }
      or { spec = SpecV2, status = StatusV2 }),
    prepare_create = function(obj)
      obj.status = nil
      -- One stored version: a v1 object is kept in its v2 form.
      if v1 then convert.to_v2_in_place(obj) end
    end,
    prepare_update = function(obj)
      if v1 then convert.to_v2_in_place(obj) end
    end,
    defaults = M.defaults,
    validate = M.validate,
    columns = COLUMNS,
  }
  -- What leaves the server through v1 is converted back (moonlet.api.handlers).
  if v1 then def.from_stored = convert.to_v1 end
  return def
end

return M
