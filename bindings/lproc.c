/* moonlet.core.proc: containers as processes (core/proc.h) for Lua. A
 * moonlet.Proc userdata points at the C record and anchors itself while the
 * process runs; its exit arrives as (id, result table). An armed
 * replacement is a closed moonlet.Proc until the exit result hands it over
 * (result.next), open and running. Log reading, log
 * following (moonlet.LogFollower, events (id, "data", text) then
 * (id, "end")), leftover reaping and the cgroup check. The facade is
 * lua/moonlet/proc.lua. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "proc.h"
#include "proc_usage.h"
#include "runtime.h"

#define PROC_MT "moonlet.Proc"
#define FOLLOW_MT "moonlet.LogFollower"

typedef struct {
  ml_proc_t *p; /* NULL once closed */
  int self_ref; /* anchors the userdata until the exit is delivered */
  int next_ref; /* the armed replacement's self_ref, or LUA_NOREF */
  int pid;
} proc_ud_t;

typedef struct {
  ml_proc_follow_t *f; /* NULL once closed */
} follow_ud_t;

/* Failure values with the errno name even where libuv has none (ENOEXEC). */
static int fail(lua_State *L, int err, const char *msg) {
  return ml_lua_fail_msg(L, err, msg);
}

/* {====== signals */

static const struct {
  const char *name;
  int num;
} signals[] = {{"HUP", SIGHUP},     {"INT", SIGINT},   {"QUIT", SIGQUIT},
               {"KILL", SIGKILL},   {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
               {"TERM", SIGTERM},   {"CONT", SIGCONT}, {"STOP", SIGSTOP},
               {"TSTP", SIGTSTP},   {"ALRM", SIGALRM}, {"PIPE", SIGPIPE},
               {"WINCH", SIGWINCH}, {"ABRT", SIGABRT}, {NULL, 0}};

static int check_signal(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, idx);
    luaL_argcheck(L, n >= 0 && n < NSIG, idx, "bad signal number");
    return (int)n;
  }
  const char *s = luaL_optstring(L, idx, "TERM");
  if (strncmp(s, "SIG", 3) == 0) s += 3;
  for (int i = 0; signals[i].name; i++)
    if (strcmp(s, signals[i].name) == 0) return signals[i].num;
  return luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", s));
}

/* }====== */

/* {====== moonlet.Proc */

static proc_ud_t *check_proc(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, PROC_MT);
}

static ml_proc_t *check_open(lua_State *L, int idx) {
  proc_ud_t *ud = check_proc(L, idx);
  if (!ud->p) luaL_error(L, "attempt to use a closed moonlet.Proc");
  return ud->p;
}

/* Reads a list of strings at t[key] into a NULL-terminated array kept in
 * a userdata on the stack (so an error cannot leak it). */
static const char **string_list(lua_State *L, int t, const char *key,
                                bool required) {
  int type = lua_getfield(L, t, key);
  if (type == LUA_TNIL) {
    if (required) luaL_error(L, "proc.spawn: '%s' is required", key);
    lua_pop(L, 1);
    lua_pushnil(L); /* keep the stack shape: one slot per list */
    return NULL;
  }
  if (type != LUA_TTABLE) luaL_error(L, "proc.spawn: '%s' must be a list", key);
  lua_Integer n = luaL_len(L, -1);
  const char **v = lua_newuserdatauv(L, sizeof *v * (size_t)(n + 1), 1);
  lua_createtable(L, (int)n, 0); /* stack: ... list array keep */
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -3, i);
    if (!lua_isstring(L, -1))
      luaL_error(L, "proc.spawn: '%s'[%d] must be a string", key, (int)i);
    v[i - 1] = lua_tostring(L, -1); /* numbers become strings here */
    lua_rawseti(L, -2, i);
  }
  v[n] = NULL;
  lua_setiuservalue(L, -2, 1); /* the strings live as long as the array */
  lua_remove(L, -2);           /* stack: ... array */
  return v;
}

