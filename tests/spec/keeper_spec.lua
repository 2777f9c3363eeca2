-- Kept containers (--keep-pods): a keeper process owns each container, so
-- it outlives the handle (the server); adopt() re-attaches by container id
-- and gets the exit, also one recorded while nobody watched; sweep() ends
-- what no pod claims. Runs the built moonlet binary (ML_BIN) as the keeper.
require("moonlet_core")
local keeper = require("moonlet.kubelet.keeper")
local proc = require("moonlet.proc")
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")

local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local dir, rt

local function alive(pid) return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

-- Polls cond every 10 ms until it holds or 5 s pass (inside sched.run).
local function eventually(cond)
  for _ = 1, 500 do
    if cond() then return true end
    loop.sleep(10)
  end
  return false
end

-- Spawns and hands the result to a channel the test can wait on.
local function spawn(cid, command)
  local exits = {}
  local h, err, name = rt.spawn({ keep_id = cid, command = command, env = { "PATH=/usr/bin:/bin" },
    stdout_log = dir .. "/" .. cid .. ".log", stderr_log = dir .. "/" .. cid .. ".log" },
    function(res) exits[#exits + 1] = res end)
  return h, exits, err, name
end

setup(function()
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -m 700 " .. shq(dir)))
  rt = keeper.runtime(dir, assert(os.getenv("ML_BIN"), "ML_BIN is required"))
end)

teardown(function()
  os.execute("rm -rf " .. shq(dir))
end)

describe("kept containers", function()
  it("run under a keeper, log to their file, and stop with a grace period", function()
    local res, text = sched.run(function()
      local h, exits = spawn("a1", { "sh", "-c", "echo hello; exec sleep 30" })
      assert.is_truthy(h, "spawn failed")
      assert.is_true(h.pid > 0 and alive(h.pid))
      assert.is_true(exists(dir .. "/keep-a1.run"))
      assert.is_true(eventually(function()
        local t = proc.read_log(dir .. "/a1.log", {})
        return t and t:find("hello") ~= nil
      end))
      assert(h:stop(5))
      assert.is_true(eventually(function() return #exits > 0 end))
      return exits[1], proc.read_log(dir .. "/a1.log", {})
    end)
    assert.are.equal(143, res.exit_code)
    assert.are.equal(15, res.signal)
    assert.are.equal("hello\n", text)
    assert.is_false(exists(dir .. "/keep-a1.run"))
    assert.is_false(exists(dir .. "/keep-a1.exit"))
  end)

  it("outlive their handle and are adopted with the same process", function()
    local pid, res = sched.run(function()
      local h = assert(spawn("b1", { "sleep", "30" }))
      local pid = h.pid
      h.keeper:close() -- what a stopping server does
      loop.sleep(50)
      assert.is_true(alive(pid))
      local exits = {}
      local a = rt.adopt("b1", function(r) exits[#exits + 1] = r end)
      assert.is_truthy(a, "adopt failed")
      assert.are.equal(pid, a.pid)
      assert(a:kill("KILL"))
      assert.is_true(eventually(function() return #exits > 0 end))
      return pid, exits[1]
    end)
    assert.are.equal(137, res.exit_code)
    assert.are.equal(pid, res.pid)
    assert.is_false(alive(pid))
  end)

  it("report an exit recorded while nobody watched", function()
    local res = sched.run(function()
      local h = assert(spawn("c1", { "sh", "-c", "sleep 0.2; exit 3" }))
      h.keeper:close()
      assert.is_true(eventually(function() return exists(dir .. "/keep-c1.exit") end))
      local exits = {}
      assert.is_truthy(rt.adopt("c1", function(r) exits[#exits + 1] = r end))
      assert.is_true(eventually(function() return #exits > 0 end))
      return exits[1]
    end)
    assert.are.equal(3, res.exit_code)
    assert.is_nil(res.signal)
    assert.is_false(exists(dir .. "/keep-c1.exit"))
  end)

  it("are swept when unclaimed, and only then", function()
    local a_pid, b_pid, n = sched.run(function()
      local a = assert(spawn("e1", { "sleep", "30" }))
      local b = assert(spawn("e2", { "sleep", "30" }))
      a.keeper:close()
      b.keeper:close()
      -- a fresh runtime is a restarted server: it claimed nothing yet
      local fresh = keeper.runtime(dir, os.getenv("ML_BIN"))
      local n = fresh.sweep({ e1 = true })
      assert.is_true(eventually(function() return not exists(dir .. "/keep-e2.run") end))
      return a.pid, b.pid, n
    end)
    local a_alive, b_alive = alive(a_pid), alive(b_pid)
    os.execute("kill -9 " .. a_pid)
    assert.are.equal(1, n)
    assert.is_true(a_alive)
    assert.is_false(b_alive)
  end)

  it("give the container's start error and adopt nothing unknown", function()
    local h, _, err, name = spawn("d1", { "/nonexistent/moonlet-cmd" })
    assert.is_nil(h)
    assert.are.equal("ENOENT", name)
    assert.matches("nonexistent", err)
    assert.is_false(exists(dir .. "/keep-d1.spec"))
    assert.is_nil(rt.adopt("never-started", function() end))
  end)
end)
