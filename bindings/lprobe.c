/* moonlet.core.probe: the probe runner (core/probe.c) for Lua, one per
 * runtime (created on first use, closed by its registry anchor's finalizer).
 * start(id, kind, params, timeout_ms) runs one attempt whose result goes to
 * `id` as (result, message); ticker(id, kind, params, every) runs a kind
 * periodically in C and delivers only the results that matter. */
#include <string.h>

#include "err.h"
#include "probe.h"
#include "runtime.h"

#define RUNNER_KEY "moonlet.probe.runner"
#define RUNNER_MT "moonlet.ProbeRunner"

typedef struct {
  ml_probe_runner_t *r; /* NULL once closed */
} runner_ud_t;

/* {====== the runner */

static int runner_gc(lua_State *L) {
  runner_ud_t *ud = luaL_checkudata(L, 1, RUNNER_MT);
  if (ud->r) {
    ml_probe_runner_close(ud->r);
    ud->r = NULL;
  }
  return 0;
}

static int runner_tostring(lua_State *L) {
  runner_ud_t *ud = luaL_checkudata(L, 1, RUNNER_MT);
  if (ud->r)
    lua_pushfstring(L, "moonlet.ProbeRunner: %p", (void *)ud->r);
  else
    lua_pushliteral(L, "moonlet.ProbeRunner: (closed)");
  return 1;
}

static ml_probe_runner_t *get_runner(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, RUNNER_KEY) == LUA_TUSERDATA) {
    runner_ud_t *ud = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!ud->r) luaL_error(L, "the probe runner is closed");
    return ud->r;
  }
  lua_pop(L, 1);
  ml_runtime_t *rt = ml_runtime_get(L);
  /* The userdata first, so a failure below leaves nothing behind. */
  runner_ud_t *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->r = NULL;
  luaL_setmetatable(L, RUNNER_MT);
  ud->r = ml_probe_runner_new(&rt->loop, 0);
  if (!ud->r) luaL_error(L, "cannot create the probe runner");
  lua_setfield(L, LUA_REGISTRYINDEX, RUNNER_KEY);
  return ud->r;
}

static int push_probe(lua_State *L, ml_event_t *ev) {
  ml_probe_event_t *pe = (ml_probe_event_t *)ev;
  lua_pushstring(L, ml_probe_result_name(pe->result));
  lua_pushlstring(L, pe->message ? pe->message : "", pe->len);
  return 2;
}

/* }====== */

/* {====== parameters */

static const char *opt_string(lua_State *L, int t, const char *key,
                              size_t *len) {
  int ty = lua_getfield(L, t, key);
  if (ty != LUA_TNIL && ty != LUA_TSTRING)
    luaL_error(L, "probe: parameter '%s' must be a string", key);
  /* The params table keeps the string alive while the call runs. */
  const char *s = lua_tolstring(L, -1, len);
  lua_pop(L, 1);
  return s;
}

static lua_Integer opt_int(lua_State *L, int t, const char *key) {
  lua_getfield(L, t, key);
  lua_Integer v = 0;
  if (!lua_isnil(L, -1)) {
    int isnum;
    v = lua_tointegerx(L, -1, &isnum);
    if (!isnum) luaL_error(L, "probe: parameter '%s' must be an integer", key);
  }
  lua_pop(L, 1);
  return v;
}

/* A list of strings at t[key] as a NULL-terminated array in a userdata
 * left on the stack. @return the array (NULL when absent), *n its length */
