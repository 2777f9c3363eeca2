-- A joined node's kubelet endpoint (`moonlet node --listen`): GET
-- /containerLogs/NS/POD/CONTAINER, the kubelet path kube-apiserver proxies
-- pods/NAME/log to (moonlet.kubelet.log_proxy on the server), bearer token
-- required. The answer is moonlet.kubelet.logs' own, read from the pods
-- this node runs: the same options, messages and follow stream. GET
-- /stats/usage answers the node's resource usage (moonlet.kubelet.
-- metrics_api.usage), which the server's metrics API gathers
-- (moonlet.kubelet.metrics_scrape).
local json = require("moonlet.json")
local status = require("moonlet.api.status")
local request = require("moonlet.api.request")

local M = {}

-- What logs.handler reads of a router context, over an httpd request.
local Ctx = {}
Ctx.__index = Ctx

local JSON = { ["Content-Type"] = "application/json" }

function Ctx:reply(code, body)
  if type(body) ~= "string" then body = json.encode(body) end
  self.replied = true
  self.sink:respond(code, JSON, body)
end

function Ctx:fail(st) self:reply(st.code or 500, st) end

function Ctx:stream(code, headers)
  self.replied = true
  return self.sink:stream(code, headers)
end

function Ctx:on_close(fn) self.sink:on_close(fn) end

local POD = { store_resource = "pods", qualified = "pods" }

--- A read-only "store" of the pods agent runs: get(resource, ns, name).
function M.pods_of(agent)
  return {
    get = function(_, resource, ns, name)
      if resource ~= "pods" then return nil end
      for _, w in pairs(agent.workers) do
        local md = w.pod and w.pod.metadata
        if md and md.namespace == ns and md.name == name then return w.pod end
      end
      return nil
    end,
  }
end

--- The httpd handler: serves agent's container logs to holders of token.
function M.handler(agent, token)
  local pods = M.pods_of(agent)
  return function(req)
    local ctx = setmetatable({ sink = req }, Ctx)
    local auth = (req.headers or {})["authorization"]
    if not token or token == "" or auth ~= "Bearer " .. token then return ctx:fail(status.unauthorized()) end
    if req.path == "/stats/usage" then
      if req.method ~= "GET" then return ctx:fail(status.method_not_allowed()) end
      return ctx:reply(200, require("moonlet.kubelet.metrics_api").usage(agent))
    end
    local ns, name, cname = (req.path or ""):match("^/containerLogs/([^/]+)/([^/]+)/([^/]+)/?$")
    if not ns then return ctx:fail(status.path_not_found(req.path)) end
    if req.method ~= "GET" then return ctx:fail(status.method_not_allowed()) end
    local q = request.parse_query(req.query)
    q.container = { cname }
    ctx.query, ctx.namespace, ctx.name, ctx.def, ctx.store, ctx.agent = q, ns, name, POD, pods, agent
    return require("moonlet.kubelet.logs").handler(ctx, "GET")
  end
end

return M
