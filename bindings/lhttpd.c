/* moonlet.core.httpd: the HTTP server (core/http_server.c) for Lua. One
 * server per runtime, created on the first listen(); listeners deliver
 * ("request", table) and ("closed", id) to their event id, and Lua answers
 * by request id. TLS listeners and the serving certificate come from
 * core/tls.c. A store watch can be piped into a stream (stream_watch), so
 * watch events reach their streams with no Lua per event. The Lua facade
 * is lua/moonlet/httpd.lua. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "http_server.h"
#include "lstore.h"
#include "runtime.h"

#define LISTENER_MT "moonlet.HttpListener"
#define PIPE_MT "moonlet.HttpWatchPipe"
#define SERVER_KEY "moonlet.httpd"
#define MAX_FIELDS 64

typedef struct {
  ml_httpd_listener_t *l; /* NULL once closed */
  int self_ref;           /* anchors the userdata while listening */
  int port;
  char url[160];
} listener_ud_t;

/* Options for the server, taken when it is created. */
static ml_httpd_opts_t pending_opts;

/* {====== the per-runtime server */

/* Finalizer of the registry sentinel: runs when the state closes, after
 * the listeners' finalizers and before the runtime's own. */
static int server_gc(lua_State *L) {
  ml_runtime_t *rt = ml_runtime_get(L);
  if (rt->httpd) {
    ml_httpd_free(rt->httpd);
    rt->httpd = NULL;
  }
  return 0;
}

static ml_httpd_t *get_server(lua_State *L, int *err) {
  ml_runtime_t *rt = ml_runtime_get(L);
  *err = 0;
  if (rt->httpd) return rt->httpd;
  ml_httpd_t *srv;
  *err = ml_httpd_new(&rt->loop, &pending_opts, &srv);
  if (*err < 0) return NULL;
  ml_httpd_set_durable(srv, &rt->durable);
  rt->httpd = srv;
  lua_newuserdatauv(L, 1, 0); /* stack: sentinel */
  lua_newtable(L);
  lua_pushcfunction(L, server_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, SERVER_KEY);
  return srv;
}

/* Raises when no server runs: answering needs a request that came in. */
static ml_httpd_t *check_server(lua_State *L) {
  ml_httpd_t *srv = ml_runtime_get(L)->httpd;
  if (!srv) luaL_error(L, "moonlet.httpd: no server is running");
  return srv;
}

/* }====== */

/* {====== events */

/* Pushes the request as a table; repeated fields are joined with ", ". */
static int push_request(lua_State *L, ml_event_t *ev) {
  ml_httpd_request_t *r = (ml_httpd_request_t *)ev;
  lua_pushliteral(L, "request");
  lua_createtable(L, 0, 12);
  lua_pushinteger(L, (lua_Integer)r->req_id);
  lua_setfield(L, -2, "id");
  lua_pushstring(L, r->method);
  lua_setfield(L, -2, "method");
  /* Most requests have no query and no escapes: url, raw_path and path
   * are then one string, made once. */
  lua_pushlstring(L, r->path, r->path_len);
  if (r->url_len == r->path_len && memcmp(r->url, r->path, r->path_len) == 0)
    lua_pushvalue(L, -1);
  else
    lua_pushlstring(L, r->url, r->url_len);
  lua_setfield(L, -3, "url");
  if (memchr(r->path, '%', r->path_len)) {
    lua_setfield(L, -2, "raw_path");
    /* Decoded like Go's URL.Path, which the Kubernetes router matches on. */
    luaL_Buffer b;
    char *d = luaL_buffinitsize(L, &b, r->path_len);
    luaL_pushresultsize(&b, ml_http_unescape(r->path, r->path_len, d, false));
  } else {
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "raw_path");
  }
  lua_setfield(L, -2, "path");
  lua_pushlstring(L, r->query, r->query_len);
  lua_setfield(L, -2, "query");
  lua_pushlstring(L, r->body, r->body_len);
  lua_setfield(L, -2, "body");
  lua_pushstring(L, r->transport);
  lua_setfield(L, -2, "transport");
  lua_pushboolean(L, r->tls);
  lua_setfield(L, -2, "tls");
  if (r->http_major == 1 && r->http_minor == 1)
    lua_pushliteral(L, "1.1");
  else
    lua_pushfstring(L, "%d.%d", r->http_major, r->http_minor);
  lua_setfield(L, -2, "http_version");
  lua_pushboolean(L, r->keep_alive);
  lua_setfield(L, -2, "keep_alive");
  lua_createtable(L, 0, (int)r->nfields); /* stack: "request" req headers */
  for (size_t i = 0; i < r->nfields; i++) {
    const ml_http_field_t *f = &r->fields[i];
    lua_pushlstring(L, f->name, f->name_len);
    lua_pushvalue(L, -1); /* the name once more, for the lookup */
    if (lua_rawget(L, -3) == LUA_TSTRING) { /* stack: ... headers name old */
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, f->value, f->value_len);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, f->value, f->value_len);
    }
    lua_rawset(L, -3); /* stack: ... headers */
  }
  lua_setfield(L, -2, "headers");
  return 2;
}

