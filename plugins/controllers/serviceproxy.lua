-- serviceproxy: kube-proxy for this host, in the spirit of its userspace
-- mode. For each TCP port of a Service it listens on clusterIP:port (a
-- loopback address, local without configuration) and, for NodePort, on
-- 0.0.0.0:nodePort, and relays each connection to one of the ready
-- endpoints the Service's Endpoints list (round robin, in C: see
-- moonlet.svc_proxy). An address that cannot be bound (a port below 1024
-- without root, a port in use) leaves the server running: it becomes a
-- Warning event on the Service and a log line, and is tried again later.
-- UDP and SCTP ports are accepted by the API but not proxied.
local proxy = require("moonlet.svc_proxy")

local SVC = "v1/Service"
local EP = "v1/Endpoints"
local RETRY_SECONDS = 30

-- What was already reported, so a failure is one event, not one per sync.
local reported = {}

local function key_of(obj)
  return obj.metadata.namespace .. "/" .. obj.metadata.name
end

-- The ready backends of Service port `sp` from the Endpoints' subsets.
local function backends(ep, sp)
  local out = {}
  for _, ss in ipairs((ep or {}).subsets or {}) do
    for _, p in ipairs(ss.ports or {}) do
      if (p.name or "") == (sp.name or "") and (p.protocol or "TCP") == "TCP" then
        for _, a in ipairs(ss.addresses or {}) do out[#out + 1] = a.ip .. ":" .. tostring(p.port) end
      end
    end
  end
  return out
end

local function report_once(ctx, svc, id, reason, message)
  local k = key_of(svc) .. "|" .. svc.metadata.uid .. "|" .. id
  if reported[k] == message then return end
  reported[k] = message
  ctx:event(svc, "Warning", reason, message)
  ctx.log("warn", "service proxy: %s/%s: %s", svc.metadata.namespace, svc.metadata.name, message)
end

local function forget(key)
  for k in pairs(reported) do
    if k:sub(1, #key + 1) == key .. "|" then reported[k] = nil end
  end
end

return {
  name = "service-proxy",
  kind = SVC,
  watches = { { kind = EP, map = key_of } },
  -- Reads only: Services and Endpoints are the informers' own objects.
  readonly = true,

  reconcile = function(ctx, key, svc)
    local spec = svc and svc.spec or {}
    if not svc or svc.metadata.deletionTimestamp or type(spec.clusterIP) ~= "string"
        or spec.clusterIP == "None" or spec.clusterIP == "" then
      proxy.sync(key, {})
      forget(key)
      return
    end
    local ep = ctx:get(EP, svc.metadata.namespace, svc.metadata.name)
    local want = {}
    for _, sp in ipairs(spec.ports or {}) do
      if (sp.protocol or "TCP") ~= "TCP" then
        report_once(ctx, svc, "proto/" .. tostring(sp.port), "ProtocolNotProxied",
          string.format("port %d/%s is not proxied: moonlet's service proxy relays TCP only", sp.port, sp.protocol))
      else
        local list = backends(ep, sp)
        want[spec.clusterIP .. ":" .. sp.port] = { host = spec.clusterIP, port = sp.port, backends = list }
        if spec.type == "NodePort" and sp.nodePort then
          want["0.0.0.0:" .. sp.nodePort] = { host = "0.0.0.0", port = sp.nodePort, backends = list }
        end
      end
    end
    local failures = proxy.sync(key, want)
    for _, f in ipairs(failures) do
      report_once(ctx, svc, "listen/" .. f.addr, "FailedToListen",
        string.format("cannot listen on %s: %s", f.addr, f.message))
    end
    if #failures > 0 then return { requeue_after = RETRY_SECONDS } end
  end,
}
