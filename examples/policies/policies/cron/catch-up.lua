-- Cron policy "catch-up": every missed run runs, oldest first, one at a
-- time: the oldest unmet time after status.lastScheduleTime (bounded by
-- startingDeadlineSeconds) instead of only the latest, and never two at
-- once (a job's completion wakes the CronJob for the next). Select it with
-- the annotation cron.moonlet.dev/policy: catch-up.
return {
  name = "catch-up",

  missed = function(info)
    local cj, now, s, zone = info.cronjob, info.now, info.schedule, info.zone
    local c = info.calc
    local earliest = c.time_of((cj.status or {}).lastScheduleTime)
      or c.time_of((cj.metadata or {}).creationTimestamp) or now
    local deadline = (cj.spec or {}).startingDeadlineSeconds
    if math.type(deadline) and now - deadline > earliest then earliest = now - deadline end
    local t = s:next(earliest, zone)
    if not t then return { error = "the schedule never fires" } end
    if t > now then
      return { requeue_after = t - now + info.delta }
    end
    local after = s:next(t, zone)
    -- More runs are owed: look again at once (an active job holds them back).
    local requeue = (after and after <= now) and info.delta or (after and after - now + info.delta)
    return { time = t, requeue_after = requeue }
  end,

  overlap = function(info)
    if #info.active > 0 then return "skip" end
    return "create"
  end,
}
