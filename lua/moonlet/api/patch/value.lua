-- moonlet.api.patch.value: the small toolkit the patch algorithms share for
-- JSON values as moonlet.json decodes them (json.null, marked arrays, plain
-- tables as objects): kind tests, deep copy and equality, sorted keys, and
-- Go-style `%v` text so error messages read like the API server's.
local json = require("moonlet.json")

local M = {}

local null = json.null
M.null = null

--- kind(v) -> "null" | "object" | "array" | "string" | "number" | "boolean"
--- (nil for an absent value). Mirrors the Go types strategicpatch compares.
function M.kind(v)
  if v == nil then return nil end
  if v == null then return "null" end
  local t = type(v)
  if t == "table" then
    return json.is_array(v) and "array" or "object"
  end
  return t
end

function M.is_object(v)
  return type(v) == "table" and not json.is_array(v)
end

function M.is_array(v)
  return type(v) == "table" and json.is_array(v)
end

--- A new empty JSON array (kept as `[]` when encoded).
function M.array(t)
  return json.array(t or {})
end

--- Deep copy, keeping array/object marks; scalars are returned as is.
function M.copy(v)
  if type(v) ~= "table" then return v end
  return json.copy(v)
end

--- Deep structural equality of two JSON values.
function M.equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  local ka, kb = M.kind(a), M.kind(b)
  if ka ~= kb then return false end
  if ka == "array" then
    if #a ~= #b then return false end
    for i = 1, #a do
      if not M.equal(a[i], b[i]) then return false end
    end
    return true
  end
  for k, v in pairs(a) do
    if not M.equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

--- Keys of an object, sorted, so every walk is deterministic.
function M.keys(obj)
  local ks = {}
  for k in pairs(obj) do ks[#ks + 1] = k end
  table.sort(ks, function(x, y)
    if type(x) == type(y) then return x < y end
    return type(x) < type(y)
  end)
  return ks
end

function M.has_prefix(s, prefix)
  return type(s) == "string" and s:sub(1, #prefix) == prefix
end

-- Numbers print like Go's %v of the decoded value: integers plainly, floats
-- in shortest form (1.5, 1e+21).
local function num_text(n)
  if math.type(n) == "integer" then return tostring(n) end
  if n ~= n then return "NaN" end
  if n == math.huge then return "+Inf" end
  if n == -math.huge then return "-Inf" end
  for prec = 1, 17 do
    local s = string.format("%." .. prec .. "g", n)
    if tonumber(s) == n then
      -- Go writes exponents with at least two digits: 1e+21, 1e-07
      return (s:gsub("e([+-])(%d)$", "e%10%2"))
    end
  end
  return tostring(n)
end

--- Go `fmt` %v rendering of a decoded JSON value: map[a:1 b:[x y]], <nil>.
function M.gofmt(v)
  local k = M.kind(v)
  if k == nil or k == "null" then return "<nil>" end
  if k == "string" then return v end
  if k == "number" then return num_text(v) end
  if k == "boolean" then return tostring(v) end
  local parts = {}
  if k == "array" then
    for i = 1, #v do parts[i] = M.gofmt(v[i]) end
    return "[" .. table.concat(parts, " ") .. "]"
  end
  for _, key in ipairs(M.keys(v)) do
    parts[#parts + 1] = tostring(key) .. ":" .. M.gofmt(v[key])
  end
  return "map[" .. table.concat(parts, " ") .. "]"
end

--- The Go type name of a decoded value, as reflect.TypeOf prints it.
function M.gotype(v)
  local k = M.kind(v)
  if k == nil or k == "null" then return "%!s(<nil>)" end
  if k == "object" then return "map[string]interface {}" end
  if k == "array" then return "[]interface {}" end
  if k == "number" then
    return math.type(v) == "integer" and "int64" or "float64"
  end
  if k == "boolean" then return "bool" end
  return "string"
end

-- {====== errors
-- The algorithms recurse deeply, so a refusal unwinds with error() carrying
-- a tagged table; protect() turns exactly those into `nil, message, code`
-- and lets anything else (a bug) propagate loudly.

local Refusal = {}
Refusal.__index = Refusal
Refusal.__tostring = function(r) return r.message end

--- Raises a patch refusal: HTTP status `code` and a formatted message.
function M.fail(code, fmt, ...)
  local msg = select("#", ...) > 0 and string.format(fmt, ...) or fmt
  error(setmetatable({ code = code, message = msg }, Refusal), 0)
end

--- Calls fn(...); returns its result, or nil, message, code on a refusal.
function M.protect(fn, ...)
  local ok, res = pcall(fn, ...)
  if ok then return res end
  if getmetatable(res) == Refusal then return nil, res.message, res.code end
  error(res, 0)
end

-- }======

return M
