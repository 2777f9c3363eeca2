/* moonlet.core.loop: clock, ids, timers, signal watchers and idle turns on
 * the runtime's libuv loop. Handles deliver (id) events to the Lua
 * scheduler; the Lua facade (lua/moonlet/loop.lua) turns them into sleep(),
 * idle() and callbacks. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "runtime.h"

#define TIMER_MT "moonlet.Timer"
#define SIGNAL_MT "moonlet.Signal"

/* One record for timers and signal watchers: the uv handle lives in malloc'd
 * memory freed by its close callback (the userdata may be gone by then). */
typedef struct {
  union {
    uv_handle_t handle;
    uv_timer_t timer;
    uv_signal_t signal;
  } h;
  ml_loop_t *loop;
  uint64_t id;
  int self_ref; /* anchors the userdata while the handle is active */
  int signum;
} handle_rec_t;

typedef struct {
  handle_rec_t *rec; /* NULL once closed */
} handle_ud_t;

typedef struct {
  ml_event_t ev;
  int signum;
} signal_event_t;

static void rec_close_cb(uv_handle_t *h) { free(h->data); }

/* L is the caller's state: never one saved at creation, as the coroutine
 * that made the handle may have ended and been collected since. */
static void rec_unanchor(lua_State *L, handle_rec_t *rec) {
  if (rec->self_ref != LUA_NOREF) {
    ml_unref(L, rec->self_ref);
    rec->self_ref = LUA_NOREF;
  }
}

static void on_timer(uv_timer_t *t) {
  handle_rec_t *rec = t->data;
  ml_event_t *ev = calloc(1, sizeof *ev);
  if (!ev) return;
  ev->type = ML_EV_TIMER;
  ev->id = rec->id;
  ml_loop_post(rec->loop, ev);
}

static void on_signal(uv_signal_t *s, int signum) {
  handle_rec_t *rec = s->data;
  signal_event_t *ev = calloc(1, sizeof *ev);
  if (!ev) return;
  ev->ev.type = ML_EV_SIGNAL;
  ev->ev.id = rec->id;
  ev->signum = signum;
  ml_loop_post(rec->loop, &ev->ev);
}

static int push_timer(lua_State *L, ml_event_t *ev) {
  (void)L;
  (void)ev;
  return 0;
}

static int push_signal(lua_State *L, ml_event_t *ev) {
  lua_pushinteger(L, ((signal_event_t *)ev)->signum);
  return 1;
}

static int push_idle(lua_State *L, ml_event_t *ev) {
  (void)ev;
  lua_pushboolean(L, 1);
  return 1;
}

static handle_rec_t *check_open(lua_State *L, int idx, const char *mt) {
  handle_ud_t *ud = luaL_checkudata(L, idx, mt);
  if (!ud->rec) luaL_error(L, "attempt to use a closed %s", mt);
  return ud->rec;
}

/* Closing is idempotent and shared by close(), __close and __gc. */
static int handle_close(lua_State *L, const char *mt) {
  handle_ud_t *ud = luaL_checkudata(L, 1, mt);
  handle_rec_t *rec = ud->rec;
  if (!rec) return 0;
  ud->rec = NULL;
  rec_unanchor(L, rec);
  /* A tick that fired but was not delivered yet dies with the handle. */
  ml_loop_cancel(rec->loop, rec->id);
  if (!uv_is_closing(&rec->h.handle)) uv_close(&rec->h.handle, rec_close_cb);
  return 0;
}

static handle_ud_t *new_handle(lua_State *L, const char *mt, handle_rec_t **out) {
  /* Allocate the userdata first so an allocation error leaves nothing. */
  handle_ud_t *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->rec = NULL;
  luaL_setmetatable(L, mt);
  handle_rec_t *rec = calloc(1, sizeof *rec);
  if (!rec) luaL_error(L, "out of memory");
  ml_runtime_t *rt = ml_runtime_get(L);
  rec->loop = &rt->loop;
  rec->self_ref = LUA_NOREF;
  rec->h.handle.data = rec;
  ud->rec = rec;
  *out = rec;
  return ud;
}

/* Lua: timer = loop.timer(id, timeout_ms [, repeat_ms]) */
static int lloop_timer(lua_State *L) {
  lua_Integer id = luaL_checkinteger(L, 1);
  lua_Integer timeout = luaL_checkinteger(L, 2);
  lua_Integer repeat = luaL_optinteger(L, 3, 0);
  luaL_argcheck(L, timeout >= 0, 2, "timeout must be >= 0");
  luaL_argcheck(L, repeat >= 0, 3, "repeat must be >= 0");
  handle_rec_t *rec;
  new_handle(L, TIMER_MT, &rec);
  uv_timer_init(rec->loop->uv, &rec->h.timer);
  rec->h.timer.data = rec;
  rec->id = (uint64_t)id;
  /* libuv counts from the time cached at the start of the turn; a long
   * turn would make the timer fire early. */
  uv_update_time(rec->loop->uv);
  uv_timer_start(&rec->h.timer, on_timer, (uint64_t)timeout, (uint64_t)repeat);
  lua_pushvalue(L, -1);
  rec->self_ref = ml_ref(L);
  return 1;
}

static int ltimer_stop(lua_State *L) {
  handle_rec_t *rec = check_open(L, 1, TIMER_MT);
  uv_timer_stop(&rec->h.timer);
  ml_loop_cancel(rec->loop, rec->id);
  rec_unanchor(L, rec);
  return 0;
}

