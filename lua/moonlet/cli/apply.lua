-- `moonlet apply -f` (client-side apply: the last-applied-configuration
-- annotation and a three-way patch, strategic for built-in kinds, JSON
-- merge for others; with --server-side an apply patch the server merges)
-- and `moonlet create -f` / `create namespace|configmap`.
-- Bad documents are reported and the good ones still go through.
local common = require("moonlet.cli.common")
local manifest = require("moonlet.cli.manifest")
local json = require("moonlet.json")

local M = {}

M.LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

local FILE_FLAGS = {
  { name = "filename", short = "f", type = "list", metavar = "FILE",
    help = "The files that contain the configurations (a file, a directory, or - for stdin)." },
  { name = "recursive", short = "R", type = "bool",
    help = "Process the directory used in -f, --filename recursively." },
  { name = "dry-run", type = "string", default = "none",
    help = "Must be \"none\", \"server\", or \"client\"." },
  { name = "output", short = "o", type = "string", help = "Output format: name|json|yaml." },
  { name = "validate", type = "string", default = "strict",
    help = "Field validation: strict|warn|ignore (true=strict, false=ignore)." },
  { name = "field-manager", type = "string", help = "Name of the manager used to track field ownership." },
}

local APPLY_FLAGS = {
  { name = "server-side", type = "bool",
    help = "If true, apply runs in the server instead of the client." },
  { name = "force-conflicts", type = "bool",
    help = "If true, server-side apply will force the changes against conflicts." },
}

local CREATE_FLAGS = {
  { name = "from-literal", type = "list", help = "Key and literal value for a configmap (key=value)." },
  { name = "from-file", type = "list", help = "Key file for a configmap ([key=]path)." },
  { name = "from", type = "string", help = "The resource to create a job from (only cronjob is supported)." },
  { name = "image", type = "string", help = "Image name to run (create job)." },
}

