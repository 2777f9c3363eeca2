/* Conversions between jansson values and Lua values (contract in lconv.h):
 * the null sentinel, the array/object marks, both walkers and deep copy.
 * Used by moonlet.core.json, moonlet.core.yaml and every binding that moves
 * objects, so the walkers avoid allocations beyond the values themselves. */
#include "lconv.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Static addresses serve as the null value and as registry keys (house
 * style rule 23); they are not const so the compiler keeps them distinct. */
static char null_sentinel;
static char array_mt_key;
static char object_mt_key;

/* {====== marks and sentinel */

void ml_lua_push_null(lua_State *L) { lua_pushlightuserdata(L, &null_sentinel); }

int ml_lua_is_null(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA &&
         lua_touserdata(L, idx) == &null_sentinel;
}

/* The metatables are cached under light-userdata keys so that checking a
 * mark is two raw lookups, with no string to intern. */
static void push_mark_mt(lua_State *L, const void *key, const char *name) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) != LUA_TNIL) return;
  lua_pop(L, 1);
  luaL_newmetatable(L, name); /* also sets __name, handy in tostring() */
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

void ml_lua_push_array_mt(lua_State *L) {
  push_mark_mt(L, &array_mt_key, ML_JSON_ARRAY_MT);
}

void ml_lua_push_object_mt(lua_State *L) {
  push_mark_mt(L, &object_mt_key, ML_JSON_OBJECT_MT);
}

enum { MARK_NONE, MARK_ARRAY, MARK_OBJECT };

/* Reads the mark of the table at absolute index idx without allocating. */
static int table_mark(lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx)) return MARK_NONE;
  int mark = MARK_NONE;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key); /* stack: mt amt */
  if (lua_rawequal(L, -1, -2)) {
    mark = MARK_ARRAY;
  } else {
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &object_mt_key); /* stack: mt omt */
    if (lua_rawequal(L, -1, -2)) mark = MARK_OBJECT;
  }
  lua_pop(L, 2);
  return mark;
}

/* A plain table is a list when it is non-empty and its keys are exactly
 * 1..n. Counting keys is needed because rawlen alone ignores extra keys. */
static int plain_is_list(lua_State *L, int idx, lua_Unsigned *n_out) {
  lua_Unsigned n = lua_rawlen(L, idx), count = 0;
  if (n == 0) return 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1); /* stack: key */
    if (!lua_isinteger(L, -1)) {
      lua_pop(L, 1);
      return 0;
    }
    lua_Integer k = lua_tointeger(L, -1);
    if (k < 1 || (lua_Unsigned)k > n || ++count > n) {
      lua_pop(L, 1);
      return 0;
    }
  }
  *n_out = n;
  return count == n;
}

int ml_lua_is_array(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE || !lua_checkstack(L, 3)) return 0;
  idx = lua_absindex(L, idx);
  int mark = table_mark(L, idx);
  if (mark != MARK_NONE) return mark == MARK_ARRAY;
  lua_Unsigned n;
  return plain_is_list(L, idx, &n);
}

/* }====== */

/* {====== json -> Lua */

static void push_json(lua_State *L, const json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    luaL_checkstack(L, 3, "JSON nesting too deep");
    json_t *obj = (json_t *)j; /* jansson's iterators take non-const */
    lua_createtable(L, 0, (int)json_object_size(obj));
    for (void *it = json_object_iter(obj); it;
         it = json_object_iter_next(obj, it)) {
      lua_pushlstring(L, json_object_iter_key(it), json_object_iter_key_len(it));
      push_json(L, json_object_iter_value(it));
      lua_rawset(L, -3);
    }
    break;
  }
  case JSON_ARRAY: {
    luaL_checkstack(L, 3, "JSON nesting too deep");
    size_t n = json_array_size(j);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
      push_json(L, json_array_get(j, i));
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    ml_lua_push_array_mt(L);
    lua_setmetatable(L, -2);
    break;
  }
  case JSON_STRING:
    lua_pushlstring(L, json_string_value(j), json_string_length(j));
    break;
  case JSON_INTEGER:
    lua_pushinteger(L, (lua_Integer)json_integer_value(j));
    break;
  case JSON_REAL:
    lua_pushnumber(L, (lua_Number)json_real_value(j));
    break;
  case JSON_TRUE:
    lua_pushboolean(L, 1);
    break;
  case JSON_FALSE:
    lua_pushboolean(L, 0);
    break;
  case JSON_NULL:
  default:
    ml_lua_push_null(L);
    break;
  }
}

void ml_lua_push_json(lua_State *L, const json_t *j) { push_json(L, j); }

