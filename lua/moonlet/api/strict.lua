-- moonlet.api.strict: what kube-apiserver's strict decoding says about a
-- request body under ?fieldValidation=Strict|Warn: unknown fields (the
-- schema walk finds them) and duplicate fields (the decoders flag them),
-- worded, combined and ordered as its decoders do:
--  * a JSON body (create, update) is read in text order, one message per
--    field: `duplicate field "metadata.name", unknown field "spec.foo"`;
--    a field both unknown and repeated is only unknown (its value is
--    skipped, duplicates under it with it);
--  * a YAML body first goes through go-yaml's strict decoder, whose error
--    lists every repeated key by line, then the JSON made from it (keys
--    sorted) names the unknown fields;
--  * a patch body's own duplicates come first (all of them, as it is read
--    into a map; a JSON patch's as `json patch duplicate field "[1].path"`),
--    then the patched object's unknown fields; so do a custom resource's
--    (read into a map, then pruned by its schema).
local json = require("moonlet.json")

local M = {}

local format = string.format

-- sigs.k8s.io/json stops saving strict errors past this many.
local MAX = 100

-- Whether path p is one of the set's paths or lies under one.
local function under(p, set)
  if set[p] then return true end
  for i = #p, 2, -1 do
    local c = p:byte(i)
    if (c == 46 or c == 91) and set[p:sub(1, i - 1)] then return true end -- '.' '['
  end
  return false
end

--- The reports for a body, in Kubernetes' order. `src`: { text = the JSON
--- body (nil for YAML or an in-process table), dup = the decoder saw a
--- repeated name, yaml_dups = go-yaml's lines, patch = nil | "merge" |
--- "json", untyped = a custom resource (not decoded into Go types) };
--- `unknown`: the unknown paths, sorted. A report is a message, or
--- { yaml = lines } for go-yaml's one error.
function M.reports(src, unknown)
  local out = {}
  if src.yaml_dups then out[1] = { yaml = src.yaml_dups } end
  local text = src.text
  local map_first = src.patch or src.untyped
  if not text or (not src.dup and (map_first or #unknown < 2)) then
    for i = 1, math.min(#unknown, MAX) do out[#out + 1] = format('unknown field "%s"', unknown[i]) end
    return out
  end
  local wanted
  if not map_first and #unknown > 0 then
    wanted = {}
    for _, p in ipairs(unknown) do wanted[p] = true end
  end
  -- Each duplicate path once, the first MAX (json.fields).
  local dups, at = json.fields(text, wanted)
  local items = {}
  local prefix = src.patch == "json" and "json patch " or ""
  for _, d in ipairs(dups or {}) do
    local p = d[1]
    if map_first or not (wanted and under(p, wanted)) then
      items[#items + 1] = { n = d[2], msg = prefix .. format('duplicate field "%s"', p) }
    end
  end
  -- A patch's (or custom resource's) duplicates and its unknown fields
  -- are two lists of up to MAX; a typed body's are one.
  local first = #items
  for i = 1, math.min(#unknown, MAX) do
    local p = unknown[i]
    -- Not in the text (no walk, or past its bound): after the rest.
    local n = map_first and math.huge or (at and at[p]) or math.huge
    items[#items + 1] = { n = n, msg = format('unknown field "%s"', p) }
  end
  for i, it in ipairs(items) do it.k = i end
  table.sort(items, function(a, b)
    if a.n ~= b.n then return a.n < b.n end
    return a.k < b.k
  end)
  local keep = map_first and first + math.min(#unknown, MAX) or MAX
  for i = 1, math.min(#items, keep) do out[#out + 1] = items[i].msg end
  return out
end

--- The 400's message: `strict decoding error: ` and the reports.
function M.message(reports)
  local parts = {}
  for i, r in ipairs(reports) do
    parts[i] = type(r) == "table" and "yaml: unmarshal errors:\n  " .. table.concat(r.yaml, "\n  ") or r
  end
  return "strict decoding error: " .. table.concat(parts, ", ")
end

--- The Warning headers' texts: one per report, go-yaml's one per line.
function M.warnings(reports, into)
  for _, r in ipairs(reports) do
    if type(r) == "table" then
      for _, line in ipairs(r.yaml) do into[#into + 1] = line end
    else
      into[#into + 1] = r
    end
  end
  return into
end

return M
