-- A small in-memory Kubernetes API for CLI specs: discovery, namespaced and
-- cluster objects, equality label/field selectors, Tables, create, merge and
-- strategic patches, delete and canned watch streams. Just enough REST to
-- drive every CLI verb through a transport function.
local json = require("moonlet.json")
local patch = require("moonlet.api.patch")
local merge_keys = require("moonlet.api.merge_keys")

local M = {}

local RESOURCES = {
  { name = "configmaps", singularName = "configmap", namespaced = true, kind = "ConfigMap",
    verbs = { "create", "delete", "get", "list", "patch", "update", "watch" }, shortNames = { "cm" } },
  { name = "events", singularName = "event", namespaced = true, kind = "Event",
    verbs = { "create", "get", "list" }, shortNames = { "ev" } },
  { name = "namespaces", singularName = "namespace", namespaced = false, kind = "Namespace",
    verbs = { "create", "delete", "get", "list" }, shortNames = { "ns" } },
}
local APPS = {
  { name = "deployments", singularName = "deployment", namespaced = true, kind = "Deployment",
    verbs = { "get", "list" }, shortNames = { "deploy" }, categories = { "all" } },
}

local function status(code, reason, message, details)
  return code, { kind = "Status", apiVersion = "v1", metadata = {}, status = "Failure",
    reason = reason, message = message, code = code, details = details }
end

