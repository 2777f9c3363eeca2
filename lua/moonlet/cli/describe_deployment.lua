-- `describe deployment`, laid out as kubectl 1.32's DeploymentDescriber:
-- metadata, selector, the replica counts, strategy, the pod template, the
-- conditions table, the old and new ReplicaSets with their sizes, and the
-- events about the Deployment.
local describe = require("moonlet.cli.describe")
local describe_pod = require("moonlet.cli.describe_pod")
local util = require("moonlet.cli.rollout_util")
local duration = require("moonlet.printers.duration")
local selector = require("moonlet.selector")
local json = require("moonlet.json")

local M = {}

local list = util.list

local values = require("moonlet.cli.describe_values")
local str = values.str

local function int(v) return math.tointeger(v) or 0 end

-- intstr.IntOrString String(): ints as digits, strings as they are.
local function intstr(v)
  if v == nil or v == json.null then return "<nil>" end
  if math.type(v) then return string.format("%d", v) end
  return tostring(v)
end

--- printReplicaSetsByLabels: `kubia-9495d9bf5 (3/3 replicas created)`,
--- comma-joined, `<none>` for none.
function M.replica_sets_text(rss)
  local parts = {}
  for _, rs in ipairs(rss or {}) do
    parts[#parts + 1] = string.format("%s (%d/%d replicas created)", str(list(rs.metadata).name),
      int(list(rs.status).replicas), int(list(rs.spec).replicas))
  end
  if #parts == 0 then return "<none>" end
  return table.concat(parts, ", ")
end

--- The describe text for `d`; old_rss (all its old ReplicaSets) and
--- new_rs (or nil) as deploymentutil finds them; events nil to leave the
--- section out; `now` unix seconds.
function M.render(d, old_rss, new_rs, events, now)
  local w = describe.writer()
  local meta, spec, status = list(d.metadata), list(d.spec), list(d.status)
  w.write(0, "Name:\t" .. str(meta.name) .. "\n")
  w.write(0, "Namespace:\t" .. str(meta.namespace) .. "\n")
  local created = duration.parse(meta.creationTimestamp)
  w.write(0, "CreationTimestamp:\t" .. (created and duration.format_rfc1123z(created)
    or "Mon, 01 Jan 0001 00:00:00 +0000") .. "\n")
  describe.labels(w, "Labels", meta.labels)
  describe.annotations(w, "Annotations", meta.annotations)
  -- labels.Selector String(): "" for an empty selector, unlike FormatLabelSelector
  local sel = selector.from_table(spec.selector)
  w.write(0, "Selector:\t" .. (sel and sel:string() or "") .. "\n")
  w.write(0, string.format("Replicas:\t%d desired | %d updated | %d total | %d available | %d unavailable\n",
    int(spec.replicas), int(status.updatedReplicas), int(status.replicas), int(status.availableReplicas),
    int(status.unavailableReplicas)))
  local strategy = list(spec.strategy)
  w.write(0, "StrategyType:\t" .. str(strategy.type) .. "\n")
  w.write(0, string.format("MinReadySeconds:\t%d\n", int(spec.minReadySeconds)))
  if util.is_table(strategy.rollingUpdate) then
    local ru = strategy.rollingUpdate
    w.write(0, string.format("RollingUpdateStrategy:\t%s max unavailable, %s max surge\n",
      intstr(ru.maxUnavailable), intstr(ru.maxSurge)))
  end
  describe_pod.pod_template(w, spec.template)
  local conds = list(status.conditions)
  if #conds > 0 then
    w.write(0, "Conditions:\n  Type\tStatus\tReason\n")
    w.write(1, "----\t------\t------\n")
    for _, c in ipairs(conds) do
      w.write(1, string.format("%s \t%s\t%s\n", str(c.type), str(c.status), str(c.reason)))
    end
  end
  if #(old_rss or {}) > 0 or new_rs then
    w.write(0, "OldReplicaSets:\t" .. M.replica_sets_text(old_rss) .. "\n")
    w.write(0, "NewReplicaSet:\t" .. M.replica_sets_text(new_rs and { new_rs } or {}) .. "\n")
  end
  if events then describe.events(w, events, now) end
  return w.text()
end

--- The describer entry (describe.lua's registry).
function M.describe(ctx, r, d, now)
  -- kubectl 1.32 lists every old ReplicaSet here, scaled to 0 or not
  local new_rs, _, all_old = util.replica_sets(ctx, d)
  local events
  if ctx.flags["show-events"] then events = describe.search_events(ctx, r, d) end
  return M.render(d, all_old or {}, new_rs, events, now)
end

return M
