-- jobspec: the batch/v1 JobSpec shared by the Job kind and the CronJob's
-- jobTemplate: its schema (with the podFailurePolicy and successPolicy
-- structs), its defaults, and validateJobSpec's rules other than the
-- selector's (Kubernetes' pkg/apis/batch/validation), with the same field
-- paths and messages.
local S = require("moonlet.api.schema")
local validation = require("moonlet.validation")
local json = require("moonlet.json")
local podspec = require("moonlet.api.podspec")
local workload = require("moonlet.api.workload")
local indexes = require("moonlet.job_indexes")

local M = {}

local MAX_PARALLELISM_INDEXED = 100000
local MAX_FAILED_INDEXES = 100000
local COMPLETIONS_SOFT_LIMIT = 100000
local PARALLELISM_HIGH_COMPLETIONS = 10000
local MAX_FAILED_INDEXES_HIGH_COMPLETIONS = 10000
local MAX_FAILURE_RULES = 20
local MAX_EXIT_CODES = 255
local MAX_CONDITION_PATTERNS = 20
local MAX_SUCCESS_RULES = 20
local MAX_SUCCEEDED_INDEXES_LEN = 64 * 1024

local ACTIONS = { "Count", "FailIndex", "FailJob", "Ignore" }
local OPERATORS = { "In", "NotIn" }
local CONDITION_STATUSES = { "False", "True", "Unknown" }

local PodFailurePolicy = S.struct("v1.PodFailurePolicy", {
  rules = S.list(S.struct("v1.PodFailurePolicyRule", {
    action = S.string,
    onExitCodes = S.struct("v1.PodFailurePolicyOnExitCodesRequirement", {
      containerName = S.string, operator = S.string, values = S.list(S.integer),
    }),
    onPodConditions = S.list(S.struct("v1.PodFailurePolicyOnPodConditionsPattern", {
      type = S.string, status = S.string,
    })),
  })),
})

local SuccessPolicy = S.struct("v1.SuccessPolicy", {
  rules = S.list(S.struct("v1.SuccessPolicyRule", { succeededIndexes = S.string, succeededCount = S.integer })),
})

M.schema = S.struct("v1.JobSpec", {
  parallelism = S.integer, completions = S.integer, activeDeadlineSeconds = S.int64,
  podFailurePolicy = PodFailurePolicy, successPolicy = SuccessPolicy, backoffLimit = S.integer,
  backoffLimitPerIndex = S.integer, maxFailedIndexes = S.integer, selector = workload.LabelSelector,
  manualSelector = S.boolean,
  template = S.struct("v1.PodTemplateSpec", { metadata = S.ObjectMeta, spec = podspec.schema }),
  ttlSecondsAfterFinished = S.integer, completionMode = S.string, suspend = S.boolean,
  podReplacementPolicy = S.string, managedBy = S.string,
})

local function is_table(v) return type(v) == "table" and v ~= json.null end
local function present(v) return v ~= nil and v ~= json.null end
local function list(v) return is_table(v) and v or {} end

local function nonneg(v, path, errs)
  if math.type(v) and v < 0 then
    errs:add(validation.invalid(path, v, "must be greater than or equal to 0"))
  end
end

--- SetDefaults_Job's pod failure policy part: a condition pattern's status
-- defaults to True.
function M.default_policies(spec)
  for _, rule in ipairs(list(is_table(spec.podFailurePolicy) and spec.podFailurePolicy.rules)) do
    for _, p in ipairs(list(rule.onPodConditions)) do
      if is_table(p) and (not present(p.status) or p.status == "") then p.status = "True" end
    end
  end
end

local function container_names(spec)
  local names = {}
  local ps = is_table(spec.template) and is_table(spec.template.spec) and spec.template.spec or {}
  for _, l in ipairs({ list(ps.containers), list(ps.initContainers) }) do
    for _, c in ipairs(l) do if is_table(c) and type(c.name) == "string" then names[c.name] = true end end
  end
  return names
end

