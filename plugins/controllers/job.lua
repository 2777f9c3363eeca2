-- job: runs each batch/v1 Job's pods to completion (semantics 10). Keeps
-- min(parallelism, remaining) pods active (Indexed: one per pending index,
-- with JOB_COMPLETION_INDEX), counts succeeded/failed pods monotonically,
-- delays replacements after failures (10 s doubling, capped), fails the Job
-- on backoffLimit or activeDeadlineSeconds, completes it, suspends and
-- resumes it, and deletes finished Jobs whose ttlSecondsAfterFinished ran
-- out. Terminal conditions come after their interim forms (FailureTarget,
-- SuccessCriteriaMet) once no pod of the Job is still terminating.
-- Back-off base and cap: MOONLET_JOB_BACKOFF / MOONLET_JOB_BACKOFF_MAX in
-- the server's environment ("10s", "500ms", "10m"; specs set plugin.backoff).
-- Pod changes and status-only Job updates wake the Job in batches
-- (Kubernetes' syncJobBatchPeriod, 1 s there): MOONLET_JOB_BATCH, default
-- 10ms, "0" for none.
local json = require("moonlet.json")
local selector = require("moonlet.selector")
local util = require("moonlet.controller.util")
local refs = require("moonlet.controller.refs")
local expectations = require("moonlet.controller.expectations")
local slowstart = require("moonlet.controller.slowstart")
local podutil = require("moonlet.controller.podutil")
local duration = require("moonlet.printers.duration")
local go_duration = require("moonlet.go_duration")
local indexes = require("moonlet.job_indexes")
local policies = require("moonlet.controller.job_policies")

local JOB = "batch/v1/Job"
local POD = "v1/Pod"
local MAX_PER_SYNC = 500            -- MaxPodCreateDeletePerSync
local INDEX_KEY = "batch.kubernetes.io/job-completion-index"
local INDEX_ENV = "JOB_COMPLETION_INDEX"
local MAX_GENERATED = 58            -- names.MaxGeneratedNameLength

-- A Go duration ("10s", "500ms", "1m30s") or plain seconds; nil if malformed.
local function parse_duration(s)
  if type(s) ~= "string" or s == "" then return nil end
  return tonumber(s) or (go_duration.parse(s))
end

local function env_seconds(name, default)
  local v = parse_duration(os.getenv(name))
  if v and v > 0 then return v end
  return default
end

-- DefaultJobPodFailureBackOff / MaxJobPodFailureBackOff.
local backoff = {
  initial = env_seconds("MOONLET_JOB_BACKOFF", 10),
  max = env_seconds("MOONLET_JOB_BACKOFF_MAX", 600),
}

-- How long pod changes (and the Job's own status writes) gather before
-- the Job syncs. Kubernetes waits a second; here a pod of `true` runs for
-- a few milliseconds, and a window of 10 ms still folds its start, its
-- readiness and its end into one sync and one status write. Longer
-- windows left the server idle between the waves of a parallel Job (50 ms
-- cost 0.5-0.9 s over 1,000 completions at parallelism 50).
local function batch_period()
  local v = parse_duration(os.getenv("MOONLET_JOB_BATCH"))
  if v and v >= 0 then return v end
  return 0.01
end

-- A status whose only change is `ready` (a pod became ready, or stopped
-- being ready while still active) waits up to this long before it is
-- written: Kubernetes' syncJobBatchPeriod (1 s), which batches every pod
-- change there. Pod ends, counts and conditions still go out after the
-- short window above; a ready count waiting here folds into that write.
-- MOONLET_JOB_READY_BATCH, "0" writes it at once.
local function ready_batch_period()
  local v = parse_duration(os.getenv("MOONLET_JOB_READY_BATCH"))
  if v and v >= 0 then return v end
  return 1
end

-- True when the status `st` differs from `old` in `ready` alone.
local function ready_only_change(old, st)
  if (old.ready or 0) == (st.ready or 0) then return false end
  local saved = st.ready
  st.ready = old.ready
  local same = util.equal(old, st)
  st.ready = saved
  return same
end

-- key -> per-Job memory: uid, counted pods (uid -> "s"|"f"), base counts
-- from the status seen first, failures since the last success and when the
-- last one was seen, pods deleted by suspension.
local states = {}
local exp = expectations.new({ kind = POD })

local msg_of, conflict, not_found = refs.message, refs.conflict, refs.not_found

local function is_table(v) return type(v) == "table" and v ~= json.null end

local function rfc3339(t) return duration.format_rfc3339(t) end

local function phase(pod) return (pod.status or {}).phase end

local function terminating(pod)
  local ph = phase(pod)
  return pod.metadata.deletionTimestamp ~= nil and ph ~= "Succeeded" and ph ~= "Failed"
end

local active = podutil.active

local function pod_ready(pod) return (podutil.ready(pod)) end

local function find_condition(job, type_)
  for _, c in ipairs(is_table(job.status) and job.status.conditions or {}) do
    if c.type == type_ and c.status == "True" then return c end
  end
  return nil
end

local function finished(job)
  return find_condition(job, "Complete") ~= nil or find_condition(job, "Failed") ~= nil
end

local function suspended(job) return job.spec.suspend == true end

local function per_index(job) return math.type(job.spec.backoffLimitPerIndex) ~= nil end

-- onlyReplaceFailedPods: a pod being deleted is neither failed nor
-- replaced until it reaches phase Failed.
local function only_replace_failed(job)
  return job.spec.podReplacementPolicy == "Failed" or is_table(job.spec.podFailurePolicy)
end

-- isPodFailed.
local function pod_failed(job, pod)
  local ph = phase(pod)
  if ph == "Failed" then return true end
  if only_replace_failed(job) then return false end
  return pod.metadata.deletionTimestamp ~= nil and ph ~= "Succeeded"
end

local function pod_index(pod)
  local v = (pod.metadata.annotations or {})[INDEX_KEY] or (pod.metadata.labels or {})[INDEX_KEY]
  local n = v and v:match("^%d+$") and tonumber(v)
  return n and math.tointeger(n) or nil
end

-- {====== pods

local function owner_ref(job) return refs.owner_ref(job, "batch/v1", "Job") end

local function add_index_env(containers)
  for _, c in ipairs(containers or {}) do
    local has = false
    for _, e in ipairs(c.env or {}) do if e.name == INDEX_ENV then has = true end end
    if not has then
      c.env = c.env or json.array()
      c.env[#c.env + 1] = { name = INDEX_ENV,
        valueFrom = { fieldRef = { fieldPath = "metadata.labels['" .. INDEX_KEY .. "']" } } }
    end
  end
end

-- The pod for `job` (and completion `index` when Indexed; `replaces`, the
-- index's last failed pod under backoffLimitPerIndex).
local function pod_from_template(job, index, replaces)
  local tpl = job.spec.template or {}
  local md = tpl.metadata or {}
  local name = job.metadata.name
  local labels = json.copy(md.labels or {})
  local annotations = md.annotations and json.copy(md.annotations) or nil
  local spec = json.copy(tpl.spec or {})
  local generate = name .. "-"
  if index then
    local suffix = "-" .. index .. "-"
    generate = name .. suffix
    if #generate > MAX_GENERATED then generate = name:sub(1, MAX_GENERATED - #suffix) .. suffix end
    labels[INDEX_KEY] = tostring(index)
    annotations = annotations or {}
    annotations[INDEX_KEY] = tostring(index)
    if per_index(job) then
      local failed, ignored = policies.next_failure_counts(job, replaces)
      annotations[policies.FAILURE_COUNT] = tostring(failed)
      if ignored > 0 then annotations[policies.IGNORED_FAILURE_COUNT] = tostring(ignored) end
    end
    add_index_env(spec.initContainers)
    add_index_env(spec.containers)
    if spec.hostname == nil or spec.hostname == "" then spec.hostname = name .. "-" .. index end
  end
  return {
    apiVersion = "v1", kind = "Pod",
    metadata = {
      generateName = generate, namespace = job.metadata.namespace, labels = labels,
      annotations = annotations, finalizers = md.finalizers and json.copy(md.finalizers) or nil,
      ownerReferences = json.array({ owner_ref(job) }),
    },
    spec = spec,
  }
end

-- The pods this Job controls (ClaimPods). Candidates come from the pod
-- informer's owner index when it is at hand, so a sync costs the Job's own
-- pods rather than the namespace's; a manual selector lists by selector so
-- matching orphans can be adopted. nil when the Job went away meanwhile.
local function owned_pods(ctx, job, sel)
  local candidates
  if job.spec.manualSelector ~= true then
    candidates = ctx:owned(POD, job.metadata.uid, job.metadata.namespace)
  else
    candidates = ctx:list(POD, { namespace = job.metadata.namespace, selector = sel })
  end
  return refs.claim(ctx, { owner = job, owner_kind = JOB, ref = owner_ref(job), kind = POD, selector = sel,
    objects = candidates })
end

-- Creates n pods in slow-start batches (1, 2, 4, ...); `todo` (Indexed)
-- names the index of each, `last_failed` the pod each replaces.
-- @return created, error message or nil
local function create_pods(ctx, key, job, n, todo, last_failed, now)
  local created, err = slowstart.run(n, function(i)
    local index = todo and todo[i] or nil
    local pod, st = ctx.client:create(POD, pod_from_template(job, index, index and last_failed[index]))
    if not pod then return nil, msg_of(st) end
    return pod
  end)
  for _, pod in ipairs(created) do
    exp:created(key, pod.metadata.name, now)
    ctx:event(job, "Normal", "SuccessfulCreate", "Created pod: " .. pod.metadata.name)
  end
  if err then ctx:event(job, "Warning", "FailedCreate", "Error creating: " .. err) end
  return #created, err
end

-- @return number deleted, error message or nil
local function delete_pods(ctx, key, job, victims, now)
  return exp:delete_pods(ctx, key, job, victims, now, MAX_PER_SYNC)
end

-- Which active pods go first: not yet running, then not ready, then the
-- youngest (controller.ActivePods order, reversed for removal).
local function removal_order(pods)
  local rank = { Pending = 0, Unknown = 1, Running = 2 }
  table.sort(pods, function(a, b)
    local ra, rb = rank[phase(a) or "Pending"] or 0, rank[phase(b) or "Pending"] or 0
    if ra ~= rb then return ra < rb end
    local ya, yb = pod_ready(a), pod_ready(b)
    if ya ~= yb then return not ya end
    local ta = a.metadata.creationTimestamp or ""
    local tb = b.metadata.creationTimestamp or ""
    if ta ~= tb then return ta > tb end
    return a.metadata.name > b.metadata.name
  end)
  return pods
end

-- }======

-- {====== failure accounting

-- Sum of container restarts of the pods still running or pending
-- (pastBackoffLimitOnFailure).
local function past_backoff_on_failure(job, pods)
  if (job.spec.template.spec or {}).restartPolicy ~= "OnFailure" then return false end
  local limit = job.spec.backoffLimit or 6
  local restarts = 0
  for _, p in ipairs(pods) do
    local ph = phase(p)
    if ph == "Running" or ph == "Pending" then
      local st = p.status or {}
      for _, l in ipairs({ st.initContainerStatuses or {}, st.containerStatuses or {} }) do
        for _, cs in ipairs(l) do restarts = restarts + (cs.restartCount or 0) end
      end
    end
  end
  if limit == 0 then return restarts > 0 end
  return restarts >= limit
end

-- The delay left after `n` consecutive failures, the last at time
-- `last` (getRemainingTimeForFailuresCount): 10 s doubling to the cap.
local function backoff_left(n, last, now)
  if n == 0 or not last then return 0 end
  local d = backoff.initial
  for _ = 2, n do
    d = d * 2
    if d >= backoff.max then d = backoff.max break end
  end
  local elapsed = now - last
  if d < elapsed then return 0 end
  return d - elapsed
end

-- The delay before the next replacement pod (backoffRecord.getRemainingTime).
local function remaining_backoff(state, now)
  return backoff_left(state.failures_since_success or 0, state.last_failure, now)
end

-- When a pod finished: its containers' latest finishedAt, else when it
-- was deleted or made (getFinishedTime).
local function finished_at(pod)
  local t
  local st = is_table(pod.status) and pod.status or {}
  for _, l in ipairs({ st.initContainerStatuses or {}, st.containerStatuses or {} }) do
    for _, cs in ipairs(l) do
      local term = is_table(cs.state) and cs.state.terminated
      local ft = is_table(term) and duration.parse(term.finishedAt)
      if ft and (not t or ft > t) then t = ft end
    end
  end
  return t or duration.parse(pod.metadata.deletionTimestamp) or duration.parse(pod.metadata.creationTimestamp)
end

-- Counts finished pods once each: the status keeps counts of pods since
-- deleted; pods first seen here are added. A pod being deleted before it
-- succeeded counts as failed (isPodFailed), except in a suspended Job; a
-- failure an Ignore rule of the pod failure policy matches is not counted,
-- though it still delays the next pod (the back-off record takes every
-- failure).
local function count(state, job, pods, now)
  local st = is_table(job.status) and job.status or {}
  local fresh = state.counted == nil
  if fresh then state.counted = {} end
  local present_s, present_f = 0, 0
  local new_s, new_f, new_ignored = 0, 0, 0
  for _, p in ipairs(pods) do
    local uid, ph = p.metadata.uid, phase(p)
    local verdict
    if ph == "Succeeded" then verdict = "s"
    elseif pod_failed(job, p) and (ph == "Failed" or (not suspended(job) and not state.deleted_by_suspend[uid])) then
      local _, counts = policies.match_failure(job.spec.podFailurePolicy, p)
      verdict = counts and "f" or "i"
    end
    if verdict then
      if verdict == "s" then present_s = present_s + 1 elseif verdict == "f" then present_f = present_f + 1 end
      if not state.counted[uid] then
        state.counted[uid] = verdict
        if not fresh then
          if verdict == "s" then new_s = new_s + 1
          elseif verdict == "f" then new_f = new_f + 1
          else new_ignored = new_ignored + 1 end
        end
      end
    end
  end
  if fresh then
    state.base_s = math.max(0, (st.succeeded or 0) - present_s)
    state.base_f = math.max(0, (st.failed or 0) - present_f)
    state.n_s, state.n_f = present_s, present_f
    state.failures_since_success = 0
  else
    state.n_s, state.n_f = state.n_s + new_s, state.n_f + new_f
    if new_s > 0 then state.failures_since_success = 0 end
    if new_f + new_ignored > 0 then
      state.failures_since_success = (state.failures_since_success or 0) + new_f + new_ignored
      state.last_failure = now
    end
  end
  return state.base_s + state.n_s, state.base_f + state.n_f
end

-- }======

local function new_condition(type_, reason, message, now)
  local t = rfc3339(now)
  return { type = type_, status = "True", lastProbeTime = t, lastTransitionTime = t,
    reason = reason, message = message }
end

-- Sets condition `type_` to `status` (ensureJobConditionStatus): a new
-- condition only when it is True; returns whether anything changed.
local function ensure_condition(conds, type_, status, reason, message, now)
  for _, c in ipairs(conds) do
    if c.type == type_ then
      if c.status == status and c.reason == reason and c.message == message then return false end
      c.status, c.reason, c.message = status, reason, message
      c.lastProbeTime, c.lastTransitionTime = rfc3339(now), rfc3339(now)
      return true
    end
  end
  if status ~= "True" then return false end
  conds[#conds + 1] = new_condition(type_, reason, message, now)
  return true
end

local function same_status(a, b)
  return util.equal(a or {}, b or {})
end

-- ttlSecondsAfterFinished: delete the finished Job (its pods go by
-- background propagation) once the TTL has passed since it finished.
local function ttl_check(ctx, job, now)
  local ttl = job.spec.ttlSecondsAfterFinished
  if not math.type(ttl) or job.metadata.deletionTimestamp then return end
  local st = job.status or {}
  local t = duration.parse(st.completionTime)
  if not t then
    local c = find_condition(job, "Complete") or find_condition(job, "Failed")
    t = c and duration.parse(c.lastTransitionTime)
  end
  if not t then return end
  local left = t + ttl - now
  if left > 0 then return { requeue_after = left + 0.05 } end
  local ok, err = ctx.client:delete(JOB, job.metadata.namespace, job.metadata.name,
    { propagation_policy = "Background", preconditions = { uid = job.metadata.uid } })
  if not ok and not not_found(err) and not conflict(err) then
    error("deleting expired job: " .. msg_of(err), 0)
  end
end

-- manageJob: creates or deletes pods so the right number is active.
-- @return active count, error message or nil, seconds to wait (back-off)
local function manage(ctx, key, state, job, act, succeeded, ix, now)
  local completed_set = ix.completed
  local spec = job.spec
  local parallelism = spec.parallelism or 1
  if suspended(job) then
    for _, p in ipairs(act) do state.deleted_by_suspend[p.metadata.uid] = true end
    local removed, err = delete_pods(ctx, key, job, removal_order(act), now)
    return #act - removed, err
  end
  local indexed = spec.completionMode == "Indexed"
  local want
  if spec.completions == nil or spec.completions == json.null then
    want = succeeded > 0 and #act or parallelism
  else
    want = math.max(0, math.min(parallelism, spec.completions - succeeded))
  end
  local victims, keep = {}, {}
  if indexed then
    -- Pods of completed, out-of-range or duplicated indexes go first.
    local seen = {}
    for _, p in ipairs(removal_order(act)) do
      local i = pod_index(p)
      if not i or i >= spec.completions or completed_set[i] or seen[i] then
        victims[#victims + 1] = p
      else
        seen[i] = true
        keep[#keep + 1] = p
      end
    end
  else
    keep = removal_order(act)
  end
  local excess = #keep - want
  if excess > 0 then
    -- removal_order puts the ones to drop first
    for i = 1, excess do victims[#victims + 1] = keep[i] end
  end
  if #victims > 0 then
    local removed, err = delete_pods(ctx, key, job, victims, now)
    return #act - removed, err
  end
  local diff = math.min(want - (only_replace_failed(job) and ix.n_term or 0) - #act, MAX_PER_SYNC)
  if diff <= 0 then return #act end
  if not per_index(job) then
    local wait = remaining_backoff(state, now)
    if wait > 0 then return #act, nil, wait end
  end
  local todo
  if indexed then
    -- firstPendingIndexes; under backoffLimitPerIndex an index waits out
    -- its own back-off (getPodCreationInfoForIndependentIndexes).
    local busy = {}
    for _, p in ipairs(act) do local i = pod_index(p); if i then busy[i] = true end end
    if only_replace_failed(job) then for i in pairs(ix.terminating) do busy[i] = true end end
    todo = {}
    local wait
    for i = 0, spec.completions - 1 do
      if #todo >= diff then break end
      if not completed_set[i] and not busy[i] and not ix.failed[i] then
        local last = ix.last_failed[i]
        local left = last and backoff_left(policies.absolute_failure_count(last) + 1, finished_at(last), now) or 0
        if left > 0 then
          if not wait or left < wait then wait = left end
        else
          todo[#todo + 1] = i
        end
      end
    end
    if #todo == 0 and wait then return #act, nil, wait end
    diff = #todo
  end
  local created, err = create_pods(ctx, key, job, diff, todo, ix.last_failed, now)
  return #act + created, err
end

-- The index view of an Indexed Job: completed and (backoffLimitPerIndex)
-- failed indexes, the indexes of terminating pods, and per pending index
-- the failed pod a replacement takes its failure counts from
-- (getPodsWithDelayedDeletionPerIndex).
local function index_view(job, pods, act)
  local spec, st = job.spec, is_table(job.status) and job.status or {}
  local n = spec.completions or 0
  local ix = { completed = indexes.parse(st.completedIndexes, n), failed = {}, terminating = {}, last_failed = {} }
  for _, p in ipairs(pods) do
    local i = pod_index(p)
    if i and i < n then
      if phase(p) == "Succeeded" then ix.completed[i] = true end
      if terminating(p) then ix.terminating[i] = true end
    end
  end
  if not per_index(job) then return ix end
  ix.failed = indexes.parse(st.failedIndexes, n)
  local busy = {}
  for _, p in ipairs(act) do local i = pod_index(p); if i then busy[i] = true end end
  for _, p in ipairs(pods) do
    local i = pod_index(p)
    if i and i < n and pod_failed(job, p) and policies.index_failed(job, p) then ix.failed[i] = true end
  end
  for _, p in ipairs(pods) do
    local i = pod_index(p)
    if i and i < n and pod_failed(job, p) and not ix.completed[i] and not ix.failed[i] and not busy[i] then
      local prev = ix.last_failed[i]
      if not prev or (policies.absolute_failure_count(prev) <= policies.absolute_failure_count(p)
        and (finished_at(p) or 0) >= (finished_at(prev) or 0)) then
        ix.last_failed[i] = p
      end
    end
  end
  return ix
end

-- The conditions an Indexed Job's indexes decide: too many or only failed
-- indexes left (backoffLimitPerIndex), or a success policy met.
local function index_condition(job, ix, now)
  local spec = job.spec
  if per_index(job) then
    local n_failed = indexes.count(ix.failed)
    if math.type(spec.maxFailedIndexes) and n_failed > spec.maxFailedIndexes then
      return new_condition("FailureTarget", "MaxFailedIndexesExceeded",
        "Job has exceeded the specified maximal number of failed indexes", now)
    elseif n_failed > 0 and n_failed + indexes.count(ix.completed) >= spec.completions then
      return new_condition("FailureTarget", "FailedIndexes", "Job has failed indexes", now)
    end
  end
  local msg = policies.match_success(spec.successPolicy, spec.completions, ix.completed)
  if msg then return new_condition("SuccessCriteriaMet", "SuccessPolicy", msg, now) end
  return nil
end

local plugin

local function reconcile(ctx, key, job)
  if not job then
    states[key] = nil
    exp:forget(key)
    return
  end
  local now = ctx.now()
  if finished(job) then
    states[key] = nil
    exp:forget(key)
    return ttl_check(ctx, job, now)
  end
  local spec = job.spec or {}
  -- The generated selector arrives in the write right after the create.
  if not is_table(spec.selector) or not is_table(spec.template) then return end
  local sel = selector.from_table(spec.selector)
  if not sel then return end
  local state = states[key]
  if not state or state.uid ~= job.metadata.uid then
    state = { uid = job.metadata.uid, deleted_by_suspend = {} }
    states[key] = state
  end
  local ns = job.metadata.namespace
  if not exp:satisfied(ctx, key, ns, now) then return end

  local pods = owned_pods(ctx, job, sel)
  if not pods then return end
  local act, n_term, ready = {}, 0, 0
  for _, p in ipairs(pods) do
    if active(p) then
      act[#act + 1] = p
      if pod_ready(p) then ready = ready + 1 end
    elseif terminating(p) then
      n_term = n_term + 1
    end
  end
  local n_act = #act
  local succeeded, failed = count(state, job, pods, now)
  local indexed = spec.completionMode == "Indexed"
  local old = is_table(job.status) and job.status or {}
  local ix = { completed = {}, failed = {}, terminating = {}, last_failed = {} }
  if indexed then
    ix = index_view(job, pods, act)
    succeeded = indexes.count(ix.completed)
  end
  ix.n_term = n_term

  local st = util.copy(old)
  st.conditions = json.array(util.copy(old.conditions or {}))
  if not st.startTime and not suspended(job) then st.startTime = rfc3339(now) end

  local interim = find_condition(job, "FailureTarget") or find_condition(job, "SuccessCriteriaMet")
  local requeue_after, manage_err
  if not interim then
    local limit = spec.backoffLimit or 6
    local start = duration.parse(st.startTime)
    local ads = spec.activeDeadlineSeconds
    local fail_job = policies.fail_job_message(spec.podFailurePolicy, pods,
      function(p) return pod_failed(job, p) end)
    local by_index = indexed and index_condition(job, ix, now) or nil
    if fail_job then
      interim = new_condition("FailureTarget", "PodFailurePolicy", fail_job, now)
    elseif failed > limit or past_backoff_on_failure(job, pods) then
      interim = new_condition("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit", now)
    elseif math.type(ads) and start and not suspended(job) and now - start >= ads then
      interim = new_condition("FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline", now)
    elseif by_index then
      interim = by_index
    else
      if math.type(ads) and start and not suspended(job) then requeue_after = start + ads - now end
      local n_active, err, wait = #act, nil, nil
      if not job.metadata.deletionTimestamp then
        n_active, err, wait = manage(ctx, key, state, job, act, succeeded, ix, now)
        manage_err = err
        if wait and (not requeue_after or wait < requeue_after) then requeue_after = wait end
      end
      local complete
      if spec.completions == nil or spec.completions == json.null then
        complete = succeeded > 0 and n_active == 0
      else
        complete = succeeded >= spec.completions and n_active == 0
      end
      if complete then
        interim = new_condition("SuccessCriteriaMet", "CompletionsReached",
          "Reached expected number of succeeded pods", now)
      elseif not job.metadata.deletionTimestamp then
        if suspended(job) then
          if ensure_condition(st.conditions, "Suspended", "True", "JobSuspended", "Job suspended", now) then
            ctx:event(job, "Normal", "Suspended", "Job suspended")
          end
        elseif ensure_condition(st.conditions, "Suspended", "False", "JobResumed", "Job resumed", now) then
          ctx:event(job, "Normal", "Resumed", "Job resumed")
          st.startTime = rfc3339(now)
        end
      end
      -- What manage changed shows up in the cache later; count it now.
      n_act = n_active
    end
    if interim then st.conditions[#st.conditions + 1] = interim end
  end

  if interim then
    -- Every pod still active ends (deleteActivePods; counted as failed
    -- once seen terminating); the terminal condition waits until no pod
    -- is terminating.
    if n_act > 0 then
      local removed = delete_pods(ctx, key, job, act, now)
      n_term = n_term + removed
      n_act = n_act - removed
    end
    if n_term == 0 and n_act == 0 then
      local terminal = interim.type == "FailureTarget" and "Failed" or "Complete"
      st.conditions[#st.conditions + 1] = new_condition(terminal, interim.reason, interim.message, now)
      if terminal == "Complete" then
        st.completionTime = rfc3339(now)
        ctx:event(job, "Normal", "Completed", "Job completed")
      else
        ctx:event(job, "Warning", interim.reason, interim.message)
      end
    end
  end

  st.active = n_act > 0 and n_act or nil
  st.succeeded = succeeded > 0 and succeeded or nil
  st.failed = failed > 0 and failed or nil
  st.terminating = n_term
  st.ready = ready
  if indexed then
    local s = indexes.format(ix.completed)
    st.completedIndexes = s ~= "" and s or nil
    if per_index(job) then st.failedIndexes = indexes.format(ix.failed) end
  end
  st.uncountedTerminatedPods = st.uncountedTerminatedPods or json.object({})
  if #st.conditions == 0 then st.conditions = nil end
  local write = not same_status(old, st)
  if not write then
    state.ready_since = nil
  elseif plugin.ready_batch > 0 and ready_only_change(old, st) then
    -- Held back (see ready_batch_period): written at the end of the period
    -- unless a pod end or another change writes it first.
    state.ready_since = state.ready_since or now
    local left = state.ready_since + plugin.ready_batch - now
    if left > 0 then
      write = false
      requeue_after = requeue_after and math.min(requeue_after, left) or left
    end
  end
  if write then
    state.ready_since = nil
    -- A merge patch of what changed, conditional on the resourceVersion
    -- read (as the PUT it stands for): the server then checks and stores
    -- the status alone, not the whole Job with its pod template.
    local md = job.metadata
    local patch = { metadata = { resourceVersion = md.resourceVersion }, status = util.merge_patch(old, st) }
    -- The job read is the informer's own object (readonly): the new state
    -- goes on a shallow copy.
    local written = {}
    for k, v in pairs(job) do written[k] = v end
    written.status = st
    local ok, err = util.write_unread(ctx.client, JOB, md.namespace, md.name, "status", "PATCH", patch,
      "application/merge-patch+json", function() return ctx.client:update_status(JOB, written) end)
    if not ok then
      if conflict(err) then return { requeue = true } end
      if not_found(err) then return end
      error("update status: " .. msg_of(err), 0)
    end
    if finished(written) then
      states[key] = nil
      exp:forget(key)
      return ttl_check(ctx, written, now)
    end
  end
  if manage_err then return { requeue = true } end
  if requeue_after then return { requeue_after = math.max(requeue_after, 0) + 0.05 } end
end

plugin = {
  name = "job-controller",
  kind = JOB,
  owns = { POD },
  workers = 5,
  batch_period = batch_period(),
  -- Seconds a change of `ready` alone waits before it is written.
  ready_batch = ready_batch_period(),
  -- Reads only: a sync of a Job with completions N sees up to N pods, and
  -- copying them all on every sync made the Job's run quadratic.
  readonly = true,
  backoff = backoff,
  reconcile = reconcile,
  -- For specs.
  parse_indexes = indexes.parse,
  format_indexes = indexes.format,
  parse_duration = parse_duration,
}
return plugin
