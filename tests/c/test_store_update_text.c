/* The store's updates from a Lua table's text (s:update with a table:
 * ml_store_update_status_text and ml_store_update_text) against the tree
 * path (the same object handed over as JSON text): two stores with the
 * same seed and clock get the same random status writes and updates (fresh
 * values, the stored object again, the stored one with its members in
 * another order, the store's own metadata fields changed or dropped, stale
 * and wrong preconditions, missing objects, objects being deleted, shapes
 * the text path declines; generation and status-subresource flags at
 * random) and must store the same bytes, return the same objects, answer
 * the same errors, skip the same no-ops and deliver the same watch events
 * to plain, namespace, label, field (status.phase) and ownership watchers.
 * Also checks ml_json_equal_text against json_equal on random documents.
 * Runs inside an embedded Lua state so ASan sees the binding. Prints TAP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
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

static const char same_writes[] =
    "local cstore = require('moonlet.core.store')\n"
    "local store = require('moonlet.store')\n"
    "local sched = require('moonlet.sched')\n"
    "local json = require('moonlet.json')\n"
    "local a = assert(cstore.open{backend='memory'})\n"
    "local b = assert(cstore.open{backend='memory'})\n"
    "seed(a, 7); seed(b, 7); a:set_time(1700000000); b:set_time(1700000000)\n"
    "math.randomseed(SEED)\n"
    "local function pick(t) return t[math.random(#t)] end\n"
    "local strings = { 'v', '', 'caf\\xc3\\xa9', 'tab\\tq\"', 'ctl\\x01', 'Running', 'Succeeded' }\n"
    "local function value(d)\n"
    "  local r = math.random(d > 2 and 6 or 10)\n"
    "  if r == 1 then return pick(strings) elseif r == 2 then return math.random(-3, 1000)\n"
    "  elseif r == 3 then return math.random(2) == 1 elseif r == 4 then return json.null\n"
    "  elseif r == 5 then return 'k' .. math.random(5)\n"
    "  elseif r == 6 then return json.object({})\n"
    "  elseif r <= 8 then\n"
    "    local t = {}\n"
    "    for _ = 1, math.random(0, 4) do t['f' .. math.random(6)] = value(d + 1) end\n"
    "    return t\n"
    "  else\n"
    "    local t = json.array({})\n"
    "    for i = 1, math.random(0, 3) do t[i] = value(d + 1) end\n"
    "    return t\n"
    "  end\n"
    "end\n"
    "local function status_value()\n"
    "  local st = { phase = pick({ 'Pending', 'Running', 'Succeeded' }) }\n"
    "  for _ = 1, math.random(0, 4) do st['s' .. math.random(8)] = value(1) end\n"
    "  if math.random(12) == 1 then st.real = 1.5 end             -- a real: declines\n"
    "  if math.random(15) == 1 then st.bad = 'x\\xff' end           -- bad UTF-8: declines\n"
    "  if math.random(20) == 1 then return pick({ json.null, 'text', 7 }) end\n"
    "  return st\n"
    "end\n"
    "-- objects: from tables, and from text (status before metadata, reals in spec)\n"
    "local names = {}\n"
    "local function both(ns, obj)\n"
    "  local ra, ea = a:create('things', ns, obj)\n"
    "  local rb, eb = b:create('things', ns, obj)\n"
    "  assert((ra == nil) == (rb == nil), tostring(ea) .. ' / ' .. tostring(eb))\n"
    "end\n"
    "for i = 1, 60 do\n"
    "  local ns = pick({ 'ns', 'other', '' })\n"
    "  local meta = { name = 'o' .. i }\n"
    "  if math.random(2) == 1 then meta.labels = { app = pick({ 'x', 'y' }), tier = 'web' } end\n"
    "  if math.random(4) == 1 then meta.finalizers = { 'f' } end\n"
    "  if math.random(4) == 1 then meta.ownerReferences = { { kind = 'X', name = 'x', uid = 'u' } } end\n"
    "  local obj = { apiVersion = 'v1', kind = 'Thing', metadata = meta, spec = value(1) }\n"
    "  if math.random(3) > 1 then obj.status = status_value() end\n"
    "  if obj.status and (type(obj.status) == 'table' and obj.status.real) then obj.status.real = nil end\n"
    "  if i % 7 == 0 then\n"
    "    obj = string.format('{\"status\":{\"phase\":\"Running\",\"n\":%d},\"metadata\":{\"name\":\"o%d\",\"labels\":{\"app\":\"x\"}},\"spec\":{\"f\":0.1,\"s\":\"tab\\\\tq\\\\\"\",\"u\":\"\\\\u00e9\"}}', i, i)\n"
    "  elseif i % 11 == 0 then\n"
    "    obj = string.format('{\"metadata\":{\"name\":\"o%d\"},\"spec\":{\"r\":2.5}}', i)\n"
    "  end\n"
    "  both(ns, obj)\n"
    "  names[#names + 1] = { ns, 'o' .. i }\n"
    "end\n"
    "local function shuffled(t)\n"
    "  -- the same members inserted in another order (a json_equal no-op)\n"
    "  if type(t) ~= 'table' or json.is_array(t) then return t end\n"
    "  local keys = {}\n"
    "  for k in pairs(t) do keys[#keys + 1] = k end\n"
    "  table.sort(keys, function(x, y) return x > y end)\n"
    "  local o = {}\n"
    "  for _, k in ipairs(keys) do o[k] = shuffled(t[k]) end\n"
    "  if next(o) == nil then return json.object({}) end\n"
    "  return o\n"
    "end\n"
    "local n_text, n_noop, n_ok = 0, 0, 0\n"
    "local function writes(count)\n"
    "  for i = 1, count do\n"
    "    local ns, name = table.unpack(pick(names))\n"
    "    if math.random(40) == 1 then name = 'missing' end\n"
    "    if math.random(60) == 1 then name = '' end\n"
    "    local cur = b:get('things', ns, name)\n"
    "    local meta = { name = name }\n"
    "    if ns ~= '' then meta.namespace = ns end\n"
    "    if math.random(30) == 1 then meta.namespace = 'other' end\n"
    "    local r = math.random(8)\n"
    "    if cur and r <= 4 then meta.resourceVersion = cur.metadata.resourceVersion\n"
    "    elseif r == 5 then meta.resourceVersion = '1'\n"
    "    elseif r == 6 then meta.resourceVersion = '' end\n"
    "    r = math.random(8)\n"
    "    if cur and r <= 2 then meta.uid = cur.metadata.uid elseif r == 3 then meta.uid = 'wrong' end\n"
    "    local p = { metadata = meta }\n"
    "    r = math.random(10)\n"
    "    if cur and cur.status ~= nil and r <= 2 then p.status = cur.status\n"
    "    elseif cur and cur.status ~= nil and r <= 4 then p.status = shuffled(cur.status)\n"
    "    elseif r == 5 and cur and type(cur.status) == 'table' then\n"
    "      p.status = shuffled(cur.status); if type(p.status) == 'table' then p.status.phase = 'Changed' end\n"
    "    elseif r == 6 and math.random(3) == 1 then p.status = nil\n"
    "    else p.status = status_value() end\n"
    "    r = math.random(20)\n"
    "    if r == 1 then p.apiVersion = 'v1'; p.kind = 'Thing' elseif r == 2 then p.spec = { x = 1 }\n"
    "    elseif r == 3 then meta.labels = { app = 'z' } elseif r == 4 then meta.generation = 3 end\n"
    "    local before_rv = a:resource_version()\n"
    "    local before = allocs()\n"
    "    local ta, ea, ca = a:update('things', p, { subresource = 'status', json = true })\n"
    "    local text_path = allocs() == before\n"
    "    local tb, eb, cb = b:update('things', json.encode(p, { sort_keys = false }), { subresource = 'status' })\n"
    "    if ta then\n"
    "      n_ok = n_ok + 1\n"
    "      if text_path then n_text = n_text + 1 end\n"
    "      if a:resource_version() == before_rv then n_noop = n_noop + 1 end\n"
    "      assert(type(ta) == 'string' and type(tb) == 'table', 'one succeeded alone: ' .. tostring(eb))\n"
    "      assert(ea == eb, 'removed differs')\n"
    "      local sb = assert(b:get_json('things', ns, name))\n"
    "      assert(ta == sb, '\\ntext:    ' .. ta .. '\\njansson: ' .. sb)\n"
    "      assert(a:get_json('things', ns, name) == ta)\n"
    "    else\n"
    "      assert(tb == nil and ea == eb and ca == cb, tostring(ea) .. ' vs ' .. tostring(eb))\n"
    "    end\n"
    "    assert(a:resource_version() == b:resource_version())\n"
    "  end\n"
    "end\n"
    "local function watchers(s)\n"
    "  return {\n"
    "    assert(store.watch_stream(s, 'things', {})),\n"
    "    assert(store.watch_stream(s, 'things', { namespace = 'ns' })),\n"
    "    assert(store.watch_stream(s, 'things', { label_selector = 'app=x' })),\n"
    "    assert(store.watch_stream(s, 'things', { field_selector = 'status.phase=Running' })),\n"
    "    assert(store.watch_stream(s, 'things', { owner_events = true })),\n"
    "  }\n"
    "end\n"
    "local function drain(ws)\n"
    "  local out = {}\n"
    "  for i, w in ipairs(ws) do\n"
    "    local seen = {}\n"
    "    while true do\n"
    "      local k, t = w:next_raw()\n"
    "      seen[#seen + 1] = k .. ' ' .. t\n"
    "      if t:find('\"zz-end\"', 1, true) then break end\n"
    "    end\n"
    "    w:close()\n"
    "    out[i] = table.concat(seen, '\\n')\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "local ea, eb\n"
    "sched.run(function()\n"
    "  local wa, wb = watchers(a), watchers(b)\n"
    "  writes(WRITES)\n"
    "  local last = { metadata = { name = 'zz-end', namespace = 'ns', labels = { app = 'x' }, finalizers = { 'f' } },\n"
    "    status = { phase = 'Running' } }\n"
    "  both('ns', last)\n"
    "  ea, eb = drain(wa), drain(wb)\n"
    "end)\n"
    "for i = 1, #ea do assert(ea[i] == eb[i], 'watcher ' .. i .. ':\\n' .. ea[i] .. '\\n---\\n' .. eb[i]) end\n"
    "assert(n_text > WRITES / 5, 'too few text writes: ' .. n_text .. ' of ' .. n_ok)\n"
    "assert(n_noop > 10, 'too few no-op writes: ' .. n_noop)\n"
    "for _, sel in ipairs({ 'app=x', 'tier', '!app' }) do\n"
    "  assert(a:list_json('things', { label_selector = sel }) == b:list_json('things', { label_selector = sel }), sel)\n"
    "end\n"
    "print(string.format('# %d writes: %d succeeded, %d by text, %d no-ops', WRITES, n_ok, n_text, n_noop))\n"
    "a:close(); b:close()\n"
    "\n";

static const char same_updates[] =
    "local cstore = require('moonlet.core.store')\n"
    "local store = require('moonlet.store')\n"
    "local sched = require('moonlet.sched')\n"
    "local json = require('moonlet.json')\n"
    "local a = assert(cstore.open{backend='memory'})\n"
    "local b = assert(cstore.open{backend='memory'})\n"
    "seed(a, 7); seed(b, 7); a:set_time(1700000000); b:set_time(1700000000)\n"
    "math.randomseed(SEED)\n"
    "local function pick(t) return t[math.random(#t)] end\n"
    "local strings = { 'v', '', 'caf\\xc3\\xa9', 'tab\\tq\"', 'ctl\\x01', 'x' }\n"
    "local function value(d)\n"
    "  local r = math.random(d > 2 and 6 or 10)\n"
    "  if r == 1 then return pick(strings) elseif r == 2 then return math.random(-3, 1000)\n"
    "  elseif r == 3 then return math.random(2) == 1 elseif r == 4 then return json.null\n"
    "  elseif r == 5 then return 'k' .. math.random(5)\n"
    "  elseif r == 6 then return json.object({})\n"
    "  elseif r <= 8 then\n"
    "    local t = {}\n"
    "    for _ = 1, math.random(0, 4) do t['f' .. math.random(6)] = value(d + 1) end\n"
    "    return t\n"
    "  else\n"
    "    local t = json.array({})\n"
    "    for i = 1, math.random(0, 3) do t[i] = value(d + 1) end\n"
    "    return t\n"
    "  end\n"
    "end\n"
    "local names = {}\n"
    "local function both(ns, obj)\n"
    "  local g = math.random(3) > 1 -- some objects have no generation\n"
    "  local ra, ea = a:create('things', ns, obj, { generation = g })\n"
    "  local rb, eb = b:create('things', ns, obj, { generation = g })\n"
    "  assert((ra == nil) == (rb == nil), tostring(ea) .. ' / ' .. tostring(eb))\n"
    "end\n"
    "for i = 1, 60 do\n"
    "  local ns = pick({ 'ns', 'other', '' })\n"
    "  local meta = { name = 'o' .. i }\n"
    "  if math.random(2) == 1 then meta.labels = { app = pick({ 'x', 'y' }), tier = 'web' } end\n"
    "  if math.random(4) == 1 then meta.finalizers = { 'f' } end\n"
    "  if math.random(4) == 1 then meta.ownerReferences = { { kind = 'X', name = 'x', uid = 'u' } } end\n"
    "  local obj = { apiVersion = 'v1', kind = 'Thing', metadata = meta, spec = value(1) }\n"
    "  if math.random(3) > 1 then obj.status = { phase = pick({ 'A', 'B' }), n = math.random(3) } end\n"
    "  if i % 7 == 0 then\n"
    "    obj = string.format('{\"status\":{\"phase\":\"Running\"},\"metadata\":{\"name\":\"o%d\",\"labels\":{\"app\":\"x\"}},\"spec\":{\"f\":0.1,\"s\":\"tab\\\\tq\\\\\"\",\"u\":\"\\\\u00e9\"}}', i)\n"
    "  elseif i % 11 == 0 then\n"
    "    obj = string.format('{\"metadata\":{\"name\":\"o%d\",\"generation\":\"odd\"},\"spec\":{\"r\":2.5}}', i)\n"
    "  end\n"
    "  both(ns, obj)\n"
    "  names[#names + 1] = { ns, 'o' .. i }\n"
    "end\n"
    "-- some objects being deleted (with finalizers: marked, kept)\n"
    "for i = 1, 60, 9 do\n"
    "  local ns, name = table.unpack(names[i])\n"
    "  local g = math.random(0, 1) * 30\n"
    "  local ra = a:delete('things', ns, name, { grace_seconds = g })\n"
    "  local rb = b:delete('things', ns, name, { grace_seconds = g })\n"
    "  assert((ra == nil) == (rb == nil))\n"
    "end\n"
    "local function shuffled(t)\n"
    "  if type(t) ~= 'table' or json.is_array(t) then return t end\n"
    "  local keys = {}\n"
    "  for k in pairs(t) do keys[#keys + 1] = k end\n"
    "  table.sort(keys, function(x, y) return x > y end)\n"
    "  local o = {}\n"
    "  for _, k in ipairs(keys) do o[k] = shuffled(t[k]) end\n"
    "  if next(o) == nil then return json.object({}) end\n"
    "  return o\n"
    "end\n"
    "local owned = { 'uid', 'creationTimestamp', 'namespace', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation' }\n"
    "local n_text, n_noop, n_ok = 0, 0, 0\n"
    "local function writes(count)\n"
    "  for i = 1, count do\n"
    "    local ns, name = table.unpack(pick(names))\n"
    "    if math.random(40) == 1 then name = 'missing' end\n"
    "    local cur = b:get('things', ns, name)\n"
    "    local p\n"
    "    local r = math.random(10)\n"
    "    if cur and r <= 2 then p = cur\n"
    "    elseif cur and r <= 4 then p = shuffled(cur)\n"
    "    elseif cur then\n"
    "      p = shuffled(cur)\n"
    "      if math.random(2) == 1 then p.spec = value(1) end\n"
    "      if math.random(3) == 1 then p.status = { phase = pick({ 'A', 'C' }) } end\n"
    "      if math.random(5) == 1 then p.status = nil end\n"
    "      if math.random(4) == 1 then p.metadata.labels = math.random(2) == 1 and { app = pick({ 'x', 'z' }) } or nil end\n"
    "      if math.random(5) == 1 then p.metadata.finalizers = math.random(2) == 1 and { 'g' } or nil end\n"
    "      if math.random(5) == 1 then p.metadata.annotations = { note = pick(strings) } end\n"
    "      if math.random(4) == 1 then p.metadata[pick(owned)] = pick({ 'x', 99, json.null }) end\n"
    "      if math.random(4) == 1 then p.metadata[pick(owned)] = nil end\n"
    "      if math.random(10) == 1 then p.extra = 1.5 end          -- a real: declines\n"
    "      if math.random(12) == 1 then p.metadata.bad = 'x\\xff' end -- bad UTF-8: declines\n"
    "    else\n"
    "      p = { metadata = { name = name, namespace = ns ~= '' and ns or nil }, spec = value(1) }\n"
    "    end\n"
    "    r = math.random(8)\n"
    "    if r == 1 then p.metadata.resourceVersion = '1' elseif r == 2 then p.metadata.resourceVersion = nil\n"
    "    elseif r == 3 then p.metadata.resourceVersion = '' end\n"
    "    if math.random(15) == 1 then p.metadata.uid = 'wrong' end\n"
    "    local opts = { generation = math.random(3) > 1, status_subresource = math.random(2) == 1 }\n"
    "    local as_json = math.random(2) == 1\n"
    "    local before_rv = a:resource_version()\n"
    "    local before = allocs()\n"
    "    local ta, ea, ca = a:update('things', p, { generation = opts.generation,\n"
    "      status_subresource = opts.status_subresource, json = as_json })\n"
    "    local text_path = allocs() == before\n"
    "    local tb, eb, cb = b:update('things', json.encode(p, { sort_keys = false }), opts)\n"
    "    if ta then\n"
    "      n_ok = n_ok + 1\n"
    "      if text_path then n_text = n_text + 1 end\n"
    "      if a:resource_version() == before_rv then n_noop = n_noop + 1 end\n"
    "      assert(tb, 'one succeeded alone: ' .. tostring(eb))\n"
    "      assert(ea == eb, 'removed differs')\n"
    "      if as_json then\n"
    "        assert(type(ta) == 'string')\n"
    "        ta = json.decode(ta)\n"
    "      end\n"
    "      assert(json.encode(ta) == json.encode(tb), '\\nresult text: ' .. json.encode(ta) .. '\\nresult tree: ' .. json.encode(tb))\n"
    "      local sa, sb = a:get_json('things', ns, name), b:get_json('things', ns, name)\n"
    "      assert(sa == sb, '\\ntext:    ' .. tostring(sa) .. '\\njansson: ' .. tostring(sb))\n"
    "    else\n"
    "      assert(tb == nil and ea == eb and ca == cb, tostring(ea) .. ' vs ' .. tostring(eb))\n"
    "    end\n"
    "    assert(a:resource_version() == b:resource_version())\n"
    "  end\n"
    "end\n"
    "local function watchers(s)\n"
    "  return {\n"
    "    assert(store.watch_stream(s, 'things', {})),\n"
    "    assert(store.watch_stream(s, 'things', { namespace = 'ns' })),\n"
    "    assert(store.watch_stream(s, 'things', { label_selector = 'app=x' })),\n"
    "    assert(store.watch_stream(s, 'things', { field_selector = 'status.phase=A' })),\n"
    "    assert(store.watch_stream(s, 'things', { owner_events = true })),\n"
    "  }\n"
    "end\n"
    "local function drain(ws)\n"
    "  local out = {}\n"
    "  for i, w in ipairs(ws) do\n"
    "    local seen = {}\n"
    "    while true do\n"
    "      local k, t = w:next_raw()\n"
    "      seen[#seen + 1] = k .. ' ' .. t\n"
    "      if t:find('\"zz-end\"', 1, true) then break end\n"
    "    end\n"
    "    w:close()\n"
    "    out[i] = table.concat(seen, '\\n')\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "local ea, eb\n"
    "sched.run(function()\n"
    "  local wa, wb = watchers(a), watchers(b)\n"
    "  writes(WRITES)\n"
    "  both('ns', { metadata = { name = 'zz-end', namespace = 'ns', labels = { app = 'x' }, finalizers = { 'f' } },\n"
    "    status = { phase = 'A' } })\n"
    "  ea, eb = drain(wa), drain(wb)\n"
    "end)\n"
    "for i = 1, #ea do assert(ea[i] == eb[i], 'watcher ' .. i .. ':\\n' .. ea[i] .. '\\n---\\n' .. eb[i]) end\n"
    "assert(n_text > WRITES / 12, 'too few text writes: ' .. n_text .. ' of ' .. n_ok)\n"
    "assert(n_noop > 10, 'too few no-op writes: ' .. n_noop)\n"
    "for _, sel in ipairs({ 'app=x', 'app=z', 'tier', '!app' }) do\n"
    "  assert(a:list_json('things', { label_selector = sel }) == b:list_json('things', { label_selector = sel }), sel)\n"
    "end\n"
    "print(string.format('# %d updates: %d succeeded, %d by text without labels, %d no-ops', WRITES, n_ok, n_text, n_noop))\n"
    "a:close(); b:close()\n"
    "\n";

static void run(const char *what, const char *code, int seed, int writes) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "moonlet_core", luaopen_moonlet_core, 0);
  lua_pop(L, 1);
  lua_register(L, "seed", l_seed);
  lua_register(L, "allocs", l_allocs);
  lua_pushinteger(L, seed);
  lua_setglobal(L, "SEED");
  lua_pushinteger(L, writes);
  lua_setglobal(L, "WRITES");
  int rc = luaL_dostring(L, code);
  ok(rc == LUA_OK, "%s (seed %d)", what, seed);
  if (rc != LUA_OK) printf("#   %s\n", lua_tostring(L, -1));
  lua_close(L);
}

/* {====== ml_json_equal_text against json_equal */

