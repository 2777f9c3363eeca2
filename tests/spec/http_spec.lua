-- moonlet.http end to end on the real loop, against the fixture server of
-- tests/c/test_http_client.c (run as `test_http_client --serve SOCK PORTFILE`
-- from the build tree next to ML_BIN; it exits when its stdin closes).
require("moonlet_core")
local http = require("moonlet.http")
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")
local runtime = require("moonlet.core.runtime")

local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local dir, sock, portfile, fixture, base

local function tcp(path) return base .. path end
local function unix(path) return { url = "http://localhost" .. path, unix_socket = sock } end

local function with(t, extra)
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

setup(function()
  local bin = assert(os.getenv("ML_BIN"), "ML_BIN must name the moonlet binary")
  local helper = bin:match("^(.*)/[^/]*$") .. "/tests/test_http_client"
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -m 700 " .. shq(dir)))
  sock, portfile = dir .. "/s.sock", dir .. "/port"
  fixture = assert(io.popen("exec " .. shq(helper) .. " --serve " .. shq(sock)
    .. " " .. shq(portfile), "w"))
  local port = sched.run(function()
    for _ = 1, 500 do
      local f = io.open(portfile)
      if f then
        local p = f:read("n")
        f:close()
        return p
      end
      loop.sleep(10)
    end
  end)
  assert(port, "fixture server did not start")
  base = "http://127.0.0.1:" .. port
end)

teardown(function()
  if fixture then fixture:close() end
  os.remove(sock)
  os.remove(portfile)
  os.remove(dir)
end)

