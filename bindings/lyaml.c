/* moonlet.core.yaml: YAML manifests <-> Lua values through the core codec
 * (core/yaml_codec.c: libyaml + jansson, Kubernetes' scalar rules) and the
 * conversions of lconv.h. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "lconv.h"
#include "yaml_codec.h"

/* Pushes doc i of docs and releases it there, so a raise while pushing a
 * later document cannot leak the ones already taken. */
static void push_doc_value(lua_State *L, ml_yaml_doc_t *d) {
  json_t *v = d->value;
  d->value = NULL;
  ml_lua_push_json_steal(L, v);
}

/* Parses on a userdata box whose __gc frees the documents, so a memory
 * error while building Lua values does not leak them. */
#define DOCS_MT "moonlet.yaml.docs"

static int docs_gc(lua_State *L) {
  ml_yaml_docs_t *docs = luaL_checkudata(L, 1, DOCS_MT);
  ml_yaml_docs_free(docs);
  return 0;
}

static ml_yaml_docs_t *parse(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  ml_yaml_docs_t *docs = lua_newuserdatauv(L, sizeof *docs, 0);
  docs->docs = NULL;
  docs->n = 0;
  luaL_setmetatable(L, DOCS_MT);
  if (ml_yaml_to_json(text, len, docs) < 0) {
    ml_yaml_docs_free(docs);
    luaL_error(L, "out of memory");
  }
  return docs;
}

/* Pushes the document's duplicate keys as a list of go-yaml's lines
 * ("line 5: key \"name\" already set in map"). @return 1, or 0 (nothing
 * pushed) when it has none */
static int push_dups(lua_State *L, const ml_yaml_doc_t *d) {
  if (!d->dups) return 0;
  lua_newtable(L);
  lua_Integer i = 0;
  for (const char *s = d->dups;;) {
    const char *nl = strchr(s, '\n');
    size_t n = nl ? (size_t)(nl - s) : strlen(s);
    lua_pushlstring(L, s, n);
    lua_rawseti(L, -2, ++i);
    if (!nl) break;
    s = nl + 1;
  }
  return 1;
}

/* Lua: value = yaml.decode(text) -> value, nil, dups | nil, err (first
 * document; an empty stream is json.null). `dups`: the keys repeated in
 * a mapping (see push_dups), nil when none; the value keeps the last. */
static int lyaml_decode(lua_State *L) {
  ml_yaml_docs_t *docs = parse(L);
  if (docs->n == 0) {
    ml_lua_push_null(L);
    return 1;
  }
  if (docs->docs[0].err) {
    lua_pushnil(L);
    lua_pushstring(L, docs->docs[0].err);
    return 2;
  }
  push_doc_value(L, &docs->docs[0]);
  if (!docs->docs[0].dups) return 1;
  lua_pushnil(L);
  push_dups(L, &docs->docs[0]);
  return 3;
}

/* Lua: yaml.decode_all(text) -> { {value=v, line=N [, dups=list]} |
 *      {err=msg, line=N, err_line=L, err_column=C}, ... } one entry per
 *      document in order */
static int lyaml_decode_all(lua_State *L) {
  ml_yaml_docs_t *docs = parse(L);
  lua_createtable(L, (int)docs->n, 0); /* stack: text docs list */
  for (size_t i = 0; i < docs->n; i++) {
    ml_yaml_doc_t *d = &docs->docs[i];
    lua_createtable(L, 0, 4);
    if (d->err) {
      lua_pushstring(L, d->err);
      lua_setfield(L, -2, "err");
      if (d->err_line) {
        lua_pushinteger(L, d->err_line);
        lua_setfield(L, -2, "err_line");
        lua_pushinteger(L, d->err_column);
        lua_setfield(L, -2, "err_column");
      }
    } else {
      push_doc_value(L, d);
      lua_setfield(L, -2, "value");
      if (push_dups(L, d)) lua_setfield(L, -2, "dups");
    }
    lua_pushinteger(L, d->line);
    lua_setfield(L, -2, "line");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

#define TEXT_MT "moonlet.yaml.text"

/* Holds the emitted text until Lua has its copy; __gc frees it if pushing
 * raises. */
static int text_gc(lua_State *L) {
  char **box = luaL_checkudata(L, 1, TEXT_MT);
  free(*box);
  *box = NULL;
  return 0;
}

/* Lua: text = yaml.encode(value) -> text | nil, err (kubectl -o yaml) */
static int lyaml_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  char **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, TEXT_MT); /* stack: value box */
  char err[256];
  json_t *j = ml_lua_to_json(L, 1, err, sizeof err);
  if (!j) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  size_t len;
  *box = ml_json_to_yaml(j, &len, err, sizeof err);
  json_decref(j);
  if (!*box) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushlstring(L, *box, len);
  free(*box);
  *box = NULL;
  return 1;
}

static const luaL_Reg yaml_funcs[] = {{"decode", lyaml_decode},
                                      {"decode_all", lyaml_decode_all},
                                      {"encode", lyaml_encode},
                                      {NULL, NULL}};

int luaopen_moonlet_core_yaml(lua_State *L) {
  if (luaL_newmetatable(L, DOCS_MT)) {
    lua_pushcfunction(L, docs_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, TEXT_MT)) {
    lua_pushcfunction(L, text_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, yaml_funcs);
  return 1;
}
