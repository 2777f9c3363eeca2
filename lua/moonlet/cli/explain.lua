-- `moonlet explain RESOURCE[.field.path] [--recursive] [--api-version G/V]`:
-- a kind's fields, types and descriptions as kubectl 1.32 prints them in
-- plaintext, read from the server's OpenAPI v3 document of the kind's
-- group-version (components.schemas, found by x-kubernetes-group-version-kind).
local common = require("moonlet.cli.common")

local M = {}

M.usage = "Usage:\n  moonlet explain TYPE [--recursive=FALSE|TRUE] [--api-version=api-version-group] [flags]"

M.flags = {
  { name = "recursive", type = "bool", help = "When true, print the name of all the fields recursively. Otherwise, print the available fields with their description." },
  { name = "api-version", type = "string", help = "Use given api-version (group/version) of the resource." },
  { name = "output", type = "string", help = "Format in which to render the schema. Valid values are: (plaintext)." },
}

local REF_PREFIX = "#/components/schemas/"
local WIDTH = 80

-- {====== schema walking

local function ref_target(doc, ref)
  if type(ref) ~= "string" or ref:sub(1, #REF_PREFIX) ~= REF_PREFIX then return nil end
  return doc.components.schemas[ref:sub(#REF_PREFIX + 1)]
end

-- Follows a lone allOf and $ref to the schema that says what the value is.
local function deref(doc, s)
  for _ = 1, 16 do
    if type(s) ~= "table" then return nil end
    if s["$ref"] then
      s = ref_target(doc, s["$ref"])
    elseif type(s.allOf) == "table" and #s.allOf == 1 and not s.properties then
      s = s.allOf[1]
    else
      return s
    end
  end
  return s
end

-- The schema whose fields a path continues into: lists and maps through
-- their element type.
local function element(doc, s)
  for _ = 1, 16 do
    s = deref(doc, s)
    if type(s) ~= "table" then return nil end
    if type(s.items) == "table" then s = s.items
    elseif type(s.additionalProperties) == "table" then s = s.additionalProperties
    else return s end
  end
  return s
end

-- The <type> kubectl prints: []T, map[string]T, a referenced object's short
-- name, a referenced primitive's type, else the type or Object.
local function type_name(doc, s)
  if type(s) ~= "table" then return "Object" end
  if type(s.items) == "table" then return "[]" .. type_name(doc, s.items) end
  if type(s.additionalProperties) == "table" then
    return "map[string]" .. type_name(doc, s.additionalProperties)
  end
  if type(s.allOf) == "table" and #s.allOf == 1 and not s.properties then
    return type_name(doc, s.allOf[1])
  end
  local ref = s["$ref"]
  if ref then
    local t = ref_target(doc, ref)
    if not t or not t.type or t.type == "object" then
      local name = ref:match("([^/]*)$")
      local short = name:match("([^.]*)$")
      return short ~= "" and short or "Object"
    end
    return t.type
  end
  if s.type == nil or s.type == "object" then return "Object" end
  return s.type
end

-- }======

-- {====== text

-- Greedy word wrap at `lim` columns, keeping the text's own line breaks.
local function wrap(text, lim)
  local out = {}
  for para in (text .. "\n"):gmatch("(.-)\n") do
    local line = nil
    for word in para:gmatch("%S+") do
      if line == nil then line = word
      elseif #line + 1 + #word > lim then
        out[#out + 1] = line
        line = word
      else
        line = line .. " " .. word
      end
    end
    out[#out + 1] = line or ""
  end
  return out
end

local function indented(text, indent)
  local pad = string.rep(" ", indent)
  local lines = wrap(text, WIDTH - indent)
  for i, l in ipairs(lines) do lines[i] = l ~= "" and (pad .. l) or pad end
  return table.concat(lines, "\n") .. "\n"
end

local function nonempty(s) return type(s) == "string" and s ~= "" end

local function required_set(s)
  local set = {}
  for _, n in ipairs(type(s) == "table" and s.required or {}) do set[n] = true end
  return set
end

local function sorted_fields(s)
  local names = {}
  for k in pairs(s and s.properties or {}) do names[#names + 1] = k end
  table.sort(names)
  return names
end

local function field_line(doc, parent, name, indent, req)
  local s = parent.properties[name]
  return string.rep(" ", indent) .. name .. "\t<" .. type_name(doc, s) .. ">"
    .. (req[name] and " -required-" or "") .. "\n"
end

-- The --recursive tree under schema s (already an element type).
local function tree(doc, s, depth, out, stack)
  local req = required_set(s)
  for _, name in ipairs(sorted_fields(s)) do
    out[#out + 1] = field_line(doc, s, name, 2 * depth, req)
    local sub = element(doc, s.properties[name])
    if sub and sub.properties and not stack[sub] then
      stack[sub] = true
      tree(doc, sub, depth + 1, out, stack)
      stack[sub] = nil
    end
  end
end

-- }======

--- The text kubectl explain prints for kind r (a discovery resource) and
--- the field path `fields` (list of names) from OpenAPI document `doc`.
--- @return text or nil, error message, the text printed before the error
function M.render(doc, r, fields, recursive)
  local schemas = doc and doc.components and doc.components.schemas or {}
  local root
  for _, s in pairs(schemas) do
    for _, gvk in ipairs(type(s) == "table" and s["x-kubernetes-group-version-kind"] or {}) do
      if gvk.group == r.group and gvk.version == r.version and gvk.kind == r.kind then root = s end
    end
  end
  if not root then
    return nil, string.format("GVK map[group:%s kind:%s version:%s] not found in OpenAPI schema",
      r.group, r.kind, r.version)
  end
  local out = {}
  if r.group ~= "" then out[#out + 1] = "GROUP:      " .. r.group .. "\n" end
  out[#out + 1] = "KIND:       " .. r.kind .. "\n"
  out[#out + 1] = "VERSION:    " .. r.version .. "\n\n"
  local s, field = root, nil
  for _, name in ipairs(fields) do
    local holder = element(doc, s)
    field = holder and holder.properties and holder.properties[name]
    if not field then
      -- kubectl has printed the header by then; the error follows it.
      return nil, string.format('field "%s" does not exist', name), table.concat(out)
    end
    s = field
  end
  local descs = {}
  if field then
    out[#out + 1] = "FIELD: " .. fields[#fields] .. " <" .. type_name(doc, field) .. ">\n\n\n"
    if nonempty(field.description) then descs[#descs + 1] = field.description end
  end
  local target = element(doc, s)
  if target and target ~= s and nonempty(target.description) then descs[#descs + 1] = target.description
  elseif not field and nonempty(s.description) then descs[#descs + 1] = s.description end
  out[#out + 1] = "DESCRIPTION:\n"
  if #descs == 0 then
    out[#out + 1] = "    <empty>\n"
  else
    for _, d in ipairs(descs) do out[#out + 1] = indented(d, 4) end
    out[#out + 1] = "    \n"
  end
  if target and target.properties and next(target.properties) then
    out[#out + 1] = "FIELDS:\n"
    if recursive then
      tree(doc, target, 1, out, { [target] = true })
    else
      local req = required_set(target)
      for _, name in ipairs(sorted_fields(target)) do
        out[#out + 1] = field_line(doc, target, name, 2, req)
        local d = target.properties[name].description
        out[#out + 1] = nonempty(d) and indented(d, 4) or "    <no description>\n"
        out[#out + 1] = "\n"
      end
    end
  end
  out[#out + 1] = "\n"
  return table.concat(out)
end

-- The resource for word, moved to --api-version when one is given.
local function resource(ctx, word, api_version)
  local r = common.resolve(ctx, word)
  if not api_version or api_version == "" then return r end
  local list = common.client(ctx):discovery()
  for _, x in ipairs(list or {}) do
    if x.kind == r.kind and x.group == r.group and x.api_version == api_version then return x end
  end
  common.fail(string.format("couldn't find resource for %q", api_version))
end

function M.run(ctx, argv)
  local f = ctx.flags
  if #argv == 0 then
    common.fail('You must specify the type of resource to explain. Use "moonlet api-resources" '
      .. "for a complete list of supported resources.")
  elseif #argv > 1 then
    common.fail("We accept only this format: explain RESOURCE")
  end
  if f.output and f.output ~= "" and f.output ~= "plaintext" then
    common.fail(string.format("unsupported output format: %s", f.output))
  end
  local parts = {}
  for p in argv[1]:gmatch("[^.]+") do parts[#parts + 1] = p end
  -- A group may follow the resource with a dot ("deployments.apps.spec"):
  -- the longest prefix that resolves is the resource.
  local c = common.client(ctx)
  local r, fields
  for n = math.min(#parts, 4), 1, -1 do
    local word = table.concat(parts, ".", 1, n)
    local found = c:resolve(word)
    if found then
      r = found
      fields = table.move(parts, n + 1, #parts, 1, {})
      break
    end
  end
  if not r then
    local _, st = c:resolve(parts[1] or argv[1])
    -- kubectl explain prints this one without its "error: " prefix.
    if st and st.code == 404 and not st.transport then error({ cli = st.message, raw = true }, 0) end
    common.fail_status(ctx, st)
  end
  r = resource(ctx, r.name .. (r.group ~= "" and ("." .. r.group) or ""), f["api-version"])
  local path = r.group == "" and ("/openapi/v3/api/" .. r.version)
    or ("/openapi/v3/apis/" .. r.group .. "/" .. r.version)
  local doc, st = c:_call("GET", path)
  if not doc then common.fail_status(ctx, st) end
  local text, err, partial = M.render(doc, r, fields, f.recursive)
  if not text then
    if partial then ctx.out(partial) end
    common.fail(err)
  end
  ctx.out(text)
  return 0
end

return M
