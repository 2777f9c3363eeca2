/* moonlet.core.sys: the few operating-system calls the Lua runtime needs
 * (directories, modes, atomic file writes, randomness, identity), done with
 * libuv's synchronous fs calls, and a mkdir on libuv's thread pool for the
 * server's hot path. Failures return nil, "ENAME: msg", "ENAME". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#include "err.h"
#include "runtime.h"

static uv_loop_t *uvloop(lua_State *L) { return &ml_runtime_get(L)->uv; }

/* Lua: ok | nil, err = sys.mkdir(path, mode) — existing directory is ok */
static int lsys_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int mode = (int)luaL_optinteger(L, 2, 0700);
  uv_fs_t req;
  int rc = uv_fs_mkdir(uvloop(L), &req, path, mode, NULL);
  uv_fs_req_cleanup(&req);
  if (rc < 0 && rc != UV_EEXIST) return ml_lua_fail_msg(L, rc, path);
  lua_pushboolean(L, 1);
  return 1;
}

/* A mkdir on libuv's pool: its result is delivered to Lua as event `id`
 * (true, or nil, "ENAME: path", "ENAME"). On a disk whose inode allocator
 * searches, one mkdir cost the loop thread up to a millisecond. */
typedef struct {
  uv_fs_t req;
  ml_loop_t *loop;
  uint64_t id;
} mkdir_req_t;

typedef struct {
  ml_event_t ev;
  int rc;
  char path[]; /* for the error message */
} fs_done_event_t;

static void on_mkdir(uv_fs_t *req) {
  mkdir_req_t *m = req->data;
  int rc = (int)req->result;
  size_t len = strlen(req->path) + 1;
  fs_done_event_t *ev = calloc(1, sizeof *ev + len);
  if (ev) {
    ev->ev.type = ML_EV_FS_DONE;
    ev->ev.id = m->id;
    ev->rc = rc == UV_EEXIST ? 0 : rc;
    memcpy(ev->path, req->path, len);
    ml_loop_post(m->loop, &ev->ev);
  }
  uv_fs_req_cleanup(req);
  free(m);
}

static int push_fs_done(lua_State *L, ml_event_t *e) {
  fs_done_event_t *ev = (fs_done_event_t *)e;
  if (ev->rc < 0) return ml_lua_fail_msg(L, ev->rc, ev->path);
  lua_pushboolean(L, 1);
  return 1;
}

/* Lua: sys.mkdir_async(id, path, mode) — starts the mkdir; its result comes
 * as event id (an existing directory is ok). Raises when it cannot start. */
static int lsys_mkdir_async(lua_State *L) {
  uint64_t id = (uint64_t)luaL_checkinteger(L, 1);
  const char *path = luaL_checkstring(L, 2);
  int mode = (int)luaL_optinteger(L, 3, 0700);
  ml_runtime_t *rt = ml_runtime_get(L);
  mkdir_req_t *m = calloc(1, sizeof *m);
  if (!m) return luaL_error(L, "out of memory");
  m->loop = &rt->loop;
  m->id = id;
  m->req.data = m;
  int rc = uv_fs_mkdir(&rt->uv, &m->req, path, mode, on_mkdir);
  if (rc < 0) {
    free(m);
    return luaL_error(L, "mkdir %s: %s", path, ml_strerror(rc));
  }
  return 0;
}

static int lsys_chmod(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int mode = (int)luaL_checkinteger(L, 2);
  uv_fs_t req;
  int rc = uv_fs_chmod(uvloop(L), &req, path, mode, NULL);
  uv_fs_req_cleanup(&req);
  if (rc < 0) return ml_lua_fail_msg(L, rc, path);
  lua_pushboolean(L, 1);
  return 1;
}

/* Lua: st | nil = sys.stat(path) -> {type="file"|"dir"|"other", mode=, size=} */
static int lsys_stat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  uv_fs_t req;
  int rc = uv_fs_stat(uvloop(L), &req, path, NULL);
  if (rc < 0) {
    uv_fs_req_cleanup(&req);
    return ml_lua_fail_msg(L, rc, path);
  }
  uint64_t mode = req.statbuf.st_mode;
  lua_createtable(L, 0, 4);
  lua_pushstring(L, (mode & S_IFMT) == S_IFDIR   ? "dir"
                    : (mode & S_IFMT) == S_IFREG ? "file"
                    : (mode & S_IFMT) == S_IFSOCK ? "socket"
                                                  : "other");
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)(mode & 07777));
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, (lua_Integer)req.statbuf.st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)req.statbuf.st_mtim.tv_sec);
  lua_setfield(L, -2, "mtime");
  uv_fs_req_cleanup(&req);
  return 1;
}

