-- cronjob: Kubernetes' CronJob v2 controller (semantics 11.3): keeps
-- status.active in step with the CronJob's Jobs, asks the cron policy which
-- scheduled time to run and what to do with active Jobs, creates Job
-- <cronjob>-<unix minutes>, prunes finished Jobs past the history limits and
-- sleeps on a timer until just after the next activation (clock: ctx.now).
local json = require("moonlet.json")
local tz = require("moonlet.tz")
local cron = require("moonlet.cron")
local calc = require("moonlet.cronjob_schedule")
local policies = require("moonlet.cron_policy")
local refs = require("moonlet.controller.refs")

local CJ = "batch/v1/CronJob"
local JOB = "batch/v1/Job"

local P = {
  name = "cronjob-controller",
  kind = CJ,
  owns = { JOB },
  workers = 1,
  -- Wake this long after an activation. Kubernetes waits 100 ms because its
  -- clock and the API server's may disagree; here the timer and the clock
  -- are the same process's, so a few ms are enough (a wake that comes too
  -- early finds nothing due and sleeps again).
  delta = 0.005,
  -- The zone of the controller's clock: schedules without timeZone run in
  -- it (Kubernetes: the controller-manager's local zone). nil = local.
  zone = nil,
}

local msg_of, conflict, not_found = refs.message, refs.conflict, refs.not_found
local function already_exists(st) return type(st) == "table" and (st.code == 409 and st.reason == "AlreadyExists") end

local function controlled_by(obj, uid)
  local ref = refs.controller_ref(obj)
  return ref ~= nil and ref.uid == uid
end

-- Complete or Failed with status True: (true, "Complete"|"Failed").
local function finished(job)
  for _, c in ipairs(((job.status or {}).conditions) or {}) do
    if (c.type == "Complete" or c.type == "Failed") and c.status == "True" then return true, c.type end
  end
  return false
end

local function in_active(cj, uid)
  for _, r in ipairs(((cj.status or {}).active) or {}) do
    if r.uid == uid then return true end
  end
  return false
end

local function in_active_by_name(cj, name)
  for _, r in ipairs(((cj.status or {}).active) or {}) do
    if r.name == name then return true end
  end
  return false
end