function M.flags_for(verb)
  local out = {}
  for _, s in ipairs(FILE_FLAGS) do out[#out + 1] = s end
  if verb == "create" then
    for _, s in ipairs(CREATE_FLAGS) do out[#out + 1] = s end
  else
    for _, s in ipairs(APPLY_FLAGS) do out[#out + 1] = s end
  end
  return out
end

function M.usage(verb)
  if verb == "create" then
    return "Usage:\n  moonlet create -f FILENAME [flags]\n  moonlet create namespace NAME\n" ..
      "  moonlet create configmap NAME [--from-literal=key=value] [--from-file=[key=]path]"
  end
  return "Usage:\n  moonlet apply (-f FILENAME) [--server-side [--force-conflicts]] [flags]"
end

--- kubectl's GetModifiedConfiguration: the object with the last-applied
--- annotation set to its own JSON (compact, sorted keys, newline-ended).
--- @return modified object (a copy), the annotation text
function M.modified_configuration(obj)
  local copy = json.copy(obj)
  copy.metadata = copy.metadata or {}
  local ann = copy.metadata.annotations
  if type(ann) ~= "table" or ann == json.null then ann = {} end
  ann[M.LAST_APPLIED] = nil
  copy.metadata.annotations = json.object(ann)
  local text = json.encode(copy, { sort_keys = true }) .. "\n"
  ann[M.LAST_APPLIED] = text
  return copy, text
end

local function suffix(ctx)
  local d = ctx.flags["dry-run"]
  if d == "client" then return " (dry run)" end
  if d == "server" then return " (server dry run)" end
  return ""
end

local function field_validation(ctx)
  local v = ctx.flags.validate
  if v == "true" or v == "strict" then return "Strict" end
  if v == "false" or v == "ignore" then return "Ignore" end
  if v == "warn" then return "Warn" end
  common.fail(string.format('invalid - validate option %q; must be one of: strict (or true), warn, ignore (or false)', v))
end

local function resource_line(r, obj)
  return string.format('Resource: "%s/%s, Resource=%s", GroupVersionKind: "%s/%s, Kind=%s"\nName: "%s", Namespace: "%s"',
    r.group, r.version, r.name, r.group, r.version, r.kind,
    obj.metadata.name or "", obj.metadata.namespace or "")
end

-- Resolves a document's kind and namespace; returns r or nil, message.
local function prepare(ctx, doc)
  local c = common.client(ctx)
  local obj = doc.obj
  local r, st = c:kind(obj.apiVersion .. "/" .. obj.kind)
  if not r then
    if st and st.transport then return nil, common.status_message(st, ctx.server) end
    local m = type(obj.metadata) == "table" and obj.metadata or {}
    return nil, string.format('error: resource mapping not found for name: "%s" namespace: "%s" from "%s": no matches for kind "%s" in version "%s"\nensure CRDs are installed first',
      tostring(m.name or ""), tostring(m.namespace or ""), doc.source, obj.kind, obj.apiVersion)
  end
  if type(obj.metadata) ~= "table" then obj.metadata = {} end
  if (obj.metadata.name == nil or obj.metadata.name == "") and ctx.verb == "apply" then
    return nil, string.format('error: error when retrieving current configuration of:\n%s\nfrom server for: "%s": resource name may not be empty',
      resource_line(r, obj), doc.source)
  end
  if r.namespaced then
    local flag_ns = ctx.set.namespace and ctx.flags.namespace or nil
    local ns = obj.metadata.namespace
    if ns and ns ~= "" and flag_ns and ns ~= flag_ns then
      return nil, string.format("error: the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation.",
        ns, flag_ns, ns)
    end
    if not ns or ns == "" then obj.metadata.namespace = common.namespace(ctx) end
  end
  return r
end

local function print_result(ctx, r, obj, verb)
  local fmt = ctx.flags.output
  if fmt == "name" then
    ctx.out(common.object_name(r, obj.metadata.name) .. "\n")
  elseif fmt == "json" then
    ctx.out(common.to_json(common.fill_kind(r, obj)))
  elseif fmt == "yaml" then
    ctx.out(common.to_yaml(common.fill_kind(r, obj)))
  else
    ctx.out(common.object_name(r, obj.metadata.name) .. " " .. verb .. suffix(ctx) .. "\n")
  end
end

local function create_one(ctx, r, obj, source, errors)
  local c = common.client(ctx)
  if ctx.flags["dry-run"] == "client" then
    print_result(ctx, r, obj, "created")
    return
  end
  local out, st = c:create(r, obj, { field_validation = field_validation(ctx),
    dry_run = ctx.flags["dry-run"] == "server", field_manager = ctx.flags["field-manager"]
      or (ctx.verb == "apply" and "kubectl-client-side-apply" or "kubectl-create") })
  if not out then
    if st.transport then
      errors[#errors + 1] = common.status_message(st, ctx.server)
    else
      errors[#errors + 1] = string.format("Error from server%s: error when creating %q: %s",
        (st.reason and st.reason ~= "") and (" (" .. st.reason .. ")") or "", source, st.message or "")
    end
    return
  end
  print_result(ctx, r, out, "created")
end

local function apply_one(ctx, r, obj, source, errors)
  local c = common.client(ctx)
  local modified, _ = M.modified_configuration(obj)
  local current, st = c:get(r, obj.metadata.namespace, obj.metadata.name)
  if not current then
    if st.code == 404 and not st.transport then
      return create_one(ctx, r, modified, source, errors)
    end
    if st.transport then
      errors[#errors + 1] = common.status_message(st, ctx.server)
    else
      errors[#errors + 1] = string.format("Error from server%s: error when retrieving current configuration of:\n%s\nfrom server for: %q: %s",
        (st.reason and st.reason ~= "") and (" (" .. st.reason .. ")") or "", resource_line(r, obj), source, st.message or "")
    end
    return
  end
  local patch = require("moonlet.api.patch")
  local merge_keys = require("moonlet.api.merge_keys")
  local ann = type(current.metadata) == "table" and current.metadata.annotations
  local original = nil
  if type(ann) == "table" and type(ann[M.LAST_APPLIED]) == "string" then
    original = json.decode(ann[M.LAST_APPLIED])
  end
  local p, perr, ptype
  if merge_keys.supports_strategic(r.group, r.kind) then
    ptype = "strategic"
    p, perr = patch.three_way(original, modified, current, merge_keys.for_kind(r.group, r.kind))
  else
    ptype = "merge"
    p, perr = patch.three_way_merge(original, modified, current)
  end
  if p == nil then
    errors[#errors + 1] = string.format("error: error when creating patch with:\noriginal:\n%s\nmodified:\n%s\ncurrent:\n%s\nfor: %q: %s",
      original and json.encode(original, { sort_keys = true }) or "",
      json.encode(modified, { sort_keys = true }), json.encode(current, { sort_keys = true }), source, tostring(perr))
    return
  end
  if patch.is_empty(p) then
    print_result(ctx, r, current, "unchanged")
    return
  end
  if ctx.flags["dry-run"] == "client" then
    print_result(ctx, r, current, "configured")
    return
  end
  local out, pst = c:patch(r, obj.metadata.namespace, obj.metadata.name, ptype, p,
    { dry_run = ctx.flags["dry-run"] == "server",
      field_manager = ctx.flags["field-manager"] or "kubectl-client-side-apply" })
  if not out then
    if pst.transport then
      errors[#errors + 1] = common.status_message(pst, ctx.server)
    else
      errors[#errors + 1] = string.format("Error from server%s: error when applying patch:\n%s\nto:\n%s\nfor: %q: error when patching %q: %s",
        (pst.reason and pst.reason ~= "") and (" (" .. pst.reason .. ")") or "",
        json.encode(p, { sort_keys = true }), resource_line(r, obj), source, source, pst.message or "")
    end
    return
  end
  print_result(ctx, r, out, "configured")
end

-- What kubectl adds under an apply refused for conflicts.
local CONFLICT_HELP = [[

Please review the fields above--they currently have other managers. Here
are the ways you can resolve this warning:
* If you intend to manage all of these fields, please re-run the apply
  command with the `--force-conflicts` flag.
* If you do not intend to manage all of the fields, please edit your
  manifest to remove references to the fields that should keep their
  current managers.
* You may co-own fields by updating your manifest to match the existing
  value; in this case, you'll become the manager if the other manager(s)
  stop managing the field (remove it from their configuration).
See https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts]]

-- --server-side: the manifest itself is the patch; the server merges it
-- and keeps who owns which field.
local function apply_server_side(ctx, r, obj, errors)
  local c = common.client(ctx)
  local out, st = c:patch(r, obj.metadata.namespace, obj.metadata.name, "apply", obj,
    { dry_run = ctx.flags["dry-run"] == "server", force = ctx.flags["force-conflicts"],
      field_manager = ctx.flags["field-manager"] or "kubectl",
      field_validation = field_validation(ctx) })
  if not out then
    if st.transport then
      errors[#errors + 1] = common.status_message(st, ctx.server)
    elseif st.code == 409 and st.reason == "Conflict" and type(st.details) == "table" and st.details.causes then
      errors[#errors + 1] = "error: " .. tostring(st.message) .. CONFLICT_HELP
    else
      errors[#errors + 1] = string.format("Error from server%s: %s",
        (st.reason and st.reason ~= "") and (" (" .. st.reason .. ")") or "", st.message or "")
    end
    return
  end
  print_result(ctx, r, out, "serverside-applied")
end

-- `create namespace NAME`, `create configmap NAME --from-literal k=v`.
local function create_generator(ctx, argv)
  local what, name = argv[1], argv[2]
  if what == "job" then return require("moonlet.cli.create_job").run(ctx, { table.unpack(argv, 2) }) end
  local obj
  if what == "namespace" or what == "ns" then
    if not name then common.fail("exactly one NAME is required, got 0") end
    obj = { apiVersion = "v1", kind = "Namespace", metadata = { name = name } }
  elseif what == "configmap" or what == "cm" then
    if not name then common.fail("exactly one NAME is required, got 0") end
    local data = {}
    for _, kv in ipairs(ctx.flags["from-literal"]) do
      local k, v = kv:match("^([^=]+)=(.*)$")
      if not k then
        common.fail(string.format('invalid literal source %s, expected key=value', kv))
      end
      if data[k] ~= nil then
        common.fail(string.format('cannot add key %s, another key by that name already exists in Data for ConfigMap "%s"', k, name))
      end
      data[k] = v
    end
    for _, spec in ipairs(ctx.flags["from-file"]) do
      local k, path = spec:match("^([^=]+)=(.*)$")
      if not k then path = spec; k = spec:match("([^/]+)$") end
      local f = io.open(path, "rb")
      if not f then common.fail(string.format("error reading %s: no such file or directory", path)) end
      data[k] = f:read("a")
      f:close()
    end
    obj = { apiVersion = "v1", kind = "ConfigMap",
      metadata = { name = name, namespace = common.namespace(ctx) } }
    if next(data) then obj.data = data end
  else
    common.fail(string.format('unknown command "%s" for "moonlet create"', tostring(what)))
  end
  local r = common.client(ctx):kind(obj.apiVersion .. "/" .. obj.kind)
  if not r then common.fail("the server does not serve " .. obj.kind) end
  local errors = {}
  create_one(ctx, r, obj, "", errors)
  for _, e in ipairs(errors) do
    -- generators report plain API errors (no "error when creating")
    ctx.failed = true
    ctx.err((e:gsub(' error when creating "": ', " ")) .. "\n")
  end
  return #errors > 0 and 1 or 0
end

function M.run(ctx, argv)
  local f = ctx.flags
  f["dry-run"] = common.dry_run(f["dry-run"])
  if #f.filename == 0 then
    if ctx.verb == "create" and #argv > 0 then return create_generator(ctx, argv) end
    common.fail("must specify one of -f and -k")
  end
  if #argv > 0 then
    common.fail(string.format('Unexpected args: [%s]\nSee \'moonlet %s -h\' for help and examples',
      table.concat(argv, " "), ctx.verb))
  end
  local docs, rerr = manifest.read(ctx, f.filename, f.recursive)
  if not docs then common.fail(rerr) end
  local errors = {}
  local n = 0
  for _, doc in ipairs(docs) do
    if doc.err then
      errors[#errors + 1] = doc.err
    else
      n = n + 1
      local r, perr = prepare(ctx, doc)
      if not r then
        errors[#errors + 1] = perr
      elseif ctx.verb == "apply" and f["server-side"] then
        apply_server_side(ctx, r, doc.obj, errors)
      elseif ctx.verb == "apply" then
        apply_one(ctx, r, doc.obj, doc.source, errors)
      else
        create_one(ctx, r, doc.obj, doc.source, errors)
      end
    end
  end
  if n == 0 and #errors == 0 then
    common.fail("no objects passed to " .. ctx.verb)
  end
  for _, e in ipairs(errors) do ctx.err(e .. "\n") end
  return #errors > 0 and 1 or 0
end

return M
