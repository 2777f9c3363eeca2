-- greeting: for each Greeting keep a ConfigMap `<name>-greeting` whose
-- data.message is the Greeting's spec.message, controlled by the Greeting
-- (so the garbage collector removes it with its owner), and report it in
-- status {observedGeneration, configMap}. Level-triggered: every run
-- compares the world with the spec, whatever woke it.
local GREETING = "example.moonlet.dev/v1/Greeting"
local LABEL = "example.moonlet.dev/greeting"

local function owner_ref(g)
  return { apiVersion = g.apiVersion or "example.moonlet.dev/v1", kind = "Greeting",
           name = g.metadata.name, uid = g.metadata.uid,
           controller = true, blockOwnerDeletion = true }
end

-- The uid of obj's controlling owner, or nil.
local function controller_uid(obj)
  for _, ref in ipairs(obj.metadata.ownerReferences or {}) do
    if ref.controller == true then return ref.uid end
  end
  return nil
end

local function fail(what, st)
  error(string.format("%s: %s", what, type(st) == "table" and tostring(st.message) or tostring(st)), 0)
end

-- A write that lost a race with another writer (our cache is behind):
-- try again soon, without the noise of a failure.
local function conflict(st)
  return type(st) == "table" and (st.reason == "Conflict" or st.code == 409)
end

local function ensure_configmap(ctx, g, cm_name)
  local ns, message = g.metadata.namespace, g.spec.message
  local cm = ctx:get("v1/ConfigMap", ns, cm_name)
  if not cm then
    local created, st = ctx.client:create("v1/ConfigMap", {
      apiVersion = "v1", kind = "ConfigMap",
      metadata = { name = cm_name, namespace = ns, labels = { [LABEL] = g.metadata.name },
                   ownerReferences = { owner_ref(g) } },
      data = { message = message },
    })
    if not created then
      if conflict(st) then return false end
      fail("create ConfigMap " .. cm_name, st)
    end
    ctx:event(g, "Normal", "Created", "Created ConfigMap " .. cm_name)
    return true
  end
  if controller_uid(cm) ~= g.metadata.uid then
    -- Someone else's ConfigMap: never take it over (sample-controller's
    -- ErrResourceExists); the error keeps us retrying with back-off.
    local msg = string.format('Resource "%s" already exists and is not managed by Greeting', cm_name)
    ctx:event(g, "Warning", "ErrResourceExists", msg)
    error(msg, 0)
  end
  if (cm.data or {}).message ~= message then
    cm.data = cm.data or {}
    cm.data.message = message
    local updated, st = ctx.client:update("v1/ConfigMap", cm)
    if not updated then
      if conflict(st) then return false end
      fail("update ConfigMap " .. cm_name, st)
    end
    ctx:event(g, "Normal", "Updated", "Updated ConfigMap " .. cm_name)
  end
  return true
end

return {
  name = "greeting",
  kind = GREETING,
  owns = { "v1/ConfigMap" },
  workers = 1,
  resync_seconds = 300,

  reconcile = function(ctx, _, g)
    -- Gone: the garbage collector follows the ownerReference for us.
    if not g or g.metadata.deletionTimestamp then return end
    local cm_name = g.metadata.name .. "-greeting"
    if not ensure_configmap(ctx, g, cm_name) then return { requeue = true } end
    local st = g.status or {}
    if st.observedGeneration == g.metadata.generation and st.configMap == cm_name then return end
    g.status = { observedGeneration = g.metadata.generation, configMap = cm_name }
    local ok, err = ctx.client:update_status(GREETING, g)
    if not ok then
      if conflict(err) then return { requeue = true } end
      if type(err) == "table" and err.reason == "NotFound" then return end
      fail("update status", err)
    end
  end,
}
