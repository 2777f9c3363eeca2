/* moonlet.core.svc_proxy: the Service proxy (core/svc_proxy.c) for Lua.
 * A proxy is a listener that relays connections to its backends entirely
 * in C on the loop: Lua only opens it, sets its backends and reads its
 * counters. The facade is plugins/controllers/serviceproxy.lua.
 *
 *   local p, err, name = svc_proxy.listen("127.100.0.1", 80)
 *   p:set_backends({ "127.0.0.1:34567" }); p:stats(); p:close() */
#include <stdio.h>
#include <stdlib.h>

#include "runtime.h"
#include "svc_proxy.h"

#define PROXY_MT "moonlet.SvcProxy"
#define MAX_BACKENDS 4096

typedef struct {
  ml_svc_proxy_t *p; /* NULL once closed */
  char addr[64];
} proxy_ud_t;

static proxy_ud_t *check_ud(lua_State *L) {
  return luaL_checkudata(L, 1, PROXY_MT);
}

static ml_svc_proxy_t *check_open(lua_State *L) {
  proxy_ud_t *ud = check_ud(L);
  if (!ud->p) luaL_error(L, "attempt to use a closed proxy");
  return ud->p;
}

/* Lua: proxy | nil, msg, name = svc_proxy.listen(host, port) */
static int lsvcproxy_listen(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  luaL_argcheck(L, port >= 0 && port <= 65535, 2, "port out of range");
  /* The userdata first, closed, so nothing leaks if it cannot be made. */
  proxy_ud_t *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->p = NULL;
  luaL_setmetatable(L, PROXY_MT);
  ml_runtime_t *rt = ml_runtime_get(L);
  int rc = ml_svc_proxy_new(&rt->uv, host, (int)port, &ud->p);
  if (rc < 0) return ml_lua_fail(L, rc);
  snprintf(ud->addr, sizeof ud->addr, "%s:%d", host, ml_svc_proxy_port(ud->p));
  return 1;
}

/* Lua: ok | nil, msg, name = proxy:set_backends({"ip:port", ...}) */
static int lproxy_set_backends(lua_State *L) {
  ml_svc_proxy_t *p = check_open(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2);
  luaL_argcheck(L, n >= 0 && n <= MAX_BACKENDS, 2, "too many backends");
  /* The strings stay on the table (stack slot 2) while C reads them. */
  const char **addrs = lua_newuserdatauv(L, sizeof *addrs * (size_t)(n + 1), 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_argerror(L, 2, "backends must be \"ip:port\" strings");
    addrs[i - 1] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  int rc = ml_svc_proxy_set_backends(p, addrs, (size_t)n);
  if (rc < 0) return ml_lua_fail(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int lproxy_port(lua_State *L) {
  lua_pushinteger(L, ml_svc_proxy_port(check_open(L)));
  return 1;
}

/* Lua: {accepted=, rejected=, active=, bytes_in=, bytes_out=, pauses=} */
static int lproxy_stats(lua_State *L) {
  ml_svc_proxy_stats_t st;
  ml_svc_proxy_stats(check_open(L), &st);
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, (lua_Integer)st.accepted);
  lua_setfield(L, -2, "accepted");
  lua_pushinteger(L, (lua_Integer)st.rejected);
  lua_setfield(L, -2, "rejected");
  lua_pushinteger(L, (lua_Integer)st.active);
  lua_setfield(L, -2, "active");
  lua_pushinteger(L, (lua_Integer)st.bytes_in);
  lua_setfield(L, -2, "bytes_in");
  lua_pushinteger(L, (lua_Integer)st.bytes_out);
  lua_setfield(L, -2, "bytes_out");
  lua_pushinteger(L, (lua_Integer)st.pauses);
  lua_setfield(L, -2, "pauses");
  return 1;
}

/* Idempotent; shared by close(), __close and __gc. Once the runtime has
 * closed its loop the handles are gone with it: nothing to free here. */
static int lproxy_close(lua_State *L) {
  proxy_ud_t *ud = check_ud(L);
  ml_svc_proxy_t *p = ud->p;
  if (!p) return 0;
  ud->p = NULL;
  if (ml_runtime_get(L)->L) ml_svc_proxy_free(p);
  return 0;
}

static int lproxy_tostring(lua_State *L) {
  proxy_ud_t *ud = check_ud(L);
  lua_pushfstring(L, PROXY_MT ": %s%s", ud->addr, ud->p ? "" : " (closed)");
  return 1;
}

static const luaL_Reg proxy_meth[] = {{"set_backends", lproxy_set_backends},
                                      {"port", lproxy_port},
                                      {"stats", lproxy_stats},
                                      {"close", lproxy_close},
                                      {NULL, NULL}};
static const luaL_Reg proxy_metameth[] = {{"__gc", lproxy_close},
                                          {"__close", lproxy_close},
                                          {"__tostring", lproxy_tostring},
                                          {"__index", NULL},
                                          {NULL, NULL}};
static const luaL_Reg svc_proxy_funcs[] = {{"listen", lsvcproxy_listen},
                                           {NULL, NULL}};

int luaopen_moonlet_core_svc_proxy(lua_State *L) {
  luaL_newmetatable(L, PROXY_MT);
  luaL_setfuncs(L, proxy_metameth, 0);
  luaL_newlib(L, proxy_meth);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, svc_proxy_funcs);
  return 1;
}
