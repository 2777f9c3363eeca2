-- Parsing of API request paths and query parameters into what the handlers
-- need: which kind, namespace, name, subresource, verb; plus content
-- negotiation (JSON vs Table).
local kinds = require("moonlet.api.kinds")

local M = {}

local function hex_byte(h) return string.char(tonumber(h, 16)) end

-- Most segments and query values have no escape: skip gsub for them (every
-- request's path goes through here).
local function unescape(s)
  if not s:find("%", 1, true) then return s end
  return (s:gsub("%%(%x%x)", hex_byte))
end
M.unescape = unescape

--- Query string -> { name = {values...} }, "+" as space, %XX decoded.
function M.parse_query(q)
  local out = {}
  if not q or q == "" then return out end
  for pair in q:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    if k:find("+", 1, true) then k = k:gsub("%+", " ") end
    if v:find("+", 1, true) then v = v:gsub("%+", " ") end
    k, v = unescape(k), unescape(v)
    local list = out[k]
    if not list then list = {}; out[k] = list end
    list[#list + 1] = v
  end
  return out
end

--- First value of a query parameter, or nil.
function M.param(query, name)
  local l = query[name]
  return l and l[1]
end

-- `path` comes decoded once, as Go's URL.Path that kube-apiserver's router
-- splits on "/" (lhttpd decodes the request line; inproc the path its
-- client escaped): unescaping segments again would make "%2525" a "%".
local function split(path)
  local segs = {}
  for s in path:gmatch("[^/]+") do segs[#segs + 1] = s end
  return segs
end

--- Resolves a resource path. Returns a route table or nil:
--- { group, version, def, namespace, name, subresource, watch_prefix }
--- `def` is nil when the group/version exists but the resource does not.
local function route(path)
  local segs = split(path)
  local i, group, version
  if segs[1] == "api" and segs[2] then
    group, version, i = "", segs[2], 3
  elseif segs[1] == "apis" and segs[2] and segs[3] then
    group, version, i = segs[2], segs[3], 4
  else
    return nil
  end
  local r = { group = group, version = version }
  if segs[i] == "watch" then r.watch_prefix = true; i = i + 1 end
  local rest = {}
  for j = i, #segs do rest[#rest + 1] = segs[j] end
  if #rest == 0 then return nil end
  -- /namespaces/{ns}/{plural}... is namespaced unless {plural} is a
  -- subresource of the namespace itself (status, finalize).
  if rest[1] == "namespaces" and #rest >= 3 then
    local def = kinds.by_resource(group, version, rest[3])
    if def and def.namespaced then
      r.namespace, r.def, r.name, r.subresource = rest[2], def, rest[4], rest[5]
      r.extra = rest[6]
      return r
    end
    if rest[3] ~= "status" and rest[3] ~= "finalize" then
      r.namespace, r.plural = rest[2], rest[3]
      return r
    end
  end
  r.def = kinds.by_resource(group, version, rest[1])
  r.plural, r.name, r.subresource, r.extra = rest[1], rest[2], rest[3], rest[4]
  return r
end

-- Routes by path, for as long as the kind registry stays the same: every
-- create of a kind in a namespace has the same path, and splitting it
-- again (three tables, a string per segment) was a sixth of the router's
-- Lua instructions per create. Bounded: started over past ROUTES_MAX
-- paths (names make most GET/PUT paths unique).
local ROUTES_MAX = 256
local routes, routes_n, routes_gen = {}, 0, nil

--- route() through the cache. The table is shared: callers only read it.
function M.route(path)
  local gen = kinds.generation()
  if gen ~= routes_gen or routes_n >= ROUTES_MAX then
    routes, routes_n, routes_gen = {}, 0, gen
  end
  local r = routes[path]
  if r == nil then
    r = route(path) or false
    routes[path] = r
    routes_n = routes_n + 1
  end
  return r or nil
end

-- Content-Type header -> its media type, lowercased, no parameters: the
-- same few headers come with every write. Bounded.
local media_types, media_types_n = {}, 0

--- The media type of a Content-Type value ("" for an empty one).
function M.media_type(ct)
  local mt = media_types[ct]
  if mt then return mt end
  mt = ct:match("^%s*([^;%s]*)"):lower()
  if media_types_n >= 64 then media_types, media_types_n = {}, 0 end
  media_types[ct], media_types_n = mt, media_types_n + 1
  return mt
end

--- Which meta.k8s.io view of the objects the Accept header asks for:
--- "Table", "Partial" (PartialObjectMetadata; PartialObjectMetadataList for
--- a list, as client-go's metadata client asks) or nil for the objects
--- themselves. The first media type the server can serve wins, as in
--- Kubernetes' negotiation; a view of the wrong shape (a ...List for one
--- object) is passed over.
function M.view(accept, list)
  if not accept then return nil end
  for part in accept:gmatch("[^,]+") do
    local as = part:match(";%s*as=([%w]+)")
    if as == "Table" then return "Table" end
    if as == (list and "PartialObjectMetadataList" or "PartialObjectMetadata") then
      local g = part:match(";%s*g=([%w.]+)")
      if g == nil or g == "meta.k8s.io" then return "Partial" end
    end
    if not as and (part:match("^%s*application/json%s*$") or part:match("^%s*%*/%*")) then
      return nil
    end
  end
  return nil
end

return M
