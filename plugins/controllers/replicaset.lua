-- replicaset: keeps spec.replicas active pods matching each ReplicaSet's
-- selector (semantics 4). Claims pods (adopts matching orphans, releases
-- owned pods whose labels stopped matching), creates from the template in
-- slow-start batches (1, 2, 4, ...) under expectations so a sync never
-- acts before the cache has seen its own writes, deletes the victims the
-- scale-down policy picks, and reports status and a ReplicaFailure
-- condition. Level-triggered: each sync compares the world with the spec.
local json = require("moonlet.json")
local selector = require("moonlet.selector")
local scaledown = require("moonlet.scaledown")
local refs = require("moonlet.controller.refs")
local podutil = require("moonlet.controller.podutil")
local slowstart = require("moonlet.controller.slowstart")

local RS = "apps/v1/ReplicaSet"
local POD = "v1/Pod"
local BURST = 500

local expectations = require("moonlet.controller.expectations").new({ kind = POD })
-- The selector of every ReplicaSet seen, to map pods to them.
local selectors = require("moonlet.controller.selector_index").new()

local msg_of, conflict, not_found = refs.message, refs.conflict, refs.not_found

local function owner_ref(rs)
  return refs.owner_ref(rs, "apps/v1", "ReplicaSet")
end

-- Pod name prefix (getPodsPrefix): "<rs>-", or "<rs>" if that is no valid name.
local function prefix(name)
  local p = name .. "-"
  if #p > 253 or not p:match("^[a-z0-9]") then return name end
  return p
end

local function pod_from_template(rs)
  local tpl = rs.spec.template or {}
  local md = tpl.metadata or {}
  return {
    apiVersion = "v1", kind = "Pod",
    metadata = {
      generateName = prefix(rs.metadata.name), namespace = rs.metadata.namespace,
      labels = json.copy(md.labels or {}), annotations = md.annotations and json.copy(md.annotations) or nil,
      finalizers = md.finalizers and json.copy(md.finalizers) or nil,
      ownerReferences = json.array({ owner_ref(rs) }),
    },
    spec = json.copy(tpl.spec or {}),
  }
end

-- ClaimPods: the pods this ReplicaSet controls after adopting and releasing.
local function claim(ctx, rs, sel, pods)
  return refs.claim(ctx, { owner = rs, owner_kind = RS, ref = owner_ref(rs), kind = POD,
    selector = sel, objects = pods })
end

-- Creates `n` pods in slow-start batches (1, 2, 4, ...); the first batch
-- with a failure stops the rest, which the next sync retries.
-- @return number created, error message or nil
local function create_pods(ctx, key, rs, n, now)
  local created, err = slowstart.run(n, function()
    local pod, st = ctx.client:create(POD, pod_from_template(rs))
    if not pod then
      ctx:event(rs, "Warning", "FailedCreate", "Error creating: " .. msg_of(st))
      return nil, msg_of(st)
    end
    expectations:created(key, pod.metadata.name, now)
    ctx:event(rs, "Normal", "SuccessfulCreate", "Created pod: " .. pod.metadata.name)
    return pod
  end)
  return #created, err
end

