-- The direct JSON text <-> Lua codec (bindings/lconv.c) against the jansson
-- path it replaces: for every input, json.decode and json.encode must give
-- what jansson alone gives (same values, same integer/real types, same
-- error messages), and the direct decoder must accept the usual shapes.
require("moonlet_core")
local core = require("moonlet.core.json")
local json = require("moonlet.json")

-- A canonical description of a decoded value: types and marks included.
local function walk(v, out)
  local t = type(v)
  if t == "table" then
    if json.is_array(v) or getmetatable(v) == json.array_mt then
      out[#out + 1] = "["
      for i = 1, #v do walk(v[i], out); out[#out + 1] = "," end
      out[#out + 1] = "]" .. (getmetatable(v) == json.array_mt and "m" or "")
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      out[#out + 1] = "{"
      for _, k in ipairs(keys) do
        out[#out + 1] = string.format("%q:", k)
        walk(v[k], out)
        out[#out + 1] = ","
      end
      out[#out + 1] = "}"
    end
  elseif t == "number" then
    out[#out + 1] = math.type(v) .. ":" .. string.format("%.17g", v)
  elseif v == json.null then
    out[#out + 1] = "null"
  else
    out[#out + 1] = t .. ":" .. tostring(v)
  end
end

local function describe_value(v)
  local out = {}
  walk(v, out)
  return table.concat(out)
end

local function same_decode(text)
  local a, ea = json.decode(text)
  local b, eb = core._decode_jansson(text)
  assert.are.equal(eb, ea, "error for " .. text)
  if b ~= nil then
    assert.are.equal(describe_value(b), describe_value(a), "value for " .. text)
  end
end

local ACCEPTED = {
  '{}', '[]', '{"a":1}', '[1,2,3]', '"x"', '0', '-0', '12', '-12', 'true', 'false', 'null',
  '  {"a" : [ 1 , {"b":null} , "c" ] }  ', '{"a":{"b":{"c":{}}}}',
  '1.5', '-1.5e3', '1E+2', '0.000001', '1e-400', '123456789012345678', '-123456789012345678',
  '"esc \\" \\\\ \\/ \\b \\f \\n \\r \\t"', '"\\u00e9\\u4e2d\\ud83d\\ude00"', '"caf\xc3\xa9 \xe4\xb8\xad"',
  '"nul\\u0000inside"', '{"dup":1,"dup":2}', '{"":""}', '"\x7f"',
  '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"a":"b"}},'
    .. '"spec":{"containers":[{"name":"c","image":"i","command":["true"],"ports":[{"containerPort":80}]}]}}',
}

local DECLINED = {
  '', ' ', '{', '[1,]', '{"a":1,}', '{"a"}', '01', '1.', '.5', '1e', '-', '+1', 'tru', 'nul', 'True',
  '"unterminated', '"ctl\x01"', '"bad \xff utf8"', '"\xc0\x80"', '"\xed\xa0\x80"', '"\\x"', '"\\u12"',
  '"\\ud800"', '"\\udc00"', '"\\ud800\\u0041"', '{"k\\u0000":1}', '1 2', '{} x', '[1]]',
  '1234567890123456789', '99999999999999999999', '-9223372036854775808', '1e999', '-1e999',
  string.rep("[", 600) .. string.rep("]", 600), '{1:2}', "{'a':1}", '[1 2]', 'NaN', 'Infinity',
}

describe("direct JSON decoding", function()
  it("decodes the usual shapes exactly as jansson does", function()
    for _, text in ipairs(ACCEPTED) do
      assert.is_not_nil(core._decode_direct(text), "direct path declined " .. text)
      same_decode(text)
    end
  end)

  it("declines what jansson must judge, and json.decode still answers as jansson", function()
    for _, text in ipairs(DECLINED) do
      assert.is_nil(core._decode_direct(text), "direct path accepted " .. text)
      same_decode(text)
    end
  end)

  it("keeps the last value of a repeated key and marks arrays", function()
    local v = core._decode_direct('{"a":1,"a":[],"b":{}}')
    assert.are.same(json.array_mt, getmetatable(v.a))
    assert.is_nil(getmetatable(v.b))
    assert.are.equal('{"a":[],"b":{}}', json.encode(v))
    assert.are.equal("integer", math.type(core._decode_direct("7")))
    assert.are.equal("float", math.type(core._decode_direct("7.0")))
  end)

  it("agrees with jansson on mutated inputs", function()
    math.randomseed(42)
    local base = ACCEPTED[#ACCEPTED]
    local alphabet = '{}[]",:0123456789.eE+-\\utrfaln \t\n\x01\x80\xc3\xa9'
    for _ = 1, 3000 do
      local s = base
      for _ = 1, math.random(1, 3) do
        local i = math.random(1, #s)
        local op = math.random(3)
        local k = math.random(1, #alphabet)
        local c = alphabet:sub(k, k)
        if op == 1 then s = s:sub(1, i - 1) .. c .. s:sub(i + 1)
        elseif op == 2 then s = s:sub(1, i - 1) .. c .. s:sub(i)
        else s = s:sub(1, i - 1) .. s:sub(i + 1) end
      end
      same_decode(s)
    end
  end)
end)

describe("direct JSON encoding", function()
  local function same_encode(v, opts)
    local a, ea = json.encode(v, opts)
    local b, eb = core._encode_jansson(v, opts)
    assert.are.equal(b, a)
    assert.are.equal(eb, ea)
  end

  it("writes what jansson writes, sorted or not", function()
    local values = {
      {}, json.array(), json.object({}), { 1, 2, 3 }, { a = 1, b = { c = { true, false } } },
      { [1] = "a", [3] = "c" }, json.array({ 1, nil, 3 }), { z = 1, a = 2, aa = 3, [""] = 4, ["a\0b"] = 5 },
      "plain", "quote \" back \\ slash / ctl \1\31\127 nl \n tab \t", "caf\xc3\xa9 \xf0\x9f\x98\x80",
      "bad \xff utf8", { ["bad\xffkey"] = 1 }, 1.5, 0.1, 1e300, -0.0, math.maxinteger, math.mininteger,
      { x = 2.0 }, json.null, { n = json.null }, true, false,
      { f = function() end }, { [true] = 1 }, { [1.5] = 1 }, { 1, 2, x = 3 },
      { apiVersion = "v1", kind = "Pod", metadata = { name = "p", labels = { app = "a", tier = "b" } },
        spec = { containers = { { name = "c", image = "i", command = json.array({ "true" }) } } } },
    }
    local cyc = {}
    cyc.self = cyc
    values[#values + 1] = cyc
    for _, v in ipairs(values) do
      same_encode(v)
      same_encode(v, { sort_keys = false })
      same_encode(v, { sort_keys = true })
    end
  end)

  it("sorts keys byte-wise, shorter prefix first", function()
    local t = {}
    for _, k in ipairs({ "b", "a", "ab", "B", "a0", "\xc3\xa9", "_", "aa" }) do t[k] = 1 end
    same_encode(t)
    assert.are.equal('{"B":1,"_":1,"a":1,"a0":1,"aa":1,"ab":1,"b":1,"\xc3\xa9":1}', json.encode(t))
  end)

  it("round-trips random documents", function()
    math.randomseed(7)
    local function gen(depth)
      local r = math.random(10)
      if depth > 4 or r <= 3 then
        local p = math.random(6)
        if p == 1 then return math.random(-1e6, 1e6) end
        if p == 2 then return ("k"):rep(math.random(0, 3)) .. string.char(math.random(1, 126)) end
        if p == 3 then return math.random(2) == 1 end
        if p == 4 then return json.null end
        if p == 5 then return math.random() end
        return "s" .. math.random(100)
      end
      local t = math.random(2) == 1 and json.array() or {}
      for i = 1, math.random(0, 5) do
        if getmetatable(t) then t[i] = gen(depth + 1)
        else t["k" .. math.random(20) .. string.char(math.random(32, 126))] = gen(depth + 1) end
      end
      return t
    end
    for _ = 1, 500 do
      local v = gen(0)
      same_encode(v)
      same_encode(v, { sort_keys = false })
      same_decode(json.encode(v))
    end
  end)
end)
