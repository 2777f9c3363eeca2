-- The node agent (moonlet's kubelet) for the server's own host: registers
-- the Node (labels, capacity, conditions), heartbeats its status and its
-- Lease in kube-node-lease, reaps process groups a crashed server left
-- behind, and runs one pod worker (moonlet.kubelet.worker) per pod bound to
-- the node. On a clean stop it stops the pods with their grace periods
-- (unless --keep-pods) and writes their final container states.
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")
local json = require("moonlet.json")
local sys = require("moonlet.core.sys")
local informer = require("moonlet.controller.informer")
local events = require("moonlet.controller.events")
local util = require("moonlet.controller.util")
local worker = require("moonlet.kubelet.worker")
local backoff = require("moonlet.kubelet.backoff")
local ports = require("moonlet.kubelet.ports")
local status = require("moonlet.kubelet.status")
local policies = require("moonlet.kubelet.policies")

local M = {}
local Agent = {}
Agent.__index = Agent

local HEARTBEAT = 10        -- seconds: node status and lease renewal
local LEASE_DURATION = 40   -- nodeLeaseDurationSeconds
local MAX_PODS = 110

local function runtime_log(level, msg) require("moonlet.core.runtime").log(level, msg) end

-- {====== flags

--- Server flags of the node agent: flag -> { field, kind, help }.
M.FLAGS = {
  ["--node-name"] = { "node_name", "string", "name of this node (default: the host name)" },
  ["--image-path"] = { "image_path", "list", "directory of images: <dir>/<image>/entrypoint (repeatable)" },
  ["--crashloop-initial"] = { "crashloop_initial", "duration", "first crash-loop back-off (default 10s)" },
  ["--crashloop-max"] = { "crashloop_max", "duration", "longest crash-loop back-off (default 300s)" },
  ["--keep-pods"] = { "keep_pods", "bool", "run containers under keepers: they outlive the server, the next one adopts them" },
  ["--no-kubelet"] = { "no_kubelet", "bool", "run no node agent on this host" },
  ["--node-status-update-frequency"] = { "heartbeat", "duration", "how often node status and lease are posted (default 10s)" },
}

M.USAGE = [[
  --node-name NAME     name of this node (default: the host name)
  --image-path DIR     where images live: DIR/<image>/entrypoint (repeatable)
  --crashloop-initial D  first crash-loop back-off (default 10s)
  --crashloop-max D    longest crash-loop back-off (default 300s)
  --keep-pods          containers run under keeper processes: a stop (SIGTERM,
                       kill -9, upgrade) leaves them running, the next server
                       adopts them
  --no-kubelet         run no node agent on this host
  --node-status-update-frequency D  how often the node posts its status and
                       renews its Lease (default 10s, as the kubelet)
]]

--- Seconds from a Go duration ("10s", "1m30s", "500ms") or a plain
--- number of seconds ("2"); nil if malformed.
function M.parse_duration(s)
  if type(s) ~= "string" or s == "" then return nil end
  return tonumber(s) or (require("moonlet.go_duration").parse(s))
end

--- Takes one agent flag into opts. value() fetches the flag's argument.
--- @return true if the flag is the agent's (nil, message on a bad value)
function M.take_flag(o, flag, value)
  local f = M.FLAGS[flag]
  if not f then return false end
  local field, kind = f[1], f[2]
  if kind == "bool" then
    o[field] = true
    return true
  end
  local v = value()
  if v == nil then return nil, "flag needs an argument: " .. flag end
  if kind == "list" then
    o[field] = o[field] or {}
    table.insert(o[field], v)
  elseif kind == "duration" then
    local d = M.parse_duration(v)
    if not d or d <= 0 then return nil, string.format("%s: invalid duration %q", flag, v) end
    o[field] = d
  else
    o[field] = v
  end
  return true
end

-- }======

-- {====== host facts

local read_file = require("moonlet.files").read

local function nproc()
  local s = read_file("/proc/cpuinfo") or ""
  local n = 0
  for _ in s:gmatch("\nprocessor%s*:") do n = n + 1 end
  if s:match("^processor%s*:") then n = n + 1 end
  return math.max(n, 1)
end

local function meminfo_kib()
  local s = read_file("/proc/meminfo") or ""
  return tonumber(s:match("MemTotal:%s*(%d+)")) or 0
end

local ARCH = { x86_64 = "amd64", aarch64 = "arm64", armv7l = "arm", i686 = "386", ppc64le = "ppc64le",
  s390x = "s390x", riscv64 = "riscv64" }

local function os_image()
  local s = read_file("/etc/os-release") or ""
  local v = s:match('PRETTY_NAME="([^"]*)"') or s:match("PRETTY_NAME=([^\n]*)")
  return v or "Linux"
end

local function trim(s) return (tostring(s or ""):gsub("^%s+", ""):gsub("%s+$", "")) end

-- }======

-- {====== node and lease

function Agent:node_object(existing)
  local u = sys.uname() or {}
  local arch = ARCH[u.machine or ""] or (u.machine or "amd64")
  local osname = (u.sysname or "Linux"):lower()
  local node = existing or { apiVersion = "v1", kind = "Node", metadata = { name = self.node_name } }
  local md = node.metadata
  md.labels = md.labels or {}
  md.labels["kubernetes.io/hostname"] = self.node_name
  md.labels["kubernetes.io/os"] = osname
  md.labels["kubernetes.io/arch"] = arch
  md.labels["beta.kubernetes.io/os"] = osname
  md.labels["beta.kubernetes.io/arch"] = arch
  md.annotations = md.annotations or {}
  md.annotations["node.alpha.kubernetes.io/ttl"] = "0"
  node.spec = node.spec or {}
  local mem = meminfo_kib()
  local cap = { cpu = tostring(nproc()), memory = mem .. "Ki", pods = tostring(MAX_PODS) }
  local version = require("moonlet.api.discovery").version(require("moonlet.main").VERSION)
  node.status = {
    capacity = cap,
    allocatable = { cpu = cap.cpu, memory = cap.memory, pods = cap.pods },
    conditions = self:node_conditions(existing and existing.status and existing.status.conditions),
    addresses = json.array({ { type = "InternalIP", address = self.host_ip },
      { type = "Hostname", address = sys.hostname() or self.node_name } }),
    -- A joined node (moonlet node --listen) serves its logs there.
    daemonEndpoints = { kubeletEndpoint = { Port = self.kubelet_port or 0 } },
    nodeInfo = {
      machineID = trim(read_file("/etc/machine-id")), systemUUID = "",
      bootID = trim(read_file("/proc/sys/kernel/random/boot_id")),
      kernelVersion = u.release or "", osImage = os_image(),
      containerRuntimeVersion = "moonlet://" .. require("moonlet.main").VERSION,
      kubeletVersion = version.gitVersion, kubeProxyVersion = "",
      operatingSystem = osname, architecture = arch,
    },
  }
  return node
end

function Agent:node_conditions(old)
  local now = status.time(self.clock())
  local prev = {}
  for _, c in ipairs(old or {}) do prev[c.type] = c end
  local function c(typ, st, reason, message)
    local p = prev[typ]
    return { type = typ, status = st, reason = reason, message = message, lastHeartbeatTime = now,
      lastTransitionTime = (p and p.status == st and p.lastTransitionTime) or now }
  end
  return json.array({
    c("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    c("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    c("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    c("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
  })
end

local function msg_of(st) return type(st) == "table" and tostring(st.message) or tostring(st) end

--- Creates or updates this node's Node and its status.
--- @return true | nil, message, the client's Status (its `transport` tells
--- a server that could not be reached from one that refused)
function Agent:register_node()
  local c = self.client
  local existing = c:get("v1/Node", nil, self.node_name)
  if not existing then
    local node = self:node_object(nil)
    local created, st = c:create("v1/Node", node)
    if not created then return nil, "register node: " .. msg_of(st), st end
    existing = created
    node.metadata = created.metadata
    local ok, st2 = c:update_status("v1/Node", node)
    if not ok then return nil, "node status: " .. msg_of(st2), st2 end
    existing = ok
  else
    local node = self:node_object(existing)
    local st = node.status
    local upd, err = c:update("v1/Node", node)
    if not upd then return nil, "update node: " .. msg_of(err), err end
    upd.status = st
    local ok, err2 = c:update_status("v1/Node", upd)
    if not ok then return nil, "node status: " .. msg_of(err2), err2 end
    existing = ok
  end
  self.node_uid = existing.metadata.uid
  return true
end

function Agent:heartbeat()
  local c = self.client
  local node = c:get("v1/Node", nil, self.node_name)
  if not node then
    local ok, err = self:register_node()
    if not ok then self.log("warn", "kubelet: " .. tostring(err)) end
  else
    node.status = node.status or {}
    node.status.conditions = self:node_conditions(node.status.conditions)
    local ok, st = c:update_status("v1/Node", node)
    if not ok and st and st.code ~= 409 then self.log("warn", "kubelet: node status: " .. msg_of(st)) end
  end
  self:renew_lease()
  require("moonlet.kubelet.subresources").install()
  -- Scripts reloaded (SIGHUP): take the restart policies they bring.
  local srv = self.server
  if srv and srv.loaded and srv.loaded ~= self.loaded then
    self.loaded = srv.loaded
    for _, e in ipairs(policies.load(srv.loaded)) do self.log("error", "kubelet: " .. e) end
  end
end

local function micro_time(t)
  local whole = math.floor(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", whole) .. string.format(".%06dZ", math.floor((t - whole) * 1e6))
end

function Agent:renew_lease()
  local c = self.client
  local lease = c:get("coordination.k8s.io/v1/Lease", "kube-node-lease", self.node_name)
  local now = micro_time(self.clock())
  if not lease then
    local _, st = c:create("coordination.k8s.io/v1/Lease", {
      apiVersion = "coordination.k8s.io/v1", kind = "Lease",
      metadata = { name = self.node_name, namespace = "kube-node-lease",
        ownerReferences = self.node_uid and json.array({ { apiVersion = "v1", kind = "Node",
          name = self.node_name, uid = self.node_uid } }) or nil },
      spec = { holderIdentity = self.node_name, leaseDurationSeconds = LEASE_DURATION, renewTime = now },
    })
    if st and st.code ~= 409 then self.log("warn", "kubelet: lease: " .. msg_of(st)) end
    return
  end
  lease.spec = lease.spec or {}
  lease.spec.holderIdentity = self.node_name
  lease.spec.leaseDurationSeconds = LEASE_DURATION
  lease.spec.renewTime = now
  c:update("coordination.k8s.io/v1/Lease", lease)
end

-- }======

-- {====== what workers use

function Agent:pod_dir(pod)
  local md = pod.metadata
  return string.format("%s/%s_%s_%s", self.pods_dir, md.namespace, md.name, md.uid)
end

local function mkdir_p(path)
  local acc = path:sub(1, 1) == "/" and "" or "."
  for part in path:gmatch("[^/]+") do
    acc = acc .. "/" .. part
    sys.mkdir(acc, 448)
  end
end

local function rm_rf(path)
  local st = sys.stat(path)
  if not st then return end
  if st.type == "dir" then
    for _, n in ipairs(sys.listdir(path) or {}) do rm_rf(path .. "/" .. n) end
  end
  os.remove(path)
end
M.rm_rf = rm_rf

-- made_dirs: pod dir -> { old = the dir was there before this agent
-- first looked, [container] = ids of the logs made there (or false when
-- the dir may hold logs this agent did not make) }. A pod first seen with
-- no dir has only the logs named here, so pruning them needs no listing
-- of the directory.
--
-- A container's logs live in the pod dir itself, as <container>_<id>.log
-- (container names are DNS labels: no "_"), not in a directory per
-- container: on this kind of disk a mkdir cost 0.1-0.4 ms of the server's
-- CPU, and a pod start made two. Whether a pod dir is older than this
-- agent comes from the listing of the pods dir taken at start, not from a
-- stat per pod.
--
-- The dir is made once per pod, before its first start, on libuv's thread
-- pool when the caller is a coroutine (make_pod_dir): this disk's mkdir
-- took 0.3-0.9 ms of CPU, off the loop thread now.
local function note_dir(self, pdir)
  local old
  if self.old_dirs then
    old = self.old_dirs[pdir:match("[^/]*$")] == true
  else
    old = sys.stat(pdir) ~= nil
  end
  local dirs = { old = old }
  self.made_dirs[pdir] = dirs
  return dirs
end

--- Makes pod's dir unless this agent made or found it already. In a
--- coroutine the caller waits while libuv's pool makes it; anything may
--- have changed meanwhile. @return true when the caller waited
function Agent:make_pod_dir(pod)
  local pdir = self:pod_dir(pod)
  if self.made_dirs[pdir] then return false end
  -- An old dir is there already: that mkdir is a cheap EEXIST.
  if note_dir(self, pdir).old or not sched.in_coroutine() then
    sys.mkdir(pdir, 448)
    return false
  end
  local id = loop.next_id()
  sys.mkdir_async(id, pdir, 448)
  sched.wait(id) -- a failure shows as the start's own (no working directory)
  return true
end

function Agent:log_path(pod, cname, id)
  local pdir = self:pod_dir(pod)
  local dirs = self.made_dirs[pdir]
  if not dirs then
    dirs = note_dir(self, pdir)
    sys.mkdir(pdir, 448)
  end
  local known = dirs[cname]
  if known == nil then
    known = not dirs.old and {}
    dirs[cname] = known
  end
  if known then known[id] = true end
  return M.log_file(pdir, cname, id)
end

--- Notes the pod dirs a previous server left (kept or crashed pods): their
--- logs are listed before pruning, as this agent did not make them.
function Agent:scan_pod_dirs()
  self.old_dirs = {}
  for _, n in ipairs(sys.listdir(self.pods_dir) or {}) do self.old_dirs[n] = true end
end

--- The log file of instance `id` of container `cname` in pod dir `pdir`.
function M.log_file(pdir, cname, id)
  return pdir .. "/" .. cname .. "_" .. id .. ".log"
end

local function kept(keep, id)
  for _, k in pairs(keep) do if k and id == k then return true end end
  return false
end

-- Keeps the log files of the instances in keep (ids): the current and the
-- previous instance, as the kubelet keeps one dead container.
function Agent:prune_logs(pod, cname, keep)
  local pdir = self:pod_dir(pod)
  local known = (self.made_dirs[pdir] or {})[cname]
  if known then
    for id in pairs(known) do
      if not kept(keep, id) then
        os.remove(M.log_file(pdir, cname, id))
        known[id] = nil
      end
    end
    return
  end
  local prefix = cname .. "_"
  for _, n in ipairs(sys.listdir(pdir) or {}) do
    local id = n:sub(1, #prefix) == prefix and n:sub(#prefix + 1):match("^(%x+)%.log")
    if id and not kept(keep, id) then os.remove(pdir .. "/" .. n) end
  end
end

-- Arming later. A started container's replacement (the runtime's armed
-- restart, which also makes the spare log: Worker:arm_later) is readied
-- once the node is quiet: no container started for ARM_QUIET_MS, or at
-- the latest ARM_LATEST_MS after the start, ARM_SLICE per loop turn. A
-- burst of starts (a Deployment scaled to 1,000) then pays for no arming
-- and no file of it on its way (each had resolved and copied the options
-- and made an inode, ~0.4 ms of the server's CPU per pod), and a container
-- that ends before (a Job's pod) for none at all. Until then a container
-- that ends restarts through the ordinary path, as it may anyway.
local ARM_QUIET_MS, ARM_LATEST_MS, ARM_SLICE = 100, 5000, 64

--- Queues Worker:arm_later(rec, inst) for when the node is quiet.
function Agent:arm_later(w, rec, inst)
  local q, now = self.arm_queue, loop.now()
  q.tail = q.tail + 1
  q[q.tail] = { w = w, rec = rec, inst = inst, at = now }
  self.last_start = now
  if not self.arm_timer and not self.stopped then
    self.arm_timer = self.timer(ARM_QUIET_MS, function() self:drain_arms() end)
  end
end

function Agent:drain_arms()
  self.arm_timer = nil
  if self.stopped then return end
  local q, now = self.arm_queue, loop.now()
  local quiet = now - self.last_start >= ARM_QUIET_MS
  local n = 0
  while q.head <= q.tail and n < ARM_SLICE do
    local e = q[q.head]
    if not quiet and now - e.at < ARM_LATEST_MS then break end
    q[q.head] = nil
    q.head = q.head + 1
    n = n + 1
    e.w:arm_later(e.rec, e.inst)
  end
  if q.head > q.tail then
    q.head, q.tail = 1, 0
    return
  end
  local wait = 0 -- a full slice: the next one in the next turn
  if n < ARM_SLICE then
    wait = math.min(ARM_QUIET_MS - (now - self.last_start), ARM_LATEST_MS - (now - q[q.head].at))
  end
  self.arm_timer = self.timer(math.max(0, wait), function() self:drain_arms() end)
end

-- The process runtime as the worker sees it: spawn(opts, on_exit) ->
-- handle {pid, stop(grace_s), kill(sig), arm(opts, when, on_exit),
-- disarm()} | nil, err, name. arm readies a replacement the runtime starts
-- by itself at the exit (moonlet.proc's arm_restart): the exit result then
-- carries its handle as next_handle.
local function proc_runtime(state_dir)
  local proc = require("moonlet.proc")
  local function handle(p, on_exit)
    local on_next_exit
    p:on_exit(function(res)
      p:close()
      if res.next then res.next_handle = handle(res.next, on_next_exit) end
      on_exit(res)
    end)
    return {
      pid = p.pid,
      stop = function(_, grace) return p:stop(grace) end,
      kill = function(_, sig) return p:kill(sig) end,
      arm = function(_, opts, when, cb, not_before)
        opts.state_dir = state_dir
        local ok = p:arm_restart(opts, when, not_before)
        if ok then on_next_exit = cb end
        return ok
      end,
      disarm = function() return p:disarm() end,
      proc = p,
    }
  end
  return {
    spawn = function(opts, on_exit)
      opts.state_dir = state_dir
      -- Off the loop's thread (proc.start): a 1,000-pod scale-up spent
      -- most of its time with the loop waiting for execs one at a time.
      local p, err, name = proc.start(opts)
      if not p then return nil, err, name end
      return handle(p, on_exit)
    end,
  }
end

-- The probe workers of one container instance, on moonlet.kubelet.prober.
local function probes_factory(agent)
  local ok, prober = pcall(require, "moonlet.kubelet.prober")
  if not ok then
    agent.log("warn", "kubelet: probes unavailable: " .. tostring(prober))
    return nil
  end
  return function(o)
    o.log = agent.log
    return prober.container(o)
  end
end

function Agent:api_for()
  local c = self.client
  local recorder = events.new({ client = c, component = "kubelet", host = self.node_name, clock = self.clock })
  local api = {}
  function api.status(pod, st)
    local md = pod.metadata
    local body = { status = st }
    local res, err = util.write_unread(c, "v1/Pod", md.namespace, md.name, "status", "PATCH", body,
      "application/merge-patch+json", function()
        return c:patch("v1/Pod", md.namespace, md.name, "merge", body, { subresource = "status" })
      end)
    if not res and err and err.code ~= 404 then
      self.log("warn", string.format("kubelet: status of pod %s/%s: %s", md.namespace, md.name, msg_of(err)))
    end
    return res ~= nil or (err and err.code == 404)
  end
  -- In its own coroutine: publishing never delays a container start.
  function api.annotate(pod, key, value)
    local md = pod.metadata
    local ns, name, uid = md.namespace, md.name, md.uid
    sched.spawn("kubelet annotate", function()
      local body = { metadata = { uid = uid, annotations = { [key] = value } } }
      local res, err = c:patch("v1/Pod", ns, name, "merge", body)
      if not res and err and err.code ~= 404 and err.code ~= 409 then
        self.log("warn", string.format("kubelet: annotate pod %s/%s: %s", ns, name, msg_of(err)))
      end
    end)
  end
  function api.delete(pod)
    local md = pod.metadata
    local res, err = c:delete("v1/Pod", md.namespace, md.name, { grace_period_seconds = 0,
      preconditions = { uid = md.uid } })
    if not res and err and err.code ~= 404 and err.code ~= 409 then
      self.log("warn", string.format("kubelet: delete pod %s/%s: %s", md.namespace, md.name, msg_of(err)))
    end
  end
  -- Events are written after the current loop turn, in order, so that
  -- recording them never delays a container start.
  local queue, armed = {}, false
  local function flush()
    armed = false
    local batch = queue
    queue = {}
    sched.spawn("kubelet events", function()
      for _, ev in ipairs(batch) do
        local ok, st = util.write_unread(c, "v1/Event", ev.metadata.namespace, nil, nil, "POST", ev, nil,
          function() return c:create("v1/Event", ev) end)
        if not ok then self.log("debug", "kubelet: event: " .. msg_of(st)) end
      end
    end)
  end
  function api.event(pod, field_path, typ, reason, message)
    local ev = recorder:build(pod, typ, reason, message)
    ev.involvedObject.apiVersion = "v1"
    ev.involvedObject.kind = "Pod"
    ev.involvedObject.fieldPath = field_path
    queue[#queue + 1] = ev
    if not armed then
      armed = true
      loop.timer(0, flush)
    end
  end
  return api
end

-- }======

-- {====== pods

-- Whether a pod update means nothing to a running worker (the kubelet's
-- podsDifferSemantically): the spec (generation, node), deletion, labels
-- and annotations are as they were, so only status changed, most often
-- as the echo of this kubelet's own status write. A pod with readiness
-- gates still syncs: its Ready condition follows conditions that others
-- write (HandlePodReconcile).
local function status_only(old, new)
  local om, nm = old.metadata, new.metadata
  if om.generation == nil or om.generation ~= nm.generation then return false end
  if om.deletionTimestamp ~= nm.deletionTimestamp
    or om.deletionGracePeriodSeconds ~= nm.deletionGracePeriodSeconds then return false end
  local os_, ns = old.spec or {}, new.spec or {}
  if os_.nodeName ~= ns.nodeName then return false end
  if type(ns.readinessGates) == "table" and #ns.readinessGates > 0 then return false end
  return util.equal(om.labels or {}, nm.labels or {}) and util.equal(om.annotations or {}, nm.annotations or {})
end

function Agent:ensure_worker(pod)
  if pod.spec.nodeName ~= self.node_name then return end
  local w = self.workers[pod.metadata.uid]
  if w then
    -- The worker reads the newest object either way (conditions others
    -- wrote, the version); only a change of what it runs wakes it.
    if w.pod and status_only(w.pod, pod) then
      w.pod = pod
      return
    end
    w:update(pod)
    return
  end
  if self.stopping then return end
  w = worker.new(self, pod)
  self.workers[pod.metadata.uid] = w
  w:start()
end

--- Called by a worker whose pod is gone and whose processes ended.
function Agent:forget(w)
  self.workers[w.uid] = nil
  self.ports:release(w.uid)
  self.crash_backoff:forget_prefix(w.uid .. "/")
  self.image_backoff:forget_prefix(w.uid .. "/")
  local dir = self:pod_dir(w.pod)
  self.made_dirs[dir] = nil
  rm_rf(dir)
end

-- With opts.pod_informer (the controller manager's shared v1/Pod informer)
-- the agent reads that cache instead of keeping a second copy of every pod;
-- its handlers then go quiet on stop, as the informer is not the agent's.
-- An own informer (a joined node) lists and watches only the pods bound to
-- this node, with the kubelet's fieldSelector=spec.nodeName=NODE: a pod the
-- scheduler binds later arrives as ADDED.
function Agent:watch_pods()
  local inf, own = self.pod_informer, false
  if not inf then
    inf = informer.new({ client = self.client, kind = "v1/Pod", log = self.log, name = "kubelet pods",
      field_selector = "spec.nodeName=" .. self.node_name })
    own = true
  end
  inf:add_handler({
    add = function(pod) if not self.stopped then self:ensure_worker(pod) end end,
    update = function(_, pod) if not self.stopped then self:ensure_worker(pod) end end,
    delete = function(pod)
      if self.stopped then return end
      local w = self.workers[pod.metadata.uid]
      if w then w:remove() end
    end,
  })
  inf:start()
  if own then self.informer = inf end
end

-- }======

--- Image dirs as absolute paths: a relative --image-path means the
--- server's working directory, not the container's workingDir.
function M.absolute_dirs(dirs)
  local out = {}
  for i, d in ipairs(dirs) do out[i] = sys.realpath(d) or d end
  return out
end

--- Creates an agent (not started). opts: client, data_dir, node_name,
--- image_path (list), crashloop_initial, crashloop_max, keep_pods, log,
--- runtime (process runtime; default moonlet.proc), clock, pod_informer (a
--- shared, possibly running v1/Pod informer to read instead of an own one),
--- host_ip and kubelet_port (the Node's address and log endpoint),
--- heartbeat (seconds between node status posts).
function M.new(opts)
  local self = setmetatable({
    client = opts.client,
    data_dir = opts.data_dir,
    node_name = opts.node_name or sys.hostname() or "localhost",
    host_ip = opts.host_ip or "127.0.0.1",
    kubelet_port = opts.kubelet_port,
    heartbeat_s = opts.heartbeat or HEARTBEAT,
    image_dirs = M.absolute_dirs(opts.image_path or {}),
    keep_pods = opts.keep_pods,
    pod_informer = opts.pod_informer,
    log = opts.log or function(level, msg) require("moonlet.core.runtime").log(level, msg) end,
    clock = opts.clock or loop.time,
    workers = {},
    timers = {},
    made_dirs = {},
    arm_queue = { head = 1, tail = 0 },
    last_start = 0,
  }, Agent)
  self.pods_dir = self.data_dir .. "/pods"
  self.state_dir = self.data_dir .. "/proc"
  self.crash_backoff = backoff.new({ initial = opts.crashloop_initial or 10, max = opts.crashloop_max or 300,
    clock = self.clock })
  self.image_backoff = backoff.new({ initial = opts.crashloop_initial or 10, max = opts.crashloop_max or 300,
    clock = self.clock })
  self.ports = ports.new()
  self.runtime = opts.runtime
  self.api = opts.api
  self.base_env = { { "PATH", os.getenv("PATH") or "/usr/local/bin:/usr/bin:/bin" } }
  local bin = opts.moonlet_bin or os.getenv("MOONLET_BIN")
  if not bin then
    local exe = sys.realpath("/proc/self/exe")
    if exe and exe:match("/moonlet$") then bin = exe end
  end
  if bin then self.base_env[#self.base_env + 1] = { "MOONLET_BIN", bin } end
  self.new_id = function() return sys.random_hex(32) end
  self.timer = function(ms, fn) return loop.timer(ms, fn) end
  self.get_configmap = function(ns, name) return self.client:get("v1/ConfigMap", ns, name) end
  return self
end

--- Registers the node and starts the pod workers (call in a coroutine).
--- Starts the agent: registers its Node, then heartbeats and runs its pods.
--- @return true | nil, message, Status (a failed registration's; a node
--- retries start() while Status.transport says the server was unreachable)
function Agent:start()
  local ok, err = self:prepare()
  if not ok then return nil, err end
  local reg, rerr, st = self:register_node()
  if not reg then return nil, rerr, st end
  self:renew_lease()
  local every = math.max(100, math.floor(self.heartbeat_s * 1000)) -- ms; a tiny value would spin
  self.timers[#self.timers + 1] = loop.timer(every, function() self:heartbeat() end, every)
  self:sweep_kept()
  self:watch_pods()
  self.log("info", string.format("kubelet: node %s ready (images: %s)", self.node_name,
    #self.image_dirs > 0 and table.concat(self.image_dirs, ", ") or "none"))
  return true
end

-- The work before registering, done once per agent: a node retries
-- start() while its server is unreachable, and a retry must not rescan the
-- pod dirs, rebuild the runtime or configure the modules again.
function Agent:prepare()
  if self.prepared then return true end
  mkdir_p(self.pods_dir)
  mkdir_p(self.state_dir)
  self:scan_pod_dirs()
  local proc_ok, proc = pcall(require, "moonlet.proc")
  if not self.runtime then
    if not proc_ok then return nil, "process runtime unavailable: " .. tostring(proc) end
    local n = proc.reap_leftovers(self.state_dir)
    if type(n) == "number" and n > 0 then
      self.log("warn", string.format("kubelet: killed %d process group(s) left by a previous server", n))
    end
    local avail, why = proc.cgroups_available()
    if not avail then
      self.log("info", "kubelet: memory limits are not enforced on this host: " .. tostring(why))
    end
    self.runtime = proc_runtime(self.state_dir)
    -- Kept containers (--keep-pods) run under keepers; any server adopts
    -- the ones an earlier server left running, with or without the flag.
    local kept = require("moonlet.kubelet.keeper").runtime(self.state_dir)
    self.runtime.adopt, self.runtime.sweep = kept.adopt, kept.sweep
    if self.keep_pods then self.runtime.spawn, self.runtime.kept = kept.spawn, true end
  end
  if self.probes == nil then self.probes = probes_factory(self) end
  self.api = self.api or self:api_for()
  require("moonlet.kubelet.logs").configure({ agent = self })
  require("moonlet.kubelet.metrics_api").configure({ agent = self })
  require("moonlet.kubelet.subresources").install()
  self.prepared = true
  return true
end

-- Kept containers (--keep-pods) whose pod no longer names them (deleted
-- while no node agent ran, or a crash between a start and its status
-- write) are stopped before any worker starts, so a container never runs
-- twice.
function Agent:sweep_kept()
  if not self.runtime.sweep then return end
  local list, err = self.client:list("v1/Pod", { field_selector = "spec.nodeName=" .. self.node_name })
  if not list then
    self.log("warn", "kubelet: kept containers not checked: " .. tostring(err))
    return
  end
  local claimed = {}
  for _, pod in ipairs(list.items or {}) do
    local st = pod.status or {}
    for _, group in ipairs({ st.initContainerStatuses or {}, st.containerStatuses or {} }) do
      for _, cs in ipairs(group) do
        local cid = (cs.containerID or ""):match("^moonlet://(.+)$")
        if cid then claimed[cid] = true end
      end
    end
  end
  local n = self.runtime.sweep(claimed)
  if n > 0 then
    self.log("warn", string.format("kubelet: stopped %d kept container(s) that no pod claims", n))
  end
end

--- Stops the agent: pods stop with their grace periods (unless keep_pods)
--- and their final states are written. Yields (call in a coroutine).
function Agent:stop(limit)
  if self.stopped then return end
  self.stopped = true
  for _, t in ipairs(self.timers) do t.stop() end
  if self.arm_timer then
    self.arm_timer.stop()
    self.arm_timer = nil
  end
  if self.informer then self.informer:stop() end
  if not self.keep_pods then
    local n = 0
    for _, w in pairs(self.workers) do
      n = n + 1
      sched.spawn("kubelet stop", function()
        w:shutdown(limit)
        n = n - 1
      end)
    end
    local deadline = loop.now() + ((limit or 30) + 5) * 1000
    while n > 0 and loop.now() < deadline do loop.sleep(20) end
  end
  self.stopping = true
  require("moonlet.kubelet.logs").configure({ agent = nil })
  require("moonlet.kubelet.metrics_api").configure({ agent = nil })
end

--- The server's entry: builds and starts the agent from server.opts.
--- @return agent | nil, message
function M.start(server)
  local o = server.opts
  if o.no_kubelet then return nil end
  for _, e in ipairs(policies.load(server.loaded)) do runtime_log("error", "kubelet: " .. e) end
  local client = require("moonlet.client").new({ transport = server.transport })
  -- The manager's shared pod informer (the scheduler's): one cache of pods.
  local shared = server.manager and server.manager:informer("v1/Pod")
  local agent = M.new({ client = client, data_dir = o.data_dir, node_name = o.node_name,
    image_path = o.image_path, crashloop_initial = o.crashloop_initial, crashloop_max = o.crashloop_max,
    keep_pods = o.keep_pods, pod_informer = shared, heartbeat = o.heartbeat })
  agent.server, agent.loaded = server, server.loaded
  local ok, err = agent:start()
  if not ok then return nil, err end
  return agent
end

M.Agent = Agent
return M
