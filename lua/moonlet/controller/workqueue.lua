-- moonlet.controller.workqueue: the controller work queue with client-go
-- semantics. Keys are de-duplicated (dirty set); a key being processed
-- that is added again waits until done() (processing set), so no two
-- workers ever hold one key; add_after delays; add_batched gathers keys
-- for a short window under one timer; add_rate_limited delays by a rate
-- limiter (moonlet.controller.ratelimit). get() parks the calling
-- coroutine on the moonlet scheduler; waiters are woken on the next loop
-- turn, never from inside add(), so producers are not re-entered.
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local ratelimit = require("moonlet.controller.ratelimit")
local util = require("moonlet.controller.util")

local M = {}
local Queue = {}
Queue.__index = Queue

--- Creates a queue. opts: name (for logs), rate_limiter (default:
--- ratelimit.default()).
function M.new(opts)
  opts = opts or {}
  return setmetatable({
    name = opts.name or "workqueue",
    limiter = opts.rate_limiter or ratelimit.default(),
    items = {}, head = 1, tail = 0, -- FIFO of keys ready to hand out
    dirty = {},      -- key -> true: needs processing (queued or re-added)
    processing = {}, -- key -> true: handed out, done() not called yet
    nprocessing = 0,
    delayed = {},    -- key -> { due = ms, timer = handle } (add_after)
    ndelayed = 0,
    batch = {},      -- keys gathered by add_batched, in arrival order
    batched = {},    -- key -> true while in batch
    waiters = {},    -- ids of coroutines parked in get(), oldest first
    down = false,
  }, Queue)
end

local function push(self, key)
  self.tail = self.tail + 1
  self.items[self.tail] = key
end

local function pop(self)
  local key = self.items[self.head]
  self.items[self.head] = nil
  self.head = self.head + 1
  self.processing[key] = true
  self.nprocessing = self.nprocessing + 1
  self.dirty[key] = nil
  return key
end

-- Hands keys (or nil after shutdown) to parked getters on the next turn.
local function kick(self)
  if self.kick_timer or #self.waiters == 0 then return end
  self.kick_timer = loop.timer(0, function()
    self.kick_timer = nil
    while #self.waiters > 0 do
      local key
      if not self.down then
        if self.head > self.tail then break end
        key = pop(self)
      end
      sched.dispatch(table.remove(self.waiters, 1), key)
    end
  end)
end

--- Marks key as needing processing. A no-op when it is already waiting
--- (de-duplication) or after shutdown; a key in hand is queued at done().
function Queue:add(key)
  assert(key ~= nil, "workqueue: nil key")
  if self.down or self.dirty[key] then return end
  self.dirty[key] = true
  if self.processing[key] then return end
  push(self, key)
  kick(self)
end

--- Number of keys ready to be handed out.
function Queue:len() return self.tail - self.head + 1 end

--- The next key; parks the calling coroutine while the queue is empty.
--- @return key, or nil once the queue is shut down.
function Queue:get()
  if self.down then return nil end
  if self.head <= self.tail then return pop(self) end
  local id = loop.next_id()
  self.waiters[#self.waiters + 1] = id
  return sched.wait(id)
end

--- Ends the processing of key; if it was added meanwhile it is queued again.
function Queue:done(key)
  if not self.processing[key] then return end
  self.processing[key] = nil
  self.nprocessing = self.nprocessing - 1
  if self.dirty[key] and not self.down then
    push(self, key)
    kick(self)
  end
end

--- Adds key after `seconds`. A key already waiting keeps the earlier time.
function Queue:add_after(key, seconds)
  if self.down then return end
  if not seconds or seconds <= 0 then return self:add(key) end
  local ms = math.ceil(seconds * 1000)
  local due = loop.now() + ms
  local d = self.delayed[key]
  if d then
    if d.due <= due then return end
    d.timer.stop()
  else
    self.ndelayed = self.ndelayed + 1
  end
  local rec = { due = due }
  rec.timer = loop.timer(ms, function()
    if self.delayed[key] ~= rec then return end
    self.delayed[key] = nil
    self.ndelayed = self.ndelayed - 1
    self:add(key)
  end)
  self.delayed[key] = rec
end

--- Adds key at the end of a batching window of `seconds` that the first
--- key of the window opens: every key batched meanwhile is added with it,
--- under one timer (client-go's AddAfter with a constant delay, as the Job
--- controller batches pod events, without a timer per key). A key already
--- queued and not in hand needs no batching: its sync will see the change.
function Queue:add_batched(key, seconds)
  if self.down then return end
  if not seconds or seconds <= 0 then return self:add(key) end
  if self.batched[key] or (self.dirty[key] and not self.processing[key]) then return end
  self.batched[key] = true
  self.batch[#self.batch + 1] = key
  if self.batch_timer then return end
  self.batch_timer = loop.timer(math.ceil(seconds * 1000), function()
    self.batch_timer = nil
    local keys = self.batch
    self.batch, self.batched = {}, {}
    for _, k in ipairs(keys) do self:add(k) end
  end)
end

--- Adds key after the rate limiter's delay for it (a failure back-off).
function Queue:add_rate_limited(key)
  return self:add_after(key, self.limiter:when(key))
end

--- Clears the back-off history of key (call after a success).
function Queue:forget(key) self.limiter:forget(key) end

--- How many times key was re-queued by add_rate_limited since forget().
function Queue:num_requeues(key) return self.limiter:num_requeues(key) end

--- Stops intake: add() becomes a no-op, delayed adds are dropped, get()
--- returns nil (also to parked getters). Keys in hand may still be done().
function Queue:shutdown()
  if self.down then return end
  self.down = true
  for _, d in pairs(self.delayed) do d.timer.stop() end
  self.delayed, self.ndelayed = {}, 0
  if self.batch_timer then self.batch_timer.stop() end
  self.batch_timer, self.batch, self.batched = nil, {}, {}
  kick(self)
end

function Queue:shutting_down() return self.down end

--- shutdown(), then waits (yielding) until every key in hand is done().
--- @return true | nil, "timeout"
function Queue:shutdown_with_drain(timeout)
  self:shutdown()
  return util.wait_for(function() return self.nprocessing == 0 end, timeout or 30, 1)
end

--- True when nothing is queued, in hand, delayed or batched.
function Queue:idle()
  return self.head > self.tail and self.nprocessing == 0 and self.ndelayed == 0 and #self.batch == 0
end

--- Counts for logs and specs.
function Queue:stats()
  return { queued = self:len(), processing = self.nprocessing, delayed = self.ndelayed,
           waiters = #self.waiters }
end

return M
