-- Server-side Tables built from stored JSON texts (moonlet.core.table via
-- moonlet.api.table): the decoder gives what json.decode gives, cells and
-- row objects are encoded as the Lua path encoded them, and the router's
-- list, get and watch answer with them.
require("moonlet_core")
local core = require("moonlet.core.table")
local tables = require("moonlet.api.table")
local json = require("moonlet.json")
local sched = require("moonlet.sched")

package.path = os.getenv("ML_SRC") .. "/tests/spec/?.lua;" .. package.path
local stack_mod = require("api_stack")

local TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"

describe("moonlet.core.table decode", function()
  local cases = {
    '{"a":1,"b":-2.5,"c":"x","d":true,"e":false,"f":null}',
    '{"nested":{"list":[1,[2,3],{"k":"v"}],"empty":[],"obj":{}}}',
    '"esc \\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\u20ac \\ud83d\\ude00"',
    '[1e3, 1.5E-2, -0, 12345678901234, 0.1]',
    '  {"ws" : [ 1 , 2 ] }  ',
    '"plain utf-8: é €"',
  }
  for _, text in ipairs(cases) do
    it("matches json.decode for " .. text, function()
      local a = assert(core.decode(text))
      local b = assert(json.decode(text))
      assert.are.equal(json.encode(b), json.encode(a))
      assert.are.same(b, a)
    end)
  end

  it("keeps arrays marked, so an empty one stays an array", function()
    local v = assert(core.decode('{"a":[]}'))
    assert.is_true(json.is_array(v.a))
    assert.are.equal('{"a":[]}', json.encode(v))
    assert.is_true(json.is_null(core.decode("null")))
  end)

  it("integers stay integers and reals stay reals", function()
    local v = core.decode('[7, 7.0, -3]')
    assert.are.equal("integer", math.type(v[1]))
    assert.are.equal("float", math.type(v[2]))
    assert.are.equal("integer", math.type(v[3]))
  end)

  for _, bad in ipairs({ '{"a":1', '{"a" 1}', '[1,]', '"\\ud800"', '"\\x"', 'nul', '{"a":1}x', '"a\nb"' }) do
    it("rejects " .. bad, function()
      local v, err = core.decode(bad)
      assert.is_nil(v)
      assert.truthy(err:match("^offset %d+: "))
    end)
  end
end)

