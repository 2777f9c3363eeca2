-- The asynchronous event sink (moonlet.controller.events) and the loop's
-- idle turns under it (loop.idle): an asynchronous recorder returns at once
-- and the Event is written when the loop has nothing else to do, within
-- max_delay_ms under constant work, and at flush (manager stop); the Event
-- is the one a synchronous write makes, and repeats still aggregate.
require("moonlet_core")
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local events = require("moonlet.controller.events")
local manager = require("moonlet.controller.manager")
local fake = require("fake_client") -- for fake.run only

local T0 = 1700000000.25

local function with_stack(fn)
  fake.run(function()
    local s = require("api_stack").new()
    local ok, err = pcall(fn, s)
    events.flush()
    require("api_stack").close(s, ok, err)
  end)
end

local function list_events(c)
  return assert(c:list("v1/Event", { namespace = "default" })).items
end

-- Keeps the loop busy until stop(): a coroutine that computes for about a
-- millisecond, then lets one turn pass (a timer of 0 ms), again and again,
-- so that no turn finds the queue empty.
local function constant_work()
  local busy, turns = true, 0
  sched.spawn("busy", function()
    while busy do
      local t = loop.hrtime() + 1e6
      while loop.hrtime() < t do end
      turns = turns + 1
      loop.sleep(0)
    end
  end)
  return { stop = function() busy = false end, turns = function() return turns end }
end

local function with_delay(ms, fn)
  local saved = events.max_delay_ms
  events.max_delay_ms = ms
  local ok, err = pcall(fn)
  events.max_delay_ms = saved
  if not ok then error(err, 0) end
end

local function job(name)
  return { apiVersion = "batch/v1", kind = "Job", metadata = { name = name, namespace = "default", uid = "u-" .. name,
    resourceVersion = "7" } }
end

describe("loop.idle", function()
  it("returns true once the loop has nothing else to do", function()
    fake.run(function()
      local t0 = loop.hrtime()
      assert.is_true(loop.idle(5000))
      assert.is_true(loop.hrtime() - t0 < 1e9)
    end)
  end)

  it("waits behind constant work and ends at its timeout", function()
    fake.run(function()
      local w = constant_work()
      local t0 = loop.hrtime()
      local idle = loop.idle(150)
      local waited = (loop.hrtime() - t0) / 1e6
      w.stop()
      assert.is_false(idle)
      assert.is_true(waited >= 140, "waited " .. waited .. " ms")
      assert.is_true(w.turns() >= 10, "turns " .. w.turns())
      -- and once the work has stopped the loop is idle again
      assert.is_true(loop.idle(5000))
    end)
  end)

  it("ends early on sched.wake of its id", function()
    fake.run(function()
      local w = constant_work()
      local id = loop.next_id()
      loop.timer(20, function() sched.wake(id) end)
      local t0 = loop.hrtime()
      assert.is_false(loop.idle(5000, id))
      w.stop()
      assert.is_true(loop.hrtime() - t0 < 2e9)
      -- nothing of that wait is left queued for the id
      loop.sleep(10)
      assert.are.equal(0, sched.stats().pending)
    end)
  end)
end)

