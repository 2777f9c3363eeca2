-- TLS listeners from Lua: httpd.ensure_cert makes the data dir's serving
-- certificate, httpd.listen(..., {tls = ...}) serves HTTPS on the runtime's
-- loop, and moonlet.http / moonlet.client reach it with the certificate as
-- their CA (libcurl verifies chain and host name) and fail without it.
require("moonlet_core")
local httpd = require("moonlet.httpd")
local http = require("moonlet.http")
local client = require("moonlet.client")
local sched = require("moonlet.sched")

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

teardown(function()
  os.remove(dir .. "/tls.crt")
  os.remove(dir .. "/tls.key")
  os.remove(dir)
end)

local TLS = { cert_file = dir .. "/tls.crt", key_file = dir .. "/tls.key" }

describe("moonlet.httpd TLS", function()
  it("makes a certificate once and reuses it", function()
    assert.is_true(httpd.ensure_cert(dir, { "moonlet.example" }, { "10.9.8.7" }))
    assert.is_true(exists(TLS.cert_file) and exists(TLS.key_file))
    assert.is_false(httpd.ensure_cert(dir, { "moonlet.example" }))
    local ok, err, name = httpd.ensure_cert(dir, { "bad name!" })
    assert.is_nil(ok)
    assert.are.equal("EINVALID", name)
    assert.truthy(err:find("invalid host name", 1, true))
  end)

  it("serves HTTPS that moonlet.http verifies with the CA", function()
    local seen, res, err, bad, badname, plain
    sched.run(function()
      local srv = assert(httpd.listen("tcp://127.0.0.1:0", function(req)
        seen = req
        req:respond(200, { ["Content-Type"] = "text/plain" }, "secret " .. req.path)
      end, { tls = TLS }))
      assert.are.equal("https://127.0.0.1:" .. srv:port(), srv:url())
      local base = "https://127.0.0.1:" .. srv:port()
      res, err = http.request({ url = base .. "/x", ca_file = TLS.cert_file })
      -- localhost and the extra DNS name are in the certificate too
      assert(http.request({ url = "https://localhost:" .. srv:port() .. "/y", ca_file = TLS.cert_file }))
      bad, _, badname = http.request({ url = base .. "/x" }) -- system CAs only
      plain = http.request({ url = "http://127.0.0.1:" .. srv:port() .. "/z" })
      srv:close()
    end)
    assert.is_nil(err)
    assert.are.equal(200, res.status)
    assert.are.equal("secret /x", res.body)
    assert.is_true(seen.tls)
    assert.are.equal("tcp", seen.transport)
    assert.is_nil(bad)
    assert.is_string(badname)
    assert.are.equal(400, plain.status)
    assert.are.equal("Client sent an HTTP request to an HTTPS server.\n", plain.body)
  end)

  it("refuses bad TLS options", function()
    assert.has_error(function() httpd.listen("https://127.0.0.1:0", function() end) end)
    local srv, err = httpd.listen("tcp://127.0.0.1:0", function() end,
      { tls = { cert_file = dir .. "/missing.crt", key_file = TLS.key_file } })
    assert.is_nil(srv)
    assert.truthy(err:find("cannot load certificate", 1, true))
  end)

  it("lets moonlet.client reach an https:// server with $MOONLET_CA's file", function()
    local code, body
    sched.run(function()
      local srv = assert(httpd.listen("https://127.0.0.1:0", function(req)
        local auth = req.headers["authorization"]
        req:respond(auth == "Bearer t0k" and 200 or 401, { ["Content-Type"] = "application/json" },
          '{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"default"}}')
      end, { tls = TLS }))
      assert.are.same({ base = "https://127.0.0.1:6443" }, client.parse_server("https://127.0.0.1:6443/"))
      assert.are.equal(TLS.cert_file, client.ca_file(nil, function(k)
        return k == "MOONLET_CA" and TLS.cert_file or nil
      end))
      assert.are.equal("/given.crt", client.ca_file("/given.crt"))
      local c = client.new({ server = "https://127.0.0.1:" .. srv:port(), token = "t0k",
        ca_file = TLS.cert_file })
      local res = assert(c:raw("GET", "/api/v1/namespaces/default"))
      code, body = res.status, res.body
      local other = client.new({ server = "https://127.0.0.1:" .. srv:port(), token = "wrong",
        ca_file = TLS.cert_file })
      assert.are.equal(401, assert(other:raw("GET", "/api/v1/namespaces/default")).status)
      srv:close()
    end)
    assert.are.equal(200, code)
    assert.truthy(body:find('"name":"default"', 1, true))
  end)
end)
