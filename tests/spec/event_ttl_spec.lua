-- Event expiry (--event-ttl) on the real API stack, in process, with the
-- clock given to the sweep: Events older than the TTL (from their last
-- occurrence) are deleted, younger ones stay until their time comes.
require("moonlet_core")
local duration = require("moonlet.printers.duration")
local event_ttl = require("moonlet.api.event_ttl")
local stack = require("api_stack")
local fake = require("fake_client") -- for fake.run only

local function event(name, last)
  return { apiVersion = "v1", kind = "Event",
    metadata = { name = name, namespace = "default" },
    involvedObject = { kind = "Pod", namespace = "default", name = "p" },
    reason = "Test", message = name, type = "Normal", count = 1,
    firstTimestamp = duration.format_rfc3339(last - 100), lastTimestamp = duration.format_rfc3339(last) }
end

local function names(client)
  local out = {}
  for _, e in ipairs(assert(client:list("v1/Event", {})).items) do out[#out + 1] = e.metadata.name end
  table.sort(out)
  return out
end

describe("event ttl", function()
  it("deletes Events whose last occurrence is older than the TTL", function()
    fake.run(function()
      local api = stack.new()
      local now = 1000000
      assert(api.client:create("v1/Event", event("old", now - 61)))
      assert(api.client:create("v1/Event", event("edge", now - 60)))
      assert(api.client:create("v1/Event", event("young", now - 59)))
      assert.are.equal(2, event_ttl.sweep(api.client, 60, now))
      assert.are.same({ "young" }, names(api.client))
      assert.are.equal(0, event_ttl.sweep(api.client, 60, now))
      assert.are.equal(1, event_ttl.sweep(api.client, 60, now + 1))
      assert.are.same({}, names(api.client))
    end)
  end)

  it("sweeps on its own every tenth of the TTL until stopped", function()
    fake.run(function()
      local api = stack.new()
      local now = 2000000
      assert(api.client:create("v1/Event", event("hour-old", now - 3601)))
      assert(api.client:create("v1/Event", event("fresh", now - 1)))
      local stop = event_ttl.start({ client = api.client, ttl = 2, clock = function() return now end })
      require("moonlet.controller.util").wait_for(function() return #names(api.client) == 1 end, 5, 20)
      assert.are.same({ "fresh" }, names(api.client))
      now = now + 2
      require("moonlet.controller.util").wait_for(function() return #names(api.client) == 0 end, 5, 20)
      assert.are.same({}, names(api.client))
      stop()
    end)
  end)
end)
