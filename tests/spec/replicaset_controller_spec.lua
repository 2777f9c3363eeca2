-- The ReplicaSet kind and controller on the real API stack, in process
-- (memory store, router, in-process transport): pods created from the
-- template with owner references, replacement of deleted and relabelled
-- pods, adoption of orphans, scale-down, status counts, the scale
-- subresource and the kind's validation messages.
require("moonlet_core")
local loop = require("moonlet.loop")
local json = require("moonlet.json")
local plugins = require("moonlet.plugins")
local kinds = require("moonlet.api.kinds")
local manager = require("moonlet.controller.manager")
local fake = require("fake_client") -- for fake.run only

local RS = "apps/v1/ReplicaSet"

local function rs_obj(name, replicas, labels, extra)
  local obj = {
    apiVersion = "apps/v1", kind = "ReplicaSet",
    metadata = { name = name, namespace = "default" },
    spec = {
      replicas = replicas,
      selector = { matchLabels = { app = labels.app } },
      template = { metadata = { labels = labels },
        spec = { containers = { { name = "main", image = "kubia", command = { "sleep", "3600" } } } } },
    },
  }
  for k, v in pairs(extra or {}) do obj.spec[k] = v end
  return obj
end

-- Runs fn(env) against a fresh API with the built-in kinds and the
-- replicaset controller (no scheduler or kubelet: pods stay Pending).
local function with_api(fn)
  fake.run(function()
    local store = assert(require("moonlet.store").open({ backend = "memory" }))
    local loaded, errors = plugins.load({})
    assert.are.same({}, errors)
    kinds.reset()
    for _, name in ipairs(plugins.names(loaded, "kinds")) do
      kinds.register(loaded.kinds[name].value, loaded.kinds[name].display)
    end
    local lines = {}
    local log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end
    local router = require("moonlet.api.router").new({ store = store, token = "t", version = "0.0.0", log = log })
    local client = require("moonlet.client").new({ transport = require("moonlet.api.inproc").transport(router) })
    assert(client:create("v1/Namespace", { apiVersion = "v1", kind = "Namespace", metadata = { name = "default" } }))
    local m = manager.new({ client = client, log = log })
    local ctl = m:add(loaded.controllers["replicaset"].value)
    -- deletes propagate through the garbage collector, as in the server
    m:add(loaded.controllers["garbagecollector"].value)
    m:start()
    local env = { client = client, m = m, ctl = ctl, lines = lines }
    -- In-process watch events lag the writes by more than a loop turn:
    -- settle, give the streams time, settle again.
    function env.settle()
      assert.is_true(m:wait_idle(5, 40))
      loop.sleep(150)
      assert.is_true(m:wait_idle(5, 40))
    end
    function env.pods(filter)
      local out = {}
      for _, p in ipairs(assert(client:list("v1/Pod", { namespace = "default" })).items) do
        if not filter or filter(p) then out[#out + 1] = p end
      end
      return out
    end
    local ok, err = pcall(fn, env)
    m:stop()
    require("api_stack").close({ store = store }, ok, err, lines)
  end)
end

local function owned_by(rs)
  return function(p)
    for _, r in ipairs(p.metadata.ownerReferences or {}) do
      if r.uid == rs.metadata.uid and r.controller then return true end
    end
    return false
  end
end

describe("replicaset controller", function()
  it("creates, replaces deleted and relabelled pods, and reports status", function()
    with_api(function(env)
      local c = env.client
      local rs = assert(c:create(RS, rs_obj("kubia", 3, { app = "kubia" })))
      env.settle()
      local pods = env.pods(owned_by(rs))
      assert.are.equal(3, #pods)
      for _, p in ipairs(pods) do
        assert.truthy(p.metadata.name:match("^kubia%-[bcdfghjklmnpqrstvwxz2456789]+$"))
        local ref = p.metadata.ownerReferences[1]
        assert.are.same({ "apps/v1", "ReplicaSet", "kubia", true, true },
          { ref.apiVersion, ref.kind, ref.name, ref.controller, ref.blockOwnerDeletion })
        assert.are.equal("kubia", p.metadata.labels.app)
      end
      local cur = assert(c:get(RS, "default", "kubia"))
      assert.are.equal(3, cur.status.replicas)
      assert.are.equal(3, cur.status.fullyLabeledReplicas)
      assert.are.equal(0, cur.status.readyReplicas)
      assert.are.equal(1, cur.status.observedGeneration)

      -- a deleted pod is replaced
      assert(c:delete("v1/Pod", "default", pods[1].metadata.name))
      env.settle()
      assert.are.equal(3, #env.pods(owned_by(rs)))
      assert.is_nil(c:get("v1/Pod", "default", pods[1].metadata.name))

      -- relabelled out: released (kept, no owner) and replaced
      local moved = pods[2].metadata.name
      assert(c:patch("v1/Pod", "default", moved, "merge", { metadata = { labels = { app = "foo" } } }))
      env.settle()
      local released = assert(c:get("v1/Pod", "default", moved))
      assert.is_nil(released.metadata.ownerReferences)
      assert.are.equal(3, #env.pods(owned_by(rs)))
      assert.are.equal(4, #env.pods())

      -- an unrelated label changes nothing
      assert(c:patch("v1/Pod", "default", pods[3].metadata.name, "merge",
        { metadata = { labels = { env = "debug" } } }))
      env.settle()
      assert.are.equal(4, #env.pods())

      -- a ready pod counts as ready and available
      local p3 = assert(c:get("v1/Pod", "default", pods[3].metadata.name))
      p3.status.conditions = { { type = "Ready", status = "True", lastTransitionTime = "2020-01-01T00:00:00Z" } }
      assert(c:update_status("v1/Pod", p3))
      env.settle()
      cur = assert(c:get(RS, "default", "kubia"))
      assert.are.equal(1, cur.status.readyReplicas)
      assert.are.equal(1, cur.status.availableReplicas)

      -- events
      local reasons = {}
      for _, e in ipairs(assert(c:list("v1/Event", { namespace = "default" })).items) do
        if e.involvedObject.kind == "ReplicaSet" then
          reasons[e.reason] = (reasons[e.reason] or 0) + e.count
          if e.reason == "SuccessfulCreate" then assert.truthy(e.message:match("^Created pod: kubia%-")) end
        end
      end
      assert.are.same({ SuccessfulCreate = 5 }, reasons)
      assert.are.equal(0, env.ctl.stats.errors)
    end)
  end)

  it("adopts matching orphans and scales down by the policy", function()
    with_api(function(env)
      local c = env.client
      local orphan = assert(c:create("v1/Pod", { apiVersion = "v1", kind = "Pod",
        metadata = { name = "orphan", namespace = "default", labels = { app = "web" } },
        spec = { containers = { { name = "main", image = "kubia" } } } }))
      local rs = assert(c:create(RS, rs_obj("web", 2, { app = "web" })))
      env.settle()
      local pods = env.pods(owned_by(rs))
      assert.are.equal(2, #pods)
      local adopted = assert(c:get("v1/Pod", "default", "orphan"))
      assert.are.equal(orphan.metadata.uid, adopted.metadata.uid)
      assert.are.equal(rs.metadata.uid, adopted.metadata.ownerReferences[1].uid)

      -- scale to 5 (slow start 1, 2), then down to 1 through the scale subresource
      local cur = assert(c:get(RS, "default", "web"))
      cur.spec.replicas = 5
      assert(c:update(RS, cur))
      env.settle()
      assert.are.equal(5, #env.pods(owned_by(rs)))
      assert.are.equal(2, assert(c:get(RS, "default", "web")).metadata.generation)

      local r = c:raw("GET", "/apis/apps/v1/namespaces/default/replicasets/web/scale")
      assert.are.equal(200, r.status)
      local scale = json.decode(r.body)
      assert.are.same({ "Scale", "autoscaling/v1", 5, "app=web" },
        { scale.kind, scale.apiVersion, scale.spec.replicas, scale.status.selector })
      -- the adopted orphan is Running, so Pending pods go first
      adopted.status.phase = "Running"
      assert(c:update_status("v1/Pod", adopted))
      -- a dry run answers the new Scale and writes nothing
      r = c:raw("PATCH", "/apis/apps/v1/namespaces/default/replicasets/web/scale?dryRun=All",
        { spec = { replicas = 2 } }, { ["Content-Type"] = "application/merge-patch+json" })
      assert.are.equal(200, r.status, r.body)
      assert.are.equal(2, json.decode(r.body).spec.replicas)
      assert.are.equal(5, assert(c:get(RS, "default", "web")).spec.replicas)
      r = c:raw("PATCH", "/apis/apps/v1/namespaces/default/replicasets/web/scale",
        { spec = { replicas = 1 } }, { ["Content-Type"] = "application/merge-patch+json" })
      assert.are.equal(200, r.status, r.body)
      env.settle()
      local left = env.pods(owned_by(rs))
      assert.are.equal(1, #left)
      assert.are.equal("orphan", left[1].metadata.name)
      cur = assert(c:get(RS, "default", "web"))
      assert.are.equal(1, cur.status.replicas)
      assert.are.equal(3, cur.status.observedGeneration)

      -- orphaning delete keeps the pod; a new set adopts it
      assert(c:delete(RS, "default", "web", { propagation_policy = "Orphan" }))
      env.settle()
      assert.is_nil(c:get(RS, "default", "web"))
      local kept = assert(c:get("v1/Pod", "default", "orphan"))
      assert.is_nil(kept.metadata.ownerReferences)
      local rs2 = assert(c:create(RS, rs_obj("web2", 1, { app = "web" })))
      env.settle()
      local now = env.pods(owned_by(rs2))
      assert.are.equal(1, #now)
      assert.are.equal("orphan", now[1].metadata.name)
    end)
  end)
end)

describe("replicaset controller failures", function()
  it("reports FailedCreate and ReplicaFailure, and clears them once pods can be created", function()
    with_api(function(env)
      local c = env.client
      local util = require("moonlet.controller.util")
      -- a template image with a trailing space passes the template's
      -- validation but not the Pod's: every create fails
      local obj = rs_obj("bad", 2, { app = "bad" })
      obj.spec.template.spec.containers[1].image = "kubia "
      assert(c:create(RS, obj))
      local function condition()
        local cur = c:get(RS, "default", "bad")
        return cur and cur.status and cur.status.conditions and cur.status.conditions[1]
      end
      assert.is_true(util.wait_for(function() return condition() ~= nil end, 5))
      local cond = condition()
      assert.are.same({ "ReplicaFailure", "True", "FailedCreate" }, { cond.type, cond.status, cond.reason })
      assert.truthy(cond.message:find("must not have leading or trailing whitespace", 1, true), cond.message)
      assert.are.equal(0, #env.pods())
      -- (events are written by the sink, within a second)
      local failed
      assert.is_true(util.wait_for(function()
        for _, e in ipairs(assert(c:list("v1/Event", { namespace = "default" })).items) do
          if e.reason == "FailedCreate" then failed = e end
        end
        return failed ~= nil
      end, 3))
      assert.are.equal("Warning", failed.type)
      assert.truthy(failed.message:match("^Error creating: "))

      local cur = assert(c:get(RS, "default", "bad"))
      cur.spec.template.spec.containers[1].image = "kubia"
      assert(c:update(RS, cur))
      assert.is_true(util.wait_for(function() return condition() == nil and #env.pods() == 2 end, 10))
    end)
  end)
end)

describe("replicaset availability", function()
  it("counts a ready pod as available only after minReadySeconds", function()
    with_api(function(env)
      local c = env.client
      local util = require("moonlet.controller.util")
      assert(c:create(RS, rs_obj("slow", 1, { app = "slow" }, { minReadySeconds = 3 })))
      env.settle()
      local p = env.pods()[1]
      p.status.conditions = { { type = "Ready", status = "True",
        lastTransitionTime = os.date("!%Y-%m-%dT%H:%M:%SZ", math.ceil(loop.time())) } }
      assert(c:update_status("v1/Pod", p))
      -- (not settle: the delayed re-check keeps the queue busy until then)
      assert.is_true(util.wait_for(function()
        return assert(c:get(RS, "default", "slow")).status.readyReplicas == 1
      end, 2))
      local cur = assert(c:get(RS, "default", "slow"))
      assert.are.same({ 1, 0 }, { cur.status.readyReplicas, cur.status.availableReplicas })
      -- no further event: the controller looks again when the time is up
      assert.is_true(util.wait_for(function()
        return assert(c:get(RS, "default", "slow")).status.availableReplicas == 1
      end, 8))
    end)
  end)
end)

describe("replicaset slow start", function()
  it("creates in concurrent batches of 1, 2, 4 and never more than wanted", function()
    with_api(function(env)
      local c = env.client
      local orig, inflight, seen = c.create, 0, {}
      c.create = function(self, kind, obj, opts)
        if kind ~= "v1/Pod" then return orig(self, kind, obj, opts) end
        inflight = inflight + 1
        seen[#seen + 1] = inflight
        loop.sleep(10)
        local res, st = orig(self, kind, obj, opts)
        inflight = inflight - 1
        return res, st
      end
      assert(c:create(RS, rs_obj("seven", 7, { app = "seven" })))
      env.settle()
      assert.are.same({ 1, 1, 2, 1, 2, 3, 4 }, seen)
      assert.are.equal(7, #env.pods())
    end)
  end)
end)

describe("replicaset kind", function()
  local function invalid(env, obj)
    local created, st = env.client:create(RS, obj)
    assert.is_nil(created)
    assert.are.equal(422, st.code)
    return st.message
  end

  it("validates selectors and template labels", function()
    with_api(function(env)
      local bad = rs_obj("x", 1, { app = "kubia" })
      bad.spec.selector = { matchLabels = { app = "other" } }
      local m1 = invalid(env, bad)
      assert.truthy(m1:find('"x" is invalid: spec.template.metadata.labels: Invalid value: ', 1, true), m1)
      assert.truthy(m1:find(': `selector` does not match template `labels`', 1, true), m1)

      local empty = rs_obj("x", 1, { app = "kubia" })
      empty.spec.selector = {}
      assert.truthy(invalid(env, empty):find("spec.selector: Invalid value: .*empty selector is invalid for deployment"))

      local none = rs_obj("x", 1, { app = "kubia" })
      none.spec.selector = nil
      assert.truthy(invalid(env, none):find("spec.selector: Required value", 1, true))

      local neg = rs_obj("x", -1, { app = "kubia" })
      assert.truthy(invalid(env, neg):find("spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        1, true))

      local never = rs_obj("x", 1, { app = "kubia" })
      never.spec.template.spec.restartPolicy = "Never"
      assert.truthy(invalid(env, never):find('spec.template.spec.restartPolicy: Unsupported value: "Never": '
        .. 'supported values: "Always"', 1, true))

      -- the chapter's typo: `- app: app` instead of `- key: app`
      local typo = rs_obj("x", 1, { app = "kubia" })
      typo.spec.selector = { matchExpressions = { { app = "app", operator = "In", values = { "kubia" } } } }
      local msg = invalid(env, typo)
      assert.truthy(msg:find("spec.selector.matchExpressions[0].key", 1, true), msg)

      -- defaults and immutable selector
      local ok = assert(env.client:create(RS, rs_obj("ok", nil, { app = "ok" })))
      assert.are.equal(1, ok.spec.replicas)
      assert.are.equal("Always", ok.spec.template.spec.restartPolicy)
      ok.spec.selector = { matchLabels = { app = "ok", tier = "x" } }
      ok.spec.template.metadata.labels.tier = "x"
      local upd, st = env.client:update(RS, ok)
      assert.is_nil(upd)
      assert.are.equal(422, st.code)
      assert.truthy(st.message:find("spec.selector: Invalid value: .*field is immutable"))
    end)
  end)

  it("prints DESIRED CURRENT READY and the wide columns", function()
    local def = assert(plugins.load({})).kinds["replicaset"].value
    local rs = rs_obj("kubia", 3, { app = "kubia" })
    rs.metadata.creationTimestamp = "2020-01-01T00:00:00Z"
    rs.status = { replicas = 2, readyReplicas = 1 }
    local t = require("moonlet.api.table").build(def, { rs })
    local names = {}
    for i, col in ipairs(t.columnDefinitions) do names[i] = col.name end
    assert.are.same({ "Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector" }, names)
    assert.are.same({ "kubia", 3, 2, 1 }, { table.unpack(t.rows[1].cells, 1, 4) })
    assert.are.same({ "main", "kubia", "app=kubia" }, { table.unpack(t.rows[1].cells, 6, 8) })
  end)
end)
