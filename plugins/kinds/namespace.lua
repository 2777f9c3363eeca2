-- v1 Namespace: cluster-scoped; phase Active/Terminating; the
-- kubernetes.io/metadata.name label the API server adds; deleting one
-- deletes everything in it first (the namespace lifecycle).
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local validation = require("moonlet.validation")
local json = require("moonlet.json")
local kinds = require("moonlet.api.kinds")
local status = require("moonlet.api.status")

local NAME_LABEL = "kubernetes.io/metadata.name"
local PROTECTED = { default = true, ["kube-system"] = true, ["kube-public"] = true }

return {
  group = "", version = "v1", kind = "Namespace", plural = "namespaces", singular = "namespace",
  short_names = { "ns" }, namespaced = false, status_subresource = true,
  subresources = { "finalize" },
  name_validator = validation.is_dns1123_label,
  schema = S.kind("Namespace", {
    spec = S.struct("v1.NamespaceSpec", { finalizers = S.list(S.string) }),
    status = S.struct("v1.NamespaceStatus", { phase = S.string, conditions = S.list(S.any) }),
  }),
  defaults = function(obj)
    obj.metadata.labels = obj.metadata.labels or {}
    if obj.metadata.name then obj.metadata.labels[NAME_LABEL] = obj.metadata.name end
    obj.spec = obj.spec or {}
    obj.spec.finalizers = obj.spec.finalizers or json.array({ "kubernetes" })
    obj.status = obj.status or {}
    obj.status.phase = obj.status.phase or "Active"
  end,
  validate = function(obj, errs)
    local labels = obj.metadata.labels or {}
    if obj.metadata.name and labels[NAME_LABEL] ~= obj.metadata.name then
      errs:add(validation.invalid("metadata.labels[" .. NAME_LABEL .. "]", labels[NAME_LABEL] or "",
        "must be " .. obj.metadata.name))
    end
  end,
  -- Namespace lifecycle, done in line: everything in the namespace goes
  -- before the namespace itself.
  before_delete = function(obj, store)
    local name = obj.metadata.name
    if PROTECTED[name] then
      return status.forbidden(string.format('namespaces "%s" is forbidden: this namespace may not be deleted', name),
        kinds.by_kind("v1/Namespace"), name)
    end
    for _, d in ipairs(kinds.all()) do
      if d.namespaced then
        local res = store:list(d.store_resource, { namespace = name })
        for _, o in ipairs(res and res.items or {}) do
          store:delete(d.store_resource, name, o.metadata.name, {})
        end
      end
    end
  end,
  columns = {
    columns.name(),
    { name = "Status", type = "string", description = "The status of the namespace",
      value = function(obj) return obj.status and obj.status.phase or "" end },
    columns.age(),
  },
}
