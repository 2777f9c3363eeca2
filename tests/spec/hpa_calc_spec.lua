-- The HorizontalPodAutoscaler's replica calculation and normalization
-- (moonlet.hpa.calc, moonlet.hpa.normalize) with fake pods, fake metrics
-- and a fake clock: cases of Kubernetes' replica_calculator_test.go
-- (scale up and down, tolerance, unready pods, missing requests) and
-- horizontal_test.go's rules (the scale-up limit, min/max, the downscale
-- stabilization window, behavior policies).
require("moonlet_core")
local calc = require("moonlet.hpa.calc")
local normalize = require("moonlet.hpa.normalize")

local NOW = 1700000000
local function ts(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end

-- Pods started 10 minutes ago (past the CPU initialization period), ready
-- unless `ready[i]` is false; requests in milli-cpu.
local function pods(requests, ready, opts)
  opts = opts or {}
  local out = {}
  for i, r in ipairs(requests) do
    local is_ready = not ready or ready[i] ~= false
    out[i] = { metadata = { name = "p" .. i },
      spec = { containers = { { name = "c", resources = { requests = { cpu = r .. "m" } } } } },
      status = { phase = (opts.phase or {})[i] or "Running", startTime = ts(NOW - (opts.age or 600)),
        conditions = { { type = "Ready", status = is_ready and "True" or "False",
          lastTransitionTime = ts(NOW - (opts.age or 600) + 5) } } } }
  end
  return out
end

local function metrics(levels)
  local out = {}
  for i, v in ipairs(levels) do
    if v then out["p" .. i] = { value = v, timestamp = NOW - 5, window = 30 } end
  end
  return out
end

local function cpu(current, target, ps, ms)
  return calc.resource_replicas({ current = current, target = target, resource = "cpu", pods = ps,
    metrics = ms, now = NOW })
end

describe("moonlet.hpa.calc", function()
  it("scales up: usage ratio times the ready pods (TestReplicaCalcScaleUp)", function()
    local n, util, raw = cpu(3, 30, pods({ 1000, 1000, 1000 }), metrics({ 300, 500, 700 }))
    assert.are.same({ 5, 50, 500 }, { n, util, raw })
  end)

  it("scales down (TestReplicaCalcScaleDown)", function()
    local n, util = cpu(5, 50, pods({ 1000, 1000, 1000, 1000, 1000 }), metrics({ 100, 300, 500, 250, 250 }))
    assert.are.same({ 3, 28 }, { n, util })
  end)

  it("does nothing within the 0.1 tolerance (TestReplicaCalcTolerance)", function()
    local n, util = cpu(3, 100, pods({ 900, 1000, 1100 }), metrics({ 1010, 1030, 1020 }))
    assert.are.same({ 3, 102 }, { n, util })
    -- just outside it: 112% of the target
    n = cpu(3, 100, pods({ 1000, 1000, 1000 }), metrics({ 1120, 1120, 1120 }))
    assert.are.equal(4, n)
  end)

  it("leaves unready pods out of a scale-up (TestReplicaCalcScaleUpUnreadyLessScale)", function()
    local n, util = cpu(3, 30, pods({ 1000, 1000, 1000 }, { false, true, true }), metrics({ 300, 500, 700 }))
    assert.are.same({ 4, 60 }, { n, util })
  end)

  it("does not scale up when unready pods at 0% turn the direction (TestReplicaCalcScaleUpUnreadyNoScale)", function()
    local n, util = cpu(3, 30, pods({ 1000, 1000, 1000 }, { true, false, false }), metrics({ 400, 500, 700 }))
    assert.are.same({ 3, 40 }, { n, util })
  end)

  it("counts pending pods as unready and ignores failed and deleted ones", function()
    local ps = pods({ 1000, 1000, 1000, 1000 }, nil, { phase = { [3] = "Pending", [4] = "Failed" } })
    ps[2].metadata.deletionTimestamp = ts(NOW)
    -- p1 alone at 100% of a 50% target: 2 ready-equivalents; the pending
    -- pod (0% on a scale-up) gives (1000+0)/2000 = 50%: no change.
    local n, util = cpu(2, 50, ps, metrics({ 1000, 900, nil, 900 }))
    assert.are.same({ 2, 100 }, { n, util })
  end)

  it("counts missing metrics at the request on a scale-down and 0 on a scale-up", function()
    -- down: p1 at 10%, p2 missing (100%): 55% of a 50% target -> in tolerance
    local n = cpu(2, 50, pods({ 1000, 1000 }), metrics({ 100, nil }))
    assert.are.equal(2, n)
    -- down for real: three at 10%, one missing: (300 + 1000) / 4000 = 32.5% -> ceil(0.65 * 4) = 3
    n = cpu(4, 50, pods({ 1000, 1000, 1000, 1000 }), metrics({ 100, 100, 100, nil }))
    assert.are.equal(3, n)
    -- up: p1 at 300%, p2 missing (0%): 150% of 50 -> ceil(3 * 2) = 6
    n = cpu(2, 50, pods({ 1000, 1000 }), metrics({ 3000, nil }))
    assert.are.equal(6, n)
  end)

  it("skips a pod's first CPU sample inside the initialization period", function()
    local ps = pods({ 1000, 1000 }, nil, { age = 60 })
    -- p1's sample window starts before it turned ready: start-up burst
    local ms = metrics({ 900, 900 })
    ms.p1.timestamp, ms.p1.window = NOW - 50, 30
    local ready, unready = calc.group_pods(ps, ms, "cpu", NOW)
    assert.are.equal(1, ready)
    assert.is_true(unready.p1)
  end)

  it("needs a request for every container (as Kubernetes' message)", function()
    local ps = pods({ 1000, 1000 })
    ps[2].spec.containers[1].resources = nil
    local n, err = cpu(2, 50, ps, metrics({ 100, 100 }))
    assert.is_nil(n)
    assert.are.equal("missing request for cpu in container c of Pod p2", err)
  end)

  it("reports no metrics and no pods", function()
    local _, err = cpu(2, 50, pods({ 1000 }), {})
    assert.are.equal("unable to get metrics for resource cpu: no metrics returned from resource metrics API", err)
    _, err = cpu(2, 50, {}, metrics({ 100 }))
    assert.are.equal("no pods returned by selector while calculating replica count", err)
    _, err = cpu(1, 50, pods({ 1000 }, { false }), metrics({ 100 }))
    assert.are.equal("did not receive metrics for targeted pods (pods might be unready)", err)
  end)

  it("computes AverageValue targets on the plain average", function()
    local n, avg = calc.raw_resource_replicas({ current = 2, target = 200, resource = "cpu",
      pods = pods({ 1000, 1000 }), metrics = metrics({ 500, 300 }), now = NOW })
    assert.are.same({ 4, 400 }, { n, avg })
  end)
end)

describe("moonlet.hpa.normalize", function()
  local function norm(state, a, now)
    a.key = a.key or "default/web"
    return normalize.desired(state, a, now)
  end

  it("limits a scale-up to twice the current (at least 4) and clamps to min/max", function()
    local st = normalize.new_state()
    local n, _, limited = norm(st, { current = 1, desired = 10, min = 1, max = 20, window = 300 }, NOW)
    assert.are.same({ 4, "True", "ScaleUpLimit" }, { n, limited.status, limited.reason })
    n, _, limited = norm(st, { current = 4, desired = 30, min = 1, max = 6, window = 300 }, NOW)
    assert.are.same({ 6, "TooManyReplicas" }, { n, limited.reason })
    n, _, limited = norm(normalize.new_state(), { current = 3, desired = 1, min = 2, max = 6, window = 0 }, NOW)
    assert.are.same({ 2, "TooFewReplicas" }, { n, limited.reason })
    n, _, limited = norm(normalize.new_state(), { current = 3, desired = 5, min = 1, max = 6, window = 0 }, NOW)
    assert.are.same({ 5, "False", "DesiredWithinRange" }, { n, limited.status, limited.reason })
  end)

  it("keeps the highest recommendation of the downscale stabilization window", function()
    local st = normalize.new_state()
    normalize.record_initial(st, "default/web", 5, NOW)
    local n, able = norm(st, { current = 5, desired = 2, min = 1, max = 10, window = 300 }, NOW + 10)
    assert.are.same({ 5, "ScaleDownStabilized" }, { n, able.reason })
    n = norm(st, { current = 5, desired = 2, min = 1, max = 10, window = 300 }, NOW + 200)
    assert.are.equal(5, n)
    -- once the 5 is older than the window, the 2s are what is left
    n, able = norm(st, { current = 5, desired = 2, min = 1, max = 10, window = 300 }, NOW + 301)
    assert.are.same({ 2, "ReadyForNewScale" }, { n, able.reason })
  end)

  it("applies behavior policies over the recent scale events", function()
    local behavior = {
      scaleUp = { stabilizationWindowSeconds = 0, selectPolicy = "Max", policies = {
        { type = "Pods", value = 4, periodSeconds = 15 }, { type = "Percent", value = 100, periodSeconds = 15 } } },
      scaleDown = { stabilizationWindowSeconds = 0, selectPolicy = "Max", policies = {
        { type = "Pods", value = 1, periodSeconds = 60 } } },
    }
    local st = normalize.new_state()
    -- up: max(2 + 4, 2 * 2) = 6
    local n, _, limited = norm(st, { current = 2, desired = 20, min = 1, max = 50, behavior = behavior }, NOW)
    assert.are.same({ 6, "ScaleUpLimit" }, { n, limited.reason })
    normalize.record_scale(st, "default/web", behavior, 2, 6, NOW)
    -- within the same 15 s the period started at 2: still 6 at most
    n = norm(st, { current = 6, desired = 20, min = 1, max = 50, behavior = behavior }, NOW + 5)
    assert.are.equal(6, n)
    -- after the period: max(6 + 4, 12) = 12
    n = norm(st, { current = 6, desired = 20, min = 1, max = 50, behavior = behavior }, NOW + 20)
    assert.are.equal(12, n)
    -- down: one pod per minute
    local st2 = normalize.new_state()
    n, _, limited = norm(st2, { current = 6, desired = 1, min = 1, max = 50, behavior = behavior }, NOW)
    assert.are.same({ 5, "ScaleDownLimit" }, { n, limited.reason })
    normalize.record_scale(st2, "default/web", behavior, 6, 5, NOW)
    n = norm(st2, { current = 5, desired = 1, min = 1, max = 50, behavior = behavior }, NOW + 30)
    assert.are.equal(5, n)
    n = norm(st2, { current = 5, desired = 1, min = 1, max = 50, behavior = behavior }, NOW + 61)
    assert.are.equal(4, n)
    -- Disabled: no change that way
    local off = { scaleUp = { selectPolicy = "Disabled", stabilizationWindowSeconds = 0, policies = {} },
      scaleDown = behavior.scaleDown }
    n = norm(normalize.new_state(), { current = 3, desired = 9, min = 1, max = 50, behavior = off }, NOW)
    assert.are.equal(3, n)
  end)

  it("gives the scale-down window of the flag to a behavior that leaves it unset", function()
    local behavior = {
      scaleUp = { stabilizationWindowSeconds = 0, selectPolicy = "Max", policies = {
        { type = "Percent", value = 100, periodSeconds = 15 } } },
      scaleDown = { selectPolicy = "Max", policies = { { type = "Percent", value = 100, periodSeconds = 15 } } },
    }
    local st = normalize.new_state()
    normalize.record_initial(st, "default/web", 4, NOW)
    local n, able = norm(st, { current = 4, desired = 1, min = 1, max = 10, behavior = behavior, window = 60 }, NOW + 30)
    assert.are.same({ 4, "ScaleDownStabilized" }, { n, able.reason })
    n = norm(st, { current = 4, desired = 1, min = 1, max = 10, behavior = behavior, window = 60 }, NOW + 91)
    assert.are.equal(1, n)
  end)
end)
