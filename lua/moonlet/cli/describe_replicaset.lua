-- `describe rs`, laid out as kubectl 1.32's ReplicaSetDescriber: selector,
-- labels, annotations, current/desired replicas, the phases of the pods it
-- controls, the pod template, the ReplicaFailure-style conditions and the
-- events about it.
local describe = require("moonlet.cli.describe")
local common = require("moonlet.cli.common")
local selector = require("moonlet.selector")
local describe_pod = require("moonlet.cli.describe_pod")

local M = {}

local values = require("moonlet.cli.describe_values")
local is_table, list, str = values.is_table, values.list, values.str

--- Phase counts of the pods `rs` controls among `pods` (getPodStatusForController).
--- @return running, waiting, succeeded, failed
function M.pod_status(rs, pods)
  local running, waiting, succeeded, failed = 0, 0, 0, 0
  local uid = list(rs.metadata).uid
  for _, p in ipairs(pods or {}) do
    local owned = false
    for _, ref in ipairs(list(list(p.metadata).ownerReferences)) do
      if ref.controller == true and ref.uid == uid then owned = true end
    end
    if owned then
      local ph = list(p.status).phase
      if ph == "Running" then running = running + 1
      elseif ph == "Pending" then waiting = waiting + 1
      elseif ph == "Succeeded" then succeeded = succeeded + 1
      elseif ph == "Failed" then failed = failed + 1 end
    end
  end
  return running, waiting, succeeded, failed
end

--- The describe text for `rs` given its pods and events (nil leaves the
--- Events section out); `now` unix seconds.
function M.render(rs, pods, events, now)
  local w = describe.writer()
  local meta, spec, status = list(rs.metadata), list(rs.spec), list(rs.status)
  w.write(0, "Name:\t" .. str(meta.name) .. "\n")
  w.write(0, "Namespace:\t" .. str(meta.namespace) .. "\n")
  w.write(0, "Selector:\t" .. selector.format_selector(spec.selector) .. "\n")
  describe.labels(w, "Labels", meta.labels)
  describe.annotations(w, "Annotations", meta.annotations)
  local ctl = describe_pod.controller_of(meta)
  if ctl ~= "" then w.write(0, "Controlled By:\t" .. ctl .. "\n") end
  w.write(0, string.format("Replicas:\t%d current / %d desired\n", status.replicas or 0, spec.replicas or 1))
  w.write(0, string.format("Pods Status:\t%d Running / %d Waiting / %d Succeeded / %d Failed\n",
    M.pod_status(rs, pods)))
  describe_pod.pod_template(w, spec.template)
  local conds = list(status.conditions)
  if #conds > 0 then
    w.write(0, "Conditions:\n  Type\tStatus\tReason\n  ----\t------\t------\n")
    for _, c in ipairs(conds) do
      w.write(1, string.format("%s \t%s\t%s\n", str(c.type), str(c.status), str(c.reason)))
    end
  end
  if events then describe.events(w, events, now) end
  return w.text()
end

--- The pods an object's spec.selector selects in its namespace (for the
--- "Pods Status" line of workload describers).
function M.selected_pods(ctx, obj)
  local sel = selector.format_selector(list(obj.spec).selector)
  local res = common.client(ctx):list("v1/Pod", { namespace = obj.metadata.namespace,
    label_selector = sel ~= "<none>" and sel ~= "<error>" and sel or nil })
  return res and res.items or {}
end

--- The describer entry (describe.lua's registry).
function M.describe(ctx, r, rs, now)
  local pods = M.selected_pods(ctx, rs)
  local events
  if ctx.flags["show-events"] then events = describe.search_events(ctx, r, rs) end
  return M.render(rs, pods, events, now)
end

return M
