-- `moonlet top pod [NAME] [-n NS | -A] [-l SEL] [--containers] [--sort-by
-- cpu|memory] [--no-headers]` and `moonlet top node [NAME] [-l SEL]`: the
-- CPU and memory of pods and nodes from the metrics.k8s.io API, printed and
-- reported as kubectl top does (moonlet.printers.top).
local common = require("moonlet.cli.common")
local printer = require("moonlet.printers.top")

local M = {}

M.usage = [==[
Display resource (CPU/memory) usage of pods or nodes, from the metrics.k8s.io
API that the node agent serves. CPU is in millicores (1000m = one core),
memory is the working set in MiB. A container's first figure is its average
since it started, later ones the rate since the previous request (at least
a second apart).

Usage:
  moonlet top pod [NAME | -l label] [-n NS | -A] [--containers] [--sort-by cpu|memory] [flags]
  moonlet top node [NAME | -l label] [--sort-by cpu|memory] [flags]]==]

M.flags = {
  { name = "all-namespaces", short = "A", type = "bool",
    help = "If present, list the requested object(s) across all namespaces." },
  { name = "containers", type = "bool", help = "If present, print usage of containers within a pod." },
  { name = "selector", short = "l", type = "string", help = "Selector (label query) to filter on." },
  { name = "field-selector", type = "string", help = "Selector (field query) to filter on (pods)." },
  { name = "sort-by", type = "string",
    help = "If non-empty, sort the list using specified field. The field can be either 'cpu' or 'memory'." },
  { name = "no-headers", type = "bool", help = "If present, print output without headers." },
  { name = "show-capacity", type = "bool",
    help = "Print node resources based on Capacity instead of Allocatable(default) of the nodes." },
}

local POD_METRICS = "metrics.k8s.io/v1beta1/PodMetrics"
local NODE_METRICS = "metrics.k8s.io/v1beta1/NodeMetrics"

local RESOURCE = { pod = "pod", pods = "pod", po = "pod", node = "node", nodes = "node", no = "node" }

-- kubectl's check: the group must be served (else "Metrics API not available").
local function check_api(ctx, c)
  local list, st = c:discovery()
  if not list then common.fail_status(ctx, st) end
  for _, r in ipairs(list) do
    if r.group == "metrics.k8s.io" and r.version == "v1beta1" then return end
  end
  common.fail("Metrics API not available")
end

-- One object by name, or the list (ns nil: all namespaces).
local function items_of(ctx, c, kind, ns, name, f)
  if name then
    local obj, st = c:get(kind, ns, name)
    if not obj then common.fail_status(ctx, st) end
    return { obj }
  end
  local list, st = c:list(kind, { namespace = ns, label_selector = f.selector,
    field_selector = f["field-selector"] })
  if not list then common.fail_status(ctx, st) end
  return list.items or {}
end

-- kubectl's verifyEmptyMetrics: pods that exist but have no metrics yet.
local function no_pod_metrics(ctx, c, ns, f)
  local list, st = c:list("v1/Pod", { namespace = ns, label_selector = f.selector,
    field_selector = f["field-selector"] })
  if not list then common.fail_status(ctx, st) end
  if #(list.items or {}) > 0 then common.fail("metrics not available yet") end
  if ns then ctx.err(string.format("No resources found in %s namespace.\n", ns))
  else ctx.err("No resources found\n") end
end

local function top_pods(ctx, c, name, f)
  local ns = not f["all-namespaces"] and common.namespace(ctx) or nil
  local items = items_of(ctx, c, POD_METRICS, ns, name, f)
  if #items == 0 then return no_pod_metrics(ctx, c, ns, f) end
  ctx.out(printer.pods(items, { containers = f.containers, namespace = ns == nil,
    no_headers = f["no-headers"], sort_by = f["sort-by"] }))
end

local function top_nodes(ctx, c, name, f)
  local items = items_of(ctx, c, NODE_METRICS, nil, name, f)
  if #items == 0 then common.fail("metrics not available yet") end
  local nodes
  if name then
    local node, st = c:get("v1/Node", nil, name)
    if not node then common.fail_status(ctx, st) end
    nodes = { node }
  else
    local list, st = c:list("v1/Node", { label_selector = f.selector })
    if not list then common.fail_status(ctx, st) end
    nodes = list.items or {}
  end
  local available = {}
  for _, n in ipairs(nodes) do
    local s = n.status or {}
    available[n.metadata.name] = (f["show-capacity"] and s.capacity or s.allocatable) or {}
  end
  ctx.out(printer.nodes(items, available, { no_headers = f["no-headers"], sort_by = f["sort-by"] }))
end

function M.run(ctx, argv)
  local f = ctx.flags
  local what = RESOURCE[argv[1] or ""]
  if not what then
    common.fail(argv[1] and string.format('unknown command "%s" for "moonlet top"', argv[1])
      or "you must specify a resource: pod or node (see 'moonlet top --help')")
  end
  if #argv > 2 then common.fail("unexpected arguments: " .. table.concat(argv, " ", 3)) end
  local name = argv[2]
  if name and (f.selector or f["field-selector"]) then
    common.fail("only one of NAME or --selector can be provided")
  end
  local sort_by = f["sort-by"]
  if sort_by and sort_by ~= "" and sort_by ~= "cpu" and sort_by ~= "memory" then
    common.fail("--sort-by accepts only cpu or memory")
  end
  local c = common.client(ctx)
  check_api(ctx, c)
  if what == "pod" then top_pods(ctx, c, name, f) else top_nodes(ctx, c, name, f) end
  return 0
end

return M
