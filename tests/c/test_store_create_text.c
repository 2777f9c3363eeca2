/* The store's create from a Lua table's text (s:create with {json=true}:
 * every API create) against the jansson path (s:create without it): two
 * stores with the same seed and clock must store the same bytes, answer
 * the same errors and index the same labels, for random objects and for
 * the ones the text path declines; and the text path builds no jansson
 * tree. Runs inside an embedded Lua state so ASan sees the binding.
 * Prints TAP. */
#include <stdlib.h>

#include "lstore.h"
#include "store.h"
#include "tap_lua.h"

static long jansson_allocs;

static void *count_malloc(size_t n) {
  jansson_allocs++;
  return malloc(n);
}

/* Lua: seed(store, n): a deterministic uid and name source. */
static int l_seed(lua_State *L) {
  ml_store_set_seed(ml_lua_check_store(L, 1), (uint64_t)luaL_checkinteger(L, 2));
  return 0;
}

/* Lua: allocs() -> jansson allocations so far. */
static int l_allocs(lua_State *L) {
  lua_pushinteger(L, jansson_allocs);
  return 1;
}

static const char same_bytes[] =
    "local cstore = require('moonlet.core.store')\n"
    "local json = require('moonlet.json')\n"
    "local a = assert(cstore.open{backend='memory'})\n"
    "local b = assert(cstore.open{backend='memory'})\n"
    "seed(a, 7); seed(b, 7); a:set_time(1700000000); b:set_time(1700000000)\n"
    "math.randomseed(42)\n"
    "local function pick(t) return t[math.random(#t)] end\n"
    "local values = { 'v', '', 'caf\\xc3\\xa9', 'tab\\tq\"', 7, -1, true, false,\n"
    "  json.null, function() return json.array({}) end, function() return json.object({}) end,\n"
    "  function() return { 'x', 2, { k = 'v' } } end, function() return { a = { b = { c = 'd' } } } end }\n"
    "local function value() local v = pick(values); if type(v) == 'function' then return v() end return v end\n"
    "local meta_keys = { 'name', 'generateName', 'namespace', 'uid', 'resourceVersion', 'generation',\n"
    "  'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'labels',\n"
    "  'annotations', 'finalizers', 'ownerReferences' }\n"
    "local n_text = 0\n"
    "for i = 1, 600 do\n"
    "  local meta = {}\n"
    "  for _, k in ipairs(meta_keys) do if math.random(2) == 1 then meta[k] = value() end end\n"
    "  local r = math.random(6)\n"
    "  if r <= 3 then meta.name = 'o' .. i elseif r == 4 then meta.name = nil; meta.generateName = 'g-' end\n"
    "  if math.random(3) == 1 then meta.labels = { app = 'x' .. (i % 3), tier = 'web' } end\n"
    "  if math.random(4) == 1 then meta.resourceVersion = nil end\n"
    "  if math.random(3) == 1 then meta.namespace = pick({ 'ns', '', 'other' }) end\n"
    "  local obj = { metadata = meta }\n"
    "  for _, k in ipairs({ 'apiVersion', 'kind', 'spec', 'data', 'status' }) do\n"
    "    if math.random(2) == 1 then obj[k] = value() end\n"
    "  end\n"
    "  if i % 50 == 0 then obj.data = { f = 1.5 } end -- a real: the text path declines\n"
    "  if i % 70 == 0 then meta.annotations = { bad = 'x\\xff' } end -- bad UTF-8: declines\n"
    "  if i % 90 == 0 then obj.metadata = 'm' end\n"
    "  if i % 95 == 0 then obj = { 'not', 'an', 'object' } end\n"
    "  local ns = pick({ 'ns', '' })\n"
    "  local opts = { generation = math.random(2) == 1, keep_uid = math.random(3) == 1 }\n"
    "  local ta, ea, ca = a:create('things', ns, obj, { json = true, generation = opts.generation,\n"
    "    keep_uid = opts.keep_uid })\n"
    "  local tb, eb, cb = b:create('things', ns, obj, opts)\n"
    "  if ta then\n"
    "    n_text = n_text + 1\n"
    "    assert(type(ta) == 'string' and type(tb) == 'table', 'one succeeded alone: ' .. tostring(eb))\n"
    "    local m = tb.metadata\n"
    "    local sb = assert(b:get_json('things', m.namespace or '', m.name))\n"
    "    assert(ta == sb, '\\ntext:    ' .. ta .. '\\njansson: ' .. sb)\n"
    "    assert(a:get_json('things', m.namespace or '', m.name) == ta)\n"
    "  else\n"
    "    assert(tb == nil and ea == eb and ca == cb, tostring(ea) .. ' vs ' .. tostring(eb))\n"
    "  end\n"
    "end\n"
    "assert(n_text > 300, 'too few created: ' .. n_text)\n"
    "for _, sel in ipairs({ 'app=x1', 'tier', 'app notin (x0)', '!app' }) do\n"
    "  local la = assert(a:list_json('things', { label_selector = sel }))\n"
    "  local lb = assert(b:list_json('things', { label_selector = sel }))\n"
    "  assert(la == lb, sel)\n"
    "end\n"
    "assert(a:resource_version() == b:resource_version())\n"
    "a:close(); b:close()\n";

