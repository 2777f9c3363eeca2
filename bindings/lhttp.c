/* moonlet.core.http: the runtime's HTTP client (core/http_client.c) for Lua.
 * request(id, opts) and stream(id, opts) start transfers whose results are
 * delivered as events to `id`; the facade lua/moonlet/http.lua waits on them
 * with the scheduler. One client per runtime, created on first use and
 * closed by the finalizer of its registry anchor. */
#include <string.h>

#include "err.h"
#include "http_client.h"
#include "runtime.h"

#define CLIENT_KEY "moonlet.http.client"
#define CLIENT_MT "moonlet.HttpClient"
#define STREAM_MT "moonlet.HttpStream"

typedef struct {
  ml_http_client_t *c; /* NULL once closed */
} client_ud_t;

typedef struct {
  ml_http_req_t *req; /* NULL once closed */
  uint64_t id;
} stream_ud_t;

/* {====== the client */

static int client_gc(lua_State *L) {
  client_ud_t *ud = luaL_checkudata(L, 1, CLIENT_MT);
  if (ud->c) {
    ml_runtime_t *rt = ml_runtime_get(L);
    if (rt->http == ud->c) rt->http = NULL;
    ml_http_client_close(ud->c);
    ud->c = NULL;
  }
  return 0;
}

static ml_http_client_t *get_client(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, CLIENT_KEY) == LUA_TUSERDATA) {
    client_ud_t *ud = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!ud->c) luaL_error(L, "the http client is closed");
    return ud->c;
  }
  lua_pop(L, 1);
  ml_runtime_t *rt = ml_runtime_get(L);
  client_ud_t *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->c = NULL;
  luaL_setmetatable(L, CLIENT_MT);
  ud->c = ml_http_client_new(&rt->loop, 0);
  if (!ud->c) luaL_error(L, "cannot create the http client");
  rt->http = ud->c;
  lua_setfield(L, LUA_REGISTRYINDEX, CLIENT_KEY);
  return ud->c;
}

/* }====== */

/* {====== options */

static const char *opt_string(lua_State *L, int t, const char *key) {
  int ty = lua_getfield(L, t, key);
  if (ty != LUA_TNIL && ty != LUA_TSTRING)
    luaL_error(L, "http: option '%s' must be a string", key);
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1); /* the options table keeps the string alive */
  return s;
}

static uint64_t opt_ms(lua_State *L, int t, const char *key) {
  lua_getfield(L, t, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_isnumber(L, -1))
    luaL_error(L, "http: option '%s' must be a number", key);
  lua_Number n = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (n < 0) luaL_error(L, "http: option '%s' must be >= 0", key);
  /* A positive fraction of a millisecond still means "a limit". */
  return n > 0 && n < 1 ? 1 : (uint64_t)n;
}

static bool opt_bool(lua_State *L, int t, const char *key, bool dflt) {
  int ty = lua_getfield(L, t, key);
  bool b = ty == LUA_TNIL ? dflt : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return b;
}

static void check_header_text(lua_State *L, const char *s) {
  if (strpbrk(s, "\r\n")) luaL_error(L, "http: header contains a line break");
}

/* Appends one curl header line to the array at `lines`. */
static void add_header(lua_State *L, int lines, const char *name, int vidx) {
  check_header_text(L, name);
  if (!*name || strchr(name, ':'))
    luaL_error(L, "http: bad header name '%s'", name);
  if (lua_type(L, vidx) == LUA_TBOOLEAN && !lua_toboolean(L, vidx)) {
    lua_pushfstring(L, "%s:", name); /* removes a default header */
  } else {
    const char *v = lua_tostring(L, vidx);
    if (!v || lua_type(L, vidx) == LUA_TBOOLEAN)
      luaL_error(L, "http: header '%s' needs a string value", name);
    check_header_text(L, v);
    if (*v)
      lua_pushfstring(L, "%s: %s", name, v);
    else
      lua_pushfstring(L, "%s;", name); /* curl's way to send it empty */
  }
  lua_rawseti(L, lines, (lua_Integer)lua_rawlen(L, lines) + 1);
}

/* headers = { name = value | {values...} | false, {name, value}, ... }.
 * Leaves the line array on the stack; its strings back o->headers. */
