/* moonlet.core.exec: kubectl exec sessions (core/exec_session.h) for Lua.
 * open() upgrades a request of the running HTTP server and returns a
 * moonlet.ExecSession; Lua spawns the process on its child_fds(), tells
 * started(), and hands the final Status to finish() after the exit. The
 * Lua side is lua/moonlet/kubelet/exec.lua. run_client() is `moonlet
 * exec`'s end (core/exec_client.h): it blocks, for the CLI only. */
#include <stdlib.h>
#include <string.h>

#include "exec_client.h"
#include "exec_session.h"
#include "runtime.h"

#define SESSION_MT "moonlet.ExecSession"

typedef struct {
  ml_exec_t *e; /* NULL once closed */
} session_ud_t;

static session_ud_t *check_open(lua_State *L) {
  session_ud_t *ud = luaL_checkudata(L, 1, SESSION_MT);
  if (!ud->e) luaL_error(L, "attempt to use a closed exec session");
  return ud;
}

static bool opt_bool(lua_State *L, int t, const char *key) {
  lua_getfield(L, t, key);
  bool v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Lua: s | nil, err, name = exec.open(req_id, {protocol=, v5=, stdin=,
 * stdout=, stderr=, tty=}) */
static int lexec_open(lua_State *L) {
  uint64_t id = (uint64_t)luaL_checkinteger(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  ml_runtime_t *rt = ml_runtime_get(L);
  if (!rt->httpd) luaL_error(L, "moonlet.core.exec: no server is running");
  lua_getfield(L, 2, "protocol");
  ml_exec_opts_t o = {.protocol = lua_tostring(L, -1), /* stays in opts */
                      .v5 = opt_bool(L, 2, "v5"),
                      .in = opt_bool(L, 2, "stdin"),
                      .out = opt_bool(L, 2, "stdout"),
                      .err = opt_bool(L, 2, "stderr"),
                      .tty = opt_bool(L, 2, "tty")};
  /* The userdata first, closed: nothing can raise after the session. */
  session_ud_t *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->e = NULL;
  luaL_setmetatable(L, SESSION_MT);
  int rc = ml_exec_open(rt->httpd, &rt->loop, id, &o, &ud->e);
  if (rc < 0) return ml_lua_fail(L, rc);
  return 1;
}

/* Lua: {in, out, err} = s:child_fds() (-1: /dev/null), for proc stdio */
static int lsession_child_fds(lua_State *L) {
  session_ud_t *ud = check_open(L);
  int fds[3];
  ml_exec_child_fds(ud->e, fds);
  lua_createtable(L, 3, 0);
  for (int i = 0; i < 3; i++) {
    lua_pushinteger(L, fds[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int lsession_started(lua_State *L) {
  ml_exec_started(check_open(L)->e);
  return 0;
}

/* Lua: s:finish(status_json) */
static int lsession_finish(lua_State *L) {
  session_ud_t *ud = check_open(L);
  size_t len;
  const char *status = luaL_checklstring(L, 2, &len);
  ml_exec_finish(ud->e, status, len);
  return 0;
}

static int lsession_ended(lua_State *L) {
  session_ud_t *ud = luaL_checkudata(L, 1, SESSION_MT);
  lua_pushboolean(L, !ud->e || ml_exec_ended(ud->e));
  return 1;
}

static int lsession_close(lua_State *L) {
  session_ud_t *ud = luaL_checkudata(L, 1, SESSION_MT);
  ml_exec_t *e = ud->e;
  ud->e = NULL; /* closed before anything else happens */
  ml_exec_free(e);
  return 0;
}

static int lsession_tostring(lua_State *L) {
  session_ud_t *ud = luaL_checkudata(L, 1, SESSION_MT);
  lua_pushfstring(L, "moonlet.ExecSession: %s", ud->e ? "open" : "(closed)");
  return 1;
}

static const luaL_Reg session_meth[] = {{"child_fds", lsession_child_fds},
                                        {"started", lsession_started},
                                        {"finish", lsession_finish},
                                        {"ended", lsession_ended},
                                        {"close", lsession_close},
                                        {NULL, NULL}};
static const luaL_Reg session_metameth[] = {{"__gc", lsession_close},
                                            {"__close", lsession_close},
                                            {"__tostring", lsession_tostring},
                                            {"__index", NULL},
                                            {NULL, NULL}};
/* Lua: status, body | nil, err, name = exec.run_client(socket, target,
 * {stdin=, tty=, token=}): the HTTP status (101 for a session) and the
 * final Status (or the refusal's body). Blocks until the session ends. */
static int lexec_run_client(lua_State *L) {
  ml_exec_client_opts_t o = {.socket_path = luaL_checkstring(L, 1),
                             .target = luaL_checkstring(L, 2)};
  luaL_checktype(L, 3, LUA_TTABLE);
  o.in = opt_bool(L, 3, "stdin");
  o.tty = opt_bool(L, 3, "tty");
  lua_getfield(L, 3, "token");
  o.token = lua_tostring(L, -1); /* stays referenced by the table */
  ml_exec_client_result_t res;
  char err[512];
  int rc = ml_exec_client_run(&o, &res, err, sizeof err);
  if (rc < 0) return ml_lua_fail_msg(L, rc, err);
  lua_pushinteger(L, res.http_status);
  if (res.body) lua_pushlstring(L, res.body, res.body_len);
  else lua_pushnil(L);
  free(res.body);
  return 2;
}

static const luaL_Reg exec_funcs[] = {
    {"open", lexec_open}, {"run_client", lexec_run_client}, {NULL, NULL}};

int luaopen_moonlet_core_exec(lua_State *L) {
  luaL_newmetatable(L, SESSION_MT);
  luaL_setfuncs(L, session_metameth, 0);
  luaL_newlib(L, session_meth);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, exec_funcs);
  return 1;
}