static const char **opt_list(lua_State *L, int t, const char *key, size_t *n) {
  *n = 0;
  int ty = lua_getfield(L, t, key);
  if (ty == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (ty != LUA_TTABLE)
    luaL_error(L, "probe: parameter '%s' must be a list of strings", key);
  int list = lua_gettop(L);
  size_t len = (size_t)lua_rawlen(L, list);
  const char **arr = lua_newuserdatauv(L, (len + 1) * sizeof *arr, 0);
  for (size_t i = 0; i < len; i++) {
    lua_rawgeti(L, list, (lua_Integer)i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "probe: parameter '%s' must be a list of strings", key);
    arr[i] = lua_tostring(L, -1); /* kept alive by the list */
    lua_pop(L, 1);
  }
  arr[len] = NULL;
  lua_remove(L, list); /* stack: ... arr (the list stays in the params) */
  *n = len;
  return arr;
}

/* headers = { {name=, value=} | {name, value}, ... } (Kubernetes'
 * httpHeaders order kept). Leaves the array's userdata on the stack. */
static const ml_probe_header_t *opt_headers(lua_State *L, int t, size_t *n) {
  *n = 0;
  int ty = lua_getfield(L, t, "headers");
  if (ty == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (ty != LUA_TTABLE)
    luaL_error(L, "probe: parameter 'headers' must be a list");
  int list = lua_gettop(L);
  size_t len = (size_t)lua_rawlen(L, list);
  ml_probe_header_t *arr = lua_newuserdatauv(L, (len + 1) * sizeof *arr, 0);
  for (size_t i = 0; i < len; i++) {
    if (lua_rawgeti(L, list, (lua_Integer)i + 1) != LUA_TTABLE)
      luaL_error(L, "probe: headers[%d] must be a table", (int)i + 1);
    int h = lua_gettop(L);
    if (lua_getfield(L, h, "name") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_rawgeti(L, h, 1);
    }
    if (lua_getfield(L, h, "value") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_rawgeti(L, h, 2);
    } /* stack: ... list arr h name value */
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "probe: headers[%d] needs a name", (int)i + 1);
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "probe: headers[%d].value must be a string", (int)i + 1);
    arr[i].name = lua_tostring(L, -2);
    arr[i].value = lua_isnil(L, -1) ? "" : lua_tostring(L, -1);
    lua_pop(L, 3);
  }
  lua_remove(L, list);
  *n = len;
  return arr;
}

/* }====== */

/* Reads the params table at index t into *o; the strings and the arrays
 * (userdata left on the stack) live as long as the table and the stack. */
static void read_params(lua_State *L, int t, ml_probe_params_t *o) {
  *o = (ml_probe_params_t){0};
  o->host = opt_string(L, t, "host", NULL);
  lua_Integer port = opt_int(L, t, "port");
  if (port < 0 || port > 65535) luaL_argerror(L, t, "port out of range");
  o->port = (int)port;
  o->scheme = opt_string(L, t, "scheme", NULL);
  o->path = opt_string(L, t, "path", NULL);
  o->send = opt_string(L, t, "send", &o->send_len);
  lua_Integer rd = opt_int(L, t, "read");
  if (rd < 0) luaL_argerror(L, t, "read must be >= 0");
  o->read_max = (size_t)rd;
  o->cwd = opt_string(L, t, "cwd", NULL);
  o->headers = opt_headers(L, t, &o->nheaders);
  o->argv = opt_list(L, t, "command", &o->argc);
  o->env = opt_list(L, t, "env", &o->nenv);
}

/* A positive fraction of a millisecond is still a limit. */
static uint64_t to_ms(lua_Number ms) {
  return ms > 0 && ms < 1 ? 1 : (uint64_t)ms;
}

static int start_error(lua_State *L, int rc, const char *kind) {
  if (rc == ML_ENOTFOUND) {
    lua_pushfstring(L, "no probe kind '%s'", kind);
    return ml_lua_fail_msg(L, rc, lua_tostring(L, -1));
  }
  if (rc == ML_EINVALID) {
    lua_pushfstring(L, "bad parameters for a %s probe", kind);
    return ml_lua_fail_msg(L, rc, lua_tostring(L, -1));
  }
  return ml_lua_fail(L, rc);
}

