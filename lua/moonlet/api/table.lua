-- Server-side printing: meta.k8s.io/v1 Table objects built from a kind's
-- printer columns, so `kubectl get` and `moonlet get` show the same columns.
-- A kind plugin lists its columns in full; `name()` and `age()` are the two
-- every kind shares.
local duration = require("moonlet.printers.duration")
local json = require("moonlet.json")
local core = require("moonlet.core.table")

local M = {}

function M.name()
  return { name = "Name", type = "string", format = "name",
    description = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    value = function(obj) return obj.metadata.name end }
end

function M.age()
  -- Objects made in the same second share an AGE: a list computes it once
  -- per distinct creationTimestamp (for one `now`), not once per row.
  local memo, memo_now = {}, nil
  return { name = "Age", type = "string", format = "",
    description = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    value = function(obj, now)
      local ts = obj.metadata.creationTimestamp
      if now == nil or type(ts) ~= "string" then return duration.since(ts, now) end
      if now ~= memo_now then memo, memo_now = {}, now end
      local v = memo[ts]
      if v == nil then
        v = duration.since(ts, now)
        memo[ts] = v
      end
      return v
    end }
end

-- Kinds without columns (custom kinds that declare none) print NAME and AGE.
local DEFAULT = { M.name(), M.age() }

function M.columns(def)
  return def.columns or DEFAULT
end

local function definitions(cols)
  local out = json.array()
  for i, c in ipairs(cols) do
    out[i] = { name = c.name, type = c.type or "string", format = c.format or "",
      description = c.description or c.name, priority = c.priority or 0 }
  end
  return out
end

--- The Table as JSON text, from `items_json` (a JSON array of objects, as
--- the store lists them). The rows are built in C (moonlet.core.table):
--- each object is decoded only to run the column functions, and a row's
--- object is the stored text itself (or its metadata). A failing column
--- prints `<error>`, a nil one `<none>` (0 for an integer column).
--- opts: include ("Object"|"Metadata"|"None"), no_headers,
--- resource_version, continue; rv_from_object takes the resourceVersion
--- from the (last) object. Returns text | nil, err.
function M.text(def, items_json, opts)
  opts = opts or {}
  local cols = M.columns(def)
  local rows, last_rv = core.rows(items_json, cols, os.time(), opts.include or "Metadata")
  if not rows then return nil, last_rv end
  local rv = opts.resource_version
  if opts.rv_from_object then rv = last_rv end
  -- Keys in json.encode's sorted order; "rows" sorts last, so it is
  -- appended to the encoded head.
  local head = json.encode({
    kind = "Table", apiVersion = "meta.k8s.io/v1",
    metadata = { resourceVersion = rv, continue = opts.continue },
    columnDefinitions = opts.no_headers and json.array() or definitions(cols),
  })
  return head:sub(1, -2) .. ',"rows":' .. rows .. "}"
end

--- The same Table as a Lua value, for a list of objects in Lua.
function M.build(def, objs, opts)
  local items = json.encode(json.array(objs))
  return json.decode(assert(M.text(def, items, opts)))
end

return M
