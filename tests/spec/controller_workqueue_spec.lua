-- The controller work queue and its rate limiters, on the real loop:
-- de-duplication, one holder per key, delays, back-off numbers, shutdown.
require("moonlet_core")
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")
local workqueue = require("moonlet.controller.workqueue")
local ratelimit = require("moonlet.controller.ratelimit")
local util = require("moonlet.controller.util")
local fake = require("fake_client")

local run = fake.run

local function close_to(expected, got, eps)
  assert(math.abs(expected - got) <= (eps or 1e-9),
    string.format("expected %s, got %s", tostring(expected), tostring(got)))
end

describe("moonlet.controller.ratelimit", function()
  it("backs off per item exponentially from 5 ms, capped at 1000 s", function()
    local rl = ratelimit.exponential(0.005, 1000)
    local want = 0.005
    for n = 0, 17 do
      assert.are.equal(n, rl:num_requeues("a"))
      close_to(want, rl:when("a"))
      want = want * 2
    end
    -- 5 ms * 2^17 = 655.36 s; the next doubling passes the cap.
    close_to(1000, rl:when("a"))
    close_to(1000, rl:when("a"))
    assert.are.equal(20, rl:num_requeues("a"))
    close_to(0.005, rl:when("b"))
    rl:forget("a")
    assert.are.equal(0, rl:num_requeues("a"))
    close_to(0.005, rl:when("a"))
  end)

  it("token bucket: a burst of 100, then 10 per second", function()
    local now = 1000
    local rl = ratelimit.bucket(10, 100, function() return now end)
    for i = 1, 100 do close_to(0, rl:when("k" .. i)) end
    close_to(0.1, rl:when("x"))
    close_to(0.2, rl:when("y"))
    now = now + 1 -- ten tokens back; two were owed
    for _ = 1, 8 do close_to(0, rl:when("z")) end
    close_to(0.1, rl:when("z"))
    assert.are.equal(0, rl:num_requeues("z"))
  end)

  it("the default limiter takes the longer of both", function()
    local now = 5
    local rl = ratelimit.default(function() return now end)
    close_to(0.005, rl:when("a"))
    close_to(0.010, rl:when("a"))
    for i = 1, 98 do rl:when("other" .. i) end
    -- bucket now empty: 1/10 s beats the item's 20 ms
    close_to(0.1, rl:when("a"))
    assert.are.equal(3, rl:num_requeues("a"))
    rl:forget("a")
    assert.are.equal(0, rl:num_requeues("a"))
  end)
end)

