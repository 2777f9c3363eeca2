-- v1 Endpoints: the addresses behind a Service, written by the endpoints
-- controller (subsets of ready and not-ready addresses sharing one port
-- set); printed as kubectl does: NAME ENDPOINTS AGE.
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")

local ObjectReference = S.struct("v1.ObjectReference", {
  kind = S.string, namespace = S.string, name = S.string, uid = S.string,
  apiVersion = S.string, resourceVersion = S.string, fieldPath = S.string,
})

local Address = S.struct("v1.EndpointAddress", {
  ip = S.string, hostname = S.string, nodeName = S.string, targetRef = ObjectReference,
})

local Port = S.struct("v1.EndpointPort", {
  name = S.string, port = S.integer, protocol = S.string, appProtocol = S.string,
})

local Subset = S.struct("v1.EndpointSubset", {
  addresses = S.list(Address), notReadyAddresses = S.list(Address), ports = S.list(Port),
})

local MAX_SHOWN = 3

-- formatEndpoints: ip:port of the ready addresses, three at most.
local function format(ep)
  local list, total = {}, 0
  for _, ss in ipairs(ep.subsets or {}) do
    local ports = ss.ports or {}
    if #ports == 0 then
      for _, a in ipairs(ss.addresses or {}) do
        total = total + 1
        if #list < MAX_SHOWN then list[#list + 1] = a.ip end
      end
    end
    for _, p in ipairs(ports) do
      for _, a in ipairs(ss.addresses or {}) do
        total = total + 1
        if #list < MAX_SHOWN then list[#list + 1] = a.ip .. ":" .. tostring(p.port) end
      end
    end
  end
  if total == 0 then return "<none>" end
  local text = table.concat(list, ",")
  if total > #list then text = text .. string.format(" + %d more...", total - #list) end
  return text
end

return {
  group = "", version = "v1", kind = "Endpoints", plural = "endpoints", singular = "endpoints",
  short_names = { "ep" }, namespaced = true,
  schema = S.kind("Endpoints", { subsets = S.list(Subset) }),
  columns = {
    columns.name(),
    { name = "Endpoints", type = "string", description = "Endpoints of the service",
      value = format },
    columns.age(),
  },
}
