-- horizontal-pod-autoscaler: every --horizontal-pod-autoscaler-sync-period
-- each HorizontalPodAutoscaler reads its target's scale subresource and
-- the resource metrics of the target's pods (metrics.k8s.io through the
-- in-process API: this node's sampler and the joined nodes' answers),
-- computes the replicas as kube-controller-manager does (moonlet.hpa.sync)
-- and writes the scale and its status. Spec changes sync at once; other
-- wake-ups (its own status writes) wait for the period.
local config = require("moonlet.hpa.config")
local normalize = require("moonlet.hpa.normalize")
local sync = require("moonlet.hpa.sync")
local json = require("moonlet.json")
local util = require("moonlet.controller.util")

local KIND = "autoscaling/v2/HorizontalPodAutoscaler"

local function msg_of(st) return type(st) == "table" and tostring(st.message) or tostring(st) end

-- The target's kind, or nil and Kubernetes' message.
local function target_kind(ctx, hpa)
  local ref = hpa.spec.scaleTargetRef or {}
  local av = type(ref.apiVersion) == "string" and ref.apiVersion or ""
  local r = ctx.client:kind(av .. "/" .. tostring(ref.kind))
  if not r then
    local g = av:match("^(.*)/[^/]*$") or ""
    return nil, string.format('no matches for kind "%s" in group "%s"', tostring(ref.kind), g)
  end
  return r
end

local function env_of(ctx)
  return {
    now = ctx.now, state = ctx.hpa_state, config = config.current,
    event = function(hpa, typ, reason, message) ctx:event(hpa, typ, reason, message) end,
    get_scale = function(hpa)
      local r, err = target_kind(ctx, hpa)
      if not r then return nil, msg_of(err) end
      local s, st = ctx.client:get_subresource(r, hpa.metadata.namespace, hpa.spec.scaleTargetRef.name, "scale")
      if not s then return nil, msg_of(st) end
      return s
    end,
    put_scale = function(hpa, scale)
      local r, err = target_kind(ctx, hpa)
      if not r then return nil, msg_of(err) end
      local s, st = ctx.client:put_subresource(r, hpa.metadata.namespace, hpa.spec.scaleTargetRef.name,
        "scale", scale)
      if not s then return nil, msg_of(st) end
      return s
    end,
    pods = function(ns, sel) return ctx:list("v1/Pod", { namespace = ns, selector = sel }) end,
    pod_metrics = function(ns, sel_text)
      local res, st = ctx.client:list("metrics.k8s.io/v1beta1/PodMetrics", { namespace = ns, label_selector = sel_text })
      if not res then return nil, msg_of(st) end
      if #(res.items or {}) == 0 then return nil, "no metrics returned from resource metrics API" end
      return res.items
    end,
  }
end

return {
  name = "horizontal-pod-autoscaler",
  kind = KIND,

  setup = function(ctx)
    ctx:watch("v1/Pod", {})
    ctx.hpa_state = normalize.new_state()
    ctx.hpa_synced = {} -- key -> { at = last sync, gen = generation then }
  end,

  reconcile = function(ctx, key, hpa)
    if not hpa then
      normalize.forget(ctx.hpa_state, key)
      ctx.hpa_synced[key] = nil
      return
    end
    local period, now = config.current.sync_period, ctx.now()
    local last = ctx.hpa_synced[key]
    local gen = hpa.metadata.generation
    if last and last.gen == gen and now - last.at < period * 0.9 then
      return { requeue_after = last.at + period - now }
    end
    ctx.hpa_synced[key] = { at = now, gen = gen }
    local before = json.copy(hpa.status or {})
    local new, err = sync.reconcile(env_of(ctx), hpa)
    if not util.equal(before, new.status) then
      local ok, st = ctx.client:update_status(KIND, new)
      if not ok then ctx.log("warn", "status of %s: %s", key, msg_of(st)) end
    end
    if err then ctx.log("info", "%s: %s", key, err) end
    return { requeue_after = period }
  end,
}
