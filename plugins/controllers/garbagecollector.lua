-- garbagecollector: deletes objects whose owners are all gone and carries
-- out Foreground and Orphan deletes (semantics 7), for every kind the API
-- serves, built-in or custom. An owner graph kept from one informer per
-- kind says which objects to look at; before deleting, the owners are read
-- live from the API, so a stale cache never collects a live object's
-- dependents. Work starts once every cache has synced.
local json = require("moonlet.json")
local kinds = require("moonlet.api.kinds")
local owner_graph = require("moonlet.controller.owner_graph")

local FOREGROUND, ORPHAN = "foregroundDeletion", "orphan"
-- Kubernetes' collector leaves events alone (DefaultIgnoredResources).
local IGNORED = { events = true, ["events.k8s.io/events"] = true }
-- Bound of the absent-owner cache (uids are never reused, so an entry is
-- true forever; the bound only caps memory).
local ABSENT_MAX = 10000
-- Writes retried in place after a conflict before the key is requeued.
local RETRIES = 5

local M = {
  name = "garbagecollector",
  kind = "*",
  workers = 4,
}

local function msg_of(st)
  return type(st) == "table" and tostring(st.message) or tostring(st)
end

local function not_found(st)
  return type(st) == "table" and (st.code == 404 or st.reason == "NotFound")
end

local function conflict(st)
  return type(st) == "table" and (st.code == 409 or st.reason == "Conflict")
end

local function has(list, x)
  for _, v in ipairs(list or {}) do if v == x then return true end end
  return false
end

local function ns_arg(node) return node.namespaced and node.namespace or nil end

-- The registered kind an ownerReference names: exact apiVersion first,
-- else any version of its group (versions are views of one object).
local function owner_kind(ref)
  local def = kinds.by_kind(ref.api_version or "", ref.kind or "")
  if def then return def end
  local group = owner_graph.group(ref.api_version)
  for _, d in ipairs(kinds.all()) do
    if d.kind == ref.kind and d.group == group then return d end
  end
  return nil
end

local function collectable(def)
  return not IGNORED[def.store_resource] and has(def.verbs, "list") and has(def.verbs, "watch")
    and has(def.verbs, "delete")
end

-- Absent owners are recorded by uid and the namespace they were looked up
-- in ("" for cluster-scoped): a reference from another namespace finds
-- nothing there, yet the owner lives on for its own namespace.
local function absent_key(uid, namespace) return uid .. "/" .. (namespace or "") end

local function mark_absent(st, key)
  if st.absent[key] then return end
  if st.nabsent >= ABSENT_MAX then st.absent, st.nabsent = {}, 0 end
  st.absent[key] = true
  st.nabsent = st.nabsent + 1
end

-- {====== graph upkeep (informer handlers: no API calls, only enqueues)

-- True when the graph alone shows every owner of node alive and not
-- waiting for its dependents: nothing to do for node then.
local function owners_solid(st, node)
  for _, ref in ipairs(node.owners) do
    local owner = st.graph:node(ref.uid)
    if not owner or owner.deleting_dependents or not owner_graph.resolves(owner, ref, node) then
      return false
    end
  end
  return true
end

local function on_change(st, def, obj)
  local q = st.queue
  local node, old = st.graph:upsert(obj, def)
  if not node then return end
  local uid = node.uid
  if node.orphaning then q:add("o:" .. uid) end
  if node.deleting_dependents then
    -- Foreground: every dependent goes; the owner waits for the blocking ones.
    if not (old and old.deleting_dependents) then
      for dep in pairs(st.graph:dependent_uids(uid)) do q:add("d:" .. dep) end
    end
    q:add("d:" .. uid)
  end
  local released, added = owner_graph.ref_changes(old, node)
  for owner in pairs(released) do
    local o = st.graph:node(owner)
    if o and o.deleting_dependents then q:add("d:" .. owner) end
  end
  if (old == nil or added) and #node.owners > 0 and not owners_solid(st, node) then
    q:add("d:" .. uid)
  end
end

local function on_delete(st, obj)
  local q = st.queue
  local uid = obj.metadata and obj.metadata.uid
  if not uid then return end
  local node = st.graph:remove(uid)
  mark_absent(st, absent_key(uid, obj.metadata.namespace))
  for dep in pairs(st.graph:dependent_uids(uid)) do q:add("d:" .. dep) end
  -- A Foreground owner may have been waiting for this one.
  for _, ref in ipairs(node and node.owners or {}) do
    local o = st.graph:node(ref.uid)
    if o and o.deleting_dependents then q:add("d:" .. ref.uid) end
  end
end

local function handlers(st, def)
  return {
    add = function(obj) on_change(st, def, obj) end,
    update = function(old, new)
      local orv = old.metadata and old.metadata.resourceVersion
      if orv ~= nil and orv == (new.metadata and new.metadata.resourceVersion) then return end
      on_change(st, def, new)
    end,
    delete = function(obj) on_delete(st, obj) end,
  }
end

-- }======

