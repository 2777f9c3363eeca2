/* The moonlet executable: a Lua 5.4 state with the moonlet runtime, handing
 * argv to lua/moonlet/main.lua, which dispatches `server`, `lua` and the CLI
 * verbs. The exit status is what main.lua returns. `__keeper` runs a kept
 * container's keeper (core/keeper.h) before any Lua starts. */
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "keeper.h"
#include "lalloc.h"
#include "runtime.h"

static int run_main(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = lua_touserdata(L, 2);
  luaL_openlibs(L);
  luaL_requiref(L, "moonlet_core", luaopen_moonlet_core, 0);
  lua_pop(L, 1);
  lua_createtable(L, argc, 0);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_setglobal(L, "arg");
  lua_getglobal(L, "require");
  lua_pushliteral(L, "moonlet.main");
  lua_call(L, 1, 1); /* stack: main */
  lua_getglobal(L, "arg");
  lua_call(L, 1, 1);
  return 1;
}

int main(int argc, char **argv) {
  /* A kept container's keeper is this binary too, without Lua. */
  if (argc > 1 && strcmp(argv[1], "__keeper") == 0)
    return ml_keeper_main(argc, argv);
  /* Writes to a vanished peer must fail with EPIPE, not kill the server. */
  signal(SIGPIPE, SIG_IGN);
  lua_State *L = ml_lua_newstate();
  if (!L) {
    fprintf(stderr, "moonlet: cannot create Lua state\n");
    return 1;
  }
  lua_pushcfunction(L, run_main);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = ml_lua_pcall(L, 2, 1, "moonlet");
  int code = 1;
  if (status == LUA_OK) code = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
  /* lua_close finalizes every binding's userdata (closing its handles)
   * before the runtime's own finalizer, created first and so run last,
   * spins the loop until the close callbacks have freed everything. */
  ml_lua_close(L);
  return code;
}