static const char *opt_string(lua_State *L, int t, const char *key) {
  lua_getfield(L, t, key);
  const char *s = NULL;
  if (!lua_isnil(L, -1)) {
    if (!lua_isstring(L, -1))
      luaL_error(L, "proc.spawn: '%s' must be a string", key);
    s = lua_tostring(L, -1);
  }
  lua_pop(L, 1); /* the string stays referenced by the options table */
  return s;
}

static lua_Integer opt_int(lua_State *L, int t, const char *key,
                           lua_Integer def) {
  lua_getfield(L, t, key);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1))
      luaL_error(L, "proc.spawn: '%s' must be a number", key);
    v = (lua_Integer)lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  if (v < 0) luaL_error(L, "proc.spawn: '%s' must be >= 0", key);
  return v;
}

/* Reads spawn options from the table at t; pushes two values (the argv and
 * env arrays) that must stay on the stack while `o` is used. */
static void read_opts(lua_State *L, int t, ml_proc_opts_t *o) {
  *o = (ml_proc_opts_t){0};
  o->argv = string_list(L, t, "command", true); /* stack: ... argv */
  o->env = string_list(L, t, "env", false);     /* stack: ... argv env */
  o->cwd = opt_string(L, t, "cwd");
  o->stdout_log = opt_string(L, t, "stdout_log");
  o->stderr_log = opt_string(L, t, "stderr_log");
  o->stdout_log_from = opt_string(L, t, "stdout_log_from");
  o->state_dir = opt_string(L, t, "state_dir");
  o->log_max_bytes = (uint64_t)opt_int(L, t, "log_max_bytes", 0);
  o->log_max_files = (int)opt_int(L, t, "log_max_files", 0);
  o->memory_limit_bytes = (uint64_t)opt_int(L, t, "memory_limit_bytes", 0);
  o->max_output = (size_t)opt_int(L, t, "max_output", 0);
  o->timeout_ms = (uint64_t)opt_int(L, t, "timeout_ms", 0);
  o->join_cgroup = opt_string(L, t, "join_cgroup");
  lua_getfield(L, t, "capture");
  o->capture = lua_toboolean(L, -1);
  lua_getfield(L, t, "new_session");
  o->new_session = lua_toboolean(L, -1);
  lua_pop(L, 2);
  if (!o->argv[0]) luaL_error(L, "proc.spawn: 'command' is empty");
}

/* Pushes a closed moonlet.Proc anchored by its self_ref (the process comes
 * later: spawned, or handed over at its predecessor's exit). */
static proc_ud_t *new_proc_ud(lua_State *L) {
  proc_ud_t *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->p = NULL;
  ud->self_ref = LUA_NOREF;
  ud->next_ref = LUA_NOREF;
  ud->pid = 0;
  luaL_setmetatable(L, PROC_MT);
  lua_pushvalue(L, -1);
  ud->self_ref = ml_ref(L);
  return ud;
}

/* Drops the anchor of ud's armed replacement, which will never run. */
static void drop_next(lua_State *L, proc_ud_t *ud) {
  int ref = ud->next_ref;
  if (ref == LUA_NOREF) return;
  ud->next_ref = LUA_NOREF;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  proc_ud_t *next = luaL_testudata(L, -1, PROC_MT);
  if (next && next->self_ref == ref) next->self_ref = LUA_NOREF;
  lua_pop(L, 1);
  ml_unref(L, ref);
}

