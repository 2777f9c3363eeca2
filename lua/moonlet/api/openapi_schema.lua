-- moonlet.api.openapi_schema: OpenAPI v3 components.schemas for one
-- group-version, generated from the kind plugins' schemas (moonlet.api.schema).
-- Named and shaped as kube-apiserver publishes them: kubectl explain finds a
-- kind by x-kubernetes-group-version-kind, and kubectl apply builds its
-- strategic merge patch from the x-kubernetes-patch-* extensions on lists.
--
--   openapi_schema.components(group, version) -> { [name] = schema }
--   openapi_schema.kind_ref(def)              -> "#/components/schemas/..."
local json = require("moonlet.json")
local kinds = require("moonlet.api.kinds")
local merge_keys = require("moonlet.api.merge_keys")
local docs = require("moonlet.api.field_docs")
local S = require("moonlet.api.schema")

local M = {}

M.REF_PREFIX = "#/components/schemas/"

local META = "io.k8s.apimachinery.pkg.apis.meta.v1."
local CORE = "io.k8s.api.core.v1."

-- The apimachinery types, wherever a kind uses them.
local META_TYPES = {
  ObjectMeta = true, OwnerReference = true, LabelSelector = true,
  LabelSelectorRequirement = true, ManagedFieldsEntry = true, Condition = true,
}

local TIME = META .. "Time"
local INTSTR = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
local QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"

-- Leaf types referenced by name, as Kubernetes does.
local LEAVES = {
  [TIME] = { type = "string", format = "date-time" },
  -- No `type` on these two: they take a number or a string, and kubectl
  -- then prints their name (<IntOrString>, map[string]Quantity).
  [INTSTR] = { format = "int-or-string", ["x-kubernetes-int-or-string"] = true,
    oneOf = json.array({ { type = "integer" }, { type = "string" } }) },
  [QUANTITY] = { oneOf = json.array({ { type = "string" }, { type = "number" } }) },
}

-- The package prefix of a group's own types: k8s.io groups live under
-- io.k8s.api.<name>.<version>; other groups (plugin kinds) are named like
-- custom resources, by their reversed domain.
local function group_package(group, version)
  if group == "" then return "io.k8s.api.core." .. version .. "." end
  if not group:find(".", 1, true) or group:match("%.k8s%.io$") then
    return "io.k8s.api." .. group:match("^[^.]+") .. "." .. version .. "."
  end
  local labels = {}
  for l in group:gmatch("[^.]+") do table.insert(labels, 1, l) end
  return table.concat(labels, ".") .. "." .. version .. "."
end

-- Every struct name reachable from descriptor d into `set`.
local function collect_structs(d, set, seen)
  if type(d) ~= "table" or seen[d] then return end
  seen[d] = true
  if d.t == "struct" then
    set[d.name] = true
    for _, f in pairs(d.fields) do collect_structs(f, set, seen) end
  elseif d.t == "list" or d.t == "map" then
    collect_structs(d.of, set, seen)
  end
end

