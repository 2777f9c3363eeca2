-- `moonlet scale`: kubectl 1.32's scale through the scale subresource — a
-- merge PATCH of .../scale, or with --current-replicas/--resource-version a
-- GET of the Scale, the precondition check and a PUT — then optionally waits
-- (--timeout) for status.replicas to reach the new size.
local common = require("moonlet.cli.common")
local util = require("moonlet.cli.rollout_util")
local client = require("moonlet.client")

local M = {}

M.usage = "Usage:\n  moonlet scale [--resource-version=version] [--current-replicas=count] --replicas=COUNT (-f FILENAME | TYPE NAME)"

M.flags = {
  { name = "replicas", type = "int", default = 0, help = "The new desired number of replicas. Required." },
  { name = "current-replicas", type = "int", default = -1, help = "Precondition for current size. Requires that the current size of the resource match this value in order to scale. -1 (default) for no condition." },
  { name = "resource-version", type = "string", default = "", help = "Precondition for resource version. Requires that the current resource version match this value in order to scale." },
  { name = "all", type = "bool", help = "Select all resources in the namespace of the specified resource types" },
  { name = "selector", short = "l", type = "string", help = "Selector (label query) to filter on." },
  { name = "filename", short = "f", type = "list", help = "Filename, directory, or URL to files identifying the resource to set a new size" },
  { name = "recursive", short = "R", type = "bool", help = "Process the directory used in -f, --filename recursively." },
  { name = "timeout", type = "string", default = "0s", help = "The length of time to wait before giving up on a scale operation, zero means don't wait." },
  { name = "dry-run", type = "string", default = "none", help = "Must be \"none\", \"server\", or \"client\"." },
  { name = "output", short = "o", type = "string", help = "Output format: name|json|yaml." },
}

local function scale_path(o)
  local m = o.obj.metadata
  return client.path(o.r, o.r.namespaced and m.namespace or nil, m.name, "scale")
end

-- ScaleSimple: one attempt. @return Scale or nil, Status | message
local function scale_once(ctx, o, replicas, pre, dry)
  local c = common.client(ctx)
  local q = dry and "?dryRun=All" or ""
  if pre then
    local sc, st = c:_call("GET", scale_path(o))
    if not sc then return nil, st end
    local cur = math.tointeger(util.list(sc.spec).replicas) or 0
    if pre.size ~= -1 and cur ~= pre.size then
      return nil, string.format("Expected replicas to be %d, was %d", pre.size, cur)
    end
    local rv = util.list(sc.metadata).resourceVersion
    if pre.rv ~= "" and rv ~= pre.rv then
      return nil, string.format("Expected resource version to be %s, was %s", pre.rv, tostring(rv))
    end
    sc.spec = sc.spec or {}
    sc.spec.replicas = replicas
    return c:_call("PUT", scale_path(o) .. q, sc)
  end
  return c:_call("PATCH", scale_path(o) .. q, { spec = { replicas = replicas } },
    { ["Content-Type"] = "application/merge-patch+json" })
end

-- Scale with kubectl's retry on conflicts (1 s apart, 5 min at most).
local function scale(ctx, o, replicas, pre, dry)
  local loop = require("moonlet.loop")
  local deadline = loop.now() + 300000
  while true do
    local sc, err = scale_once(ctx, o, replicas, pre, dry)
    if sc then return sc end
    if type(err) ~= "table" or err.code ~= 409 or loop.now() >= deadline then return nil, err end
    loop.sleep(1000)
  end
end

-- WaitForScaleHasDesiredReplicas: poll every second until the Scale's
-- status catches up, someone else changes spec, or the time is up.
local function wait_for_replicas(ctx, o, replicas, timeout_ms)
  local loop = require("moonlet.loop")
  local c = common.client(ctx)
  local deadline = loop.now() + timeout_ms
  while true do
    local sc, st = c:_call("GET", scale_path(o))
    if not sc then return nil, st end
    local want = util.list(sc.spec).replicas
    if want ~= replicas then return true end
    if want == util.list(sc.status).replicas then return true end
    if loop.now() >= deadline then
      return nil, string.format("timed out waiting for %q to be synced", o.obj.metadata.name)
    end
    loop.sleep(1000)
  end
end

local function fail_err(ctx, err)
  if type(err) == "table" then common.fail_status(ctx, err) end
  common.fail(err)
end

function M.run(ctx, argv)
  local f = ctx.flags
  if not ctx.set.replicas then common.fail('required flag(s) "replicas" not set') end
  if f.replicas < 0 then
    common.fail("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
  end
  if f["current-replicas"] < -1 then
    common.fail("The --current-replicas must specify an integer of -1 or greater")
  end
  local dry = common.dry_run(f["dry-run"])
  local timeout_ms, terr = util.duration_flag("timeout", f.timeout)
  if not timeout_ms then common.fail(terr) end
  if #argv == 0 and #f.filename == 0 then
    common.fail("You must provide one or more resources by argument or filename.\n" ..
      "Example resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")
  end
  local objs = util.objects(ctx, argv, { selector = f.selector, all = f.all, filenames = f.filename,
    recursive = f.recursive })
  if f["resource-version"] ~= "" and #objs > 1 then
    common.fail("cannot use --resource-version with multiple resources")
  end
  if #objs == 0 then
    if ctx.failed then return 1 end
    common.fail("no objects passed to scale")
  end
  local pre
  if f["current-replicas"] ~= -1 or f["resource-version"] ~= "" then
    pre = { size = f["current-replicas"], rv = f["resource-version"] }
  end
  local suffix = dry == "client" and " (dry run)" or dry == "server" and " (server dry run)" or ""
  for _, o in ipairs(objs) do
    local shown = o.obj
    if dry ~= "client" then
      local sc, err = scale(ctx, o, f.replicas, pre, dry == "server")
      if not sc then fail_err(ctx, err) end
      if timeout_ms > 0 and dry == "none" then
        local ok, werr = wait_for_replicas(ctx, o, f.replicas, timeout_ms)
        if not ok then fail_err(ctx, werr) end
      end
    end
    -- updateReplicas: built-in kinds print the new size in spec.replicas
    if (o.r.group == "apps" or o.r.group == "") and type(shown.spec) == "table" then
      shown.spec.replicas = f.replicas
    end
    local fmt = f.output
    if fmt == "name" then
      ctx.out(common.object_name(o.r, shown.metadata.name) .. "\n")
    elseif fmt == "json" then
      ctx.out(common.to_json(common.fill_kind(o.r, shown)))
    elseif fmt == "yaml" then
      ctx.out(common.to_yaml(common.fill_kind(o.r, shown)))
    else
      ctx.out(common.object_name(o.r, shown.metadata.name) .. " scaled" .. suffix .. "\n")
    end
  end
  return ctx.failed and 1 or 0
end

return M
