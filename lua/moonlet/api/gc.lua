-- The API server's part of garbage collection (semantics 7): on DELETE it
-- decides the propagation policy (the request's, else the kind's default)
-- and which GC finalizer (`orphan`, `foregroundDeletion`) the object must
-- carry. The collecting itself is the garbagecollector controller plugin.
local json = require("moonlet.json")
local validation = require("moonlet.validation")
local status = require("moonlet.api.status")

local M = {}

M.ORPHAN = "orphan"
M.FOREGROUND = "foregroundDeletion"

-- The warning batch/v1 answers a Job delete without a policy with
-- (pkg/registry/batch/job/storage/storage.go).
M.JOB_WARNING = "child pods are preserved by default when jobs are deleted; "
  .. "set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning"

local POLICIES = { Foreground = true, Background = true, Orphan = true }

-- Errors about DeleteOptions name that kind, not the object's.
local DELETE_OPTIONS = { kind = "DeleteOptions", group = "meta.k8s.io" }

--- Checks the policy fields of DeleteOptions as ValidateDeleteOptions does.
--- @param opts DeleteOptions table (propagationPolicy, orphanDependents)
--- @return nil when valid, else a 422 Status table
function M.validate_options(opts)
  local errs = {}
  local p = opts.propagationPolicy
  if opts.orphanDependents ~= nil and p ~= nil then
    errs[#errs + 1] = validation.invalid("propagationPolicy", p,
      "orphanDependents and deletionPropagation cannot be both set")
  end
  if p ~= nil and not POLICIES[p] then
    errs[#errs + 1] = validation.not_supported("propagationPolicy", p,
      { "Foreground", "Background", "Orphan", "nil" })
  end
  if #errs > 0 then return status.invalid(DELETE_OPTIONS, "", errs) end
  return nil
end

--- The policy the server applies when a request names none: the kind
--- plugin's `default_propagation`, else Orphan for batch Jobs (kept from
--- batch/v1's first days), else Background.
--- @return policy, warning (the API warning to send, or nil)
function M.default_policy(def)
  if def.default_propagation then return def.default_propagation, def.default_propagation_warning end
  if def.group == "batch" and def.kind == "Job" then return "Orphan", M.JOB_WARNING end
  return "Background", nil
end

--- The finalizers obj must carry after a delete with opts, as the generic
--- registry's deletionFinalizersForGarbageCollection: an explicit policy
--- wins, then a GC finalizer already on the object, then the default.
--- @return new finalizers (a JSON array) or nil when unchanged, warning or nil
function M.deletion_finalizers(def, obj, opts)
  local warning
  local explicit = opts.orphanDependents ~= nil or opts.propagationPolicy ~= nil
  local orphan, foreground
  if opts.orphanDependents ~= nil then
    orphan, foreground = opts.orphanDependents == true, false
  elseif opts.propagationPolicy ~= nil then
    orphan, foreground = opts.propagationPolicy == "Orphan", opts.propagationPolicy == "Foreground"
  end
  local old = (obj.metadata or {}).finalizers or {}
  if not explicit then
    for _, f in ipairs(old) do
      if orphan == nil and f == M.ORPHAN then orphan, foreground = true, false end
      if orphan == nil and f == M.FOREGROUND then orphan, foreground = false, true end
    end
    local policy
    policy, warning = M.default_policy(def)
    if orphan == nil then orphan, foreground = policy == "Orphan", policy == "Foreground" end
  end
  local fins = json.array()
  for _, f in ipairs(old) do
    if f ~= M.ORPHAN and f ~= M.FOREGROUND then fins[#fins + 1] = f end
  end
  if orphan then fins[#fins + 1] = M.ORPHAN end
  if foreground then fins[#fins + 1] = M.FOREGROUND end
  -- Compared as sets: the order on the object is kept when nothing changes.
  local want, have = {}, {}
  for _, f in ipairs(fins) do want[f] = true end
  for _, f in ipairs(old) do have[f] = true end
  for f in pairs(want) do if not have[f] then return fins, warning end end
  for f in pairs(have) do if not want[f] then return fins, warning end end
  return nil, warning
end

return M
