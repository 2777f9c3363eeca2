-- The garbagecollector controller on the in-process API stack: background
-- collection of dependents, Foreground (owner kept until blocking
-- dependents are gone), Orphan (references stripped, finalizer removed),
-- several owners, a dangling reference at creation, cross-namespace and
-- cluster-scoped owners, a custom kind's dependents, and the API server's
-- side (finalizers per policy, the Job default with its warning).
require("moonlet_core")
local loop = require("moonlet.loop")
local json = require("moonlet.json")
local kinds = require("moonlet.api.kinds")
local manager = require("moonlet.controller.manager")
local api_stack = require("api_stack")
local fake = require("fake_client") -- for fake.run only

local CM = "v1/ConfigMap"
local WIDGET = "test.moonlet.dev/v1/Widget"

-- A custom kind defined here, as a --scripts kind plugin would.
local widget_kind = {
  group = "test.moonlet.dev", version = "v1", kind = "Widget", plural = "widgets",
  namespaced = true,
}

local function cm(name, owners, ns)
  return { apiVersion = "v1", kind = "ConfigMap",
           metadata = { name = name, namespace = ns or "default",
                        ownerReferences = owners and json.array(owners) or nil },
           data = { k = "v" } }
end

local function ref(obj, block)
  return { apiVersion = obj.apiVersion, kind = obj.kind, name = obj.metadata.name,
           uid = obj.metadata.uid, blockOwnerDeletion = block or nil }
end

-- Runs fn(env) with the API, the built-in kinds plus Widget, and a manager
-- running only the garbage collector.
local function with_gc(fn)
  fake.run(function()
    local stack = api_stack.new()
    kinds.register(widget_kind, "spec")
    assert(stack.client:discovery(true))
    local lines = {}
    local log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end
    local m = manager.new({ client = stack.client, log = log })
    local ctl = m:add(stack.loaded.controllers["garbagecollector"].value)
    m:start()
    local c = stack.client
    local env = { client = c, m = m, ctl = ctl, lines = lines, store = stack.store }
    function env.settle()
      assert.is_true(m:wait_idle(5, 40))
      loop.sleep(100)
      assert.is_true(m:wait_idle(5, 40))
    end
    -- Polls until pred() is true (deletion is never synchronous).
    function env.eventually(what, pred, timeout)
      local deadline = loop.now() + (timeout or 5000)
      while not pred() do
        if loop.now() > deadline then error("timed out waiting for " .. what, 2) end
        loop.sleep(20)
      end
    end
    function env.gone(kind, name, ns)
      return function() return c:get(kind, ns or "default", name) == nil end
    end
    local ok, err = pcall(fn, env)
    m:stop()
    require("api_stack").close(stack, ok, err, lines)
  end)
end