static void parse_headers(lua_State *L, int t, ml_http_opts_t *o) {
  lua_newtable(L);
  int lines = lua_gettop(L);
  int ty = lua_getfield(L, t, "headers"); /* stack: lines headers */
  if (ty != LUA_TNIL && ty != LUA_TTABLE)
    luaL_error(L, "http: option 'headers' must be a table");
  int h = lua_gettop(L);
  if (ty == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, h)) { /* stack: lines headers k v */
      if (lua_type(L, -2) == LUA_TSTRING) {
        const char *name = lua_tostring(L, -2);
        if (lua_istable(L, -1)) {
          for (lua_Integer i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
            add_header(L, lines, name, lua_gettop(L));
            lua_pop(L, 1);
          }
          lua_pop(L, 1);
        } else {
          add_header(L, lines, name, lua_gettop(L));
        }
      } else if (lua_istable(L, -1)) { /* {name, value}: keeps order */
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2); /* stack: ... k pair name value */
        if (lua_type(L, -2) != LUA_TSTRING)
          luaL_error(L, "http: header pair needs a name");
        add_header(L, lines, lua_tostring(L, -2), lua_gettop(L));
        lua_pop(L, 2);
      } else {
        luaL_error(L, "http: bad entry in 'headers'");
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1); /* stack: lines */
  size_t n = lua_rawlen(L, lines);
  const char **arr = lua_newuserdatauv(L, (n ? n : 1) * sizeof *arr, 0);
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, lines, (lua_Integer)i + 1);
    arr[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  o->headers = arr;
  o->nheaders = n;
}

/* Fills `o` from the table at `t`; raises on misuse. Pushes anchors for
 * the strings `o` points to: keep the stack until the request started. */
static void parse_opts(lua_State *L, int t, ml_http_opts_t *o, bool stream) {
  luaL_checktype(L, t, LUA_TTABLE);
  memset(o, 0, sizeof *o);
  o->stream = stream;
  o->url = opt_string(L, t, "url");
  if (!o->url) luaL_argerror(L, t, "'url' is required");
  o->method = opt_string(L, t, "method");
  o->unix_socket = opt_string(L, t, "unix_socket");
  o->ca_file = opt_string(L, t, "ca_file");
  o->cert_file = opt_string(L, t, "cert_file");
  o->key_file = opt_string(L, t, "key_file");
  o->bearer_token = opt_string(L, t, "token");
  if (o->method) check_header_text(L, o->method);
  if (o->bearer_token) check_header_text(L, o->bearer_token);
  int ty = lua_getfield(L, t, "body");
  if (ty != LUA_TNIL && ty != LUA_TSTRING)
    luaL_error(L, "http: option 'body' must be a string");
  o->body = lua_tolstring(L, -1, &o->body_len);
  lua_pop(L, 1);
  o->timeout_ms = opt_ms(L, t, "timeout_ms");
  o->connect_timeout_ms = opt_ms(L, t, "connect_timeout_ms");
  o->max_body = (size_t)opt_ms(L, t, "max_body");
  o->insecure = opt_bool(L, t, "insecure", false);
  o->no_reuse = !opt_bool(L, t, "keepalive", true);
  ty = lua_getfield(L, t, "follow_redirects");
  if (ty == LUA_TSTRING && strcmp(lua_tostring(L, -1), "same_host") == 0)
    o->redirects = ML_HTTP_REDIRECT_SAME_HOST;
  else if (ty == LUA_TBOOLEAN || ty == LUA_TNIL)
    o->redirects =
        lua_toboolean(L, -1) ? ML_HTTP_REDIRECT_ALL : ML_HTTP_REDIRECT_NONE;
  else
    luaL_error(L,
               "http: 'follow_redirects' must be a boolean or \"same_host\"");
  lua_pop(L, 1);
  parse_headers(L, t, o);
}

/* }====== */

/* {====== events */

/* headers -> { name = value }; repeated names joined with ", ". */
static void push_headers(lua_State *L, const ml_http_event_t *e) {
  lua_createtable(L, 0, (int)e->nheaders);
  for (size_t i = 0; i < e->nheaders; i++) {
    const ml_http_header_t *h = &e->headers[i];
    if (lua_getfield(L, -1, h->name) == LUA_TSTRING) {
      lua_pushfstring(L, "%s, %s", lua_tostring(L, -1), h->value);
      lua_remove(L, -2);
    } else {
      lua_pop(L, 1);
      lua_pushstring(L, h->value);
    }
    lua_setfield(L, -2, h->name);
  }
}

/* END: {status=, headers=, body=} | "end" (stream) | nil, msg, name */
static int push_done(lua_State *L, ml_event_t *ev) {
  ml_http_event_t *e = (ml_http_event_t *)ev;
  if (e->err) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", ml_err_name(e->err),
                    e->errmsg ? e->errmsg : "");
    lua_pushstring(L, ml_err_name(e->err));
    return 3;
  }
  if (e->stream) {
    lua_pushliteral(L, "end");
    return 1;
  }
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, e->status);
  lua_setfield(L, -2, "status");
  push_headers(L, e);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, e->body ? e->body : "", e->body_len);
  lua_setfield(L, -2, "body");
  if (e->truncated) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "truncated");
  }
  lua_pushinteger(L, e->redirects);
  lua_setfield(L, -2, "redirects");
  return 1;
}

