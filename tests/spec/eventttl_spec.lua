-- The event-ttl controller on the real API stack, in process, with a
-- clock the spec moves: Events older than the TTL (from their last
-- occurrence) are deleted, younger ones stay until their time comes.
require("moonlet_core")
local loop = require("moonlet.loop")
local duration = require("moonlet.printers.duration")
local manager = require("moonlet.controller.manager")
local stack = require("api_stack")
local util = require("moonlet.controller.util")
local fake = require("fake_client") -- for fake.run only

local function event(name, last)
  return { apiVersion = "v1", kind = "Event",
    metadata = { name = name, namespace = "default" },
    involvedObject = { kind = "Pod", namespace = "default", name = "p" },
    reason = "Test", message = name, type = "Normal", count = 1,
    firstTimestamp = duration.format_rfc3339(last), lastTimestamp = duration.format_rfc3339(last) }
end

local function names(client)
  local out = {}
  for _, e in ipairs(assert(client:list("v1/Event", { namespace = "default" })).items) do
    out[#out + 1] = e.metadata.name
  end
  table.sort(out)
  return out
end

-- Waits (up to 5 s) for the stored Events to be exactly `want`.
local function becomes(want, client)
  return util.wait_for(function()
    local got = names(client)
    return table.concat(got, ",") == table.concat(want, ",")
  end, 5, 10) == true
end

describe("event-ttl controller", function()
  it("deletes events older than the TTL and keeps younger ones until they expire", function()
    fake.run(function()
      local api = stack.new()
      local now = 1000000
      local m = manager.new({ client = api.client, log = function() end, clock = function() return now end,
        options = { event_ttl = 60 } })
      m:add(api.loaded.controllers["eventttl"].value)
      assert(api.client:create("v1/Event", event("old", now - 61)))
      assert(api.client:create("v1/Event", event("young", now - 59)))
      assert(api.client:create("v1/Event", event("fresh", now)))
      m:start()
      assert.is_true(becomes({ "fresh", "young" }, api.client))
      -- Nothing else goes while the clock stands still.
      loop.sleep(200)
      assert.are.same({ "fresh", "young" }, names(api.client))
      -- "young" was requeued for its remaining second: with the clock moved
      -- past its expiry, that requeue deletes it.
      now = now + 2
      assert.is_true(becomes({ "fresh" }, api.client))
      m:stop(2)
    end)
  end)

  it("defaults to one hour when the server sets no TTL", function()
    fake.run(function()
      local api = stack.new()
      local now = 2000000
      local m = manager.new({ client = api.client, log = function() end, clock = function() return now end })
      m:add(api.loaded.controllers["eventttl"].value)
      assert(api.client:create("v1/Event", event("hour-old", now - 3601)))
      assert(api.client:create("v1/Event", event("minutes-old", now - 600)))
      m:start()
      assert.is_true(becomes({ "minutes-old" }, api.client))
      m:stop(2)
    end)
  end)
end)
