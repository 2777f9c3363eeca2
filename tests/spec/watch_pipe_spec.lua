-- Store watches piped into HTTP streams by the core (httpd Writer:pipe_watch,
-- what the API's plain watches use): the lines clients get, the store's
-- errors, and the end of a pipe when its store closes. curl is the client,
-- in the background so the loop keeps turning.
require("moonlet_core")
local httpd = require("moonlet.httpd")
local store = require("moonlet.store")
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")

local bg = require("curl_bg") -- curl in the background, run() with a keep-alive
local curl, slurp, run = bg.curl, bg.slurp, bg.run

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p " .. tmp))

local function cm(name, labels, n)
  return { apiVersion = "v1", kind = "ConfigMap", metadata = { name = name, labels = labels },
    data = { n = tostring(n) } }
end

-- A server whose every request pipes a watch of configmaps with `opts`;
-- `started` is woken with the pipe (or nil, err, code).
local function serve(s, opts, started, ended)
  return assert(httpd.listen("tcp://127.0.0.1:0", function(req)
    local w = req:stream(200, { ["Content-Type"] = "application/json" })
    local id = loop.next_id()
    local pipe, err, code = w:pipe_watch(s, id, "configmaps", opts)
    if not pipe then
      sched.wake(started, nil, err, code)
      return w:finish()
    end
    req:on_close(function() sched.wake(id, nil) end)
    sched.wake(started, pipe)
    local kind, rid = sched.wait(id)
    if ended then ended(kind, rid, req.id) end
    pipe:close()
    w:finish()
  end))
end

describe("store watches piped into streams", function()
  it("writes each event as a line around the stored text", function()
    run(function()
      local s = assert(store.open({ backend = "memory" }))
      assert(s:create("configmaps", "default", cm("old", { app = "x" }, 0)))
      local started = loop.next_id()
      local srv = serve(s, { namespace = "default", label_selector = "app=x", resource_version = "0" }, started)
      local wait = curl("-N --max-time 0.6 http://127.0.0.1:" .. srv:port() .. "/")
      assert(sched.wait(started))
      local texts = { { "ADDED", s:get_json("configmaps", "default", "old") } }
      local a = assert(s:create("configmaps", "default", cm("a", { app = "x" }, 1)))
      texts[#texts + 1] = { "ADDED", s:get_json("configmaps", "default", "a") }
      assert(s:create("configmaps", "default", cm("other", { app = "y" }, 1))) -- not selected
      a.data.n = "2"
      assert(s:update("configmaps", a))
      texts[#texts + 1] = { "MODIFIED", s:get_json("configmaps", "default", "a") }
      local b = assert(s:get("configmaps", "default", "a"))
      b.metadata.labels.app = "z" -- stops matching: DELETED with the new resourceVersion
      local upd = assert(s:update("configmaps", b))
      local out, code = wait()
      assert.are.equal(28, code)
      local lines = {}
      for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.are.equal(4, #lines)
      for i = 1, 3 do
        assert.are.equal('{"type":"' .. texts[i][1] .. '","object":' .. texts[i][2] .. '}', lines[i])
      end
      local last = require("moonlet.json").decode(lines[4])
      assert.are.equal("DELETED", last.type)
      assert.are.equal(upd.metadata.resourceVersion, last.object.metadata.resourceVersion)
      assert.are.equal("x", last.object.metadata.labels.app)
      srv:close()
      s:close()
    end)
  end)

  it("resumes from a resourceVersion and reports the store's errors", function()
    run(function()
      local s = assert(store.open({ backend = "memory", watch_window = 2 }))
      local first = assert(s:create("configmaps", "default", cm("a", nil, 1)))
      for i = 2, 5 do assert(s:create("configmaps", "default", cm("c" .. i, nil, i))) end
      local started = loop.next_id()
      local srv = serve(s, { resource_version = first.metadata.resourceVersion }, started)
      local wait = curl("-N --max-time 0.3 http://127.0.0.1:" .. srv:port() .. "/")
      local pipe, err, code = sched.wait(started)
      assert.is_nil(pipe)
      assert.are.equal("EGONE", code)
      assert.truthy(err:match("too old resource version"))
      wait()
      srv:close()
      srv = serve(s, { resource_version = "3" }, started)
      wait = curl("-N --max-time 0.3 http://127.0.0.1:" .. srv:port() .. "/")
      assert(sched.wait(started))
      local out = wait()
      local names = {}
      for name in out:gmatch('"name":"(c%d)"') do names[#names + 1] = name end
      assert.are.same({ "c4", "c5" }, names)
      srv:close()
      s:close()
    end)
  end)

  it("tells the stream's owner when the store closes", function()
    run(function()
      local s = assert(store.open({ backend = "memory" }))
      local started = loop.next_id()
      local kind, rid, req_id
      local srv = serve(s, {}, started, function(k, r, q) kind, rid, req_id = k, r, q end)
      local wait = curl("-N --max-time 2 http://127.0.0.1:" .. srv:port() .. "/")
      local pipe = assert(sched.wait(started))
      assert.truthy(tostring(pipe):match("^moonlet.HttpWatchPipe"))
      s:close()
      local out, code = wait()
      assert.are.equal(0, code) -- the stream ended cleanly
      assert.are.equal("", out)
      assert.are.equal("closed", kind)
      assert.are.equal(req_id, rid)
      assert.truthy(tostring(pipe):match("closed"))
      srv:close()
    end)
  end)
end)