describe("moonlet.controller.workqueue", function()
  it("de-duplicates keys that are waiting", function()
    run(function()
      local q = workqueue.new()
      q:add("ns/a"); q:add("ns/a"); q:add("ns/b"); q:add("ns/a")
      assert.are.equal(2, q:len())
      assert.are.equal("ns/a", q:get())
      assert.are.equal("ns/b", q:get())
      assert.are.equal(0, q:len())
      q:done("ns/a"); q:done("ns/b")
      assert.is_true(q:idle())
    end)
  end)

  it("re-queues a key added while in hand only after done()", function()
    run(function()
      local q = workqueue.new()
      q:add("a")
      local k = q:get()
      q:add("a"); q:add("a")
      assert.are.equal(0, q:len())
      q:done(k)
      assert.are.equal(1, q:len())
      assert.are.equal("a", q:get())
      q:done("a")
      assert.are.equal(0, q:len())
    end)
  end)

  it("wakes a parked getter on a later turn, not inside add()", function()
    run(function()
      local q = workqueue.new()
      local got
      sched.spawn("getter", function() got = q:get() end)
      assert.is_nil(got)
      q:add("x")
      assert.is_nil(got) -- the producer is not re-entered
      loop.sleep(5)
      assert.are.equal("x", got)
    end)
  end)

  it("never hands one key to two workers at once", function()
    run(function()
      local q = workqueue.new()
      local holding, max_holders, processed, finished = {}, 0, {}, 0
      for w = 1, 4 do
        sched.spawn("worker" .. w, function()
          while true do
            local key = q:get()
            if not key then break end
            holding[key] = (holding[key] or 0) + 1
            max_holders = math.max(max_holders, holding[key])
            loop.sleep(math.random(1, 3))
            processed[key] = (processed[key] or 0) + 1
            holding[key] = holding[key] - 1
            q:done(key)
          end
          finished = finished + 1
        end)
      end
      for _ = 1, 30 do
        for _, k in ipairs({ "a", "b", "c" }) do q:add(k) end
        loop.sleep(1)
      end
      local ok = util.wait_for(function() return q:idle() end, 5)
      assert.is_true(ok)
      q:shutdown()
      util.wait_for(function() return finished == 4 end, 5)
      assert.are.equal(1, max_holders)
      assert.are.equal(4, finished)
      -- level-triggered: far fewer runs than the 30 adds per key
      for _, k in ipairs({ "a", "b", "c" }) do
        assert.is_true(processed[k] >= 1 and processed[k] < 30, k .. ": " .. tostring(processed[k]))
      end
    end)
  end)

  it("adds after a delay; an earlier time for a waiting key wins", function()
    run(function()
      local q = workqueue.new()
      -- measured on the loop clock, the time base the timers run on
      local t0 = loop.now()
      q:add_after("late", 0.060)
      q:add_after("late", 0.020)
      q:add_after("late", 0.200) -- later than the one waiting: ignored
      assert.are.equal(0, q:len())
      assert.is_false(q:idle())
      local key = q:get()
      local ms = loop.now() - t0
      assert.are.equal("late", key)
      assert.is_true(ms >= 20 and ms < 150, "took " .. ms .. " ms")
      q:done(key)
      loop.sleep(5)
      assert.are.equal(0, q:len())
      assert.is_true(q:idle())
      q:add_after("now", 0)
      assert.are.equal(1, q:len())
    end)
  end)

  it("rate-limited re-adds back off 5, 10, 20 ms and forget() resets", function()
    run(function()
      local q = workqueue.new()
      local delays = {}
      for i = 1, 3 do
        local t0 = loop.now()
        q:add_rate_limited("k")
        assert.are.equal(i, q:num_requeues("k"))
        local key = q:get()
        delays[i] = loop.now() - t0
        q:done(key)
      end
      assert.is_true(delays[1] >= 5, "first " .. delays[1])
      assert.is_true(delays[2] >= 10, "second " .. delays[2])
      assert.is_true(delays[3] >= 20, "third " .. delays[3])
      q:forget("k")
      assert.are.equal(0, q:num_requeues("k"))
    end)
  end)

  it("shutdown releases parked getters and lets the key in hand finish", function()
    run(function()
      local q = workqueue.new()
      local results, in_hand_done = {}, false
      sched.spawn("idle getter", function() results[#results + 1] = q:get() or "nil" end)
      q:add("busy")
      local key = q:get()
      sched.spawn("holder", function()
        loop.sleep(20)
        in_hand_done = true
        q:done(key)
      end)
      q:add("queued")
      loop.sleep(2)
      -- the idle getter took "queued" on the next turn
      assert.are.equal("queued", results[1])
      q:done("queued")
      sched.spawn("late getter", function() results[#results + 1] = q:get() or "nil" end)
      assert.is_false(in_hand_done)
      local ok = q:shutdown_with_drain(2)
      assert.is_true(ok)
      assert.is_true(in_hand_done)
      assert.is_nil(q:get())
      q:add("after")
      assert.are.equal(0, q:len())
      assert.are.same({ "queued", "nil" }, results)
    end)
  end)

  it("shutdown drops delayed adds", function()
    run(function()
      local q = workqueue.new()
      q:add_after("d", 0.01)
      q:shutdown()
      loop.sleep(20)
      assert.are.equal(0, q:len())
      assert.are.same({ queued = 0, processing = 0, delayed = 0, waiters = 0 }, q:stats())
    end)
  end)

  it("leaves nothing parked in the scheduler", function()
    run(function() loop.sleep(1) end)
    local st = sched.stats()
    assert.are.equal(0, st.waiting)
    assert.are.equal(0, st.pending)
  end)
end)
