-- moonlet.nodematch: whether a pod spec may go to a node, as Kubernetes'
-- component-helpers decide it: nodeSelector, required node affinity (terms
-- ORed, requirements ANDed; In NotIn Exists DoesNotExist Gt Lt on labels,
-- In/NotIn on metadata.name) and taints against tolerations. Shared by the
-- scheduler and the DaemonSet controller so both answer alike.
local M = {}

local function is_table(v) return type(v) == "table" end

-- One NodeSelectorRequirement against a value (has = present); Gt and Lt
-- compare integers, anything malformed never matches.
local function requirement_matches(req, has, value)
  local op, values = req.operator, is_table(req.values) and req.values or {}
  local function within()
    for _, v in ipairs(values) do if v == value then return true end end
    return false
  end
  if op == "In" then return has and within()
  elseif op == "NotIn" then return not has or not within()
  elseif op == "Exists" then return has
  elseif op == "DoesNotExist" then return not has
  elseif op == "Gt" or op == "Lt" then
    local a = has and math.tointeger(tonumber(value))
    local b = #values == 1 and math.tointeger(tonumber(values[1]))
    if not a or not b then return false end
    if op == "Gt" then return a > b end
    return a < b
  end
  return false
end

--- A NodeSelectorTerm against a node: every matchExpressions entry (node
--- labels) and matchFields entry (metadata.name only) holds; an empty term
--- matches no node.
function M.term_matches(term, node)
  if not is_table(term) then return false end
  local exprs = is_table(term.matchExpressions) and term.matchExpressions or {}
  local fields = is_table(term.matchFields) and term.matchFields or {}
  if #exprs == 0 and #fields == 0 then return false end
  local labels = (node.metadata or {}).labels or {}
  for _, req in ipairs(exprs) do
    local v = labels[req.key]
    if not requirement_matches(req, v ~= nil, v) then return false end
  end
  for _, req in ipairs(fields) do
    if req.key ~= "metadata.name" or (req.operator ~= "In" and req.operator ~= "NotIn") then return false end
    if not requirement_matches(req, true, node.metadata.name) then return false end
  end
  return true
end

--- Required node affinity of a pod spec (true when there is none).
function M.affinity_matches(spec, node)
  local aff = is_table(spec.affinity) and spec.affinity.nodeAffinity
  local req = is_table(aff) and aff.requiredDuringSchedulingIgnoredDuringExecution
  if not is_table(req) then return true end
  for _, term in ipairs(is_table(req.nodeSelectorTerms) and req.nodeSelectorTerms or {}) do
    if M.term_matches(term, node) then return true end
  end
  return false
end

--- spec.nodeSelector: every key=value among the node's labels.
function M.selector_matches(spec, node)
  local labels = (node.metadata or {}).labels or {}
  for k, v in pairs(is_table(spec.nodeSelector) and spec.nodeSelector or {}) do
    if labels[k] ~= v then return false end
  end
  return true
end

--- Toleration.ToleratesTaint: effect empty or equal, key empty (with
--- Exists) or equal, Exists or Equal (the default) with the same value.
function M.tolerates(tol, taint)
  if (tol.effect or "") ~= "" and tol.effect ~= taint.effect then return false end
  local op = (tol.operator == nil or tol.operator == "") and "Equal" or tol.operator
  if (tol.key or "") == "" then return op == "Exists" end
  if tol.key ~= taint.key then return false end
  if op == "Exists" then return true end
  return op == "Equal" and (tol.value or "") == (taint.value or "")
end

--- The first taint among `taints` whose effect passes `filter(effect)` and
--- that no toleration tolerates, or nil.
function M.untolerated(tolerations, taints, filter)
  for _, taint in ipairs(is_table(taints) and taints or {}) do
    if filter(taint.effect) then
      local ok = false
      for _, tol in ipairs(is_table(tolerations) and tolerations or {}) do
        if M.tolerates(tol, taint) then ok = true; break end
      end
      if not ok then return taint end
    end
  end
  return nil
end

return M
