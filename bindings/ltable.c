/* moonlet.core.table: the meta.k8s.io/v1 views of stored objects, built
 * straight from the store's JSON texts. Table rows: each object is decoded
 * from its text into Lua (no jansson tree in between) only to run the kind's
 * column functions; the cells are encoded here and the row's object is a
 * slice of the stored text, so a 10,000-row list never builds or encodes one
 * big Lua table. PartialObjectMetadata: the `metadata` member sliced out of
 * the text, never decoded. */
#include <lauxlib.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json_read.h"
#include "json_scan.h"
#include "lconv.h"

#define BUF_MT "moonlet.TableBuf"
#define MAX_COLS 64

/* {====== output buffer (a userdata, so a raised error cannot leak it) */

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static int buf_gc(lua_State *L) {
  buf_t *b = luaL_checkudata(L, 1, BUF_MT);
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
  return 0;
}

static int buf_tostring(lua_State *L) {
  buf_t *b = luaL_checkudata(L, 1, BUF_MT);
  lua_pushfstring(L, BUF_MT ": %p%s", (void *)b, b->p ? "" : " (closed)");
  return 1;
}

static void buf_reserve(lua_State *L, buf_t *b, size_t n) {
  if (b->cap - b->len >= n) return;
  size_t cap = b->cap ? b->cap : 65536;
  while (cap - b->len < n) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) luaL_error(L, "not enough memory");
  b->p = p;
  b->cap = cap;
}

