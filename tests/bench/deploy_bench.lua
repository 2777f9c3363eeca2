-- Deployment benchmarks against a running server (issue 4), driven by
-- tests/bench/bench_deploy.sh:
--   moonlet lua --server URL deploy_bench.lua scale N     0 -> N sleep pods, until all Running
--   moonlet lua --server URL deploy_bench.lua rolling N   rolling update of N kubia pods with a
--                                                         TCP readiness probe, maxSurge 25%
--   moonlet lua --server URL deploy_bench.lua many D R    D Deployments x R sleep pods, until available
-- Pods are followed with one watch (no polling); prints one JSON line.
local client = require("moonlet.client").default()
local loop = require("moonlet.loop")
local json = require("moonlet.json")

local D = "apps/v1/Deployment"
local mode = arg[1] or "scale"

local function deployment(name, replicas, container, extra)
  local obj = {
    apiVersion = "apps/v1", kind = "Deployment",
    metadata = { name = name, namespace = "default" },
    spec = {
      replicas = replicas,
      selector = { matchLabels = { app = name } },
      template = { metadata = { labels = { app = name } },
        spec = { terminationGracePeriodSeconds = 1, containers = { container } } },
    },
  }
  for k, v in pairs(extra or {}) do obj.spec[k] = v end
  return obj
end

local function sleeper()
  return { name = "main", image = "busybox", command = { "sleep", "100000" } }
end

local function wait_until(pred, timeout, what)
  local deadline = loop.time() + timeout
  while not pred() do
    if loop.time() > deadline then
      io.stderr:write("timed out waiting for " .. what .. "\n")
      os.exit(1)
    end
    loop.sleep(50)
  end
end

local function complete(name)
  local d = client:get(D, "default", name)
  if not d then return false end
  local st, want = d.status or {}, d.spec.replicas
  return st.observedGeneration == d.metadata.generation and st.updatedReplicas == want
    and st.replicas == want and st.availableReplicas == want
end

-- Pod tracker over one watch: name -> { running, ready, deleting, hash }.
local Tracker = {}
Tracker.__index = Tracker

local function pod_state(p)
  local st = p.status or {}
  local cs = st.containerStatuses and st.containerStatuses[1]
  local ready = false
  for _, c in ipairs(st.conditions or {}) do
    if c.type == "Ready" then ready = c.status == "True" end
  end
  return { running = cs ~= nil and cs.state ~= nil and cs.state.running ~= nil, ready = ready,
           deleting = p.metadata.deletionTimestamp ~= nil,
           hash = (p.metadata.labels or {})["pod-template-hash"], app = (p.metadata.labels or {}).app }
end

local function track(on_change)
  local list = assert(client:list("v1/Pod", { namespace = "default" }))
  local self = setmetatable({ pods = {}, on_change = on_change }, Tracker)
  for _, p in ipairs(list.items) do self.pods[p.metadata.name] = pod_state(p) end
  local stream = assert(client:watch("v1/Pod", { namespace = "default",
    resource_version = list.metadata.resourceVersion }))
  self.stream = stream
  require("moonlet.sched").spawn("pod watch", function()
    while true do
      local ev = stream:next()
      if not ev then break end
      local p = ev.object
      if ev.type == "DELETED" then self.pods[p.metadata.name] = nil
      elseif ev.type == "ADDED" or ev.type == "MODIFIED" then self.pods[p.metadata.name] = pod_state(p) end
      if self.on_change then self.on_change(self) end
    end
  end)
  return self
end

function Tracker:count(pred)
  local n = 0
  for _, s in pairs(self.pods) do if pred(s) then n = n + 1 end end
  return n
end

local out = {}
if mode == "scale" then
  local n = tonumber(arg[2] or "") or 1000
  assert(client:create(D, deployment("scale", 0, sleeper())))
  wait_until(function() return complete("scale") end, 30, "the empty deployment")
  local t = track()
  local t0 = loop.hrtime()
  assert(client:patch(D, "default", "scale", "merge", { spec = { replicas = n } }))
  local running = function(s) return s.app == "scale" and s.running and not s.deleting end
  wait_until(function() return t:count(running) >= n end, 600, n .. " running pods")
  out.pods = n
  out.all_running_s = (loop.hrtime() - t0) / 1e9
  wait_until(function() return complete("scale") end, 120, "deployment status")
  out.status_available_s = (loop.hrtime() - t0) / 1e9
elseif mode == "rolling" then
  local n = tonumber(arg[2] or "") or 100
  local c = { name = "kubia", image = "idealism/kubia", ports = { { containerPort = 8080 } },
    readinessProbe = { tcpSocket = { port = 8080 }, periodSeconds = 1 } }
  assert(client:create(D, deployment("roll", n, c, { strategy = { type = "RollingUpdate",
    rollingUpdate = { maxSurge = "25%", maxUnavailable = "25%" } } })))
  wait_until(function() return complete("roll") end, 600, "the first rollout")
  local floor = n - n * 25 // 100
  local min_ready, samples = math.huge, 0
  local ready = function(s) return s.app == "roll" and s.ready and not s.deleting end
  local t = track(function(self)
    local r = self:count(ready)
    samples = samples + 1
    if r < min_ready then min_ready = r end
  end)
  local t0 = loop.hrtime()
  assert(client:patch(D, "default", "roll", "strategic", { spec = { template = { metadata = {
    annotations = { ["kubectl.kubernetes.io/restartedAt"] = os.date("!%Y-%m-%dT%H:%M:%SZ") } } } } }))
  -- the new ReplicaSet's hash, once the controller has made it
  local new_hash
  wait_until(function()
    for _, rs in ipairs(assert(client:list("apps/v1/ReplicaSet", { namespace = "default" })).items) do
      if (rs.metadata.annotations or {})["deployment.kubernetes.io/revision"] == "2" then
        new_hash = rs.metadata.labels["pod-template-hash"]
      end
    end
    return new_hash ~= nil
  end, 60, "the new replica set")
  -- done: status complete and the only live pods are n ready new ones
  wait_until(function()
    local new_ready, other = 0, 0
    for _, s in pairs(t.pods) do
      if s.app == "roll" and not s.deleting then
        if s.hash == new_hash and s.ready then new_ready = new_ready + 1 else other = other + 1 end
      end
    end
    return new_ready == n and other == 0 and complete("roll")
  end, 600, "the rolling update")
  out.replicas = n
  out.rolling_update_s = (loop.hrtime() - t0) / 1e9
  out.min_ready_during = min_ready
  out.required_min_ready = floor
  out.pod_events_seen = samples
  out.ok = min_ready >= floor
elseif mode == "many" then
  local nd, r = tonumber(arg[2] or "") or 100, tonumber(arg[3] or "") or 3
  local t0 = loop.hrtime()
  for i = 1, nd do assert(client:create(D, deployment("d" .. i, r, sleeper()))) end
  wait_until(function()
    local list = assert(client:list(D, { namespace = "default" }))
    local done = 0
    for _, d in ipairs(list.items) do
      local st = d.status or {}
      if st.availableReplicas == r and st.updatedReplicas == r then done = done + 1 end
    end
    return done >= nd
  end, 600, "all deployments available")
  out.deployments, out.replicas_each = nd, r
  out.all_available_s = (loop.hrtime() - t0) / 1e9
end
print(json.encode(out))
os.exit(out.ok == false and 1 or 0)
