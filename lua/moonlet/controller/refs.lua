-- moonlet.controller.refs: owner references the way Kubernetes' controllers
-- use them (pkg/controller/controller_ref_manager.go): the controlling
-- reference of an object, a controller reference to write, and claim(),
-- which adopts matching orphans and releases owned objects whose labels
-- stopped matching, for any owner kind and any dependent kind.
local json = require("moonlet.json")

local M = {}

--- The API status of a failed call as text.
function M.message(st)
  return type(st) == "table" and tostring(st.message) or tostring(st)
end

--- True when a failed call lost a race (409 Conflict).
function M.conflict(st)
  return type(st) == "table" and (st.code == 409 or st.reason == "Conflict")
end

--- True when a failed call found nothing (404 NotFound).
function M.not_found(st)
  return type(st) == "table" and (st.code == 404 or st.reason == "NotFound")
end

--- The ownerReference with controller: true, or nil.
function M.controller_ref(obj)
  for _, ref in ipairs(((obj or {}).metadata or {}).ownerReferences or {}) do
    if ref.controller == true then return ref end
  end
  return nil
end

--- A controller reference to `owner` (blockOwnerDeletion: true, as every
--- built-in controller writes it). api_version/kind name the owner's type.
function M.owner_ref(owner, api_version, kind)
  return { apiVersion = api_version, kind = kind, name = owner.metadata.name,
           uid = owner.metadata.uid, controller = true, blockOwnerDeletion = true }
end

-- Writes obj's ownerReferences under a resourceVersion precondition, so an
-- adoption never overwrites a reference someone else just set.
local function set_owners(ctx, kind, obj, refs)
  return ctx.client:patch(kind, obj.metadata.namespace, obj.metadata.name, "merge", {
    metadata = { resourceVersion = obj.metadata.resourceVersion,
                 ownerReferences = #refs > 0 and json.array(refs) or json.null },
  })
end

--- Claims `objects` for an owner (ClaimObjects). opts:
---   owner        the owner object (from the cache)
---   owner_kind   its kind, "apps/v1/ReplicaSet" (re-read before adopting)
---   ref          the controller reference to add (M.owner_ref)
---   kind         the dependents' kind, "v1/Pod"
---   selector     compiled selector (:matches(labels))
---   objects      candidates (same namespace as the owner)
---   match(obj)   optional extra condition besides the selector
--- Owned objects that still match are kept; owned ones that stopped
--- matching are released (our reference removed: they keep running);
--- matching objects without a controller are adopted, unless the owner or
--- the object is being deleted. Conflicts and vanished objects are skipped:
--- the next sync sees them afresh.
--- @return the claimed objects, or nil when the owner is gone (uid changed)
function M.claim(ctx, opts)
  local owner = opts.owner
  local uid, deleting = owner.metadata.uid, owner.metadata.deletionTimestamp ~= nil
  local out, fresh_checked = {}, false
  for _, obj in ipairs(opts.objects) do
    local ref = M.controller_ref(obj)
    local matches = opts.selector:matches(obj.metadata.labels or {})
      and (not opts.match or opts.match(obj))
    if ref and ref.uid == uid then
      if matches or deleting then
        out[#out + 1] = obj
      else
        local refs = {}
        for _, r in ipairs(obj.metadata.ownerReferences or {}) do
          if r.uid ~= uid then refs[#refs + 1] = r end
        end
        local ok, st = set_owners(ctx, opts.kind, obj, refs)
        if not ok and not M.not_found(st) and not M.conflict(st) then
          error("releasing " .. obj.metadata.name .. ": " .. M.message(st), 0)
        end
      end
    elseif not ref and matches and not deleting and not obj.metadata.deletionTimestamp then
      -- Adoption needs the owner as it is now, not as cached
      -- (RecheckDeletionTimestamp).
      if not fresh_checked then
        local cur = ctx.client:get(opts.owner_kind, owner.metadata.namespace, owner.metadata.name)
        if not cur or cur.metadata.uid ~= uid then return nil end
        if cur.metadata.deletionTimestamp then
          error(string.format("%s %s/%s has just been deleted at %s", opts.ref.kind,
            owner.metadata.namespace, owner.metadata.name, cur.metadata.deletionTimestamp), 0)
        end
        fresh_checked = true
      end
      local refs = {}
      for _, r in ipairs(obj.metadata.ownerReferences or {}) do refs[#refs + 1] = r end
      refs[#refs + 1] = opts.ref
      local res, st = set_owners(ctx, opts.kind, obj, refs)
      if res then
        out[#out + 1] = type(res) == "table" and res.metadata and res or obj
      elseif not M.not_found(st) and not M.conflict(st) then
        error("adopting " .. obj.metadata.name .. ": " .. M.message(st), 0)
      end
    end
  end
  return out
end

return M
