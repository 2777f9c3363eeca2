-- REST client for the moonlet (and any Kubernetes) API server: discovery
-- and kubectl's resource-name rules, typed verbs (get/list/watch/create/
-- update/patch/delete), server-side Tables, raw requests. The transport is
-- pluggable: HTTP over a unix socket or TCP through moonlet.http, or a
-- function for the server's in-process client. Every call may yield.
local json = require("moonlet.json")

local M = {}

local Client = {}
Client.__index = Client

M.TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io," ..
  "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
-- What client-go's metadata client asks for (lists, then one object or a
-- watch): metadata only, or the whole object from a server that cannot.
M.METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1," ..
  "application/json"
M.METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"

local PATCH_TYPES = {
  merge = "application/merge-patch+json",
  json = "application/json-patch+json",
  strategic = "application/strategic-merge-patch+json",
  apply = "application/apply-patch+yaml",
}

local REASONS = {
  [400] = { "BadRequest", "the server rejected our request for an unknown reason" },
  [401] = { "Unauthorized", "the server has asked for the client to provide credentials" },
  [403] = { "Forbidden", "the server does not allow access to the requested resource" },
  [404] = { "NotFound", "the server could not find the requested resource" },
  [405] = { "MethodNotAllowed", "the server does not allow this method on the requested resource" },
  [406] = { "NotAcceptable", "the server was unable to respond with a content type that the client supports" },
  [409] = { "Conflict", "the server reported a conflict" },
  [410] = { "Expired", "the server reported the resource is gone" },
  [415] = { "UnsupportedMediaType", "the server responded with the status code 415 but did not return more information" },
  [422] = { "Invalid", "the server rejected our request due to an error in our request" },
  [429] = { "TooManyRequests", "the server has received too many requests and has asked us to try again later" },
  [500] = { "InternalError", "an error on the server has prevented the request from succeeding" },
  [503] = { "ServiceUnavailable", "the server is currently unable to handle the request" },
  [504] = { "Timeout", "the server was unable to return a response in the time allotted, but may still be processing the request" },
}

--- A Status table for a failure that did not come from the server as one.
--- `transport` marks connection problems (no HTTP response at all).
function M.status(code, reason, message, transport)
  return { kind = "Status", apiVersion = "v1", metadata = {}, status = "Failure",
    code = code, reason = reason, message = message, transport = transport or nil }
end

