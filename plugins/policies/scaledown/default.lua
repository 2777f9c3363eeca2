-- Scale-down policy "default": Kubernetes' ActivePodsWithRanks order with
-- LogarithmicScaleDown (semantics 4.3). Deleted first: unassigned pods,
-- then Pending < Unknown < Running, not ready, lower pod-deletion-cost,
-- more siblings on the same node, more recently ready (log2 buckets, ties
-- by uid), more restarts, newer (log2 buckets, ties by uid).
local COST = "controller.kubernetes.io/pod-deletion-cost"
local PHASE = { Pending = 0, Unknown = 1, Running = 2 }

local function cost(pod)
  local v = tonumber(((pod.metadata or {}).annotations or {})[COST] or "")
  if v and math.type(v) == "integer" and v >= -2147483648 and v <= 2147483647 then return v end
  return 0
end

-- floor(log2(nanoseconds since t)), -1 when t is not in the past.
local function bucket(t, now)
  local d = (now - t) * 1e9
  if d <= 0 then return -1 end
  return math.floor(math.log(d, 2))
end

-- t1 "after or zero" t2, on log2 buckets of their age; the uid breaks ties.
local function newer_first(a, b, t1, t2, now)
  if t1 == t2 then return nil end
  if t1 == nil or t2 == nil then return t1 == nil end
  local diff = bucket(t1, now) - bucket(t2, now)
  if diff == 0 then return (a.metadata.uid or "") < (b.metadata.uid or "") end
  return diff < 0
end

return {
  name = "default",
  less = function(a, b, info)
    local na, nb = (a.spec or {}).nodeName or "", (b.spec or {}).nodeName or ""
    if na ~= nb and (na == "" or nb == "") then return na == "" end
    local pa = PHASE[(a.status or {}).phase] or 0
    local pb = PHASE[(b.status or {}).phase] or 0
    if pa ~= pb then return pa < pb end
    local ra, rb = info.ready(a), info.ready(b)
    if ra ~= rb then return not ra end
    local ca, cb = cost(a), cost(b)
    if ca ~= cb then return ca < cb end
    local ka, kb = info.rank(a), info.rank(b)
    if ka ~= kb then return ka > kb end
    if ra and rb then
      local r = newer_first(a, b, info.ready_time(a), info.ready_time(b), info.now)
      if r ~= nil then return r end
    end
    local sa, sb = info.restarts(a), info.restarts(b)
    if sa ~= sb then return sa > sb end
    local r = newer_first(a, b, info.time(a.metadata.creationTimestamp), info.time(b.metadata.creationTimestamp),
      info.now)
    if r ~= nil then return r end
    return false
  end,
}