static int push_protected(lua_State *L) {
  push_json(L, lua_touserdata(L, 1));
  return 1;
}

void ml_lua_push_json_steal(lua_State *L, json_t *j) {
  if (!lua_checkstack(L, 3)) {
    json_decref(j);
    luaL_error(L, "stack overflow");
  }
  /* Neither pushing a light C function nor a pointer allocates. */
  lua_pushcfunction(L, push_protected);
  lua_pushlightuserdata(L, j);
  int status = lua_pcall(L, 1, 1, 0);
  json_decref(j);
  if (status != LUA_OK) lua_error(L);
}

/* }====== */

/* {====== Lua -> json */

typedef struct {
  char *err;
  size_t errlen;
  int pathed;    /* err already starts with a field path */
  int truncated; /* the path got too long and was cut at "..." */
  int depth;
} conv_t;

static json_t *fail(conv_t *c, const char *fmt, ...) {
  if (c->errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
  }
  return NULL;
}

/* Prepends one path segment while the failure unwinds, giving Kubernetes
 * field paths: "spec.containers[0].image: cannot encode a function". */
static void err_prefix(conv_t *c, const char *seg, size_t seglen) {
  if (c->errlen == 0 || c->truncated) return;
  char tmp[512];
  const char *sep = !c->pathed ? ": " : (c->err[0] == '[' ? "" : ".");
  size_t need = seglen + strlen(sep) + strlen(c->err);
  if (need >= c->errlen || need >= sizeof tmp) {
    /* Keep the message and the innermost fields; elide the outer path. */
    c->truncated = 1;
    seg = "...";
    seglen = 3;
  }
  snprintf(tmp, sizeof tmp, "%.*s%s%s", (int)seglen, seg, sep, c->err);
  snprintf(c->err, c->errlen, "%s", tmp);
  c->pathed = 1;
}

/* Decodes one UTF-8 sequence at s (n bytes left).
 * @return its length, or 0 if the bytes there are not valid UTF-8. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  unsigned cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

/* Go's encoder replaces invalid UTF-8 with U+FFFD rather than failing; we
 * do the same so a stray byte in a log line never loses a whole object.
 * @return a malloc'd copy (length in *outlen) or NULL on memory failure. */
static char *utf8_sanitize(const char *s, size_t len, size_t *outlen) {
  char *out = malloc(len * 3 + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    size_t n = utf8_seq((const unsigned char *)s + i, len - i);
    if (n == 0) {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i++;
    } else {
      memcpy(out + o, s + i, n);
      o += n;
      i += n;
    }
  }
  *outlen = o;
  return out;
}

static json_t *new_string(const char *s, size_t len, conv_t *c) {
  json_t *j = json_stringn(s, len);
  if (j) return j;
  size_t n;
  char *clean = utf8_sanitize(s, len, &n);
  if (!clean) return fail(c, "out of memory");
  j = json_stringn_nocheck(clean, n);
  free(clean);
  return j ? j : fail(c, "out of memory");
}

static int utf8_valid(const char *s, size_t len) {
  for (size_t i = 0; i < len;) {
    size_t n = utf8_seq((const unsigned char *)s + i, len - i);
    if (n == 0) return 0;
    i += n;
  }
  return 1;
}

/* jansson releases v when setting fails, so the key is checked here first
 * and the value is handed over exactly once. */
static int object_set(json_t *obj, const char *k, size_t klen, json_t *v) {
  if (utf8_valid(k, klen)) return json_object_setn_new_nocheck(obj, k, klen, v);
  size_t n;
  char *clean = utf8_sanitize(k, klen, &n);
  if (!clean) {
    json_decref(v);
    return -1;
  }
  int rc = json_object_setn_new_nocheck(obj, clean, n, v);
  free(clean);
  return rc;
}

static json_t *to_json(lua_State *L, int idx, conv_t *c);

