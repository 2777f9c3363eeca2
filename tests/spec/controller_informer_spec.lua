-- Informers against the fake API client on the real loop: list then watch,
-- resume after a stream ends, re-list on 410 Expired, back-off on
-- failures, resync, indexes and snapshots.
require("moonlet_core")
local loop = require("moonlet.loop")
local informer = require("moonlet.controller.informer")
local util = require("moonlet.controller.util")
local fake = require("fake_client")

local run = fake.run

local function pod(ns, name, labels, owner_uid)
  local md = { namespace = ns, name = name, labels = labels }
  if owner_uid then
    md.ownerReferences = { { apiVersion = "apps/v1", kind = "ReplicaSet", name = "rs",
                             uid = owner_uid, controller = true } }
  end
  return { apiVersion = "v1", kind = "Pod", metadata = md, spec = { containers = {} } }
end

-- An informer that records handler calls as "add:ns/name" etc.
local function recorded(c, opts)
  local seen = {}
  opts = opts or {}
  local inf = informer.new({ client = c, kind = "v1/Pod", namespace = opts.namespace,
                             backoff = { initial = 0.01, max = 0.05 },
                             log = function() end })
  inf:add_handler({
    add = function(o) seen[#seen + 1] = "add:" .. util.key(o) end,
    update = function(old, new)
      seen[#seen + 1] = (old == new and "resync:" or "update:") .. util.key(new)
    end,
    delete = function(o) seen[#seen + 1] = "delete:" .. util.key(o) end,
  }, opts.resync)
  return inf, seen
end

local function settle(pred) assert.is_true(util.wait_for(pred, 3)) end

describe("moonlet.controller.informer", function()
  it("lists, then follows the watch", function()
    run(function()
      local c = fake.new()
      c:create("v1/Pod", pod("default", "a", { app = "x" }))
      c:create("v1/Pod", pod("other", "b", { app = "y" }))
      local inf, seen = recorded(c)
      inf:start()
      assert.is_true(inf:wait_synced(2))
      table.sort(seen)
      assert.are.same({ "add:default/a", "add:other/b" }, seen)
      for i = #seen, 1, -1 do seen[i] = nil end

      c:create("v1/Pod", pod("default", "c"))
      local a = c:peek("v1/Pod", "default", "a")
      a.metadata.labels.app = "z"
      c:update("v1/Pod", a)
      c:delete("v1/Pod", "other", "b")
      settle(function() return #seen == 3 end)
      assert.are.same({ "add:default/c", "update:default/a", "delete:other/b" }, seen)
      assert.are.equal(2, inf:size())
      assert.are.equal("z", inf:get("default", "a").metadata.labels.app)
      assert.is_nil(inf:get("other", "b"))
      assert.are.equal(1, inf.stats.lists)
      inf:stop()
    end)
  end)

  it("hands out snapshots and fills apiVersion/kind of list items", function()
    run(function()
      local c = fake.new()
      c:create("v1/Pod", pod("default", "a", { app = "x" }))
      local inf = recorded(c)
      inf:start()
      inf:wait_synced(2)
      local a = inf:get("default", "a")
      assert.are.equal("v1", a.apiVersion)
      assert.are.equal("Pod", a.kind)
      a.metadata.labels.app = "mutated"
      assert.are.equal("x", inf:get("default", "a").metadata.labels.app)
      inf:list()[1].metadata.name = "mutated"
      assert.are.equal("a", inf:list()[1].metadata.name)
      inf:stop()
    end)
  end)

  it("indexes by namespace, owner uid and selector", function()
    run(function()
      local c = fake.new()
      c:create("v1/Pod", pod("ns1", "a", { app = "web" }, "uid-1"))
      c:create("v1/Pod", pod("ns1", "b", { app = "db" }, "uid-2"))
      c:create("v1/Pod", pod("ns2", "c", { app = "web" }, "uid-1"))
      local inf = recorded(c)
      inf:start()
      inf:wait_synced(2)
      local names = function(list)
        local out = {}
        for i, o in ipairs(list) do out[i] = util.key(o) end
        return out
      end
      assert.are.same({ "ns1/a", "ns1/b" }, names(inf:by_namespace("ns1")))
      assert.are.same({ "ns1/a", "ns2/c" }, names(inf:by_owner("uid-1")))
      assert.are.same({ "ns1/a", "ns2/c" },
        names(inf:list({ selector = { matchLabels = { app = "web" } } })))
      assert.are.same({ "ns1/a" },
        names(inf:list({ namespace = "ns1", selector = { matchExpressions = {
          { key = "app", operator = "In", values = { "web", "cache" } } } } })))
      local uid = c:peek("v1/Pod", "ns1", "b").metadata.uid
      assert.are.equal("ns1/b", inf:key_for_uid(uid))
      -- the index follows deletes
      c:delete("v1/Pod", "ns1", "a")
      settle(function() return inf:size() == 2 end)
      assert.are.same({ "ns2/c" }, names(inf:by_owner("uid-1")))
      inf:stop()
    end)
  end)

  it("resumes from the last resourceVersion when a watch ends", function()
    run(function()
      local c = fake.new()
      local inf, seen = recorded(c)
      inf:start()
      inf:wait_synced(2)
      settle(function() return c:open_watches() == 1 end)
      c:end_watches()
      c:create("v1/Pod", pod("default", "during-gap"))
      settle(function() return #seen == 1 end)
      assert.are.same({ "add:default/during-gap" }, seen)
      assert.are.equal(1, inf.stats.lists) -- no re-list needed
      assert.is_true(inf.stats.watches >= 2)
      inf:stop()
    end)
  end)

  for _, mode in ipairs({ "ERROR event", "status" }) do
    it("re-lists on 410 Expired (" .. mode .. ") and diffs against the cache", function()
      run(function()
        local c = fake.new({ expired_as = mode == "status" and "status" or "event" })
        c:create("v1/Pod", pod("default", "stays"))
        c:create("v1/Pod", pod("default", "goes"))
        local inf, seen = recorded(c)
        inf:start()
        inf:wait_synced(2)
        settle(function() return c:open_watches() == 1 end)
        for i = #seen, 1, -1 do seen[i] = nil end
        -- While the informer is cut off (calls made without yielding, so it
        -- cannot re-list in between): these reach it only by re-listing.
        c.latency_ms = false
        c:expire_watches(mode == "status")
        c:delete("v1/Pod", "default", "goes")
        c:create("v1/Pod", pod("default", "new"))
        c:compact()
        c.latency_ms = 0
        settle(function() return inf.stats.relists == 1 and inf:size() == 2 end)
        table.sort(seen)
        assert.are.same({ "add:default/new", "delete:default/goes", "update:default/stays" }, seen)
        assert.is_not_nil(inf:get("default", "new"))
        -- and it keeps watching after the re-list
        c:create("v1/Pod", pod("default", "later"))
        settle(function() return inf:get("default", "later") ~= nil end)
        inf:stop()
      end)
    end)
  end

  it("backs off and retries when list fails", function()
    run(function()
      local c = fake.new()
      c:create("v1/Pod", pod("default", "a"))
      c:fail_next("list", { code = 500, reason = "InternalError", message = "boom" }, 2)
      local inf = recorded(c)
      local t0 = loop.now()
      inf:start()
      assert.is_true(inf:wait_synced(2))
      -- two failures: 10 ms then 20 ms of back-off (on the loop clock)
      assert.is_true(loop.now() - t0 >= 30)
      assert.are.equal(3, c.calls.list)
      assert.are.equal(2, inf.stats.failures)
      inf:stop()
    end)
  end)

  it("backs off when every watch is refused with 410 (no hot re-list loop)", function()
    run(function()
      local c = fake.new()
      c:fail_next("watch", { code = 410, reason = "Expired", message = "too old" }, 1000)
      local inf = recorded(c)
      inf:start()
      loop.sleep(120)
      inf:stop()
      -- 10, 20, 40, 50 ms ... of back-off: a handful of lists, not hundreds
      assert.is_true(c.calls.list >= 3 and c.calls.list <= 10, "lists: " .. c.calls.list)
    end)
  end)

  it("resyncs: re-delivers every cached object at the period", function()
    run(function()
      local c = fake.new()
      c:create("v1/Pod", pod("default", "a"))
      c:create("v1/Pod", pod("default", "b"))
      local inf, seen = recorded(c, { resync = 0.02 })
      inf:start()
      inf:wait_synced(2)
      settle(function()
        local n = 0
        for _, s in ipairs(seen) do if s:match("^resync:") then n = n + 1 end end
        return n >= 4
      end)
      inf:stop()
      local n = #seen
      loop.sleep(50)
      assert.are.equal(n, #seen) -- stopped: no more resyncs
    end)
  end)

  it("watches one namespace only when asked", function()
    run(function()
      local c = fake.new()
      c:create("v1/Pod", pod("mine", "a"))
      c:create("v1/Pod", pod("theirs", "b"))
      local inf = recorded(c, { namespace = "mine" })
      inf:start()
      inf:wait_synced(2)
      c:create("v1/Pod", pod("theirs", "c"))
      c:create("v1/Pod", pod("mine", "d"))
      settle(function() return inf:size() == 2 end)
      loop.sleep(10)
      assert.are.equal(2, inf:size())
      assert.is_nil(inf:get("theirs", "b"))
      inf:stop()
    end)
  end)

  it("stop closes the stream and ends the informer coroutine", function()
    run(function()
      local c = fake.new()
      local inf = recorded(c)
      inf:start()
      inf:wait_synced(2)
      settle(function() return c:open_watches() == 1 end)
      inf:stop()
      settle(function() return inf.done end)
      assert.are.equal(0, c:open_watches())
    end)
  end)

  it("stop cuts a back-off sleep short", function()
    run(function()
      local c = fake.new()
      c:fail_next("list", { code = 500, message = "down" }, 100)
      local inf = informer.new({ client = c, kind = "v1/Pod", log = function() end,
                                 backoff = { initial = 10, max = 10 } })
      inf:start()
      loop.sleep(5)
      local t0 = loop.hrtime()
      inf:stop()
      settle(function() return inf.done end)
      assert.is_true((loop.hrtime() - t0) / 1e6 < 1000)
    end)
  end)
end)
