/* moonlet.core.store: the object store (core/store.h) for Lua. A Store
 * userdata wraps one ml_store_t; every store opened on a runtime is
 * committed by one end-of-turn hook per runtime. Watchers post
 * ML_EV_STORE_WATCH events (type, object JSON text) to a Lua-chosen id;
 * the facade lua/moonlet/store.lua turns them into streams. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "lconv.h"
#include "log.h"
#include "lstore.h"
#include "runtime.h"
#include "store.h"

#define STORE_MT "moonlet.Store"
#define WATCH_MT "moonlet.StoreWatch"
#define HOOKS_KEY "moonlet.store.hooks"

/* {====== records */

typedef struct store_rec_s store_rec_t;
struct store_rec_s {
  ml_store_t *s;
  ml_runtime_t *rt;
  ml_durable_source_t src; /* the runtime's gate syncs its commits */
  store_rec_t *next; /* in the runtime's commit list */
};

typedef struct {
  store_rec_t *rec; /* NULL once closed */
} store_ud_t;

/* Per runtime: the stores the end-of-turn hook commits. A userdata anchored
 * in the registry, so it outlives every Store finalizer. */
typedef struct {
  store_rec_t *head;
} hooks_t;

/* A watcher's record is shared by its userdata and the events in flight,
 * so it is freed by whichever lets go last. */
typedef struct {
  ml_store_watch_t *w; /* NULL once closed (by us or by the store) */
  ml_runtime_t *rt;
  ml_loop_t *loop;
  uint64_t id;
  int refs;     /* the userdata + events not yet delivered */
  int inflight; /* events posted and not yet delivered */
} watch_rec_t;

typedef struct {
  watch_rec_t *rec; /* NULL once closed */
} watch_ud_t;

typedef struct {
  ml_event_t ev;
  int type;
  ml_store_text_t *text; /* NULL for ML_STORE_CLOSED */
  watch_rec_t *rec;
} watch_event_t;

static void watch_rec_unref(watch_rec_t *rec) {
  if (--rec->refs == 0) free(rec);
}

/* }====== */

/* {====== commit hook */

/* A commit that needs a sync goes to the gate, which runs it off the loop
 * thread; the HTTP flush hook, next, holds the turn's answers until then. */
static void commit_one(store_rec_t *r) {
  if (ml_store_commit(r->s) == 0 && ml_store_take_unsynced(r->s))
    ml_durable_committed(&r->rt->durable, &r->src);
}

static void commit_all(ml_loop_t *loop, void *ud) {
  (void)loop;
  for (store_rec_t *r = ((hooks_t *)ud)->head; r; r = r->next) commit_one(r);
}

static int sync_src(void *ud) { return ml_store_sync(ud); }

static void sync_failed(void *ud, int err) { ml_store_sync_failed(ud, err); }

static hooks_t *get_hooks(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, HOOKS_KEY) == LUA_TUSERDATA) {
    hooks_t *h = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return h;
  }
  lua_pop(L, 1);
  hooks_t *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->head = NULL;
  lua_setfield(L, LUA_REGISTRYINDEX, HOOKS_KEY);
  /* Registered once per runtime, at the first open: before the HTTP server
   * starts listening, so commits precede response flushes. */
  if (ml_loop_add_hook(&ml_runtime_get(L)->loop, commit_all, h) < 0)
    ML_ERROR("store: no room for the commit hook; writes commit on close");
  return h;
}

/* }====== */

/* {====== argument helpers */

static store_rec_t *check_store(lua_State *L) {
  store_ud_t *ud = luaL_checkudata(L, 1, STORE_MT);
  if (!ud->rec) luaL_error(L, "attempt to use a closed %s", STORE_MT);
  return ud->rec;
}

ml_store_t *ml_lua_check_store(lua_State *L, int idx) {
  store_ud_t *ud = luaL_checkudata(L, idx, STORE_MT);
  if (!ud->rec) luaL_error(L, "attempt to use a closed %s", STORE_MT);
  return ud->rec->s;
}

/* A string option. The value stays on the stack (a number is converted
 * there), so the pointer lives until the Lua function returns. */
static const char *opt_field_string(lua_State *L, int t, const char *k) {
  if (lua_type(L, t) != LUA_TTABLE) return NULL;
  int type = lua_getfield(L, t, k);
  if (type == LUA_TSTRING || type == LUA_TNUMBER) return lua_tostring(L, -1);
  if (type != LUA_TNIL) luaL_error(L, "option '%s' must be a string", k);
  lua_pop(L, 1);
  return NULL;
}

static bool opt_field_bool(lua_State *L, int t, const char *k) {
  if (lua_type(L, t) != LUA_TTABLE) return false;
  lua_getfield(L, t, k);
  bool v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

void ml_lua_watch_opts(lua_State *L, int t, ml_store_watch_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->ns = opt_field_string(L, t, "namespace");
  o->label_selector = opt_field_string(L, t, "label_selector");
  o->field_selector = opt_field_string(L, t, "field_selector");
  o->resource_version = opt_field_string(L, t, "resource_version");
  o->owner_events = opt_field_bool(L, t, "owner_events");
}

static lua_Integer opt_field_int(lua_State *L, int t, const char *k,
                                 lua_Integer def) {
  if (lua_type(L, t) != LUA_TTABLE) return def;
  lua_getfield(L, t, k);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    int isnum;
    v = lua_tointegerx(L, -1, &isnum);
    if (!isnum) luaL_error(L, "option '%s' must be an integer", k);
  }
  lua_pop(L, 1);
  return v;
}

static void check_opts(lua_State *L, int idx) {
  luaL_argexpected(L, lua_isnoneornil(L, idx) || lua_istable(L, idx), idx,
                   "table or nil");
}

/* The object argument: a table or JSON text. Never raises.
 * @return a new reference, or NULL with a message in err. */
