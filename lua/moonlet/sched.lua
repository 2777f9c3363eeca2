-- Coroutine scheduler: every script runs in a coroutine; a call that waits
-- yields on an event id and is resumed when the core delivers that id.
-- Events for ids nobody waits on yet are kept in order (streams), so a
-- consumer never misses one between two waits.
local runtime = require("moonlet.core.runtime")

local M = {}

local waiting = {}   -- id -> coroutine parked in M.wait
local pending = {}   -- id -> { {n=, ...}, ... } delivered, not yet taken
local handlers = {}  -- id -> function called for every event (M.on)
local names = setmetatable({}, { __mode = "k" }) -- coroutine -> owner name

local function report(co, err)
  runtime.log("error", string.format("%s: %s", names[co] or "coroutine",
    debug.traceback(co, tostring(err))))
end

local function resume(co, ...)
  local ok, err = coroutine.resume(co, ...)
  if not ok then report(co, err) end
  if coroutine.status(co) == "dead" then names[co] = nil end
end

--- Runs fn(...) in a new coroutine now; errors are logged with `name`.
function M.spawn(name, fn, ...)
  local co = coroutine.create(fn)
  names[co] = name
  resume(co, ...)
  return co
end

-- Handler coroutines are reused: a new one per event (a lua_State, its
-- stack, an entry in `names`, later the collector's work) was a visible
-- share of every API request. A worker runs one handler call, then parks
-- itself here unless enough are parked; a call that waits (M.wait) parks
-- only after it is resumed and returns.
local idle = {}
local IDLE_MAX = 32

local function worker(h, ...)
  h(...)
  if #idle >= IDLE_MAX then return end
  idle[#idle + 1] = coroutine.running()
  return worker(coroutine.yield())
end

--- Called by the core for each delivered event.
function M.dispatch(id, ...)
  local h = handlers[id]
  if h then
    local n = #idle
    local co = idle[n]
    if co then
      idle[n] = nil
    else
      co = coroutine.create(worker)
      names[co] = "handler"
    end
    return resume(co, h, ...)
  end
  local co = waiting[id]
  if co then
    waiting[id] = nil
    return resume(co, ...)
  end
  local q = pending[id]
  if not q then
    q = {}
    pending[id] = q
  end
  q[#q + 1] = table.pack(...)
end

--- Parks the running coroutine until event `id` arrives; returns its values.
function M.wait(id)
  local q = pending[id]
  if q then
    local item = table.remove(q, 1)
    if #q == 0 then pending[id] = nil end
    return table.unpack(item, 1, item.n)
  end
  local co, main = coroutine.running()
  assert(not main, "moonlet: a waiting call needs a coroutine (use sched.spawn)")
  waiting[id] = co
  return coroutine.yield()
end

--- Calls fn(...) in a fresh coroutine for every event delivered to `id`.
function M.on(id, fn) handlers[id] = fn end

--- Forgets everything about `id` (handlers, queued events, a waiter).
function M.forget(id)
  handlers[id], pending[id], waiting[id] = nil, nil, nil
end

--- Resumes a coroutine parked on `id` with the given values (cancellation,
--- timeouts): the waiter sees them as the event's values.
function M.wake(id, ...)
  local co = waiting[id]
  if co then
    waiting[id] = nil
    resume(co, ...)
    return true
  end
  return false
end

function M.in_coroutine()
  local _, main = coroutine.running()
  return not main
end

--- Runs the loop until fn (run in a coroutine) returns; returns its values.
--- This is how CLI verbs, `moonlet lua` scripts and specs drive async code.
function M.run(fn, ...)
  local result, done, failed
  M.spawn("main", function(...)
    local r = table.pack(xpcall(fn, debug.traceback, ...))
    done = true
    if r[1] then result = r else failed = r[2] end
  end, ...)
  if not done then runtime.run(function() return done end) end
  if failed then error(failed, 0) end
  if not done then error("moonlet: loop ran dry before the main coroutine finished", 0) end
  return table.unpack(result, 2, result.n)
end

--- Counts of scheduler state, for leak checks in specs.
function M.stats()
  local n = { waiting = 0, pending = 0, handlers = 0 }
  for _ in pairs(waiting) do n.waiting = n.waiting + 1 end
  for _ in pairs(pending) do n.pending = n.pending + 1 end
  for _ in pairs(handlers) do n.handlers = n.handlers + 1 end
  return n
end

runtime.set_dispatcher(M.dispatch)

return M
