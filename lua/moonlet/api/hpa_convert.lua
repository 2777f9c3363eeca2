-- Conversion between autoscaling/v1 and autoscaling/v2
-- HorizontalPodAutoscaler (pkg/apis/autoscaling/v1/conversion.go): v1 has
-- only a CPU utilization target, so what v2 says beyond it (other metrics,
-- their current values, behavior, conditions) travels in the
-- autoscaling.alpha.kubernetes.io/* annotations of the v1 object and comes
-- back from them.
local json = require("moonlet.json")

local M = {}

M.METRICS = "autoscaling.alpha.kubernetes.io/metrics"
M.CURRENT_METRICS = "autoscaling.alpha.kubernetes.io/current-metrics"
M.BEHAVIOR = "autoscaling.alpha.kubernetes.io/behavior"
M.CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"

local function is_table(v) return type(v) == "table" end

--- A Resource metric of CPU at `pct`% utilization.
function M.cpu_metric(pct)
  return { type = "Resource", resource = { name = "cpu",
    target = { type = "Utilization", averageUtilization = pct } } }
end

local function is_cpu_utilization(m)
  return is_table(m) and m.type == "Resource" and is_table(m.resource) and m.resource.name == "cpu"
    and is_table(m.resource.target) and m.resource.target.averageUtilization ~= nil
end

--- The v1 form of a stored (v2) object; `obj` is not changed.
function M.to_v1(obj)
  local out = json.copy(obj)
  out.apiVersion = "autoscaling/v1"
  local spec, status = out.spec or {}, out.status
  local md = out.metadata or {}
  out.metadata = md
  local ann = is_table(md.annotations) and md.annotations or {}
  local v1spec = { scaleTargetRef = spec.scaleTargetRef, minReplicas = spec.minReplicas,
    maxReplicas = spec.maxReplicas }
  local others = {}
  for _, m in ipairs(spec.metrics or {}) do
    if is_cpu_utilization(m) then v1spec.targetCPUUtilizationPercentage = m.resource.target.averageUtilization
    else others[#others + 1] = m end
  end
  if #others > 0 then ann[M.METRICS] = json.encode(others) end
  if is_table(spec.behavior) then ann[M.BEHAVIOR] = json.encode(spec.behavior) end
  out.spec = v1spec
  if is_table(status) then
    local st = { observedGeneration = status.observedGeneration, lastScaleTime = status.lastScaleTime,
      currentReplicas = status.currentReplicas or 0, desiredReplicas = status.desiredReplicas or 0 }
    local cur = status.currentMetrics
    for _, m in ipairs(is_table(cur) and cur or {}) do
      if m.type == "Resource" and is_table(m.resource) and m.resource.name == "cpu" and is_table(m.resource.current) then
        st.currentCPUUtilizationPercentage = m.resource.current.averageUtilization
      end
    end
    -- The raw values too: the whole list is kept.
    if is_table(cur) and #cur > 0 then ann[M.CURRENT_METRICS] = json.encode(cur) end
    if is_table(status.conditions) and #status.conditions > 0 then ann[M.CONDITIONS] = json.encode(status.conditions) end
    out.status = st
  end
  if next(ann) then md.annotations = ann end
  return out
end

-- Takes an annotation out of `ann` and decodes it; nil when absent or bad.
local function take(ann, key)
  local text = ann[key]
  if type(text) ~= "string" then return nil end
  local v = json.decode(text)
  if v == nil then return nil end
  ann[key] = nil
  return v
end

--- Turns a v1 object into its v2 form, in place (the write path).
function M.to_v2_in_place(obj)
  obj.apiVersion = "autoscaling/v2"
  local spec = is_table(obj.spec) and obj.spec or {}
  local md = is_table(obj.metadata) and obj.metadata or {}
  obj.metadata = md
  local ann = is_table(md.annotations) and md.annotations or {}
  local metrics = {}
  local others = take(ann, M.METRICS)
  for _, m in ipairs(is_table(others) and others or {}) do metrics[#metrics + 1] = m end
  local cpu = spec.targetCPUUtilizationPercentage
  if cpu ~= nil and cpu ~= json.null then metrics[#metrics + 1] = M.cpu_metric(cpu) end
  spec.targetCPUUtilizationPercentage = nil
  -- v1's implicit CPU default, made explicit as v2's defaulting does.
  if #metrics == 0 then metrics[1] = M.cpu_metric(80) end
  spec.metrics = metrics
  local behavior = take(ann, M.BEHAVIOR)
  if is_table(behavior) then spec.behavior = behavior end
  obj.spec = spec
  local st = obj.status
  local current, conditions = take(ann, M.CURRENT_METRICS), take(ann, M.CONDITIONS)
  if is_table(st) then
    local pct = st.currentCPUUtilizationPercentage
    st.currentCPUUtilizationPercentage = nil
    if is_table(current) then
      st.currentMetrics = current
    elseif pct ~= nil and pct ~= json.null then
      st.currentMetrics = { { type = "Resource", resource = { name = "cpu",
        current = { averageUtilization = pct } } } }
    end
    if is_table(conditions) then st.conditions = conditions end
  end
  if next(ann) == nil then md.annotations = nil end
  return obj
end

--- The v2 form of a v1 object (a copy).
function M.to_v2(obj) return M.to_v2_in_place(json.copy(obj)) end

return M