static json_t *array_to_json(lua_State *L, int idx, lua_Unsigned n,
                             conv_t *c) {
  json_t *arr = json_array();
  if (!arr) return fail(c, "out of memory");
  for (lua_Unsigned i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i);
    json_t *v = to_json(L, lua_gettop(L), c);
    lua_pop(L, 1);
    if (!v || json_array_append_new(arr, v) < 0) {
      if (v) fail(c, "out of memory");
      char seg[32];
      int len = snprintf(seg, sizeof seg, "[%llu]", (unsigned long long)i - 1);
      err_prefix(c, seg, (size_t)len);
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

static json_t *object_to_json(lua_State *L, int idx, conv_t *c) {
  json_t *obj = json_object();
  if (!obj) return fail(c, "out of memory");
  char num[64];
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* stack: key value */
    const char *k;
    size_t klen;
    int kt = lua_type(L, -2);
    if (kt == LUA_TSTRING) {
      k = lua_tolstring(L, -2, &klen); /* a string key: no conversion */
    } else if (kt == LUA_TNUMBER) {
      /* Formatted here: lua_tolstring would turn the key into a string
       * in place and confuse lua_next. */
      int len = lua_isinteger(L, -2)
                    ? snprintf(num, sizeof num, LUA_INTEGER_FMT,
                               (LUAI_UACINT)lua_tointeger(L, -2))
                    : snprintf(num, sizeof num, LUA_NUMBER_FMT,
                               (LUAI_UACNUMBER)lua_tonumber(L, -2));
      k = num;
      klen = (size_t)len;
    } else {
      lua_pop(L, 2);
      json_decref(obj);
      return fail(c, "cannot encode a %s key", lua_typename(L, kt));
    }
    json_t *v = to_json(L, lua_gettop(L), c);
    lua_pop(L, 1); /* stack: key */
    if (!v || object_set(obj, k, klen, v) < 0) {
      if (v) fail(c, "out of memory");
      err_prefix(c, k, klen);
      lua_pop(L, 1);
      json_decref(obj);
      return NULL;
    }
  }
  return obj;
}

static json_t *table_to_json(lua_State *L, int idx, conv_t *c) {
  if (c->depth >= ML_JSON_MAX_DEPTH)
    return fail(c, "nesting deeper than %d (a cycle?)", ML_JSON_MAX_DEPTH);
  if (!lua_checkstack(L, 4)) return fail(c, "Lua stack overflow");
  c->depth++;
  json_t *j;
  lua_Unsigned n = 0;
  int mark = table_mark(L, idx);
  if (mark == MARK_ARRAY) {
    j = array_to_json(L, idx, lua_rawlen(L, idx), c);
  } else if (mark == MARK_NONE && plain_is_list(L, idx, &n)) {
    j = array_to_json(L, idx, n, c);
  } else {
    j = object_to_json(L, idx, c);
  }
  c->depth--;
  return j;
}

static json_t *to_json(lua_State *L, int idx, conv_t *c) {
  int t = lua_type(L, idx);
  switch (t) {
  case LUA_TNIL:
    return json_null();
  case LUA_TBOOLEAN:
    return json_boolean(lua_toboolean(L, idx));
  case LUA_TNUMBER: {
    json_t *j;
    if (lua_isinteger(L, idx)) {
      j = json_integer((json_int_t)lua_tointeger(L, idx));
    } else {
      double d = (double)lua_tonumber(L, idx);
      if (!isfinite(d)) return fail(c, "cannot encode NaN or Infinity");
      j = json_real(d);
    }
    return j ? j : fail(c, "out of memory");
  }
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    return new_string(s, len, c);
  }
  case LUA_TTABLE:
    return table_to_json(L, idx, c);
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == &null_sentinel) return json_null();
    /* fall through */
  default:
    return fail(c, "cannot encode a %s", lua_typename(L, t));
  }
}

json_t *ml_lua_to_json(lua_State *L, int idx, char *err, size_t errlen) {
  conv_t c = {err, errlen, 0, 0, 0};
  if (errlen > 0) err[0] = '\0';
  return to_json(L, lua_absindex(L, idx), &c);
}

/* }====== */

/* {====== deep copy */

static void copy_value(lua_State *L, int idx, int depth) {
  if (lua_type(L, idx) != LUA_TTABLE) {
    lua_pushvalue(L, idx);
    return;
  }
  if (depth >= ML_JSON_MAX_DEPTH)
    luaL_error(L, "nesting deeper than %d (a cycle?)", ML_JSON_MAX_DEPTH);
  luaL_checkstack(L, 4, "nesting too deep");
  lua_Unsigned n = lua_rawlen(L, idx);
  lua_createtable(L, n > (lua_Unsigned)INT32_MAX ? 0 : (int)n, 0);
  int dst = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {    /* stack: copy key value */
    lua_pushvalue(L, -2);       /* stack: copy key value key */
    copy_value(L, dst + 2, depth + 1); /* stack: copy key value key vcopy */
    lua_rawset(L, dst);         /* stack: copy key value */
    lua_pop(L, 1);
  }
  if (lua_getmetatable(L, idx)) lua_setmetatable(L, dst);
}

void ml_lua_copy(lua_State *L, int idx) {
  copy_value(L, lua_absindex(L, idx), 0);
}

/* }====== */
