-- moonlet.proc: containers as processes. spawn() returns a moonlet.Proc at
-- once; wait() yields until the exit, whose result carries the exit code
-- (128+signal when killed), signal, RFC 3339 start/finish times and
-- oom_killed. Output goes to CRI-format log files read by read_log() and
-- followed by follow_log(). exec() runs a command to completion (exec probes).
-- arm_restart() readies a replacement that the runtime starts itself, in C,
-- the moment the process ends on its own: a restart waits for no Lua.
--
--   local p = assert(proc.spawn{ command = { "sh", "-c", "echo hi" },
--     env = { "A=1" }, stdout_log = dir .. "/0.log", stderr_log = dir .. "/0.log",
--     state_dir = dir })
--   local res = p:wait()   -- { exit_code = 0, started_at = "...Z", ... }
local core = require("moonlet.core.proc")
local loop = require("moonlet.core.loop")
local sched = require("moonlet.sched")

local M = {}

local Proc = core.Proc -- methods of moonlet.Proc (kill, stop, running, close)
local state = setmetatable({}, { __mode = "k" }) -- Proc -> { result, waiters, callbacks, armed }

-- env may be a list of "K=V" or a map { K = "V" } (sorted for stable order).
local function env_list(env)
  if env == nil or env[1] ~= nil or next(env) == nil then return env end
  local keys, list = {}, {}
  for k in pairs(env) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do list[i] = k .. "=" .. tostring(env[k]) end
  return list
end

local function delivered(p, st, res)
  -- An armed replacement that was not started is forgotten.
  local armed = st.armed
  st.armed = nil
  if armed and res.next ~= armed.proc then sched.forget(armed.id) end
  st.result = res
  local waiters, callbacks = st.waiters, st.callbacks
  st.waiters, st.callbacks = {}, {}
  for _, wid in ipairs(waiters) do sched.wake(wid, res) end
  for _, fn in ipairs(callbacks) do sched.spawn("proc.on_exit", fn, res, p) end
end

--- Starts a process. Options: command (list, required), env (list of "K=V"
--- or map), cwd, stdout_log, stderr_log (may be the same path),
--- stdout_log_from (an existing file that becomes stdout_log, renamed once
--- the exec is done; ignored when missing), log_max_bytes, log_max_files,
--- memory_limit_bytes, state_dir, and for in-memory output capture,
--- max_output, timeout_ms. spawn() only: stdio = { in, out, err } file
--- descriptors for the child (an exec session's), new_session (a session
--- of its own: a pty on stdin becomes its terminal), join_cgroup (a dir).
--- @return Proc | nil, "ENAME: message", "ENAME"
local function copy_opts(opts)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.env = env_list(opts.env)
  return o
end

-- Registers p (open now, or a replacement opened later) for its exit at id.
local function track(p, id)
  local st = { waiters = {}, callbacks = {} }
  state[p] = st
  sched.on(id, function(res)
    sched.forget(id)
    delivered(p, st, res)
  end)
end

function M.spawn(opts)
  local id = loop.next_id()
  local p, err, name = core.spawn(id, copy_opts(opts))
  if not p then return nil, err, name end
  track(p, id)
  return p
end

