-- job_policies: the Job controller's reading of a Job's podFailurePolicy
-- (which failed pods count, which fail the Job or their index, which are
-- ignored), its successPolicy (Indexed Jobs that succeed before every index
-- has) and backoffLimitPerIndex's per-index failure counts, carried from a
-- failed pod to its replacement in annotations. Semantics 10; Kubernetes'
-- pkg/controller/job pod_failure_policy.go, success_policy.go and
-- indexed_job_utils.go.
local json = require("moonlet.json")
local indexes = require("moonlet.job_indexes")

local M = {}

M.FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
M.IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"

local function is_table(v) return type(v) == "table" and v ~= json.null end
local function list(v) return is_table(v) and v or {} end

local function operator_matches(code, req)
  local found = false
  for _, v in ipairs(list(req.values)) do
    if v == code then found = true break end
  end
  if req.operator == "In" then return found end
  if req.operator == "NotIn" then return not found end
  return false
end

-- The first terminated container (app containers, then init containers)
-- whose non-zero exit code the requirement matches.
local function match_exit_codes(status, req)
  for _, l in ipairs({ list(status.containerStatuses), list(status.initContainerStatuses) }) do
    for _, cs in ipairs(l) do
      local t = is_table(cs.state) and cs.state.terminated
      if is_table(t) and (req.containerName == nil or req.containerName == json.null
        or req.containerName == cs.name) and (t.exitCode or 0) ~= 0
        and operator_matches(t.exitCode, req) then
        return cs, t.exitCode
      end
    end
  end
  return nil
end

local function match_pod_conditions(status, patterns)
  for _, c in ipairs(list(status.conditions)) do
    for _, p in ipairs(patterns) do
      if c.type == p.type and c.status == (p.status or "True") then return c end
    end
  end
  return nil
end

--- Matches a failed pod against a pod failure policy (matchPodFailurePolicy).
-- @return the Job failure message (FailJob) or nil, whether the failure
--   counts towards the back-off limits, the matched action or nil
function M.match_failure(policy, pod)
  if not is_table(policy) then return nil, true, nil end
  local status = is_table(pod.status) and pod.status or {}
  for i, rule in ipairs(list(policy.rules)) do
    local ix = i - 1
    local msg
    if is_table(rule.onExitCodes) then
      local cs, code = match_exit_codes(status, rule.onExitCodes)
      if cs then
        msg = string.format("Container %s for pod %s/%s failed with exit code %d matching %s rule at index %d",
          cs.name, pod.metadata.namespace, pod.metadata.name, code, rule.action, ix)
      end
    elseif is_table(rule.onPodConditions) and #rule.onPodConditions > 0 then
      local c = match_pod_conditions(status, rule.onPodConditions)
      if c then
        msg = string.format("Pod %s/%s has condition %s matching %s rule at index %d",
          pod.metadata.namespace, pod.metadata.name, c.type, rule.action, ix)
      end
    end
    if msg then
      if rule.action == "Ignore" then return nil, false, "Ignore" end
      if rule.action == "Count" then return nil, true, "Count" end
      if rule.action == "FailJob" then return msg, true, "FailJob" end
      if rule.action == "FailIndex" then return nil, true, "FailIndex" end
    end
  end
  return nil, true, nil
end

--- The message of the first failed pod a FailJob rule matches
--- (getFailJobMessage); `failed(pod)` says which pods failed. Without a
--- policy the pods are not looked at.
function M.fail_job_message(policy, pods, failed)
  if not is_table(policy) then return nil end
  for _, p in ipairs(pods) do
    if failed(p) then
      local msg = M.match_failure(policy, p)
      if msg then return msg end
    end
  end
  return nil
end

--- Matches the succeeded indexes against a success policy (matchSuccessPolicy).
-- @return "Matched rules at index N", or nil
function M.match_success(policy, completions, succeeded)
  if not is_table(policy) or next(succeeded) == nil then return nil end
  local total = indexes.count(succeeded)
  for i, rule in ipairs(list(policy.rules)) do
    local count = math.type(rule.succeededCount) and rule.succeededCount or nil
    if type(rule.succeededIndexes) == "string" then
      local required = indexes.parse(rule.succeededIndexes, completions)
      local need, have = 0, 0
      for ix in pairs(required) do
        need = need + 1
        if succeeded[ix] then have = have + 1 end
      end
      if need > 0 and (have == need or (count and have >= count)) then
        return "Matched rules at index " .. (i - 1)
      end
    elseif count and total >= count then
      return "Matched rules at index " .. (i - 1)
    end
  end
  return nil
end

local function annotation_count(pod, key)
  local v = is_table(pod.metadata.annotations) and pod.metadata.annotations[key]
  local n = type(v) == "string" and v:match("^%d+$") and math.tointeger(tonumber(v))
  if not n or n > 2147483647 then return 0 end
  return n
end

--- The index failure count a pod carries (0 when absent or malformed).
function M.failure_count(pod) return annotation_count(pod, M.FAILURE_COUNT) end

--- Counted plus ignored failures of the pod's index before it.
function M.absolute_failure_count(pod)
  return annotation_count(pod, M.FAILURE_COUNT) + annotation_count(pod, M.IGNORED_FAILURE_COUNT)
end

--- The annotations of the pod that replaces failed `pod` in its index
-- (getNewIndexFailureCounts): its counts plus this failure.
-- @return failure count, ignored failure count
function M.next_failure_counts(job, pod)
  if not pod then return 0, 0 end
  local failed, ignored = M.failure_count(pod), annotation_count(pod, M.IGNORED_FAILURE_COUNT)
  local _, counts = M.match_failure(job.spec.podFailurePolicy, pod)
  if counts then failed = failed + 1 else ignored = ignored + 1 end
  return failed, ignored
end

--- Whether failed `pod` ends its index (isIndexFailed): a FailIndex rule
-- matched, or its counted failures reached backoffLimitPerIndex.
function M.index_failed(job, pod)
  local _, counts, action = M.match_failure(job.spec.podFailurePolicy, pod)
  if action == "FailIndex" then return true end
  return counts and M.failure_count(pod) >= job.spec.backoffLimitPerIndex
end

return M
