/* Conversions between jansson values and Lua values, shared by every binding
 * that moves objects (json, yaml, store, http).
 *
 * Conventions (also what moonlet.json documents to scripts):
 * - JSON null <-> moonlet.json.null (a light userdata sentinel).
 * - JSON arrays decode to tables with the metatable moonlet.json.array, so
 *   an empty array stays an array when encoded again.
 * - A Lua table encodes as an array when it carries that metatable, or when
 *   it is non-empty with keys exactly 1..n; otherwise as an object (an
 *   empty plain table is `{}`). A table with the metatable
 *   moonlet.json.object always encodes as an object.
 * - Integers stay integers; floats stay reals. */
#ifndef ML_LCONV_H
#define ML_LCONV_H

#include <jansson.h>
#include <lua.h>
#include <stddef.h>

#include "json_write.h"

#define ML_JSON_ARRAY_MT "moonlet.json.array"
#define ML_JSON_OBJECT_MT "moonlet.json.object"

/* Deepest table nesting converted (guards against cycles and C stack use). */
#define ML_JSON_MAX_DEPTH 1000

/** Pushes `j` as a Lua value (raises only on memory errors). */
void ml_lua_push_json(lua_State *L, const json_t *j);

/**
 * Pushes `j` as a Lua value and releases the caller's reference to it, also
 * when pushing raises (the push runs in a protected call), so a binding
 * never leaks a document on a memory error.
 * @param j a reference owned by the caller; always consumed.
 */
void ml_lua_push_json_steal(lua_State *L, json_t *j);

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

/** Pushes the moonlet.json.array metatable (created on first use). */
void ml_lua_push_array_mt(lua_State *L);
/** Pushes the moonlet.json.object metatable (created on first use). */
void ml_lua_push_object_mt(lua_State *L);

/**
 * @return 1 if the value at idx is a table that encodes as a JSON array
 *         (marked, or a plain non-empty table with keys exactly 1..n).
 */
int ml_lua_is_array(lua_State *L, int idx);

/**
 * Pushes a deep copy of the value at idx: tables are copied recursively and
 * keep their metatable (so array/object marks survive); other values are
 * pushed as they are. Raises on cycles deeper than ML_JSON_MAX_DEPTH.
 */
void ml_lua_copy(lua_State *L, int idx);

/**
 * Pushes the value of the JSON text straight into Lua (no jansson tree),
 * with the conventions above. It declines what it cannot vouch to read as
 * jansson would (syntax errors, nesting deeper than 512, integers over 18
 * digits, NUL in a key, bad UTF-8): the caller then parses with jansson,
 * which gives the value or its error message.
 * @return 1 with the value pushed, or 0 with the stack unchanged. Raises
 *         only on memory errors.
 */
int ml_lua_push_json_text(lua_State *L, const char *text, size_t len);

/**
 * The same, and *saw_dup (when not NULL) tells whether an object of the
 * text repeats a member name (the value pushed keeps the last, as
 * jansson's). Set only when the value is pushed.
 */
int ml_lua_push_json_text_dups(lua_State *L, const char *text, size_t len,
                               int *saw_dup);


/**
 * Encodes the value at `idx` as compact JSON into b (b->len is reset),
 * exactly as jansson's JSON_COMPACT (| JSON_SORT_KEYS when sort_keys) dump
 * of ml_lua_to_json's document would read. Declines values whose text or
 * error jansson must make: reals, non-string keys, invalid UTF-8,
 * functions and other non-JSON values, nesting deeper than 512.
 * @return 1 when b holds the text, 0 to decline (or out of memory). Never
 *         raises; the Lua stack is left as it was.
 */
int ml_lua_encode_json_text(lua_State *L, int idx, int sort_keys,
                            ml_json_buf_t *b);

/**
 * The same for a value nested `depth` levels deep in a document being
 * written (the depth bound counts from the document's top), appended at
 * b->len, keys in table order. Writers that lay their own members over an
 * object (the store's create) write the rest through this.
 * @return 1, or 0 to decline (b->len is then unspecified).
 */
int ml_lua_encode_json_append(lua_State *L, int idx, int depth,
                              ml_json_buf_t *b);


#endif
