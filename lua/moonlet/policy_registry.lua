-- One registry per type of policy plugin (plugins/policies/<type>/*.lua and
-- a scripts dir's policies/<type>/*.lua): checks a plugin's shape, loads the
-- plugins of its type from a moonlet.plugins.load() result (later sources
-- replace built-ins of the same name), and falls back to the built-ins
-- compiled into the binary on first use. Restart and scale-down policies are
-- both registries of this shape.
local M = {}

--- spec: { type = "restart", fn = "decide", what = "restart policy",
---         example = "Always" }
--- @return a registry with check, load, register, get, all, names, reset
function M.new(spec)
  local R = {}
  local registry -- name -> policy; nil until loaded

  --- nil, or a message naming the field that is wrong.
  function R.check(p)
    if type(p) ~= "table" then return string.format("a %s plugin must return a table", spec.what) end
    if type(p.name) ~= "string" or not p.name:match("^[%w][%w%-_.]*$") then
      return string.format('field "name": must be a name like "%s"', spec.example)
    end
    if type(p[spec.fn]) ~= "function" then
      return string.format('field "%s": must be a function', spec.fn)
    end
    return nil
  end

  --- Replaces the registry with the plugins of this type among `loaded`.
  --- @return list of "display: message" errors
  function R.load(loaded)
    local reg, errors, names = {}, {}, {}
    local prefix = "^" .. spec.type .. "/"
    for name in pairs((loaded or {}).policies or {}) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      if name:match(prefix) then
        local p = loaded.policies[name]
        local err = R.check(p.value)
        if err then errors[#errors + 1] = p.display .. ": " .. err else reg[p.value.name] = p.value end
      end
    end
    registry = reg
    return errors
  end

  --- name -> policy; the built-ins are loaded on first use, so callers (the
  --- Pod kind's validation, a controller) work before any server start.
  function R.all()
    if not registry then R.load(require("moonlet.plugins").load({}, {})) end
    return registry
  end

  --- Registers one policy (tests, embedders). Raises on a bad value.
  function R.register(p)
    local err = R.check(p)
    if err then error(err, 2) end
    R.all()[p.name] = p
  end

  function R.get(name) return R.all()[name] end

  --- Names, sorted (`order` optionally ranks some names first).
  function R.names(order)
    local out = {}
    for n in pairs(R.all()) do out[#out + 1] = n end
    table.sort(out, function(a, b)
      local oa, ob = order and order[a], order and order[b]
      if oa and ob then return oa < ob end
      if oa or ob then return oa ~= nil end
      return a < b
    end)
    return out
  end

  --- Forgets loaded policies (the next use reloads the built-ins).
  function R.reset() registry = nil end

  return R
end

return M
