-- discovery.k8s.io/v1 EndpointSlice: a Service's endpoints with their
-- ready/serving/terminating conditions, one slice per port set, written by
-- the endpoints controller; kubectl's columns NAME ADDRESSTYPE PORTS
-- ENDPOINTS AGE.
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local validation = require("moonlet.validation")

local ObjectReference = S.struct("v1.ObjectReference", {
  kind = S.string, namespace = S.string, name = S.string, uid = S.string,
  apiVersion = S.string, resourceVersion = S.string, fieldPath = S.string,
})

local Endpoint = S.struct("v1.Endpoint", {
  addresses = S.list(S.string),
  conditions = S.struct("v1.EndpointConditions", { ready = S.boolean, serving = S.boolean, terminating = S.boolean }),
  hostname = S.string, targetRef = ObjectReference, nodeName = S.string, zone = S.string,
})

local Port = S.struct("v1.EndpointPort", {
  name = S.string, protocol = S.string, port = S.integer, appProtocol = S.string,
})

local MAX_SHOWN = 3

local function shorten(list, total)
  if total == 0 then return "<unset>" end
  local text = table.concat(list, ",")
  if total > #list then text = text .. string.format(" + %d more...", total - #list) end
  return text
end

local function format_ports(es)
  local list, total = {}, 0
  for _, p in ipairs(es.ports or {}) do
    total = total + 1
    if #list < MAX_SHOWN then list[#list + 1] = tostring(p.port) end
  end
  return shorten(list, total)
end

local function format_endpoints(es)
  local list, total = {}, 0
  for _, e in ipairs(es.endpoints or {}) do
    for _, a in ipairs(e.addresses or {}) do
      total = total + 1
      if #list < MAX_SHOWN then list[#list + 1] = a end
    end
  end
  return shorten(list, total)
end

local ADDRESS_TYPES = { IPv4 = true, IPv6 = true, FQDN = true }

return {
  group = "discovery.k8s.io", version = "v1", kind = "EndpointSlice", plural = "endpointslices",
  singular = "endpointslice", namespaced = true,
  schema = S.kind("EndpointSlice", { addressType = S.string,
    -- No omitempty on either list in Go: a placeholder slice keeps [].
    endpoints = S.keep_empty(S.list(Endpoint)), ports = S.keep_empty(S.list(Port)) }),
  validate = function(obj, errs)
    if not ADDRESS_TYPES[obj.addressType] then
      if obj.addressType == nil then errs:add(validation.required("addressType", ""))
      else errs:add(validation.not_supported("addressType", obj.addressType, { "FQDN", "IPv4", "IPv6" })) end
    end
  end,
  columns = {
    columns.name(),
    { name = "AddressType", type = "string", description = "addressType specifies the type of address carried by this EndpointSlice.",
      value = function(es) return es.addressType end },
    { name = "Ports", type = "string", description = "ports specifies the list of network ports exposed by each endpoint in this slice.",
      value = format_ports },
    { name = "Endpoints", type = "string", description = "endpoints is a list of unique endpoints in this slice.",
      value = format_endpoints },
    columns.age(),
  },
}
