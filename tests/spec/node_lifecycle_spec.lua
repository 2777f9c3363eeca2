-- A node whose kubelet stops posting status goes NotReady: moonlet.node_health
-- (heartbeats as observed, Unknown conditions, unreachable taints) and the
-- node-lifecycle-controller plugin applying it, on a fake clock and client.
require("moonlet_core")
local health = require("moonlet.node_health")
local plugins = require("moonlet.plugins")

local function stamp(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end

local T0 = 1767225600 -- 2026-01-01T00:00:00Z

local function node(hb, ready, taints)
  return { apiVersion = "v1", kind = "Node", metadata = { name = "second", resourceVersion = "1" },
    spec = { taints = taints },
    status = { conditions = {
      { type = "MemoryPressure", status = "False", lastHeartbeatTime = stamp(hb), lastTransitionTime = stamp(T0) },
      { type = "Ready", status = ready or "True", reason = "KubeletReady", lastHeartbeatTime = stamp(hb),
        lastTransitionTime = stamp(T0) } } } }
end

describe("moonlet.node_health", function()
  it("times a node from when a new heartbeat is seen", function()
    local seen = {}
    local n = node(T0)
    assert.are.equal(T0, health.heartbeat(n))
    -- first sight: a full grace period from now, whatever the node's clock said
    assert.are.equal(40, health.observe(seen, n, T0 + 100, 40))
    assert.are.equal(10, health.observe(seen, n, T0 + 130, 40))
    assert.are.equal(-1, health.observe(seen, n, T0 + 141, 40))
    -- a new heartbeat starts the period again
    assert.are.equal(40, health.observe(seen, node(T0 + 1), T0 + 141, 40))
    assert.is_nil(health.observe(seen, { metadata = { name = "x" }, status = {} }, T0, 40))
  end)

  it("marks every condition Unknown, heartbeat kept", function()
    local conds = health.unknown_conditions(node(T0), T0 + 50)
    for _, c in ipairs(conds) do
      assert.are.equal("Unknown", c.status)
      assert.are.equal("NodeStatusUnknown", c.reason)
      assert.are.equal("Kubelet stopped posting node status.", c.message)
      assert.are.equal(stamp(T0), c.lastHeartbeatTime)
      assert.are.equal(stamp(T0 + 50), c.lastTransitionTime)
    end
    assert.are.equal("Unknown", health.ready({ status = { conditions = conds } }))
  end)

  it("adds and lifts the unreachable taints, keeping the others", function()
    local other = { key = "dedicated", value = "x", effect = "NoSchedule" }
    local t = health.taints(node(T0, "True", { other }), true, T0)
    assert.are.same({ other, { key = health.UNREACHABLE, effect = "NoSchedule" },
      { key = health.UNREACHABLE, effect = "NoExecute", timeAdded = stamp(T0) } }, t)
    assert.is_nil(health.taints(node(T0, "True", t), true, T0))
    assert.are.same({ other }, health.taints(node(T0, "True", t), false, T0))
    assert.is_nil(health.taints(node(T0, "True", { other }), false, T0))
  end)
end)

describe("node-lifecycle-controller", function()
  local loaded = plugins.load({})
  local ctl = loaded.controllers["nodelifecycle"].value

  local function ctx_at(now, writes)
    return {
      now = function() return now end,
      log = function() end,
      client = {
        update = function(_, kind, obj)
          writes[#writes + 1] = { "update", kind, obj.spec.taints }
          return obj
        end,
        update_status = function(_, kind, obj)
          writes[#writes + 1] = { "status", kind, health.ready(obj) }
          return obj
        end,
      },
    }
  end

  it("waits out the grace period, then marks the node NotReady and tainted", function()
    health.configure({ grace = 4 })
    local writes = {}
    local res = ctl.reconcile(ctx_at(T0, writes), "second", node(T0))
    assert.are.same({ requeue_after = 4.5 }, res)
    assert.are.same({}, writes)
    res = ctl.reconcile(ctx_at(T0 + 5, writes), "second", node(T0))
    assert.is_nil(res)
    assert.are.equal(2, #writes)
    assert.are.equal("update", writes[1][1])
    assert.are.equal(health.UNREACHABLE, writes[1][3][1].key)
    assert.are.same({ "status", "v1/Node", "Unknown" }, writes[2])
    -- Ready again (a new heartbeat): the taints go, the kubelet writes Ready
    local back = node(T0 + 6, "True", writes[1][3])
    writes = {}
    res = ctl.reconcile(ctx_at(T0 + 6, writes), "second", back)
    assert.are.same({ requeue_after = 4.5 }, res)
    assert.are.equal(1, #writes)
    assert.is_nil(writes[1][3])
    health.configure({})
    assert.are.equal(40, health.grace)
  end)
end)

describe("moonlet server --node-monitor-grace-period", function()
  it("defaults to Kubernetes' 40s and takes a duration", function()
    local server = require("moonlet.server")
    assert.are.equal(40, assert(server.parse_flags({ "server" })).node_grace)
    local o = assert(server.parse_flags({ "server", "--node-monitor-grace-period", "5s",
      "--node-status-update-frequency", "1s" }))
    assert.are.equal(5, o.node_grace)
    assert.are.equal(1, o.heartbeat)
    local _, err = server.parse_flags({ "server", "--node-monitor-grace-period=later" })
    assert.matches("%-%-node%-monitor%-grace%-period must be a positive duration", err)
  end)
end)

describe("taint-eviction-controller", function()
  local ctl = plugins.load({}).controllers["tainteviction"].value
  local UNREACH = { key = health.UNREACHABLE, effect = "NoExecute", timeAdded = stamp(T0) }

  local function pod(name, tolerations, extra)
    local p = { metadata = { name = name, namespace = "default", uid = "u-" .. name },
      spec = { nodeName = "second", tolerations = tolerations }, status = { phase = "Running" } }
    for k, v in pairs(extra or {}) do p[k] = v end
    return p
  end

  local function run(now, taints, pods)
    local deleted, events = {}, {}
    local ctx = {
      now = function() return now end,
      each_cached = function(_, kind, fn)
        assert.are.equal("v1/Pod", kind)
        for _, p in ipairs(pods) do fn(p) end
      end,
      event = function(_, obj, typ, reason, msg) events[#events + 1] = { obj.metadata.name, typ, reason, msg } end,
      client = { delete = function(_, kind, ns, name, opts)
        deleted[#deleted + 1] = name
        assert.are.equal("u-" .. name, opts.preconditions.uid)
        return true
      end },
    }
    local node = { metadata = { name = "second" }, spec = { taints = taints } }
    return ctl.reconcile(ctx, "second", node), deleted, events
  end

  local tol300 = { { key = health.UNREACHABLE, operator = "Exists", effect = "NoExecute", tolerationSeconds = 300 } }
  local forever = { { key = health.UNREACHABLE, operator = "Exists", effect = "NoExecute" } }
  local pods = {
    pod("plain"), pod("waits", tol300), pod("stays", forever),
    pod("elsewhere", nil, { spec = { nodeName = "first" } }),
    pod("going", nil, { metadata = { name = "going", namespace = "default", uid = "u-going",
      deletionTimestamp = stamp(T0) } }),
    pod("done", nil, { status = { phase = "Succeeded" } }),
  }

  it("leaves the pods of a node without NoExecute taints alone", function()
    local res, deleted = run(T0, { { key = "k", effect = "NoSchedule" } }, pods)
    assert.is_nil(res)
    assert.are.same({}, deleted)
  end)

  it("evicts at once what does not tolerate a taint, later what tolerates it for a while", function()
    local res, deleted, events = run(T0 + 1, { UNREACH }, pods)
    assert.are.same({ "plain" }, deleted)
    assert.are.same({ { "plain", "Normal", "TaintManagerEviction", "Marking for deletion Pod default/plain" } },
      events)
    -- 300 s from the taint's timeAdded, not from now
    assert.are.equal(299.1, res.requeue_after)
    res, deleted = run(T0 + 300, { UNREACH }, { pods[2], pods[3] })
    assert.are.same({ "waits" }, deleted)
    assert.is_nil(res) -- "stays" tolerates it forever
  end)

  it("takes the shortest of the tolerations that match, and 0 as at once", function()
    local tols = { { operator = "Exists", tolerationSeconds = 60 }, tol300[1] }
    assert.are.equal(T0 + 60, ctl.eviction_time(pod("p", tols), { UNREACH }, T0 + 5))
    assert.are.equal(T0, ctl.eviction_time(pod("p", { { operator = "Exists", tolerationSeconds = 0 } }),
      { UNREACH }, T0 + 5))
    assert.is_nil(ctl.eviction_time(pod("p", forever), { UNREACH }, T0))
    -- a taint without timeAdded counts from now
    assert.are.equal(T0 + 305, ctl.eviction_time(pod("p", tol300), { { key = health.UNREACHABLE,
      effect = "NoExecute" } }, T0 + 5))
  end)
end)
