/* libFuzzer target for the Kubernetes protobuf body decoder
 * (moonlet.api.protobuf). Hostile bytes must come back as nil, error --
 * never a Lua error or a hang -- and whatever it accepts must encode as
 * JSON, since handlers store it. The first byte picks the entry point: the
 * whole envelope, or a bare message of one of the served kinds. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime.h"

static const char check[] =
    "local which, data = ...\n"
    "local pb = require('moonlet.api.protobuf')\n"
    "local json = require('moonlet.json')\n"
    "local names = { 'core.v1.Pod', 'apps.v1.Deployment',\n"
    "  'batch.v1.CronJob', 'core.v1.ConfigMap', 'core.v1.Node',\n"
    "  'core.v1.Event', 'apps.v1.ControllerRevision' }\n"
    "local v, err\n"
    "if which % 8 == 0 then v, err = pb.decode(data)\n"
    "elseif which % 8 == 1 then v, err = pb.decode('k8s\\0' .. data)\n"
    "else v, err = pb.decode_message(data, names[which % 8 - 1]) end\n"
    "if v == nil then\n"
    "  assert(type(err) == 'string', 'no error text')\n"
    "  return\n"
    "end\n"
    "assert(type(v) == 'table', 'not an object')\n"
    "assert(type(err) == 'table', 'no unknown-field list')\n"
    "assert(json.encode(v), 'decoded value does not encode as JSON')\n";

static lua_State *L;
static int ref_check;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "moonlet_core", luaopen_moonlet_core, 0);
    lua_pop(L, 1);
    if (luaL_loadstring(L, check) != LUA_OK) {
      fprintf(stderr, "%s\n", lua_tostring(L, -1));
      abort();
    }
    ref_check = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  if (size == 0) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref_check);
  lua_pushinteger(L, data[0]);
  lua_pushlstring(L, (const char *)data + 1, size - 1);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_protobuf: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, 0);
  return 0;
}
