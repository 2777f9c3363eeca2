-- Process runtime benchmark (not part of ctest): spawn latency of N `sleep`
-- processes with CRI log files, restart latency after kill -9 (kill -> exit
-- event -> next spawn returned; kills GAP_MS apart, default 30, so that one
-- new process' start-up is not in the next measurement), and the resident
-- memory with N running.
--   moonlet lua tests/bench/proc_bench.lua [N=200] [DIR]
-- Prints one JSON line of figures (milliseconds, KiB). Use a Release build.
local proc = require("moonlet.proc")
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local json = require("moonlet.json")
local sys = require("moonlet.core.sys")

local n = tonumber(arg[1] or "") or 200
local dir = arg[2] or (os.tmpname() .. ".d")
assert(sys.mkdir(dir, 448))

local function pct(list, p)
  table.sort(list)
  return list[math.max(1, math.ceil(#list * p))]
end

local out = { procs = n }
sched.run(function()
  local rss0 = sys.rss()
  local ps, lat = {}, {}
  local function start(i)
    local t0 = loop.hrtime()
    local log = dir .. "/" .. i .. ".log"
    local p = assert(proc.spawn({ command = { "sleep", "100000" }, stdout_log = log,
                                  stderr_log = log, state_dir = dir }))
    return p, (loop.hrtime() - t0) / 1e6
  end
  for i = 1, n do ps[i], lat[i] = start(i) end
  out.spawn_p50_ms, out.spawn_p99_ms = pct(lat, 0.5), pct(lat, 0.99)
  collectgarbage()
  out.rss_kib = math.floor(sys.rss() / 1024)
  out.rss_growth_kib = math.floor((sys.rss() - rss0) / 1024)
  local rl = {}
  local gap_ms = tonumber(os.getenv("GAP_MS") or "") or 30
  for i = 1, math.min(n, 200) do
    loop.sleep(gap_ms)
    local t0 = loop.hrtime()
    local done
    ps[i]:on_exit(function() ps[i] = start(i); done = true end)
    ps[i]:kill("KILL")
    while not done do loop.sleep(0) end
    rl[#rl + 1] = (loop.hrtime() - t0) / 1e6
  end
  out.restart_p50_ms, out.restart_p99_ms = pct(rl, 0.5), pct(rl, 0.99)
  for i = 1, n do ps[i]:stop(0) end
  for i = 1, n do ps[i]:wait() end
end)
os.execute("rm -rf '" .. dir .. "'")
print(json.encode(out))
