-- Probes that tick in C (moonlet.core.probe ticker): only the results that
-- can change a worker's state reach Lua, and the kubelet's rules applied to
-- them in moonlet.kubelet.prober give the same outcome as the Lua loop.
require("moonlet_core")
local core = require("moonlet.core.probe")
local prober = require("moonlet.kubelet.prober")
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")
local httpd = require("moonlet.httpd")

describe("probe tickers", function()
  local srv, port, hits, status
  setup(function()
    hits, status = 0, 200
    srv = assert(httpd.listen("tcp://127.0.0.1:0", function(req)
      hits = hits + 1
      req:respond(status, {}, "ok")
    end))
    port = srv:port()
  end)
  teardown(function() srv:close() end)
  before_each(function() hits, status = 0, 200 end)

  it("posts the first success, stays quiet while nothing changes, posts failures", function()
    local got = {}
    local base = core.stats()
    sched.run(function()
      local id = loop.next_id()
      sched.on(id, function(result, message) got[#got + 1] = result .. ":" .. message end)
      local t = assert(core.ticker(id, "http", { port = port, path = "/" },
        { period = 40, timeout = 1000, success_threshold = 1, tries = 3 }))
      t:arm(0)
      loop.sleep(300)
      assert.is_true(hits >= 5, "hits " .. hits)
      assert.are.same({ "success:" }, got)
      status = 500
      loop.sleep(100)
      status = 200
      loop.sleep(150)
      t:close()
      sched.forget(id)
      -- A check already on the wire when close came may still reach the
      -- server (a loaded machine delays it): after that, nothing more.
      loop.sleep(50)
      local n = hits
      loop.sleep(100)
      assert.are.equal(n, hits)
    end)
    assert.are.equal("success:", got[1])
    assert.is_true(#got >= 3)
    for i = 2, #got - 1 do assert.are.equal("failure:HTTP probe failed with statuscode: 500", got[i]) end
    assert.are.equal("success:", got[#got])
    local st = core.stats()
    assert.is_true(st.quiet - base.quiet >= 5)
    assert.are.equal(base.tickers, st.tickers)
  end)

  it("rejects bad arguments", function()
    sched.run(function()
      local t, err = core.ticker(loop.next_id(), "nope", {}, { period = 100 })
      assert.is_nil(t)
      assert.matches("no probe kind 'nope'", err)
      assert.has_error(function() core.ticker(1, "http", { port = 1 }, { period = 0 }) end)
      local t2 = assert(core.ticker(loop.next_id(), "tcp", { port = port }, { period = 100 }))
      t2:close()
      assert.has_error(function() t2:arm(0) end, "probe ticker is closed")
      t2:close() -- twice is fine
    end)
  end)

  it("a readiness worker ticks in C and hears only the results that matter", function()
    local results, changes = {}, {}
    local t0
    local function at() return math.floor((loop.time() - t0) * 10 + 0.5) / 10 end
    local base = core.stats()
    local w
    sched.run(function()
      t0 = loop.time()
      w = prober.new{ type = "readiness", container = { name = "app" }, host = "127.0.0.1",
        probe = { httpGet = { port = port, path = "/ready" }, periodSeconds = 1, failureThreshold = 1 },
        status = function() return { id = 1, running = true, started = true, started_at = t0 } end,
        on_result = function(_, r) results[#results + 1] = r end,
        on_change = function(_, r) changes[#changes + 1] = string.format("%s@%g", r, at()) end }
      w:start()
      assert.is_truthy(w._ticker, "ticks in C")
      assert.are.equal(base.tickers + 1, core.stats().tickers)
      -- Conditions, not sleeps: on a busy machine attempts drift.
      local function wait_until(what, pred)
        local deadline = loop.now() + 5000
        while not pred() do
          if loop.now() > deadline then error("timed out waiting for " .. what) end
          loop.sleep(10)
        end
      end
      wait_until("two attempts", function() return hits >= 2 end)
      status = 500
      wait_until("the failure", function() return #results >= 2 end)
      status = 200
      wait_until("the recovery", function() return #results >= 3 end)
      w:stop()
      loop.sleep(50)
    end)
    -- attempts one period apart: success, (success: quiet), failure, success
    assert.are.equal(4, hits)
    assert.are.same({ "success", "failure", "success" }, results)
    assert.are.same({ "failure@0", "success@0" }, { changes[1], changes[2] })
    local failed_at = tonumber(changes[3]:match("^failure@(.+)$"))
    assert.is_true(failed_at >= 2, changes[3])
    assert.are.equal(string.format("success@%g", failed_at + 1), changes[4])
    assert.is_true(w.done)
    assert.are.equal(base.tickers, core.stats().tickers)
    assert.are.equal(0, sched.stats().waiting)
  end)

  it("a liveness failure holds the ticker until the instance is replaced", function()
    status = 500
    local thresholds, events = 0, 0
    local w
    sched.run(function()
      local t0 = loop.time()
      w = prober.new{ type = "liveness", container = { name = "app" }, host = "127.0.0.1",
        probe = { httpGet = { port = port, path = "/live" }, periodSeconds = 1, failureThreshold = 1 },
        status = function() return { id = 1, running = true, started = true, started_at = t0 } end,
        on_threshold = function() thresholds = thresholds + 1 end,
        event = function() events = events + 1 end }
      w:start()
      loop.sleep(2300)
      w:stop()
    end)
    assert.are.equal(1, hits) -- on hold after the first failure
    assert.are.equal(1, thresholds)
    assert.are.equal(1, events)
  end)

  it("a worker ticking in C stays one hash size (16 fields) per probed container", function()
    local w
    sched.run(function()
      w = prober.new{ type = "liveness", container = { name = "app" }, host = "127.0.0.1",
        probe = { httpGet = { port = port, path = "/" }, periodSeconds = 1 },
        status = function() return { id = 1, running = true, started = true, started_at = loop.time() } end }
      w:start()
      assert.is_truthy(w._ticker, "ticks in C")
      loop.sleep(10)
    end)
    local n = 0
    for _ in pairs(w) do n = n + 1 end
    -- The real clock, sleep and wake are the class's, not copied per worker.
    assert.is_nil(rawget(w, "clock"))
    assert.is_nil(rawget(w, "sleep"))
    assert.is_true(n <= 16, "fields " .. n)
    assert.is_number(w.clock())
    w:stop()
  end)

  it("injected runners and lua checks keep the Lua loop", function()
    local w = prober.new{ type = "readiness", probe = { httpGet = { port = 1 } },
      status = function() return nil end, run = function() return "success", "" end }
    assert.is_false(w:_start_ticker())
    local w2 = prober.new{ type = "readiness", probe = { lua = { check = "x" } },
      status = function() return nil end }
    assert.is_false(w2:_start_ticker())
  end)
end)