static int push_closed(lua_State *L, ml_event_t *ev) {
  lua_pushliteral(L, "closed");
  lua_pushinteger(L, (lua_Integer)((ml_httpd_closed_t *)ev)->req_id);
  return 2;
}

/* }====== */

/* {====== answering */

/* Collects the header table at `idx` into `out` (pointers into Lua
 * strings that stay referenced from the table or from `keep`). A value
 * may be a string, a number or a list of strings (repeated field).
 * Raises on bad use, before anything is allocated. */
static size_t check_fields(lua_State *L, int idx, ml_http_field_t *out) {
  size_t n = 0;
  if (lua_isnoneornil(L, idx)) return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  /* `keep` holds the text of converted numbers; strings stay referenced
   * from the headers table. Made on the first number only: answers with
   * string headers alone (nearly all) make no table. */
  lua_pushnil(L); /* stack: keep */
  int keep = lua_gettop(L), kept = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* stack: keep key value */
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "header names must be strings");
    int nvals = lua_type(L, -1) == LUA_TTABLE ? (int)luaL_len(L, -1) : 1;
    for (int v = 1; v <= nvals; v++) {
      if (lua_type(L, -1) == LUA_TTABLE) lua_rawgeti(L, -1, v);
      else lua_pushvalue(L, -1); /* stack: keep key value item */
      int t = lua_type(L, -1);
      if (t != LUA_TSTRING && t != LUA_TNUMBER)
        luaL_error(L, "header '%s' must be a string, number or list",
                   lua_tostring(L, -3));
      if (n == MAX_FIELDS) luaL_error(L, "too many header fields");
      size_t vlen;
      if (t == LUA_TNUMBER) {
        if (kept == 0) {
          lua_newtable(L);
          lua_replace(L, keep);
        }
        luaL_tolstring(L, -1, &vlen);
        lua_replace(L, -2); /* stack: keep key value text */
        lua_pushvalue(L, -1);
        lua_rawseti(L, keep, ++kept);
      }
      out[n].name = lua_tolstring(L, -3, &out[n].name_len);
      out[n].value = lua_tolstring(L, -1, &vlen);
      out[n].value_len = vlen;
      n++;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return n; /* `keep` stays on the stack until the C function returns */
}

