-- v1 Node: cluster-scoped, status subresource; spec (podCIDR, taints,
-- unschedulable, providerID) and status (capacity, allocatable, conditions,
-- addresses, nodeInfo) validated as ValidateNode does; printed as kubectl's
-- NAME STATUS ROLES AGE VERSION (+ wide addresses and system info).
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local validation = require("moonlet.validation")
local json = require("moonlet.json")
local quantity = require("moonlet.api.quantity")
local printer = require("moonlet.printers.node")

local Taint = S.struct("v1.Taint", { key = S.string, value = S.string, effect = S.string, timeAdded = S.time })
local ResourceList = S.map(S.quantity, "v1.ResourceList")

local NodeSpec = S.struct("v1.NodeSpec", {
  podCIDR = S.string, podCIDRs = S.list(S.string), providerID = S.string,
  unschedulable = S.boolean, taints = S.list(Taint), configSource = S.any, externalID = S.string,
})
local NodeStatus = S.struct("v1.NodeStatus", {
  capacity = ResourceList, allocatable = ResourceList, phase = S.string,
  conditions = S.list(S.struct("v1.NodeCondition", {
    type = S.string, status = S.string, lastHeartbeatTime = S.time, lastTransitionTime = S.time,
    reason = S.string, message = S.string })),
  addresses = S.list(S.struct("v1.NodeAddress", { type = S.string, address = S.string })),
  daemonEndpoints = S.struct("v1.NodeDaemonEndpoints", {
    kubeletEndpoint = S.struct("v1.DaemonEndpoint", { Port = S.integer }) }),
  nodeInfo = S.struct("v1.NodeSystemInfo", {
    machineID = S.string, systemUUID = S.string, bootID = S.string, kernelVersion = S.string,
    osImage = S.string, containerRuntimeVersion = S.string, kubeletVersion = S.string,
    kubeProxyVersion = S.string, operatingSystem = S.string, architecture = S.string,
    swap = S.any }),
  images = S.list(S.any), volumesInUse = S.list(S.string), volumesAttached = S.list(S.any),
  config = S.any, runtimeHandlers = S.list(S.any), features = S.any, declaredFeatures = S.list(S.string),
})

local EFFECTS = { "NoSchedule", "PreferNoSchedule", "NoExecute" }

local function validate_taints(taints, path, errs)
  local seen = {}
  for i, t in ipairs(type(taints) == "table" and taints or {}) do
    local ip = string.format("%s[%d]", path, i - 1)
    local k, eff = t.key or "", t.effect or ""
    if k == "" then
      errs:add(validation.required(ip .. ".key", ""))
    else
      for _, msg in ipairs(validation.is_qualified_name(k)) do errs:add(validation.invalid(ip .. ".key", k, msg)) end
    end
    for _, msg in ipairs(validation.is_valid_label_value(t.value or "")) do
      errs:add(validation.invalid(ip .. ".value", t.value, msg))
    end
    if eff == "" then
      errs:add(validation.required(ip .. ".effect", ""))
    else
      local ok = false
      for _, e in ipairs(EFFECTS) do if e == eff then ok = true end end
      if not ok then errs:add(validation.not_supported(ip .. ".effect", eff, EFFECTS)) end
    end
    local id = k .. ":" .. eff
    if seen[id] then
      errs:add(validation.invalid(ip, "", "taints must be unique by key and effect pair"))
    end
    seen[id] = true
  end
end

local function validate_resource_list(rl, path, errs)
  for k, v in pairs(type(rl) == "table" and rl or {}) do
    local q, msg = quantity.parse(v)
    local p = string.format("%s[%s]", path, k)
    if not q then errs:add(validation.invalid(p, v, msg))
    elseif q.milli < 0 then errs:add(validation.invalid(p, q:string(), "must be greater than or equal to 0")) end
  end
end

local function canonical(rl)
  if type(rl) ~= "table" then return end
  for k, v in pairs(rl) do rl[k] = quantity.canonical(v) end
end

return {
  group = "", version = "v1", kind = "Node", plural = "nodes", singular = "node",
  short_names = { "no" }, namespaced = false, status_subresource = true,
  subresources = { "status", "proxy" },
  field_selectors = { "spec.unschedulable" },
  schema = S.kind("Node", { spec = NodeSpec, status = NodeStatus }),

  -- SetDefaults_NodeStatus: allocatable defaults to capacity; quantities are
  -- stored in canonical form.
  defaults = function(obj)
    obj.spec = type(obj.spec) == "table" and obj.spec or json.object({})
    local st = type(obj.status) == "table" and obj.status or nil
    if st then
      canonical(st.capacity)
      canonical(st.allocatable)
      if st.allocatable == nil and type(st.capacity) == "table" then st.allocatable = json.copy(st.capacity) end
    end
  end,

  validate = function(obj, errs)
    local spec = obj.spec or {}
    validate_taints(spec.taints, "spec.taints", errs)
    local st = type(obj.status) == "table" and obj.status or {}
    validate_resource_list(st.capacity, "status.capacity", errs)
    validate_resource_list(st.allocatable, "status.allocatable", errs)
  end,

  validate_update = function(obj, old, errs)
    -- podCIDR may be set once, never changed
    local o, n = (old.spec or {}).podCIDR or "", (obj.spec or {}).podCIDR or ""
    if o ~= "" and n ~= o then
      errs:add(validation.forbidden("spec.podCIDR", "node updates may not change podCIDR except from \"\" to valid"))
    end
    local op, np = (old.spec or {}).providerID or "", (obj.spec or {}).providerID or ""
    if op ~= "" and np ~= op then
      errs:add(validation.forbidden("spec.providerID", "node updates may not change providerID except from \"\" to valid"))
    end
  end,

  columns = {
    columns.name(),
    { name = "Status", type = "string", description = "The status of the node",
      value = function(n) return printer.status(n) end },
    { name = "Roles", type = "string", description = "The roles of the node",
      value = function(n) return printer.roles_text(n) end },
    columns.age(),
    { name = "Version", type = "string", description = "Kubelet Version reported by the node.",
      value = function(n)
        local info = type(n.status) == "table" and n.status.nodeInfo or {}
        return type(info) == "table" and info.kubeletVersion or "" end },
    { name = "Internal-IP", type = "string", priority = 1,
      description = "List of addresses reachable to the node.",
      value = function(n) return printer.address(n, "InternalIP") end },
    { name = "External-IP", type = "string", priority = 1,
      description = "List of addresses reachable to the node.",
      value = function(n) return printer.address(n, "ExternalIP") end },
    { name = "OS-Image", type = "string", priority = 1,
      description = "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
      value = function(n) return printer.info(n, "osImage") end },
    { name = "Kernel-Version", type = "string", priority = 1,
      description = "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
      value = function(n) return printer.info(n, "kernelVersion") end },
    { name = "Container-Runtime", type = "string", priority = 1,
      description = "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
      value = function(n) return printer.info(n, "containerRuntimeVersion") end },
  },
}
