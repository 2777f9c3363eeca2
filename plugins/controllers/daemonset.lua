-- daemonset: one daemon pod on every eligible node (semantics 8): per node
-- shouldRun / shouldContinueRunning from nodeSelector, required node affinity
-- and taints; creates pods pinned by node affinity, deletes misplaced, extra
-- and failed ones (per-node back-off), rolls templates out (RollingUpdate or
-- OnDelete) through ControllerRevisions, reports status. Built on the manager.
local json = require("moonlet.json")
local selector = require("moonlet.selector")
local dutil = require("moonlet.controller.deployment_util")
local nodematch = require("moonlet.nodematch")
local refs = require("moonlet.controller.refs")
local podutil = require("moonlet.controller.podutil")
local slowstart = require("moonlet.controller.slowstart")
local duration = require("moonlet.printers.duration")

local DS = "apps/v1/DaemonSet"
local POD = "v1/Pod"
local NODE = "v1/Node"
local CR = "apps/v1/ControllerRevision"
local BURST = 250
local BACKOFF_INITIAL, BACKOFF_MAX = 1, 900
local HASH_LABEL = "controller-revision-hash"
local GENERATION_LABEL = "pod-template-generation"
local TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"

local M = {}

local expectations = require("moonlet.controller.expectations").new({ kind = POD })
-- The selector of every DaemonSet seen, to map pods and nodes to them.
local selectors = require("moonlet.controller.selector_index").new()
-- "<ds uid>/<node>" -> { delay =, last = } (failedPodsBackoff)
local backoff = {}

local function is_table(v) return type(v) == "table" end

local msg_of, conflict, not_found = refs.message, refs.conflict, refs.not_found
local function exists(st) return is_table(st) and (st.code == 409 and st.reason == "AlreadyExists") end

local controller_ref = refs.controller_ref
local pod_ready, available = podutil.ready, podutil.available

local function owner_ref(ds) return refs.owner_ref(ds, "apps/v1", "DaemonSet") end

local function creation(pod) return duration.parse(pod.metadata.creationTimestamp or "") or 0 end

-- podByCreationTimestampAndPhase: bound pods first, then older first,
-- then by name.
local function older_first(a, b)
  local ba, bb = (a.spec.nodeName or "") ~= "", (b.spec.nodeName or "") ~= ""
  if ba ~= bb then return ba end
  local ta, tb = creation(a), creation(b)
  if ta ~= tb then return ta < tb end
  return a.metadata.name < b.metadata.name
end

