-- Node health as Kubernetes' node lifecycle controller judges it: a node
-- whose kubelet has posted no new status (its conditions'
-- lastHeartbeatTime) for the node monitor grace period (--node-monitor-grace-period, 40 s by
-- default) gets every condition set to Unknown, "Kubelet stopped posting
-- node status." (NotReady in kubectl), and the node.kubernetes.io/unreachable
-- taints; a node posting again loses the taints (its kubelet writes the
-- conditions back). Pure functions; plugins/controllers/nodelifecycle.lua
-- applies them.
local json = require("moonlet.json")

local M = { grace = 40 }

M.UNREACHABLE = "node.kubernetes.io/unreachable"

--- opts.grace: the node monitor grace period in seconds.
function M.configure(opts) M.grace = opts.grace or 40 end

local function parse_time(ts)
  return type(ts) == "string" and require("moonlet.printers.duration").parse(ts) or nil
end

--- The newest heartbeat of node's conditions (unix seconds), or nil.
function M.heartbeat(node)
  local newest
  for _, c in ipairs(((node or {}).status or {}).conditions or {}) do
    local t = parse_time(c.lastHeartbeatTime)
    if t and (not newest or t > newest) then newest = t end
  end
  return newest
end

--- The status of node's Ready condition ("True", "False", "Unknown") or nil.
function M.ready(node)
  for _, c in ipairs(((node or {}).status or {}).conditions or {}) do
    if c.type == "Ready" then return c.status end
  end
  return nil
end

--- Notes node's heartbeat in `seen` (name -> {hb=, at=}) as the
--- controller's health map does: the time is when a new heartbeat was
--- observed, on this clock (a joined machine's clock may be off, and a
--- restarted server gives every node a full grace period).
--- @return seconds until node goes stale (<= 0: stale), or nil for a node
--- that never posted a heartbeat
function M.observe(seen, node, now, grace)
  local hb = M.heartbeat(node)
  if not hb then return nil end
  local name = node.metadata.name
  local r = seen[name]
  if not r or r.hb ~= hb then
    r = { hb = hb, at = now }
    seen[name] = r
  end
  return r.at + (grace or M.grace) - now
end

--- node's conditions as the lifecycle controller writes them for a silent
--- kubelet: status Unknown, heartbeat kept, transition now.
function M.unknown_conditions(node, now)
  local out, stamp = {}, os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(now))
  for i, c in ipairs(((node or {}).status or {}).conditions or {}) do
    local n = {}
    for k, v in pairs(c) do n[k] = v end
    if c.status ~= "Unknown" then
      n.status, n.reason, n.message = "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."
      n.lastTransitionTime = stamp
    end
    out[i] = n
  end
  return json.array(out)
end

local function has(taints, effect)
  for _, t in ipairs(taints or {}) do
    if t.key == M.UNREACHABLE and t.effect == effect then return true end
  end
  return false
end

--- node's taints with the unreachable ones added (unreachable true) or
--- removed; nil when they are as wanted already.
function M.taints(node, unreachable, now)
  local taints = ((node or {}).spec or {}).taints or {}
  if unreachable then
    if has(taints, "NoSchedule") and has(taints, "NoExecute") then return nil end
    local out = {}
    for _, t in ipairs(taints) do if t.key ~= M.UNREACHABLE then out[#out + 1] = t end end
    out[#out + 1] = { key = M.UNREACHABLE, effect = "NoSchedule" }
    out[#out + 1] = { key = M.UNREACHABLE, effect = "NoExecute",
      timeAdded = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(now)) }
    return json.array(out)
  end
  if not (has(taints, "NoSchedule") or has(taints, "NoExecute")) then return nil end
  local out = {}
  for _, t in ipairs(taints) do if t.key ~= M.UNREACHABLE then out[#out + 1] = t end end
  return json.array(out)
end

return M
