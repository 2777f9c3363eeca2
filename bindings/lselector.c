/* moonlet.core.selector: label selectors, field selectors and the label
 * content checks of core/selector.h and core/field_selector.h as Lua
 * userdata. The public facade is lua/moonlet/selector.lua; field errors
 * become plain tables {type, field, value, detail} that moonlet.validation
 * wraps. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "field_selector.h"
#include "lconv.h"
#include "runtime.h"
#include "selector.h"

#define SELECTOR_MT "moonlet.Selector"
#define FIELDSEL_MT "moonlet.FieldSelector"
#define ERRBOX_MT "moonlet.FieldErrors"

typedef struct {
  ml_selector_t *sel; /* NULL once closed */
} sel_ud_t;

typedef struct {
  ml_fieldsel_t *fs; /* NULL once closed */
} fs_ud_t;

/* {====================================================== helpers */

/* A userdata box for C-owned memory, so a Lua error while pushing results
 * (out of memory) never leaks it: __gc frees whatever is still inside. */
typedef struct {
  ml_field_errors_t errs;
  json_t *json;
  char *str;
} box_t;

static box_t *new_box(lua_State *L) {
  box_t *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, ERRBOX_MT);
  return b;
}

static void box_clear(box_t *b) {
  ml_field_errors_free(&b->errs);
  if (b->json) json_decref(b->json);
  b->json = NULL;
  free(b->str);
  b->str = NULL;
}

static int box_gc(lua_State *L) {
  box_clear(luaL_checkudata(L, 1, ERRBOX_MT));
  return 0;
}

/* Pushes the box's string, then frees it. */
static void push_box_str(lua_State *L, box_t *b) {
  lua_pushstring(L, b->str);
  free(b->str);
  b->str = NULL;
}