static int result(lua_State *L, long rc) {
  if (rc < 0) return ml_lua_fail(L, (int)rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int check_status(lua_State *L, int idx) {
  lua_Integer status = luaL_checkinteger(L, idx);
  luaL_argcheck(L, status >= 100 && status <= 999, idx, "bad HTTP status");
  return (int)status;
}

/* Lua: ok, err, name = httpd.respond(id, status, headers, body) */
static int lhttpd_respond(lua_State *L) {
  uint64_t id = (uint64_t)luaL_checkinteger(L, 1);
  int status = check_status(L, 2);
  size_t blen;
  const char *body = luaL_optlstring(L, 4, "", &blen);
  ml_http_field_t fields[MAX_FIELDS];
  size_t n = check_fields(L, 3, fields);
  return result(L, ml_httpd_respond(check_server(L), id, status, fields, n,
                                    body, blen));
}

/* Lua: ok, err, name = httpd.stream_begin(id, status, headers) */
static int lhttpd_stream_begin(lua_State *L) {
  uint64_t id = (uint64_t)luaL_checkinteger(L, 1);
  int status = check_status(L, 2);
  ml_http_field_t fields[MAX_FIELDS];
  size_t n = check_fields(L, 3, fields);
  return result(L, ml_httpd_stream_begin(check_server(L), id, status, fields, n));
}

/* Lua: pending, err, name = httpd.stream_write(id, data): bytes not yet
 * written to the peer, so a producer can slow down. */
static int lhttpd_stream_write(lua_State *L) {
  uint64_t id = (uint64_t)luaL_checkinteger(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  long rc = ml_httpd_stream_write(check_server(L), id, data, len);
  if (rc < 0) return ml_lua_fail(L, (int)rc);
  lua_pushinteger(L, rc);
  return 1;
}

/* Lua: ok, err, name = httpd.stream_end(id) */
static int lhttpd_stream_end(lua_State *L) {
  uint64_t id = (uint64_t)luaL_checkinteger(L, 1);
  return result(L, ml_httpd_stream_end(check_server(L), id));
}

/* }====== */

/* {====== listeners */

static listener_ud_t *check_listener(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, LISTENER_MT);
}

/* nil, "EIO: message", "EIO" with a message from core/tls.c (freed). */
static int tls_fail(lua_State *L, int rc, char *msg) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", ml_err_name(rc), msg ? msg : ml_strerror(rc));
  lua_pushstring(L, ml_err_name(rc));
  free(msg);
  return 3;
}

/* Lua: listener, err, name = httpd.listen(url, event_id [, mode [, tls]])
 * tls: {cert_file=, key_file=} makes a TLS listener (url tcp:// or
 * https://). */
static int lhttpd_listen(lua_State *L) {
  const char *url = luaL_checkstring(L, 1);
  uint64_t ev_id = (uint64_t)luaL_checkinteger(L, 2);
  lua_Integer mode = luaL_optinteger(L, 3, 0600);
  luaL_argcheck(L, mode >= 0 && mode <= 0777, 3, "bad mode");
  const char *cert = NULL, *key = NULL;
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    lua_getfield(L, 4, "cert_file"); /* stays on the stack: keeps the text */
    lua_getfield(L, 4, "key_file");
    cert = lua_tostring(L, -2);
    key = lua_tostring(L, -1);
    luaL_argcheck(L, cert && key, 4, "tls needs cert_file and key_file");
  }
  listener_ud_t *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  memset(ud, 0, sizeof *ud);
  ud->self_ref = LUA_NOREF;
  luaL_setmetatable(L, LISTENER_MT);
  int rc;
  ml_httpd_t *srv = get_server(L, &rc);
  if (!srv) return ml_lua_fail(L, rc);
  ml_httpd_listener_t *l;
  if (cert) {
    ml_tls_ctx_t *ctx;
    char *msg;
    rc = ml_tls_ctx_new(cert, key, &ctx, &msg);
    if (rc < 0) return tls_fail(L, rc, msg);
    rc = ml_httpd_listen_tls(srv, url, ctx, ev_id, &l);
    ml_tls_ctx_unref(ctx); /* the listener holds its own reference */
  } else {
    rc = ml_httpd_listen(srv, url, (int)mode, ev_id, &l);
  }
  if (rc < 0) return ml_lua_fail(L, rc);
  ud->l = l;
  ud->port = ml_httpd_listener_port(l);
  snprintf(ud->url, sizeof ud->url, "%s", ml_httpd_listener_url(l));
  lua_pushvalue(L, -1);
  ud->self_ref = ml_ref(L);
  return 1;
}

