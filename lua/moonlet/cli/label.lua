-- `moonlet label` and `moonlet annotate`: KEY=VALUE sets, KEY- removes,
-- --overwrite, -l/--all to pick objects; each change is a JSON merge patch
-- of metadata, reported as kubectl does (`configmap/x labeled`).
local common = require("moonlet.cli.common")
local json = require("moonlet.json")

local M = {}

function M.usage(verb)
  return string.format("Usage:\n  moonlet %s [--overwrite] (-f FILENAME | TYPE NAME) KEY_1=VAL_1 ... KEY_N=VAL_N [--resource-version=version] [flags]", verb)
end

M.flags = {
  { name = "overwrite", type = "bool", help = "If true, allow values to be overwritten, otherwise reject updates that overwrite existing values." },
  { name = "selector", short = "l", type = "string", help = "Selector (label query) to filter on." },
  { name = "all", type = "bool", help = "Select all resources, in the namespace of the specified resource types." },
  { name = "all-namespaces", short = "A", type = "bool", help = "If true, check the specified action in all namespaces." },
  { name = "resource-version", type = "string", help = "If non-empty, the update will only succeed if this is the current resource-version for the object." },
  { name = "dry-run", type = "string", default = "none", help = "Must be \"none\", \"server\", or \"client\"." },
  { name = "output", short = "o", type = "string", help = "Output format: name|json|yaml." },
}

--- Splits arguments into resource words and KEY=VALUE / KEY- changes.
--- @return resources, set (key -> value, in order list), remove (keys)
function M.parse_changes(argv)
  local resources, set, order, remove = {}, {}, {}, {}
  local in_changes = false
  for _, a in ipairs(argv) do
    local is_change = a:find("=", 1, true) ~= nil or a:sub(-1) == "-"
    if is_change then
      in_changes = true
      local k, v = a:match("^([^=]+)=(.*)$")
      if k then
        if set[k] == nil then order[#order + 1] = k end
        set[k] = v
      else
        remove[#remove + 1] = a:sub(1, -2)
      end
    elseif in_changes then
      common.fail("all resources must be specified before label changes: " .. a)
    else
      resources[#resources + 1] = a
    end
  end
  return resources, set, order, remove
end

function M.run(ctx, argv)
  local f = ctx.flags
  local what = ctx.verb == "label" and "labels" or "annotations"
  local resources, set, order, remove = M.parse_changes(argv)
  if #order == 0 and #remove == 0 then
    common.fail(string.format("at least one %s update is required", ctx.verb == "label" and "label" or "annotation"))
  end
  for _, k in ipairs(remove) do
    if set[k] ~= nil then
      common.fail(string.format("can not both modify and remove the following %s in the same command: %s",
        ctx.verb == "label" and "label(s)" or "annotation(s)", k))
    end
  end
  if #resources == 0 then
    common.fail("one or more resources must be specified as <resource> <name> or <resource>/<name>")
  end
  if f["all-namespaces"] then f.namespace = nil end
  local get = require("moonlet.cli.get")
  local targets = get.targets(ctx, resources)
  local c = common.client(ctx)
  local ns = common.namespace(ctx)
  local objs = {}
  for _, t in ipairs(targets) do
    if #t.names > 0 then
      for _, n in ipairs(t.names) do
        local obj, st = c:get(t.r, ns, n)
        if obj then objs[#objs + 1] = { r = t.r, obj = obj } else common.report(ctx, st) end
      end
    elseif f.all or f.selector then
      local list, st = c:list(t.r, { namespace = (t.r.namespaced and not f["all-namespaces"]) and ns or nil,
        label_selector = f.selector })
      if not list then common.fail_status(ctx, st) end
      for _, o in ipairs(list.items or {}) do objs[#objs + 1] = { r = t.r, obj = o } end
    else
      common.fail("resource(s) were provided, but no name was specified")
    end
  end
  local patch = require("moonlet.api.patch")
  for _, o in ipairs(objs) do
    local m = o.obj.metadata
    local cur = type(m[what]) == "table" and m[what] or {}
    local conflict
    if not f.overwrite then
      for _, k in ipairs(order) do
        if cur[k] ~= nil and cur[k] ~= set[k] then
          if ctx.verb == "label" then
            conflict = string.format("'%s' already has a value (%s), and --overwrite is false", k, tostring(cur[k]))
          else
            conflict = string.format("--overwrite is false but found the following declared annotation(s): '%s' already has a value (%s)",
              k, tostring(cur[k]))
          end
          break
        end
      end
    end
    if conflict then
      common.report(ctx, "error: " .. conflict)
    else
      local before = json.encode(o.obj, { sort_keys = true })
      local new = json.copy(o.obj)
      local nm = new.metadata
      local target = type(nm[what]) == "table" and nm[what] or json.object({})
      for _, k in ipairs(order) do target[k] = set[k] end
      for _, k in ipairs(remove) do
        if ctx.verb == "label" and target[k] == nil then
          ctx.err(string.format("label %q not found.\n", k))
        end
        target[k] = nil
      end
      if next(target) == nil then nm[what] = nil else nm[what] = target end
      if f["resource-version"] then nm.resourceVersion = f["resource-version"] end
      local after = json.encode(new, { sort_keys = true })
      local msg
      if ctx.verb == "annotate" then
        msg = "annotated"
      elseif before == after then
        msg = "not labeled"
      elseif not f.overwrite and #after < #before then
        msg = "unlabeled"
      else
        msg = "labeled"
      end
      local result = o.obj
      if before ~= after and f["dry-run"] ~= "client" then
        local p = patch.diff_merge(o.obj, new)
        local out, st = c:patch(o.r, m.namespace, m.name, "merge", p,
          { dry_run = f["dry-run"] == "server" })
        if not out then
          common.report(ctx, st)
          goto continue
        end
        result = out
      end
      if f.output == "name" then
        ctx.out(common.object_name(o.r, m.name) .. "\n")
      elseif f.output == "json" then
        ctx.out(common.to_json(common.fill_kind(o.r, result)))
      elseif f.output == "yaml" then
        ctx.out(common.to_yaml(common.fill_kind(o.r, result)))
      else
        local sfx = f["dry-run"] == "client" and " (dry run)" or f["dry-run"] == "server" and " (server dry run)" or ""
        ctx.out(common.object_name(o.r, m.name) .. " " .. msg .. sfx .. "\n")
      end
    end
    ::continue::
  end
  return ctx.failed and 1 or 0
end

return M
