/* lalloc: a page (slab) allocator for one Lua state. Lua allocates and
 * frees a great many small blocks (strings, tables, closures, hash parts);
 * through glibc every one paid _int_malloc's bin search and the
 * consolidation of its fast bins (21-27% of the server's CPU in the Job
 * benchmarks). Here a block of up to MAX_SMALL bytes comes from a page of
 * its size class instead:
 *
 *   chunk (mmap, CHUNK_PAGES pages)      page (PAGE_SIZE, aligned to it)
 *   +------+------+------+----           +--------+-----+-----+-----+---
 *   | page | page | page | ...           | page_t | blk | blk | blk | ...
 *   +------+------+------+----           +--------+-----+-----+-----+---
 *
 * A block's page is its address masked to PAGE_SIZE, and Lua passes a
 * block's size (osize) on every free and realloc, so a block carries no
 * header. Each page holds the blocks of one class: a free list of freed
 * blocks, a bump pointer over the never-used ones, a count in use. Per
 * class, the pages with a free block are on a list (alloc takes its head);
 * a page whose last block is freed leaves it and becomes the class's spare
 * (at most one, so a class that frees and allocates its last block in turn
 * does not thrash); a second empty page goes to the state's pool of free
 * pages, which any class reuses. The pool keeps its pages' memory: a
 * Lua collection empties many pages at once and the heap refills them
 * before the next one; giving all but 16 back at once (madvise) made 483
 * madvise calls in `jobs_inproc.lua 1000` and doubled its system time.
 * Trim (the idle trimmer) gives the memory of the spares and the pool
 * back to the system (madvise DONTNEED: the range stays mapped, so a
 * chunk never splits).
 * Larger blocks go to malloc/realloc/free. Closing the state unmaps every
 * chunk.
 *
 * Under ASan every block goes to malloc/free, so ASan sees each one. */
#include "lalloc.h"

#include <assert.h>
#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Classes: every GRAIN bytes up to FINE_MAX, then STEPS per doubling up
 * to MAX_SMALL (above FINE_MAX, at most 1/9 of a block is slack). Blocks
 * of up to 4 KiB (JSON texts, coroutine stacks, hash parts) pay: with a
 * 512-byte cut-off, the 2% of the Lua state's allocations above it cost
 * 1,300 instructions each in glibc (a large request consolidates its fast
 * bins). */
#define GRAIN 16
#define FINE_MAX 512
#define FINE_SHIFT 9
#define STEPS 8
#define MAX_SHIFT 12
#define MAX_SMALL ((size_t)1 << MAX_SHIFT)
#define CLASSES (FINE_MAX / GRAIN + STEPS * (MAX_SHIFT - FINE_SHIFT))
#define PAGE_SIZE ML_LUA_ALLOC_PAGE
#define CHUNK_PAGES 16
_Static_assert(STEPS == 8, "class_of takes 3 bits below a size's top bit");

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

/* A page's header, at its start; its blocks follow at HEADER. */
typedef struct page {
  /* the class's list of pages with a free block, or the pool */
  struct page *next, *prev;
  block_t *free;    /* freed blocks */
  char *bump, *end; /* never-used blocks: [bump, end), whole blocks */
  uint32_t used;    /* blocks in use */
  uint32_t size;    /* block size: the class's */
  uint32_t listed;  /* on the class's list */
  uint32_t dirty;   /* in the pool: its memory is still the process's */
} page_t;

#define HEADER ((sizeof(page_t) + GRAIN - 1) / GRAIN * GRAIN)

typedef struct {
  page_t *avail[CLASSES];  /* pages with a free block */
  page_t *spare[CLASSES];  /* an empty page kept for the class */
  page_t *pool;            /* free pages: dirty ones first */
  size_t pool_dirty;       /* dirty pages in the pool */
  size_t spares;           /* spare pages */
  char *fresh, *fresh_end; /* the newest chunk's never-used pages */
  void **chunks;           /* every chunk, for close */
  size_t nchunks, chunks_cap;
} heap_t;

/* Bytes mapped by every state's heap (the tests count them). */
static size_t mapped;

