/* Runtime glue between the moonlet loop and Lua: per-state context in the
 * registry, event delivery to the Lua scheduler, the protected-call door,
 * the embedded-module searcher, and the moonlet.core.runtime module. */
#include "runtime.h"

#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "err.h"
#include "lalloc.h"
#include "log.h"

#define CTX_KEY "moonlet.ctx"

static ml_event_push_fn pushers[ML_EV_MAX];

void ml_runtime_on_event(int type, ml_event_push_fn push) {
  if (type > 0 && type < ML_EV_MAX) pushers[type] = push;
}

/* {====== protected calls */

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int ml_lua_pcall(lua_State *L, int nargs, int nresults, const char *owner) {
  int base = lua_gettop(L) - nargs; /* function index */
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  if (status == LUA_ERRMEM) {
    ML_ERROR("%s: out of memory in Lua", owner ? owner : "lua");
    abort();
  }
  if (status != LUA_OK) {
    ML_ERROR("%s: %s", owner ? owner : "lua", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return status;
}

/* }====== */

int ml_ref(lua_State *L) {
  ml_runtime_get(L)->live_refs++;
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

void ml_unref(lua_State *L, int ref) {
  if (ref == LUA_NOREF || ref == LUA_REFNIL) return;
  ml_runtime_get(L)->live_refs--;
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
}

int ml_lua_fail_msg(lua_State *L, int err, const char *msg) {
  /* errno values libuv has no name for (ENOEXEC) keep their own. */
  const char *name = ml_err_name(err);
  if (strncmp(name, "Unknown", 7) == 0 && err > -4096 && err < 0) {
    const char *n = strerrorname_np(-err);
    if (n) name = n;
  }
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", name, msg && *msg ? msg : ml_strerror(err));
  lua_pushstring(L, name);
  return 3;
}

int ml_lua_fail(lua_State *L, int err) {
  return ml_lua_fail_msg(L, err, ml_strerror(err));
}

/* {====== event delivery */

static uint64_t delivered; /* events delivered to Lua, for activity() */

/* Lua time one turn may take before the rest of the queue waits for the
 * next turn. A scale-up queues thousands of events (watch events, each
 * starting a pod): delivered in one go they made one turn last seconds,
 * with no socket read and no response sent until it ended (a GET took
 * 12-18 s during a 1,000-pod scale-up). Requests from API clients are
 * posted first (ml_loop_post_first), so a client waits about one turn, not
 * for the backlog (under 1 s in the same run, at load 7-10). 10 ms made the
 * scale-up itself up to 2x slower: work that reacts to the backlog's
 * events (informers, slow-start batches) then waits behind it turn after
 * turn. */
#define DRAIN_BUDGET_NS (50 * 1000 * 1000)

static void drain(ml_loop_t *loop, void *ud) {
  ml_runtime_t *rt = ud;
  lua_State *L = rt->L;
  /* Deliver what is queued now, for at most the budget; events posted
   * meanwhile wait one turn so the store commit and response flush are
   * never starved. */
  size_t budget = loop->queued;
  uint64_t deadline = uv_hrtime() + DRAIN_BUDGET_NS;
  bool own_work = false; /* an ordinary (not posted-first) event went */
  ml_event_t *ev;
  while (budget-- > 0) {
    /* Requests never stop the server's own work: each turn delivers at
     * least one ordinary event when one is queued. */
    if (!ml_loop_next_is_first(loop)) own_work = true;
    if ((ev = ml_loop_pop(loop)) == NULL) break;
    if (rt->dispatch_ref == LUA_NOREF || !pushers[ev->type]) {
      ml_event_free(ev);
      continue;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->dispatch_ref);
    lua_pushinteger(L, (lua_Integer)ev->id);
    int n = pushers[ev->type](L, ev);
    ml_event_free(ev);
    delivered++;
    ml_lua_pcall(L, 1 + n, 0, "dispatch");
    if (uv_hrtime() > deadline && (own_work || loop->urgent == loop->queued)) break;
  }
}

/* }====== */

static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void ml_runtime_close(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, CTX_KEY);
  ml_runtime_t *rt = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!rt || !rt->L) return;
  /* Commits still syncing become durable, and the answers waiting for
   * them go out, before any handle closes. */
  ml_durable_close(&rt->durable);
  ml_loop_close(&rt->loop);
  /* Handles still open belong to bindings whose records are freed by
   * their own close callbacks (or leak-checked by tests); close the rest. */
  uv_walk(&rt->uv, walk_close, NULL);
  /* Then wait (not spin) for requests still on libuv's pool (a mkdir). */
  for (int i = 0; i < 1000 && uv_loop_close(&rt->uv) == UV_EBUSY; i++)
    uv_run(&rt->uv, i < 100 ? UV_RUN_NOWAIT : UV_RUN_ONCE);
  ml_loop_close(&rt->loop);
  rt->L = NULL;
}

static int runtime_gc(lua_State *L) {
  ml_runtime_t *rt = lua_touserdata(L, 1);
  if (rt->L) ml_runtime_close(rt->L);
  return 0;
}

ml_runtime_t *ml_runtime_get(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, CTX_KEY) == LUA_TUSERDATA) {
    ml_runtime_t *rt = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return rt;
  }
  lua_pop(L, 1);
  ml_runtime_t *rt = lua_newuserdatauv(L, sizeof *rt, 0);
  memset(rt, 0, sizeof *rt);
  uv_loop_init(&rt->uv);
  ml_loop_init(&rt->loop, &rt->uv);
  if (ml_durable_init(&rt->durable, &rt->loop) < 0)
    luaL_error(L, "cannot create the durability gate");
  /* One client waiting alone gets its answer as fast as before the gate. */
  ml_durable_set_inline(&rt->durable, true);
  /* The main thread, whoever asks first: a coroutine may end and be
   * collected while the runtime lives on. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  rt->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  rt->dispatch_ref = LUA_NOREF;
  lua_newtable(L); /* stack: rt mt */
  lua_pushcfunction(L, runtime_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, CTX_KEY);
  ml_loop_add_hook(&rt->loop, drain, rt);
  return rt;
}

