-- The pods/NAME/binding subresource (POST a v1 Binding): how a scheduler
-- assigns a pod to a node. As the API server's BindingREST: the names must
-- agree, the target must be a Node, a pod being deleted or already bound is
-- refused, and the write sets spec.nodeName plus PodScheduled=True.
local json = require("moonlet.json")
local status = require("moonlet.api.status")
local validation = require("moonlet.validation")

local M = {}

local function conflict(ctx, msg)
  return ctx:fail(status.new(409, "Conflict",
    string.format('Operation cannot be fulfilled on pods/binding "%s": %s', ctx.name, msg),
    { name = ctx.name, kind = "pods/binding" }))
end

--- Router handler for pods/NAME/binding.
function M.handler(ctx, method)
  if method ~= "POST" then return ctx:fail(status.method_not_allowed()) end
  local b, err = require("moonlet.api.handlers").body_value(ctx)
  if type(b) ~= "table" then
    return ctx:fail(status.bad_request("couldn't get version/kind; json parse error: " .. tostring(err)))
  end
  local md = type(b.metadata) == "table" and b.metadata or {}
  if md.name ~= ctx.name then
    return ctx:fail(status.bad_request("name in URL does not match name in Binding object"))
  end
  local target = type(b.target) == "table" and b.target or {}
  local errs = validation.errors()
  if target.kind and target.kind ~= "" and target.kind ~= "Node" then
    errs:add(validation.not_supported("target.kind", target.kind, { "Node", "<empty>" }))
  end
  if not target.name or target.name == "" then errs:add(validation.required("target.name", "")) end
  if #errs > 0 then
    local def = { kind = "Binding", group = "" }
    return ctx:fail(status.invalid(def, ctx.name, errs:list()))
  end
  local pod = ctx.store:get(ctx.def.store_resource, ctx.namespace, ctx.name)
  if not pod then return ctx:fail(status.not_found(ctx.def, ctx.name)) end
  if md.uid and md.uid ~= "" and md.uid ~= pod.metadata.uid then
    return conflict(ctx, string.format("Precondition failed: UID in precondition: %s, UID in object meta: %s",
      md.uid, pod.metadata.uid))
  end
  if pod.metadata.deletionTimestamp then
    return conflict(ctx, string.format("pod %s is being deleted, cannot be assigned to a host", ctx.name))
  end
  if pod.spec.nodeName and pod.spec.nodeName ~= "" then
    return conflict(ctx, string.format('pod %s is already assigned to node "%s"', ctx.name, pod.spec.nodeName))
  end
  pod.spec.nodeName = target.name
  for k, v in pairs(md.annotations or {}) do
    pod.metadata.annotations = pod.metadata.annotations or {}
    pod.metadata.annotations[k] = v
  end
  pod.status = pod.status or {}
  local conds = pod.status.conditions or json.array()
  local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local found = false
  for _, c in ipairs(conds) do
    if c.type == "PodScheduled" then
      found = true
      if c.status ~= "True" then c.lastTransitionTime = now end
      c.status, c.reason, c.message = "True", nil, nil
    end
  end
  if not found then
    conds[#conds + 1] = { type = "PodScheduled", status = "True", lastProbeTime = json.null,
      lastTransitionTime = now }
  end
  pod.status.conditions = conds
  local res, msg, code = ctx.store:update(ctx.def.store_resource, pod, { generation = false, json = true })
  if not res then
    if code == "ECONFLICT" then return conflict(ctx, tostring(msg):gsub("^E%u+: ", "")) end
    return ctx:fail(status.internal(msg))
  end
  return ctx:reply(201, { kind = "Status", apiVersion = "v1", metadata = {}, status = "Success", code = 201 })
end

return M
