-- event-ttl: deletes Events once they are older than the server's
-- --event-ttl (default 1h), as kube-apiserver does with etcd leases, so a
-- long-running server's event history stays bounded. Age counts from the
-- last occurrence: an aggregated Event that keeps recurring stays.
local duration = require("moonlet.printers.duration")

local DEFAULT_TTL = 3600

local function last_seen(ev)
  return duration.parse(ev.lastTimestamp) or duration.parse(ev.eventTime)
    or duration.parse((ev.metadata or {}).creationTimestamp)
end

return {
  name = "event-ttl",
  kind = "v1/Event",
  workers = 1,
  reconcile = function(ctx, key, ev)
    if not ev then return nil end
    local ttl = ctx.options.event_ttl or DEFAULT_TTL
    local seen = last_seen(ev)
    if not seen then return nil end
    local left = seen + ttl - ctx.now()
    if left > 0 then return { requeue_after = left } end
    local md = ev.metadata
    local ok, st = ctx.client:delete("v1/Event", md.namespace, md.name,
      { preconditions = { uid = md.uid } })
    if not ok and not (type(st) == "table" and (st.code == 404 or st.code == 409)) then
      error("delete event " .. key .. ": " .. tostring(type(st) == "table" and st.message or st), 0)
    end
    return nil
  end,
}