static void buf_put(lua_State *L, buf_t *b, const char *s, size_t n) {
  buf_reserve(L, b, n);
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

#define buf_lit(L, b, s) buf_put(L, b, s, sizeof(s) - 1)

/* }====== */

/* {====== JSON text -> Lua values (lconv.h's conventions) */

typedef struct {
  lua_State *L;
  const char *p, *end;
  const char *err;
  luaL_Buffer *sb; /* scratch for strings with escapes */
} dec_t;

static void skip_ws(dec_t *d) {
  while (d->p < d->end &&
         (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
    d->p++;
}

/* Pushes the string starting after its opening quote. */
static int dec_string(dec_t *d) {
  const char *s = d->p;
  while (s < d->end && *s != '"' && *s != '\\') {
    if ((unsigned char)*s < 0x20) return d->err = "control character in string", -1;
    s++;
  }
  if (s >= d->end) return d->err = "unterminated string", -1;
  if (*s == '"') { /* the common case: no escapes, push the slice */
    lua_pushlstring(d->L, d->p, (size_t)(s - d->p));
    d->p = s + 1;
    return 0;
  }
  luaL_Buffer *b = d->sb;
  luaL_buffinit(d->L, b);
  luaL_addlstring(b, d->p, (size_t)(s - d->p));
  while (s < d->end && *s != '"') {
    if ((unsigned char)*s < 0x20) return d->err = "control character in string", -1;
    if (*s != '\\') {
      luaL_addchar(b, *s++);
      continue;
    }
    if (++s >= d->end) break;
    char c = *s++;
    switch (c) {
    case '"': case '\\': case '/': luaL_addchar(b, c); break;
    case 'b': luaL_addchar(b, '\b'); break;
    case 'f': luaL_addchar(b, '\f'); break;
    case 'n': luaL_addchar(b, '\n'); break;
    case 'r': luaL_addchar(b, '\r'); break;
    case 't': luaL_addchar(b, '\t'); break;
    case 'u': {
      unsigned cp;
      int k = ml_json_read_u(s, d->end, &cp);
      if (k == 0) return d->err = "bad \\u escape", -1;
      if (k < 0) return d->err = "invalid surrogate pair", -1;
      s += k;
      if (cp == 0) return d->err = "\\u0000 is not allowed", -1;
      char u[4];
      luaL_addlstring(b, u, ml_json_utf8_put(u, cp));
      break;
    }
    default: return d->err = "bad escape", -1;
    }
  }
  if (s >= d->end) return d->err = "unterminated string", -1;
  d->p = s + 1;
  luaL_pushresult(b);
  return 0;
}

static int dec_number(dec_t *d) {
  const char *s = d->p;
  if (s < d->end && *s == '-') s++;
  while (s < d->end && ((*s >= '0' && *s <= '9') || *s == '.' || *s == 'e' ||
                        *s == 'E' || *s == '+' || *s == '-'))
    s++;
  char tmp[64];
  size_t n = (size_t)(s - d->p);
  if (n == 0 || n >= sizeof tmp) return d->err = "bad number", -1;
  memcpy(tmp, d->p, n);
  tmp[n] = '\0';
  if (lua_stringtonumber(d->L, tmp) != n + 1) return d->err = "bad number", -1;
  d->p = s;
  return 0;
}

static int dec_value(dec_t *d, int depth);

/* `meta` (top level only) receives the span of the "metadata" member. */
static int dec_object(dec_t *d, int depth, const char **meta, size_t *meta_len) {
  lua_State *L = d->L;
  lua_createtable(L, 0, 4);
  skip_ws(d);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    return 0;
  }
  for (;;) {
    skip_ws(d);
    if (d->p >= d->end || *d->p != '"') return d->err = "expected a key", -1;
    d->p++;
    if (dec_string(d) < 0) return -1;
    skip_ws(d);
    if (d->p >= d->end || *d->p != ':') return d->err = "expected ':'", -1;
    d->p++;
    skip_ws(d);
    const char *vstart = d->p;
    if (dec_value(d, depth + 1) < 0) return -1;
    if (meta) {
      size_t kl;
      const char *k = lua_tolstring(L, -2, &kl);
      if (kl == 8 && memcmp(k, "metadata", 8) == 0) {
        *meta = vstart;
        *meta_len = (size_t)(d->p - vstart);
      }
    }
    lua_rawset(L, -3);
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      continue;
    }
    if (d->p < d->end && *d->p == '}') {
      d->p++;
      return 0;
    }
    return d->err = "expected ',' or '}'", -1;
  }
}

static int dec_array(dec_t *d, int depth) {
  lua_State *L = d->L;
  lua_createtable(L, 4, 0);
  ml_lua_push_array_mt(L);
  lua_setmetatable(L, -2);
  skip_ws(d);
  if (d->p < d->end && *d->p == ']') {
    d->p++;
    return 0;
  }
  for (lua_Integer i = 1;; i++) {
    skip_ws(d);
    if (dec_value(d, depth + 1) < 0) return -1;
    lua_rawseti(L, -2, i);
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      continue;
    }
    if (d->p < d->end && *d->p == ']') {
      d->p++;
      return 0;
    }
    return d->err = "expected ',' or ']'", -1;
  }
}

static bool word(dec_t *d, const char *w, size_t n) {
  if ((size_t)(d->end - d->p) < n || memcmp(d->p, w, n) != 0) return false;
  d->p += n;
  return true;
}

static int dec_value(dec_t *d, int depth) {
  if (depth > ML_JSON_MAX_DEPTH) return d->err = "nesting too deep", -1;
  luaL_checkstack(d->L, 4, "JSON nesting too deep");
  if (d->p >= d->end) return d->err = "unexpected end of text", -1;
  switch (*d->p) {
  case '{': d->p++; return dec_object(d, depth, NULL, NULL);
  case '[': d->p++; return dec_array(d, depth);
  case '"': d->p++; return dec_string(d);
  case 't':
    if (!word(d, "true", 4)) break;
    lua_pushboolean(d->L, 1);
    return 0;
  case 'f':
    if (!word(d, "false", 5)) break;
    lua_pushboolean(d->L, 0);
    return 0;
  case 'n':
    if (!word(d, "null", 4)) break;
    ml_lua_push_null(d->L);
    return 0;
  default:
    if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9')) return dec_number(d);
  }
  return d->err = "unexpected character", -1;
}

/* }====== */

/* {====== cells */

