-- Where the node agent keeps container logs: in the pod's directory as
-- <container>_<id>.log, one directory per pod (a mkdir cost 0.1-0.4 ms of
-- CPU on the disks this runs on, and a pod start made two); pruning
-- without listing for pods this agent made, with a listing for pod dirs a
-- previous server left; the spare log named like the instance logs; and
-- the logs subresource finding a log of the older layout
-- (<pod dir>/<container>/<id>.log) of an adopted container.
require("moonlet_core")
local agent_mod = require("moonlet.kubelet.agent")
local logs = require("moonlet.kubelet.logs")
local sys = require("moonlet.core.sys")

local function pod(name, uid)
  return { metadata = { namespace = "default", name = name, uid = uid } }
end

local function touch(path) assert(io.open(path, "a")):close() end
local function exists(path) return sys.stat(path) ~= nil end
local function entries(dir)
  local out = sys.listdir(dir) or {}
  table.sort(out)
  return out
end

describe("kubelet log layout", function()
  local dir, a
  before_each(function()
    dir = os.tmpname() .. ".d"
    a = agent_mod.new({ client = {}, data_dir = dir, log = function() end })
    assert(sys.mkdir(dir, 448))
    assert(sys.mkdir(a.pods_dir, 448))
  end)
  after_each(function() agent_mod.rm_rf(dir) end)

  it("puts every log of a pod in its one directory", function()
    a:scan_pod_dirs()
    local p = pod("web", "u1")
    local l1 = a:log_path(p, "main", "aa01")
    local l2 = a:log_path(p, "side", "bb02")
    local pdir = a:pod_dir(p)
    assert.are.equal(pdir .. "/main_aa01.log", l1)
    assert.are.equal(pdir .. "/side_bb02.log", l2)
    touch(l1)
    touch(l2)
    assert.are.same({ "main_aa01.log", "side_bb02.log" }, entries(pdir))
    assert.are.same({ "default_web_u1" }, entries(a.pods_dir)) -- no directory per container
  end)

  it("prunes the logs it made without listing, and only the container's", function()
    a:scan_pod_dirs()
    local p = pod("web", "u1")
    for _, id in ipairs({ "a1", "a2", "a3" }) do touch(a:log_path(p, "main", id)) end
    touch(a:log_path(p, "side", "b1"))
    local listdir = sys.listdir
    local listed = 0
    sys.listdir = function(...) listed = listed + 1; return listdir(...) end
    local ok, err = pcall(a.prune_logs, a, p, "main", { "a3", "a2" })
    sys.listdir = listdir
    assert(ok, err)
    assert.are.equal(0, listed)
    assert.are.same({ "main_a2.log", "main_a3.log", "side_b1.log" }, entries(a:pod_dir(p)))
  end)

  it("lists a pod dir a previous server left before pruning it", function()
    local p = pod("old", "u2")
    local pdir = a:pod_dir(p)
    assert(sys.mkdir(pdir, 448))
    touch(pdir .. "/main_c1.log") -- a previous server's logs
    touch(pdir .. "/main_c2.log")
    touch(pdir .. "/mainx_c3.log") -- another container whose name starts alike
    a:scan_pod_dirs()
    touch(a:log_path(p, "main", "c4"))
    a:prune_logs(p, "main", { "c4" })
    assert.are.same({ "main_c4.log", "mainx_c3.log" }, entries(pdir))
  end)

  it("names the spare log like the instance logs", function()
    local worker = require("moonlet.kubelet.worker")
    a:scan_pod_dirs()
    local p = pod("web", "u3")
    p.spec = { restartPolicy = "Always", containers = { { name = "main" } } }
    local w = worker.new(a, p)
    local rec = { name = "main" }
    local log = a:log_path(p, "main", "d1")
    touch(log)
    w:keep_spare_log(rec, log, { "d1" })
    assert.are.equal(a:pod_dir(p) .. "/main_spare.log", rec.spare_log)
    -- made later (Worker:arm_later), off the start's path
    assert.is_false(exists(rec.spare_log))
    assert.is_false(rec.spare_ready)
  end)

  it("serves the log of a container adopted with the older layout", function()
    a:scan_pod_dirs()
    local p = pod("kept", "u4")
    local pdir = a:pod_dir(p)
    assert(sys.mkdir(pdir, 448))
    assert(sys.mkdir(pdir .. "/main", 448))
    touch(pdir .. "/main/e1.log")
    logs.configure({ agent = a })
    local ok, path = pcall(logs.path, p, "main", "moonlet://e1")
    local now_path = logs.path(p, "main", "moonlet://e2")
    logs.configure({ agent = nil })
    assert(ok, path)
    assert.are.equal(pdir .. "/main/e1.log", path)
    assert.are.equal(pdir .. "/main_e2.log", now_path)
  end)

  it("makes a pod's dir once, on libuv's pool when called from a coroutine", function()
    a:scan_pod_dirs()
    local sched = require("moonlet.sched")
    local mkdir = sys.mkdir
    local sync_calls = 0
    sys.mkdir = function(...) sync_calls = sync_calls + 1; return mkdir(...) end
    local p = pod("web", "u9")
    local ok, first, second = pcall(sched.run, function()
      return a:make_pod_dir(p), a:make_pod_dir(p)
    end)
    sys.mkdir = mkdir
    assert(ok, first)
    assert.is_true(first)   -- waited for the pool
    assert.is_false(second) -- made already
    assert.are.equal(0, sync_calls)
    assert.are.equal("dir", sys.stat(a:pod_dir(p)).type)
    -- outside a coroutine there is nothing to wait in: made at once
    local q = pod("db", "u10")
    assert.is_false(a:make_pod_dir(q))
    assert.are.equal("dir", sys.stat(a:pod_dir(q)).type)
  end)

  it("answers sys.mkdir_async with true, or nil and the reason", function()
    local sched = require("moonlet.sched")
    local loop = require("moonlet.loop")
    local function mk(path)
      local id = loop.next_id()
      sys.mkdir_async(id, path, 448)
      return sched.wait(id)
    end
    local r = table.pack(sched.run(function()
      local out = {}
      out[1] = table.pack(mk(dir .. "/new"))
      out[2] = table.pack(mk(dir .. "/new")) -- there already: fine
      out[3] = table.pack(mk(dir .. "/no/such/parent"))
      return out
    end))[1]
    assert.are.same({ n = 1, true }, r[1])
    assert.are.same({ n = 1, true }, r[2])
    assert.is_nil(r[3][1])
    assert.are.equal("ENOENT: " .. dir .. "/no/such/parent", r[3][2])
    assert.are.equal("ENOENT", r[3][3])
  end)
end)
