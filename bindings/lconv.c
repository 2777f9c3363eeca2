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

#include "json_read.h"

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

/* Go's encoder replaces invalid UTF-8 with U+FFFD rather than failing; we
 * do the same so a stray byte in a log line never loses a whole object.
 * @return a malloc'd copy (length in *outlen) or NULL on memory failure. */
static char *utf8_sanitize(const char *s, size_t len, size_t *outlen) {
  char *out = malloc(len * 3 + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    size_t n = ml_json_utf8_len((const unsigned char *)s + i, len - i);
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
    size_t n = ml_json_utf8_len((const unsigned char *)s + i, len - i);
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
  /* Sized once: growing the hash part key by key rehashed it at every
   * power of two, most of the cost of copying an object. */
  lua_Unsigned n = lua_rawlen(L, idx), members = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    members++;
    lua_pop(L, 1);
  }
  if (n > (lua_Unsigned)INT32_MAX || members > (lua_Unsigned)INT32_MAX) n = members = 0;
  lua_createtable(L, (int)n, members > n ? (int)(members - n) : 0);
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

/* {====== JSON text -> Lua without a jansson tree
 *
 * Building a jansson document only to walk it into Lua tables costs a
 * malloc per value twice over (tree, then Lua) plus the free; this pushes
 * Lua values straight from the text. It accepts exactly what jansson
 * accepts for the common shapes and declines anything unusual (deep
 * nesting, huge integers, reals out of range, NUL in a key, bad UTF-8 or
 * any syntax error): the caller then asks jansson, so results and error
 * messages stay jansson's. */

#define DEC_MAX_DEPTH 512

typedef struct {
  lua_State *L;
  const char *p, *end;
  int check_dups; /* look for a name repeated in an object */
  int saw_dup;    /* one was */
} tdec_t;

static void tdec_ws(tdec_t *d) {
  while (d->p < d->end &&
         (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
    d->p++;
}

/* Skips the plain bytes of a string body (no quote, backslash or control
 * character; multi-byte sequences must be valid UTF-8, as jansson checks).
 * @return the first byte that is not plain, or NULL on bad UTF-8. */
static const char *tdec_plain(const char *s, const char *end) {
  /* Eight bytes at a time while none can be special (a quote, backslash,
   * control or non-ASCII byte): most of a Kubernetes object's text. The
   * byte loop below decides exactly wherever this stops. */
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  while (end - s >= 8) {
    uint64_t x;
    memcpy(&x, s, 8);
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    uint64_t special = ((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x) | x;
    if (special & highs) break;
    s += 8;
  }
  while (s < end) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\' || c < 0x20) return s;
    if (c < 0x80) {
      s++;
      continue;
    }
    size_t n = ml_json_utf8_len((const unsigned char *)s, (size_t)(end - s));
    if (n == 0) return NULL;
    s += n;
  }
  return s;
}

/* A key's bit in an object's 64-bit summary of its keys (length, first
 * and last bytes): when every key's bit is new, no key repeats, and the
 * object is built without a lookup per key. */
static unsigned key_bit(const char *k, size_t n) {
  if (n == 0) return 0;
  return (unsigned)(n * 7 + (unsigned char)k[0] * 3 + (unsigned char)k[n - 1]) & 63u;
}

/* Pushes the string whose opening quote d->p is past. `key`: a NUL byte
 * is declined (jansson refuses it in keys). @return 1 (the string is the
 * text's bytes up to the quote before d->p), 2 (it was spelled with
 * escapes), or 0 to decline. */
static int tdec_string(tdec_t *d, int key) {
  const char *s = tdec_plain(d->p, d->end);
  if (!s || s >= d->end) return 0;
  if (*s == '"') { /* the common case: no escapes, push the slice */
    lua_pushlstring(d->L, d->p, (size_t)(s - d->p));
    d->p = s + 1;
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(d->L, &b);
  luaL_addlstring(&b, d->p, (size_t)(s - d->p));
  for (;;) {
    if (s >= d->end || (unsigned char)*s < 0x20) return 0;
    if (*s == '"') break;
    if (*s != '\\') {
      const char *e = tdec_plain(s, d->end);
      if (!e || e == s) return 0;
      luaL_addlstring(&b, s, (size_t)(e - s));
      s = e;
      continue;
    }
    if (++s >= d->end) return 0;
    char c = *s++;
    switch (c) {
    case '"':
    case '\\':
    case '/': luaL_addchar(&b, c); break;
    case 'b': luaL_addchar(&b, '\b'); break;
    case 'f': luaL_addchar(&b, '\f'); break;
    case 'n': luaL_addchar(&b, '\n'); break;
    case 'r': luaL_addchar(&b, '\r'); break;
    case 't': luaL_addchar(&b, '\t'); break;
    case 'u': {
      unsigned cp;
      int k = ml_json_read_u(s, d->end, &cp);
      if (k <= 0) return 0;
      s += k;
      if (cp == 0 && key) return 0;
      char u[4];
      luaL_addlstring(&b, u, ml_json_utf8_put(u, cp));
      break;
    }
    default: return 0;
    }
  }
  d->p = s + 1;
  luaL_pushresult(&b);
  return 2;
}

/* jansson's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 * An integer of up to 18 digits is exact here; longer ones are declined
 * (jansson decides between a value and "too big integer"). */
static int tdec_number(tdec_t *d) {
  const char *s = d->p, *e = d->end;
  int neg = 0;
  if (s < e && *s == '-') neg = 1, s++;
  const char *digits = s;
  if (s >= e || *s < '0' || *s > '9') return 0;
  if (*s == '0') {
    s++;
    if (s < e && *s >= '0' && *s <= '9') return 0;
  } else {
    while (s < e && *s >= '0' && *s <= '9') s++;
  }
  int real = 0;
  if (s < e && *s == '.') {
    real = 1;
    s++;
    if (s >= e || *s < '0' || *s > '9') return 0;
    while (s < e && *s >= '0' && *s <= '9') s++;
  }
  if (s < e && (*s == 'e' || *s == 'E')) {
    real = 1;
    s++;
    if (s < e && (*s == '+' || *s == '-')) s++;
    if (s >= e || *s < '0' || *s > '9') return 0;
    while (s < e && *s >= '0' && *s <= '9') s++;
  }
  if (!real) {
    size_t n = (size_t)(s - digits);
    if (n > 18) return 0;
    long long v = 0;
    for (const char *q = digits; q < s; q++) v = v * 10 + (*q - '0');
    lua_pushinteger(d->L, (lua_Integer)(neg ? -v : v));
  } else {
    char tmp[64];
    size_t n = (size_t)(s - d->p);
    if (n >= sizeof tmp) return 0;
    memcpy(tmp, d->p, n);
    tmp[n] = '\0';
    /* The C locale's decimal point is '.', as the runtime never sets
     * LC_NUMERIC; an overflow to infinity is jansson's error to give. */
    double v = strtod(tmp, NULL);
    if (!isfinite(v)) return 0;
    lua_pushnumber(d->L, (lua_Number)v);
  }
  d->p = s;
  return 1;
}

static int tdec_value(tdec_t *d, int depth);

/* After a member or element: past a comma (and the space after it), 1;
 * past the closing `close`, 0; anything else, -1. */
static int tdec_after_member(tdec_t *d, char close) {
  tdec_ws(d);
  if (d->p < d->end && *d->p == ',') {
    d->p++;
    tdec_ws(d);
    return 1;
  }
  if (d->p < d->end && *d->p == close) {
    d->p++;
    return 0;
  }
  return -1;
}

/* Members are pushed first and the table is sized once at '}'. */
static int tdec_object(tdec_t *d, int depth) {
  lua_State *L = d->L;
  int base = lua_gettop(L);
  int n = 0;
  tdec_ws(d);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    lua_createtable(L, 0, 0);
    return 1;
  }
  const int dups = d->check_dups;
  uint64_t bits = 0; /* the keys' key_bits so far */
  int maybe = 0;     /* two keys share a bit: they may be the same */
  for (;;) {
    if (!lua_checkstack(L, 4)) return 0;
    if (d->p >= d->end || *d->p != '"') return 0;
    const char *k = ++d->p;
    int got = tdec_string(d, 1);
    if (!got) return 0;
    if (dups) {
      /* An escaped key takes every bit (its plain spelling may come
       * before or after it); past 64 keys two must share one. */
      uint64_t b = got == 2 ? ~(uint64_t)0 : (uint64_t)1 << key_bit(k, (size_t)(d->p - 1 - k));
      maybe |= (bits & b) != 0;
      bits |= b;
    }
    tdec_ws(d);
    if (d->p >= d->end || *d->p != ':') return 0;
    d->p++;
    tdec_ws(d);
    if (!tdec_value(d, depth + 1)) return 0;
    n++;
    int more = tdec_after_member(d, '}');
    if (more < 0) return 0;
    if (!more) break;
  }
  lua_createtable(L, 0, n);
  /* A name already set is a duplicate: looked up only in an object whose
   * keys share a bit; where it is, the caller finds out from the text. */
  int check = maybe && !d->saw_dup;
  /* In text order, so a repeated key keeps its last value as jansson. */
  for (int i = 0; i < n; i++) {
    if (check && i > 0) {
      lua_pushvalue(L, base + 2 * i + 1);
      if (lua_rawget(L, -2) != LUA_TNIL) {
        d->saw_dup = 1;
        check = 0;
      }
      lua_pop(L, 1);
    }
    lua_pushvalue(L, base + 2 * i + 1);
    lua_pushvalue(L, base + 2 * i + 2);
    lua_rawset(L, -3);
  }
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
  return 1;
}

static int tdec_array(tdec_t *d, int depth) {
  lua_State *L = d->L;
  int base = lua_gettop(L);
  int n = 0;
  tdec_ws(d);
  if (d->p < d->end && *d->p == ']') {
    d->p++;
  } else {
    for (;;) {
      if (!lua_checkstack(L, 4)) return 0;
      if (!tdec_value(d, depth + 1)) return 0;
      n++;
      int more = tdec_after_member(d, ']');
      if (more < 0) return 0;
      if (!more) break;
    }
  }
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushvalue(L, base + i + 1);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  ml_lua_push_array_mt(L);
  lua_setmetatable(L, -2);
  if (n > 0) {
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
  }
  return 1;
}

static int tdec_word(tdec_t *d, const char *w, size_t n) {
  if ((size_t)(d->end - d->p) < n || memcmp(d->p, w, n) != 0) return 0;
  d->p += n;
  return 1;
}

static int tdec_value(tdec_t *d, int depth) {
  if (depth > DEC_MAX_DEPTH || d->p >= d->end) return 0;
  switch (*d->p) {
  case '{': d->p++; return tdec_object(d, depth);
  case '[': d->p++; return tdec_array(d, depth);
  case '"': d->p++; return tdec_string(d, 0);
  case 't':
    if (!tdec_word(d, "true", 4)) return 0;
    lua_pushboolean(d->L, 1);
    return 1;
  case 'f':
    if (!tdec_word(d, "false", 5)) return 0;
    lua_pushboolean(d->L, 0);
    return 1;
  case 'n':
    if (!tdec_word(d, "null", 4)) return 0;
    ml_lua_push_null(d->L);
    return 1;
  default: return tdec_number(d);
  }
}

int ml_lua_push_json_text_dups(lua_State *L, const char *text, size_t len,
                               int *saw_dup) {
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 8)) return 0;
  tdec_t d = {L, text, text + len, saw_dup != NULL, 0};
  tdec_ws(&d);
  if (tdec_value(&d, 0)) {
    tdec_ws(&d);
    if (d.p == d.end) {
      if (saw_dup) *saw_dup = d.saw_dup;
      return 1;
    }
  }
  lua_settop(L, top);
  return 0;
}

int ml_lua_push_json_text(lua_State *L, const char *text, size_t len) {
  return ml_lua_push_json_text_dups(L, text, len, NULL);
}

/* }====== */

/* {====== Lua -> JSON text without a jansson tree
 *
 * The same output as encoding through jansson with JSON_COMPACT (and
 * JSON_SORT_KEYS when asked): Go's json.Marshal layout. Values that need
 * jansson's own formatting or messages (reals, numeric keys, bad UTF-8,
 * functions, cycles) are declined and the caller encodes through jansson. */

typedef struct {
  const char *k;
  size_t len;
  int slot; /* stack index of the value */
} tenc_key_t;

typedef struct {
  lua_State *L;
  ml_json_buf_t *b;
  int sort;
} tenc_t;

static int tenc_value(tenc_t *e, int idx, int depth);

static int tenc_array(tenc_t *e, int idx, lua_Unsigned n, int depth) {
  if (!ml_json_buf_put(e->b, "[", 1)) return 0;
  for (lua_Unsigned i = 1; i <= n; i++) {
    if (i > 1 && !ml_json_buf_put(e->b, ",", 1)) return 0;
    lua_rawgeti(e->L, idx, (lua_Integer)i);
    int ok = tenc_value(e, lua_gettop(e->L), depth + 1);
    lua_pop(e->L, 1);
    if (!ok) return 0;
  }
  return ml_json_buf_put(e->b, "]", 1);
}

static int tenc_key_cmp(const void *a, const void *b) {
  const tenc_key_t *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int r = memcmp(x->k, y->k, n);
  if (r) return r;
  return x->len < y->len ? -1 : x->len > y->len;
}

/* Keys and values are left on the Lua stack while the object is written,
 * so sorting needs only an array of (key, stack slot). */
static int tenc_object(tenc_t *e, int idx, int depth) {
  lua_State *L = e->L;
  int base = lua_gettop(L);
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* stack: ... key value */
    if (lua_type(L, -2) != LUA_TSTRING || !lua_checkstack(L, 4)) {
      lua_settop(L, base);
      return 0;
    }
    size_t klen;
    const char *k = lua_tolstring(L, -2, &klen);
    if (memchr(k, '\0', klen) || !utf8_valid(k, klen)) {
      lua_settop(L, base);
      return 0;
    }
    n++;
    lua_pushvalue(L, -2); /* the key again, for lua_next */
  }
  /* stack: base + k1 v1 k2 v2 ... */
  tenc_key_t stackbuf[32];
  tenc_key_t *keys = n <= 32 ? stackbuf : malloc(n * sizeof *keys);
  int ok = keys != NULL;
  for (size_t i = 0; ok && i < n; i++) {
    int slot = base + 2 * (int)i + 1;
    keys[i].k = lua_tolstring(L, slot, &keys[i].len);
    keys[i].slot = slot + 1;
  }
  if (ok && e->sort && n > 1) qsort(keys, n, sizeof *keys, tenc_key_cmp);
  ok = ok && ml_json_buf_put(e->b, "{", 1);
  for (size_t i = 0; ok && i < n; i++) {
    ok = (i == 0 || ml_json_buf_put(e->b, ",", 1)) &&
         ml_json_write_string(e->b, keys[i].k, keys[i].len) && ml_json_buf_put(e->b, ":", 1) &&
         tenc_value(e, keys[i].slot, depth + 1);
  }
  ok = ok && ml_json_buf_put(e->b, "}", 1);
  if (keys != stackbuf) free(keys);
  lua_settop(L, base);
  return ok;
}

