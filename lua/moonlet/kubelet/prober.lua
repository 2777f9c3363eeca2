-- moonlet.kubelet.prober: the kubelet's probe workers (pkg/kubelet/prober
-- worker.go + prober.go). One worker per container and probe type ticks every
-- periodSeconds, runs the probe through the C runner (moonlet.probe) or a Lua
-- check (moonlet.kubelet.checks), records Unhealthy/ProbeWarning events on
-- every failed attempt, and flips its stored result only after
-- failureThreshold / successThreshold consecutive results. On the real loop
-- http/tcp/exec probes tick in C and report only results that can matter
-- (see "ticking in C"). Clock, sleep and runner are injectable so the timing
-- rules can be tested without waiting (that uses the Lua loop).
--
--   local w = prober.new{ type = "liveness", probe = c.livenessProbe,
--     pod = pod, container = c, status = function() return {...} end,
--     on_change = fn(type, result), on_threshold = fn(type, message) }
--   w:start()      -- ticks in its own coroutine until w:stop()
--
-- prober.container{...} runs the workers of one container instance with the
-- startup gating wired up (what the kubelet's pod worker uses).
local M = {}

local TYPES = { liveness = "Liveness", readiness = "Readiness", startup = "Startup" }

-- Initial stored result (worker.go newWorker).
local INITIAL = { readiness = "failure", liveness = "success", startup = "unknown" }

M.MAX_RETRIES = 3 -- prober.go maxProbeRetries: retries on probe *errors* only

-- Readiness only, ticking in C: after the first attempt of a container
-- instance fails, retry after 5, 10, 20 ... ms (at most 250) until the first
-- success, within one period (core/probe.h "Quick retries"). A server that
-- listens a few ms after its exec is Ready then, not a whole period later.
-- The retries' failures are not reported, so the Unhealthy events and the
-- thresholds see only the periodic attempts, as in the kubelet. 0: off.
M.QUICK_RETRY_MS = 5

--- The probe with Kubernetes' defaults filled in (SetDefaults_Probe and
--- SetDefaults_HTTPGetAction); the input is not modified.
function M.defaults(probe)
  local p = {}
  for k, v in pairs(probe or {}) do p[k] = v end
  p.initialDelaySeconds = p.initialDelaySeconds or 0
  p.timeoutSeconds = (p.timeoutSeconds and p.timeoutSeconds > 0) and p.timeoutSeconds or 1
  p.periodSeconds = (p.periodSeconds and p.periodSeconds > 0) and p.periodSeconds or 10
  p.successThreshold = (p.successThreshold and p.successThreshold > 0) and p.successThreshold or 1
  p.failureThreshold = (p.failureThreshold and p.failureThreshold > 0) and p.failureThreshold or 3
  if p.httpGet then
    local h = {}
    for k, v in pairs(p.httpGet) do h[k] = v end
    h.path = (h.path and h.path ~= "") and h.path or "/"
    h.scheme = h.scheme or "HTTP"
    p.httpGet = h
  end
  return p
end

