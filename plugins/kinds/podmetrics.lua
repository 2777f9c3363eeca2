-- metrics.k8s.io/v1beta1 PodMetrics: the CPU and memory of a pod's
-- containers, as metrics-server serves them (`kubectl top pod`). Read-only
-- and never stored: the node agent computes each answer
-- (moonlet.kubelet.metrics_api); other verbs answer 405.
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local metrics_api = require("moonlet.kubelet.metrics_api")

local Usage = S.map(S.quantity, "v1.ResourceList")

-- A column over the sum of the containers' usage of `res`.
local function total(res)
  return function(obj)
    local q = require("moonlet.api.quantity")
    local sum -- in the first container's format, as Quantity.Add keeps it
    for _, c in ipairs(obj.containers or {}) do
      local v = q.parse((c.usage or {})[res] or "0")
      if v then sum = sum and sum:add(v) or v end
    end
    return sum and sum:string() or "0"
  end
end

return {
  group = "metrics.k8s.io", version = "v1beta1", kind = "PodMetrics",
  plural = "pods", singular = "", namespaced = true, verbs = { "get", "list" },
  schema = S.kind("PodMetrics", {
    timestamp = S.time, window = S.string,
    containers = S.list(S.struct("v1beta1.ContainerMetrics", { name = S.string, usage = Usage })),
  }),
  verb_handlers = metrics_api.pods,
  columns = {
    columns.name(),
    { name = "CPU", type = "string", description = "CPU usage of the pod's containers",
      value = total("cpu") },
    { name = "Memory", type = "string", description = "Memory usage of the pod's containers",
      value = total("memory") },
    { name = "Window", type = "string", description = "Window over which the usage was measured",
      value = function(obj) return obj.window end },
  },
}
