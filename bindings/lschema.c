/* moonlet.core.schema: the structural check of every create and update
 * (lua/moonlet/api/schema.lua describes the descriptors): a wrong JSON type
 * gets encoding/json's message, and unknown fields are collected for
 * fieldValidation. The walk runs here, over the decoded Lua object and the
 * kind's descriptor tables, because in Lua it was a tenth of a create. */
#include <lauxlib.h>
#include <math.h>
#include <string.h>

#include "lconv.h"

/* Objects decode at most 512 deep; past this the walk stops descending
 * rather than risk the C stack. */
#define MAX_DEPTH 600

typedef struct {
  lua_State *L;
  /* Stack slots of the result lists, nil until their first entry (most
   * objects have none: no table made per check). */
  int unknown, unknown_at, empty_at;
  int want_empty;          /* collect empty members (the caller asked) */
  int saw_null;            /* a null anywhere (in a patch: a deletion) */
  int have_error;
  int reserved; /* stack height lua_checkstack has made room for */
  char via[MAX_DEPTH + 1];        /* 'f' struct field, 'm' map key, 'l' list */
  int key[MAX_DEPTH + 1];         /* stack index of the key ('f', 'm') */
  lua_Integer index[MAX_DEPTH + 1]; /* 1-based list index ('l') */
} walk_t;

/* Adds the key at stack index k as Lua's `..` would spell it. */
static void add_key(luaL_Buffer *b, lua_State *L, int k) {
  luaL_tolstring(L, k, NULL);
  luaL_addvalue(b);
}

/* The JSON path of depth n ("spec.containers[0].name"), pushed. */
static void push_json_path(walk_t *w, int n) {
  lua_State *L = w->L;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (w->via[i] == 'l') {
      lua_pushfstring(L, "[%I]", (LUAI_UACINT)(w->index[i] - 1));
      luaL_addvalue(&b);
    } else {
      /* A struct field starts the path bare; anything else adds a dot. */
      if (!(w->via[i] == 'f' && luaL_bufflen(&b) == 0)) luaL_addchar(&b, '.');
      add_key(&b, L, w->key[i]);
    }
  }
  luaL_pushresult(&b);
}

/* The Go field path of depth n: struct fields only, dot-separated. */
static void push_go_path(walk_t *w, int n) {
  lua_State *L = w->L;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int first = 1;
  for (int i = 1; i <= n; i++) {
    if (w->via[i] != 'f') continue;
    if (!first) luaL_addchar(&b, '.');
    add_key(&b, L, w->key[i]);
    first = 0;
  }
  luaL_pushresult(&b);
}

static const char *lua_json_type(lua_State *L, int v) {
  switch (lua_type(L, v)) {
  case LUA_TSTRING: return "string";
  case LUA_TNUMBER: return "number";
  case LUA_TBOOLEAN: return "bool";
  case LUA_TTABLE: return ml_lua_is_array(L, v) ? "array" : "object";
  default: return "null";
  }
}

/* An integer, or a float equal to its floor (infinities included), as
 * the Lua check `v == math.floor(v)` had it. */
static int is_integral(lua_State *L, int v) {
  if (lua_isinteger(L, v)) return 1;
  if (lua_type(L, v) != LUA_TNUMBER) return 0;
  lua_Number x = lua_tonumber(L, v);
  return x == floor(x);
}

static int type_ok(lua_State *L, int v, const char *t) {
  int lt = lua_type(L, v);
  switch (t[0]) {
  case 's':
    if (!strcmp(t, "string")) return lt == LUA_TSTRING;
    if (!strcmp(t, "struct")) return lt == LUA_TTABLE && !ml_lua_is_array(L, v);
    return 0;
  case 't': return !strcmp(t, "time") && lt == LUA_TSTRING;
  case 'i':
    if (!strcmp(t, "integer")) return is_integral(L, v);
    if (!strcmp(t, "intstr")) return lt == LUA_TSTRING || lt == LUA_TNUMBER;
    return 0;
  case 'n': return !strcmp(t, "number") && lt == LUA_TNUMBER;
  case 'b': return !strcmp(t, "boolean") && lt == LUA_TBOOLEAN;
  case 'q': return !strcmp(t, "quantity") && (lt == LUA_TSTRING || lt == LUA_TNUMBER);
  case 'm': return !strcmp(t, "map") && lt == LUA_TTABLE && !ml_lua_is_array(L, v);
  case 'l':
    if (strcmp(t, "list") || lt != LUA_TTABLE) return 0;
    if (ml_lua_is_array(L, v)) return 1;
    lua_pushnil(L);
    if (!lua_next(L, v)) return 1; /* empty: a list as well */
    lua_pop(L, 2);
    return 0;
  default: return 0;
  }
}

