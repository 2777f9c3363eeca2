-- The kubia app: "You've hit <hostname>" for every request, one log line
-- per request. With KUBIA_FAIL_AFTER=N every request after the N-th gets a
-- 500 ("I'm not well. Please restart me!"), as kubia-unhealthy does; with
-- KUBIA_IGNORE_TERM=1 SIGTERM is ignored, as node running as PID 1 does in
-- the book's container (so a liveness kill ends with SIGKILL: exit 137).
local httpd = require("moonlet.httpd")
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")

local port = tonumber(os.getenv("PORT") or "") or 8080
local host = os.getenv("HOSTNAME") or "kubia"
local fail_after = tonumber(os.getenv("KUBIA_FAIL_AFTER") or "")
local count = 0

if os.getenv("KUBIA_IGNORE_TERM") == "1" then
  loop.on_signal("SIGTERM", function() end)
end

io.stdout:setvbuf("line")
print("Kubia server starting...")
local srv, err = httpd.listen("tcp://0.0.0.0:" .. port, function(req)
  print(string.format("Received request for %s %s", req.method, req.url or req.path or "/"))
  count = count + 1
  if fail_after and count > fail_after then
    return req:respond(500, { ["Content-Type"] = "text/plain" }, "I'm not well. Please restart me!")
  end
  req:respond(200, { ["Content-Type"] = "text/plain" }, "You've hit " .. host .. "\n")
end)
if not srv then
  io.stderr:write("kubia: cannot listen on port ", port, ": ", tostring(err), "\n")
  os.exit(1)
end
-- Serve until killed.
sched.wait(loop.next_id())