local function remove_active(cj, uid)
  local out = {}
  for _, r in ipairs(((cj.status or {}).active) or {}) do
    if r.uid ~= uid then out[#out + 1] = r end
  end
  cj.status.active = out
end

local function job_ref(job)
  return { kind = "Job", namespace = job.metadata.namespace, name = job.metadata.name, uid = job.metadata.uid,
    apiVersion = "batch/v1", resourceVersion = job.metadata.resourceVersion }
end

local function non_empty(map)
  if type(map) ~= "table" or next(map) == nil then return nil end
  return json.copy(map)
end

--- getJobFromTemplate2: the Job for scheduled time `t`.
function P.job_from_template(cj, t)
  local jt = cj.spec.jobTemplate or {}
  local md = jt.metadata or {}
  local ann = non_empty(md.annotations) or {}
  ann[calc.SCHEDULED_ANNOTATION] = calc.scheduled_timestamp(cj, t)
  return {
    apiVersion = "batch/v1", kind = "Job",
    metadata = {
      name = calc.job_name(cj, t), namespace = cj.metadata.namespace,
      labels = non_empty(md.labels), annotations = ann,
      ownerReferences = json.array({ refs.owner_ref(cj, "batch/v1", "CronJob") }),
    },
    spec = json.copy(jt.spec or {}),
  }
end

-- deleteJob: background propagation, then drop it from status.active.
local function delete_job(ctx, cj, job)
  local ok, st = ctx.client:delete(JOB, job.metadata.namespace, job.metadata.name,
    { propagation_policy = "Background" })
  if not ok and not not_found(st) then
    ctx:event(cj, "Warning", "FailedDelete", "Deleted job: " .. msg_of(st))
    return false
  end
  remove_active(cj, job.metadata.uid)
  ctx:event(cj, "Normal", "SuccessfulDelete", "Deleted job " .. job.metadata.name)
  return true
end

local function start_time(job) return calc.time_of((job.status or {}).startTime) end

-- removeOldestJobs: oldest by status.startTime (unset last), name tie-break.
local function remove_oldest(ctx, cj, jobs, limit)
  local n = #jobs - limit
  if n <= 0 then return false end
  table.sort(jobs, function(a, b)
    local ta, tb = start_time(a), start_time(b)
    if ta == nil and tb ~= nil then return false end
    if ta ~= nil and tb == nil then return true end
    if ta == tb then return a.metadata.name < b.metadata.name end
    return ta < tb
  end)
  local changed = false
  for i = 1, n do
    if delete_job(ctx, cj, jobs[i]) then changed = true end
  end
  return changed
end

local function cleanup_finished(ctx, cj, jobs)
  local spec = cj.spec
  if spec.successfulJobsHistoryLimit == nil and spec.failedJobsHistoryLimit == nil then return false end
  local ok_jobs, failed_jobs = {}, {}
  for _, j in ipairs(jobs) do
    local done, how = finished(j)
    if done and not j.metadata.deletionTimestamp then
      if how == "Complete" then ok_jobs[#ok_jobs + 1] = j else failed_jobs[#failed_jobs + 1] = j end
    end
  end
  local changed = false
  if math.type(spec.successfulJobsHistoryLimit) and remove_oldest(ctx, cj, ok_jobs, spec.successfulJobsHistoryLimit) then
    changed = true
  end
  if math.type(spec.failedJobsHistoryLimit) and remove_oldest(ctx, cj, failed_jobs, spec.failedJobsHistoryLimit) then
    changed = true
  end
  return changed
end

local parsed = setmetatable({}, { __mode = "v" })
local function parse(text)
  local s = parsed[text]
  if s then return s end
  local err
  s, err = cron.parse(text)
  if s then parsed[text] = s end
  return s, err
end

-- syncCronJob. @return requeue seconds | nil, status changed
local function sync(ctx, cj, jobs, now)
  local changed = false
  local children = {}
  for _, j in ipairs(jobs) do
    children[j.metadata.uid] = true
    local found = in_active(cj, j.metadata.uid)
    local done, how = finished(j)
    if not found and not done then
      -- Our status write may not have reached the cache yet: ask the API.
      local fresh = ctx.client:get(CJ, cj.metadata.namespace, cj.metadata.name)
      if fresh and in_active(fresh, j.metadata.uid) then
        local st = fresh.status or {}
        cj.status.active, cj.status.lastScheduleTime = st.active or {}, st.lastScheduleTime
        cj.status.lastSuccessfulTime = st.lastSuccessfulTime
        cj.metadata.resourceVersion = fresh.metadata.resourceVersion
      else
        ctx:event(cj, "Warning", "UnexpectedJob",
          "Saw a job that the controller did not create or forgot: " .. j.metadata.name)
      end
    elseif found and done then
      remove_active(cj, j.metadata.uid)
      ctx:event(cj, "Normal", "SawCompletedJob", string.format("Saw completed job: %s, condition: %s",
        j.metadata.name, how))
      changed = true
    end
    if done and how == "Complete" then
      local ct = (j.status or {}).completionTime
      local last = calc.time_of(cj.status.lastSuccessfulTime)
      local t = calc.time_of(ct)
      if t and (not last or t > last) then
        cj.status.lastSuccessfulTime = ct
        changed = true
      end
    end
  end
  for _, r in ipairs(cj.status.active or {}) do
    if not children[r.uid] then
      local got, st = ctx.client:get(JOB, r.namespace or cj.metadata.namespace, r.name)
      if not got and not_found(st) then
        ctx:event(cj, "Normal", "MissingJob", "Active job went missing: " .. r.name)
        remove_active(cj, r.uid)
        changed = true
      elseif not got then
        error("get job " .. r.name .. ": " .. msg_of(st), 0)
      end
    end
  end

  if cj.metadata.deletionTimestamp then return nil, changed end
  local spec = cj.spec
  if type(spec.timeZone) == "string" then
    local z, err = tz.load(spec.timeZone)
    if not z then
      ctx:event(cj, "Warning", "UnknownTimeZone", string.format("invalid timeZone: %q: %s", spec.timeZone, err))
      return nil, changed
    end
  end
  if spec.suspend == true then return nil, changed end

  if (spec.schedule or ""):find("TZ", 1, true) then
    ctx:event(cj, "Warning", "UnsupportedSchedule", string.format("CRON_TZ or TZ used in schedule %q is not "
      .. "officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
      spec.schedule))
  end
  local s, perr = parse(calc.format(cj))
  if not s then
    ctx:event(cj, "Warning", "UnparseableSchedule", string.format("unparseable schedule: %q : %s", spec.schedule, perr))
    return nil, changed
  end

  local zone = P.zone or tz.local_zone()
  local policy, unknown = policies.for_cronjob(cj)
  if unknown then
    ctx:event(cj, "Warning", "UnknownCronPolicy", string.format('cron policy "%s" is not loaded; using "%s"',
      unknown, policies.DEFAULT))
  end
  local d = policy.missed({ cronjob = cj, now = now, schedule = s, zone = zone, calc = calc, delta = P.delta })
  if d.error then
    ctx:event(cj, "Warning", "InvalidSchedule", string.format("invalid schedule: %s : %s", spec.schedule, d.error))
    return nil, changed
  end
  local requeue = d.requeue_after
  local t = d.time
  if not t then return requeue, changed end
  if d.too_many then
    ctx:event(cj, "Warning", "TooManyMissedTimes",
      "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew")
  end
  if math.type(spec.startingDeadlineSeconds) and t + spec.startingDeadlineSeconds < now then
    ctx:event(cj, "Warning", "MissSchedule", "Missed scheduled time to start a job: " .. tz.rfc1123z(t))
    return requeue, changed
  end
  local name = calc.job_name(cj, t)
  if in_active_by_name(cj, name) or calc.time_of(cj.status.lastScheduleTime) == t then
    return requeue, changed
  end
  local what = policies.overlap(policy, { cronjob = cj, active = cj.status.active or {},
    policy = spec.concurrencyPolicy, time = t })
  if what == "skip" then
    ctx:event(cj, "Normal", "JobAlreadyActive",
      "Not starting job because prior execution is running and concurrency policy is Forbid")
    return requeue, changed
  elseif what == "replace" then
    for _, r in ipairs(json.copy(cj.status.active or {})) do
      local job, st = ctx.client:get(JOB, r.namespace or cj.metadata.namespace, r.name)
      if not job then
        ctx:event(cj, "Warning", "FailedGet", "Get job: " .. msg_of(st))
        error("get job " .. r.name .. ": " .. msg_of(st), 0)
      end
      if not delete_job(ctx, cj, job) then
        error(string.format("could not replace job %s/%s", job.metadata.namespace, job.metadata.name), 0)
      end
      changed = true
    end
  end

  local job, st = ctx.client:create(JOB, P.job_from_template(cj, t))
  if not job then
    if already_exists(st) then
      local cur = ctx.client:get(JOB, cj.metadata.namespace, name)
      if not cur then error("get job " .. name .. ": not found after AlreadyExists", 0) end
      -- Someone else's job, or one we already track: nothing to record.
      if not controlled_by(cur, cj.metadata.uid) or in_active(cj, cur.metadata.uid) then return nil, changed end
      job = cur
    else
      ctx:event(cj, "Warning", "FailedCreate", "Error creating job: " .. msg_of(st))
      error("create job " .. name .. ": " .. msg_of(st), 0)
    end
  else
    ctx:event(cj, "Normal", "SuccessfulCreate", "Created job " .. job.metadata.name)
  end
  local active = cj.status.active or {}
  active[#active + 1] = job_ref(job)
  cj.status.active = active
  cj.status.lastScheduleTime = tz.rfc3339(t)
  return requeue, true
end

function P.reconcile(ctx, key, cj)
  if not cj then return end
  local now = ctx.now()
  cj.status = type(cj.status) == "table" and cj.status or {}
  local jobs = {}
  for _, j in ipairs(ctx:list(JOB, { namespace = cj.metadata.namespace })) do
    if controlled_by(j, cj.metadata.uid) then jobs[#jobs + 1] = j end
  end
  local requeue, changed = sync(ctx, cj, jobs, now)
  if cleanup_finished(ctx, cj, jobs) then changed = true end
  if changed then
    local st = cj.status
    st.active = (st.active and #st.active > 0) and json.array(st.active) or nil
    local ok, err = ctx.client:update_status(CJ, cj)
    if not ok then
      if conflict(err) then return { requeue = true } end
      if not_found(err) then return end
      error("update status: " .. msg_of(err), 0)
    end
  end
  if requeue then return { requeue_after = math.max(requeue, 0.001) } end
  return nil
end

return P
