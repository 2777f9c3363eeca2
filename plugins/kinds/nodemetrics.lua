-- metrics.k8s.io/v1beta1 NodeMetrics: the host's CPU and memory, as
-- metrics-server serves them (`kubectl top node`). Read-only and never
-- stored: the node agent computes each answer from /proc
-- (moonlet.kubelet.metrics_api); other verbs answer 405.
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local metrics_api = require("moonlet.kubelet.metrics_api")

return {
  group = "metrics.k8s.io", version = "v1beta1", kind = "NodeMetrics",
  plural = "nodes", singular = "", namespaced = false, verbs = { "get", "list" },
  schema = S.kind("NodeMetrics", {
    timestamp = S.time, window = S.string, usage = S.map(S.quantity, "v1.ResourceList"),
  }),
  verb_handlers = metrics_api.nodes,
  columns = {
    columns.name(),
    { name = "CPU", type = "string", description = "CPU usage of the node",
      value = function(obj) return (obj.usage or {}).cpu end },
    { name = "Memory", type = "string", description = "Memory usage of the node",
      value = function(obj) return (obj.usage or {}).memory end },
    { name = "Window", type = "string", description = "Window over which the usage was measured",
      value = function(obj) return obj.window end },
  },
}
