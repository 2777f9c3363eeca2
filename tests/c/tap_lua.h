/* TAP check for the C tests that run Lua inside the test binary (so ASan
 * and LeakSanitizer see the bindings' memory): tap_lua_run(what, code) runs
 * `code` in a fresh state with moonlet_core loaded, then closes the state;
 * one ok line, with the Lua error under it on failure. Needs tap.h. */
#ifndef ML_TAP_LUA_H
#define ML_TAP_LUA_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "runtime.h"
#include "tap.h"

static inline void tap_lua_run(const char *what, const char *code) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "moonlet_core", luaopen_moonlet_core, 0);
  lua_pop(L, 1);
  int rc = luaL_dostring(L, code);
  ok(rc == LUA_OK, "%s", what);
  if (rc != LUA_OK) printf("#   %s\n", lua_tostring(L, -1));
  lua_close(L);
}

#endif