/* Class of a small size (1..MAX_SMALL). */
static inline size_t class_of(size_t size) {
  if (size <= FINE_MAX) return (size - 1) / GRAIN;
  unsigned e = 63 - (unsigned)__builtin_clzll(size - 1); /* FINE_SHIFT.. */
  /* the STEPS (2^3) classes of a doubling: the 3 bits below its top bit */
  return FINE_MAX / GRAIN + (e - FINE_SHIFT) * STEPS + ((size - 1) >> (e - 3)) -
         STEPS;
}

/* Block size of class k: the largest size of class k. */
static inline size_t class_size(size_t k) {
  if (k < FINE_MAX / GRAIN) return (k + 1) * GRAIN;
  size_t j = k - FINE_MAX / GRAIN;
  return (STEPS + 1 + j % STEPS) << (FINE_SHIFT + j / STEPS - 3);
}

static inline page_t *page_of(void *p) {
  return (page_t *)((uintptr_t)p & ~(uintptr_t)(PAGE_SIZE - 1));
}

/* A new chunk of CHUNK_PAGES pages aligned to PAGE_SIZE: map one page
 * more, then unmap the misaligned head and tail. */
static int chunk_new(heap_t *h) {
  if (h->nchunks == h->chunks_cap) {
    size_t cap = h->chunks_cap ? 2 * h->chunks_cap : 16;
    void **c = realloc(h->chunks, cap * sizeof *c);
    if (!c) return -1;
    h->chunks = c;
    h->chunks_cap = cap;
  }
  size_t len = CHUNK_PAGES * PAGE_SIZE;
  char *raw = mmap(NULL, len + PAGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return -1;
  uintptr_t head =
      (PAGE_SIZE - ((uintptr_t)raw & (PAGE_SIZE - 1))) & (PAGE_SIZE - 1);
  if (head) munmap(raw, head);
  if (PAGE_SIZE - head) munmap(raw + head + len, PAGE_SIZE - head);
  h->chunks[h->nchunks++] = raw + head;
  h->fresh = raw + head;
  h->fresh_end = raw + head + len;
  __atomic_add_fetch(&mapped, len, __ATOMIC_RELAXED);
  return 0;
}

static inline void unlink_avail(heap_t *h, page_t *p, size_t k) {
  if (p->prev)
    p->prev->next = p->next;
  else
    h->avail[k] = p->next;
  if (p->next) p->next->prev = p->prev;
  p->listed = 0;
}

static inline void link_avail(heap_t *h, page_t *p, size_t k) {
  p->prev = NULL;
  p->next = h->avail[k];
  if (p->next) p->next->prev = p;
  h->avail[k] = p;
  p->listed = 1;
}

/* A page for class k, on its list: the spare, else a pool page (dirty
 * first: its memory is already there), else a fresh one. */
static page_t *page_take(heap_t *h, size_t k) {
  page_t *p = h->spare[k];
  if (p) {
    h->spare[k] = NULL;
    h->spares--;
    link_avail(h, p, k);
    return p;
  }
  if (h->pool) {
    p = h->pool;
    h->pool = p->next;
    if (p->dirty) h->pool_dirty--;
  } else {
    if (h->fresh == h->fresh_end && chunk_new(h) != 0) return NULL;
    p = (page_t *)h->fresh;
    h->fresh += PAGE_SIZE;
  }
  size_t size = class_size(k);
  p->free = NULL;
  p->bump = (char *)p + HEADER;
  p->end = p->bump + (PAGE_SIZE - HEADER) / size * size;
  p->used = 0;
  p->size = (uint32_t)size;
  link_avail(h, p, k);
  return p;
}

/* The system's page size. */
static size_t sys_page(void) {
  static size_t sys;
  if (!sys) {
    long n = sysconf(_SC_PAGESIZE);
    sys = n > 0 ? (size_t)n : 4096;
  }
  return sys;
}

/* Gives a pool page's memory back to the system, but for the system page
 * that holds its header (the pool's links). */
static void page_clean(page_t *p) {
  size_t keep = sys_page() < PAGE_SIZE ? sys_page() : PAGE_SIZE;
  if (keep < PAGE_SIZE)
    madvise((char *)p + keep, PAGE_SIZE - keep, MADV_DONTNEED);
  p->dirty = 0;
}

/* An empty page to the pool (its head: the dirty pages come first). */
static void page_release(heap_t *h, page_t *p) {
  p->dirty = 1;
  p->next = h->pool;
  h->pool = p;
  h->pool_dirty++;
}

static inline void *small_take(heap_t *h, size_t k) {
  page_t *p = h->avail[k];
  if (!p && !(p = page_take(h, k))) return NULL;
  void *b;
  if (p->free) {
    b = p->free;
    p->free = p->free->next;
  } else {
    b = p->bump;
    p->bump += p->size;
  }
  p->used++;
  if (!p->free && p->bump == p->end) unlink_avail(h, p, k); /* full */
  return b;
}

static inline void small_give(heap_t *h, void *ptr, size_t k) {
  page_t *p = page_of(ptr);
  assert(p->size == class_size(k) && p->used > 0);
  block_t *b = ptr;
  b->next = p->free;
  p->free = b;
  if (!p->listed) link_avail(h, p, k);
  if (--p->used > 0) return;
  unlink_avail(h, p, k); /* empty: the class's spare, or to the pool */
  if (!h->spare[k]) {
    h->spare[k] = p;
    h->spares++;
  } else {
    page_release(h, p);
  }
}

/* lua_Alloc: osize is the block's size when ptr is set (Lua always knows
 * it), so a block's class never has to be stored. */
static void *page_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  heap_t *h = ud;
  if (!CACHING) {
    if (nsize) return realloc(ptr, nsize);
    free(ptr);
    return NULL;
  }
  if (nsize == 0) {
    if (ptr) {
      if (osize <= MAX_SMALL)
        small_give(h, ptr, class_of(osize));
      else
        free(ptr);
    }
    return NULL;
  }
  if (!ptr)
    return nsize <= MAX_SMALL ? small_take(h, class_of(nsize)) : malloc(nsize);
  if (osize > MAX_SMALL && nsize > MAX_SMALL) return realloc(ptr, nsize);
  if (osize <= MAX_SMALL && nsize <= MAX_SMALL &&
      class_of(osize) == class_of(nsize))
    return ptr;
  void *q = nsize <= MAX_SMALL ? small_take(h, class_of(nsize)) : malloc(nsize);
  if (!q) return NULL; /* Lua keeps the old block on failure */
  memcpy(q, ptr, osize < nsize ? osize : nsize);
  if (osize <= MAX_SMALL)
    small_give(h, ptr, class_of(osize));
  else
    free(ptr);
  return q;
}