-- ReplicaFailure condition: set on a manage error, dropped otherwise.
local function conditions(old, reason, message, now)
  local out = {}
  for _, c in ipairs(old or {}) do
    if c.type ~= "ReplicaFailure" then out[#out + 1] = c
    elseif reason and c.reason == reason and c.message == message then out[#out + 1] = c; reason = nil end
  end
  if reason then
    out[#out + 1] = { type = "ReplicaFailure", status = "True", reason = reason, message = message,
      lastTransitionTime = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(now)) }
  end
  return out
end

-- calculateStatus; returns the status and, with minReadySeconds, when a
-- ready pod becomes available (to look again then).
local function compute_status(rs, pods, now, manage_err)
  local tpl_labels = ((rs.spec.template or {}).metadata or {}).labels or {}
  local min_ready = rs.spec.minReadySeconds or 0
  local st = { replicas = 0, fullyLabeledReplicas = 0, readyReplicas = 0, availableReplicas = 0,
    observedGeneration = rs.metadata.generation }
  local next_check
  for _, pod in ipairs(pods) do
    st.replicas = st.replicas + 1
    local labels, full = pod.metadata.labels or {}, true
    for k, v in pairs(tpl_labels) do if labels[k] ~= v then full = false end end
    if full then st.fullyLabeledReplicas = st.fullyLabeledReplicas + 1 end
    if podutil.ready(pod) then
      st.readyReplicas = st.readyReplicas + 1
      local available, wait = podutil.available(pod, min_ready, now)
      if available then
        st.availableReplicas = st.availableReplicas + 1
      elseif not next_check or wait < next_check then
        next_check = wait
      end
    end
  end
  local reason = manage_err and manage_err.reason
  local conds = conditions((rs.status or {}).conditions, reason, manage_err and manage_err.message, now)
  if #conds > 0 then st.conditions = json.array(conds) end
  return st, next_check
end

local function same_status(a, b)
  a, b = a or {}, b or {}
  for _, f in ipairs({ "replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas",
    "observedGeneration" }) do
    if (a[f] or 0) ~= (b[f] or 0) then return false end
  end
  local ca, cb = a.conditions or {}, b.conditions or {}
  if #ca ~= #cb then return false end
  for i, c in ipairs(ca) do
    if c.type ~= cb[i].type or c.reason ~= cb[i].reason or c.message ~= cb[i].message then return false end
  end
  return true
end

-- Map from any pod to the ReplicaSets whose selector matches it (orphans
-- to adopt; owned pods also reach their owner through `owns`).
local function pod_to_sets(pod) return selectors:matching(pod) end

return {
  name = "replicaset-controller",
  kind = RS,
  owns = { POD },
  watches = { { kind = POD, map = pod_to_sets } },
  workers = 1,
  -- Reads only (rs, and the pods it lists, are the informer's own
  -- objects): a sync lists every pod of the namespace, and copying them all
  -- on every sync made a 1,000-pod scale-up quadratic.
  readonly = true,

  reconcile = function(ctx, key, rs)
    if not rs then
      expectations:forget(key)
      selectors:forget(key)
      return
    end
    local ns = rs.metadata.namespace
    local sel = selector.from_table(rs.spec.selector)
    if not sel then return end
    selectors:set(key, ns, sel)
    local now = ctx.now()
    local ok_exp = expectations:satisfied(ctx, key, ns, now)
    local pods = claim(ctx, rs, sel, ctx:list(POD, { namespace = ns }))
    if not pods then return end -- the ReplicaSet went away meanwhile
    local filtered = {}
    for _, p in ipairs(pods) do if podutil.active(p) then filtered[#filtered + 1] = p end end

    local manage_err
    if ok_exp and not rs.metadata.deletionTimestamp then
      local want = rs.spec.replicas or 1
      local diff = #filtered - want
      if diff < 0 then
        local _, err = create_pods(ctx, key, rs, math.min(-diff, BURST), now)
        if err then manage_err = { reason = "FailedCreate", message = err } end
      elseif diff > 0 then
        local policy = ((rs.metadata.annotations or {})[scaledown.ANNOTATION]) or scaledown.DEFAULT
        if not scaledown.get(policy) then
          ctx:event(rs, "Warning", "UnknownScaleDownPolicy", string.format(
            'scale-down policy "%s" is not loaded; using "%s"', policy, scaledown.DEFAULT))
          policy = scaledown.DEFAULT
        end
        -- Policies are plugins: they get copies, never the cached pods.
        local candidates = {}
        for i, p in ipairs(filtered) do candidates[i] = json.copy(p) end
        local victims = scaledown.victims(candidates, math.min(diff, BURST), policy, now)
        local _, err = expectations:delete_pods(ctx, key, rs, victims, now)
        if err then manage_err = { reason = "FailedDelete", message = err } end
      end
    end

    local st, next_check = compute_status(rs, filtered, now, manage_err)
    if not same_status(rs.status, st) then
      -- rs is the informer's own object (readonly): the new status goes on
      -- a shallow copy.
      local written = {}
      for k, v in pairs(rs) do written[k] = v end
      written.status = st
      local ok, err = ctx.client:update_status(RS, written)
      if not ok then
        if conflict(err) then return { requeue = true } end
        if not_found(err) then return end
        error("update status: " .. msg_of(err), 0)
      end
    end
    if manage_err then return { requeue = true } end
    if next_check then return { requeue_after = next_check + 0.1 } end
  end,
}