/* HEAD: "head", status, headers; DATA: "data", bytes */
static int push_chunk(lua_State *L, ml_event_t *ev) {
  ml_http_event_t *e = (ml_http_event_t *)ev;
  if (e->kind == ML_HTTP_HEAD) {
    lua_pushliteral(L, "head");
    lua_pushinteger(L, e->status);
    push_headers(L, e);
    return 3;
  }
  lua_pushliteral(L, "data");
  lua_pushlstring(L, e->body ? e->body : "", e->body_len);
  return 2;
}

/* }====== */

/* Lua: ok | nil, err, name = http.request(id, opts) -> event at id */
static int lhttp_request(lua_State *L) {
  lua_Integer id = luaL_checkinteger(L, 1);
  ml_http_opts_t o;
  parse_opts(L, 2, &o, false);
  int rc = ml_http_request(get_client(L), (uint64_t)id, &o, NULL);
  if (rc < 0) return ml_lua_fail(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* Lua: handle | nil, err, name = http.stream(id, opts); events at id */
static int lhttp_stream(lua_State *L) {
  lua_Integer id = luaL_checkinteger(L, 1);
  ml_http_opts_t o;
  parse_opts(L, 2, &o, true);
  ml_http_client_t *c = get_client(L);
  /* Closed state first, so nothing can leak if a later step raises. */
  stream_ud_t *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->req = NULL;
  ud->id = (uint64_t)id;
  luaL_setmetatable(L, STREAM_MT);
  int rc = ml_http_request(c, (uint64_t)id, &o, &ud->req);
  if (rc < 0) return ml_lua_fail(L, rc);
  return 1;
}

/* Lua: more = handle:close(); true when an END event is still to come */
static int lstream_close(lua_State *L) {
  stream_ud_t *ud = luaL_checkudata(L, 1, STREAM_MT);
  ml_http_req_t *req = ud->req;
  if (!req) {
    lua_pushboolean(L, 0);
    return 1;
  }
  ud->req = NULL;
  int st = ml_http_cancel(req);
  ml_http_req_release(req);
  lua_pushboolean(L, st != ML_HTTP_DELIVERED);
  return 1;
}

static int lstream_tostring(lua_State *L) {
  stream_ud_t *ud = luaL_checkudata(L, 1, STREAM_MT);
  if (ud->req)
    lua_pushfstring(L, "moonlet.HttpStream: %I", (lua_Integer)ud->id);
  else
    lua_pushliteral(L, "moonlet.HttpStream: (closed)");
  return 1;
}

/* Lua: http.configure{max_inflight = n} */
static int lhttp_configure(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "max_inflight");
  if (!lua_isnil(L, -1)) {
    lua_Integer n = luaL_checkinteger(L, -1);
    luaL_argcheck(L, n >= 0, 1, "max_inflight must be >= 0");
    ml_http_client_set_max_inflight(get_client(L), (size_t)n);
  }
  return 0;
}

/* Lua: http.stats() -> {active=, queued=, sockets=, requests=, connects=} */
static int lhttp_stats(lua_State *L) {
  ml_http_stats_t st;
  ml_http_client_stats(get_client(L), &st);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)st.active);
  lua_setfield(L, -2, "active");
  lua_pushinteger(L, (lua_Integer)st.queued);
  lua_setfield(L, -2, "queued");
  lua_pushinteger(L, (lua_Integer)st.sockets);
  lua_setfield(L, -2, "sockets");
  lua_pushinteger(L, (lua_Integer)st.requests);
  lua_setfield(L, -2, "requests");
  lua_pushinteger(L, (lua_Integer)st.connects);
  lua_setfield(L, -2, "connects");
  return 1;
}

static const luaL_Reg stream_meth[] = {{"close", lstream_close}, {NULL, NULL}};
static const luaL_Reg stream_metameth[] = {{"__gc", lstream_close},
                                           {"__close", lstream_close},
                                           {"__tostring", lstream_tostring},
                                           {"__index", NULL},
                                           {NULL, NULL}};
static const luaL_Reg client_metameth[] = {{"__gc", client_gc}, {NULL, NULL}};

static const luaL_Reg http_funcs[] = {{"request", lhttp_request},
                                      {"stream", lhttp_stream},
                                      {"configure", lhttp_configure},
                                      {"stats", lhttp_stats},
                                      {NULL, NULL}};

int luaopen_moonlet_core_http(lua_State *L) {
  luaL_newmetatable(L, STREAM_MT);
  luaL_setfuncs(L, stream_metameth, 0);
  luaL_newlib(L, stream_meth);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, CLIENT_MT);
  luaL_setfuncs(L, client_metameth, 0);
  lua_pop(L, 1);
  ml_runtime_on_event(ML_EV_HTTP_DONE, push_done);
  ml_runtime_on_event(ML_EV_HTTP_CHUNK, push_chunk);
  luaL_newlib(L, http_funcs);
  return 1;
}