static unsigned long rng = 88172645463325252ul;
static unsigned rnd(unsigned n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (unsigned)(rng % n);
}

static json_t *random_value(int depth) {
  static const char *const strs[] = {"a", "", "b\"q", "tab\t", "caf\xc3\xa9", "\x01", "k1"};
  switch (rnd(depth > 3 ? 6 : 9)) {
  case 0: return json_string(strs[rnd(7)]);
  case 1: return json_integer((json_int_t)rnd(5) - 2);
  case 2: return json_real(rnd(3) * 0.5);
  case 3: return rnd(2) ? json_true() : json_false();
  case 4: return json_null();
  case 5: return json_integer(rnd(3) ? 1 : 1000000000000ll);
  case 6:
  case 7: {
    json_t *o = json_object();
    for (unsigned i = rnd(5); i > 0; i--) {
      char k[4] = {'k', (char)('0' + rnd(6)), 0, 0};
      json_object_set_new(o, k, random_value(depth + 1));
    }
    return o;
  }
  default: {
    json_t *a = json_array();
    for (unsigned i = rnd(4); i > 0; i--) json_array_append_new(a, random_value(depth + 1));
    return a;
  }
  }
}

/* A copy with leaves and members (maybe) changed, or with `same` equal;
 * each object's members in the same or the reverse order. */
