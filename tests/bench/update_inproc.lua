-- The cost of one in-process update-path write (API router + memory store,
-- no controllers), for callgrind: run
--   moonlet lua tests/bench/update_inproc.lua MODE N
-- with MODE "create" (N pods created, the start-up and creates to subtract),
-- "status_patch" (then N kubelet-style status merge PATCHes), "status_put"
-- (N status PUTs of the object read), "update" (N PUTs changing a label)
-- or "binding" (N store updates setting spec.nodeName, as the kubelet's
-- binding does). Instructions per write = (MODE total - create total) / N.
-- Prints {"mode":..,"n":..,"cpu_s":..} (cpu_s: the writes only).
local json = require("moonlet.json")
local sched = require("moonlet.sched")
local plugins = require("moonlet.plugins")
local kinds = require("moonlet.api.kinds")

local mode, n = arg[1] or "status_patch", tonumber(arg[2] or "") or 1000
local store = assert(require("moonlet.store").open({ backend = "memory" }))
local loaded = plugins.load({})
kinds.reset()
for _, name in ipairs(plugins.names(loaded, "kinds")) do
  kinds.register(loaded.kinds[name].value, loaded.kinds[name].display)
end
local router = require("moonlet.api.router").new({ store = store, token = "t", version = "0", log = function() end })
local client = require("moonlet.client").new({ transport = require("moonlet.api.inproc").transport(router) })

local function pod(i)
  return { apiVersion = "v1", kind = "Pod",
    metadata = { name = "p" .. i, namespace = "default", labels = { app = "bench", ["job-name"] = "j" .. i },
      ownerReferences = { { apiVersion = "batch/v1", kind = "Job", name = "j" .. i, uid = "u-" .. i,
        controller = true, blockOwnerDeletion = true } } },
    spec = { restartPolicy = "Never", containers = { { name = "main", image = "busybox", command = { "true" } } } } }
end

local function status(i, phase)
  return { phase = phase, hostIP = "127.0.0.1", podIP = "127.0.0.1", startTime = "2026-01-01T00:00:00Z",
    conditions = { { type = "Initialized", status = "True", lastProbeTime = json.null,
      lastTransitionTime = "2026-01-01T00:00:00Z" },
      { type = "Ready", status = "False", lastProbeTime = json.null,
        lastTransitionTime = "2026-01-01T00:00:00Z", reason = "PodCompleted" } },
    containerStatuses = { { name = "main", image = "busybox", imageID = "", ready = false, restartCount = 0,
      started = false, state = { terminated = { exitCode = 0, reason = "Completed",
        startedAt = "2026-01-01T00:00:00Z", finishedAt = "2026-01-01T00:00:0" .. (i % 10) .. "Z" } } } } }
end

local out
sched.run(function()
  assert(client:create("v1/Namespace", { apiVersion = "v1", kind = "Namespace", metadata = { name = "default" } }))
  for i = 1, n do assert(client:create("v1/Pod", pod(i))) end
  local c0 = os.clock()
  if mode == "status_patch" then
    for i = 1, n do
      assert(client:patch("v1/Pod", "default", "p" .. i, "merge", { status = status(i, "Succeeded") },
        { subresource = "status" }))
    end
  elseif mode == "status_put" then
    for i = 1, n do
      local cur = assert(client:get("v1/Pod", "default", "p" .. i))
      for k, v in pairs(status(i, "Succeeded")) do cur.status[k] = v end
      assert(client:update_status("v1/Pod", cur))
    end
  elseif mode == "update" then
    for i = 1, n do
      local cur = assert(client:get("v1/Pod", "default", "p" .. i))
      cur.metadata.labels.extra = "x"
      assert(client:update("v1/Pod", cur))
    end
  elseif mode == "binding" then
    for i = 1, n do
      local p = assert(store:get("pods", "default", "p" .. i))
      p.spec.nodeName = "node"
      assert(store:update("pods", p, { generation = false }))
    end
  elseif mode ~= "create" then
    error("unknown mode " .. mode)
  end
  out = { mode = mode, n = n, cpu_s = os.clock() - c0 }
end)
print(json.encode(out))
