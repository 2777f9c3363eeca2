/* Unit tests of bindings/lalloc.c, the Lua state's caching allocator: Lua
 * runs correctly on it (tables grown and shrunk across size classes,
 * strings of every small length, a full collection), freed small blocks
 * are kept up to the bound and reused, and trim and close give them back
 * (LeakSanitizer checks the last). Under ASan nothing is cached. Prints
 * TAP. */
#include <lauxlib.h>
#include <lualib.h>

#include "lalloc.h"

#include "tap.h"

static const char *work =
    "local t = {}\n"
    "for i = 1, 2000 do t[i] = { i, tostring(i) .. string.rep('x', i % 300) } end\n"
    "for i = 1, 2000 do\n"
    "  local v = t[i]\n"
    "  assert(v[1] == i and #v[2] == #tostring(i) + i % 300, 'corrupt entry ' .. i)\n"
    "end\n"
    "local grow = {}\n"
    "for i = 1, 100 do grow['k' .. i] = i end\n"
    "for i = 1, 95 do grow['k' .. i] = nil end\n"
    "collectgarbage()\n"
    "for i = 96, 100 do assert(grow['k' .. i] == i) end\n"
    "t = nil\n"
    "collectgarbage()\n";

int main(void) {
  lua_State *L = ml_lua_newstate();
  ok(L != NULL, "a state on the caching allocator");
  luaL_openlibs(L);
  int rc = luaL_dostring(L, work);
  ok(rc == LUA_OK, "Lua runs on it: tables across size classes, strings, collections");
  if (rc != LUA_OK) printf("#   %s\n", lua_tostring(L, -1));
  size_t cached = ml_lua_alloc_cached(L);
  if (ml_lua_alloc_caches())
    ok(cached > 0 && cached <= ML_LUA_ALLOC_CACHE_MAX,
       "freed small blocks are kept, within the bound (%zu bytes)", cached);
  else
    ok(cached == 0, "under ASan nothing is cached (%zu bytes)", cached);
  rc = luaL_dostring(L, "local s = {} for i = 1, 500 do s[i] = {} end return #s");
  ok(rc == LUA_OK && (ml_lua_alloc_cached(L) < cached || !ml_lua_alloc_caches()),
     "later allocations reuse them");
  ml_lua_alloc_trim(L);
  ok(ml_lua_alloc_cached(L) == 0, "trim gives every cached block back");
  lua_State *plain = luaL_newstate();
  ok(ml_lua_alloc_cached(plain) == 0, "a state on another allocator has no cache");
  ml_lua_alloc_trim(plain); /* must not touch its allocator's data */
  lua_close(plain);
  ml_lua_close(L);
  return tap_done();
}