static int walk(walk_t *w, int v, int d, int strct, int n);

/* Walks each value of the table at v against descriptor `of`; `strings`:
 * `of` is a plain string, so a string value needs no walk (labels,
 * annotations, ConfigMap data: most values of most objects). */
static void walk_map(walk_t *w, int v, int of, int strct, int n, int strings) {
  lua_State *L = w->L;
  int m = n + 1;
  lua_pushnil(L);
  while (lua_next(L, v)) {
    if (strings && lua_type(L, -1) == LUA_TSTRING) {
      lua_pop(L, 1);
      continue;
    }
    w->via[m] = 'm';
    w->key[m] = lua_gettop(L) - 1;
    walk(w, lua_gettop(L), of, strct, m);
    lua_pop(L, 1);
  }
}

static void walk_list(walk_t *w, int v, int of, int strct, int n, int strings) {
  lua_State *L = w->L;
  int m = n + 1;
  for (lua_Integer i = 1;; i++) {
    int lt = lua_geti(L, v, i);
    if (lt == LUA_TNIL) {
      lua_pop(L, 1);
      break;
    }
    if (strings && lt == LUA_TSTRING) {
      lua_pop(L, 1);
      continue;
    }
    w->via[m] = 'l';
    w->index[m] = i;
    walk(w, lua_gettop(L), of, strct, m);
    lua_pop(L, 1);
  }
}

/* The list in stack slot `slot`, made on first use. */
static void ensure_list(lua_State *L, int slot) {
  if (lua_isnil(L, slot)) {
    lua_newtable(L);
    lua_replace(L, slot);
  }
}

/* Appends {table at v, key} to the list in stack slot `list`. */
static void add_at(lua_State *L, int list, int v, int key) {
  ensure_list(L, list);
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, v);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, key);
  lua_rawseti(L, -2, 2);
  lua_rawseti(L, list, (lua_Integer)lua_rawlen(L, list) + 1);
}

/* Records the unknown member `key` (stack index) of the table at v. */
static void add_unknown(walk_t *w, int v, int key, int m) {
  lua_State *L = w->L;
  w->via[m] = 'f';
  w->key[m] = key;
  ensure_list(L, w->unknown);
  push_json_path(w, m);
  lua_rawseti(L, w->unknown, (lua_Integer)lua_rawlen(L, w->unknown) + 1);
  add_at(L, w->unknown_at, v, key);
}

static void walk_struct(walk_t *w, int v, int d, int n) {
  lua_State *L = w->L;
  int m = n + 1;
  lua_getfield(L, d, "fields");
  int fields = lua_gettop(L);
  lua_getfield(L, d, "name");
  int name = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, v)) {
    int key = lua_gettop(L) - 1, val = lua_gettop(L);
    lua_pushvalue(L, key);
    if (lua_type(L, fields) != LUA_TTABLE || lua_rawget(L, fields) == LUA_TNIL) {
      lua_pop(L, 1);
      add_unknown(w, v, key, m);
    } else {
      w->via[m] = 'f';
      w->key[m] = key;
      /* Go's encoding/json leaves an empty map or slice out of what the
       * API server stores and answers (omitempty), and null decodes to
       * one (or to a nil pointer, a zero value): `labels: {}`, `args: []`
       * and `labels: null` read back as absent there. Noted to be
       * dropped; in a patch, where null deletes, they only tell the
       * caller to walk the patched object. */
      int null = ml_lua_is_null(L, val);
      w->saw_null |= null;
      int drop = null || walk(w, val, lua_gettop(L), name, m);
      if (drop && w->want_empty) add_at(L, w->empty_at, v, key);
      lua_pop(L, 1);
    }
    lua_pop(L, 1); /* the value */
  }
  lua_pop(L, 2);
}

