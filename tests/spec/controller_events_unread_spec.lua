-- The controllers' event recorder writes through the client's raw call and
-- does not decode the Event the API answers with (nobody reads it; a
-- decode of the whole Event per event was a cost of every pod a controller
-- made); it still reports an API failure as nil, status. On the in-process
-- API (memory store, router, built-in kinds).
require("moonlet_core")
local events = require("moonlet.controller.events")
local json = require("moonlet.json")
local fake = require("fake_client") -- for fake.run only

describe("event recorder", function()
  it("writes the Event without decoding the answer", function()
    fake.run(function()
      local s = require("api_stack").new()
      local c = s.client
      local raw_calls = 0
      local raw = c.raw
      c.raw = function(self, ...)
        raw_calls = raw_calls + 1
        return raw(self, ...)
      end
      local rec = events.new({ client = c, component = "job-controller", clock = function() return 1700000000.25 end })
      local job = { apiVersion = "batch/v1", kind = "Job", metadata = { name = "j", namespace = "default", uid = "u1" } }
      local decode = json.decode
      local decoded = 0
      -- The stored Event (as answered) has a creationTimestamp; the request
      -- the server decodes has none.
      json.decode = function(text, ...)
        if type(text) == "string" and text:find('"creationTimestamp"', 1, true)
          and text:find('"kind":"Event"', 1, true) then decoded = decoded + 1 end
        return decode(text, ...)
      end
      local ok, res = pcall(rec.event, rec, job, "Normal", "SuccessfulCreate", "Created pod: j-abcde")
      json.decode = decode
      assert(ok, res)
      assert.is_true(res)
      assert.are.equal(1, raw_calls)
      assert.are.equal(0, decoded)
      local list = assert(c:list("v1/Event", { namespace = "default" }))
      assert.are.equal(1, #list.items)
      local ev = list.items[1]
      assert.are.equal(string.format("j.%x", 1700000000250000000), ev.metadata.name)
      assert.are.equal("SuccessfulCreate", ev.reason)
      assert.are.equal("Created pod: j-abcde", ev.message)
      assert.are.same({ apiVersion = "batch/v1", kind = "Job", name = "j", namespace = "default", uid = "u1" },
        ev.involvedObject)
      assert.are.equal("job-controller", ev.source.component)
      assert.are.equal(1, ev.count)
    end)
  end)

  it("returns nil and the Status when the API refuses the Event", function()
    fake.run(function()
      local s = require("api_stack").new()
      local rec = events.new({ client = s.client, component = "x" })
      local obj = { apiVersion = "v1", kind = "Pod", metadata = { name = "p", namespace = "nowhere" } }
      local res, st = rec:event(obj, "Normal", "R", "m")
      assert.is_nil(res)
      assert.are.equal(404, st.code)
    end)
  end)
end)