local function validate_exit_codes(req, path, names, errs)
  if not present(req.operator) or req.operator == "" then
    errs:add(validation.required(path .. ".operator", 'valid values: ["In" "NotIn"]'))
  elseif req.operator ~= "In" and req.operator ~= "NotIn" then
    errs:add(validation.not_supported(path .. ".operator", req.operator, OPERATORS))
  end
  if present(req.containerName) and not names[req.containerName] then
    errs:add(validation.invalid(path .. ".containerName", req.containerName,
      "must be one of the container or initContainer names in the pod template"))
  end
  local values = list(req.values)
  if #values == 0 then
    errs:add(validation.invalid(path .. ".values", req.values or json.array(), "at least one value is required"))
  elseif #values > MAX_EXIT_CODES then
    errs:add(validation.too_many(path .. ".values", #values, MAX_EXIT_CODES))
  end
  local seen, ordered = {}, true
  for j, v in ipairs(values) do
    local vp = string.format("%s.values[%d]", path, j - 1)
    if req.operator == "In" and v == 0 then errs:add(validation.invalid(vp, v, "must not be 0 for the In operator")) end
    if seen[v] then errs:add(validation.duplicate(vp, v)) else seen[v] = true end
    if j > 1 and values[j - 1] > v then ordered = false end
  end
  if not ordered then errs:add(validation.invalid(path .. ".values", values, "must be ordered")) end
end

local function validate_conditions(patterns, path, errs)
  if #patterns > MAX_CONDITION_PATTERNS then errs:add(validation.too_many(path, #patterns, MAX_CONDITION_PATTERNS)) end
  for j, p in ipairs(patterns) do
    local pp = string.format("%s[%d]", path, j - 1)
    local t = is_table(p) and p.type or ""
    for _, msg in ipairs(validation.is_qualified_name(type(t) == "string" and t or "")) do
      errs:add(validation.invalid(pp .. ".type", t, msg))
    end
    local st = is_table(p) and p.status
    if not present(st) or st == "" then
      errs:add(validation.required(pp .. ".status", 'valid values: ["False" "True" "Unknown"]'))
    elseif st ~= "True" and st ~= "False" and st ~= "Unknown" then
      errs:add(validation.not_supported(pp .. ".status", st, CONDITION_STATUSES))
    end
  end
end

local function validate_failure_policy(spec, path, errs)
  local rules = list(spec.podFailurePolicy.rules)
  if #rules > MAX_FAILURE_RULES then errs:add(validation.too_many(path .. ".rules", #rules, MAX_FAILURE_RULES)) end
  local names = container_names(spec)
  for i, rule in ipairs(rules) do
    local rp = string.format("%s.rules[%d]", path, i - 1)
    local action = rule.action
    if not present(action) or action == "" then
      errs:add(validation.required(rp .. ".action", 'valid values: ["Count" "FailIndex" "FailJob" "Ignore"]'))
    elseif action == "FailIndex" then
      if not present(spec.backoffLimitPerIndex) then
        errs:add(validation.invalid(rp .. ".action", action, "requires the backoffLimitPerIndex to be set"))
      end
    elseif action ~= "Count" and action ~= "FailJob" and action ~= "Ignore" then
      errs:add(validation.not_supported(rp .. ".action", action, ACTIONS))
    end
    local on_codes = is_table(rule.onExitCodes)
    local on_conds = #list(rule.onPodConditions) > 0
    if on_codes then validate_exit_codes(rule.onExitCodes, rp .. ".onExitCodes", names, errs) end
    if on_conds then validate_conditions(rule.onPodConditions, rp .. ".onPodConditions", errs) end
    if on_codes and on_conds then
      errs:add(validation.invalid(rp, json.null, "specifying both OnExitCodes and OnPodConditions is not supported"))
    elseif not on_codes and not on_conds then
      errs:add(validation.invalid(rp, json.null, "specifying one of OnExitCodes and OnPodConditions is required"))
    end
  end
end

local function validate_success_policy(spec, path, errs)
  local rules = list(spec.successPolicy.rules)
  if #rules == 0 then
    errs:add(validation.required(path .. ".rules",
      "at least one rules must be specified when the successPolicy is specified"))
  end
  if #rules > MAX_SUCCESS_RULES then errs:add(validation.too_many(path .. ".rules", #rules, MAX_SUCCESS_RULES)) end
  local completions = math.type(spec.completions) and spec.completions or 0
  for i, rule in ipairs(rules) do
    local rp = string.format("%s.rules[%d]", path, i - 1)
    local si, sc = rule.succeededIndexes, rule.succeededCount
    if not present(si) and not present(sc) then
      errs:add(validation.required(rp, "at least one of succeededCount or succeededIndexes must be specified"))
    end
    local total = 0
    if type(si) == "string" then
      if #si > MAX_SUCCEEDED_INDEXES_LEN then
        errs:add(validation.too_long(rp .. ".succeededIndexes", si, MAX_SUCCEEDED_INDEXES_LEN))
      end
      local n, err = indexes.validate(si, completions)
      if n then total = n else
        errs:add(validation.invalid(rp .. ".succeededIndexes", si, "error parsing succeededIndexes: " .. err))
      end
    end
    if math.type(sc) then
      nonneg(sc, rp .. ".succeededCount", errs)
      if sc > completions then
        errs:add(validation.invalid(rp .. ".succeededCount", sc, string.format(
          "must be less than or equal to %d (the number of specified completions)", completions)))
      end
      if type(si) == "string" and sc > total then
        errs:add(validation.invalid(rp .. ".succeededCount", sc, string.format(
          "must be less than or equal to %d (the number of indexes in the specified succeededIndexes field)", total)))
      end
    end
  end
end

-- The completion mode's rules, with those of backoffLimitPerIndex and
-- maxFailedIndexes that depend on it.
local function validate_completion_mode(spec, path, errs)
  local mode = spec.completionMode
  local per_index, max_failed = spec.backoffLimitPerIndex, spec.maxFailedIndexes
  if present(mode) and mode ~= "NonIndexed" and mode ~= "Indexed" then
    errs:add(validation.not_supported(path .. ".completionMode", mode, { "NonIndexed", "Indexed" }))
  end
  if mode == "Indexed" then
    local c, p = spec.completions, spec.parallelism
    if not present(c) then errs:add(validation.required(path .. ".completions", "when completion mode is Indexed")) end
    if math.type(p) and p > MAX_PARALLELISM_INDEXED then
      errs:add(validation.invalid(path .. ".parallelism", p,
        "must be less than or equal to 100000 when completion mode is Indexed"))
    end
    if math.type(c) and math.type(max_failed) and max_failed > c then
      errs:add(validation.invalid(path .. ".maxFailedIndexes", max_failed, "must be less than or equal to completions"))
    end
    if math.type(max_failed) and max_failed > MAX_FAILED_INDEXES then
      errs:add(validation.invalid(path .. ".maxFailedIndexes", max_failed, "must be less than or equal to 100000"))
    end
    if math.type(c) and c > COMPLETIONS_SOFT_LIMIT and present(per_index) then
      local suffix = " when completions are above 100000 and used with backoff limit per index"
      if not present(max_failed) then
        errs:add(validation.required(path .. ".maxFailedIndexes", "must be specified when completions is above 100000"))
      end
      if math.type(p) and p > PARALLELISM_HIGH_COMPLETIONS then
        errs:add(validation.invalid(path .. ".parallelism", p, "must be less than or equal to 10000" .. suffix))
      end
      if math.type(max_failed) and max_failed > MAX_FAILED_INDEXES_HIGH_COMPLETIONS then
        errs:add(validation.invalid(path .. ".maxFailedIndexes", max_failed, "must be less than or equal to 10000" .. suffix))
      end
    end
  else
    if present(per_index) then
      errs:add(validation.invalid(path .. ".backoffLimitPerIndex", per_index, "requires indexed completion mode"))
    end
    if present(max_failed) then
      errs:add(validation.invalid(path .. ".maxFailedIndexes", max_failed, "requires indexed completion mode"))
    end
  end
end

local function validate_template(spec, path, errs)
  local tpl = spec.template
  if not is_table(tpl) then
    errs:add(validation.required(path .. ".template", ""))
    return
  end
  local meta = is_table(tpl.metadata) and tpl.metadata or {}
  if meta.labels ~= nil then validation.validate_labels(meta.labels, path .. ".template.metadata.labels", errs) end
  if meta.annotations ~= nil then
    validation.validate_annotations(meta.annotations, path .. ".template.metadata.annotations", errs)
  end
  local ps = is_table(tpl.spec) and tpl.spec or {}
  podspec.validate(ps, path .. ".template.spec", errs, {})
  local rp, rpath = ps.restartPolicy, path .. ".template.spec.restartPolicy"
  if not present(rp) or rp == "" then
    errs:add(validation.required(rpath, 'valid values: "OnFailure", "Never"'))
  elseif rp ~= "OnFailure" and rp ~= "Never" then
    errs:add(validation.not_supported(rpath, rp, { "OnFailure", "Never" }))
  elseif present(spec.podFailurePolicy) and rp ~= "Never" then
    errs:add(validation.invalid(rpath, rp, 'only "Never" is supported when podFailurePolicy is specified'))
  end
end

--- validateJobSpec without the selector rules: counts, completion mode,
-- per-index limits, the policies, podReplacementPolicy and the template.
-- @param spec the JobSpec table; path "spec" or "spec.jobTemplate.spec"
function M.validate(spec, path, errs)
  for _, f in ipairs({ "parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
    "ttlSecondsAfterFinished", "backoffLimitPerIndex", "maxFailedIndexes" }) do
    nonneg(spec[f], path .. "." .. f, errs)
  end
  if present(spec.maxFailedIndexes) and not present(spec.backoffLimitPerIndex) then
    errs:add(validation.required(path .. ".backoffLimitPerIndex", "when maxFailedIndexes is specified"))
  end
  validate_completion_mode(spec, path, errs)
  if is_table(spec.podFailurePolicy) then validate_failure_policy(spec, path .. ".podFailurePolicy", errs) end
  if is_table(spec.successPolicy) then
    if spec.completionMode ~= "Indexed" then
      errs:add(validation.invalid(path .. ".successPolicy", spec.successPolicy, "requires indexed completion mode"))
    else
      validate_success_policy(spec, path .. ".successPolicy", errs)
    end
  end
  local prp = spec.podReplacementPolicy
  if present(prp) then
    if present(spec.podFailurePolicy) then
      if prp ~= "Failed" then errs:add(validation.not_supported(path .. ".podReplacementPolicy", prp, { "Failed" })) end
    elseif prp ~= "TerminatingOrFailed" and prp ~= "Failed" then
      errs:add(validation.not_supported(path .. ".podReplacementPolicy", prp, { "Failed", "TerminatingOrFailed" }))
    end
  end
  validate_template(spec, path, errs)
end

return M