/* {====== moonlet.core.runtime */

static int lruntime_set_dispatcher(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  ml_runtime_t *rt = ml_runtime_get(L);
  lua_settop(L, 1);
  if (rt->dispatch_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, rt->dispatch_ref);
  rt->dispatch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static int done_ref_L_check(lua_State *L, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  if (ml_lua_pcall(L, 0, 1, "run") != LUA_OK) return 1;
  int done = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return done;
}

typedef struct {
  lua_State *L;
  int ref;
} run_done_t;

static bool run_done(void *ud) {
  run_done_t *d = ud;
  return done_ref_L_check(d->L, d->ref);
}

/* Lua: runtime.run([done]) runs the loop until done() is true, stop() is
 * called, or nothing is left to do. Must not be called from a coroutine. */
static int lruntime_run(lua_State *L) {
  ml_runtime_t *rt = ml_runtime_get(L);
  if (lua_isfunction(L, 1)) {
    lua_settop(L, 1);
    run_done_t d = {L, luaL_ref(L, LUA_REGISTRYINDEX)};
    ml_loop_run(&rt->loop, run_done, &d);
    luaL_unref(L, LUA_REGISTRYINDEX, d.ref);
  } else {
    ml_loop_run(&rt->loop, NULL, NULL);
  }
  return 0;
}

static int lruntime_stop(lua_State *L) {
  ml_loop_stop(&ml_runtime_get(L)->loop);
  return 0;
}

static int lruntime_live_refs(lua_State *L) {
  lua_pushinteger(L, ml_runtime_get(L)->live_refs);
  return 1;
}

/* Lua: runtime.embedded(prefix) -> { path, ... } sorted */
static int lruntime_embedded(lua_State *L) {
  const char *prefix = luaL_optstring(L, 1, "");
  size_t plen = strlen(prefix);
  lua_newtable(L);
  int n = 0;
  for (const ml_embedded_t *e = ml_embedded_files; e->path; e++) {
    if (strncmp(e->path, prefix, plen) == 0) {
      lua_pushstring(L, e->path);
      lua_rawseti(L, -2, ++n);
    }
  }
  return 1;
}

static const ml_embedded_t *find_embedded(const char *path) {
  for (const ml_embedded_t *e = ml_embedded_files; e->path; e++)
    if (strcmp(e->path, path) == 0) return e;
  return NULL;
}

/* Lua: runtime.read_embedded(path) -> source | nil (nil as well for a
 * module embedded as bytecode) */
static int lruntime_read_embedded(lua_State *L) {
  const ml_embedded_t *e = find_embedded(luaL_checkstring(L, 1));
  if (!e || e->bytecode) return 0;
  lua_pushlstring(L, e->data, e->len);
  return 1;
}

static int lruntime_set_log_level(lua_State *L) {
  ml_log_level_t level;
  if (ml_log_parse_level(luaL_checkstring(L, 1), &level) < 0)
    return luaL_argerror(L, 1, "expected debug, info, warn or error");
  ml_log_set_level(level);
  return 0;
}

static int lruntime_log(lua_State *L) {
  static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
  int level = luaL_checkoption(L, 1, NULL, levels);
  ml_log((ml_log_level_t)level, "%s", luaL_checkstring(L, 2));
  return 0;
}

/* Lua: runtime.activity() -> events delivered so far (idle detection) */
static int lruntime_activity(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)delivered);
  return 1;
}