/* Lua: ok, err, name = probe.start(id, kind, params, timeout_ms) */
static int lprobe_start(lua_State *L) {
  lua_Integer id = luaL_checkinteger(L, 1);
  const char *kind = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_Number timeout = luaL_optnumber(L, 4, 0);
  luaL_argcheck(L, timeout >= 0, 4, "timeout must be >= 0");
  ml_probe_runner_t *r = get_runner(L);
  ml_probe_params_t o;
  read_params(L, 3, &o);
  int rc = ml_probe_start(r, kind, &o, to_ms(timeout), (uint64_t)id);
  if (rc < 0) return start_error(L, rc, kind);
  lua_pushboolean(L, 1);
  return 1;
}

/* {====== tickers */

#define TICKER_MT "moonlet.ProbeTicker"

typedef struct {
  ml_probe_ticker_t *t; /* NULL once closed */
} ticker_ud_t;

static ticker_ud_t *check_ticker(lua_State *L) {
  ticker_ud_t *ud = luaL_checkudata(L, 1, TICKER_MT);
  if (!ud->t) luaL_error(L, "probe ticker is closed");
  return ud;
}

static lua_Number opt_num_field(lua_State *L, int t, const char *key,
                                lua_Number def) {
  lua_getfield(L, t, key);
  lua_Number v = luaL_optnumber(L, -1, def);
  lua_pop(L, 1);
  return v;
}

/* Lua: ticker | nil, err, name = probe.ticker(id, kind, params, every)
 * every = { period = ms, timeout = ms, success_threshold = n, tries = n,
 *           quick = ms (first quick retry delay; nil: none) };
 * results arrive at `id` as (result, message), see core/probe.h. */
static int lprobe_ticker(lua_State *L) {
  lua_Integer id = luaL_checkinteger(L, 1);
  const char *kind = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  ml_probe_every_t every = {0};
  lua_Number period = opt_num_field(L, 4, "period", 0);
  lua_Number timeout = opt_num_field(L, 4, "timeout", 0);
  lua_Number st = opt_num_field(L, 4, "success_threshold", 1);
  lua_Number tries = opt_num_field(L, 4, "tries", 1);
  lua_Number quick = opt_num_field(L, 4, "quick", 0);
  luaL_argcheck(L, period >= 1, 4, "period must be >= 1 ms");
  luaL_argcheck(L, timeout >= 0 && st >= 0 && tries >= 0 && quick >= 0, 4,
                "negative values");
  every.period_ms = to_ms(period);
  every.timeout_ms = to_ms(timeout);
  every.success_threshold = st > 1e6 ? 1000000u : (unsigned)st;
  every.max_tries = tries > 100 ? 100u : (unsigned)tries;
  every.quick_ms = to_ms(quick);
  ml_probe_runner_t *r = get_runner(L);
  ml_probe_params_t o;
  read_params(L, 3, &o);
  /* The userdata first, so a failure below leaves nothing behind. */
  ticker_ud_t *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->t = NULL;
  luaL_setmetatable(L, TICKER_MT);
  int rc = ml_probe_ticker_new(r, kind, &o, &every, (uint64_t)id, &ud->t);
  if (rc < 0) return start_error(L, rc, kind);
  return 1;
}

/* Lua: ticker:arm(first_ms) */
static int ticker_arm(lua_State *L) {
  ticker_ud_t *ud = check_ticker(L);
  lua_Number first = luaL_optnumber(L, 2, 0);
  ml_probe_ticker_arm(ud->t, first > 0 ? (uint64_t)first : 0);
  return 0;
}

/* Lua: ticker:disarm() */
static int ticker_disarm(lua_State *L) {
  ml_probe_ticker_disarm(check_ticker(L)->t);
  return 0;
}

/* Lua: ticker:reset() */
static int ticker_reset(lua_State *L) {
  ml_probe_ticker_reset(check_ticker(L)->t);
  return 0;
}

