-- moonlet.kubelet.checks: custom probe checks written in Lua, the `lua`
-- probe handler (`lua: {check: http-json, args: {...}}`). A check plugin
-- (plugins/probes/NAME.lua, or probes/NAME.lua in a --scripts dir) returns
--
--   { name = "http-json", check = function(ctx, args) ... end }  -- or a bare function
--
-- and answers true, or false and a message (the Unhealthy event's text).
-- It runs in its own coroutine under the probe's timeout, may yield (use
-- moonlet.http, moonlet.probe, moonlet.proc), and gets ctx = { pod,
-- container, host, port_for(port) -> host, port, state (kept between runs
-- of the same probe), probe_type, timeout }. An error raised by the check is
-- a failure whose message is the error text; it is also logged.
local plugins = require("moonlet.plugins")
local runtime = require("moonlet.core.runtime")

local M = {}
local Registry = {}
Registry.__index = Registry

M.HOOK_COUNT = 1000 -- VM instructions between deadline checks

--- Validates a loaded check plugin. @return nil or an error string
function M.validate(v)
  if type(v) == "function" then return nil end
  if type(v) ~= "table" then return "a probe check plugin must return a table or a function" end
  if type(v.check) ~= "function" then return 'field "check": must be a function' end
  if v.name ~= nil and type(v.name) ~= "string" then return 'field "name": must be a string' end
  return nil
end

--- A new, empty registry. opts: log(level, msg), clock_ns() (tests).
function M.new(opts)
  opts = opts or {}
  return setmetatable({ checks = {}, log = opts.log, clock_ns = opts.clock_ns }, Registry)
end

--- Adds a check under `name` (and under the plugin's own name if it has
--- one). @return true, or nil and the validation error
function Registry:add(name, plugin, display)
  local err = M.validate(plugin)
  if err then return nil, err end
  local fn = type(plugin) == "function" and plugin or plugin.check
  local entry = { fn = fn, name = name, display = display or name }
  if name then self.checks[name] = entry end
  if type(plugin) == "table" and plugin.name and plugin.name ~= name then
    self.checks[plugin.name] = entry
  end
  return true
end

--- Adds every plugin of a moonlet.plugins.load() result's "probes" map.
function Registry:add_loaded(map)
  for name, p in pairs(map or {}) do self:add(name, p.value, p.display) end
  return self
end

--- Names of the checks, sorted.
function Registry:names()
  local out = {}
  for n in pairs(self.checks) do out[#out + 1] = n end
  table.sort(out)
  return out
end

function Registry:has(name) return self.checks[name] ~= nil end

local go_duration = require("moonlet.go_duration").format

function Registry:_log(level, msg)
  if self.log then self.log(level, msg) else runtime.log(level, msg) end
end

--- Runs check `name` under `timeout` seconds (yields the calling
--- coroutine). @return "success" | "failure" | "unknown", message
function Registry:run(name, ctx, args, timeout)
  local sched = require("moonlet.sched")
  local loop = require("moonlet.loop")
  local entry = name and self.checks[name]
  if not entry then return "unknown", string.format('no probe check named "%s"', tostring(name)) end
  timeout = timeout or 1
  local limit = "probe timed out after " .. go_duration(timeout)
  local hrtime = self.clock_ns or loop.hrtime
  local deadline = hrtime() + math.floor(timeout * 1e9)
  local done_id = loop.next_id()
  local finished, abandoned
  sched.spawn("check " .. entry.display, function()
    -- A check that computes past its deadline, or resumes after it, is
    -- stopped by the hook rather than left running.
    debug.sethook(function()
      if hrtime() > deadline then error(limit, 0) end
    end, "", M.HOOK_COUNT)
    local r = table.pack(pcall(entry.fn, ctx, args or {}))
    debug.sethook()
    finished = r
    if not abandoned then sched.wake(done_id) end
  end)
  if not finished then
    local t = loop.timer(math.max(0, (deadline - hrtime()) / 1e6), function()
      sched.wake(done_id)
    end)
    sched.wait(done_id)
    t.stop()
  end
  if not finished then
    abandoned = true
    return "failure", limit
  end
  local ok, v, msg = finished[1], finished[2], finished[3]
  if not ok then
    local text = type(v) == "string" and v or tostring(v)
    if text ~= limit then self:_log("warn", string.format("%s: %s", entry.display, text)) end
    return "failure", text
  end
  if v == true or v == "success" then return "success", msg and tostring(msg) or "" end
  if v == "warning" then return "warning", msg and tostring(msg) or "" end
  return "failure", msg and tostring(msg) or string.format('check "%s" failed', entry.name or "?")
end

M.Registry = Registry

-- {====== the default registry: built-in checks plus --scripts dirs

local default

--- A registry with the built-in checks (plugins/probes/*.lua) and those of
--- the given scripts dirs (later ones replace earlier ones of the same
--- name). @return registry, errors (list of "file: message")
function M.load(dirs, opts)
  local reg = M.new(opts)
  local errors = {}
  for _, s in ipairs(plugins.sources(dirs)) do
    if s.type == "probes" then
      local val, err
      if s.source then
        val, err = plugins.load_source(s.source, s.display)
      else
        err = s.display .. ": " .. tostring(s.read_error)
      end
      if val == nil then
        errors[#errors + 1] = err
      else
        local ok, verr = reg:add(s.name, val, s.display)
        if not ok then errors[#errors + 1] = s.display .. ": " .. verr end
      end
    end
  end
  return reg, errors
end

--- The registry `lua` handlers use when the caller gives none: built-ins
--- only, until set_default() installs one with the scripts dirs.
function M.default()
  if not default then default = M.load(nil) end
  return default
end

function M.set_default(reg) default = reg end

-- }======

return M
