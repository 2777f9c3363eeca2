-- restartPolicy: LimitedRestarts — like Always, but gives up on a container
-- that exited too often: more than `max` exits within `window` seconds
-- leaves it terminated (the pod then ends Failed, or Succeeded if the last
-- exit was 0). Tune per pod with annotations:
--   restart.moonlet.dev/max-restarts: "3"      (default 3)
--   restart.moonlet.dev/window-seconds: "60"   (default 60)
-- Restarts keep the kubelet's crash-loop back-off (no delay is given).
local MAX_KEY = "restart.moonlet.dev/max-restarts"
local WINDOW_KEY = "restart.moonlet.dev/window-seconds"

local function setting(pod, key, default)
  local ann = (pod.metadata or {}).annotations or {}
  local n = tonumber(ann[key] or "")
  if n and n >= 0 then return n end
  return default
end

return {
  name = "LimitedRestarts",
  decide = function(pod, _, exit)
    local max = setting(pod, MAX_KEY, 3)
    local window = setting(pod, WINDOW_KEY, 60)
    -- exit.history: unix times of this container's exits, this one last.
    local recent = 0
    for _, t in ipairs(exit.history or {}) do
      if exit.finished_at - t <= window then recent = recent + 1 end
    end
    -- `recent` exits mean recent - 1 restarts already happened in the window.
    return { restart = recent <= max }
  end,
}
