-- Server-side printing: meta.k8s.io/v1 Table objects built from a kind's
-- printer columns, so `kubectl get` and `moonlet get` show the same columns.
-- A kind plugin lists its columns in full; `name()` and `age()` are the two
-- every kind shares.
local duration = require("moonlet.printers.duration")
local json = require("moonlet.json")

local M = {}

function M.name()
  return { name = "Name", type = "string", format = "name",
    description = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    value = function(obj) return obj.metadata.name end }
end

function M.age()
  return { name = "Age", type = "string", format = "",
    description = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    value = function(obj, now) return duration.since(obj.metadata.creationTimestamp, now) end }
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

local function partial(obj)
  return { kind = "PartialObjectMetadata", apiVersion = "meta.k8s.io/v1", metadata = obj.metadata }
end

--- One row: cells computed by the columns; a failing column prints as
--- `<error>` rather than failing the whole list.
function M.row(cols, obj, now, include)
  local cells = json.array()
  for i, c in ipairs(cols) do
    local ok, v = pcall(c.value, obj, now)
    if not ok then v = "<error>" end
    if v == nil then v = c.type == "integer" and 0 or "<none>" end
    cells[i] = v
  end
  local row = { cells = cells }
  if include == "Object" then row.object = obj
  elseif include ~= "None" then row.object = partial(obj) end
  return row
end

--- Table for a list of objects. opts: include ("Object"|"Metadata"|"None"),
--- no_headers, resource_version, continue.
function M.build(def, objs, opts)
  opts = opts or {}
  local cols = M.columns(def)
  local now = os.time()
  local rows = json.array()
  for i, obj in ipairs(objs) do rows[i] = M.row(cols, obj, now, opts.include) end
  local t = {
    kind = "Table", apiVersion = "meta.k8s.io/v1",
    metadata = { resourceVersion = opts.resource_version, continue = opts.continue },
    columnDefinitions = opts.no_headers and json.array() or definitions(cols),
    rows = rows,
  }
  return t
end

return M
