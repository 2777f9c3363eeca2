-- `moonlet delete`: by name, TYPE/NAME, -f manifests, -l selector or --all;
-- --cascade, --grace-period, --now, --force, --dry-run; waits until the
-- objects are gone like kubectl's default --wait.
local common = require("moonlet.cli.common")
local manifest = require("moonlet.cli.manifest")

local M = {}

M.usage = "Usage:\n  moonlet delete ([-f FILENAME] | TYPE [(NAME | -l label | --all)]) [flags]"

M.flags = {
  { name = "filename", short = "f", type = "list", help = "Files containing the resources to delete." },
  { name = "recursive", short = "R", type = "bool", help = "Process the directory used in -f recursively." },
  { name = "selector", short = "l", type = "string", help = "Selector (label query) to filter on." },
  { name = "field-selector", type = "string", help = "Selector (field query) to filter on." },
  { name = "all", type = "bool", help = "Delete all resources, in the namespace of the specified resource types." },
  { name = "all-namespaces", short = "A", type = "bool", help = "If present, list the requested object(s) across all namespaces." },
  { name = "cascade", type = "string", default = "background", no_opt_default = "background",
    help = "Must be \"background\", \"orphan\", or \"foreground\"." },
  { name = "grace-period", type = "int", default = -1, help = "Period of time in seconds given to the resource to terminate gracefully." },
  { name = "now", type = "bool", help = "If true, resources are signaled for immediate shutdown (same as --grace-period=1)." },
  { name = "force", type = "bool", help = "If true, immediately remove resources from API and bypass graceful deletion." },
  { name = "ignore-not-found", type = "bool", help = "Treat \"resource not found\" as a successful delete. Defaults to \"true\" when --all, -l or --field-selector is given." },
  { name = "wait", type = "bool", default = true, help = "If true, wait for resources to be gone before returning." },
  { name = "timeout", type = "string", default = "0s", help = "The length of time to wait before giving up on a delete." },
  { name = "dry-run", type = "string", default = "none", help = "Must be \"none\", \"server\", or \"client\"." },
  { name = "output", short = "o", type = "string", help = "Output mode. Use \"-o name\" for shorter output." },
}

local POLICIES = { background = "Background", foreground = "Foreground", orphan = "Orphan" }
-- kubectl still takes Go booleans (strconv.ParseBool) with a warning.
local LEGACY = { ["1"] = true, t = true, T = true, TRUE = true, ["true"] = true, True = true,
  ["0"] = false, f = false, F = false, FALSE = false, ["false"] = false, False = false }

-- --cascade as kubectl's parseCascadingFlag: the policy, warning on stderr
-- for the deprecated boolean forms.
local function cascade_policy(ctx, value)
  local b = LEGACY[value]
  if b ~= nil then
    local word = b and "background" or "orphan"
    ctx.err(string.format("warning: --cascade=%s is deprecated (boolean value) and can be replaced with --cascade=%s.\n",
      value, word))
    return POLICIES[word]
  end
  local policy = POLICIES[value]
  if not policy then
    common.fail(string.format('invalid cascade value (%s). Must be "background", "foreground", or "orphan"', value))
  end
  return policy
end

-- Waits until each deleted object answers 404 (or the timeout passes).
local function wait_gone(ctx, gone, timeout_ms)
  local loop = require("moonlet.loop")
  local c = common.client(ctx)
  local deadline = timeout_ms and (loop.now() + timeout_ms) or nil
  for _, g in ipairs(gone) do
    local delay = 50
    while true do
      local obj, st = c:get(g.r, g.ns, g.name)
      if not obj then
        if st.code == 404 and not st.transport then break end
        common.report(ctx, st)
        return
      end
      if g.uid and obj.metadata and obj.metadata.uid and obj.metadata.uid ~= g.uid then break end
      if deadline and loop.now() >= deadline then
        local res = g.r.group ~= "" and (g.r.name .. "." .. g.r.group) or g.r.name
        common.report(ctx, string.format("error: timed out waiting for the condition on %s/%s",
          res, g.name))
        return
      end
      loop.sleep(delay)
      delay = math.min(delay * 2, 1000)
    end
  end
end

