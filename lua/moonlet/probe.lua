-- moonlet.probe: one probe attempt on the C runner (moonlet.core.probe), with
-- the kubelet's results and messages. run() yields the calling coroutine
-- until the attempt is over.
--
--   local result, message = probe.run("http", { host = "127.0.0.1",
--     port = 8080, path = "/healthz", scheme = "http",
--     headers = { { name = "X-Custom", value = "v" } } }, 1)
--   -- "success" | "warning" | "failure" | "unknown", message
--
-- Kinds: "http" (host, port, scheme, path, headers), "tcp" (host, port;
-- send, read = N to exchange a line), "exec" (command, env, cwd).
-- "warning" is a success the kubelet reports as an event (redirect to
-- another host); "unknown" is a probe error whose result is thrown away.
local core = require("moonlet.core.probe")
local loop = require("moonlet.core.loop")
local sched = require("moonlet.sched")

local M = {
  kinds = core.kinds,               -- names of the registered kinds
  stats = core.stats,               -- runner counters
  set_max_http = core.set_max_http, -- bound on HTTP probes in flight
}

--- Runs one attempt of `kind` and waits for it.
--- @param timeout_seconds the attempt's deadline (nil or 0: none)
--- @return result, message
function M.run(kind, params, timeout_seconds)
  local id = loop.next_id()
  local ok, err = core.start(id, kind, params or {}, (timeout_seconds or 0) * 1000)
  if not ok then return "unknown", err end
  return sched.wait(id)
end

--- TCP connect check: true, or false and the dial error.
function M.connect(host, port, timeout_seconds)
  local result, message = M.run("tcp", { host = host, port = port }, timeout_seconds)
  if result == "success" then return true end
  return false, message
end

--- Connects, writes `opts.send` (if any) and reads a reply of up to
--- `opts.read` bytes (default 1024) ending at the first newline.
--- @return the reply text, or nil and the error message
function M.exchange(opts)
  local result, message = M.run("tcp", { host = opts.host, port = opts.port,
    send = opts.send, read = opts.read or 1024 }, opts.timeout)
  if result == "success" then return message end
  return nil, message
end

return M
