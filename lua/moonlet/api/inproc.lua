-- In-process transport: the server's own controllers talk to the API
-- through the same router the HTTP server uses (same admission, validation
-- and watch semantics), without a socket. A transport takes a request
-- {method, path (with query), headers, body} and returns
-- {status, headers, body} or, for watches, {status, headers, stream} where
-- stream:read() yields the next chunk (nil at the end) and stream:close().
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")
local json = require("moonlet.json")
local request = require("moonlet.api.request")

local M = {}

local function stream_sink(res, ready_id)
  local chunks, reader_id, closed, on_close = {}, loop.next_id(), false, nil
  local st = {}
  function st.read()
    while #chunks == 0 do
      if closed then return nil end
      sched.wait(reader_id)
    end
    return table.remove(chunks, 1)
  end
  function st.close()
    if on_close and not closed then on_close() end
    closed = true
    sched.wake(reader_id)
  end
  local writer = {}
  function writer.write(_, data)
    chunks[#chunks + 1] = data
    sched.wake(reader_id)
  end
  function writer.finish()
    closed = true
    sched.wake(reader_id)
  end
  res.stream = st
  return writer, function(fn) on_close = fn end
end

--- A transport bound to `router`: a callable table. `tables` tells the
--- client it may hand request bodies over as Lua tables (the handlers copy
--- them), which spares an encode and a decode per in-process write.
function M.transport(router)
  local function call(_, req)
    local path, query = req.path:match("^([^?]*)%??(.*)$")
    -- The client escapes names into the path (client.path): decoded once
    -- here, as the HTTP server decodes its request line, for the router.
    path = request.unescape(path)
    local res, ready_id, done = {}, loop.next_id(), false
    local set_close
    local sink = {}
    function sink.respond(_, code, headers, body)
      res.status, res.headers, res.body = code, headers, body
      done = true
      sched.wake(ready_id)
    end
    function sink.stream(_, code, headers)
      res.status, res.headers = code, headers
      local w
      w, set_close = stream_sink(res, ready_id)
      done = true
      sched.wake(ready_id)
      return w
    end
    function sink.on_close(_, fn) if set_close then set_close(fn) end end
    local headers = {}
    for k, v in pairs(req.headers or {}) do headers[k:lower()] = v end
    local hreq = { method = req.method, path = path, query = query, headers = headers,
      body = req.body, transport = "inproc" }
    if req.method == "GET" then
      -- A GET may be a watch whose handler runs as long as its stream.
      sched.spawn("api", function() router:handle(hreq, sink) end)
    else
      -- A write ends with its answer: it runs in the caller's coroutine,
      -- without a coroutine of its own per request.
      router:handle(hreq, sink)
    end
    if not done then sched.wait(ready_id) end
    return res
  end
  return setmetatable({ tables = true }, { __call = call })
end

--- Creates an object through the router (used at start-up); returns the
--- stored object or nil, Status.
function M.create(router, gvk, obj)
  local kinds = require("moonlet.api.kinds")
  local def = kinds.by_kind(gvk)
  local base = def.group == "" and "/api/" .. def.version or ("/apis/" .. def.group .. "/" .. def.version)
  local ns = def.namespaced and ("/namespaces/" .. (obj.metadata.namespace or "default")) or ""
  local res = M.transport(router)({ method = "POST", path = base .. ns .. "/" .. def.plural,
    headers = { ["Content-Type"] = "application/json" }, body = json.encode(obj) })
  local v = json.decode(res.body or "")
  if res.status >= 300 then return nil, v end
  return v
end

return M