/* Lua: ticker:close(); also the finalizer */
static int ticker_close(lua_State *L) {
  ticker_ud_t *ud = luaL_checkudata(L, 1, TICKER_MT);
  if (ud->t) {
    ml_probe_ticker_free(ud->t);
    ud->t = NULL;
  }
  return 0;
}

/* }====== */

/* Lua: was_running = probe.cancel(id); no event follows */
static int lprobe_cancel(lua_State *L) {
  lua_Integer id = luaL_checkinteger(L, 1);
  lua_pushboolean(L, ml_probe_cancel(get_runner(L), (uint64_t)id));
  return 1;
}

/* Lua: probe.kinds() -> { "http", "tcp", ... } */
static int lprobe_kinds(lua_State *L) {
  ml_probe_runner_t *r = get_runner(L);
  static const char *const names[] = {"http", "tcp", "exec"};
  lua_newtable(L);
  int n = 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (ml_probe_find_kind(r, names[i])) {
      lua_pushstring(L, names[i]);
      lua_rawseti(L, -2, ++n);
    }
  }
  return 1;
}

/* Lua: probe.stats() -> { active=, closing=, started=, finished=,
 * http_active=, http_queued=, tickers=, quiet=, quick= } */
static int lprobe_stats(lua_State *L) {
  ml_probe_stats_t s;
  ml_probe_runner_stats(get_runner(L), &s);
  lua_createtable(L, 0, 9);
  lua_pushinteger(L, (lua_Integer)s.active);
  lua_setfield(L, -2, "active");
  lua_pushinteger(L, (lua_Integer)s.closing);
  lua_setfield(L, -2, "closing");
  lua_pushinteger(L, (lua_Integer)s.started);
  lua_setfield(L, -2, "started");
  lua_pushinteger(L, (lua_Integer)s.finished);
  lua_setfield(L, -2, "finished");
  lua_pushinteger(L, (lua_Integer)s.http_active);
  lua_setfield(L, -2, "http_active");
  lua_pushinteger(L, (lua_Integer)s.http_queued);
  lua_setfield(L, -2, "http_queued");
  lua_pushinteger(L, (lua_Integer)s.tickers);
  lua_setfield(L, -2, "tickers");
  lua_pushinteger(L, (lua_Integer)s.quiet);
  lua_setfield(L, -2, "quiet");
  lua_pushinteger(L, (lua_Integer)s.quick);
  lua_setfield(L, -2, "quick");
  return 1;
}

/* Lua: probe.set_max_http(n) bounds the HTTP probes in flight */
static int lprobe_set_max_http(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0, 1, "must be >= 0");
  ml_probe_runner_set_max_http(get_runner(L), (size_t)n);
  return 0;
}

static const luaL_Reg runner_metameth[] = {{"__gc", runner_gc},
                                           {"__close", runner_gc},
                                           {"__tostring", runner_tostring},
                                           {NULL, NULL}};

static const luaL_Reg ticker_meth[] = {{"arm", ticker_arm},
                                       {"disarm", ticker_disarm},
                                       {"reset", ticker_reset},
                                       {"close", ticker_close},
                                       {"__gc", ticker_close},
                                       {"__close", ticker_close},
                                       {NULL, NULL}};

static const luaL_Reg probe_funcs[] = {{"start", lprobe_start},
                                       {"ticker", lprobe_ticker},
                                       {"cancel", lprobe_cancel},
                                       {"kinds", lprobe_kinds},
                                       {"stats", lprobe_stats},
                                       {"set_max_http", lprobe_set_max_http},
                                       {NULL, NULL}};

int luaopen_moonlet_core_probe(lua_State *L) {
  luaL_newmetatable(L, RUNNER_MT);
  luaL_setfuncs(L, runner_metameth, 0);
  lua_pop(L, 1);
  luaL_newmetatable(L, TICKER_MT);
  luaL_setfuncs(L, ticker_meth, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  ml_runtime_on_event(ML_EV_PROBE_DONE, push_probe);
  luaL_newlib(L, probe_funcs);
  return 1;
}
