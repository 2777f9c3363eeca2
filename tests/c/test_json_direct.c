/* The direct JSON text <-> Lua codec (bindings/lconv.c) inside an embedded
 * Lua state, so ASan/UBSan see its memory: decoding and encoding random
 * documents, mutated and truncated texts (every decline must leave the
 * stack as it was and fall back to jansson with the same answer), deep
 * nesting, big objects (the member stack and the key sort's heap array)
 * and the store's get, which reads stored texts the same way. Prints TAP. */
#include "tap_lua.h"

/* Shared by the chunks: a describer that tells integer from real and
 * marked arrays from objects, and the comparison of both decoders. */
#define PRELUDE                                                             \
  "local core = require('moonlet.core.json')\n"                             \
  "local json = require('moonlet.json')\n"                                  \
  "local function w(v, o)\n"                                                \
  "  if type(v) == 'table' then\n"                                          \
  "    if getmetatable(v) == json.array_mt then\n"                          \
  "      o[#o+1] = '['; for i = 1, #v do w(v[i], o); o[#o+1] = ',' end\n"   \
  "      o[#o+1] = ']'\n"                                                   \
  "    else\n"                                                              \
  "      local ks = {}; for k in pairs(v) do ks[#ks+1] = k end\n"           \
  "      table.sort(ks); o[#o+1] = '{'\n"                                   \
  "      for _, k in ipairs(ks) do o[#o+1] = ('%q:'):format(k); w(v[k], o);" \
  " o[#o+1] = ',' end\n"                                                    \
  "      o[#o+1] = '}'\n"                                                   \
  "    end\n"                                                               \
  "  elseif type(v) == 'number' then o[#o+1] = math.type(v) .. "            \
  "('%.17g'):format(v)\n"                                                   \
  "  else o[#o+1] = tostring(v) end\n"                                      \
  "end\n"                                                                   \
  "local function d(v) local o = {}; w(v, o); return table.concat(o) end\n" \
  "local function same(text)\n"                                             \
  "  local a, ea = json.decode(text)\n"                                     \
  "  local b, eb = core._decode_jansson(text)\n"                            \
  "  assert(ea == eb, 'error differs for ' .. text)\n"                      \
  "  assert(d(a) == d(b), 'value differs for ' .. text)\n"                  \
  "end\n"

static const char random_docs[] = PRELUDE
    "math.randomseed(3)\n"
    "local function gen(depth)\n"
    "  local r = math.random(10)\n"
    "  if depth > 4 or r <= 3 then\n"
    "    local p = math.random(6)\n"
    "    if p == 1 then return math.random(-1e9, 1e9) end\n"
    "    if p == 2 then local t = {} for i = 1, math.random(0, 8) do\n"
    "      t[i] = string.char(math.random(0, 255)) end\n"
    "      return table.concat(t) end\n"
    "    if p == 3 then return math.random(2) == 1 end\n"
    "    if p == 4 then return json.null end\n"
    "    if p == 5 then return math.random() * 1e6 end\n"
    "    return 'caf\\xc3\\xa9 \\xf0\\x9f\\x98\\x80 \"q\" \\\\ \\n'\n"
    "  end\n"
    "  local t = math.random(2) == 1 and json.array() or {}\n"
    "  for i = 1, math.random(0, depth == 0 and 30 or 4) do\n"
    "    if getmetatable(t) then t[i] = gen(depth + 1)\n"
    "    else t['k' .. math.random(60)] = gen(depth + 1) end\n"
    "  end\n"
    "  return t\n"
    "end\n"
    "for _ = 1, 200 do\n"
    "  local v = gen(0)\n"
    "  local a, b = json.encode(v), core._encode_jansson(v)\n"
    "  assert(a == b, 'encode differs: ' .. tostring(a) .. ' vs ' .. "
    "tostring(b))\n"
    "  local u = json.encode(v, {sort_keys = false})\n"
    "  assert(u == core._encode_jansson(v, {sort_keys = false}))\n"
    "  same(a)\n"
    "  for cut = 1, #a, math.max(1, #a // 20) do same(a:sub(1, cut)) end\n"
    "  for _ = 1, 5 do\n"
    "    local i = math.random(#a)\n"
    "    same(a:sub(1, i - 1) .. string.char(math.random(0, 255)) .. "
    "a:sub(i + 1))\n"
    "  end\n"
    "end\n";

static const char big_and_deep[] = PRELUDE
    "local t = {}\n"
    "for i = 1, 5000 do t['key' .. i] = {i, 'v' .. i} end\n"
    "local text = json.encode(t)\n"
    "assert(text == core._encode_jansson(t))\n"
    "same(text)\n"
    "local arr = json.array()\n"
    "for i = 1, 20000 do arr[i] = i end\n"
    "same(json.encode(arr))\n"
    "for _, n in ipairs({10, 511, 512, 513, 600, 3000}) do\n"
    "  same(string.rep('[', n) .. string.rep(']', n))\n"
    "  same(string.rep('{\"a\":', n) .. '1' .. string.rep('}', n))\n"
    "  local v = {}; local cur = v\n"
    "  for _ = 1, n do cur.a = {}; cur = cur.a end\n"
    "  local a, ea = json.encode(v)\n"
    "  local b, eb = core._encode_jansson(v)\n"
    "  assert(a == b and ea == eb)\n"
    "end\n"
    "local cyc = {}; cyc.x = cyc\n"
    "local a, ea = json.encode(cyc)\n"
    "assert(a == nil and ea == select(2, core._encode_jansson(cyc)))\n";

static const char store_get[] =
    "local json = require('moonlet.json')\n"
    "local s = assert(require('moonlet.store').open{backend='memory'})\n"
    "local deep = {}; local cur = deep\n"
    "for _ = 1, 600 do cur.a = {}; cur = cur.a end\n"
    "assert(s:create('configmaps', 'ns', {metadata={name='deep'}, "
    "data=deep}))\n"
    "assert(s:create('configmaps', 'ns', {metadata={name='c', "
    "labels={a='b'}}, data={k='v\\0w', n=json.array()}}))\n"
    "local c = assert(s:get('configmaps', 'ns', 'c'))\n"
    "assert(c.data.k == 'v\\0w' and getmetatable(c.data.n) == "
    "json.array_mt)\n"
    "local d = assert(s:get('configmaps', 'ns', 'deep'))\n"
    "local n = 0; cur = d.data; while cur.a do n = n + 1; cur = cur.a end\n"
    "assert(n == 600, n)\n"
    "assert(s:get('configmaps', 'ns', 'none') == nil)\n"
    "s:close()\n";

int main(void) {
  tap_lua_run("random documents, truncated and mutated texts agree with jansson",
      random_docs);
  tap_lua_run("big objects and deep nesting agree with jansson", big_and_deep);
  tap_lua_run("store get reads stored texts directly (and deep ones via jansson)",
      store_get);
  return tap_done();
}
