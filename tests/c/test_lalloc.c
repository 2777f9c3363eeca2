/* Unit tests of bindings/lalloc.c, the Lua state's page allocator: Lua
 * runs correctly on it (tables grown and shrunk across size classes,
 * strings of every small length, a full collection); random sequences of
 * alloc, realloc and free across every class and the malloc path keep
 * every block's content, alignment and bounds (no two live blocks
 * overlap); realloc within a class keeps the block; emptied pages are
 * reused before new ones are mapped, trim gives their memory back (not
 * resident any more) and the cached figure follows; close unmaps every
 * page (LeakSanitizer checks the blocks under ASan, where everything goes
 * to malloc). Prints TAP. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lalloc.h"

#include "tap.h"

static const char *work = "local t = {}\n"
                          "for i = 1, 2000 do t[i] = { i, tostring(i) .. "
                          "string.rep('x', i % 300) } end\n"
                          "for i = 1, 2000 do\n"
                          "  local v = t[i]\n"
                          "  assert(v[1] == i and #v[2] == #tostring(i) + i % "
                          "300, 'corrupt entry ' .. i)\n"
                          "end\n"
                          "local grow = {}\n"
                          "for i = 1, 100 do grow['k' .. i] = i end\n"
                          "for i = 1, 95 do grow['k' .. i] = nil end\n"
                          "collectgarbage()\n"
                          "for i = 96, 100 do assert(grow['k' .. i] == i) end\n"
                          "local big = {}\n"
                          "for i = 1, 300 do big[i] = "
                          "string.rep(string.char(65 + i % 26), i * 17) end\n"
                          "for i = 1, 300 do assert(big[i] == "
                          "string.rep(string.char(65 + i % 26), i * 17)) end\n"
                          "t, big = nil, nil\n"
                          "collectgarbage()\n";

/* xorshift: the same sequence on every run. */
static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* A size: mostly small (every class), some past the page classes. */
static size_t rnd_size(void) {
  switch (rnd() % 8) {
  case 0: return 1 + rnd() % 16;
  case 1:
  case 2:
  case 3: return 1 + rnd() % 512;
  case 4:
  case 5: return 1 + rnd() % 4096;
  case 6: return 4000 + rnd() % 200; /* around the last class */
  default: return 1 + rnd() % 20000;
  }
}

typedef struct {
  unsigned char *p;
  size_t size;
  unsigned char tag;
} slot_t;

#define SLOTS 3000

static int fill_ok(const slot_t *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s->p[i] != (unsigned char)(s->tag + i * 7)) return 0;
  return 1;
}

static void fill(slot_t *s, size_t from) {
  for (size_t i = from; i < s->size; i++)
    s->p[i] = (unsigned char)(s->tag + i * 7);
}

static int by_addr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const slot_t *)a)->p,
            y = (uintptr_t)((const slot_t *)b)->p;
  return x < y ? -1 : x > y;
}

/* No two live blocks overlap. */
static int disjoint(const slot_t *slots) {
  static slot_t live[SLOTS];
  size_t n = 0;
  for (size_t i = 0; i < SLOTS; i++)
    if (slots[i].p) live[n++] = slots[i];
  qsort(live, n, sizeof *live, by_addr);
  for (size_t i = 1; i < n; i++)
    if (live[i - 1].p + live[i - 1].size > live[i].p) return 0;
  return 1;
}

/* Random alloc/realloc/free through L's lua_Alloc, every block checked. */
static void random_ops(lua_State *L) {
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  static slot_t slots[SLOTS];
  int content = 1, aligned = 1, apart = 1, failed = 0;
  for (long op = 0; op < 200000; op++) {
    slot_t *s = &slots[rnd() % SLOTS];
    if (!s->p) {
      s->size = rnd_size();
      s->tag = (unsigned char)rnd();
      s->p = f(ud, NULL, LUA_TSTRING, s->size);
      if (!s->p)
        failed++;
      else
        fill(s, 0);
    } else if (rnd() % 3 == 0) {
      content &= fill_ok(s, s->size);
      f(ud, s->p, s->size, 0);
      s->p = NULL;
    } else {
      size_t nsize = rnd() % 4 ? rnd_size() : s->size + rnd() % 64;
      content &= fill_ok(s, s->size);
      unsigned char *q = f(ud, s->p, s->size, nsize);
      if (!q) {
        failed++;
        continue;
      }
      size_t old = s->size;
      s->p = q;
      s->size = nsize;
      content &= fill_ok(s, old < nsize ? old : nsize);
      if (nsize > old) fill(s, old);
    }
    if (s->p) aligned &= ((uintptr_t)s->p % 16) == 0;
    if (op % 20000 == 0) apart &= disjoint(slots);
  }
  apart &= disjoint(slots);
  ok(!failed, "200,000 random allocs, reallocs and frees: none fails");
  ok(content, "every block keeps its content through reallocs across classes");
  ok(aligned, "every block is aligned to 16 bytes");
  ok(apart, "no two live blocks overlap");
  for (size_t i = 0; i < SLOTS; i++) {
    if (slots[i].p) f(ud, slots[i].p, slots[i].size, 0);
    slots[i].p = NULL;
  }
}

