-- The controller manager with the fake API client on the real loop: owner
-- mapping, protected reconcile with back-off, level-triggered batching,
-- requeue_after, cache reads, events and a stop that finishes the work in
-- hand.
require("moonlet_core")
local loop = require("moonlet.loop")
local manager = require("moonlet.controller.manager")
local events = require("moonlet.controller.events")
local util = require("moonlet.controller.util")
local fake = require("fake_client")

local run = fake.run
local T0 = 1700000000.25 -- the injected clock's unix seconds

local function rs(ns, name)
  return { apiVersion = "apps/v1", kind = "ReplicaSet", metadata = { namespace = ns, name = name },
           spec = { replicas = 1, selector = { matchLabels = { app = name } } } }
end

local function pod(ns, name, owner, extra)
  local md = { namespace = ns, name = name, labels = { app = owner and owner.metadata.name or "none" } }
  if owner then
    md.ownerReferences = { { apiVersion = owner.apiVersion, kind = owner.kind, name = owner.metadata.name,
                             uid = owner.metadata.uid, controller = true } }
  end
  for k, v in pairs(extra or {}) do md[k] = v end
  return { apiVersion = "v1", kind = "Pod", metadata = md, spec = {} }
end

-- A manager with a quiet log that keeps the lines for assertions.
local function new_manager(c)
  local lines = {}
  local m = manager.new({ client = c, clock = function() return T0 end,
                          log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end,
                          informer_backoff = { initial = 0.01, max = 0.05 } })
  return m, lines
end

