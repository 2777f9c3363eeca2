-- moonlet.api.event_ttl: Events expire, as kube-apiserver's --event-ttl
-- (default 1h) makes them expire through storage leases. A sweep every
-- tenth of the TTL (at most every minute) deletes, through the API, the
-- Events whose last occurrence is older than the TTL, so watchers see them
-- go. Part of the API server, not a controller: no cache of every Event
-- is kept, only a list during a sweep.
local duration = require("moonlet.printers.duration")
local loop = require("moonlet.loop")

local M = {}

M.DEFAULT_TTL = 3600

local function last_seen(ev)
  return duration.parse(ev.lastTimestamp) or duration.parse(ev.eventTime)
    or duration.parse((ev.metadata or {}).creationTimestamp)
end

--- Deletes every Event older than `ttl` seconds at `now` through `client`.
--- @return the number deleted
function M.sweep(client, ttl, now)
  local res = client:list("v1/Event", {})
  local n = 0
  for _, ev in ipairs(res and res.items or {}) do
    local seen = last_seen(ev)
    if seen and seen + ttl <= now then
      local md = ev.metadata
      if client:delete("v1/Event", md.namespace, md.name, { preconditions = { uid = md.uid } }) then
        n = n + 1
      end
    end
  end
  return n
end

--- Sweeps every min(ttl / 10, 60) seconds until the returned stop() runs.
--- opts: client, ttl (seconds), clock() (default loop.time).
function M.start(opts)
  local ttl = opts.ttl or M.DEFAULT_TTL
  local clock = opts.clock or loop.time
  local period_ms = math.max(100, math.floor(math.min(ttl / 10, 60) * 1000))
  local timer, stopped
  local function tick()
    timer = nil
    M.sweep(opts.client, ttl, clock())
    -- A stop during the sweep must not be undone by re-arming.
    if not stopped then timer = loop.timer(period_ms, tick) end
  end
  timer = loop.timer(period_ms, tick)
  return function()
    stopped = true
    if timer then timer.stop() end
  end
end

return M
