-- moonlet.controller.deployment_util: the pure parts of the Deployment
-- controller (semantics 5): pod-template-hash (FNV-32a over a canonical
-- dump of the template, rendered digit by digit in the no-vowel alphabet),
-- int-or-percent resolution with Kubernetes' rounding, revision and replica
-- annotations, RS ordering, proportional scaling, conditions and status.
-- No I/O: the controller plugin feeds objects in and writes the results.
local json = require("moonlet.json")

local M = {}

M.HASH_LABEL = "pod-template-hash"
M.REVISION = "deployment.kubernetes.io/revision"
M.REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
M.DESIRED = "deployment.kubernetes.io/desired-replicas"
M.MAX = "deployment.kubernetes.io/max-replicas"
M.CHANGE_CAUSE = "kubernetes.io/change-cause"
M.MAX_REV_HISTORY_CHARS = 2000

-- Annotations of the Deployment never copied onto its ReplicaSets.
local SKIP = {
  ["kubectl.kubernetes.io/last-applied-configuration"] = true,
  [M.REVISION] = true, [M.REVISION_HISTORY] = true, [M.DESIRED] = true, [M.MAX] = true,
  ["deprecated.deployment.rollback.to"] = true,
}

local ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"

-- {====== hashing

--- FNV-1a 32-bit of `s`, continuing from `h` (default: the offset basis).
--- @return integer in [0, 2^32)
function M.fnv32a(s, h)
  h = h or 0x811c9dc5
  for i = 1, #s do
    h = ((h ~ s:byte(i)) * 0x01000193) & 0xffffffff
  end
  return h
end

--- Kubernetes' SafeEncodeString: each byte mapped to alphanums[byte % 27].
function M.safe_encode(s)
  return (s:gsub(".", function(c)
    local i = c:byte() % #ALPHANUMS + 1
    return ALPHANUMS:sub(i, i)
  end))
end

local function is_empty(v)
  return v == nil or v == json.null or (type(v) == "table" and next(v) == nil)
end

-- Canonical text of a JSON-like value: keys sorted, empty containers and
-- null fields left out, integers printed as integers. Independent of the
-- codec's array marks and of key order, so the same template gives the
-- same bytes in every process.
local function dump(v, out)
  local t = type(v)
  if t == "table" then
    if json.is_array(v) and #v > 0 then
      out[#out + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        dump(x, out)
      end
      out[#out + 1] = "]"
      return
    end
    local keys = {}
    for k, x in pairs(v) do
      if not is_empty(x) then keys[#keys + 1] = tostring(k) end
    end
    table.sort(keys)
    out[#out + 1] = "{"
    for i, k in ipairs(keys) do
      if i > 1 then out[#out + 1] = "," end
      out[#out + 1] = string.format("%q:", k)
      local x = v[k]
      if x == nil then x = v[tonumber(k)] end
      dump(x, out)
    end
    out[#out + 1] = "}"
  elseif t == "string" then
    out[#out + 1] = string.format("%q", v)
  elseif math.type(v) == "integer" then
    out[#out + 1] = string.format("%d", v)
  elseif t == "number" then
    if v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then out[#out + 1] = string.format("%d", math.floor(v))
    else out[#out + 1] = string.format("%.17g", v) end
  elseif v == json.null then
    out[#out + 1] = "null"
  else
    out[#out + 1] = tostring(v)
  end
end

--- The canonical dump the hash is computed over (exposed for tests).
function M.canonical(v)
  local out = {}
  dump(v, out)
  return table.concat(out)
end

--- ComputeHash: FNV-32a of the template's canonical dump, then (when
--- collisionCount is set) its little-endian uint32 plus four zero bytes;
--- the decimal value re-encoded with safe_encode.
--- @param template the Deployment's spec.template
--- @param collision_count integer or nil
--- @return string (up to 10 chars)
function M.compute_hash(template, collision_count)
  local h = M.fnv32a(M.canonical(template or {}))
  if collision_count ~= nil and collision_count ~= json.null then
    h = M.fnv32a(string.pack("<I4", collision_count & 0xffffffff) .. "\0\0\0\0", h)
  end
  return M.safe_encode(string.format("%d", h))
end

-- }======

-- {====== int-or-percent

--- GetScaledValueFromIntOrPercent: an integer as is, "N%" as N% of total
--- rounded up or down.
--- @return integer | nil, message
function M.scaled_value(v, total, round_up)
  if v == nil or v == json.null then return 0 end
  if math.type(v) == "integer" then return v end
  if type(v) == "number" then return nil, "invalid value for IntOrString: invalid type: number is not an integer" end
  if type(v) ~= "string" then return nil, "invalid value for IntOrString: invalid type" end
  local digits = v:match("^(%-?%d+)%%$")
  if not digits then
    return nil, string.format("invalid value for IntOrString: invalid type: string is not a percentage")
  end
  local n = math.tointeger(tonumber(digits))
  if not n then return nil, "invalid value for IntOrString: invalid value" end
  local x = n * total
  if round_up then return -((-x) // 100) end
  return x // 100
end

--- ResolveFenceposts: maxSurge rounds up, maxUnavailable down; both 0 ->
--- maxUnavailable 1.
--- @return surge, unavailable | nil, message
function M.resolve_fenceposts(max_surge, max_unavailable, desired)
  local surge, err = M.scaled_value(max_surge, desired, true)
  if not surge then return nil, err end
  local unavailable
  unavailable, err = M.scaled_value(max_unavailable, desired, false)
  if not unavailable then return nil, err end
  if surge == 0 and unavailable == 0 then unavailable = 1 end
  return surge, unavailable
end

local function replicas(d) return ((d.spec or {}).replicas) or 1 end

local function rolling(d)
  local st = (d.spec or {}).strategy or {}
  return (st.type or "RollingUpdate") == "RollingUpdate", st.rollingUpdate or {}
end

--- MaxSurge of a Deployment (0 unless RollingUpdate).
function M.max_surge(d)
  local is_rolling, ru = rolling(d)
  if not is_rolling then return 0 end
  local surge = M.resolve_fenceposts(ru.maxSurge or "25%", ru.maxUnavailable or "25%", replicas(d))
  return surge or 0
end

--- MaxUnavailable of a Deployment (0 unless RollingUpdate or with 0
--- replicas; never more than replicas).
function M.max_unavailable(d)
  local is_rolling, ru = rolling(d)
  local want = replicas(d)
  if not is_rolling or want == 0 then return 0 end
  local _, unavailable = M.resolve_fenceposts(ru.maxSurge or "25%", ru.maxUnavailable or "25%", want)
  unavailable = unavailable or 0
  if unavailable > want then return want end
  return unavailable
end

-- }======

-- {====== ReplicaSet helpers

local function ann(obj) return ((obj or {}).metadata or {}).annotations or {} end

local function rs_replicas(rs) return (rs.spec or {}).replicas or 0 end

local function time_of(ts)
  if type(ts) ~= "string" or ts == "" then return 0 end
  return require("moonlet.printers.duration").parse(ts) or 0
end

--- The revision annotation as an integer (0 when missing or malformed).
function M.revision(obj)
  local v = ann(obj)[M.REVISION]
  return math.tointeger(tonumber(v or "")) or 0
end

function M.max_revision(rss)
  local max = 0
  for _, rs in ipairs(rss) do
    local r = M.revision(rs)
    if r > max then max = r end
  end
  return max
end

-- Creation time, then revision (timestamps have one-second resolution
-- here: the revision keeps RSs made in the same second in order), then name.
local function older(a, b)
  local ta, tb = time_of(a.metadata.creationTimestamp), time_of(b.metadata.creationTimestamp)
  if ta ~= tb then return ta < tb end
  local ra, rb = M.revision(a), M.revision(b)
  if ra ~= rb then return ra < rb end
  return (a.metadata.name or "") < (b.metadata.name or "")
end

--- Sorts in place, oldest first (ReplicaSetsByCreationTimestamp).
function M.sort_by_creation(rss) table.sort(rss, older); return rss end

--- Larger first; equal sizes newer first (ReplicaSetsBySizeNewer).
function M.sort_by_size_newer(rss)
  table.sort(rss, function(a, b)
    if rs_replicas(a) ~= rs_replicas(b) then return rs_replicas(a) > rs_replicas(b) end
    return older(b, a)
  end)
  return rss
end

--- Larger first; equal sizes older first (ReplicaSetsBySizeOlder).
function M.sort_by_size_older(rss)
  table.sort(rss, function(a, b)
    if rs_replicas(a) ~= rs_replicas(b) then return rs_replicas(a) > rs_replicas(b) end
    return older(a, b)
  end)
  return rss
end

--- Revision ascending, then creation (ReplicaSetsByRevision).
function M.sort_by_revision(rss)
  table.sort(rss, function(a, b)
    local ra, rb = M.revision(a), M.revision(b)
    if ra ~= rb then return ra < rb end
    return older(a, b)
  end)
  return rss
end

-- Deep equality where nil, null and empty containers are the same value
-- (a stored template drops empty maps the Deployment may still carry).
local function same(a, b)
  if is_empty(a) and is_empty(b) then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k, v in pairs(b) do if a[k] == nil and not is_empty(v) then return false end end
  return true
end
M.same = same

--- EqualIgnoreHash: templates equal once the pod-template-hash label is
--- dropped from both.
function M.equal_ignore_hash(t1, t2)
  local function strip(t)
    t = t or {}
    local md = t.metadata or {}
    local labels = md.labels
    if type(labels) ~= "table" or labels[M.HASH_LABEL] == nil then return t end
    local nl = {}
    for k, v in pairs(labels) do if k ~= M.HASH_LABEL then nl[k] = v end end
    local nmd = {}
    for k, v in pairs(md) do nmd[k] = v end
    nmd.labels = nl
    local nt = {}
    for k, v in pairs(t) do nt[k] = v end
    nt.metadata = nmd
    return nt
  end
  return same(strip(t1), strip(t2))
end

--- FindNewReplicaSet: the oldest RS whose template equals the
--- Deployment's ignoring the hash label, or nil.
function M.find_new(d, rss)
  local sorted = {}
  for i, rs in ipairs(rss) do sorted[i] = rs end
  M.sort_by_creation(sorted)
  for _, rs in ipairs(sorted) do
    if M.equal_ignore_hash((rs.spec or {}).template, (d.spec or {}).template) then return rs end
  end
  return nil
end

--- FindOldReplicaSets: (old RSs with replicas > 0, all old RSs).
function M.find_old(d, rss)
  local new = M.find_new(d, rss)
  local required, all = {}, {}
  for _, rs in ipairs(rss) do
    if rs ~= new then
      all[#all + 1] = rs
      if rs_replicas(rs) > 0 then required[#required + 1] = rs end
    end
  end
  return required, all, new
end

--- FilterActiveReplicaSets: spec.replicas > 0 (nil entries skipped).
function M.active(rss)
  local out = {}
  for i = 1, #rss do
    local rs = rss[i]
    if rs and rs_replicas(rs) > 0 then out[#out + 1] = rs end
  end
  return out
end

local function sum(rss, get)
  local n = 0
  for _, rs in pairs(rss) do if rs then n = n + (get(rs) or 0) end end
  return n
end

--- Sum of spec.replicas.
function M.replica_count(rss) return sum(rss, rs_replicas) end
--- Sum of status.replicas / readyReplicas / availableReplicas.
function M.actual_count(rss) return sum(rss, function(rs) return (rs.status or {}).replicas end) end
function M.ready_count(rss) return sum(rss, function(rs) return (rs.status or {}).readyReplicas end) end
function M.available_count(rss) return sum(rss, function(rs) return (rs.status or {}).availableReplicas end) end

--- NewRSNewReplicas: how many replicas the new RS may have now.
function M.new_rs_new_replicas(d, all, new)
  local is_rolling = rolling(d)
  if not is_rolling then return replicas(d) end
  local want = replicas(d)
  local max_total = want + M.max_surge(d)
  local current = M.replica_count(all)
  if current >= max_total then return rs_replicas(new) end
  local up = math.min(max_total - current, want - rs_replicas(new))
  return rs_replicas(new) + up
end

--- IsSaturated: the new RS has all replicas desired, created and available.
function M.is_saturated(d, rs)
  if not rs then return false end
  local desired = math.tointeger(tonumber(ann(rs)[M.DESIRED] or ""))
  local want = replicas(d)
  return desired == want and rs_replicas(rs) == want and ((rs.status or {}).availableReplicas or 0) == want
end

--- FindActiveOrLatest: the only active RS, or the newest one when none is
--- active; nil when several are active.
function M.find_active_or_latest(new, olds)
  if not new and #olds == 0 then return nil end
  local sorted = {}
  for i, rs in ipairs(olds) do sorted[i] = rs end
  table.sort(sorted, function(a, b) return older(b, a) end)
  local all = {}
  for _, rs in ipairs(sorted) do all[#all + 1] = rs end
  if new then all[#all + 1] = new end
  local act = M.active(all)
  if #act == 0 then return new or sorted[1] end
  if #act == 1 then return act[1] end
  return nil
end

--- ReplicasAnnotationsNeedUpdate.
function M.replicas_annotations_need_update(rs, desired, max)
  local a = ann(rs)
  return a[M.DESIRED] ~= tostring(desired) or a[M.MAX] ~= tostring(max)
end

--- SetReplicasAnnotations. @return true when changed
function M.set_replicas_annotations(rs, desired, max)
  rs.metadata.annotations = rs.metadata.annotations or {}
  local a, changed = rs.metadata.annotations, false
  if a[M.DESIRED] ~= tostring(desired) then a[M.DESIRED] = tostring(desired); changed = true end
  if a[M.MAX] ~= tostring(max) then a[M.MAX] = tostring(max); changed = true end
  return changed
end

--- SetNewReplicaSetAnnotations: copies the Deployment's annotations (but
--- the skipped ones), raises the revision to `new_revision` keeping the old
--- number in revision-history when an existing RS is renumbered (rollback),
--- and for a RS about to be created sets the replica annotations.
--- @return true when an annotation changed
function M.set_new_rs_annotations(d, rs, new_revision, exists)
  rs.metadata.annotations = rs.metadata.annotations or {}
  local a, changed = rs.metadata.annotations, false
  for k, v in pairs(ann(d)) do
    if not SKIP[k] and a[k] ~= v then a[k] = v; changed = true end
  end
  local old = a[M.REVISION]
  local old_int = math.tointeger(tonumber(old or ""))
  if old ~= nil and old ~= "" and not old_int then return changed end
  old_int = old_int or 0
  if old_int < new_revision then
    a[M.REVISION] = tostring(new_revision)
    changed = true
    if old ~= nil and old ~= "" then
      local hist = a[M.REVISION_HISTORY] or ""
      if hist == "" then
        a[M.REVISION_HISTORY] = old
      else
        local parts = {}
        for p in (hist .. ","):gmatch("([^,]*),") do parts[#parts + 1] = p end
        local total, start = #hist + #old + 1, 1
        while total > M.MAX_REV_HISTORY_CHARS and start <= #parts do
          total = total - #parts[start] - 1
          start = start + 1
        end
        if total <= M.MAX_REV_HISTORY_CHARS then
          local kept = {}
          for i = start, #parts do kept[#kept + 1] = parts[i] end
          kept[#kept + 1] = old
          a[M.REVISION_HISTORY] = table.concat(kept, ",")
        end
      end
    end
  end
  if not exists and M.set_replicas_annotations(rs, replicas(d), replicas(d) + M.max_surge(d)) then
    changed = true
  end
  return changed
end

-- Go's math.Round for the proportions: half away from zero.
local function round(x)
  if x >= 0 then return math.floor(x + 0.5) end
  return -math.floor(-x + 0.5)
end

--- GetProportion: the share of `to_add` this RS takes when a Deployment is
--- scaled mid-rollout, from its max-replicas annotation.
function M.proportion(rs, d, to_add, added)
  if not rs or rs_replicas(rs) == 0 or to_add == 0 or to_add == added then return 0 end
  local fraction
  if replicas(d) == 0 then
    fraction = -rs_replicas(rs)
  else
    local dep = replicas(d) + M.max_surge(d)
    local annotated = math.tointeger(tonumber(ann(rs)[M.MAX] or ""))
    if not annotated then annotated = (d.status or {}).replicas or 0 end
    if annotated == 0 then fraction = 0
    else fraction = round(rs_replicas(rs) * dep / annotated) - rs_replicas(rs) end
  end
  local allowed = to_add - added
  if to_add > 0 then return math.min(fraction, allowed) end
  return math.max(fraction, allowed)
end

--- Proportional sizes for every active RS when the Deployment's replicas
--- changed mid-rollout (the RollingUpdate branch of sync.go `scale`).
--- @return list of { rs = , size = }, "up" | "down" | nil
function M.proportional_sizes(d, active_rss)
  local all = {}
  for i, rs in ipairs(active_rss) do all[i] = rs end
  local allowed = 0
  if replicas(d) > 0 then allowed = replicas(d) + M.max_surge(d) end
  local to_add = allowed - M.replica_count(all)
  local op
  if to_add > 0 then M.sort_by_size_newer(all); op = "up"
  elseif to_add < 0 then M.sort_by_size_older(all); op = "down" end
  local added, out = 0, {}
  for i, rs in ipairs(all) do
    local size = rs_replicas(rs)
    if to_add ~= 0 then
      local p = M.proportion(rs, d, to_add, added)
      size = size + p
      added = added + p
    end
    out[i] = { rs = rs, size = size }
  end
  if #out > 0 and to_add ~= 0 then
    local s = out[1].size + (to_add - added)
    out[1].size = s < 0 and 0 or s
  end
  return out, op
end

-- }======

-- {====== conditions and status

function M.timestamp(now)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(now))
end

--- NewDeploymentCondition.
function M.condition(type_, status, reason, message, now)
  local ts = M.timestamp(now)
  return { type = type_, status = status, reason = reason, message = message,
           lastUpdateTime = ts, lastTransitionTime = ts }
end

function M.get_condition(st, type_)
  for _, c in ipairs((st or {}).conditions or {}) do
    if c.type == type_ then return c end
  end
  return nil
end

function M.remove_condition(st, type_)
  local out = {}
  for _, c in ipairs(st.conditions or {}) do
    if c.type ~= type_ then out[#out + 1] = c end
  end
  st.conditions = json.array(out)
end

--- SetDeploymentCondition: no change when status and reason are the same;
--- keeps lastTransitionTime when only the reason changes; the condition
--- goes last.
function M.set_condition(st, cond)
  local cur = M.get_condition(st, cond.type)
  if cur and cur.status == cond.status and cur.reason == cond.reason then return end
  if cur and cur.status == cond.status then cond.lastTransitionTime = cur.lastTransitionTime end
  M.remove_condition(st, cond.type)
  st.conditions[#st.conditions + 1] = cond
end

--- calculateStatus (sync.go) with the Available condition.
function M.calculate_status(all, new, d, now)
  local available = M.available_count(all)
  local unavailable = M.replica_count(all) - available
  if unavailable < 0 then unavailable = 0 end
  local old = d.status or {}
  local st = {
    observedGeneration = d.metadata.generation,
    replicas = M.actual_count(all),
    updatedReplicas = new and M.actual_count({ new }) or 0,
    readyReplicas = M.ready_count(all),
    availableReplicas = available,
    unavailableReplicas = unavailable,
    collisionCount = old.collisionCount,
    conditions = json.array({}),
  }
  for _, c in ipairs(old.conditions or {}) do st.conditions[#st.conditions + 1] = json.copy(c) end
  if available >= replicas(d) - M.max_unavailable(d) then
    M.set_condition(st, M.condition("Available", "True", "MinimumReplicasAvailable",
      "Deployment has minimum availability.", now))
  else
    M.set_condition(st, M.condition("Available", "False", "MinimumReplicasUnavailable",
      "Deployment does not have minimum availability.", now))
  end
  return st
end

--- DeploymentComplete.
function M.complete(d, st)
  local want = replicas(d)
  return (st.updatedReplicas or 0) == want and (st.replicas or 0) == want
    and (st.availableReplicas or 0) == want and (st.observedGeneration or 0) >= (d.metadata.generation or 0)
end

--- DeploymentProgressing: more updated, fewer old, more ready or available.
function M.progressing(d, st)
  local old = d.status or {}
  local old_old = (old.replicas or 0) - (old.updatedReplicas or 0)
  local new_old = (st.replicas or 0) - (st.updatedReplicas or 0)
  return (st.updatedReplicas or 0) > (old.updatedReplicas or 0) or new_old < old_old
    or (st.readyReplicas or 0) > (old.readyReplicas or 0)
    or (st.availableReplicas or 0) > (old.availableReplicas or 0)
end

--- DeploymentTimedOut.
function M.timed_out(d, st, now)
  local deadline = (d.spec or {}).progressDeadlineSeconds
  if deadline == nil or deadline == json.null then return false end
  local c = M.get_condition(st, "Progressing")
  if not c then return false end
  if c.reason == "NewReplicaSetAvailable" then return false end
  if c.reason == "ProgressDeadlineExceeded" then return true end
  return time_of(c.lastUpdateTime) + deadline < now
end

-- }======

return M