describe("garbage collector", function()
  it("deletes the dependents of an owner deleted in the background", function()
    with_gc(function(env)
      local c = env.client
      local owner = assert(c:create(CM, cm("owner")))
      for i = 1, 5 do assert(c:create(CM, cm("dep" .. i, { ref(owner) }))) end
      local other = assert(c:create(CM, cm("unrelated")))
      env.settle()
      assert(c:delete(CM, "default", "owner"))
      for i = 1, 5 do env.eventually("dep" .. i .. " collected", env.gone(CM, "dep" .. i)) end
      env.settle()
      assert.are.equal(other.metadata.uid, assert(c:get(CM, "default", "unrelated")).metadata.uid)
    end)
  end)

  it("hears only ownership changes: plain objects' creates and edits reach it not", function()
    with_gc(function(env)
      local c = env.client
      env.settle()
      local inf = env.m.informers[CM]
      assert.is_true(inf.metadata_only and inf.owner_events)
      local before = inf.stats.events
      local owner = assert(c:create(CM, cm("owner")))
      for i = 1, 20 do assert(c:create(CM, cm("plain" .. i))) end
      assert(c:patch(CM, "default", "plain1", "merge", { data = { k = "changed" } }))
      env.settle()
      assert.are.equal(before, inf.stats.events)
      -- An owner the collector never heard of: looked up live, so its
      -- dependent stays, and its deletion (always delivered) takes the
      -- dependent along.
      assert(c:create(CM, cm("dep", { ref(owner) })))
      env.settle()
      assert.is_not_nil(c:get(CM, "default", "dep"))
      assert(c:delete(CM, "default", "owner"))
      env.eventually("dep collected", env.gone(CM, "dep"))
      assert.is_not_nil(c:get(CM, "default", "plain1"))
    end)
  end)

  it("collects down a chain of owners", function()
    with_gc(function(env)
      local c = env.client
      local a = assert(c:create(CM, cm("a")))
      local b = assert(c:create(CM, cm("b", { ref(a) })))
      assert(c:create(CM, cm("c", { ref(b) })))
      env.settle()
      assert(c:delete(CM, "default", "a"))
      env.eventually("c collected", env.gone(CM, "c"))
      assert.is_nil(c:get(CM, "default", "b"))
    end)
  end)

  it("keeps a Foreground owner until its blocking dependents are gone", function()
    with_gc(function(env)
      local c = env.client
      local owner = assert(c:create(CM, cm("owner")))
      -- the blocking dependent carries a finalizer of its own, so it stays
      -- (terminating) until the spec lets it go
      local held = cm("held", { ref(owner, true) })
      held.metadata.finalizers = json.array({ "example.com/hold" })
      assert(c:create(CM, held))
      assert(c:create(CM, cm("free", { ref(owner, false) })))
      env.settle()
      local res = assert(c:delete(CM, "default", "owner", { propagation_policy = "Foreground" }))
      assert.truthy(res.metadata.deletionTimestamp)
      assert.are.same({ "foregroundDeletion" }, res.metadata.finalizers)
      env.eventually("free collected", env.gone(CM, "free"))
      env.eventually("held terminating", function()
        return assert(c:get(CM, "default", "held")).metadata.deletionTimestamp ~= nil
      end)
      env.settle()
      local cur = assert(c:get(CM, "default", "owner"), "the owner waits for held")
      assert.truthy(cur.metadata.deletionTimestamp)
      assert.are.same({ "foregroundDeletion" }, cur.metadata.finalizers)
      -- release the dependent: it goes, then the owner
      assert(c:patch(CM, "default", "held", "merge", { metadata = { finalizers = json.null } }))
      env.eventually("owner gone", env.gone(CM, "owner"))
      assert.is_nil(c:get(CM, "default", "held"))
    end)
  end)

  it("does not hold a Foreground owner for non-blocking dependents", function()
    with_gc(function(env)
      local c = env.client
      local owner = assert(c:create(CM, cm("owner")))
      local slow = cm("slow", { ref(owner, false) })
      slow.metadata.finalizers = json.array({ "example.com/hold" })
      assert(c:create(CM, slow))
      env.settle()
      assert(c:delete(CM, "default", "owner", { propagation_policy = "Foreground" }))
      env.eventually("owner gone", env.gone(CM, "owner"))
      -- the dependent was deleted too, and waits on its own finalizer
      local cur = assert(c:get(CM, "default", "slow"))
      assert.truthy(cur.metadata.deletionTimestamp)
      assert(c:patch(CM, "default", "slow", "merge", { metadata = { finalizers = json.null } }))
    end)
  end)

  it("propagates Foreground down a chain", function()
    with_gc(function(env)
      local c = env.client
      local a = assert(c:create(CM, cm("a")))
      local b = assert(c:create(CM, cm("b", { ref(a, true) })))
      local leaf = cm("leaf", { ref(b, true) })
      leaf.metadata.finalizers = json.array({ "example.com/hold" })
      assert(c:create(CM, leaf))
      env.settle()
      assert(c:delete(CM, "default", "a", { propagation_policy = "Foreground" }))
      env.eventually("b deleting in the foreground", function()
        local cur = c:get(CM, "default", "b")
        return cur and cur.metadata.deletionTimestamp ~= nil
      end)
      env.settle()
      assert.are.same({ "foregroundDeletion" }, assert(c:get(CM, "default", "b")).metadata.finalizers)
      assert.truthy(c:get(CM, "default", "a"))
      assert(c:patch(CM, "default", "leaf", "merge", { metadata = { finalizers = json.null } }))
      env.eventually("a gone", env.gone(CM, "a"))
      assert.is_nil(c:get(CM, "default", "b"))
    end)
  end)

  it("orphans: strips the owner's reference, then removes the finalizer", function()
    with_gc(function(env)
      local c = env.client
      local owner = assert(c:create(CM, cm("owner")))
      local other = assert(c:create(CM, cm("other")))
      assert(c:create(CM, cm("d1", { ref(owner, true) })))
      assert(c:create(CM, cm("d2", { ref(owner), ref(other) })))
      env.settle()
      local res = assert(c:delete(CM, "default", "owner", { propagation_policy = "Orphan" }))
      assert.are.same({ "orphan" }, res.metadata.finalizers)
      env.eventually("owner gone", env.gone(CM, "owner"))
      env.settle()
      local d1 = assert(c:get(CM, "default", "d1"))
      assert.is_nil(d1.metadata.ownerReferences)
      local d2 = assert(c:get(CM, "default", "d2"))
      assert.are.equal(1, #d2.metadata.ownerReferences)
      assert.are.equal(other.metadata.uid, d2.metadata.ownerReferences[1].uid)
    end)
  end)

  it("keeps a dependent while one of its owners remains, dropping the gone one", function()
    with_gc(function(env)
      local c = env.client
      local o1 = assert(c:create(CM, cm("o1")))
      local o2 = assert(c:create(CM, cm("o2")))
      assert(c:create(CM, cm("shared", { ref(o1), ref(o2) })))
      env.settle()
      assert(c:delete(CM, "default", "o1"))
      env.eventually("dangling reference dropped", function()
        local cur = assert(c:get(CM, "default", "shared"))
        return #cur.metadata.ownerReferences == 1
      end)
      assert.are.equal(o2.metadata.uid, assert(c:get(CM, "default", "shared")).metadata.ownerReferences[1].uid)
      assert(c:delete(CM, "default", "o2"))
      env.eventually("shared collected", env.gone(CM, "shared"))
    end)
  end)

  it("collects an object created with a reference to an owner that is gone", function()
    with_gc(function(env)
      local c = env.client
      local owner = assert(c:create(CM, cm("owner")))
      assert(c:delete(CM, "default", "owner"))
      env.settle()
      assert(c:create(CM, cm("late", { ref(owner) })))
      -- a reference to a uid that never existed, under a live name
      local alive = assert(c:create(CM, cm("alive")))
      local fake_ref = ref(alive)
      fake_ref.uid = "00000000-0000-0000-0000-000000000000"
      assert(c:create(CM, cm("impostor", { fake_ref })))
      env.eventually("late collected", env.gone(CM, "late"))
      env.eventually("impostor collected", env.gone(CM, "impostor"))
      assert.truthy(c:get(CM, "default", "alive"))
    end)
  end)

  it("resolves owners in the dependent's namespace, and cluster-scoped owners anywhere", function()
    with_gc(function(env)
      local c = env.client
      assert(c:create("v1/Namespace", { apiVersion = "v1", kind = "Namespace", metadata = { name = "other" } }))
      local owner = assert(c:create(CM, cm("owner")))
      -- namespaced owner named from another namespace: never resolvable
      assert(c:create(CM, cm("elsewhere", { ref(owner) }, "other")))
      env.eventually("cross-namespace dependent collected", env.gone(CM, "elsewhere", "other"))
      assert.truthy(c:get(CM, "default", "owner"))
      -- the owner is no less alive for its own namespace
      assert(c:create(CM, cm("at-home", { ref(owner) })))
      assert(c:create(CM, cm("elsewhere2", { ref(owner) }, "other")))
      env.eventually("second cross-namespace dependent collected", env.gone(CM, "elsewhere2", "other"))
      env.settle()
      assert.truthy(c:get(CM, "default", "at-home"))
      -- a cluster-scoped object naming a namespaced owner is left alone
      assert(c:create("v1/Namespace", { apiVersion = "v1", kind = "Namespace",
        metadata = { name = "owned-ns", ownerReferences = json.array({ ref(owner) }) } }))
      assert(c:delete(CM, "default", "owner"))
      env.eventually("at-home collected", env.gone(CM, "at-home"))
      env.settle()
      assert.truthy(c:get("v1/Namespace", nil, "owned-ns"))
      -- a cluster-scoped owner (a Namespace) of a namespaced dependent
      local ns = assert(c:create("v1/Namespace", { apiVersion = "v1", kind = "Namespace",
        metadata = { name = "owner-ns" } }))
      assert(c:create(CM, cm("by-ns", { ref(ns) })))
      env.settle()
      assert.truthy(c:get(CM, "default", "by-ns"))
      assert(env.store:delete("namespaces", "", "owner-ns", {}))
      env.eventually("dependent of a cluster-scoped owner collected", env.gone(CM, "by-ns"))
    end)
  end)

  it("collects the dependents of a custom kind", function()
    with_gc(function(env)
      local c = env.client
      local w = assert(c:create(WIDGET, { apiVersion = "test.moonlet.dev/v1", kind = "Widget",
        metadata = { name = "w", namespace = "default" } }))
      assert(c:create(CM, cm("w-config", { ref(w, true) })))
      local w2 = assert(c:create(WIDGET, { apiVersion = "test.moonlet.dev/v1", kind = "Widget",
        metadata = { name = "w2", namespace = "default" } }))
      assert(c:create(CM, cm("w2-config", { ref(w2, true) })))
      env.settle()
      assert(c:delete(WIDGET, "default", "w"))
      env.eventually("w-config collected", env.gone(CM, "w-config"))
      assert(c:delete(WIDGET, "default", "w2", { propagation_policy = "Foreground" }))
      env.eventually("w2 gone", env.gone(WIDGET, "w2"))
      assert.is_nil(c:get(CM, "default", "w2-config"))
    end)
  end)

  it("finds dependents through its index, not by listing every kind", function()
    with_gc(function(env)
      local c = env.client
      local owner = assert(c:create(CM, cm("owner")))
      assert(c:create(CM, cm("dep", { ref(owner) })))
      env.settle()
      local calls = {}
      local orig = c._call
      c._call = function(self, method, path, ...)
        calls[#calls + 1] = method .. " " .. path
        return orig(self, method, path, ...)
      end
      assert(c:delete(CM, "default", "owner"))
      env.eventually("dep collected", env.gone(CM, "dep"))
      c._call = orig
      for _, line in ipairs(calls) do
        assert.is_nil(line:match("^GET [^?]*s$"), "no list: " .. line)
      end
    end)
  end)
end)

describe("garbage collector start", function()
  it("collects nothing before every cache has synced, and checks owners live", function()
    fake.run(function()
      local stack = api_stack.new()
      local c = stack.client
      local ns = assert(c:create("v1/Namespace", { apiVersion = "v1", kind = "Namespace",
        metadata = { name = "owner-ns" } }))
      local dep = assert(c:create(CM, cm("by-ns", { ref(ns) })))
      -- the Namespace list fails until allowed: that cache does not sync
      local allow = false
      local proxy = setmetatable({
        list = function(_, kind, o)
          if kind == "v1/Namespace" and not allow then return nil, { code = 500, message = "not yet" } end
          return c:list(kind, o)
        end,
      }, { __index = function(_, k)
        local f = c[k]
        if type(f) == "function" then return function(_, ...) return f(c, ...) end end
        return f
      end })
      local m = manager.new({ client = proxy, log = function() end,
        informer_backoff = { initial = 0.01, max = 0.05 } })
      local ctl = m:add(stack.loaded.controllers["garbagecollector"].value)
      m:start()
      loop.sleep(300)
      assert.are.equal(0, ctl.stats.reconciles)
      assert.is_false(ctl.queue:idle())
      allow = true
      assert.is_true(m:wait_idle(5, 40))
      assert.is_true(ctl.stats.reconciles > 0)
      assert.truthy(c:get(CM, "default", "by-ns"))
      -- a stale cache that lost the owner: the live read keeps the dependent
      local n0 = ctl.stats.reconciles
      ctl.ctx.gc.graph:remove(ns.metadata.uid)
      ctl.queue:add("d:" .. dep.metadata.uid)
      assert.is_true(m:wait_idle(5, 40))
      assert.are.equal(n0 + 1, ctl.stats.reconciles)
      assert.truthy(c:get(CM, "default", "by-ns"))
      m:stop()
      require("moonlet.api.handlers").stop_watches()
      loop.sleep(5)
      stack.store:close()
    end)
  end)
end)

describe("API server deletion policy", function()
  it("adds the finalizer of the policy, and a later delete can switch it", function()
    with_gc(function(env)
      local c = env.client
      local owner = cm("owner")
      owner.metadata.finalizers = json.array({ "example.com/hold" })
      assert(c:create(CM, owner))
      local res = assert(c:delete(CM, "default", "owner", { propagation_policy = "Orphan" }))
      assert.are.same({ "example.com/hold", "orphan" }, res.metadata.finalizers)
      env.settle()
      -- the collector took `orphan` off; the foreign finalizer stays
      assert.are.same({ "example.com/hold" }, assert(c:get(CM, "default", "owner")).metadata.finalizers)
      res = assert(c:delete(CM, "default", "owner", { propagation_policy = "Foreground" }))
      assert.are.same({ "example.com/hold", "foregroundDeletion" }, res.metadata.finalizers)
      env.settle()
      assert(c:patch(CM, "default", "owner", "merge", { metadata = { finalizers = json.null } }))
      env.eventually("owner gone", env.gone(CM, "owner"))
    end)
  end)

  it("refuses bad DeleteOptions as Kubernetes does", function()
    with_gc(function(env)
      local c = env.client
      assert(c:create(CM, cm("x")))
      local ok, st = c:delete(CM, "default", "x", { propagation_policy = "Sideways" })
      assert.is_nil(ok)
      assert.are.equal(422, st.code)
      assert.are.equal('DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: '
        .. '"Sideways": supported values: "Foreground", "Background", "Orphan", "nil"', st.message)
      local res = assert(c:raw("DELETE", "/api/v1/namespaces/default/configmaps/x?orphanDependents=true",
        { propagationPolicy = "Orphan" }))
      assert.are.equal(422, res.status)
      assert.truthy(res.body:find("orphanDependents and deletionPropagation cannot be both set", 1, true))
      assert.truthy(c:get(CM, "default", "x"))
    end)
  end)

  it("answers a Job delete without a policy with the warning, and orphans its pods", function()
    with_gc(function(env)
      local c = env.client
      kinds.register({ group = "batch", version = "v1", kind = "Job", plural = "jobs" }, "spec")
      assert(c:discovery(true))
      local job = assert(c:create("batch/v1/Job", { apiVersion = "batch/v1", kind = "Job",
        metadata = { name = "j", namespace = "default" } }))
      assert(c:create(CM, cm("j-out", { ref(job, true) })))
      local res = assert(c:raw("DELETE", "/apis/batch/v1/namespaces/default/jobs/j"))
      assert.are.equal(202, res.status) -- marked, not yet removed
      assert.are.equal('299 - "' .. require("moonlet.api.gc").JOB_WARNING .. '"', res.headers.warning)
      env.eventually("job gone", env.gone("batch/v1/Job", "j"))
      local out = assert(c:get(CM, "default", "j-out"))
      assert.is_nil(out.metadata.ownerReferences)
      -- an explicit policy: no warning
      job = assert(c:create("batch/v1/Job", { apiVersion = "batch/v1", kind = "Job",
        metadata = { name = "k", namespace = "default" } }))
      res = assert(c:raw("DELETE", "/apis/batch/v1/namespaces/default/jobs/k?propagationPolicy=Background"))
      assert.is_nil(res.headers.warning)
    end)
  end)

  it("defaults a batch Job to Orphan with the API warning", function()
    local gc = require("moonlet.api.gc")
    local job = { group = "batch", kind = "Job" }
    local policy, warning = gc.default_policy(job)
    assert.are.equal("Orphan", policy)
    assert.are.equal("child pods are preserved by default when jobs are deleted; set propagationPolicy=Background "
      .. "to remove them or set propagationPolicy=Orphan to suppress this warning", warning)
    local fins, w = gc.deletion_finalizers(job, { metadata = {} }, {})
    assert.are.same({ "orphan" }, fins)
    assert.are.equal(warning, w)
    fins, w = gc.deletion_finalizers(job, { metadata = {} }, { propagationPolicy = "Background" })
    assert.is_nil(fins)
    assert.is_nil(w)
    assert.are.equal("Background", (gc.default_policy({ group = "apps", kind = "ReplicaSet" })))
    -- orphanDependents=false is Background; a GC finalizer on the object wins over the default
    assert.is_nil((gc.deletion_finalizers(job, { metadata = {} }, { orphanDependents = false })))
    assert.is_nil((gc.deletion_finalizers(job, { metadata = { finalizers = { "foregroundDeletion" } } }, {})))
    assert.are.same({ "orphan" },
      (gc.deletion_finalizers({ group = "apps", kind = "ReplicaSet" },
        { metadata = { finalizers = { "foregroundDeletion" } } }, { orphanDependents = true })))
  end)
end)
