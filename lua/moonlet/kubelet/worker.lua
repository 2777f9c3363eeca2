-- The pod worker: one coroutine per pod bound to this node. Each sync is
-- level-triggered (spec + what runs now -> actions): resolve images, start
-- init containers in order then the app containers as processes, apply the
-- restart policy and crash-loop back-off on exits, kill on liveness failure,
-- enforce activeDeadlineSeconds, stop everything with the grace period when
-- the pod is deleted, and write the status (phase, conditions,
-- containerStatuses) through the status subresource. Everything outside
-- (process runtime, probes, API, clock, events) comes from the agent, so
-- specs drive the worker with fakes.
local sched = require("moonlet.sched")
local json = require("moonlet.json")
local status = require("moonlet.kubelet.status")
local policies = require("moonlet.kubelet.policies")
local envmod = require("moonlet.kubelet.env")
local images = require("moonlet.kubelet.images")
local ports = require("moonlet.kubelet.ports")
local backoff = require("moonlet.kubelet.backoff")

local M = {}
local Worker = {}
Worker.__index = Worker

local MIN_GRACE = 2         -- minimumGracePeriodInSeconds
local HISTORY = 100         -- exit times kept per container for policies
local DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"

-- {====== helpers

local function key_of(pod) return pod.metadata.namespace .. "/" .. pod.metadata.name end

--- kubelet's pod name format: name_namespace(uid).
function M.pod_desc(pod)
  local md = pod.metadata
  return string.format("%s_%s(%s)", md.name, md.namespace, md.uid)
end

-- API times: second precision (metav1.Time), from unix seconds or from
-- the runtime's RFC 3339 with nanoseconds.
local function api_time(t, fallback)
  if type(t) == "number" then return status.time(t) end
  if type(t) == "string" and t ~= "" then
    local base = t:match("^(%d+%-%d+%-%d+T%d+:%d+:%d+)")
    if base then return base .. "Z" end
  end
  return status.time(fallback)
end

-- Memory quantity -> bytes ("64Mi", "1G", "128974848", "129e6").
function M.quantity_bytes(q)
  if type(q) == "number" then return math.floor(q) end
  if type(q) ~= "string" then return nil end
  local num, suffix = q:match("^([%d%.]+[eE]?%d*)(%a*)$")
  num = tonumber(num)
  if not num then return nil end
  local mult = ({ [""] = 1, k = 1e3, K = 1e3, M = 1e6, G = 1e9, T = 1e12, P = 1e15, E = 1e18,
    Ki = 1024, Mi = 1024 ^ 2, Gi = 1024 ^ 3, Ti = 1024 ^ 4, Pi = 1024 ^ 5, Ei = 1024 ^ 6,
    m = 1e-3 })[suffix]
  if not mult then return nil end
  return math.floor(num * mult)
end

-- }======

-- {====== construction

--- Creates the worker for `pod` (not started). agent provides: node_name,
--- host_ip, clock(), runtime (spawn), crash_backoff, image_backoff, ports
--- (allocator), image_dirs, pod_dir(pod) -> dir, make_pod_dir(pod) -> true
--- when it waited (made off the loop thread), log_path(pod, c, id),
--- prune_logs(pod, c, keep_ids), api (status/delete/event writers),
--- probes (optional factory), new_id() -> hex container id, log(level,
--- msg), timer(ms, fn) -> handle, base_env (list of {k, v}),
--- get_configmap(ns, name).
function M.new(agent, pod)
  local w = setmetatable({
    agent = agent,
    pod = pod,
    key = key_of(pod),
    uid = pod.metadata.uid,
    cs = {},          -- container name -> runtime record
    dirty = true,
    started = false,  -- start() was called
    running = false,  -- a sync coroutine exists
    done = false,
    removed = false,  -- gone from the API (informer delete)
    terminal = nil,   -- { reason=, message= } once the pod ends for good
    last_status = nil,
  }, Worker)
  w:adopt_status(pod)
  return w
end

local function new_record(c, init)
  return { name = c.name, init = init, spec = c, state = { waiting = { reason = "ContainerCreating" } },
    restart_count = 0, ready = false, started = false, instances = 0, history = {},
    policy_state = {} }
end

-- Takes over what the pod's status says about earlier instances (server
-- restart): counts and last states stay true; an instance that was running
-- is gone (leftover processes are reaped before workers start), so it is
-- recorded as killed by the restart.
function Worker:adopt_status(pod)
  local st = pod.status or {}
  self.start_time = st.startTime
  if st.phase == "Succeeded" or st.phase == "Failed" then
    self.terminal = { reason = st.reason, message = st.message, phase = st.phase, adopted = true }
  end
  local function adopt(list, specs, init)
    local by = {}
    for _, s in ipairs(list or {}) do by[s.name] = s end
    for _, c in ipairs(specs or {}) do
      local rec = new_record(c, init)
      local s = by[c.name]
      if s then
        rec.restart_count = s.restartCount or 0
        rec.last_state = s.lastState and s.lastState.terminated and s.lastState or nil
        local state = s.state or {}
        local now = self.agent.clock()
        local kept = state.running and self:adopt_running(rec, c, s)
        if kept then
          rec.instances = 1
        elseif state.running then
          rec.instances = 1
          rec.container_id = s.containerID
          rec.state = { terminated = { exitCode = 137, reason = "Error",
            message = "The container was stopped when the node agent restarted",
            startedAt = state.running.startedAt, finishedAt = status.time(now),
            containerID = s.containerID } }
          rec.exit_state = rec.state.terminated
          rec.exit = { exit_code = 137, reason = "Error", finished = now, adopted = true }
        elseif state.terminated then
          rec.instances = 1
          rec.container_id = s.containerID or state.terminated.containerID
          rec.state = { terminated = state.terminated }
          rec.exit_state = state.terminated
          rec.exit = { exit_code = state.terminated.exitCode or 0,
            reason = state.terminated.reason, finished = now, adopted = true }
        elseif state.waiting and rec.last_state then
          -- Waiting out a back-off when the agent stopped: the last
          -- instance ended; restart it (a fresh back-off starts at once).
          rec.instances = 1
          rec.state = { terminated = rec.last_state.terminated }
          rec.last_state = nil
          local t = rec.state.terminated
          rec.container_id = t.containerID
          rec.exit_state = t
          rec.exit = { exit_code = t.exitCode or 0, reason = t.reason, finished = now, adopted = true }
        end
        rec.image_id = s.imageID
      end
      self.cs[c.name] = rec
    end
  end
  adopt(st.initContainerStatuses, pod.spec.initContainers, true)
  adopt(st.containerStatuses, pod.spec.containers, false)
