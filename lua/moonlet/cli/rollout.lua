-- `moonlet rollout status|history|undo|pause|resume|restart`, as kubectl
-- 1.32 runs them against Deployments: status watches the object and prints
-- the status viewer's line for every change, history and undo work from the
-- ReplicaSets' revision annotations (undo copies a template back with a JSON
-- patch, client side), pause/resume/restart patch the Deployment.
local common = require("moonlet.cli.common")
local util = require("moonlet.cli.rollout_util")
local json = require("moonlet.json")

local M = {}

local SUBCOMMANDS = {
  status = "Show the status of the rollout",
  history = "View rollout history",
  undo = "Undo a previous rollout",
  pause = "Mark the provided resource as paused",
  resume = "Resume a paused resource",
  restart = "Restart a resource",
}
local ORDER = { "history", "pause", "restart", "resume", "status", "undo" }

M.usage = function()
  local lines = { "Manage the rollout of one or many resources.", "",
    "Valid resource types include:", "", "  *  deployments", "  *  daemonsets", "",
    "Available Commands:" }
  for _, k in ipairs(ORDER) do lines[#lines + 1] = string.format("  %-9s %s", k, SUBCOMMANDS[k]) end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Usage:\n  moonlet rollout SUBCOMMAND (TYPE NAME | TYPE/NAME) [flags]"
  return table.concat(lines, "\n")
end

M.flags = {
  { name = "filename", short = "f", type = "list", help = "Filename, directory, or URL to files identifying the resource." },
  { name = "recursive", short = "R", type = "bool", help = "Process the directory used in -f, --filename recursively." },
  { name = "selector", short = "l", type = "string", help = "Selector (label query) to filter on." },
  { name = "watch", short = "w", type = "bool", default = true, help = "status: watch the status of the rollout until it's done." },
  { name = "revision", type = "int", default = 0, help = "status: pin to a revision; history: see the details of the revision." },
  { name = "timeout", type = "string", default = "0s", help = "status: the length of time to wait before ending watch, zero means never." },
  { name = "to-revision", type = "int", default = 0, help = "undo: the revision to rollback to. Default to 0 (last revision)." },
  { name = "dry-run", type = "string", default = "none", help = "undo: must be \"none\", \"server\", or \"client\"." },
  { name = "output", short = "o", type = "string", help = "Output format: name|json|yaml." },
  { name = "field-manager", type = "string", default = "kubectl-rollout", help = "Name of the manager used to track field ownership." },
}

-- The flags each subcommand takes (kubectl rejects the others).
local ALLOWED = {
  status = { filename = true, recursive = true, selector = true, watch = true, revision = true, timeout = true },
  history = { filename = true, recursive = true, revision = true, output = true },
  undo = { filename = true, recursive = true, selector = true, ["to-revision"] = true, ["dry-run"] = true, output = true },
  pause = { filename = true, recursive = true, output = true, ["field-manager"] = true },
  resume = { filename = true, recursive = true, output = true, ["field-manager"] = true },
  restart = { filename = true, recursive = true, selector = true, output = true, ["field-manager"] = true },
}

local list = util.list

local function name_of(o) return common.object_name(o.r, o.obj.metadata.name) end

-- The NamePrinter with an operation: `deployment.apps/kubia paused`.
local function print_op(ctx, o, operation, obj)
  local fmt = ctx.flags.output
  if fmt == "name" then
    ctx.out(name_of(o) .. "\n")
  elseif fmt == "json" then
    ctx.out(common.to_json(common.fill_kind(o.r, obj or o.obj)))
  elseif fmt == "yaml" then
    ctx.out(common.to_yaml(common.fill_kind(o.r, obj or o.obj)))
  else
    ctx.out(name_of(o) .. (operation ~= "" and (" " .. operation) or "") .. "\n")
  end
end

local function objects(ctx, argv, with_selector)
  local f = ctx.flags
  if #argv == 0 and #f.filename == 0 then common.fail("required resource not specified") end
  return util.objects(ctx, argv, { selector = with_selector and f.selector or nil,
    filenames = f.filename, recursive = f.recursive })
end

-- {====== status

local function run_status(ctx, argv)
  local f = ctx.flags
  if f.revision < 0 then common.fail("revision must be a positive integer: " .. f.revision) end
  local objs = objects(ctx, argv, true)
  if ctx.failed then return 1 end
  if #objs ~= 1 then
    common.fail(string.format("rollout status is only supported on individual resources and resource collections - %d resources were found", #objs))
  end
  local o = objs[1]
  local viewer, verr = util.status_viewer(o.r)
  if not viewer then common.fail(verr) end
  local timeout_ms, terr = util.duration_flag("timeout", f.timeout)
  if not timeout_ms then common.fail(terr) end
  local loop = require("moonlet.loop")
  local deadline = timeout_ms > 0 and (loop.now() + timeout_ms) or nil
  local c = common.client(ctx)
  local name, ns = o.obj.metadata.name, o.obj.metadata.namespace

  -- true when watching should stop (done, or --watch=false)
  local function check(obj)
    local msg, done, err = viewer(obj, f.revision)
    if err then common.fail(err) end
    ctx.out(msg)
    return done or not f.watch
  end

  if check(o.obj) then return 0 end
  local rv = o.obj.metadata.resourceVersion
  while true do
    local secs
    if deadline then
      local left = deadline - loop.now()
      if left <= 0 then common.fail("timed out waiting for the condition") end
      secs = math.max(1, math.ceil(left / 1000))
    end
    local stream, st = c:watch(o.r, { namespace = ns, name = name, resource_version = rv, timeout_seconds = secs })
    local relist = false
    if not stream then
      if st and st.code == 410 and not st.transport then relist = true else common.fail_status(ctx, st) end
    else
      while true do
        local ev = stream:next()
        if not ev then break end
        local obj = ev.object
        if ev.type == "ADDED" or ev.type == "MODIFIED" then
          rv = list(list(obj).metadata).resourceVersion or rv
          if check(obj) then
            stream:close()
            return 0
          end
        elseif ev.type == "DELETED" then
          stream:close()
          common.fail("object has been deleted")
        elseif ev.type == "BOOKMARK" then
          rv = list(list(obj).metadata).resourceVersion or rv
        elseif ev.type == "ERROR" then
          stream:close()
          if list(obj).code == 410 then relist = true; break end
          common.fail_status(ctx, obj)
        end
      end
      stream:close()
    end
    if relist then
      -- the watch window moved on: start again from the current object
      local obj, gst = c:get(o.r, ns, name)
      if not obj then common.fail_status(ctx, gst) end
      rv = obj.metadata.resourceVersion
      if check(obj) then return 0 end
    end
  end
end

-- }======

-- {====== history

local function template_text(template)
  local w = require("moonlet.cli.describe").writer()
  require("moonlet.cli.describe_pod").pod_template(w, template)
  -- kubectl writes the template through a bare PrefixWriter: no tabwriter
  return table.concat(w.parts)
end
M.template_text = template_text

--- The revision -> { template, cause, obj } map of a Deployment
--- (DeploymentHistoryViewer: its ReplicaSets) and the sorted revisions.
local function deployment_history(ctx, d)
  local new_rs, _, all_old, st = util.replica_sets(ctx, d)
  if not all_old then
    common.fail(string.format("failed to retrieve replica sets from deployment %s: %s", d.metadata.name,
      tostring(st and st.message)))
  end
  local all = {}
  for _, rs in ipairs(all_old) do all[#all + 1] = rs end
  if new_rs then all[#all + 1] = new_rs end
  local info, revs = {}, {}
  for _, rs in ipairs(all) do
    local v = util.revision(rs)
    if v then
      local t = json.copy(util.is_table(rs.spec.template) and rs.spec.template or {})
      t.metadata = util.is_table(t.metadata) and t.metadata or {}
      local cause = list(rs.metadata.annotations)[util.CHANGE_CAUSE]
      if cause ~= nil and cause ~= json.null and cause ~= "" then
        t.metadata.annotations = util.is_table(t.metadata.annotations) and t.metadata.annotations or {}
        t.metadata.annotations[util.CHANGE_CAUSE] = cause
      end
      if info[v] == nil then revs[#revs + 1] = v end
      info[v] = { template = t, cause = cause, obj = rs, kind = "apps/v1/ReplicaSet" }
    end
  end
  table.sort(revs)
  return info, revs
end

--- The ControllerRevisions a DaemonSet controls (daemonSetHistory).
local function controller_revisions(ctx, ds)
  local c = common.client(ctx)
  local sel = require("moonlet.selector").from_table(list(ds.spec).selector)
  local res, st = c:list("apps/v1/ControllerRevision", { namespace = ds.metadata.namespace,
    label_selector = sel and sel:string() ~= "" and sel:string() or nil })
  if not res then
    common.fail(string.format("unable to find history controlled by DaemonSet %s: %s", ds.metadata.name,
      tostring(st and st.message)))
  end
  local out = {}
  for _, cr in ipairs(res.items or {}) do
    for _, ref in ipairs(list(list(cr.metadata).ownerReferences)) do
      if ref.controller == true and ref.uid == ds.metadata.uid then out[#out + 1] = cr end
    end
  end
  return out
end

-- The template a revision's data restores (its spec.template patch with
-- the replace directive: the template itself).
local function revision_template(cr)
  local t = json.copy(list(list(list(cr.data).spec).template))
  t["$patch"] = nil
  return t
end

--- The same map for a DaemonSet (DaemonSetHistoryViewer: ControllerRevisions).
local function daemonset_history(ctx, ds)
  local info, revs = {}, {}
  for _, cr in ipairs(controller_revisions(ctx, ds)) do
    local v = math.tointeger(cr.revision) or 0
    if info[v] == nil then revs[#revs + 1] = v end
    info[v] = { template = revision_template(cr), cause = list(cr.metadata.annotations)[util.CHANGE_CAUSE],
      obj = cr, kind = "apps/v1/ControllerRevision" }
  end
  table.sort(revs)
  return info, revs
end

local HISTORY = { ["apps/Deployment"] = deployment_history, ["apps/DaemonSet"] = daemonset_history }

--- The text `rollout history` prints after the object name (without
--- --revision): kubectl's tabbed REVISION / CHANGE-CAUSE table.
function M.history_table(info, revs)
  if #revs == 0 then return "No rollout history found." end
  local lines = { "REVISION\tCHANGE-CAUSE\n" }
  for _, r in ipairs(revs) do
    local cause = info[r].cause
    if cause == nil or cause == json.null or cause == "" then cause = "<none>" end
    lines[#lines + 1] = string.format("%d\t%s\n", r, tostring(cause))
  end
  return require("moonlet.printers.tabwriter").format(table.concat(lines),
    { minwidth = 0, tabwidth = 8, padding = 2 })
end

local function run_history(ctx, argv)
  local f = ctx.flags
  if f.revision < 0 then common.fail("revision must be a positive integer: " .. f.revision) end
  local objs = objects(ctx, argv, false)
  for _, o in ipairs(objs) do
    local viewer = HISTORY[o.r.group .. "/" .. o.r.kind]
    if not viewer then
      common.fail(string.format("no history viewer has been implemented for %q", util.group_kind(o.r)))
    end
    local info, revs = viewer(ctx, o.obj)
    local fmt = f.output
    if fmt == "json" or fmt == "yaml" or fmt == "name" then
      -- the objects that hold the history (ReplicaSets, ControllerRevisions)
      local picked = {}
      if f.revision > 0 then
        if not info[f.revision] then common.fail("unable to find the specified revision") end
        picked[1] = info[f.revision]
      else
        for _, r in ipairs(revs) do picked[#picked + 1] = info[r] end
      end
      for _, h in ipairs(picked) do
        local hr = common.client(ctx):kind(h.kind)
        common.fill_kind(hr, h.obj)
        if fmt == "name" then ctx.out(common.object_name(hr, h.obj.metadata.name) .. "\n")
        elseif fmt == "json" then ctx.out(common.to_json(h.obj))
        else ctx.out(common.to_yaml(h.obj)) end
      end
    elseif fmt ~= nil and fmt ~= "" then
      common.fail(string.format('unable to match a printer suitable for the output format "%s", allowed formats are: json,name,yaml', fmt))
    else
      local text
      if f.revision > 0 then
        if #revs > 0 and not info[f.revision] then common.fail("unable to find the specified revision") end
        text = #revs == 0 and "No rollout history found." or template_text(info[f.revision].template)
      else
        text = M.history_table(info, revs)
      end
      local with = f.revision > 0 and string.format("with revision #%d", f.revision) or ""
      print_op(ctx, o, with .. "\n" .. text)
    end
  end
  return ctx.failed and 1 or 0
end

-- }======

-- {====== undo (polymorphichelpers/rollback.go DeploymentRollbacker)

-- Annotations kept from the Deployment instead of copied from the RS.
local SKIP = {
  ["kubectl.kubernetes.io/last-applied-configuration"] = true,
  [util.REVISION] = true,
  ["deployment.kubernetes.io/revision-history"] = true,
  ["deployment.kubernetes.io/desired-replicas"] = true,
  ["deployment.kubernetes.io/max-replicas"] = true,
  ["deprecated.deployment.rollback.to"] = true,
}

--- deploymentRevision: the ReplicaSet to roll back to (`to` = 0: the
--- second highest revision). @return rs or nil, message
function M.rollback_target(d, all, to)
  local latest, latest_rev, prev, prev_rev = nil, -1, nil, -1
  for _, rs in ipairs(all) do
    local v = util.revision(rs)
    if v then
      if to == 0 then
        if latest_rev < v then
          prev, prev_rev = latest, latest_rev
          latest, latest_rev = rs, v
        elseif prev_rev < v then
          prev, prev_rev = rs, v
        end
      elseif to == v then
        return rs
      end
    end
  end
  if to > 0 then return nil, string.format("unable to find specified revision %d in history", to) end
  if not prev then return nil, string.format("no rollout history found for deployment %q", d.metadata.name) end
  return prev
end

--- The JSON patch undo sends: the template (hash label removed) and the
--- annotations (the Deployment's bookkeeping ones kept, the rest from the RS).
function M.rollback_patch(d, rs)
  local tmpl = json.copy(util.is_table(rs.spec.template) and rs.spec.template or {})
  if util.is_table(tmpl.metadata) and util.is_table(tmpl.metadata.labels) then
    tmpl.metadata.labels[util.HASH_LABEL] = nil
  end
  local ann = json.object({})
  for k, v in pairs(list(d.metadata.annotations)) do if SKIP[k] then ann[k] = v end end
  for k, v in pairs(list(rs.metadata.annotations)) do if not SKIP[k] then ann[k] = v end end
  return json.array({
    { op = "replace", path = "/spec/template", value = tmpl },
    { op = "replace", path = "/metadata/annotations", value = ann },
  })
end

--- DaemonSetRollbacker: the ControllerRevision `to` (0: the one before the
--- newest) patched back with its own strategic patch. @return the result
--- word kubectl prints after the name
function M.undo_daemonset(ctx, o, to, dry)
  local c = common.client(ctx)
  local ds, st = c:get(o.r, o.obj.metadata.namespace, o.obj.metadata.name)
  if not ds then
    common.fail(string.format("failed to retrieve DaemonSet %s: %s", o.obj.metadata.name,
      (common.status_message(st, ctx.server):gsub("^Error from server %(%a+%): ", ""))))
  end
  local history = controller_revisions(ctx, ds)
  if to == 0 and #history <= 1 then common.fail("no last revision to roll back to") end
  local target
  if to == 0 then
    table.sort(history, function(a, b) return (a.revision or 0) < (b.revision or 0) end)
    target = history[#history - 1]
  else
    for _, cr in ipairs(history) do if cr.revision == to then target = cr end end
  end
  if not target then common.fail(string.format("unable to find specified revision %d in history", to)) end
  local tmpl = revision_template(target)
  if dry == "client" then return "will roll back to " .. template_text(tmpl) end
  if util.equal(list(ds.spec).template, tmpl) then
    return string.format("skipped rollback (current template already matches revision %d)", to)
  end
  local _, pst = c:patch(o.r, ds.metadata.namespace, ds.metadata.name, "strategic", target.data,
    { dry_run = dry == "server" })
  if pst then
    common.fail(string.format("failed restoring revision %d: %s", to,
      (common.status_message(pst, ctx.server):gsub("^Error from server %(%a+%): ", ""))))
  end
  return "rolled back"
end

local function dry_run_mode(ctx)
  local dr = ctx.flags["dry-run"]
  if dr == "" then return nil end
  local mode = common.dry_run(dr)
  return mode ~= "none" and mode or nil
end

local function run_undo(ctx, argv)
  local f = ctx.flags
  local dry = dry_run_mode(ctx)
  local objs = objects(ctx, argv, true)
  local c = common.client(ctx)
  for _, o in ipairs(objs) do
    local is_ds = o.r.group == "apps" and o.r.kind == "DaemonSet"
    if not (o.r.group == "apps" and o.r.kind == "Deployment") and not is_ds then
      common.fail(string.format("no rollbacker has been implemented for %q", util.group_kind(o.r)))
    end
    local to = f["to-revision"]
    if to < 0 then common.fail(string.format("unable to find specified revision %d in history", to)) end
    if is_ds then
      local result = M.undo_daemonset(ctx, o, to, dry)
      if dry == "client" then result = result .. " (dry run)"
      elseif dry == "server" then result = result .. " (server dry run)" end
      print_op(ctx, o, result)
      goto continue
    end
    local d, st = c:get(o.r, o.obj.metadata.namespace, o.obj.metadata.name)
    if not d then
      common.fail(string.format("failed to retrieve Deployment %s: %s", o.obj.metadata.name,
        common.status_message(st, ctx.server):gsub("^Error from server %(%a+%): ", "")))
    end
    local new_rs, _, all_old, lst = util.replica_sets(ctx, d)
    if not all_old then
      common.fail(string.format("failed to retrieve replica sets from deployment %s: %s", d.metadata.name,
        tostring(lst and lst.message)))
    end
    local all = {}
    for _, rs in ipairs(all_old) do all[#all + 1] = rs end
    if new_rs then all[#all + 1] = new_rs end
    local rs, err = M.rollback_target(d, all, to)
    if not rs then common.fail(err) end
    local result
    if dry == "client" then
      result = template_text(rs.spec.template)
    elseif list(d.spec).paused == true then
      common.fail("you cannot rollback a paused deployment; resume it first with 'moonlet rollout resume' and try again")
    elseif util.equal_ignore_hash(rs.spec.template, d.spec.template) then
      result = string.format("skipped rollback (current template already matches revision %d)", to)
    else
      local _, pst = c:patch(o.r, d.metadata.namespace, d.metadata.name, "json", M.rollback_patch(d, rs),
        { dry_run = dry == "server" })
      if pst then
        common.fail(string.format("failed restoring revision %d: %s", to,
          (common.status_message(pst, ctx.server):gsub("^Error from server %(%a+%): ", ""))))
      end
      result = "rolled back"
    end
    if dry == "client" then result = result .. " (dry run)"
    elseif dry == "server" then result = result .. " (server dry run)" end
    print_op(ctx, o, result)
    ::continue::
  end
  return ctx.failed and 1 or 0
end

-- }======

-- {====== pause / resume / restart (objectpauser.go, objectresumer.go, objectrestarter.go)

-- Each returns the merge patch for the object, or nil, the reason.
local function pauser(o)
  if not (o.r.group == "apps" and o.r.kind == "Deployment") then return nil, "pausing is not supported" end
  if list(o.obj.spec).paused == true then return nil, "is already paused" end
  return { spec = { paused = true } }
end

local function resumer(o)
  if not (o.r.group == "apps" and o.r.kind == "Deployment") then return nil, "resuming is not supported" end
  if list(o.obj.spec).paused ~= true then return nil, "is not paused" end
  return { spec = { paused = json.null } }
end

local function restarter(o, now)
  local g, k = o.r.group, o.r.kind
  if not (g == "apps" and (k == "Deployment" or k == "DaemonSet" or k == "StatefulSet")) then
    return nil, "restarting is not supported"
  end
  if k == "Deployment" and list(o.obj.spec).paused == true then
    return nil, "can't restart paused deployment (run rollout resume first)"
  end
  return { spec = { template = { metadata = { annotations = { [util.RESTARTED_AT] = util.rfc3339_now(now) } } } } }
end

local function run_patcher(ctx, argv, patcher, done_word)
  local f = ctx.flags
  local objs = objects(ctx, argv, ctx.sub == "restart")
  local c = common.client(ctx)
  local errs = {}
  for _, o in ipairs(objs) do
    local p, why = patcher(o, ctx.now)
    if not p then
      local res = o.r.group ~= "" and (o.r.name .. "." .. o.r.group) or o.r.name
      errs[#errs + 1] = string.format("error: %s %q %s", res, o.obj.metadata.name, why)
    else
      local out, st = c:patch(o.r, o.obj.metadata.namespace, o.obj.metadata.name, "merge", p,
        { field_manager = f["field-manager"] })
      if not out then
        errs[#errs + 1] = "failed to patch: " .. common.status_message(st, ctx.server)
      else
        print_op(ctx, o, done_word, out)
      end
    end
  end
  util.report_errors(ctx, errs)
  return ctx.failed and 1 or 0
end

-- }======

local RUN = {
  status = run_status,
  history = run_history,
  undo = run_undo,
  pause = function(ctx, argv) return run_patcher(ctx, argv, pauser, "paused") end,
  resume = function(ctx, argv) return run_patcher(ctx, argv, resumer, "resumed") end,
  restart = function(ctx, argv) return run_patcher(ctx, argv, restarter, "restarted") end,
}

function M.run(ctx, argv)
  local sub = argv[1]
  if sub == nil then
    ctx.out(M.usage() .. "\n")
    return 0
  end
  local fn = RUN[sub]
  if not fn then
    common.fail(string.format('unknown command "%s" for "moonlet rollout"', sub))
  end
  ctx.sub = sub
  for name in pairs(ctx.set or {}) do
    local global = false
    for _, s in ipairs(common.GLOBAL_FLAGS) do if s.name == name then global = true end end
    if not global and not ALLOWED[sub][name] then
      common.fail(string.format("unknown flag: --%s\nSee 'moonlet rollout %s --help' for usage.", name, sub))
    end
  end
  local rest = {}
  for i = 2, #argv do rest[#rest + 1] = argv[i] end
  return fn(ctx, rest)
end

return M