local function matches(obj, label_sel, field_sel)
  local m = obj.metadata
  for term in (label_sel or ""):gmatch("[^,]+") do
    local k, v = term:match("^([^=!]+)=(.*)$")
    if k then
      if ((m.labels or {})[k]) ~= v then return false end
    elseif (m.labels or {})[term] == nil then
      return false
    end
  end
  for term in (field_sel or ""):gmatch("[^,]+") do
    local k, v = term:match("^([^=]+)=(.*)$")
    local cur = obj
    for part in k:gmatch("[^.]+") do cur = type(cur) == "table" and cur[part] or nil end
    if tostring(cur or "") ~= v then return false end
  end
  return true
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- New fake server. api.objects[key] where key = "plural/ns/name".
function M.new()
  local api = { objects = {}, rv = 10, log = {}, watch_events = {} }
  local function key(plural, ns, name) return plural .. "/" .. (ns or "") .. "/" .. name end

  function api.add(plural, obj)
    api.rv = api.rv + 1
    obj.metadata.resourceVersion = tostring(api.rv)
    obj.metadata.uid = obj.metadata.uid or ("uid-" .. obj.metadata.name)
    obj.metadata.creationTimestamp = obj.metadata.creationTimestamp or "2024-05-01T10:00:00Z"
    api.objects[key(plural, obj.metadata.namespace, obj.metadata.name)] = obj
    return obj
  end

  local function table_of(res, objs)
    local cols = { { name = "Name", type = "string", format = "name", priority = 0 } }
    if res.kind == "ConfigMap" then cols[#cols + 1] = { name = "Data", type = "integer", format = "", priority = 0 } end
    if res.kind == "Namespace" then cols[#cols + 1] = { name = "Status", type = "string", format = "", priority = 0 } end
    cols[#cols + 1] = { name = "Age", type = "string", format = "", priority = 0 }
    cols[#cols + 1] = { name = "UID", type = "string", format = "", priority = 1 }
    local rows = {}
    for _, o in ipairs(objs) do
      local cells = { o.metadata.name }
      if res.kind == "ConfigMap" then
        local n = 0
        for _ in pairs(o.data or {}) do n = n + 1 end
        cells[#cells + 1] = n
      end
      if res.kind == "Namespace" then cells[#cells + 1] = "Active" end
      cells[#cells + 1] = "5m"
      cells[#cells + 1] = o.metadata.uid
      rows[#rows + 1] = { cells = cells, object = { kind = "PartialObjectMetadata", metadata = o.metadata } }
    end
    return { kind = "Table", apiVersion = "meta.k8s.io/v1", metadata = { resourceVersion = tostring(api.rv) },
      columnDefinitions = cols, rows = rows }
  end

  local function handle(req)
    local path, q = req.path:match("^([^?]*)%??(.*)$")
    local query = {}
    for k, v in q:gmatch("([^&=]+)=([^&]*)") do query[k] = unescape(v) end
    if path == "/api" then return 200, { kind = "APIVersions", versions = { "v1" } } end
    if path == "/api/v1" then return 200, { kind = "APIResourceList", groupVersion = "v1", resources = RESOURCES } end
    if path == "/apis" then
      return 200, { kind = "APIGroupList", groups = { { name = "apps",
        versions = { { groupVersion = "apps/v1", version = "v1" } },
        preferredVersion = { groupVersion = "apps/v1", version = "v1" } } } }
    end
    if path == "/apis/apps/v1" then return 200, { kind = "APIResourceList", groupVersion = "apps/v1", resources = APPS } end
    if path == "/version" then return 200, { gitVersion = "v1.32.0+moonlet-test", major = "1", minor = "32" } end
    local rest = path:match("^/api/v1/(.*)$") or path:match("^/apis/apps/v1/(.*)$")
    if not rest then return status(404, "NotFound", "the server could not find the requested resource") end
    local ns, plural, name = rest:match("^namespaces/([^/]+)/([^/]+)/?([^/]*)$")
    if not ns then
      plural, name = rest:match("^([^/]+)/?([^/]*)$")
      if plural == "namespaces" and name and name ~= "" then ns = nil end
    end
    if name == "" then name = nil end
    name = name and unescape(name)
    local res
    for _, r in ipairs(RESOURCES) do if r.name == plural then res = r end end
    for _, r in ipairs(APPS) do if r.name == plural then res = r end end
    if not res then return status(404, "NotFound", "the server could not find the requested resource") end
    local as_table = (req.headers["Accept"] or ""):find("as=Table", 1, true)
    if req.method == "GET" and query.watch == "true" then
      local lines = {}
      for _, ev in ipairs(api.watch_events) do
        if as_table and ev.object.kind ~= "Table" then
          lines[#lines + 1] = json.encode({ type = ev.type, object = table_of(res, { ev.object }) })
        else
          lines[#lines + 1] = json.encode(ev)
        end
      end
      return 200, table.concat(lines, "\n") .. (#lines > 0 and "\n" or "")
    end
    if req.method == "GET" and name then
      local o = api.objects[key(plural, ns, name)]
      if not o then return status(404, "NotFound", string.format('%s "%s" not found', plural, name),
        { name = name, kind = plural }) end
      if as_table then return 200, table_of(res, { o }) end
      local out = json.copy(o)
      out.__plural = nil
      return 200, out
    end
    if req.method == "GET" then
      local items = {}
      for _, o in pairs(api.objects) do
        local k = o.__plural
        if k == plural and (ns == nil or o.metadata.namespace == ns)
            and matches(o, query.labelSelector, query.fieldSelector) then
          items[#items + 1] = o
        end
      end
      table.sort(items, function(a, b)
        if (a.metadata.namespace or "") ~= (b.metadata.namespace or "") then
          return (a.metadata.namespace or "") < (b.metadata.namespace or "")
        end
        return a.metadata.name < b.metadata.name
      end)
      if as_table then return 200, table_of(res, items) end
      local clean = json.array()
      for i, o in ipairs(items) do
        local c = json.copy(o)
        c.__plural, c.apiVersion, c.kind = nil, nil, nil
        clean[i] = c
      end
      return 200, { kind = res.kind .. "List", apiVersion = "v1",
        metadata = { resourceVersion = tostring(api.rv) }, items = clean }
    end
    if req.method == "POST" then
      local obj = json.decode(req.body)
      obj.metadata.namespace = res.namespaced and ns or nil
      local k = key(plural, obj.metadata.namespace, obj.metadata.name)
      if api.objects[k] then
        return status(409, "AlreadyExists", string.format('%s "%s" already exists', plural, obj.metadata.name))
      end
      if obj.metadata.name == "bad" then
        return status(422, "Invalid", string.format('%s "bad" is invalid: metadata.name: Invalid value', res.kind))
      end
      if query.dryRun then return 201, obj end
      obj.__plural = plural
      api.add(plural, obj)
      local out = json.copy(obj)
      out.__plural = nil
      return 201, out
    end
    local k = key(plural, ns, name)
    local cur = api.objects[k]
    if not cur then return status(404, "NotFound", string.format('%s "%s" not found', plural, name)) end
    if req.method == "PATCH" then
      local p = json.decode(req.body)
      local ct = req.headers["Content-Type"]
      local new
      if ct == "application/strategic-merge-patch+json" then
        new = assert(patch.strategic(cur, p, merge_keys.for_kind(res.group or "", res.kind)))
      else
        new = patch.merge(cur, p)
      end
      api.rv = api.rv + 1
      new.metadata.resourceVersion = tostring(api.rv)
      api.objects[k] = new
      local out = json.copy(new)
      out.__plural = nil
      return 200, out
    end
    if req.method == "DELETE" then
      api.objects[k] = nil
      local out = json.copy(cur)
      out.__plural = nil
      return 200, out
    end
    return status(405, "MethodNotAllowed", "method not allowed")
  end

  function api.transport(req)
    api.log[#api.log + 1] = req
    local code, body = handle(req)
    if type(body) ~= "string" then body = json.encode(body) end
    return { status = code, headers = { ["Content-Type"] = "application/json" }, body = body }
  end

  --- Seeds an object (kind's plural, object table).
  function api.put(plural, obj)
    obj.__plural = plural
    return api.add(plural, obj)
  end

  function api.get(plural, ns, name)
    return api.objects[key(plural, ns, name)]
  end

  return api
end

--- Runs the CLI against `api`; returns exit status, stdout, stderr.
function M.run(api, argv, opts)
  local cli = require("moonlet.cli")
  local client = require("moonlet.client")
  local out, err = {}, {}
  opts = opts or {}
  local o = {
    out = function(s) out[#out + 1] = s end,
    err = function(s) err[#err + 1] = s end,
    getenv = function() return nil end,
    stdin = opts.stdin,
    now = opts.now,
    editor_run = opts.editor_run,
    client = client.new({ transport = api.transport,
      on_warning = function(t) err[#err + 1] = "Warning: " .. t .. "\n" end }),
  }
  local rc = cli.main(argv, o)
  return rc, table.concat(out), table.concat(err)
end

return M
