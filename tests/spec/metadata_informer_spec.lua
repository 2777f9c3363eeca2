-- Metadata-only reads, as client-go's metadata client makes them and as the
-- garbage collector now uses them: the API's PartialObjectMetadata views
-- (get, list, watch; Accept negotiation), informers that cache only each
-- object's identity and turn whole when a controller needs more, manager
-- reads that never answer from such a cache, and the collector's graph
-- keeping plain objects without a node.
require("moonlet_core")
local json = require("moonlet.json")
local views = require("moonlet.core.table")
local request = require("moonlet.api.request")
local informer = require("moonlet.controller.informer")
local manager = require("moonlet.controller.manager")
local owner_graph = require("moonlet.controller.owner_graph")
local util = require("moonlet.controller.util")
local client_mod = require("moonlet.client")
local fake = require("fake_client") -- for fake.run only

package.path = os.getenv("ML_SRC") .. "/tests/spec/?.lua;" .. package.path
local stack_mod = require("api_stack")

local function cm(name, data, owner)
  local md = { name = name, namespace = "default", labels = { app = "x" } }
  if owner then
    md.ownerReferences = { { apiVersion = "v1", kind = "ConfigMap", name = owner.metadata.name,
      uid = owner.metadata.uid } }
  end
  return { apiVersion = "v1", kind = "ConfigMap", metadata = md, data = data or { k = "v" } }
end

local function settle(pred) assert.is_true(util.wait_for(pred, 3)) end

describe("PartialObjectMetadata views", function()
  it("slices the metadata out of stored texts", function()
    local text = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"x":"}"}},'
      .. '"data":{"metadata":"not this"}}'
    local p = json.decode(assert(views.partial(text)))
    assert.are.same({ kind = "PartialObjectMetadata", apiVersion = "meta.k8s.io/v1",
      metadata = { name = "a", labels = { x = "}" } } }, p)
    local list = json.decode(assert(views.partial_items("[" .. text .. ', {"kind":"X"} ]')))
    assert.are.equal(2, #list)
    assert.are.same({ kind = "PartialObjectMetadata", apiVersion = "meta.k8s.io/v1" }, list[2])
    assert.are.equal("[]", views.partial_items(" [ ] "))
    for _, bad in ipairs({ "[", "[1]", "{}", "[{},]", '[{"a":1} {"b":2}]' }) do
      local v, err = views.partial_items(bad)
      assert.is_nil(v, bad)
      assert.truthy(err:match("^offset %d+: "), bad)
    end
    assert.is_nil(views.partial("[1]"))
  end)

  it("negotiates the view from Accept as Kubernetes does", function()
    local pom = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
    local poml = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    assert.are.equal("Partial", request.view(pom, false))
    assert.are.equal("Partial", request.view(poml, true))
    -- the wrong shape is passed over for the next type
    assert.is_nil(request.view(pom .. ",application/json", true))
    assert.is_nil(request.view(poml, false))
    assert.are.equal("Partial", request.view(poml .. "," .. pom, false))
    assert.are.equal("Table", request.view(client_mod.TABLE_ACCEPT, true))
    assert.is_nil(request.view("application/json", true))
    assert.is_nil(request.view("application/json;as=PartialObjectMetadata;g=other.io;v=v1", false))
    assert.are.equal("Table", request.view("application/json;as=Table;v=v1;g=meta.k8s.io," .. pom, false))
    assert.is_nil(request.view(nil, false))
  end)

  it("answers get, list and watch with metadata only", function()
    fake.run(function()
      local s = stack_mod.new()
      local c = s.client
      local a = assert(c:create("v1/ConfigMap", cm("a", { big = string.rep("x", 100) })))
      local res = assert(c:raw("GET", "/api/v1/namespaces/default/configmaps/a", nil,
        { Accept = client_mod.METADATA_ACCEPT }))
      local got = json.decode(res.body)
      assert.are.equal("PartialObjectMetadata", got.kind)
      assert.are.equal("meta.k8s.io/v1", got.apiVersion)
      assert.are.equal(a.metadata.uid, got.metadata.uid)
      assert.is_nil(got.data)
      local list = assert(c:list("v1/ConfigMap", { namespace = "default", metadata = true }))
      assert.are.equal("PartialObjectMetadataList", list.kind)
      assert.are.equal("meta.k8s.io/v1", list.apiVersion)
      assert.truthy(list.metadata.resourceVersion)
      assert.are.equal(1, #list.items)
      assert.is_nil(list.items[1].data)
      assert.are.same({ app = "x" }, list.items[1].metadata.labels)
      -- a plain list is still whole
      assert.are.equal(string.rep("x", 100), c:list("v1/ConfigMap", { namespace = "default" }).items[1].data.big)
      local w = assert(c:watch("v1/ConfigMap", { namespace = "default", metadata = true,
        resource_version = list.metadata.resourceVersion }))
      assert(c:create("v1/ConfigMap", cm("b")))
      local ev = assert(w:next())
      assert.are.equal("ADDED", ev.type)
      assert.are.equal("PartialObjectMetadata", ev.object.kind)
      assert.are.equal("b", ev.object.metadata.name)
      assert.is_nil(ev.object.data)
      assert(c:delete("v1/ConfigMap", "default", "b"))
      ev = assert(w:next())
      assert.are.equal("DELETED", ev.type)
      assert.is_nil(ev.object.data)
      w:close()
    end)
  end)
end)

