-- Cron policy "default": Kubernetes' CronJob v2 controller. Missed runs:
-- only the most recent unmet time runs (more than 100 missed flags
-- TooManyMissedTimes; the latest still runs); wake right after the next
-- activation. Overlap: concurrencyPolicy (Allow creates, Forbid skips while
-- a job is active, Replace deletes the active jobs first).
return {
  name = "default",

  missed = function(info)
    local c = info.calc
    local t, err, missed = c.next_schedule_time(info.cronjob, info.now, info.schedule, info.zone)
    return {
      time = t, error = err, too_many = t ~= nil and missed == "many",
      requeue_after = c.requeue_after(info.cronjob, info.now, info.schedule, info.zone, info.delta),
    }
  end,

  overlap = function(info)
    if info.policy == "Forbid" and #info.active > 0 then return "skip" end
    if info.policy == "Replace" and #info.active > 0 then return "replace" end
    return "create"
  end,
}