static void push_errors(lua_State *L, const ml_field_errors_t *errs) {
  lua_createtable(L, (int)errs->n, 0);
  for (size_t i = 0; i < errs->n; i++) {
    const ml_field_error_t *e = &errs->v[i];
    lua_createtable(L, 0, 4);
    lua_pushstring(L, e->type);
    lua_setfield(L, -2, "type");
    lua_pushstring(L, e->field);
    lua_setfield(L, -2, "field");
    if (e->value) {
      ml_lua_push_json(L, e->value);
      lua_setfield(L, -2, "value");
    }
    lua_pushstring(L, e->detail ? e->detail : "");
    lua_setfield(L, -2, "detail");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

static void push_strlist_cb(void *ud, const char *msg) {
  lua_State *L = ud;
  lua_pushstring(L, msg);
  lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
}

static sel_ud_t *new_sel_ud(lua_State *L) {
  sel_ud_t *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->sel = NULL;
  luaL_setmetatable(L, SELECTOR_MT);
  return ud;
}

static ml_selector_t *check_sel(lua_State *L, int idx) {
  sel_ud_t *ud = luaL_checkudata(L, idx, SELECTOR_MT);
  if (!ud->sel) luaL_error(L, "attempt to use a closed " SELECTOR_MT);
  return ud->sel;
}

static ml_fieldsel_t *check_fs(lua_State *L, int idx) {
  fs_ud_t *ud = luaL_checkudata(L, idx, FIELDSEL_MT);
  if (!ud->fs) luaL_error(L, "attempt to use a closed " FIELDSEL_MT);
  return ud->fs;
}

/* }====================================================== */

/* {====================================================== label selectors */

/* Lua: sel | nil, err = core.parse(str) */
static int lselector_parse(lua_State *L) {
  const char *text = luaL_checkstring(L, 1);
  sel_ud_t *ud = new_sel_ud(L);
  box_t *b = new_box(L);
  if (ml_selector_parse(text, &ud->sel, &b->str) < 0) {
    lua_pushnil(L);
    push_box_str(L, b);
    return 2;
  }
  lua_pop(L, 1); /* stack: sel */
  return 1;
}

static int lselector_new(lua_State *L) {
  new_sel_ud(L)->sel = ml_selector_new();
  return 1;
}

static int lselector_nothing(lua_State *L) {
  new_sel_ud(L)->sel = ml_selector_nothing();
  return 1;
}

/* Lua: sel | nil, errs = core.from_table(label_selector|nil [, path]) */
static int lselector_from_table(lua_State *L) {
  const char *path = luaL_optstring(L, 2, "");
  sel_ud_t *ud = new_sel_ud(L);
  box_t *b = new_box(L); /* stack: arg1 [path] sel box */
  if (lua_isnoneornil(L, 1) || ml_lua_is_null(L, 1)) {
    ud->sel = ml_selector_nothing();
    lua_pop(L, 1);
    return 1;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  char err[256];
  b->json = ml_lua_to_json(L, 1, err, sizeof err);
  if (!b->json) return luaL_error(L, "label selector: %s", err);
  int rc = ml_selector_from_json_errs(b->json, path, &ud->sel, &b->errs);
  if (rc < 0) {
    lua_pushnil(L);
    push_errors(L, &b->errs);
    box_clear(b);
    return 2;
  }
  box_clear(b);
  lua_pop(L, 1);
  return 1;
}

static const char *lua_label_get(void *ud, const char *key) {
  lua_State *L = ud;
  /* stack: ... labels; a label's string stays alive in the table */
  if (lua_getfield(L, -1, key) != LUA_TSTRING) {
    lua_pop(L, 1);
    return NULL;
  }
  const char *v = lua_tostring(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Lua: bool = sel:matches(labels|nil) */
static int lsel_matches(lua_State *L) {
  ml_selector_t *sel = check_sel(L, 1);
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_newtable(L);
  } else {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
  }
  lua_pushboolean(L, ml_selector_matches(sel, lua_label_get, L));
  return 1;
}

static int lsel_string(lua_State *L) {
  ml_selector_t *sel = check_sel(L, 1);
  box_t *b = new_box(L);
  b->str = ml_selector_string(sel);
  push_box_str(L, b);
  return 1;
}

static int lsel_empty(lua_State *L) {
  lua_pushboolean(L, ml_selector_is_empty(check_sel(L, 1)));
  return 1;
}

static int lsel_nothing(lua_State *L) {
  lua_pushboolean(L, ml_selector_is_nothing(check_sel(L, 1)));
  return 1;
}

/* Lua: {{key=, operator=, values={...}}, ...} = sel:requirements() */
static int lsel_requirements(lua_State *L) {
  ml_selector_t *sel = check_sel(L, 1);
  size_t n = ml_selector_count(sel);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    const char *key, *op;
    const char *const *vals;
    size_t nv;
    ml_selector_requirement(sel, i, &key, &op, &vals, &nv);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, key);
    lua_setfield(L, -2, "key");
    lua_pushstring(L, op);
    lua_setfield(L, -2, "operator");
    lua_createtable(L, (int)nv, 0);
    for (size_t j = 0; j < nv; j++) {
      lua_pushstring(L, vals[j]);
      lua_rawseti(L, -2, (lua_Integer)j + 1);
    }
    lua_setfield(L, -2, "values");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* Lua: true | nil, errs = sel:add(key, op, {values} [, trusted]) —
 * NewRequirement + Add, in place; trusted skips the checks
 * (SelectorFromValidatedSet) and raises on an unknown operator. */
static int lsel_add(lua_State *L) {
  ml_selector_t *sel = check_sel(L, 1);
  const char *key = luaL_checkstring(L, 2);
  const char *op = luaL_checkstring(L, 3);
  size_t n = 0;
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    n = (size_t)luaL_len(L, 4);
  }
  int trusted = lua_toboolean(L, 5);
  lua_settop(L, 4);
  /* The value strings stay on the stack while C looks at them. */
  luaL_checkstack(L, (int)n + 8, "too many values");
  const char **vals = lua_newuserdatauv(L, (n ? n : 1) * sizeof *vals, 0);
  for (size_t i = 0; i < n; i++) {
    if (lua_geti(L, 4, (lua_Integer)i + 1) != LUA_TSTRING)
      return luaL_error(L, "values[%d] must be a string", (int)i + 1);
    vals[i] = lua_tostring(L, -1);
  }
  if (trusted) {
    if (ml_selector_add_trusted(sel, key, op, vals, n) < 0)
      return luaL_argerror(L, 3, "unknown operator");
    lua_pushboolean(L, 1);
    return 1;
  }
  box_t *b = new_box(L);
  if (ml_selector_add(sel, key, op, vals, n, &b->errs) < 0) {
    lua_pushnil(L);
    push_errors(L, &b->errs);
    box_clear(b);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int lsel_tostring(lua_State *L) {
  sel_ud_t *ud = luaL_checkudata(L, 1, SELECTOR_MT);
  if (!ud->sel) {
    lua_pushliteral(L, SELECTOR_MT ": (closed)");
    return 1;
  }
  return lsel_string(L);
}

static int lsel_close(lua_State *L) {
  sel_ud_t *ud = luaL_checkudata(L, 1, SELECTOR_MT);
  ml_selector_free(ud->sel);
  ud->sel = NULL;
  return 0;
}

/* Lua: {{name, literal}, ...} = core.tokens(str), ending at EOS */
static int lselector_tokens(lua_State *L) {
  const char *text = luaL_checkstring(L, 1);
  lua_newtable(L);
  box_t *b = new_box(L); /* stack: text list box */
  size_t pos = 0;
  for (int i = 1;; i++) {
    char *lit;
    ml_seltok_t t = ml_selector_lex(text, &pos, &lit);
    b->str = lit;
    lua_createtable(L, 2, 0);
    lua_pushstring(L, ml_seltok_name(t));
    lua_rawseti(L, -2, 1);
    push_box_str(L, b);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -3, i);
    if (t == ML_SELTOK_EOS) break;
  }
  lua_pop(L, 1); /* the box */
  return 1;
}

/* Lua: op | nil, err = core.parse_operator(str) */
static int lselector_parse_operator(lua_State *L) {
  const char *text = luaL_checkstring(L, 1);
  box_t *b = new_box(L);
  const char *op;
  if (ml_selector_parse_operator(text, &op, &b->str) < 0) {
    lua_pushnil(L);
    push_box_str(L, b);
    return 2;
  }
  lua_pushstring(L, op);
  return 1;
}

static int msg_list(lua_State *L, int (*fn)(const char *, ml_msg_fn, void *)) {
  const char *s = luaL_checkstring(L, 1);
  lua_newtable(L);
  fn(s, push_strlist_cb, L);
  return 1;
}

static int lselector_label_key_errors(lua_State *L) {
  return msg_list(L, ml_label_key_errors);
}

static int lselector_label_value_errors(lua_State *L) {
  return msg_list(L, ml_label_value_errors);
}

static void no_msg(void *ud, const char *msg) {
  (void)ud;
  (void)msg;
}

/* The string at idx as a C string with no NUL inside, or NULL. */
static const char *plain_string(lua_State *L, int idx, size_t *len) {
  if (lua_type(L, idx) != LUA_TSTRING) return NULL;
  const char *s = lua_tolstring(L, idx, len);
  return strlen(s) == *len ? s : NULL;
}

/* Lua: core.labels_valid(t) -> true when every key of t is a valid label
 * key and every value a valid label value (nil counts as valid). A quick
 * yes for the common case, without the message lists; false sends the
 * caller to the checks that say what is wrong. */
static int lselector_labels_valid(lua_State *L) {
  if (lua_isnoneornil(L, 1)) return lua_pushboolean(L, 1), 1;
  luaL_checktype(L, 1, LUA_TTABLE);
  int ok = 1;
  lua_pushnil(L);
  while (ok && lua_next(L, 1)) {
    size_t kn, vn;
    const char *k = plain_string(L, -2, &kn), *v = plain_string(L, -1, &vn);
    ok = k && v && ml_label_key_errors(k, no_msg, NULL) == 0 &&
         ml_label_value_errors(v, no_msg, NULL) == 0;
    lua_pop(L, 1);
  }
  if (!ok) lua_settop(L, 1);
  lua_pushboolean(L, ok);
  return 1;
}

/* Lua: core.annotations_valid(t, limit) -> true when every key of t,
 * lower-cased, is a qualified name, every value a string, and the keys and
 * values together are at most `limit` bytes. As labels_valid: false means
 * "look closer". */
static int lselector_annotations_valid(lua_State *L) {
  if (lua_isnoneornil(L, 1)) return lua_pushboolean(L, 1), 1;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer limit = luaL_checkinteger(L, 2);
  lua_Integer total = 0;
  int ok = 1;
  char lower[512];
  lua_pushnil(L);
  while (ok && lua_next(L, 1)) {
    size_t kn, vn;
    const char *k = plain_string(L, -2, &kn), *v = plain_string(L, -1, &vn);
    ok = k && v && kn < sizeof lower;
    if (ok) {
      for (size_t i = 0; i <= kn; i++)
        lower[i] = (char)((k[i] >= 'A' && k[i] <= 'Z') ? k[i] - 'A' + 'a' : k[i]);
      total += (lua_Integer)(kn + vn);
      ok = ml_label_key_errors(lower, no_msg, NULL) == 0;
    }
    lua_pop(L, 1);
  }
  if (!ok) lua_settop(L, 1);
  lua_pushboolean(L, ok && total <= limit);
  return 1;
}

static int lselector_dns1123_subdomain_errors(lua_State *L) {
  return msg_list(L, ml_dns1123_subdomain_errors);
}

static int lselector_go_quote(lua_State *L) {
  const char *s = luaL_checkstring(L, 1);
  box_t *b = new_box(L);
  b->str = ml_go_quote(s);
  push_box_str(L, b);
  return 1;
}

static int lselector_go_json_string(lua_State *L) {
  const char *s = luaL_checkstring(L, 1);
  box_t *b = new_box(L);
  b->str = ml_go_json_string(s);
  push_box_str(L, b);
  return 1;
}

/* Lua: text = core.error_body(type, detail [, value]) — field.Error's
 * ErrorBody; with no third argument the value is omitted, nil is null. */
static int lselector_error_body(lua_State *L) {
  const char *type = luaL_checkstring(L, 1);
  const char *detail = luaL_optstring(L, 2, "");
  int has_value = lua_gettop(L) >= 3;
  box_t *b = new_box(L);
  if (has_value) {
    char err[256];
    if (lua_isnil(L, 3)) b->json = json_null();
    else b->json = ml_lua_to_json(L, 3, err, sizeof err);
    if (!b->json) b->json = json_string(err);
  }
  ml_field_error_t e = {type, NULL, b->json, (char *)detail};
  b->str = ml_field_error_body(&e);
  push_box_str(L, b);
  box_clear(b);
  return 1;
}

/* }====================================================== */

/* {====================================================== field selectors */

/* Lua: fs | nil, err = core.parse_fields(str) */
static int lselector_parse_fields(lua_State *L) {
  const char *text = luaL_checkstring(L, 1);
  fs_ud_t *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->fs = NULL;
  luaL_setmetatable(L, FIELDSEL_MT);
  box_t *b = new_box(L);
  if (ml_fieldsel_parse(text, &ud->fs, &b->str) < 0) {
    lua_pushnil(L);
    push_box_str(L, b);
    return 2;
  }
  lua_pop(L, 1);
  return 1;
}

/* Walks a dotted path through nested Lua tables (stack: ... obj). Strings
 * stay alive in their table; numbers and booleans are printed into buf. */
static const char *lua_field_get(void *ud, const char *path, char *buf,
                                 size_t buflen) {
  lua_State *L = ud;
  int top = lua_gettop(L);
  lua_pushvalue(L, top);
  const char *p = path, *out = "";
  for (;;) {
    if (!lua_istable(L, -1)) goto done;
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    lua_pushlstring(L, p, len);
    lua_gettable(L, -2);
    if (!dot) break;
    p = dot + 1;
  }
  switch (lua_type(L, -1)) {
  case LUA_TSTRING: out = lua_tostring(L, -1); break;
  case LUA_TBOOLEAN: out = lua_toboolean(L, -1) ? "true" : "false"; break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, -1)) {
      snprintf(buf, buflen, LUA_INTEGER_FMT, lua_tointeger(L, -1));
    } else {
      double d = lua_tonumber(L, -1);
      for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, buflen, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
      }
    }
    out = buf;
    break;
  default: break;
  }
done:
  lua_settop(L, top);
  return out;
}

/* Lua: bool = fs:matches(obj) */
static int lfs_matches(lua_State *L) {
  ml_fieldsel_t *fs = check_fs(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_pushboolean(L, ml_fieldsel_matches(fs, lua_field_get, L));
  return 1;
}

static int lfs_keys(lua_State *L) {
  ml_fieldsel_t *fs = check_fs(L, 1);
  int n = ml_fieldsel_count(fs);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, ml_fieldsel_key(fs, i));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* Lua: {{field=, operator= "="|"!=", value=}, ...} = fs:terms() */
static int lfs_terms(lua_State *L) {
  ml_fieldsel_t *fs = check_fs(L, 1);
  int n = ml_fieldsel_count(fs);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, ml_fieldsel_key(fs, i));
    lua_setfield(L, -2, "field");
    lua_pushstring(L, ml_fieldsel_op(fs, i));
    lua_setfield(L, -2, "operator");
    lua_pushstring(L, ml_fieldsel_value(fs, i));
    lua_setfield(L, -2, "value");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int lfs_string(lua_State *L) {
  ml_fieldsel_t *fs = check_fs(L, 1);
  box_t *b = new_box(L);
  b->str = ml_fieldsel_string(fs);
  push_box_str(L, b);
  return 1;
}

static int lfs_tostring(lua_State *L) {
  fs_ud_t *ud = luaL_checkudata(L, 1, FIELDSEL_MT);
  if (!ud->fs) {
    lua_pushliteral(L, FIELDSEL_MT ": (closed)");
    return 1;
  }
  return lfs_string(L);
}

static int lfs_close(lua_State *L) {
  fs_ud_t *ud = luaL_checkudata(L, 1, FIELDSEL_MT);
  ml_fieldsel_free(ud->fs);
  ud->fs = NULL;
  return 0;
}

static int lselector_escape_field_value(lua_State *L) {
  const char *s = luaL_checkstring(L, 1);
  box_t *b = new_box(L);
  b->str = ml_fieldsel_escape(s);
  push_box_str(L, b);
  return 1;
}

/* }====================================================== */

static const luaL_Reg sel_meth[] = {
    {"matches", lsel_matches},   {"string", lsel_string},
    {"empty", lsel_empty},       {"nothing", lsel_nothing},
    {"requirements", lsel_requirements},
    {"add", lsel_add},           {"close", lsel_close},
    {NULL, NULL}};
static const luaL_Reg sel_metameth[] = {
    {"__gc", lsel_close}, {"__close", lsel_close},
    {"__tostring", lsel_tostring}, {"__index", NULL}, {NULL, NULL}};
static const luaL_Reg fs_meth[] = {
    {"matches", lfs_matches}, {"keys", lfs_keys},   {"terms", lfs_terms},
    {"string", lfs_string},   {"close", lfs_close}, {NULL, NULL}};
static const luaL_Reg fs_metameth[] = {
    {"__gc", lfs_close}, {"__close", lfs_close},
    {"__tostring", lfs_tostring}, {"__index", NULL}, {NULL, NULL}};
static const luaL_Reg box_metameth[] = {{"__gc", box_gc}, {NULL, NULL}};

static void createmeta(lua_State *L, const char *name, const luaL_Reg *meth,
                       const luaL_Reg *metameth) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, metameth, 0);
  if (meth) {
    lua_newtable(L);
    luaL_setfuncs(L, meth, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}

static const luaL_Reg selector_funcs[] = {
    {"parse", lselector_parse},
    {"new", lselector_new},
    {"nothing", lselector_nothing},
    {"from_table", lselector_from_table},
    {"tokens", lselector_tokens},
    {"parse_operator", lselector_parse_operator},
    {"label_key_errors", lselector_label_key_errors},
    {"label_value_errors", lselector_label_value_errors},
    {"labels_valid", lselector_labels_valid},
    {"annotations_valid", lselector_annotations_valid},
    {"dns1123_subdomain_errors", lselector_dns1123_subdomain_errors},
    {"go_quote", lselector_go_quote},
    {"go_json_string", lselector_go_json_string},
    {"error_body", lselector_error_body},
    {"parse_fields", lselector_parse_fields},
    {"escape_field_value", lselector_escape_field_value},
    {NULL, NULL}};

int luaopen_moonlet_core_selector(lua_State *L) {
  createmeta(L, SELECTOR_MT, sel_meth, sel_metameth);
  createmeta(L, FIELDSEL_MT, fs_meth, fs_metameth);
  createmeta(L, ERRBOX_MT, NULL, box_metameth);
  luaL_newlib(L, selector_funcs);
  return 1;
}
