-- Creates the pods of the peer benchmark on a running server:
--   moonlet lua --server URL peers_load.lua PODS.json
-- PODS.json is a JSON array of Pod objects; they are created with 16
-- requests in flight and the script exits once every create has answered
-- (it does not wait for the processes: the benchmark watches /proc itself).
local client = require("moonlet.client").default()
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local json = require("moonlet.json")

local f = assert(io.open(assert(arg[1], "usage: peers_load.lua PODS.json"), "r"))
local pods = assert(json.decode(f:read("a")))
f:close()

local next_i, workers, failed = 1, 16, nil
local finished = loop.next_id()
local running = workers
for _ = 1, workers do
  sched.spawn("creator", function()
    while next_i <= #pods and not failed do
      local pod = pods[next_i]
      next_i = next_i + 1
      local ok, err = client:create("v1/Pod", pod)
      if not ok then failed = pod.metadata.name .. ": " .. tostring(err) end
    end
    running = running - 1
    if running == 0 then sched.wake(finished) end
  end)
end
if running > 0 then sched.wait(finished) end
if failed then
  io.stderr:write("peers_load: ", failed, "\n")
  os.exit(1)
end
