-- `moonlet expose TYPE NAME --port P`: kubectl expose's Service generator
-- for the common case: the selector from the object (a workload's
-- spec.selector.matchLabels, a Service's spec.selector, a pod's labels),
-- one TCP port, --target-port (number or name; default the port),
-- --type ClusterIP|NodePort, --name (default the object's name).
local common = require("moonlet.cli.common")
local util = require("moonlet.cli.rollout_util")
local json = require("moonlet.json")

local M = {}

M.usage = "Usage:\n  moonlet expose (-f FILENAME | TYPE NAME) [--port=port] [--target-port=number-or-name] [--name=name] [--type=type]"

M.flags = {
  { name = "port", type = "string", default = "", help = "The port that the service should serve on." },
  { name = "target-port", type = "string", default = "", help = "Name or number for the port on the container that the service should direct traffic to." },
  { name = "type", type = "string", default = "", help = "Type for this service: ClusterIP or NodePort. Default is 'ClusterIP'." },
  { name = "name", type = "string", default = "", help = "The name for the newly created object." },
  { name = "filename", short = "f", type = "list", help = "Filename, directory, or URL to files identifying the resource to expose a service" },
  { name = "output", short = "o", type = "string", help = "Output format: name|json|yaml." },
}

local function is_table(v) return type(v) == "table" and v ~= json.null end

-- The selector the Service gets from the exposed object (kubectl's
-- MapBasedSelectorForObject); nil with a message when it has none usable.
local function selector_of(obj)
  local kind, spec = obj.kind, is_table(obj.spec) and obj.spec or {}
  if kind == "Pod" then return is_table(obj.metadata.labels) and obj.metadata.labels or nil end
  if kind == "Service" or kind == "ReplicationController" then return spec.selector end
  local sel = is_table(spec.selector) and spec.selector or {}
  if is_table(sel.matchExpressions) and #sel.matchExpressions > 0 then
    return nil, "couldn't convert expressions - \"" .. obj.metadata.name .. "\" to map-based selector format"
  end
  return sel.matchLabels
end

-- The first declared container port, when --port is not given.
local function first_port(obj)
  local spec = is_table(obj.spec) and obj.spec or {}
  local pod_spec = obj.kind == "Pod" and spec or (is_table(spec.template) and spec.template.spec or {})
  for _, c in ipairs(pod_spec.containers or {}) do
    for _, p in ipairs(c.ports or {}) do return p.containerPort end
  end
  return nil
end

function M.run(ctx, argv)
  local f = ctx.flags
  local objs = util.objects(ctx, argv, { filenames = f.filename })
  if #objs ~= 1 then
    if ctx.failed then return 1 end
    common.fail("exactly one object to expose is needed, got " .. #objs)
  end
  local o = objs[1]
  local obj = common.fill_kind(o.r, o.obj)
  local sel, serr = selector_of(obj)
  if serr then common.fail(serr) end
  if not is_table(sel) or next(sel) == nil then
    common.fail(string.format("the %s %q has no selector to expose", string.lower(obj.kind), obj.metadata.name))
  end
  local port = math.tointeger(tonumber(f.port)) or first_port(obj)
  if not port then
    common.fail("couldn't find port via --port flag or introspection\nSee 'moonlet expose -h' for help and examples")
  end
  local target = f["target-port"] ~= "" and (math.tointeger(tonumber(f["target-port"])) or f["target-port"]) or port
  local svc = {
    apiVersion = "v1", kind = "Service",
    metadata = { name = f.name ~= "" and f.name or obj.metadata.name, namespace = obj.metadata.namespace,
      labels = is_table(obj.metadata.labels) and obj.metadata.labels or nil },
    spec = { selector = sel, ports = { { port = port, protocol = "TCP", targetPort = target } },
      type = f.type ~= "" and f.type or nil },
  }
  local created, st = common.client(ctx):create("v1/Service", svc)
  if not created then
    if type(st) == "table" then common.fail_status(ctx, st) end
    common.fail(tostring(st))
  end
  local fmt = f.output
  if fmt == "json" then ctx.out(common.to_json(created))
  elseif fmt == "yaml" then ctx.out(common.to_yaml(created))
  elseif fmt == "name" then ctx.out("service/" .. created.metadata.name .. "\n")
  else ctx.out("service/" .. created.metadata.name .. " exposed\n") end
  return 0
end

return M
