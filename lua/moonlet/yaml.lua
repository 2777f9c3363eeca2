-- moonlet.yaml: Kubernetes manifests for scripts, over the C codec.
--   yaml.decode(text) -> value, nil, dups | nil, err (first document)
--   yaml.decode_all(text) -> { {value=, line=, dups=} | {err=, line=}, ... }
-- A key repeated in a mapping keeps its last value, as kubectl's decoder
-- does; `dups` lists go-yaml's strict lines for them ("line 5: key
-- \"name\" already set in map"), nil when there are none.
--   yaml.encode(value) -> text | nil, err          (like kubectl -o yaml)
-- Values follow moonlet.json's conventions (json.null, array marks).
local core = require("moonlet.core.yaml")

local M = {
  decode = core.decode,
  decode_all = core.decode_all,
  encode = core.encode,
}

--- Encodes several objects as one stream, documents separated by `---`.
function M.encode_all(list)
  local parts = {}
  for i, v in ipairs(list) do
    local text, err = core.encode(v)
    if not text then return nil, ("document %d: %s"):format(i, err) end
    parts[i] = text
  end
  return table.concat(parts, "---\n")
end

return M
