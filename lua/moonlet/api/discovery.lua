-- API discovery documents: /version, /api, /apis, /api/v1, /apis/{g}/{v}.
-- kubectl builds its REST mapping from these (legacy discovery; it falls
-- back to it when the server does not offer the aggregated form). Also the
-- OpenAPI v3 index and per-group-version documents (/openapi/v3/...):
-- kubectl reads them to learn that PATCH/POST/PUT take `fieldValidation`
-- (else --validate=strict wants /openapi/v2 schemas) and which patch types
-- a kind accepts (kubectl apply); their components.schemas (built by
-- moonlet.api.openapi_schema) drive kubectl explain and apply's patches.
local json = require("moonlet.json")
local kinds = require("moonlet.api.kinds")
local merge_keys = require("moonlet.api.merge_keys")
local openapi_schema = require("moonlet.api.openapi_schema")

local M = {}

M.KUBE_VERSION = { major = "1", minor = "32", git = "v1.32.0" }

function M.version(moonlet_version)
  return {
    major = M.KUBE_VERSION.major, minor = M.KUBE_VERSION.minor,
    gitVersion = M.KUBE_VERSION.git .. "+moonlet-" .. moonlet_version,
    gitCommit = "", gitTreeState = "clean", buildDate = "",
    goVersion = "moonlet (Lua 5.4)", compiler = "gc", platform = "linux/amd64",
  }
end

local ADDRESS = json.array({ { clientCIDR = "0.0.0.0/0", serverAddress = "" } })

function M.core_versions()
  return { kind = "APIVersions", versions = json.array({ "v1" }),
    serverAddressByClientCIDRs = ADDRESS }
end

