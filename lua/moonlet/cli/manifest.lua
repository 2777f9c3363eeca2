-- Reading manifests for -f: files, directories (.json/.yaml/.yml, -R to
-- descend) and stdin; multi-document YAML and JSON; List kinds expanded.
-- Each document comes back as {source=, obj=} or {source=, err=} so one bad
-- document does not stop the others.
local json = require("moonlet.json")

local M = {}

local EXTENSIONS = { json = true, yaml = true, yml = true }

local read_file = require("moonlet.files").read

local function is_dir(path)
  local sys = require("moonlet.core.sys")
  local st = sys.stat(path)
  return st ~= nil and st.type == "dir"
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close(); return true end
  local sys = require("moonlet.core.sys")
  return sys.stat(path) ~= nil
end

local function list_dir(dir, recursive, out)
  local sys = require("moonlet.core.sys")
  local names = sys.listdir(dir) or {}
  table.sort(names)
  for _, n in ipairs(names) do
    local p = dir:gsub("/+$", "") .. "/" .. n
    if is_dir(p) then
      if recursive then list_dir(p, recursive, out) end
    else
      local ext = n:match("%.([^.]+)$")
      if ext and EXTENSIONS[ext] then out[#out + 1] = p end
    end
  end
end

local function describe_json(v)
  local ok, s = pcall(json.encode, v, { sort_keys = true })
  return ok and s or "?"
end

-- Adds the objects of one decoded document (expanding Lists).
local function add_value(out, source, v)
  if v == nil or v == json.null then return end
  if type(v) ~= "table" or json.is_array(v) then
    out[#out + 1] = { source = source, err = string.format("error: unable to decode %q: json: cannot unmarshal %s into Go value of type struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }",
      source, type(v) == "table" and "array" or type(v)) }
    return
  end
  if next(v) == nil then return end
  if v.kind == nil or v.kind == "" then
    out[#out + 1] = { source = source,
      err = string.format("error: unable to decode %q: Object 'Kind' is missing in '%s'", source, describe_json(v)) }
    return
  end
  if v.apiVersion == nil or v.apiVersion == "" then
    out[#out + 1] = { source = source,
      err = string.format("error: unable to decode %q: Object 'apiVersion' is missing in '%s'", source, describe_json(v)) }
    return
  end
  if v.kind:match("List$") and type(v.items) == "table" then
    for _, item in ipairs(v.items) do add_value(out, source, item) end
    return
  end
  out[#out + 1] = { source = source, obj = v }
end

--- Decodes the documents of one text.
function M.decode(text, source, out)
  out = out or {}
  local trimmed = text:match("^%s*(.-)%s*$")
  if trimmed == "" then return out end
  local first = trimmed:sub(1, 1)
  if first == "{" or first == "[" then
    -- a JSON document (or a stream of them, one after another)
    local v = json.decode(trimmed)
    if v ~= nil then
      add_value(out, source, v)
      return out
    end
  end
  local yaml = require("moonlet.yaml")
  for _, d in ipairs(yaml.decode_all(text)) do
    if d.err then
      -- The codec words its errors as kubectl does ("error converting YAML
      -- to JSON: yaml: line N: ..."); only the file is added here.
      local msg = tostring(d.err)
      if not msg:match("^error converting YAML to JSON: ") then
        msg = "error converting YAML to JSON: " .. msg
      end
      out[#out + 1] = { source = source,
        err = string.format("error: error parsing %s: %s", source, msg) }
    else
      add_value(out, source, d.value)
    end
  end
  return out
end

--- Reads every -f argument. ctx.stdin (text) stands in for `-` in specs.
--- @return list of {source=, obj=} | {source=, err=}; or nil, message when
--- a path does not exist (kubectl checks all paths before doing anything)
function M.read(ctx, filenames, recursive)
  local files = {}
  for _, f in ipairs(filenames) do
    if f == "-" then
      files[#files + 1] = "-"
    elseif f:match("^https?://") then
      return nil, string.format("the URL %q is not supported by moonlet; download it first", f)
    elseif not exists(f) then
      return nil, string.format('the path "%s" does not exist', f)
    elseif is_dir(f) then
      list_dir(f, recursive, files)
    else
      files[#files + 1] = f
    end
  end
  local out = {}
  for _, f in ipairs(files) do
    local text, err
    if f == "-" then
      text = ctx.stdin or io.stdin:read("a") or ""
      M.decode(text, "STDIN", out)
    else
      text, err = read_file(f)
      if not text then
        out[#out + 1] = { source = f, err = "error: " .. tostring(err) }
      else
        M.decode(text, f, out)
      end
    end
  end
  return out
end

return M
