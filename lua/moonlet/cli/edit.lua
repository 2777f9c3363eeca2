-- `moonlet edit`: the object as YAML in $KUBE_EDITOR / $EDITOR / vi, then a
-- two-way patch (strategic for built-in kinds, JSON merge otherwise) of
-- what changed; unchanged or emptied files cancel the edit like kubectl.
local common = require("moonlet.cli.common")
local json = require("moonlet.json")

local M = {}

M.usage = "Usage:\n  moonlet edit (RESOURCE/NAME | RESOURCE NAME) [flags]"

M.flags = {
  { name = "output", short = "o", type = "string", help = "Output format: name|json|yaml." },
}

M.HEADER = "# Please edit the object below. Lines beginning with a '#' will be ignored,\n" ..
  "# and an empty file will abort the edit. If an error occurs while saving this file will be\n" ..
  "# reopened with the relevant failures.\n#\n"

local function strip_comments(text)
  local out = {}
  for line in (text .. "\n"):gmatch("(.-)\n") do
    if not line:match("^%s*#") then out[#out + 1] = line end
  end
  return table.concat(out, "\n")
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Runs the editor on `path` (blocking: the CLI owns its loop).
local function run_editor(ctx, path)
  if ctx.editor_run then return ctx.editor_run(path) end
  local editor = ctx.getenv("KUBE_EDITOR")
  if not editor or editor == "" then editor = ctx.getenv("EDITOR") end
  if not editor or editor == "" then editor = "vi" end
  local ok, how, code = os.execute(editor .. " " .. shell_quote(path))
  if not ok then
    return nil, string.format("there was a problem with the editor %q: exit status %s", editor, tostring(code or how))
  end
  return true
end

function M.run(ctx, argv)
  local get = require("moonlet.cli.get")
  if #argv == 0 then common.fail("You must provide one or more resources by argument or filename.") end
  local targets = get.targets(ctx, argv)
  if #targets ~= 1 or #targets[1].names ~= 1 then
    common.fail("moonlet edit takes exactly one object (TYPE NAME or TYPE/NAME)")
  end
  local t = targets[1]
  local c = common.client(ctx)
  local obj, st = c:get(t.r, common.namespace(ctx), t.names[1])
  if not obj then common.fail_status(ctx, st) end
  common.fill_kind(t.r, obj)
  if type(obj.metadata) == "table" then obj.metadata.managedFields = nil end
  local original = M.HEADER .. common.to_yaml(obj)
  local path = os.tmpname()
  os.remove(path)
  path = path .. "-edit.yaml"
  local f = assert(io.open(path, "wb"))
  f:write(original)
  f:close()
  local ok, eerr = run_editor(ctx, path)
  if not ok then
    os.remove(path)
    common.fail(eerr)
  end
  f = io.open(path, "rb")
  local edited = f and f:read("a") or ""
  if f then f:close() end
  if strip_comments(original) == strip_comments(edited) then
    os.remove(path)
    ctx.err("Edit cancelled, no changes made.\n")
    return 0
  end
  if not strip_comments(edited):match("%S") then
    os.remove(path)
    ctx.err("Edit cancelled, saved file was empty.\n")
    return 0
  end
  local yaml = require("moonlet.yaml")
  local docs = yaml.decode_all(strip_comments(edited))
  local new = docs[1] and docs[1].value
  if not docs[1] or docs[1].err or type(new) ~= "table" then
    common.fail(string.format("error: %s\nA copy of your changes has been stored to %q",
      docs[1] and docs[1].err and ("yaml: line " .. tostring(docs[1].line) .. ": " .. tostring(docs[1].err))
        or "the edited file is not an object", path))
  end
  os.remove(path)
  local nm = type(new.metadata) == "table" and new.metadata or {}
  if new.kind ~= obj.kind or new.apiVersion ~= obj.apiVersion or nm.name ~= obj.metadata.name then
    common.fail("At least one of apiVersion, kind and name was changed")
  end
  local patch = require("moonlet.api.patch")
  local merge_keys = require("moonlet.api.merge_keys")
  local p, ptype, perr
  if merge_keys.supports_strategic(t.r.group, t.r.kind) then
    ptype = "strategic"
    p, perr = patch.two_way(obj, new, merge_keys.for_kind(t.r.group, t.r.kind))
  else
    ptype = "merge"
    p = patch.diff_merge(obj, new)
  end
  if not p then common.fail(tostring(perr)) end
  if patch.is_empty(p) then
    ctx.err("Edit cancelled, no changes made.\n")
    return 0
  end
  local out, pst = c:patch(t.r, obj.metadata.namespace, obj.metadata.name, ptype, p)
  if not out then common.fail_status(ctx, pst) end
  if ctx.flags.output == "name" then
    ctx.out(common.object_name(t.r, out.metadata.name) .. "\n")
  else
    ctx.out(common.object_name(t.r, out.metadata.name) .. " edited\n")
  end
  return 0
end

return M
