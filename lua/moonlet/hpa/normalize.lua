-- moonlet.hpa.normalize: from the metrics' proposal to the replicas the
-- HorizontalPodAutoscaler sets, as horizontal.go normalizes it. Without
-- spec.behavior: the highest recommendation of the downscale
-- stabilization window, then min/max and the scale-up limit (twice the
-- current, at least 4). With it: the up and down stabilization windows and
-- the scaling policies over the recent scale events. Keeps the per-HPA
-- history (recommendations, scale events) in a state table; the clock is
-- passed in (unix seconds).
local M = {}

M.DOWNSCALE_STABILIZATION = 300 -- --horizontal-pod-autoscaler-downscale-stabilization

local INT32_MAX, INT32_MIN = 2147483647, -2147483648

--- A history: recommendations and scale events per HPA key.
function M.new_state()
  return { recs = {}, up = {}, down = {} }
end

--- Forgets an HPA that is gone.
function M.forget(state, key)
  state.recs[key], state.up[key], state.down[key] = nil, nil, nil
end

--- recordInitialRecommendation: the current size is the first one.
function M.record_initial(state, key, current, now)
  if not state.recs[key] then state.recs[key] = { { rec = current, at = now } } end
end

local function condition(status, reason, message)
  return { status = status, reason = reason, message = message }
end

