/* Conversions between jansson values and Lua values, shared by every binding
 * that moves objects (json, yaml, store, http).
 *
 * Conventions (also what moonlet.json documents to scripts):
 * - JSON null <-> moonlet.json.null (a light userdata sentinel).
 * - JSON arrays decode to tables with the metatable moonlet.json.array, so
 *   an empty array stays an array when encoded again.
 * - A Lua table encodes as an array when it carries that metatable, or when
 *   it is non-empty with keys exactly 1..n; otherwise as an object (an
 *   empty plain table is `{}`).
 * - Integers stay integers; floats stay reals. */
#ifndef ML_LCONV_H
#define ML_LCONV_H

#include <jansson.h>
#include <lua.h>
#include <stddef.h>

#define ML_JSON_ARRAY_MT "moonlet.json.array"

/** Pushes `j` as a Lua value (raises only on memory errors). */
void ml_lua_push_json(lua_State *L, const json_t *j);

/**
 * Converts the Lua value at `idx` to a new JSON reference. Never raises.
 * @return the value, or NULL with a message in err (e.g. "metadata.labels:
 *         cannot encode a function").
 */
json_t *ml_lua_to_json(lua_State *L, int idx, char *err, size_t errlen);

/** Pushes the moonlet.json.null sentinel. */
void ml_lua_push_null(lua_State *L);
/** True if the value at idx is moonlet.json.null. */
int ml_lua_is_null(lua_State *L, int idx);

#endif
