-- Garbage collection over ownerReferences, run in line with deletes: when
-- an owner goes, dependents whose owners are all gone are deleted
-- (Background); the `orphan` finalizer strips the owner's reference from its
-- dependents first (Orphan); `foregroundDeletion` keeps the owner until its
-- blocking dependents are gone (Foreground).
local json = require("moonlet.json")
local kinds = require("moonlet.api.kinds")

local M = {}

local function owners_of(obj)
  return (obj.metadata and obj.metadata.ownerReferences) or {}
end

-- Every object in every kind that names `uid` as an owner: { {def, obj} }.
local function dependents(store, uid)
  local out = {}
  for _, def in ipairs(kinds.all()) do
    local res = store:list(def.store_resource, {})
    for _, o in ipairs(res and res.items or {}) do
      for _, ref in ipairs(owners_of(o)) do
        if ref.uid == uid then out[#out + 1] = { def, o } break end
      end
    end
  end
  return out
end

local function exists(store, uid, ref, ns)
  for _, def in ipairs(kinds.all()) do
    if def.kind == ref.kind and def.api_version == ref.apiVersion then
      local o = store:get(def.store_resource, def.namespaced and ns or "", ref.name)
      return o ~= nil and o.metadata.uid == uid and o
    end
  end
  return false
end

local function remove_finalizer(store, def, obj, name)
  local fins = json.array()
  for _, f in ipairs(obj.metadata.finalizers or {}) do
    if f ~= name then fins[#fins + 1] = f end
  end
  obj.metadata.finalizers = fins
  return store:update(def.store_resource, obj, { generation = def.generation == true,
    status_subresource = def.status_subresource == true })
end

local function has_finalizer(obj, name)
  for _, f in ipairs(obj.metadata.finalizers or {}) do if f == name then return true end end
  return false
end

local collect

-- Deletes `o` if none of its owners is alive any more.
local function maybe_collect(store, def, o, deleting_uid)
  for _, ref in ipairs(owners_of(o)) do
    if ref.uid ~= deleting_uid then
      local owner = exists(store, ref.uid, ref, o.metadata.namespace)
      if owner and not owner.metadata.deletionTimestamp then return end
    end
  end
  local res, removed = store:delete(def.store_resource, o.metadata.namespace or "", o.metadata.name, {})
  if res then collect(store, def, res, removed) end
end

--- Called after every delete: res is the object as the store left it,
--- removed whether it is gone (else it is terminating).
collect = function(store, def, res, removed)
  local uid = res.metadata.uid
  if removed then
    for _, d in ipairs(dependents(store, uid)) do maybe_collect(store, d[1], d[2], uid) end
    M.settle_foreground(store, res)
    return
  end
  if has_finalizer(res, "orphan") then
    for _, d in ipairs(dependents(store, uid)) do
      local ddef, o = d[1], d[2]
      local refs = json.array()
      for _, ref in ipairs(owners_of(o)) do if ref.uid ~= uid then refs[#refs + 1] = ref end end
      -- Kubernetes drops the field rather than leaving an empty list.
      o.metadata.ownerReferences = #refs > 0 and refs or nil
      store:update(ddef.store_resource, o, { generation = ddef.generation == true,
        status_subresource = ddef.status_subresource == true })
    end
    local cur = store:get(def.store_resource, res.metadata.namespace or "", res.metadata.name)
    if cur then remove_finalizer(store, def, cur, "orphan") end
  elseif has_finalizer(res, "foregroundDeletion") then
    for _, d in ipairs(dependents(store, uid)) do
      local r, rm = store:delete(d[1].store_resource, d[2].metadata.namespace or "", d[2].metadata.name, {})
      if r then collect(store, d[1], r, rm) end
    end
    M.settle_foreground(store, nil, res)
  end
end
M.collect = collect

--- Drops the foregroundDeletion finalizer of owners whose blocking
--- dependents are all gone (checked for `owner`, or for the owners of a
--- just-removed dependent).
function M.settle_foreground(store, removed_dependent, owner)
  local candidates = {}
  if owner then candidates[1] = owner end
  if removed_dependent then
    for _, ref in ipairs(owners_of(removed_dependent)) do
      local o = exists(store, ref.uid, ref, removed_dependent.metadata.namespace)
      if o then candidates[#candidates + 1] = o end
    end
  end
  for _, o in ipairs(candidates) do
    if o.metadata.deletionTimestamp and has_finalizer(o, "foregroundDeletion") then
      local blocking = false
      for _, d in ipairs(dependents(store, o.metadata.uid)) do
        for _, ref in ipairs(owners_of(d[2])) do
          if ref.uid == o.metadata.uid and ref.blockOwnerDeletion then blocking = true end
        end
      end
      if not blocking then
        for _, def in ipairs(kinds.all()) do
          if def.kind == o.kind and def.api_version == o.apiVersion then
            local cur = store:get(def.store_resource, o.metadata.namespace or "", o.metadata.name)
            if cur then remove_finalizer(store, def, cur, "foregroundDeletion") end
          end
        end
      end
    end
  end
end

return M
