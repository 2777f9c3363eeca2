-- moonlet.controller.ratelimit: requeue delays for work queues, with the
-- numbers of client-go's DefaultControllerRateLimiter: a per-item
-- exponential back-off (5 ms doubling to 1000 s) combined (max) with one
-- overall token bucket (10 qps, burst 100). Delays are in seconds.
local loop = require("moonlet.loop")

local M = {}

local function default_clock()
  return loop.hrtime() / 1e9
end

--- Per-item exponential back-off: the n-th failure of an item (from 0)
--- waits base * 2^n, capped at max. forget() resets the item.
function M.exponential(base, max)
  local self = { base = base or 0.005, max = max or 1000, failures = {} }

  function self:when(item)
    local n = self.failures[item] or 0
    self.failures[item] = n + 1
    -- 2^n overflows to inf long after the cap is reached; the cap wins.
    local d = self.base * 2.0 ^ n
    if d > self.max then d = self.max end
    return d
  end

  function self:num_requeues(item) return self.failures[item] or 0 end
  function self:forget(item) self.failures[item] = nil end

  return self
end

--- One token bucket shared by all items (golang.org/x/time/rate): starts
--- full; each when() reserves a token, and a reservation past the empty
--- bucket waits -tokens/qps. The clock returns seconds.
function M.bucket(qps, burst, clock)
  local self = { qps = qps or 10, burst = burst or 100, clock = clock or default_clock }
  self.tokens = self.burst
  self.last = self.clock()

  function self:when(_)
    local now = self.clock()
    -- Time never runs backwards for the bucket, even with a test clock.
    if now > self.last then
      self.tokens = math.min(self.burst, self.tokens + (now - self.last) * self.qps)
      self.last = now
    end
    self.tokens = self.tokens - 1
    if self.tokens >= 0 then return 0 end
    return -self.tokens / self.qps
  end

  function self:num_requeues(_) return 0 end
  function self:forget(_) end

  return self
end

--- Combines limiters: the longest delay and the highest requeue count win;
--- forget() goes to all of them.
function M.max_of(...)
  local limiters = { ... }
  local self = { limiters = limiters }

  function self:when(item)
    local d = 0
    for _, l in ipairs(limiters) do d = math.max(d, l:when(item)) end
    return d
  end

  function self:num_requeues(item)
    local n = 0
    for _, l in ipairs(limiters) do n = math.max(n, l:num_requeues(item)) end
    return n
  end

  function self:forget(item)
    for _, l in ipairs(limiters) do l:forget(item) end
  end

  return self
end

--- client-go's DefaultControllerRateLimiter. `clock` (seconds) is for specs.
function M.default(clock)
  return M.max_of(M.exponential(0.005, 1000), M.bucket(10, 100, clock))
end

return M
