-- Pod benchmarks on the in-process stack (memory store, API router, the
-- scheduler plugin, the node agent with the real process runtime): run with
--   moonlet lua tests/bench/pods_bench.lua start N     create -> process running
--   moonlet lua tests/bench/pods_bench.lua restart N   kill -9 -> next spawn
-- A start runs from before the create call to the runtime's spawn having
-- returned, which it does once the new process has passed exec: the whole
-- path (API create, watch, scheduler bind, kubelet informer, pod worker,
-- spawn). A restart runs from before kill(pid, SIGKILL) (not through the
-- Proc handle, which would disarm the replacement: an outside kill) to the
-- same point for the pod's next process: pidfd, reap, the armed replacement
-- started by the runtime (or the exit event, restart policy and spawn when
-- none was armed). Each kill is that pod's first restart, and kills are
-- GAP_MS (env, default 30) apart so that one restart's tail (status write,
-- events) does not land in the next one, as bench.py's W2 spaces its kills.
-- bench_pods.sh runs restart_floor.c in the same conditions as the floor.
-- Prints one JSON line of figures (milliseconds).
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local json = require("moonlet.json")
local plugins = require("moonlet.plugins")
local kinds = require("moonlet.api.kinds")

local mode, n = arg[1] or "start", tonumber(arg[2] or "") or 200
local gap_ms = tonumber(os.getenv("GAP_MS") or "") or 30

local function pct(list, p)
  table.sort(list)
  if #list == 0 then return 0 end
  return list[math.max(1, math.ceil(#list * p))]
end

local store = assert(require("moonlet.store").open({ backend = "memory" }))
local loaded = plugins.load({})
kinds.reset()
for _, name in ipairs(plugins.names(loaded, "kinds")) do
  kinds.register(loaded.kinds[name].value, loaded.kinds[name].display)
end
local router = require("moonlet.api.router").new({ store = store, token = "t", version = "0", log = function() end })
local transport = require("moonlet.api.inproc").transport(router)
local client = require("moonlet.client").new({ transport = transport })
for _, ns in ipairs({ "default", "kube-node-lease" }) do
  assert(client:create("v1/Namespace", { apiVersion = "v1", kind = "Namespace", metadata = { name = ns } }))
end
local m = require("moonlet.controller").new({ client = client, log = function() end })
m:add(loaded.controllers["scheduler"].value)
m:start()

-- The real process runtime, timed.
local proc = require("moonlet.proc")
local spawned = {} -- pod name -> { t = hrtime, p = Proc }
local waiters = {}
local dir = os.tmpname() .. ".d"
local agent = require("moonlet.kubelet.agent").new({ client = client, data_dir = dir, node_name = "bench",
  log = function() end, pod_informer = m:informer("v1/Pod") })
local exit_seen = {} -- pod name -> hrtime its exit result reached Lua
local by_runtime = 0   -- restarts the runtime did by itself (armed)
local function pod_of(opts)
  for _, kv in ipairs(opts.env) do
    local v = kv:match("^HOSTNAME=(.*)$")
    if v then return v end
  end
end
local function started(pod, p, t)
  spawned[pod] = { t = t, p = p }
  local w = waiters[pod]
  if w then waiters[pod] = nil; sched.wake(w) end
end
-- As the agent's runtime, with the time each process had been spawned: a
-- replacement the runtime started itself carries it (next_spawned_ns).
local function handle(pod, p, on_exit)
  local on_next_exit
  p:on_exit(function(res)
    exit_seen[pod] = loop.hrtime()
    if res.next then
      by_runtime = by_runtime + 1
      res.next_handle = handle(pod, res.next, on_next_exit)
      started(pod, res.next, res.next_spawned_ns)
    end
    on_exit(res)
  end)
  return { pid = p.pid, stop = function(_, g) p:stop(g) end, kill = function(_, s) p:kill(s) end,
    arm = function(_, opts, when, cb, not_before)
      opts.state_dir = agent.state_dir
      local ok = p:arm_restart(opts, when, not_before)
      if ok then on_next_exit = cb end
      return ok
    end,
    disarm = function() return p:disarm() end }
end
agent.runtime = { spawn = function(opts, on_exit)
  opts.state_dir = agent.state_dir
  local p, err, name = proc.spawn(opts)
  if not p then return nil, err, name end
  local pod = pod_of(opts)
  started(pod, p, loop.hrtime())
  return handle(pod, p, on_exit)
end }
assert(agent:start())

local function wait_spawn(name)
  if spawned[name] then return end
  local id = loop.next_id()
  waiters[name] = id
  sched.wait(id)
end

local function sleep_pod(name)
  return { apiVersion = "v1", kind = "Pod", metadata = { name = name, namespace = "default" },
    spec = { terminationGracePeriodSeconds = 1,
      containers = { { name = "main", image = "busybox", command = { "sleep", "100000" } } } } }
end

local out = {}
if mode == "start" or mode == "restart" then
  local lat = {}
  for i = 1, n do
    local name = "p" .. i
    local t0 = loop.hrtime()
    assert(client:create("v1/Pod", sleep_pod(name)))
    wait_spawn(name)
    lat[#lat + 1] = (spawned[name].t - t0) / 1e6
  end
  out.pods = n
  out.start_p50_ms = pct(lat, 0.5)
  out.start_p99_ms = pct(lat, 0.99)
  out.rss_kib = math.floor(require("moonlet.core.sys").rss() / 1024)
  out.lua_kib = math.floor(collectgarbage("count"))
  if mode == "restart" then
    local rl, lua_seen = {}, {}
    loop.sleep(200)
    for i = 1, math.min(n, 100) do
      local name = "p" .. i
      local first = spawned[name]
      spawned[name] = nil
      loop.sleep(gap_ms)
      local t0 = loop.hrtime()
      -- From outside, as kill -9 is (a binary older than kill_pid: the
      -- same through the handle, which had nothing to disarm then).
      if proc.kill_pid then proc.kill_pid(first.p.pid, "KILL") else first.p:kill("KILL") end
      wait_spawn(name)
      rl[#rl + 1] = (spawned[name].t - t0) / 1e6
      lua_seen[#lua_seen + 1] = (exit_seen[name] - t0) / 1e6
    end
    out.restart_p50_ms = pct(rl, 0.5)
    out.restart_p99_ms = pct(rl, 0.99)
    -- kill -> the exit result in Lua (where the bookkeeping starts; with a
    -- replacement armed, after the restart), and how many restarts the
    -- runtime did by itself.
    out.restart_exit_in_lua_p50_ms = pct(lua_seen, 0.5)
    out.restarts_by_runtime = by_runtime
  end
end
print(json.encode(out))
-- Clean up: every process group goes.
for _, s in pairs(spawned) do s.p:kill("KILL") end
loop.sleep(100)
m:stop()
agent.keep_pods = true
agent:stop()
os.exit(0)