-- {====== handlers: probe spec -> (kind, params)

-- extractPort + findPortByName (pkg/kubelet/prober/prober.go): a number, or
-- a named container port, or a name that is really a number.
function M.extract_port(port, container)
  local n
  if math.type(port) == "integer" then
    n = port
  elseif type(port) == "number" then
    n = math.tointeger(port)
    if not n then return nil, "invalid port number: " .. tostring(port) end
  elseif type(port) == "string" then
    for _, cp in ipairs(container and container.ports or {}) do
      if cp.name == port then
        n = cp.containerPort
        break
      end
    end
    if not n then
      n = port:match("^[+-]?%d+$") and math.tointeger(tonumber(port))
      if not n then
        return nil, string.format('strconv.Atoi: parsing "%s": invalid syntax', port)
      end
    end
  else
    return nil, "intOrString had no kind: " .. tostring(port)
  end
  if n > 0 and n < 65536 then return n end
  return nil, "invalid port number: " .. tostring(n)
end

-- Where to connect: the caller's port_for(container, port) maps a container
-- port to the host port the process really listens on; it may also give a
-- host (host, port) or only a port.
local function target(opts, host, port)
  local h, p = host, port
  if opts.port_for then
    local a, b = opts.port_for(opts.container, port)
    if b ~= nil then
      if not host or host == "" then h = a end
      p = b
    elseif a ~= nil then
      p = a
    end
  end
  if not h or h == "" then h = opts.host end
  if not h or h == "" then h = "127.0.0.1" end -- a pod's address is loopback
  return h, p
end

--- Turns a probe handler into (kind, params) for moonlet.probe, or
--- nil, message, result for handlers that end before running.
--- opts: container, host (default address), port_for, env (exec), cwd.
function M.handler(probe, opts)
  if probe.exec then
    return "exec", { command = probe.exec.command or {}, env = opts.env,
      cwd = opts.cwd or (opts.container and opts.container.workingDir) }
  end
  if probe.httpGet then
    local g = probe.httpGet
    local port, err = M.extract_port(g.port, opts.container)
    if not port then return nil, err, "unknown" end
    local host, hport = target(opts, g.host, port)
    local headers = {}
    for _, h in ipairs(g.httpHeaders or {}) do
      headers[#headers + 1] = { name = h.name, value = h.value or "" }
    end
    return "http", { scheme = (g.scheme or "HTTP"):lower(), host = host, port = hport,
      path = g.path or "/", headers = headers }
  end
  if probe.tcpSocket then
    local t = probe.tcpSocket
    local port, err = M.extract_port(t.port, opts.container)
    if not port then return nil, err, "unknown" end
    local host, hport = target(opts, t.host, port)
    return "tcp", { host = host, port = hport }
  end
  if probe.grpc then
    return nil, "grpc probes are not supported by moonlet (use httpGet, tcpSocket, exec or lua)",
      "failure"
  end
  if probe.lua then
    return "lua", { check = probe.lua.check, args = probe.lua.args or {} }
  end
  return nil, "missing probe handler", "unknown"
end

-- }======

-- {====== the worker

local Worker = {}
Worker.__index = Worker

local function default_clock() return require("moonlet.loop").time() end

-- Real sleeping: a timer on the loop, cut short by trigger()/stop(). The
-- wake id is made at the first sleep: a worker ticking in C never sleeps.
local function real_sleep(w, seconds)
  local loop = require("moonlet.loop")
  local sched = require("moonlet.sched")
  w._wake_id = w._wake_id or loop.next_id()
  local t = loop.timer(math.max(0, seconds) * 1000, function() sched.wake(w._wake_id) end)
  w._sleeping = true
  sched.wait(w._wake_id)
  w._sleeping = false
  t.stop()
end

local function real_wake(w)
  if w._sleeping then require("moonlet.sched").wake(w._wake_id) end
end

-- The real clock and sleep are the class's: a worker holds only the ones a
-- test injects. One table per probed container, and past 16 fields its
-- hash part doubles to 32 slots (0.4 KiB more per probe).
Worker.clock = default_clock
Worker.sleep = real_sleep
Worker.wake = real_wake

--- Creates a worker (not started). opts:
---   type          "liveness" | "readiness" | "startup"
---   probe         the container's v1.Probe (defaults are applied here)
---   pod, container
---   status()      -> nil (no status yet) or { id = container instance id,
---                    running = bool, terminated = bool, started = bool,
---                    started_at = clock seconds, deleting = bool,
---                    phase = pod phase, restart_policy = "Always"... }
---   host, port_for(container, port) -> [host,] port, env, cwd: see handler
---   on_result(type, result, message)  every completed attempt (ticking in
---                                     C: every one reported, so not the
---                                     successes past successThreshold)
---   on_change(type, result, initial)  the stored result changed (initial:
---                                     the reset for a new container)
---   on_threshold(type, message)       the stored result became "failure"
---                                     (liveness/startup: kill; readiness: unready)
---   event(type_, reason, message, field_path)   Warning events
---   clock() -> seconds, sleep(seconds) (may return early when woken),
---   wake() (cuts a sleep short), run(kind, params, timeout) -> result, msg,
---   checks (registry for `lua` handlers), log(level, msg),
---   ticker = false: probe from the Lua loop even on the real loop
function M.new(opts)
  assert(TYPES[opts.type], "prober: type must be liveness, readiness or startup")
  local w = setmetatable({
    type = opts.type,
    label = TYPES[opts.type],
    spec = M.defaults(opts.probe),
    opts = opts,
    initial = INITIAL[opts.type],
    result = nil,        -- the stored result (resultsManager)
    container_id = nil,
    last = nil,          -- lastResult
    run_count = 0,       -- resultRun
    on_hold = false,
    stopped = false,
    state = nil,         -- ctx.state of lua checks, kept across runs
  }, Worker)
  if opts.clock then w.clock = opts.clock end
  if opts.sleep then
    w.sleep = function(_, s) return opts.sleep(s) end
    w.wake = function() if opts.wake then opts.wake() end end
  end
  return w
end

-- Stores a result; `initial` marks the reset for a new container, which
-- is no threshold crossing.
function Worker:_set(result, initial)
  if self.result == result then return end
  self.result = result
  local o = self.opts
  if o.on_change then o.on_change(self.type, result, initial) end
  if result == "failure" and not initial and o.on_threshold then
    o.on_threshold(self.type, self.last_message)
  end
end

function Worker:_event(reason, message)
  local o = self.opts
  if o.event then
    local name = o.container and o.container.name or "?"
    o.event("Warning", reason, message, "spec.containers{" .. name .. "}")
  end
end

function Worker:_log(level, msg)
  if self.opts.log then self.opts.log(level, msg) end
end

-- One attempt through the handler.
function Worker:_attempt()
  local o = self.opts
  local kind, params, early = M.handler(self.spec, o)
  if not kind then return early, params end
  local timeout = self.spec.timeoutSeconds
  if kind == "lua" then
    local checks = o.checks or require("moonlet.kubelet.checks").default()
    self.state = self.state or {}
    local ctx = { pod = o.pod, container = o.container, host = o.host, probe_type = self.type,
      state = self.state, timeout = timeout,
      port_for = function(port)
        local n, err = M.extract_port(port, o.container)
        if not n then return nil, err end
        return target(o, nil, n)
      end }
    return checks:run(params.check, ctx, params.args, timeout)
  end
  local run = o.run or require("moonlet.probe").run
  return run(kind, params, timeout)
end

-- prober.probe's reporting of one attempt's outcome: events for failures,
-- warnings and errors. @return "success" | "failure", or nil for an error
-- (thrown away)
function Worker:_outcome(result, message)
  message = message or ""
  if self.opts.on_result then self.opts.on_result(self.type, result, message) end
  if result == "unknown" then
    self:_event("Unhealthy", string.format("%s probe errored and resulted in unknown state: %s",
      self.label, message))
    return nil
  end
  if result == "warning" then
    self:_event("ProbeWarning", string.format("%s probe warning: %s", self.label, message))
    return "success"
  end
  if result == "failure" then
    self.last_message = message
    self:_event("Unhealthy", string.format("%s probe failed: %s", self.label, message))
    return "failure"
  end
  return "success"
end

-- runProbeWithRetries + prober.probe. @return as _outcome
function Worker:probe()
  local result, message
  for _ = 1, M.MAX_RETRIES do
    result, message = self:_attempt()
    if self.stopped then return nil end
    if result ~= "unknown" then break end
  end
  return self:_outcome(result, message)
end

-- Seconds after the container's start before its first probe: the
-- initial delay, or opts.first_after (the group's) when that is later.
function Worker:_first_due()
  return math.max(self.spec.initialDelaySeconds, self.opts.first_after or 0)
end

-- The part of worker.go doProbe before the probe runs. @return "go", or
-- "stop" (the worker ends), "wait" (no probe now) or "delay" (no probe
-- until initialDelaySeconds passed)
function Worker:_gate()
  local st = self.opts.status and self.opts.status()
  if not st then return "wait" end
  if st.phase == "Succeeded" or st.phase == "Failed" then return "stop" end
  if st.id == nil then return "wait" end -- container not created yet
  if self.container_id ~= st.id then
    self.container_id = st.id
    self:_set(self.initial, true)
    self.on_hold = false -- a new container: resume probing
    if self._ticker then self._ticker:reset() end
  end
  if self.on_hold then return "wait" end
  if not st.running then
    self:_set("failure")
    if self._ticker then self._ticker:reset() end -- the next success counts
    -- Only a container that will never run again ends the worker.
    return (not st.terminated or st.restart_policy ~= "Never") and "wait" or "stop"
  end
  if st.deleting and (self.type == "liveness" or self.type == "startup") then
    self:_set("success") -- a quiet shutdown: stop probing
    return "stop"
  end
  local elapsed = self.clock() - (st.started_at or 0)
  -- Whole seconds, as int32(time.Since(startedAt).Seconds()); a hair of
  -- slack so a timer that fires on the dot counts as on time.
  if math.floor(elapsed + 1e-3) < self.spec.initialDelaySeconds then return "delay", st end
  if elapsed + 1e-3 < (self.opts.first_after or 0) then return "delay", st end
  if st.started then
    if self.type == "startup" then return "wait" end -- startup is done
  elseif self.type ~= "startup" then
    return "wait" -- only the startup probe runs until the container started
  end
  return "go", st
end

-- The part of doProbe after the probe: thresholds, stored result, hold.
function Worker:_apply(result)
  if self.last == result then
    self.run_count = self.run_count + 1
  else
    self.last = result
    self.run_count = 1
  end
  if (result == "failure" and self.run_count < self.spec.failureThreshold)
    or (result == "success" and self.run_count < self.spec.successThreshold) then
    return -- below threshold: the stored state stays
  end
  self:_set(result)
  if (self.type == "liveness" or self.type == "startup") and result == "failure" then
    -- Hold until a new container instance replaces the one being killed.
    self.on_hold = true
    self.run_count = 0
  end
end

--- One tick of worker.go doProbe. @return keep_going, and "delay" when the
--- tick was skipped for initialDelaySeconds (the run loop then wakes at the
--- end of the delay rather than a whole period later)
function Worker:tick()
  local gate = self:_gate()
  if gate == "stop" then return false end
  if gate ~= "go" then return true, gate == "delay" and "delay" or nil end
  local result = self:probe()
  if not result or self.stopped then return true end
  self:_apply(result)
  return true
end

--- The worker's loop: first tick at once, then every periodSeconds (ticker
--- semantics: measured from the start of the previous tick). Runs in the
--- calling coroutine until stop() or a tick says to end.
function Worker:loop()
  local period = self.spec.periodSeconds
  while not self.stopped do
    local t0 = self.clock()
    local ok, keep, why = xpcall(self.tick, debug.traceback, self)
    if not ok then
      self:_log("error", string.format("prober %s: %s", self.type, tostring(keep)))
      keep = true
    end
    if not keep or self.stopped then break end
    local now = self.clock()
    local delay = period - (now - t0)
    if why == "delay" then
      local st = self.opts.status and self.opts.status()
      local due = st and st.started_at and (st.started_at + self:_first_due() - now)
      if due and due < delay then delay = due end
    end
    if delay < 0 then delay = 0 end
    self:sleep(delay)
  end
  self.done = true
end

-- {====== ticking in C
--
-- With the real loop and a runner kind (http, tcp, exec), the C probe
-- runner ticks (moonlet.core.probe ticker) and the worker only hears of
-- results that can change something: failures, warnings, errors and the
-- successes up to successThreshold in a row. The kubelet's rules stay here:
-- the gate decides when the ticker runs, each result goes through the
-- same _outcome/_apply as in the Lua loop. No coroutine per worker.

-- Arms, disarms or ends the ticker from the gate. `now`: probe at once
-- when due (a trigger); otherwise the ticker keeps its phase if armed.
function Worker:_schedule(now)
  if self.stopped then return end
  local ok, gate, st = xpcall(self._gate, debug.traceback, self)
  if not ok then
    self:_log("error", string.format("prober %s: %s", self.type, tostring(gate)))
    return
  end
  if gate == "stop" then return self:stop() end
  local t = self._ticker
  if gate == "wait" then
    if self._armed then
      t:disarm()
      self._armed = false
    end
    return
  end
  if self._armed and not now then return end
  local due = 0
  if gate == "delay" then
    due = (st.started_at or 0) + self:_first_due() - self.clock()
    if due < 0 then due = 0 end
  end
  self._armed = true
  t:arm(math.ceil(due * 1000))
end

function Worker:_on_result(result, message)
  if self.stopped then return end
  local gate = self:_gate()
  -- The ticker was armed for the end of the initial delay: a timer that
  -- fires a hair early is on time.
  if gate == "go" or gate == "delay" then
    local r = self:_outcome(result, message)
    if r and not self.stopped then self:_apply(r) end
  end
  self:_schedule(false)
end

-- @return true if the worker ticks in C
function Worker:_start_ticker()
  local o = self.opts
  if o.sleep or o.run or o.clock or o.ticker == false then return false end
  local kind, params = M.handler(self.spec, o)
  if kind ~= "http" and kind ~= "tcp" and kind ~= "exec" then return false end
  local core = require("moonlet.core.probe")
  local sched = require("moonlet.sched")
  local id = require("moonlet.loop").next_id()
  local t, err = core.ticker(id, kind, params, { period = self.spec.periodSeconds * 1000,
    timeout = self.spec.timeoutSeconds * 1000, success_threshold = self.spec.successThreshold,
    tries = M.MAX_RETRIES,
    quick = self.type == "readiness" and M.QUICK_RETRY_MS > 0 and M.QUICK_RETRY_MS or nil })
  if not t then
    self:_log("warn", string.format("prober %s: no C ticker (%s); probing from Lua", self.type,
      tostring(err)))
    return false
  end
  self._ticker, self._ticker_id = t, id
  sched.on(id, function(result, message) self:_on_result(result, message) end)
  self:_schedule(true)
  return true
end

-- }======

--- Starts the worker: a C ticker when it can (see above), else the loop in
--- its own coroutine (moonlet.sched).
function Worker:start()
  if self:_start_ticker() then return self end
  local sched = require("moonlet.sched")
  sched.spawn("prober " .. self.type, function() self:loop() end)
  return self
end

--- Runs a tick now instead of at the next period (manualTriggerCh).
function Worker:trigger()
  if self._ticker then return self:_schedule(true) end
  self:wake()
end

--- Stops the worker; an attempt in flight finishes but is ignored.
function Worker:stop()
  if self.stopped then return end
  self.stopped = true
  if self._ticker then
    self._ticker:close()
    require("moonlet.sched").forget(self._ticker_id)
    self._ticker = nil
    self.done = true
    return
  end
  self:wake()
end

M.Worker = Worker

-- }======

-- {====== the probes of one container instance

local Group = {}
Group.__index = Group

--- Starts the workers for the probes a container declares, for one
--- container instance (a restarted container gets a new group). opts:
---   pod, container, host, port_for(container, port) -> [host,] port,
---   started_at (clock seconds), env, checks, clock, sleep/wake/run (tests)
---   terminating() -> bool    the pod is being deleted
---   on_change(kind, value)   "readiness" true|false, "started" true,
---                            "liveness"/"startup" false (kill it)
---   event(type_, reason, message, field_path)
---   on_result(type, result, message), log(level, msg)
--- @return the group, with :stop(), :trigger(type), .workers[type]
function M.container(opts)
  local c = opts.container
  local g = setmetatable({ opts = opts, workers = {}, stopped = false,
    started = c.startupProbe == nil }, Group)
  local function status()
    if g.stopped then return nil end
    return { id = 1, running = true, started = g.started, started_at = opts.started_at,
      deleting = opts.terminating and opts.terminating() or false }
  end
  local notify = opts.on_change or function() end
  local function on_change(t, result, initial)
    if g.stopped or initial then return end -- initial values: the caller's
    if t == "readiness" then
      notify("readiness", result == "success")
    elseif t == "startup" and result == "success" then
      g.started = true
      notify("started", true)
      -- The kubelet probes readiness at once when a container starts.
      for _, other in pairs(g.workers) do
        if other ~= g.workers.startup then other:trigger() end
      end
    end
  end
  local function on_threshold(t, message)
    if g.stopped then return end
    if t == "liveness" or t == "startup" then notify(t, false, message) end
  end
  -- Each worker's options: its own few fields over the group's (shared,
  -- not copied: one table per probe instead of a copy of every option).
  local inherit = { __index = opts }
  for _, typ in ipairs({ "startup", "liveness", "readiness" }) do
    local probe = c[typ .. "Probe"]
    if probe then
      local wo = setmetatable({ type = typ, probe = probe, status = status, on_change = on_change,
        on_threshold = on_threshold }, inherit)
      -- The kubelet's probe worker ticks from the pod's admission, before
      -- the container runs, so a liveness or startup probe first runs up
      -- to a period after the start, never the instant the process starts
      -- (an HTTP server is rarely listening yet). Readiness is triggered at
      -- once for a running container, as the kubelet does.
      if typ ~= "readiness" then
        wo.first_after = probe.periodSeconds or 10
      end
      if opts.sleep then
        -- Tests drive each worker's sleep; wake is per worker there too.
        wo.sleep = function(s) return opts.sleep(s, typ) end
        wo.wake = function() if opts.wake then opts.wake(typ) end end
      end
      g.workers[typ] = M.new(wo)
    end
  end
  if not opts.no_start then
    for _, typ in ipairs({ "startup", "liveness", "readiness" }) do
      if g.workers[typ] then g.workers[typ]:start() end
    end
  end
  return g
end

--- Runs the probe of `typ` now.
function Group:trigger(typ)
  local w = self.workers[typ]
  if w then w:trigger() end
end

--- Stops every worker of the instance.
function Group:stop()
  if self.stopped then return end
  self.stopped = true
  for _, w in pairs(self.workers) do w:stop() end
end

-- }======

return M
