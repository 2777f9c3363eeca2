-- The API router: authenticates a request, serves discovery, resolves the
-- resource path and hands the request to the verb's handler. Transport-free:
-- the HTTP server and the in-process client both call router:handle(req,
-- sink) where sink answers (respond / stream / on_close).
local json = require("moonlet.json")
local status = require("moonlet.api.status")
local request = require("moonlet.api.request")
local discovery = require("moonlet.api.discovery")
local handlers = require("moonlet.api.handlers")
local protobuf = require("moonlet.api.protobuf")

local M = {}
M.__index = M

--- opts: store (moonlet store), token (bearer token for TCP, or nil),
--- version (moonlet version string).
function M.new(opts)
  return setmetatable({ store = opts.store, token = opts.token,
    version = opts.version or "0", log = opts.log }, M)
end

local Ctx = {}
Ctx.__index = Ctx

local JSON_CT = "application/json"
-- The headers of nearly every answer: one table, which nobody changes.
local JSON_HEADERS = { ["Content-Type"] = JSON_CT }

function Ctx:headers_out()
  if #self.warnings == 0 then return JSON_HEADERS end
  local parts = {}
  for i, w in ipairs(self.warnings) do
    parts[i] = string.format('299 - "%s"', (w:gsub('[\\"]', "\\%0")))
  end
  return { ["Content-Type"] = JSON_CT, ["Warning"] = table.concat(parts, ", ") }
end

function Ctx:reply(code, body)
  if type(body) ~= "string" then body = json.encode(body) end
  self.replied = true
  self.sink:respond(code, self:headers_out(), body)
end

function Ctx:fail(st)
  self:reply(st.code or 500, st)
end

function Ctx:stream(code, headers)
  self.replied = true
  local h = {}
  for k, v in pairs(self:headers_out()) do h[k] = v end
  for k, v in pairs(headers or {}) do h[k] = v end
  return self.sink:stream(code, h)
end

function Ctx:on_close(fn) self.sink:on_close(fn) end

