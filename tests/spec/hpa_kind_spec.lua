-- The autoscaling HorizontalPodAutoscaler kind through the real API stack
-- in process: v2 defaults (minReplicas 1, the 80% CPU default, behavior
-- rules), Kubernetes' validation messages, autoscaling/v1 served from the
-- same stored objects (targetCPUUtilizationPercentage both ways, the other
-- metrics and conditions in the autoscaling.alpha annotations, a v1 merge
-- patch), protobuf bodies as kubectl autoscale sends them, and kubectl
-- 1.32's columns (TARGETS "cpu: <unknown>/50%" before the first metrics).
require("moonlet_core")
local json = require("moonlet.json")
local stack = require("api_stack")
local fake = require("fake_client") -- for fake.run only
local convert = require("moonlet.api.hpa_convert")

local V2, V1 = "autoscaling/v2/HorizontalPodAutoscaler", "autoscaling/v1/HorizontalPodAutoscaler"

local function hpa(name, spec)
  local s = { scaleTargetRef = { apiVersion = "apps/v1", kind = "Deployment", name = "web" }, maxReplicas = 5 }
  for k, v in pairs(spec or {}) do s[k] = v end
  return { apiVersion = "autoscaling/v2", kind = "HorizontalPodAutoscaler", metadata = { name = name }, spec = s }
end

local function rejected(c, obj)
  local res, st = c:create(V2, obj)
  assert.is_nil(res, "accepted")
  assert.are.equal(422, st.code)
  return st.message
end

