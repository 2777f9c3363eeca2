-- The Job controller's own cost, in process (memory store, API router, the
-- job controller; no scheduler or kubelet: a helper marks every new pod
-- Succeeded at once, as a node running `true` would). Run with
--   moonlet lua tests/bench/jobs_inproc.lua N
-- Creates N one-pod Jobs 16 at a time and prints the time until all are
-- Complete, the process CPU and the API writes that took
-- ({"jobs":..,"seconds":..,"cpu_s":..,"writes":..,"settled_writes":..};
-- settled: once the manager stopped and the queued Events were written).
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local json = require("moonlet.json")
local plugins = require("moonlet.plugins")
local kinds = require("moonlet.api.kinds")

local n = tonumber(arg[1] or "") or 1000
local store = assert(require("moonlet.store").open({ backend = "memory" }))
local loaded = plugins.load({})
kinds.reset()
for _, name in ipairs(plugins.names(loaded, "kinds")) do
  kinds.register(loaded.kinds[name].value, loaded.kinds[name].display)
end
local router = require("moonlet.api.router").new({ store = store, token = "t", version = "0", log = function() end })
local client = require("moonlet.client").new({ transport = require("moonlet.api.inproc").transport(router) })
assert(client:create("v1/Namespace", { apiVersion = "v1", kind = "Namespace", metadata = { name = "default" } }))
local m = require("moonlet.controller").new({ client = client, log = function(l, msg) if os.getenv("BENCH_LOG") then io.stderr:write(l, " ", msg, "\n") end end })
m:add(loaded.controllers["job"].value)
-- the node: every pod ends Succeeded as soon as it is seen
local pods = m:informer("v1/Pod")
pods:add_handler({ add = function(p)
  sched.spawn("node", function()
    local cur = client:get("v1/Pod", "default", p.metadata.name)
    if not cur then return end
    cur.status.phase = "Succeeded"
    local ok, err = client:update_status("v1/Pod", cur)
    if not ok then io.stderr:write("node: ", tostring(err and err.message), "\n") end
  end)
end })
-- Completions counted from the job informer's events (no list copies).
local complete, seen = 0, {}
m:informer("batch/v1/Job"):add_handler({ update = function(_, j)
  if seen[j.metadata.uid] then return end
  for _, c in ipairs((j.status or {}).conditions or {}) do
    if c.type == "Complete" then
      seen[j.metadata.uid] = true
      complete = complete + 1
    end
  end
end })
m:start()

do
  loop.sleep(50)
  local t0, c0 = loop.hrtime(), os.clock()
  local rv0 = store:resource_version()
  local next_i, done = 1, 0
  local finished = loop.next_id()
  for _ = 1, 16 do
    sched.spawn("creator", function()
      while next_i <= n do
        local i = next_i
        next_i = next_i + 1
        assert(client:create("batch/v1/Job", { apiVersion = "batch/v1", kind = "Job",
          metadata = { name = "j" .. i, namespace = "default" },
          spec = { template = { spec = { restartPolicy = "Never",
            containers = { { name = "main", image = "busybox", command = { "true" } } } } } } }))
      end
      done = done + 1
      if done == 16 then sched.wake(finished) end
    end)
  end
  if done < 16 then sched.wait(finished) end
  while complete < n do loop.sleep(5) end
  local out = { jobs = n, seconds = (loop.hrtime() - t0) / 1e9, cpu_s = os.clock() - c0,
    writes = store:resource_version() - rv0 }
  -- Stopping writes the Events still queued in the sink.
  m:stop()
  out.settled_writes = store:resource_version() - rv0
  print(json.encode(out))
  require("moonlet.api.handlers").stop_watches()
end
