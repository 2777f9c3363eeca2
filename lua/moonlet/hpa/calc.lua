-- moonlet.hpa.calc: the HorizontalPodAutoscaler's replica calculation for
-- Resource metrics, as kube-controller-manager's replica_calculator.go
-- does it: pods grouped into ready, unready, missing and ignored; the
-- usage ratio with the tolerance; missing pods counted at 100% of the
-- request on a scale-down and 0% on a scale-up, unready pods at 0% on a
-- scale-up; no change when those guesses flip the direction. Pure: pods
-- and metrics come in as tables, the clock as `now` (unix seconds).
local parse_time = require("moonlet.tz").parse_rfc3339

local M = {}

M.TOLERANCE = 0.1
-- --horizontal-pod-autoscaler-cpu-initialization-period and
-- --horizontal-pod-autoscaler-initial-readiness-delay defaults.
M.CPU_INITIALIZATION_PERIOD = 300
M.INITIAL_READINESS_DELAY = 30

local function ready_condition(pod)
  for _, c in ipairs(((pod.status or {}).conditions) or {}) do
    if c.type == "Ready" then return c end
  end
end

local function count(set)
  local n = 0
  for _ in pairs(set) do n = n + 1 end
  return n
end

--- groupPods. metrics: pod name -> { value = milli, timestamp =, window = }
--- (seconds). @return ready count, unready, missing, ignored (name sets)
function M.group_pods(pods, metrics, resource, now, opts)
  opts = opts or {}
  local init_period = opts.cpu_initialization_period or M.CPU_INITIALIZATION_PERIOD
  local readiness_delay = opts.initial_readiness_delay or M.INITIAL_READINESS_DELAY
  local ready, unready, missing, ignored = 0, {}, {}, {}
  for _, pod in ipairs(pods) do
    local name, st = pod.metadata.name, pod.status or {}
    if pod.metadata.deletionTimestamp ~= nil or st.phase == "Failed" then
      ignored[name] = true
    elseif st.phase == "Pending" then
      unready[name] = true
    elseif not metrics[name] then
      missing[name] = true
    else
      local is_unready = false
      if resource == "cpu" then
        local cond, start = ready_condition(pod), parse_time(st.startTime)
        if not cond or not start then
          is_unready = true
        else
          local m = metrics[name]
          local transition = parse_time(cond.lastTransitionTime) or start
          if start + init_period > now then
            -- Still initializing: unready, or no full metric window since
            -- the readiness changed (its burst of start-up CPU).
            is_unready = cond.status == "False" or m.timestamp < transition + (m.window or 0)
          else
            -- Unready and never ready since it started.
            is_unready = cond.status == "False" and start + readiness_delay > transition
          end
        end
      end
      if is_unready then unready[name] = true else ready = ready + 1 end
    end
  end
  return ready, unready, missing, ignored
end

