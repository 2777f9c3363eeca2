-- The Service proxy from Lua: moonlet.core.svc_proxy (listen, the
-- nil/message/name failure convention, backends, counters, idempotent
-- close) and moonlet.svc_proxy's listeners by address (reused across
-- syncs, closed when no longer wanted, an address in use reported as a
-- failure, not raised), relaying HTTP to moonlet.httpd backends.
require("moonlet_core")
local core = require("moonlet.core.svc_proxy")
local proxy = require("moonlet.svc_proxy")
local httpd = require("moonlet.httpd")
local http = require("moonlet.http")
local bg = require("curl_bg")

local function backend(name)
  return assert(httpd.listen("tcp://127.0.0.1:0", function(req)
    req:respond(200, { ["Content-Type"] = "text/plain" }, name)
  end))
end

-- One request on its own connection (the proxy balances connections, and
-- the client would otherwise keep one alive).
local function get(port)
  local res = http.get(string.format("http://127.0.0.1:%d/", port),
    { timeout_ms = 5000, headers = { Connection = "close" } })
  return res and res.body
end

describe("moonlet.core.svc_proxy", function()
  it("relays to its backends round robin and fails by value", function()
    bg.run(function()
      local a, b = backend("A"), backend("B")
      local p = assert(core.listen("127.0.0.1", 0))
      local port = p:port()
      assert.matches("^moonlet.SvcProxy: 127.0.0.1:%d+$", tostring(p))
      -- no backends: the connection closes at once
      assert.is_nil(get(port))
      assert(p:set_backends({ "127.0.0.1:" .. a:port(), "127.0.0.1:" .. b:port() }))
      local seen = {}
      for _ = 1, 4 do
        local body = get(port)
        seen[body] = (seen[body] or 0) + 1
      end
      assert.are.same({ A = 2, B = 2 }, seen)
      local st = p:stats()
      assert.are.equal(5, st.accepted)
      assert.are.equal(1, st.rejected)
      assert.is_true(st.bytes_in > 0 and st.bytes_out > 0)
      -- misuse raises; failures return nil, message, name
      assert.has_error(function() p:set_backends({ 80 }) end)
      local none, msg, name = p:set_backends({ "nonsense" })
      assert.is_nil(none)
      assert.are.equal("EINVAL", name)
      assert.matches("^EINVAL", msg)
      none, msg, name = core.listen("127.0.0.1", port)
      assert.is_nil(none)
      assert.are.equal("EADDRINUSE", name)
      p:close()
      p:close()
      assert.matches("%(closed%)$", tostring(p))
      assert.has_error(function() p:port() end, "attempt to use a closed proxy")
      a:close()
      b:close()
    end)
  end)
end)

describe("moonlet.svc_proxy", function()
  it("keeps one listener per address, retargets it, and reports addresses in use", function()
    bg.run(function()
      local a, b = backend("A"), backend("B")
      -- a free port to ask for, then one a plain listener holds
      local probe = assert(core.listen("127.0.0.1", 0))
      local port = probe:port()
      probe:close()
      local addr = "127.0.0.1:" .. port
      local want = { [addr] = { host = "127.0.0.1", port = port, backends = { "127.0.0.1:" .. a:port() } } }
      assert.are.same({}, proxy.sync("default/x", want))
      assert.are.equal("A", get(port))
      want[addr].backends = { "127.0.0.1:" .. b:port() }
      assert.are.same({}, proxy.sync("default/x", want))
      assert.are.equal("B", get(port))
      assert.are.same({ addr }, proxy.addresses("default/x"))
      -- another Service cannot take the address
      local f = proxy.sync("default/y", want)
      assert.are.equal(1, #f)
      assert.matches("address in use by Service default/x", f[1].message)
      -- nor can one that asks for a port the kernel holds for someone else
      local held = assert(core.listen("127.0.0.1", 0))
      local hp = held:port()
      f = proxy.sync("default/z", { ["127.0.0.1:" .. hp] = { host = "127.0.0.1", port = hp, backends = {} } })
      assert.are.equal(1, #f)
      assert.matches("EADDRINUSE", f[1].message)
      held:close()
      -- not wanted any more: closed
      assert.are.same({}, proxy.sync("default/x", {}))
      assert.are.same({}, proxy.addresses("default/x"))
      assert.is_nil(get(port))
      proxy.close_all()
      assert.are.same({}, proxy.addresses())
      a:close()
      b:close()
    end)
  end)
end)
