-- apps/v1 ControllerRevision: an immutable snapshot of a controller's
-- template (the DaemonSet's rollout history and the source of its pods'
-- controller-revision-hash label). Validated as ValidateControllerRevision
-- (data required and immutable, revision >= 0); kubectl's columns NAME
-- CONTROLLER REVISION AGE.
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local validation = require("moonlet.validation")
local podspec = require("moonlet.api.podspec")
local json = require("moonlet.json")

local function controller_of(obj)
  for _, ref in ipairs((obj.metadata or {}).ownerReferences or {}) do
    if ref.controller == true then return ref end
  end
  return nil
end

local function validate(obj, errs)
  if obj.data == nil or obj.data == json.null then errs:add(validation.required("data", "")) end
  if math.type(obj.revision) and obj.revision < 0 then
    errs:add(validation.invalid("revision", obj.revision, "must be greater than or equal to 0"))
  end
end

return {
  group = "apps", version = "v1", kind = "ControllerRevision", plural = "controllerrevisions",
  singular = "controllerrevision", namespaced = true,
  schema = S.kind("ControllerRevision", { data = S.any, revision = S.int64 }),

  validate = validate,

  validate_update = function(obj, old, errs)
    validate(obj, errs)
    if not podspec.equal(obj.data, old.data) then
      errs:add(validation.invalid("data", obj.data or json.null, "field is immutable"))
    end
  end,

  columns = {
    columns.name(),
    { name = "Controller", type = "string", description = "Controller of the object",
      -- formatResourceName(GroupKind, name, withKind): "daemonset.apps/x"
      value = function(obj)
        local ref = controller_of(obj)
        if not ref then return "<none>" end
        local group = tostring(ref.apiVersion or ""):match("^(.*)/[^/]*$") or ""
        local gk = group ~= "" and (ref.kind .. "." .. group) or ref.kind
        return gk:lower() .. "/" .. tostring(ref.name)
      end },
    { name = "Revision", type = "integer",
      description = "Revision indicates the revision of the state represented by Data.",
      value = function(obj) return obj.revision or 0 end },
    columns.age(),
  },
}
