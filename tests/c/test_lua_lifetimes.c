/* Bindings must never keep a coroutine's lua_State past its life: a timer
 * or the runtime itself made inside a coroutine outlives it once the
 * coroutine ends and is collected. Lua's own code is not instrumented by
 * the sanitizers, so this state runs on an allocator that poisons freed
 * blocks and keeps them until the end: any later use of a dead coroutine
 * reads poison and crashes or fails here. Prints TAP. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "tap.h"

#define POISON 0xA5

/* Freed blocks are poisoned and parked, never reused, until teardown. */
typedef struct {
  void **parked;
  size_t n, cap;
} quarantine_t;

static void park(quarantine_t *q, void *p) {
  if (q->n == q->cap) {
    q->cap = q->cap ? q->cap * 2 : 1024;
    void **grown = realloc(q->parked, q->cap * sizeof *grown);
    if (!grown) abort();
    q->parked = grown;
  }
  q->parked[q->n++] = p;
}

static void *poisoning_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  quarantine_t *q = ud;
  if (nsize == 0) {
    if (ptr) {
      memset(ptr, POISON, osize);
      park(q, ptr);
    }
    return NULL;
  }
  void *p = malloc(nsize);
  if (!p) return NULL;
  if (ptr) {
    memcpy(p, ptr, osize < nsize ? osize : nsize);
    memset(ptr, POISON, osize);
    park(q, ptr);
  }
  return p;
}

static const char timers_outlive_maker[] =
    "local loop = require('moonlet.loop')\n"
    "local sched = require('moonlet.sched')\n"
    "sched.run(function()\n"
    "  local timers = {}\n"
    "  for i = 1, 20 do\n"
    "    local done = false\n"
    "    sched.spawn('maker', function()\n"
    "      timers[i] = loop.timer(60000, function() end)\n"
    "      done = true\n"
    "    end)\n"
    "    while not done do loop.sleep(0) end\n"
    "  end\n"
    "  collectgarbage(); collectgarbage()\n"
    "  local finished = false\n"
    "  sched.spawn('closer', function()\n"
    "    for _, t in ipairs(timers) do t.stop() end\n"
    "    finished = true\n"
    "  end)\n"
    "  while not finished do loop.sleep(0) end\n"
    "end)\n";

/* The runtime is first asked for inside a coroutine, which then ends; the
 * loop must still drain events through a live thread afterwards. */
static const char runtime_born_in_coroutine[] =
    "local co = coroutine.create(function()\n"
    "  return require('moonlet.core.loop').next_id()\n"
    "end)\n"
    "assert(coroutine.resume(co))\n"
    "co = nil\n"
    "collectgarbage(); collectgarbage()\n"
    "local loop = require('moonlet.loop')\n"
    "local fired = 0\n"
    "loop.run(function()\n"
    "  for _ = 1, 3 do loop.sleep(1); fired = fired + 1 end\n"
    "end)\n"
    "assert(fired == 3, 'timers fired ' .. fired)\n";

static void run(const char *what, const char *code) {
  quarantine_t q = {0};
  lua_State *L = lua_newstate(poisoning_alloc, &q);
  luaL_openlibs(L);
  luaL_requiref(L, "moonlet_core", luaopen_moonlet_core, 0);
  lua_pop(L, 1);
  int rc = luaL_dostring(L, code);
  ok(rc == LUA_OK, "%s%s%s", what, rc == LUA_OK ? "" : ": ",
     rc == LUA_OK ? "" : lua_tostring(L, -1));
  lua_close(L);
  for (size_t i = 0; i < q.n; i++) free(q.parked[i]);
  free(q.parked);
}

int main(void) {
  run("timers stop and close after their maker coroutine is collected",
      timers_outlive_maker);
  run("a runtime first made inside a coroutine keeps a live thread",
      runtime_born_in_coroutine);
  return tap_done();
}
