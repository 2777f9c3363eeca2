-- CronJob policy registry: the two decisions the CronJob controller leaves
-- to a replaceable plugin (plugins/policies/cron/, a scripts dir's
-- policies/cron/): which missed time to run, and what to do about active
-- jobs. The built-in "default" is Kubernetes'; a CronJob picks another with
-- the annotation cron.moonlet.dev/policy.
--
-- A plugin returns { name = "default", missed = fn(info) -> decision,
-- overlap = fn(info) -> "create" | "skip" | "replace" (optional: the
-- default's is used) }.
-- missed info: cronjob, now (unix s), schedule (moonlet.cron schedule),
--   zone (of the controller's clock), calc (moonlet.cronjob_schedule),
--   delta (seconds to wake after an activation).
-- decision: { time = unix s | nil, error = msg | nil, too_many = bool,
--   requeue_after = seconds | nil }
-- overlap info: cronjob, active (status.active refs), policy
--   (spec.concurrencyPolicy), time (the scheduled time about to run).
local M = {}

M.ANNOTATION = "cron.moonlet.dev/policy"
M.DEFAULT = "default"

local base = require("moonlet.policy_registry").new({ type = "cron", fn = "missed",
  what = "cron policy", example = "default" })
M.check, M.load, M.register, M.get, M.reset = base.check, base.load, base.register, base.get, base.reset

--- Names of the known policies, sorted.
function M.names() return base.names() end

--- The policy a CronJob asks for (annotation), the default when it names
--- none. @return policy, unknown name | nil
function M.for_cronjob(cj)
  local want = (((cj.metadata or {}).annotations) or {})[M.ANNOTATION]
  if want and want ~= "" then
    local p = M.get(want)
    if p then return p end
    return M.get(M.DEFAULT), want
  end
  return M.get(M.DEFAULT)
end

--- The overlap decision of policy p (the default's when p has none).
function M.overlap(p, info)
  local fn = p.overlap or M.get(M.DEFAULT).overlap
  return fn(info)
end

return M