-- {====== API writes

-- Merge-patches metadata field `field` of node's object to what
-- edit(latest) returns (nil: nothing to change), with the object's
-- resourceVersion as precondition, re-reading after a conflict.
-- @return true | nil when the object is gone | requeue table
local function edit_metadata(ctx, node, field, edit)
  for _ = 1, RETRIES do
    local latest, gst = ctx.client:get(node.kind_key, ns_arg(node), node.name)
    if not latest then
      if not_found(gst) then return nil end
      error(string.format("get %s %s: %s", node.kind, node.name, msg_of(gst)), 0)
    end
    if latest.metadata.uid ~= node.uid then return nil end
    local value = edit(latest)
    if value == nil then return true end
    local ok, pst = ctx.client:patch(node.kind_key, ns_arg(node), node.name, "merge", {
      metadata = { resourceVersion = latest.metadata.resourceVersion,
                   [field] = #value > 0 and json.array(value) or json.null },
    })
    if ok then return true end
    if not_found(pst) then return nil end
    if not conflict(pst) then
      error(string.format("patch %s %s: %s", node.kind, node.name, msg_of(pst)), 0)
    end
  end
  return { requeue = true }
end

-- Takes `name` off the finalizers of node's object.
local function remove_finalizer(ctx, node, name)
  return edit_metadata(ctx, node, "finalizers", function(latest)
    local fins, found = {}, false
    for _, f in ipairs(latest.metadata.finalizers or {}) do
      if f == name then found = true else fins[#fins + 1] = f end
    end
    return found and fins or nil
  end)
end

-- Drops the ownerReferences to the uids in `drop` from node's object.
local function remove_refs(ctx, node, drop)
  return edit_metadata(ctx, node, "ownerReferences", function(latest)
    local refs, found = {}, false
    for _, r in ipairs(latest.metadata.ownerReferences or {}) do
      if drop[r.uid] then found = true else refs[#refs + 1] = r end
    end
    return found and refs or nil
  end)
end

local function delete(ctx, node, policy)
  local ok, dst = ctx.client:delete(node.kind_key, ns_arg(node), node.name, {
    propagation_policy = policy, preconditions = { uid = node.uid } })
  -- Gone already, or a new object under the name: either way not ours.
  if ok or not_found(dst) or conflict(dst) then return end
  error(string.format("delete %s %s: %s", node.kind, node.name, msg_of(dst)), 0)
end

-- }======

-- {====== the two work items: "d:<uid>" (attempt to delete), "o:<uid>" (orphan)

-- The state of one owner reference, read live: "solid", "dangling",
-- "waiting" (owner being deleted in the foreground), "invalid" (a
-- cluster-scoped object naming a namespaced owner) or "unknown" (no such
-- kind is served).
local function classify(ctx, st, node, ref)
  local def = owner_kind(ref)
  if not def then return "unknown" end
  if def.namespaced and not node.namespaced then return "invalid" end
  local ns = def.namespaced and node.namespace or nil
  local key = absent_key(ref.uid, ns)
  if st.absent[key] then return "dangling" end
  local owner, gst = ctx.client:get(def.gvk, ns, ref.name)
  if not owner then
    if not not_found(gst) then
      error(string.format("get owner %s %s: %s", ref.kind, ref.name, msg_of(gst)), 0)
    end
    mark_absent(st, key)
    return "dangling"
  end
  if owner.metadata.uid ~= ref.uid then
    mark_absent(st, key)
    return "dangling"
  end
  if owner.metadata.deletionTimestamp and has(owner.metadata.finalizers, FOREGROUND) then
    return "waiting"
  end
  return "solid"
end

-- An owner under Foreground deletion: gone once no dependent blocks it.
local function process_deleting_dependents(ctx, st, node)
  local blocking = st.graph:blocking(node.uid)
  if #blocking == 0 then return remove_finalizer(ctx, node, FOREGROUND) end
  for _, dep in ipairs(blocking) do
    if not dep.deleting then st.queue:add("d:" .. dep.uid) end
  end
end

local function attempt_delete(ctx, st, uid)
  local node = st.graph:node(uid)
  if not node then return end
  if node.deleting_dependents then return process_deleting_dependents(ctx, st, node) end
  if node.deleting or #node.owners == 0 or owners_solid(st, node) then return end
  -- The cache says an owner may be gone: decide on the object as it is now.
  local latest, gst = ctx.client:get(node.kind_key, ns_arg(node), node.name)
  if not latest then
    if not_found(gst) then return end
    error(string.format("get %s %s: %s", node.kind, node.name, msg_of(gst)), 0)
  end
  local md = latest.metadata
  if md.uid ~= uid or md.deletionTimestamp then return end
  local solid, drop, ndrop, waiting = 0, {}, 0, 0
  for _, r in ipairs(md.ownerReferences or {}) do
    local ref = { uid = r.uid, api_version = r.apiVersion, kind = r.kind, name = r.name }
    local state = classify(ctx, st, node, ref)
    if state == "invalid" then
      -- Never resolvable: leave the object alone, as Kubernetes does.
      ctx.log("warn", "%s %s is cluster-scoped but names a namespaced owner %s %s",
        node.kind, node.name, tostring(r.kind), tostring(r.name))
      return
    elseif state == "unknown" then
      -- The kind may be served after a reload: look again later.
      return { requeue = true }
    elseif state == "solid" then
      solid = solid + 1
    else
      drop[r.uid], ndrop = true, ndrop + 1
      if state == "waiting" then waiting = waiting + 1 end
    end
  end
  if solid > 0 then
    -- A live owner keeps it; references to gone owners go (and to owners
    -- waiting on their dependents, or those would wait forever).
    if ndrop > 0 then return remove_refs(ctx, node, drop) end
    return
  end
  if ndrop == 0 then return end
  local policy = "Background"
  if waiting > 0 and st.graph:has_dependents(uid) then
    -- Foreground reaches down: this one waits for its own dependents.
    policy = "Foreground"
  elseif has(md.finalizers, ORPHAN) then
    policy = "Orphan"
  elseif has(md.finalizers, FOREGROUND) then
    policy = "Foreground"
  end
  delete(ctx, node, policy)
end

-- Orphan: strip the owner's reference from every dependent, then let the
-- owner go by taking off its `orphan` finalizer.
local function orphan(ctx, st, uid)
  local node = st.graph:node(uid)
  if not node or not node.orphaning then return end
  local drop = { [uid] = true }
  local deps = {}
  for dep in pairs(st.graph:dependent_uids(uid)) do deps[#deps + 1] = dep end
  for _, dep in ipairs(deps) do
    local d = st.graph:node(dep)
    if d then
      local r = remove_refs(ctx, d, drop)
      if type(r) == "table" then return r end
    end
  end
  return remove_finalizer(ctx, node, ORPHAN)
end

-- }======

--- Builds the graph's informers: one per served kind (events excepted),
--- metadata-only where no other controller needs whole objects.
function M.setup(ctx)
  local st = { graph = owner_graph.new(), absent = {}, nabsent = 0, queue = ctx.queue }
  ctx.gc = st
  for _, def in ipairs(kinds.all()) do
    -- Metadata is all the graph reads (Kubernetes' collector runs on
    -- metadata informers too): kinds no other controller watches are
    -- listed and watched as PartialObjectMetadata.
    -- Its watches carry only objects that have (or had) owners, finalizers
    -- or a deletion under way, and deletions: an owner the graph has not
    -- seen is looked up live (classify), as Kubernetes' collector does for
    -- owners it has no node for.
    if collectable(def) then
      ctx:watch(def.gvk, handlers(st, def), { metadata = true, owner_events = true })
    end
  end
end

function M.reconcile(ctx, key)
  local st = ctx.gc
  local what, uid = key:match("^(%a):(.+)$")
  if what == "o" then
    local r = orphan(ctx, st, uid)
    return type(r) == "table" and r or nil
  end
  local r = attempt_delete(ctx, st, uid)
  return type(r) == "table" and r or nil
end

return M