/* Reallocs that stay in a class keep the block; others move it whole. */
static void reallocs(lua_State *L) {
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  char *p = f(ud, NULL, 0, 20);
  memset(p, 'a', 20);
  char *q = f(ud, p, 20, 32);
  ok(q == p || !ml_lua_alloc_caches(), "20 -> 32 bytes stays in its block");
  q = f(ud, q, 32, 300);
  int same = q[0] == 'a' && q[19] == 'a';
  memset(q, 'b', 300);
  q = f(ud, q, 300, 9000); /* to malloc */
  same &= q[0] == 'b' && q[299] == 'b';
  memset(q, 'c', 9000);
  q = f(ud, q, 9000, 24); /* back to a page */
  same &= q[0] == 'c' && q[23] == 'c';
  ok(same, "small -> larger class -> malloc -> small keeps the content");
  f(ud, q, 24, 0);
}

/* Is any byte of [p, p+len) resident? */
static int resident(void *p, size_t len) {
  size_t sys = (size_t)sysconf(_SC_PAGESIZE);
  uintptr_t a = (uintptr_t)p & ~(uintptr_t)(sys - 1);
  size_t n = ((uintptr_t)p + len - a + sys - 1) / sys;
  unsigned char vec[64];
  if (n > sizeof vec) n = sizeof vec;
  if (mincore((void *)a, n * sys, vec) != 0) return -1;
  for (size_t i = 0; i < n; i++)
    if (vec[i] & 1) return 1;
  return 0;
}

/* Emptied pages are reused, trim gives their memory back, close unmaps. */
static void pages(void) {
  size_t before = ml_lua_alloc_mapped();
  lua_State *L = ml_lua_newstate();
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  enum { N = 40000 };
  static void *blocks[N];
  for (int i = 0; i < N; i++) {
    blocks[i] = f(ud, NULL, 0, 100); /* 4 MiB of one class */
    memset(blocks[i], 1, 100);
  }
  size_t mapped = ml_lua_alloc_mapped();
  if (ml_lua_alloc_caches())
    ok(mapped - before >= (size_t)N * 100,
       "pages mapped for 4 MiB of blocks (%zu KiB)", (mapped - before) / 1024);
  else
    ok(mapped == 0, "under ASan no page is mapped");
  size_t cached = ml_lua_alloc_cached(L);
  for (int i = 0; i < N; i++) f(ud, blocks[i], 100, 0);
  size_t freed = ml_lua_alloc_cached(L);
  if (ml_lua_alloc_caches())
    ok(freed >= cached + (size_t)N * 100 - 2 * ML_LUA_ALLOC_PAGE,
       "the emptied pages are held for reuse (%zu KiB)", freed / 1024);
  for (int i = 0; i < N; i++) {
    blocks[i] = f(ud, NULL, 0, 200); /* another class */
    memset(blocks[i], 2, 200);
  }
  ok(ml_lua_alloc_mapped() - before < (size_t)N * (100 + 200),
     "another class reuses them: %zu KiB mapped for 4 + 8 MB of blocks in turn",
     (ml_lua_alloc_mapped() - before) / 1024);
  for (int i = 0; i < N; i++) f(ud, blocks[i], 200, 0);
  ml_lua_alloc_trim(L);
  ok(ml_lua_alloc_cached(L) == 0, "trim gives every empty page back");
  if (ml_lua_alloc_caches()) {
    /* but for the system page of each page's header */
    size_t sys = (size_t)sysconf(_SC_PAGESIZE);
    int gone = 0, sampled = 0;
    for (int i = 0; i < N; i += 97) {
      if ((uintptr_t)blocks[i] % ML_LUA_ALLOC_PAGE < sys + 200) continue;
      sampled++;
      gone += resident(blocks[i], 200) == 0;
    }
    ok(sampled > 100 && gone == sampled,
       "their memory is not resident any more (%d of %d sampled)", gone,
       sampled);
  }
  ml_lua_close(L);
  ok(ml_lua_alloc_mapped() == before,
     "close unmaps every page (%zu bytes left)",
     ml_lua_alloc_mapped() - before);
}

int main(void) {
  size_t before = ml_lua_alloc_mapped();
  lua_State *L = ml_lua_newstate();
  ok(L != NULL, "a state on the page allocator");
  luaL_openlibs(L);
  int rc = luaL_dostring(L, work);
  ok(rc == LUA_OK,
     "Lua runs on it: tables across size classes, strings, collections");
  if (rc != LUA_OK) printf("#   %s\n", lua_tostring(L, -1));
  size_t cached = ml_lua_alloc_cached(L);
  if (ml_lua_alloc_caches())
    ok(cached > 0, "emptied pages are kept for reuse (%zu KiB)", cached / 1024);
  else
    ok(cached == 0, "under ASan nothing is cached (%zu bytes)", cached);
  random_ops(L);
  reallocs(L);
  luaL_dostring(L, "collectgarbage() collectgarbage('stop')");
  cached = ml_lua_alloc_cached(L);
  rc = luaL_dostring(
      L, "S = {} for i = 1, 5000 do S[i] = {} end collectgarbage('restart')");
  ok(rc == LUA_OK &&
         (ml_lua_alloc_cached(L) < cached || !ml_lua_alloc_caches()),
     "later allocations reuse the emptied pages (%zu -> %zu KiB held)",
     cached / 1024, ml_lua_alloc_cached(L) / 1024);
  ml_lua_alloc_trim(L);
  ok(ml_lua_alloc_cached(L) == 0, "trim gives every empty page back");
  rc = luaL_dostring(L, work);
  ok(rc == LUA_OK, "Lua runs on trimmed pages");
  lua_State *plain = luaL_newstate();
  ok(ml_lua_alloc_cached(plain) == 0,
     "a state on another allocator has no cache");
  ml_lua_alloc_trim(plain); /* must not touch its allocator's data */
  lua_close(plain);
  ml_lua_close(L);
  ok(ml_lua_alloc_mapped() == before, "close unmaps every page");
  pages();
  return tap_done();
}
