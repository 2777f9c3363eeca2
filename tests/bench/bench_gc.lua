-- Garbage collector benchmark (not part of ctest), in process: the API
-- stack (memory store, router, in-process client) and a manager running
-- only the garbagecollector controller.
--  1. delete the owner of N ConfigMaps (background): time until all are gone;
--  2. per-delete cost (owner with one dependent, delete -> dependent gone),
--     with 0 and then U unrelated objects present (end to end, and the
--     time inside the collector's work items); baseline in the same
--     run: one pass of the old in-line collector's scan of every object of
--     every kind for dependents, which it made on every delete.
--   moonlet lua tests/bench/bench_gc.lua [N=1000] [U=10000] [ROUNDS=30]
-- Prints one JSON line of figures (milliseconds).
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local json = require("moonlet.json")
local plugins = require("moonlet.plugins")
local kinds = require("moonlet.api.kinds")
local manager = require("moonlet.controller.manager")

local n = tonumber(arg[1] or "") or 1000
local unrelated = tonumber(arg[2] or "") or 10000
local rounds = tonumber(arg[3] or "") or 30
local CM = "v1/ConfigMap"

local function ms_since(t0) return (loop.hrtime() - t0) / 1e6 end

local function cm(name, ns, owner)
  return { apiVersion = "v1", kind = "ConfigMap",
    metadata = { name = name, namespace = ns,
      ownerReferences = owner and json.array({ { apiVersion = "v1", kind = "ConfigMap",
        name = owner.metadata.name, uid = owner.metadata.uid } }) or nil },
    data = { k = "v" } }
end

local out = { dependents = n, unrelated = unrelated, rounds = rounds }
sched.run(function()
  local store = assert(require("moonlet.store").open({ backend = "memory" }))
  local loaded, errors = plugins.load({})
  assert(#errors == 0, table.concat(errors, "\n"))
  kinds.reset()
  for _, name in ipairs(plugins.names(loaded, "kinds")) do
    kinds.register(loaded.kinds[name].value, loaded.kinds[name].display)
  end
  local router = require("moonlet.api.router").new({ store = store, token = "t", version = "0",
    log = function() end })
  local c = require("moonlet.client").new({ transport = require("moonlet.api.inproc").transport(router) })
  for _, ns in ipairs({ "default", "bulk" }) do
    assert(c:create("v1/Namespace", { apiVersion = "v1", kind = "Namespace", metadata = { name = ns } }))
  end
  local m = manager.new({ client = c, log = function() end })
  local ctl = m:add(loaded.controllers["garbagecollector"].value)
  -- time spent in the collector's own work items (API calls included)
  local busy = 0
  local reconcile = ctl.plugin.reconcile
  ctl.plugin = setmetatable({ reconcile = function(...)
    local t = loop.hrtime()
    local r = reconcile(...)
    busy = busy + (loop.hrtime() - t) / 1e6
    return r
  end }, { __index = ctl.plugin })
  m:start()
  assert(m:wait_idle(30))
  local function gone(name) return c:get(CM, "default", name) == nil end

  -- 1. one owner, n dependents
  local owner = assert(c:create(CM, cm("owner", "default")))
  for i = 1, n do assert(c:create(CM, cm("dep-" .. i, "default", owner))) end
  assert(m:wait_idle(60))
  local t0 = loop.hrtime()
  assert(c:delete(CM, "default", "owner"))
  while not gone("dep-" .. n) or #assert(c:list(CM, { namespace = "default", limit = 1 })).items > 0 do
    loop.sleep(2)
  end
  out.collect_all_ms = ms_since(t0)
  out.collect_per_object_ms = out.collect_all_ms / n

  -- 2. per-delete latency, without and with unrelated objects
  local function per_delete(tag)
    local total = 0
    busy = 0
    for r = 1, rounds do
      local o = assert(c:create(CM, cm(tag .. "-o" .. r, "default")))
      assert(c:create(CM, cm(tag .. "-d" .. r, "default", o)))
      assert(m:wait_idle(30, 5))
      local t = loop.hrtime()
      assert(c:delete(CM, "default", o.metadata.name))
      while not gone(tag .. "-d" .. r) do loop.sleep(1) end
      total = total + ms_since(t)
    end
    return total / rounds, busy / rounds
  end
  out.per_delete_ms_empty, out.gc_work_ms_empty = per_delete("a")
  local t1 = loop.hrtime()
  for i = 1, unrelated do assert(c:create(CM, cm("u-" .. i, "bulk"))) end
  assert(m:wait_idle(120))
  out.create_unrelated_ms = ms_since(t1)
  out.per_delete_ms_with_unrelated, out.gc_work_ms_with_unrelated = per_delete("b")
  out.per_delete_ratio = out.per_delete_ms_with_unrelated / out.per_delete_ms_empty
  out.graph_objects = ctl.ctx.gc.graph:size()

  -- baseline: the old in-line collector's scan (every object of every
  -- kind) for one deleted owner's dependents
  local t2 = loop.hrtime()
  local found = 0
  for _, def in ipairs(kinds.all()) do
    local res = store:list(def.store_resource, {})
    for _, o in ipairs(res and res.items or {}) do
      for _, ref in ipairs(o.metadata.ownerReferences or {}) do
        if ref.uid == "none" then found = found + 1 end
      end
    end
  end
  out.baseline_scan_ms = ms_since(t2)
  out.speedup_vs_scan = out.baseline_scan_ms / out.per_delete_ms_with_unrelated
  m:stop()
  require("moonlet.api.handlers").stop_watches()
  loop.sleep(5)
  store:close()
end)
print(json.encode(out))