static bool utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    size_t k;
    if (c < 0x80) k = 0;
    else if (c >= 0xC2 && c <= 0xDF) k = 1;
    else if (c >= 0xE0 && c <= 0xEF) k = 2;
    else if (c >= 0xF0 && c <= 0xF4) k = 3;
    else return false;
    if (k && i + k >= n) return false;
    for (size_t j = 1; j <= k; j++)
      if ((s[i + j] & 0xC0) != 0x80) return false;
    if (k == 2) {
      unsigned cp = ((c & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6);
      if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    } else if (k == 3) {
      unsigned cp = ((c & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12);
      if (cp < 0x10000 || cp > 0x10FFFF) return false;
    }
    i += k + 1;
  }
  return true;
}

static void put_string(lua_State *L, buf_t *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  buf_lit(L, b, "\"");
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    buf_put(L, b, s + run, i - run);
    run = i + 1;
    char e[6] = {'\\', 0, 0, 0, 0, 0};
    size_t en = 2;
    switch (c) {
    case '"': e[1] = '"'; break;
    case '\\': e[1] = '\\'; break;
    case '\b': e[1] = 'b'; break;
    case '\f': e[1] = 'f'; break;
    case '\n': e[1] = 'n'; break;
    case '\r': e[1] = 'r'; break;
    case '\t': e[1] = 't'; break;
    default:
      e[1] = 'u';
      e[2] = '0';
      e[3] = '0';
      e[4] = hex[c >> 4];
      e[5] = hex[c & 15];
      en = 6;
    }
    buf_put(L, b, e, en);
  }
  buf_put(L, b, s + run, n - run);
  buf_lit(L, b, "\"");
}

/* Encodes the cell value on top of the stack (popped). Values other than
 * strings, integers and booleans go through jansson, as json.encode would. */
static void put_cell(lua_State *L, buf_t *b, bool integer_col) {
  char num[32];
  switch (lua_type(L, -1)) {
  case LUA_TNIL:
    if (integer_col) buf_lit(L, b, "0");
    else buf_lit(L, b, "\"<none>\"");
    break;
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, -1)) buf_lit(L, b, "true");
    else buf_lit(L, b, "false");
    break;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    if (utf8_valid((const unsigned char *)s, n)) put_string(L, b, s, n);
    else buf_lit(L, b, "\"<error>\"");
    break;
  }
  case LUA_TNUMBER:
    if (lua_isinteger(L, -1)) {
      int n = snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, -1));
      buf_put(L, b, num, (size_t)n);
      break;
    }
    /* fall through */
  default: {
    char err[128];
    json_t *j = ml_lua_to_json(L, -1, err, sizeof err);
    char *text = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT |
                                       JSON_SORT_KEYS | JSON_REAL_PRECISION(17))
                   : NULL;
    json_decref(j);
    if (text) {
      size_t n = strlen(text);
      if (b->cap - b->len < n) {
        /* buf_put may raise: do not hold jansson's string across it */
        lua_pushstring(L, text);
        free(text);
        const char *s = lua_tolstring(L, -1, &n);
        buf_put(L, b, s, n);
        lua_pop(L, 1);
      } else {
        buf_put(L, b, text, n);
        free(text);
      }
    } else {
      buf_lit(L, b, "\"<error>\"");
    }
  }
  }
  lua_pop(L, 1);
}

/* }====== */

/* Lua: rows_json, last_rv = table.rows(items_json, columns, now, include)
 *      -> text | nil, err
 * items_json is a JSON array of objects (the store's list text); columns a
 * list of { value = fn(obj, now), type = "integer"|... }; include is
 * "Object", "None" or anything else for PartialObjectMetadata. A column
 * function that raises prints "<error>"; nil prints "<none>" (0 for an
 * integer column). last_rv is the last object's metadata.resourceVersion. */
