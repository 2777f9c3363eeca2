-- Structural schemas for kinds: enough of each kind's Go types to do what
-- the API server's decoder does — reject wrong JSON types with the
-- encoding/json message, and find unknown fields for fieldValidation
-- (Strict: 400, Warn: a Warning header, Ignore: dropped silently).
local json = require("moonlet.json")

local M = {}

-- Type descriptors: { t = "string"|"integer"|"number"|"boolean"|"intstr"|
-- "quantity"|"any"|"map"|"list"|"struct", go = "Go type name", ... }
M.string = { t = "string", go = "string" }
M.integer = { t = "integer", go = "int32" }
M.int64 = { t = "integer", go = "int64" }
M.number = { t = "number", go = "float64" }
M.boolean = { t = "boolean", go = "bool" }
M.intstr = { t = "intstr", go = "intstr.IntOrString" }
M.quantity = { t = "quantity", go = "resource.Quantity" }
M.time = { t = "time", go = "v1.Time" }
M.any = { t = "any", go = "interface {}" }

function M.map(of, go) return { t = "map", of = of, go = go or ("map[string]" .. of.go) } end
function M.list(of, go) return { t = "list", of = of, go = go or ("[]" .. of.go) } end
--- A Go struct: name is its Go type (e.g. "v1.Container"); fields a table.
function M.struct(name, fields) return { t = "struct", go = name, name = name:match("[^.]+$"), fields = fields } end

M.OwnerReference = M.struct("v1.OwnerReference", {
  apiVersion = M.string, kind = M.string, name = M.string, uid = M.string,
  controller = M.boolean, blockOwnerDeletion = M.boolean,
})

M.ObjectMeta = M.struct("v1.ObjectMeta", {
  name = M.string, generateName = M.string, namespace = M.string, selfLink = M.string,
  uid = M.string, resourceVersion = M.string, generation = M.int64,
  creationTimestamp = M.time, deletionTimestamp = M.time, deletionGracePeriodSeconds = M.int64,
  labels = M.map(M.string), annotations = M.map(M.string),
  ownerReferences = M.list(M.OwnerReference), finalizers = M.list(M.string),
  managedFields = M.list(M.any),
})

--- The top-level struct of a kind: apiVersion, kind, metadata + fields.
function M.kind(go_name, fields)
  local f = { apiVersion = M.string, kind = M.string, metadata = M.ObjectMeta }
  for k, v in pairs(fields) do f[k] = v end
  return M.struct("v1." .. go_name, f)
end

local function json_type(v)
  local tv = type(v)
  if tv == "string" then return "string" end
  if tv == "number" then return "number" end
  if tv == "boolean" then return "bool" end
  if tv == "table" then return json.is_array(v) and "array" or "object" end
  return "null"
end

local function is_list(v) return type(v) == "table" and (json.is_array(v) or next(v) == nil) end
local function is_object(v) return type(v) == "table" and not json.is_array(v) end

-- Where the walk is: entry i of ctx.via says how level i was reached ("f"
-- struct field, "m" map key, "l" list index) and ctx.at the key. Paths are
-- spelled out only for a message: building them at every field cost more
-- than the rest of the walk (every create and update goes through here).
local function json_path(ctx, n)
  local acc = ""
  for i = 1, n do
    local via, k = ctx.via[i], ctx.at[i]
    if via == "l" then acc = acc .. "[" .. (k - 1) .. "]"
    elseif via == "f" and acc == "" then acc = k
    else acc = acc .. "." .. k end
  end
  return acc
end

-- The Go field path: struct fields only, dot-separated.
local function go_path(ctx, n)
  local parts = {}
  for i = 1, n do
    if ctx.via[i] == "f" then parts[#parts + 1] = ctx.at[i] end
  end
  return table.concat(parts, ".")
end

local null = json.null

-- Walks `v` against descriptor `d` at depth n; `struct` is the Go struct
-- that holds the current field (type errors name it).
local function walk(v, d, struct, ctx, n)
  local t = d.t
  if v == null or t == "any" then return end
  local ok
  if t == "string" or t == "time" then ok = type(v) == "string"
  elseif t == "integer" then ok = math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v))
  elseif t == "number" then ok = type(v) == "number"
  elseif t == "boolean" then ok = type(v) == "boolean"
  elseif t == "intstr" or t == "quantity" then ok = type(v) == "string" or type(v) == "number"
  elseif t == "map" or t == "struct" then ok = is_object(v)
  elseif t == "list" then ok = is_list(v)
  end
  if not ok then
    if not ctx.type_error then
      ctx.type_error = string.format("json: cannot unmarshal %s into Go struct field %s.%s of type %s",
        json_type(v), struct, go_path(ctx, n), d.go)
    end
    return
  end
  local via, at, m = ctx.via, ctx.at, n + 1
  if t == "map" then
    local of = d.of
    if of.t == "any" then return end
    for k, x in pairs(v) do
      via[m], at[m] = "m", k
      walk(x, of, struct, ctx, m)
    end
  elseif t == "list" then
    local of = d.of
    if of.t == "any" then return end
    for i, x in ipairs(v) do
      via[m], at[m] = "l", i
      walk(x, of, struct, ctx, m)
    end
  elseif t == "struct" then
    local fields, name = d.fields, d.name
    for k, x in pairs(v) do
      local fd = fields[k]
      via[m], at[m] = "f", k
      if fd then
        walk(x, fd, name, ctx, m)
      else
        ctx.unknown[#ctx.unknown + 1] = json_path(ctx, m)
        ctx.unknown_at[#ctx.unknown_at + 1] = { v, k }
      end
    end
  end
end

--- Checks obj against a kind schema. Returns {type_error=msg|nil,
--- unknown={paths...}}; `drop(result)` removes the unknown fields in place.
function M.check(obj, schema)
  local ctx = { unknown = {}, unknown_at = {}, via = {}, at = {} }
  if schema then walk(obj, schema, schema.name, ctx, 0) end
  table.sort(ctx.unknown)
  return ctx
end

function M.drop_unknown(ctx)
  for _, at in ipairs(ctx.unknown_at) do at[1][at[2]] = nil end
end

--- Kubernetes' strict-decoding message for a list of unknown paths.
function M.unknown_message(paths)
  local parts = {}
  for i, p in ipairs(paths) do parts[i] = string.format('unknown field "%s"', p) end
  return "strict decoding error: " .. table.concat(parts, ", ")
end

return M