describe("moonlet.http.request", function()
  it("GETs over TCP with lower-case headers", function()
    local res, err = sched.run(function() return http.request{ url = tcp("/hello") } end)
    assert.is_nil(err)
    assert.are.equal(200, res.status)
    assert.are.equal("hello world", res.body)
    assert.are.equal("yes", res.headers["x-test"])
    assert.are.equal("a, b", res.headers["x-multi"])
    assert.are.equal("11", res.headers["content-length"])
  end)

  it("POSTs a body and headers over the unix socket", function()
    local res = sched.run(function()
      return http.request(with(unix("/echo"), {
        method = "POST", body = "payload",
        headers = { ["X-Custom"] = "v1", ["Content-Type"] = "application/json" },
        token = "tok",
      }))
    end)
    assert.are.equal("POST payload", res.body)
    assert.are.equal("v1", res.headers["x-got"])
    assert.are.equal("application/json", res.headers["x-content-type"])
    assert.are.equal("Bearer tok", res.headers["x-auth"])
  end)

  it("accepts headers as an ordered list of pairs", function()
    local res = sched.run(function()
      return http.request(with(unix("/echo"), { headers = { { "X-Custom", "pair" } } }))
    end)
    assert.are.equal("pair", res.headers["x-got"])
  end)

  it("has a get() shortcut", function()
    local res = sched.run(function()
      return http.get("http://localhost/echo", { unix_socket = sock, method = "POST" })
    end)
    assert.are.equal("GET ", res.body)
  end)

  it("returns named errors: timeout, refused, missing socket", function()
    local r = sched.run(function()
      local out = {}
      out.t = table.pack(http.request{ url = tcp("/slow"), timeout_ms = 50 })
      out.r = table.pack(http.request{ url = "http://127.0.0.1:1/" })
      out.n = table.pack(http.request{ url = "http://localhost/", unix_socket = dir .. "/none" })
      return out
    end)
    assert.is_nil(r.t[1])
    assert.matches("^ETIMEDOUT: ", r.t[2])
    assert.are.equal("ETIMEDOUT", r.t[3])
    assert.are.equal("ECONNREFUSED", r.r[3])
    assert.matches("^ECONNREFUSED: ", r.r[2])
    assert.are.equal("ENOENT", r.n[3])
  end)

  it("caps the kept body with max_body", function()
    local res = sched.run(function()
      return http.request{ url = tcp("/big"), max_body = 10240 }
    end)
    assert.are.equal(200, res.status)
    assert.are.equal(10240, #res.body)
    assert.is_true(res.truncated)
  end)

  it("follows redirects: never, always, or on the same host only", function()
    local r = sched.run(function()
      return {
        none = http.request{ url = tcp("/redir/2") },
        all = http.request{ url = tcp("/redir/2"), follow_redirects = true },
        same = http.request{ url = tcp("/redir/2"), follow_redirects = "same_host" },
        off = http.request{ url = tcp("/offhost"), follow_redirects = "same_host" },
        loop = table.pack(http.request{ url = tcp("/loop"), follow_redirects = "same_host" }),
      }
    end)
    assert.are.equal(302, r.none.status)
    assert.are.equal(200, r.all.status)
    assert.are.equal(200, r.same.status)
    assert.are.equal(3, r.same.redirects)
    assert.are.equal(302, r.off.status)
    assert.are.equal("moved away", r.off.body)
    assert.matches("stopped after 10 redirects", r.loop[2])
  end)

  it("runs requests of several coroutines at once", function()
    local t0 = loop.hrtime()
    local got = sched.run(function()
      local n = 0
      for _ = 1, 10 do
        sched.spawn("req", function()
          local res = http.request{ url = tcp("/delay/200") }
          if res and res.body == "late" then n = n + 1 end
        end)
      end
      while n < 10 and loop.hrtime() - t0 < 5e9 do loop.sleep(5) end
      return n
    end)
    local ms = (loop.hrtime() - t0) / 1e6
    assert.are.equal(10, got)
    assert.is_true(ms < 1500, "10 x 200 ms took " .. ms .. " ms")
  end)

  it("reuses one connection for sequential requests", function()
    local before, after, s0, s1 = sched.run(function()
      local b = http.request(unix("/count"))
      local st0 = http.stats()
      for _ = 1, 50 do assert(http.request(unix("/hello")).status == 200) end
      local st1 = http.stats()
      return tonumber(b.body), tonumber(http.request(unix("/count")).body), st0, st1
    end)
    assert.are.equal(before, after)
    assert.are.equal(s0.connects, s1.connects)
    assert.are.equal(50, s1.requests - s0.requests)
  end)

  it("raises on misuse", function()
    assert.has_error(function() http.request{} end)
    assert.has_error(function() http.request{ url = tcp("/"), headers = { X = "a\r\nB: c" } } end)
    assert.has_error(function() http.request{ url = tcp("/"), timeout_ms = "soon" } end)
    assert.has_error(function() http.request{ url = tcp("/"), follow_redirects = "maybe" } end)
  end)
end)

describe("moonlet.http.stream", function()
  it("returns after the headers and reads chunks to the end", function()
    local status, ctype, body, tail = sched.run(function()
      local s = assert(http.stream{ url = tcp("/stream") })
      local parts = {}
      while true do
        local chunk, err = s:read()
        assert.is_nil(err)
        if not chunk then break end
        parts[#parts + 1] = chunk
      end
      return s.status, s.headers["content-type"], table.concat(parts), s:read()
    end)
    assert.are.equal(200, status)
    assert.are.equal("text/plain", ctype)
    assert.are.equal("line 1\nline 2\nline 3\nline 4\nline 5\n", body)
    assert.is_nil(tail)
  end)

  it("iterates lines", function()
    local lines = sched.run(function()
      local s = assert(http.stream(unix("/stream")))
      local out = {}
      for line in s:lines() do out[#out + 1] = line end
      return out
    end)
    assert.are.same({ "line 1", "line 2", "line 3", "line 4", "line 5" }, lines)
  end)

  it("close() aborts and wakes a blocked reader", function()
    local first, err, name = sched.run(function()
      local s = assert(http.stream{ url = tcp("/forever") })
      local first = s:read()
      local res
      sched.spawn("reader", function()
        while true do
          local c, e, n = s:read()
          if not c then res = { e, n } return end
        end
      end)
      loop.sleep(50)
      s:close()
      s:close() -- idempotent
      while not res do loop.sleep(1) end
      loop.sleep(50) -- events already on their way are dropped
      return first, res[1], res[2]
    end)
    assert.matches("^line 1", first)
    assert.matches("^ECANCELED", err)
    assert.are.equal("ECANCELED", name)
  end)

  it("reports an error before the headers as nil, err", function()
    local s, err, name = sched.run(function()
      return http.stream{ url = tcp("/slow"), timeout_ms = 50 }
    end)
    assert.is_nil(s)
    assert.matches("^ETIMEDOUT", err)
    assert.are.equal("ETIMEDOUT", name)
  end)

  it("a dropped stream is cancelled by the collector", function()
    local active = sched.run(function()
      do
        local s = assert(http.stream{ url = tcp("/forever") })
        assert(s:read())
      end
      collectgarbage()
      collectgarbage()
      loop.sleep(30)
      return http.stats().active
    end)
    assert.are.equal(0, active)
  end)
end)

-- Client and server in one process, on one loop (what the CLI's in-process
-- paths and the server's own tests do).
local has_httpd, httpd = pcall(require, "moonlet.httpd")
describe("moonlet.http against moonlet.httpd in-process", function()
  if not has_httpd then
    pending("moonlet.httpd is not built in")
    return
  end

  -- (Closing a stream early is covered against the C fixture: in plain
  -- lua5.4 SIGPIPE is not ignored, and httpd writing to a peer that left
  -- would kill the test process.)
  it("round-trips requests and streams", function()
    local path = dir .. "/in.sock"
    local r = sched.run(function()
      local srv = assert(httpd.listen("unix:" .. path, function(req)
        if req.path == "/watch" then
          local w = assert(req:stream(200, { ["Content-Type"] = "application/json" }))
          for i = 1, 3 do
            w:write('{"n":' .. i .. '}\n')
            loop.sleep(5)
          end
          w:finish()
        else
          req:respond(201, { ["X-Echo"] = req.method }, req.body)
        end
      end))
      local out = {}
      local res = assert(http.request{ url = "http://localhost/x", unix_socket = path,
        method = "POST", body = "hi" })
      out.status, out.body, out.echo = res.status, res.body, res.headers["x-echo"]
      local s = assert(http.stream{ url = "http://localhost/watch", unix_socket = path })
      out.ctype = s.headers["content-type"]
      out.lines = {}
      for line in s:lines() do out.lines[#out.lines + 1] = line end
      srv:close()
      return out
    end)
    os.remove(path)
    assert.are.equal(201, r.status)
    assert.are.equal("hi", r.body)
    assert.are.equal("POST", r.echo)
    assert.are.equal("application/json", r.ctype)
    assert.are.same({ '{"n":1}', '{"n":2}', '{"n":3}' }, r.lines)
  end)
end)

describe("moonlet.http bookkeeping", function()
  it("leaves no refs, waiters, queued events or handlers behind", function()
    sched.run(function() loop.sleep(20) end)
    assert.are.equal(0, runtime.live_refs())
    local st = sched.stats()
    assert.are.equal(0, st.waiting)
    assert.are.equal(0, st.pending)
    assert.are.equal(0, st.handlers)
    assert.are.equal(0, http.stats().active)
  end)

  it("measures sequential keep-alive requests over the unix socket", function()
    local n = 3000
    local t0 = loop.hrtime()
    sched.run(function()
      local req = unix("/hello")
      for _ = 1, n do assert(http.request(req).status == 200) end
    end)
    local s = (loop.hrtime() - t0) / 1e9
    print(string.format("\n# lua http.request: %d sequential keep-alive GETs over a unix "
      .. "socket: %.0f req/s (%.1f us/req, fixture in another process)", n, n / s, s * 1e6 / n))
  end)
end)
