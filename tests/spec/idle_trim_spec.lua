-- moonlet.idle_trim: a full collection and malloc_trim once the loop is
-- quiet after the RSS grew, never while busy, never twice for one burst.
require("moonlet_core")
local idle_trim = require("moonlet.idle_trim")

describe("idle trim", function()
  local events, rss, collected, trimmed
  local function new()
    events, rss, collected, trimmed = 0, 40 * 2 ^ 20, 0, 0
    return idle_trim.new({
      activity = function() return events end,
      rss = function() return rss end,
      collect = function() collected = collected + 1 end,
      trim = function() trimmed = trimmed + 1; rss = rss - 8 * 2 ^ 20 end,
    })
  end

  it("trims once after a burst, when the loop is quiet", function()
    local t = new()
    -- A burst: many events per tick, the RSS grows.
    for _ = 1, 3 do
      events = events + 500
      rss = rss + 5 * 2 ^ 20
      assert.is_false(t.tick())
    end
    assert.are.equal(0, trimmed)
    events = events + 1 -- the tick alone: quiet
    assert.is_true(t.tick())
    assert.are.equal(1, collected)
    assert.are.equal(1, trimmed)
    -- Quiet on: nothing more.
    for _ = 1, 5 do
      events = events + 1
      assert.is_false(t.tick())
    end
    assert.are.equal(1, trimmed)
  end)

  it("leaves a quiet server alone when its RSS did not grow much", function()
    local t = new()
    events = events + 300
    rss = rss + 2 ^ 20 -- under both 2 MiB and 10%
    t.tick()
    events = events + 1
    assert.is_false(t.tick())
    assert.are.equal(0, trimmed)
  end)

  it("runs against the real runtime", function()
    local runtime = require("moonlet.core.runtime")
    local before = runtime.activity()
    require("moonlet.sched").run(function() require("moonlet.loop").sleep(1) end)
    assert.is_true(runtime.activity() > before) -- the timer's event counts
    assert.is_boolean(runtime.trim())
    local t = idle_trim.new()
    assert.is_boolean(t.tick())
  end)
end)
