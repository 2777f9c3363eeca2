-- Scale-down policies (moonlet.scaledown): the built-in "default" ranking
-- (Kubernetes' ActivePodsWithRanks order), the example "oldest-first"
-- loaded from a scripts dir, and the `describe rs` text.
require("moonlet_core")
local plugins = require("moonlet.plugins")
local scaledown = require("moonlet.scaledown")

local SRC = os.getenv("ML_SRC") or "."
local NOW = 1700000000

local function pod(name, o)
  o = o or {}
  local p = { metadata = { name = name, uid = o.uid or name, creationTimestamp = o.created or "2023-11-14T00:00:00Z",
      annotations = o.annotations },
    spec = { nodeName = o.node },
    status = { phase = o.phase or "Running", conditions = {}, containerStatuses = { { restartCount = o.restarts or 0 } } } }
  if o.ready then
    p.status.conditions[1] = { type = "Ready", status = "True", lastTransitionTime = o.ready }
  end
  return p
end

local function names(list)
  local out = {}
  for i, p in ipairs(list) do out[i] = p.metadata.name end
  return out
end

describe("scale-down policy default", function()
  before_each(function() scaledown.reset() end)

  it("is built in", function()
    assert.are.same({ "default" }, scaledown.names())
  end)

  it("ranks unassigned, then phase, readiness, cost, siblings, restarts, age", function()
    local pods = {
      pod("running-ready", { node = "n1", ready = "2023-11-14T00:00:00Z" }),
      pod("unassigned", { phase = "Pending" }),
      pod("pending", { node = "n1", phase = "Pending" }),
      pod("not-ready", { node = "n2" }),
    }
    assert.are.same({ "unassigned", "pending", "not-ready" }, names(scaledown.victims(pods, 3, "default", NOW)))
    local cost = {
      pod("expensive", { node = "n1", annotations = { ["controller.kubernetes.io/pod-deletion-cost"] = "100" } }),
      pod("cheap", { node = "n2", annotations = { ["controller.kubernetes.io/pod-deletion-cost"] = "-5" } }),
    }
    assert.are.same({ "cheap" }, names(scaledown.victims(cost, 1, "default", NOW)))
    -- more siblings on the same node go first
    local spread = { pod("alone", { node = "n1" }), pod("crowd1", { node = "n2" }), pod("crowd2", { node = "n2" }) }
    assert.are.same({ "crowd1" }, names(scaledown.victims(spread, 1, "default", NOW)))
    -- more restarts first
    local r = { pod("calm", { node = "n1" }), pod("flappy", { node = "n2", restarts = 4 }) }
    assert.are.same({ "flappy" }, names(scaledown.victims(r, 1, "default", NOW)))
    -- newer first (different log2 buckets)
    local age = { pod("old", { node = "n1", created = "2023-01-01T00:00:00Z" }),
      pod("new", { node = "n2", created = "2023-11-14T22:00:00Z" }) }
    assert.are.same({ "new" }, names(scaledown.victims(age, 1, "default", NOW)))
    -- more recently ready first
    local rd = { pod("ready-long", { node = "n1", ready = "2023-01-01T00:00:00Z" }),
      pod("ready-now", { node = "n2", ready = "2023-11-14T22:00:00Z" }) }
    assert.are.same({ "ready-now" }, names(scaledown.victims(rd, 1, "default", NOW)))
  end)
end)

describe("example scale-down policy oldest-first", function()
  after_each(function() scaledown.reset() end)

  it("loads from examples/policies and deletes the oldest pods first", function()
    local loaded, errors = plugins.load({ SRC .. "/examples/policies" })
    assert.are.same({}, errors)
    assert.are.same({}, scaledown.load(loaded))
    assert.are.same({ "default", "oldest-first" }, scaledown.names())
    local pods = { pod("b", { created = "2023-06-01T00:00:00Z" }), pod("a", { created = "2023-01-01T00:00:00Z" }),
      pod("c", { created = "2023-09-01T00:00:00Z" }) }
    assert.are.same({ "a", "b" }, names(scaledown.victims(pods, 2, "oldest-first", NOW)))
    assert.are.same({ "c", "b" }, names(scaledown.victims(pods, 2, "default", NOW)))
  end)

  it("rejects a plugin without less()", function()
    local errs = scaledown.load({ policies = { ["scaledown/bad"] = { value = { name = "bad" }, display = "bad.lua" } } })
    assert.are.same({ 'bad.lua: field "less": must be a function' }, errs)
  end)
end)

describe("describe rs", function()
  it("renders replicas, pod phases and the template", function()
    local rs = { metadata = { name = "kubia", namespace = "default", uid = "u1" },
      spec = { replicas = 3, selector = { matchLabels = { app = "kubia" } },
        template = { metadata = { labels = { app = "kubia" } }, spec = { containers = { { name = "kubia", image = "luksa/kubia" } } } } },
      status = { replicas = 3 } }
    local owned = { ownerReferences = { { controller = true, uid = "u1" } } }
    local pods = { { metadata = owned, status = { phase = "Running" } }, { metadata = owned, status = { phase = "Pending" } },
      { metadata = {}, status = { phase = "Running" } } }
    local text = require("moonlet.cli.describe_replicaset").render(rs, pods, {}, NOW)
    assert.truthy(text:find("Name:%s+kubia\n"))
    assert.truthy(text:find("Selector:%s+app=kubia\n"))
    assert.truthy(text:find("Replicas:%s+3 current / 3 desired\n"))
    assert.truthy(text:find("Pods Status:%s+1 Running / 1 Waiting / 0 Succeeded / 0 Failed\n"))
    assert.truthy(text:find("Pod Template:\n", 1, true))
    assert.truthy(text:find("Image:%s+luksa/kubia"))
    assert.truthy(text:find("Events:%s+<none>"))
    assert.is_nil(text:find("Controlled By:", 1, true))
  end)

  it("names its controlling Deployment as kubectl does", function()
    local rs = { metadata = { name = "kubia-794d559d86", namespace = "default", uid = "u1",
        annotations = { ["deployment.kubernetes.io/revision"] = "1" },
        ownerReferences = { { apiVersion = "apps/v1", kind = "Deployment", name = "kubia", uid = "d1",
          controller = true } } },
      spec = { replicas = 1, selector = { matchLabels = { app = "kubia" } },
        template = { metadata = { labels = { app = "kubia" } }, spec = { containers = { { name = "kubia", image = "x" } } } } },
      status = { replicas = 1 } }
    local text = require("moonlet.cli.describe_replicaset").render(rs, {}, nil, NOW)
    assert.truthy(text:find(
      "Annotations:    deployment.kubernetes.io/revision: 1\nControlled By:  Deployment/kubia\nReplicas:       1 current / 1 desired\n",
      1, true), text)
  end)
end)
