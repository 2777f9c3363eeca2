-- CronJob lateness (moonlet lua --server URL cron_bench.lua N): N fresh
-- `@every 1s` CronJobs; a Job watch notes when each one's first Job arrives;
-- lateness = arrival - the scheduled time in its scheduled-timestamp
-- annotation (watch delivery included). Baseline in the same process: a
-- plain timer aimed at the next whole second, N times. Prints JSON.
local client = require("moonlet.client").default()
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local tz = require("moonlet.tz")

local n = tonumber(arg[1] or "") or 20

local function stats(xs)
  table.sort(xs)
  local mid = #xs // 2
  local p50 = #xs % 2 == 1 and xs[mid + 1] or (xs[mid] + xs[mid + 1]) / 2
  return { p50 = p50, max = xs[#xs] }
end

-- Baseline: a timer for the next whole second, lateness in ms.
local timer_late = {}
for _ = 1, n do
  local now = loop.time()
  local target = math.floor(now) + 1
  local id = loop.next_id()
  loop.timer(math.ceil((target - now) * 1000), function()
    timer_late[#timer_late + 1] = (loop.time() - target) * 1000
    sched.wake(id)
  end)
  sched.wait(id)
end

local arrived = {} -- job name -> { at = wall s, scheduled = s }
local stream = assert(client:watch("batch/v1/Job", { namespace = "default" }))
sched.spawn("job watch", function()
  while true do
    local ev = stream:next()
    if not ev then break end
    local obj = ev.object or {}
    if ev.type == "ADDED" and obj.metadata then
      local ts = (obj.metadata.annotations or {})["batch.kubernetes.io/cronjob-scheduled-timestamp"]
      if ts then
        arrived[obj.metadata.name] = { at = loop.time(), scheduled = tz.parse_rfc3339(ts),
          created = tz.parse_rfc3339(obj.metadata.creationTimestamp) }
      end
    end
  end
end)

local cron_late, created_late = {}, {}
for i = 1, n do
  local name = "bench-" .. i
  assert(client:create("batch/v1/CronJob", { apiVersion = "batch/v1", kind = "CronJob",
    metadata = { name = name, namespace = "default" },
    spec = { schedule = "@every 1s", jobTemplate = { spec = { template = { spec = {
      restartPolicy = "Never", containers = { { name = "main", image = "true", command = { "true" } } } } } } } } }))
  local got
  for _ = 1, 400 do
    for job, rec in pairs(arrived) do
      if job:sub(1, #name + 1) == name .. "-" then got = rec end
    end
    if got then break end
    loop.sleep(5)
  end
  assert(got, "no job for " .. name)
  cron_late[#cron_late + 1] = (got.at - got.scheduled) * 1000
  created_late[#created_late + 1] = (got.created - got.scheduled) * 1000
  assert(client:delete("batch/v1/CronJob", "default", name, { propagation_policy = "Background" }))
end
stream:close()
local t, c = stats(timer_late), stats(cron_late)
print(string.format('{"runs":%d,"timer_ms":{"p50":%.1f,"max":%.1f},"cronjob_ms":{"p50":%.1f,"max":%.1f},'
  .. '"creation_timestamp_minus_scheduled_s_p50":%.1f,"ratio_p50":%.1f}', n, t.p50, t.max, c.p50, c.max,
  stats(created_late).p50 / 1000, t.p50 > 0 and c.p50 / t.p50 or 0))
