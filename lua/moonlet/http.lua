-- moonlet.http: the HTTP client for scripts (libcurl on the moonlet loop).
-- Every call yields the calling coroutine until its answer arrives, so many
-- coroutines can have requests in flight at once; connections are kept
-- alive and reused. Failures return nil, "ENAME: message", "ENAME".
--
--   local res, err = http.request{ method = "POST", url = "http://localhost/x",
--     unix_socket = "/run/moonlet.sock", headers = { ["Content-Type"] = "a/b" },
--     body = "...", timeout_ms = 5000 }
--   -- res = { status = 201, headers = { ["content-type"] = "..." }, body = "..." }
--
-- Options: method, url, headers ({name = value | {values} | false (drop a
-- default)} or a list of {name, value}), body, unix_socket, timeout_ms,
-- connect_timeout_ms, max_body (keep the first N bytes; res.truncated),
-- follow_redirects (true: up to 10; "same_host": only to the same host name,
-- else the 3xx is returned), insecure, token (bearer), ca_file, cert_file,
-- key_file, keepalive (false: a fresh connection, closed afterwards).
local core = require("moonlet.core.http")
local loop = require("moonlet.core.loop")
local sched = require("moonlet.sched")

local M = {}

--- Sends a request and waits for the whole response.
--- @return {status=, headers=, body=, truncated=, redirects=} | nil, err, name
function M.request(opts)
  local id = loop.next_id()
  local ok, err, name = core.request(id, opts)
  if not ok then return nil, err, name end
  return sched.wait(id)
end

--- GET `url`; `opts` as for request (method and url are set here).
function M.get(url, opts)
  local o = { url = url, method = "GET" }
  if opts then
    for k, v in pairs(opts) do
      if k ~= "url" and k ~= "method" then o[k] = v end
    end
  end
  return M.request(o)
end

local Stream = {}
Stream.__index = Stream

--- Starts a streamed request; returns once the response headers arrived.
--- @return stream with .status, .headers, :read(), :read_line(), :lines(),
---         :close() | nil, err, name
function M.stream(opts)
  local id = loop.next_id()
  local h, err, name = core.stream(id, opts)
  if not h then return nil, err, name end
  local kind, status, headers = sched.wait(id)
  if kind ~= "head" then -- the request ended before a response: an error
    h:close()
    return nil, status, headers
  end
  return setmetatable({ status = status, headers = headers, _id = id, _h = h,
                        _buf = "" }, Stream)
end

--- Next piece of the body (a string), nil at the end, nil, err, name on error.
function Stream:read()
  if self._buf ~= "" then
    local b = self._buf
    self._buf = ""
    return b
  end
  if self._done then return nil, self._err, self._errname end
  local kind, a, b = sched.wait(self._id)
  if kind == "data" then return a end
  self._done = true
  self._h:close() -- the END event was taken: only releases the handle
  if kind == "end" then return nil end
  self._err, self._errname = a, b
  return nil, a, b
end

--- Next line without its "\n" (a last unterminated line is returned too).
function Stream:read_line()
  local buf = self._buf
  self._buf = ""
  while true do
    local i = buf:find("\n", 1, true)
    if i then
      self._buf = buf:sub(i + 1)
      return buf:sub(1, i - 1)
    end
    local chunk, err, name = self:read()
    if not chunk then
      if buf ~= "" and not err then return buf end
      return nil, err, name
    end
    buf = buf .. chunk
  end
end

--- Iterator over lines: `for line in s:lines() do ... end`.
function Stream:lines()
  return function() return self:read_line() end
end

--- Aborts the transfer. A coroutine blocked in read() gets nil, "ECANCELED".
function Stream:close()
  if self._closed then return end
  self._closed = true
  local id = self._id
  local more = self._h:close()
  if not self._done then
    self._done = true
    self._err, self._errname = "ECANCELED: stream closed", "ECANCELED"
    sched.wake(id, nil, self._err, self._errname)
  end
  sched.forget(id)
  if more then
    -- Events already on their way are dropped; the END one ends the id.
    sched.on(id, function(kind)
      if kind ~= "data" then sched.forget(id) end
    end)
  end
end

Stream.__close = Stream.close
Stream.__gc = Stream.close

--- Changes client settings: { max_inflight = n } (0: the default, 256).
M.configure = core.configure

--- Counters: { active=, queued=, sockets=, requests=, connects= }.
M.stats = core.stats

return M
