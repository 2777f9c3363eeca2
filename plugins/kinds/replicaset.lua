-- apps/v1 ReplicaSet: schema (the pod template through moonlet.api.podspec),
-- apps/v1 defaults, ValidateReplicaSet / ValidateReplicaSetUpdate (selector
-- required, non-empty, matching the template labels, immutable), kubectl's
-- printer columns and the `scale` subresource (autoscaling/v1 Scale).
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local validation = require("moonlet.validation")
local json = require("moonlet.json")
local podspec = require("moonlet.api.podspec")

local workload = require("moonlet.api.workload")

local LabelSelector = workload.LabelSelector

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

-- ValidateReplicaSetSpec.
local function validate_spec(spec, errs)
  workload.nonneg(spec.replicas, "spec.replicas", errs)
  workload.nonneg(spec.minReadySeconds, "spec.minReadySeconds", errs)
  local sel = workload.validate_selector(spec, errs, "deployment")
  if is_table(spec.selector) and not sel then
    errs:add(validation.invalid("spec.selector", spec.selector, "invalid label selector"))
    return
  end
  workload.validate_template(spec.template, sel, errs, "ReplicaSet")
end

local function int_col(name, desc, get, priority)
  return { name = name, type = "integer", description = desc, priority = priority,
    value = function(rs) return get(rs) or 0 end }
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
    table.unpack(workload.wide_columns(workload.template_pod_spec, workload.spec_selector,
      "Selector is a label query over pods that should match the replica count.")),
  },
}