describe("moonlet.core.table rows", function()
  local items = '[{"apiVersion":"v1","kind":"Thing","metadata":{"name":"a","resourceVersion":"7"},"n":3},'
    .. '{"apiVersion":"v1","kind":"Thing","metadata":{"name":"b\\"q","resourceVersion":"9"},"n":4}]'
  local cols = {
    { value = function(o) return o.metadata.name end },
    { type = "integer", value = function(o) return o.n end },
    { type = "integer", value = function() return nil end },
    { value = function() return nil end },
    { value = function() error("boom") end },
    { value = function(o) return { o.n, 1.5, json.null } end },
    { value = function(o) return o.n > 3 end },
  }

  it("encodes cells as the Lua path did and slices each object's metadata", function()
    local rows, rv = core.rows(items, cols, 0, "Metadata")
    assert.are.equal("9", rv)
    local t = assert(json.decode(rows))
    assert.are.equal(2, #t)
    assert.are.same({ "a", 3, 0, "<none>", "<error>", { 3, 1.5, json.null }, false }, t[1].cells)
    assert.are.same({ 'b"q', 4, 0, "<none>", "<error>", { 4, 1.5, json.null }, true }, t[2].cells)
    assert.are.same({ apiVersion = "meta.k8s.io/v1", kind = "PartialObjectMetadata",
      metadata = { name = 'b"q', resourceVersion = "9" } }, t[2].object)
  end)

  it("includes the whole object, or none", function()
    local t = json.decode((core.rows(items, cols, 0, "Object")))
    assert.are.same(json.decode(items)[1], t[1].object)
    t = json.decode((core.rows(items, cols, 0, "None")))
    assert.is_nil(t[1].object)
    assert.are.equal('[]', (core.rows("[]", cols, 0, "Metadata")))
  end)

  it("passes now to the columns and fails on a bad text", function()
    local seen
    core.rows(items, { { value = function(_, now) seen = now; return "x" end } }, 1234, nil)
    assert.are.equal(1234, seen)
    local r, err = core.rows('[{"a":1},', cols, 0)
    assert.is_nil(r)
    assert.truthy(err:match("offset"))
    assert.is_nil(core.rows('{"a":1}', cols, 0))
  end)

  it("ages are computed once per creation second and are still right", function()
    local age = tables.age()
    local now = 1700000000
    local calls = 0
    local duration = require("moonlet.printers.duration")
    local since = duration.since
    duration.since = function(...) calls = calls + 1; return since(...) end
    local obj = { metadata = { creationTimestamp = "2023-11-14T22:12:20Z" } }
    local a = age.value(obj, now)
    local b = age.value(obj, now)
    duration.since = since
    assert.are.equal("60s", a)
    assert.are.equal(a, b)
    assert.are.equal(1, calls)
    assert.are.equal("2m", age.value(obj, now + 60))
  end)
end)

describe("Tables through the router", function()
  local function handle(stack, path, query, accept)
    local got
    local sink = { respond = function(_, code, _, body) got = { code = code, body = body } end,
      on_close = function() end }
    stack.router:handle({ method = "GET", path = path, query = query or "",
      headers = { accept = accept }, transport = "unix" }, sink)
    return got
  end

  it("lists, gets and pages ConfigMaps with kubectl's columns", function()
    sched.run(function()
      local stack = stack_mod.new()
      for i = 1, 3 do
        assert(stack.client:create("v1/ConfigMap", { apiVersion = "v1", kind = "ConfigMap",
          metadata = { name = "cm-" .. i, namespace = "default" }, data = { a = "1", b = tostring(i) } }))
      end
      local res = handle(stack, "/api/v1/namespaces/default/configmaps", "limit=2", TABLE)
      assert.are.equal(200, res.code)
      local t = json.decode(res.body)
      assert.are.equal("Table", t.kind)
      assert.are.same({ "Name", "Data", "Age" }, { t.columnDefinitions[1].name, t.columnDefinitions[2].name,
        t.columnDefinitions[3].name })
      assert.are.equal(2, #t.rows)
      assert.are.same({ "cm-1", 2, "0s" }, t.rows[1].cells)
      assert.are.equal("PartialObjectMetadata", t.rows[1].object.kind)
      assert.are.equal("cm-1", t.rows[1].object.metadata.name)
      assert.truthy(t.metadata.continue)
      assert.truthy(t.metadata.resourceVersion)
      -- the plain JSON list and the Table agree on the objects
      local list = json.decode(handle(stack, "/api/v1/namespaces/default/configmaps", "", "application/json").body)
      t = json.decode(handle(stack, "/api/v1/namespaces/default/configmaps", "includeObject=Object", TABLE).body)
      for i, item in ipairs(list.items) do assert.are.same(item, t.rows[i].object) end
      -- one object
      t = json.decode(handle(stack, "/api/v1/namespaces/default/configmaps/cm-3", "", TABLE).body)
      assert.are.equal(1, #t.rows)
      assert.are.same({ "cm-3", 2, "0s" }, t.rows[1].cells)
      assert.are.equal(404, handle(stack, "/api/v1/namespaces/default/configmaps/nope", "", TABLE).code)
    end)
  end)

  it("tables.build gives the same Table as a Lua value", function()
    local def = { columns = { tables.name(), { name = "N", type = "integer", value = function(o) return o.n end } } }
    local t = tables.build(def, { { metadata = { name = "x" }, n = 5 } }, { resource_version = "3" })
    assert.are.equal("3", t.metadata.resourceVersion)
    assert.are.same({ "x", 5 }, t.rows[1].cells)
    assert.are.same({ name = "x" }, t.rows[1].object.metadata)
  end)
end)
