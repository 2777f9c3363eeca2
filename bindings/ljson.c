/* moonlet.core.json: JSON text <-> Lua values with the conventions of
 * lconv.h (null sentinel, array/object marks). On every API request and
 * every in-process write, so compact encoding and decoding go straight
 * between text and Lua (lconv.c) and jansson is the path for what those
 * decline (indentation, reals, errors); encoding reuses one output buffer
 * per Lua state. */
#include <lauxlib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json_fields.h"
#include "lconv.h"

#define SCRATCH_MT "moonlet.json.scratch"

/* Output buffer reused by encode(): the direct encoder and json_dumpb
 * write into it, so a call allocates only the result string. */
typedef ml_json_buf_t scratch_t;

static int scratch_gc(lua_State *L) {
  scratch_t *s = luaL_checkudata(L, 1, SCRATCH_MT);
  free(s->buf);
  s->buf = NULL;
  s->cap = 0;
  s->len = 0;
  return 0;
}

/* Reads encode's options; raises on misuse before anything is allocated.
 * *compact_sort: -1 when indented, else whether keys are sorted. */
static size_t encode_flags(lua_State *L, int idx, int *compact_sort) {
  lua_Integer indent = 0;
  int sort = 1;
  if (!lua_isnoneornil(L, idx)) {
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "indent");
    if (!lua_isnil(L, -1)) {
      int ok;
      indent = lua_tointegerx(L, -1, &ok);
      luaL_argcheck(L, ok && indent >= 0 && indent <= 31, idx,
                    "indent must be an integer in 0..31");
    }
    lua_getfield(L, idx, "sort_keys");
    if (!lua_isnil(L, -1)) sort = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  /* Compact output matches Go's json.Marshal (no spaces after separators);
   * indented output matches json.MarshalIndent. */
  size_t flags = JSON_ENCODE_ANY | JSON_REAL_PRECISION(17);
  flags |= indent > 0 ? JSON_INDENT(indent) : JSON_COMPACT;
  if (sort) flags |= JSON_SORT_KEYS;
  *compact_sort = indent > 0 ? -1 : sort;
  return flags;
}

/* Encodes through a jansson document: indented output, and values the
 * direct encoder declines (its messages and formatting are jansson's). */
static int encode_jansson(lua_State *L, size_t flags) {
  scratch_t *s = lua_touserdata(L, lua_upvalueindex(1));
  char err[256];
  json_t *j = ml_lua_to_json(L, 1, err, sizeof err);
  if (!j) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  size_t n = json_dumpb(j, s->buf, s->cap, flags);
  if (n > s->cap) {
    size_t cap = s->cap * 2 > n ? s->cap * 2 : n;
    char *buf = realloc(s->buf, cap);
    if (!buf) {
      json_decref(j);
      lua_pushnil(L);
      lua_pushliteral(L, "out of memory");
      return 2;
    }
    s->buf = buf;
    s->cap = cap;
    n = json_dumpb(j, s->buf, s->cap, flags);
  }
  json_decref(j);
  if (n == 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "cannot encode value");
    return 2;
  }
  lua_pushlstring(L, s->buf, n);
  return 1;
}

/* Lua: text = json.encode(value [, {indent=N, sort_keys=true}])
 *      -> text | nil, err */
static int ljson_encode(lua_State *L) {
  luaL_checkany(L, 1);
  int compact_sort;
  size_t flags = encode_flags(L, 2, &compact_sort);
  scratch_t *s = lua_touserdata(L, lua_upvalueindex(1));
  if (compact_sort >= 0 && ml_lua_encode_json_text(L, 1, compact_sort, s)) {
    lua_pushlstring(L, s->buf, s->len);
    return 1;
  }
  return encode_jansson(L, flags);
}

/* FNV-1a, 64 bits: tells encodings apart without keeping their text. */
static lua_Integer fnv1a64(const char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325u;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)p[i];
    h *= 0x100000001b3u;
  }
  return (lua_Integer)h;
}

/* Lua: n = json.digest(value [, opts]) -> a 64-bit digest of
 * json.encode(value, opts) | nil, err. No Lua string is made: the kubelet
 * compares each pod's status this way on every sync. */
