-- Creates N sleep pods on a running server (moonlet lua --server URL
-- pods_load.lua N) with 16 requests in flight, then waits until every one
-- runs. Prints {"pods":N,"create_s":..,"all_running_s":..}.
local client = require("moonlet.client").default()
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local json = require("moonlet.json")

local n = tonumber(arg[1] or "") or 1000
local t0 = loop.hrtime()
local next_i, done = 1, 0
local finished = loop.next_id()
for _ = 1, 16 do
  sched.spawn("creator", function()
    while next_i <= n do
      local i = next_i
      next_i = next_i + 1
      assert(client:create("v1/Pod", { apiVersion = "v1", kind = "Pod",
        metadata = { name = "rss-" .. i, namespace = "default" },
        spec = { terminationGracePeriodSeconds = 1,
          containers = { { name = "main", image = "busybox", command = { "sleep", "100000" } } } } }))
    end
    done = done + 1
    if done == 16 then sched.wake(finished) end
  end)
end
if done < 16 then sched.wait(finished) end
local created = (loop.hrtime() - t0) / 1e9
while true do
  local list = assert(client:list("v1/Pod", { namespace = "default" }))
  local running = 0
  for _, p in ipairs(list.items) do
    local cs = (p.status or {}).containerStatuses
    if cs and cs[1] and cs[1].state and cs[1].state.running then running = running + 1 end
  end
  if running >= n then break end
  loop.sleep(200)
end
print(json.encode({ pods = n, create_s = created, all_running_s = (loop.hrtime() - t0) / 1e9 }))