static int ltimer_close(lua_State *L) { return handle_close(L, TIMER_MT); }

/* Lua: timer:unref() lets the loop exit while this timer is pending. */
static int ltimer_unref(lua_State *L) {
  uv_unref(&check_open(L, 1, TIMER_MT)->h.handle);
  return 0;
}

static int ltimer_tostring(lua_State *L) {
  handle_ud_t *ud = luaL_checkudata(L, 1, TIMER_MT);
  if (ud->rec) lua_pushfstring(L, "moonlet.Timer: %p", (void *)ud->rec);
  else lua_pushliteral(L, "moonlet.Timer: (closed)");
  return 1;
}

static const char *const signames[] = {"SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT",
                                       "SIGUSR1", "SIGUSR2", NULL};
static const int signums[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

/* Lua: watcher = loop.signal(id, "SIGTERM"); delivers (id, signum) */
static int lloop_signal(lua_State *L) {
  lua_Integer id = luaL_checkinteger(L, 1);
  int which = luaL_checkoption(L, 2, NULL, signames);
  handle_rec_t *rec;
  new_handle(L, SIGNAL_MT, &rec);
  uv_signal_init(rec->loop->uv, &rec->h.signal);
  rec->h.signal.data = rec;
  rec->id = (uint64_t)id;
  rec->signum = signums[which];
  int rc = uv_signal_start(&rec->h.signal, on_signal, rec->signum);
  if (rc < 0) {
    handle_close(L, SIGNAL_MT);
    return ml_lua_fail(L, rc);
  }
  /* A signal watcher alone must not keep the loop alive. */
  uv_unref(&rec->h.handle);
  lua_pushvalue(L, -1);
  rec->self_ref = ml_ref(L);
  return 1;
}

static int lsignal_close(lua_State *L) { return handle_close(L, SIGNAL_MT); }

static int lsignal_tostring(lua_State *L) {
  handle_ud_t *ud = luaL_checkudata(L, 1, SIGNAL_MT);
  lua_pushfstring(L, "moonlet.Signal: %s", ud->rec ? "open" : "(closed)");
  return 1;
}

/* Lua: loop.idle(id) delivers (id, true) once, the next time the loop finds
 * nothing else to do; loop.cancel(id) takes it back (with any other queued,
 * undelivered event for id). */
static int lloop_idle(lua_State *L) {
  lua_Integer id = luaL_checkinteger(L, 1);
  ml_event_t *ev = calloc(1, sizeof *ev);
  if (!ev) return luaL_error(L, "out of memory");
  ev->type = ML_EV_IDLE;
  ev->id = (uint64_t)id;
  ml_loop_post_idle(&ml_runtime_get(L)->loop, ev);
  return 0;
}

static int lloop_cancel(lua_State *L) {
  uint64_t id = (uint64_t)luaL_checkinteger(L, 1);
  ml_loop_t *loop = &ml_runtime_get(L)->loop;
  lua_pushinteger(L, (lua_Integer)ml_loop_cancel(loop, id));
  return 1;
}

static int lloop_next_id(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ml_loop_next_id(&ml_runtime_get(L)->loop));
  return 1;
}

/* Lua: loop.now() -> milliseconds (monotonic, cached per turn) */
static int lloop_now(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ml_loop_now(&ml_runtime_get(L)->loop));
  return 1;
}

/* Lua: loop.hrtime() -> nanoseconds (monotonic, exact) */
static int lloop_hrtime(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)uv_hrtime());
  return 1;
}

/* Lua: loop.time() -> wall-clock seconds as a float */
static int lloop_time(lua_State *L) {
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  lua_pushnumber(L, (lua_Number)tv.tv_sec + (lua_Number)tv.tv_usec / 1e6);
  return 1;
}

static const luaL_Reg timer_meth[] = {
    {"stop", ltimer_stop}, {"close", ltimer_close}, {"unref", ltimer_unref},
    {NULL, NULL}};
static const luaL_Reg timer_metameth[] = {
    {"__gc", ltimer_close}, {"__close", ltimer_close},
    {"__tostring", ltimer_tostring}, {"__index", NULL}, {NULL, NULL}};
static const luaL_Reg signal_meth[] = {{"close", lsignal_close}, {NULL, NULL}};
static const luaL_Reg signal_metameth[] = {
    {"__gc", lsignal_close}, {"__close", lsignal_close},
    {"__tostring", lsignal_tostring}, {"__index", NULL}, {NULL, NULL}};

static void createmeta(lua_State *L, const char *name, const luaL_Reg *meth,
                       const luaL_Reg *metameth) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, metameth, 0);
  lua_newtable(L);
  luaL_setfuncs(L, meth, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

static const luaL_Reg loop_funcs[] = {
    {"timer", lloop_timer}, {"signal", lloop_signal}, {"next_id", lloop_next_id},
    {"now", lloop_now},     {"hrtime", lloop_hrtime}, {"time", lloop_time},
    {"idle", lloop_idle},   {"cancel", lloop_cancel}, {NULL, NULL}};

int luaopen_moonlet_core_loop(lua_State *L) {
  createmeta(L, TIMER_MT, timer_meth, timer_metameth);
  createmeta(L, SIGNAL_MT, signal_meth, signal_metameth);
  ml_runtime_on_event(ML_EV_TIMER, push_timer);
  ml_runtime_on_event(ML_EV_SIGNAL, push_signal);
  ml_runtime_on_event(ML_EV_IDLE, push_idle);
  luaL_newlib(L, loop_funcs);
  return 1;
}
