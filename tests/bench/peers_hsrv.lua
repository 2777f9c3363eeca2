-- The tiny per-pod HTTP server of the peer benchmark's health workload:
-- `moonlet lua peers_hsrv.lua PORT` listens on 127.0.0.1:PORT only and
-- answers every request 200 "ok", like the peers' hsrv.py (their W4 server)
-- but without a Python interpreter per pod, so 1,000 of them fit the machine.
-- GET /count answers how many other requests it has served (the probes),
-- so the benchmark can check that every pod really was probed every second.
local httpd = require("moonlet.httpd")
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")

local port = tonumber(arg[1] or os.getenv("PORT") or "")
if not port then
  io.stderr:write("usage: moonlet lua peers_hsrv.lua PORT\n")
  os.exit(2)
end
local served = 0
local srv, err = httpd.listen("tcp://127.0.0.1:" .. port, function(req)
  if (req.path or req.url or ""):match("^/count") then
    return req:respond(200, { ["Content-Type"] = "text/plain" }, tostring(served))
  end
  served = served + 1
  req:respond(200, { ["Content-Type"] = "text/plain" }, "ok\n")
end)
if not srv then
  io.stderr:write("peers_hsrv: cannot listen on port ", port, ": ", tostring(err), "\n")
  os.exit(1)
end
-- Serve until killed.
sched.wait(loop.next_id())
