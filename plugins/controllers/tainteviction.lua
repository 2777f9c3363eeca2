-- taint-eviction-controller: evicts the pods of a node with NoExecute
-- taints, as kube-controller-manager's does. A pod that does not tolerate
-- one of them goes at once; one that tolerates them all goes when the
-- shortest tolerationSeconds among the matching tolerations has passed since
-- the taint was added (timeAdded); one that tolerates them forever stays.
-- So when a joined node goes unreachable, its pods (which tolerate that for
-- 300 s by the DefaultTolerationSeconds admission) are deleted after 5
-- minutes and their owners make new ones on the nodes that are left. The
-- deleted pods stay Terminating until their kubelet confirms, as upstream.
local nodematch = require("moonlet.nodematch")
local parse_time = require("moonlet.tz").parse_rfc3339
local podutil = require("moonlet.controller.podutil")

local function no_execute(node)
  local out = {}
  for _, t in ipairs(((node or {}).spec or {}).taints or {}) do
    if t.effect == "NoExecute" then out[#out + 1] = t end
  end
  return out
end

--- When pod must leave a node with NoExecute `taints` (unix seconds; taints
--- without timeAdded count from `now`): 0 for at once, nil for never.
local function eviction_time(pod, taints, now)
  local tols = (pod.spec or {}).tolerations or {}
  local at
  for _, taint in ipairs(taints) do
    local seconds, tolerated = nil, false
    for _, tol in ipairs(tols) do
      if nodematch.tolerates(tol, taint) then
        tolerated = true
        local s = tol.tolerationSeconds
        if s == nil then
          seconds = seconds or false -- forever, unless another says less
        else
          s = math.max(0, tonumber(s) or 0)
          if not seconds or s < seconds then seconds = s end
        end
      end
    end
    if not tolerated then return 0 end
    if seconds then
      local t = (parse_time(taint.timeAdded) or now) + seconds
      if not at or t < at then at = t end
    end
  end
  return at
end

local M = {
  name = "taint-eviction-controller",
  kind = "v1/Node",
  eviction_time = eviction_time,

  -- The pods are read from the shared informer's cache.
  setup = function(ctx) ctx:watch("v1/Pod", {}) end,

  reconcile = function(ctx, _, node)
    if not node then return end
    local taints = no_execute(node)
    if #taints == 0 then return end
    local name, now = node.metadata.name, ctx.now()
    local due, next_at = {}, nil
    ctx:each_cached("v1/Pod", function(pod)
      if (pod.spec or {}).nodeName ~= name or not podutil.active(pod) then return end
      local at = eviction_time(pod, taints, now)
      if at and at <= now then due[#due + 1] = pod
      elseif at and (not next_at or at < next_at) then next_at = at end
    end)
    for _, pod in ipairs(due) do
      local md = pod.metadata
      ctx:event(pod, "Normal", "TaintManagerEviction", "Marking for deletion Pod " .. md.namespace .. "/" .. md.name)
      local ok, st = ctx.client:delete("v1/Pod", md.namespace, md.name, { preconditions = { uid = md.uid } })
      if not ok and not (type(st) == "table" and (st.code == 404 or st.code == 409)) then
        error("evicting " .. md.namespace .. "/" .. md.name .. ": " .. tostring(type(st) == "table" and st.message or st))
      end
    end
    if next_at then return { requeue_after = next_at - now + 0.1 } end
  end,
}

return M
