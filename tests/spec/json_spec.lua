-- moonlet.json: the JSON codec every API request goes through (jansson
-- underneath, conventions of bindings/lconv.h).
require("moonlet_core")
local json = require("moonlet.json")

describe("moonlet.json", function()
  it("round-trips a Kubernetes object", function()
    local text = '{"apiVersion":"v1","kind":"Pod","metadata":{"labels":{"app":"kubia"},'
      .. '"name":"kubia"},"spec":{"containers":[{"image":"luksa/kubia","name":"kubia",'
      .. '"ports":[{"containerPort":8080,"protocol":"TCP"}]}]}}'
    local v = assert(json.decode(text))
    assert.are.equal("kubia", v.metadata.name)
    assert.are.equal(8080, v.spec.containers[1].ports[1].containerPort)
    assert.are.equal(text, json.encode(v))
  end)

  it("sorts keys by default and can keep jansson order off", function()
    assert.are.equal('{"a":1,"b":2,"c":3}', json.encode({ c = 3, a = 1, b = 2 }))
    local out = json.encode({ c = 3, a = 1 }, { sort_keys = false })
    assert.is_truthy(out == '{"c":3,"a":1}' or out == '{"a":1,"c":3}')
  end)

  it("indents like json.MarshalIndent", function()
    assert.are.equal('{\n  "a": [\n    1,\n    2\n  ],\n  "b": {}\n}',
      json.encode({ a = { 1, 2 }, b = {} }, { indent = 2 }))
    assert.are.equal('{\n    "a": 1\n}', json.encode({ a = 1 }, { indent = 4 }))
    assert.are.equal('{\n  "a": 1\n}', json.pretty({ a = 1 }))
  end)

  it("keeps empty arrays as arrays and empty objects as objects", function()
    local v = assert(json.decode('{"list":[],"map":{}}'))
    assert.is_true(json.is_array(v.list))
    assert.is_false(json.is_array(v.map))
    assert.are.equal('{"list":[],"map":{}}', json.encode(v))
    assert.are.equal("[]", json.encode(json.array()))
    assert.are.equal("{}", json.encode({}))
  end)

  it("tells arrays from objects by their keys", function()
    assert.are.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
    assert.are.equal('{"1":"a","3":"b"}', json.encode({ [1] = "a", [3] = "b" }))
    assert.are.equal('{"1":1,"2":2,"x":3}', json.encode({ 1, 2, x = 3 }))
    assert.are.equal('{"1":"a"}', json.encode(json.object({ "a" })))
    local t = json.array({ "x" })
    assert.are.equal(t, json.array(t))
    assert.are.equal('["x"]', json.encode(t))
    assert.is_true(json.is_array({ 1 }))
    assert.is_false(json.is_array(json.object({ 1 })))
    assert.is_false(json.is_array("x"))
  end)

  it("encodes nil holes of marked arrays as null", function()
    local t = json.array({ 1, json.null, 3 })
    assert.are.equal("[1,null,3]", json.encode(t))
  end)

  it("maps null to json.null both ways", function()
    local v = assert(json.decode('{"a":null,"b":[null]}'))
    assert.are.equal(json.null, v.a)
    assert.is_true(json.is_null(v.b[1]))
    assert.is_false(json.is_null(false))
    assert.are.equal('{"a":null,"b":[null]}', json.encode(v))
    assert.are.equal("null", json.encode(json.null))
    assert.are.equal("null", json.encode(nil))
  end)

  it("keeps integers integers and floats floats", function()
    local v = assert(json.decode('[1,-7,9007199254740993,1.0,1.5,1e3,-0.25]'))
    assert.are.equal("integer", math.type(v[1]))
    assert.are.equal(-7, v[2])
    assert.are.equal(9007199254740993, v[3])
    assert.are.equal("integer", math.type(v[3]))
    assert.are.equal("float", math.type(v[4]))
    assert.are.equal(1.5, v[5])
    assert.are.equal("float", math.type(v[6]))
    assert.are.equal(1000.0, v[6])
    assert.are.equal("[1,-7,9007199254740993,1.0,1.5,1000.0,-0.25]", json.encode(v))
    assert.are.equal(math.maxinteger, json.decode(json.encode(math.maxinteger)))
    assert.are.equal(math.mininteger, json.decode(json.encode(math.mininteger)))
    for _, f in ipairs({ 0.1, 1 / 3, 1e300, -2.5e-300, 123456.789 }) do
      local back = json.decode(json.encode(f))
      assert.are.equal(f, back)
      assert.are.equal("float", math.type(back))
    end
  end)

  it("refuses NaN and infinities", function()
    local ok, err = json.encode({ a = 0 / 0 })
    assert.is_nil(ok)
    assert.are.equal("a: cannot encode NaN or Infinity", err)
    assert.is_nil(json.encode(math.huge))
    assert.is_nil(json.encode({ -math.huge }))
  end)

  it("names the field that cannot be encoded", function()
    local ok, err = json.encode({ spec = { containers = { { name = "a" }, { image = print } } } })
    assert.is_nil(ok)
    assert.are.equal("spec.containers[1].image: cannot encode a function", err)
    ok, err = json.encode({ metadata = { labels = { [true] = "x" } } })
    assert.is_nil(ok)
    assert.are.equal("metadata.labels: cannot encode a boolean key", err)
    ok, err = json.encode(coroutine.create(print))
    assert.are.equal("cannot encode a thread", err)
  end)

  it("stops on cycles instead of recursing forever", function()
    local t = {}
    t.self = t
    local ok, err = json.encode(t)
    assert.is_nil(ok)
    assert.matches("nesting deeper than", err)
  end)

  it("reports decode errors with line and column", function()
    local v, err = json.decode('{\n  "a": 1,\n  "b": x\n}')
    assert.is_nil(v)
    assert.matches("^line 3, column %d+: ", err)
    v, err = json.decode("")
    assert.is_nil(v)
    assert.matches("^line 1, column 0: ", err)
    v, err = json.decode('{"a":1} trailing')
    assert.is_nil(v)
    assert.matches("end of file expected", err)
  end)

  it("tells a request body's repeated member names, keeping the last value", function()
    local v, dup = json.decode_strict('{"a":{"b":1,"b":2},"c":[{"d":1,"d":3}]}')
    assert.is_true(dup)
    assert.are.equal(2, v.a.b)
    assert.are.equal(3, v.c[1].d)
    v, dup = json.decode_strict('{"a":{"b":1},"b":[{"b":1},{"b":2}]}')
    assert.is_false(dup)
    -- the long-key and escaped spellings, and text the direct decoder
    -- declines (a 19-digit integer: jansson reads it)
    local long = string.rep("k", 60)
    assert.is_true(select(2, json.decode_strict('{"' .. long .. '":1,"' .. long .. '":2}')))
    assert.is_true(select(2, json.decode_strict('{"ab":1,"\\u0061b":2}')))
    assert.is_true(select(2, json.decode_strict('{"\\u0061b":1,"x":0,"ab":2}')))
    -- keys alike in length and first and last bytes are no duplicates
    assert.is_false(select(2, json.decode_strict('{"ab":1,"axb":2,"acb":3,"a":{"ab":1}}')))
    -- past the 64th member every key is looked up
    local members = {}
    for i = 1, 70 do members[i] = string.format('"k%d":%d', i, i) end
    assert.is_false(select(2, json.decode_strict("{" .. table.concat(members, ",") .. "}")))
    members[71] = '"k66":0'
    assert.is_true(select(2, json.decode_strict("{" .. table.concat(members, ",") .. "}")))
    v, dup = json.decode_strict('{"n":1234567890123456789,"x":1,"x":2}')
    assert.are.equal(1234567890123456789, v.n)
    assert.is_true(dup)
    assert.is_false(select(2, json.decode_strict('{"n":1234567890123456789}')))
    local bad, err = json.decode_strict('{"a":')
    assert.is_nil(bad)
    assert.matches("line 1", err)
  end)

  it("finds where duplicates and given paths stand in the text", function()
    local text = '{"metadata":{"name":"a","name":"b"},"spec":{"x":1,"c":[{"n":1,"n":2}]},"zz":1}'
    local dups, at = json.fields(text, { zz = true, ["spec.x"] = true, nowhere = true })
    assert.are.same({ { "metadata.name", 3 }, { "spec.c[0].n", 8 } }, dups)
    assert.are.same({ zz = 9, ["spec.x"] = 5 }, at)
    assert.are.same({}, (json.fields('{"a":1}')))
    assert.is_nil(json.fields('{"a":'))
  end)

  it("decodes scalars at the top level", function()
    assert.are.equal(3, json.decode("3"))
    assert.are.equal("x", json.decode('"x"'))
    assert.are.equal(false, json.decode("false"))
    assert.are.equal('"x"', json.encode("x"))
    assert.are.equal("true", json.encode(true))
  end)

  it("escapes strings and replaces invalid UTF-8 like Go", function()
    assert.are.equal('"a\\"b\\\\c\\n\\u0001"', json.encode('a"b\\c\n\1'))
    assert.are.equal('"héllo/ü"', json.encode("héllo/ü"))
    assert.are.equal('"a\239\191\189b"', json.encode("a\255b"))
    assert.are.equal('{"k\239\191\189":1}', json.encode({ ["k\200"] = 1 }))
    assert.are.equal("a\0b", json.decode('"a\\u0000b"'))
    assert.are.equal("é", json.decode('"\\u00e9"'))
  end)

  it("encodes numeric keys as their decimal text", function()
    assert.are.equal('{"10":"b","x":"a"}', json.encode({ x = "a", [10] = "b" }))
    assert.are.equal('{"1.5":true}', json.encode({ [1.5] = true }))
  end)

  it("deep-copies keeping marks", function()
    local v = assert(json.decode('{"a":[],"b":{"c":[1,{"d":null}]}}'))
    local c = json.copy(v)
    assert.are_not.equal(v.b, c.b)
    assert.are_not.equal(v.b.c[2], c.b.c[2])
    assert.are.same(v, c)
    assert.are.equal(json.array_mt, getmetatable(c.a))
    assert.are.equal(json.encode(v), json.encode(c))
    assert.are.equal(5, json.copy(5))
    local t = {}
    t.t = t
    assert.has_error(function() json.copy(t) end)
  end)

  it("raises on misuse", function()
    assert.has_error(function() json.decode() end)
    assert.has_error(function() json.encode({}, { indent = -1 }) end)
    assert.has_error(function() json.encode({}, 3) end)
    assert.has_error(function() json.array(3) end)
  end)

  it("handles big documents", function()
    local items = json.array()
    for i = 1, 5000 do
      items[i] = { metadata = { name = "pod-" .. i, labels = { app = "kubia", i = tostring(i) } },
                   spec = { containers = { { name = "c", image = "img", ports = { { containerPort = i } } } } },
                   status = { phase = "Running", ready = i % 2 == 0 } }
    end
    local list = { apiVersion = "v1", kind = "List", items = items }
    local text = assert(json.encode(list))
    assert.is_true(#text > 500000)
    local back = assert(json.decode(text))
    assert.are.equal(5000, #back.items)
    assert.are.equal("pod-4321", back.items[4321].metadata.name)
    assert.are.equal(text, json.encode(back))
    -- the reused output buffer must not leak bytes of a longer earlier result
    assert.are.equal("[]", json.encode(json.array()))
  end)

  it("rejects absurdly deep input without crashing", function()
    local deep = string.rep("[", 100000) .. string.rep("]", 100000)
    local v, err = json.decode(deep)
    assert.is_nil(v)
    assert.is_string(err)
  end)

  it("digests a value as FNV-1a (64 bits) of its encoding, on both encoders", function()
    local function fnv(text) -- the reference, byte by byte
      local h = -3750763034362895579 -- 0xcbf29ce484222325
      for i = 1, #text do h = (h ~ text:byte(i)) * 0x100000001b3 end
      return h
    end
    local values = { { a = 1, b = { "x", json.null, true } }, json.array({}), "", 0.5,
      { status = { conditions = json.array({ { type = "Ready", status = "True" } }) } } }
    for _, v in ipairs(values) do
      for _, opts in ipairs({ {}, { sort_keys = false }, { indent = 2 } }) do
        assert.are.equal(fnv(json.encode(v, opts)), json.digest(v, opts))
      end
    end
    assert.are_not.equal(json.digest({ a = 1 }), json.digest({ a = 2 }))
    local bad = {}
    bad.self = bad
    assert.is_nil((json.digest(bad)))
  end)

  it("decodes up to the depth the encoders take back, and refuses deeper with the place", function()
    local ok = string.rep("[", 1000) .. string.rep("]", 1000)
    local v = assert(json.decode(ok))
    assert.is_string(json.encode(v))
    local deep = '{"a": "[[[", "b": ' .. string.rep("[", 1500) .. string.rep("]", 1500) .. "}"
    local got, err = json.decode(deep)
    assert.is_nil(got)
    -- column 1018: the 1000th "[" inside the object (the string's do not count)
    assert.are.equal("line 1, column 1018: maximum parsing depth reached near '['", err)
  end)
end)
