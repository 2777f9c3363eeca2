-- moonlet.controller.expectations: what a controller is waiting to see in
-- its cache after its own creates and deletes (ControllerExpectations in
-- pkg/controller/controller_utils.go). A sync that acts before its cache
-- has caught up would create or delete twice; until the expectations of a
-- key are met (or too old) the controller only reports status.
local M = {}

local Exp = {}
Exp.__index = Exp

--- A store of expectations per controller key. opts: kind (of the
--- dependents, e.g. "v1/Pod"), timeout (seconds; default 300 as Kubernetes'
--- ExpectationsTimeout).
function M.new(opts)
  return setmetatable({ kind = opts.kind, timeout = opts.timeout or 300, by_key = {} }, Exp)
end

local function record(self, key, now)
  local e = self.by_key[key]
  if not e then
    e = { creates = {}, deletes = {} }
    self.by_key[key] = e
  end
  e.at = now
  return e
end

--- Expects `name` to appear in the cache.
function Exp:created(key, name, now) record(self, key, now).creates[name] = true end

--- Expects `name` to be gone or terminating in the cache.
function Exp:deleted(key, name, now) record(self, key, now).deletes[name] = true end

--- Drops the key's expectations (its owner went away).
function Exp:forget(key) self.by_key[key] = nil end

--- Deletes `pods` (at most `max`) for `owner` under `key`, expecting each
--- to leave the cache, with the controllers' SuccessfulDelete /
--- FailedDelete events. @return number deleted (or already gone), the
--- last error message or nil
function Exp:delete_pods(ctx, key, owner, pods, now, max)
  local removed, failed = 0, nil
  for i, pod in ipairs(pods) do
    if max and i > max then break end
    local ok, st = ctx.client:delete(self.kind, pod.metadata.namespace, pod.metadata.name)
    if ok or (type(st) == "table" and (st.code == 404 or st.reason == "NotFound")) then
      removed = removed + 1
      self:deleted(key, pod.metadata.name, now)
      if ok then ctx:event(owner, "Normal", "SuccessfulDelete", "Deleted pod: " .. pod.metadata.name) end
    else
      failed = type(st) == "table" and tostring(st.message) or tostring(st)
      ctx:event(owner, "Warning", "FailedDelete", "Error deleting: " .. failed)
    end
  end
  return removed, failed
end

--- True when every expected create is in ctx's cache and every expected
--- delete has left it (or is terminating), or the record is too old.
function Exp:satisfied(ctx, key, ns, now)
  local e = self.by_key[key]
  if not e then return true end
  if now - e.at > self.timeout then
    self.by_key[key] = nil
    return true
  end
  for name in pairs(e.creates) do
    if ctx:get(self.kind, ns, name) then e.creates[name] = nil end
  end
  for name in pairs(e.deletes) do
    local o = ctx:get(self.kind, ns, name)
    if not o or o.metadata.deletionTimestamp then e.deletes[name] = nil end
  end
  if next(e.creates) == nil and next(e.deletes) == nil then
    self.by_key[key] = nil
    return true
  end
  return false
end

return M