function M.groups()
  local groups = json.array()
  for _, g in ipairs(kinds.groups()) do
    if g.name ~= "" then
      local versions = json.array()
      for i, v in ipairs(g.versions) do
        versions[i] = { groupVersion = g.name .. "/" .. v, version = v }
      end
      groups[#groups + 1] = { name = g.name, versions = versions, preferredVersion = versions[1] }
    end
  end
  return { kind = "APIGroupList", apiVersion = "v1", groups = groups }
end

function M.group(name)
  for _, g in ipairs(M.groups().groups) do
    if g.name == name then
      g.kind, g.apiVersion = "APIGroup", "v1"
      return g
    end
  end
end

local SUBRESOURCE_VERBS = json.array({ "get", "patch", "update" })

--- APIResourceList for one group/version, or nil when it has no kinds.
function M.resources(group, version)
  local list = json.array()
  for _, d in ipairs(kinds.all()) do
    if d.group == group and d.version == version then
      local r = { name = d.plural, singularName = d.singular, namespaced = d.namespaced,
        kind = d.kind, verbs = json.array(d.verbs) }
      if #d.short_names > 0 then r.shortNames = json.array(d.short_names) end
      if #d.categories > 0 then r.categories = json.array(d.categories) end
      list[#list + 1] = r
      for _, sub in ipairs(d.subresources or {}) do
        local r = { name = d.plural .. "/" .. sub, singularName = "", namespaced = d.namespaced,
          kind = d.kind, verbs = SUBRESOURCE_VERBS }
        -- The scale subresource speaks autoscaling/v1 Scale, whatever the
        -- kind's own group: clients (kubectl scale) read it from here.
        if sub == "scale" then r.group, r.version, r.kind = "autoscaling", "v1", "Scale" end
        list[#list + 1] = r
      end
    end
  end
  if #list == 0 then return nil end
  return { kind = "APIResourceList", apiVersion = "v1",
    groupVersion = group == "" and version or (group .. "/" .. version), resources = list }
end

-- {====== OpenAPI v3

-- "api/v1" or "apis/{group}/{version}": the OpenAPI v3 path of a group-version.
local function gv_path(group, version)
  if group == "" then return "api/" .. version end
  return "apis/" .. group .. "/" .. version
end

--- GET /openapi/v3: where each group-version's document lives.
function M.openapi_index()
  local paths, seen = {}, {}
  for _, d in ipairs(kinds.all()) do
    local p = gv_path(d.group, d.version)
    if not seen[p] then
      seen[p] = true
      paths[p] = { serverRelativeURL = "/openapi/v3/" .. p }
    end
  end
  return { paths = paths }
end

local function camel(s)
  return (s:gsub("[^%w]+(%w)", string.upper):gsub("^%l", string.upper))
end

local function query_param(name, typ, description)
  return { name = name, ["in"] = "query", description = description,
    schema = { type = typ, uniqueItems = true } }
end

local P = {
  dryRun = query_param("dryRun", "string",
    "When present, indicates that modifications should not be persisted. Valid values are: - All"),
  fieldManager = query_param("fieldManager", "string",
    "fieldManager is a name associated with the actor or entity that is making these changes."),
  fieldValidation = query_param("fieldValidation", "string",
    "fieldValidation instructs the server on how to handle objects in the request containing "
    .. "unknown or duplicate fields. Valid values are: Ignore, Warn (the default), Strict."),
  pretty = query_param("pretty", "string", "If 'true', then the output is pretty printed."),
  labelSelector = query_param("labelSelector", "string", "A selector to restrict the list of returned objects by their labels."),
  fieldSelector = query_param("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields."),
  limit = query_param("limit", "integer", "limit is a maximum number of responses to return for a list call."),
  continue = query_param("continue", "string", "The continue option should be set when retrieving more results from the server."),
  resourceVersion = query_param("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a request may be served from."),
  watch = query_param("watch", "boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications."),
  gracePeriodSeconds = query_param("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted."),
  propagationPolicy = query_param("propagationPolicy", "string", "Whether and how garbage collection will be performed: Orphan, Background or Foreground."),
}

local function path_param(name, description)
  return { name = name, ["in"] = "path", required = true, description = description,
    schema = { type = "string", uniqueItems = true } }
end

local OBJECT = { type = "object" }

-- The kind's own schema for bodies that are one object of it.
local function kind_schema(d) return { ["$ref"] = openapi_schema.kind_ref(d) } end

local function json_body(d)
  return { content = { ["application/json"] = { schema = kind_schema(d) } }, required = true }
end

local function ok_response(schema)
  return { ["200"] = { description = "OK", content = { ["application/json"] = { schema = schema or OBJECT } } },
    ["401"] = { description = "Unauthorized" } }
end

-- Actions whose answer is one object of the kind.
local ONE_OBJECT = { get = true, post = true, put = true, patch = true }

-- One operation; `params` are names in P.
local function op(d, action, verb, scope, params, extra)
  local list = json.array()
  for i, n in ipairs(params) do list[i] = P[n] end
  local o = {
    tags = json.array({ camel(d.group == "" and "core" or d.group) .. "_" .. d.version }),
    operationId = verb .. (d.group == "" and "Core" or camel(d.group)) .. camel(d.version) .. scope .. d.kind,
    parameters = list, responses = ok_response(ONE_OBJECT[action] and kind_schema(d) or nil),
    ["x-kubernetes-action"] = action,
    ["x-kubernetes-group-version-kind"] = { group = d.group, version = d.version, kind = d.kind },
  }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- The patch types the server takes for kind `d`: strategic merge only for
-- built-in kinds (custom kinds answer 415 to it, as in Kubernetes).
local function patch_body(d)
  local content = {
    ["application/json-patch+json"] = { schema = OBJECT },
    ["application/merge-patch+json"] = { schema = OBJECT },
  }
  if merge_keys.supports_strategic(d.group, d.kind) then
    content["application/strategic-merge-patch+json"] = { schema = OBJECT }
  end
  return { content = content, required = true }
end

local function has_verb(d, v)
  for _, x in ipairs(d.verbs) do if x == v then return true end end
  return false
end

-- The collection and item paths of kind `d` into `paths`.
local function kind_paths(paths, d)
  local base = "/" .. gv_path(d.group, d.version)
  local scope = d.namespaced and "Namespaced" or ""
  local coll = base .. (d.namespaced and "/namespaces/{namespace}/" or "/") .. d.plural
  local ns = d.namespaced and { path_param("namespace", "object name and auth scope, such as for teams and projects") } or nil
  local function with_ns(extra)
    local l = json.array()
    for _, p in ipairs(ns or {}) do l[#l + 1] = p end
    for _, p in ipairs(extra or {}) do l[#l + 1] = p end
    return l
  end
  local list_params = { "labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch" }
  local c = { parameters = with_ns({ P.pretty }) }
  if has_verb(d, "list") then c.get = op(d, "list", "list", scope, list_params) end
  if has_verb(d, "create") then
    c.post = op(d, "post", "create", scope, { "dryRun", "fieldManager", "fieldValidation" },
      { requestBody = json_body(d) })
  end
  if has_verb(d, "deletecollection") then
    c.delete = op(d, "deletecollection", "deleteCollection", scope,
      { "dryRun", "gracePeriodSeconds", "propagationPolicy", "labelSelector", "fieldSelector" })
  end
  paths[coll] = c
  if d.namespaced and has_verb(d, "list") then
    paths[base .. "/" .. d.plural] = { parameters = json.array({ P.pretty }),
      get = op(d, "list", "list", "", list_params, { operationId = "list" .. (d.group == "" and "Core" or camel(d.group))
        .. camel(d.version) .. d.kind .. "ForAllNamespaces" }) }
  end
  local name = path_param("name", "name of the " .. d.kind)
  local function item(suffix, action_scope)
    local it = { parameters = with_ns({ name, P.pretty }) }
    if has_verb(d, "get") then it.get = op(d, "get", "read", action_scope, {}) end
    if has_verb(d, "update") then
      it.put = op(d, "put", "replace", action_scope, { "dryRun", "fieldManager", "fieldValidation" },
        { requestBody = json_body(d) })
    end
    if has_verb(d, "patch") then
      it.patch = op(d, "patch", "patch", action_scope, { "dryRun", "fieldManager", "fieldValidation" },
        { requestBody = patch_body(d) })
    end
    paths[coll .. "/{name}" .. suffix] = it
    return it
  end
  local it = item("", scope)
  if has_verb(d, "delete") then
    it.delete = op(d, "delete", "delete", scope, { "dryRun", "gracePeriodSeconds", "propagationPolicy" })
  end
  for _, sub in ipairs(d.subresources or {}) do
    local sit = item("/" .. sub, scope .. camel(sub))
    -- scale answers autoscaling/v1 Scale, not the kind: leave it untyped.
    if sub == "scale" then
      for _, m in ipairs({ "get", "put", "patch" }) do
        if sit[m] then sit[m].responses = ok_response() end
      end
      if sit.put then sit.put.requestBody = { content = { ["application/json"] = { schema = OBJECT } }, required = true } end
    end
  end
end

-- Built documents by path. kubectl fetches one on every apply and explain,
-- and building it walks every schema, so it is kept while the registered
-- kinds are the same tables (a script reload registers new ones).
local doc_cache = { defs = {}, docs = {} }

local function same_kinds(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local build_doc

--- GET /openapi/v3/api/v1 or /openapi/v3/apis/{g}/{v}: the OpenAPI v3
--- document of one group-version, or nil when it has no kinds. The table
--- is shared between requests: treat it as read-only.
function M.openapi_doc(gvpath)
  local defs = kinds.all()
  if not same_kinds(defs, doc_cache.defs) then doc_cache.defs, doc_cache.docs = defs, {} end
  local doc = doc_cache.docs[gvpath]
  if doc == nil then
    doc = build_doc(gvpath) or false
    doc_cache.docs[gvpath] = doc
  end
  return doc or nil
end

build_doc = function(gvpath)
  local paths, gv = {}, nil
  for _, d in ipairs(kinds.all()) do
    if gv_path(d.group, d.version) == gvpath then
      kind_paths(paths, d)
      gv = gv or d
    end
  end
  if not gv then return nil end
  local schemas = openapi_schema.components(gv.group, gv.version)
  return {
    openapi = "3.0.0",
    info = { title = "Kubernetes", version = M.KUBE_VERSION.git },
    paths = paths,
    components = { schemas = schemas, securitySchemes = { BearerToken = { type = "apiKey", name = "authorization",
      ["in"] = "header", description = "Bearer Token authentication" } } },
    security = json.array({ { BearerToken = json.array() } }),
  }
end

-- }======

return M
