-- The pods-per-second paths of the controllers and the API: informer
-- snapshots in C, merge patches computed from two states, writes whose
-- answer is not decoded, the manager's primary filter and uncopied maps,
-- the scheduler's running host-port and pod counts, and the API's
-- patch-only schema walk (whose messages must match the whole-object walk).
require("moonlet_core")
local json = require("moonlet.json")
local util = require("moonlet.controller.util")
local manager = require("moonlet.controller.manager")
local fake = require("fake_client")

local run = fake.run

local function stack() return require("api_stack").new() end

local function pod(name, extra)
  local p = { apiVersion = "v1", kind = "Pod", metadata = { name = name, namespace = "default" },
    spec = { containers = { { name = "c", image = "busybox", command = { "sleep", "9" } } } } }
  for k, v in pairs(extra or {}) do p.spec[k] = v end
  return p
end

describe("controller fast paths", function()
  it("util.copy is a deep copy that keeps the codec's array/object marks", function()
    local src = json.decode('{"a":[],"b":{},"c":[{"d":1}],"e":"x"}')
    local c = util.copy(src)
    assert.are.equal(json.encode(src, { sort_keys = true }), json.encode(c, { sort_keys = true }))
    assert.are_not.equal(src.c, c.c)
    c.c[1].d = 2
    assert.are.equal(1, src.c[1].d)
    assert.are.equal(7, util.copy(7))
    assert.is_nil(util.copy(nil))
  end)

  it("util.merge_patch turns one state into the other under a JSON merge patch", function()
    local patch = require("moonlet.api.patch")
    local cases = {
      { {}, { active = 1 } },
      { { active = 1, startTime = "t" }, { startTime = "t", succeeded = 1 } },
      { { uncounted = { succeeded = json.array({ "u1" }) } }, { uncounted = json.object({}) } },
      { { conditions = json.array({ { type = "A" } }) }, { conditions = json.array({ { type = "A" }, { type = "B" } }) } },
      { { a = { b = { c = 1, d = 2 } } }, { a = { b = { c = 1 } } } },
      { { x = 1 }, { x = 1 } },
    }
    for i, case in ipairs(cases) do
      local old, new = case[1], case[2]
      local p = util.merge_patch(old, new)
      local got = patch.merge(json.decode(json.encode(old)), json.decode(json.encode(p)))
      assert.are.equal(json.encode(new, { sort_keys = true }), json.encode(got, { sort_keys = true }),
        "case " .. i)
    end
    assert.are.same({}, util.merge_patch({ x = 1 }, { x = 1 }))
    -- only what changed is sent
    assert.are.same({ b = 2 }, util.merge_patch({ a = 1, b = 1 }, { a = 1, b = 2 }))
  end)

  it("util.write_unread: true, a Status on failure, the typed call for other clients", function()
    run(function()
      local s = stack()
      assert(s.client:create("v1/Pod", pod("w")))
      local ok, st = util.write_unread(s.client, "v1/Pod", "default", "w", "status", "PATCH",
        { status = { message = "hi" } }, "application/merge-patch+json", function() error("not used") end)
      assert.is_true(ok)
      assert.are.equal("hi", s.client:get("v1/Pod", "default", "w").status.message)
      ok, st = util.write_unread(s.client, "v1/Pod", "default", "gone", "status", "PATCH",
        { status = {} }, "application/merge-patch+json", function() error("not used") end)
      assert.is_nil(ok)
      assert.are.equal(404, st.code)
      assert.are.equal("NotFound", st.reason)
      -- a stale resourceVersion is a conflict, as for the PUT it replaces
      ok, st = util.write_unread(s.client, "v1/Pod", "default", "w", "status", "PATCH",
        { metadata = { resourceVersion = "1" }, status = {} }, "application/merge-patch+json", function() end)
      assert.is_nil(ok)
      assert.are.equal(409, st.code)
      local called = false
      assert.are.equal("typed", util.write_unread({}, "v1/Pod", "default", "w", nil, "PUT", {}, nil,
        function() called = true return "typed" end))
      assert.is_true(called)
    end)
  end)

  it("a filter keeps unwanted changes of the primary kind away; maps get the cached object", function()
    run(function()
      local c = fake.new()
      local m = manager.new({ client = c, log = function() end, informer_backoff = { initial = 0.01, max = 0.05 } })
      local seen, mapped = {}, {}
      local ctl = m:add({ name = "f", kind = "v1/Pod",
        filter = function(p) return (p.metadata.labels or {}).skip ~= "yes" end,
        watches = { { kind = "apps/v1/ReplicaSet", map = function(rs) mapped[#mapped + 1] = rs return nil end } },
        reconcile = function(_, key) seen[#seen + 1] = key end })
      m:start()
      c:create("v1/Pod", { apiVersion = "v1", kind = "Pod", metadata = { namespace = "d", name = "a" }, spec = {} })
      local b = c:create("v1/Pod", { apiVersion = "v1", kind = "Pod",
        metadata = { namespace = "d", name = "b", labels = { skip = "yes" } }, spec = {} })
      c:create("apps/v1/ReplicaSet", { apiVersion = "apps/v1", kind = "ReplicaSet",
        metadata = { namespace = "d", name = "r" }, spec = {} })
      assert.is_true(m:wait_idle(3))
      assert.are.same({ "d/a" }, seen)
      -- a change that passes the filter wakes it; a delete always does
      b.metadata.labels.skip = "no"
      c:update("v1/Pod", b)
      assert.is_true(m:wait_idle(3))
      assert.are.same({ "d/a", "d/b" }, seen)
      assert(c:delete("v1/Pod", "d", "a"))
      assert.is_true(m:wait_idle(3))
      assert.are.same({ "d/a", "d/b", "d/a" }, seen)
      assert.are.equal(3, ctl.stats.reconciles)
      assert.are.equal(1, #mapped)
      assert.are.equal(m:informer("apps/v1/ReplicaSet"):peek("d/r"), mapped[1])
      m:stop()
    end)
  end)

  it("readonly plugins read the cached objects; others get copies", function()
    run(function()
      local c = fake.new()
      local m = manager.new({ client = c, log = function() end, informer_backoff = { initial = 0.01, max = 0.05 } })
      local got = {}
      local function plugin(name, readonly)
        return { name = name, kind = "apps/v1/ReplicaSet", owns = { "v1/Pod" }, readonly = readonly,
          reconcile = function(ctx, key, rs)
            got[name] = { rs = rs, owned = ctx:owned("v1/Pod", rs.metadata.uid, "d"),
              listed = ctx:list("v1/Pod", { namespace = "d" }), one = ctx:get("v1/Pod", "d", "p") }
          end }
      end
      m:add(plugin("ro", true))
      m:add(plugin("rw", false))
      local rs = c:create("apps/v1/ReplicaSet", { apiVersion = "apps/v1", kind = "ReplicaSet",
        metadata = { namespace = "d", name = "r" }, spec = {} })
      c:create("v1/Pod", { apiVersion = "v1", kind = "Pod", metadata = { namespace = "d", name = "p",
        ownerReferences = { { apiVersion = "apps/v1", kind = "ReplicaSet", name = "r", uid = rs.metadata.uid,
          controller = true } } }, spec = {} })
      m:start()
      assert.is_true(m:wait_idle(3))
      local rsi, podi = m:informer("apps/v1/ReplicaSet"), m:informer("v1/Pod")
      assert.are.equal(rsi:peek("d/r"), got.ro.rs)
      assert.are.equal(podi:peek("d/p"), got.ro.owned[1])
      assert.are.equal(podi:peek("d/p"), got.ro.listed[1])
      assert.are.equal(podi:peek("d/p"), got.ro.one)
      assert.are_not.equal(rsi:peek("d/r"), got.rw.rs)
      assert.are_not.equal(podi:peek("d/p"), got.rw.owned[1])
      assert.are_not.equal(podi:peek("d/p"), got.rw.listed[1])
      assert.are_not.equal(podi:peek("d/p"), got.rw.one)
      assert.are.equal("p", got.rw.owned[1].metadata.name)
      m:stop()
    end)
  end)

  it("the scheduler counts host ports of bound pods as they come, change and end", function()
    run(function()
      local s = stack()
      local m = require("moonlet.controller").new({ client = s.client, log = function() end })
      local ctl = m:add(s.loaded.controllers["scheduler"].value)
      m:start()
      local n = assert(s.client:create("v1/Node", { apiVersion = "v1", kind = "Node", metadata = { name = "a" } }))
      n.status = { conditions = { { type = "Ready", status = "True" } } }
      assert(s.client:update_status("v1/Node", n))
      local function hp(name)
        local p = pod(name)
        p.spec.containers[1].ports = { { containerPort = 8080, hostPort = 39991 } }
        return p
      end
      assert(s.client:create("v1/Pod", hp("first")))
      assert.is_true(m:wait_idle(5))
      local first = s.client:get("v1/Pod", "default", "first")
      assert.are.equal("a", first.spec.nodeName)
      assert(s.client:create("v1/Pod", hp("second")))
      assert.is_true(m:wait_idle(5))
      assert.is_nil(s.client:get("v1/Pod", "default", "second").spec.nodeName)
      local ev = s.client:list("v1/Event", { namespace = "default", field_selector = "involvedObject.name=second" })
      assert.matches("didn't have free ports for the requested pod ports", ev.items[1].message, 1, true)
      -- changes of the bound pod do not make the scheduler look at it again
      local before = ctl.stats.reconciles
      for i = 1, 3 do
        first = s.client:get("v1/Pod", "default", "first")
        first.metadata.labels = { n = tostring(i) }
        assert(s.client:update("v1/Pod", first))
      end
      assert.is_true(m:wait_idle(5))
      -- (the waiting pod is looked at again for each: a bound pod changed)
      assert.is_true(ctl.stats.reconciles - before <= 3)
      -- the first pod ends: its port is free, the waiting pod gets the node
      first = s.client:get("v1/Pod", "default", "first")
      first.status.phase = "Succeeded"
      assert(s.client:update_status("v1/Pod", first))
      assert.is_true(m:wait_idle(5))
      assert.are.equal("a", s.client:get("v1/Pod", "default", "second").spec.nodeName)
      m:stop()
    end)
  end)

  it("the scheduler counts a pod on its node when it binds it, before the informer brings it back",
    function()
      run(function()
        local s = stack()
        for _, name in ipairs({ "a", "b" }) do
          local n = assert(s.client:create("v1/Node", { apiVersion = "v1", kind = "Node", metadata = { name = name } }))
          n.status = { conditions = { { type = "Ready", status = "True" } } }
          assert(s.client:update_status("v1/Node", n))
        end
        -- A burst waiting before the scheduler starts: one reconcile after
        -- the other, with no informer update in between.
        for i = 1, 6 do assert(s.client:create("v1/Pod", pod("p" .. i))) end
        local function hp(name)
          local p = pod(name)
          p.spec.containers[1].ports = { { containerPort = 8080, hostPort = 39992 } }
          p.spec.affinity = { nodeAffinity = { requiredDuringSchedulingIgnoredDuringExecution = {
            nodeSelectorTerms = { { matchFields = { { key = "metadata.name", operator = "In", values = { "a" } } } } } } } }
          return p
        end
        assert(s.client:create("v1/Pod", hp("port1")))
        assert(s.client:create("v1/Pod", hp("port2")))
        local m = require("moonlet.controller").new({ client = s.client, log = function() end })
        m:add(s.loaded.controllers["scheduler"].value)
        m:start()
        assert.is_true(m:wait_idle(5))
        local per = {}
        for i = 1, 6 do
          local n = s.client:get("v1/Pod", "default", "p" .. i).spec.nodeName
          per[n] = (per[n] or 0) + 1
        end
        -- The port pods land on "a" (or wait), so a and b share the rest
        -- about evenly: never all on one.
        assert.is_true((per.a or 0) >= 2 and (per.b or 0) >= 3, require("moonlet.json").encode(per))
        local bound = 0
        for _, name in ipairs({ "port1", "port2" }) do
          if s.client:get("v1/Pod", "default", name).spec.nodeName then bound = bound + 1 end
        end
        assert.are.equal(1, bound) -- one host port 39992 on node a
        m:stop()
      end)
    end)

  it("a merge patch is judged by its own fields: warnings, drops and type errors as before", function()
    run(function()
      local s = stack()
      local warnings = {}
      s.client.on_warning = function(w) warnings[#warnings + 1] = w end
      assert(s.client:create("v1/Pod", pod("p")))
      -- clean patch: applied, no warning
      assert(s.client:patch("v1/Pod", "default", "p", "merge", { metadata = { labels = { a = "1" } } }))
      assert.are.same({}, warnings)
      -- an unknown field: warned about (Warn) and dropped
      local res = assert(s.client:patch("v1/Pod", "default", "p", "merge",
        { metadata = { labels = { a = "2" } }, spec = { bogus = 1 } }))
      assert.are.same({ 'unknown field "spec.bogus"' }, warnings)
      assert.is_nil(res.spec.bogus)
      assert.are.equal("2", res.metadata.labels.a)
      -- Strict: 400 naming the field
      local _, st = s.client:patch("v1/Pod", "default", "p", "merge", { spec = { bogus = 1 } },
        { field_validation = "Strict" })
      if st then
        assert.are.equal(400, st.code)
        assert.matches('unknown field "spec.bogus"', st.message, 1, true)
      end
      -- a wrong type: the decoder's message, with the Go field path
      _, st = s.client:patch("v1/Pod", "default", "p", "merge", { spec = { containers = { { name = 5 } } } })
      assert.are.equal(400, st.code)
      assert.matches("cannot unmarshal number into Go struct field Container.spec.containers.name of type string",
        st.message, 1, true)
      -- a status patch leaves the spec as stored
      res = assert(s.client:patch("v1/Pod", "default", "p", "merge",
        { spec = { activeDeadlineSeconds = 5 }, status = { message = "m" } }, { subresource = "status" }))
      assert.are.equal("m", res.status.message)
      assert.is_nil(res.spec.activeDeadlineSeconds)
    end)
  end)
end)