end

-- Kept containers outlive the server, so their host ports must too: the
-- map is saved in the pod's dir and given back to the allocator on
-- adoption.
function Worker:save_ports(map)
  local dir = self.agent:pod_dir(self.pod)
  require("moonlet.core.sys").mkdir(dir, 448) -- 0700; may exist already
  local f = io.open(dir .. "/ports.json", "w")
  if not f then return end
  f:write(json.encode(map))
  f:close()
end

function Worker:restore_ports()
  local text = require("moonlet.files").read(self.agent:pod_dir(self.pod) .. "/ports.json")
  if not text then return end
  local ok, map = pcall(json.decode, text)
  if ok and type(map) == "table" then
    self.port_map = self.agent.ports:restore(self.uid, map)
  end
end

-- A container a keeper still runs (--keep-pods) goes on as the same
-- instance: no restart counted; readiness and startup are probed afresh, as
-- after a kubelet restart. @return true when adopted
function Worker:adopt_running(rec, c, s)
  local runtime = self.agent.runtime
  local cid = (s.containerID or ""):match("^moonlet://(.+)$")
  if not (cid and runtime and runtime.adopt) then return false end
  local now = self.agent.clock()
  local inst = { id = cid, started = now, adopted = true }
  local handle = runtime.adopt(cid, function(r) self:on_exit(rec, inst, r) end)
  if not handle then return false end
  inst.handle = handle
  rec.inst = inst
  if not self.port_map then self:restore_ports() end
  rec.container_id = s.containerID
  rec.image_pulled = c.image
  rec.state = { running = s.state.running }
  rec.started = c.startupProbe == nil
  rec.ready = c.readinessProbe == nil and rec.started
  return true
end

-- }======

-- {====== scheduling of syncs

--- Asks for a sync soon (pod changed, process exited, probe result): at
--- once (in a coroutine of its own) unless a sync is under way, which then
--- syncs again when it ends.
function Worker:wake()
  self.dirty = true
  if self.started and not self.running and not self.done then
    self.running = true
    sched.spawn("pod worker " .. self.key, function() self:run() end)
  end
end

--- Asks for a sync at unix time t (back-off, deadline).
function Worker:wake_at(t)
  local now = self.agent.clock()
  if self.next_wake and self.next_wake <= t and self.next_wake > now then return end
  if self.wake_timer then self.wake_timer.stop() end
  self.next_wake = t
  self.wake_timer = self.agent.timer(math.max(0, (t - now) * 1000), function()
    self.wake_timer, self.next_wake = nil, nil
    self:wake()
  end)
end

--- The new pod object from the API (the informer saw a change).
function Worker:update(pod)
  self.pod = pod
  -- A replacement armed for the old spec must not start: the pod is going
  -- away, or an image changed (the one field of a container that may).
  for _, rec in pairs(self.cs) do
    local nxt = rec.inst and rec.inst.next
    if nxt and (pod.metadata.deletionTimestamp or nxt.image ~= self:container_spec(rec).image) then
      self:disarm(rec.inst)
    end
  end
  self:wake()
end

--- The pod is gone from the API: stop what runs and clean up.
function Worker:remove()
  self.removed = true
  self:wake()
end

--- Syncs until nothing asks for another sync (call in a coroutine). No
--- coroutine stays parked between syncs: with 1,000 pods that was ~1 KB of
--- heap each.
function Worker:run()
  while self.dirty and not self.done do
    self.dirty = false
    local ok, err = xpcall(self.sync, debug.traceback, self)
    if not ok then
      self.agent.log("error", string.format("pod %s: sync failed: %s", self.key, tostring(err)))
      self:wake_at(self.agent.clock() + 1)
    end
  end
  self.running = false
  if self.done and self.wake_timer then
    self.wake_timer.stop()
    self.wake_timer = nil
  end
end

--- Starts the worker: its first sync runs now.
function Worker:start()
  self.started = true
  self:wake()
  return self
end

-- }======

