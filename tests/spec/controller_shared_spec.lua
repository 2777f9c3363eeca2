-- The helpers workload controllers share: slow-start batches, expectations,
-- controller references and the pod predicates.
require("moonlet_core")
local slowstart = require("moonlet.controller.slowstart")
local expectations = require("moonlet.controller.expectations")
local refs = require("moonlet.controller.refs")
local podutil = require("moonlet.controller.podutil")
local duration = require("moonlet.printers.duration")
local fake = require("fake_client") -- for fake.run only

describe("slowstart", function()
  it("runs batches of 1, 2, 4, ... concurrently and returns the results in order", function()
    fake.run(function()
      local running, peak, calls = 0, {}, {}
      local res, err = slowstart.run(10, function(i)
        calls[#calls + 1] = i
        running = running + 1
        peak[#peak + 1] = running
        require("moonlet.loop").sleep(5)
        running = running - 1
        return "r" .. i
      end)
      assert.is_nil(err)
      assert.are.same({ "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10" }, res)
      table.sort(peak)
      -- batches 1, 2, 4 and the 3 left: never more than 4 at once
      assert.are.equal(4, peak[#peak])
    end)
  end)

  it("stops after the first batch with a failure", function()
    fake.run(function()
      local calls = 0
      local res, err = slowstart.run(100, function(i)
        calls = calls + 1
        if i == 3 then return nil, "quota exceeded" end
        return i
      end)
      assert.are.equal("quota exceeded", err)
      assert.are.equal(3, calls) -- batch 1 (i=1), batch 2 (i=2,3): stop
      assert.are.same({ 1, 2 }, res)
    end)
  end)
end)

describe("expectations", function()
  local cache
  local ctx = { get = function(_, _, ns, name) return cache[ns .. "/" .. name] end }

  it("holds a key until its creates and deletes show in the cache", function()
    cache = { ["d/old"] = { metadata = { name = "old" } } }
    local e = expectations.new({ kind = "v1/Pod" })
    assert.is_true(e:satisfied(ctx, "d/rs", "d", 0))
    e:created("d/rs", "new", 0)
    e:deleted("d/rs", "old", 0)
    assert.is_false(e:satisfied(ctx, "d/rs", "d", 1))
    cache["d/new"] = { metadata = { name = "new" } }
    assert.is_false(e:satisfied(ctx, "d/rs", "d", 1))
    cache["d/old"].metadata.deletionTimestamp = "2026-01-01T00:00:00Z" -- terminating counts
    assert.is_true(e:satisfied(ctx, "d/rs", "d", 1))
  end)

  it("gives up on a record older than the timeout", function()
    cache = {}
    local e = expectations.new({ kind = "v1/Pod", timeout = 300 })
    e:created("d/rs", "never", 0)
    assert.is_false(e:satisfied(ctx, "d/rs", "d", 299))
    assert.is_true(e:satisfied(ctx, "d/rs", "d", 301))
  end)
end)

describe("expectations:delete_pods", function()
  it("deletes up to max, expects each to go, and reports events and the failure", function()
    local deleted, events = {}, {}
    local ctx = {
      client = { delete = function(_, _, _, name)
        if name == "busy" then return nil, { code = 500, message = "store is busy" } end
        if name == "gone" then return nil, { code = 404, reason = "NotFound" } end
        deleted[#deleted + 1] = name
        return true
      end },
      event = function(_, _, typ, reason, msg) events[#events + 1] = typ .. " " .. reason .. " " .. msg end,
      get = function() return nil end,
    }
    local e = expectations.new({ kind = "v1/Pod" })
    local function pod(n) return { metadata = { name = n, namespace = "d" } } end
    local n, err = e:delete_pods(ctx, "d/rs", {}, { pod("a"), pod("gone"), pod("busy"), pod("later") }, 0, 3)
    assert.are.equal(2, n) -- "a", and "gone" which is already gone
    assert.are.equal("store is busy", err)
    assert.are.same({ "a" }, deleted) -- max 3: "later" waits for the next sync
    assert.are.same({ "Normal SuccessfulDelete Deleted pod: a", "Warning FailedDelete Error deleting: store is busy" },
      events)
    assert.is_true(e:satisfied(ctx, "d/rs", "d", 1)) -- both left the (empty) cache
  end)
end)

describe("refs and podutil", function()
  it("finds the controller reference and builds one", function()
    local owner = { metadata = { name = "web", uid = "u1" } }
    local ref = refs.owner_ref(owner, "apps/v1", "ReplicaSet")
    assert.are.same({ apiVersion = "apps/v1", kind = "ReplicaSet", name = "web", uid = "u1",
      controller = true, blockOwnerDeletion = true }, ref)
    local obj = { metadata = { ownerReferences = { { uid = "x" }, ref } } }
    assert.are.equal(ref, refs.controller_ref(obj))
    assert.is_nil(refs.controller_ref({ metadata = { ownerReferences = { { uid = "x" } } } }))
    assert.is_true(refs.conflict({ code = 409 }))
    assert.is_true(refs.not_found({ reason = "NotFound" }))
  end)

  it("tells active, ready and available pods apart", function()
    local now = 1000
    local function pod(phase, ready_since, deleting)
      return { metadata = { deletionTimestamp = deleting and "x" or nil },
        status = { phase = phase, conditions = ready_since and {
          { type = "Ready", status = "True", lastTransitionTime = duration.format_rfc3339(ready_since) } } or nil } }
    end
    assert.is_true(podutil.active(pod("Running")))
    assert.is_false(podutil.active(pod("Succeeded")))
    assert.is_false(podutil.active(pod("Running", nil, true)))
    assert.is_false(podutil.ready(pod("Running")))
    assert.is_true(podutil.available(pod("Running", now - 1), 0, now))
    local ok, wait = podutil.available(pod("Running", now - 3), 10, now)
    assert.is_false(ok)
    assert.are.equal(7, wait)
    assert.is_true(podutil.available(pod("Running", now - 10), 10, now))
  end)
end)