-- calculatePodRequests: the pod's containers' requests (and restartable
-- init containers', sidecars), milli-units; every one must have it.
local function pod_requests(pods, resource, container, quantity)
  local out = {}
  for _, pod in ipairs(pods) do
    local spec, sum = pod.spec or {}, 0
    local cs = {}
    for _, c in ipairs(spec.containers or {}) do cs[#cs + 1] = c end
    for _, c in ipairs(spec.initContainers or {}) do
      if c.restartPolicy == "Always" then cs[#cs + 1] = c end
    end
    for _, c in ipairs(cs) do
      if container == nil or container == c.name then
        local req = ((c.resources or {}).requests or {})[resource]
        local milli = req ~= nil and quantity(req) or 0
        if milli == 0 then
          return nil, string.format("missing request for %s in container %s of Pod %s",
            resource, c.name, pod.metadata.name)
        end
        sum = sum + milli
      end
    end
    out[pod.metadata.name] = sum
  end
  return out
end

--- Milli-units of a quantity (string or number), as Quantity.MilliValue.
function M.milli(v)
  local q = require("moonlet.api.quantity").parse(v)
  return q and q.milli or 0
end

-- GetResourceUtilizationRatio: integer percentage of the summed requests.
local function utilization_ratio(metrics, requests, target)
  local total, req_total, n = 0, 0, 0
  for name, m in pairs(metrics) do
    local r = requests[name]
    if r then
      total, req_total, n = total + m.value, req_total + r, n + 1
    end
  end
  if req_total == 0 then return nil, "no metrics returned matched known pods" end
  -- Integer percentages and milli-units, as the int64 arithmetic upstream.
  local util = math.tointeger(math.floor(total * 100 / req_total)) or 0
  return util / target, util, math.tointeger(math.floor(total / n)) or 0
end

local function within(ratio, tolerance) return math.abs(1.0 - ratio) <= tolerance end

local function ceil(x) return math.tointeger(math.ceil(x - 1e-12)) or math.ceil(x) end

-- What both calculations start from (groupPods and the checks around
-- it): the metrics of the pods that count, and the pods' groups.
-- @return metrics, ready, unready, missing | nil, err
local function counted_metrics(a)
  if next(a.metrics) == nil then
    return nil, "unable to get metrics for resource " .. a.resource .. ": no metrics returned from resource metrics API"
  end
  if #a.pods == 0 then return nil, "no pods returned by selector while calculating replica count" end
  local metrics = {}
  for k, v in pairs(a.metrics) do metrics[k] = v end
  local ready, unready, missing, ignored = M.group_pods(a.pods, metrics, a.resource, a.now, a.opts)
  for n in pairs(ignored) do metrics[n] = nil end
  for n in pairs(unready) do metrics[n] = nil end
  if next(metrics) == nil then
    return nil, "did not receive metrics for targeted pods (pods might be unready)"
  end
  return metrics, ready, unready, missing
end

--- GetResourceReplicas. args: current (replicas), target (utilization %),
--- resource ("cpu"/"memory"), pods, metrics (name -> {value, timestamp,
--- window}), now, container (nil: all), tolerance, opts (periods).
--- @return replicas, utilization %, raw average (milli) | nil, err
function M.resource_replicas(a)
  local metrics, ready, unready, missing = counted_metrics(a)
  if not metrics then return nil, ready end
  local tol = a.tolerance or M.TOLERANCE
  local requests, rerr = pod_requests(a.pods, a.resource, a.container, a.quantity or M.milli)
  if not requests then return nil, rerr end
  local ratio, util, raw = utilization_ratio(metrics, requests, a.target)
  if not ratio then return nil, util end
  local scale_up_unready = next(unready) ~= nil and ratio > 1.0
  if not scale_up_unready and next(missing) == nil then
    if within(ratio, tol) then return a.current, util, raw end
    return ceil(ratio * ready), util, raw
  end
  if next(missing) ~= nil then
    if ratio < 1.0 then
      -- A scale-down counts them at the request (or the target above 100%).
      local fallback = math.max(100, a.target)
      for n in pairs(missing) do metrics[n] = { value = requests[n] * fallback // 100 } end
    elseif ratio > 1.0 then
      for n in pairs(missing) do metrics[n] = { value = 0 } end
    end
  end
  if scale_up_unready then
    for n in pairs(unready) do metrics[n] = { value = 0 } end
  end
  local new_ratio = utilization_ratio(metrics, requests, a.target)
  if within(new_ratio, tol) or (ratio < 1.0 and new_ratio > 1.0) or (ratio > 1.0 and new_ratio < 1.0) then
    return a.current, util, raw
  end
  local replicas = ceil(new_ratio * count(metrics))
  if (new_ratio < 1.0 and replicas > a.current) or (new_ratio > 1.0 and replicas < a.current) then
    return a.current, util, raw
  end
  return replicas, util, raw
end

--- GetRawResourceReplicas (an AverageValue target, milli-units): the
--- plain-metric rules of calcPlainMetricReplicas.
--- @return replicas, average (milli) | nil, err
function M.raw_resource_replicas(a)
  local metrics, ready, unready, missing = counted_metrics(a)
  if not metrics then return nil, ready end
  local tol = a.tolerance or M.TOLERANCE
  local function ratio_of()
    local total, n = 0, 0
    for _, m in pairs(metrics) do total, n = total + m.value, n + 1 end
    return total / n / a.target, math.tointeger(math.floor(total / n)) or 0
  end
  local ratio, avg = ratio_of()
  local scale_up_unready = next(unready) ~= nil and ratio > 1.0
  if not scale_up_unready and next(missing) == nil then
    if within(ratio, tol) then return a.current, avg end
    return ceil(ratio * ready), avg
  end
  if next(missing) ~= nil then
    for n in pairs(missing) do metrics[n] = { value = ratio < 1.0 and a.target or 0 } end
  end
  if scale_up_unready then
    for n in pairs(unready) do metrics[n] = { value = 0 } end
  end
  local new_ratio = ratio_of()
  if within(new_ratio, tol) or (ratio < 1.0 and new_ratio > 1.0) or (ratio > 1.0 and new_ratio < 1.0) then
    return a.current, avg
  end
  local replicas = ceil(new_ratio * count(metrics))
  if (new_ratio < 1.0 and replicas > a.current) or (new_ratio > 1.0 and replicas < a.current) then
    return a.current, avg
  end
  return replicas, avg
end

return M
