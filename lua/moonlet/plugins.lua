-- Plugin loading: the built-in scripts compiled into the binary (plugins/)
-- and each --scripts directory, in order; a user script with a built-in's
-- name (its path under the type directory) replaces it. Every script runs in
-- its own sandboxed environment with a bounded load time, and a script that
-- fails to load is reported as file:line without stopping the others.
local runtime = require("moonlet.core.runtime")
local sys = require("moonlet.core.sys")

local M = {}

M.TYPES = { "kinds", "controllers", "policies", "probes" }

local LOAD_BUDGET = 50000000 -- VM instructions a script may spend loading

-- Globals a plugin sees: the safe parts of the standard library; `require`
-- only reaches moonlet's own modules.
local function sandbox(name)
  local env = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = pcall, xpcall = xpcall, select = select, tonumber = tonumber,
    tostring = tostring, type = type, rawequal = rawequal, rawget = rawget,
    rawlen = rawlen, rawset = rawset, setmetatable = setmetatable,
    getmetatable = getmetatable, string = string, table = table, math = math,
    utf8 = utf8, coroutine = coroutine,
    os = { time = os.time, date = os.date, clock = os.clock, getenv = os.getenv },
  }
  env.print = function(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    runtime.log("info", name .. ": " .. table.concat(parts, "\t"))
  end
  env.require = function(mod)
    if type(mod) ~= "string" or not mod:match("^moonlet%.") or mod:match("^moonlet%.core%.") then
      error(string.format("module '%s' is not available to plugins", tostring(mod)), 2)
    end
    return require(mod)
  end
  env._G = env
  return env
end

--- Loads one script's source; returns its value or nil, "file:line: msg".
function M.load_source(src, display)
  local env = sandbox(display)
  local chunk, err = load(src, "@" .. display, "t", env)
  if not chunk then return nil, err end
  local co = coroutine.create(chunk)
  debug.sethook(co, function() error("script took too long to load", 2) end, "", LOAD_BUDGET)
  local ok, val = coroutine.resume(co)
  if not ok then return nil, val end
  if coroutine.status(co) ~= "dead" then return nil, display .. ": a plugin must not yield while loading" end
  if val == nil then return nil, display .. ": a plugin must return a table or function" end
  return val
end

local read_file = require("moonlet.files").read

-- All .lua files under dir, recursively, as paths relative to dir.
local function scan(dir, rel, out)
  local names = sys.listdir(rel == "" and dir or (dir .. "/" .. rel))
  for _, n in ipairs(names or {}) do
    local r = rel == "" and n or (rel .. "/" .. n)
    local st = sys.stat(dir .. "/" .. r)
    if st and st.type == "dir" then scan(dir, r, out)
    elseif n:match("%.lua$") then out[#out + 1] = r end
  end
  return out
end

--- Sources in load order: built-ins, then each dir. Each entry:
--- { type=, name=, display=, source= | read_error= }.
function M.sources(dirs, skip_builtin)
  local list = {}
  if not skip_builtin then
    for _, path in ipairs(runtime.embedded("plugins/")) do
      local typ, name = path:match("^plugins/([^/]+)/(.+)%.lua$")
      if typ then
        list[#list + 1] = { type = typ, name = name, display = path, source = runtime.read_embedded(path) }
      end
    end
  end
  for _, dir in ipairs(dirs or {}) do
    for _, typ in ipairs(M.TYPES) do
      local base = dir .. "/" .. typ
      local st = sys.stat(base)
      if st and st.type == "dir" then
        for _, rel in ipairs(scan(base, "", {})) do
          local display = base .. "/" .. rel
          local src, err = read_file(display)
          list[#list + 1] = { type = typ, name = rel:gsub("%.lua$", ""), display = display,
            source = src, read_error = err }
        end
      end
    end
  end
  return list
end

--- Loads everything; a later source with the same type and name wins.
--- Returns { kinds = {name -> {value=, display=}}, controllers = ..., ... },
--- errors (list of "file:line: message").
function M.load(dirs, opts)
  opts = opts or {}
  local loaded, errors = {}, {}
  for _, t in ipairs(M.TYPES) do loaded[t] = {} end
  for _, s in ipairs(M.sources(dirs, opts.skip_builtin)) do
    local val, err
    if s.source then val, err = M.load_source(s.source, s.display) else err = s.display .. ": " .. tostring(s.read_error) end
    if val == nil then
      errors[#errors + 1] = err
    else
      local check = opts.check and opts.check[s.type]
      local cerr = check and check(val)
      if cerr then
        errors[#errors + 1] = s.display .. ": " .. cerr
      else
        loaded[s.type] = loaded[s.type] or {}
        loaded[s.type][s.name] = { value = val, display = s.display, name = s.name }
      end
    end
  end
  return loaded, errors
end

--- Names of a type's loaded plugins in a stable order.
function M.names(loaded, typ)
  local names = {}
  for n in pairs(loaded[typ] or {}) do names[#names + 1] = n end
  table.sort(names)
  return names
end

return M
