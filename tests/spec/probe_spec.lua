-- moonlet.probe (the C probe runner) on the real loop, against an HTTP
-- fixture served by moonlet.httpd in the same process.
require("moonlet_core")
local probe = require("moonlet.probe")
local httpd = require("moonlet.httpd")
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")

local srv, port, last

local function start_fixture()
  srv = assert(httpd.listen("tcp://127.0.0.1:0", function(req)
    last = req
    local path = req.url
    if path == "/500" then return req:respond(500, {}, "no") end
    if path == "/other" then
      return req:respond(302, { Location = "http://localhost:" .. port .. "/" }, "see other")
    end
    if path == "/same" then return req:respond(302, { Location = "/" }, "") end
    if path == "/slow" then loop.sleep(2000) end
    req:respond(200, {}, "fine")
  end))
  port = srv:port()
end

local function closed_port()
  local s = assert(httpd.listen("tcp://127.0.0.1:0", function(req) req:respond(200, {}, "") end))
  local p = s:port()
  s:close()
  return p
end

local function header(req, name)
  for k, v in pairs(req.headers or {}) do
    if k:lower() == name then return v end
  end
end

describe("moonlet.probe.run", function()
  setup(function() sched.run(start_fixture) end)
  teardown(function() srv:close() end)

  it("http: 200 is success, with the kubelet's headers", function()
    local r, m = sched.run(function()
      return probe.run("http", { port = port, path = "/", headers = { { name = "X-Probe", value = "1" } } }, 1)
    end)
    assert.are.equal("success", r)
    assert.are.equal("", m)
    assert.are.equal("kube-probe/1.32", header(last, "user-agent"))
    assert.are.equal("*/*", header(last, "accept"))
    assert.are.equal("1", header(last, "x-probe"))
  end)

  it("http: 500 fails with the kubelet's message", function()
    local r, m = sched.run(function() return probe.run("http", { port = port, path = "/500" }, 1) end)
    assert.are.equal("failure", r)
    assert.are.equal("HTTP probe failed with statuscode: 500", m)
  end)

  it("http: same-host redirects are followed, others give a warning", function()
    local r = sched.run(function() return probe.run("http", { port = port, path = "/same" }, 1) end)
    assert.are.equal("success", r)
    local r2, m2 = sched.run(function() return probe.run("http", { port = port, path = "/other" }, 1) end)
    assert.are.equal("warning", r2)
    assert.are.equal("Probe terminated redirects, Response body: see other", m2)
  end)

  it("http: timeouts and refused connections are failures with Go's texts", function()
    local r, m = sched.run(function() return probe.run("http", { port = port, path = "/slow" }, 0.2) end)
    assert.are.equal("failure", r)
    assert.are.equal(string.format('Get "http://127.0.0.1:%d/slow": context deadline exceeded '
      .. "(Client.Timeout exceeded while awaiting headers)", port), m)
    local cp = closed_port()
    local r2, m2 = sched.run(function() return probe.run("http", { port = cp, path = "/healthz" }, 1) end)
    assert.are.equal("failure", r2)
    assert.are.equal(string.format('Get "http://127.0.0.1:%d/healthz": dial tcp 127.0.0.1:%d: '
      .. "connect: connection refused", cp, cp), m2)
  end)

  it("tcp: connect is success, refused is a failure", function()
    local cp = closed_port()
    local a, b, c, d = sched.run(function()
      local r1, m1 = probe.run("tcp", { port = port }, 1)
      local r2, m2 = probe.run("tcp", { port = cp }, 1)
      return r1, m1, r2, m2
    end)
    assert.are.equal("success", a)
    assert.are.equal("", b)
    assert.are.equal("failure", c)
    assert.are.equal(string.format("dial tcp 127.0.0.1:%d: connect: connection refused", cp), d)
    assert.is_true(sched.run(function() return probe.connect("localhost", port, 1) end))
  end)

  it("tcp: exchange sends and reads one line", function()
    local reply = sched.run(function()
      return probe.exchange{ port = port, send = "GET / HTTP/1.0\r\n\r\n", timeout = 1 }
    end)
    assert.are.equal("HTTP/1.1 200 OK\r\n", reply)
  end)

  it("exec: exit status and output, timeout as failure", function()
    local r, m = sched.run(function()
      return probe.run("exec", { command = { "sh", "-c", "echo $X; exit 2" }, env = { "X=hello" } }, 2)
    end)
    assert.are.equal("failure", r)
    assert.are.equal("hello\n", m)
    assert.are.equal("success", (sched.run(function() return probe.run("exec", { command = { "true" } }, 2) end)))
    local r2, m2 = sched.run(function() return probe.run("exec", { command = { "sleep", "3" } }, 0.2) end)
    assert.are.equal("failure", r2)
    assert.are.equal('command "sleep 3" timed out', m2)
  end)

  it("errors: unknown kinds and bad parameters", function()
    local r, m = sched.run(function() return probe.run("grpc", { port = port }, 1) end)
    assert.are.equal("unknown", r)
    assert.matches("ENOTFOUND", m)
    local r2, m2 = sched.run(function() return probe.run("http", { port = port, scheme = "ftp" }, 1) end)
    assert.are.equal("unknown", r2)
    assert.matches("EINVALID", m2)
    assert.has_error(function() probe.run("http", { port = "eighty" }, 1) end)
  end)

  it("leaves nothing behind", function()
    sched.run(function() loop.sleep(20) end)
    local st = probe.stats()
    assert.are.equal(0, st.active)
    assert.are.equal(0, st.closing)
    assert.is_true(st.finished > 0)
    assert.are.same({ "http", "tcp", "exec" }, probe.kinds())
  end)
end)
