-- The Deployment controller's pure helpers: pod-template-hash (FNV-32a,
-- safe alphabet, collisionCount), int-or-percent fenceposts with
-- Kubernetes' rounding, revision bookkeeping, proportional scaling and the
-- status/condition arithmetic.
require("moonlet_core")
local json = require("moonlet.json")
local du = require("moonlet.controller.deployment_util")

local function template(extra)
  local t = {
    metadata = { labels = { app = "kubia" } },
    spec = { containers = { { name = "kubia", image = "idealism/kubia",
      ports = { { containerPort = 8080, protocol = "TCP" } } } }, restartPolicy = "Always" },
  }
  for k, v in pairs(extra or {}) do t.spec[k] = v end
  return t
end

local function rs(name, replicas, anns, st, ts)
  return { metadata = { name = name, uid = name, annotations = anns or {},
                        creationTimestamp = ts or "2024-01-01T00:00:00Z" },
           spec = { replicas = replicas, template = template() }, status = st or {} }
end

local function deploy(replicas, strategy, st)
  return { metadata = { name = "kubia", generation = 1, annotations = {} },
           spec = { replicas = replicas, template = template(),
                    strategy = strategy or { type = "RollingUpdate",
                      rollingUpdate = { maxSurge = "25%", maxUnavailable = "25%" } } },
           status = st or {} }
end

