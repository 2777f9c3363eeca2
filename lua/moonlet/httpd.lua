-- moonlet.httpd: the HTTP server for Lua. listen(url, handler) runs
-- handler(req) in its own coroutine for every request; the handler answers
-- with req:respond(...) or streams with req:stream(...) (watches, log
-- follow). Built on moonlet.core.httpd; answers are written at the end of
-- the loop turn, after the store committed that turn's writes.
local core = require("moonlet.core.httpd")
local loop = require("moonlet.core.loop")
local runtime = require("moonlet.core.runtime")
local sched = require("moonlet.sched")

local M = {
  configure = core.configure, -- {max_header_bytes=, max_body_bytes=, idle_timeout_ms=, shutdown_grace_ms=}
  stats = core.stats,
}

--- Makes sure DIR/tls.crt and DIR/tls.key hold a self-signed serving
--- certificate for localhost, this host's name, 127.0.0.1, ::1 and the
--- given extra names; reuses a valid one. Returns true when it wrote a new
--- pair, false when it kept the old one, or nil, err, name.
function M.ensure_cert(dir, hostnames, ips)
  return core.tls_ensure_cert(dir, hostnames, ips)
end

--- Percent-decodes `s`; '+' becomes a space only when `plus` is true.
function M.unescape(s, plus) return core.unescape(s, plus) end

