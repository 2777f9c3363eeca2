-- moonlet.kubelet.prober: the kubelet's worker rules (semantics.md 1.1-1.4)
-- on a fake clock (table-driven timelines), the handler translation, and one
-- container driven by the real loop against an HTTP fixture.
require("moonlet_core")
local prober = require("moonlet.kubelet.prober")
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")
local httpd = require("moonlet.httpd")

-- A worker on a fake clock: the worker's sleep yields the seconds to wait,
-- the harness advances the clock. results: list (one per attempt) of
-- "success" | "failure" | "unknown" | "warning" or {result, message};
-- after the list, `rest` (default "success").
local function harness(o)
  local h = { now = 0, attempts = {}, changes = {}, events = {}, thresholds = {}, results = {} }
  h.status = { id = "c1", running = true, started = o.started ~= false, started_at = o.started_at or 0 }
  for k, v in pairs(o.status or {}) do h.status[k] = v end
  h.worker = prober.new{
    type = o.type or "liveness",
    probe = o.probe or { httpGet = { port = 8080 } },
    container = { name = "app", ports = { { name = "http", containerPort = 8080 } } },
    status = function() return h.status end,
    clock = function() return h.now end,
    sleep = function(s) return coroutine.yield(s) end,
    run = function(kind, params, timeout)
      local n = #h.attempts + 1
      h.attempts[n] = { t = h.now, kind = kind, params = params, timeout = timeout }
      local r = (o.results or {})[n] or o.rest or "success"
      if type(r) == "table" then return r[1], r[2] end
      return r, r == "failure" and "HTTP probe failed with statuscode: 500" or ""
    end,
    on_result = function(t, r) h.results[#h.results + 1] = r end,
    on_change = function(t, r) h.changes[#h.changes + 1] = { t = h.now, result = r } end,
    on_threshold = function(t, m) h.thresholds[#h.thresholds + 1] = { t = h.now, message = m } end,
    event = function(typ, reason, msg, path)
      h.events[#h.events + 1] = { t = h.now, type = typ, reason = reason, message = msg, path = path }
    end,
  }
  local co = coroutine.create(function() h.worker:loop() end)
  --- Runs the worker until the clock reaches t.
  function h.run_until(t)
    while coroutine.status(co) ~= "dead" do
      if not h.wake_at then
        local ok, s = coroutine.resume(co)
        assert(ok, s)
        if coroutine.status(co) == "dead" then break end
        h.wake_at = h.now + s
      end
      if h.wake_at > t + 1e-9 then break end
      h.now = h.wake_at
      h.wake_at = nil
    end
    if h.now < t then h.now = t end
  end
  function h.dead() return coroutine.status(co) == "dead" end
  function h.times()
    local out = {}
    for i, a in ipairs(h.attempts) do out[i] = a.t end
    return out
  end
  return h
end

local function changes(h)
  local out = {}
  for i, c in ipairs(h.changes) do out[i] = string.format("%g:%s", c.t, c.result) end
  return out
end

describe("prober timelines", function()
  local cases = {
    { name = "liveness defaults: every 10 s, killed after 3 failures, then on hold",
      type = "liveness", results = { "failure", "failure", "failure" }, rest = "failure",
      until_t = 60, times = { 0, 10, 20 }, changes = { "0:success", "20:failure" }, thresholds = 1 },
    { name = "liveness: failures must be consecutive",
      type = "liveness", results = { "failure", "failure", "success", "failure", "failure", "failure" },
      until_t = 55, times = { 0, 10, 20, 30, 40, 50 }, changes = { "0:success", "50:failure" },
      thresholds = 1 },
    { name = "liveness failureThreshold 1, periodSeconds 5",
      type = "liveness", probe = { tcpSocket = { port = 8080 }, periodSeconds = 5, failureThreshold = 1 },
      results = { "success", "failure" }, until_t = 30, times = { 0, 5 },
      changes = { "0:success", "5:failure" }, thresholds = 1 },
    { name = "readiness starts not ready and turns ready on the first success",
      type = "readiness", until_t = 25, times = { 0, 10, 20 }, changes = { "0:failure", "0:success" } },
    { name = "readiness successThreshold 2",
      type = "readiness", probe = { httpGet = { port = 8080 }, successThreshold = 2 },
      results = { "success", "failure", "success", "success" }, until_t = 35, times = { 0, 10, 20, 30 },
      changes = { "0:failure", "30:success" } },
    { name = "readiness keeps probing after failures (no hold)",
      type = "readiness", results = { "success", "failure", "failure", "failure", "failure", "success" },
      until_t = 55, times = { 0, 10, 20, 30, 40, 50 },
      changes = { "0:failure", "0:success", "30:failure", "50:success" }, thresholds = 1 },
    { name = "initialDelaySeconds 15: first probe at container start + 15 s",
      type = "liveness", probe = { httpGet = { port = 8080 }, initialDelaySeconds = 15 },
      until_t = 40, times = { 15, 25, 35 } },
    { name = "initial delay counts from the container's start, not the worker's",
      type = "readiness", probe = { httpGet = { port = 8080 }, initialDelaySeconds = 15 },
      started_at = 3, until_t = 30, times = { 18, 28 } },
    { name = "startup probe runs until it succeeds, then stops",
      type = "startup", probe = { exec = { command = { "true" } }, periodSeconds = 1, failureThreshold = 30 },
      started = false, results = { "failure", "failure", "success" }, until_t = 10, times = { 0, 1, 2 },
      changes = { "0:unknown", "2:success" }, after_success = function(h) h.status.started = true end },
    { name = "startup failure threshold: kill and hold",
      type = "startup", probe = { tcpSocket = { port = 8080 }, periodSeconds = 2, failureThreshold = 2 },
      started = false, rest = "failure", until_t = 20, times = { 0, 2 },
      changes = { "0:unknown", "2:failure" }, thresholds = 1 },
    { name = "liveness waits for the container to be started",
      type = "liveness", started = false, until_t = 30, times = {} },
    { name = "probe errors are retried 3 times and thrown away",
      type = "liveness", probe = { httpGet = { port = 8080 }, failureThreshold = 1 },
      results = { { "unknown", "x" }, { "unknown", "x" }, { "unknown", "x" }, "success" },
      until_t = 15, times = { 0, 0, 0, 10 }, changes = { "0:success" } },
    { name = "a warning counts as success",
      type = "readiness", results = { { "warning", "Probe terminated redirects, Response body: x" } },
      until_t = 5, times = { 0 }, changes = { "0:failure", "0:success" } },
  }

  for _, c in ipairs(cases) do
    it(c.name, function()
      local h = harness(c)
      if c.after_success then
        local orig = h.worker.opts.on_change
        h.worker.opts.on_change = function(t, r)
          orig(t, r)
          if r == "success" then c.after_success(h) end
        end
      end
      h.run_until(c.until_t)
      assert.are.same(c.times, h.times())
      if c.changes then assert.are.same(c.changes, changes(h)) end
      assert.are.equal(c.thresholds or 0, #h.thresholds)
    end)
  end

  it("records an Unhealthy event on every failed attempt, even below threshold", function()
    local h = harness{ type = "liveness", results = { "failure", "success", "failure" } }
    h.run_until(25)
    assert.are.equal(2, #h.events)
    assert.are.same({ t = 0, type = "Warning", reason = "Unhealthy", path = "spec.containers{app}",
      message = "Liveness probe failed: HTTP probe failed with statuscode: 500" }, h.events[1])
    assert.are.equal(0, #h.thresholds)
  end)

  it("errors and warnings have their own events", function()
    local h = harness{ type = "readiness", results = {
      { "unknown", "x" }, { "unknown", "y" }, { "unknown", "strconv.Atoi: parsing \"web\": invalid syntax" },
      { "warning", "Probe terminated redirects, Response body: moved" } } }
    h.run_until(15)
    assert.are.equal("Unhealthy", h.events[1].reason)
    assert.are.equal('Readiness probe errored and resulted in unknown state: '
      .. 'strconv.Atoi: parsing "web": invalid syntax', h.events[1].message)
    assert.are.equal("ProbeWarning", h.events[2].reason)
    assert.are.equal("Readiness probe warning: Probe terminated redirects, Response body: moved",
      h.events[2].message)
  end)

  it("a new container instance resets the result and ends the hold", function()
    local h = harness{ type = "liveness", probe = { httpGet = { port = 8080 }, failureThreshold = 1 },
      results = { "failure" }, rest = "success" }
    h.run_until(25)
    assert.are.same({ 0 }, h.times()) -- on hold after the failure
    assert.are.equal("Liveness probe failed: HTTP probe failed with statuscode: 500",
      "Liveness probe failed: " .. h.thresholds[1].message)
    h.status.id = "c2"
    h.run_until(35)
    assert.are.same({ 0, 30 }, h.times())
    assert.are.same({ "0:success", "0:failure", "30:success" }, changes(h))
  end)

  it("a deleted pod stops liveness quietly; readiness keeps probing", function()
    local h = harness{ type = "liveness", rest = "failure" }
    h.status.deleting = true
    h.run_until(30)
    assert.are.same({}, h.times())
    assert.is_true(h.dead())
    assert.are.same({ "0:success" }, changes(h))
    local r = harness{ type = "readiness" }
    r.status.deleting = true
    r.run_until(25)
    assert.are.same({ 0, 10, 20 }, r.times())
  end)

  it("a stopped container is not ready; restartPolicy Never ends the worker", function()
    local h = harness{ type = "readiness" }
    h.run_until(5)
    h.status.running = false
    h.run_until(15)
    assert.are.same({ "0:failure", "0:success", "10:failure" }, changes(h))
    assert.is_false(h.dead())
    h.status.terminated, h.status.restart_policy = true, "Never"
    h.run_until(25)
    assert.is_true(h.dead())
  end)

  it("a finished pod ends the worker", function()
    local h = harness{ type = "readiness" }
    h.status.phase = "Succeeded"
    h.run_until(10)
    assert.is_true(h.dead())
    assert.are.same({}, h.times())
  end)

  it("passes the timeout and defaults to the runner", function()
    local h = harness{ type = "liveness", probe = { httpGet = { port = "http" }, timeoutSeconds = 3 } }
    h.run_until(1)
    local a = h.attempts[1]
    assert.are.equal("http", a.kind)
    assert.are.equal(3, a.timeout)
    assert.are.same({ scheme = "http", host = "127.0.0.1", port = 8080, path = "/", headers = {} }, a.params)
  end)
end)

describe("prober.handler", function()
  local container = { name = "web", workingDir = "/srv",
    ports = { { name = "http", containerPort = 8080 }, { name = "admin", containerPort = 9090 } } }
  local function port_for(c, port)
    assert.are.equal(container, c)
    return ({ [8080] = 31001, [9090] = 31002 })[port] or port
  end

  it("maps httpGet with named ports, headers and the host port", function()
    local kind, p = prober.handler(prober.defaults{ httpGet = { port = "admin", path = "/healthz",
      scheme = "HTTPS", httpHeaders = { { name = "X-A", value = "1" }, { name = "X-A", value = "2" } } } },
      { container = container, port_for = port_for, host = "127.0.0.1" })
    assert.are.equal("http", kind)
    assert.are.same({ scheme = "https", host = "127.0.0.1", port = 31002, path = "/healthz",
      headers = { { name = "X-A", value = "1" }, { name = "X-A", value = "2" } } }, p)
  end)

  it("maps tcpSocket and exec; port_for may give a host too", function()
    local kind, p = prober.handler({ tcpSocket = { port = 8080 } }, { container = container,
      port_for = function(_, port) return "127.0.0.2", port + 1 end })
    assert.are.equal("tcp", kind)
    assert.are.same({ host = "127.0.0.2", port = 8081 }, p)
    local k2, p2 = prober.handler({ exec = { command = { "cat", "/tmp/healthy" } } },
      { container = container, env = { "A=1" } })
    assert.are.equal("exec", k2)
    assert.are.same({ command = { "cat", "/tmp/healthy" }, env = { "A=1" }, cwd = "/srv" }, p2)
  end)

  it("reports bad ports as the kubelet does", function()
    local kind, msg, result = prober.handler({ httpGet = { port = "web" } }, { container = container })
    assert.is_nil(kind)
    assert.are.equal("unknown", result)
    assert.are.equal('strconv.Atoi: parsing "web": invalid syntax', msg)
    assert.are.equal(8081, (prober.extract_port("8081", container)))
    local _, e2 = prober.extract_port(70000, container)
    assert.are.equal("invalid port number: 70000", e2)
  end)

  it("grpc fails clearly; lua goes to the checks", function()
    local kind, msg, result = prober.handler({ grpc = { port = 9000 } }, { container = container })
    assert.is_nil(kind)
    assert.are.equal("failure", result)
    assert.matches("grpc probes are not supported", msg)
    local k2, p2 = prober.handler({ lua = { check = "http-json", args = { field = "ok" } } }, {})
    assert.are.equal("lua", k2)
    assert.are.same({ check = "http-json", args = { field = "ok" } }, p2)
  end)

  it("applies the probe defaults", function()
    local p = prober.defaults{ httpGet = { port = 80 } }
    assert.are.same({ 0, 1, 10, 1, 3, "/", "HTTP" }, { p.initialDelaySeconds, p.timeoutSeconds,
      p.periodSeconds, p.successThreshold, p.failureThreshold, p.httpGet.path, p.httpGet.scheme })
  end)

  it("runs lua handlers through the checks registry with ctx", function()
    local seen
    local fake = { run = function(_, name, ctx, args, timeout)
      seen = { name = name, args = args, timeout = timeout, port = { ctx.port_for("http") } }
      ctx.state.n = (ctx.state.n or 0) + 1
      return "failure", "custom says no " .. ctx.state.n
    end }
    local events = {}
    local w = prober.new{ type = "readiness", container = container,
      probe = { lua = { check = "mine", args = { x = 1 } }, timeoutSeconds = 2 },
      port_for = port_for, checks = fake,
      status = function() return { id = 1, running = true, started = true, started_at = 0 } end,
      clock = function() return 0 end, sleep = function() end,
      event = function(_, reason, msg) events[#events + 1] = reason .. ": " .. msg end }
    w:tick()
    w:tick()
    assert.are.same({ name = "mine", args = { x = 1 }, timeout = 2, port = { "127.0.0.1", 31001 } }, seen)
    assert.are.same({ "Unhealthy: Readiness probe failed: custom says no 1",
      "Unhealthy: Readiness probe failed: custom says no 2" }, events)
  end)
end)

describe("prober on the real loop", function()
  local srv, port, hits
  setup(function()
    hits = 0
    srv = assert(httpd.listen("tcp://127.0.0.1:0", function(req)
      hits = hits + 1
      if req.url == "/live" and hits > 2 then return req:respond(500, {}, "") end
      req:respond(200, {}, "ok")
    end))
    port = srv:port()
  end)
  teardown(function() srv:close() end)

  it("a liveness probe does not run the instant the container starts", function()
    -- Nothing listens on the port: a probe at the start would fail at once
    -- (connection refused) and, with failureThreshold 1, kill a container
    -- whose server was about to listen.
    local events, first
    local t0 = loop.time()
    sched.run(function()
      local g = prober.container{ pod = { metadata = { name = "p" } },
        container = { name = "app", livenessProbe = { tcpSocket = { port = 1 }, periodSeconds = 1, failureThreshold = 1 } },
        started_at = loop.time(), host = "127.0.0.1", port_for = function(_, p) return p end,
        on_change = function() end,
        event = function() events = (events or 0) + 1; first = first or (loop.time() - t0) end }
      loop.sleep(700)
      assert.is_nil(events, "probed at once")
      loop.sleep(800)
      g:stop()
      loop.sleep(50)
    end)
    assert.are.equal(1, events)
    assert.is_true(first >= 0.9, "first probe at " .. tostring(first))
  end)

  it("kills after the failure threshold and gates on the startup probe", function()
    local log = {}
    local t0 = loop.time()
    local function at() return math.floor((loop.time() - t0) * 10 + 0.5) / 10 end
    local c = { name = "kubia", ports = { { name = "http", containerPort = 8080 } },
      startupProbe = { tcpSocket = { port = "http" }, periodSeconds = 1 },
      readinessProbe = { httpGet = { path = "/ready", port = 8080 }, periodSeconds = 1 },
      livenessProbe = { httpGet = { path = "/live", port = "http" }, periodSeconds = 1, failureThreshold = 2 } }
    local events = {}
    local killed
    sched.run(function()
      local g = prober.container{ pod = { metadata = { name = "p" } }, container = c,
        started_at = loop.time(), host = "127.0.0.1",
        port_for = function(_, p) assert(p == 8080); return port end,
        on_change = function(kind, value) log[#log + 1] = { kind, value, at() } end,
        event = function(typ, reason, msg) events[#events + 1] = reason .. ": " .. msg end }
      for _ = 1, 60 do
        loop.sleep(100)
        for _, e in ipairs(log) do if e[1] == "liveness" then killed = e end end
        if killed then break end
      end
      g:stop()
      loop.sleep(50)
    end)
    -- the startup probe first runs a period after the start (the kubelet's
    -- worker ticks from the pod's admission), not the instant it starts
    assert.are.equal("started", log[1][1])
    assert.is_true(log[1][3] >= 0.9 and log[1][3] < 1.6, "started at " .. log[1][3])
    -- readiness runs as soon as the container started, not a period later
    assert.are.same("readiness", log[2][1])
    assert.is_true(log[2][2])
    assert.is_true(log[2][3] < 1.6)
    assert.is_truthy(killed)
    assert.is_false(killed[2])
    assert.is_true(killed[3] >= 1.5 and killed[3] < 4.5, "killed at " .. killed[3])
    assert.are.same({ "Unhealthy: Liveness probe failed: HTTP probe failed with statuscode: 500",
      "Unhealthy: Liveness probe failed: HTTP probe failed with statuscode: 500" }, events)
    local st = sched.stats()
    assert.are.equal(0, st.waiting)
  end)
end)
