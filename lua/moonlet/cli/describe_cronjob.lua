-- `describe cronjob`, laid out as kubectl 1.32's describeCronJob: schedule,
-- concurrency policy, suspend, history limits, starting deadline, the job
-- template (selector, parallelism, completions, pod template), the last
-- schedule time, the active jobs and the events about it.
local describe = require("moonlet.cli.describe")
local json = require("moonlet.json")
local selector = require("moonlet.selector")
local duration = require("moonlet.printers.duration")
local describe_pod = require("moonlet.cli.describe_pod")

local M = {}

local function is_table(v) return type(v) == "table" and v ~= json.null end
local function list(v) return is_table(v) and v or {} end
local function set(v) return v ~= nil and v ~= json.null end
local function str(v) return set(v) and tostring(v) or "" end

local function bool_ptr(v)
  if v == true then return "True" elseif v == false then return "False" end
  return "<unset>"
end

local function int_or_unset(v, suffix)
  if not set(v) then return "<unset>" end
  return string.format("%d%s", v, suffix or "")
end

--- The describe text for `cj` (events nil leaves the Events section out).
function M.render(cj, events, now)
  local w = describe.writer()
  local meta, spec, status = list(cj.metadata), list(cj.spec), list(cj.status)
  w.write(0, "Name:\t" .. str(meta.name) .. "\n")
  w.write(0, "Namespace:\t" .. str(meta.namespace) .. "\n")
  describe.labels(w, "Labels", meta.labels)
  describe.annotations(w, "Annotations", meta.annotations)
  w.write(0, "Schedule:\t" .. str(spec.schedule) .. "\n")
  w.write(0, "Concurrency Policy:\t" .. str(spec.concurrencyPolicy) .. "\n")
  w.write(0, "Suspend:\t" .. bool_ptr(spec.suspend) .. "\n")
  w.write(0, "Successful Job History Limit:\t" .. int_or_unset(spec.successfulJobsHistoryLimit) .. "\n")
  w.write(0, "Failed Job History Limit:\t" .. int_or_unset(spec.failedJobsHistoryLimit) .. "\n")
  w.write(0, "Starting Deadline Seconds:\t" .. int_or_unset(spec.startingDeadlineSeconds, "s") .. "\n")
  -- describeJobTemplate
  local js = list(list(spec.jobTemplate).spec)
  if is_table(js.selector) then
    w.write(0, "Selector:\t" .. selector.format_selector(js.selector) .. "\n")
  else
    w.write(0, "Selector:\t<unset>\n")
  end
  w.write(0, "Parallelism:\t" .. int_or_unset(js.parallelism) .. "\n")
  w.write(0, "Completions:\t" .. int_or_unset(js.completions) .. "\n")
  if set(js.activeDeadlineSeconds) then
    w.write(0, string.format("Active Deadline Seconds:\t%ds\n", js.activeDeadlineSeconds))
  end
  describe_pod.pod_template(w, js.template)
  local last = set(status.lastScheduleTime) and duration.parse(status.lastScheduleTime)
  w.write(0, "Last Schedule Time:\t" .. (last and duration.format_rfc1123z(last) or "<unset>") .. "\n")
  local names = {}
  for _, r in ipairs(list(status.active)) do names[#names + 1] = str(r.name) end
  w.write(0, "Active Jobs:\t" .. (#names > 0 and table.concat(names, ", ") or "<none>") .. "\n")
  if events then describe.events(w, events, now) end
  return w.text()
end

--- The describer entry (describe.lua's registry).
function M.describe(ctx, r, cj, now)
  local events
  if ctx.flags["show-events"] then events = describe.search_events(ctx, r, cj) end
  return M.render(cj, events, now)
end

return M
