-- apps/v1 ReplicaSet: schema (the pod template through moonlet.api.podspec),
-- apps/v1 defaults, ValidateReplicaSet / ValidateReplicaSetUpdate (selector
-- required, non-empty, matching the template labels, immutable), kubectl's
-- printer columns and the `scale` subresource (autoscaling/v1 Scale).
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local validation = require("moonlet.validation")
local selector = require("moonlet.selector")
local json = require("moonlet.json")
local podspec = require("moonlet.api.podspec")

local LabelSelector = S.struct("v1.LabelSelector", {
  matchLabels = S.map(S.string),
  matchExpressions = S.list(S.struct("v1.LabelSelectorRequirement", {
    key = S.string, operator = S.string, values = S.list(S.string),
  })),
})

local Condition = S.struct("v1.ReplicaSetCondition", {
  type = S.string, status = S.string, lastTransitionTime = S.time, reason = S.string, message = S.string,
})

local Spec = S.struct("v1.ReplicaSetSpec", {
  replicas = S.integer, minReadySeconds = S.integer, selector = LabelSelector,
  template = S.struct("v1.PodTemplateSpec", { metadata = S.ObjectMeta, spec = podspec.schema }),
})

local Status = S.struct("v1.ReplicaSetStatus", {
  replicas = S.integer, fullyLabeledReplicas = S.integer, readyReplicas = S.integer,
  availableReplicas = S.integer, terminatingReplicas = S.integer, observedGeneration = S.int64,
  conditions = S.list(Condition),
})

local function is_table(v) return type(v) == "table" end

local function equal(a, b)
  if a == b then return true end
  if not is_table(a) or not is_table(b) then return false end
  for k, v in pairs(a) do if not equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function nonneg(v, path, errs)
  if math.type(v) and v < 0 then
    errs:add(validation.invalid(path, v, "must be greater than or equal to 0"))
  end
end

-- ValidatePodTemplateSpecForReplicaSet.
local function validate_template(tpl, sel, errs)
  if not is_table(tpl) then
    errs:add(validation.required("spec.template", ""))
    return
  end
  local meta = is_table(tpl.metadata) and tpl.metadata or {}
  if sel and not sel:empty() and not sel:matches(meta.labels or {}) then
    errs:add(validation.invalid("spec.template.metadata.labels", meta.labels or json.null,
      "`selector` does not match template `labels`"))
  end
  if meta.labels ~= nil then validation.validate_labels(meta.labels, "spec.template.metadata.labels", errs) end
  if meta.annotations ~= nil then
    validation.validate_annotations(meta.annotations, "spec.template.metadata.annotations", errs)
  end
  local spec = is_table(tpl.spec) and tpl.spec or {}
  podspec.validate(spec, "spec.template.spec", errs, {})
  if spec.restartPolicy ~= nil and spec.restartPolicy ~= "Always" then
    errs:add(validation.not_supported("spec.template.spec.restartPolicy", spec.restartPolicy, { "Always" }))
  end
  if spec.activeDeadlineSeconds ~= nil and spec.activeDeadlineSeconds ~= json.null then
    errs:add(validation.invalid("spec.template.spec.activeDeadlineSeconds", spec.activeDeadlineSeconds,
      "activeDeadlineSeconds in ReplicaSet is not Supported"))
  end
end

-- ValidateReplicaSetSpec.
local function validate_spec(spec, errs)
  nonneg(spec.replicas, "spec.replicas", errs)
  nonneg(spec.minReadySeconds, "spec.minReadySeconds", errs)
  local sel
  if not is_table(spec.selector) then
    errs:add(validation.required("spec.selector", ""))
  else
    local s, serrs = selector.from_table(spec.selector, "spec.selector")
    if s then sel = s else for _, e in ipairs(serrs:list()) do errs:add(e) end end
    local n = 0
    for _ in pairs(is_table(spec.selector.matchLabels) and spec.selector.matchLabels or {}) do n = n + 1 end
    n = n + #(is_table(spec.selector.matchExpressions) and spec.selector.matchExpressions or {})
    if n == 0 then
      errs:add(validation.invalid("spec.selector", spec.selector, "empty selector is invalid for deployment"))
    end
    if not s then
      errs:add(validation.invalid("spec.selector", spec.selector, "invalid label selector"))
      return
    end
  end
  validate_template(spec.template, sel, errs)
end


local function int_col(name, desc, get, priority)
  return { name = name, type = "integer", description = desc, priority = priority,
    value = function(rs) return get(rs) or 0 end }
end

local function containers_field(rs, field)
  local out = {}
  local spec = is_table(rs.spec) and is_table(rs.spec.template) and rs.spec.template.spec or {}
  for _, c in ipairs(is_table(spec) and spec.containers or {}) do out[#out + 1] = c[field] or "" end
  return table.concat(out, ",")
end

return {
  group = "apps", version = "v1", kind = "ReplicaSet", plural = "replicasets", singular = "replicaset",
  short_names = { "rs" }, namespaced = true, categories = { "all" },
  status_subresource = true,
  generation = true,
  subresources = { "status", "scale" },
  subresource_handlers = { scale = require("moonlet.api.scale").handler },
  schema = S.kind("ReplicaSet", { spec = Spec, status = Status }),

  prepare_create = function(obj)
    obj.status = nil
  end,

  -- SetDefaults_ReplicaSet (apps/v1) and the pod template's defaults.
  defaults = function(obj)
    obj.spec = is_table(obj.spec) and obj.spec or {}
    local spec = obj.spec
    if spec.replicas == nil or spec.replicas == json.null then spec.replicas = 1 end
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
    if not equal(ns, os_) then
      errs:add(validation.invalid("spec.selector", ns or json.null, "field is immutable"))
    end
  end,

  columns = {
    columns.name(),
    int_col("Desired", "Number of desired pods. This is a pointer to distinguish between explicit zero and "
      .. "not specified. Defaults to 1.", function(rs) return (rs.spec or {}).replicas end),
    int_col("Current", "Replicas is the most recently observed number of replicas.",
      function(rs) return (rs.status or {}).replicas end),
    int_col("Ready", "The number of ready replicas for this replica set.",
      function(rs) return (rs.status or {}).readyReplicas end),
    columns.age(),
    { name = "Containers", type = "string", priority = 1,
      description = "Names of each container in the template.",
      value = function(rs) return containers_field(rs, "name") end },
    { name = "Images", type = "string", priority = 1,
      description = "Images referenced by each container in the template.",
      value = function(rs) return containers_field(rs, "image") end },
    { name = "Selector", type = "string", priority = 1,
      description = "Selector is a label query over pods that should match the replica count.",
      value = function(rs) return selector.format_selector((rs.spec or {}).selector) end },
  },
}
