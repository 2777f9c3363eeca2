-- Per-key exponential back-off with the kubelet's rules (client-go
-- flowcontrol.Backoff as the kubelet uses it for crash loops and image
-- pulls): the first event after a quiet period passes at once and arms
-- `initial`; each later one must wait `current` seconds since the event,
-- then doubles it up to `max`. An entry untouched for 2 * max expires.
local M = {}
local Backoff = {}
Backoff.__index = Backoff

--- opts: initial (seconds, default 10), max (default 300), clock() -> unix
--- seconds (default loop.time).
function M.new(opts)
  opts = opts or {}
  local clock = opts.clock
  if not clock then
    local loop = require("moonlet.loop")
    clock = loop.time
  end
  return setmetatable({ initial = opts.initial or 10, max = opts.max or 300, clock = clock,
    entries = {} }, Backoff)
end

local function expired(self, e, event_time)
  return event_time - e.last_update > 2 * self.max
end

--- True while `key` must still wait after an event at `event_time` (unix
--- seconds, e.g. the container's finishedAt); also the seconds left and the
--- current back-off.
--- @return bool, remaining, backoff
function Backoff:in_backoff_since(key, event_time)
  local e = self.entries[key]
  if not e or expired(self, e, event_time) then return false, 0, 0 end
  local remaining = e.backoff - (self.clock() - event_time)
  if remaining > 0 then return true, remaining, e.backoff end
  return false, 0, e.backoff
end

--- Seconds from now after which every event of `key` goes at once: 0 with
--- no entry or an expired one (expiry only comes closer with time).
function Backoff:quiet_in(key)
  local e = self.entries[key]
  if not e then return 0 end
  return math.max(0, e.last_update + 2 * self.max - self.clock())
end

--- Records that `key` goes ahead now (after an event at event_time): arms
--- the initial delay for a new or expired entry, else doubles it.
function Backoff:next(key, event_time)
  local e = self.entries[key]
  if not e or expired(self, e, event_time) then
    e = { backoff = self.initial }
    self.entries[key] = e
  else
    e.backoff = math.min(e.backoff * 2, self.max)
  end
  e.last_update = self.clock()
  return e.backoff
end

--- The current back-off of key (0 without an entry).
function Backoff:get(key)
  local e = self.entries[key]
  return e and e.backoff or 0
end

function Backoff:forget(key) self.entries[key] = nil end

--- Drops every entry whose key starts with prefix (a pod going away).
function Backoff:forget_prefix(prefix)
  for k in pairs(self.entries) do
    if k:sub(1, #prefix) == prefix then self.entries[k] = nil end
  end
end

--- Go's time.Duration String: 10s, 1m20s, 5m0s, 1h0m0s.
M.go_duration = require("moonlet.go_duration").format

return M
