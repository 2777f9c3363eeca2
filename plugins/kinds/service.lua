-- v1 Service: ClusterIP and NodePort Services with kube-apiserver's
-- defaults, ValidateService messages, the cluster IP and node ports
-- allocated at create (moonlet.api.service_alloc: a loopback range, so the
-- address is local) and kept on update, and kubectl's printer columns.
-- ExternalName and LoadBalancer types and ClientIP session affinity are
-- refused as not supported; UDP and SCTP ports are accepted but not
-- proxied (the proxy records a Warning event).
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local validation = require("moonlet.validation")
local json = require("moonlet.json")
local alloc = require("moonlet.api.service_alloc")

local ServicePort = S.struct("v1.ServicePort", {
  name = S.string, protocol = S.string, appProtocol = S.string, port = S.integer,
  targetPort = S.intstr, nodePort = S.integer,
})

local Spec = S.struct("v1.ServiceSpec", {
  ports = S.list(ServicePort), selector = S.map(S.string), clusterIP = S.string,
  clusterIPs = S.list(S.string), type = S.string, externalIPs = S.list(S.string),
  sessionAffinity = S.string, externalName = S.string, externalTrafficPolicy = S.string,
  internalTrafficPolicy = S.string, ipFamilies = S.list(S.string), ipFamilyPolicy = S.string,
  publishNotReadyAddresses = S.boolean, allocateLoadBalancerNodePorts = S.boolean,
})

local Status = S.struct("v1.ServiceStatus", {
  loadBalancer = S.struct("v1.LoadBalancerStatus", { ingress = S.list(S.map(S.any)) }),
  conditions = S.list(S.map(S.any)),
})

local TYPES = { ClusterIP = true, NodePort = true }
local PROTOCOLS = { TCP = true, UDP = true, SCTP = true }

local function is_table(v) return type(v) == "table" end
local function empty(v) return v == nil or v == json.null or v == "" end

-- SetDefaults_Service and the registry's IP family defaults.
local function defaults(obj)
  obj.spec = is_table(obj.spec) and obj.spec or {}
  local spec = obj.spec
  if empty(spec.type) then spec.type = "ClusterIP" end
  if empty(spec.sessionAffinity) then spec.sessionAffinity = "None" end
  if empty(spec.internalTrafficPolicy) then spec.internalTrafficPolicy = "Cluster" end
  if spec.type == "NodePort" and empty(spec.externalTrafficPolicy) then spec.externalTrafficPolicy = "Cluster" end
  if spec.clusterIP ~= "None" then
    if empty(spec.ipFamilies) then spec.ipFamilies = json.array({ "IPv4" }) end
    if empty(spec.ipFamilyPolicy) then spec.ipFamilyPolicy = "SingleStack" end
  end
  for _, p in ipairs(is_table(spec.ports) and spec.ports or {}) do
    if is_table(p) then
      if empty(p.protocol) then p.protocol = "TCP" end
      if empty(p.targetPort) or p.targetPort == 0 then p.targetPort = p.port end
    end
  end
  if not is_table(obj.status) then obj.status = { loadBalancer = {} } end
end

local function validate_port(p, i, spec, errs, names)
  local path = string.format("spec.ports[%d]", i - 1)
  if not is_table(p) then
    errs:add(validation.required(path, ""))
    return
  end
  if empty(p.name) then
    if #spec.ports > 1 then errs:add(validation.required(path .. ".name", "")) end
  else
    for _, m in ipairs(validation.is_dns1123_label(p.name)) do
      errs:add(validation.invalid(path .. ".name", p.name, m))
    end
    if names[p.name] then errs:add(validation.duplicate(path .. ".name", p.name)) end
    names[p.name] = true
  end
  for _, m in ipairs(validation.is_valid_port_num(p.port)) do
    errs:add(validation.invalid(path .. ".port", p.port, m))
  end
  if not PROTOCOLS[p.protocol] then
    errs:add(validation.not_supported(path .. ".protocol", p.protocol, { "SCTP", "TCP", "UDP" }))
  end
  local tp = p.targetPort
  if type(tp) == "string" then
    for _, m in ipairs(validation.is_valid_port_name(tp)) do
      errs:add(validation.invalid(path .. ".targetPort", tp, m))
    end
  else
    for _, m in ipairs(validation.is_valid_port_num(tp)) do
      errs:add(validation.invalid(path .. ".targetPort", tp, m))
    end
  end
  if p.nodePort ~= nil and p.nodePort ~= 0 then
    if spec.type == "ClusterIP" then
      errs:add(validation.forbidden(path .. ".nodePort", "may not be used when `type` is 'ClusterIP'"))
    else
      for _, m in ipairs(validation.is_valid_port_num(p.nodePort)) do
        errs:add(validation.invalid(path .. ".nodePort", p.nodePort, m))
      end
    end
  end
end

