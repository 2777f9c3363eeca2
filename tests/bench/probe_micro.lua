-- Probe CPU micro-benchmark (not in ctest): the C probe tickers alone,
-- without the API or pods, so one change to the HTTP probe path can be
-- judged in seconds. Two processes:
--   moonlet lua probe_micro.lua serve BASE NPORTS
--     answers 200 "ok" on 127.0.0.1:BASE .. BASE+NPORTS-1
--   moonlet lua probe_micro.lua probe BASE NPORTS TICKERS SECONDS
--     TICKERS HTTP tickers (period 1 s, timeout 1 s) spread over the ports;
--     prints this process's CPU per check over the last SECONDS
-- The serving side's CPU is not counted: only the prober's is.
local httpd = require("moonlet.httpd")
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local core = require("moonlet.core.probe")
local lloop = require("moonlet.core.loop")

local mode, base, nports = arg[1], tonumber(arg[2]), tonumber(arg[3])
assert(mode and base and nports, "usage: probe_micro.lua serve|probe BASE NPORTS ...")

-- utime + stime of this process, in seconds (fields 14 and 15 of stat).
local function cpu_seconds()
  local f = assert(io.open("/proc/self/stat"))
  local s = f:read("a")
  f:close()
  local rest = s:match("%) (.*)$")
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  -- rest starts at field 3 (state)
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100
end

if mode == "serve" then
  for i = 0, nports - 1 do
    assert(httpd.listen("tcp://127.0.0.1:" .. (base + i), function(req)
      req:respond(200, { ["Content-Type"] = "text/plain" }, "ok\n")
    end))
  end
  sched.wait(lloop.next_id())
  return
end

local ntick, seconds = tonumber(arg[4]), tonumber(arg[5] or "10")
do
  local tickers = {}
  local bad = 0
  for i = 1, ntick do
    local id = lloop.next_id()
    sched.on(id, function(result) if result ~= "success" then bad = bad + 1 end end)
    local t = assert(core.ticker(id, "http", { host = "127.0.0.1",
      port = base + (i - 1) % nports, path = "/", scheme = "http" },
      { period = 1000, timeout = 1000, success_threshold = 1, tries = 3 }))
    t:arm(math.random(1, 1000))
    tickers[i] = t
  end
  loop.sleep(3000) -- settle: every ticker has fired
  local s0, c0 = core.stats().started, cpu_seconds()
  loop.sleep(seconds * 1000)
  local s1, c1 = core.stats().started, cpu_seconds()
  local checks = s1 - s0
  print(string.format("checks %d (%.1f/s) cpu %.2f s = %.1f us/check, %.1f%% of a core; non-success %d",
    checks, checks / seconds, c1 - c0, (c1 - c0) * 1e6 / math.max(checks, 1),
    (c1 - c0) * 100 / seconds, bad))
  print(string.format("total checks %d", s1))
  for _, t in ipairs(tickers) do t:close() end
  os.exit(0)
end
