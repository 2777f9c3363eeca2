-- moonlet.loop: time and timers for scripts. sleep() and idle() yield the
-- calling coroutine; timers call back in fresh coroutines.
local core = require("moonlet.core.loop")
local sched = require("moonlet.sched")

local M = {
  now = core.now,       -- monotonic ms, cached per loop turn
  hrtime = core.hrtime, -- monotonic ns
  time = core.time,     -- wall clock, seconds (float)
  next_id = core.next_id,
}

--- Suspends the calling coroutine for `ms` milliseconds.
function M.sleep(ms)
  local id = core.next_id()
  local t = core.timer(id, math.max(0, math.floor(ms)))
  sched.wait(id)
  t:close()
end

--- Parks the calling coroutine until the loop has nothing else to do (a
--- turn polled and found no event queued for Lua), or until `timeout_ms`
--- passed when given: the wait of work of low priority, which under
--- constant load needs the timeout as its bound. `id` (from next_id) lets
--- another coroutine end the wait early with sched.wake(id).
--- @return true when the loop went idle, false on the timeout or a wake
function M.idle(timeout_ms, id)
  id = id or core.next_id()
  core.idle(id)
  local t = timeout_ms and core.timer(id, math.max(0, math.floor(timeout_ms)))
  local idle = sched.wait(id) == true
  -- Whichever came second is still queued or waiting: drop it.
  if t then t:close() end
  core.cancel(id)
  return idle
end

--- Calls fn() after `ms` (and every `repeat_ms` if given). Returns a handle
--- with :stop() / :close(); a one-shot timer closes itself after firing.
function M.timer(ms, fn, repeat_ms)
  local id = core.next_id()
  local t = core.timer(id, math.max(0, math.floor(ms)), repeat_ms or 0)
  local handle = {}
  sched.on(id, function()
    if not repeat_ms or repeat_ms == 0 then
      sched.forget(id)
      t:close()
    end
    fn()
  end)
  function handle.stop()
    sched.forget(id)
    t:close()
  end
  handle.close = handle.stop
  return handle
end

--- Calls fn(signum) for each delivery of signal `name` ("SIGTERM", ...).
function M.on_signal(name, fn)
  local id = core.next_id()
  local w, err = core.signal(id, name)
  if not w then return nil, err end
  sched.on(id, fn)
  return { close = function() sched.forget(id); w:close() end }
end

--- The signals that stop a server or a node (SIGINT, SIGTERM): each logs
--- `received NAME, shutting down` through log(level, msg) and wakes `id`
--- (sched.wait(id) returns the name). @return the handles, to close
function M.on_stop_signals(id, log)
  local handles = {}
  for _, name in ipairs({ "SIGINT", "SIGTERM" }) do
    handles[#handles + 1] = M.on_signal(name, function()
      log("info", "received " .. name .. ", shutting down")
      sched.wake(id, name)
    end)
  end
  return handles
end

M.run = sched.run
M.spawn = sched.spawn

return M