static int llistener_port(lua_State *L) {
  lua_pushinteger(L, check_listener(L, 1)->port);
  return 1;
}

static int llistener_url(lua_State *L) {
  lua_pushstring(L, check_listener(L, 1)->url);
  return 1;
}

/* Graceful and idempotent; shared by close(), __close and __gc. */
static int llistener_close(lua_State *L) {
  listener_ud_t *ud = check_listener(L, 1);
  if (!ud->l) return 0;
  ml_httpd_listener_t *l = ud->l;
  ud->l = NULL;
  if (ud->self_ref != LUA_NOREF) {
    ml_unref(L, ud->self_ref);
    ud->self_ref = LUA_NOREF;
  }
  /* At state close the server may already be gone with its listeners. */
  if (ml_runtime_get(L)->httpd) ml_httpd_listener_close(l);
  return 0;
}

static int llistener_tostring(lua_State *L) {
  listener_ud_t *ud = check_listener(L, 1);
  lua_pushfstring(L, "moonlet.HttpListener: %s%s", ud->url,
                  ud->l ? "" : " (closed)");
  return 1;
}

/* }====== */

/* {====== module functions */

/* Lua: httpd.configure{max_header_bytes=, max_body_bytes=, idle_timeout_ms=,
 * shutdown_grace_ms=} before the first listen(). */
static int lhttpd_configure(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (ml_runtime_get(L)->httpd)
    return luaL_error(L, "moonlet.httpd: configure() before the first listen()");
  static const char *const keys[] = {"max_header_bytes", "max_body_bytes",
                                     "idle_timeout_ms", "shutdown_grace_ms"};
  lua_Integer v[4];
  for (int i = 0; i < 4; i++) {
    lua_getfield(L, 1, keys[i]);
    v[i] = luaL_optinteger(L, -1, 0);
    luaL_argcheck(L, v[i] >= 0, 1, keys[i]);
    lua_pop(L, 1);
  }
  pending_opts = (ml_httpd_opts_t){(size_t)v[0], (size_t)v[1], (uint64_t)v[2],
                                   (uint64_t)v[3]};
  return 0;
}

static int lhttpd_stats(lua_State *L) {
  ml_httpd_t *srv = ml_runtime_get(L)->httpd;
  ml_httpd_stats_t st = {0};
  if (srv) st = ml_httpd_stats(srv);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)st.listeners);
  lua_setfield(L, -2, "listeners");
  lua_pushinteger(L, (lua_Integer)st.connections);
  lua_setfield(L, -2, "connections");
  lua_pushinteger(L, (lua_Integer)st.requests);
  lua_setfield(L, -2, "requests");
  lua_pushinteger(L, (lua_Integer)st.streams);
  lua_setfield(L, -2, "streams");
  lua_pushinteger(L, (lua_Integer)st.served);
  lua_setfield(L, -2, "served");
  return 1;
}

/* Copies the strings of the list at `idx` into `out` (NULL-terminated);
 * the pointers stay valid while the table is on the stack. */
static void check_names(lua_State *L, int idx, const char **out, int max) {
  int n = 0;
  if (!lua_isnoneornil(L, idx)) {
    luaL_checktype(L, idx, LUA_TTABLE);
    n = (int)luaL_len(L, idx);
    luaL_argcheck(L, n < max, idx, "too many names");
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      out[i - 1] = lua_tostring(L, -1);
      luaL_argcheck(L, out[i - 1] != NULL, idx, "names must be strings");
      lua_pop(L, 1); /* the table keeps the string alive */
    }
  }
  out[n] = NULL;
}

