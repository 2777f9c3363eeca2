-- The durability gate end to end on the runtime's loop: a sqlite store
-- (sync full) written by an httpd handler through the store binding's
-- commit hook, curl as the client. While the gate holds its syncs
-- (runtime.durable_pause: a disk that does not answer), the write is in
-- memory at once for in-process readers, but no byte of its answer leaves;
-- once the sync runs, the answer arrives with every commit synced.
require("moonlet_core")
local httpd = require("moonlet.httpd")
local runtime = require("moonlet.core.runtime")
local bg = require("curl_bg")

local function slurp(path) return require("moonlet.files").read(path) end

-- Waits are 5 s unless a call says otherwise (curl starts per request).
local function wait_until(fn, ms) return require("api_stack").wait_until(fn, ms or 5000) end

describe("durability gate", function()
  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
  end)
  after_each(function()
    runtime.durable_pause(false)
    os.execute("rm -rf " .. dir)
  end)

  it("answers a write only once its commit is synced", function()
    local wrote, seen_in_memory
    bg.run(function()
      local s = assert(require("moonlet.core.store").open({ backend = "sqlite",
        path = dir .. "/store.db" }))
      local srv = assert(httpd.listen("unix:" .. dir .. "/api.sock", function(req)
        assert(s:create("configmaps", "default", { metadata = { name = "a" } }))
        wrote = true
        req:respond(201, { ["Content-Type"] = "text/plain" }, "created")
      end))
      local before = runtime.durable()
      runtime.durable_pause(true)
      local out, done = dir .. "/out", dir .. "/done"
      -- -N: curl writes each byte as it arrives, so `out` shows any leak.
      os.execute(string.format(
        "(env -u LD_PRELOAD curl -s -N -i --unix-socket %s/api.sock -X POST http://x/ > %s; echo $? > %s) &",
        dir, out, done))
      assert.is_true(wait_until(function() return wrote end), "the handler ran")
      seen_in_memory = s:get("configmaps", "default", "a") ~= nil
      -- The commit ends the handler's turn: this wait may resume in that
      -- same turn (its timer and the request ready together), before it.
      assert.is_true(wait_until(function() return runtime.durable().committed > before.committed end),
        "the write's turn committed")
      local held = runtime.durable()
      -- Bounded wait for something that must not happen: the answer would
      -- be out within a turn without the gate.
      assert.is_false(wait_until(function() return (slurp(out) or "") ~= "" end, 300),
        "no byte of the answer before the sync")
      assert.are.equal(before.committed + 1, held.committed)
      assert.is_true(held.synced < held.committed)
      runtime.durable_pause(false)
      assert.is_true(wait_until(function() return (slurp(done) or "") ~= "" end),
        "curl finished")
      local got = slurp(out)
      assert.truthy(got:match("^HTTP/1.1 201 Created\r\n"), got)
      assert.truthy(got:find("\r\n\r\ncreated$"), got)
      local after = runtime.durable()
      assert.are.equal(after.committed, after.synced)
      assert.is_true(after.syncs > held.syncs)
      srv:close()
      s:close()
    end)
    assert.is_true(seen_in_memory, "in-process readers see the write at once")
  end)

  -- Held bytes on a TLS connection (sealed at flush, after the handshake's
  -- records) that closes after its answer, and on a keep-alive connection
  -- whose two answers keep their order.
  local function held_then_answered(listen_url, curl_args, n)
    local wrote = 0
    local got, code
    bg.run(function()
      local s = assert(require("moonlet.core.store").open({ backend = "sqlite",
        path = dir .. "/store.db" }))
      local srv = assert(httpd.listen(listen_url, function(req)
        wrote = wrote + 1
        assert(s:create("configmaps", "default", { metadata = { name = "c" .. wrote } }))
        req:respond(201, { ["Content-Type"] = "text/plain" }, "created " .. wrote)
      end, listen_url:find("^tcp") and { tls = { cert_file = dir .. "/tls.crt",
        key_file = dir .. "/tls.key" } } or nil))
      local url = listen_url:find("^tcp") and ("https://127.0.0.1:" .. srv:port()) or "http://x"
      runtime.durable_pause(true)
      local out, done = dir .. "/out", dir .. "/done"
      os.execute(string.format("(env -u LD_PRELOAD curl -s -N -i %s %s > %s; echo $? > %s) &",
        curl_args:gsub("URL", url), "", out, done))
      assert.is_true(wait_until(function() return wrote >= 1 end), "the handler ran")
      assert.is_false(wait_until(function() return (slurp(out) or "") ~= "" end, 300),
        "no byte of the answer before the sync")
      runtime.durable_pause(false)
      assert.is_true(wait_until(function() return (slurp(done) or "") ~= "" end),
        "curl finished")
      got, code = slurp(out), tonumber(slurp(done))
      srv:close()
      s:close()
    end)
    assert.are.equal(0, code, got)
    local last = 0
    for i in got:gmatch("created (%d+)") do
      assert.are.equal(last + 1, tonumber(i), got)
      last = tonumber(i)
    end
    assert.are.equal(n, last, got)
  end

  it("holds a TLS answer on a closing connection until the sync", function()
    assert(httpd.ensure_cert(dir, {}))
    held_then_answered("tcp://127.0.0.1:0",
      "-k -H 'Connection: close' -X POST URL/", 1)
  end)

  it("holds keep-alive answers in order until their syncs", function()
    held_then_answered("unix:" .. dir .. "/api.sock",
      "--unix-socket " .. dir .. "/api.sock -X POST URL/a URL/b", 2)
  end)

  it("answers at once when the store has nothing to sync", function()
    bg.run(function()
      local s = assert(require("moonlet.core.store").open({ backend = "sqlite",
        path = dir .. "/store.db", sync = "normal" }))
      local srv = assert(httpd.listen("unix:" .. dir .. "/api.sock", function(req)
        assert(s:create("configmaps", "default", { metadata = { name = "a" } }))
        req:respond(201, {}, "created")
      end))
      local before = runtime.durable()
      runtime.durable_pause(true)
      local got, code = bg.curl(string.format("-i --unix-socket %s/api.sock -X POST http://x/",
        dir))()
      assert.are.equal(0, code)
      assert.truthy(got:match("^HTTP/1.1 201 Created\r\n"), got)
      assert.are.equal(before.committed, runtime.durable().committed)
      srv:close()
      s:close()
    end)
  end)
end)
