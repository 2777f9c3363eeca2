/* The Lua side of the moonlet loop: one runtime per lua_State, found in the
 * registry under "moonlet.ctx". It owns the libuv loop when it created it,
 * delivers queued core events to the Lua scheduler (lua/moonlet/sched.lua)
 * and is the one door into Lua from C (ml_lua_pcall). */
#ifndef ML_RUNTIME_H
#define ML_RUNTIME_H

#include <lauxlib.h>
#include <lua.h>

#include "durable.h"
#include "loop.h"

typedef struct ml_runtime_s {
  uv_loop_t uv;
  ml_loop_t loop;
  ml_durable_t durable; /* holds answers until the store's commits sync */
  lua_State *L;
  int dispatch_ref; /* sched.dispatch(id, ...) */
  int live_refs;    /* registry refs held by bindings; must end at zero */
  void *store;      /* the server's ml_store_t, when one is open */
  void *httpd;      /* the server's ml_httpd_t, when one runs */
  void *http;       /* the http client (libcurl multi), created on first use */
} ml_runtime_t;

/**
 * Pushes an event's payload on the stack (after the id the runtime pushed).
 * @return the number of values pushed.
 */
typedef int (*ml_event_push_fn)(lua_State *L, ml_event_t *ev);

/** Registers the push function for one event type (process-wide). */
void ml_runtime_on_event(int type, ml_event_push_fn push);

/** @return the runtime of `L`, creating it on first call. */
ml_runtime_t *ml_runtime_get(lua_State *L);

/**
 * Calls the function below `nargs` arguments in protected mode with a
 * traceback handler. Errors other than LUA_ERRMEM are logged with `owner`
 * (plugin or subsystem name) and returned; the message is left popped.
 * @return LUA_OK or the lua_pcall status.
 */
int ml_lua_pcall(lua_State *L, int nargs, int nresults, const char *owner);

/** Registry ref bookkeeping (counted so tests can assert no leaks). */
int ml_ref(lua_State *L);
void ml_unref(lua_State *L, int ref);

/** Lua failure convention: pushes nil, "ENAME: message", "ENAME"; returns 3. */
int ml_lua_fail(lua_State *L, int err);
/** The same with our own message (NULL or "": the code's own text); an
 * errno libuv has no name for is named by libc (ENOEXEC). */
int ml_lua_fail_msg(lua_State *L, int err, const char *msg);

/** Opens every moonlet.* module (C preloads and the embedded Lua searcher). */
int luaopen_moonlet_core(lua_State *L);

/** Shuts the runtime down: closes handles, runs the loop until it is empty. */
void ml_runtime_close(lua_State *L);

#endif
