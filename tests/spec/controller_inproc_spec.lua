-- The controller runtime against the real API stack, in process: memory
-- store, API router, in-process transport and moonlet.client, with the
-- greeting example loaded as `moonlet server --scripts examples/greeting`
-- would load it. Proves informers, owner mapping and events work with the
-- real watch streams, not only with the fake client.
require("moonlet_core")
local loop = require("moonlet.loop")
local plugins = require("moonlet.plugins")
local kinds = require("moonlet.api.kinds")
local manager = require("moonlet.controller.manager")
local fake = require("fake_client") -- for fake.run only

local SRC = os.getenv("ML_SRC") or "."
local GREETING = "example.moonlet.dev/v1/Greeting"

describe("controller runtime on the in-process API", function()
  it("runs the greeting controller end to end", function()
    fake.run(function()
      local store = assert(require("moonlet.store").open({ backend = "memory" }))
      local loaded, errors = plugins.load({ SRC .. "/examples/greeting" })
      assert.are.same({}, errors)
      kinds.reset()
      for _, name in ipairs(plugins.names(loaded, "kinds")) do
        kinds.register(loaded.kinds[name].value, loaded.kinds[name].display)
      end
      local lines = {}
      local log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end
      local router = require("moonlet.api.router").new({ store = store, token = "t",
                                                          version = "0.0.0", log = log })
      local client = require("moonlet.client").new({
        transport = require("moonlet.api.inproc").transport(router) })
      assert(client:create("v1/Namespace", { apiVersion = "v1", kind = "Namespace",
                                             metadata = { name = "demo" } }))
      local m = manager.new({ client = client, log = log })
      local ctl = m:add(loaded.controllers["greeting"].value)
      m:start()

      local g = assert(client:create(GREETING, { apiVersion = "example.moonlet.dev/v1", kind = "Greeting",
        metadata = { name = "hello", namespace = "demo" }, spec = { message = "Hello, moon" } }))
      assert.is_true(m:wait_idle(5))
      local cm = assert(client:get("v1/ConfigMap", "demo", "hello-greeting"))
      assert.are.equal("Hello, moon", cm.data.message)
      assert.are.equal(g.metadata.uid, cm.metadata.ownerReferences[1].uid)
      local cur = assert(client:get(GREETING, "demo", "hello"))
      assert.are.same({ observedGeneration = 1, configMap = "hello-greeting" }, cur.status)

      cur.spec.message = "Goodbye, moon"
      assert(client:update(GREETING, cur))
      assert.is_true(m:wait_idle(5))
      assert.are.equal("Goodbye, moon", client:get("v1/ConfigMap", "demo", "hello-greeting").data.message)
      assert.are.equal(2, client:get(GREETING, "demo", "hello").status.observedGeneration)

      assert(client:delete("v1/ConfigMap", "demo", "hello-greeting"))
      assert.is_true(m:wait_idle(5))
      assert.is_not_nil(client:get("v1/ConfigMap", "demo", "hello-greeting"))

      local evs = assert(client:list("v1/Event", { namespace = "demo" }))
      -- the server aggregates the repeated "Created" into one Event
      local reasons = {}
      for _, e in ipairs(evs.items) do
        reasons[#reasons + 1] = e.reason .. " x" .. tostring(e.count)
        assert.are.equal("greeting", e.source.component)
        assert.are.equal("hello", e.involvedObject.name)
      end
      table.sort(reasons)
      assert.are.same({ "Created x2", "Updated x1" }, reasons)
      assert.are.equal(0, ctl.stats.errors, table.concat(lines, "\n"))

      m:stop()
      require("moonlet.api.handlers").stop_watches()
      loop.sleep(5)
      store:close()
    end)
  end)
end)