/* Spares to the pool, and every pool page's memory back to the system. */
static void trim(heap_t *h) {
  for (size_t k = 0; k < CLASSES; k++) {
    if (h->spare[k]) {
      page_release(h, h->spare[k]);
      h->spare[k] = NULL;
    }
  }
  h->spares = 0;
  for (page_t *p = h->pool; p && p->dirty; p = p->next) page_clean(p);
  h->pool_dirty = 0;
}

static void heap_free(heap_t *h) {
  for (size_t i = 0; i < h->nchunks; i++)
    munmap(h->chunks[i], CHUNK_PAGES * PAGE_SIZE);
  __atomic_sub_fetch(&mapped, h->nchunks * CHUNK_PAGES * PAGE_SIZE,
                     __ATOMIC_RELAXED);
  free(h->chunks);
  free(h);
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
  heap_t *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  lua_State *L = lua_newstate(page_alloc, h);
  if (!L) {
    heap_free(h);
    return NULL;
  }
  lua_atpanic(L, panic);
  lua_setwarnf(L, warn_off, L);
  return L;
}

void ml_lua_alloc_trim(lua_State *L) {
  void *ud;
  if (lua_getallocf(L, &ud) == page_alloc) trim(ud);
}

int ml_lua_alloc_caches(void) { return CACHING; }

size_t ml_lua_alloc_cached(lua_State *L) {
  void *ud;
  if (lua_getallocf(L, &ud) != page_alloc) return 0;
  heap_t *h = ud;
  return (h->spares + h->pool_dirty) * PAGE_SIZE;
}

size_t ml_lua_alloc_mapped(void) {
  return __atomic_load_n(&mapped, __ATOMIC_RELAXED);
}

void ml_lua_close(lua_State *L) {
  void *ud;
  int ours = lua_getallocf(L, &ud) == page_alloc;
  lua_close(L);
  /* lua_close gave every block back; the chunks go with the heap. */
  if (ours) heap_free(ud);
}
