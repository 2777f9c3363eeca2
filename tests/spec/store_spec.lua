-- The object store through its Lua API (moonlet.store over
-- moonlet.core.store), on the real loop: writes, errors and their codes,
-- lists and paging, watch streams read from coroutines, persistence.
require("moonlet_core")
local store = require("moonlet.store")
local json = require("moonlet.json")
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")
local runtime = require("moonlet.core.runtime")

local function tmpdb()
  local p = os.tmpname()
  os.remove(p)
  return p .. ".db"
end

local function rmdb(p)
  os.remove(p)
  os.remove(p .. "-wal")
  os.remove(p .. "-shm")
end

local function cm(name, labels)
  return { apiVersion = "v1", kind = "ConfigMap",
           metadata = { name = name, labels = labels }, data = { k = "v" } }
end

for _, backend in ipairs({ "memory", "sqlite" }) do
  describe("moonlet.store (" .. backend .. ")", function()
    local s, path

    before_each(function()
      path = backend == "sqlite" and tmpdb() or nil
      s = assert(store.open({ backend = backend, path = path }))
      s:set_time(1795946645) -- 2026-11-29T10:04:05Z
    end)

    after_each(function()
      s:close()
      if path then rmdb(path) end
    end)

    it("creates from a table or JSON text and reads back", function()
      local a = assert(s:create("configmaps", "default", cm("a")))
      assert.are.equal("a", a.metadata.name)
      assert.are.equal("default", a.metadata.namespace)
      assert.are.equal("1", a.metadata.resourceVersion)
      assert.are.equal("2026-11-29T10:04:05Z", a.metadata.creationTimestamp)
      assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", a.metadata.uid)
      local b = assert(s:create("configmaps", "default",
        '{"metadata":{"generateName":"b-"},"data":{}}'))
      assert.matches("^b%-[bcdfghjklmnpqrstvwxz2456789]+$", b.metadata.name)
      assert.are.equal(7, #b.metadata.name)
      assert.are.same(a, s:get("configmaps", "default", "a"))
      assert.are.same(a, json.decode(s:get_json("configmaps", "default", "a")))
      assert.is_nil(s:get("configmaps", "default", "zz"))
      assert.is_nil(s:get_json("configmaps", "other", "a"))
      assert.are.equal(2, s:resource_version())
      local t = assert(s:create("configmaps", "default", cm("j"), { json = true }))
      assert.are.equal(s:get_json("configmaps", "default", "j"), t)
      local d = assert(s:create("apps/deployments", "default",
        { metadata = { name = "d" }, spec = { replicas = 1 } }, { generation = true }))
      assert.are.equal(1, d.metadata.generation)
    end)

    it("fails with messages and ML_E* codes", function()
      assert(s:create("configmaps", "ns", cm("a")))
      local obj, msg, code = s:create("configmaps", "ns", cm("a"))
      assert.is_nil(obj)
      assert.are.equal("EEXISTS", code)
      assert.are.equal('EEXISTS: configmaps "a" already exists', msg)
      assert.are.equal('configmaps "a" already exists', store.message(msg))
      _, msg, code = s:create("configmaps", "ns", "{not json")
      assert.are.equal("EINVALID", code)
      assert.matches("invalid JSON", msg)
      _, _, code = s:update("configmaps", cm("nope"))
      assert.are.equal("ENOTFOUND", code)
      _, msg, code = s:update("configmaps", { metadata = {} })
      assert.are.equal("EINVALID", code)
      assert.matches("name is required", msg)
    end)

    it("updates with conflicts, generation and the status subresource", function()
      local d = assert(s:create("apps/deployments", "ns",
        { metadata = { name = "web" }, spec = { replicas = 1 }, status = { ready = 0 } },
        { generation = true }))
      local opts = { generation = true, status_subresource = true }
      local stale = json.copy(d)
      d.spec.replicas = 2
      d.status.ready = 5
      local d2 = assert(s:update("apps/deployments", d, opts))
      assert.are.equal(2, d2.spec.replicas)
      assert.are.equal(0, d2.status.ready)
      assert.are.equal(2, d2.metadata.generation)
      local _, msg, code = s:update("apps/deployments", stale, opts)
      assert.are.equal("ECONFLICT", code)
      assert.matches("the object has been modified", msg)
      d2.status.ready = 2
      d2.spec.replicas = 50
      local d3, removed = assert(s:update("apps/deployments", d2,
        { subresource = "status", generation = true, status_subresource = true }))
      assert.is_false(removed)
      assert.are.equal(2, d3.status.ready)
      assert.are.equal(2, d3.spec.replicas)
      assert.are.equal(2, d3.metadata.generation)
      local d4 = assert(s:update("apps/deployments", d3, opts))
      assert.are.equal(d3.metadata.resourceVersion, d4.metadata.resourceVersion)
      _, _, code = s:update("apps/deployments",
        { metadata = { name = "nope", namespace = "ns" } })
      assert.are.equal("ENOTFOUND", code)
      assert.has_error(function() s:update("apps/deployments", d4, { subresource = "scale" }) end)
    end)

    it("deletes now, or marks for finalizers and grace periods", function()
      local a = assert(s:create("configmaps", "ns", cm("a")))
      local _, msg, code = s:delete("configmaps", "ns", "a", { uid = "x" })
      assert.are.equal("ECONFLICT", code)
      assert.matches("Precondition failed: UID in precondition: x", msg)
      local gone, removed = assert(s:delete("configmaps", "ns", "a",
        { uid = a.metadata.uid, resource_version = a.metadata.resourceVersion }))
      assert.is_true(removed)
      assert.are.equal("2", gone.metadata.resourceVersion)
      _, _, code = s:delete("configmaps", "ns", "a")
      assert.are.equal("ENOTFOUND", code)

      local f = cm("f")
      f.metadata.finalizers = { "example.com/x" }
      assert(s:create("configmaps", "ns", f))
      local marked, now = assert(s:delete("configmaps", "ns", "f"))
      assert.is_false(now)
      assert.are.equal("2026-11-29T10:04:05Z", marked.metadata.deletionTimestamp)
      marked.metadata.finalizers = json.array()
      local last, removed2 = assert(s:update("configmaps", marked))
      assert.is_true(removed2)
      assert.are.equal("f", last.metadata.name)
      assert.is_nil(s:get("configmaps", "ns", "f"))

      assert(s:create("pods", "ns", { metadata = { name = "p" } }))
      local p, pnow = assert(s:delete("pods", "ns", "p", { grace_seconds = 30 }))
      assert.is_false(pnow)
      assert.are.equal(30, p.metadata.deletionGracePeriodSeconds)
      assert.are.equal("2026-11-29T10:04:35Z", p.metadata.deletionTimestamp)
      local ptext, pnow2 = assert(s:delete("pods", "ns", "p", { grace_seconds = 0, json = true }))
      assert.is_true(pnow2)
      assert.are.equal("p", json.decode(ptext).metadata.name)
    end)

    it("lists with selectors and pages with continue tokens", function()
      for i, ns in ipairs({ "b", "a", "c", "a", "b" }) do
        assert(s:create("configmaps", ns, cm("cm" .. i, { n = tostring(i % 2) })))
      end
      local l = assert(s:list("configmaps"))
      local names = {}
      for _, it in ipairs(l.items) do names[#names + 1] = it.metadata.namespace .. "/" .. it.metadata.name end
      assert.are.same({ "a/cm2", "a/cm4", "b/cm1", "b/cm5", "c/cm3" }, names)
      assert.are.equal("5", l.resource_version)
      assert.is_nil(l.continue)
      l = assert(s:list("configmaps", { namespace = "b", label_selector = "n=1" }))
      assert.are.equal(2, #l.items)
      l = assert(s:list("configmaps", { field_selector = "metadata.name=cm3" }))
      assert.are.equal("cm3", l.items[1].metadata.name)
      local empty = assert(s:list("configmaps", { namespace = "zzz" }))
      assert.are.equal("[]", json.encode(empty.items))
      local _, msg, code = s:list("configmaps", { label_selector = "n in (1" })
      assert.are.equal("EINVALID", code)
      assert.is_string(msg)
      _, _, code = s:list("configmaps", { continue = "!!" })
      assert.are.equal("EBADREQ", code)

      local seen, token, pages = {}, nil, 0
      repeat
        local page = assert(s:list("configmaps", { limit = 2, continue = token }))
        for _, it in ipairs(page.items) do seen[#seen + 1] = it.metadata.name end
        token = page.continue
        pages = pages + 1
      until not token
      assert.are.same({ "cm2", "cm4", "cm1", "cm5", "cm3" }, seen)
      assert.are.equal(3, pages)

      local text, rv, cont = assert(s:list_json("configmaps", { limit = 4 }))
      assert.are.equal("5", rv)
      assert.is_string(cont)
      local items = json.decode(text)
      assert.are.equal(4, #items)
      assert.are.same(s:get("configmaps", "a", "cm2"), items[1])
    end)

    it("streams watch events to a coroutine", function()
      assert(s:create("configmaps", "ns", cm("old")))
      local got = sched.run(function()
        local w = assert(store.watch_stream(s, "configmaps", { resource_version = "0" }))
        local sel = assert(store.watch_stream(s, "configmaps",
          { resource_version = tostring(s:resource_version()), label_selector = "app=x" }))
        sched.spawn("writer", function()
          loop.sleep(1)
          local a = assert(s:create("configmaps", "ns", cm("a", { app = "x" })))
          a.metadata.labels.app = "y"
          assert(s:update("configmaps", a))
          assert(s:delete("configmaps", "ns", "a"))
        end)
        local out = {}
        for _ = 1, 4 do
          local kind, obj = w:next()
          out[#out + 1] = kind .. " " .. obj.metadata.name .. " " .. obj.metadata.resourceVersion
        end
        local k1, t1 = sel:next_raw()
        local k2, o2 = sel:next()
        out[#out + 1] = k1 .. " " .. json.decode(t1).metadata.name
        out[#out + 1] = k2 .. " " .. o2.metadata.labels.app .. " " .. o2.metadata.resourceVersion
        w:close()
        sel:close()
        return out
      end)
      assert.are.same({ "ADDED old 1", "ADDED a 2", "MODIFIED a 3", "DELETED a 4",
                        "ADDED a", "DELETED x 3" }, got)
      assert.are.equal(0, sched.stats().pending)
      assert.are.equal(0, sched.stats().handlers)
    end)

    it("reports 410 Gone for versions older than the window", function()
      local small = assert(store.open({ backend = "memory", watch_window = 2 }))
      for i = 1, 4 do assert(small:create("configmaps", "ns", cm("c" .. i))) end
      local w, msg, code = small:watch(loop.next_id(), "configmaps", { resource_version = "1" })
      assert.is_nil(w)
      assert.are.equal("EGONE", code)
      assert.are.equal("EGONE: too old resource version: 1 (2)", msg)
      local ok = assert(store.watch_stream(small, "configmaps", { resource_version = "2" }))
      local got = sched.run(function()
        local a = { ok:next() }
        local b = { ok:next() }
        return a[2].metadata.name .. "," .. b[2].metadata.name
      end)
      assert.are.equal("c3,c4", got)
      -- Closing the store ends the stream.
      small:close()
      assert.is_nil(sched.run(function() return ok:next() end))
      assert.are.equal(0, sched.stats().pending)
    end)

    it("drops events still queued when a stream closes", function()
      local w = assert(store.watch_stream(s, "configmaps", { resource_version = "0" }))
      for i = 1, 3 do assert(s:create("configmaps", "ns", cm("q" .. i))) end
      w:close()
      sched.run(function() loop.sleep(1) end)
      local st = sched.stats()
      assert.are.equal(0, st.pending)
      assert.are.equal(0, st.handlers)
      assert.are.equal(0, runtime.live_refs())
    end)
  end)
end

describe("moonlet.store persistence", function()
  it("keeps objects, uids and the version counter across reopen", function()
    local path = tmpdb()
    local s = assert(store.open({ backend = "sqlite", path = path }))
    local a
    sched.run(function()
      a = assert(s:create("configmaps", "ns", cm("a")))
      assert(s:create("configmaps", "ns", cm("b")))
      assert(s:delete("configmaps", "ns", "b"))
      loop.sleep(1) -- a loop turn: the end-of-turn hook commits
    end)
    s:close()
    s = assert(store.open({ backend = "sqlite", path = path }))
    assert.are.same(a, s:get("configmaps", "ns", "a"))
    assert.is_nil(s:get("configmaps", "ns", "b"))
    assert.are.equal(3, s:resource_version())
    local c = assert(s:create("configmaps", "ns", cm("c")))
    assert.are.equal("4", c.metadata.resourceVersion)
    s:close()
    rmdb(path)
  end)

  it("has committed a finished loop turn when the process is killed -9", function()
    local bin = os.getenv("ML_BIN")
    if not bin then return pending("ML_BIN not set") end
    local path = tmpdb()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
local store = require("moonlet.store")
local loop = require("moonlet.loop")
local s = assert(store.open({ backend = "sqlite", path = arg[1] }))
for i = 1, 20 do
  assert(s:create("configmaps", "ns", { metadata = { name = "c" .. i } }))
end
loop.sleep(1) -- the turn ends: the store's end-of-turn hook commits
assert(s:create("configmaps", "ns", { metadata = { name = "late" } }))
local pid = assert(io.open("/proc/self/stat")):read("n")
os.execute("kill -9 " .. pid)
]])
    f:close()
    local ok, how, sig = os.execute("exec " .. bin .. " lua " .. script .. " " .. path .. " 2>/dev/null")
    os.remove(script)
    assert.is_falsy(ok)
    assert.are.same({ "signal", 9 }, { how, sig })
    local s = assert(store.open({ backend = "sqlite", path = path }))
    assert.are.equal(20, #assert(s:list("configmaps")).items)
    assert.is_nil(s:get("configmaps", "ns", "late"))
    s:close()
    rmdb(path)
  end)

  it("refuses an unknown backend and a second server on one file", function()
    local s, msg, code = store.open({ backend = "etcd" })
    assert.is_nil(s)
    assert.are.equal("EINVALID", code)
    assert.matches("unknown store backend", msg)
    local path = tmpdb()
    local first = assert(store.open({ backend = "sqlite", path = path }))
    local second, _, code2 = store.open({ backend = "sqlite", path = path })
    assert.is_nil(second)
    assert.are.equal("EIO", code2)
    first:close()
    rmdb(path)
  end)

  it("raises on use after close", function()
    local s = assert(store.open({ backend = "memory" }))
    s:close()
    s:close() -- idempotent
    assert.has_error(function() s:get("configmaps", "ns", "a") end)
    assert.matches("closed", tostring(s))
  end)
end)