describe("event sink", function()
  it("returns at once and writes the same Event a synchronous write makes, later", function()
    with_stack(function(s)
      local rec = events.new({ client = s.client, component = "job-controller", async = true,
        clock = function() return T0 end })
      local w = constant_work()
      assert.is_true(rec:event(job("a"), "Normal", "SuccessfulCreate", "Created pod: a-x"))
      -- not written in the caller's turn
      assert.are.equal(0, #list_events(s.client))
      assert.are.equal(1, events.pending())
      w.stop()
      assert.is_true(require("moonlet.controller.util").wait_for(function()
        return #list_events(s.client) == 1 end, 3))
      local ev = list_events(s.client)[1]
      local want = events.new({ client = s.client, component = "job-controller", clock = function() return T0 end })
        :build(job("a"), "Normal", "SuccessfulCreate", "Created pod: a-x")
      assert.are.equal(want.metadata.name, ev.metadata.name)
      for _, f in ipairs({ "reason", "message", "type", "firstTimestamp", "lastTimestamp", "count",
        "reportingComponent", "reportingInstance" }) do
        assert.are.same(want[f], ev[f], f)
      end
      assert.are.same(want.involvedObject, ev.involvedObject)
      assert.are.same(want.source, ev.source)
      assert.are.equal(0, events.pending())
    end)
  end)

  it("writes when the loop goes idle, not before", function()
    with_stack(function(s)
      with_delay(5000, function()
        local rec = events.new({ client = s.client, component = "x", async = true })
        local w = constant_work()
        rec:event(job("b"), "Normal", "R", "m")
        loop.sleep(100)
        -- constant work: still queued (the deadline is 5 s away)
        assert.are.equal(0, #list_events(s.client))
        w.stop()
        local t0 = loop.hrtime()
        assert.is_true(require("moonlet.controller.util").wait_for(function()
          return #list_events(s.client) == 1 end, 3))
        assert.is_true(loop.hrtime() - t0 < 1e9)
      end)
    end)
  end)

  it("bounds the delay under constant work", function()
    with_stack(function(s)
      with_delay(200, function()
        local rec = events.new({ client = s.client, component = "x", async = true })
        local w = constant_work()
        local t0 = loop.hrtime()
        for i = 1, 30 do rec:event(job("c" .. i), "Normal", "R", "m") end
        local seen
        while loop.hrtime() - t0 < 3e9 do
          if #list_events(s.client) == 30 then
            seen = (loop.hrtime() - t0) / 1e6
            break
          end
          loop.sleep(0)
        end
        w.stop()
        assert.is_not_nil(seen, "not written within 3 s under constant work")
        assert.is_true(seen >= 190, "written after " .. tostring(seen) .. " ms, before the deadline")
        assert.is_true(seen < 1500, "written after " .. tostring(seen) .. " ms")
      end)
    end)
  end)

  it("keeps aggregating repeats into one Event", function()
    with_stack(function(s)
      local rec = events.new({ client = s.client, component = "x", async = true })
      for _ = 1, 3 do rec:event(job("d"), "Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit") end
      rec:event(job("d"), "Normal", "Other", "m")
      assert.is_true(events.flush())
      local by_reason = {}
      for _, e in ipairs(list_events(s.client)) do by_reason[e.reason] = e end
      assert.are.equal(2, #list_events(s.client))
      assert.are.equal(3, by_reason.BackoffLimitExceeded.count)
      assert.are.equal(1, by_reason.Other.count)
      -- and a synchronous write of the same event still finds it
      assert.is_true(events.new({ client = s.client, component = "x" })
        :write(job("d"), "Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit"))
      for _, e in ipairs(list_events(s.client)) do by_reason[e.reason] = e end
      assert.are.equal(4, by_reason.BackoffLimitExceeded.count)
    end)
  end)

  it("counts a failed write and goes on", function()
    with_stack(function(s)
      local rec = events.new({ client = s.client, component = "x", async = true, log = function() end })
      local before = events.stats().failed
      local gone = { apiVersion = "v1", kind = "Pod", metadata = { name = "p", namespace = "nowhere" } }
      assert.is_true(rec:event(gone, "Normal", "R", "m"))
      rec:event(job("e"), "Normal", "R", "m")
      assert.is_true(events.flush())
      assert.are.equal(before + 1, events.stats().failed)
      assert.are.equal(1, #list_events(s.client))
    end)
  end)

  it("is flushed when the controller manager stops", function()
    with_stack(function(s)
      with_delay(60000, function()
        local m = manager.new({ client = s.client, log = function() end })
        local recorded = 0
        m:add({ name = "job-controller", kind = "batch/v1/Job", reconcile = function(ctx, _, obj)
          if obj then
            assert(ctx:event(obj, "Normal", "SuccessfulCreate", "Created pod: " .. obj.metadata.name .. "-x"))
            recorded = recorded + 1
          end
        end })
        m:start()
        local w = constant_work()
        assert(s.client:create("batch/v1/Job", { apiVersion = "batch/v1", kind = "Job",
          metadata = { name = "f", namespace = "default" },
          spec = { template = { spec = { restartPolicy = "Never",
            containers = { { name = "main", image = "busybox" } } } } } }))
        assert.is_true(require("moonlet.controller.util").wait_for(function() return recorded > 0 end, 5))
        loop.sleep(50)
        assert.are.equal(0, #list_events(s.client)) -- busy loop, far deadline: still queued
        assert.is_true(m:stop(5))
        assert.are.equal(recorded, #list_events(s.client))
        assert.are.equal(0, events.pending())
        w.stop()
      end)
    end)
  end)
end)
