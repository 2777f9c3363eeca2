-- moonlet.kubelet.checks: custom Lua probe checks (timeouts, errors, state
-- kept between runs, loading from scripts dirs) and the two shipped checks,
-- http-json and tcp-banner, against an HTTP fixture on the real loop.
require("moonlet_core")
local checks = require("moonlet.kubelet.checks")
local prober = require("moonlet.kubelet.prober")
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")
local httpd = require("moonlet.httpd")

local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function run(reg, name, args, timeout, ctx)
  return sched.run(function() return reg:run(name, ctx or { state = {} }, args, timeout) end)
end

describe("checks registry", function()
  local logged, reg
  before_each(function()
    logged = {}
    reg = checks.new{ log = function(level, msg) logged[#logged + 1] = level .. " " .. msg end }
  end)

  it("accepts tables and bare functions, under file and plugin names", function()
    assert.is_true(reg:add("a", function() return true end))
    assert.is_true(reg:add("file-b", { name = "b", check = function() return false, "no" end }, "probes/file-b.lua"))
    assert.are.same({ "a", "b", "file-b" }, reg:names())
    local ok, err = reg:add("c", { check = 1 })
    assert.is_nil(ok)
    assert.are.equal('field "check": must be a function', err)
    assert.are.equal("a probe check plugin must return a table or a function", checks.validate(42))
  end)

  it("maps returns to results", function()
    reg:add("yes", function() return true end)
    reg:add("no", function() return false, "disk full" end)
    reg:add("bare-no", function() return false end)
    reg:add("warn", function() return "warning", "odd" end)
    assert.are.same({ "success", "" }, { run(reg, "yes") })
    assert.are.same({ "failure", "disk full" }, { run(reg, "no") })
    assert.are.same({ "failure", 'check "bare-no" failed' }, { run(reg, "bare-no") })
    assert.are.same({ "warning", "odd" }, { run(reg, "warn") })
    assert.are.same({ "unknown", 'no probe check named "missing"' }, { run(reg, "missing") })
  end)

  it("turns an error into a failure with its text, and logs it", function()
    reg:add("boom", { check = function() error("database unreachable", 0) end }, "probes/boom.lua")
    reg:add("pos", function() error("with position") end)
    assert.are.same({ "failure", "database unreachable" }, { run(reg, "boom") })
    assert.are.same({ "warn probes/boom.lua: database unreachable" }, logged)
    local r, m = run(reg, "pos")
    assert.are.equal("failure", r)
    assert.matches("with position$", m)
  end)

  it("times out a check that waits too long", function()
    reg:add("slow", function() loop.sleep(500); return true end)
    local t0 = loop.hrtime()
    assert.are.same({ "failure", "probe timed out after 100ms" }, { run(reg, "slow", {}, 0.1) })
    assert.is_true((loop.hrtime() - t0) / 1e6 < 400)
  end)

  it("stops a check that computes past its deadline", function()
    reg:add("spin", function() while true do end end)
    assert.are.same({ "failure", "probe timed out after 100ms" }, { run(reg, "spin", {}, 0.1) })
  end)

  it("does not let an abandoned check carry on after its deadline", function()
    local finished = false
    reg:add("late", function()
      loop.sleep(150)
      for _ = 1, 1e6 do end
      finished = true
      return true
    end)
    assert.are.equal("failure", (run(reg, "late", {}, 0.05)))
    sched.run(function() loop.sleep(300) end)
    assert.is_false(finished)
    assert.are.equal(0, sched.stats().waiting)
  end)

  it("keeps ctx.state between runs of the same probe (through the worker)", function()
    reg:add("count", function(ctx)
      ctx.state.n = (ctx.state.n or 0) + 1
      return false, "run " .. ctx.state.n
    end)
    local events = {}
    local w = prober.new{ type = "liveness", probe = { lua = { check = "count" }, failureThreshold = 5 },
      container = { name = "c" }, checks = reg,
      status = function() return { id = 1, running = true, started = true, started_at = 0 } end,
      clock = function() return 100 end, sleep = function() end,
      event = function(_, _, msg) events[#events + 1] = msg end }
    sched.run(function() w:tick(); w:tick(); w:tick() end)
    assert.are.same({ "Liveness probe failed: run 1", "Liveness probe failed: run 2",
      "Liveness probe failed: run 3" }, events)
  end)

  it("loads built-ins and scripts dirs' probes/", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. shq(dir .. "/probes")))
    local f = assert(io.open(dir .. "/probes/always.lua", "w"))
    f:write("return function(ctx, args) if args.ok then return true end return false, 'asked to fail' end\n")
    f:close()
    f = assert(io.open(dir .. "/probes/broken.lua", "w"))
    f:write("return { check = 'not a function' }\n")
    f:close()
    local loaded, errors = checks.load({ dir })
    os.execute("rm -rf " .. shq(dir))
    assert.is_true(loaded:has("http-json"))
    assert.is_true(loaded:has("tcp-banner"))
    assert.is_true(loaded:has("always"))
    assert.are.equal(1, #errors)
    assert.matches('broken.lua: field "check": must be a function', errors[1])
    assert.are.same({ "success", "" }, { run(loaded, "always", { ok = true }) })
    assert.are.same({ "failure", "asked to fail" }, { run(loaded, "always", {}) })
    assert.is_true(checks.default():has("http-json"))
  end)
end)

describe("shipped checks", function()
  local srv, port, reg
  local function ctx()
    return { state = {}, timeout = 1, port_for = function(p)
      if p == "web" then return "127.0.0.1", port end
      return "127.0.0.1", p
    end }
  end

  setup(function()
    reg = checks.default()
    srv = assert(httpd.listen("tcp://127.0.0.1:0", function(req)
      if req.url == "/health" then
        return req:respond(200, { ["Content-Type"] = "application/json" },
          '{"status":"ok","checks":{"db":{"state":"down"}},"items":[{"ok":true}],"n":3,"z":null}')
      end
      if req.url == "/500" then return req:respond(500, {}, "{}") end
      req:respond(200, {}, "plain text")
    end))
    port = srv:port()
  end)
  teardown(function() srv:close() end)

  it("http-json compares a field", function()
    local function hj(args) return run(reg, "http-json", args, 1, ctx()) end
    assert.are.same({ "success", "" }, { hj{ port = "web", path = "/health", field = "status", equals = "ok" } })
    assert.are.same({ "success", "" }, { hj{ port = port, path = "health", field = "n", equals = 3 } })
    assert.are.same({ "success", "" }, { hj{ port = "web", path = "/health", field = "items.1.ok" } })
    assert.are.same({ "failure", 'field "checks.db.state" is down, want up' },
      { hj{ port = "web", path = "/health", field = "checks.db.state", equals = "up" } })
    assert.are.same({ "failure", 'field "z" is null' }, { hj{ port = "web", path = "/health", field = "z" } })
    assert.are.same({ "failure", "HTTP probe failed with statuscode: 500" },
      { hj{ port = "web", path = "/500", field = "status" } })
    local r, m = hj{ port = "web", path = "/text", field = "status" }
    assert.are.equal("failure", r)
    assert.matches("^response is not JSON", m)
    local r2, m2 = hj{ port = "web", path = "/health" }
    assert.are.equal("failure", r2)
    assert.matches("args.field is required", m2)
  end)

  it("tcp-banner expects a reply prefix", function()
    local req = "GET / HTTP/1.0\r\n\r\n"
    local c = ctx()
    assert.are.same({ "success", "" },
      { run(reg, "tcp-banner", { port = "web", send = req, expect = "HTTP/1.1 200" }, 1, c) })
    assert.are.same({ "failure", 'reply "HTTP/1.1 200 OK" does not start with "SSH-"' },
      { run(reg, "tcp-banner", { port = "web", send = req, expect = "SSH-" }, 1, c) })
    local dead = assert(httpd.listen("tcp://127.0.0.1:0", function(r) r:respond(200, {}, "") end))
    local dport = dead:port()
    dead:close()
    local r, m = run(reg, "tcp-banner", { port = dport, expect = "220" }, 1, c)
    assert.are.equal("failure", r)
    assert.are.equal(string.format("dial tcp 127.0.0.1:%d: connect: connection refused", dport), m)
  end)
end)
