-- coordination.k8s.io/v1 Lease: what node agents renew as their heartbeat
-- (kube-node-lease/<node>) and leader election uses; printed as
-- NAME HOLDER AGE.
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local validation = require("moonlet.validation")

local MicroTime = { t = "string", go = "v1.MicroTime" }

return {
  group = "coordination.k8s.io", version = "v1", kind = "Lease", plural = "leases", singular = "lease",
  namespaced = true,
  schema = S.kind("Lease", {
    spec = S.struct("v1.LeaseSpec", {
      holderIdentity = S.string, leaseDurationSeconds = S.integer, acquireTime = MicroTime,
      renewTime = MicroTime, leaseTransitions = S.integer, strategy = S.string,
      preferredHolder = S.string,
    }),
  }),
  validate = function(obj, errs)
    local spec = obj.spec or {}
    if spec.leaseDurationSeconds ~= nil and spec.leaseDurationSeconds <= 0 then
      errs:add(validation.invalid("spec.leaseDurationSeconds", spec.leaseDurationSeconds, "must be greater than 0"))
    end
    if spec.leaseTransitions ~= nil and spec.leaseTransitions < 0 then
      errs:add(validation.invalid("spec.leaseTransitions", spec.leaseTransitions, "must be greater than or equal to 0"))
    end
  end,
  columns = {
    columns.name(),
    { name = "Holder", type = "string", description = "The holder of the lease",
      value = function(l) return (l.spec or {}).holderIdentity or "" end },
    columns.age(),
  },
}
