-- `moonlet patch`: kubectl 1.32's patch. The patch (-p or --patch-file,
-- JSON or YAML) goes to the server as it is, with the Content-Type of
-- --type (strategic by default); the server applies it. As kubectl, the
-- object is read first so the answer can say `patched (no change)`.
local common = require("moonlet.cli.common")
local util = require("moonlet.cli.rollout_util")
local json = require("moonlet.json")

local M = {}

M.usage = "Usage:\n  moonlet patch (-f FILENAME | TYPE NAME) [-p PATCH|--patch-file FILE] [--type strategic|merge|json] [--subresource status|scale]"

local TYPES = { json = true, merge = true, strategic = true }

M.flags = {
  { name = "patch", short = "p", type = "string", default = "", help = "The patch to be applied to the resource JSON file." },
  { name = "patch-file", type = "string", default = "", help = "A file containing a patch to be applied to the resource." },
  { name = "type", type = "string", default = "strategic", help = "The type of patch being provided; one of [json merge strategic]" },
  { name = "subresource", type = "string", default = "", help = "If specified, patch will operate on the subresource of the requested object. Must be one of [status scale]. This flag is beta and may change in the future." },
  { name = "filename", short = "f", type = "list", help = "Filename, directory, or URL to files identifying the resource to update" },
  { name = "recursive", short = "R", type = "bool", help = "Process the directory used in -f, --filename recursively." },
  { name = "dry-run", type = "string", default = "none", no_opt_default = "unchanged", help = "Must be \"none\", \"server\", or \"client\"." },
  { name = "field-manager", type = "string", default = "kubectl-patch", help = "Name of the manager used to track field ownership." },
  { name = "output", short = "o", type = "string", help = "Output format: name|json|yaml." },
}

-- The patch as JSON text, as kubectl's yaml.ToJSON makes it: text that
-- starts with `{` is sent as it is (the server judges it), anything else is
-- read as YAML. @return text or raises kubectl's message
local function patch_text(ctx)
  local f = ctx.flags
  local text = f.patch
  if f["patch-file"] ~= "" then
    local fh, ferr = io.open(f["patch-file"], "rb")
    if not fh then common.fail("unable to read patch file: " .. tostring(ferr)) end
    text = fh:read("a")
    fh:close()
  end
  if text:match("^%s*{") then return text end
  local v, yerr = require("moonlet.yaml").decode(text)
  if v == nil then
    yerr = tostring(yerr):gsub("^error converting YAML to JSON: ", "")
    common.fail(string.format("unable to parse %q: %s", f.patch, yerr))
  end
  return json.encode(v)
end

-- --dry-run=client: the patch applied to `obj` here, as kubectl's
-- getPatchedJSON. @return the result or nil, a local Status
local function local_patch(r, obj, ptype, text)
  local patch = require("moonlet.api.patch")
  local p, perr = json.decode(text)
  if p == nil then return nil, { ["local"] = true, message = "unable to parse patch: " .. tostring(perr) } end
  local out, err
  if ptype == "merge" then
    out = patch.merge(obj, p)
  elseif ptype == "json" then
    out, err = patch.json(obj, p)
  else
    out, err = patch.strategic(obj, p, require("moonlet.api.merge_keys").for_kind(r.group, r.kind))
  end
  if out == nil then return nil, { ["local"] = true, message = tostring(err) } end
  return out
end

local function same(a, b)
  return json.encode(a, { sort_keys = true }) == json.encode(b, { sort_keys = true })
end

function M.run(ctx, argv)
  local f = ctx.flags
  if f.patch ~= "" and f["patch-file"] ~= "" then common.fail("cannot specify --patch and --patch-file together") end
  if f.patch == "" and f["patch-file"] == "" then
    common.fail("must specify --patch or --patch-file containing the contents of the patch")
  end
  if not TYPES[string.lower(f.type)] then
    common.fail(string.format('--type must be one of [json merge strategic], not %q', f.type))
  end
  -- kubectl leaves an unknown subresource to the server (its GET answers 404)
  local sub = f.subresource
  local dry = common.dry_run(f["dry-run"])
  local fmt = f.output
  if fmt ~= nil and fmt ~= "" and fmt ~= "name" and fmt ~= "json" and fmt ~= "yaml" then
    common.fail(string.format('unable to match a printer suitable for the output format "%s", allowed formats are: json,name,yaml', fmt))
  end
  local ptype = string.lower(f.type)
  local text = patch_text(ctx)
  if #argv == 0 and #f.filename == 0 then
    common.fail("You must provide one or more resources by argument or filename.\n" ..
      "Example resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")
  end
  local objs = util.objects(ctx, argv, { filenames = f.filename, recursive = f.recursive })
  if #objs == 0 then
    if ctx.failed then return 1 end
    common.fail("no objects passed to patch")
  end
  local c = common.client(ctx)
  for _, o in ipairs(objs) do
    local m = o.obj.metadata
    local ns = o.r.namespaced and m.namespace or nil
    local before = o.obj
    if sub ~= "" then
      -- kubectl reads the subresource itself, so that is what it compares
      local path, perr = require("moonlet.client").path(o.r, ns, m.name, sub)
      if not path then common.fail_status(ctx, perr) end
      local got, st = c:_call("GET", path)
      if not got then common.fail_status(ctx, st) end
      before = got
    end
    local after, st
    if dry == "client" then
      -- client-side: the server is not asked; the patch is applied here
      after, st = local_patch(o.r, before, ptype, text)
    else
      after, st = c:patch(o.r, ns, m.name, ptype, text, { subresource = sub ~= "" and sub or nil,
        dry_run = dry == "server", field_manager = f["field-manager"] })
    end
    if not after then
      common.report(ctx, st)
    else
      local r = o.r
      if sub == "scale" then
        r = { kind = "Scale", group = "autoscaling", api_version = "autoscaling/v1" }
      end
      common.fill_kind(r, after)
      local op = same(common.fill_kind(r, before), after) and "patched (no change)" or "patched"
      if fmt == "name" then
        ctx.out(common.object_name(r, m.name) .. "\n")
      elseif fmt == "json" then
        ctx.out(common.to_json(after))
      elseif fmt == "yaml" then
        ctx.out(common.to_yaml(after))
      else
        -- kubectl's patch names its operation itself: no dry-run suffix
        ctx.out(common.object_name(r, m.name) .. " " .. op .. "\n")
      end
    end
  end
  return ctx.failed and 1 or 0
end

return M
