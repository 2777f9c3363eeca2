-- Quick readiness retries (core/probe.h "Quick retries", prober.lua
-- QUICK_RETRY_MS): a container whose server listens a few ms after its start
-- is Ready within milliseconds, not a period later, while the periodic
-- attempts alone make the failures, the Unhealthy events and the counts.
require("moonlet_core")
local core = require("moonlet.core.probe")
local prober = require("moonlet.kubelet.prober")
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")
local httpd = require("moonlet.httpd")

-- A port nobody listens on (yet): bound once by the system, then freed.
local function free_port()
  local s = assert(httpd.listen("tcp://127.0.0.1:0", function(req) req:respond(200, {}, "") end))
  local p = s:port()
  s:close()
  return p
end

local function listen(port)
  return assert(httpd.listen("tcp://127.0.0.1:" .. port, function(req)
    req:respond(200, {}, "ok")
  end))
end

local function ms_since(t0) return (loop.time() - t0) * 1000 end

-- Runs a TCP ticker against a port that starts listening 60 ms after the
-- first attempt, for `watch_ms` more; returns the results and the ms after
-- the start at which each arrived.
local function listen_late(opts, watch_ms)
  local port = free_port()
  local got, at = {}, {}
  local srv
  sched.run(function()
    local t0 = loop.time()
    local id = loop.next_id()
    sched.on(id, function(result)
      got[#got + 1] = result
      at[#at + 1] = ms_since(t0)
    end)
    local t = assert(core.ticker(id, "tcp", { port = port }, opts))
    t:arm(0)
    loop.sleep(60)
    srv = listen(port)
    loop.sleep(watch_ms)
    t:close()
    sched.forget(id)
  end)
  srv:close()
  return got, at
end

describe("quick readiness retries", function()
  it("a ticker with quick retries reports the first failure, then a success soon after", function()
    local base = core.stats()
    local got, at = listen_late({ period = 1000, timeout = 1000, success_threshold = 1, tries = 3,
      quick = 5 }, 400)
    assert.are.same({ "failure", "success" }, got)
    assert.is_true(at[2] < 300, "success after " .. at[2] .. " ms")
    local quick = core.stats().quick - base.quick
    assert.is_true(quick >= 2 and quick <= 8, "quick retries " .. quick)
  end)

  it("without quick retries the success waits for the next period", function()
    local got, at = listen_late({ period = 500, timeout = 1000, success_threshold = 1, tries = 3 }, 600)
    assert.are.same({ "failure", "success" }, got)
    assert.is_true(at[2] >= 450, "success after " .. at[2] .. " ms")
  end)

  it("stop after one period, and only until the first success of an instance", function()
    local port = free_port()
    local got = {}
    local base = core.stats()
    local q1, q2, q3, q4
    local srv
    local function wait_last(result)
      local deadline = loop.time() + 3
      while got[#got] ~= result and loop.time() < deadline do loop.sleep(5) end
      assert.are.equal(result, got[#got])
    end
    sched.run(function()
      local id = loop.next_id()
      sched.on(id, function(result) got[#got + 1] = result end)
      local t = assert(core.ticker(id, "tcp", { port = port },
        { period = 300, timeout = 1000, success_threshold = 1, tries = 3, quick = 5 }))
      local t0 = loop.time()
      t:arm(0)
      wait_last("failure")
      loop.sleep(math.max(0, 350 - ms_since(t0))) -- the window (one period) is over
      q1 = core.stats().quick - base.quick
      loop.sleep(600) -- two more periodic attempts, no quick ones
      q2 = core.stats().quick - base.quick
      srv = listen(port)
      wait_last("success") -- a periodic one
      srv:close()
      wait_last("failure")
      loop.sleep(400) -- no quick retries after a success
      q3 = core.stats().quick - base.quick
      -- a new container instance: the ticker is reset and quick again
      t:reset()
      local n = #got
      t:arm(0)
      while #got == n do loop.sleep(1) end
      srv = listen(port)
      wait_last("success")
      q4 = core.stats().quick - base.quick
      t:close()
      sched.forget(id)
    end)
    srv:close()
    assert.is_true(q1 >= 3 and q1 <= 8, "quick retries in the window: " .. q1)
    assert.are.equal(q1, q2)
    assert.are.equal(q2, q3)
    assert.is_true(q4 > q3, "quick again after a reset")
    local successes = 0
    for _, r in ipairs(got) do if r == "success" then successes = successes + 1 end end
    assert.are.equal(2, successes)
  end)

  it("a readiness worker is Ready within ms of the server listening, with one Unhealthy event", function()
    local port = free_port()
    local changes, events, results = {}, {}, {}
    local ready_at
    local srv
    sched.run(function()
      local t0 = loop.time()
      local w = prober.new{ type = "readiness", container = { name = "app" }, host = "127.0.0.1",
        probe = { tcpSocket = { port = port }, periodSeconds = 1 },
        status = function() return { id = 1, running = true, started = true, started_at = t0 } end,
        on_result = function(_, r) results[#results + 1] = r end,
        event = function(_, reason, message) events[#events + 1] = reason .. ": " .. message end,
        on_change = function(_, r, initial)
          changes[#changes + 1] = r
          if r == "success" and not initial then ready_at = ms_since(t0) end
        end }
      w:start()
      assert.is_truthy(w._ticker, "ticks in C")
      loop.sleep(50)
      srv = listen(port)
      loop.sleep(500)
      w:stop()
    end)
    srv:close()
    assert.is_truthy(ready_at, "became Ready")
    assert.is_true(ready_at < 300, "Ready after " .. tostring(ready_at) .. " ms (period 1000)")
    assert.are.same({ "failure", "success" }, changes)
    assert.are.same({ "failure", "success" }, results)
    assert.are.equal(1, #events)
    assert.matches("^Unhealthy: Readiness probe failed: ", events[1])
  end)

  it("a readiness probe that never succeeds makes one event per period, as before", function()
    local port = free_port()
    local events = 0
    sched.run(function()
      local t0 = loop.time()
      local w = prober.new{ type = "readiness", container = { name = "app" }, host = "127.0.0.1",
        probe = { tcpSocket = { port = port }, periodSeconds = 1 },
        status = function() return { id = 1, running = true, started = true, started_at = t0 } end,
        event = function() events = events + 1 end }
      w:start()
      loop.sleep(2500)
      w:stop()
    end)
    assert.are.equal(3, events) -- attempts at 0, 1 and 2 s
  end)

  it("liveness and startup probes get no quick retries", function()
    local port = free_port()
    local base = core.stats()
    local events = 0
    sched.run(function()
      local t0 = loop.time()
      for _, typ in ipairs({ "liveness", "startup" }) do
        local w = prober.new{ type = typ, container = { name = "app" }, host = "127.0.0.1",
          probe = { tcpSocket = { port = port }, periodSeconds = 1, failureThreshold = 5 },
          status = function()
            return { id = 1, running = true, started = typ ~= "startup", started_at = t0 }
          end,
          event = function() events = events + 1 end }
        w:start()
        loop.sleep(300)
        w:stop()
      end
    end)
    assert.are.equal(2, events)
    assert.are.equal(base.quick, core.stats().quick)
  end)
end)
