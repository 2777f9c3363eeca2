-- `describe svc`, laid out as kubectl's ServiceDescriber: selector, type,
-- IPs, one Port/TargetPort/NodePort/Endpoints block per port (the ready
-- endpoints of that port from the Service's Endpoints), session affinity,
-- traffic policies and the events about it.
local describe = require("moonlet.cli.describe")
local common = require("moonlet.cli.common")

local M = {}

local values = require("moonlet.cli.describe_values")
local is_table, list, str = values.is_table, values.list, values.str

local function selector_text(sel)
  local keys = {}
  for k in pairs(list(sel)) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = k .. "=" .. str(sel[k]) end
  return table.concat(keys, ",")
end

--- formatEndpointSlices for one port name: ready ip:port, three at most;
--- "<none>" when the Service has no endpoints object at all, "" when it has
--- one without ready addresses (kubectl prints the same two).
function M.format_endpoints(ep, port_name)
  if not is_table(ep) then return "<none>" end
  local out, total = {}, 0
  for _, ss in ipairs(list(list(ep).subsets)) do
    for _, p in ipairs(list(ss.ports)) do
      if str(p.name) == str(port_name) then
        for _, a in ipairs(list(ss.addresses)) do
          total = total + 1
          if #out < 3 then out[#out + 1] = str(a.ip) .. ":" .. str(p.port) end
        end
      end
    end
  end
  local text = table.concat(out, ",")
  if total > #out then text = text .. string.format(" + %d more...", total - #out) end
  return text
end

--- The describe text for `svc` with its Endpoints (or nil) and events
--- (nil leaves the Events section out); `now` unix seconds.
function M.render(svc, ep, events, now)
  local w = describe.writer()
  local meta, spec = list(svc.metadata), list(svc.spec)
  w.write(0, "Name:\t" .. str(meta.name) .. "\n")
  w.write(0, "Namespace:\t" .. str(meta.namespace) .. "\n")
  describe.labels(w, "Labels", meta.labels)
  describe.annotations(w, "Annotations", meta.annotations)
  w.write(0, "Selector:\t" .. selector_text(spec.selector) .. "\n")
  w.write(0, "Type:\t" .. str(spec.type) .. "\n")
  if spec.ipFamilyPolicy then w.write(0, "IP Family Policy:\t" .. str(spec.ipFamilyPolicy) .. "\n") end
  if #list(spec.ipFamilies) > 0 then w.write(0, "IP Families:\t" .. table.concat(spec.ipFamilies, ",") .. "\n") end
  w.write(0, "IP:\t" .. str(spec.clusterIP) .. "\n")
  if #list(spec.clusterIPs) > 0 then w.write(0, "IPs:\t" .. table.concat(spec.clusterIPs, ",") .. "\n") end
  for _, p in ipairs(list(spec.ports)) do
    local name = str(p.name) ~= "" and p.name or "<unset>"
    w.write(0, string.format("Port:\t%s\t%d/%s\n", name, p.port or 0, str(p.protocol)))
    local tp = p.targetPort
    if math.type(tp) == "integer" then tp = tostring(tp) end
    w.write(0, string.format("TargetPort:\t%s/%s\n", str(tp), str(p.protocol)))
    if p.nodePort and p.nodePort ~= 0 then
      w.write(0, string.format("NodePort:\t%s\t%d/%s\n", name, p.nodePort, str(p.protocol)))
    end
    w.write(0, "Endpoints:\t" .. M.format_endpoints(ep, p.name) .. "\n")
  end
  w.write(0, "Session Affinity:\t" .. str(spec.sessionAffinity) .. "\n")
  if spec.externalTrafficPolicy then
    w.write(0, "External Traffic Policy:\t" .. str(spec.externalTrafficPolicy) .. "\n")
  end
  if spec.internalTrafficPolicy then
    w.write(0, "Internal Traffic Policy:\t" .. str(spec.internalTrafficPolicy) .. "\n")
  end
  if events then describe.events(w, events, now) end
  return w.text()
end

--- The describer entry (describe.lua's registry).
function M.describe(ctx, r, svc, now)
  local ep = common.client(ctx):get("v1/Endpoints", svc.metadata.namespace, svc.metadata.name)
  local events
  if ctx.flags["show-events"] then events = describe.search_events(ctx, r, svc) end
  return M.render(svc, ep, events, now)
end

return M
