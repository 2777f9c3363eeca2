-- moonlet.hpa.sync: one reconcile of a HorizontalPodAutoscaler, as
-- horizontal.go's reconcileAutoscaler: read the target's scale, compute a
-- proposal per metric (moonlet.hpa.calc; the highest wins), normalize it
-- (moonlet.hpa.normalize), write the scale, then the status with
-- AbleToScale / ScalingActive / ScalingLimited and Kubernetes' events.
-- The world comes in through `env` so specs can fake it:
--   env.get_scale(hpa) -> Scale | nil, message
--   env.put_scale(hpa, scale) -> Scale | nil, message
--   env.pods(namespace, selector string) -> pods
--   env.pod_metrics(namespace, selector string) -> PodMetrics list | nil, message
--   env.event(hpa, type, reason, message)
--   env.now() -> unix seconds; env.state (moonlet.hpa.normalize state);
--   env.config (moonlet.hpa.config.current)
local calc = require("moonlet.hpa.calc")
local normalize = require("moonlet.hpa.normalize")
local quantity = require("moonlet.api.quantity")
local selector = require("moonlet.selector")
local parse_time = require("moonlet.tz").parse_rfc3339
local go_duration = require("moonlet.go_duration")

local M = {}

local function time_text(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

-- setCondition: the transition time moves only when the status changes.
local function set_condition(hpa, now, typ, st, reason, message)
  local conds = hpa.status.conditions or {}
  hpa.status.conditions = conds
  local found
  for _, c in ipairs(conds) do if c.type == typ then found = c end end
  if not found then
    found = { type = typ }
    conds[#conds + 1] = found
  end
  if found.status ~= st or not found.lastTransitionTime then found.lastTransitionTime = time_text(now) end
  found.status, found.reason, found.message = st, reason, message
end

-- PodMetrics list -> pod name -> { value = milli, timestamp, window }, as
-- the metrics client's getPodMetrics sums a pod's containers (a pod with
-- a container lacking the resource has no metric).
local function pod_metric_info(items, resource)
  local out = {}
  for _, m in ipairs(items or {}) do
    local sum, missing = 0, #(m.containers or {}) == 0
    for _, c in ipairs(m.containers or {}) do
      local v = (c.usage or {})[resource]
      if v == nil then missing = true break end
      sum = sum + calc.milli(v)
    end
    if not missing then
      out[m.metadata.name] = { value = sum, timestamp = parse_time(m.timestamp) or 0,
        window = go_duration.parse(m.window or "0s") or 0 }
    end
  end
  return out
end

-- The metric kinds moonlet has no source for: what their failure says.
local UNSUPPORTED = {
  Pods = { "FailedGetPodsMetric", "failed to get pods metric value: unable to get metric %s: "
    .. "no custom metrics API (custom.metrics.k8s.io) is served by moonlet" },
  Object = { "FailedGetObjectMetric", "failed to get object metric value: unable to get metric %s: "
    .. "no custom metrics API (custom.metrics.k8s.io) is served by moonlet" },
  External = { "FailedGetExternalMetric", "failed to get external metric %s: "
    .. "no external metrics API (external.metrics.k8s.io) is served by moonlet" },
  ContainerResource = { "FailedGetContainerResourceMetric", "failed to get %s container metric value: "
    .. "container resource metrics are not supported by moonlet" },
}

-- computeStatusForResourceMetric. @return proposal, MetricStatus, name | nil, reason, message
local function resource_metric(env, hpa, spec, current, ns, sel, sel_text)
  local src = spec.resource or {}
  local res, target = src.name, src.target or {}
  local items, merr = env.pod_metrics(ns, sel_text)
  local pods = env.pods(ns, sel_text)
  local args = { current = current, resource = res, pods = pods, now = env.now(),
    metrics = items and pod_metric_info(items, res) or {}, tolerance = env.config.tolerance,
    opts = env.config }
  if not items then
    return nil, "FailedGetResourceMetric", string.format("failed to get %s %s: unable to get metrics for resource %s: %s",
      res, target.averageValue and "usage" or "utilization", res, tostring(merr))
  end
  if target.averageValue ~= nil then
    args.target = calc.milli(target.averageValue)
    local n, avg = calc.raw_resource_replicas(args)
    if not n then return nil, "FailedGetResourceMetric", string.format("failed to get %s usage: %s", res, avg) end
    return n, { type = "Resource", resource = { name = res,
      current = { averageValue = quantity.from_milli(avg):string() } } }, res .. " resource"
  end
  if target.averageUtilization == nil then
    return nil, "FailedGetResourceMetric", "invalid resource metric source: neither an average utilization target "
      .. "nor an average value (usage) target was set"
  end
  args.target = target.averageUtilization
  local n, util, raw = calc.resource_replicas(args)
  if not n then return nil, "FailedGetResourceMetric", string.format("failed to get %s utilization: %s", res, util) end
  return n, { type = "Resource", resource = { name = res,
    current = { averageUtilization = util, averageValue = quantity.from_milli(raw):string() } } },
    res .. " resource utilization (percentage of request)"
end

-- computeReplicasForMetrics. @return replicas, metric name, statuses | -1, nil, statuses, err
local function replicas_for_metrics(env, hpa, scale, current)
  local ns = hpa.metadata.namespace
  local sel_text = (scale.status or {}).selector or ""
  if sel_text == "" then
    env.event(hpa, "Warning", "SelectorRequired", "selector is required")
    set_condition(hpa, env.now(), "ScalingActive", "False", "InvalidSelector", "the HPA target's scale is missing a selector")
    return -1, nil, {}, "selector is required"
  end
  local sel, serr = selector.parse(sel_text)
  if not sel then
    local msg = "couldn't convert selector into a corresponding internal selector object: " .. tostring(serr)
    env.event(hpa, "Warning", "InvalidSelector", msg)
    set_condition(hpa, env.now(), "ScalingActive", "False", "InvalidSelector", msg)
    return -1, nil, {}, msg
  end
  local specs = hpa.spec.metrics or {}
  local statuses, replicas, metric, invalid, first_err, first_cond = {}, 0, nil, 0, nil, nil
  for i, spec in ipairs(specs) do
    local n, st, name_or_reason, msg
    if spec.type == "Resource" then
      n, st, name_or_reason = resource_metric(env, hpa, spec, current, ns, sel, sel_text)
      if not n then name_or_reason, msg = st, name_or_reason end
    else
      local u = UNSUPPORTED[spec.type]
      local src = spec[({ Pods = "pods", Object = "object", External = "external",
        ContainerResource = "containerResource" })[spec.type] or ""] or {}
      local what = spec.type == "ContainerResource" and tostring(src.name)
        or tostring((src.metric or {}).name)
      if u then name_or_reason, msg = u[1], string.format(u[2], what)
      else name_or_reason, msg = "InvalidMetricSourceType", "unknown metric source type \"" .. tostring(spec.type) .. "\"" end
    end
    if n then
      statuses[i] = st
      if n > replicas then replicas, metric = n, name_or_reason end
    else
      statuses[i] = { type = "" }
      invalid = invalid + 1
      env.event(hpa, "Warning", name_or_reason, msg)
      if not first_err then
        first_err = msg
        first_cond = { name_or_reason, "the HPA was unable to compute the replica count: " .. msg }
      end
    end
  end
  local clean = {}
  for i = 1, #specs do if statuses[i] and statuses[i].type ~= "" then clean[#clean + 1] = statuses[i] end end
  if invalid >= #specs or (invalid > 0 and replicas < current) then
    set_condition(hpa, env.now(), "ScalingActive", "False", first_cond[1], first_cond[2])
    return -1, nil, clean, "invalid metrics (" .. invalid .. " invalid out of " .. #specs
      .. "), first error is: " .. first_err
  end
  set_condition(hpa, env.now(), "ScalingActive", "True", "ValidMetricFound",
    "the HPA was able to successfully calculate a replica count from " .. (metric or ""))
  return replicas, metric, clean, first_err
end

--- Reconciles `hpa` (a copy: its status is rewritten in place).
--- @return hpa (with the new status), err message | nil
function M.reconcile(env, hpa)
  local now = env.now()
  local key = hpa.metadata.namespace .. "/" .. hpa.metadata.name
  hpa.status = hpa.status or {}
  local spec = hpa.spec
  local ref = spec.scaleTargetRef or {}
  local reference = string.format("%s/%s/%s", tostring(ref.kind), hpa.metadata.namespace, tostring(ref.name))
  local scale, serr = env.get_scale(hpa)
  if not scale then
    env.event(hpa, "Warning", "FailedGetScale", serr)
    set_condition(hpa, now, "AbleToScale", "False", "FailedGetScale",
      "the HPA controller was unable to get the target's current scale: " .. serr)
    return hpa, "failed to query scale subresource for " .. reference .. ": " .. serr
  end
  set_condition(hpa, now, "AbleToScale", "True", "SucceededGetScale",
    "the HPA controller was able to get the target's current scale")
  local current = (scale.spec or {}).replicas or 0
  normalize.record_initial(env.state, key, current, now)
  local min = spec.minReplicas or 1
  local desired, reason, rescale, statuses, err = 0, "", true, {}, nil
  if current == 0 and min ~= 0 then
    desired, rescale = 0, false
    set_condition(hpa, now, "ScalingActive", "False", "ScalingDisabled",
      "scaling is disabled since the replica count of the target is zero")
  elseif current > spec.maxReplicas then
    reason, desired = "Current number of replicas above Spec.MaxReplicas", spec.maxReplicas
  elseif current < min then
    reason, desired = "Current number of replicas below Spec.MinReplicas", min
  else
    local proposal, metric
    proposal, metric, statuses, err = replicas_for_metrics(env, hpa, scale, current)
    if proposal == -1 then
      hpa.status.currentReplicas, hpa.status.currentMetrics = current, #statuses > 0 and statuses or nil
      env.event(hpa, "Warning", "FailedComputeMetricsReplicas", err)
      return hpa, "failed to compute desired number of replicas based on listed metrics for " .. reference .. ": " .. err
    end
    if proposal > desired then desired = proposal end
    if desired > current then reason = (metric or "") .. " above target" end
    if desired < current then reason = "All metrics below target" end
    local able, limited
    desired, able, limited = normalize.desired(env.state, { key = key, current = current, desired = desired,
      min = min, max = spec.maxReplicas, behavior = spec.behavior, window = env.config.downscale_stabilization }, now)
    set_condition(hpa, now, "AbleToScale", able.status, able.reason, able.message)
    set_condition(hpa, now, "ScalingLimited", limited.status, limited.reason, limited.message)
    rescale = desired ~= current
  end
  if rescale then
    scale.spec.replicas = desired
    local ok, perr = env.put_scale(hpa, scale)
    if not ok then
      env.event(hpa, "Warning", "FailedRescale", string.format("New size: %d; reason: %s; error: %s",
        desired, reason, perr))
      set_condition(hpa, now, "AbleToScale", "False", "FailedUpdateScale",
        "the HPA controller was unable to update the target scale: " .. perr)
      hpa.status.currentReplicas, hpa.status.currentMetrics = current, #statuses > 0 and statuses or nil
      return hpa, "failed to rescale " .. reference .. ": " .. perr
    end
    set_condition(hpa, now, "AbleToScale", "True", "SucceededRescale",
      "the HPA controller was able to update the target scale to " .. desired)
    env.event(hpa, "Normal", "SuccessfulRescale", string.format("New size: %d; reason: %s", desired, reason))
    normalize.record_scale(env.state, key, spec.behavior, current, desired, now)
    hpa.status.lastScaleTime = time_text(now)
  else
    desired = current
  end
  hpa.status.currentReplicas, hpa.status.desiredReplicas = current, desired
  hpa.status.currentMetrics = #statuses > 0 and statuses or nil
  return hpa, err
end

return M
