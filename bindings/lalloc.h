/* lalloc: the Lua state's allocator. Lua allocates and frees many small
 * blocks per API request (tables, strings, closures); glibc's per-size
 * cache holds seven of each, so bursts fell through to its slower bins.
 * This allocator keeps freed small blocks per size class, a bounded
 * number, and gives them back on trim. */
#ifndef ML_LALLOC_H
#define ML_LALLOC_H

#include <lua.h>

/** A new Lua state on the caching allocator, with luaL_newstate's panic
 * and warning functions. @return the state, or NULL when out of memory */
lua_State *ml_lua_newstate(void);

/** Closes L (lua_close), then frees its allocator's cache. */
void ml_lua_close(lua_State *L);

/** Frees every cached block of L's allocator (a no-op for a state on
 * another allocator). */
void ml_lua_alloc_trim(lua_State *L);

/** Bytes of freed blocks L's allocator holds for reuse (0 for a state on
 * another allocator, and under ASan, where nothing is cached). */
size_t ml_lua_alloc_cached(lua_State *L);

/** @return 1 when this build caches (0 under ASan) */
int ml_lua_alloc_caches(void);

/** The most ml_lua_alloc_cached can answer. */
#define ML_LUA_ALLOC_CACHE_MAX (1024 * 1024)

#endif