/* Lua: p | nil, err, name = core.spawn(id, opts) */
static int lproc_spawn(lua_State *L) {
  uint64_t id = (uint64_t)luaL_checkinteger(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  ml_proc_opts_t o;
  read_opts(L, 2, &o); /* stack: id opts argv env */
  int fds[3];
  if (lua_getfield(L, 2, "stdio") == LUA_TTABLE) {
    /* The child's stdin, stdout, stderr (an exec session's ends). */
    for (int i = 0; i < 3; i++) {
      lua_rawgeti(L, -1, i + 1);
      fds[i] = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : -1;
      lua_pop(L, 1);
    }
    o.stdio = fds;
  }
  lua_pop(L, 1);

  /* The userdata exists before the process, in a closed state. */
  proc_ud_t *ud = new_proc_ud(L);
  o.udata = ud->self_ref;
  char msg[4200];
  ml_proc_t *p;
  int rc = ml_proc_spawn(&ml_runtime_get(L)->loop, id, &o, &p, msg, sizeof msg);
  if (rc < 0) {
    ml_unref(L, ud->self_ref);
    ud->self_ref = LUA_NOREF;
    return fail(L, rc, msg);
  }
  ud->p = p;
  ud->pid = ml_proc_pid(p);
  return 1;
}

/* Lua: proc.spawn_async(id, done_id, opts): the spawn of lproc_spawn with
 * its clone and exec on libuv's pool (ml_proc_spawn_async); the process
 * (or nil, err, name) comes as event done_id, its exit later to id. A
 * failure found before the pool (no command, a bad log path) returns
 * nil, err, name at once; else nothing. */
static int lproc_spawn_async(lua_State *L) {
  uint64_t id = (uint64_t)luaL_checkinteger(L, 1);
  uint64_t done = (uint64_t)luaL_checkinteger(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  ml_proc_opts_t o;
  read_opts(L, 3, &o); /* stack: id done opts argv env */
  proc_ud_t *ud = new_proc_ud(L);
  o.udata = ud->self_ref;
  char msg[4200];
  int rc = ml_proc_spawn_async(&ml_runtime_get(L)->loop, id, done, &o, msg,
                               sizeof msg);
  if (rc < 0) {
    ml_unref(L, ud->self_ref);
    ud->self_ref = LUA_NOREF;
    return fail(L, rc, msg);
  }
  return 0;
}

/* The answer of spawn_async: the waiting moonlet.Proc, open now, or the
 * failure (the userdata's anchor goes: no exit will come). */
static int push_spawned(lua_State *L, ml_proc_spawned_t *ev) {
  int ref = (int)ev->udata;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  proc_ud_t *ud = luaL_testudata(L, -1, PROC_MT);
  if (ev->rc == 0 && ud && ud->self_ref == ref && !ud->p) {
    ud->p = ev->proc;
    ud->pid = ml_proc_pid(ev->proc);
    ev->proc = NULL;
    return 1;
  }
  lua_pop(L, 1);
  if (ud && ud->self_ref == ref) {
    ud->self_ref = LUA_NOREF;
    ml_unref(L, ref);
  }
  if (ev->rc == 0) return fail(L, UV_ECANCELED, "spawn: no handle");
  return fail(L, ev->rc, ev->msg);
}

/* Lua: next | nil, err, name = p:arm_restart(id, opts, "any"|"failure"
 * [, not_before_seconds]): the replacement to start when p ends by itself
 * (ml_proc_arm_restart), as a
 * closed moonlet.Proc whose exit will come to `id`; the exit result of p
 * holds it, running, as `next`. */
static int lproc_arm_restart(lua_State *L) {
  static const char *const whens[] = {"any", "failure", NULL};
  static const int when_codes[] = {ML_PROC_RESTART_ANY,
                                   ML_PROC_RESTART_FAILURE};
  ml_proc_t *p = check_open(L, 1);
  proc_ud_t *ud = check_proc(L, 1);
  uint64_t id = (uint64_t)luaL_checkinteger(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  int when = when_codes[luaL_checkoption(L, 4, "any", whens)];
  lua_Number after = luaL_optnumber(L, 5, 0);
  luaL_argcheck(L, after >= 0, 5, "must be >= 0");
  lua_settop(L, 5);
  ml_proc_opts_t o;
  read_opts(L, 3, &o); /* stack: p id opts when after argv env */
  proc_ud_t *next = new_proc_ud(L);
  o.udata = next->self_ref;
  int rc = ml_proc_arm_restart(p, id, &o, when,
                               (uint64_t)(after * 1000.0 + 0.5));
  if (rc < 0) {
    ml_unref(L, next->self_ref);
    next->self_ref = LUA_NOREF;
    return fail(L, rc, NULL);
  }
  drop_next(L, ud); /* an earlier arming is replaced */
  ud->next_ref = next->self_ref;
  return 1;
}

/* Lua: p:disarm() -> true if a replacement was armed */
static int lproc_disarm(lua_State *L) {
  proc_ud_t *ud = check_proc(L, 1);
  bool was = ud->p && ml_proc_disarm(ud->p);
  drop_next(L, ud);
  lua_pushboolean(L, was);
  return 1;
}

/* Lua: ok | nil, err, name = p:kill([sig]) */
static int lproc_kill(lua_State *L) {
  ml_proc_t *p = check_open(L, 1);
  int rc = ml_proc_kill(p, check_signal(L, 2));
  if (rc < 0) return fail(L, rc, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/* Lua: ok | nil, err, name = p:stop([grace_seconds = 30]) */
static int lproc_stop(lua_State *L) {
  ml_proc_t *p = check_open(L, 1);
  lua_Number grace = luaL_optnumber(L, 2, 30);
  luaL_argcheck(L, grace >= 0, 2, "grace period must be >= 0");
  int rc = ml_proc_stop(p, (uint64_t)(grace * 1000.0 + 0.5));
  if (rc < 0) return fail(L, rc, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/* Lua: p:running() -> bool (false once the process was reaped) */
static int lproc_running(lua_State *L) {
  proc_ud_t *ud = check_proc(L, 1);
  lua_pushboolean(L, ud->p && !ml_proc_exited(ud->p));
  return 1;
}

/* Lua: p:watch_mode() -> "pidfd" | "sigchld" */
static int lproc_watch_mode(lua_State *L) {
  ml_proc_t *p = check_open(L, 1);
  lua_pushstring(L, ml_proc_watch_mode(p) == ML_PROC_WATCH_PIDFD ? "pidfd"
                                                                 : "sigchld");
  return 1;
}

/* close(), __close and __gc: a running process is killed; its exit event is
 * still delivered (and drops the anchor). */
static int lproc_close(lua_State *L) {
  proc_ud_t *ud = check_proc(L, 1);
  ml_proc_t *p = ud->p;
  if (!p) return 0;
  ud->p = NULL;
  ml_proc_release(p);
  return 0;
}

static int lproc_tostring(lua_State *L) {
  proc_ud_t *ud = check_proc(L, 1);
  if (ud->p)
    lua_pushfstring(L, "moonlet.Proc: %p (pid %d)", (void *)ud->p, ud->pid);
  else
    lua_pushfstring(L, "moonlet.Proc: %p (closed)", (void *)ud);
  return 1;
}

/* __index: p.pid, p.cgroup (its own cgroup dir or nil), else the methods
 * table (upvalue 1, extended in Lua). */
static int lproc_index(lua_State *L) {
  proc_ud_t *ud = check_proc(L, 1);
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "pid") == 0) {
    lua_pushinteger(L, ud->pid);
    return 1;
  }
  if (k && strcmp(k, "cgroup") == 0) {
    const char *dir = ud->p ? ml_proc_cgroup(ud->p) : NULL;
    if (dir)
      lua_pushstring(L, dir);
    else
      lua_pushnil(L);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

static void push_time(lua_State *L, int64_t ns) {
  char buf[40];
  ml_proc_format_time(ns, buf);
  lua_pushstring(L, buf);
}

static int push_event(lua_State *L, ml_event_t *e) {
  ml_proc_evhead_t *h = (ml_proc_evhead_t *)e;
  if (h->kind == ML_PROC_EV_SPAWNED)
    return push_spawned(L, (ml_proc_spawned_t *)e);
  if (h->kind == ML_PROC_EV_LOG || h->kind == ML_PROC_EV_LOG_END) {
    ml_proc_log_ev_t *ev = (ml_proc_log_ev_t *)e;
    if (h->kind == ML_PROC_EV_LOG_END) {
      lua_pushliteral(L, "end");
      return 1;
    }
    lua_pushliteral(L, "data");
    lua_pushlstring(L, ev->data, ev->len);
    return 2;
  }
  ml_proc_exit_t *ev = (ml_proc_exit_t *)e;
  /* The anchor goes: the handle lives on only while Lua holds it. The
   * replacement started at the exit goes to its waiting userdata, which
   * keeps its own anchor until its own exit. */
  int ref = (int)ev->udata;
  int has_next = 0;
  if (ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    proc_ud_t *ud = luaL_testudata(L, -1, PROC_MT);
    if (ud && ud->next_ref != LUA_NOREF && ev->next) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, ud->next_ref);
      proc_ud_t *next = luaL_testudata(L, -1, PROC_MT);
      if (next && next->self_ref == ud->next_ref && !next->p) {
        next->p = ev->next;
        next->pid = ml_proc_pid(ev->next);
        ev->next = NULL;
        ud->next_ref = LUA_NOREF;
        has_next = 1; /* stack: ... ud next */
      } else {
        lua_pop(L, 1);
      }
    }
    if (ud) drop_next(L, ud); /* armed, but nothing was started */
    if (ud && ud->self_ref == ref) {
      ud->self_ref = LUA_NOREF;
      ml_unref(L, ref);
    }
    if (has_next) lua_remove(L, -2); /* stack: ... next */
    else lua_pop(L, 1);
  }
  lua_createtable(L, 0, 12);
  if (has_next) {
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "next");
    lua_remove(L, -2);
    lua_pushinteger(L, (lua_Integer)ev->next_spawned_ns);
    lua_setfield(L, -2, "next_spawned_ns");
  }
  lua_pushinteger(L, ev->exit_code);
  lua_setfield(L, -2, "exit_code");
  if (ev->signal) {
    lua_pushinteger(L, ev->signal);
    lua_setfield(L, -2, "signal");
  }
  lua_pushinteger(L, ev->pid);
  lua_setfield(L, -2, "pid");
  push_time(L, ev->started_ns);
  lua_setfield(L, -2, "started_at");
  push_time(L, ev->finished_ns);
  lua_setfield(L, -2, "finished_at");
  lua_pushboolean(L, ev->oom_killed);
  lua_setfield(L, -2, "oom_killed");
  lua_pushboolean(L, ev->timed_out);
  lua_setfield(L, -2, "timed_out");
  lua_pushnumber(L, (lua_Number)(ev->finished_ns - ev->started_ns) / 1e9);
  lua_setfield(L, -2, "duration");
  if (ev->output || ev->output_truncated) {
    lua_pushlstring(L, ev->output ? ev->output : "", ev->output_len);
    lua_setfield(L, -2, "output");
    lua_pushboolean(L, ev->output_truncated);
    lua_setfield(L, -2, "output_truncated");
  }
  return 1;
}

/* }====== */

/* {====== logs */

/* Lua: text, offset | nil, err, name = core.read_log(path, {tail=,
 * since_seconds=, since_time=, timestamps=, limit_bytes=}) */
static int lproc_read_log(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  ml_proc_log_opts_t o = {.tail = -1};
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "tail");
    if (!lua_isnil(L, -1)) o.tail = (int)luaL_checkinteger(L, -1);
    lua_getfield(L, 2, "since_seconds");
    if (!lua_isnil(L, -1))
      o.since_ns = ml_proc_now_ns() - (int64_t)(luaL_checknumber(L, -1) * 1e9);
    lua_getfield(L, 2, "since_time"); /* wall-clock seconds (float) */
    if (!lua_isnil(L, -1))
      o.since_ns = (int64_t)(luaL_checknumber(L, -1) * 1e9);
    lua_getfield(L, 2, "timestamps");
    o.timestamps = lua_toboolean(L, -1);
    lua_getfield(L, 2, "limit_bytes");
    if (!lua_isnil(L, -1)) o.limit_bytes = (size_t)luaL_checkinteger(L, -1);
    lua_pop(L, 5);
  }
  char *text;
  size_t len;
  uint64_t off;
  int rc = ml_proc_read_log(path, &o, &text, &len, &off);
  if (rc < 0) return fail(L, rc, path);
  lua_pushlstring(L, text, len);
  free(text);
  lua_pushinteger(L, (lua_Integer)off);
  return 2;
}

/* Lua: follower = core.follow_log(id, path, offset, timestamps, interval_ms) */
static int lproc_follow_log(lua_State *L) {
  uint64_t id = (uint64_t)luaL_checkinteger(L, 1);
  const char *path = luaL_checkstring(L, 2);
  lua_Integer off = luaL_optinteger(L, 3, 0);
  bool ts = lua_toboolean(L, 4);
  lua_Integer interval = luaL_optinteger(L, 5, 100);
  luaL_argcheck(L, off >= 0, 3, "offset must be >= 0");
  luaL_argcheck(L, interval > 0, 5, "interval must be > 0");
  follow_ud_t *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->f = NULL;
  luaL_setmetatable(L, FOLLOW_MT);
  int rc = ml_proc_follow(&ml_runtime_get(L)->loop, id, path, (uint64_t)off, ts,
                          (uint64_t)interval, &ud->f);
  if (rc < 0) return fail(L, rc, path);
  return 1;
}

static int lfollow_close(lua_State *L) {
  follow_ud_t *ud = luaL_checkudata(L, 1, FOLLOW_MT);
  if (ud->f) {
    ml_proc_follow_close(ud->f);
    ud->f = NULL;
  }
  return 0;
}

static int lfollow_tostring(lua_State *L) {
  follow_ud_t *ud = luaL_checkudata(L, 1, FOLLOW_MT);
  if (ud->f)
    lua_pushfstring(L, "moonlet.LogFollower: %p", (void *)ud->f);
  else
    lua_pushliteral(L, "moonlet.LogFollower: (closed)");
  return 1;
}

/* }====== */

/* Lua: n | nil, err, name = core.reap_leftovers(state_dir) */
static int lproc_reap_leftovers(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  int n = ml_proc_reap_leftovers(dir);
  if (n < 0) return fail(L, n, dir);
  lua_pushinteger(L, n);
  return 1;
}

/* Lua: ok, reason = core.cgroups_available() */
static int lproc_cgroups_available(lua_State *L) {
  const char *reason;
  lua_pushboolean(L, ml_proc_cgroups_available(&reason));
  lua_pushstring(L, reason);
  return 2;
}

/* Lua: core.force_sigchld(bool): tests of the SIGCHLD fallback */
static int lproc_force_sigchld(lua_State *L) {
  ml_proc_force_sigchld(lua_toboolean(L, 1));
  return 0;
}

/* Lua: ok | nil, err, name = core.kill_pid(pid, sig): a signal from
 * outside, not through a handle, so nothing is disarmed (tests and
 * benchmarks of what an outside kill -9 does). */
static int lproc_kill_pid(lua_State *L) {
  lua_Integer pid = luaL_checkinteger(L, 1);
  luaL_argcheck(L, pid > 1 || pid < -1, 1, "not a process or group");
  if (kill((pid_t)pid, check_signal(L, 2)) < 0) return fail(L, -errno, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/* Lua: usages, boot_ns = core.group_usage(pgids [, opts]): one pass over
 * /proc for the metrics API. pgids: containers' process groups (a kept
 * container's too: its keeper reports the container's pid);
 * opts.cgroups[i]: the cgroup dir of pgids[i] (or false); opts.root: a
 * /proc-shaped dir (tests). usages[i] = {cpu_ns=, rss=, start_ns=,
 * procs=}; boot_ns: now on the clock of start_ns. */
static int lproc_group_usage(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  const char *root = "/proc";
  int cgroups = 0; /* stack index of opts.cgroups, or 0 */
  if (lua_istable(L, 2)) {
    if (lua_getfield(L, 2, "root") == LUA_TSTRING) root = lua_tostring(L, -1);
    /* stack: .. root; kept there so that the string stays alive */
    if (lua_getfield(L, 2, "cgroups") == LUA_TTABLE) cgroups = lua_gettop(L);
  }
  size_t n = lua_rawlen(L, 1);
  /* a userdata, so nothing leaks if a check below raises */
  ml_proc_usage_t *g =
      lua_newuserdatauv(L, (n + 1) * sizeof *g, 0); /* stack: .. ud */
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, 1, (lua_Integer)i + 1);
    lua_Integer pid = luaL_checkinteger(L, -1);
    luaL_argcheck(L, pid > 0 && pid <= 0x7fffffff, 1, "not a pid");
    lua_pop(L, 1);
    g[i] = (ml_proc_usage_t){.pgid = (int)pid};
    /* the dir strings stay referenced by opts.cgroups while C reads them */
    if (cgroups) {
      if (lua_rawgeti(L, cgroups, (lua_Integer)i + 1) == LUA_TSTRING)
        g[i].cgroup = lua_tostring(L, -1);
      lua_pop(L, 1);
    }
  }
  int rc = ml_proc_usage(root, g, n);
  if (rc < 0) return fail(L, rc, root);
  lua_createtable(L, (int)n, 0); /* stack: .. ud list */
  for (size_t i = 0; i < n; i++) {
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)g[i].cpu_ns);
    lua_setfield(L, -2, "cpu_ns");
    lua_pushinteger(L, (lua_Integer)g[i].rss_bytes);
    lua_setfield(L, -2, "rss");
    lua_pushinteger(L, (lua_Integer)g[i].start_ns);
    lua_setfield(L, -2, "start_ns");
    lua_pushinteger(L, g[i].nprocs);
    lua_setfield(L, -2, "procs");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_pushinteger(L, (lua_Integer)ml_proc_boot_ns());
  return 2;
}

/* Lua: core.signal(name_or_number) -> number */
static int lproc_signal(lua_State *L) {
  lua_pushinteger(L, check_signal(L, 1));
  return 1;
}

static const luaL_Reg proc_meth[] = {
    {"kill", lproc_kill},       {"stop", lproc_stop},
    {"running", lproc_running}, {"watch_mode", lproc_watch_mode},
    {"close", lproc_close},     {"arm_restart", lproc_arm_restart},
    {"disarm", lproc_disarm},   {NULL, NULL}};
static const luaL_Reg proc_metameth[] = {{"__gc", lproc_close},
                                         {"__close", lproc_close},
                                         {"__tostring", lproc_tostring},
                                         {NULL, NULL}};
static const luaL_Reg follow_meth[] = {{"close", lfollow_close}, {NULL, NULL}};
static const luaL_Reg follow_metameth[] = {{"__gc", lfollow_close},
                                           {"__close", lfollow_close},
                                           {"__tostring", lfollow_tostring},
                                           {NULL, NULL}};

static const luaL_Reg proc_funcs[] = {
    {"spawn", lproc_spawn},
    {"spawn_async", lproc_spawn_async},
    {"read_log", lproc_read_log},
    {"follow_log", lproc_follow_log},
    {"reap_leftovers", lproc_reap_leftovers},
    {"cgroups_available", lproc_cgroups_available},
    {"force_sigchld", lproc_force_sigchld},
    {"signal", lproc_signal},
    {"kill_pid", lproc_kill_pid},
    {"group_usage", lproc_group_usage},
    {NULL, NULL}};

int luaopen_moonlet_core_proc(lua_State *L) {
  luaL_newlib(L, proc_funcs); /* stack: M */
  luaL_newmetatable(L, PROC_MT);
  luaL_setfuncs(L, proc_metameth, 0);
  lua_newtable(L);
  luaL_setfuncs(L, proc_meth, 0); /* stack: M mt methods */
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "Proc"); /* M.Proc: the facade adds wait/on_exit */
  lua_pushcclosure(L, lproc_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, FOLLOW_MT);
  luaL_setfuncs(L, follow_metameth, 0);
  lua_newtable(L);
  luaL_setfuncs(L, follow_meth, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  ml_runtime_on_event(ML_EV_PROC_EXIT, push_event);
  return 1;
}
