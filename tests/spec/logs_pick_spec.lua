-- moonlet.cli.logs_pick: which pod `logs deploy/NAME` reads, in kubectl's
-- ByLogging order.
require("moonlet_core")
local pick = require("moonlet.cli.logs_pick")

local function pod(name, o)
  return { metadata = { name = name, creationTimestamp = o.created or "2026-01-01T00:00:00Z" },
    spec = { nodeName = o.node == nil and "vm" or o.node },
    status = { phase = o.phase or "Running",
      conditions = o.ready ~= nil and { { type = "Ready", status = o.ready and "True" or "False",
        lastTransitionTime = o.ready_at or "2026-01-01T00:00:00Z" } } or nil,
      containerStatuses = { { restartCount = o.restarts or 0 } } } }
end

local function order(pods)
  table.sort(pods, pick.before)
  local out = {}
  for i, p in ipairs(pods) do out[i] = p.metadata.name end
  return out
end

describe("logs TYPE/NAME pod choice", function()
  it("prefers scheduled, then running, then ready pods", function()
    assert.are.same({ "running", "unknown", "pending", "unscheduled" }, order({
      pod("unscheduled", { node = "", phase = "Running" }), pod("pending", { phase = "Pending" }),
      pod("running", {}), pod("unknown", { phase = "Unknown" }) }))
    assert.are.same({ "ready", "notready" }, order({ pod("notready", { ready = false }), pod("ready", { ready = true }) }))
  end)

  it("then ready longest, most restarts, oldest", function()
    assert.are.same({ "early", "late" }, order({
      pod("late", { ready = true, ready_at = "2026-01-02T00:00:00Z" }),
      pod("early", { ready = true, ready_at = "2026-01-01T00:00:00Z" }) }))
    assert.are.same({ "restarted", "fresh" }, order({ pod("fresh", {}), pod("restarted", { restarts = 2 }) }))
    assert.are.same({ "old", "new", "undated" }, order({
      pod("undated", { created = "" }), pod("new", { created = "2026-02-01T00:00:00Z" }),
      pod("old", { created = "2026-01-01T00:00:00Z" }) }))
  end)
end)