/* Lua: created, err, name = httpd.tls_ensure_cert(dir [, hostnames [, ips]])
 * created: true when a new certificate was written, false when the one in
 * dir was kept. */
static int lhttpd_tls_ensure_cert(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  const char *hosts[33], *ips[33];
  check_names(L, 2, hosts, 33);
  check_names(L, 3, ips, 33);
  char *msg;
  int rc = ml_tls_ensure_cert(dir, hosts, ips, &msg);
  if (rc < 0) return tls_fail(L, rc, msg);
  lua_pushboolean(L, rc == 1);
  return 1;
}

/* Lua: httpd.unescape(str [, plus_as_space]) -> decoded */
static int lhttpd_unescape(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int plus = lua_toboolean(L, 2);
  luaL_Buffer b;
  char *d = luaL_buffinitsize(L, &b, len);
  luaL_pushresultsize(&b, ml_http_unescape(s, len, d, plus));
  return 1;
}

/* {====== store watches piped into streams */

/* A watch whose events the store hands straight to a chunked response:
 * each event is written as {"type":T,"object":TEXT}\n around the store's
 * own text, shared by every watcher of the event, with no Lua per event or
 * per watcher. The chunk waits in the connection's buffer for the flush
 * hook, which runs after the store committed the turn, and for the commit's
 * sync (core/durable.h), as every response does. Lua hears only the end:
 * ("closed", req_id) on the pipe's id when the store closed or the stream
 * went away. */
typedef struct {
  ml_runtime_t *rt;
  ml_store_watch_t *w; /* NULL once closed (by us, the store or the peer) */
  uint64_t req_id, id;
} pipe_rec_t;

typedef struct {
  pipe_rec_t *rec; /* NULL once closed */
} pipe_ud_t;

static void pipe_post_end(pipe_rec_t *p) {
  /* A store finalized after the runtime (lua_close) has no loop left. */
  if (!p->rt->L) return;
  ml_httpd_closed_t *ev = calloc(1, sizeof *ev);
  if (!ev) return;
  ev->ev.type = ML_EV_HTTPD_CLOSED;
  ev->ev.id = p->id;
  ev->req_id = p->req_id;
  ml_loop_post(&p->rt->loop, &ev->ev);
}

static void on_pipe_event(void *ud, int type, ml_store_text_t *text) {
  pipe_rec_t *p = ud;
  if (type == ML_STORE_CLOSED) {
    p->w = NULL; /* the store freed it */
    pipe_post_end(p);
    return;
  }
  ml_httpd_t *srv = p->rt->httpd;
  if (!srv || !p->w) return;
  static const char tail[] = "}\n";
  char head[40];
  int n = snprintf(head, sizeof head, "{\"type\":\"%s\",\"object\":",
                   ml_store_event_name(type));
  uv_buf_t b[3] = {uv_buf_init(head, (unsigned)n),
                   uv_buf_init(text->data, (unsigned)text->len),
                   uv_buf_init((char *)tail, 2)};
  if (ml_httpd_stream_writev(srv, p->req_id, b, 3) < 0) {
    /* The stream is gone (its peer, or too far behind): stop watching. */
    ml_store_watch_close(p->w);
    p->w = NULL;
    pipe_post_end(p);
  }
}

static pipe_ud_t *check_pipe(lua_State *L) {
  return luaL_checkudata(L, 1, PIPE_MT);
}

/* Lua: pipe | nil, err, name = httpd.stream_watch(req_id, store, id,
 *      resource, {namespace=, label_selector=, field_selector=,
 *      resource_version=})
 * The request must be streaming already. Errors are the store's (EGONE
 * for a resourceVersion older than the window, ...). */