function M.run(ctx, argv)
  local f = ctx.flags
  local policy = cascade_policy(ctx, f.cascade)
  local dry = common.dry_run(f["dry-run"])
  local grace = f["grace-period"]
  if f.now then
    if grace ~= -1 then common.fail("--now and --grace-period cannot be specified together") end
    grace = 1
  end
  if grace == 0 and not f.force then grace = 1 end
  if f.force and grace < 0 then grace = 0 end
  if f.force and grace == 0 then
    ctx.err("Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely.\n")
  end
  if f["all-namespaces"] then f.namespace = nil end

  -- collect what to delete: { r=, ns=, name= } (names may be pending lists)
  local todo = {}
  local by_list = false
  local ns = common.namespace(ctx)
  if #f.filename > 0 then
    if #argv > 0 then common.fail("Unexpected args: [" .. table.concat(argv, " ") .. "]") end
    local docs, rerr = manifest.read(ctx, f.filename, f.recursive)
    if not docs then common.fail(rerr) end
    local c = common.client(ctx)
    for _, doc in ipairs(docs) do
      if doc.err then
        common.report(ctx, doc.err)
      else
        local obj = doc.obj
        local r = c:kind(obj.apiVersion .. "/" .. obj.kind)
        if not r then
          common.report(ctx, string.format('error: resource mapping not found for name: "%s" namespace: "%s" from "%s": no matches for kind "%s" in version "%s"\nensure CRDs are installed first',
            tostring(obj.metadata and obj.metadata.name or ""), tostring(obj.metadata and obj.metadata.namespace or ""),
            doc.source, obj.kind, obj.apiVersion))
        else
          local m = obj.metadata or {}
          todo[#todo + 1] = { r = r, ns = r.namespaced and (m.namespace or ns) or nil, name = m.name }
        end
      end
    end
  else
    if #argv == 0 then
      common.fail("You must provide one or more resources by argument or filename.\n" ..
        "Example resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")
    end
    local get = require("moonlet.cli.get")
    local targets = get.targets(ctx, argv)
    local selecting = f.all or f.selector or f["field-selector"]
    -- As kubectl: what a list found may be gone by its turn (a Deployment's
    -- ReplicaSets after the Deployment), so NotFound is no error then
    -- unless --ignore-not-found=false was given.
    if selecting and not (ctx.set and ctx.set["ignore-not-found"]) then f["ignore-not-found"] = true end
    for _, t in ipairs(targets) do
      if #t.names > 0 then
        if selecting then
          common.fail("name cannot be provided when a selector is specified")
        end
        for _, n in ipairs(t.names) do
          todo[#todo + 1] = { r = t.r, ns = t.r.namespaced and ns or nil, name = n }
        end
      elseif selecting then
        by_list = true
        local c = common.client(ctx)
        local list, st = c:list(t.r, { namespace = (not f["all-namespaces"]) and ns or nil,
          label_selector = f.selector, field_selector = f["field-selector"] })
        if not list then
          common.report(ctx, st)
        else
          for _, obj in ipairs(list.items or {}) do
            todo[#todo + 1] = { r = t.r, ns = obj.metadata.namespace, name = obj.metadata.name }
          end
        end
      else
        common.fail("resource(s) were provided, but no name was specified")
      end
    end
  end

  if by_list and #todo == 0 and not ctx.failed then
    ctx.out("No resources found\n")
    return 0
  end

  local c = common.client(ctx)
  local gone = {}
  local word = (f.force and grace == 0) and "force deleted" or "deleted"
  if dry == "client" then word = word .. " (dry run)" elseif dry == "server" then word = word .. " (server dry run)" end
  for _, d in ipairs(todo) do
    local out, st
    if dry == "client" then
      out, st = c:get(d.r, d.ns, d.name)
    else
      out, st = c:delete(d.r, d.ns, d.name, { propagation_policy = policy,
        grace_period_seconds = grace >= 0 and grace or nil, dry_run = dry == "server" })
    end
    if out then
      if f.output == "name" then
        ctx.out(common.object_name(d.r, d.name) .. "\n")
      else
        ctx.out(string.format("%s %s\n", common.kind_word(d.r) .. ' "' .. d.name .. '"', word))
      end
      local uid = out.metadata and out.metadata.uid
      if dry == "none" then gone[#gone + 1] = { r = d.r, ns = d.ns, name = d.name, uid = uid } end
    elseif not (f["ignore-not-found"] and st.code == 404) then
      common.report(ctx, st)
    end
  end
  if f.wait and #gone > 0 then
    wait_gone(ctx, gone, common.parse_timeout(f.timeout))
  end
  return ctx.failed and 1 or 0
end

return M
