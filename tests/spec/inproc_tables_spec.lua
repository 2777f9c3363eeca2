-- The in-process transport takes request bodies as Lua tables (no encode
-- and decode per write): every write path copies what it is handed, so
-- the caller's tables never change, and each answers as it does to JSON
-- text. Also the client's memo of kinds, which follows a new discovery.
require("moonlet_core")
local json = require("moonlet.json")
local stack_mod = require("api_stack")
local fake = require("fake_client") -- for fake.run only

local function deep_equal(a, b)
  return json.encode(a, { sort_keys = true }) == json.encode(b, { sort_keys = true })
end

describe("in-process writes with table bodies", function()
  local s, c
  before_each(function()
    s = stack_mod.new()
    c = s.client
  end)

  it("is what the in-process transport offers, and only it", function()
    assert.is_true(s.transport.tables)
    local t = { a = 1 }
    assert.are.equal(t, c:_body(t))
    local http_like = require("moonlet.client").new({ transport = function() end })
    assert.are.equal('{"a":1}', http_like:_body(t))
  end)

  it("create: the caller's object is left as it was", function()
    fake.run(function()
      local cm = { apiVersion = "v1", kind = "ConfigMap",
        metadata = { name = "a", namespace = "default", labels = { x = "1" } }, data = { k = "v" } }
      local before = json.encode(cm, { sort_keys = true })
      local got = assert(c:create("v1/ConfigMap", cm))
      assert.are.equal(before, json.encode(cm, { sort_keys = true }))
      assert.is_string(got.metadata.uid)
      assert.are.equal("1", got.metadata.labels.x)
      assert.are.equal("v", got.data.k)
      -- the same table again: its name is still the caller's, so it conflicts
      local _, st = c:create("v1/ConfigMap", cm)
      assert.are.equal(409, st.code)
    end)
  end)

  it("create from one template twice: two objects, the template untouched", function()
    fake.run(function()
      local tpl = { apiVersion = "v1", kind = "Pod", metadata = { generateName = "p-", namespace = "default" },
        spec = { containers = { { name = "c", image = "busybox" } } } }
      local before = json.encode(tpl, { sort_keys = true })
      local p1 = assert(c:create("v1/Pod", tpl))
      local p2 = assert(c:create("v1/Pod", tpl))
      assert.are_not.equal(p1.metadata.name, p2.metadata.name)
      assert.are.equal(before, json.encode(tpl, { sort_keys = true }))
      -- defaults went into the stored pods, not into the template
      assert.are.equal("Always", p1.spec.restartPolicy)
      assert.is_nil(tpl.spec.restartPolicy)
    end)
  end)

  it("merge and status patches apply, the patch table unchanged", function()
    fake.run(function()
      assert(c:create("v1/ConfigMap", { apiVersion = "v1", kind = "ConfigMap",
        metadata = { name = "b", namespace = "default" }, data = { k = "v", gone = "x" } }))
      local patch = { data = { k = "v2", gone = json.null } }
      local copy = json.decode(json.encode(patch))
      local got = assert(c:patch("v1/ConfigMap", "default", "b", "merge", patch))
      assert.are.equal("v2", got.data.k)
      assert.is_nil(got.data.gone)
      assert.is_true(deep_equal(copy, patch))
      local pod = assert(c:create("v1/Pod", { apiVersion = "v1", kind = "Pod",
        metadata = { name = "q", namespace = "default" },
        spec = { containers = { { name = "c", image = "busybox" } } } }))
      local st = { status = { phase = "Running", conditions = json.array({
        { type = "Ready", status = "True", lastProbeTime = json.null } }) } }
      local st_copy = json.decode(json.encode(st))
      local after = assert(c:patch("v1/Pod", "default", "q", "merge", st, { subresource = "status" }))
      assert.are.equal("Running", after.status.phase)
      assert.are.equal(pod.metadata.uid, after.metadata.uid)
      assert.is_true(deep_equal(st_copy, st))
      -- The patch is read in place, never kept: the stored object and a
      -- later write share nothing with it.
      st.status.phase = "Failed"
      st.status.conditions[1].status = "False"
      local again = assert(c:get("v1/Pod", "default", "q"))
      assert.are.equal("Running", again.status.phase)
      assert.are.equal("True", again.status.conditions[1].status)
      local patch2 = { metadata = { labels = { a = "1" } } }
      assert(c:patch("v1/Pod", "default", "q", "merge", patch2))
      patch2.metadata.labels.a = "2"
      assert.are.equal("1", assert(c:get("v1/Pod", "default", "q")).metadata.labels.a)
    end)
  end)

  it("a status merge patch: status merged, null removes, spec and a wrong kind as before", function()
    fake.run(function()
      local pod = assert(c:create("v1/Pod", { apiVersion = "v1", kind = "Pod",
        metadata = { name = "m", namespace = "default", labels = { a = "1" } },
        spec = { containers = { { name = "c", image = "busybox" } } } }))
      assert(c:patch("v1/Pod", "default", "m", "merge",
        { status = { phase = "Running", message = "hi", hostIP = "10.0.0.1" } }, { subresource = "status" }))
      local got = assert(c:patch("v1/Pod", "default", "m", "merge",
        { status = { message = json.null, reason = "R" }, spec = { activeDeadlineSeconds = 5 },
          metadata = { labels = { a = "2" } } }, { subresource = "status" }))
      assert.are.equal("Running", got.status.phase)
      assert.are.equal("10.0.0.1", got.status.hostIP)
      assert.are.equal("R", got.status.reason)
      assert.is_nil(got.status.message)
      assert.is_nil(got.spec.activeDeadlineSeconds)
      assert.are.equal("1", got.metadata.labels.a)
      assert.is_true(deep_equal(pod.spec, got.spec))
      local _, st = c:patch("v1/Pod", "default", "m", "merge", { apiVersion = "v2", status = { reason = "X" } },
        { subresource = "status" })
      assert.are.equal(400, st.code)
      -- status as a whole removed: qosClass goes too, which validation refuses
      _, st = c:patch("v1/Pod", "default", "m", "merge", { status = json.null }, { subresource = "status" })
      assert.are.equal(422, st.code)
      assert.truthy(st.message:find("status.qosClass", 1, true))
    end)
  end)

  it("binding, scale and delete options take tables too", function()
    fake.run(function()
      local pod = assert(c:create("v1/Pod", { apiVersion = "v1", kind = "Pod",
        metadata = { name = "r", namespace = "default" },
        spec = { containers = { { name = "c", image = "busybox" } } } }))
      assert.is_true(require("moonlet.kubelet.subresources").install())
      local r = assert(c:kind("v1/Pod"))
      local path = require("moonlet.client").path(r, "default", "r", "binding")
      local res = assert(c:raw("POST", path, { apiVersion = "v1", kind = "Binding",
        metadata = { name = "r", namespace = "default" }, target = { kind = "Node", name = "n1" } }))
      assert.are.equal(201, res.status)
      assert.are.equal("n1", assert(c:get("v1/Pod", "default", "r")).spec.nodeName)

      local labels = { app = "s" }
      assert(c:create("apps/v1/ReplicaSet", { apiVersion = "apps/v1", kind = "ReplicaSet",
        metadata = { name = "s", namespace = "default" },
        spec = { replicas = 1, selector = { matchLabels = labels }, template = {
          metadata = { labels = labels }, spec = { containers = { { name = "c", image = "busybox" } } } } } }))
      local rs = assert(c:kind("apps/v1/ReplicaSet"))
      local scale = { apiVersion = "autoscaling/v1", kind = "Scale",
        metadata = { name = "s", namespace = "default" }, spec = { replicas = 3 } }
      res = assert(c:raw("PUT", require("moonlet.client").path(rs, "default", "s", "scale"), scale))
      assert.are.equal(200, res.status)
      assert.are.equal(3, assert(c:get("apps/v1/ReplicaSet", "default", "s")).spec.replicas)
      assert.is_nil(scale.status)

      assert(c:create("v1/ConfigMap", { apiVersion = "v1", kind = "ConfigMap",
        metadata = { name = "keep", namespace = "default" } }))
      local _, st = c:delete("v1/ConfigMap", "default", "keep", { preconditions = { uid = "not-it" } })
      assert.are.equal(409, st.code)
      assert(c:get("v1/ConfigMap", "default", "keep"))
      assert(c:delete("v1/Pod", "default", "r", { grace_period_seconds = 0,
        preconditions = { uid = pod.metadata.uid } }))
    end)
  end)

  it("a body that is a list is refused as text would be", function()
    fake.run(function()
      local _, st = c:create("v1/ConfigMap", json.array({ 1, 2 }))
      assert.are.equal(400, st.code)
    end)
  end)
end)

describe("the client's memo of kinds", function()
  it("answers from the current discovery list, and follows a new one", function()
    fake.run(function()
      local c = stack_mod.new().client
      local r1 = assert(c:kind("v1/ConfigMap"))
      assert.are.equal(r1, assert(c:kind("v1/ConfigMap")))
      local list = assert(c:discovery(true))
      local r2 = assert(c:kind("v1/ConfigMap"))
      assert.are_not.equal(r1, r2)
      local found = false
      for _, r in ipairs(list) do if r == r2 then found = true end end
      assert.is_true(found)
      local _, st = c:kind("v1/NoSuchKind")
      assert.are.equal(404, st.code)
    end)
  end)
end)
