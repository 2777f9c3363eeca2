/* The moonlet.Store userdata of moonlet.core.store for other bindings:
 * moonlet.core.httpd pipes a store watch straight into a response stream
 * (no Lua per event), with the same watch options. */
#ifndef ML_LSTORE_H
#define ML_LSTORE_H

#include <lua.h>

#include "store.h"

/**
 * @return the store of the moonlet.Store userdata at `idx`; raises when
 *         the value is not one or the store is closed.
 */
ml_store_t *ml_lua_check_store(lua_State *L, int idx);

/**
 * Reads a watch's options table at `t` (namespace, label_selector,
 * field_selector, resource_version; nil or absent: none). The strings stay
 * on the stack, alive until the calling Lua function returns.
 */
void ml_lua_watch_opts(lua_State *L, int t, ml_store_watch_opts_t *o);

#endif
