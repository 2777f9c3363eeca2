-- Load for test_durability.sh, run with `moonlet lua`: creates ConfigMaps
-- PREFIX-1, PREFIX-2, ... with CONC requests in flight over the unix socket until
-- the server goes away, and appends each name to ACKFILE the moment its 201
-- arrives (flushed, so a name in the file was acknowledged before the kill).
--   moonlet lua ack_load.lua SOCKET ACKFILE CONC PREFIX
local http = require("moonlet.http")
local json = require("moonlet.json")
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")

local sock, ackfile, conc, prefix = arg[1], arg[2], tonumber(arg[3]) or 16, arg[4] or "ack"
local out = assert(io.open(ackfile, "a"))
local next_i, stop = 0, false
local finished, running = loop.next_id(), conc

for _ = 1, conc do
  sched.spawn("ack-load", function()
    while not stop do
      next_i = next_i + 1
      local name = prefix .. "-" .. next_i
      local res = http.request({ method = "POST", unix_socket = sock,
        url = "http://localhost/api/v1/namespaces/default/configmaps",
        headers = { ["Content-Type"] = "application/json" },
        body = json.encode({ apiVersion = "v1", kind = "ConfigMap",
          metadata = { name = name }, data = { n = tostring(next_i) } }) })
      if res and res.status == 201 then
        out:write(name, "\n")
        out:flush()
      elseif not res then
        stop = true -- the server is gone
      end
    end
    running = running - 1
    if running == 0 then sched.wake(finished) end
  end)
end
sched.wait(finished)
out:close()