describe("metadata informers", function()
  it("hand out metadata, cache identities, and turn whole on want_full", function()
    fake.run(function()
      local s = stack_mod.new()
      local c = s.client
      assert(c:create("v1/ConfigMap", cm("a")))
      local seen = {}
      local inf = informer.new({ client = c, kind = "v1/ConfigMap", metadata_only = true,
        log = function() end })
      inf:add_handler({
        add = function(o) seen[#seen + 1] = { "add", o } end,
        update = function(old, new) seen[#seen + 1] = { "update", old, new } end,
      })
      inf:start()
      assert.is_true(inf:wait_synced(2))
      assert(c:create("v1/ConfigMap", cm("b")))
      settle(function() return #seen == 2 end)
      for _, e in ipairs(seen) do
        -- the kind they are views of, metadata, no data
        assert.are.equal("ConfigMap", e[2].kind)
        assert.are.equal("v1", e[2].apiVersion)
        assert.is_nil(e[2].data)
        assert.are.same({ app = "x" }, e[2].metadata.labels)
      end
      local kept = inf:peek("default/b")
      assert.are.same({ "name", "namespace", "resourceVersion", "uid" },
        (function() local k = {} for n in pairs(kept.metadata) do k[#k + 1] = n end table.sort(k) return k end)())
      inf:want_full()
      settle(function() return inf:has_synced() and inf:peek("default/a").data ~= nil end)
      assert.are.same({ k = "v" }, inf:peek("default/b").data)
      assert.is_false(inf.metadata_only)
      -- whole objects come down the watch from now on
      assert(c:create("v1/ConfigMap", cm("c", { n = "1" })))
      settle(function() return inf:peek("default/c") ~= nil end)
      assert.are.same({ n = "1" }, inf:peek("default/c").data)
      inf:stop()
    end)
  end)

  it("never answer a controller's reads; a whole watcher makes them whole", function()
    fake.run(function()
      local s = stack_mod.new()
      local c = s.client
      assert(c:create("v1/ConfigMap", cm("a")))
      local m = manager.new({ client = c, log = function() end })
      local got = {}
      m:add({ name = "meta-reader", kind = "*",
        setup = function(ctx)
          ctx:watch("v1/ConfigMap", { add = function(o) got[#got + 1] = o end }, { metadata = true })
          got.ctx = ctx
        end,
        reconcile = function() end })
      m:start()
      settle(function() return #got == 1 end)
      assert.is_nil(got[1].data)
      assert.is_true(m.informers["v1/ConfigMap"].metadata_only)
      -- reads go to the API, so they are whole
      assert.are.same({ k = "v" }, got.ctx:get("v1/ConfigMap", "default", "a").data)
      assert.are.same({ k = "v" }, got.ctx:list("v1/ConfigMap", { namespace = "default" })[1].data)
      -- a controller that watches whole objects upgrades the shared informer
      local full = {}
      m:add({ name = "whole-reader", kind = "*",
        setup = function(ctx)
          ctx:watch("v1/ConfigMap", { update = function(_, o) full[#full + 1] = o end })
        end,
        reconcile = function() end })
      local inf = m.informers["v1/ConfigMap"]
      settle(function() return inf:has_synced() and not inf.metadata_only and inf:peek("default/a").data end)
      assert.are.same({ k = "v" }, inf:peek("default/a").data)
      m:stop()
    end)
  end)
end)

describe("owner graph", function()
  local kind = { gvk = "v1/ConfigMap", api_version = "v1", kind = "ConfigMap", group = "", namespaced = true }
  local function obj(uid, owners, deleting)
    local refs
    for _, o in ipairs(owners or {}) do
      refs = refs or {}
      refs[#refs + 1] = { apiVersion = "v1", kind = "ConfigMap", name = "o", uid = o }
    end
    return { metadata = { uid = uid, name = "n-" .. uid, namespace = "ns", ownerReferences = refs,
      deletionTimestamp = deleting and "2026-01-01T00:00:00Z" or nil } }
  end

  it("keeps no node for a plain object, and builds one when asked", function()
    local g = owner_graph.new()
    local node, old = g:upsert(obj("p"), kind)
    assert.is_nil(old)
    assert.are.equal("p", node.uid)
    assert.is_nil(g.nodes.p)
    assert.are.equal(kind, g.plain_kind.p)
    local n = g:node("p")
    assert.are.same({ "ConfigMap", "", true, "ns", 0, false },
      { n.kind, n.group, n.namespaced, n.namespace, #n.owners, n.deleting_dependents })
    assert.are.equal(1, g:size())
    -- owned: a real node with its reference indexed
    node, old = g:upsert(obj("p", { "o" }), kind)
    assert.are.equal("p", old.uid)
    assert.are.equal(node, g.nodes.p)
    assert.is_nil(g.plain_kind.p)
    assert.is_true(g:has_dependents("o"))
    assert.are.equal(1, g:size())
    -- released again: back to plain, the reference unindexed
    g:upsert(obj("p"), kind)
    assert.is_nil(g.nodes.p)
    assert.is_false(g:has_dependents("o"))
    -- being deleted: a node, even without owners
    g:upsert(obj("p", nil, true), kind)
    assert.is_true(g.nodes.p.deleting)
    assert.are.equal("p", g:remove("p").uid)
    assert.is_nil(g:node("p"))
    assert.are.equal(0, g:size())
    assert.is_nil(g:remove("p"))
    g:upsert(obj("q"), kind)
    assert.are.equal("q", g:remove("q").uid)
    assert.is_nil(g.plain_kind.q)
    assert.is_nil(g.plain_ns.q)
  end)
end)