static json_t *arg_object(lua_State *L, int idx, char *err, size_t errlen) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t len;
    const char *text = lua_tolstring(L, idx, &len);
    json_error_t je;
    json_t *j = json_loadb(text, len, 0, &je);
    if (!j) snprintf(err, errlen, "invalid JSON: %s", je.text);
    return j;
  }
  return ml_lua_to_json(L, idx, err, errlen);
}

static int push_text(lua_State *L) {
  ml_store_text_t *t = lua_touserdata(L, 1);
  lua_pushlstring(L, t->data, t->len);
  return 1;
}

static int push_text_value(lua_State *L);

/* Pushes a write's result (obj [, removed]) and releases it. With `opts`
 * {json=true} the object comes as its JSON text (no table to build when
 * the caller only forwards it). */
static int push_result(lua_State *L, ml_store_result_t *r, int opts,
                       bool with_removed) {
  bool removed = r->removed;
  bool as_json = opt_field_bool(L, opts, "json");
  json_t *obj = r->obj;
  ml_store_text_t *text = r->text;
  r->obj = NULL;
  r->text = NULL;
  if (as_json) {
    json_decref(obj);
    /* Copied in a protected call so the text is released on errors. */
    lua_pushcfunction(L, push_text);
    lua_pushlightuserdata(L, text);
    int status = lua_pcall(L, 1, 1, 0);
    ml_store_text_unref(text);
    if (status != LUA_OK) return lua_error(L);
  } else if (!obj) {
    /* A text path's result: the table straight from the text. */
    lua_pushcfunction(L, push_text_value);
    lua_pushlightuserdata(L, text);
    int top = lua_gettop(L) - 2;
    int status = lua_pcall(L, 1, LUA_MULTRET, 0);
    if (status == LUA_OK && lua_gettop(L) == top) {
      /* Declined by the direct reader: jansson's. */
      obj = json_loadb(text->data, text->len, JSON_ALLOW_NUL, NULL);
    }
    ml_store_text_unref(text);
    if (status != LUA_OK) return lua_error(L);
    if (obj)
      ml_lua_push_json_steal(L, obj);
    else if (lua_gettop(L) == top)
      lua_pushnil(L);
  } else {
    ml_store_text_unref(text);
    ml_lua_push_json_steal(L, obj);
  }
  if (!with_removed) return 1;
  lua_pushboolean(L, removed);
  return 2;
}

static int fail_store(lua_State *L, store_rec_t *rec, int rc) {
  return ml_lua_fail_msg(L, rc, ml_store_last_error(rec->s));
}

/* }====== */

/* {====== Store methods */

/* Lua: s = store.open{backend=, path=, sync=, watch_window=,
 *      watch_window_seconds=} -> store | nil, err, code */
static int lstore_open(lua_State *L) {
  check_opts(L, 1);
  ml_store_options_t o = {
      .backend = opt_field_string(L, 1, "backend"),
      .path = opt_field_string(L, 1, "path"),
      .sync = opt_field_string(L, 1, "sync"),
      .watch_window = (size_t)opt_field_int(L, 1, "watch_window", 0),
      .watch_window_seconds =
          (uint32_t)opt_field_int(L, 1, "watch_window_seconds", 0)};
  hooks_t *hooks = get_hooks(L);
  ml_runtime_t *rt = ml_runtime_get(L);
  /* The userdata exists, closed, before anything is allocated. */
  store_ud_t *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->rec = NULL;
  luaL_setmetatable(L, STORE_MT);
  store_rec_t *rec = calloc(1, sizeof *rec);
  if (!rec) return ml_lua_fail(L, ML_ENOMEM);
  char *err = NULL;
  int rc = ml_store_open(&o, &rec->s, &err);
  if (rc < 0) {
    free(rec);
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", ml_err_name(rc), err ? err : ml_strerror(rc));
    lua_pushstring(L, ml_err_name(rc));
    free(err);
    return 3;
  }
  rec->rt = rt;
  rec->src.sync = sync_src;
  rec->src.failed = sync_failed;
  rec->src.ud = rec->s;
  ml_durable_add(&rt->durable, &rec->src);
  rec->next = hooks->head;
  hooks->head = rec;
  if (!rt->store) rt->store = rec->s;
  ud->rec = rec;
  return 1;
}

static int lstore_close(lua_State *L) {
  store_ud_t *ud = luaL_checkudata(L, 1, STORE_MT);
  store_rec_t *rec = ud->rec;
  if (!rec) return 0;
  ud->rec = NULL;
  lua_getfield(L, LUA_REGISTRYINDEX, HOOKS_KEY);
  hooks_t *hooks = lua_touserdata(L, -1);
  lua_pop(L, 1);
  for (store_rec_t **p = hooks ? &hooks->head : NULL; p && *p; p = &(*p)->next)
    if (*p == rec) {
      *p = rec->next;
      break;
    }
  if (rec->rt->store == rec->s) rec->rt->store = NULL;
  /* The sync in flight (and the rest) ends first: answers waiting for it
   * go out, and the pool never touches the store after its close. */
  ml_durable_remove(&rec->rt->durable, &rec->src);
  ml_store_close(rec->s);
  free(rec);
  return 0;
}

/* {====== create from a table's text */

/* A create whose result goes back as text ({json=true}, every API create)
 * writes the table straight to the stored text: no jansson tree to build,
 * fill, serialize and free (a tenth of a ConfigMap create over HTTP).
 * Anything unusual (reals, bad UTF-8, a metadata that is not an object)
 * declines, and ml_store_create decides as before. */

typedef struct {
  lua_State *L;
  int obj, meta; /* stack slots of the object and its metadata table */
} text_src_t;

