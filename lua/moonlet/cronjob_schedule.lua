-- The CronJob's time arithmetic, shared by the kind plugin (validation) and
-- the controller: Kubernetes' validateScheduleFormat / validateTimeZone,
-- formatSchedule (timeZone -> "TZ=<zone> <schedule>"), and the v2
-- controller's mostRecentScheduleTime, nextScheduleTime and
-- nextScheduleTimeDuration (semantics 11.3), all on unix seconds.
local cron = require("moonlet.cron")
local tz = require("moonlet.tz")
local validation = require("moonlet.validation")

local M = {}

-- Requeue slack after the next activation (nextScheduleDelta).
M.NEXT_SCHEDULE_DELTA = 0.1
M.TOO_MANY = 100
M.SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"

local function time_of(ts)
  if type(ts) ~= "string" or ts == "" then return nil end
  return (tz.parse_rfc3339(ts))
end
M.time_of = time_of

--- validateScheduleFormat: errors (validation objects) for `schedule` at
--- `path` (default spec.schedule). allow_tz: the old object already had
--- TZ in its schedule (updates only).
function M.validate_schedule(schedule, time_zone, allow_tz, path)
  path = path or "spec.schedule"
  local errs = {}
  if schedule == nil or schedule == "" then
    errs[1] = validation.required(path, "")
    return errs
  end
  local _, err = cron.parse(schedule)
  if err then errs[#errs + 1] = validation.invalid(path, schedule, err) end
  if allow_tz and schedule:find("TZ", 1, true) and time_zone ~= nil then
    errs[#errs + 1] = validation.invalid(path, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule")
  elseif not allow_tz and schedule:find("TZ", 1, true) then
    errs[#errs + 1] = validation.invalid(path, schedule,
      "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
  end
  return errs
end

--- validateTimeZone: errors for spec.timeZone (nil = unset, valid).
function M.validate_time_zone(name, path)
  path = path or "spec.timeZone"
  if name == nil then return {} end
  if name == "" then return { validation.invalid(path, name, "timeZone must be nil or non-empty string") } end
  for part in (name .. "/"):gmatch("([^/]*)/") do
    if part == "." or part == ".." or part:sub(1, 1) == "-" or not part:match("^[A-Za-z%.%-_0-9+]+$")
      or #part > 14 then
      return { validation.invalid(path, name, "unknown time zone " .. name) }
    end
  end
  local errs = {}
  if name:lower() == "local" then
    errs[#errs + 1] = validation.invalid(path, name,
      "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")
  end
  local z, err = tz.load(name)
  if not z then errs[#errs + 1] = validation.invalid(path, name, err) end
  return errs
end

--- formatSchedule: the schedule text the controller parses.
function M.format(cj)
  local spec = cj.spec or {}
  local s = spec.schedule or ""
  if s:find("TZ", 1, true) then return s end
  if type(spec.timeZone) == "string" and tz.load(spec.timeZone) then
    return "TZ=" .. spec.timeZone .. " " .. s
  end
  return s
end

--- mostRecentScheduleTime. `now` unix seconds; `zone` the zone of the
--- controller's clock (schedules without a zone run in it).
--- @return earliest, most recent unmet time | nil, "none"|"few"|"many", error | nil
function M.most_recent(cj, now, sched, include_deadline, zone)
  local earliest = time_of((cj.status or {}).lastScheduleTime) or time_of((cj.metadata or {}).creationTimestamp)
    or now
  local deadline = (cj.spec or {}).startingDeadlineSeconds
  if include_deadline and math.type(deadline) then
    local limit = now - deadline
    if limit > earliest then earliest = limit end
  end
  local missed = "none"
  local t1 = sched:next(earliest, zone)
  local t2 = t1 and sched:next(t1, zone)
  if t1 and now < t1 then return earliest, nil, missed end
  if t1 and t2 and now < t2 then return earliest, t1, missed end
  -- A schedule that never fires (Feb 31) finds no times: Go compares zero times.
  local between = (t1 and t2) and math.floor(t2 - t1 + 0.5) or 0
  if between < 1 then
    return earliest, nil, missed, "time difference between two schedules is less than 1 second"
  end
  local elapsed = math.floor(now - t1)
  local n = elapsed // between + 1
  local recent
  local t = sched:next(t1 + (n - 2) * between, zone)
  while t and t <= now do
    recent = t
    t = sched:next(t, zone)
  end
  if n > M.TOO_MANY then missed = "many" elseif n > 0 then missed = "few" end
  return earliest, recent, missed
end

--- nextScheduleTime: the unmet time to run now, or nil.
--- @return time | nil, error | nil, missed
function M.next_schedule_time(cj, now, sched, zone)
  local _, recent, missed, err = M.most_recent(cj, now, sched, true, zone)
  if recent == nil or recent > now then return nil, err, missed end
  return recent, err, missed
end

--- nextScheduleTimeDuration: seconds until the sync after the next
--- activation (`delta` after it; Kubernetes' 100 ms by default).
function M.requeue_after(cj, now, sched, zone, delta)
  local earliest, recent, missed, err = M.most_recent(cj, now, sched, false, zone)
  local from
  if err then from = now
  elseif recent == nil then from = (missed == "none") and earliest or now
  else from = recent end
  local nxt = sched:next(from, zone)
  if not nxt then return nil end
  return nxt + (delta or M.NEXT_SCHEDULE_DELTA) - now
end

--- The deterministic job name: "<cronjob>-<scheduled unix time / 60>".
function M.job_name(cj, scheduled)
  return string.format("%s-%d", cj.metadata.name, math.floor(scheduled) // 60)
end

--- The annotation value: RFC 3339 in the CronJob's timeZone (UTC when unset).
function M.scheduled_timestamp(cj, scheduled)
  local zone = tz.load((cj.spec or {}).timeZone or "") or tz.utc
  return tz.rfc3339(scheduled, zone)
end

return M