-- {====== without behavior

local function stabilize(state, key, desired, now, window)
  local max, old = desired, nil
  local recs = state.recs[key] or {}
  state.recs[key] = recs
  for i, r in ipairs(recs) do
    if r.at <= now - window then old = i
    elseif r.rec > max then max = r.rec end
  end
  local entry = { rec = desired, at = now }
  if old then recs[old] = entry else recs[#recs + 1] = entry end
  return max
end

-- convertDesiredReplicasWithRules.
local function with_rules(current, desired, min, max)
  local up_limit = math.max(2 * current, 4)
  local max_allowed, reason, message
  if max > up_limit then
    max_allowed, reason, message = up_limit, "ScaleUpLimit",
      "the desired replica count is increasing faster than the maximum scale rate"
  else
    max_allowed, reason, message = max, "TooManyReplicas",
      "the desired replica count is more than the maximum replica count"
  end
  if desired < min then
    return min, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
  elseif desired > max_allowed then
    return max_allowed, reason, message
  end
  return desired, "DesiredWithinRange", "the desired count is within the acceptable range"
end

-- }======

-- {====== with behavior

local function change_in(period, events, now)
  local n = 0
  for _, e in ipairs(events or {}) do
    if e.at > now - period then n = n + e.change end
  end
  return n
end

local function scale_up_limit(current, ups, downs, rules, now)
  if rules.selectPolicy == "Disabled" then return current end
  local result, pick
  if rules.selectPolicy == "Min" then result, pick = INT32_MAX, math.min
  else result, pick = INT32_MIN, math.max end
  for _, p in ipairs(rules.policies or {}) do
    local start = current - change_in(p.periodSeconds, ups, now) + change_in(p.periodSeconds, downs, now)
    local proposed
    if p.type == "Pods" then proposed = start + p.value
    else proposed = math.ceil(start * (1 + p.value / 100) - 1e-9) end
    result = pick(result, math.tointeger(proposed) or proposed)
  end
  return result
end

local function scale_down_limit(current, ups, downs, rules, now)
  if rules.selectPolicy == "Disabled" then return current end
  local result, pick
  if rules.selectPolicy == "Min" then result, pick = INT32_MIN, math.max
  else result, pick = INT32_MAX, math.min end
  for _, p in ipairs(rules.policies or {}) do
    local start = current - change_in(p.periodSeconds, ups, now) + change_in(p.periodSeconds, downs, now)
    local proposed
    if p.type == "Pods" then proposed = start - p.value
    else proposed = math.floor(start * (1 - p.value / 100) + 1e-9) end
    result = pick(result, math.tointeger(proposed) or proposed)
  end
  return result
end

local function stabilize_with_behavior(state, key, a, now)
  local up_rec, down_rec = a.desired, a.desired
  local up_cut = now - (a.up.stabilizationWindowSeconds or 0)
  local down_cut = now - (a.down.stabilizationWindowSeconds or 0)
  local recs = state.recs[key] or {}
  state.recs[key] = recs
  local old
  for i, r in ipairs(recs) do
    if r.at > up_cut then up_rec = math.min(r.rec, up_rec) end
    if r.at > down_cut then down_rec = math.max(r.rec, down_rec) end
    if r.at <= up_cut and r.at <= down_cut then old = i end
  end
  local rec = a.current
  if rec < up_rec then rec = up_rec end
  if rec > down_rec then rec = down_rec end
  local entry = { rec = a.desired, at = now }
  if old then recs[old] = entry else recs[#recs + 1] = entry end
  if a.desired >= a.current then
    return rec, "ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation"
  end
  return rec, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation"
end

local function with_behavior_rate(state, key, a, desired, now)
  local ups, downs = state.up[key], state.down[key]
  if desired > a.current then
    local limit = scale_up_limit(a.current, ups, downs, a.up, now)
    if limit < a.current then limit = a.current end
    local max_allowed, reason, message = a.max, "TooManyReplicas",
      "the desired replica count is more than the maximum replica count"
    if max_allowed > limit then
      max_allowed, reason, message = limit, "ScaleUpLimit",
        "the desired replica count is increasing faster than the maximum scale rate"
    end
    if desired > max_allowed then return max_allowed, reason, message end
  elseif desired < a.current then
    local limit = scale_down_limit(a.current, ups, downs, a.down, now)
    if limit > a.current then limit = a.current end
    local min_allowed, reason, message = a.min, "TooFewReplicas",
      "the desired replica count is less than the minimum replica count"
    if min_allowed < limit then
      min_allowed, reason, message = limit, "ScaleDownLimit",
        "the desired replica count is decreasing faster than the maximum scale rate"
    end
    if desired < min_allowed then return min_allowed, reason, message end
  end
  return desired, "DesiredWithinRange", "the desired count is within the acceptable range"
end

-- }======

--- Normalizes a proposal. a: key, current, desired (the metrics'
--- proposal), min, max, behavior (spec.behavior with its defaults, or
--- nil), window (downscale stabilization without behavior, seconds).
--- @return replicas, able (AbleToScale condition), limited (ScalingLimited)
function M.desired(state, a, now)
  local key = a.key
  if not a.behavior then
    local stabilized = stabilize(state, key, a.desired, now, a.window or M.DOWNSCALE_STABILIZATION)
    local able = stabilized ~= a.desired
      and condition("True", "ScaleDownStabilized",
        "recent recommendations were higher than current one, applying the highest recent recommendation")
      or condition("True", "ReadyForNewScale", "recommended size matches current size")
    local out, reason, message = with_rules(a.current, stabilized, a.min, a.max)
    return out, able, condition(out == stabilized and "False" or "True", reason, message)
  end
  local b = a.behavior
  local down = b.scaleDown or {}
  if down.stabilizationWindowSeconds == nil then
    -- maybeInitScaleDownStabilizationWindow: the flag's value.
    down = { stabilizationWindowSeconds = a.window or M.DOWNSCALE_STABILIZATION,
      selectPolicy = down.selectPolicy, policies = down.policies }
  end
  local args = { current = a.current, desired = a.desired, min = a.min, max = a.max,
    up = b.scaleUp or {}, down = down }
  local stabilized, reason, message = stabilize_with_behavior(state, key, args, now)
  local able = stabilized ~= a.desired and condition("True", reason, message)
    or condition("True", "ReadyForNewScale", "recommended size matches current size")
  local out, lreason, lmessage = with_behavior_rate(state, key, args, stabilized, now)
  return out, able, condition(out == stabilized and "False" or "True", lreason, lmessage)
end

local function longest_period(rules)
  local n = 0
  for _, p in ipairs((rules or {}).policies or {}) do
    if p.periodSeconds > n then n = p.periodSeconds end
  end
  return n
end

--- storeScaleEvent: remembers a rescale for the policies (with behavior
--- only), reusing the slot of an event older than the longest period.
function M.record_scale(state, key, behavior, prev, new, now)
  if not behavior or prev == new then return end
  local up = new > prev
  local events_of = up and state.up or state.down
  local period = longest_period(up and behavior.scaleUp or behavior.scaleDown)
  local events = events_of[key] or {}
  events_of[key] = events
  local entry = { change = up and (new - prev) or (prev - new), at = now }
  for i, e in ipairs(events) do
    if e.at <= now - period then
      events[i] = entry
      return
    end
  end
  events[#events + 1] = entry
end

return M
