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
local json = require("moonlet.json")
local selector = require("moonlet.selector")
local util = require("moonlet.controller.util")
local refs = require("moonlet.controller.refs")
local expectations = require("moonlet.controller.expectations")
local slowstart = require("moonlet.controller.slowstart")
local podutil = require("moonlet.controller.podutil")
local duration = require("moonlet.printers.duration")
local go_duration = require("moonlet.go_duration")

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

local function pod_index(pod)
  local v = (pod.metadata.annotations or {})[INDEX_KEY] or (pod.metadata.labels or {})[INDEX_KEY]
  local n = v and v:match("^%d+$") and tonumber(v)
  return n and math.tointeger(n) or nil
end

-- {====== completed indexes ("1,3-5,7")

--- Parses a completedIndexes string into a set of integers below `limit`.
local function parse_indexes(s, limit)
  local set = {}
  for part in tostring(s or ""):gmatch("[^,]+") do
    local a, b = part:match("^(%d+)%-(%d+)$")
    a, b = tonumber(a or part), tonumber(b or a or part)
    if a and b then
      for i = math.tointeger(a), math.min(math.tointeger(b), limit - 1) do set[i] = true end
    end
  end
  return set
end

--- Formats a set of integers as Kubernetes' interval list.
local function format_indexes(set)
  local list = {}
  for i in pairs(set) do list[#list + 1] = i end
  table.sort(list)
  local out, i = {}, 1
  while i <= #list do
    local j = i
    while j < #list and list[j + 1] == list[j] + 1 do j = j + 1 end
    out[#out + 1] = i == j and tostring(list[i]) or (list[i] .. "-" .. list[j])
    i = j + 1
  end
  return table.concat(out, ",")
end

-- }======

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

-- The pod for `job` (and completion `index` when Indexed).
local function pod_from_template(job, index)
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

-- Creates n pods in slow-start batches (1, 2, 4, ...); `indexes` (Indexed)
-- names the index of each. @return created, error message or nil
local function create_pods(ctx, key, job, n, indexes, now)
  local created, err = slowstart.run(n, function(i)
    local pod, st = ctx.client:create(POD, pod_from_template(job, indexes and indexes[i] or nil))
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

-- The delay before the next replacement pod (backoffRecord.getRemainingTime).
local function remaining_backoff(state, now)
  local n = state.failures_since_success or 0
  if n == 0 or not state.last_failure then return 0 end
  local d = backoff.initial
  for _ = 2, n do
    d = d * 2
    if d >= backoff.max then d = backoff.max break end
  end
  local elapsed = now - state.last_failure
  if d < elapsed then return 0 end
  return d - elapsed
end

-- Counts finished pods once each: the status keeps counts of pods since
-- deleted; pods first seen here are added. A pod being deleted before it
-- succeeded counts as failed (isPodFailed), except in a suspended Job.
local function count(state, job, pods, now)
  local st = is_table(job.status) and job.status or {}
  local fresh = state.counted == nil
  if fresh then state.counted = {} end
  local present_s, present_f = 0, 0
  local new_s, new_f = 0, 0
  for _, p in ipairs(pods) do
    local uid, ph = p.metadata.uid, phase(p)
    local verdict
    if ph == "Succeeded" then verdict = "s"
    elseif ph == "Failed" or (p.metadata.deletionTimestamp and not suspended(job)
      and not state.deleted_by_suspend[uid]) then verdict = "f" end
    if verdict then
      if verdict == "s" then present_s = present_s + 1 else present_f = present_f + 1 end
      if not state.counted[uid] then
        state.counted[uid] = verdict
        if not fresh then
          if verdict == "s" then new_s = new_s + 1 else new_f = new_f + 1 end
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
    if new_f > 0 then
      state.failures_since_success = (state.failures_since_success or 0) + new_f
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
local function manage(ctx, key, state, job, act, succeeded, completed_set, now)
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
  local diff = math.min(want - #act, MAX_PER_SYNC)
  if diff <= 0 then return #act end
  local wait = remaining_backoff(state, now)
  if wait > 0 then return #act, nil, wait end
  local indexes
  if indexed then
    local busy = {}
    for _, p in ipairs(act) do local i = pod_index(p); if i then busy[i] = true end end
    indexes = {}
    for i = 0, spec.completions - 1 do
      if #indexes >= diff then break end
      if not completed_set[i] and not busy[i] then indexes[#indexes + 1] = i end
    end
    diff = #indexes
  end
  local created, err = create_pods(ctx, key, job, diff, indexes, now)
  return #act + created, err
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
  local completed_set
  local old = is_table(job.status) and job.status or {}
  if indexed then
    completed_set = parse_indexes(old.completedIndexes, spec.completions or 0)
    for _, p in ipairs(pods) do
      local i = pod_index(p)
      if phase(p) == "Succeeded" and i and i < (spec.completions or 0) then completed_set[i] = true end
    end
    succeeded = 0
    for _ in pairs(completed_set) do succeeded = succeeded + 1 end
  end

  local st = util.copy(old)
  st.conditions = json.array(util.copy(old.conditions or {}))
  if not st.startTime and not suspended(job) then st.startTime = rfc3339(now) end

  local interim = find_condition(job, "FailureTarget") or find_condition(job, "SuccessCriteriaMet")
  local requeue_after, manage_err
  if not interim then
    local limit = spec.backoffLimit or 6
    local start = duration.parse(st.startTime)
    local ads = spec.activeDeadlineSeconds
    if failed > limit or past_backoff_on_failure(job, pods) then
      interim = new_condition("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit", now)
    elseif math.type(ads) and start and not suspended(job) and now - start >= ads then
      interim = new_condition("FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline", now)
    else
      if math.type(ads) and start and not suspended(job) then requeue_after = start + ads - now end
      local n_active, err, wait = #act, nil, nil
      if not job.metadata.deletionTimestamp then
        n_active, err, wait = manage(ctx, key, state, job, act, succeeded, completed_set or {}, now)
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
    local s = format_indexes(completed_set)
    st.completedIndexes = s ~= "" and s or nil
  end
  st.uncountedTerminatedPods = st.uncountedTerminatedPods or json.object({})
  if #st.conditions == 0 then st.conditions = nil end
  if not same_status(old, st) then
    job.status = st
    local ok, err = ctx.client:update_status(JOB, job)
    if not ok then
      if conflict(err) then return { requeue = true } end
      if not_found(err) then return end
      error("update status: " .. msg_of(err), 0)
    end
    if finished(job) then
      states[key] = nil
      exp:forget(key)
      return ttl_check(ctx, job, now)
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
  backoff = backoff,
  reconcile = reconcile,
  -- For specs.
  parse_indexes = parse_indexes,
  format_indexes = format_indexes,
  parse_duration = parse_duration,
}
return plugin
