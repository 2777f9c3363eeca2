-- `describe node`, laid out as kubectl 1.32's describeNode: roles, labels,
-- taints, the node Lease, conditions, addresses, capacity/allocatable,
-- system info, the non-terminated pods on the node with their requests and
-- limits as a share of allocatable, the allocated totals, and events.
local describe = require("moonlet.cli.describe")
local common = require("moonlet.cli.common")
local duration = require("moonlet.printers.duration")
local json = require("moonlet.json")
local quantity = require("moonlet.api.quantity")
local podspec = require("moonlet.api.podspec")
local nodeprinter = require("moonlet.printers.node")

local M = {}

local values = require("moonlet.cli.describe_values")
local is_table, list, str = values.is_table, values.list, values.str

local function rfc1123z(ts)
  local t = duration.parse(ts)
  if not t then return "Mon, 01 Jan 0001 00:00:00 +0000" end
  return duration.format_rfc1123z(t)
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(list(t)) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function q(v) return quantity.parse(v) or quantity.zero() end

-- Taint.ToString
local function taint_text(t)
  local k, v, e = str(t.key), str(t.value), str(t.effect)
  if e == "" then
    if v == "" then return k end
    return k .. "=" .. v .. ":"
  end
  if v == "" then return k .. ":" .. e end
  return k .. "=" .. v .. ":" .. e
end

