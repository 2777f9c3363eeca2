-- kubectl's --sort-by: a relaxed JSONPath (`.metadata.name`, `{.status.x}`)
-- picks one value per object; objects without it come first, numbers
-- compare as numbers, strings that are both quantities (`100m`, `1Gi`, `9`)
-- as quantities, other strings bytewise (so RFC 3339 timestamps sort by
-- time, and `s10` before `s9`, as kubectl 1.32 prints them), booleans false
-- first. Equal keys keep the server's order; objects without the value come
-- in reverse order, as kubectl's sort leaves them. Also the relaxed-path
-- rule `wait --for=jsonpath` uses.
local jsonpath = require("moonlet.printers.jsonpath")
local json = require("moonlet.json")

local M = {}

--- cmdget.RelaxedJSONPathExpression: `a.b`, `.a.b`, `{a.b}`, `{.a.b}`
--- -> `{.a.b}`. @return the template, or nil and kubectl's message
function M.relaxed(expr)
  if expr == "" then return expr end
  local inner = expr:match("^{%.?([^{}]+)}$") or expr:match("^%.?([^{}]+)$")
  if not inner then
    return nil, "unexpected path string, expected a 'name1.name2' or '.name1.name2' or '{name1.name2}' or '{.name1.name2}'"
  end
  return "{." .. inner .. "}"
end

local function quantity(s)
  local q = require("moonlet.api.quantity").parse(s)
  return q and q.milli
end

--- kubectl's isLess over decoded JSON values (both present); qa, qb are
--- their quantities when already known (false: not one).
function M.less(a, b, qa, qb)
  local ta, tb = type(a), type(b)
  if ta == "number" and tb == "number" then return a < b end
  if ta == "string" and tb == "string" then
    if qa == nil then qa = quantity(a) end
    if qa and qb == nil then qb = quantity(b) end
    if qa and qb then return qa < qb end
    return a < b
  end
  if ta == "boolean" and tb == "boolean" then return not a and b end
  if ta ~= tb then
    -- kubectl stops on mixed types; a fixed order keeps the output stable
    return ta < tb
  end
  return false
end

--- Checks a --sort-by value. @return the JSONPath template or nil, message
function M.template(expr)
  local t, err = M.relaxed(expr)
  if not t then return nil, err end
  local ok, perr = pcall(jsonpath.parse, t)
  if not ok then return nil, type(perr) == "table" and tostring(perr.jsonpath) or tostring(perr) end
  return t
end

--- Sorts `list` in place by the value `template` finds in `of(element)`.
--- @return true, or nil and kubectl's message when no element has the field
function M.sort(list, template, of)
  if #list == 0 then return true end
  local opts = { null = json.null, is_array = json.is_array }
  local tree = jsonpath.parse(template)
  local keys, found = {}, false
  for i, e in ipairs(list) do
    local res = jsonpath.find(tree, of(e), opts)
    local v = res and res[1] and res[1][1]
    if v == json.null then v = nil end
    -- each string's quantity once, not once per comparison
    keys[i] = { v = v, i = i, e = e, q = type(v) == "string" and (quantity(v) or false) }
    if v ~= nil then found = true end
  end
  if not found then
    return nil, string.format("couldn't find any field with path %q in the list of objects", template)
  end
  table.sort(keys, function(x, y)
    if x.v == nil or y.v == nil then
      if (x.v == nil) ~= (y.v == nil) then return x.v == nil end
      -- kubectl's Less says "less" for any element without the value, so
      -- Go's insertion sort (lists up to 12) puts those in reverse order
      return x.i > y.i
    end
    if M.less(x.v, y.v, x.q, y.q) then return true end
    if M.less(y.v, x.v, y.q, x.q) then return false end
    return x.i < y.i
  end)
  for i, k in ipairs(keys) do list[i] = k.e end
  return true
end

return M
