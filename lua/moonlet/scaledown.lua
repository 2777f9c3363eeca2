-- Scale-down policy registry: which of a ReplicaSet's active pods go first
-- when it has too many. The default (Kubernetes' ActivePodsWithRanks order)
-- is plugins/policies/scaledown/default.lua; a scripts dir's
-- policies/scaledown/*.lua adds or replaces policies. A ReplicaSet picks one
-- by name with the annotation scaledown.moonlet.dev/policy.
--
-- A policy plugin returns { name = "default", less = function(a, b, info)
-- return bool end }: true when pod `a` should be deleted before pod `b`.
-- info: now (unix seconds), rank(pod) (active sibling pods on pod's node,
-- itself included), ready(pod), ready_time(pod), restarts(pod), time(ts)
-- (RFC 3339 -> unix seconds or nil).
local M = {}

M.ANNOTATION = "scaledown.moonlet.dev/policy"
M.DEFAULT = "default"

local base = require("moonlet.policy_registry").new({ type = "scaledown", fn = "less",
  what = "scale-down policy", example = "default" })
M.check, M.load, M.register, M.get, M.reset = base.check, base.load, base.register, base.get, base.reset

--- Names of the known policies, sorted.
function M.names() return base.names() end

local function time_of(ts)
  if type(ts) ~= "string" or ts == "" then return nil end
  return require("moonlet.printers.duration").parse(ts)
end

local function ready_cond(pod)
  for _, c in ipairs(((pod.status or {}).conditions) or {}) do
    if c.type == "Ready" then return c end
  end
  return nil
end

--- The info table a policy's less() receives for a set of candidates.
function M.info(pods, now)
  local on_node = {}
  for _, p in ipairs(pods) do
    local n = (p.spec or {}).nodeName or ""
    on_node[n] = (on_node[n] or 0) + 1
  end
  local info = { now = now, time = time_of }
  function info.rank(pod) return on_node[(pod.spec or {}).nodeName or ""] or 0 end
  function info.ready(pod)
    local c = ready_cond(pod)
    return c ~= nil and c.status == "True"
  end
  function info.ready_time(pod)
    local c = ready_cond(pod)
    return c and c.status == "True" and time_of(c.lastTransitionTime) or nil
  end
  function info.restarts(pod)
    local max = 0
    for _, cs in ipairs(((pod.status or {}).containerStatuses) or {}) do
      if (cs.restartCount or 0) > max then max = cs.restartCount end
    end
    return max
  end
  return info
end

--- The `n` pods of `pods` to delete under `policy` (a name or a policy
--- table; unknown names use the default). Deleting all needs no order.
--- The sort is stable: equal pods keep their order.
--- @return list of pods, the policy name used
function M.victims(pods, n, policy, now)
  local p = type(policy) == "table" and policy or M.get(policy or M.DEFAULT) or M.get(M.DEFAULT)
  if not p then error("scaledown: no default policy loaded", 2) end
  if n >= #pods then
    local all = {}
    for i, x in ipairs(pods) do all[i] = x end
    return all, p.name
  end
  local info = M.info(pods, now or os.time())
  local idx = {}
  for i, x in ipairs(pods) do idx[x] = i end
  local sorted = {}
  for i, x in ipairs(pods) do sorted[i] = x end
  table.sort(sorted, function(a, b)
    if p.less(a, b, info) then return true end
    if p.less(b, a, info) then return false end
    return idx[a] < idx[b]
  end)
  local out = {}
  for i = 1, n do out[i] = sorted[i] end
  return out, p.name
end

return M
