/* moonlet_core.so: the runtime as a Lua C module, so plain lua5.4 (busted)
 * can `require "moonlet_core"` and get exactly what the server runs. The
 * entry point luaopen_moonlet_core lives in runtime.c; this unit only makes
 * the linker keep it. */
#include "runtime.h"

int (*const ml_module_entry)(lua_State *) = luaopen_moonlet_core;
