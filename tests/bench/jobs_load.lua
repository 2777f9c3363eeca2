-- Job load on a running server (moonlet lua --server URL jobs_load.lua
-- MODE N [P]): `many` creates N Jobs of one `true` pod each, 16 requests in
-- flight; `one` creates one Job with completions N, parallelism P. Waits
-- until every Job is Complete (followed with one watch: polling the list
-- cost the server a list of every Job ten times a second) and prints
-- {"mode":..,"n":..,"create_s":..,"all_complete_s":..,"writes":..,
-- "writes_per_pod":..,"settled_writes_per_pod":..,"events":..} (writes:
-- API writes the load took until all were Complete, from the
-- resourceVersion; settled: 1.5 s later, BENCH_SETTLE_MS).
local client = require("moonlet.client").default()
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local json = require("moonlet.json")

local mode, n, par = arg[1] or "many", tonumber(arg[2] or "") or 1000, tonumber(arg[3] or "") or 50
local run = tostring(loop.hrtime() % 1000000)

local function job(name, spec)
  local obj = { apiVersion = "batch/v1", kind = "Job", metadata = { name = name, namespace = "default" },
    spec = { template = { spec = { restartPolicy = "Never", terminationGracePeriodSeconds = 1,
      containers = { { name = "main", image = "busybox", command = { "true" } } } } } } }
  for k, v in pairs(spec or {}) do obj.spec[k] = v end
  return obj
end

-- The store's resourceVersion before and after: every API write moves it
-- by one, so the difference is the writes this load took.
local function rv_now()
  local l = assert(client:list("v1/Namespace", { limit = 1 }))
  return tonumber(l.metadata.resourceVersion)
end
local rv0 = rv_now()
local prefix = "bench-" .. run

-- Jobs of this run seen Complete, from a watch that starts before the
-- first create (re-listed if the watch ends).
local complete, done_names = 0, {}
local function note(j)
  if done_names[j.metadata.name] or j.metadata.name:find(prefix, 1, true) ~= 1 then return end
  for _, c in ipairs((j.status or {}).conditions or {}) do
    if c.type == "Complete" and c.status == "True" then
      done_names[j.metadata.name] = true
      complete = complete + 1
      return
    end
  end
end
local watching = true
local function follow()
  while watching do
    local list = assert(client:list("batch/v1/Job", { namespace = "default" }))
    for _, j in ipairs(list.items) do note(j) end
    local stream = assert(client:watch("batch/v1/Job", { namespace = "default",
      resource_version = list.metadata.resourceVersion }))
    while watching do
      local ev = stream:next()
      if not ev then break end
      if ev.type == "ADDED" or ev.type == "MODIFIED" then note(ev.object) end
    end
    stream:close()
  end
end
sched.spawn("job watch", follow)
local t0 = loop.hrtime()
local want
if mode == "one" then
  assert(client:create("batch/v1/Job", job(prefix, { completions = n, parallelism = par })))
  want = 1
else
  local next_i, done = 1, 0
  local finished = loop.next_id()
  for _ = 1, 16 do
    sched.spawn("creator", function()
      while next_i <= n do
        local i = next_i
        next_i = next_i + 1
        assert(client:create("batch/v1/Job", job(prefix .. "-" .. i)))
      end
      done = done + 1
      if done == 16 then sched.wake(finished) end
    end)
  end
  if done < 16 then sched.wait(finished) end
  want = n
end
local created = (loop.hrtime() - t0) / 1e9
local deadline = loop.hrtime() + 300e9
while complete < want do
  if loop.hrtime() > deadline then error(string.format("only %d of %d jobs complete after 300 s", complete, want)) end
  loop.sleep(5)
end
local all_complete = (loop.hrtime() - t0) / 1e9
watching = false
local writes = rv_now() - rv0
-- Bookkeeping may trail the last completion (the event sink writes within
-- a second): the writes and Events counted once that has settled.
loop.sleep(tonumber(os.getenv("BENCH_SETTLE_MS") or "") or 1500)
local settled = rv_now() - rv0
local evs = assert(client:list("v1/Event", { namespace = "default" }))
print(json.encode({ mode = mode, n = n, parallelism = mode == "one" and par or nil, create_s = created,
  all_complete_s = all_complete, writes = writes, writes_per_pod = writes / n,
  settled_writes_per_pod = settled / n, events = #evs.items }))
