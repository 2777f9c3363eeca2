-- examples/greeting: the custom kind's definition and its controller,
-- loaded through the same plugin sandbox the server uses and driven by the
-- controller manager against the fake API client.
require("moonlet_core")
local manager = require("moonlet.controller.manager")
local plugins = require("moonlet.plugins")
local validation = require("moonlet.validation")
local fake = require("fake_client")

local SRC = os.getenv("ML_SRC") or "."
local GREETING = "example.moonlet.dev/v1/Greeting"

local function load_plugin(rel)
  local path = SRC .. "/examples/greeting/" .. rel
  local f = assert(io.open(path, "rb"))
  local src = f:read("a")
  f:close()
  return assert(plugins.load_source(src, path))
end

local function greeting(ns, name, message)
  return { apiVersion = "example.moonlet.dev/v1", kind = "Greeting",
           metadata = { namespace = ns, name = name }, spec = { message = message } }
end

-- A fresh fake API, a manager running the example controller, and a way
-- to wait until it has caught up.
local function start()
  local c = fake.new()
  local lines = {}
  local m = manager.new({ client = c, log = function(l, msg) lines[#lines + 1] = l .. " " .. msg end,
                          informer_backoff = { initial = 0.01, max = 0.05 } })
  local ctl = m:add(load_plugin("controllers/greeting.lua"))
  m:start()
  local function settle() assert(m:wait_idle(3), "controller did not settle") end
  return c, m, ctl, settle, lines
end

local function event_reasons(c)
  local out = {}
  for _, e in ipairs(c:objects("v1/Event")) do out[#out + 1] = e.type .. " " .. e.reason end
  table.sort(out)
  return out
end

describe("examples/greeting kind", function()
  local kind = load_plugin("kinds/greeting.lua")

  it("is a valid kind plugin with a status subresource and generation", function()
    assert.is_nil(require("moonlet.api.kinds").check(kind))
    assert.are.equal("greetings", kind.plural)
    assert.are.same({ "gr" }, kind.short_names)
    assert.is_true(kind.namespaced and kind.generation and kind.status_subresource)
  end)

  it("requires spec.message", function()
    local obj = { metadata = { name = "x" } }
    kind.defaults(obj)
    local errs = validation.errors()
    kind.validate(obj, errs)
    assert.are.equal(1, #errs)
    assert.are.equal("spec.message: Required value", errs:list()[1]:error())
    errs = validation.errors()
    kind.validate(greeting("d", "x", "hi"), errs)
    assert.are.equal(0, #errs)
  end)

  it("prints NAME MESSAGE CONFIGMAP AGE", function()
    local names = {}
    for i, col in ipairs(kind.columns) do names[i] = col.name end
    assert.are.same({ "Name", "Message", "ConfigMap", "Age" }, names)
    local g = greeting("d", "x", "hi")
    g.status = { configMap = "x-greeting" }
    assert.are.equal("hi", kind.columns[2].value(g))
    assert.are.equal("x-greeting", kind.columns[3].value(g))
  end)
end)

describe("examples/greeting controller", function()
  it("creates an owned ConfigMap, follows spec changes, recreates it, writes status", function()
    fake.run(function()
      local c, m, ctl, settle = start()
      local g = assert(c:create(GREETING, greeting("demo", "hello", "Hello, moon")))
      settle()

      local cm = c:peek("v1/ConfigMap", "demo", "hello-greeting")
      assert.is_not_nil(cm, "ConfigMap created")
      assert.are.same({ message = "Hello, moon" }, cm.data)
      assert.are.same({ { apiVersion = "example.moonlet.dev/v1", kind = "Greeting", name = "hello",
                          uid = g.metadata.uid, controller = true, blockOwnerDeletion = true } },
                      cm.metadata.ownerReferences)
      local st = c:peek(GREETING, "demo", "hello").status
      assert.are.same({ observedGeneration = 1, configMap = "hello-greeting" }, st)
      assert.are.same({ "Normal Created" }, event_reasons(c))

      -- change the message: the ConfigMap follows, status sees generation 2
      local cur = c:peek(GREETING, "demo", "hello")
      cur.spec.message = "Goodbye, moon"
      assert(c:update(GREETING, cur))
      settle()
      assert.are.equal("Goodbye, moon", c:peek("v1/ConfigMap", "demo", "hello-greeting").data.message)
      assert.are.equal(2, c:peek(GREETING, "demo", "hello").status.observedGeneration)

      -- someone deletes the ConfigMap: it comes back, still owned
      assert(c:delete("v1/ConfigMap", "demo", "hello-greeting"))
      settle()
      local again = c:peek("v1/ConfigMap", "demo", "hello-greeting")
      assert.is_not_nil(again, "ConfigMap recreated")
      assert.are.equal("Goodbye, moon", again.data.message)
      assert.are.equal(g.metadata.uid, again.metadata.ownerReferences[1].uid)

      -- someone edits the ConfigMap: the spec wins again
      again.data.message = "tampered"
      assert(c:update("v1/ConfigMap", again))
      settle()
      assert.are.equal("Goodbye, moon", c:peek("v1/ConfigMap", "demo", "hello-greeting").data.message)

      assert.are.equal(0, ctl.stats.errors)
      m:stop()
    end)
  end)

  it("writes status only when it changes (no update loop)", function()
    fake.run(function()
      local c, m, _, settle = start()
      c:create(GREETING, greeting("demo", "quiet", "hi"))
      settle()
      local calls = c.calls.update_status
      local rv = c:peek(GREETING, "demo", "quiet").metadata.resourceVersion
      -- a resync-like wake-up changes nothing
      m:controller("greeting").queue:add("demo/quiet")
      settle()
      assert.are.equal(calls, c.calls.update_status)
      assert.are.equal(rv, c:peek(GREETING, "demo", "quiet").metadata.resourceVersion)
      m:stop()
    end)
  end)

  it("never takes over a ConfigMap it does not own", function()
    fake.run(function()
      local c, m, ctl, settle = start()
      c:create("v1/ConfigMap", { metadata = { namespace = "demo", name = "taken-greeting" },
                                 data = { message = "mine" } })
      c:create(GREETING, greeting("demo", "taken", "yours"))
      require("moonlet.controller.util").wait_for(function() return ctl.stats.errors >= 2 end, 3)
      assert.is_true(ctl.stats.errors >= 2) -- retried with back-off
      assert.are.equal("mine", c:peek("v1/ConfigMap", "demo", "taken-greeting").data.message)
      assert.is_nil(c:peek("v1/ConfigMap", "demo", "taken-greeting").metadata.ownerReferences)
      local reasons = event_reasons(c)
      assert.are.equal("Warning ErrResourceExists", reasons[1])
      m:stop()
    end)
  end)

  it("does nothing for a deleted Greeting", function()
    fake.run(function()
      local c, m, ctl, settle = start()
      c:create(GREETING, greeting("demo", "brief", "hi"))
      settle()
      c:delete(GREETING, "demo", "brief")
      settle()
      assert.are.equal(0, ctl.stats.errors)
      assert.is_true(ctl.stats.reconciles >= 2)
      m:stop()
    end)
  end)
end)
