-- `describe job`, laid out as kubectl 1.32's JobDescriber: selector, labels,
-- annotations, controller, parallelism/completions/mode/suspend/backoff,
-- start and completion times, the pod counts, completed indexes of Indexed
-- Jobs, the pod template and the events about the Job.
local describe = require("moonlet.cli.describe")
local json = require("moonlet.json")
local selector = require("moonlet.selector")
local duration = require("moonlet.printers.duration")
local describe_pod = require("moonlet.cli.describe_pod")

local M = {}

local values = require("moonlet.cli.describe_values")
local is_table, list, str = values.is_table, values.list, values.str
local function present(v) return v ~= nil and v ~= json.null end

local function rfc1123z(ts)
  local t = duration.parse(ts)
  return t and duration.format_rfc1123z(t) or str(ts)
end

--- capIndexesListOrNone: `<none>`, or the list cut after the first comma
--- at or past `soft_limit` characters, with "...".
function M.cap_indexes(indexes, soft_limit)
  indexes = str(indexes)
  if indexes == "" then return "<none>" end
  local ix = soft_limit + 1
  while ix <= #indexes and indexes:sub(ix, ix) ~= "," do ix = ix + 1 end
  if ix > #indexes then return indexes end
  return indexes:sub(1, ix) .. "..."
end

local function controller_of(meta)
  for _, ref in ipairs(list(meta.ownerReferences)) do
    if is_table(ref) and ref.controller == true then return str(ref.kind) .. "/" .. str(ref.name) end
  end
  return ""
end

--- The describe text for `job`; `events` a list of Events or nil to leave
--- the section out; `now` unix seconds.
function M.render(job, events, now)
  local w = describe.writer()
  local meta, spec, status = list(job.metadata), list(job.spec), list(job.status)
  w.write(0, "Name:\t" .. str(meta.name) .. "\n")
  w.write(0, "Namespace:\t" .. str(meta.namespace) .. "\n")
  w.write(0, "Selector:\t" .. (is_table(spec.selector) and selector.format_selector(spec.selector) or "") .. "\n")
  describe.labels(w, "Labels", meta.labels)
  describe.annotations(w, "Annotations", meta.annotations)
  local ctl = controller_of(meta)
  if ctl ~= "" then w.write(0, "Controlled By:\t" .. ctl .. "\n") end
  if present(spec.parallelism) then w.write(0, string.format("Parallelism:\t%d\n", spec.parallelism)) end
  if present(spec.completions) then
    w.write(0, string.format("Completions:\t%d\n", spec.completions))
  else
    w.write(0, "Completions:\t<unset>\n")
  end
  if present(spec.completionMode) then w.write(0, "Completion Mode:\t" .. str(spec.completionMode) .. "\n") end
  if present(spec.suspend) then w.write(0, "Suspend:\t" .. tostring(spec.suspend) .. "\n") end
  if present(spec.backoffLimit) then w.write(0, string.format("Backoff Limit:\t%d\n", spec.backoffLimit)) end
  if present(spec.ttlSecondsAfterFinished) then
    w.write(0, string.format("TTL Seconds After Finished:\t%d\n", spec.ttlSecondsAfterFinished))
  end
  if present(status.startTime) then w.write(0, "Start Time:\t" .. rfc1123z(status.startTime) .. "\n") end
  if present(status.completionTime) then
    w.write(0, "Completed At:\t" .. rfc1123z(status.completionTime) .. "\n")
  end
  local t0, t1 = duration.parse(status.startTime), duration.parse(status.completionTime)
  if t0 and t1 then w.write(0, "Duration:\t" .. duration.human(t1 - t0) .. "\n") end
  if present(spec.activeDeadlineSeconds) then
    w.write(0, string.format("Active Deadline Seconds:\t%ds\n", spec.activeDeadlineSeconds))
  end
  if present(status.ready) then
    w.write(0, string.format("Pods Statuses:\t%d Active (%d Ready) / %d Succeeded / %d Failed\n",
      status.active or 0, status.ready, status.succeeded or 0, status.failed or 0))
  else
    w.write(0, string.format("Pods Statuses:\t%d Active / %d Succeeded / %d Failed\n",
      status.active or 0, status.succeeded or 0, status.failed or 0))
  end
  if spec.completionMode == "Indexed" then
    w.write(0, "Completed Indexes:\t" .. M.cap_indexes(status.completedIndexes, 50) .. "\n")
    if present(spec.backoffLimitPerIndex) then
      w.write(0, "Failed Indexes:\t" .. M.cap_indexes(status.failedIndexes, 50) .. "\n")
    end
  end
  describe_pod.pod_template(w, spec.template)
  if events then describe.events(w, events, now) end
  return w.text()
end

--- The describer entry (describe.lua's registry).
function M.describe(ctx, r, job, now)
  local events
  if ctx.flags["show-events"] then events = describe.search_events(ctx, r, job) end
  return M.render(job, events, now)
end

return M
