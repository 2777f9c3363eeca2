-- Kind registry: every kind the API serves is registered here by a kind
-- plugin (plugins/kinds/*.lua or a scripts dir's kinds/*.lua). A plugin
-- gives names, scope, schema, defaults, validation and printer columns; the
-- registry derives the REST and store names from them.
local M = {}

local by_gvk = {}      -- "apps/v1/Deployment" -> def
local by_resource = {} -- "apps/v1/deployments" -> def
local order = {}       -- defs in registration order (discovery lists them so)
-- Bumped by every change of the registry, so what callers derived from it
-- (moonlet.api.request's route cache) knows when to start over.
local generation = 0

local REQUIRED = { "version", "kind", "plural" }

-- Groups whose kinds Kubernetes serves from Go types (core, apps, batch,
-- policy, autoscaling and the *.k8s.io groups): what they store went
-- through encoding/json, so omitempty applies. Other groups are custom
-- resources, stored as the JSON given, empty maps and lists included.
local function go_typed_group(group)
  return group == "" or group == "apps" or group == "batch" or group == "policy"
    or group == "autoscaling" or group:find("%.k8s%.io$") ~= nil
end

local function api_version(group, version)
  if group == "" then return version end
  return group .. "/" .. version
end

--- Checks a plugin table; returns nil or a message naming the bad field.
function M.check(def)
  if type(def) ~= "table" then return "a kind plugin must return a table" end
  for _, f in ipairs(REQUIRED) do
    if type(def[f]) ~= "string" or def[f] == "" then
      return string.format("field %q: must be a non-empty string", f)
    end
  end
  if def.group ~= nil and type(def.group) ~= "string" then return 'field "group": must be a string' end
  if def.plural ~= def.plural:lower() then return 'field "plural": must be lowercase' end
  for _, f in ipairs({ "defaults", "validate", "validate_update", "describe", "on_create", "on_delete" }) do
    if def[f] ~= nil and type(def[f]) ~= "function" then
      return string.format("field %q: must be a function", f)
    end
  end
  if def.columns ~= nil and type(def.columns) ~= "table" then return 'field "columns": must be a list' end
  return nil
end

--- Registers (or replaces) a kind. Returns the normalized definition.
function M.register(def, source)
  local err = M.check(def)
  if err then error(err, 2) end
  def.group = def.group or ""
  def.singular = def.singular or def.kind:lower()
  def.short_names = def.short_names or {}
  def.categories = def.categories or {}
  def.namespaced = def.namespaced ~= false
  def.api_version = api_version(def.group, def.version)
  def.gvk = def.api_version .. "/" .. def.kind
  def.resource_key = def.api_version .. "/" .. def.plural
  -- The store is keyed by group and resource, not version.
  def.store_resource = def.group == "" and def.plural or (def.group .. "/" .. def.plural)
  -- Errors name resources the way Kubernetes does: "deployments.apps".
  def.qualified = def.group == "" and def.plural or (def.plural .. "." .. def.group)
  def.source = source
  if def.omitempty == nil then def.omitempty = go_typed_group(def.group) end
  def.subresources = def.subresources or {}
  if def.status_subresource then
    local has = false
    for _, s in ipairs(def.subresources) do if s == "status" then has = true end end
    if not has then table.insert(def.subresources, 1, "status") end
  end
  def.verbs = def.verbs or { "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch" }
  local fields = { ["metadata.name"] = "metadata.name" }
  if def.namespaced then fields["metadata.namespace"] = "metadata.namespace" end
  for k, v in pairs(def.field_selectors or {}) do
    if type(k) == "number" then fields[v] = v else fields[k] = v end
  end
  def.field_paths = fields
  local old = by_gvk[def.gvk]
  if old then
    for i, d in ipairs(order) do if d == old then table.remove(order, i) break end end
    by_resource[old.resource_key] = nil
  end
  by_gvk[def.gvk] = def
  by_resource[def.resource_key] = def
  order[#order + 1] = def
  generation = generation + 1
  return def
end

function M.unregister_source(source)
  for i = #order, 1, -1 do
    local d = order[i]
    if d.source == source then
      table.remove(order, i)
      by_gvk[d.gvk], by_resource[d.resource_key] = nil, nil
    end
  end
  generation = generation + 1
end

--- A number that changes whenever a kind is registered or removed.
function M.generation() return generation end

--- def | nil for ("apps", "v1", "deployments").
function M.by_resource(group, version, plural)
  return by_resource[api_version(group, version) .. "/" .. plural]
end

--- def | nil for ("apps/v1", "Deployment") or ("apps/v1/Deployment").
function M.by_kind(apiversion, kind)
  if kind == nil then return by_gvk[apiversion] end
  return by_gvk[apiversion .. "/" .. kind]
end

--- All kinds in registration order.
function M.all()
  local out = {}
  for i, d in ipairs(order) do out[i] = d end
  return out
end

--- { {name=group, versions={...}} } in first-registration order; "" first.
-- kube-apiserver's group priorities (its aggregator's table): /apis lists
-- groups by them, highest first, and kubectl follows that order for
-- categories (`get all`: pods, daemonsets, deployments, replicasets,
-- cronjobs, jobs). Other groups rank as CustomResourceDefinitions do (1000),
-- then by name.
local GROUP_PRIORITY = {
  ["apps"] = 17800, ["events.k8s.io"] = 17750, ["authentication.k8s.io"] = 17700,
  ["authorization.k8s.io"] = 17600, ["autoscaling"] = 17500, ["batch"] = 17400,
  ["certificates.k8s.io"] = 17300, ["networking.k8s.io"] = 17200, ["policy"] = 17100,
  ["rbac.authorization.k8s.io"] = 17000, ["storage.k8s.io"] = 16800,
  ["apiextensions.k8s.io"] = 16700, ["admissionregistration.k8s.io"] = 16700,
  ["scheduling.k8s.io"] = 16600, ["coordination.k8s.io"] = 16500, ["node.k8s.io"] = 16300,
  ["discovery.k8s.io"] = 16200, ["flowcontrol.apiserver.k8s.io"] = 16100,
  -- metrics-server's APIService asks for groupPriorityMinimum 100
  ["metrics.k8s.io"] = 100,
}

local function group_before(a, b)
  if a.name == "" or b.name == "" then return a.name == "" and b.name ~= "" end
  local pa, pb = GROUP_PRIORITY[a.name] or 1000, GROUP_PRIORITY[b.name] or 1000
  if pa ~= pb then return pa > pb end
  return a.name < b.name
end

function M.groups()
  local seen, out = {}, {}
  for _, d in ipairs(order) do
    local g = seen[d.group]
    if not g then
      g = { name = d.group, versions = {}, vseen = {} }
      seen[d.group] = g
      out[#out + 1] = g
    end
    if not g.vseen[d.version] then
      g.vseen[d.version] = true
      g.versions[#g.versions + 1] = d.version
    end
  end
  table.sort(out, group_before)
  return out
end

function M.reset()
  by_gvk, by_resource, order = {}, {}, {}
  generation = generation + 1
end

return M
