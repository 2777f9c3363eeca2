-- `moonlet set image`: kubectl 1.32's `set image`. Each object's pod spec
-- (a pod's own, a workload's template, a CronJob's job template) gets the
-- new images by container name (`*` for all, init containers too); the
-- change goes to the server as the two-way strategic patch kubectl makes.
-- In moonlet an image names the program a container runs, so on a
-- Deployment this starts a rollout.
local common = require("moonlet.cli.common")
local util = require("moonlet.cli.rollout_util")
local json = require("moonlet.json")

local M = {}

M.usage = "Usage:\n  moonlet set image (-f FILENAME | TYPE NAME) CONTAINER_NAME_1=CONTAINER_IMAGE_1 ... CONTAINER_NAME_N=CONTAINER_IMAGE_N"

M.flags = {
  { name = "all", type = "bool", help = "Select all resources, in the namespace of the specified resource types" },
  { name = "selector", short = "l", type = "string", default = "", help = "Selector (label query) to filter on." },
  { name = "filename", short = "f", type = "list", help = "Filename, directory, or URL to files identifying the resource to get from a server." },
  { name = "recursive", short = "R", type = "bool", help = "Process the directory used in -f, --filename recursively." },
  { name = "dry-run", type = "string", default = "none", no_opt_default = "unchanged", help = "Must be \"none\", \"server\", or \"client\"." },
  { name = "field-manager", type = "string", default = "kubectl-set", help = "Name of the manager used to track field ownership." },
  { name = "output", short = "o", type = "string", help = "Output format: name|json|yaml." },
}

-- Where each kind keeps its pod spec (polymorphichelpers.UpdatePodSpecForObject).
local POD_SPEC = {
  ["/Pod"] = { "spec" },
  ["/ReplicationController"] = { "spec", "template", "spec" },
  ["apps/Deployment"] = { "spec", "template", "spec" },
  ["apps/ReplicaSet"] = { "spec", "template", "spec" },
  ["apps/DaemonSet"] = { "spec", "template", "spec" },
  ["apps/StatefulSet"] = { "spec", "template", "spec" },
  ["batch/Job"] = { "spec", "template", "spec" },
  ["batch/CronJob"] = { "spec", "jobTemplate", "spec", "template", "spec" },
}

--- The pod spec inside `obj` (a live table), or nil when the kind has none
--- (an empty, detached table when the object lacks one).
function M.pod_spec(r, obj)
  local path = POD_SPEC[r.group .. "/" .. r.kind]
  if not path then return nil end
  local cur = obj
  for _, k in ipairs(path) do
    if type(cur[k]) ~= "table" then return {} end
    cur = cur[k]
  end
  return cur
end

--- cmdutil.GetResourcesAndPairs + ParsePairs for `image`: resource words,
--- then NAME=IMAGE pairs in order. @return resources, pairs {{name, image}}
function M.parse_args(argv)
  local resources, pairs_ = {}, {}
  local found, invalid = false, {}
  for _, s in ipairs(argv) do
    local is_pair = (s:find("=", 1, true) ~= nil and s:sub(1, 1) ~= "=") or (s:sub(-1) == "-" and s ~= "-")
    if is_pair then
      found = true
      local k, v = s:match("^([^=]+)=(.*)$")
      if k then pairs_[#pairs_ + 1] = { k, v } else invalid[#invalid + 1] = s end
    elseif found then
      common.fail("all resources must be specified before image changes: " .. s)
    else
      resources[#resources + 1] = s
    end
  end
  if #invalid > 0 then common.fail("invalid image format: " .. table.concat(invalid, ", ")) end
  return resources, pairs_
end

-- Sets `image` on the containers called `name` (all for `*`).
-- @return whether any container matched
local function set_image(containers, name, image)
  local found = false
  for _, c in ipairs(type(containers) == "table" and containers or {}) do
    if c.name == name or name == "*" then
      found = true
      c.image = image
    end
  end
  return found
end

function M.run(ctx, argv)
  local f = ctx.flags
  local sub = table.remove(argv, 1)
  if sub == nil then
    ctx.out(M.usage .. "\n\nAvailable Commands:\n  image         Update the image of a pod template\n")
    return 1
  end
  if sub ~= "image" then
    common.fail(string.format("unknown command %q\nSee 'moonlet set -h' for help and examples", sub))
  end
  local resources, images = M.parse_args(argv)
  if #resources == 0 and #f.filename == 0 then
    -- kubectl finds the objects before it checks the rest
    common.fail("You must provide one or more resources by argument or filename.\n" ..
      "Example resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")
  end
  local errs = {}
  if f.all and f.selector ~= "" then errs[#errs + 1] = "cannot set --all and --selector at the same time" end
  local wildcard = false
  for _, p in ipairs(images) do if p[1] == "*" then wildcard = true end end
  if #images < 1 then
    errs[#errs + 1] = "at least one image update is required"
  elseif #images > 1 and wildcard then
    errs[#errs + 1] = "all containers are already specified by *, but saw more than one container_name=container_image pairs"
  end
  if #errs == 1 then common.fail(errs[1]) end
  if #errs > 1 then common.fail("[" .. table.concat(errs, ", ") .. "]") end
  local dry = common.dry_run(f["dry-run"])
  local fmt = f.output
  if fmt ~= nil and fmt ~= "" and fmt ~= "name" and fmt ~= "json" and fmt ~= "yaml" then
    common.fail(string.format('unable to match a printer suitable for the output format "%s", allowed formats are: json,name,yaml', fmt))
  end
  local objs = util.objects(ctx, resources, { selector = f.selector, all = f.all, filenames = f.filename,
    recursive = f.recursive })
  local patch = require("moonlet.api.patch")
  local merge_keys = require("moonlet.api.merge_keys")
  local c = common.client(ctx)
  local suffix = dry == "client" and " (dry run)" or dry == "server" and " (server dry run)" or ""
  -- kubectl works out every patch first, sends them, then reports the
  -- errors the first pass found
  local late = {}
  local todo = {}
  for _, o in ipairs(objs) do
    local new = json.copy(o.obj)
    local spec = M.pod_spec(o.r, new)
    local m = o.obj.metadata
    if not spec then
      late[#late + 1] = string.format("error: %s/%s the object is not a pod or does not have a pod template: *%s.%s",
        o.r.name, m.name, o.r.version, o.r.kind)
    else
      for _, p in ipairs(images) do
        local init = set_image(spec.initContainers, p[1], p[2])
        local app = set_image(spec.containers, p[1], p[2])
        if not init and not app then
          late[#late + 1] = string.format("error: unable to find container named %q", p[1])
        end
      end
      local p, perr = patch.two_way(o.obj, new, merge_keys.for_kind(o.r.group, o.r.kind))
      if not p then
        late[#late + 1] = string.format("error: %s/%s %s", o.r.name, m.name, tostring(perr))
      elseif not patch.is_empty(p) then
        todo[#todo + 1] = { o = o, patch = p, new = new }
      end
    end
  end
  for _, t in ipairs(todo) do
    local o, m = t.o, t.o.obj.metadata
    local result, st
    if dry == "client" then
      result = t.new
    else
      result, st = c:patch(o.r, o.r.namespaced and m.namespace or nil, m.name, "strategic", t.patch,
        { dry_run = dry == "server", field_manager = f["field-manager"] })
    end
    if not result then
      local msg = type(st) == "table" and (st.transport and common.status_message(st, ctx.server) or st.message)
      late[#late + 1] = "failed to patch image update to pod template: " .. tostring(msg)
    elseif fmt == "name" then
      ctx.out(common.object_name(o.r, m.name) .. "\n")
    elseif fmt == "json" then
      ctx.out(common.to_json(common.fill_kind(o.r, result)))
    elseif fmt == "yaml" then
      ctx.out(common.to_yaml(common.fill_kind(o.r, result)))
    else
      ctx.out(common.object_name(o.r, m.name) .. " image updated" .. suffix .. "\n")
    end
  end
  for _, e in ipairs(late) do common.report(ctx, e:match("^error: ") and e or ("error: " .. e)) end
  return ctx.failed and 1 or 0
end

return M