-- {====== node predicates

--- NodeShouldRunDaemonPod: (shouldRun, shouldContinueRunning) for `ds` on
--- `node`, with the daemon pod's own tolerations.
function M.should_run(ds, node)
  local spec = M.pod_spec(ds, node.metadata.name)
  if (spec.nodeName or "") ~= "" and spec.nodeName ~= node.metadata.name then return false, false end
  -- the template's own affinity: the pod's was replaced by the node pin
  local tspec = (ds.spec.template or {}).spec or {}
  if not nodematch.selector_matches(spec, node) or not nodematch.affinity_matches(tspec, node) then
    return false, false
  end
  local taints = (node.spec or {}).taints
  if nodematch.untolerated(spec.tolerations, taints, function(e) return e == "NoExecute" end) then
    return false, false
  end
  if nodematch.untolerated(spec.tolerations, taints, function(e) return e == "NoSchedule" end) then
    return false, true
  end
  return true, true
end

-- AddOrUpdateDaemonPodTolerations: daemons survive node problems and run
-- on cordoned nodes.
local AUTO_TOLERATIONS = {
  { key = "node.kubernetes.io/not-ready", operator = "Exists", effect = "NoExecute" },
  { key = "node.kubernetes.io/unreachable", operator = "Exists", effect = "NoExecute" },
  { key = "node.kubernetes.io/disk-pressure", operator = "Exists", effect = "NoSchedule" },
  { key = "node.kubernetes.io/memory-pressure", operator = "Exists", effect = "NoSchedule" },
  { key = "node.kubernetes.io/pid-pressure", operator = "Exists", effect = "NoSchedule" },
  { key = "node.kubernetes.io/unschedulable", operator = "Exists", effect = "NoSchedule" },
}
local NETWORK_UNAVAILABLE = { key = "node.kubernetes.io/network-unavailable", operator = "Exists",
  effect = "NoSchedule" }

local function add_toleration(tols, t)
  for i, cur in ipairs(tols) do
    -- MatchToleration: same key, operator, value and effect -> replaced
    if (cur.key or "") == t.key and (cur.operator or "Equal") == t.operator and (cur.value or "") == ""
        and (cur.effect or "") == t.effect then
      tols[i] = json.copy(t)
      return
    end
  end
  tols[#tols + 1] = json.copy(t)
end

--- The daemon pod's spec for `node_name`: the template's, with the
--- automatic tolerations and required node affinity replaced by
--- `matchFields metadata.name In [node]` (ReplaceDaemonSetPodNodeNameNodeAffinity).
function M.pod_spec(ds, node_name)
  local spec = json.copy((ds.spec.template or {}).spec or {})
  local tols = is_table(spec.tolerations) and spec.tolerations or {}
  for _, t in ipairs(AUTO_TOLERATIONS) do add_toleration(tols, t) end
  if spec.hostNetwork then add_toleration(tols, NETWORK_UNAVAILABLE) end
  spec.tolerations = json.array(tols)
  local term = { matchFields = json.array({ { key = "metadata.name", operator = "In",
    values = json.array({ node_name }) } }) }
  spec.affinity = is_table(spec.affinity) and spec.affinity or {}
  spec.affinity.nodeAffinity = is_table(spec.affinity.nodeAffinity) and spec.affinity.nodeAffinity or {}
  local na = spec.affinity.nodeAffinity
  na.requiredDuringSchedulingIgnoredDuringExecution = { nodeSelectorTerms = json.array({ term }) }
  return spec
end

--- GetTargetNodeName: spec.nodeName, else the node the required affinity pins it to.
function M.target_node(pod)
  local spec = pod.spec or {}
  if (spec.nodeName or "") ~= "" then return spec.nodeName end
  local na = is_table(spec.affinity) and spec.affinity.nodeAffinity
  local req = is_table(na) and na.requiredDuringSchedulingIgnoredDuringExecution
  for _, term in ipairs(is_table(req) and req.nodeSelectorTerms or {}) do
    for _, f in ipairs(term.matchFields or {}) do
      if f.key == "metadata.name" and f.operator == "In" and #(f.values or {}) == 1 then return f.values[1] end
    end
  end
  return nil
end

-- }======


-- {====== history (ControllerRevisions)

local function template_generation(ds)
  return ((ds.metadata.annotations or {})[TEMPLATE_GENERATION])
end

-- getPatch: what a revision stores, {"spec":{"template":{..., "$patch":"replace"}}}.
local function patch_of(ds)
  local tpl = json.copy(ds.spec.template or {})
  tpl["$patch"] = "replace"
  return { spec = { template = tpl } }
end

local function matches_history(ds, cr)
  return dutil.canonical(patch_of(ds)) == dutil.canonical(cr.data)
end

-- The revisions this DaemonSet controls (adopting matching orphans).
local function claim_histories(ctx, ds, sel)
  local out = {}
  for _, cr in ipairs(ctx:list(CR, { namespace = ds.metadata.namespace })) do
    local ref = controller_ref(cr)
    if ref and ref.uid == ds.metadata.uid then
      out[#out + 1] = cr
    elseif not ref and sel:matches(cr.metadata.labels or {}) and not cr.metadata.deletionTimestamp then
      local refs = json.copy(cr.metadata.ownerReferences or {})
      refs[#refs + 1] = owner_ref(ds)
      local res = ctx.client:patch(CR, cr.metadata.namespace, cr.metadata.name, "merge", {
        metadata = { resourceVersion = cr.metadata.resourceVersion, ownerReferences = json.array(refs) } })
      if res then out[#out + 1] = res end
    end
  end
  return out
end

-- constructHistory: the current revision (created, or renumbered to the
-- newest) and the old ones. @return cur, old | nil, error message
local function construct_history(ctx, ds, sel)
  local cur_list, old, max_rev = {}, {}, 0
  for _, cr in ipairs(claim_histories(ctx, ds, sel)) do
    if matches_history(ds, cr) then
      cur_list[#cur_list + 1] = cr
    else
      old[#old + 1] = cr
      if (cr.revision or 0) > max_rev then max_rev = cr.revision end
    end
  end
  local next_rev = max_rev + 1
  if #cur_list == 0 then
    local status = ds.status or {}
    local hash = dutil.compute_hash(ds.spec.template, status.collisionCount)
    local labels = json.copy(((ds.spec.template or {}).metadata or {}).labels or {})
    labels[HASH_LABEL] = hash
    local cr = { apiVersion = "apps/v1", kind = "ControllerRevision",
      metadata = { name = ds.metadata.name .. "-" .. hash, namespace = ds.metadata.namespace,
        labels = labels, annotations = ds.metadata.annotations and json.copy(ds.metadata.annotations) or nil,
        ownerReferences = json.array({ owner_ref(ds) }) },
      data = patch_of(ds), revision = next_rev }
    local res, st = ctx.client:create(CR, cr)
    if res then return res, old end
    if not exists(st) then return nil, "creating revision: " .. msg_of(st) end
    local existing = ctx.client:get(CR, ds.metadata.namespace, cr.metadata.name)
    if existing and matches_history(ds, existing) then return existing, old end
    -- A different template hashed to the same name: bump collisionCount
    -- (unless ours was stale) and come back with a new hash.
    local live = ctx.client:get(DS, ds.metadata.namespace, ds.metadata.name)
    if live and (live.status or {}).collisionCount == status.collisionCount then
      live.status = live.status or {}
      live.status.collisionCount = (status.collisionCount or 0) + 1
      ctx.client:update_status(DS, live)
    end
    return nil, string.format("revision name %s collides with another template", cr.metadata.name)
  end
  -- dedupCurHistories: keep the highest revision, move pods off the others.
  table.sort(cur_list, function(a, b) return (a.revision or 0) > (b.revision or 0) end)
  local cur = cur_list[1]
  for i = 2, #cur_list do
    local dup = cur_list[i]
    local dhash = (dup.metadata.labels or {})[HASH_LABEL]
    for _, p in ipairs(ctx:list(POD, { namespace = ds.metadata.namespace })) do
      if dhash and (p.metadata.labels or {})[HASH_LABEL] == dhash then
        ctx.client:patch(POD, p.metadata.namespace, p.metadata.name, "merge",
          { metadata = { labels = { [HASH_LABEL] = cur.metadata.labels[HASH_LABEL] } } })
      end
    end
    ctx.client:delete(CR, dup.metadata.namespace, dup.metadata.name)
  end
  if (cur.revision or 0) < next_rev then
    local res, st = ctx.client:patch(CR, cur.metadata.namespace, cur.metadata.name, "merge",
      { revision = next_rev })
    if not res then return nil, "renumbering revision: " .. msg_of(st) end
    cur = res
  end
  return cur, old
end

-- cleanupHistory: keep revisionHistoryLimit old revisions, oldest go first,
-- never one that live pods still carry.
local function cleanup_history(ctx, ds, old, node_pods)
  local to_kill = #old - (ds.spec.revisionHistoryLimit or 10)
  if to_kill <= 0 then return end
  local live = {}
  for _, pods in pairs(node_pods) do
    for _, p in ipairs(pods) do
      local h = (p.metadata.labels or {})[HASH_LABEL]
      if h then live[h] = true end
    end
  end
  table.sort(old, function(a, b) return (a.revision or 0) < (b.revision or 0) end)
  for _, cr in ipairs(old) do
    if to_kill <= 0 then break end
    if not live[(cr.metadata.labels or {})[HASH_LABEL] or ""] then
      ctx.client:delete(CR, cr.metadata.namespace, cr.metadata.name)
      to_kill = to_kill - 1
    end
  end
end

-- }======

-- {====== pods

-- ClaimPods: owned pods whose labels still match, released otherwise;
-- matching orphans adopted after a fresh read of the DaemonSet.
local function claim(ctx, ds, sel, pods)
  return refs.claim(ctx, { owner = ds, owner_kind = DS, ref = owner_ref(ds), kind = POD,
    selector = sel, objects = pods })
end

-- getNodesToDaemonPods: node name -> claimed pods targeting it (finished
-- pods already being deleted left out).
local function nodes_to_pods(pods)
  local out = {}
  for _, p in ipairs(pods) do
    local ph = (p.status or {}).phase
    if not ((ph == "Succeeded" or ph == "Failed") and p.metadata.deletionTimestamp) then
      local n = M.target_node(p)
      if n then
        out[n] = out[n] or {}
        out[n][#out[n] + 1] = p
      end
    end
  end
  return out
end

local function new_pod(ds, node_name, hash)
  local md = (ds.spec.template or {}).metadata or {}
  local labels = json.copy(md.labels or {})
  local gen = template_generation(ds)
  if gen then labels[GENERATION_LABEL] = gen end
  if hash then labels[HASH_LABEL] = hash end
  local prefix = ds.metadata.name .. "-"
  return {
    apiVersion = "v1", kind = "Pod",
    metadata = {
      generateName = prefix, namespace = ds.metadata.namespace, labels = labels,
      annotations = md.annotations and json.copy(md.annotations) or nil,
      finalizers = md.finalizers and json.copy(md.finalizers) or nil,
      ownerReferences = json.array({ owner_ref(ds) }),
    },
    spec = M.pod_spec(ds, node_name),
  }
end

-- IsPodUpdated: the current hash, or the current template generation.
local function updated(ds, pod, hash)
  local labels = pod.metadata.labels or {}
  local gen = template_generation(ds)
  return (hash ~= nil and labels[HASH_LABEL] == hash) or (gen ~= nil and labels[GENERATION_LABEL] == gen)
end

-- failedPodsBackoff (1 s doubling to 15 min).
local function in_backoff(bkey, now)
  local b = backoff[bkey]
  if not b then return nil end
  local left = b.last + b.delay - now
  if left > 0 then return left end
  return nil
end

local function backoff_next(bkey, now)
  local b = backoff[bkey]
  if not b or now - b.last > 2 * BACKOFF_MAX then
    backoff[bkey] = { delay = BACKOFF_INITIAL, last = now }
  else
    b.delay = math.min(b.delay * 2, BACKOFF_MAX)
    b.last = now
  end
end

-- podsShouldBeOnNode. @return nodes needing a pod, pods to delete, requeue delay
function M.plan(ds, nodes, node_pods, hash, now, on_event)
  local need, del, requeue = {}, {}, nil
  local surge = M.allows_surge(ds)
  local known = {}
  for _, node in ipairs(nodes) do
    local name = node.metadata.name
    known[name] = true
    local run, keep = M.should_run(ds, node)
    local pods = node_pods[name]
    if run and not pods then
      need[#need + 1] = name
    elseif keep then
      local running = {}
      for _, pod in ipairs(pods or {}) do
        if not pod.metadata.deletionTimestamp then
          local ph = (pod.status or {}).phase
          if ph == "Failed" or ph == "Succeeded" then
            local bkey = ds.metadata.uid .. "/" .. name
            local left = ph == "Failed" and in_backoff(bkey, now)
            if left then
              requeue = math.min(requeue or left, left)
            else
              if ph == "Failed" then
                backoff_next(bkey, now)
                on_event("Warning", "FailedDaemonPod", string.format(
                  "Found failed daemon pod %s/%s on node %s, will try to kill it",
                  pod.metadata.namespace, pod.metadata.name, name))
              else
                on_event("Normal", "SucceededDaemonPod", string.format(
                  "Found succeeded daemon pod %s/%s on node %s, will try to delete it",
                  pod.metadata.namespace, pod.metadata.name, name))
              end
              del[#del + 1] = pod
            end
          else
            running[#running + 1] = pod
          end
        end
      end
      table.sort(running, older_first)
      if not surge then
        for i = 2, #running do del[#del + 1] = running[i] end
      elseif #running == 0 then
        if run then need[#need + 1] = name end
      elseif #running > 1 then
        -- Surging: at most the oldest new and the oldest old pod; the old
        -- one goes once the new one is available (or if it is not ready).
        local new_p, old_p
        for _, p in ipairs(running) do
          if updated(ds, p, hash) then
            if not new_p then new_p = p else del[#del + 1] = p end
          else
            if not old_p then old_p = p else del[#del + 1] = p end
          end
        end
        if new_p and old_p and (not pod_ready(old_p) or available(new_p, ds.spec.minReadySeconds, now)) then
          del[#del + 1] = old_p
        end
      end
    elseif pods then
      for _, pod in ipairs(pods) do
        if not pod.metadata.deletionTimestamp then del[#del + 1] = pod end
      end
    end
  end
  -- getUnscheduledPodsWithoutNode: pinned to a node that no longer exists
  -- and never bound.
  local gone = {}
  for name in pairs(node_pods) do if not known[name] then gone[#gone + 1] = name end end
  table.sort(gone)
  for _, name in ipairs(gone) do
    for _, pod in ipairs(node_pods[name]) do
      if (pod.spec.nodeName or "") == "" and not pod.metadata.deletionTimestamp then del[#del + 1] = pod end
    end
  end
  return need, del, requeue
end

function M.allows_surge(ds)
  local st = ds.spec.updateStrategy or {}
  if st.type ~= "RollingUpdate" or not is_table(st.rollingUpdate) then return false end
  local v = dutil.scaled_value(st.rollingUpdate.maxSurge, 1, true)
  return (v or 0) ~= 0
end

-- updatedDesiredNodeCounts: maxSurge, maxUnavailable (both rounded up;
-- both 0 -> 1 unavailable) over the nodes that should run the pod.
local function desired_counts(ds, nodes)
  local desired = 0
  for _, node in ipairs(nodes) do
    if M.should_run(ds, node) then desired = desired + 1 end
  end
  local ru = (ds.spec.updateStrategy or {}).rollingUpdate or {}
  local surge = dutil.scaled_value(ru.maxSurge, desired, true) or 0
  local unavailable = dutil.scaled_value(ru.maxUnavailable, desired, true) or 0
  if surge == 0 and unavailable == 0 then unavailable = 1 end
  return surge, unavailable
end

-- findUpdatedPodsOnNode. @return new, old, ok
local function split_pods(ds, pods, hash)
  local new_p, old_p
  for _, p in ipairs(pods) do
    if not p.metadata.deletionTimestamp then
      if updated(ds, p, hash) then
        if new_p then return nil, nil, false end
        new_p = p
      else
        if old_p then return nil, nil, false end
        old_p = p
      end
    end
  end
  return new_p, old_p, true
end

--- rollingUpdate. @return old pods to delete, nodes to create on
function M.rolling_plan(ds, nodes, node_pods, hash, now)
  local surge, max_unavailable = desired_counts(ds, nodes)
  local min_ready = ds.spec.minReadySeconds
  local names = {}
  for n in pairs(node_pods) do names[#names + 1] = n end
  table.sort(names)
  if surge == 0 then
    local unavailable, allowed, candidates = 0, {}, {}
    for _, n in ipairs(names) do
      local new_p, old_p, ok = split_pods(ds, node_pods[n], hash)
      if not ok or (not new_p and not old_p) or (new_p and old_p) then
        unavailable = unavailable + 1
      elseif new_p then
        if not available(new_p, min_ready, now) then unavailable = unavailable + 1 end
      elseif not available(old_p, min_ready, now) then
        allowed[#allowed + 1] = old_p
      elseif unavailable < max_unavailable then
        candidates[#candidates + 1] = old_p
      end
    end
    local room = math.max(0, math.min(max_unavailable - unavailable, #candidates))
    for i = 1, room do allowed[#allowed + 1] = candidates[i] end
    return allowed, {}
  end
  local by_name = {}
  for _, node in ipairs(nodes) do by_name[node.metadata.name] = node end
  local surging, allowed, candidates, del = 0, {}, {}, {}
  for _, n in ipairs(names) do
    local new_p, old_p, ok = split_pods(ds, node_pods[n], hash)
    if not ok then
      surging = surging + 1
    elseif old_p and not new_p then
      if not available(old_p, min_ready, now) then
        if by_name[n] and M.should_run(ds, by_name[n]) then allowed[#allowed + 1] = n end
      elseif surging < surge then
        candidates[#candidates + 1] = n
      end
    elseif old_p and new_p then
      if available(new_p, min_ready, now) then del[#del + 1] = old_p else surging = surging + 1 end
    end
  end
  local room = math.max(0, math.min(surge - surging, #candidates))
  for i = 1, room do allowed[#allowed + 1] = candidates[i] end
  return del, allowed
end

-- syncNodes: deletes, then creates in slow-start batches (1, 2, 4, ...).
-- @return error message or nil
local function sync_nodes(ctx, key, ds, to_delete, to_create, hash, now)
  local _, failed = expectations:delete_pods(ctx, key, ds, to_delete, now)
  local _, err = slowstart.run(math.min(#to_create, BURST), function(i)
    local pod, st = ctx.client:create(POD, new_pod(ds, to_create[i], hash))
    if not pod then
      ctx:event(ds, "Warning", "FailedCreate", "Error creating: " .. msg_of(st))
      return nil, msg_of(st)
    end
    expectations:created(key, pod.metadata.name, now)
    ctx:event(ds, "Normal", "SuccessfulCreate", "Created pod: " .. pod.metadata.name)
    return pod
  end)
  if err then return err end
  return failed
end

-- }======

-- {====== status

--- updateDaemonSetStatus counts. @return status table, seconds until a
--- ready pod becomes available (or nil)
function M.compute_status(ds, nodes, node_pods, hash, now)
  local st = { desiredNumberScheduled = 0, currentNumberScheduled = 0, numberMisscheduled = 0,
    numberReady = 0, updatedNumberScheduled = 0, numberAvailable = 0, numberUnavailable = 0,
    observedGeneration = ds.metadata.generation }
  local min_ready = ds.spec.minReadySeconds or 0
  local next_check
  for _, node in ipairs(nodes) do
    local run = M.should_run(ds, node)
    local pods = node_pods[node.metadata.name]
    if run then
      st.desiredNumberScheduled = st.desiredNumberScheduled + 1
      if pods and #pods > 0 then
        st.currentNumberScheduled = st.currentNumberScheduled + 1
        table.sort(pods, older_first)
        local pod = pods[1]
        local ready, since = pod_ready(pod)
        if ready then
          st.numberReady = st.numberReady + 1
          if available(pod, min_ready, now) then
            st.numberAvailable = st.numberAvailable + 1
          else
            local wait = (duration.parse(since or "") or now) + min_ready - now
            if not next_check or wait < next_check then next_check = wait end
          end
        end
        if updated(ds, pod, hash) then st.updatedNumberScheduled = st.updatedNumberScheduled + 1 end
      end
    elseif pods and #pods > 0 then
      st.numberMisscheduled = st.numberMisscheduled + 1
    end
  end
  st.numberUnavailable = st.desiredNumberScheduled - st.numberAvailable
  local old = ds.status or {}
  if old.collisionCount ~= nil then st.collisionCount = old.collisionCount end
  if old.conditions ~= nil then st.conditions = old.conditions end
  return st, next_check
end

local STATUS_FIELDS = { "desiredNumberScheduled", "currentNumberScheduled", "numberMisscheduled",
  "numberReady", "updatedNumberScheduled", "numberAvailable", "numberUnavailable", "observedGeneration" }

local function same_status(a, b)
  a, b = a or {}, b or {}
  for _, f in ipairs(STATUS_FIELDS) do
    if (a[f] or 0) ~= (b[f] or 0) then return false end
  end
  return true
end

-- }======

local function ds_keys() return selectors:keys() end

local function pod_to_sets(pod) return selectors:matching(pod) end

local function reconcile(ctx, key, ds)
  if not ds then
    expectations:forget(key)
    selectors:forget(key)
    return
  end
  local ns = ds.metadata.namespace
  local sel = selector.from_table(ds.spec.selector)
  if not sel then return end
  selectors:set(key, ns, sel)
  if ds.metadata.deletionTimestamp then return end
  local now = ctx.now()
  local nodes = ctx:list(NODE)
  local cur, old = construct_history(ctx, ds, sel)
  if not cur then error(old, 0) end
  local hash = (cur.metadata.labels or {})[HASH_LABEL]

  local ok_exp = expectations:satisfied(ctx, key, ns, now)
  local pods = claim(ctx, ds, sel, ctx:list(POD, { namespace = ns }))
  if not pods then return end
  local node_pods = nodes_to_pods(pods)
  local requeue, manage_err
  if ok_exp then
    local need, del
    need, del, requeue = M.plan(ds, nodes, node_pods, hash, now, function(type_, reason, msg)
      ctx:event(ds, type_, reason, msg)
    end)
    if #need > 0 or #del > 0 then
      manage_err = sync_nodes(ctx, key, ds, del, need, hash, now)
    elseif (ds.spec.updateStrategy or {}).type == "RollingUpdate" then
      -- Only once the manage step has nothing left to do, as Kubernetes
      -- waits for the expectations the manage step raised.
      local rdel, rnew = M.rolling_plan(ds, nodes, node_pods, hash, now)
      if #rdel > 0 or #rnew > 0 then manage_err = sync_nodes(ctx, key, ds, rdel, rnew, hash, now) end
    end
    cleanup_history(ctx, ds, old, node_pods)
  end

  local st, next_check = M.compute_status(ds, nodes, node_pods, hash, now)
  if not same_status(ds.status, st) then
    ds.status = st
    local sok, err = ctx.client:update_status(DS, ds)
    if not sok then
      if conflict(err) then return { requeue = true } end
      if not_found(err) then return end
      error("update status: " .. msg_of(err), 0)
    end
  end
  if manage_err then error(manage_err, 0) end
  local after = requeue
  if next_check and (not after or next_check < after) then after = next_check end
  if after then return { requeue_after = after + 0.1 } end
end

M.plugin = {
  name = "daemonset-controller",
  kind = DS,
  owns = { POD, CR },
  watches = {
    -- Any node change (labels, taints, unschedulable, a new node) may
    -- change where every DaemonSet should run.
    { kind = NODE, map = ds_keys },
    { kind = POD, map = pod_to_sets },
  },
  workers = 1,
  reconcile = reconcile,
}

-- The plugin table, with the pure helpers reachable for tests.
setmetatable(M.plugin, { __index = M })
return M.plugin