static int ltable_rows(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  luaL_checktype(L, 2, LUA_TTABLE);
  const char *include = luaL_optstring(L, 4, "Metadata");
  bool whole = strcmp(include, "Object") == 0;
  bool none = strcmp(include, "None") == 0;
  int ncols = (int)luaL_len(L, 2);
  luaL_argcheck(L, ncols <= MAX_COLS, 2, "too many columns");
  lua_settop(L, 4);
  luaL_checkstack(L, ncols + 16, "too many columns");
  /* Stack: 5 = the output buffer, 6.. = the columns' value functions. */
  buf_t *b = lua_newuserdatauv(L, sizeof *b, 0);
  *b = (buf_t){0};
  luaL_setmetatable(L, BUF_MT);
  bool integer_col[MAX_COLS];
  int fn0 = lua_gettop(L) + 1;
  for (int i = 0; i < ncols; i++) {
    lua_rawgeti(L, 2, i + 1);
    luaL_argcheck(L, lua_istable(L, -1), 2, "each column must be a table");
    lua_getfield(L, -1, "type");
    const char *t = lua_tostring(L, -1);
    integer_col[i] = t && strcmp(t, "integer") == 0;
    lua_pop(L, 1);
    lua_getfield(L, -1, "value");
    lua_remove(L, -2);
  }
  int base = lua_gettop(L);
  luaL_Buffer sb;
  dec_t d = {L, text, text + len, NULL, &sb};
  skip_ws(&d);
  if (d.p >= d.end || *d.p != '[') {
    d.err = "expected '['";
    goto fail;
  }
  d.p++;
  /* Rows are about the size of the objects: grow once, not by doubling. */
  buf_reserve(L, b, len + 1024);
  buf_lit(L, b, "[");
  const char *last_rv = NULL;
  size_t last_rv_len = 0;
  lua_pushnil(L); /* base + 1: the last resourceVersion (anchors last_rv) */
  for (size_t row = 0;; row++) {
    skip_ws(&d);
    if (d.p < d.end && *d.p == ']' && row == 0) break;
    const char *ostart = d.p, *meta = NULL;
    size_t meta_len = 0;
    if (d.p >= d.end || *d.p != '{') {
      d.err = "each item must be an object";
      goto fail;
    }
    d.p++;
    if (dec_object(&d, 1, &meta, &meta_len) < 0) goto fail;
    size_t olen = (size_t)(d.p - ostart);
    int obj = lua_gettop(L);
    if (row) buf_lit(L, b, ",");
    buf_lit(L, b, "{\"cells\":[");
    for (int i = 0; i < ncols; i++) {
      if (i) buf_lit(L, b, ",");
      lua_pushvalue(L, fn0 + i);
      lua_pushvalue(L, obj);
      lua_pushvalue(L, 3);
      if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        lua_pushliteral(L, "<error>");
      }
      put_cell(L, b, integer_col[i]);
    }
    buf_lit(L, b, "]");
    if (whole) {
      buf_lit(L, b, ",\"object\":");
      buf_put(L, b, ostart, olen);
    } else if (!none) {
      buf_lit(L, b, ",\"object\":{\"apiVersion\":\"meta.k8s.io/v1\",\"kind\":"
                    "\"PartialObjectMetadata\"");
      if (meta) {
        buf_lit(L, b, ",\"metadata\":");
        buf_put(L, b, meta, meta_len);
      }
      buf_lit(L, b, "}");
    }
    buf_lit(L, b, "}");
    lua_getfield(L, obj, "metadata");
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "resourceVersion");
      lua_replace(L, base + 1);
      last_rv = lua_tolstring(L, base + 1, &last_rv_len);
    }
    lua_settop(L, base + 1);
    skip_ws(&d);
    if (d.p < d.end && *d.p == ',') {
      d.p++;
      continue;
    }
    if (d.p < d.end && *d.p == ']') break;
    d.err = "expected ',' or ']'";
    goto fail;
  }
  buf_lit(L, b, "]");
  lua_pushlstring(L, b->p, b->len);
  if (last_rv) lua_pushlstring(L, last_rv, last_rv_len);
  else lua_pushnil(L);
  return 2;
fail:
  lua_pushnil(L);
  lua_pushfstring(L, "offset %d: %s", (int)(d.p - text), d.err);
  return 2;
}