-- ValidateService (the parts moonlet implements).
local function validate_spec(obj, errs)
  local spec = obj.spec
  if not TYPES[spec.type] then
    errs:add(validation.not_supported("spec.type", spec.type, { "ClusterIP", "NodePort" }))
  end
  if spec.sessionAffinity ~= "None" then
    errs:add(validation.not_supported("spec.sessionAffinity", spec.sessionAffinity, { "None" }))
  end
  if not is_table(spec.ports) or #spec.ports == 0 then
    errs:add(validation.required("spec.ports", ""))
  else
    local names = {}
    for i, p in ipairs(spec.ports) do validate_port(p, i, spec, errs, names) end
  end
  for k, v in pairs(is_table(spec.selector) and spec.selector or {}) do
    for _, m in ipairs(validation.is_qualified_name(k)) do
      errs:add(validation.invalid("spec.selector", k, m))
    end
    for _, m in ipairs(validation.is_valid_label_value(tostring(v))) do
      errs:add(validation.invalid("spec.selector", v, m))
    end
  end
  if spec.clusterIP == "None" and spec.type ~= "ClusterIP" then
    errs:add(validation.invalid("spec.clusterIPs[0]", "None",
      "may be set to 'None' only for services of type ClusterIP"))
  end
end

-- The node port a port of `old` had, matched by port number and protocol.
local function old_node_port(old, p)
  for _, op in ipairs(((old or {}).spec or {}).ports or {}) do
    if op.port == p.port and op.protocol == p.protocol and op.nodePort then return op.nodePort end
  end
  return nil
end

-- The cluster IP and node ports: kept from `old`, taken as asked, or
-- allocated; a taken or out-of-range value is kube-apiserver's error.
local function allocate(obj, old, errs, store)
  local spec, md = obj.spec, obj.metadata
  local key = (md.namespace or "") .. "/" .. (md.name or "")
  local ips, ports = alloc.used(store, key)
  if old then
    local ospec = old.spec or {}
    if empty(spec.clusterIP) then spec.clusterIP = ospec.clusterIP end
    if spec.clusterIP ~= ospec.clusterIP then
      errs:add(validation.invalid("spec.clusterIPs[0]", spec.clusterIP, "may not change once set"))
      return
    end
  elseif spec.clusterIP ~= "None" then
    local ip, msg = alloc.allocate_ip(ips, not empty(spec.clusterIP) and spec.clusterIP or nil)
    if not ip then
      errs:add(validation.invalid("spec.clusterIPs", json.array({ spec.clusterIP }), msg))
      return
    end
    spec.clusterIP = ip
  end
  spec.clusterIPs = json.array({ spec.clusterIP })
  for i, p in ipairs(spec.ports) do
    if spec.type ~= "NodePort" then
      p.nodePort = nil
    else
      local want = p.nodePort
      if want == 0 then want = nil end
      local kept = old and old_node_port(old, p)
      if want == nil and kept then want = kept end
      local np, msg = alloc.allocate_port(ports, want)
      if not np then
        errs:add(validation.invalid(string.format("spec.ports[%d].nodePort", i - 1), want or json.null, msg))
      else
        p.nodePort = np
      end
    end
  end
end

local function validate(obj, errs, old, store)
  local before = #errs
  validate_spec(obj, errs)
  if #errs == before then allocate(obj, old, errs, store) end
end

-- Service ports as kubectl prints them: 80/TCP, 80:30080/TCP.
local function format_ports(svc)
  local out = {}
  for _, p in ipairs((svc.spec or {}).ports or {}) do
    if p.nodePort then
      out[#out + 1] = string.format("%d:%d/%s", p.port, p.nodePort, p.protocol or "TCP")
    else
      out[#out + 1] = string.format("%d/%s", p.port, p.protocol or "TCP")
    end
  end
  if #out == 0 then return "<none>" end
  return table.concat(out, ",")
end

local function format_selector(sel)
  local keys = {}
  for k in pairs(sel or {}) do keys[#keys + 1] = k end
  if #keys == 0 then return "<none>" end
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = k .. "=" .. tostring(sel[k]) end
  return table.concat(keys, ",")
end

return {
  group = "", version = "v1", kind = "Service", plural = "services", singular = "service",
  short_names = { "svc" }, namespaced = true, categories = { "all" },
  status_subresource = true,
  subresources = { "status" },
  schema = S.kind("Service", { spec = Spec, status = Status }),
  defaults = defaults,
  validate = validate,
  columns = {
    columns.name(),
    { name = "Type", type = "string", description = "type determines how the Service is exposed.",
      value = function(svc) return (svc.spec or {}).type end },
    { name = "Cluster-IP", type = "string",
      description = "clusterIP is the IP address of the service and is usually assigned randomly.",
      value = function(svc) return (svc.spec or {}).clusterIP or "<none>" end },
    { name = "External-IP", type = "string",
      description = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
      value = function(svc)
        local ext = (svc.spec or {}).externalIPs
        if is_table(ext) and #ext > 0 then return table.concat(ext, ",") end
        return "<none>"
      end },
    { name = "Port(s)", type = "string", description = "The list of ports that are exposed by this service.",
      value = format_ports },
    columns.age(),
    { name = "Selector", type = "string", priority = 1,
      description = "Route service traffic to pods with label keys and values matching this selector.",
      value = function(svc) return format_selector((svc.spec or {}).selector) end },
  },
}
