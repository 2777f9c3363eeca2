/* lalloc: the Lua state's allocator. Lua allocates and frees many small
 * blocks per API request (tables, strings, closures); through glibc each
 * paid its bin search and fast-bin consolidation. This allocator carves
 * small blocks from 64 KiB pages of one size class each, keeps a few
 * empty pages for reuse, and gives their memory back on trim. */
#ifndef ML_LALLOC_H
#define ML_LALLOC_H

#include <lua.h>

/** A new Lua state on the page allocator, with luaL_newstate's panic
 * and warning functions. @return the state, or NULL when out of memory */
lua_State *ml_lua_newstate(void);

/** Closes L (lua_close), then unmaps its allocator's pages. */
void ml_lua_close(lua_State *L);

/** Gives the memory of every empty page of L's allocator back to the
 * system (a no-op for a state on another allocator). */
void ml_lua_alloc_trim(lua_State *L);

/** Bytes of empty pages L's allocator holds for reuse, which trim gives
 * back: at most what L freed since the last trim (0 for a state on
 * another allocator, and under ASan, where every block goes to malloc). */
size_t ml_lua_alloc_cached(lua_State *L);

/** @return 1 when this build uses pages (0 under ASan) */
int ml_lua_alloc_caches(void);

/** Bytes of pages mapped by the allocators of every state not closed yet
 * (0 under ASan). */
size_t ml_lua_alloc_mapped(void);

/** A page's size: its blocks are of one class, up to 4 KiB. */
#define ML_LUA_ALLOC_PAGE ((size_t)64 * 1024)

#endif
