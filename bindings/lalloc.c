/* lalloc: a size-class cache in front of malloc for one Lua state. Blocks
 * up to MAX_SMALL bytes are allocated at their class size, so any freed
 * block serves any later request of its class; each class keeps at most
 * CLASS_BYTES of freed blocks. Under ASan nothing is cached, so every
 * free stays visible to it. */
#include "lalloc.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRAIN 16
#define MAX_SMALL 256
#define CLASSES (MAX_SMALL / GRAIN)
#define CLASS_BYTES (ML_LUA_ALLOC_CACHE_MAX / CLASSES)

#if defined(__SANITIZE_ADDRESS__)
#define CACHING 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CACHING 0
#endif
#endif
#ifndef CACHING
#define CACHING 1
#endif

typedef struct block {
  struct block *next;
} block_t;

typedef struct {
  block_t *free[CLASSES];
  size_t count[CLASSES];
} cache_t;

/* Class of a small size (1..MAX_SMALL); its blocks are (class+1)*GRAIN. */
static size_t class_of(size_t size) { return (size - 1) / GRAIN; }

static void *take(cache_t *c, size_t size) {
  if (!CACHING || size > MAX_SMALL) return malloc(size);
  size_t k = class_of(size);
  block_t *b = c->free[k];
  if (!b) return malloc((k + 1) * GRAIN);
  c->free[k] = b->next;
  c->count[k]--;
  return b;
}

static void give(cache_t *c, void *p, size_t size) {
  if (!CACHING || size > MAX_SMALL) {
    free(p);
    return;
  }
  size_t k = class_of(size);
  if (c->count[k] * (k + 1) * GRAIN >= CLASS_BYTES) {
    free(p);
    return;
  }
  block_t *b = p;
  b->next = c->free[k];
  c->free[k] = b;
  c->count[k]++;
}

/* lua_Alloc: osize is the block's size when ptr is set (Lua always knows
 * it), so a block's class never has to be stored. */
static void *cache_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  cache_t *c = ud;
  if (nsize == 0) {
    if (ptr) give(c, ptr, osize);
    return NULL;
  }
  if (!ptr) return take(c, nsize);
  if (!CACHING || (osize > MAX_SMALL && nsize > MAX_SMALL))
    return realloc(ptr, nsize);
  if (osize <= MAX_SMALL && nsize <= MAX_SMALL && class_of(osize) == class_of(nsize))
    return ptr;
  void *q = take(c, nsize);
  if (!q) return NULL; /* Lua keeps the old block on failure */
  memcpy(q, ptr, osize < nsize ? osize : nsize);
  give(c, ptr, osize);
  return q;
}

static void flush(cache_t *c) {
  for (size_t k = 0; k < CLASSES; k++) {
    while (c->free[k]) {
      block_t *b = c->free[k];
      c->free[k] = b->next;
      free(b);
    }
    c->count[k] = 0;
  }
}

static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n",
          msg ? msg : "error object is not a string");
  return 0;
}

/* Warnings stay off, as luaL_newstate leaves them. */
static void warn_off(void *ud, const char *msg, int tocont) {
  (void)ud, (void)msg, (void)tocont;
}

lua_State *ml_lua_newstate(void) {
  cache_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  lua_State *L = lua_newstate(cache_alloc, c);
  if (!L) {
    free(c);
    return NULL;
  }
  lua_atpanic(L, panic);
  lua_setwarnf(L, warn_off, L);
  return L;
}

void ml_lua_alloc_trim(lua_State *L) {
  void *ud;
  if (lua_getallocf(L, &ud) == cache_alloc) flush(ud);
}

int ml_lua_alloc_caches(void) { return CACHING; }

size_t ml_lua_alloc_cached(lua_State *L) {
  void *ud;
  if (lua_getallocf(L, &ud) != cache_alloc) return 0;
  cache_t *c = ud;
  size_t bytes = 0;
  for (size_t k = 0; k < CLASSES; k++) bytes += c->count[k] * (k + 1) * GRAIN;
  return bytes;
}

void ml_lua_close(lua_State *L) {
  void *ud;
  int ours = lua_getallocf(L, &ud) == cache_alloc;
  lua_close(L);
  /* lua_close gave its blocks back through the cache. */
  if (ours) {
    flush(ud);
    free(ud);
  }
}
