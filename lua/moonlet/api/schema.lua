-- Structural schemas for kinds: enough of each kind's Go types to do what
-- the API server's decoder does — reject wrong JSON types with the
-- encoding/json message, and find unknown fields for fieldValidation
-- (Strict: 400, Warn: a Warning header, Ignore: dropped silently; the
-- words are moonlet.api.strict's).
local cschema = require("moonlet.core.schema")

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

--- A map or list field that Go keeps when empty (no omitempty in its
--- json tag): `S.keep_empty(S.list(Container))`.
function M.keep_empty(d)
  local out = {}
  for k, v in pairs(d) do out[k] = v end
  out.keep_empty = true
  return out
end

--- Checks obj against a kind schema. Returns {type_error=msg|nil,
--- unknown={paths...}, empty_at={...} (collected when `want_empty`),
--- saw_null=bool (a null anywhere)};
--- `drop_unknown(result)` removes the
--- unknown fields in place, `drop_empty(result)` the struct fields holding
--- an empty map or list. The walk is C (moonlet.core.schema): the first
--- type error in table order is the one reported, as encoding/json stops
--- at its first.
-- What an empty result list reads as (never written to).
local NONE = setmetatable({}, { __newindex = function() error("schema: NONE is read-only", 2) end })

function M.check(obj, schema, want_empty)
  if not schema then return { unknown = NONE, unknown_at = NONE, empty_at = NONE } end
  local te, saw_null, unknown, unknown_at, empty_at = cschema.check(obj, schema, want_empty)
  if unknown then table.sort(unknown) end
  return { type_error = te, saw_null = saw_null, unknown = unknown or NONE,
    unknown_at = unknown_at or NONE, empty_at = empty_at or NONE }
end

function M.drop_unknown(ctx)
  for _, at in ipairs(ctx.unknown_at) do at[1][at[2]] = nil end
end

--- The API server decodes into Go structs and encodes back with
--- encoding/json, whose omitempty leaves out an empty map or slice: what it
--- stores and answers has no `labels: {}` or `args: []`. So neither does
--- moonlet's.
function M.drop_empty(ctx)
  for _, at in ipairs(ctx.empty_at) do at[1][at[2]] = nil end
end

return M