-- Struct names that belong to core/v1: the pod spec and whatever the core
-- kinds use (a workload's pod template, an ObjectReference ...).
local function core_types()
  local set, seen = { PodTemplateSpec = true }, {}
  local ok, podspec = pcall(require, "moonlet.api.podspec")
  if ok then collect_structs(podspec.schema, set, seen) end
  for _, d in ipairs(kinds.all()) do
    if d.group == "" and d.schema then collect_structs(d.schema, set, seen) end
  end
  return set
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- A reference, wrapped in allOf when the property carries a description
-- (OpenAPI v3 ignores siblings of $ref).
local function ref_prop(name, description)
  local r = { ["$ref"] = M.REF_PREFIX .. name }
  if not description then return r end
  return { allOf = json.array({ r }), description = description }
end

-- Builds the schemas of one group-version. `ctx` holds the output table,
-- the core set and the package of the kind being walked.
local function new_ctx(group, version)
  return { out = {}, core = core_types(), pkg = group_package(group, version),
    version = version, visited = {} }
end

-- {====== types the kind schemas leave open

-- Fields the decoders take as any JSON (S.any) but whose values nest
-- objects in real manifests. kubectl apply must find every object field
-- it walks in the schema (else it warns "unable to find api field" and
-- falls back to its own types), so their Kubernetes structure is spelled
-- out here; only the published document uses it.
local function open_types()
  local function ref_list(name) return S.list(S.struct(name, { name = S.string })) end
  local SELinux = S.struct("v1.SELinuxOptions", { user = S.string, role = S.string, type = S.string, level = S.string })
  local Windows = S.struct("v1.WindowsSecurityContextOptions", { gmsaCredentialSpecName = S.string,
    gmsaCredentialSpec = S.string, runAsUserName = S.string, hostProcess = S.boolean })
  local Seccomp = S.struct("v1.SeccompProfile", { type = S.string, localhostProfile = S.string })
  local AppArmor = S.struct("v1.AppArmorProfile", { type = S.string, localhostProfile = S.string })
  local NodeSelectorRequirement = S.struct("v1.NodeSelectorRequirement",
    { key = S.string, operator = S.string, values = S.list(S.string) })
  local NodeSelectorTerm = S.struct("v1.NodeSelectorTerm", {
    matchExpressions = S.list(NodeSelectorRequirement), matchFields = S.list(NodeSelectorRequirement) })
  local LabelSelector = require("moonlet.api.workload").LabelSelector
  local PodAffinityTerm = S.struct("v1.PodAffinityTerm", { labelSelector = LabelSelector,
    namespaceSelector = LabelSelector, namespaces = S.list(S.string), topologyKey = S.string,
    matchLabelKeys = S.list(S.string), mismatchLabelKeys = S.list(S.string) })
  local Weighted = S.struct("v1.WeightedPodAffinityTerm", { weight = S.integer, podAffinityTerm = PodAffinityTerm })
  local function pod_affinity(name)
    return S.struct(name, { requiredDuringSchedulingIgnoredDuringExecution = S.list(PodAffinityTerm),
      preferredDuringSchedulingIgnoredDuringExecution = S.list(Weighted) })
  end
  local KeyToPath = S.struct("v1.KeyToPath", { key = S.string, path = S.string, mode = S.integer })
  local FieldRef = S.struct("v1.ObjectFieldSelector", { apiVersion = S.string, fieldPath = S.string })
  local ResourceRef = S.struct("v1.ResourceFieldSelector", { containerName = S.string,
    resource = S.string, divisor = S.quantity })
  local DownwardFile = S.struct("v1.DownwardAPIVolumeFile", { path = S.string, fieldRef = FieldRef,
    resourceFieldRef = ResourceRef, mode = S.integer })
  local ConfigMapProjection = S.struct("v1.ConfigMapProjection", { name = S.string,
    items = S.list(KeyToPath), optional = S.boolean })
  local SecretProjection = S.struct("v1.SecretProjection", { name = S.string,
    items = S.list(KeyToPath), optional = S.boolean })
  return {
    ["v1.Container.securityContext"] = S.struct("v1.SecurityContext", {
      capabilities = S.struct("v1.Capabilities", { add = S.list(S.string), drop = S.list(S.string) }),
      privileged = S.boolean, seLinuxOptions = SELinux, windowsOptions = Windows, runAsUser = S.int64,
      runAsGroup = S.int64, runAsNonRoot = S.boolean, readOnlyRootFilesystem = S.boolean,
      allowPrivilegeEscalation = S.boolean, procMount = S.string, seccompProfile = Seccomp,
      appArmorProfile = AppArmor }),
    ["v1.PodSpec.securityContext"] = S.struct("v1.PodSecurityContext", {
      seLinuxOptions = SELinux, windowsOptions = Windows, runAsUser = S.int64, runAsGroup = S.int64,
      runAsNonRoot = S.boolean, supplementalGroups = S.list(S.int64), supplementalGroupsPolicy = S.string,
      fsGroup = S.int64, fsGroupChangePolicy = S.string, seccompProfile = Seccomp,
      appArmorProfile = AppArmor, seLinuxChangePolicy = S.string,
      sysctls = S.list(S.struct("v1.Sysctl", { name = S.string, value = S.string })) }),
    ["v1.PodSpec.affinity"] = S.struct("v1.Affinity", {
      nodeAffinity = S.struct("v1.NodeAffinity", {
        requiredDuringSchedulingIgnoredDuringExecution = S.struct("v1.NodeSelector",
          { nodeSelectorTerms = S.list(NodeSelectorTerm) }),
        preferredDuringSchedulingIgnoredDuringExecution = S.list(S.struct("v1.PreferredSchedulingTerm",
          { weight = S.integer, preference = NodeSelectorTerm })) }),
      podAffinity = pod_affinity("v1.PodAffinity"), podAntiAffinity = pod_affinity("v1.PodAntiAffinity") }),
    ["v1.PodSpec.topologySpreadConstraints"] = S.list(S.struct("v1.TopologySpreadConstraint", {
      maxSkew = S.integer, topologyKey = S.string, whenUnsatisfiable = S.string,
      labelSelector = LabelSelector, minDomains = S.integer, nodeAffinityPolicy = S.string,
      nodeTaintsPolicy = S.string, matchLabelKeys = S.list(S.string) })),
    ["v1.PodSpec.dnsConfig"] = S.struct("v1.PodDNSConfig", { nameservers = S.list(S.string),
      searches = S.list(S.string),
      options = S.list(S.struct("v1.PodDNSConfigOption", { name = S.string, value = S.string })) }),
    ["v1.PodSpec.hostAliases"] = S.list(S.struct("v1.HostAlias", { ip = S.string, hostnames = S.list(S.string) })),
    ["v1.PodSpec.os"] = S.struct("v1.PodOS", { name = S.string }),
    ["v1.PodSpec.schedulingGates"] = ref_list("v1.PodSchedulingGate"),
    ["v1.Volume.configMap"] = S.struct("v1.ConfigMapVolumeSource", { name = S.string,
      items = S.list(KeyToPath), defaultMode = S.integer, optional = S.boolean }),
    ["v1.Volume.secret"] = S.struct("v1.SecretVolumeSource", { secretName = S.string,
      items = S.list(KeyToPath), defaultMode = S.integer, optional = S.boolean }),
    ["v1.Volume.downwardAPI"] = S.struct("v1.DownwardAPIVolumeSource",
      { items = S.list(DownwardFile), defaultMode = S.integer }),
    ["v1.Volume.projected"] = S.struct("v1.ProjectedVolumeSource", { defaultMode = S.integer,
      sources = S.list(S.struct("v1.VolumeProjection", { configMap = ConfigMapProjection,
        secret = SecretProjection,
        downwardAPI = S.struct("v1.DownwardAPIProjection", { items = S.list(DownwardFile) }),
        serviceAccountToken = S.struct("v1.ServiceAccountTokenProjection",
          { audience = S.string, expirationSeconds = S.int64, path = S.string }) })) }),
  }
end

local OPEN
-- The descriptor to publish for field `field` of struct d.
local function field_type(d, field)
  local fd = d.fields[field]
  local inner = fd.t == "list" and fd.of or fd
  if inner.t ~= "any" then return fd end
  OPEN = OPEN or open_types()
  return OPEN[d.go .. "." .. field] or fd
end

-- }======

local struct_name

-- The property schema of descriptor d (at JSON path `path` of kind `def`).
local function prop(ctx, d, def, path, description)
  local t = d.t
  if t == "struct" then
    return ref_prop(struct_name(ctx, d, def, path), description)
  elseif t == "time" then return ref_prop(TIME, description)
  elseif t == "intstr" then return ref_prop(INTSTR, description)
  elseif t == "quantity" then return ref_prop(QUANTITY, description)
  end
  local s
  if t == "string" then s = { type = "string" }
  elseif t == "integer" then s = { type = "integer", format = d.go == "int64" and "int64" or "int32" }
  elseif t == "number" then s = { type = "number", format = "double" }
  elseif t == "boolean" then s = { type = "boolean" }
  elseif t == "list" then s = { type = "array", items = prop(ctx, d.of, def, path .. "[]") }
  elseif t == "map" then s = { type = "object", additionalProperties = prop(ctx, d.of, def, path .. "[*]") }
  else s = { type = "object", ["x-kubernetes-preserve-unknown-fields"] = true }
  end
  s.description = description
  return s
end

-- The component name of struct d, emitting its schema on first sight. A
-- struct of the same name met again (every workload declares its own
-- PodTemplateSpec table) adds only the fields not seen yet.
struct_name = function(ctx, d, def, path)
  local short = d.name
  local name
  if META_TYPES[short] then name = META .. short
  elseif ctx.core[short] then name = CORE .. short
  else name = ctx.pkg .. short
  end
  local s = ctx.out[name]
  if not s then
    s = { type = "object", description = docs.describe(d.go), properties = {} }
    local req = docs.required(d.go)
    if req then s.required = json.array(req) end
    ctx.out[name] = s
  end
  -- The same table under the same kind path is walked once; another path
  -- may carry other merge keys, so it is walked again.
  local key = tostring(d) .. "@" .. def.gvk .. ":" .. path
  if ctx.visited[key] then return name end
  ctx.visited[key] = true
  local mk = merge_keys.for_kind(def.group, def.kind)
  for _, field in ipairs(sorted_keys(d.fields)) do
    local fpath = path == "" and field or (path .. "." .. field)
    local p = prop(ctx, field_type(d, field), def, fpath, docs.describe(d.go .. "." .. field))
    local m = mk[fpath]
    if m then
      if m.key then p["x-kubernetes-patch-merge-key"] = m.key end
      if m.strategy then p["x-kubernetes-patch-strategy"] = m.strategy end
    end
    local old = s.properties[field]
    if not old or (m and not old["x-kubernetes-patch-strategy"]) then s.properties[field] = p end
  end
  return name
end

--- The component name of kind def's top-level schema.
function M.kind_name(def)
  return group_package(def.group, def.version) .. def.kind
end

--- "#/components/schemas/<name>" of kind def.
function M.kind_ref(def) return M.REF_PREFIX .. M.kind_name(def) end

-- The top-level schema of kind def into ctx.out.
local function add_kind(ctx, def)
  local root = def.schema
  local s = { type = "object", properties = {},
    description = root and docs.describe(root.go) or nil,
    ["x-kubernetes-group-version-kind"] = json.array({
      { group = def.group, version = def.version, kind = def.kind } }) }
  ctx.out[M.kind_name(def)] = s
  if not root then
    for _, f in ipairs({ "apiVersion", "kind" }) do s.properties[f] = { type = "string" } end
    s.properties.metadata = ref_prop(META .. "ObjectMeta")
    s["x-kubernetes-preserve-unknown-fields"] = true
    struct_name(ctx, require("moonlet.api.schema").ObjectMeta, def, "metadata")
    return
  end
  local mk = merge_keys.for_kind(def.group, def.kind)
  for _, field in ipairs(sorted_keys(root.fields)) do
    local p = prop(ctx, root.fields[field], def, field, docs.describe(root.go .. "." .. field))
    local m = mk[field]
    if m then
      if m.key then p["x-kubernetes-patch-merge-key"] = m.key end
      if m.strategy then p["x-kubernetes-patch-strategy"] = m.strategy end
    end
    s.properties[field] = p
  end
end

--- components.schemas of one group-version: every kind's top-level schema
--- (with x-kubernetes-group-version-kind) and the types they reference.
function M.components(group, version)
  local ctx = new_ctx(group, version)
  local any = false
  for _, def in ipairs(kinds.all()) do
    if def.group == group and def.version == version then
      add_kind(ctx, def)
      any = true
    end
  end
  if any then
    for name, s in pairs(LEAVES) do ctx.out[name] = s end
  end
  return ctx.out
end

return M