describe("autoscaling HorizontalPodAutoscaler kind", function()
  it("defaults as SetDefaults_HorizontalPodAutoscaler does", function()
    fake.run(function()
      local c = stack.new().client
      local obj = assert(c:create(V2, hpa("d")))
      assert.are.equal(1, obj.spec.minReplicas)
      assert.are.same({ { type = "Resource", resource = { name = "cpu",
        target = { type = "Utilization", averageUtilization = 80 } } } }, obj.spec.metrics)
      assert.is_nil(obj.spec.behavior)
      obj = assert(c:create(V2, hpa("b", { behavior = { scaleDown = { stabilizationWindowSeconds = 60 } } })))
      assert.are.same({ stabilizationWindowSeconds = 0, selectPolicy = "Max", policies = {
        { type = "Pods", value = 4, periodSeconds = 15 }, { type = "Percent", value = 100, periodSeconds = 15 } } },
        obj.spec.behavior.scaleUp)
      assert.are.same({ stabilizationWindowSeconds = 60, selectPolicy = "Max", policies = {
        { type = "Percent", value = 100, periodSeconds = 15 } } }, obj.spec.behavior.scaleDown)
    end)
  end)

  it("rejects what Kubernetes rejects, in its words", function()
    fake.run(function()
      local c = stack.new().client
      local pre = 'HorizontalPodAutoscaler.autoscaling "a" is invalid: '
      assert.are.equal(pre .. "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
        rejected(c, hpa("a", { minReplicas = 0 })))
      assert.are.equal(pre .. "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
        rejected(c, hpa("a", { minReplicas = 3, maxReplicas = 2 })))
      assert.are.equal(pre .. "spec.scaleTargetRef.name: Required value",
        rejected(c, hpa("a", { scaleTargetRef = { kind = "Deployment" } })))
      assert.are.equal(pre .. "spec.scaleTargetRef.kind: Invalid value: \"a/b\": may not contain '/'",
        rejected(c, hpa("a", { scaleTargetRef = { kind = "a/b", name = "web" } })))
      assert.are.equal(pre .. "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
        rejected(c, hpa("a", { metrics = { { type = "Resource", resource = { name = "cpu",
          target = { type = "Utilization", averageUtilization = 0 } } } } })))
      assert.are.equal(pre .. 'spec.metrics[0].type: Unsupported value: "Nope": supported values: '
        .. '"ContainerResource", "External", "Object", "Pods", "Resource"',
        rejected(c, hpa("a", { metrics = { { type = "Nope" } } })))
      assert.are.equal(pre .. "spec.metrics[0].resource: Required value: must populate information for the given metric source",
        rejected(c, hpa("a", { metrics = { { type = "Resource" } } })))
      assert.are.equal(pre .. "spec.metrics[0].resource.target.averageValue: Forbidden: may not set both a target "
        .. "raw value and a target utilization",
        rejected(c, hpa("a", { metrics = { { type = "Resource", resource = { name = "memory",
          target = { type = "Utilization", averageUtilization = 50, averageValue = "100Mi" } } } } })))
      assert.are.equal(pre .. "spec.behavior.scaleDown.policies[0].periodSeconds: Invalid value: 1801: "
        .. "must be less than or equal to 1800",
        rejected(c, hpa("a", { behavior = { scaleDown = { policies = {
          { type = "Pods", value = 1, periodSeconds = 1801 } } } } })))
      assert.are.equal(pre .. 'spec.behavior.scaleUp.selectPolicy: Unsupported value: "Most": supported values: '
        .. '"Disabled", "Max", "Min"', rejected(c, hpa("a", { behavior = { scaleUp = { selectPolicy = "Most" } } })))
      -- other metric types validate as Kubernetes' do
      assert(c:create(V2, hpa("pods", { metrics = { { type = "Pods", pods = { metric = { name = "qps" },
        target = { type = "AverageValue", averageValue = "10" } } } } })))
      assert.are.equal(pre .. "spec.metrics[0].pods.target.averageValue: Required value: must specify a positive "
        .. "target averageValue", rejected(c, hpa("a", { metrics = { { type = "Pods", pods = {
          metric = { name = "qps" }, target = { type = "Value", value = "10" } } } } })))
    end)
  end)

  it("serves autoscaling/v1 from the stored v2 objects", function()
    fake.run(function()
      local c = stack.new().client
      -- a v1 create (kubectl autoscale's) is stored as v2
      local v1 = { apiVersion = "autoscaling/v1", kind = "HorizontalPodAutoscaler", metadata = { name = "web" },
        spec = { scaleTargetRef = { apiVersion = "apps/v1", kind = "Deployment", name = "web" },
          maxReplicas = 5, targetCPUUtilizationPercentage = 50 } }
      local res = assert(c:create(V1, v1))
      assert.are.equal("autoscaling/v1", res.apiVersion)
      assert.are.same({ 1, 50 }, { res.spec.minReplicas, res.spec.targetCPUUtilizationPercentage })
      local v2 = assert(c:get(V2, "default", "web"))
      assert.are.same({ { type = "Resource", resource = { name = "cpu",
        target = { type = "Utilization", averageUtilization = 50 } } } }, v2.spec.metrics)
      -- status and a second metric, read through v1
      v2.spec.metrics[2] = { type = "Resource", resource = { name = "memory",
        target = { type = "AverageValue", averageValue = "64Mi" } } }
      v2 = assert(c:update(V2, v2))
      v2.status = { currentReplicas = 2, desiredReplicas = 3, currentMetrics = { { type = "Resource",
        resource = { name = "cpu", current = { averageUtilization = 73, averageValue = "73m" } } } },
        conditions = { { type = "AbleToScale", status = "True", reason = "SucceededRescale",
          message = "m", lastTransitionTime = "2026-01-01T00:00:00Z" } } }
      assert(c:update_status(V2, v2))
      local got = assert(c:get(V1, "default", "web"))
      assert.are.equal(50, got.spec.targetCPUUtilizationPercentage)
      assert.is_nil(got.spec.metrics)
      assert.are.same({ 2, 3, 73 }, { got.status.currentReplicas, got.status.desiredReplicas,
        got.status.currentCPUUtilizationPercentage })
      local ann = got.metadata.annotations
      assert.are.equal("memory", json.decode(ann[convert.METRICS])[1].resource.name)
      assert.are.equal("SucceededRescale", json.decode(ann[convert.CONDITIONS])[1].reason)
      local list = assert(c:list(V1, { namespace = "default" }))
      assert.are.equal(50, list.items[1].spec.targetCPUUtilizationPercentage)
      -- a v1 merge patch changes the CPU target and keeps the memory metric
      local p = assert(c:patch(V1, "default", "web", "merge", { spec = { targetCPUUtilizationPercentage = 70 } }))
      assert.are.equal(70, p.spec.targetCPUUtilizationPercentage)
      v2 = assert(c:get(V2, "default", "web"))
      assert.are.equal(2, #v2.spec.metrics)
      assert.are.equal("memory", v2.spec.metrics[1].resource.name)
      assert.are.equal(70, v2.spec.metrics[2].resource.target.averageUtilization)
      assert.is_nil((v2.metadata.annotations or {})[convert.METRICS])
      -- a PUT of what v1 read round-trips
      got = assert(c:get(V1, "default", "web"))
      got.spec.maxReplicas = 7
      assert(c:update(V1, got))
      v2 = assert(c:get(V2, "default", "web"))
      assert.are.same({ 7, 2 }, { v2.spec.maxReplicas, #v2.spec.metrics })
      assert.are.equal(73, v2.status.currentMetrics[1].resource.current.averageUtilization)
    end)
  end)

  it("converts v2 to v1 and back without losing what v1 cannot say", function()
    local obj = hpa("x", { minReplicas = 2, metrics = {
      { type = "Pods", pods = { metric = { name = "qps" }, target = { type = "AverageValue", averageValue = "10" } } },
      { type = "Resource", resource = { name = "cpu", target = { type = "Utilization", averageUtilization = 60 } } } },
      behavior = { scaleDown = { stabilizationWindowSeconds = 30 } } })
    obj.metadata.annotations = { keep = "me" }
    local v1 = convert.to_v1(obj)
    assert.are.same({ 2, 5, 60 }, { v1.spec.minReplicas, v1.spec.maxReplicas, v1.spec.targetCPUUtilizationPercentage })
    local back = convert.to_v2(v1)
    assert.are.same(obj.spec, back.spec)
    assert.are.same({ keep = "me" }, back.metadata.annotations)
    -- a v1 object without a target gets v1's implicit 80%
    local bare = convert.to_v2({ apiVersion = "autoscaling/v1", metadata = {}, spec = { maxReplicas = 3 } })
    assert.are.equal(80, bare.spec.metrics[1].resource.target.averageUtilization)
  end)

  it("is discovered as autoscaling v2 (preferred) and v1", function()
    require("api_stack").register_kinds()
    local g = require("moonlet.api.discovery").group("autoscaling")
    assert.are.same({ "autoscaling/v2", "autoscaling/v1" }, { g.versions[1].groupVersion, g.versions[2].groupVersion })
    assert.are.equal("v2", g.preferredVersion.version)
  end)

  it("takes kubectl autoscale's protobuf body", function()
    assert.are.equal("autoscaling.v1.HorizontalPodAutoscaler",
      require("moonlet.api.protobuf").message_for("autoscaling/v1", "HorizontalPodAutoscaler"))
    assert.are.equal("autoscaling.v2.HorizontalPodAutoscaler",
      require("moonlet.api.protobuf").message_for("autoscaling/v2", "HorizontalPodAutoscaler"))
  end)

  it("prints kubectl 1.32's columns", function()
    fake.run(function()
      local c = stack.new().client
      local obj = assert(c:create(V2, hpa("web", { metrics = { { type = "Resource", resource = { name = "cpu",
        target = { type = "Utilization", averageUtilization = 50 } } } } })))
      local t = assert(c:table(V2, { namespace = "default" }))
      local names = {}
      for i, col in ipairs(t.columnDefinitions) do names[i] = col.name end
      assert.are.same({ "Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age" }, names)
      local cells = t.rows[1].cells
      assert.are.same({ "web", "Deployment/web", "cpu: <unknown>/50%", "1", 5, 0 },
        { cells[1], cells[2], cells[3], cells[4], cells[5], cells[6] })
      obj.status = { currentReplicas = 3, desiredReplicas = 3, currentMetrics = { { type = "Resource",
        resource = { name = "cpu", current = { averageUtilization = 12, averageValue = "12m" } } } } }
      assert(c:update_status(V2, obj))
      cells = assert(c:table(V2, { namespace = "default" })).rows[1].cells
      assert.are.same({ "cpu: 12%/50%", 3 }, { cells[3], cells[6] })
      -- the same rows through v1
      cells = assert(c:table(V1, { namespace = "default" })).rows[1].cells
      assert.are.equal("cpu: 12%/50%", cells[3])
    end)
  end)
end)
