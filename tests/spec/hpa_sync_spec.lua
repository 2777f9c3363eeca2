-- One HorizontalPodAutoscaler reconcile (moonlet.hpa.sync) against a fake
-- world (scale subresource, pods, PodMetrics, events, clock): the
-- SuccessfulRescale event and conditions as horizontal.go writes them,
-- min/max outside the metrics, a pod without a CPU request ("failed to get
-- cpu utilization: missing request for cpu ..."), a scale without a
-- selector, unsupported metric types, and a failed scale write.
require("moonlet_core")
local sync = require("moonlet.hpa.sync")
local normalize = require("moonlet.hpa.normalize")

local NOW = 1700000000
local function ts(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end

local function world(replicas, usage, opts)
  opts = opts or {}
  local w = { events = {}, puts = {} }
  local pods, items = {}, {}
  for i, u in ipairs(usage) do
    local name = "web-" .. i
    pods[i] = { metadata = { name = name, namespace = "default" },
      spec = { containers = { { name = "c", resources = opts.no_request and {} or { requests = { cpu = "100m" } } } } },
      status = { phase = "Running", startTime = ts(NOW - 600),
        conditions = { { type = "Ready", status = "True", lastTransitionTime = ts(NOW - 590) } } } }
    items[i] = { metadata = { name = name, namespace = "default" }, timestamp = ts(NOW - 1), window = "1.5s",
      containers = { { name = "c", usage = { cpu = u, memory = "1Mi" } } } }
  end
  w.scale = { kind = "Scale", apiVersion = "autoscaling/v1", metadata = { name = "web", namespace = "default" },
    spec = { replicas = replicas }, status = { replicas = replicas, selector = opts.selector or "app=web" } }
  w.env = {
    now = function() return NOW end, state = normalize.new_state(),
    config = { tolerance = 0.1, downscale_stabilization = 300, cpu_initialization_period = 300,
      initial_readiness_delay = 30 },
    event = function(_, typ, reason, message) w.events[#w.events + 1] = typ .. " " .. reason .. " " .. message end,
    get_scale = function() return w.scale end,
    put_scale = function(_, s)
      if opts.put_fails then return nil, "the server is on fire" end
      w.puts[#w.puts + 1] = s.spec.replicas
      return s
    end,
    pods = function() return pods end,
    pod_metrics = function() return items end,
  }
  return w
end

local function hpa(metrics, extra)
  local h = { apiVersion = "autoscaling/v2", kind = "HorizontalPodAutoscaler",
    metadata = { name = "web", namespace = "default" },
    spec = { scaleTargetRef = { apiVersion = "apps/v1", kind = "Deployment", name = "web" },
      minReplicas = 1, maxReplicas = 10, metrics = metrics or { { type = "Resource", resource = { name = "cpu",
        target = { type = "Utilization", averageUtilization = 50 } } } } } }
  for k, v in pairs(extra or {}) do h.spec[k] = v end
  return h
end

local function cond(h, typ)
  for _, c in ipairs(h.status.conditions or {}) do if c.type == typ then return c end end
end

describe("moonlet.hpa.sync", function()
  it("rescales with SuccessfulRescale and Kubernetes' conditions", function()
    local w = world(2, { "150m", "150m" })
    local h, err = sync.reconcile(w.env, hpa())
    assert.is_nil(err)
    -- 150% of a 50% target on 2 pods: 6, within 2 * 2 (at least 4)? no: the limit is 4
    assert.are.same({ 4 }, w.puts)
    assert.are.same({ "Normal SuccessfulRescale New size: 4; reason: cpu resource utilization "
      .. "(percentage of request) above target" }, w.events)
    assert.are.same({ 2, 4, ts(NOW) }, { h.status.currentReplicas, h.status.desiredReplicas, h.status.lastScaleTime })
    assert.are.same({ type = "Resource", resource = { name = "cpu",
      current = { averageUtilization = 150, averageValue = "150m" } } }, h.status.currentMetrics[1])
    assert.are.same({ "True", "SucceededRescale", "the HPA controller was able to update the target scale to 4" },
      { cond(h, "AbleToScale").status, cond(h, "AbleToScale").reason, cond(h, "AbleToScale").message })
    assert.are.equal("the HPA was able to successfully calculate a replica count from cpu resource utilization "
      .. "(percentage of request)", cond(h, "ScalingActive").message)
    assert.are.same({ "True", "ScaleUpLimit" }, { cond(h, "ScalingLimited").status, cond(h, "ScalingLimited").reason })
  end)

  it("moves the target into min/max without metrics", function()
    local w = world(12, { "10m" })
    sync.reconcile(w.env, hpa())
    assert.are.same({ 10 }, w.puts)
    assert.are.equal("Normal SuccessfulRescale New size: 10; reason: Current number of replicas above Spec.MaxReplicas",
      w.events[1])
    w = world(0, { "10m" })
    local h = sync.reconcile(w.env, hpa())
    assert.are.same({}, w.puts)
    assert.are.same({ "False", "ScalingDisabled" }, { cond(h, "ScalingActive").status, cond(h, "ScalingActive").reason })
  end)

  it("says a pod without a CPU request has no utilization", function()
    local w = world(2, { "150m", "150m" }, { no_request = true })
    local h, err = sync.reconcile(w.env, hpa())
    assert.are.same({}, w.puts)
    local c = cond(h, "ScalingActive")
    assert.are.same({ "False", "FailedGetResourceMetric", "the HPA was unable to compute the replica count: "
      .. "failed to get cpu utilization: missing request for cpu in container c of Pod web-1" },
      { c.status, c.reason, c.message })
    assert.are.equal("Warning FailedGetResourceMetric failed to get cpu utilization: missing request for cpu "
      .. "in container c of Pod web-1", w.events[1])
    assert.truthy(w.events[2]:find("^Warning FailedComputeMetricsReplicas invalid metrics %(1 invalid out of 1%)"))
    assert.truthy(err:find("failed to compute desired number of replicas based on listed metrics for "
      .. "Deployment/default/web", 1, true))
    assert.are.equal(2, h.status.currentReplicas)
  end)

  it("reports a scale without a selector and unsupported metric types", function()
    local w = world(2, { "10m" }, { selector = "" })
    local h = sync.reconcile(w.env, hpa())
    assert.are.same({ "InvalidSelector", "the HPA target's scale is missing a selector" },
      { cond(h, "ScalingActive").reason, cond(h, "ScalingActive").message })
    w = world(2, { "10m", "10m" })
    h = sync.reconcile(w.env, hpa({ { type = "Pods", pods = { metric = { name = "qps" },
      target = { type = "AverageValue", averageValue = "10" } } } }))
    assert.are.same({ "False", "FailedGetPodsMetric" }, { cond(h, "ScalingActive").status, cond(h, "ScalingActive").reason })
    assert.truthy(cond(h, "ScalingActive").message:find("unable to get metric qps", 1, true))
    -- a supported metric beside it still scales up
    w = world(2, { "150m", "150m" })
    h = sync.reconcile(w.env, hpa({ { type = "External", external = { metric = { name = "q" },
      target = { type = "Value", value = "1" } } }, { type = "Resource", resource = { name = "cpu",
      target = { type = "Utilization", averageUtilization = 50 } } } }))
    assert.are.same({ 4 }, w.puts)
    assert.are.equal("ValidMetricFound", cond(h, "ScalingActive").reason)
  end)

  it("reports a failed scale write", function()
    local w = world(2, { "150m", "150m" }, { put_fails = true })
    local h, err = sync.reconcile(w.env, hpa())
    assert.are.equal("Warning FailedRescale New size: 4; reason: cpu resource utilization (percentage of request) "
      .. "above target; error: the server is on fire", w.events[1])
    assert.are.same({ "False", "FailedUpdateScale" }, { cond(h, "AbleToScale").status, cond(h, "AbleToScale").reason })
    assert.truthy(err:find("failed to rescale Deployment/default/web", 1, true))
  end)

  it("keeps the size in the downscale stabilization window, then scales down", function()
    local w = world(4, { "10m", "10m", "10m", "10m" })
    local h = sync.reconcile(w.env, hpa())
    assert.are.same({}, w.puts)
    assert.are.equal("ScaleDownStabilized", cond(h, "AbleToScale").reason)
    w.env.now = function() return NOW + 301 end
    h = sync.reconcile(w.env, hpa())
    assert.are.same({ 1 }, w.puts)
    assert.are.equal("Normal SuccessfulRescale New size: 1; reason: All metrics below target", w.events[1])
    -- idle pods propose 0 replicas: min replicas, no metric named
    w = world(3, { "0", "0", "0" })
    w.env.config.downscale_stabilization = 0
    h = sync.reconcile(w.env, hpa())
    assert.are.same({ 1 }, w.puts)
    assert.are.same({ "True", "TooFewReplicas" }, { cond(h, "ScalingLimited").status, cond(h, "ScalingLimited").reason })
  end)
end)
