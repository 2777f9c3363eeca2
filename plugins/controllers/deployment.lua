-- deployment: Kubernetes' Deployment sync loop (semantics 5) on the
-- controller manager. Claims ReplicaSets (adopts matching orphans, releases
-- relabelled ones), keeps one ReplicaSet per pod template named
-- <deployment>-<pod-template-hash>, rolls from old to new with RollingUpdate
-- (maxSurge / maxUnavailable) or Recreate, scales proportionally when
-- replicas change mid-rollout, honours spec.paused, prunes history beyond
-- revisionHistoryLimit, and reports status with the Available and
-- Progressing conditions (progress deadline included) and ScalingReplicaSet
-- events. Level-triggered: each sync compares the ReplicaSets with the spec.
local json = require("moonlet.json")
local selector = require("moonlet.selector")
local util = require("moonlet.controller.util")
local du = require("moonlet.controller.deployment_util")
local refs = require("moonlet.controller.refs")

local D = "apps/v1/Deployment"
local RS = "apps/v1/ReplicaSet"
local POD = "v1/Pod"

-- The selector of every Deployment seen, to map orphan RSs to them.
local selectors = require("moonlet.controller.selector_index").new()
-- ReplicaSet uid -> Deployment key, for Recreate Deployments only: their
-- pods going away is what lets the new ReplicaSet start.
local recreate_rs = {}

-- A failed write that the next sync retries (a conflict with a newer
-- object, a name collision): not worth an error event.
local RETRY = setmetatable({}, { __tostring = function() return "retry" end })

local msg_of, is_conflict, not_found = refs.message, refs.conflict, refs.not_found

-- Raises RETRY on a conflict, a descriptive error otherwise.
local function check(res, st, what)
  if res then return res end
  if is_conflict(st) or not_found(st) then error(RETRY, 0) end
  error(what .. ": " .. msg_of(st), 0)
end

local controller_ref = refs.controller_ref

local function owner_ref(d) return refs.owner_ref(d, "apps/v1", "Deployment") end

local function want(d) return d.spec.replicas or 1 end
local function size(rs) return (rs.spec or {}).replicas or 0 end
local function has_deadline(d)
  local v = d.spec.progressDeadlineSeconds
  return v ~= nil and v ~= json.null and v ~= 2147483647
end

