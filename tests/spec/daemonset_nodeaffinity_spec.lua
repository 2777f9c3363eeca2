-- Node affinity and tolerations as the scheduler and the DaemonSet
-- controller read them (moonlet.nodematch), and the default scheduler with
-- them: required nodeSelectorTerms (ORed terms, ANDed requirements, all
-- operators, matchFields metadata.name), cordoned nodes taking pods that
-- tolerate node.kubernetes.io/unschedulable, and daemon pods bound to the
-- node they are pinned to.
local env_mod = require("daemonset_env")
local nodematch = require("moonlet.nodematch")

local function node(name, labels) return { metadata = { name = name, labels = labels or {} } } end

local function spec_with(terms)
  return { affinity = { nodeAffinity = { requiredDuringSchedulingIgnoredDuringExecution = {
    nodeSelectorTerms = terms } } } }
end

describe("nodematch", function()
  local n = node("n1", { disk = "ssd", cores = "8", zone = "a" })

  it("evaluates every operator on labels", function()
    local function m(req) return nodematch.term_matches({ matchExpressions = { req } }, n) end
    assert.is_true(m({ key = "disk", operator = "In", values = { "hdd", "ssd" } }))
    assert.is_false(m({ key = "disk", operator = "In", values = { "hdd" } }))
    assert.is_false(m({ key = "gpu", operator = "In", values = { "x" } }))
    assert.is_true(m({ key = "disk", operator = "NotIn", values = { "hdd" } }))
    assert.is_true(m({ key = "gpu", operator = "NotIn", values = { "x" } }))
    assert.is_false(m({ key = "disk", operator = "NotIn", values = { "ssd" } }))
    assert.is_true(m({ key = "zone", operator = "Exists" }))
    assert.is_false(m({ key = "gpu", operator = "Exists" }))
    assert.is_true(m({ key = "gpu", operator = "DoesNotExist" }))
    assert.is_false(m({ key = "zone", operator = "DoesNotExist" }))
    assert.is_true(m({ key = "cores", operator = "Gt", values = { "4" } }))
    assert.is_false(m({ key = "cores", operator = "Gt", values = { "8" } }))
    assert.is_true(m({ key = "cores", operator = "Lt", values = { "16" } }))
    assert.is_false(m({ key = "disk", operator = "Lt", values = { "16" } }))  -- not an integer
    assert.is_false(m({ key = "gpu", operator = "Gt", values = { "1" } }))    -- absent
    assert.is_false(m({ key = "disk", operator = "Bogus", values = { "ssd" } }))
  end)

  it("matches fields on metadata.name only, ANDs requirements and ORs terms", function()
    assert.is_true(nodematch.term_matches({ matchFields = { { key = "metadata.name", operator = "In",
      values = { "n1" } } } }, n))
    assert.is_false(nodematch.term_matches({ matchFields = { { key = "metadata.name", operator = "In",
      values = { "n2" } } } }, n))
    assert.is_true(nodematch.term_matches({ matchFields = { { key = "metadata.name", operator = "NotIn",
      values = { "n2" } } } }, n))
    assert.is_false(nodematch.term_matches({ matchFields = { { key = "metadata.uid", operator = "In",
      values = { "n1" } } } }, n))
    assert.is_false(nodematch.term_matches({}, n)) -- an empty term matches nothing
    -- ANDed within a term
    assert.is_false(nodematch.affinity_matches(spec_with({ { matchExpressions = {
      { key = "disk", operator = "In", values = { "ssd" } }, { key = "zone", operator = "In", values = { "b" } } },
    } }), n))
    -- ORed across terms
    assert.is_true(nodematch.affinity_matches(spec_with({
      { matchExpressions = { { key = "zone", operator = "In", values = { "b" } } } },
      { matchFields = { { key = "metadata.name", operator = "In", values = { "n1" } } } },
    }), n))
    assert.is_false(nodematch.affinity_matches(spec_with({}), n))
    assert.is_true(nodematch.affinity_matches({}, n))
  end)

  it("tolerates taints as ToleratesTaint does", function()
    local t = { key = "dedicated", value = "db", effect = "NoSchedule" }
    assert.is_true(nodematch.tolerates({ key = "dedicated", value = "db", effect = "NoSchedule" }, t))
    assert.is_true(nodematch.tolerates({ key = "dedicated", operator = "Exists" }, t))
    assert.is_true(nodematch.tolerates({ operator = "Exists" }, t))
    assert.is_false(nodematch.tolerates({ key = "dedicated", value = "web" }, t))
    assert.is_false(nodematch.tolerates({ key = "dedicated", operator = "Exists", effect = "NoExecute" }, t))
    assert.is_false(nodematch.tolerates({ value = "db" }, t))
    local function any_effect() return true end
    assert.are.equal(t, nodematch.untolerated({}, { t }, any_effect))
    assert.is_nil(nodematch.untolerated({ { operator = "Exists" } }, { t }, any_effect))
  end)
end)