-- GET /openapi/v2: an empty document, in protobuf (what client-go asks for)
-- or JSON. kubectl validates a kind its v3 documents lack against v2, and
-- without one it fails with "failed to download openapi" where Kubernetes
-- says "no matches for kind" (a typo in `kind:`). A v2 document without
-- definitions makes it skip that validation, as for a kind Kubernetes does
-- not know; the server validates every object it takes anyway.
local function openapi_v2(self, ctx)
  local accept = ctx.headers["accept"] or ""
  ctx.replied = true
  if accept:find("protobuf", 1, true) then
    -- The empty protobuf message: every field of openapi_v2.Document unset.
    return ctx.sink:respond(200,
      { ["Content-Type"] = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" }, "")
  end
  return ctx.sink:respond(200, { ["Content-Type"] = "application/json" }, json.encode({
    swagger = "2.0", info = { title = "Kubernetes", version = discovery.version(self.version).gitVersion },
    paths = json.object({}), definitions = json.object({}) }))
end

local function nonresource(self, method, path)
  if method ~= "GET" then return nil end
  if path == "/version" or path == "/version/" then return discovery.version(self.version) end
  if path == "/api" or path == "/api/" then return discovery.core_versions() end
  if path == "/apis" or path == "/apis/" then return discovery.groups() end
  if path == "/api/v1" or path == "/api/v1/" then return discovery.resources("", "v1") end
  local g, v = path:match("^/apis/([^/]+)/([^/]+)/?$")
  if g then return discovery.resources(g, v) end
  g = path:match("^/apis/([^/]+)/?$")
  if g then return discovery.group(g) end
  if path == "/healthz" or path == "/livez" or path == "/readyz" then return "ok" end
  if path == "/openapi/v3" or path == "/openapi/v3/" then return discovery.openapi_index() end
  local gvpath = path:match("^/openapi/v3/(apis?/.+[^/])/?$")
  if gvpath then return discovery.openapi_doc(gvpath) end
end

local PUBLIC_INFO = { ["/healthz"] = true, ["/livez"] = true, ["/readyz"] = true, ["/version"] = true,
  ["/version/"] = true }

local VERB = {
  GET = function(r, q)
    if r.watch_prefix or request.param(q, "watch") == "true" or request.param(q, "watch") == "1" then
      return "watch"
    end
    return r.name and "get" or "list"
  end,
  POST = function(r) return (r.name == nil) and "create" or nil end,
  PUT = function(r) return r.name and "update" or nil end,
  PATCH = function(r) return r.name and "patch" or nil end,
  DELETE = function(r) return r.name and "delete" or "deletecollection" end,
}

--- Handles one request. req: {method, path, query (raw), headers (lower-case
--- names), body, transport ("unix"|"tcp"|"inproc")}.
function M:handle(req, sink)
  local ctx = setmetatable({ sink = sink, warnings = {}, headers = req.headers or {},
    body = req.body, store = self.store, method = req.method, transport = req.transport }, Ctx)
  -- The health checks and /version answer anyone, as kube-apiserver's
  -- system:public-info-viewer role lets anonymous clients read them: a
  -- load balancer or a plain `curl -k .../readyz` carries no token.
  if req.transport == "tcp" and self.token and not (req.method == "GET" and PUBLIC_INFO[req.path]) then
    local auth = ctx.headers["authorization"] or ""
    if auth ~= "Bearer " .. self.token then return ctx:fail(status.unauthorized()) end
  end
  local path = req.path
  if req.method == "GET" and (path == "/openapi/v2" or path == "/openapi/v2/") then
    return openapi_v2(self, ctx)
  end
  local nr = nonresource(self, req.method, path)
  if nr then
    if type(nr) == "string" then
      ctx.replied = true
      return sink:respond(200, { ["Content-Type"] = "text/plain" }, nr)
    end
    return ctx:reply(200, nr)
  end
  local r = request.route(path)
  if not r or not r.def then return ctx:fail(status.path_not_found(path)) end
  local q = request.parse_query(req.query)
  local verb = VERB[req.method] and VERB[req.method](r, q)
  local def = r.def
  if r.extra or (r.subresource and verb ~= "get" and verb ~= "update" and verb ~= "patch"
      and not (def.subresource_handlers and def.subresource_handlers[r.subresource])) then
    return ctx:fail(status.path_not_found(path))
  end
  if def.namespaced and r.name and not r.namespace then return ctx:fail(status.path_not_found(path)) end
  if not def.namespaced and r.namespace then return ctx:fail(status.path_not_found(path)) end
  ctx.def, ctx.namespace, ctx.name, ctx.subresource, ctx.query = def, r.namespace, r.name, r.subresource, q
  local view = request.view(ctx.headers["accept"], verb == "list")
  ctx.table, ctx.partial = view == "Table", view == "Partial"
  local custom = r.subresource and def.subresource_handlers and def.subresource_handlers[r.subresource]
  if custom then return custom(ctx, req.method) end
  if not verb then return ctx:fail(status.method_not_allowed()) end
  if verb == "create" and def.namespaced and not r.namespace then
    return ctx:fail(status.method_not_allowed())
  end
  -- kubectl's typed clients (create <generator>) send protobuf for built-in
  -- kinds and do not retry in JSON; kinds without a protobuf message (custom
  -- kinds, as CRDs in Kubernetes) and CBOR get 415.
  if (verb == "create" or verb == "update") and req.body and req.body ~= "" then
    local ct = request.media_type(ctx.headers["content-type"] or "application/json")
    if ct ~= "" and ct ~= "application/json" and ct ~= "application/yaml" and ct ~= "*/*" then
      local has_pb = (not r.subresource or r.subresource == "status")
        and protobuf.message_for(def.api_version, def.kind)
      if not (has_pb and ct == "application/vnd.kubernetes.protobuf") then
        return ctx:fail(status.unsupported_media_type("application/json, application/yaml"
          .. (has_pb and ", application/vnd.kubernetes.protobuf" or "")))
      end
    end
  end
  local allowed = false
  for _, v in ipairs(def.verbs) do if v == verb then allowed = true break end end
  if not allowed then return ctx:fail(status.method_not_allowed()) end
  local handler = def.verb_handlers and def.verb_handlers[verb] or handlers[verb]
  local ok, err = xpcall(handler, debug.traceback, ctx)
  if not ok then
    if self.log then self.log("error", "api: " .. tostring(err)) end
    if not ctx.replied then return ctx:fail(status.internal(err:match("^[^\n]*"))) end
  end
end

return M