static int lhttpd_stream_watch(lua_State *L) {
  uint64_t req_id = (uint64_t)luaL_checkinteger(L, 1);
  ml_store_t *s = ml_lua_check_store(L, 2);
  uint64_t id = (uint64_t)luaL_checkinteger(L, 3);
  const char *res = luaL_checkstring(L, 4);
  if (!lua_isnoneornil(L, 5)) luaL_checktype(L, 5, LUA_TTABLE);
  ml_store_watch_opts_t o;
  ml_lua_watch_opts(L, 5, &o);
  check_server(L);
  pipe_ud_t *ud = lua_newuserdatauv(L, sizeof *ud, 1);
  ud->rec = NULL;
  luaL_setmetatable(L, PIPE_MT);
  /* The pipe keeps its store reachable. */
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  pipe_rec_t *p = calloc(1, sizeof *p);
  if (!p) return ml_lua_fail(L, ML_ENOMEM);
  *p = (pipe_rec_t){.rt = ml_runtime_get(L), .req_id = req_id, .id = id};
  ud->rec = p;
  int rc = ml_store_watch(s, res, &o, on_pipe_event, p, &p->w);
  if (rc < 0) {
    ud->rec = NULL;
    free(p);
    return ml_lua_fail_msg(L, rc, ml_store_last_error(s));
  }
  return 1;
}

/* Lua: pipe:close() stops the watch (idempotent); events for its id still
 * queued are dropped. */
static int lpipe_close(lua_State *L) {
  pipe_ud_t *ud = check_pipe(L);
  pipe_rec_t *p = ud->rec;
  if (!p) return 0;
  ud->rec = NULL;
  if (p->w) ml_store_watch_close(p->w);
  if (p->rt->L) ml_loop_cancel(&p->rt->loop, p->id);
  free(p);
  return 0;
}

static int lpipe_tostring(lua_State *L) {
  pipe_ud_t *ud = check_pipe(L);
  lua_pushfstring(L, PIPE_MT ": %p%s", (void *)ud,
                  ud->rec && ud->rec->w ? "" : " (closed)");
  return 1;
}

/* }====== */

static const luaL_Reg listener_meth[] = {
    {"port", llistener_port}, {"url", llistener_url}, {"close", llistener_close},
    {NULL, NULL}};
static const luaL_Reg listener_metameth[] = {
    {"__gc", llistener_close}, {"__close", llistener_close},
    {"__tostring", llistener_tostring}, {"__index", NULL}, {NULL, NULL}};

static const luaL_Reg pipe_meth[] = {{"close", lpipe_close}, {NULL, NULL}};
static const luaL_Reg pipe_metameth[] = {{"__gc", lpipe_close},
                                         {"__close", lpipe_close},
                                         {"__tostring", lpipe_tostring},
                                         {"__index", NULL},
                                         {NULL, NULL}};

static const luaL_Reg httpd_funcs[] = {
    {"listen", lhttpd_listen},
    {"respond", lhttpd_respond},
    {"stream_begin", lhttpd_stream_begin},
    {"stream_write", lhttpd_stream_write},
    {"stream_end", lhttpd_stream_end},
    {"stream_watch", lhttpd_stream_watch},
    {"configure", lhttpd_configure},
    {"stats", lhttpd_stats},
    {"unescape", lhttpd_unescape},
    {"tls_ensure_cert", lhttpd_tls_ensure_cert},
    {NULL, NULL}};

int luaopen_moonlet_core_httpd(lua_State *L) {
  luaL_newmetatable(L, LISTENER_MT);
  luaL_setfuncs(L, listener_metameth, 0);
  luaL_newlib(L, listener_meth);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, PIPE_MT);
  luaL_setfuncs(L, pipe_metameth, 0);
  luaL_newlib(L, pipe_meth);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  ml_runtime_on_event(ML_EV_HTTPD_REQUEST, push_request);
  ml_runtime_on_event(ML_EV_HTTPD_CLOSED, push_closed);
  luaL_newlib(L, httpd_funcs);
  return 1;
}

/* }====== */