static json_t *variant(const json_t *v, bool same) {
  if (json_is_object(v)) {
    json_t *o = json_object();
    const char *keys[64];
    size_t n = 0;
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) if (n < 64) keys[n++] = k;
    bool reverse = rnd(2);
    for (size_t j = 0; j < n; j++) {
      const char *key = keys[reverse ? n - 1 - j : j];
      json_object_set_new(o, key, variant(json_object_get(v, key), same));
    }
    if (!same && rnd(4) == 0) json_object_set_new(o, "k9", json_integer(1));
    return o;
  }
  if (json_is_array(v)) {
    json_t *a = json_array();
    for (size_t i = 0; i < json_array_size(v); i++)
      json_array_append_new(a, variant(json_array_get(v, i), same));
    if (!same && rnd(6) == 0) json_array_append_new(a, json_null());
    return a;
  }
  if (!same && rnd(5) == 0) return random_value(4);
  return json_deep_copy(v);
}

static void equal_text_check(void) {
  int agree = 0, undecided = 0, wrong = 0, equal = 0, hash_wrong = 0, hash_proofs = 0;
  for (int i = 0; i < 20000; i++) {
    json_t *a = random_value(0);
    json_t *b = variant(a, rnd(2));
    char *ta = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
    char *tb = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY | (rnd(2) ? JSON_SORT_KEYS : 0));
    int r = ml_json_equal_text(ta, strlen(ta), tb, strlen(tb));
    int want = json_equal(a, b);
    /* Equal values hash equally; with "k0" left out, values equal but for
     * k0 too. */
    static const char *const skip[] = {"k0", NULL};
    ml_json_hash_t ha, hb;
    bool hashed_a = ml_json_hash(ta, strlen(ta), skip, &ha);
    bool hashed_b = ml_json_hash(tb, strlen(tb), skip, &hb); /* both, always */
    bool hashed = hashed_a && hashed_b;
    if (hashed && want && ha.all != hb.all && hash_wrong++ < 5)
      printf("#   equal, hashes differ: %s vs %s\n", ta, tb);
    if (hashed && ha.all != hb.all) hash_proofs++;
    if (json_is_object(a) && json_is_object(b)) {
      json_t *ca = json_copy(a), *cb = json_copy(b);
      json_object_del(ca, "k0");
      json_object_del(cb, "k0");
      if (hashed && json_equal(ca, cb) && ha.rest != hb.rest && hash_wrong++ < 5)
        printf("#   equal but k0, rest hashes differ: %s vs %s\n", ta, tb);
      int rs = ml_json_equal_text_except(ta, strlen(ta), tb, strlen(tb), skip);
      if (rs >= 0 && rs != json_equal(ca, cb) && wrong++ < 5)
        printf("#   except k0: %s vs %s: %d\n", ta, tb, rs);
      json_decref(ca);
      json_decref(cb);
    }
    if (r < 0)
      undecided++;
    else if (r == want)
      agree++;
    else if (wrong++ < 5)
      printf("#   %s vs %s: %d, json_equal %d\n", ta, tb, r, want);
    equal += want;
    free(ta);
    free(tb);
    json_decref(a);
    json_decref(b);
  }
  ok(wrong == 0 && agree > 19000 && equal > 2000,
     "ml_json_equal_text(_except) agrees with json_equal (%d agree, %d equal, %d undecided)",
     agree, equal, undecided);
  ok(hash_wrong == 0 && hash_proofs > 1000,
     "ml_json_hash: equal values hash equally (%d differences proved by hashes)", hash_proofs);
  /* Hand cases. */
  static const struct {
    const char *a, *b;
    int want;
  } hand[] = {{"{\"a\":1,\"b\":[1,2]}", "{\"b\":[1,2],\"a\":1}", 1},
              {"{\"a\":1}", "{\"a\":1,\"b\":2}", 0},
              {"{\"a\":1,\"b\":2}", "{\"a\":1}", 0},
              {"[1,2]", "[2,1]", 0},
              {"1", "1.0", 0},
              {"0.5", "5e-1", 1},
              {"-0", "0", 1},
              {"\"a\"", "\"\\u0061\"", -1},
              {"\"a\"", "\"b\"", 0},
              {"{\"\\u0061\":1}", "{\"a\":1}", -1},
              {"{}", "{}", 1},
              {"[]", "{}", 0},
              {"{\"a\":", "{\"a\":1}", -1},
              {"null", "false", 0}};
  bool all = true;
  for (size_t i = 0; i < sizeof hand / sizeof *hand; i++) {
    int r = ml_json_equal_text(hand[i].a, strlen(hand[i].a), hand[i].b, strlen(hand[i].b));
    if (r != hand[i].want) {
      all = false;
      printf("#   %s vs %s: %d, want %d\n", hand[i].a, hand[i].b, r, hand[i].want);
    }
  }
  ok(all, "ml_json_equal_text: hand cases");
}

/* }====== */

int main(void) {
  json_set_alloc_funcs(count_malloc, free);
  run("status write: the text path stores jansson's bytes, errors, no-ops and events",
      same_writes, 42, 800);
  run("status write: the same with another seed", same_writes, 7, 800);
  run("update: the text path stores jansson's bytes, errors, no-ops and events", same_updates,
      42, 1000);
  run("update: the same with another seed", same_updates, 7, 1000);
  equal_text_check();
  return tap_done();
}