/* One member of metadata, `val` a string the store chose. */
static int put_member(ml_json_buf_t *b, bool *first, const char *key,
                      const char *val) {
  if (!*first && !ml_json_buf_put(b, ",", 1)) return 0;
  *first = false;
  return ml_json_write_string(b, key, strlen(key)) && ml_json_buf_put(b, ":", 1) &&
         (val ? ml_json_write_string(b, val, strlen(val)) : ml_json_buf_put(b, "1", 1));
}

enum { M_NAME, M_NS, M_UID, M_RV, M_GEN, M_TS, M_COUNT };
static const char *const meta_keys[M_COUNT] = {
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp"};

/* Which of meta_keys `k` is, M_COUNT for another member, -1 for the two
 * the store drops. */
static int meta_key(const char *k, size_t klen) {
  for (int i = 0; i < M_COUNT; i++)
    if (strlen(meta_keys[i]) == klen && memcmp(k, meta_keys[i], klen) == 0) return i;
  if ((klen == 17 && memcmp(k, "deletionTimestamp", 17) == 0) ||
      (klen == 26 && memcmp(k, "deletionGracePeriodSeconds", 26) == 0))
    return -1;
  return M_COUNT;
}

/* A member's written value counts as set for ownership unless it is null,
 * [] or "" (the store's own test on stored texts). */
static bool written_set(const char *v, size_t n) {
  return !(n == 4 && memcmp(v, "null", 4) == 0) &&
         !(n == 2 && (memcmp(v, "[]", 2) == 0 || memcmp(v, "\"\"", 2) == 0));
}

/* The metadata table at `idx` with the store's members laid over it, in
 * the member order ml_store_create's jansson edits leave. */
static int write_meta(lua_State *L, int idx, const ml_store_meta_t *m,
                      ml_json_buf_t *b, ml_store_written_t *w) {
  /* The store's value per member; NULL: keep the caller's (uid under
   * keep_uid, generation without the flag); "" for namespace: drop. */
  const char *val[M_COUNT] = {m->name, m->ns, m->uid, m->resource_version, NULL,
                              m->creation_timestamp};
  bool set[M_COUNT] = {true, *m->ns != '\0', m->uid != NULL, true, m->generation, true};
  bool seen[M_COUNT] = {false};
  bool first = true;
  if (!ml_json_buf_put(b, "{", 1)) return 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* stack: key value */
    size_t klen;
    if (lua_type(L, -2) != LUA_TSTRING) return 0;
    const char *k = lua_tolstring(L, -2, &klen);
    if (memchr(k, '\0', klen)) return 0;
    int which = meta_key(k, klen);
    if (which >= 0 && which < M_COUNT) seen[which] = true;
    if (which == -1 || (which == M_NS && !set[M_NS])) {
      lua_pop(L, 1);
      continue;
    }
    if (which < M_COUNT && set[which]) {
      if (!put_member(b, &first, meta_keys[which], val[which])) return 0;
    } else {
      if (klen == 6 && memcmp(k, "labels", 6) == 0) {
        char err[8];
        w->labels = ml_lua_to_json(L, -1, err, sizeof err);
        if (!w->labels) return 0;
      }
      if ((!first && !ml_json_buf_put(b, ",", 1)) || !ml_json_write_string(b, k, klen) ||
          !ml_json_buf_put(b, ":", 1))
        return 0;
      size_t at = b->len;
      if (!ml_lua_encode_json_append(L, -1, 2, b)) return 0;
      first = false;
      if ((klen == 15 && memcmp(k, "ownerReferences", 15) == 0) ||
          (klen == 10 && memcmp(k, "finalizers", 10) == 0))
        w->owner_relevant = w->owner_relevant || written_set(b->buf + at, b->len - at);
    }
    lua_pop(L, 1);
  }
  for (int i = 0; i < M_COUNT; i++)
    if (set[i] && !seen[i] && !put_member(b, &first, meta_keys[i], val[i])) return 0;
  return ml_json_buf_put(b, "}", 1);
}

static int write_object(void *ud, const ml_store_meta_t *m, ml_json_buf_t *b,
                        ml_store_written_t *w) {
  text_src_t *src = ud;
  lua_State *L = src->L;
  int top = lua_gettop(L);
  bool first = true;
  int ok = lua_checkstack(L, 8) && ml_json_buf_put(b, "{", 1);
  lua_pushnil(L);
  while (ok && lua_next(L, src->obj)) { /* stack: key value */
    size_t klen;
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
    ok = k && !memchr(k, '\0', klen) && (first || ml_json_buf_put(b, ",", 1)) &&
         ml_json_write_string(b, k, klen) && ml_json_buf_put(b, ":", 1);
    first = false;
    if (ok && klen == 8 && memcmp(k, "metadata", 8) == 0)
      ok = write_meta(L, src->meta, m, b, w);
    else if (ok)
      ok = ml_lua_encode_json_append(L, -1, 1, b);
    lua_settop(L, top + 1); /* the key, for lua_next */
  }
  lua_settop(L, top);
  return ok && ml_json_buf_put(b, "}", 1);
}

/* A string member of the metadata table (raw), NULL when absent or not a
 * string; declines (sets *odd) on one jansson would have rewritten (bad
 * UTF-8 becomes U+FFFD there). */
static const char *meta_field(lua_State *L, int meta, const char *k, bool *odd) {
  lua_pushstring(L, k);
  if (lua_rawget(L, meta) != LUA_TSTRING) {
    lua_pop(L, 1);
    return NULL;
  }
  size_t len;
  const char *v = lua_tolstring(L, -1, &len);
  lua_pop(L, 1); /* still referenced by the table */
  for (size_t i = 0; i < len;) {
    size_t n = ml_json_utf8_len((const unsigned char *)v + i, len - i);
    if (n == 0) {
      *odd = true;
      return NULL;
    }
    i += n;
  }
  return v;
}

/* Pushes the metadata table of the object table at `idx` (absolute).
 * @return its stack index, or 0 with nothing pushed when either is not an
 *   object (the text path then declines). */