describe("moonlet.controller.manager", function()
  it("maps owned objects to their controlling owner of the right kind", function()
    run(function()
      local c = fake.new()
      local owner = c:create("apps/v1/ReplicaSet", rs("ns1", "web"))
      local seen = {}
      local m = new_manager(c)
      m:add({ name = "rs", kind = "apps/v1/ReplicaSet", owns = { "v1/Pod" },
              reconcile = function(_, key) seen[#seen + 1] = key end })
      m:start()
      assert.is_true(m:wait_idle(3))
      assert.are.same({ "ns1/web" }, seen)
      for i = #seen, 1, -1 do seen[i] = nil end

      c:create("v1/Pod", pod("ns1", "p1", owner))
      assert.is_true(m:wait_idle(3))
      assert.are.same({ "ns1/web" }, seen)

      -- not ours: another kind's controller ref, a non-controller ref, none
      local job = { apiVersion = "batch/v1", kind = "Job", metadata = { name = "j", uid = "job-uid" } }
      c:create("v1/Pod", pod("ns1", "p2", job))
      local p3 = pod("ns1", "p3", owner)
      p3.metadata.ownerReferences[1].controller = nil
      c:create("v1/Pod", p3)
      c:create("v1/Pod", pod("ns1", "p4"))
      assert.is_true(m:wait_idle(3))
      assert.are.same({ "ns1/web" }, seen)

      local p1 = c:peek("v1/Pod", "ns1", "p1")
      p1.metadata.labels.touched = "yes"
      c:update("v1/Pod", p1)
      assert.is_true(m:wait_idle(3))
      c:delete("v1/Pod", "ns1", "p1")
      assert.is_true(m:wait_idle(3))
      assert.are.same({ "ns1/web", "ns1/web", "ns1/web" }, seen)
      m:stop()
    end)
  end)

  it("maps through `watches` functions", function()
    run(function()
      local c = fake.new()
      c:create("apps/v1/ReplicaSet", rs("ns1", "a"))
      local seen = {}
      local m = new_manager(c)
      m:add({ name = "rs", kind = "apps/v1/ReplicaSet",
              watches = { { kind = "v1/ConfigMap", map = function(cm)
                return { cm.metadata.namespace .. "/" .. cm.metadata.name, "ns1/a" }
              end } },
              reconcile = function(_, key) seen[#seen + 1] = key end })
      m:start()
      assert.is_true(m:wait_idle(3))
      c:create("v1/ConfigMap", { metadata = { namespace = "ns1", name = "x" } })
      assert.is_true(m:wait_idle(3))
      table.sort(seen)
      assert.are.same({ "ns1/a", "ns1/a", "ns1/x" }, seen)
      m:stop()
    end)
  end)

  it("starts workers after the caches synced and reads them as snapshots", function()
    run(function()
      local c = fake.new()
      local owner = c:create("apps/v1/ReplicaSet", rs("ns1", "web"))
      c:create("v1/Pod", pod("ns1", "p1", owner))
      c:create("v1/Pod", pod("ns1", "p2", owner))
      local stray = pod("ns2", "p3")
      stray.metadata.labels.app = "web" -- same labels, other namespace
      c:create("v1/Pod", stray)
      local observed
      local m = new_manager(c)
      m:add({ name = "rs", kind = "apps/v1/ReplicaSet", owns = { "v1/Pod" },
              reconcile = function(ctx, key, obj)
                local pods = ctx:list("v1/Pod", { namespace = obj.metadata.namespace,
                                                  selector = obj.spec.selector })
                observed = { key = key, n = #pods, first = pods[1].metadata.name }
                obj.spec.replicas = 99 -- a snapshot: the cache must not see this
                pods[1].metadata.name = "mutated"
                local again = ctx:get("apps/v1/ReplicaSet", "ns1", "web")
                observed.replicas = again.spec.replicas
              end })
      m:start()
      assert.is_true(m:wait_idle(3))
      assert.are.same({ key = "ns1/web", n = 2, first = "p1", replicas = 1 }, observed)
      assert.are.equal("p1", m:informer("v1/Pod"):list({ namespace = "ns1" })[1].metadata.name)
      m:stop()
    end)
  end)

  it("logs a failed reconcile with a traceback and requeues it with back-off", function()
    run(function()
      local c = fake.new()
      c:create("apps/v1/ReplicaSet", rs("ns1", "bad"))
      local times = {}
      local m, lines = new_manager(c)
      local ctl = m:add({ name = "flaky", kind = "apps/v1/ReplicaSet",
        reconcile = function()
          times[#times + 1] = loop.now()
          if #times <= 3 then error("cannot reach the moon") end
        end })
      m:start()
      assert.is_true(m:wait_idle(3))
      assert.are.equal(4, #times)
      -- 5, 10, 20 ms of back-off between the attempts
      local gaps = { times[2] - times[1], times[3] - times[2], times[4] - times[3] }
      assert.is_true(gaps[1] >= 5, "gap1 " .. gaps[1])
      assert.is_true(gaps[2] >= 10, "gap2 " .. gaps[2])
      assert.is_true(gaps[3] >= 20, "gap3 " .. gaps[3])
      assert.are.equal(3, ctl.stats.errors)
      assert.are.equal(0, ctl.queue:num_requeues("ns1/bad")) -- forgotten after success
      local errs = {}
      for _, l in ipairs(lines) do if l:match("^error") then errs[#errs + 1] = l end end
      assert.are.equal(3, #errs)
      assert.truthy(errs[1]:find("controller flaky: reconcile ns1/bad failed", 1, true))
      assert.truthy(errs[1]:find("cannot reach the moon", 1, true))
      assert.truthy(errs[1]:find("stack traceback", 1, true))
      -- the failure is visible on the object as Warning events
      local evs = c:objects("v1/Event")
      assert.are.equal(3, #evs)
      assert.are.equal("ReconcileError", evs[1].reason)
      assert.are.equal("Warning", evs[1].type)
      assert.are.equal("cannot reach the moon", evs[1].message)
      m:stop()
    end)
  end)

  it("is level-triggered: a burst of changes gives few reconciles", function()
    run(function()
      local c = fake.new()
      c:create("apps/v1/ReplicaSet", rs("ns1", "hot"))
      local runs, last = 0, nil
      local m = new_manager(c)
      m:add({ name = "rs", kind = "apps/v1/ReplicaSet",
              reconcile = function(_, _, obj)
                runs = runs + 1
                loop.sleep(15)
                last = obj.spec.replicas
              end })
      m:start()
      assert.is_true(m:wait_idle(3))
      runs = 0
      c.latency_ms = false
      for i = 1, 50 do
        local o = c:peek("apps/v1/ReplicaSet", "ns1", "hot")
        o.spec.replicas = i
        c:update("apps/v1/ReplicaSet", o)
        if i % 10 == 0 then loop.sleep(1) end
      end
      assert.is_true(m:wait_idle(3))
      assert.is_true(runs >= 1 and runs <= 5, "reconciles: " .. runs)
      assert.are.equal(50, last) -- the last run saw the final state
      m:stop()
    end)
  end)

  it("honours requeue_after", function()
    run(function()
      local c = fake.new()
      c:create("apps/v1/ReplicaSet", rs("ns1", "again"))
      local times = {}
      local m = new_manager(c)
      m:add({ name = "rs", kind = "apps/v1/ReplicaSet",
              reconcile = function()
                times[#times + 1] = loop.now()
                if #times == 1 then return { requeue_after = 0.03 } end
              end })
      m:start()
      assert.is_true(m:wait_idle(3))
      assert.are.equal(2, #times)
      assert.is_true(times[2] - times[1] >= 30, "gap " .. (times[2] - times[1]))
      m:stop()
    end)
  end)

  it("requeues with back-off on {requeue = true}, without counting an error", function()
    run(function()
      local c = fake.new()
      c:create("apps/v1/ReplicaSet", rs("ns1", "retry"))
      local n = 0
      local m = new_manager(c)
      local ctl = m:add({ name = "rs", kind = "apps/v1/ReplicaSet",
                          reconcile = function()
                            n = n + 1
                            if n < 3 then return { requeue = true } end
                          end })
      m:start()
      assert.is_true(m:wait_idle(3))
      assert.are.equal(3, n)
      assert.are.equal(0, ctl.stats.errors)
      assert.are.equal(0, ctl.queue:num_requeues("ns1/retry"))
      m:stop()
    end)
  end)

  it("runs several workers but never one key twice at once", function()
    run(function()
      local c = fake.new()
      for i = 1, 6 do c:create("apps/v1/ReplicaSet", rs("ns1", "r" .. i)) end
      local active, max_active, per_key, max_per_key = 0, 0, {}, 0
      local m = new_manager(c)
      m:add({ name = "rs", kind = "apps/v1/ReplicaSet", workers = 3,
              reconcile = function(_, key)
                active = active + 1
                per_key[key] = (per_key[key] or 0) + 1
                max_active = math.max(max_active, active)
                max_per_key = math.max(max_per_key, per_key[key])
                loop.sleep(10)
                per_key[key] = per_key[key] - 1
                active = active - 1
              end })
      m:start()
      loop.sleep(5)
      for i = 1, 6 do -- re-add keys while they are in hand
        local o = c:peek("apps/v1/ReplicaSet", "ns1", "r" .. i)
        o.metadata.labels = { bump = "1" }
        c:update("apps/v1/ReplicaSet", o)
      end
      assert.is_true(m:wait_idle(3))
      assert.are.equal(3, max_active)
      assert.are.equal(1, max_per_key)
      m:stop()
    end)
  end)

  it("stop lets the reconcile in hand finish and starts no new one", function()
    run(function()
      local c = fake.new()
      c:create("apps/v1/ReplicaSet", rs("ns1", "a"))
      c:create("apps/v1/ReplicaSet", rs("ns1", "b"))
      local started, finished = 0, 0
      local m = new_manager(c)
      m:add({ name = "rs", kind = "apps/v1/ReplicaSet",
              reconcile = function()
                started = started + 1
                loop.sleep(30)
                finished = finished + 1
              end })
      m:start()
      assert.is_true(util.wait_for(function() return started == 1 end, 3))
      assert.is_true(m:stop(2))
      assert.are.equal(1, finished)
      loop.sleep(40)
      assert.are.equal(1, started)
      assert.are.equal(0, c:open_watches())
    end)
  end)

  it("records events through ctx:event", function()
    run(function()
      local c = fake.new()
      c:create("apps/v1/ReplicaSet", rs("ns1", "web"))
      local m = new_manager(c)
      m:add({ name = "replicaset-controller", kind = "apps/v1/ReplicaSet",
              reconcile = function(ctx, _, obj)
                assert.are.equal(T0, ctx.now())
                assert.are.equal("replicaset-controller", ctx.name)
                ctx.log("info", "saw %s", obj.metadata.name)
                assert(ctx:event(obj, "Normal", "SuccessfulCreate", "Created pod: web-x"))
              end })
      m:start()
      assert.is_true(m:wait_idle(3))
      local evs = c:objects("v1/Event")
      assert.are.equal(1, #evs)
      local ev = evs[1]
      local owner = c:peek("apps/v1/ReplicaSet", "ns1", "web")
      assert.are.equal(string.format("web.%x", 1700000000250000000), ev.metadata.name)
      assert.are.equal("ns1", ev.metadata.namespace)
      assert.are.same({ apiVersion = "apps/v1", kind = "ReplicaSet", name = "web", namespace = "ns1",
                        uid = owner.metadata.uid, resourceVersion = owner.metadata.resourceVersion },
                      ev.involvedObject)
      assert.are.equal("replicaset-controller", ev.source.component)
      assert.are.equal("SuccessfulCreate", ev.reason)
      assert.are.equal("Created pod: web-x", ev.message)
      assert.are.equal("Normal", ev.type)
      assert.are.equal(1, ev.count)
      assert.are.equal("2023-11-14T22:13:20Z", ev.firstTimestamp)
      assert.are.equal(ev.firstTimestamp, ev.lastTimestamp)
      m:stop()
    end)
  end)

  it("rejects bad plugins and bad event types loudly", function()
    local m = manager.new({ client = fake.new() })
    assert.has_error(function() m:add({ name = "x", kind = "v1/Pod" }) end)
    assert.has_error(function() m:add({ kind = "v1/Pod", reconcile = function() end }) end)
    m:add({ name = "x", kind = "v1/Pod", reconcile = function() end })
    assert.has_error(function() m:add({ name = "x", kind = "v1/Pod", reconcile = function() end }) end)
    local rec = events.new({ client = fake.new(), clock = function() return T0 end })
    assert.has_error(function() rec:build({ metadata = { name = "a" } }, "Info", "R", "m") end)
    -- an event about a cluster-scoped object lands in "default"; distinct
    -- names within one clock tick
    local a = rec:build({ kind = "Node", apiVersion = "v1", metadata = { name = "n1" } }, "Normal", "R", "m")
    local b = rec:build({ kind = "Node", apiVersion = "v1", metadata = { name = "n1" } }, "Normal", "R", "m")
    assert.are.equal("default", a.metadata.namespace)
    assert.are_not.equal(a.metadata.name, b.metadata.name)
    assert.truthy(events.event_name("Bad_Name", 255):match("^%x+%-%x+%-4%x+%-%x+%-%x+$"))
  end)

  it("leaves no parked coroutines behind after stop", function()
    local sched = require("moonlet.sched")
    run(function()
      local c = fake.new()
      local m = new_manager(c)
      m:add({ name = "rs", kind = "apps/v1/ReplicaSet", owns = { "v1/Pod" }, reconcile = function() end })
      m:start()
      assert.is_true(m:wait_idle(3))
      m:stop()
      loop.sleep(5)
    end)
    local st = sched.stats()
    assert.are.equal(0, st.waiting)
    assert.are.equal(0, st.pending)
  end)
end)