/* The text path's watch events: namespace, field-selector and ownership
 * watchers see an object written as text only. */
static const char watchers[] =
    "local store = require('moonlet.store')\n"
    "local sched = require('moonlet.sched')\n"
    "local s = assert(require('moonlet.core.store').open{backend='memory'})\n"
    "local got = sched.run(function()\n"
    "  local by_ns = assert(store.watch_stream(s, 'things', { namespace = 'ns' }))\n"
    "  local by_field = assert(store.watch_stream(s, 'things', { field_selector = 'metadata.name=b' }))\n"
    "  local by_label = assert(store.watch_stream(s, 'things', { label_selector = 'app=x' }))\n"
    "  assert(s:create('things', 'other', { metadata = { name = 'a' } }, { json = true }))\n"
    "  assert(s:create('things', 'ns', { metadata = { name = 'b', labels = { app = 'x' } } }, { json = true }))\n"
    "  local k1, o1 = by_ns:next()\n"
    "  local k2, o2 = by_field:next()\n"
    "  local k3, o3 = by_label:next()\n"
    "  by_ns:close(); by_field:close(); by_label:close()\n"
    "  return k1 .. o1.metadata.name .. k2 .. o2.metadata.name .. k3 .. o3.metadata.name\n"
    "end)\n"
    "assert(got == 'ADDEDbADDEDbADDEDb', got)\n"
    "-- ownership watchers hear only objects with owners or finalizers\n"
    "local json = require('moonlet.json')\n"
    "got = sched.run(function()\n"
    "  local owners = assert(store.watch_stream(s, 'things', { owner_events = true }))\n"
    "  local function mk(name, meta)\n"
    "    meta.name = name\n"
    "    assert(s:create('things', 'ns', { metadata = meta }, { json = true }))\n"
    "  end\n"
    "  mk('plain', {})\n"
    "  mk('empty', { ownerReferences = json.array({}), finalizers = '' })\n"
    "  mk('null', { ownerReferences = json.null })\n"
    "  mk('owned', { ownerReferences = { { kind = 'X', name = 'x', uid = 'u' } } })\n"
    "  mk('fin', { finalizers = { 'f' } })\n"
    "  mk('object', { ownerReferences = {} })\n"
    "  local names = {}\n"
    "  for _ = 1, 3 do local _, o = owners:next(); names[#names + 1] = o.metadata.name end\n"
    "  owners:close()\n"
    "  return table.concat(names, ',')\n"
    "end)\n"
    "assert(got == 'owned,fin,object', got)\n"
    "s:close()\n";

static const char no_tree[] =
    "local s = assert(require('moonlet.core.store').open{backend='memory'})\n"
    "local obj = { apiVersion = 'v1', kind = 'ConfigMap', metadata = { name = 'c', namespace = 'ns' },\n"
    "  data = { k = 'v', other = 'text' } }\n"
    "local before = allocs()\n"
    "assert(s:create('configmaps', 'ns', obj, { json = true }))\n"
    "local used = allocs() - before\n"
    "assert(used == 0, 'jansson allocations in a text create: ' .. used)\n"
    "obj.metadata.name = 'd'\n"
    "before = allocs()\n"
    "assert(s:create('configmaps', 'ns', obj))\n"
    "assert(allocs() - before > 10, 'the counter counts')\n"
    "s:close()\n";

static void run(const char *what, const char *code) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "moonlet_core", luaopen_moonlet_core, 0);
  lua_pop(L, 1);
  lua_register(L, "seed", l_seed);
  lua_register(L, "allocs", l_allocs);
  int rc = luaL_dostring(L, code);
  ok(rc == LUA_OK, "%s", what);
  if (rc != LUA_OK) printf("#   %s\n", lua_tostring(L, -1));
  lua_close(L);
}

int main(void) {
  json_set_alloc_funcs(count_malloc, free);
  run("create: the text path stores jansson's bytes and answers its errors", same_bytes);
  run("create: watchers see objects written as text", watchers);
  run("create: the text path builds no jansson tree", no_tree);
  return tap_done();
}
