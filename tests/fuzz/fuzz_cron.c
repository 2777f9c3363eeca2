/* libFuzzer target for the Lua parsers of the CronJob schedule path: the
 * cron parser (moonlet.cron.parse, then next() on what it accepts) and the
 * TZif reader (moonlet.tz.parse_tzif). Hostile text must come back as
 * nil, error -- never a Lua error, a hang or a next activation that is not
 * later than the time asked about. The first byte picks the parser. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime.h"

static const char check_cron[] =
    "local text = ...\n"
    "local cron = require('moonlet.cron')\n"
    "local s, err = cron.parse(text)\n"
    "if not s then assert(type(err) == 'string', 'no error text') return end\n"
    "local from = 1700000000\n"
    "local n = s:next(from, require('moonlet.tz').utc)\n"
    "assert(n == nil or n > from, 'next activation not after the start')\n";

static const char check_tzif[] =
    "local data = ...\n"
    "local z, err = require('moonlet.tz').parse_tzif(data, 'fuzz')\n"
    "if not z then assert(type(err) == 'string', 'no error text') return end\n"
    "for _, t in ipairs({ -2^31, 0, 1700000000, 4102444800 }) do\n"
    "  local off = z:offset(t)\n"
    "  assert(math.type(off) == 'integer', 'offset is not an integer')\n"
    "end\n";

static lua_State *L;
static int ref_cron, ref_tzif;

static int load(const char *code) {
  if (luaL_loadstring(L, code) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    abort();
  }
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "moonlet_core", luaopen_moonlet_core, 0);
    lua_pop(L, 1);
    ref_cron = load(check_cron);
    ref_tzif = load(check_tzif);
  }
  if (size == 0) return 0;
  int which = data[0] & 1 ? ref_tzif : ref_cron;
  /* Cron schedules are short; long inputs only slow the search. */
  if (which == ref_cron && size > 256) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, which);
  lua_pushlstring(L, (const char *)data + 1, size - 1);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_cron: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, 0);
  return 0;
}
