-- moonlet.api.workload: what the workload kinds (ReplicaSet, Deployment,
-- DaemonSet, Job, CronJob) share: the LabelSelector schema, their selector
-- and pod-template validation (pkg/apis/apps/validation), and kubectl's
-- wide columns CONTAINERS / IMAGES / SELECTOR.
local S = require("moonlet.api.schema")
local json = require("moonlet.json")
local selector = require("moonlet.selector")
local validation = require("moonlet.validation")
local podspec = require("moonlet.api.podspec")

local M = {}

local function is_table(v) return type(v) == "table" end

M.LabelSelector = S.struct("v1.LabelSelector", {
  matchLabels = S.map(S.string),
  matchExpressions = S.list(S.struct("v1.LabelSelectorRequirement", {
    key = S.string, operator = S.string, values = S.list(S.string),
  })),
})

--- A "must be greater than or equal to 0" error for a negative integer.
function M.nonneg(v, path, errs)
  if math.type(v) and v < 0 then
    errs:add(validation.invalid(path, v, "must be greater than or equal to 0"))
  end
end

--- spec.selector: required, a valid LabelSelector, not empty ("empty
--- selector is invalid for <what>", Kubernetes' words; ReplicaSets say
--- "deployment" too). @return the compiled selector, or nil
function M.validate_selector(spec, errs, what)
  if not is_table(spec.selector) then
    errs:add(validation.required("spec.selector", ""))
    return nil
  end
  local sel, serrs = selector.from_table(spec.selector, "spec.selector")
  if not sel then for _, e in ipairs(serrs:list()) do errs:add(e) end end
  local n = 0
  for _ in pairs(is_table(spec.selector.matchLabels) and spec.selector.matchLabels or {}) do n = n + 1 end
  n = n + #(is_table(spec.selector.matchExpressions) and spec.selector.matchExpressions or {})
  if n == 0 then
    errs:add(validation.invalid("spec.selector", spec.selector, "empty selector is invalid for " .. what))
  end
  return sel
end

--- spec.template of a long-running workload (ValidatePodTemplateSpecFor-
--- ReplicaSet and the DaemonSet variant): labels matching the selector,
--- valid metadata and pod spec, restartPolicy Always, no
--- activeDeadlineSeconds ("... in <kind> is not Supported").
function M.validate_template(tpl, sel, errs, kind)
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
      "activeDeadlineSeconds in " .. kind .. " is not Supported"))
  end
end

local function joined(pod_spec, field)
  local out = {}
  for _, c in ipairs(is_table(pod_spec) and is_table(pod_spec.containers) and pod_spec.containers or {}) do
    out[#out + 1] = c[field] or ""
  end
  return table.concat(out, ",")
end

--- kubectl's -o wide columns of a workload. pod_spec(obj) and
--- selector_of(obj) find the template's pod spec and the LabelSelector;
--- selector_description is the kind's own text for the Selector column.
function M.wide_columns(pod_spec, selector_of, selector_description)
  return {
    { name = "Containers", type = "string", priority = 1,
      description = "Names of each container in the template.",
      value = function(obj) return joined(pod_spec(obj), "name") end },
    { name = "Images", type = "string", priority = 1,
      description = "Images referenced by each container in the template.",
      value = function(obj) return joined(pod_spec(obj), "image") end },
    { name = "Selector", type = "string", priority = 1, description = selector_description,
      value = function(obj) return selector.format_selector(selector_of(obj)) end },
  }
end

--- pod_spec / selector_of for kinds with spec.template and spec.selector.
function M.template_pod_spec(obj)
  local spec = is_table(obj.spec) and obj.spec or {}
  return is_table(spec.template) and spec.template.spec or nil
end

function M.spec_selector(obj) return (is_table(obj.spec) and obj.spec or {}).selector end

return M