describe("pod-template-hash", function()
  it("is FNV-32a", function()
    assert.are.equal(0x811c9dc5, du.fnv32a(""))
    assert.are.equal(0xe40c292c, du.fnv32a("a"))
    assert.are.equal(0xbf9cf968, du.fnv32a("foobar"))
  end)

  it("maps decimal digits into the safe alphabet", function()
    assert.are.equal("456789bcdf", du.safe_encode("0123456789"))
  end)

  it("is stable, independent of key order and empty fields, and changes with the template", function()
    local a = du.compute_hash(template())
    assert.truthy(a:match("^[bcdfghjklmnpqrstvwxz2456789]+$"))
    assert.is_true(#a >= 1 and #a <= 10)
    -- same content, built in another order, through a JSON round trip, with empty maps
    local b = json.decode(json.encode({ spec = template().spec, metadata = { annotations = {},
      labels = { app = "kubia" } } }))
    assert.are.equal(a, du.compute_hash(b))
    assert.are_not.equal(a, du.compute_hash(template({ dnsPolicy = "Default" })))
    -- known value: a regression here would rename every ReplicaSet on upgrade
    assert.are.equal(du.safe_encode(string.format("%d", du.fnv32a(du.canonical(template())))), a)
  end)

  it("mixes in the collision count", function()
    local a, b, c = du.compute_hash(template()), du.compute_hash(template(), 0), du.compute_hash(template(), 1)
    assert.are_not.equal(a, b)
    assert.are_not.equal(b, c)
    assert.are.equal(c, du.compute_hash(template(), 1))
  end)
end)

describe("fenceposts", function()
  it("rounds surge up and unavailable down; both zero makes unavailable 1", function()
    for _, case in ipairs({ { 10, 3, 2 }, { 4, 1, 1 }, { 3, 1, 0 }, { 1, 1, 0 }, { 100, 25, 25 } }) do
      local s, u = du.resolve_fenceposts("25%", "25%", case[1])
      assert.are.same({ case[2], case[3] }, { s, u }, "replicas " .. case[1])
    end
    assert.are.same({ 0, 1 }, { du.resolve_fenceposts(0, 0, 10) })
    assert.are.same({ 0, 1 }, { du.resolve_fenceposts("0%", "0%", 10) })
    assert.are.same({ 2, 3 }, { du.resolve_fenceposts(2, 3, 10) })
    local none, err = du.scaled_value("abc", 10, true)
    assert.is_nil(none)
    assert.truthy(err:find("not a percentage", 1, true))
  end)

  it("resolves per deployment: Recreate has none, unavailable never exceeds replicas", function()
    assert.are.equal(0, du.max_unavailable(deploy(4, { type = "Recreate" })))
    assert.are.equal(0, du.max_surge(deploy(4, { type = "Recreate" })))
    assert.are.equal(2, du.max_unavailable(deploy(2, { type = "RollingUpdate",
      rollingUpdate = { maxSurge = 1, maxUnavailable = 5 } })))
    assert.are.equal(0, du.max_unavailable(deploy(0)))
  end)
end)

describe("new replica set sizing", function()
  it("scales the new set up within maxSurge", function()
    local d = deploy(10)
    local old, new = rs("old", 10), rs("new", 0)
    assert.are.equal(3, du.new_rs_new_replicas(d, { old, new }, new))
    new.spec.replicas = 3
    assert.are.equal(3, du.new_rs_new_replicas(d, { old, new }, new))
    old.spec.replicas = 8
    assert.are.equal(5, du.new_rs_new_replicas(d, { old, new }, new))
    assert.are.equal(10, du.new_rs_new_replicas(deploy(10, { type = "Recreate" }), { old, new }, new))
  end)

  it("finds the new set ignoring the hash label, oldest first", function()
    local d = deploy(3)
    local a = rs("a", 1, nil, nil, "2024-01-01T00:00:02Z")
    local b = rs("b", 1, nil, nil, "2024-01-01T00:00:01Z")
    b.spec.template.metadata.labels[du.HASH_LABEL] = "xyz"
    local c = rs("c", 1)
    c.spec.template.spec.containers[1].image = "other"
    assert.are.equal(b, du.find_new(d, { a, b, c }))
    local required, all = du.find_old(d, { a, b, c })
    assert.are.equal(2, #required)
    assert.are.equal(2, #all)
  end)
end)

describe("revisions", function()
  it("renumbers a reused set and keeps its history", function()
    local d = deploy(3)
    d.metadata.annotations = { [du.CHANGE_CAUSE] = "kubectl set image", [du.REVISION] = "9",
      ["kubectl.kubernetes.io/last-applied-configuration"] = "{}" }
    local r = rs("r", 1, { [du.REVISION] = "1" })
    assert.is_true(du.set_new_rs_annotations(d, r, 3, true))
    local a = r.metadata.annotations
    assert.are.same({ "3", "1", "kubectl set image" }, { a[du.REVISION], a[du.REVISION_HISTORY], a[du.CHANGE_CAUSE] })
    assert.is_nil(a["kubectl.kubernetes.io/last-applied-configuration"])
    assert.is_nil(a[du.DESIRED]) -- existing sets get replica annotations when scaled
    assert.is_true(du.set_new_rs_annotations(d, r, 5, true))
    assert.are.equal("1,3", r.metadata.annotations[du.REVISION_HISTORY])
    assert.is_false(du.set_new_rs_annotations(d, r, 5, true))
    assert.is_false(du.set_new_rs_annotations(d, r, 2, true)) -- never lowered

    local fresh = rs("f", 0, {})
    du.set_new_rs_annotations(deploy(10), fresh, 1, false)
    assert.are.same({ "1", "10", "13" }, { fresh.metadata.annotations[du.REVISION],
      fresh.metadata.annotations[du.DESIRED], fresh.metadata.annotations[du.MAX] })
    assert.are.equal(5, du.max_revision({ r, fresh }))
  end)
end)

describe("proportional scaling", function()
  it("spreads a replica change over the active sets by their max-replicas share", function()
    local d = deploy(12)
    local old = rs("old", 8, { [du.MAX] = "13" }, nil, "2024-01-01T00:00:00Z")
    local new = rs("new", 5, { [du.MAX] = "13" }, nil, "2024-01-01T00:00:05Z")
    local sizes, op = du.proportional_sizes(d, { old, new })
    assert.are.equal("up", op)
    local by = {}
    for _, e in ipairs(sizes) do by[e.rs.metadata.name] = e.size end
    assert.are.same({ old = 9, new = 6 }, by)

    -- scaling down to 0 empties them all
    sizes = du.proportional_sizes(deploy(0), { old, new })
    for _, e in ipairs(sizes) do assert.are.equal(0, e.size) end
  end)

  it("picks the only active set, else the newest", function()
    local a = rs("a", 0, nil, nil, "2024-01-01T00:00:00Z")
    local b = rs("b", 0, nil, nil, "2024-01-01T00:00:09Z")
    assert.are.equal(b, du.find_active_or_latest(nil, { a, b }))
    a.spec.replicas = 2
    assert.are.equal(a, du.find_active_or_latest(b, { a }))
    b.spec.replicas = 1
    assert.is_nil(du.find_active_or_latest(b, { a }))
  end)
end)

describe("status", function()
  it("counts replicas and sets Available with Kubernetes' messages", function()
    local d = deploy(4)
    local old = rs("old", 1, nil, { replicas = 1, readyReplicas = 1, availableReplicas = 1 })
    local new = rs("new", 4, nil, { replicas = 4, readyReplicas = 2, availableReplicas = 2 })
    local st = du.calculate_status({ old, new }, new, d, 1000)
    assert.are.same({ 5, 4, 3, 3, 2, 1 }, { st.replicas, st.updatedReplicas, st.readyReplicas,
      st.availableReplicas, st.unavailableReplicas, st.observedGeneration })
    local c = du.get_condition(st, "Available")
    assert.are.same({ "True", "MinimumReplicasAvailable", "Deployment has minimum availability." },
      { c.status, c.reason, c.message })
    old.status.availableReplicas, new.status.availableReplicas = 0, 2
    st = du.calculate_status({ old, new }, new, d, 1000)
    c = du.get_condition(st, "Available")
    assert.are.same({ "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability." },
      { c.status, c.reason, c.message })
  end)

  it("keeps lastTransitionTime when only the reason changes and times out after the deadline", function()
    local st = { conditions = json.array({}) }
    du.set_condition(st, du.condition("Progressing", "True", "NewReplicaSetCreated", "x", 100))
    du.set_condition(st, du.condition("Progressing", "True", "ReplicaSetUpdated", "y", 200))
    local c = du.get_condition(st, "Progressing")
    assert.are.same({ "ReplicaSetUpdated", du.timestamp(100), du.timestamp(200) },
      { c.reason, c.lastTransitionTime, c.lastUpdateTime })
    local d = deploy(1)
    d.spec.progressDeadlineSeconds = 10
    assert.is_false(du.timed_out(d, st, 205))
    assert.is_true(du.timed_out(d, st, 211))
    assert.is_true(du.complete(deploy(2), { updatedReplicas = 2, replicas = 2, availableReplicas = 2,
      observedGeneration = 1 }))
    assert.is_false(du.complete(deploy(2), { updatedReplicas = 2, replicas = 3, availableReplicas = 2,
      observedGeneration = 1 }))
  end)
end)