static int push_metadata(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE || ml_lua_is_array(L, idx)) return 0;
  lua_pushliteral(L, "metadata");
  if (lua_rawget(L, idx) != LUA_TTABLE || ml_lua_is_array(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  return lua_gettop(L);
}

/* Tries the text path for the table at `idx`.
 * @return 0 (result in out), ML_STORE_DECLINED, or a store error. */
static int create_from_table(lua_State *L, ml_store_t *s, const char *res,
                             const char *ns, int idx, unsigned flags,
                             ml_store_result_t *out) {
  int meta = push_metadata(L, idx);
  if (!meta) return ML_STORE_DECLINED;
  bool odd = false;
  ml_store_meta_in_t in = {.name = meta_field(L, meta, "name", &odd),
                           .generate_name = meta_field(L, meta, "generateName", &odd),
                           .ns = meta_field(L, meta, "namespace", &odd),
                           .resource_version = meta_field(L, meta, "resourceVersion", &odd),
                           .uid = meta_field(L, meta, "uid", &odd)};
  int rc = ML_STORE_DECLINED;
  if (!odd) {
    text_src_t src = {L, lua_absindex(L, idx), meta};
    rc = ml_store_create_text(s, res, ns, &in, flags, write_object, &src, out);
  }
  lua_settop(L, meta - 1);
  return rc;
}

/* }====== */

/* {====== status write from a table's text */

/* A status write from a table (every API status write: PUT and PATCH of
 * /status) writes the table's status straight to text and splices it
 * into the stored object's text (ml_store_update_status_text): no
 * conversion of the body, no parse of the stored object, no serialize.
 * It takes the shape the API hands over, { metadata = { strings },
 * status = value [, other string members] }; anything else declines and
 * ml_store_update decides as before. The result is pushed from the text
 * (push_result). */

typedef struct {
  lua_State *L;
  int idx; /* stack slot of the status value */
} value_src_t;

static int write_status(void *ud, ml_json_buf_t *b) {
  value_src_t *v = ud;
  return ml_lua_encode_json_append(v->L, v->idx, 1, b);
}

static bool utf8_ok(const char *s, size_t len) {
  for (size_t i = 0; i < len;) {
    size_t n = ml_json_utf8_len((const unsigned char *)s + i, len - i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

/* Whether every member of the table at idx but `skip`/`skip2` has a
 * string key (no NUL, valid UTF-8) and a string value: members ml_lua_to_json
 * converts without a failure, as they are. */
static bool string_members(lua_State *L, int idx, const char *skip, const char *skip2) {
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* stack: key value */
    size_t klen;
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
    bool ok = k && !memchr(k, '\0', klen) && utf8_ok(k, klen);
    bool skipped = ok && ((skip && strcmp(k, skip) == 0) || (skip2 && strcmp(k, skip2) == 0));
    if (ok && !skipped) ok = lua_type(L, -1) == LUA_TSTRING;
    lua_pop(L, 1);
    if (!ok) {
      lua_pop(L, 1);
      return false;
    }
  }
  return true;
}

/* Tries the text path for the status write of the table at `idx`.
 * @return 0 (result in out), ML_STORE_DECLINED, or a store error. */
static int status_from_table(lua_State *L, ml_store_t *s, const char *res, int idx,
                             ml_store_result_t *out) {
  if (lua_type(L, idx) != LUA_TTABLE || ml_lua_is_array(L, idx) || !lua_checkstack(L, 8))
    return ML_STORE_DECLINED;
  idx = lua_absindex(L, idx);
  int top = lua_gettop(L);
  int rc = ML_STORE_DECLINED;
  int meta = top + 1, status = top + 2;
  lua_pushliteral(L, "metadata");
  if (lua_rawget(L, idx) != LUA_TTABLE || ml_lua_is_array(L, meta)) goto done;
  lua_pushliteral(L, "status");
  if (lua_rawget(L, idx) == LUA_TNIL) goto done;
  if (!string_members(L, idx, "metadata", "status") || !string_members(L, meta, NULL, NULL))
    goto done;
  bool odd = false;
  ml_store_update_in_t in = {.name = meta_field(L, meta, "name", &odd),
                             .ns = meta_field(L, meta, "namespace", &odd),
                             .resource_version = meta_field(L, meta, "resourceVersion", &odd),
                             .uid = meta_field(L, meta, "uid", &odd)};
  if (odd) goto done;
  value_src_t src = {L, status};
  rc = ml_store_update_status_text(s, res, &in, write_status, &src, out);
done:
  lua_settop(L, top);
  return rc;
}

/* }====== */

/* {====== update from a table's text */

/* A plain update (PUT, a merge or strategic patch, a binding) writes the
 * table straight to the stored text with the stored object's own fields
 * laid over it (ml_store_update_text): no conversion of the body, no parse
 * of the stored object, no serialize. Anything unusual declines, and so
 * does every failure: ml_store_update answers those as before. */

/* One member "key":value with the raw value text; *first as put_member. */
static int put_raw(ml_json_buf_t *b, bool *first, const char *key, size_t klen, const char *v,
                   size_t vlen, size_t *at) {
  if (!*first && !ml_json_buf_put(b, ",", 1)) return 0;
  *first = false;
  if (!ml_json_write_string(b, key, klen) || !ml_json_buf_put(b, ":", 1)) return 0;
  if (at) *at = b->len;
  return ml_json_buf_put(b, v, vlen);
}

/* Whether the value at the top of the stack encodes (what the tree path
 * would convert); the text is dropped again. */
static int encodes(lua_State *L, int depth, ml_json_buf_t *b) {
  size_t at = b->len;
  int ok = ml_lua_encode_json_append(L, -1, depth, b);
  b->len = at;
  return ok;
}

static int write_update_meta(lua_State *L, int idx, const ml_store_update_meta_t *m,
                             ml_json_buf_t *b, ml_store_update_written_t *w) {
  bool seen[ML_STORE_KEPT_COUNT] = {false}, rv_seen = false, first = true;
  if (!ml_json_buf_put(b, "{", 1)) return 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* stack: key value */
    size_t klen;
    if (lua_type(L, -2) != LUA_TSTRING) return 0;
    const char *k = lua_tolstring(L, -2, &klen);
    if (memchr(k, '\0', klen)) return 0;
    int which = -1;
    for (int i = 0; i < ML_STORE_KEPT_COUNT && which < 0; i++)
      if (strlen(m->kept_names[i]) == klen && memcmp(k, m->kept_names[i], klen) == 0) which = i;
    if (which >= 0) {
      /* The stored value in its place, or the member dropped. */
      seen[which] = true;
      if (!encodes(L, 2, b)) return 0;
      size_t at;
      if (m->kept[which] &&
          !put_raw(b, &first, k, klen, m->kept[which], m->kept_len[which], &at))
        return 0;
      if (m->kept[which] && which == ML_STORE_KEPT_GENERATION) {
        w->gen_at = at;
        w->gen_len = m->kept_len[which];
      }
    } else if (klen == 15 && memcmp(k, "resourceVersion", 15) == 0) {
      rv_seen = true;
      if (!encodes(L, 2, b) ||
          !put_raw(b, &first, k, klen, m->resource_version, m->resource_version_len, &w->rv_at))
        return 0;
      w->rv_len = m->resource_version_len;
    } else {
      if (klen == 6 && memcmp(k, "labels", 6) == 0) {
        char err[8];
        w->labels = ml_lua_to_json(L, -1, err, sizeof err);
        if (!w->labels) return 0;
      }
      if ((!first && !ml_json_buf_put(b, ",", 1)) || !ml_json_write_string(b, k, klen) ||
          !ml_json_buf_put(b, ":", 1) || !ml_lua_encode_json_append(L, -1, 2, b))
        return 0;
      first = false;
    }
    lua_pop(L, 1);
  }
  for (int i = 0; i < ML_STORE_KEPT_COUNT; i++) {
    if (seen[i] || !m->kept[i]) continue;
    size_t at;
    if (!put_raw(b, &first, m->kept_names[i], strlen(m->kept_names[i]), m->kept[i],
                 m->kept_len[i], &at))
      return 0;
    if (i == ML_STORE_KEPT_GENERATION) {
      w->gen_at = at;
      w->gen_len = m->kept_len[i];
    }
  }
  /* A generation the stored object lacks goes here (after the name, which
   * every stored object has). */
  if (w->gen_len == 0) w->gen_at = b->len;
  if (!rv_seen) {
    if (!put_raw(b, &first, "resourceVersion", 15, m->resource_version,
                 m->resource_version_len, &w->rv_at))
      return 0;
    w->rv_len = m->resource_version_len;
  }
  return !first && ml_json_buf_put(b, "}", 1);
}

static int write_update_object(void *ud, const ml_store_update_meta_t *m, ml_json_buf_t *b,
                               ml_store_update_written_t *w) {
  text_src_t *src = ud;
  lua_State *L = src->L;
  int top = lua_gettop(L);
  bool first = true, status_seen = false;
  int ok = lua_checkstack(L, 8) && ml_json_buf_put(b, "{", 1);
  lua_pushnil(L);
  while (ok && lua_next(L, src->obj)) { /* stack: key value */
    size_t klen;
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
    ok = k && !memchr(k, '\0', klen);
    if (ok && klen == 6 && memcmp(k, "status", 6) == 0 && m->keep_status) {
      /* The stored status in its place, or none. */
      status_seen = true;
      ok = encodes(L, 1, b) &&
           (!m->status || put_raw(b, &first, k, klen, m->status, m->status_len, NULL));
    } else if (ok) {
      ok = (first || ml_json_buf_put(b, ",", 1)) && ml_json_write_string(b, k, klen) &&
           ml_json_buf_put(b, ":", 1);
      first = false;
      if (ok && klen == 8 && memcmp(k, "metadata", 8) == 0)
        ok = write_update_meta(L, src->meta, m, b, w);
      else if (ok)
        ok = ml_lua_encode_json_append(L, -1, 1, b);
    }
    lua_settop(L, top + 1); /* the key, for lua_next */
  }
  lua_settop(L, top);
  if (ok && m->keep_status && !status_seen && m->status)
    ok = put_raw(b, &first, "status", 6, m->status, m->status_len, NULL);
  return ok && ml_json_buf_put(b, "}", 1);
}

/* Tries the text path for the update of the table at `idx`.
 * @return 0 (result in out) or ML_STORE_DECLINED. */
static int update_from_table(lua_State *L, ml_store_t *s, const char *res, int idx,
                             unsigned flags, ml_store_result_t *out) {
  idx = lua_absindex(L, idx);
  int meta = push_metadata(L, idx);
  if (!meta) return ML_STORE_DECLINED;
  bool odd = false;
  ml_store_update_in_t in = {.name = meta_field(L, meta, "name", &odd),
                             .ns = meta_field(L, meta, "namespace", &odd),
                             .resource_version = meta_field(L, meta, "resourceVersion", &odd),
                             .uid = meta_field(L, meta, "uid", &odd)};
  int rc = ML_STORE_DECLINED;
  if (!odd) {
    text_src_t src = {L, idx, meta};
    rc = ml_store_update_text(s, res, &in, flags, write_update_object, &src, out);
  }
  lua_settop(L, meta - 1);
  return rc;
}

/* }====== */

/* Lua: obj | nil, msg, code = s:create(resource, namespace, obj,
 *      {generation=, json=, keep_uid=}) */
static int lstore_create(lua_State *L) {
  store_rec_t *rec = check_store(L);
  const char *res = luaL_checkstring(L, 2);
  const char *ns = luaL_optstring(L, 3, "");
  luaL_checkany(L, 4);
  check_opts(L, 5);
  unsigned flags = opt_field_bool(L, 5, "generation") ? ML_STORE_GENERATION : 0;
  if (opt_field_bool(L, 5, "keep_uid")) flags |= ML_STORE_KEEP_UID;
  if (opt_field_bool(L, 5, "json")) {
    ml_store_result_t r;
    int rc = create_from_table(L, rec->s, res, ns, 4, flags, &r);
    if (rc < 0) return fail_store(L, rec, rc);
    if (rc == 0) return push_result(L, &r, 5, false);
  }
  char err[256];
  json_t *obj = arg_object(L, 4, err, sizeof err);
  if (!obj) return ml_lua_fail_msg(L, ML_EINVALID, err);
  ml_store_result_t r;
  /* The converted document is ours alone: the store takes it. */
  int rc = ml_store_create(rec->s, res, ns, obj, flags | ML_STORE_TAKE, &r);
  json_decref(obj);
  if (rc < 0) return fail_store(L, rec, rc);
  return push_result(L, &r, 5, false);
}

/* Lua: obj, removed | nil, msg, code = s:update(resource, obj,
 *      {subresource="status", generation=, status_subresource=, json=}) */
static int lstore_update(lua_State *L) {
  store_rec_t *rec = check_store(L);
  const char *res = luaL_checkstring(L, 2);
  luaL_checkany(L, 3);
  check_opts(L, 4);
  unsigned flags = 0;
  if (opt_field_bool(L, 4, "generation")) flags |= ML_STORE_GENERATION;
  if (opt_field_bool(L, 4, "status_subresource"))
    flags |= ML_STORE_STATUS_SUBRESOURCE;
  const char *sub = opt_field_string(L, 4, "subresource");
  if (sub && strcmp(sub, "status") == 0)
    flags |= ML_STORE_WRITE_STATUS;
  else if (sub && *sub)
    return luaL_error(L, "unknown subresource '%s'", sub);
  if (flags & ML_STORE_WRITE_STATUS) {
    ml_store_result_t r;
    int rc = status_from_table(L, rec->s, res, 3, &r);
    if (rc < 0) return fail_store(L, rec, rc);
    if (rc == 0) return push_result(L, &r, 4, true);
  } else {
    ml_store_result_t r;
    if (update_from_table(L, rec->s, res, 3, flags, &r) == 0) return push_result(L, &r, 4, true);
  }
  char err[256];
  json_t *obj = arg_object(L, 3, err, sizeof err);
  if (!obj) return ml_lua_fail_msg(L, ML_EINVALID, err);
  ml_store_result_t r;
  int rc = ml_store_update(rec->s, res, obj, flags | ML_STORE_TAKE, &r);
  json_decref(obj);
  if (rc < 0) return fail_store(L, rec, rc);
  return push_result(L, &r, 4, true);
}

/* Lua: obj, removed_now | nil, msg, code = s:delete(resource, namespace,
 *      name, {uid=, resource_version=, grace_seconds=, json=}) */
static int lstore_delete(lua_State *L) {
  store_rec_t *rec = check_store(L);
  const char *res = luaL_checkstring(L, 2);
  const char *ns = luaL_optstring(L, 3, "");
  const char *name = luaL_checkstring(L, 4);
  check_opts(L, 5);
  ml_store_delete_opts_t o = {
      .uid = opt_field_string(L, 5, "uid"),
      .resource_version = opt_field_string(L, 5, "resource_version"),
      .grace_seconds = opt_field_int(L, 5, "grace_seconds", -1)};
  ml_store_result_t r;
  int rc = ml_store_delete(rec->s, res, ns, name, &o, &r);
  if (rc < 0) return fail_store(L, rec, rc);
  return push_result(L, &r, 5, true);
}

/* Pushes a stored text as a Lua value, straight from the text (no
 * jansson tree); 0 results when the direct reader declines it. */
static int push_text_value(lua_State *L) {
  ml_store_text_t *t = lua_touserdata(L, 1);
  return ml_lua_push_json_text(L, t->data, t->len) ? 1 : 0;
}

/* Lua: obj | nil = s:get(resource, namespace, name) */
static int lstore_get(lua_State *L) {
  store_rec_t *rec = check_store(L);
  const char *res = luaL_checkstring(L, 2);
  const char *ns = luaL_optstring(L, 3, "");
  const char *name = luaL_checkstring(L, 4);
  ml_store_text_t *t;
  if (ml_store_get(rec->s, res, ns, name, NULL, &t) < 0) return 0;
  /* In a protected call so the text is released on memory errors. */
  int top = lua_gettop(L);
  lua_pushcfunction(L, push_text_value);
  lua_pushlightuserdata(L, t);
  int status = lua_pcall(L, 1, LUA_MULTRET, 0);
  ml_store_text_unref(t);
  if (status != LUA_OK) return lua_error(L);
  if (lua_gettop(L) > top) return 1;
  /* Declined (nesting deeper than the direct reader goes): jansson. */
  json_t *obj;
  if (ml_store_get(rec->s, res, ns, name, &obj, NULL) < 0) return 0;
  ml_lua_push_json_steal(L, obj);
  return 1;
}

/* Lua: text | nil = s:get_json(resource, namespace, name) */
static int lstore_get_json(lua_State *L) {
  store_rec_t *rec = check_store(L);
  const char *res = luaL_checkstring(L, 2);
  const char *ns = luaL_optstring(L, 3, "");
  const char *name = luaL_checkstring(L, 4);
  ml_store_text_t *t;
  if (ml_store_get(rec->s, res, ns, name, NULL, &t) < 0) return 0;
  lua_pushcfunction(L, push_text);
  lua_pushlightuserdata(L, t);
  int status = lua_pcall(L, 1, 1, 0);
  ml_store_text_unref(t);
  if (status != LUA_OK) return lua_error(L);
  return 1;
}

/* Lua: rv | nil = s:object_version(resource, namespace, name): the
 * object's resourceVersion as an integer, nil when it does not exist. */
static int lstore_object_version(lua_State *L) {
  store_rec_t *rec = check_store(L);
  const char *res = luaL_checkstring(L, 2);
  const char *ns = luaL_optstring(L, 3, "");
  const char *name = luaL_checkstring(L, 4);
  uint64_t rv;
  if (ml_store_object_version(rec->s, res, ns, name, &rv) < 0) return 0;
  lua_pushinteger(L, (lua_Integer)rv);
  return 1;
}

static ml_store_list_opts_t list_opts(lua_State *L, int idx) {
  check_opts(L, idx);
  lua_Integer limit = opt_field_int(L, idx, "limit", 0);
  if (limit < 0) luaL_error(L, "option 'limit' must be >= 0");
  return (ml_store_list_opts_t){
      .ns = opt_field_string(L, idx, "namespace"),
      .label_selector = opt_field_string(L, idx, "label_selector"),
      .field_selector = opt_field_string(L, idx, "field_selector"),
      .limit = (size_t)limit,
      .continue_token = opt_field_string(L, idx, "continue")};
}

static void push_rv(lua_State *L, uint64_t rv) {
  lua_pushfstring(L, "%I", (lua_Integer)rv);
}

/* Pushes the list table; runs protected so the C list is always freed. */
static int push_list(lua_State *L) {
  ml_store_list_t *l = lua_touserdata(L, 1);
  lua_createtable(L, 0, 3);
  lua_createtable(L, (int)l->n, 0);
  for (size_t i = 0; i < l->n; i++) {
    ml_lua_push_json(L, l->items[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  ml_lua_push_array_mt(L);
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "items");
  push_rv(L, l->resource_version);
  lua_setfield(L, -2, "resource_version");
  if (l->continue_token) {
    lua_pushstring(L, l->continue_token);
    lua_setfield(L, -2, "continue");
  }
  return 1;
}

/* Lua: {items=, resource_version=, continue=} | nil, msg, code =
 *      s:list(resource, {namespace=, label_selector=, field_selector=,
 *      limit=, continue=}) */
static int lstore_list(lua_State *L) {
  store_rec_t *rec = check_store(L);
  const char *res = luaL_checkstring(L, 2);
  ml_store_list_opts_t o = list_opts(L, 3);
  ml_store_list_t l;
  int rc = ml_store_list(rec->s, res, &o, &l);
  if (rc < 0) return fail_store(L, rec, rc);
  lua_pushcfunction(L, push_list);
  lua_pushlightuserdata(L, &l);
  int status = lua_pcall(L, 1, 1, 0);
  ml_store_list_clear(&l);
  if (status != LUA_OK) return lua_error(L);
  return 1;
}

typedef struct {
  char *json, *cont;
  size_t len;
  uint64_t rv;
} list_json_t;

static int push_list_json(lua_State *L) {
  list_json_t *j = lua_touserdata(L, 1);
  lua_pushlstring(L, j->json, j->len);
  push_rv(L, j->rv);
  if (j->cont)
    lua_pushstring(L, j->cont);
  else
    lua_pushnil(L);
  return 3;
}

/* Lua: items_json, resource_version, continue | nil, msg, code =
 *      s:list_json(resource, opts) */
static int lstore_list_json(lua_State *L) {
  store_rec_t *rec = check_store(L);
  const char *res = luaL_checkstring(L, 2);
  ml_store_list_opts_t o = list_opts(L, 3);
  list_json_t j;
  int rc = ml_store_list_json(rec->s, res, &o, &j.json, &j.len, &j.rv, &j.cont);
  if (rc < 0) return fail_store(L, rec, rc);
  /* Copied into Lua in a protected call: the C buffers are freed even when
   * Lua runs out of memory. */
  lua_pushcfunction(L, push_list_json);
  lua_pushlightuserdata(L, &j);
  int status = lua_pcall(L, 1, 3, 0);
  free(j.json);
  free(j.cont);
  if (status != LUA_OK) return lua_error(L);
  return 3;
}

/* Lua: s:new_uid() -> a new uid string (for s:create{keep_uid=true}) */
static int lstore_new_uid(lua_State *L) {
  store_rec_t *rec = check_store(L);
  char uid[37];
  ml_store_new_uid(rec->s, uid);
  lua_pushstring(L, uid);
  return 1;
}

/* Lua: s:resource_version() -> integer */
static int lstore_resource_version(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ml_store_resource_version(check_store(L)->s));
  return 1;
}

/* Lua: true | nil, msg, code = s:commit() (the end-of-turn hook does this) */
static int lstore_commit(lua_State *L) {
  store_rec_t *rec = check_store(L);
  int rc = ml_store_commit(rec->s);
  if (rc < 0) return fail_store(L, rec, rc);
  if (ml_store_take_unsynced(rec->s))
    ml_durable_committed(&rec->rt->durable, &rec->src);
  lua_pushboolean(L, 1);
  return 1;
}

/* Lua: s:set_time(unix_seconds | nil) fixes the store's clock (tests). */
static int lstore_set_time(lua_State *L) {
  store_rec_t *rec = check_store(L);
  ml_store_set_time(rec->s, (int64_t)luaL_optinteger(L, 2, 0));
  return 0;
}

static int lstore_tostring(lua_State *L) {
  store_ud_t *ud = luaL_checkudata(L, 1, STORE_MT);
  if (ud->rec)
    lua_pushfstring(L, "%s: %p", STORE_MT, (void *)ud->rec);
  else
    lua_pushfstring(L, "%s: (closed)", STORE_MT);
  return 1;
}

/* }====== */

/* {====== watch */

static void watch_event_destroy(ml_event_t *ev) {
  watch_event_t *we = (watch_event_t *)ev;
  ml_store_text_unref(we->text);
  we->rec->inflight--;
  watch_rec_unref(we->rec);
  free(we);
}

static int push_watch_event(lua_State *L, ml_event_t *ev) {
  watch_event_t *we = (watch_event_t *)ev;
  if (we->type == ML_STORE_CLOSED) return 0; /* the stream ended */
  lua_pushstring(L, ml_store_event_name(we->type));
  lua_pushlstring(L, we->text->data, we->text->len);
  return 2;
}

/* Store callback: queue the event for Lua (never calls Lua). */
static void on_watch(void *ud, int type, ml_store_text_t *text) {
  watch_rec_t *rec = ud;
  if (type == ML_STORE_CLOSED) rec->w = NULL; /* the store freed it */
  /* A store finalized after the runtime (lua_close) has no loop left. */
  if (!rec->rt->L) return;
  watch_event_t *we = calloc(1, sizeof *we);
  if (!we) return;
  we->ev.type = ML_EV_STORE_WATCH;
  we->ev.id = rec->id;
  we->ev.destroy = watch_event_destroy;
  we->type = type;
  we->text = text ? ml_store_text_ref(text) : NULL;
  we->rec = rec;
  rec->refs++;
  rec->inflight++;
  ml_loop_post(rec->loop, &we->ev);
}

/* Lua: w | nil, msg, code = s:watch(id, resource, {namespace=,
 *      label_selector=, field_selector=, resource_version=, owner_events=}).
 * Events arrive at `id` as (type, object_json); no values: the store
 * closed. */
static int lstore_watch(lua_State *L) {
  store_rec_t *rec = check_store(L);
  lua_Integer id = luaL_checkinteger(L, 2);
  const char *res = luaL_checkstring(L, 3);
  check_opts(L, 4);
  ml_store_watch_opts_t o;
  ml_lua_watch_opts(L, 4, &o);
  watch_ud_t *ud = lua_newuserdatauv(L, sizeof *ud, 1);
  ud->rec = NULL;
  luaL_setmetatable(L, WATCH_MT);
  /* The watcher keeps its store reachable. */
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  watch_rec_t *w = calloc(1, sizeof *w);
  if (!w) return ml_lua_fail(L, ML_ENOMEM);
  w->rt = rec->rt;
  w->loop = &rec->rt->loop;
  w->id = (uint64_t)id;
  w->refs = 1;
  ud->rec = w;
  int rc = ml_store_watch(rec->s, res, &o, on_watch, w, &w->w);
  if (rc < 0) {
    ud->rec = NULL;
    watch_rec_unref(w);
    return fail_store(L, rec, rc);
  }
  return 1;
}

/* Lua: n = w:close() -> events still queued for its id (each will still be
 * delivered once; the facade swallows them). Idempotent. */
static int lwatch_close(lua_State *L) {
  watch_ud_t *ud = luaL_checkudata(L, 1, WATCH_MT);
  watch_rec_t *rec = ud->rec;
  if (!rec) {
    lua_pushinteger(L, 0);
    return 1;
  }
  ud->rec = NULL;
  if (rec->w) ml_store_watch_close(rec->w);
  rec->w = NULL;
  lua_pushinteger(L, rec->inflight);
  watch_rec_unref(rec);
  return 1;
}

static int lwatch_gc(lua_State *L) {
  lwatch_close(L);
  return 0;
}

static int lwatch_tostring(lua_State *L) {
  watch_ud_t *ud = luaL_checkudata(L, 1, WATCH_MT);
  if (ud->rec && ud->rec->w)
    lua_pushfstring(L, "%s: %p", WATCH_MT, (void *)ud->rec);
  else
    lua_pushfstring(L, "%s: (closed)", WATCH_MT);
  return 1;
}

/* }====== */

static const luaL_Reg store_meth[] = {
    {"create", lstore_create},
    {"update", lstore_update},
    {"delete", lstore_delete},
    {"get", lstore_get},
    {"get_json", lstore_get_json},
    {"object_version", lstore_object_version},
    {"list", lstore_list},
    {"list_json", lstore_list_json},
    {"watch", lstore_watch},
    {"resource_version", lstore_resource_version},
    {"new_uid", lstore_new_uid},
    {"commit", lstore_commit},
    {"set_time", lstore_set_time},
    {"close", lstore_close},
    {NULL, NULL}};
static const luaL_Reg store_metameth[] = {{"__gc", lstore_close},
                                          {"__close", lstore_close},
                                          {"__tostring", lstore_tostring},
                                          {"__index", NULL},
                                          {NULL, NULL}};
static const luaL_Reg watch_meth[] = {{"close", lwatch_close}, {NULL, NULL}};
static const luaL_Reg watch_metameth[] = {{"__gc", lwatch_gc},
                                          {"__close", lwatch_gc},
                                          {"__tostring", lwatch_tostring},
                                          {"__index", NULL},
                                          {NULL, NULL}};

static void createmeta(lua_State *L, const char *name, const luaL_Reg *meth,
                       const luaL_Reg *metameth) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, metameth, 0);
  lua_newtable(L);
  luaL_setfuncs(L, meth, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

static const luaL_Reg store_funcs[] = {{"open", lstore_open}, {NULL, NULL}};

int luaopen_moonlet_core_store(lua_State *L) {
  createmeta(L, STORE_MT, store_meth, store_metameth);
  createmeta(L, WATCH_MT, watch_meth, watch_metameth);
  ml_runtime_on_event(ML_EV_STORE_WATCH, push_watch_event);
  luaL_newlib(L, store_funcs);
  return 1;
}