local function concat(list, extra)
  local out = {}
  for _, x in ipairs(list) do out[#out + 1] = x end
  if extra then out[#out + 1] = extra end
  return out
end

-- {====== writes

local function update_status(run)
  local d = run.d
  local res, st = run.ctx.client:update_status(D, d)
  res = check(res, st, "update deployment status")
  d.metadata.resourceVersion = res.metadata.resourceVersion
end

-- SetDeploymentRevision, persisted with a metadata patch (the status
-- subresource keeps metadata here).
local function sync_revision(run, revision)
  local d = run.d
  local anns = d.metadata.annotations or {}
  if revision == nil or anns[du.REVISION] == revision then return end
  local res, st = run.ctx.client:patch(D, d.metadata.namespace, d.metadata.name, "merge", {
    metadata = { resourceVersion = d.metadata.resourceVersion, annotations = { [du.REVISION] = revision } },
  })
  res = check(res, st, "set deployment revision")
  d.metadata.annotations = res.metadata.annotations
  d.metadata.resourceVersion = res.metadata.resourceVersion
end

local function update_rs(run, rs)
  local res, st = run.ctx.client:update(RS, rs)
  return check(res, st, "update replica set " .. rs.metadata.name)
end

-- scaleReplicaSet: writes the size and the replica annotations.
-- @return scaled (bool), the ReplicaSet as written
local function scale_rs(run, rs, new_scale, op)
  local d = run.d
  local max = want(d) + du.max_surge(d)
  local size_changed = size(rs) ~= new_scale
  if not size_changed and not du.replicas_annotations_need_update(rs, want(d), max) then return false, rs end
  local old = size(rs)
  local copy = util.copy(rs)
  copy.spec.replicas = new_scale
  du.set_replicas_annotations(copy, want(d), max)
  local res = update_rs(run, copy)
  run.written[res.metadata.uid] = res
  if size_changed then
    run.ctx:event(d, "Normal", "ScalingReplicaSet", string.format("Scaled %s replica set %s to %d from %d",
      op or (new_scale > old and "up" or "down"), res.metadata.name, new_scale, old))
  end
  return size_changed, res
end

-- scaleReplicaSetAndRecordEvent.
local function scale_and_record(run, rs, new_scale)
  if size(rs) == new_scale then return false, rs end
  return scale_rs(run, rs, new_scale, size(rs) < new_scale and "up" or "down")
end

-- }======

-- {====== claiming ReplicaSets (ClaimReplicaSets)

local function claim(run, sel, rss)
  local d = run.d
  return refs.claim(run.ctx, { owner = d, owner_kind = D, ref = owner_ref(d), kind = RS,
    selector = sel, objects = rss })
end

-- }======

-- {====== the new ReplicaSet (getNewReplicaSet)

local function set_progressing(run, status, reason, message)
  du.set_condition(run.d.status, du.condition("Progressing", status, reason, message, run.now))
end

local function create_new(run, olds, new_revision)
  local ctx, d = run.ctx, run.d
  local st = d.status
  local hash = du.compute_hash(d.spec.template, st.collisionCount)
  local tpl = util.copy(d.spec.template)
  tpl.metadata = tpl.metadata or {}
  local labels = util.copy(tpl.metadata.labels or {})
  labels[du.HASH_LABEL] = hash
  tpl.metadata.labels = labels
  local sel = util.copy(d.spec.selector)
  sel.matchLabels = sel.matchLabels or {}
  sel.matchLabels[du.HASH_LABEL] = hash
  local rs = {
    apiVersion = "apps/v1", kind = "ReplicaSet",
    metadata = { name = d.metadata.name .. "-" .. hash, namespace = d.metadata.namespace,
                 labels = util.copy(labels), ownerReferences = json.array({ owner_ref(d) }) },
    spec = { replicas = 0, minReadySeconds = d.spec.minReadySeconds or 0, selector = sel, template = tpl },
  }
  local count = du.new_rs_new_replicas(d, concat(olds, rs), rs)
  rs.spec.replicas = count
  du.set_new_rs_annotations(d, rs, new_revision, false)
  local created, err = ctx.client:create(RS, rs)
  local already = false
  if not created then
    if type(err) == "table" and err.code == 409 then
      already = true
      local cur = ctx.client:get(RS, d.metadata.namespace, rs.metadata.name)
      local ref = cur and controller_ref(cur)
      if cur and ref and ref.uid == d.metadata.uid and du.equal_ignore_hash(d.spec.template, cur.spec.template) then
        created = cur
      else
        -- A ReplicaSet of another template holds the name: change the hash.
        st.collisionCount = (st.collisionCount or 0) + 1
        update_status(run)
        error(RETRY, 0)
      end
    else
      local msg = string.format('Failed to create new replica set "%s": %s', rs.metadata.name, msg_of(err))
      if has_deadline(d) then
        set_progressing(run, "False", "ReplicaSetCreateError", msg)
        pcall(update_status, run)
      end
      ctx:event(d, "Warning", "ReplicaSetCreateError", msg)
      error(msg, 0)
    end
  end
  if not already and count > 0 then
    ctx:event(d, "Normal", "ScalingReplicaSet",
      string.format("Scaled up replica set %s to %d", created.metadata.name, count))
  end
  sync_revision(run, tostring(new_revision))
  if not already and has_deadline(d) then
    set_progressing(run, "True", "NewReplicaSetCreated",
      string.format('Created new replica set "%s"', created.metadata.name))
    update_status(run)
  end
  return created
end

-- getAllReplicaSetsAndSyncRevision: (new RS or nil, all old RSs). The
-- new RS's revision is raised above every old one (this is how an undo
-- renumbers the revision it returns to); `create` makes it when missing.
local function get_all(run, create)
  local d = run.d
  local _, olds, existing = du.find_old(d, run.rss)
  local new_revision = du.max_revision(olds) + 1
  if existing then
    local copy = util.copy(existing)
    local changed = du.set_new_rs_annotations(d, copy, new_revision, true)
    if changed or (copy.spec.minReadySeconds or 0) ~= (d.spec.minReadySeconds or 0) then
      copy.spec.minReadySeconds = d.spec.minReadySeconds or 0
      local res = update_rs(run, copy)
      for i, rs in ipairs(run.rss) do if rs == existing then run.rss[i] = res end end
      return res, olds
    end
    sync_revision(run, (copy.metadata.annotations or {})[du.REVISION])
    if has_deadline(d) and not du.get_condition(d.status, "Progressing") then
      set_progressing(run, "True", "FoundNewReplicaSet",
        string.format('Found new replica set "%s"', copy.metadata.name))
      update_status(run)
    end
    return existing, olds
  end
  if not create then return nil, olds end
  local created = create_new(run, olds, new_revision)
  run.rss[#run.rss + 1] = created
  return created, olds
end

-- }======

-- {====== status

local function replica_failure(all, new)
  local order = {}
  if new then order[1] = new end
  for _, rs in ipairs(all) do if rs ~= new then order[#order + 1] = rs end end
  for _, rs in ipairs(order) do
    for _, c in ipairs((rs.status or {}).conditions or {}) do
      if c.type == "ReplicaFailure" and c.status == "True" then
        return { type = "ReplicaFailure", status = c.status, reason = c.reason, message = c.message,
                 lastUpdateTime = c.lastTransitionTime, lastTransitionTime = c.lastTransitionTime }
      end
    end
  end
  return nil
end

-- syncDeploymentStatus: counts and the Available condition only.
local function sync_status(run, all, new)
  local d = run.d
  local st = du.calculate_status(all, new, d, run.now)
  if du.same(d.status, st) then return end
  d.status = st
  update_status(run)
end

-- requeueStuckDeployment: look again when the progress deadline passes.
local function requeue_stuck(run, st)
  local d = run.d
  local cur = du.get_condition(d.status, "Progressing")
  if not has_deadline(d) or not cur then return nil end
  if du.complete(d, st) or cur.reason == "ProgressDeadlineExceeded" then return nil end
  local t = require("moonlet.printers.duration").parse(cur.lastUpdateTime or "") or run.now
  local after = t + d.spec.progressDeadlineSeconds - run.now
  if after < 1 then return { requeue_after = 0.2 } end
  return { requeue_after = after + 1 }
end

-- syncRolloutStatus (progress.go): counts plus Progressing and
-- ReplicaFailure conditions.
local function sync_rollout_status(run, all, new)
  local d = run.d
  local st = du.calculate_status(all, new, d, run.now)
  if not has_deadline(d) then du.remove_condition(st, "Progressing") end
  local cur = du.get_condition(d.status, "Progressing")
  local done = st.replicas == st.updatedReplicas and cur ~= nil and cur.reason == "NewReplicaSetAvailable"
  if has_deadline(d) and not done then
    local name = new and new.metadata.name
    if du.complete(d, st) then
      local msg = name and string.format('ReplicaSet "%s" has successfully progressed.', name)
        or string.format('Deployment "%s" has successfully progressed.', d.metadata.name)
      du.set_condition(st, du.condition("Progressing", "True", "NewReplicaSetAvailable", msg, run.now))
    elseif du.progressing(d, st) then
      local msg = name and string.format('ReplicaSet "%s" is progressing.', name)
        or string.format('Deployment "%s" is progressing.', d.metadata.name)
      local c = du.condition("Progressing", "True", "ReplicaSetUpdated", msg, run.now)
      if cur then
        if cur.status == "True" then c.lastTransitionTime = cur.lastTransitionTime end
        du.remove_condition(st, "Progressing")
      end
      du.set_condition(st, c)
    elseif du.timed_out(d, st, run.now) then
      local msg = name and string.format('ReplicaSet "%s" has timed out progressing.', name)
        or string.format('Deployment "%s" has timed out progressing.', d.metadata.name)
      du.set_condition(st, du.condition("Progressing", "False", "ProgressDeadlineExceeded", msg, run.now))
    end
  end
  local failure = replica_failure(all, new)
  if failure then du.set_condition(st, failure) else du.remove_condition(st, "ReplicaFailure") end
  if du.same(d.status, st) then return requeue_stuck(run, st) end
  d.status = st
  update_status(run)
end

-- }======

-- {====== strategies

-- cleanupDeployment: delete the oldest surplus of old ReplicaSets beyond
-- revisionHistoryLimit, only those scaled to 0 and observed so.
local function cleanup(run, olds)
  local d = run.d
  local limit = d.spec.revisionHistoryLimit
  if limit == nil or limit == json.null then return end
  local cleanable = {}
  for _, rs in ipairs(olds) do if not rs.metadata.deletionTimestamp then cleanable[#cleanable + 1] = rs end end
  local diff = #cleanable - limit
  if diff <= 0 then return end
  du.sort_by_revision(cleanable)
  for i = 1, diff do
    local rs = cleanable[i]
    local st = rs.status or {}
    if (st.replicas or 0) == 0 and size(rs) == 0
      and (rs.metadata.generation or 0) <= (st.observedGeneration or 0) then
      local ok, err = run.ctx.client:delete(RS, rs.metadata.namespace, rs.metadata.name)
      if not ok and not not_found(err) then error("delete old replica set: " .. msg_of(err), 0) end
    end
  end
end

-- sync.go `scale`: a Deployment whose replicas changed (or that is paused).
local function scale(run, new, olds)
  local d = run.d
  local one = du.find_active_or_latest(new, olds)
  if one then
    if size(one) ~= want(d) then scale_and_record(run, one, want(d)) end
    return
  end
  if du.is_saturated(d, new) then
    for _, old in ipairs(du.active(olds)) do scale_and_record(run, old, 0) end
    return
  end
  if (d.spec.strategy or {}).type ~= "Recreate" then
    local sizes, op = du.proportional_sizes(d, du.active(concat(olds, new)))
    for _, e in ipairs(sizes) do scale_rs(run, e.rs, e.size, op) end
  end
end

local function sync(run)
  local new, olds = get_all(run, false)
  scale(run, new, olds)
  local fresh = function(rs) return rs and (run.written[rs.metadata.uid] or rs) end
  new = fresh(new)
  for i, rs in ipairs(olds) do olds[i] = fresh(rs) end
  if run.d.spec.paused then cleanup(run, olds) end
  sync_status(run, concat(olds, new), new)
end

local function is_scaling_event(run)
  local new, olds = get_all(run, false)
  for _, rs in ipairs(du.active(concat(olds, new))) do
    local desired = math.tointeger(tonumber(((rs.metadata.annotations or {})[du.DESIRED]) or ""))
    if desired and desired ~= want(run.d) then return true end
  end
  return false
end

-- cleanupUnhealthyReplicas: scale down old RSs' unavailable pods first.
local function cleanup_unhealthy(run, olds, max_cleanup)
  du.sort_by_creation(olds)
  local total = 0
  for i, rs in ipairs(olds) do
    if total >= max_cleanup then break end
    local avail = (rs.status or {}).availableReplicas or 0
    if size(rs) ~= 0 and size(rs) ~= avail then
      -- More available than wanted: the ReplicaSet was just scaled down and
      -- its status is behind. Kubernetes fails the sync here ("invalid
      -- request to scale down") and retries; going on would scale the old
      -- ReplicaSet back up, and count pods about to go as available.
      if size(rs) < avail then error(RETRY, 0) end
      local n = math.min(max_cleanup - total, size(rs) - avail)
      local _, res = scale_and_record(run, rs, size(rs) - n)
      olds[i] = res
      total = total + n
    end
  end
  return olds, total
end

-- scaleDownOldReplicaSetsForRollingUpdate.
local function scale_down_old(run, all, olds)
  local d = run.d
  local min_available = want(d) - du.max_unavailable(d)
  local available = du.available_count(all)
  if available <= min_available then return 0 end
  du.sort_by_creation(olds)
  local total, target = 0, available - min_available
  for _, rs in ipairs(olds) do
    if total >= target then break end
    if size(rs) ~= 0 then
      local n = math.min(size(rs), target - total)
      scale_and_record(run, rs, size(rs) - n)
      total = total + n
    end
  end
  return total
end

-- reconcileOldReplicaSets.
local function reconcile_old(run, all, olds, new)
  local d = run.d
  if du.replica_count(olds) == 0 then return false end
  local min_available = want(d) - du.max_unavailable(d)
  local new_unavailable = size(new) - ((new.status or {}).availableReplicas or 0)
  local max_down = du.replica_count(all) - min_available - new_unavailable
  if max_down <= 0 then return false end
  local cleaned
  olds, cleaned = cleanup_unhealthy(run, olds, max_down)
  local scaled = scale_down_old(run, concat(olds, new), olds)
  return cleaned + scaled > 0
end

-- reconcileNewReplicaSet.
local function reconcile_new(run, all, new)
  local d = run.d
  if size(new) == want(d) then return false end
  if size(new) > want(d) then return (scale_and_record(run, new, want(d))) end
  return (scale_and_record(run, new, du.new_rs_new_replicas(d, all, new)))
end

-- The ReplicaSets as this sync left them: what it wrote replaces what it read.
local function refreshed(run, new, olds)
  local function fresh(rs) return rs and (run.written[rs.metadata.uid] or rs) end
  local out = {}
  for i, rs in ipairs(olds) do out[i] = fresh(rs) end
  return fresh(new), out
end

-- rolloutRolling. Kubernetes returns after a scale up or a scale down, and
-- the write's own watch event brings the next sync, which computes the other
-- direction from the sizes just written. Here that next step runs at once on
-- those sizes (same maxSurge / maxUnavailable arithmetic, same order of
-- writes), saving a round trip through the informer on every step of a
-- rollout. A scale down still needs available pods in the cache, so the
-- ready floor is kept exactly as the next sync would keep it.
local function rollout_rolling(run)
  local new, olds = get_all(run, true)
  local all = concat(olds, new)
  local up = reconcile_new(run, all, new)
  if up then
    new, olds = refreshed(run, new, olds)
    all = concat(olds, new)
  end
  if reconcile_old(run, all, du.active(olds), new) then
    new, olds = refreshed(run, new, olds)
    all = concat(olds, new)
    if not up then reconcile_new(run, all, new) end
    new, olds = refreshed(run, new, olds)
    return sync_rollout_status(run, concat(olds, new), new)
  end
  if up then return sync_rollout_status(run, all, new) end
  if du.complete(run.d, run.d.status) then cleanup(run, olds) end
  return sync_rollout_status(run, all, new)
end

-- oldPodsRunning: any pod of an old ReplicaSet not Succeeded/Failed.
local function old_pods_running(run, new, olds)
  if du.actual_count(olds) > 0 then return true end
  local uids = {}
  for _, rs in ipairs(olds) do uids[rs.metadata.uid] = true end
  for _, pod in ipairs(run.ctx:list(POD, { namespace = run.d.metadata.namespace })) do
    local ref = controller_ref(pod)
    if ref and uids[ref.uid] and (not new or ref.uid ~= new.metadata.uid) then
      local ph = (pod.status or {}).phase
      if ph ~= "Succeeded" and ph ~= "Failed" then return true end
    end
  end
  return false
end

local function rollout_recreate(run)
  local new, olds = get_all(run, false)
  local all = concat(olds, new)
  local scaled = false
  for _, rs in ipairs(du.active(olds)) do
    if scale_and_record(run, rs, 0) then scaled = true end
  end
  if scaled then return sync_rollout_status(run, all, new) end
  if old_pods_running(run, new, olds) then return sync_rollout_status(run, all, new) end
  if not new then
    new, olds = get_all(run, true)
    all = concat(olds, new)
  end
  scale_and_record(run, new, want(run.d))
  if du.complete(run.d, run.d.status) then cleanup(run, olds) end
  return sync_rollout_status(run, all, new)
end

-- checkPausedConditions.
local function check_paused(run)
  local d = run.d
  if not has_deadline(d) then return end
  local cond = du.get_condition(d.status, "Progressing")
  if cond and cond.reason == "ProgressDeadlineExceeded" then return end
  local paused_cond = cond ~= nil and cond.reason == "DeploymentPaused"
  if d.spec.paused and not paused_cond then
    set_progressing(run, "Unknown", "DeploymentPaused", "Deployment is paused")
  elseif not d.spec.paused and paused_cond then
    set_progressing(run, "Unknown", "DeploymentResumed", "Deployment is resumed")
  else
    return
  end
  update_status(run)
end

-- }======

local function remember(key, d, sel, rss)
  selectors:set(key, d.metadata.namespace, sel)
  for uid, k in pairs(recreate_rs) do if k == key then recreate_rs[uid] = nil end end
  if (d.spec.strategy or {}).type == "Recreate" then
    for _, rs in ipairs(rss) do recreate_rs[rs.metadata.uid] = key end
  end
end

local function forget(key)
  selectors:forget(key)
  for uid, k in pairs(recreate_rs) do if k == key then recreate_rs[uid] = nil end end
end

local function sync_deployment(ctx, key, d)
  local run = { ctx = ctx, d = d, now = ctx.now(), written = {} }
  d.status = d.status or {}
  d.metadata.annotations = d.metadata.annotations or {}
  local sel = selector.from_table(d.spec.selector or {})
  if not sel or sel:empty() then
    ctx:event(d, "Warning", "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
    if (d.status.observedGeneration or 0) < (d.metadata.generation or 0) then
      d.status.observedGeneration = d.metadata.generation
      update_status(run)
    end
    return
  end
  local rss = claim(run, sel, ctx:list(RS, { namespace = d.metadata.namespace }))
  if not rss then return end -- the Deployment went away meanwhile
  run.rss = rss
  remember(key, d, sel, rss)
  if d.metadata.deletionTimestamp then
    local new, olds = get_all(run, false)
    return sync_status(run, concat(olds, new), new)
  end
  check_paused(run)
  if d.spec.paused then return sync(run) end
  if is_scaling_event(run) then return sync(run) end
  if (d.spec.strategy or {}).type == "Recreate" then return rollout_recreate(run) end
  return rollout_rolling(run)
end

-- Orphan ReplicaSets go to every Deployment whose selector matches them
-- (adoption); owned ones reach their owner through `owns`.
local function rs_to_deployments(rs)
  if controller_ref(rs) then return nil end
  return selectors:matching(rs)
end

local function pod_to_deployment(pod)
  local ref = controller_ref(pod)
  return ref and recreate_rs[ref.uid] or nil
end

return {
  name = "deployment-controller",
  kind = D,
  owns = { RS },
  watches = { { kind = RS, map = rs_to_deployments }, { kind = POD, map = pod_to_deployment } },
  workers = 1,

  reconcile = function(ctx, key, d)
    if not d then
      forget(key)
      return
    end
    local ok, res = pcall(sync_deployment, ctx, key, d)
    if ok then return res end
    if res == RETRY then return { requeue = true } end
    error(res, 0)
  end,
}
