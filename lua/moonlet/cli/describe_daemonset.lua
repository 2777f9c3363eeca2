-- `describe ds`, laid out as kubectl 1.32's DaemonSetDescriber: selector,
-- node selector, labels, annotations, the scheduling counts from status,
-- the phases of the pods it controls, the pod template and its events.
local describe = require("moonlet.cli.describe")
local selector = require("moonlet.selector")
local describe_pod = require("moonlet.cli.describe_pod")
local describe_rs = require("moonlet.cli.describe_replicaset")

local M = {}

local values = require("moonlet.cli.describe_values")
local is_table, list, str = values.is_table, values.list, values.str

--- The describe text for `ds` given the pods in its namespace matching its
--- selector and its events (nil leaves the Events section out).
function M.render(ds, pods, events, now)
  local w = describe.writer()
  local meta, spec, status = list(ds.metadata), list(ds.spec), list(ds.status)
  local sel = selector.from_table(spec.selector)
  local tspec = list(list(spec.template).spec)
  -- kubectl 1.32's DaemonSet describer prints no Namespace line
  w.write(0, "Name:\t" .. str(meta.name) .. "\n")
  w.write(0, "Selector:\t" .. (sel and sel:string() or "") .. "\n")
  local node_sel = is_table(tspec.nodeSelector) and tspec.nodeSelector or nil
  w.write(0, "Node-Selector:\t" .. selector.format_labels(node_sel) .. "\n")
  describe.labels(w, "Labels", meta.labels)
  describe.annotations(w, "Annotations", meta.annotations)
  w.write(0, string.format("Desired Number of Nodes Scheduled: %d\n", status.desiredNumberScheduled or 0))
  w.write(0, string.format("Current Number of Nodes Scheduled: %d\n", status.currentNumberScheduled or 0))
  w.write(0, string.format("Number of Nodes Scheduled with Up-to-date Pods: %d\n",
    status.updatedNumberScheduled or 0))
  w.write(0, string.format("Number of Nodes Scheduled with Available Pods: %d\n", status.numberAvailable or 0))
  w.write(0, string.format("Number of Nodes Misscheduled: %d\n", status.numberMisscheduled or 0))
  w.write(0, string.format("Pods Status:\t%d Running / %d Waiting / %d Succeeded / %d Failed\n",
    describe_rs.pod_status(ds, pods)))
  describe_pod.pod_template(w, spec.template)
  if events then describe.events(w, events, now) end
  return w.text()
end

--- The describer entry (describe.lua's registry).
function M.describe(ctx, r, ds, now)
  local pods = describe_rs.selected_pods(ctx, ds)
  local events
  if ctx.flags["show-events"] then events = describe.search_events(ctx, r, ds) end
  return M.render(ds, pods, events, now)
end

return M