-- {====== events

local function field_path(rec)
  return string.format("%s{%s}", rec.init and "spec.initContainers" or "spec.containers", rec.name)
end

function Worker:event(rec, typ, reason, message)
  self.agent.api.event(self.pod, rec and field_path(rec) or nil, typ, reason, message)
end

-- }======

-- {====== containers

local function all_specs(pod)
  local out = {}
  for _, c in ipairs(pod.spec.initContainers or {}) do out[#out + 1] = { c = c, init = true } end
  for _, c in ipairs(pod.spec.containers or {}) do out[#out + 1] = { c = c, init = false } end
  return out
end

-- rec's container in the current pod spec (rec.spec until the next sync).
function Worker:container_spec(rec)
  local list = rec.init and self.pod.spec.initContainers or self.pod.spec.containers
  for _, c in ipairs(list or {}) do
    if c.name == rec.name then return c end
  end
  return rec.spec
end

function Worker:record(c, init)
  local rec = self.cs[c.name]
  if not rec then
    rec = new_record(c, init)
    self.cs[c.name] = rec
  end
  rec.spec = c
  return rec
end

local function running(rec) return rec.state.running ~= nil and rec.inst ~= nil end

-- Grace period for killing one container (killContainer's rules).
function Worker:grace_for(rec, reason)
  local pod = self.pod
  local g = MIN_GRACE
  if pod.metadata.deletionGracePeriodSeconds then
    g = pod.metadata.deletionGracePeriodSeconds
  elseif pod.spec.terminationGracePeriodSeconds then
    g = pod.spec.terminationGracePeriodSeconds
    local probe = reason == "liveness" and rec.spec.livenessProbe
      or reason == "startup" and rec.spec.startupProbe or nil
    if probe and probe.terminationGracePeriodSeconds then g = probe.terminationGracePeriodSeconds end
  end
  if g < MIN_GRACE then g = MIN_GRACE end
  if self.grace_override then g = self.grace_override end
  return g
end

--- Kills a running container: SIGTERM to its process group, SIGKILL after
--- the grace period. reason: "liveness" | "startup" | "stop".
function Worker:kill(rec, reason, grace)
  local inst = rec.inst
  if not inst or inst.killing then return end
  inst.killing = reason
  local msg
  if reason == "liveness" or reason == "startup" then
    msg = string.format("Container %s failed %s probe", rec.name, reason)
    if (self.pod.spec.restartPolicy or "Always") ~= "Never" then msg = msg .. ", will be restarted" end
  else
    msg = "Stopping container " .. rec.name
  end
  self:event(rec, "Normal", "Killing", msg)
  if inst.probes then inst.probes:stop() end
  inst.next = nil -- stopping disarms the runtime's replacement
  inst.handle:stop(grace or self:grace_for(rec, reason))
end

-- A probe outcome crossed its threshold (liveness/startup failure) or the
-- readiness/started state changed.
function Worker:probe_result(rec, inst, kind, value)
  if rec.inst ~= inst then return end
  if kind == "readiness" then
    rec.ready = value == true
  elseif kind == "started" then
    rec.started = value == true
  elseif kind == "liveness" or kind == "startup" then
    if value == false and not self.pod.metadata.deletionTimestamp then self:kill(rec, kind) end
  end
  self:wake()
end

function Worker:on_exit(rec, inst, r)
  if rec.inst ~= inst then
    -- Not ours any more: nothing may run that no record tracks.
    if r.next_handle then r.next_handle:stop(0) end
    return
  end
  local now = self.agent.clock()
  local exit = { exit_code = r.exit_code or 0, signal = r.signal, oom_killed = r.oom_killed,
    killed_by = (inst.killing == "liveness" or inst.killing == "startup") and inst.killing or nil,
    finished = now }
  exit.reason = status.exit_reason(exit)
  if inst.probes then inst.probes:stop() end
  rec.inst = nil
  rec.ready = false
  rec.exit = exit
  rec.decision = nil
  rec.exit_state = { exitCode = exit.exit_code, reason = exit.reason,
    startedAt = api_time(r.started_at, inst.started), finishedAt = api_time(r.finished_at, now),
    containerID = rec.container_id }
  rec.state = { terminated = rec.exit_state }
  local h = rec.history
  h[#h + 1] = now
  if #h > HISTORY then table.remove(h, 1) end
  local nxt = inst.next
  inst.next = nil
  if r.next_handle then
    if nxt then
      self:restarted(rec, nxt, r.next_handle)
    else
      r.next_handle:stop(0)
    end
  end
  self:wake()
end

-- {====== restarts the runtime does by itself
-- When nothing the kubelet decides at an exit can differ from "restart now,
-- same command", the worker arms the process runtime with the next
-- instance (Proc:arm_restart), and the runtime spawns it the moment the
-- process ends, before any event reaches Lua: a crashed container's
-- replacement runs after one spawn's time, not after the exit's trip
-- through the loop, the scheduler and the worker. The bookkeeping
-- (restartCount, lastState, back-off, events, status) follows in
-- restarted(), with the results the ordinary path gives. Armed only for
-- app containers whose policy declares that it always restarts (restarts =
-- "any" or "failure"), for an exit after any crash-loop back-off has
-- expired, with an environment that cannot change between instances, and
-- for a pod that is not going away (nor has a deadline); kill and stop
-- disarm it.

-- True when c's environment is the same for every instance: no ConfigMap
-- or Secret values and no labels or annotations (which may change).
local function env_is_stable(c)
  if c.envFrom and #c.envFrom > 0 then return false end
  for _, e in ipairs(c.env or {}) do
    local vf = e.valueFrom
    if vf then
      local path = vf.fieldRef and vf.fieldRef.fieldPath
      if not path or path:match("^metadata%.labels") or path:match("^metadata%.annotations") then
        return false
      end
    end
  end
  return true
end

function Worker:arm_restart(rec, inst, spawn_opts)
  local agent, pod = self.agent, self.pod
  if rec.init or not inst.handle.arm or agent.stopping or self.terminal or self.removed
    or pod.metadata.deletionTimestamp or pod.spec.activeDeadlineSeconds
    or not env_is_stable(rec.spec) then
    return
  end
  local when = policies.restarts(pod.spec.restartPolicy or "Always")
  if not when then return end
  -- With a back-off entry, only an exit after it has expired restarts at
  -- once; a second later still, so the kubelet's own check, made a moment
  -- after the runtime's, agrees.
  local quiet_in = agent.crash_backoff:quiet_in(self.uid .. "/" .. rec.name)
  if quiet_in > 0 then quiet_in = quiet_in + 1 end
  local id = agent.new_id()
  -- The runtime makes (or empties) the spare when it arms: no file is
  -- created here, and none before the arming.
  local nxt = { id = id, image = rec.spec.image, log_path = agent:log_path(pod, rec.name, id),
    spare = rec.spare_log }
  local o = {}
  for k, v in pairs(spawn_opts) do o[k] = v end
  o.keep_id, o.stdout_log, o.stderr_log, o.stdout_log_from = id, nxt.log_path, nxt.log_path, nxt.spare
  if inst.handle:arm(o, when, function(r) self:on_exit(rec, nxt, r) end, quiet_in) then
    inst.next = nxt
    if nxt.spare then rec.spare_ready = true end
  end
end

--- Readies what the next instance of rec's container uses once inst, just
--- started, has run a moment (the agent calls it when the node is quiet,
--- see Agent:arm_later): the runtime's armed replacement, which makes the
--- spare log, or else the spare log alone for the ordinary restart path.
function Worker:arm_later(rec, inst)
  if rec.inst ~= inst or inst.killing or self.done then return end
  if rec.spawn_opts then self:arm_restart(rec, inst, rec.spawn_opts) end
  local spare = rec.spare_log
  if spare and not rec.spare_ready then
    local f = io.open(spare, "w") -- empties a recycled log, else creates it
    if f then
      f:close()
      rec.spare_ready = true
    end
  end
end

function Worker:disarm(inst)
  if inst.next then
    inst.next = nil
    inst.handle:disarm()
  end
end

-- The runtime started nxt when rec's instance exited: what
-- restart_after_exit and start_container do for an immediate restart.
function Worker:restarted(rec, nxt, handle)
  local agent = self.agent
  local now = agent.clock()
  agent.crash_backoff:next(self.uid .. "/" .. rec.name, rec.exit.finished)
  rec.restart_count = rec.restart_count + 1
  if rec.exit_state then rec.last_state = { terminated = rec.exit_state } end
  rec.instances = rec.instances + 1
  rec.container_id = "moonlet://" .. nxt.id
  if rec.spare_log == nxt.spare then rec.spare_log, rec.spare_ready = nil, nil end -- now the new log
  -- nxt is the instance its exit callback names.
  nxt.started, nxt.handle = now, handle
  self:instance_started(rec, nxt, rec.spec, rec.envlist, nxt.log_path, now)
end

-- }======

-- The environment every container gets before its own env entries.
function Worker:base_env(c)
  local pod = self.pod
  local out = {}
  for _, kv in ipairs(self.agent.base_env or {}) do out[#out + 1] = kv end
  out[#out + 1] = { "HOSTNAME", pod.spec.hostname or pod.metadata.name }
  for _, kv in ipairs(ports.env(self.port_map, c)) do out[#out + 1] = kv end
  return out
end

-- Resolves the image; on failure the record waits with ErrImagePull or
-- ImagePullBackOff. @return entrypoint path | false (has a command) | nil
function Worker:pull(rec)
  local c = rec.spec
  if c.command and #c.command > 0 then return false end
  local agent, now = self.agent, self.agent.clock()
  local key = self.uid .. "/" .. rec.name .. "/image"
  local ib = agent.image_backoff
  local inb, remaining = ib:in_backoff_since(key, rec.pull_failed_at or now)
  if rec.pull_failed_at and inb then
    local msg = string.format('Back-off pulling image "%s"', c.image or "")
    if not (rec.state.waiting and rec.state.waiting.reason == "ImagePullBackOff") then
      self:event(rec, "Normal", "BackOff", msg)
      self:event(rec, "Warning", "Failed", "Error: ImagePullBackOff")
    end
    rec.state = { waiting = { reason = "ImagePullBackOff", message = msg } }
    self:wake_at(now + remaining)
    return nil
  end
  local path, err = images.resolve(c.image, agent.image_dirs)
  if not path then
    ib:next(key, now)
    rec.pull_failed_at = now
    self:event(rec, "Normal", "Pulling", string.format('Pulling image "%s"', c.image or ""))
    self:event(rec, "Warning", "Failed", string.format('Failed to pull image "%s": %s', c.image or "", err))
    self:event(rec, "Warning", "Failed", "Error: ErrImagePull")
    rec.state = { waiting = { reason = "ErrImagePull", message = err } }
    -- A resync a moment later shows ImagePullBackOff, as the kubelet's
    -- next sync does.
    self:wake_at(now + 1)
    return nil
  end
  if rec.pull_failed_at then ib:forget(key) end
  rec.pull_failed_at = nil
  return path
end

-- Starts a new instance of rec's container.
-- The container's environment. @return list, lookup | nil, message
function Worker:container_env(c)
  local agent, pod = self.agent, self.pod
  -- The downward API sees the addresses the status is about to report.
  local st = {}
  for k, v in pairs(pod.status or {}) do st[k] = v end
  st.podIP, st.hostIP = agent.host_ip, agent.host_ip
  st.podIPs, st.hostIPs = { { ip = agent.host_ip } }, { { ip = agent.host_ip } }
  local view = { metadata = pod.metadata, spec = pod.spec, status = st }
  return envmod.build(view, c, { base = self:base_env(c), get_configmap = agent.get_configmap })
end

function Worker:start_container(rec)
  local agent, pod, c = self.agent, self.pod, rec.spec
  local entry = self:pull(rec)
  if entry == nil then return end
  local envlist, lookup, cerr = self:container_env(c)
  if not envlist then
    rec.state = { waiting = { reason = "CreateContainerConfigError", message = cerr } }
    self:event(rec, "Warning", "Failed", "Error: " .. cerr)
    self:wake_at(agent.clock() + 10)
    return
  end
  local argv = envmod.argv(c, lookup, entry or nil)
  if #argv == 0 then
    local msg = "no command specified"
    rec.state = { waiting = { reason = "CreateContainerError", message = msg } }
    self:event(rec, "Warning", "Failed", "Error: " .. msg)
    return
  end
  if rec.instances == 0 or rec.image_pulled ~= c.image then
    self:event(rec, "Normal", "Pulled", string.format('Container image "%s" already present on machine', c.image or ""))
    rec.image_pulled = c.image
  end
  -- A new instance: the one that ended becomes lastState.
  if rec.instances > 0 then
    rec.restart_count = rec.restart_count + 1
    if rec.exit_state then rec.last_state = { terminated = rec.exit_state } end
  end
  rec.instances = rec.instances + 1
  local id = agent.new_id()
  rec.container_id = "moonlet://" .. id
  rec.image_id = entry and ("moonlet://" .. entry) or ("moonlet://" .. tostring(c.image or ""))
  local now = agent.clock()
  local inst = { id = id, started = now }
  local limits = (c.resources or {}).limits or {}
  local log_path = agent:log_path(pod, rec.name, id)
  -- The spare becomes this instance's log: no new file on the way. The
  -- process runtime renames it once the exec is done; a keeper gets it
  -- under its final name. A spare not readied yet (made, or an old log
  -- recycled under its name but not emptied) waits for the next arming.
  local spare = rec.spare_ready and rec.spare_log or nil
  if spare then rec.spare_log, rec.spare_ready = nil, nil end
  if spare and agent.runtime.kept then
    os.rename(spare, log_path)
    spare = nil
  end
  local spawn_opts = { keep_id = id,
    command = argv, env = envlist, cwd = c.workingDir or agent:pod_dir(pod),
    stdout_log = log_path, stderr_log = log_path, stdout_log_from = spare,
    memory_limit_bytes = M.quantity_bytes(limits.memory),
  }
  local handle, err = agent.runtime.spawn(spawn_opts, function(r) self:on_exit(rec, inst, r) end)
  if not handle then
    self:event(rec, "Normal", "Created", "Created container: " .. rec.name)
    self:prune_after_start(rec, log_path, id)
    -- Start failed (no such command, not executable): the runtime's
    -- StartError, exit 128; the restart policy decides what follows.
    local msg = tostring(err):gsub("^E%u+: ", "")
    local text = string.format('failed to start container "%s": exec: "%s": %s', rec.name,
      tostring(argv[1]), msg)
    self:event(rec, "Warning", "Failed", "Error: " .. text)
    rec.exit = { exit_code = 128, reason = "StartError", finished = now, start_error = true }
    rec.decision = nil
    rec.exit_state = { exitCode = 128, reason = "StartError", message = text,
      startedAt = "1970-01-01T00:00:00Z", finishedAt = status.time(now), containerID = rec.container_id }
    rec.state = { terminated = rec.exit_state }
    rec.history[#rec.history + 1] = now
    self:wake()
    return
  end
  inst.handle = handle
  rec.spawn_opts, rec.envlist = spawn_opts, envlist
  self:instance_started(rec, inst, c, envlist, log_path, now)
end

-- Events, logs and state of an instance that has just started; its
-- replacement is armed later (arm_later), when the agent's node is quiet.
function Worker:instance_started(rec, inst, c, envlist, log_path, now)
  -- Recorded after the spawn, off the restart's path; events go out after
  -- the turn, in order, so Created still comes before Started or Failed.
  self:event(rec, "Normal", "Created", "Created container: " .. rec.name)
  self:prune_after_start(rec, log_path, inst.id)
  rec.inst = inst
  rec.exit = nil
  rec.decision = nil
  rec.state = { running = { startedAt = status.time(now) } }
  rec.started = c.startupProbe == nil
  rec.ready = c.readinessProbe == nil and rec.started
  self:event(rec, "Normal", "Started", "Started container " .. rec.name)
  self:start_probes(rec, inst, envlist, now)
  local agent = self.agent
  if agent.arm_later then
    agent:arm_later(self, rec, inst)
  else
    self:arm_later(rec, inst) -- an agent that does not defer (specs' fakes)
  end
end

-- Older instances' logs go once the new one runs: not on a restart's path.
function Worker:prune_after_start(rec, log_path, id)
  local keep = { id, rec.last_state and rec.last_state.terminated
    and (rec.last_state.terminated.containerID or ""):match("^moonlet://(.*)$") or nil }
  self:keep_spare_log(rec, log_path, keep)
  self.agent:prune_logs(self.pod, rec.name, keep)
end

-- The container's probers for instance inst (started at `now`).
function Worker:start_probes(rec, inst, envlist, now)
  local agent, pod, c = self.agent, self.pod, rec.spec
  if agent.probes and (c.livenessProbe or c.readinessProbe or c.startupProbe) then
    inst.probes = agent.probes({
      pod = pod, container = c, started_at = now, host = agent.host_ip, env = envlist,
      cwd = c.workingDir or agent:pod_dir(pod),
      port_for = function(_, port) return ports.lookup(self.port_map, c, port) or port end,
      event = function(typ, reason, message) self:event(rec, typ, reason, message) end,
      on_change = function(kind, value) self:probe_result(rec, inst, kind, value) end,
      terminating = function() return self.pod.metadata.deletionTimestamp ~= nil end,
    })
  end
end

-- Names the empty log file kept ready for the container's next instance,
-- so that a restart opens an existing file instead of creating one.
-- Creating a file allocates an inode, and ext4 passes over every inode
-- freed in the last minute to find one: with containers restarting and
-- logs pruned, that took 0.2-3 ms on the restart path. The file of an
-- instance no longer kept is recycled (renamed now, emptied when readied)
-- rather than removed. The file is made (or emptied) by arm_later, not
-- here on the start's path: an inode made per pod start cost ~0.3 ms of
-- the server's CPU, and a container that ends before (a Job's pod) needs
-- none. Not for restartPolicy Never.
function Worker:keep_spare_log(rec, log_path, keep)
  local left, drop = {}, nil
  for _, old in ipairs(rec.log_ids or {}) do
    if old == keep[1] or old == keep[2] then left[#left + 1] = old
    elseif not drop then drop = old end
  end
  if keep[1] and keep[1] ~= left[#left] then left[#left + 1] = keep[1] end
  rec.log_ids = left
  if rec.spare_log or (self.pod.spec.restartPolicy or "Always") == "Never" then return end
  -- Only inside the agent's own pods dir (fake agents in specs have none).
  local root = self.agent.pods_dir
  if not root or log_path:sub(1, #root + 1) ~= root .. "/" then return end
  -- The spare and the logs share the instance logs' naming: the id in
  -- front of ".log" is what differs.
  local stem = log_path:sub(1, #log_path - #(log_path:match("%x+%.log$") or ".log"))
  local spare = stem .. "spare.log"
  if drop then os.rename(stem .. drop .. ".log", spare) end
  rec.spare_log, rec.spare_ready = spare, false
end

-- After an exit: ask the policy once, then restart now, later (back-off)
-- or never. @return true when the container will (eventually) restart
function Worker:restart_after_exit(rec)
  local agent, now = self.agent, self.agent.clock()
  local exit = rec.exit
  if not rec.decision then
    local info = { exit_code = exit.exit_code, reason = exit.reason, killed_by = exit.killed_by,
      restart_count = rec.restart_count, finished_at = exit.finished, history = rec.history,
      init = rec.init }
    local policy = self.pod.spec.restartPolicy or "Always"
    local d, err = policies.decide(policy, self.pod, rec.spec, info, rec.policy_state)
    if err then
      agent.log("error", string.format("pod %s: %s", self.key, err))
      self:event(rec, "Warning", "PolicyError", err)
    end
    rec.decision = d
  end
  local d = rec.decision
  if not d.restart then return false end
  local bkey = self.uid .. "/" .. rec.name
  local wait, current
  if d.delay then
    wait = exit.finished + d.delay - now
    current = d.delay
  else
    local inb, remaining, b = agent.crash_backoff:in_backoff_since(bkey, exit.finished)
    wait = inb and remaining or 0
    current = b
  end
  if wait > 0 then
    local msg = string.format("back-off %s restarting failed container=%s pod=%s",
      backoff.go_duration(current), rec.name, M.pod_desc(self.pod))
    if not (rec.state.waiting and rec.state.waiting.reason == "CrashLoopBackOff") or rec.backoff_msg ~= msg then
      self:event(rec, "Warning", "BackOff", string.format("Back-off restarting failed container %s in pod %s",
        rec.name, M.pod_desc(self.pod)))
    end
    rec.backoff_msg = msg
    rec.last_state = { terminated = rec.exit_state }
    rec.state = { waiting = { reason = "CrashLoopBackOff", message = msg } }
    self:wake_at(now + wait)
    return true
  end
  if not d.delay then agent.crash_backoff:next(bkey, exit.finished) end
  self:start_container(rec)
  return true
end

-- }======

-- {====== sync

local function succeeded(rec)
  local t = rec.state.terminated
  return t ~= nil and t.exitCode == 0 and not rec.inst
end

function Worker:stop_all(grace)
  local n = 0
  for _, rec in pairs(self.cs) do
    if rec.inst then
      n = n + 1
      self:kill(rec, "stop", grace)
    end
  end
  return n
end

local function any_running(self)
  for _, rec in pairs(self.cs) do if rec.inst then return true end end
  return false
end

function Worker:sync()
  local agent, pod = self.agent, self.pod
  local now = agent.clock()
  if self.removed then
    -- Deleted from the API (force delete): kill with the minimum grace.
    self.grace_override = self.grace_override or MIN_GRACE
    self:stop_all()
    if any_running(self) then return end
    agent:forget(self)
    self.done = true
    return
  end
  if agent.stopping then return end
  -- The pod's dir first (made off the loop thread): the pod may have
  -- changed while it was made, so the sync starts again.
  if not pod.metadata.deletionTimestamp and agent:make_pod_dir(pod) then
    self.dirty = true
    return
  end
  if not self.start_time then self.start_time = status.time(now) end
  if not self.port_map then
    local map, err = agent.ports:assign(self.uid, pod.spec)
    if not map then
      self.terminal = { phase = "Failed", reason = "HostPortConflict", message = err }
    end
    self.port_map = map or {}
    if map and agent.runtime and agent.runtime.kept then self:save_ports(map) end
  end
  -- Published once per pod (an annotation), for the endpoints controller.
  local published = ports.encode(self.port_map)
  if published and (pod.metadata.annotations or {})[ports.ANNOTATION] ~= published
      and self.ports_published ~= published and not pod.metadata.deletionTimestamp
      and agent.api.annotate then
    self.ports_published = published
    agent.api.annotate(pod, ports.ANNOTATION, published)
  end
  -- Adopted instances get their probers here: building the environment
  -- may wait on the API.
  for _, rec in pairs(self.cs) do
    local inst = rec.inst
    if inst and inst.adopted and not inst.probing then
      inst.probing = true
      self:start_probes(rec, inst, self:container_env(rec.spec) or {}, now)
    end
  end
  -- activeDeadlineSeconds counts from startTime.
  local ads = pod.spec.activeDeadlineSeconds
  if ads and not self.terminal then
    local started = require("moonlet.printers.duration").parse(self.start_time) or now
    if now >= started + ads then
      self.terminal = { phase = "Failed", reason = "DeadlineExceeded", message = DEADLINE_MESSAGE }
      self:event(nil, "Normal", "DeadlineExceeded", DEADLINE_MESSAGE)
    else
      self:wake_at(started + ads)
    end
  end
  if pod.metadata.deletionTimestamp or self.terminal then
    self:stop_all()
    self:write_status(now)
    if pod.metadata.deletionTimestamp and not any_running(self) and not self.delete_sent then
      self.delete_sent = true
      agent.api.delete(pod)
    end
    return
  end
  -- Init containers, one at a time and in order.
  local initialized = true
  for _, c in ipairs(pod.spec.initContainers or {}) do
    local rec = self:record(c, true)
    if running(rec) then initialized = false break end
    if not succeeded(rec) then
      initialized = false
      if rec.instances == 0 and not rec.exit then
        self:start_container(rec)
      elseif rec.exit then
        if not self:restart_after_exit(rec) then
          self.terminal = { phase = "Failed", init_failed = true }
          self:write_status(now)
          return
        end
      else
        self:start_container(rec)
      end
      break
    end
  end
  if initialized then
    for _, c in ipairs(pod.spec.containers or {}) do
      local rec = self:record(c, false)
      if not running(rec) and not rec.inst then
        if rec.exit then
          rec.gave_up = not self:restart_after_exit(rec)
        elseif rec.instances == 0 then
          self:start_container(rec)
        end
      end
    end
  else
    for _, c in ipairs(pod.spec.containers or {}) do
      local rec = self:record(c, false)
      if rec.instances == 0 then rec.state = { waiting = { reason = "PodInitializing" } } end
    end
  end
  self:write_status(now)
end

-- }======

-- {====== status

local function container_status(rec)
  local s = {
    name = rec.name,
    state = rec.state,
    lastState = rec.last_state or {},
    ready = rec.ready and rec.inst ~= nil,
    restartCount = rec.restart_count,
    image = rec.spec.image or "",
    imageID = rec.image_id or "",
    started = rec.inst ~= nil and rec.started or false,
  }
  if rec.container_id then s.containerID = rec.container_id end
  return s
end

--- The pod status from the records (pure but for the clock).
function Worker:compute_status(now)
  local pod = self.pod
  local init_statuses, statuses = {}, {}
  for _, c in ipairs(pod.spec.initContainers or {}) do
    local rec = self.cs[c.name]
    if rec then init_statuses[#init_statuses + 1] = container_status(rec) end
  end
  for _, c in ipairs(pod.spec.containers or {}) do
    local rec = self.cs[c.name]
    if rec then statuses[#statuses + 1] = container_status(rec) end
  end
  table.sort(statuses, function(a, b) return a.name < b.name end)
  local final = true
  for _, rec in pairs(self.cs) do
    if not rec.init and (rec.inst or not rec.gave_up) then final = false end
  end
  local t = self.terminal
  local phase
  if t and t.adopted then phase = t.phase
  else
    phase = status.phase(pod.spec, init_statuses, statuses, {
      terminal = (t ~= nil or pod.metadata.deletionTimestamp ~= nil) and not any_running(self),
      policy_final = final, init_failed_final = t and t.init_failed })
    if t and t.phase == "Failed" and t.reason then phase = "Failed" end
  end
  local old = pod.status or {}
  local st = {
    phase = phase,
    conditions = status.conditions(pod.spec, init_statuses, statuses, phase, old.conditions, now),
    hostIP = self.agent.host_ip,
    hostIPs = json.array({ { ip = self.agent.host_ip } }),
    podIP = self.agent.host_ip,
    podIPs = json.array({ { ip = self.agent.host_ip } }),
    startTime = self.start_time,
    containerStatuses = json.array(statuses),
  }
  if pod.spec.initContainers and #pod.spec.initContainers > 0 then
    st.initContainerStatuses = json.array(init_statuses)
  end
  if t and t.reason then
    st.reason, st.message = t.reason, t.message
  end
  return st
end

-- The digest of st without its condition transition times: they alone do
-- not make a new status. One encoding of st (our own table) with the
-- conditions swapped for copies without times, hashed in C as it is made:
-- only a 64-bit digest is kept per pod (the ~1 KB text itself was 0.8 MB of
-- heap with 1,000 pods; a hash in Lua cost 8 us a sync).
local function status_digest(st)
  local conds, bare = st.conditions, {}
  for i, c in ipairs(conds or {}) do
    local b = {}
    for k, v in pairs(c) do if k ~= "lastTransitionTime" then b[k] = v end end
    bare[i] = b
  end
  st.conditions = json.array(bare)
  local ok, sig = pcall(json.digest, st, { sort_keys = true })
  st.conditions = conds
  if not ok then error(sig, 0) end
  return sig
end

function Worker:write_status(now)
  local st = self:compute_status(now)
  local sig = status_digest(st)
  if sig == self.last_status then return end
  self.last_status = sig
  local ok = self.agent.api.status(self.pod, st)
  if not ok then self.last_status = nil end
end

-- }======

--- Stops every container with its grace period (agent shutdown) and
--- writes the final container states. Yields until they exited or `limit`
--- seconds passed.
function Worker:shutdown(limit)
  self.agent.stopping = true
  self:stop_all()
  local loop = require("moonlet.loop")
  local deadline = loop.now() + (limit or 30) * 1000
  while any_running(self) and loop.now() < deadline do loop.sleep(20) end
  self.last_status = nil
  self:write_status(self.agent.clock())
end

M.Worker = Worker
return M
