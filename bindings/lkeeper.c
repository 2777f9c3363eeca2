/* moonlet.core.keeper: kept containers (core/keeper.h) for Lua. spawn()
 * starts a container under a keeper, adopt() re-attaches to one an earlier
 * server started; either gives a moonlet.Keeper whose container's exit
 * arrives as (id, result table), the same table moonlet.core.proc delivers.
 * The facade is lua/moonlet/kubelet/keeper.lua. */
#include "err.h"
#include "keeper.h"
#include "runtime.h"

#define KEEPER_MT "moonlet.Keeper"

typedef struct {
  ml_keeper_t *k; /* NULL once closed */
  int pid;
} keeper_ud_t;

static keeper_ud_t *new_ud(lua_State *L) {
  /* Exists before the keeper, so an allocation error cannot leak one. */
  keeper_ud_t *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->k = NULL;
  ud->pid = 0;
  luaL_setmetatable(L, KEEPER_MT);
  return ud;
}

/* Lua: k | nil, err, name = core.spawn(id, exe, base, spec_json) */
static int lkeeper_spawn(lua_State *L) {
  uint64_t id = (uint64_t)luaL_checkinteger(L, 1);
  const char *exe = luaL_checkstring(L, 2);
  const char *base = luaL_checkstring(L, 3);
  size_t len;
  const char *spec = luaL_checklstring(L, 4, &len);
  keeper_ud_t *ud = new_ud(L);
  char msg[4400];
  /* No anchor: the exit table carries no userdata (LUA_NOREF). */
  int rc = ml_keeper_spawn(&ml_runtime_get(L)->loop, id, LUA_NOREF, exe, base,
                           spec, len, &ud->k, msg, sizeof msg);
  if (rc < 0) return ml_lua_fail_msg(L, rc, msg);
  ud->pid = ml_keeper_pid(ud->k);
  return 1;
}

/* Lua: k | nil, err, name = core.adopt(id, base) */
static int lkeeper_adopt(lua_State *L) {
  uint64_t id = (uint64_t)luaL_checkinteger(L, 1);
  const char *base = luaL_checkstring(L, 2);
  keeper_ud_t *ud = new_ud(L);
  int rc = ml_keeper_adopt(&ml_runtime_get(L)->loop, id, LUA_NOREF, base,
                           &ud->k);
  if (rc < 0) return ml_lua_fail_msg(L, rc, base);
  ud->pid = ml_keeper_pid(ud->k);
  return 1;
}

static ml_keeper_t *check_open(lua_State *L) {
  keeper_ud_t *ud = luaL_checkudata(L, 1, KEEPER_MT);
  if (!ud->k) luaL_error(L, "attempt to use a closed moonlet.Keeper");
  return ud->k;
}

/* Lua: k:pid() -> the container's pid */
static int lkeeper_pid(lua_State *L) {
  keeper_ud_t *ud = luaL_checkudata(L, 1, KEEPER_MT);
  lua_pushinteger(L, ud->pid);
  return 1;
}

/* Lua: ok | nil, err, name = k:stop([grace_seconds = 30]) */
static int lkeeper_stop(lua_State *L) {
  ml_keeper_t *k = check_open(L);
  lua_Number grace = luaL_optnumber(L, 2, 30);
  luaL_argcheck(L, grace >= 0, 2, "grace period must be >= 0");
  int rc = ml_keeper_stop(k, (uint64_t)(grace * 1000.0 + 0.5));
  if (rc < 0) return ml_lua_fail_msg(L, rc, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/* Lua: ok | nil, err, name = k:kill(signal_number) */
static int lkeeper_kill(lua_State *L) {
  ml_keeper_t *k = check_open(L);
  lua_Integer sig = luaL_checkinteger(L, 2);
  luaL_argcheck(L, sig > 0 && sig < 65, 2, "bad signal number");
  int rc = ml_keeper_kill(k, (int)sig);
  if (rc < 0) return ml_lua_fail_msg(L, rc, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/* close(), __close and __gc: stop watching; the container keeps running. */
static int lkeeper_close(lua_State *L) {
  keeper_ud_t *ud = luaL_checkudata(L, 1, KEEPER_MT);
  ml_keeper_t *k = ud->k;
  ud->k = NULL;
  ml_keeper_release(k);
  return 0;
}

static const luaL_Reg keeper_meth[] = {{"pid", lkeeper_pid},
                                       {"stop", lkeeper_stop},
                                       {"kill", lkeeper_kill},
                                       {"close", lkeeper_close},
                                       {NULL, NULL}};
static const luaL_Reg keeper_metameth[] = {
    {"__gc", lkeeper_close}, {"__close", lkeeper_close}, {NULL, NULL}};
static const luaL_Reg keeper_funcs[] = {
    {"spawn", lkeeper_spawn}, {"adopt", lkeeper_adopt}, {NULL, NULL}};

int luaopen_moonlet_core_keeper(lua_State *L) {
  luaL_newlib(L, keeper_funcs);
  luaL_newmetatable(L, KEEPER_MT);
  luaL_setfuncs(L, keeper_metameth, 0);
  luaL_newlib(L, keeper_meth);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  return 1;
}
