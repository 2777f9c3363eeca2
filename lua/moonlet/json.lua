-- moonlet.json: JSON for scripts, over the C codec (jansson).
--   json.encode(v [, {indent=N, sort_keys=true}]) -> text | nil, err
--   json.decode(text) -> value | nil, "line L, column C: message"
--   json.decode_strict(text) -> value, has_duplicate_member | nil, err
--   json.fields(text [, wanted]) -> duplicate members, places of `wanted`
--   json.digest(v [, opts]) -> 64-bit integer digest of encode(v, opts)
-- JSON null is json.null; decoded arrays carry a mark (json.array) so an
-- empty list stays `[]`; json.object forces `{}` for list-like tables.
local core = require("moonlet.core.json")

local M = {
  null = core.null,         -- the JSON null sentinel (a light userdata)
  encode = core.encode,
  decode = core.decode,
  decode_strict = core.decode_strict, -- a request body: also "a name repeats"
  fields = core.fields,     -- where duplicates and given paths stand
  array = core.array,       -- array([t]) -> t marked as a JSON array
  object = core.object,     -- object([t]) -> t marked as a JSON object
  is_array = core.is_array, -- would v encode as a JSON array?
  is_null = core.is_null,
  copy = core.copy,         -- deep copy keeping array/object marks
  digest = core.digest,     -- digest(v [, opts]): FNV-1a of encode(v, opts)
  array_mt = core.array_mt,
  object_mt = core.object_mt,
}

--- Encodes with two-space indentation, as `kubectl get -o json` reads.
function M.pretty(v)
  return core.encode(v, { indent = 2 })
end

return M