/* Lua: names | nil, err = sys.listdir(path) -> sorted file names */
static int lsys_listdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  uv_fs_t req;
  int rc = uv_fs_scandir(uvloop(L), &req, path, 0, NULL);
  if (rc < 0) {
    uv_fs_req_cleanup(&req);
    return ml_lua_fail_msg(L, rc, path);
  }
  lua_newtable(L);
  uv_dirent_t ent;
  int n = 0;
  while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
    lua_pushstring(L, ent.name);
    lua_rawseti(L, -2, ++n);
  }
  uv_fs_req_cleanup(&req);
  /* stack: names; sort with table.sort for a stable order */
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "sort");
  lua_pushvalue(L, -3);
  lua_call(L, 1, 0);
  lua_pop(L, 1);
  return 1;
}

/* Writes all of buf to fd; returns 0 or a negative uv error. */
static int write_all(uv_loop_t *loop, uv_file fd, const char *buf, size_t len) {
  while (len > 0) {
    uv_fs_t req;
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    int n = uv_fs_write(loop, &req, fd, &b, 1, -1, NULL);
    uv_fs_req_cleanup(&req);
    if (n < 0) return n;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Lua: ok | nil, err = sys.write_file(path, data, mode)
 * Atomic: written to path.tmp, fsynced, renamed over path. */
static int lsys_write_file(lua_State *L) {
  size_t len;
  const char *path = luaL_checkstring(L, 1);
  const char *data = luaL_checklstring(L, 2, &len);
  int mode = (int)luaL_optinteger(L, 3, 0600);
  const char *tmp = lua_pushfstring(L, "%s.tmp", path);
  uv_loop_t *loop = uvloop(L);
  uv_fs_t req;
  int fd = uv_fs_open(loop, &req, tmp, UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_TRUNC,
                      mode, NULL);
  uv_fs_req_cleanup(&req);
  if (fd < 0) return ml_lua_fail_msg(L, fd, tmp);
  int rc = write_all(loop, fd, data, len);
  if (rc == 0) {
    rc = uv_fs_fsync(loop, &req, fd, NULL);
    uv_fs_req_cleanup(&req);
  }
  uv_fs_close(loop, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
  if (rc == 0) {
    /* The mode asked for, whatever the umask made of it. */
    rc = uv_fs_chmod(loop, &req, tmp, mode, NULL);
    uv_fs_req_cleanup(&req);
  }
  if (rc == 0) {
    rc = uv_fs_rename(loop, &req, tmp, path, NULL);
    uv_fs_req_cleanup(&req);
  }
  if (rc < 0) {
    uv_fs_unlink(loop, &req, tmp, NULL);
    uv_fs_req_cleanup(&req);
    return ml_lua_fail_msg(L, rc, path);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int lsys_unlink(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  uv_fs_t req;
  int rc = uv_fs_unlink(uvloop(L), &req, path, NULL);
  uv_fs_req_cleanup(&req);
  if (rc < 0) return ml_lua_fail_msg(L, rc, path);
  lua_pushboolean(L, 1);
  return 1;
}

/* Lua: sys.random_hex(nbytes) -> lowercase hex of n random bytes */
static int lsys_random_hex(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n > 0 && n <= 256, 1, "1..256 bytes");
  unsigned char buf[256];
  size_t got = 0;
  while (got < (size_t)n) {
    ssize_t r = getrandom(buf + got, (size_t)n - got, 0);
    if (r < 0) return ml_lua_fail(L, ML_EIO);
    got += (size_t)r;
  }
  char hex[513];
  for (lua_Integer i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", buf[i]);
  lua_pushlstring(L, hex, (size_t)(2 * n));
  return 1;
}

static int lsys_getuid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getuid());
  return 1;
}

static int lsys_getpid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

static int lsys_hostname(lua_State *L) {
  char name[256];
  size_t len = sizeof name;
  int rc = uv_os_gethostname(name, &len);
  if (rc < 0) return ml_lua_fail(L, rc);
  lua_pushstring(L, name);
  return 1;
}

static int lsys_homedir(lua_State *L) {
  char buf[4096];
  size_t len = sizeof buf;
  int rc = uv_os_homedir(buf, &len);
  if (rc < 0) return ml_lua_fail(L, rc);
  lua_pushstring(L, buf);
  return 1;
}

/* Lua: sys.realpath(path) -> absolute path | nil, err */
static int lsys_realpath(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  uv_fs_t req;
  int rc = uv_fs_realpath(uvloop(L), &req, path, NULL);
  if (rc < 0) {
    uv_fs_req_cleanup(&req);
    return ml_lua_fail_msg(L, rc, path);
  }
  lua_pushstring(L, req.ptr);
  uv_fs_req_cleanup(&req);
  return 1;
}

/* Lua: sys.uname() -> {sysname=, release=, machine=} */
static int lsys_uname(lua_State *L) {
  uv_utsname_t u;
  int rc = uv_os_uname(&u);
  if (rc < 0) return ml_lua_fail(L, rc);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, u.sysname);
  lua_setfield(L, -2, "sysname");
  lua_pushstring(L, u.release);
  lua_setfield(L, -2, "release");
  lua_pushstring(L, u.machine);
  lua_setfield(L, -2, "machine");
  return 1;
}

/* Lua: sys.rss() -> resident set size in bytes (for benchmarks and status) */
static int lsys_rss(lua_State *L) {
  size_t rss = 0;
  int rc = uv_resident_set_memory(&rss);
  if (rc < 0) return ml_lua_fail(L, rc);
  lua_pushinteger(L, (lua_Integer)rss);
  return 1;
}

/* {====== lock_file: one process per data dir */

#define ML_LOCK_MT "moonlet.sys.lock"

typedef struct {
  int fd; /* -1 once released */
} file_lock_t;

static int lock_release(lua_State *L) {
  file_lock_t *k = luaL_checkudata(L, 1, ML_LOCK_MT);
  if (k->fd >= 0) {
    close(k->fd); /* drops the flock */
    k->fd = -1;
  }
  return 0;
}

/* The pid a holder wrote into its lock file, or 0. */
static long lock_holder(int fd) {
  char buf[32];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  return strtol(buf, NULL, 10);
}

/* Lua: lock | nil, "EAGAIN: path", "EAGAIN", holder_pid = sys.lock_file(path)
 * An exclusive flock on path (created 0600), held until lock:release(), the
 * handle's collection, or the process's end (kill -9 included: the kernel
 * drops it, so no stale lock survives a crash). Our pid goes into the file so
 * a refused caller can name the holder. O_CLOEXEC keeps it out of children:
 * a container outliving the server must not hold its data dir. */
static int lsys_lock_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  file_lock_t *k = lua_newuserdatauv(L, sizeof *k, 0);
  k->fd = -1;
  luaL_setmetatable(L, ML_LOCK_MT);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ml_lua_fail_msg(L, uv_translate_sys_error(errno), path);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = uv_translate_sys_error(errno);
    long holder = lock_holder(fd);
    close(fd);
    ml_lua_fail_msg(L, err, path);
    lua_pushinteger(L, (lua_Integer)holder);
    return 4;
  }
  k->fd = fd;
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  /* Only a hint for a refused caller's message: a failed write is no error. */
  if (ftruncate(fd, 0) == 0) {
    ssize_t w = pwrite(fd, pid, (size_t)n, 0);
    (void)w;
  }
  return 1;
}

