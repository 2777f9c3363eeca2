/* The store's Lua binding (moonlet.core.store + moonlet.store) run inside
 * an embedded Lua state, so ASan/LeakSanitizer see the binding's memory:
 * writes, lists, watch streams, streams closed with events in flight, and
 * lua_close with a store and watchers still open. Prints TAP. */
#include "tap_lua.h"

static const char basics[] =
    "local store = require('moonlet.store')\n"
    "local sched = require('moonlet.sched')\n"
    "local loop = require('moonlet.loop')\n"
    "local runtime = require('moonlet.core.runtime')\n"
    "local s = assert(store.open{backend='memory', watch_window=3})\n"
    "for i = 1, 5 do\n"
    "  assert(s:create('configmaps', 'ns', {metadata={name='c'..i,\n"
    "    labels={i=tostring(i)}}, data={k='v'}}))\n"
    "end\n"
    "assert(not s:create('configmaps', 'ns', {metadata={name='c1'}}))\n"
    "assert(not s:create('configmaps', 'ns', '{bad'))\n"
    "assert(not s:create('configmaps', 'ns', {metadata={name=function() "
    "end}}))\n"
    "local l = assert(s:list('configmaps', {limit=2, label_selector='i'}))\n"
    "assert(#l.items == 2 and l.continue)\n"
    "assert(not s:list('configmaps', {label_selector='i in ('}))\n"
    "local text = assert(s:list_json('configmaps'))\n"
    "assert(s:get_json('configmaps', 'ns', 'c1'))\n"
    "local c = s:get('configmaps', 'ns', 'c2')\n"
    "c.data.k = 'w'\n"
    "assert(s:update('configmaps', c))\n"
    "assert(s:delete('configmaps', 'ns', 'c3'))\n"
    "assert(not s:watch(loop.next_id(), 'configmaps', "
    "{resource_version='1'}))\n"
    "local got = sched.run(function()\n"
    "  local w = assert(store.watch_stream(s, 'configmaps', "
    "{resource_version='0'}))\n"
    "  local n = 0\n"
    "  for i = 1, 4 do local k, o = w:next(); n = n + 1 end\n"
    "  w:close()\n"
    "  return n\n"
    "end)\n"
    "assert(got == 4)\n"
    "local w2 = assert(store.watch_stream(s, 'configmaps'))\n"
    "assert(s:create('configmaps', 'ns', {metadata={name='x'}}))\n"
    "w2:close()\n"
    "sched.run(function() loop.sleep(1) end)\n"
    "assert(sched.stats().pending == 0 and sched.stats().handlers == 0)\n"
    "s:close()\n"
    "assert(runtime.live_refs() == 0)\n";

/* Left open on purpose: lua_close must free the store, its watchers and
 * the events still queued, in whatever order the finalizers run. */
static const char left_open[] =
    "local store = require('moonlet.store')\n"
    "local loop = require('moonlet.loop')\n"
    "local s = assert(store.open{backend='memory'})\n"
    "assert(s:create('configmaps', 'ns', {metadata={name='a'}}))\n"
    "local w1 = assert(s:watch(loop.next_id(), 'configmaps'))\n"
    "local w2 = assert(store.watch_stream(s, 'configmaps'))\n"
    "assert(s:create('configmaps', 'ns', {metadata={name='b'}}))\n"
    "KEEP = {s, w1, w2}\n";

static const char closed_first[] =
    "local store = require('moonlet.store')\n"
    "local sched = require('moonlet.sched')\n"
    "local s = assert(store.open{backend='memory'})\n"
    "local w = assert(store.watch_stream(s, 'configmaps'))\n"
    "s:close()\n"
    "assert(sched.run(function() return w:next() end) == nil)\n"
    "w:close()\n"
    "collectgarbage()\n";

int main(void) {
  tap_lua_run("binding: writes, errors, lists, watch streams", basics);
  tap_lua_run("binding: lua_close with store and watchers open", left_open);
  tap_lua_run("binding: store closed before its watcher", closed_first);
  return tap_done();
}