--- Parses a raw query string into { name = { value, ... } } (form
--- encoding: percent escapes and '+' as space; "a" alone gives "").
function M.parse_query(query)
  local out = {}
  if not query or query == "" then return out end
  for piece in query:gmatch("[^&]+") do
    local k, v = piece:match("^([^=]*)=(.*)$")
    if not k then k, v = piece, "" end
    k, v = core.unescape(k, true), core.unescape(v, true)
    local list = out[k]
    if not list then
      list = {}
      out[k] = list
    end
    list[#list + 1] = v
  end
  return out
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    if c == "\n" then return "\\n" end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

--- A Kubernetes Status body for an error answer.
function M.status_body(code, reason, message)
  return string.format('{"kind":"Status","apiVersion":"v1","metadata":{},'
    .. '"status":"Failure","message":%s,"reason":"%s","code":%d}',
    json_string(message), reason, code)
end

-- {====== requests

local Request = {}
Request.__index = Request

local Writer = {}
Writer.__index = Writer

local function finish(req)
  req._state = "done"
  local open = req._server._open
  open[req.id] = nil
  req._server:_settle()
end

--- Answers with a complete response; Content-Length is set by the server.
--- Returns true, or nil, err, name when the peer is gone (ENOTFOUND).
function Request:respond(status, headers, body)
  if self._state ~= "new" then
    error("moonlet.httpd: request " .. self.id .. " already answered", 2)
  end
  finish(self)
  return core.respond(self.id, status, headers, body or "")
end

--- Starts a chunked response; returns a writer with :write() and :finish().
function Request:stream(status, headers)
  if self._state ~= "new" then
    error("moonlet.httpd: request " .. self.id .. " already answered", 2)
  end
  local ok, err, name = core.stream_begin(self.id, status, headers)
  if not ok then
    finish(self)
    return nil, err, name
  end
  self._state = "streaming"
  return setmetatable({ req = self }, Writer)
end

--- Marks the request taken over by a WebSocket session (moonlet.core.exec
--- upgraded it): the handler keeps it until upgrade_done(); on_close
--- callbacks run when the session ends.
function Request:upgraded()
  if self._state ~= "new" then
    error("moonlet.httpd: request " .. self.id .. " already answered", 2)
  end
  self._state = "upgraded"
end

--- The WebSocket session of an upgraded request is over.
function Request:upgrade_done()
  if self._state == "upgraded" then finish(self) end
end

--- Calls fn(req) when the peer goes away (or the server stops); at once
--- (in a new coroutine) if that already happened.
function Request:on_close(fn)
  if self.closed then
    sched.spawn("httpd.on_close", fn, self)
    return
  end
  local fns = self._on_close
  if not fns then
    fns = {}
    self._on_close = fns
  end
  fns[#fns + 1] = fn
end

--- Queues one chunk. Returns the bytes not yet written to the peer, or
--- nil, err, name once the connection is gone.
function Writer:write(data)
  if self.req._state ~= "streaming" then
    error("moonlet.httpd: write on a finished stream", 2)
  end
  if data == "" then return 0 end
  return core.stream_write(self.req.id, data)
end

--- Pipes a store watch into the stream: every event of
--- store:watch-like `opts` ({namespace=, label_selector=, field_selector=,
--- resource_version=}) on `resource` is written as a line
--- `{"type":T,"object":OBJ}` by the core, without Lua. `id` gets
--- ("closed", req_id) once the store closes or the stream goes away.
--- Returns a pipe with :close(), or nil, err, name (the store's error,
--- e.g. EGONE for a resourceVersion older than the window).
function Writer:pipe_watch(store, id, resource, opts)
  if self.req._state ~= "streaming" then
    error("moonlet.httpd: pipe_watch on a finished stream", 2)
  end
  return core.stream_watch(self.req.id, store, id, resource, opts)
end

--- Ends the stream (idempotent).
function Writer:finish()
  local req = self.req
  if req._state ~= "streaming" then return true end
  finish(req)
  return core.stream_end(req.id)
end

-- }======

-- {====== servers

local Server = {}
Server.__index = Server

function Server:port() return self._l:port() end
function Server:url() return self._l:url() end

--- Stops accepting; unanswered requests may still be answered and
--- streams are told to close (their req:on_close callbacks run).
function Server:close()
  if self._closed then return end
  self._closed = true
  self._l:close()
  self:_settle()
end

-- Drops the event handler once closed and nothing is open any more.
function Server:_settle()
  if self._closed and next(self._open) == nil then sched.forget(self._id) end
end

local function fail_request(req, message)
  runtime.log("error", message)
  if req._state == "new" then
    local first = tostring(message):match("^[^\n]*")
    req:respond(500, { ["Content-Type"] = "application/json" },
      M.status_body(500, "InternalError", "Internal error occurred: " .. first))
  elseif req._state == "streaming" then
    Writer.finish({ req = req })
  elseif req._state == "upgraded" then
    req:upgrade_done()
  end
end

local function serve(srv, handler, req)
  setmetatable(req, Request)
  req._state = "new"
  req._server = srv
  req.closed = false
  srv._open[req.id] = req
  local ok, err = xpcall(handler, debug.traceback, req)
  if not ok then
    fail_request(req, string.format("httpd: %s %s: %s", req.method, req.url, err))
  elseif req._state ~= "done" then
    if req._state == "new" then
      fail_request(req, string.format("httpd: %s %s: handler returned without answering",
        req.method, req.url))
    elseif req._state == "upgraded" then
      req:upgrade_done()
    else
      Writer.finish({ req = req }) -- a handler that returns ends its stream
    end
  end
end

local function closed(srv, id)
  local req = srv._open[id]
  if not req or req.closed then return end
  req.closed = true
  for _, fn in ipairs(req._on_close or {}) do
    local ok, err = xpcall(fn, debug.traceback, req)
    if not ok then runtime.log("error", "httpd: on_close: " .. tostring(err)) end
  end
end

--- Listens on "unix:PATH", "tcp://HOST:PORT" or "https://HOST:PORT" (port
--- 0 picks one). opts.mode: permission bits of a unix socket (default
--- 0600); opts.tls = { cert_file=, key_file= } serves TLS on a TCP url (an
--- https:// url requires it). Requests over TLS carry req.tls = true.
--- Returns the server, or nil, err, name.
function M.listen(url, handler, opts)
  assert(type(handler) == "function", "moonlet.httpd.listen: handler must be a function")
  local tls = opts and opts.tls
  if url:match("^https://") and not tls then
    error("moonlet.httpd.listen: an https:// url needs opts.tls", 2)
  end
  local id = loop.next_id()
  local l, err, name = core.listen(url, id, opts and opts.mode, tls)
  if not l then return nil, err, name end
  local srv = setmetatable({ _l = l, _id = id, _open = {}, _closed = false }, Server)
  sched.on(id, function(kind, payload)
    if kind == "request" then
      serve(srv, handler, payload)
    else
      closed(srv, payload)
    end
  end)
  return srv
end

-- }======

return M
