-- The scheduler and loop facade, driven on the real libuv loop through the
-- same core module the server runs.
require("moonlet_core")
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")
local runtime = require("moonlet.core.runtime")

describe("moonlet.sched", function()
  it("runs a coroutine to completion and returns its values", function()
    local a, b = sched.run(function(x) return x + 1, "two" end, 41)
    assert.are.equal(42, a)
    assert.are.equal("two", b)
  end)

  it("sleeps without blocking other coroutines", function()
    local order = {}
    sched.run(function()
      local done = 0
      sched.spawn("a", function() loop.sleep(30); order[#order + 1] = "slow"; done = done + 1 end)
      sched.spawn("b", function() loop.sleep(5); order[#order + 1] = "fast"; done = done + 1 end)
      while done < 2 do loop.sleep(1) end
    end)
    assert.are.same({ "fast", "slow" }, order)
  end)

  it("sleep waits at least the asked time", function()
    local dt = sched.run(function()
      local t0 = loop.hrtime()
      loop.sleep(20)
      return (loop.hrtime() - t0) / 1e6
    end)
    assert.is_true(dt >= 19, "slept " .. dt .. " ms")
  end)

  it("fires repeating timers until stopped", function()
    local n = sched.run(function()
      local count = 0
      local t = loop.timer(1, function() count = count + 1 end, 2)
      while count < 5 do loop.sleep(1) end
      t.stop()
      local seen = count
      loop.sleep(10)
      return count - seen
    end)
    assert.are.equal(0, n)
  end)

  it("propagates errors from the main coroutine", function()
    assert.has_error(function()
      sched.run(function() error("boom") end)
    end)
  end)

  it("queues events that arrive before anyone waits", function()
    sched.dispatch(999001, "x")
    sched.dispatch(999001, "y")
    local a, b = sched.run(function() return sched.wait(999001), sched.wait(999001) end)
    assert.are.equal("x", a)
    assert.are.equal("y", b)
  end)

  it("leaves no registry refs and no parked coroutines behind", function()
    sched.run(function() loop.sleep(1) end)
    assert.are.equal(0, runtime.live_refs())
    local st = sched.stats()
    assert.are.equal(0, st.waiting)
    assert.are.equal(0, st.pending)
  end)
end)
