-- default-scheduler: binds each unbound pod (spec.nodeName empty,
-- schedulerName default-scheduler) to a node that is Ready, schedulable (or
-- tolerated unschedulable), matches the pod's nodeSelector and required node
-- affinity and has the pod's explicit hostPorts free,
-- through the pods/NAME/binding subresource (a `Scheduled` event follows).
-- A pod that fits nowhere stays Pending with PodScheduled=False
-- (Unschedulable) and a FailedScheduling event in kube-scheduler's words;
-- node changes and pods leaving a node retry the waiting ones.
local json = require("moonlet.json")
local client_mod = require("moonlet.client")
local nodematch = require("moonlet.nodematch")

local unschedulable = {} -- key -> true for pods waiting for a fit

local function ready(node)
  for _, c in ipairs((node.status or {}).conditions or {}) do
    if c.type == "Ready" then return c.status == "True" end
  end
  return false
end

local function selector_matches(pod, node)
  local labels = node.metadata.labels or {}
  for k, v in pairs(pod.spec.nodeSelector or {}) do
    if labels[k] ~= v then return false end
  end
  return true
end

local function host_ports(spec)
  local out = {}
  for _, group in ipairs({ spec.initContainers or {}, spec.containers or {} }) do
    for _, c in ipairs(group) do
      for _, p in ipairs(c.ports or {}) do
        if p.hostPort and p.hostPort > 0 then
          out[#out + 1] = string.format("%s/%s/%d", p.protocol or "TCP", p.hostIP or "0.0.0.0", p.hostPort)
        end
      end
    end
  end
  return out
end

local function terminal(pod)
  local ph = (pod.status or {}).phase
  return ph == "Succeeded" or ph == "Failed"
end

-- host_ports of the cached pods, remembered per spec table (an update
-- brings a new one).
local ports_of = setmetatable({}, { __mode = "k" })

local function cached_host_ports(spec)
  local hps = ports_of[spec]
  if not hps then
    hps = host_ports(spec)
    ports_of[spec] = hps
  end
  return hps
end

-- Host ports in use and pod counts per node, kept up to date from the pod
-- informer's changes (each pod's share is taken back before its new state
-- is added): scheduling one pod used to walk every pod, so a burst of N
-- pods cost N^2.
local usage = { count = {}, used = {}, share = {} }

local function port_key(hp) return (hp:gsub("^(%a+)/[^/]*/", "%1/")) end

local function unshare(key)
  local sh = usage.share[key]
  if not sh then return end
  usage.share[key] = nil
  local n = sh.node
  usage.count[n] = usage.count[n] - 1
  if usage.count[n] == 0 then usage.count[n] = nil end
  local u = usage.used[n]
  for _, pk in ipairs(sh.ports) do
    u[pk] = u[pk] - 1
    if u[pk] == 0 then u[pk] = nil end
  end
  if u and next(u) == nil then usage.used[n] = nil end
end

local function pod_key(pod) return (pod.metadata.namespace or "") .. "/" .. pod.metadata.name end

local function share(pod)
  local key = pod_key(pod)
  unshare(key)
  local n = pod.spec and pod.spec.nodeName
  if not n or n == "" or terminal(pod) then return end
  local ports = {}
  for i, hp in ipairs(cached_host_ports(pod.spec)) do ports[i] = port_key(hp) end
  usage.share[key] = { node = n, ports = ports }
  usage.count[n] = (usage.count[n] or 0) + 1
  if #ports > 0 then
    local u = usage.used[n] or {}
    usage.used[n] = u
    for _, pk in ipairs(ports) do u[pk] = (u[pk] or 0) + 1 end
  end
end

-- kube-scheduler's assumed pod: counted on its node as soon as the
-- binding is made, not when the informer brings the bound pod back (a
-- burst would otherwise pile onto one node and onto one host port). The
-- informer's update replaces this share with the real one.
local function assume(pod, node_name)
  local spec = {}
  for k, v in pairs(pod.spec) do spec[k] = v end
  spec.nodeName = node_name
  share({ metadata = pod.metadata, spec = spec, status = pod.status })
end

-- Host ports in use ("TCP/port" -> count) and pod counts on each node.
local function node_usage()
  return usage.used, usage.count
end

local function plural(n, one, many) return n == 1 and one or many end

