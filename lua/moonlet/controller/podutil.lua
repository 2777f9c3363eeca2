-- moonlet.controller.podutil: the pod predicates workload controllers share
-- (pkg/controller/controller_utils.go IsPodActive, pkg/api/v1/pod/util.go
-- IsPodReady / IsPodAvailable).
local duration = require("moonlet.printers.duration")

local M = {}

--- Not finished (Succeeded/Failed) and not being deleted.
function M.active(pod)
  local ph = (pod.status or {}).phase
  return ph ~= "Succeeded" and ph ~= "Failed" and not (pod.metadata or {}).deletionTimestamp
end

--- Ready condition True; also returns its lastTransitionTime (text).
function M.ready(pod)
  for _, c in ipairs((pod.status or {}).conditions or {}) do
    if c.type == "Ready" then return c.status == "True", c.lastTransitionTime end
  end
  return false
end

--- Ready for at least min_ready seconds at `now`. When ready but not yet
--- available, also returns the seconds until it will be.
function M.available(pod, min_ready, now)
  local ready, since = M.ready(pod)
  if not ready then return false end
  if (min_ready or 0) == 0 then return true end
  local t = duration.parse(since or "") or 0
  if t + min_ready <= now then return true end
  return false, t + min_ready - now
end

return M
