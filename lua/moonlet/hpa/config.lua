-- moonlet.hpa.config: the horizontal-pod-autoscaler controller's settings,
-- the kube-controller-manager flags of the same names and defaults
-- (`moonlet server --horizontal-pod-autoscaler-sync-period 1s`).
local M = {}

-- flag -> { field, default (seconds; ratio = true: a plain number) }
M.FLAGS = {
  ["--horizontal-pod-autoscaler-sync-period"] = { "sync_period", 15 },
  ["--horizontal-pod-autoscaler-downscale-stabilization"] = { "downscale_stabilization", 300 },
  ["--horizontal-pod-autoscaler-tolerance"] = { "tolerance", 0.1, ratio = true },
  ["--horizontal-pod-autoscaler-cpu-initialization-period"] = { "cpu_initialization_period", 300 },
  ["--horizontal-pod-autoscaler-initial-readiness-delay"] = { "initial_readiness_delay", 30 },
}

M.USAGE = [[

HorizontalPodAutoscaler flags (as kube-controller-manager's):
  --horizontal-pod-autoscaler-sync-period D  how often each HPA is
                       reconciled (default 15s)
  --horizontal-pod-autoscaler-downscale-stabilization D  the window whose
                       highest recommendation a scale-down keeps (default 5m)
  --horizontal-pod-autoscaler-tolerance R  usage ratio change below which
                       nothing is done (default 0.1)
  --horizontal-pod-autoscaler-cpu-initialization-period D  how long after
                       its start a pod's CPU sample may be skipped (default 5m)
  --horizontal-pod-autoscaler-initial-readiness-delay D  how long after its
                       start a pod may flip readiness (default 30s)
]]

--- The settings in force (defaults until configure).
M.current = {}

local function reset()
  for _, f in pairs(M.FLAGS) do M.current[f[1]] = f[2] end
end
reset()

--- Takes one flag into o.hpa. value() fetches the flag's argument.
--- @return true when the flag is ours (nil, message on a bad value)
function M.take_flag(o, flag, value)
  local f = M.FLAGS[flag]
  if not f then return false end
  local v = value()
  if v == nil then return nil, "flag needs an argument: " .. flag end
  local n
  if f.ratio then n = tonumber(v)
  else n = tonumber(v) or require("moonlet.go_duration").parse(v) end
  if not n or n < 0 or (f[1] == "sync_period" and n <= 0) then
    return nil, string.format("%s: invalid value %q", flag, v)
  end
  o.hpa = o.hpa or {}
  o.hpa[f[1]] = n
  return true
end

--- Sets the settings: given fields, defaults for the rest.
function M.configure(opts)
  reset()
  for k, v in pairs(opts or {}) do M.current[k] = v end
end

return M
