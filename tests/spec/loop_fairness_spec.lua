-- The loop stays responsive while the server works through a backlog: a
-- turn delivers at most its budget (50 ms) of queued events, the loop then
-- polls its sockets, and a request from an API client is handled ahead of
-- the backlog (ml_loop_post_first), not after all of it. The backlog here
-- is 60 timer events of 10 ms of work each; the client is the in-process
-- libcurl client on the same loop.
require("moonlet_core")
local httpd = require("moonlet.httpd")
local http = require("moonlet.http")
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")

local bg = require("curl_bg") -- run() with a keep-alive timer

local BACKLOG, WORK_MS = 60, 10

local function busy(ms)
  local t0 = loop.hrtime()
  while loop.hrtime() - t0 < ms * 1e6 do end
end

describe("loop fairness", function()
  it("answers a request before a 600 ms backlog of queued work is done", function()
    local fired, fired_at_request, answered = 0, nil, nil
    local timers = {}
    bg.run(function()
      local srv = assert(httpd.listen("tcp://127.0.0.1:0", function(req)
        fired_at_request = fired
        req:respond(200, { ["Content-Type"] = "text/plain" }, "ok")
      end))
      local done = loop.next_id()
      sched.spawn("client", function()
        answered = http.request({ method = "GET", url = "http://127.0.0.1:" .. srv:port() .. "/" })
        sched.wake(done)
      end)
      -- The backlog: every timer is due at once, so all are queued together.
      for i = 1, BACKLOG do
        timers[i] = loop.timer(1, function()
          fired = fired + 1
          busy(WORK_MS)
        end)
      end
      sched.wait(done)
      while fired < BACKLOG do loop.sleep(10) end
      srv:close()
    end)
    assert.are.equal(200, answered.status)
    assert.is_not_nil(fired_at_request)
    -- Without the budget the request waits for all 60; without posting it
    -- first it waits behind the ones still queued.
    assert.is_true(fired_at_request < BACKLOG / 2,
      string.format("request handled after %d of %d queued events", fired_at_request, BACKLOG))
  end)
end)