-- {====== transports

local function url_escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end
M.escape = url_escape

local function lower_headers(h)
  local out = {}
  if type(h) ~= "table" then return out end
  for k, v in pairs(h) do
    if type(k) == "number" and type(v) == "table" then
      out[string.lower(v[1] or v.name)] = v[2] or v.value
    elseif type(k) == "number" and type(v) == "string" then
      local n, val = v:match("^([^:]+):%s*(.*)$")
      if n then out[n:lower()] = val end
    else
      out[string.lower(k)] = v
    end
  end
  return out
end

--- Parses a server address: `unix:PATH`, `unix://PATH`, `http(s)://host:port`.
--- @return { unix_socket=, base= } or nil, message
function M.parse_server(server)
  if type(server) ~= "string" or server == "" then return nil, "no server address" end
  local path = server:match("^unix://(.+)$") or server:match("^unix:(.+)$")
  if path then return { unix_socket = path, base = "http://localhost" } end
  if server:match("^https?://") then
    return { base = (server:gsub("/+$", "")) }
  end
  return nil, string.format("invalid server address %q (want unix:PATH or https://HOST:PORT)", server)
end

--- The CA bundle for an https:// server: `ca_file`, else $MOONLET_CA, else
--- the default data dir's tls.crt (the certificate `moonlet server` made)
--- when it exists, else nil (the system's CAs).
function M.ca_file(ca_file, getenv)
  getenv = getenv or os.getenv
  if ca_file and ca_file ~= "" then return ca_file end
  local env = getenv("MOONLET_CA")
  if env and env ~= "" then return env end
  local ok, dir = pcall(require("moonlet.paths").data_dir, getenv)
  if ok then
    local f = io.open(dir .. "/tls.crt", "rb")
    if f then
      f:close()
      return dir .. "/tls.crt"
    end
  end
  return nil
end

-- An HTTP transport over moonlet.http.
local function http_transport(server, token, timeout_ms, ca_file)
  local addr, err = M.parse_server(server)
  if not addr then error(err, 2) end
  if addr.base:match("^https://") then addr.ca_file = M.ca_file(ca_file) end
  local function options(req)
    local headers = {}
    for k, v in pairs(req.headers or {}) do headers[k] = v end
    if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
    return { method = req.method, url = addr.base .. req.path, headers = headers,
      body = req.body, unix_socket = addr.unix_socket, ca_file = addr.ca_file,
      timeout_ms = not req.stream and (req.timeout_ms or timeout_ms) or nil }
  end
  return function(req)
    local http = require("moonlet.http")
    if req.stream then
      local s, e = http.stream(options(req))
      if not s then return nil, e end
      return {
        status = s.status, headers = s.headers,
        read = function() return s:read() end,
        close = function() return s:close() end,
      }
    end
    return http.request(options(req))
  end
end

-- }======

--- New client. opts: server (URL) [+ token, timeout_ms, ca_file (for
--- https://, see M.ca_file)] or transport (function(req) -> res | nil, err;
--- may yield), user_agent, on_warning, on_request (function(method, path,
--- status, ms) after each answer's status line, watches included: the
--- CLI's -v=6 log).
function M.new(opts)
  opts = opts or {}
  local transport = opts.transport
  if not transport then
    transport = http_transport(opts.server, opts.token, opts.timeout_ms or 60000, opts.ca_file)
  end
  return setmetatable({
    transport = transport,
    server = opts.server or "in-process",
    user_agent = opts.user_agent or "moonlet/0.1.0",
    cache = nil, -- discovery
    on_warning = opts.on_warning, -- function(text) for `Warning:` headers
    on_request = opts.on_request,
  }, Client)
end

-- {====== requests

local function decode_status(res)
  local body = res.body or ""
  local obj = body ~= "" and json.decode(body) or nil
  if type(obj) == "table" and obj.kind == "Status" then
    obj.code = obj.code or res.status
    return obj
  end
  local r = REASONS[res.status] or { "", "" }
  local msg = r[2]
  if r[2] == "" or (res.status >= 500 and body ~= "" and not obj) then
    msg = string.format("an error on the server (%q) has prevented the request from succeeding",
      body:sub(1, 200))
  end
  return M.status(res.status, r[1], msg)
end

local function transport_status(c, err)
  return M.status(0, "ConnectionRefused", tostring(err), true)
end

-- A table body is encoded, unless the transport takes tables as they are
-- (the in-process one: the server copies them).
function Client:_body(body)
  if type(body) ~= "table" then return body end
  local t = self.transport
  if type(t) == "table" and t.tables then return body end
  return json.encode(body)
end

--- Low-level request. @return res {status=, headers=, body=} or nil, Status
function Client:raw(method, path, body, headers)
  local h = { ["Accept"] = "application/json", ["User-Agent"] = self.user_agent }
  if body ~= nil then h["Content-Type"] = "application/json" end
  for k, v in pairs(headers or {}) do h[k] = v end
  body = self:_body(body)
  local t0 = self.on_request and require("moonlet.loop").now()
  local ok, res, err = pcall(self.transport, { method = method, path = path, headers = h, body = body })
  if not ok then return nil, transport_status(self, res) end
  if not res then return nil, transport_status(self, err) end
  if t0 then self.on_request(method, path, res.status, require("moonlet.loop").now() - t0) end
  res.headers = lower_headers(res.headers)
  if self.on_warning and type(res.headers.warning) == "string" then
    -- `299 - "text", 299 - "more"`: each warning once, as kubectl prints them
    for text in res.headers.warning:gmatch('%d%d%d %S+ "(.-[^\\])"') do
      self.on_warning((text:gsub('\\(.)', "%1")))
    end
  end
  return res
end

-- Sends a request and decodes the JSON answer; non-2xx -> nil, Status.
function Client:_call(method, path, body, headers)
  local res, st = self:raw(method, path, body, headers)
  if not res then return nil, st end
  if res.status < 200 or res.status > 299 then return nil, decode_status(res) end
  if res.body == nil or res.body == "" then return {} end
  local obj, err = json.decode(res.body)
  if obj == nil then
    return nil, M.status(res.status, "InternalError",
      "the server responded with invalid JSON: " .. tostring(err))
  end
  return obj
end

local function query(params)
  local parts = {}
  for _, p in ipairs(params) do
    if p[2] ~= nil and p[2] ~= "" then
      parts[#parts + 1] = p[1] .. "=" .. url_escape(p[2])
    end
  end
  if #parts == 0 then return "" end
  return "?" .. table.concat(parts, "&")
end

-- }======

-- {====== discovery

local function add_resources(out, group, version, list, preferred)
  for _, r in ipairs(list.resources or {}) do
    if not r.name:find("/", 1, true) then
      local shorts = {}
      for i, s in ipairs(r.shortNames or {}) do shorts[i] = s end
      out[#out + 1] = {
        group = group, version = version, kind = r.kind, name = r.name,
        singular = (r.singularName ~= nil and r.singularName ~= "") and r.singularName
          or string.lower(r.kind),
        short_names = shorts, namespaced = r.namespaced == true,
        verbs = r.verbs or {}, categories = r.categories or {},
        preferred = preferred,
        api_version = group == "" and version or (group .. "/" .. version),
      }
    else
      -- remember subresources on their parent (status, scale, ...)
      local parent, sub = r.name:match("^([^/]+)/(.+)$")
      for i = #out, 1, -1 do
        local p = out[i]
        if p.group == group and p.version == version and p.name == parent then
          p.subresources = p.subresources or {}
          p.subresources[sub] = true
          break
        end
      end
    end
  end
end

--- Every resource the server serves (cached): list of
--- { group, version, api_version, kind, name (plural), singular,
---   short_names, namespaced, verbs, categories, preferred }.
--- @return list or nil, Status
function Client:discovery(refresh)
  if self.cache and not refresh then return self.cache end
  local out = {}
  local core, st = self:_call("GET", "/api")
  if not core then return nil, st end
  for i, v in ipairs(core.versions or {}) do
    local list = self:_call("GET", "/api/" .. v)
    if list then add_resources(out, "", v, list, i == 1) end
  end
  local groups = self:_call("GET", "/apis")
  for _, g in ipairs(groups and groups.groups or {}) do
    local pref = g.preferredVersion and g.preferredVersion.version
    for _, v in ipairs(g.versions or {}) do
      local list = self:_call("GET", "/apis/" .. g.name .. "/" .. v.version)
      if list then add_resources(out, g.name, v.version, list, v.version == pref) end
    end
  end
  self.cache = out
  return out
end

--- The resource for a kind named "group/version/Kind" ("v1/ConfigMap",
--- "apps/v1/Deployment"), or a resource table (returned as is).
function Client:kind(kind)
  if type(kind) == "table" then return kind end
  -- Every request names its kind: answered from a memo of this discovery
  -- list rather than a parse and a scan each time.
  local memo = self.kind_memo
  if memo and memo.list == self.cache and memo[kind] then return memo[kind] end
  local r, st = self:_find_kind(kind)
  if r and self.cache then
    if not memo or memo.list ~= self.cache then
      memo = { list = self.cache }
      self.kind_memo = memo
    end
    memo[kind] = r
  end
  return r, st
end

-- Client:kind without the memo: the name parsed, the discovery list scanned.
function Client:_find_kind(kind)
  local parts = {}
  for p in tostring(kind):gmatch("[^/]+") do parts[#parts + 1] = p end
  local group, version, k
  if #parts == 2 then group, version, k = "", parts[1], parts[2]
  elseif #parts == 3 then group, version, k = parts[1], parts[2], parts[3]
  else
    return nil, M.status(400, "BadRequest", string.format("invalid kind %q", tostring(kind)))
  end
  local list, st = self:discovery()
  if not list then return nil, st end
  for _, r in ipairs(list) do
    if r.group == group and r.version == version and r.kind == k then return r end
  end
  return nil, M.status(404, "NotFound", string.format(
    "no matches for kind %q in version %q", k, group == "" and version or (group .. "/" .. version)),
    nil)
end

local function matches(r, word)
  if r.name == word or r.singular == word or string.lower(r.kind) == word then return true end
  for _, s in ipairs(r.short_names) do if s == word then return true end end
  return false
end

--- kubectl's resource argument rules: plural, singular, short name or kind
--- (case-insensitive), optionally qualified `name.group` or
--- `name.version.group` ("configmaps.v1.", "deployments.apps").
--- Preferred versions and discovery order (core first) break ties.
--- @return resource or nil, Status
function Client:resolve(word)
  local list, st = self:discovery()
  if not list then return nil, st end
  local w = string.lower(word)
  local function pick(filter)
    local best
    for _, r in ipairs(list) do
      if filter(r) then
        if r.preferred then return r end
        best = best or r
      end
    end
    return best
  end
  -- fully qualified resource.version.group first
  local n1, v1, g1 = w:match("^([^.]+)%.([^.]+)%.(.*)$")
  if n1 then
    local r = pick(function(r) return r.group == g1 and r.version == v1 and matches(r, n1) end)
    if r then return r end
  end
  local name, group = w:match("^([^.]+)%.(.+)$")
  if name then
    local r = pick(function(r) return r.group == group and matches(r, name) end)
    if r then return r end
  end
  local r = pick(function(r) return matches(r, w) end)
  if r then return r end
  return nil, M.status(404, "NotFound",
    string.format("the server doesn't have a resource type %q", word))
end

-- }======

-- {====== paths

-- client-go's IsValidPathSegmentName: what a name or namespace may not be
-- so that the URL still names it. "." and ".." would be resolved away
-- (libcurl removes dot segments: DELETE pods/.. in a namespace would delete
-- the namespace, DELETE configmaps/. the whole collection), a "/" would name
-- a subresource, a "%" an escape.
local function segment_errors(s)
  if s == "." or s == ".." then return "[may not be '" .. s .. "']" end
  local errs = {}
  if s:find("/", 1, true) then errs[#errs + 1] = "may not contain '/'" end
  if s:find("%", 1, true) then errs[#errs + 1] = "may not contain '%'" end
  if #errs > 0 then return "[" .. table.concat(errs, " ") .. "]" end
end

-- The Status of a request refused before it was sent: `local` makes the
-- CLI print it as kubectl prints client-go's errors ("error: ...").
local function local_status(message)
  local st = M.status(400, "BadRequest", message)
  st["local"] = true
  return st
end

--- REST path of a resource: collection when name is nil; namespace nil for
--- a namespaced resource means all namespaces. A name or namespace that is
--- no path segment gives nil, Status (client-go's messages).
function M.path(r, ns, name, sub)
  if name then
    if name == "" then return nil, local_status("resource name may not be empty") end
    local e = segment_errors(name)
    if e then return nil, local_status(string.format("invalid resource name %q: %s", name, e)) end
  end
  if ns and ns ~= "" then
    local e = segment_errors(ns)
    if e then return nil, local_status(string.format("invalid namespace %q: %s", ns, e)) end
  end
  local p = r.group == "" and ("/api/" .. r.version) or ("/apis/" .. r.group .. "/" .. r.version)
  if r.namespaced and ns and ns ~= "" then p = p .. "/namespaces/" .. url_escape(ns) end
  p = p .. "/" .. r.name
  if name then p = p .. "/" .. url_escape(name) end
  if sub then p = p .. "/" .. sub end
  return p
end

local function resolve_kind(self, kind)
  local r, st = self:kind(kind)
  if not r then return nil, st end
  return r
end

local function ns_of(r, obj, ns)
  if not r.namespaced then return nil end
  local m = type(obj) == "table" and obj.metadata or {}
  return ns or m.namespace or "default"
end

-- }======

-- {====== verbs

--- GET one object. @return obj or nil, Status
function Client:get(kind, ns, name)
  local r, st = resolve_kind(self, kind)
  if not r then return nil, st end
  local p, perr = M.path(r, r.namespaced and (ns or "default") or nil, name)
  if not p then return nil, perr end
  return self:_call("GET", p)
end

local function list_query(opts, extra)
  local q = {
    { "labelSelector", opts.label_selector },
    { "fieldSelector", opts.field_selector },
    { "limit", opts.limit and tostring(opts.limit) },
    { "continue", opts.continue },
    { "resourceVersion", opts.resource_version },
  }
  for _, e in ipairs(extra or {}) do q[#q + 1] = e end
  return query(q)
end

--- LIST. opts: namespace (nil = all namespaces), label_selector,
--- field_selector, limit, continue, resource_version, metadata (true:
--- PartialObjectMetadataList, each item's metadata only).
function Client:list(kind, opts)
  opts = opts or {}
  local r, st = resolve_kind(self, kind)
  if not r then return nil, st end
  local p, perr = M.path(r, opts.namespace)
  if not p then return nil, perr end
  return self:_call("GET", p .. list_query(opts), nil,
    opts.metadata and { ["Accept"] = M.METADATA_LIST_ACCEPT } or nil)
end

--- Server-side Table (`Accept: ...;as=Table`). opts as list, plus name (one
--- object) and include_object ("Object"|"Metadata"|"None").
function Client:table(kind, opts)
  opts = opts or {}
  local r, st = resolve_kind(self, kind)
  if not r then return nil, st end
  local path, perr
  if opts.name then
    path, perr = M.path(r, r.namespaced and (opts.namespace or "default") or nil, opts.name)
    if not path then return nil, perr end
    path = path .. query({ { "includeObject", opts.include_object } })
  else
    path, perr = M.path(r, opts.namespace)
    if not path then return nil, perr end
    path = path .. list_query(opts, { { "includeObject", opts.include_object } })
  end
  return self:_call("GET", path, nil, { ["Accept"] = opts.accept or M.TABLE_ACCEPT })
end

local Stream = {}
Stream.__index = Stream

--- Next watch event {type=, object=}; nil, Status at the end or on error.
function Stream:next()
  while true do
    local nl = self.buf:find("\n", 1, true)
    if nl then
      local line = self.buf:sub(1, nl - 1)
      self.buf = self.buf:sub(nl + 1)
      if line:match("%S") then
        local ev, err = json.decode(line)
        if type(ev) ~= "table" then
          return nil, M.status(500, "InternalError", "bad watch event: " .. tostring(err))
        end
        return ev
      end
    elseif self.closed or not self.read then
      if self.buf:match("%S") then
        local line = self.buf
        self.buf = ""
        local ev = json.decode(line)
        if type(ev) == "table" then return ev end
      end
      return nil, M.status(410, "Expired", "watch closed")
    else
      local chunk, err = self.read()
      if chunk == nil then
        self.closed = true
        if err then self.err = err end
      else
        self.buf = self.buf .. chunk
      end
    end
  end
end

function Stream:close()
  if not self.closed and self.close_fn then self.close_fn() end
  self.closed = true
end
Stream.__close = Stream.close

--- WATCH. opts: namespace, label_selector, field_selector,
--- resource_version, timeout_seconds, name (watch one object),
--- table (rows as Tables), metadata (PartialObjectMetadata objects),
--- owner_events (in-process clients: only objects with ownerReferences,
--- finalizers or a deletionTimestamp, before or after, and deletions).
--- @return stream or nil, Status
function Client:watch(kind, opts)
  opts = opts or {}
  local r, st = resolve_kind(self, kind)
  if not r then return nil, st end
  local fs = opts.field_selector
  if opts.name then
    fs = "metadata.name=" .. opts.name .. (fs and ("," .. fs) or "")
  end
  local path, perr = M.path(r, opts.namespace)
  if not path then return nil, perr end
  path = path .. list_query({
    label_selector = opts.label_selector, field_selector = fs,
    resource_version = opts.resource_version,
  }, { { "watch", "true" }, { "timeoutSeconds", opts.timeout_seconds and tostring(opts.timeout_seconds) },
       { "allowWatchBookmarks", opts.bookmarks and "true" or nil } })
  local h = { ["Accept"] = opts.table and M.TABLE_ACCEPT
      or opts.metadata and M.METADATA_ACCEPT or "application/json",
    ["User-Agent"] = self.user_agent,
    -- In-process only (the server's garbage collector): see handlers.watch.
    ["X-Moonlet-Owner-Events"] = opts.owner_events and "true" or nil }
  local t0 = self.on_request and require("moonlet.loop").now()
  local ok, res, err = pcall(self.transport, { method = "GET", path = path, headers = h, stream = true })
  if not ok then return nil, transport_status(self, res) end
  if not res then return nil, transport_status(self, err) end
  if t0 then self.on_request("GET", path, res.status, require("moonlet.loop").now() - t0) end
  if res.status and (res.status < 200 or res.status > 299) then
    local body = res.body
    if not body and res.read then
      local parts = {}
      while true do
        local c = res.read()
        if not c then break end
        parts[#parts + 1] = c
      end
      body = table.concat(parts)
      if res.close then res.close() end
    end
    return nil, decode_status({ status = res.status, body = body })
  end
  local read, close = res.read, res.close
  if type(res.stream) == "table" then
    -- the in-process transport hands back a stream object
    local s = res.stream
    read = function() return s.read(s) end
    close = function() return s.close(s) end
  end
  return setmetatable({ buf = res.body or "", read = read, close_fn = close,
    closed = read == nil }, Stream)
end

local function write_query(opts)
  opts = opts or {}
  return query({
    { "fieldValidation", opts.field_validation },
    { "dryRun", opts.dry_run and "All" or nil },
    { "fieldManager", opts.field_manager },
    { "force", opts.force and "true" or nil },
  })
end

--- POST. opts: namespace, field_validation, dry_run, field_manager.
function Client:create(kind, obj, opts)
  opts = opts or {}
  local r, st = resolve_kind(self, kind)
  if not r then return nil, st end
  local p, perr = M.path(r, ns_of(r, obj, opts.namespace))
  if not p then return nil, perr end
  return self:_call("POST", p .. write_query(opts), obj)
end

--- PUT the whole object.
function Client:update(kind, obj, opts)
  local r, st = resolve_kind(self, kind)
  if not r then return nil, st end
  local p, perr = M.path(r, ns_of(r, obj, opts and opts.namespace), obj.metadata.name)
  if not p then return nil, perr end
  return self:_call("PUT", p .. write_query(opts), obj)
end

--- PUT the status subresource.
function Client:update_status(kind, obj, opts)
  local r, st = resolve_kind(self, kind)
  if not r then return nil, st end
  local p, perr = M.path(r, ns_of(r, obj, opts and opts.namespace), obj.metadata.name, "status")
  if not p then return nil, perr end
  return self:_call("PUT", p .. write_query(opts), obj)
end

--- GET a subresource of an object (`scale`, `status`). `kind` may be a
--- resolved kind table.
function Client:get_subresource(kind, ns, name, sub)
  local r, st = resolve_kind(self, kind)
  if not r then return nil, st end
  local p, perr = M.path(r, r.namespaced and (ns or "default") or nil, name, sub)
  if not p then return nil, perr end
  return self:_call("GET", p)
end

--- PUT a subresource's whole body (a Scale, ...). opts as update's.
function Client:put_subresource(kind, ns, name, sub, body, opts)
  local r, st = resolve_kind(self, kind)
  if not r then return nil, st end
  local p, perr = M.path(r, r.namespaced and (ns or "default") or nil, name, sub)
  if not p then return nil, perr end
  return self:_call("PUT", p .. write_query(opts), body)
end

--- PATCH. ptype: "merge" | "json" | "strategic" | "apply"; patch is a table
--- or an encoded string. opts: subresource, dry_run, field_manager, force.
function Client:patch(kind, ns, name, ptype, patch, opts)
  opts = opts or {}
  local r, st = resolve_kind(self, kind)
  if not r then return nil, st end
  local ctype = PATCH_TYPES[ptype] or ptype
  patch = self:_body(patch)
  local p, perr = M.path(r, r.namespaced and (ns or "default") or nil, name, opts.subresource)
  if not p then return nil, perr end
  return self:_call("PATCH", p .. write_query(opts), patch, { ["Content-Type"] = ctype })
end

--- DELETE. opts: propagation_policy ("Background"|"Foreground"|"Orphan"),
--- grace_period_seconds, dry_run, preconditions ({uid=, resourceVersion=}).
--- @return the server's answer (the object being deleted, or a Status)
function Client:delete(kind, ns, name, opts)
  opts = opts or {}
  local r, st = resolve_kind(self, kind)
  if not r then return nil, st end
  local body = { kind = "DeleteOptions", apiVersion = "v1",
    propagationPolicy = opts.propagation_policy,
    gracePeriodSeconds = opts.grace_period_seconds,
    dryRun = opts.dry_run and json.array({ "All" }) or nil,
    preconditions = opts.preconditions }
  local p, perr = M.path(r, r.namespaced and (ns or "default") or nil, name)
  if not p then return nil, perr end
  return self:_call("DELETE", p, body)
end

--- GET /version.
function Client:version()
  return self:_call("GET", "/version")
end

-- }======

-- {======================================================= default client

local default_server, default_client

--- Sets the server default() connects to (`moonlet lua --server URL`).
function M.set_default_server(url)
  default_server, default_client = url, nil
end

--- A client for --server, $MOONLET_SERVER or the default data dir's socket,
--- made once and shared: what users' scripts run by `moonlet lua` use.
function M.default()
  if not default_client then
    default_client = M.new({ server = default_server or require("moonlet.paths").server(),
      token = os.getenv("MOONLET_TOKEN") })
  end
  return default_client
end

-- }=======================================================

return M