-- {======================================================= pod resources

local function add_list(into, rl)
  for k, v in pairs(list(rl)) do
    local x = q(v)
    into[k] = into[k] and into[k]:add(x) or x
  end
end

local function max_list(into, rl)
  for k, v in pairs(rl) do
    if not into[k] or into[k]:cmp(v) < 0 then into[k] = v end
  end
end

--- resourcehelper.PodRequests / PodLimits: app containers and started
--- sidecars add up; each regular init container (plus the sidecars before
--- it) only raises the maximum; overhead is added on top.
function M.pod_resources(pod, which)
  local spec = list(pod.spec)
  local sum = {}
  for _, c in ipairs(list(spec.containers)) do add_list(sum, is_table(c.resources) and c.resources[which]) end
  local sidecars, init_max = {}, {}
  for _, c in ipairs(list(spec.initContainers)) do
    local rl = is_table(c.resources) and c.resources[which] or nil
    if podspec.is_sidecar(c) then
      add_list(sum, rl)
      add_list(sidecars, rl)
    else
      local tmp = {}
      add_list(tmp, rl)
      for k, v in pairs(sidecars) do tmp[k] = tmp[k] and tmp[k]:add(v) or v end
      max_list(init_max, tmp)
    end
  end
  max_list(sum, init_max)
  add_list(sum, spec.overhead)
  return sum
end

-- int64(float64(a) / float64(b) * 100) as Go computes it on amd64, where a
-- division by zero ends as the minimum int64.
local function percent(a, b)
  if b == 0 then return math.mininteger end
  local f = a / b * 100
  if f ~= f or f == math.huge or f == -math.huge then return math.mininteger end
  return math.tointeger(f >= 0 and math.floor(f) or math.ceil(f)) or math.mininteger
end

local function describe_resources(w, pods, node, now)
  w.write(0, string.format("Non-terminated Pods:\t(%d in total)\n", #pods))
  w.write(1, "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n")
  w.write(1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n")
  local st = list(node.status)
  local alloc = next(list(st.allocatable)) and st.allocatable or list(st.capacity)
  local acpu, amem = q(alloc.cpu).milli, q(alloc.memory):value()
  local aeph = q(alloc["ephemeral-storage"]):value()
  local zero = quantity.zero()
  for _, pod in ipairs(pods) do
    local req, lim = M.pod_resources(pod, "requests"), M.pod_resources(pod, "limits")
    local cr, cl = req.cpu or zero, lim.cpu or zero
    local mr, ml = req.memory or zero, lim.memory or zero
    local m = list(pod.metadata)
    w.write(1, string.format("%s\t%s\t\t%s (%d%%)\t%s (%d%%)\t%s (%d%%)\t%s (%d%%)\t%s\n",
      str(m.namespace), str(m.name), cr:string(), percent(cr.milli, acpu), cl:string(), percent(cl.milli, acpu),
      mr:string(), percent(mr:value(), amem), ml:string(), percent(ml:value(), amem),
      duration.since(m.creationTimestamp, now)))
  end
  w.write(0, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n")
  w.write(1, "Resource\tRequests\tLimits\n")
  w.write(1, "--------\t--------\t------\n")
  local reqs, lims = {}, {}
  for _, pod in ipairs(pods) do
    for k, v in pairs(M.pod_resources(pod, "requests")) do reqs[k] = reqs[k] and reqs[k]:add(v) or v end
    for k, v in pairs(M.pod_resources(pod, "limits")) do lims[k] = lims[k] and lims[k]:add(v) or v end
  end
  local function frac(v, a, milli)
    if a == 0 then return 0 end
    return percent(milli and v.milli or v:value(), a)
  end
  local rows = {
    { "cpu", acpu, true }, { "memory", amem, false }, { "ephemeral-storage", aeph, false },
  }
  for _, r in ipairs(rows) do
    local rq, lq = reqs[r[1]] or zero, lims[r[1]] or zero
    w.write(1, string.format("%s\t%s (%d%%)\t%s (%d%%)\n", r[1], rq:string(), frac(rq, r[2], r[3]),
      lq:string(), frac(lq, r[2], r[3])))
  end
  local huge, ext = {}, {}
  for _, k in ipairs(sorted_keys(alloc)) do
    if k:match("^hugepages%-") then huge[#huge + 1] = k
    elseif k ~= "cpu" and k ~= "memory" and k ~= "ephemeral-storage" and k ~= "pods" then ext[#ext + 1] = k end
  end
  for _, k in ipairs(huge) do
    local rq, lq, a = reqs[k] or zero, lims[k] or zero, q(alloc[k]):value()
    w.write(1, string.format("%s\t%s (%d%%)\t%s (%d%%)\n", k, rq:string(), frac(rq, a), lq:string(), frac(lq, a)))
  end
  for _, k in ipairs(ext) do
    w.write(1, string.format("%s\t%s\t%s\n", k, (reqs[k] or zero):string(), (lims[k] or zero):string()))
  end
end

-- }=======================================================

--- The whole describeNode text. pods: the node's non-terminated pods, or
--- nil when listing them was forbidden; lease: the node's Lease, or a
--- string (why it could not be read); events as for describe.
function M.render(node, pods, lease, events, now)
  local w = describe.writer()
  local meta, spec, st = list(node.metadata), list(node.spec), list(node.status)
  w.write(0, "Name:\t" .. str(meta.name) .. "\n")
  local roles = nodeprinter.roles(node)
  w.write(0, "Roles:\t" .. (#roles > 0 and table.concat(roles, ",") or "<none>") .. "\n")
  describe.labels(w, "Labels", meta.labels)
  describe.annotations(w, "Annotations", meta.annotations)
  w.write(0, "CreationTimestamp:\t" .. rfc1123z(meta.creationTimestamp) .. "\n")
  local taints = {}
  for _, t in ipairs(list(spec.taints)) do taints[#taints + 1] = t end
  w.write(0, "Taints:\t")
  if #taints == 0 then
    w.write(0, "<none>\n")
  else
    table.sort(taints, function(a, b) return str(a.effect) .. "," .. str(a.key) < str(b.effect) .. "," .. str(b.key) end)
    for i, t in ipairs(taints) do
      if i > 1 then w.write(0, "\t") end
      w.write(0, taint_text(t) .. "\n")
    end
  end
  w.write(0, "Unschedulable:\t" .. tostring(spec.unschedulable == true) .. "\n")
  if type(lease) == "string" then
    w.write(0, "Lease:\tFailed to get lease: " .. lease .. "\n")
  elseif is_table(lease) then
    local ls = list(lease.spec)
    w.write(0, "Lease:\n")
    w.write(1, "HolderIdentity:\t" .. (ls.holderIdentity ~= nil and str(ls.holderIdentity) or "<unset>") .. "\n")
    w.write(1, "AcquireTime:\t" .. (str(ls.acquireTime) ~= "" and rfc1123z(ls.acquireTime) or "<unset>") .. "\n")
    w.write(1, "RenewTime:\t" .. (str(ls.renewTime) ~= "" and rfc1123z(ls.renewTime) or "<unset>") .. "\n")
  end
  local conds = list(st.conditions)
  if #conds > 0 then
    w.write(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
    w.write(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
    for _, c in ipairs(conds) do
      w.write(1, string.format("%s \t%s \t%s \t%s \t%s \t%s\n", str(c.type), str(c.status),
        rfc1123z(c.lastHeartbeatTime), rfc1123z(c.lastTransitionTime), str(c.reason), str(c.message)))
    end
  end
  w.write(0, "Addresses:\n")
  for _, a in ipairs(list(st.addresses)) do w.write(1, str(a.type) .. ":\t" .. str(a.address) .. "\n") end
  for _, f in ipairs({ { "capacity", "Capacity" }, { "allocatable", "Allocatable" } }) do
    local rl = list(st[f[1]])
    if next(rl) then
      w.write(0, f[2] .. ":\n")
      for _, k in ipairs(sorted_keys(rl)) do w.write(0, "  " .. k .. ":\t" .. q(rl[k]):string() .. "\n") end
    end
  end
  local info = list(st.nodeInfo)
  w.write(0, "System Info:\n")
  for _, f in ipairs({ { "Machine ID", "machineID" }, { "System UUID", "systemUUID" }, { "Boot ID", "bootID" },
    { "Kernel Version", "kernelVersion" }, { "OS Image", "osImage" }, { "Operating System", "operatingSystem" },
    { "Architecture", "architecture" }, { "Container Runtime Version", "containerRuntimeVersion" },
    { "Kubelet Version", "kubeletVersion" }, { "Kube-Proxy Version", "kubeProxyVersion" } }) do
    w.write(0, "  " .. f[1] .. ":\t" .. str(info[f[2]]) .. "\n")
  end
  if str(spec.podCIDR) ~= "" then w.write(0, "PodCIDR:\t" .. spec.podCIDR .. "\n") end
  if #list(spec.podCIDRs) > 0 then w.write(0, "PodCIDRs:\t" .. table.concat(spec.podCIDRs, ",") .. "\n") end
  if str(spec.providerID) ~= "" then w.write(0, "ProviderID:\t" .. spec.providerID .. "\n") end
  if pods then describe_resources(w, pods, node, now) else w.write(0, "Pods:\tnot authorized\n") end
  if events then describe.events(w, events, now) end
  return w.text()
end

--- The describer entry: the node's pods (not Succeeded/Failed), its Lease
--- in kube-node-lease, and events by the node's uid and by its name (the
--- kubelet records node events with the name as uid).
function M.describe(ctx, r, node, now)
  local c = common.client(ctx)
  local name = str(node.metadata and node.metadata.name)
  local pods
  local list_, st = c:list("v1/Pod", { field_selector = "spec.nodeName=" .. name
    .. ",status.phase!=Succeeded,status.phase!=Failed" })
  if list_ then pods = list_.items or {}
  elseif st and st.code == 403 then pods = nil
  else pods = {} end
  local lease
  local res = c:raw("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" .. require("moonlet.client").escape(name))
  if res and res.status == 200 then
    lease = json.decode(res.body or "") or "invalid lease"
  else
    local body = res and json.decode(res.body or "") or nil
    if is_table(body) and body.kind == "Status" and str(body.message) ~= "" then
      lease = body.message
    else
      lease = string.format("the server could not find the requested resource (get leases.coordination.k8s.io %s)", name)
    end
  end
  local events
  if ctx.flags["show-events"] then
    events = describe.search_events(ctx, r, node) or {}
    for _, e in ipairs(describe.search_events(ctx, r, node, { uid = name }) or {}) do events[#events + 1] = e end
  end
  return M.render(node, pods, lease, events, now)
end

return M