/* Lua: value = table.decode(text) -> value | nil, err
 * The decoder rows() uses, for tests: same Lua values as json.decode. */
static int ltable_decode(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  luaL_Buffer sb;
  dec_t d = {L, text, text + len, NULL, &sb};
  skip_ws(&d);
  if (dec_value(&d, 0) == 0) {
    skip_ws(&d);
    if (d.p == d.end) return 1;
    d.err = "trailing characters";
  }
  lua_pushnil(L);
  lua_pushfstring(L, "offset %d: %s", (int)(d.p - text), d.err);
  return 2;
}

/* {====== PartialObjectMetadata */

#define PARTIAL_HEAD "{\"kind\":\"PartialObjectMetadata\",\"apiVersion\":\"meta.k8s.io/v1\""

/* Adds the PartialObjectMetadata of the object text s[0..n) to sb.
 * @return NULL or what is wrong with the text */
static const char *add_partial(luaL_Buffer *sb, const char *s, size_t n) {
  size_t off = 0, len = 0;
  int rc = ml_json_member(s, n, "metadata", &off, &len);
  if (rc != 0 && rc != ML_ENOTFOUND) return "not a JSON object";
  luaL_addstring(sb, PARTIAL_HEAD);
  if (rc == 0) {
    luaL_addstring(sb, ",\"metadata\":");
    luaL_addlstring(sb, s + off, len);
  }
  luaL_addchar(sb, '}');
  return NULL;
}

/* Lua: text = table.partial(object_text) -> text | nil, err
 * The object as a meta.k8s.io/v1 PartialObjectMetadata. */
static int ltable_partial(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer sb;
  luaL_buffinitsize(L, &sb, n < 256 ? n + 64 : n / 2);
  const char *err = add_partial(&sb, s, n);
  if (err) {
    luaL_pushresult(&sb);
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  luaL_pushresult(&sb);
  return 1;
}

/* Lua: text = table.partial_items(items_text) -> text | nil, err
 * A JSON array of objects (the store's list text) as the array of their
 * PartialObjectMetadata. */
static int ltable_partial_items(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  const char *p = s, *end = s + n, *err = NULL;
  luaL_Buffer sb;
  luaL_buffinitsize(L, &sb, n / 2 + 16);
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) p++;
  if (p >= end || *p++ != '[') {
    err = "expected '['";
    goto done;
  }
  luaL_addchar(&sb, '[');
  for (size_t i = 0;; i++) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) p++;
    if (i == 0 && p < end && *p == ']') break;
    const char *e = ml_json_skip(p, end);
    if (!e) {
      err = "malformed item";
      goto done;
    }
    if (i) luaL_addchar(&sb, ',');
    if ((err = add_partial(&sb, p, (size_t)(e - p))) != NULL) goto done;
    p = e;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) p++;
    if (p < end && *p == ',') {
      p++;
      continue;
    }
    if (p < end && *p == ']') break;
    err = "expected ',' or ']'";
    goto done;
  }
  luaL_addchar(&sb, ']');
done:
  luaL_pushresult(&sb);
  if (err) {
    lua_pushnil(L);
    lua_pushfstring(L, "offset %d: %s", (int)(p - s), err);
    return 2;
  }
  return 1;
}

/* }====== */

static const luaL_Reg table_funcs[] = {
    {"rows", ltable_rows},
    {"decode", ltable_decode},
    {"partial", ltable_partial},
    {"partial_items", ltable_partial_items},
    {NULL, NULL}};

static const luaL_Reg buf_metameth[] = {{"__gc", buf_gc},
                                        {"__close", buf_gc},
                                        {"__tostring", buf_tostring},
                                        {NULL, NULL}};

int luaopen_moonlet_core_table(lua_State *L) {
  luaL_newmetatable(L, BUF_MT);
  luaL_setfuncs(L, buf_metameth, 0);
  lua_pop(L, 1);
  luaL_newlib(L, table_funcs);
  return 1;
}
