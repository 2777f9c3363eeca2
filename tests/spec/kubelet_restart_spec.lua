-- The restart path of the pod worker, against a fake agent that records the
-- order of what the worker does: after an exit the next instance is spawned
-- before anything else touches the disk or the API (old logs are pruned and
-- the status written after the spawn), and the status signature that skips
-- unchanged writes leaves the condition times in place.
require("moonlet_core")
local worker = require("moonlet.kubelet.worker")
local backoff = require("moonlet.kubelet.backoff")
local ports = require("moonlet.kubelet.ports")
local json = require("moonlet.json")

local function fake_agent()
  local a = { node_name = "n1", host_ip = "127.0.0.1", now = 1000, trail = {}, spawned = {},
    statuses = {}, image_dirs = {}, base_env = { { "PATH", "/usr/bin:/bin" } } }
  local function note(what) a.trail[#a.trail + 1] = what end
  a.clock = function() return a.now end
  a.crash_backoff = backoff.new({ initial = 10, max = 300, clock = a.clock })
  a.image_backoff = backoff.new({ initial = 10, max = 300, clock = a.clock })
  a.ports = ports.new({ pick = function() return 42000 end })
  a.runtime = { spawn = function(o, on_exit)
    note("spawn")
    local h = { opts = o }
    function h.stop() end
    function h.kill() end
    function h.exit(code) on_exit({ exit_code = code, signal = code > 128 and code - 128 or nil }) end
    a.spawned[#a.spawned + 1] = h
    return h
  end }
  a.api = {
    status = function(_, st)
      note("status")
      a.statuses[#a.statuses + 1] = json.decode(json.encode(st))
      return true
    end,
    delete = function() end,
    event = function() end,
  }
  a.timer = function()
    note("timer")
    return { stop = function() end }
  end
  local id = 0
  a.new_id = function() id = id + 1; return string.format("%064x", id) end
  a.log = function() end
  function a.pod_dir() return "/tmp" end
  function a.make_pod_dir() return false end
  function a.log_path(_, _, _, i) return "/dev/null/" .. tostring(i) end
  function a.prune_logs(_, _, _, keep)
    note("prune")
    a.kept = keep
  end
  function a.forget() end
  return a
end

local function pod()
  return { apiVersion = "v1", kind = "Pod",
    metadata = { name = "p", namespace = "default", uid = "uid-r" },
    spec = { restartPolicy = "Always", terminationGracePeriodSeconds = 30, nodeName = "n1",
      containers = { { name = "c", image = "x", command = { "sleep", "1000" } } } },
    status = { phase = "Pending" } }
end

describe("kubelet worker restart path", function()
  it("spawns the next instance first: no timer, logs pruned and status written after", function()
    local a = fake_agent()
    worker.new(a, pod()):start()
    assert.are.same({ "spawn", "prune", "status" }, a.trail)
    a.trail = {}
    a.now = a.now + 5
    a.spawned[1].exit(137)
    assert.are.equal(2, #a.spawned)
    assert.are.same({ "spawn", "prune", "status" }, a.trail)
    -- The new instance's log and the killed one's stay.
    assert.are.same({ string.format("%064x", 2), string.format("%064x", 1) }, a.kept)
    local s = a.statuses[#a.statuses].containerStatuses[1]
    assert.are.equal(1, s.restartCount)
    assert.are.equal(137, s.lastState.terminated.exitCode)
    assert.is_truthy(s.state.running)
  end)

  it("skips a status that differs only in condition times, and keeps the times", function()
    local a = fake_agent()
    local w = worker.new(a, pod())
    w:start()
    local n = #a.statuses
    local written = a.statuses[n]
    assert.is_truthy(written.conditions[1].lastTransitionTime)
    -- The informer hands the written status back; later syncs change only
    -- the clock.
    local p2 = pod()
    p2.status = json.decode(json.encode(written))
    w:update(p2)
    a.now = a.now + 3600
    w:write_status(a.now)
    assert.are.equal(n, #a.statuses)
    -- What is kept per pod to skip a write is a digest, not the status text.
    assert.are.equal("integer", math.type(w.last_status))
    assert.are_not.equal(json.digest({ a = 1 }), json.digest({ a = 2 }))
    local st = w:compute_status(a.now)
    for _, c in ipairs(st.conditions) do assert.is_truthy(c.lastTransitionTime) end
    -- A real change is written, with its condition times.
    a.spawned[1].exit(1)
    assert.is_true(#a.statuses > n)
    for _, c in ipairs(a.statuses[#a.statuses].conditions) do
      assert.is_truthy(c.lastTransitionTime)
    end
  end)

  it("opens a log file made beforehand at a restart, recycling the file of an instance it drops", function()
    local dir = os.tmpname() .. ".d"
    os.execute("mkdir -p '" .. dir .. "/c'")
    local function exists(path)
      local f = io.open(path, "r")
      if f then f:close() end
      return f ~= nil
    end
    local function inode(path)
      local h = io.popen("stat -c %i '" .. path .. "' 2>/dev/null")
      local v = h:read("a")
      h:close()
      return tonumber(v)
    end
    local function files()
      local h = io.popen("ls '" .. dir .. "/c'")
      local n = 0
      for _ in h:read("a"):gmatch("[^\n]+") do n = n + 1 end
      h:close()
      return n
    end
    local a = fake_agent()
    a.pods_dir = dir
    function a.log_path(_, _, cname, id) return dir .. "/" .. cname .. "/" .. id .. ".log" end
    function a.prune_logs(_, _, cname, keep)
      local h = io.popen("ls '" .. dir .. "/" .. cname .. "'")
      for n in h:read("a"):gmatch("[^\n]+") do
        local id = n:match("^(%x+)%.log")
        if id and id ~= keep[1] and id ~= keep[2] then os.remove(dir .. "/" .. cname .. "/" .. n) end
      end
      h:close()
    end
    -- As the process runtime does: the spare it is given (stdout_log_from)
    -- takes the log's name, else the log file is opened (made if missing).
    -- existed: whether the file the instance writes was there already.
    local existed = {}
    local spawn = a.runtime.spawn
    a.runtime.spawn = function(o, on_exit)
      if o.stdout_log_from and exists(o.stdout_log_from) then
        existed[#existed + 1] = true
        assert.is_false(exists(o.stdout_log))
        os.rename(o.stdout_log_from, o.stdout_log)
      else
        existed[#existed + 1] = exists(o.stdout_log)
        io.open(o.stdout_log, "a"):close()
      end
      return spawn(o, on_exit)
    end
    local w = worker.new(a, pod())
    w:start()
    local spare = dir .. "/c/spare.log"
    assert.is_false(existed[1])
    assert.is_true(exists(spare))
    local spare_ino = inode(spare)
    a.spawned[1].exit(137)
    assert.are.equal(2, #a.spawned)
    assert.is_true(existed[2]) -- the spare, renamed: no new file on the way
    assert.are.equal(spare_ino, inode(a.spawned[2].opts.stdout_log))
    assert.is_true(exists(spare))
    local first = a.spawned[1].opts.stdout_log
    local f = io.open(first, "w")
    f:write("first instance\n")
    f:close()
    local first_ino = inode(first)
    -- The next restart comes after the crash-loop back-off.
    a.spawned[2].exit(1)
    a.now = a.now + 20
    w:wake()
    assert.are.equal(3, #a.spawned)
    assert.is_true(existed[3])
    assert.is_false(exists(first))
    assert.are.equal(first_ino, inode(spare)) -- recycled, and emptied
    assert.are.equal("", io.open(spare):read("a"))
    assert.are.equal(3, files()) -- current, previous, spare
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)
