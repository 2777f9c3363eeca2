-- moonlet.api.scale: the autoscaling/v1 Scale subresource of workload kinds
-- with spec.replicas, spec.selector and status.replicas (ReplicaSet,
-- Deployment, and any custom kind of that shape). GET returns the Scale;
-- PUT takes a Scale (resourceVersion precondition), PATCH a merge or
-- strategic patch of one (the same for this flat object). Writes go
-- through the store so generation and watches follow; ?dryRun=All answers
-- without writing.
local json = require("moonlet.json")
local selector = require("moonlet.selector")
local status = require("moonlet.api.status")
local validation = require("moonlet.validation")

local M = {}

--- The Scale of a workload object.
function M.of(obj)
  local sel = selector.from_table(obj.spec.selector or {})
  return {
    kind = "Scale", apiVersion = "autoscaling/v1",
    metadata = { name = obj.metadata.name, namespace = obj.metadata.namespace, uid = obj.metadata.uid,
      resourceVersion = obj.metadata.resourceVersion, creationTimestamp = obj.metadata.creationTimestamp },
    spec = { replicas = obj.spec.replicas or 0 },
    status = { replicas = (obj.status or {}).replicas or 0, selector = sel and sel:string() or "" },
  }
end

--- The subresource handler (a kind plugin's subresource_handlers.scale).
function M.handler(ctx, method)
  local def = ctx.def
  local obj = ctx.store:get(def.store_resource, ctx.namespace, ctx.name)
  if not obj then return ctx:fail(status.not_found(def, ctx.name)) end
  if method == "GET" then return ctx:reply(200, M.of(obj)) end
  if method ~= "PUT" and method ~= "PATCH" then return ctx:fail(status.method_not_allowed()) end
  local body, derr = require("moonlet.api.handlers").body_value(ctx)
  if type(body) ~= "table" then
    return ctx:fail(status.bad_request("error decoding patch or body: " .. tostring(derr)))
  end
  if method == "PUT" then
    local rv = type(body.metadata) == "table" and body.metadata.resourceVersion
    if rv and rv ~= "" and rv ~= obj.metadata.resourceVersion then
      return ctx:fail(status.conflict(def, ctx.name, "the object has been modified; please apply your "
        .. "changes to the latest version and try again"))
    end
  end
  local want = type(body.spec) == "table" and body.spec.replicas
  if want == nil then want = obj.spec.replicas or 0 end
  if not math.type(want) or want < 0 then
    local errs = validation.errors()
    errs:add(validation.invalid("spec.replicas", want, "must be greater than or equal to 0"))
    return ctx:fail(status.invalid({ kind = "Scale", group = "autoscaling" }, ctx.name, errs:list()))
  end
  if want ~= obj.spec.replicas then
    -- spec.replicas changes hands when somebody applied the object.
    local before = obj.metadata.managedFields ~= nil and json.copy(obj)
    obj.spec.replicas = want
    if before then require("moonlet.api.handlers").track_fields(ctx, before, obj) end
    if not require("moonlet.api.handlers").is_dry_run(ctx) then
      local res, msg = ctx.store:update(def.store_resource, obj, { generation = true, status_subresource = true })
      if not res then return ctx:fail(status.internal(msg)) end
      obj = res
    end
  end
  return ctx:reply(200, M.of(obj))
end

return M