--- Starts a process as spawn() does, but in a coroutine the clone and the
--- wait for its exec happen on libuv's thread pool: the caller waits, the
--- loop goes on, and several processes start at once (a start on this
--- kind of VM kept the loop's thread 2-4 ms). Outside a coroutine: spawn().
--- @return Proc | nil, "ENAME: message", "ENAME"
function M.start(opts)
  if not sched.in_coroutine() then return M.spawn(opts) end
  local id, done = loop.next_id(), loop.next_id()
  local ok, err, name = core.spawn_async(id, done, copy_opts(opts))
  if ok == nil and err then return nil, err, name end
  local p
  p, err, name = sched.wait(done)
  if not p then return nil, err, name end
  track(p, id)
  return p
end

local core_arm, core_disarm = Proc.arm_restart, Proc.disarm

--- Arms a replacement: when this process ends by itself (not through kill,
--- stop or close, which disarm it), the runtime spawns one with `opts`
--- (as for spawn; not capture) at once, and the exit result carries it,
--- running, as `next` (next_spawned_ns: loop.hrtime() after its spawn).
--- `when`: "any" (every exit, the default) or "failure" (non-zero exit
--- codes); `not_before`: seconds from now before which an exit does not
--- start it (default 0). If that spawn fails the result has no `next`.
--- Arming again replaces the earlier replacement.
--- @return true | nil, err, name
function Proc:arm_restart(opts, when, not_before)
  local st = state[self]
  local id = loop.next_id()
  local nextp, err, name = core_arm(self, id, copy_opts(opts), when or "any", not_before or 0)
  if not nextp then return nil, err, name end
  if st.armed then sched.forget(st.armed.id) end
  st.armed = { id = id, proc = nextp }
  track(nextp, id)
  return true
end

--- Forgets an armed replacement. @return true if one was armed
function Proc:disarm()
  local st = state[self]
  if st and st.armed then
    sched.forget(st.armed.id)
    st.armed = nil
  end
  return core_disarm(self)
end

--- Yields until the process has exited (at once if it has).
--- @return { exit_code=, signal=, pid=, started_at=, finished_at=,
---   oom_killed=, timed_out=, duration= (s), output= (capture only) }
function Proc:wait()
  local st = state[self]
  if st.result then return st.result end
  local wid = loop.next_id()
  st.waiters[#st.waiters + 1] = wid
  return sched.wait(wid)
end

--- Calls fn(result, proc) in a new coroutine when the process exits.
function Proc:on_exit(fn)
  local st = state[self]
  if st.result then
    sched.spawn("proc.on_exit", fn, st.result, self)
  else
    st.callbacks[#st.callbacks + 1] = fn
  end
end

--- The exit result, or nil while the process runs.
function Proc:result()
  return state[self].result
end

--- Runs a command to completion with stdout and stderr captured together
--- (the first max_output bytes, default 10 KiB); on timeout_ms its group is
--- killed. Options as for spawn (logs excepted).
--- @return { exit_code=, signal=, output=, truncated= } | nil, err, name
function M.exec(opts)
  local o = { command = opts.command, env = opts.env, cwd = opts.cwd,
              capture = true, max_output = opts.max_output,
              timeout_ms = opts.timeout_ms, state_dir = opts.state_dir,
              memory_limit_bytes = opts.memory_limit_bytes }
  local p, err, name = M.spawn(o)
  if not p then return nil, err, name end
  local res = p:wait()
  p:close()
  if res.timed_out then
    return nil, string.format("ETIMEDOUT: command timed out after %dms", opts.timeout_ms),
      "ETIMEDOUT"
  end
  return { exit_code = res.exit_code, signal = res.signal, output = res.output or "",
           truncated = res.output_truncated }
end

--- Reads a log file and its rotated predecessors. Options: tail (lines),
--- since_seconds, since_time (epoch seconds), timestamps, limit_bytes.
--- @return text, offset (where follow_log continues) | nil, err, name
function M.read_log(path, opts)
  return core.read_log(path, opts)
end

local Follower = {}
Follower.__index = Follower

--- Follows a log file from `offset` (rotations included). opts: timestamps,
--- interval_ms (poll period, default 100).
--- @return follower with :read() -> text | nil once closed, and :close()
function M.follow_log(path, offset, opts)
  opts = opts or {}
  local id = loop.next_id()
  local f, err, name = core.follow_log(id, path, offset or 0, opts.timestamps,
                                       opts.interval_ms or 100)
  if not f then return nil, err, name end
  local fw = setmetatable({ _f = f, _q = {}, _ended = false }, Follower)
  sched.on(id, function(kind, text)
    if kind == "end" then
      sched.forget(id)
      fw._ended = true
    else
      fw._q[#fw._q + 1] = text
    end
    local w = fw._waiter
    if w then
      fw._waiter = nil
      sched.wake(w)
    end
  end)
  return fw
end

--- Yields until new text arrives. @return text, or nil once closed
function Follower:read()
  while true do
    if #self._q > 0 then return table.remove(self._q, 1) end
    if self._ended or self._closed then return nil end
    local w = loop.next_id()
    self._waiter = w
    sched.wait(w)
  end
end

function Follower:close()
  if self._closed then return end
  self._closed = true
  self._f:close()
  local w = self._waiter
  if w then
    self._waiter = nil
    sched.wake(w)
  end
end
Follower.__close = Follower.close

--- Kills the process groups a previous (crashed) server left running.
--- @return number of groups killed | nil, err, name
M.reap_leftovers = core.reap_leftovers

--- @return true, kind | false, why memory limits are not enforced
M.cgroups_available = core.cgroups_available

--- @return the number of a signal name ("TERM", "SIGKILL") or number
M.signal = core.signal

--- Sends a signal from outside (kill(2) on a pid, or -pgid), not through a
--- Proc, so an armed replacement stays armed: tests and benchmarks of an
--- outside kill -9. @return true | nil, err, name
M.kill_pid = core.kill_pid

return M