/* @return 1 when v is an empty map or list whose descriptor does not say
 * `keep_empty` (a Go field without omitempty). */
static int walk(walk_t *w, int v, int d, int strct, int n) {
  lua_State *L = w->L;
  if (ml_lua_is_null(L, v)) {
    w->saw_null = 1;
    return 0;
  }
  if (n >= MAX_DEPTH || lua_type(L, d) != LUA_TTABLE) return 0;
  /* One check per 64 slots: luaL_checkstack at every value cost a fifth
   * of the walk. A level uses at most 12. */
  if (lua_gettop(L) + 12 > w->reserved) {
    luaL_checkstack(L, 64, "schema walk");
    w->reserved = lua_gettop(L) + 64;
  }
  lua_getfield(L, d, "t");
  const char *t = lua_tostring(L, -1);
  if (!t || !strcmp(t, "any")) {
    lua_pop(L, 1);
    return 0;
  }
  if (!type_ok(L, v, t)) {
    if (!w->have_error) {
      w->have_error = 1;
      lua_getfield(L, d, "go");
      push_go_path(w, n);
      const char *s = lua_tostring(L, strct);
      lua_pushfstring(L, "json: cannot unmarshal %s into Go struct field %s.%s of type %s",
                      lua_json_type(L, v), s ? s : "nil", lua_tostring(L, -1),
                      lua_tostring(L, -2) ? lua_tostring(L, -2) : "nil");
      /* stack: t go gopath msg -> keep msg at the error slot */
      lua_replace(L, 4);
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
    return 0;
  }
  int empty = 0;
  if (t[0] == 'm' || (t[0] == 'l' && t[1] == 'i')) {
    int list = t[0] == 'l';
    lua_pushnil(L);
    if (lua_next(L, v)) {
      lua_pop(L, 2);
    } else {
      empty = lua_getfield(L, d, "keep_empty") == LUA_TNIL;
      lua_pop(L, 1);
    }
    lua_getfield(L, d, "of");
    int of = lua_gettop(L);
    lua_getfield(L, of, "t");
    const char *ot = lua_tostring(L, -1);
    int any = ot && !strcmp(ot, "any");
    int strings = ot && !strcmp(ot, "string");
    lua_pop(L, 1);
    if (!any) {
      if (list) walk_list(w, v, of, strct, n, strings);
      else walk_map(w, v, of, strct, n, strings);
    }
    lua_pop(L, 1);
  } else if (!strcmp(t, "struct")) {
    walk_struct(w, v, d, n);
  }
  lua_pop(L, 1);
  return empty;
}

/* Lua: check(obj, descriptor [, want_empty]) -> type_error | nil,
 * saw_null, unknown, unknown_at, empty_at. `unknown` lists each unknown
 * field's JSON path and `unknown_at` its {table, key} (in table order: the
 * caller sorts the paths); with want_empty, `empty_at` lists {table, key}
 * of each struct field holding an empty map or list, or null. A list with
 * nothing in it is nil. The first type error, in table order, is the one
 * reported. */
static int lschema_check(lua_State *L) {
  luaL_checktype(L, 2, LUA_TTABLE);
  int want_empty = lua_toboolean(L, 3);
  lua_settop(L, 3);
  lua_pushnil(L);             /* 4: the type error */
  lua_getfield(L, 2, "name"); /* 5: the top struct's name */
  lua_pushnil(L);             /* 6: unknown */
  lua_pushnil(L);             /* 7: unknown_at */
  lua_pushnil(L);             /* 8: empty_at */
  walk_t w = {.L = L, .unknown = 6, .unknown_at = 7, .empty_at = 8,
              .want_empty = want_empty};
  walk(&w, 1, 2, 5, 0);
  lua_settop(L, 8);
  lua_pushboolean(L, w.saw_null);
  lua_replace(L, 5);
  return 5;
}

static const luaL_Reg schema_funcs[] = {{"check", lschema_check}, {NULL, NULL}};

int luaopen_moonlet_core_schema(lua_State *L) {
  luaL_newlib(L, schema_funcs);
  return 1;
}