static const luaL_Reg lock_meta[] = {
    {"__gc", lock_release}, {"__close", lock_release}, {NULL, NULL}};
static const luaL_Reg lock_methods[] = {{"release", lock_release}, {NULL, NULL}};

/* }====== */

static const luaL_Reg sys_funcs[] = {
    {"mkdir", lsys_mkdir},       {"mkdir_async", lsys_mkdir_async},
    {"chmod", lsys_chmod},
    {"stat", lsys_stat},         {"listdir", lsys_listdir},
    {"write_file", lsys_write_file}, {"unlink", lsys_unlink},
    {"random_hex", lsys_random_hex}, {"getuid", lsys_getuid},
    {"getpid", lsys_getpid},     {"hostname", lsys_hostname},
    {"homedir", lsys_homedir},   {"realpath", lsys_realpath},
    {"uname", lsys_uname},       {"rss", lsys_rss},
    {"lock_file", lsys_lock_file},
    {NULL, NULL}};

int luaopen_moonlet_core_sys(lua_State *L) {
  ml_runtime_on_event(ML_EV_FS_DONE, push_fs_done);
  luaL_newmetatable(L, ML_LOCK_MT);
  luaL_setfuncs(L, lock_meta, 0);
  luaL_newlib(L, lock_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, sys_funcs);
  return 1;
}