static int tenc_value(tenc_t *e, int idx, int depth) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return ml_json_buf_put(e->b, "null", 4);
  case LUA_TBOOLEAN:
    return lua_toboolean(L, idx) ? ml_json_buf_put(e->b, "true", 4)
                                 : ml_json_buf_put(e->b, "false", 5);
  case LUA_TNUMBER: {
    if (!lua_isinteger(L, idx)) return 0; /* jansson formats reals */
    char num[32];
    int n = snprintf(num, sizeof num, LUA_INTEGER_FMT,
                     (LUAI_UACINT)lua_tointeger(L, idx));
    return ml_json_buf_put(e->b, num, (size_t)n);
  }
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    return ml_json_write_string(e->b, s, n);
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) != &null_sentinel) return 0;
    return ml_json_buf_put(e->b, "null", 4);
  case LUA_TTABLE: {
    if (depth >= DEC_MAX_DEPTH || !lua_checkstack(L, 6)) return 0;
    int mark = table_mark(L, idx);
    lua_Unsigned n = 0;
    if (mark == MARK_ARRAY)
      return tenc_array(e, idx, lua_rawlen(L, idx), depth);
    if (mark == MARK_NONE && plain_is_list(L, idx, &n))
      return tenc_array(e, idx, n, depth);
    return tenc_object(e, idx, depth);
  }
  default: return 0;
  }
}

int ml_lua_encode_json_append(lua_State *L, int idx, int depth,
                              ml_json_buf_t *b) {
  int top = lua_gettop(L);
  tenc_t e = {L, b, 0};
  int ok = tenc_value(&e, lua_absindex(L, idx), depth);
  lua_settop(L, top);
  return ok;
}

int ml_lua_encode_json_text(lua_State *L, int idx, int sort_keys,
                            ml_json_buf_t *b) {
  int top = lua_gettop(L);
  tenc_t e = {L, b, sort_keys};
  b->len = 0;
  int ok = tenc_value(&e, lua_absindex(L, idx), 0);
  lua_settop(L, top);
  return ok;
}

/* }====== */