-- kube-scheduler's FitError message: counts per reason, sorted.
local function fit_error(total, reasons)
  if total == 0 then return "no nodes available to schedule pods" end
  local parts = {}
  for msg, n in pairs(reasons) do parts[#parts + 1] = string.format("%d %s", n, msg) end
  table.sort(parts)
  return string.format("0/%d %s available: %s.", total, plural(total, "nodes are", "nodes are"),
    table.concat(parts, ", "))
end

local function has_taint_toleration(pod, taint)
  for _, t in ipairs(pod.spec.tolerations or {}) do
    local key_ok = (t.key == nil or t.key == "") and t.operator == "Exists" or t.key == taint.key
    local eff_ok = (t.effect == nil or t.effect == "") or t.effect == taint.effect
    local val_ok = t.operator == "Exists" or (t.value or "") == (taint.value or "")
    if key_ok and eff_ok and val_ok then return true end
  end
  return false
end

local UNSCHEDULABLE_TAINT = { key = "node.kubernetes.io/unschedulable", effect = "NoSchedule" }

-- The first reason a node does not fit (nil when it does).
local function misfit(pod, node, used)
  if node.metadata.deletionTimestamp then return "node(s) were being deleted" end
  -- NodeUnschedulable: a cordoned node takes the pods that tolerate its taint.
  if node.spec and node.spec.unschedulable and not has_taint_toleration(pod, UNSCHEDULABLE_TAINT) then
    return "node(s) were unschedulable"
  end
  if not ready(node) then
    return "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
  end
  for _, taint in ipairs((node.spec or {}).taints or {}) do
    if (taint.effect == "NoSchedule" or taint.effect == "NoExecute") and not has_taint_toleration(pod, taint) then
      return string.format("node(s) had untolerated taint {%s: %s}", taint.key, taint.value or "")
    end
  end
  if not selector_matches(pod, node) or not nodematch.affinity_matches(pod.spec, node) then
    return "node(s) didn't match Pod's node affinity/selector"
  end
  local u = used[node.metadata.name] or {}
  for _, hp in ipairs(host_ports(pod.spec)) do
    if u[port_key(hp)] then
      return "node(s) didn't have free ports for the requested pod ports"
    end
  end
  return nil
end

local function set_unschedulable(ctx, pod, message)
  local conds = {}
  local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local changed = true
  for _, c in ipairs((pod.status or {}).conditions or {}) do
    if c.type == "PodScheduled" then
      if c.status == "False" and c.message == message then changed = false end
    else
      conds[#conds + 1] = c
    end
  end
  if not changed then return end
  conds[#conds + 1] = { type = "PodScheduled", status = "False", reason = "Unschedulable",
    message = message, lastProbeTime = json.null, lastTransitionTime = now }
  ctx.client:patch("v1/Pod", pod.metadata.namespace, pod.metadata.name, "merge",
    { status = { conditions = json.array(conds) } }, { subresource = "status" })
end

local function bind(ctx, pod, node_name)
  local r, st = ctx.client:kind("v1/Pod")
  if not r then return nil, st end
  local path, perr = client_mod.path(r, pod.metadata.namespace, pod.metadata.name, "binding")
  if not path then return nil, perr end
  local res, err = ctx.client:raw("POST", path, {
    apiVersion = "v1", kind = "Binding",
    metadata = { name = pod.metadata.name, namespace = pod.metadata.namespace, uid = pod.metadata.uid },
    target = { apiVersion = "v1", kind = "Node", name = node_name },
  })
  if not res then return nil, err end
  if res.status >= 300 then
    local body = json.decode(res.body or "") or {}
    return nil, { code = res.status, message = body.message or res.body }
  end
  return true
end

return {
  name = "default-scheduler",
  kind = "v1/Pod",
  workers = 1,
  watches = {
    -- A node that changes (labels, readiness) may fit waiting pods.
    { kind = "v1/Node", map = function()
      local keys = {}
      for k in pairs(unschedulable) do keys[#keys + 1] = k end
      return keys
    end },
    -- A bound pod that changes (ends, goes away) may free its host ports.
    { kind = "v1/Pod", map = function(pod)
      if not pod.spec or (pod.spec.nodeName or "") == "" then return nil end
      local keys = {}
      for k in pairs(unschedulable) do keys[#keys + 1] = k end
      return keys
    end },
  },

  setup = function(ctx)
    usage.count, usage.used, usage.share = {}, {}, {}
    ctx:watch("v1/Pod", {
      add = share,
      update = function(_, pod) share(pod) end,
      delete = function(pod) unshare(pod_key(pod)) end,
    })
  end,

  -- Only pods waiting for a node (or remembered as unschedulable, so the
  -- memory is cleared) need a look; bound pods change often.
  filter = function(pod)
    return ((pod.spec or {}).nodeName or "") == "" or unschedulable[pod_key(pod)] ~= nil
  end,

  reconcile = function(ctx, key, pod)
    require("moonlet.kubelet.subresources").install()
    if not pod or pod.metadata.deletionTimestamp or (pod.spec.nodeName or "") ~= ""
        or (pod.spec.schedulerName or "default-scheduler") ~= "default-scheduler"
        or terminal(pod) then
      unschedulable[key] = nil
      return
    end
    if pod.spec.schedulingGates and #pod.spec.schedulingGates > 0 then return end
    local nodes = ctx:list("v1/Node")
    local used, count = node_usage()
    local reasons, fits = {}, {}
    for _, node in ipairs(nodes) do
      local why = misfit(pod, node, used)
      if why then reasons[why] = (reasons[why] or 0) + 1 else fits[#fits + 1] = node end
    end
    if #fits == 0 then
      unschedulable[key] = true
      local msg = fit_error(#nodes, reasons)
      ctx:event(pod, "Warning", "FailedScheduling", msg)
      set_unschedulable(ctx, pod, msg)
      return
    end
    -- Spread: the node with the fewest pods (all score alike otherwise).
    table.sort(fits, function(a, b)
      local ca, cb = count[a.metadata.name] or 0, count[b.metadata.name] or 0
      if ca ~= cb then return ca < cb end
      return a.metadata.name < b.metadata.name
    end)
    local target = fits[1].metadata.name
    local ok, err = bind(ctx, pod, target)
    if not ok then
      if err and err.code == 409 then return end -- bound meanwhile, or being deleted
      error("binding " .. key .. ": " .. tostring(err and err.message), 0)
    end
    assume(pod, target)
    unschedulable[key] = nil
    ctx:event(pod, "Normal", "Scheduled", string.format("Successfully assigned %s/%s to %s",
      pod.metadata.namespace, pod.metadata.name, target))
  end,
}
