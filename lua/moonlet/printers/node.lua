-- How kubectl summarises a node (printNode, findNodeRoles): STATUS from the
-- Ready condition plus SchedulingDisabled, ROLES from the node-role labels,
-- and the addresses and system info of `-o wide`. Shared by the Node kind's
-- printer columns and `describe node`.
local json = require("moonlet.json")

local M = {}

local function is_table(v) return type(v) == "table" and v ~= json.null end
local function list(v) return is_table(v) and v or {} end

local ROLE_PREFIX = "node-role.kubernetes.io/"
local ROLE_LABEL = "kubernetes.io/role"

--- Sorted, de-duplicated roles from the labels.
function M.roles(node)
  local set, out = {}, {}
  for k, v in pairs(list(node.metadata and node.metadata.labels)) do
    if k:sub(1, #ROLE_PREFIX) == ROLE_PREFIX then
      local role = k:sub(#ROLE_PREFIX + 1)
      if role ~= "" then set[role] = true end
    elseif k == ROLE_LABEL and v ~= "" then
      set[v] = true
    end
  end
  for r in pairs(set) do out[#out + 1] = r end
  table.sort(out)
  return out
end

--- ROLES column: comma-joined or <none>.
function M.roles_text(node)
  local r = M.roles(node)
  return #r == 0 and "<none>" or table.concat(r, ",")
end

--- STATUS: Ready | NotReady | Unknown, plus ",SchedulingDisabled".
function M.status(node)
  local parts = {}
  for _, c in ipairs(list(node.status and node.status.conditions)) do
    if is_table(c) and c.type == "Ready" then
      parts[1] = c.status == "True" and "Ready" or "NotReady"
    end
  end
  if #parts == 0 then parts[1] = "Unknown" end
  if is_table(node.spec) and node.spec.unschedulable == true then parts[#parts + 1] = "SchedulingDisabled" end
  return table.concat(parts, ",")
end

--- The first address of a type ("InternalIP", "ExternalIP") or <none>.
function M.address(node, typ)
  for _, a in ipairs(list(node.status and node.status.addresses)) do
    if is_table(a) and a.type == typ then return a.address end
  end
  return "<none>"
end

--- A nodeInfo field or <unknown> (OS-IMAGE, KERNEL-VERSION, CONTAINER-RUNTIME).
function M.info(node, field)
  local info = is_table(node.status) and is_table(node.status.nodeInfo) and node.status.nodeInfo or {}
  local v = info[field]
  if type(v) ~= "string" or v == "" then return "<unknown>" end
  return v
end

return M