/* Lua: runtime.trim() gives free heap pages back to the system
 * (malloc_trim): glibc keeps what a burst freed. */
static int lruntime_trim(lua_State *L) {
  ml_lua_alloc_trim(L);
  lua_pushboolean(L, malloc_trim(0));
  return 1;
}

/* Lua: runtime.durable() -> { committed, synced, syncs, failed }: the
 * durability gate's sequence numbers (core/durable.h). */
static int lruntime_durable(lua_State *L) {
  ml_durable_t *d = &ml_runtime_get(L)->durable;
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)d->committed);
  lua_setfield(L, -2, "committed");
  lua_pushinteger(L, (lua_Integer)d->synced);
  lua_setfield(L, -2, "synced");
  lua_pushinteger(L, (lua_Integer)d->syncs);
  lua_setfield(L, -2, "syncs");
  lua_pushboolean(L, d->err != 0);
  lua_setfield(L, -2, "failed");
  return 1;
}

/* Lua: runtime.durable_pause(bool) holds the syncs not yet started (a
 * spec's slow disk); false lets them go. */
static int lruntime_durable_pause(lua_State *L) {
  ml_durable_pause(&ml_runtime_get(L)->durable, lua_toboolean(L, 1));
  return 0;
}

static const luaL_Reg runtime_funcs[] = {
    {"durable", lruntime_durable},
    {"durable_pause", lruntime_durable_pause},
    {"activity", lruntime_activity},
    {"trim", lruntime_trim},
    {"set_dispatcher", lruntime_set_dispatcher},
    {"run", lruntime_run},
    {"stop", lruntime_stop},
    {"live_refs", lruntime_live_refs},
    {"embedded", lruntime_embedded},
    {"read_embedded", lruntime_read_embedded},
    {"set_log_level", lruntime_set_log_level},
    {"log", lruntime_log},
    {NULL, NULL}};

static int luaopen_moonlet_core_runtime(lua_State *L) {
  luaL_newlib(L, runtime_funcs);
  return 1;
}

/* }====== */

/* {====== module loading */

/* package.searchers entry: "moonlet.a.b" -> lua/moonlet/a/b.lua or
 * lua/moonlet/a/b/init.lua from the embedded files. */
static int embedded_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "lua/");
  for (const char *p = name; *p; p++) luaL_addchar(&b, *p == '.' ? '/' : *p);
  luaL_pushresult(&b);
  const char *base = lua_tostring(L, -1);
  const char *path = lua_pushfstring(L, "%s.lua", base);
  const ml_embedded_t *e = find_embedded(path);
  if (!e) {
    path = lua_pushfstring(L, "%s/init.lua", base);
    e = find_embedded(path);
  }
  if (!e) {
    lua_pushfstring(L, "no embedded file '%s.lua'", base);
    return 1;
  }
  const char *chunk = lua_pushfstring(L, "@%s", path);
  /* Bytecode from the build skips the parser (made by this very liblua). */
  if (luaL_loadbufferx(L, e->data, e->len, chunk, e->bytecode ? "b" : "t") != LUA_OK)
    return luaL_error(L, "error loading module '%s': %s", name, lua_tostring(L, -1));
  lua_pushstring(L, path);
  return 2;
}

#define ML_MODULE(name, fn) int fn(lua_State *L);
#include "modules.def"
#undef ML_MODULE

static const luaL_Reg c_modules[] = {
    {"moonlet.core.runtime", luaopen_moonlet_core_runtime},
#define ML_MODULE(name, fn) {name, fn},
#include "modules.def"
#undef ML_MODULE
    {NULL, NULL}};

int luaopen_moonlet_core(lua_State *L) {
  /* A write to a peer that went away must fail with EPIPE, not kill the
   * host process (the server, or lua5.4 running specs). */
  signal(SIGPIPE, SIG_IGN);
  ml_runtime_get(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (const luaL_Reg *m = c_modules; m->name; m++) {
    lua_pushcfunction(L, m->func);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);
  /* Insert the embedded searcher right after the preload searcher, so the
   * built-in runtime wins over stray files on package.path. */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers"); /* stack: package searchers */
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = n; i >= 2; i--) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcfunction(L, embedded_searcher);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2);
  /* The scheduler installs itself as dispatcher. */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "moonlet.sched");
  lua_call(L, 1, 1);
  return 1;
}

/* }====== */
