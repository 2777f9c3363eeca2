-- Memory back to the system after a burst (pods started, a rollout): once
-- the loop has been quiet for a tick and the RSS grew since the last time,
-- a full Lua collection, then malloc_trim (glibc keeps the pages a burst
-- freed). With 1,000 pods started that is ~10 MB. Nothing happens while
-- the server is busy, nor while it stays idle.
--   local t = require("moonlet.idle_trim").start()   -- t.close() to stop
local M = {}

local GROWTH = 2 * 1024 * 1024 -- at least this much, or 10%, since the last trim

--- A trimmer (not started). opts (all optional, for tests): activity() ->
--- events delivered so far, rss() -> bytes, collect(), trim().
--- @return { tick = fn, trims = n }
function M.new(opts)
  opts = opts or {}
  local runtime = require("moonlet.core.runtime")
  local activity = opts.activity or runtime.activity
  local rss = opts.rss or require("moonlet.core.sys").rss
  local collect = opts.collect or function() collectgarbage() end
  local trim = opts.trim or runtime.trim
  local self = { trims = 0 }
  local last, floor = activity(), rss()
  --- One tick of the timer: a tick is itself one event.
  function self.tick()
    local now = activity()
    local quiet = now - last <= 1
    last = now
    if not quiet then return false end
    local cur = rss()
    if not cur or not floor or cur < floor + math.max(GROWTH, floor // 10) then return false end
    collect()
    trim()
    self.trims = self.trims + 1
    floor = rss() or cur
    last = activity()
    return true
  end
  return self
end

--- Starts a trimmer on a timer (every `ms`, default 500).
--- @return handle with close()
function M.start(ms)
  local t = M.new()
  return require("moonlet.loop").timer(ms or 500, t.tick, ms or 500)
end

return M