describe("default scheduler with node affinity", function()
  local function pod(name, spec)
    spec.containers = { { name = "main", image = "x" } }
    return { apiVersion = "v1", kind = "Pod", metadata = { name = name, namespace = "default" }, spec = spec }
  end

  it("binds by required node affinity and lets tolerating pods onto cordoned nodes", function()
    env_mod.with_api(function(env)
      local c = env.client
      env.node("ssd1", { disk = "ssd" }, nil, true)
      env.node("hdd1", { disk = "hdd" }, nil, true)
      env.node("cordoned", { disk = "ssd", spare = "yes" }, { unschedulable = true }, true)
      assert(c:create("v1/Pod", pod("want-ssd", spec_with({ { matchExpressions = {
        { key = "disk", operator = "In", values = { "ssd" } },
        { key = "spare", operator = "DoesNotExist" } } } }))))
      assert(c:create("v1/Pod", pod("want-hdd-by-name", spec_with({ { matchFields = {
        { key = "metadata.name", operator = "In", values = { "hdd1" } } } } }))))
      assert(c:create("v1/Pod", pod("nowhere", spec_with({ { matchExpressions = {
        { key = "disk", operator = "In", values = { "nvme" } } } } }))))
      local spare = spec_with({ { matchExpressions = { { key = "spare", operator = "Exists" } } } })
      assert(c:create("v1/Pod", pod("spare-intolerant", spare)))
      local tol = spec_with({ { matchExpressions = { { key = "spare", operator = "Exists" } } } })
      tol.tolerations = { { key = "node.kubernetes.io/unschedulable", operator = "Exists", effect = "NoSchedule" } }
      assert(c:create("v1/Pod", pod("spare-tolerant", tol)))
      env.settle()
      local function bound(name) return (assert(c:get("v1/Pod", "default", name)).spec.nodeName) end
      assert.are.equal("ssd1", bound("want-ssd"))
      assert.are.equal("hdd1", bound("want-hdd-by-name"))
      assert.are.equal("cordoned", bound("spare-tolerant"))
      assert.is_nil(bound("nowhere"))
      assert.is_nil(bound("spare-intolerant"))
      local msgs = {}
      for _, e in ipairs(env.events("Pod")) do
        if e.reason == "FailedScheduling" then msgs[e.involvedObject.name] = e.message end
      end
      -- the cordoned node fails on its first filter, as kube-scheduler reports it
      assert.are.equal("0/3 nodes are available: 1 node(s) were unschedulable, "
        .. "2 node(s) didn't match Pod's node affinity/selector.", msgs.nowhere)
      assert.are.equal("0/3 nodes are available: 1 node(s) were unschedulable, "
        .. "2 node(s) didn't match Pod's node affinity/selector.", msgs["spare-intolerant"])
      -- the tolerant pod is not turned away by the cordon
      assert.is_nil(msgs["spare-tolerant"])
    end, { "scheduler" })
  end)

  it("binds each daemon pod to its own node, cordoned ones included", function()
    env_mod.with_api(function(env)
      local c = env.client
      env.node("a", {}, nil, true)
      env.node("b", {}, nil, true)
      env.node("c", {}, { unschedulable = true }, true)
      assert(c:create(env_mod.DS, env_mod.ds("agent")))
      env.settle()
      local pods = env.pods()
      assert.are.equal(3, #pods)
      local target = env.ctl.plugin.target_node
      local seen = {}
      for _, p in ipairs(pods) do
        local want = target({ spec = { affinity = p.spec.affinity } })
        assert.are.equal(want, p.spec.nodeName)
        seen[p.spec.nodeName] = true
      end
      assert.are.same({ a = true, b = true, c = true }, seen)
    end, { "daemonset", "scheduler" })
  end)
end)