static int ljson_digest(lua_State *L) {
  luaL_checkany(L, 1);
  int compact_sort;
  size_t flags = encode_flags(L, 2, &compact_sort);
  scratch_t *s = lua_touserdata(L, lua_upvalueindex(1));
  if (compact_sort >= 0 && ml_lua_encode_json_text(L, 1, compact_sort, s)) {
    lua_pushinteger(L, fnv1a64(s->buf, s->len));
    return 1;
  }
  int n = encode_jansson(L, flags);
  if (n != 1) return n;
  size_t len;
  const char *text = lua_tolstring(L, -1, &len);
  lua_pushinteger(L, fnv1a64(text, len));
  return 1;
}

/* Lua: text = json._encode_jansson(value [, opts]): the jansson path alone,
 * for the specs that compare both encoders. */
static int ljson_encode_jansson(lua_State *L) {
  luaL_checkany(L, 1);
  int compact_sort;
  return encode_jansson(L, encode_flags(L, 2, &compact_sort));
}

/* Whether text nests deeper than ML_JSON_MAX_DEPTH, the encoders' bound;
 * where (line, column, bracket) when it does. jansson's own bound is 2048:
 * a document between the two decoded, then failed to encode for the store
 * with an error about cycles. */
static int too_deep(const char *text, size_t len, int *line, int *col, char *near) {
  int depth = 0, in_string = 0;
  *line = 1;
  *col = 0;
  for (size_t i = 0; i < len; i++) {
    char c = text[i];
    if (c == '\n') {
      (*line)++;
      *col = 0;
      continue;
    }
    (*col)++;
    if (in_string) {
      if (c == '\\') {
        i++; /* the escaped character */
        (*col)++;
      } else if (c == '"') {
        in_string = 0;
      }
    } else if (c == '"') {
      in_string = 1;
    } else if (c == '[' || c == '{') {
      if (++depth > ML_JSON_MAX_DEPTH) {
        *near = c;
        return 1;
      }
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return 0;
}

static int decode_jansson(lua_State *L, const char *text, size_t len) {
  int line, col;
  char near;
  if (too_deep(text, len, &line, &col, &near)) {
    lua_pushnil(L);
    lua_pushfstring(L, "line %d, column %d: maximum parsing depth reached near '%c'", line, col,
                    (int)near);
    return 2;
  }
  json_error_t e;
  json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
  if (!j) {
    lua_pushnil(L);
    lua_pushfstring(L, "line %d, column %d: %s", e.line, e.column, e.text);
    return 2;
  }
  ml_lua_push_json_steal(L, j);
  return 1;
}

/* Lua: value = json.decode(text) -> value | nil, "line L, column C: msg" */
static int ljson_decode(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  if (ml_lua_push_json_text(L, text, len)) return 1;
  return decode_jansson(L, text, len);
}

/* ml_json_fields callback: stops at the first duplicate. */
static int first_dup(void *ud, const char *path, size_t plen, int dup) {
  (void)ud;
  (void)path;
  (void)plen;
  return dup;
}

/* Lua: value, dup = json.decode_strict(text) -> value, has_duplicate |
 * nil, err. A request body: kube-apiserver's strict decoder reports a
 * member name repeated in an object; the value keeps the last. */
static int ljson_decode_strict(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  int dup = 0;
  if (!ml_lua_push_json_text_dups(L, text, len, &dup)) {
    if (decode_jansson(L, text, len) != 1) return 2;
    /* Text the direct path declines (deep, huge integers) is rare: the
     * full walk answers for it. */
    dup = ml_json_fields(text, len, first_dup, NULL) == 1;
  }
  lua_pushboolean(L, dup);
  return 2;
}

/* sigs.k8s.io/json keeps this many strict errors, each once. */
#define MAX_DUPS 100

typedef struct {
  lua_State *L;
  int dups, at, wanted, seen; /* stack slots */
  lua_Integer i, ndups;       /* members so far, distinct duplicates */
} fields_t;

static int field_seen(void *ud, const char *path, size_t plen, int dup) {
  fields_t *f = ud;
  lua_State *L = f->L;
  f->i++;
  if (dup && f->ndups < MAX_DUPS) {
    lua_pushlstring(L, path, plen);
    if (lua_rawget(L, f->seen) == LUA_TNIL) {
      lua_pushlstring(L, path, plen);
      lua_pushboolean(L, 1);
      lua_rawset(L, f->seen);
      lua_createtable(L, 2, 0);
      lua_pushlstring(L, path, plen);
      lua_rawseti(L, -2, 1);
      lua_pushinteger(L, f->i);
      lua_rawseti(L, -2, 2);
      lua_rawseti(L, f->dups, ++f->ndups);
    }
    lua_pop(L, 1);
  }
  if (f->wanted) {
    lua_pushlstring(L, path, plen);
    if (lua_rawget(L, f->wanted) != LUA_TNIL) {
      lua_pushlstring(L, path, plen);
      if (lua_rawget(L, f->at) == LUA_TNIL) {
        lua_pushlstring(L, path, plen);
        lua_pushinteger(L, f->i);
        lua_rawset(L, f->at);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* Lua: dups, at = json.fields(text [, wanted]) -> the duplicate members
 * of the text as { {path, n}, ... } (n: the member's place in text order;
 * each path once, the first 100 paths) and, for each path of the set
 * `wanted` that the text has, at[path] = the place of its first member |
 * nil, err. For strict-decoding messages in the order of the body; the
 * walk is stopped past a size bound, with what was found so far. */
static int ljson_fields(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  fields_t f = {L, 0, 0, 0, 0, 0, 0};
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    f.wanted = 2;
  }
  lua_settop(L, 2);
  lua_newtable(L);
  f.dups = lua_gettop(L);
  lua_newtable(L);
  f.at = lua_gettop(L);
  lua_newtable(L);
  f.seen = lua_gettop(L);
  int rc = ml_json_fields(text, len, field_seen, &f);
  if (rc != 0 && rc != ML_ETOOLARGE) {
    lua_pushnil(L);
    lua_pushstring(L, ml_strerror(rc));
    return 2;
  }
  lua_settop(L, f.at);
  return 2;
}

/* Lua: json._decode_jansson(text): the jansson path alone (specs). */
static int ljson_decode_jansson(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  return decode_jansson(L, text, len);
}

/* Lua: json._decode_direct(text) -> value | nil: the direct path alone,
 * nil where it declines (specs). */
static int ljson_decode_direct(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  if (ml_lua_push_json_text(L, text, len)) return 1;
  lua_pushnil(L);
  return 1;
}

static int mark(lua_State *L, void (*push_mt)(lua_State *)) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
  }
  push_mt(L);
  lua_setmetatable(L, 1);
  return 1;
}

/* Lua: t = json.array([t]) marks t (or a new table) as a JSON array. */
static int ljson_array(lua_State *L) { return mark(L, ml_lua_push_array_mt); }

/* Lua: t = json.object([t]) marks t (or a new table) as a JSON object. */
static int ljson_object(lua_State *L) { return mark(L, ml_lua_push_object_mt); }

/* Lua: json.is_array(v) -> true if v encodes as a JSON array. */
static int ljson_is_array(lua_State *L) {
  lua_pushboolean(L, ml_lua_is_array(L, 1));
  return 1;
}

/* Lua: json.is_null(v) -> true if v is json.null. */
static int ljson_is_null(lua_State *L) {
  lua_pushboolean(L, ml_lua_is_null(L, 1));
  return 1;
}

/* Lua: copy = json.copy(v) deep copy keeping array/object marks. */
static int ljson_copy(lua_State *L) {
  luaL_checkany(L, 1);
  ml_lua_copy(L, 1);
  return 1;
}

static const luaL_Reg json_funcs[] = {
    {"encode", ljson_encode},     {"decode", ljson_decode},
    {"array", ljson_array},       {"object", ljson_object},
    {"is_array", ljson_is_array}, {"is_null", ljson_is_null},
    {"copy", ljson_copy},         {"digest", ljson_digest},
    {"_encode_jansson", ljson_encode_jansson},
    {"decode_strict", ljson_decode_strict}, {"fields", ljson_fields},
    {"_decode_jansson", ljson_decode_jansson},
    {"_decode_direct", ljson_decode_direct},
    {NULL, NULL}};

int luaopen_moonlet_core_json(lua_State *L) {
  luaL_newlibtable(L, json_funcs);
  /* stack: M */
  scratch_t *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->buf = NULL;
  s->cap = 0;
  s->len = 0;
  if (luaL_newmetatable(L, SCRATCH_MT)) {
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2); /* stack: M scratch */
  luaL_setfuncs(L, json_funcs, 1);
  ml_lua_push_null(L);
  lua_setfield(L, -2, "null");
  ml_lua_push_array_mt(L);
  lua_setfield(L, -2, "array_mt");
  ml_lua_push_object_mt(L);
  lua_setfield(L, -2, "object_mt");
  return 1;
}
