-- node-lifecycle-controller: marks a node whose kubelet stopped posting
-- status NotReady (conditions Unknown) with the unreachable taints once
-- the node monitor grace period passed, and lifts the taints when it posts
-- again (moonlet.node_health). Each heartbeat is a Node update that wakes
-- it; a node that is quiet is looked at again when its grace runs out.
local health = require("moonlet.node_health")

local seen = {} -- node name -> { hb = heartbeat, at = when it was seen }

local function msg_of(st) return type(st) == "table" and tostring(st.message) or tostring(st) end

return {
  name = "node-lifecycle-controller",
  kind = "v1/Node",

  reconcile = function(ctx, key, node)
    if not node then
      seen[key] = nil
      return
    end
    local now = ctx.now()
    local left = health.observe(seen, node, now, health.grace)
    if not left then return end -- never posted: nothing to judge yet
    local stale = left <= 0
    -- Taints follow the judgement: on when stale, off once Ready again.
    local taints = (stale or health.ready(node) == "True") and health.taints(node, stale, now)
    if taints then
      node.spec = node.spec or {}
      node.spec.taints = #taints > 0 and taints or nil
      local upd, err = ctx.client:update("v1/Node", node)
      if not upd then error("taints of node " .. node.metadata.name .. ": " .. msg_of(err)) end
      node = upd
    end
    if not stale then return { requeue_after = left + 0.5 } end
    if health.ready(node) ~= "Unknown" then
      node.status.conditions = health.unknown_conditions(node, now)
      local ok, err = ctx.client:update_status("v1/Node", node)
      if not ok then error("status of node " .. node.metadata.name .. ": " .. msg_of(err)) end
      ctx.log("info", "node %s: kubelet stopped posting node status", node.metadata.name)
    end
  end,
}
