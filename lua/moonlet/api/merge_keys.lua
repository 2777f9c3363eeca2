-- moonlet.api.merge_keys: strategic-merge metadata of the built-in kinds,
-- transcribed from the patchStrategy / patchMergeKey struct tags of
-- k8s.io/api (core/v1, apps/v1, batch/v1, coordination/v1, ...), in the
-- table form moonlet.api.patch.strategic reads: field path -> entry, `[]`
-- marking list elements, `key` the merge key, `strategy` the tag.
--
-- Kubernetes accepts strategic merge patch only for built-in kinds; custom
-- resources answer 415, so supports_strategic() is false for any kind not
-- listed here (the router then advertises json-patch and merge-patch).
local M = {}

local function merge_by(key) return { key = key, strategy = "merge" } end
local MERGE = { strategy = "merge" }

-- ObjectMeta, wherever it appears (objects and templates).
local OBJECT_META = {
  ownerReferences = merge_by("uid"),
  finalizers = MERGE,
}

-- Container and EphemeralContainer share these.
local CONTAINER = {
  ports = merge_by("containerPort"),
  env = merge_by("name"),
  volumeMounts = merge_by("mountPath"),
  volumeDevices = merge_by("devicePath"),
  -- envFrom, resizePolicy: untagged, lists replace
}

local POD_SPEC = {
  volumes = { key = "name", strategy = "merge,retainKeys" },
  initContainers = merge_by("name"),
  containers = merge_by("name"),
  ephemeralContainers = merge_by("name"),
  imagePullSecrets = merge_by("name"),
  hostAliases = merge_by("ip"),
  topologySpreadConstraints = merge_by("topologyKey"),
  schedulingGates = merge_by("name"),
  resourceClaims = { key = "name", strategy = "merge,retainKeys" },
  -- tolerations, readinessGates: untagged, lists replace
}

local POD_STATUS = {
  conditions = merge_by("type"),
  podIPs = merge_by("ip"),
  hostIPs = merge_by("ip"),
  resourceClaimStatuses = { key = "name", strategy = "merge,retainKeys" },
}

local CONDITIONS = { conditions = merge_by("type") }

-- Copies `entries` into `into` under `prefix`.
local function put(into, prefix, entries)
  for field, e in pairs(entries) do
    into[prefix == "" and field or (prefix .. "." .. field)] = e
  end
end

local function pod_spec_at(into, prefix)
  put(into, prefix, POD_SPEC)
  for _, list in ipairs({ "containers", "initContainers",
                          "ephemeralContainers" }) do
    put(into, prefix .. "." .. list .. "[]", CONTAINER)
  end
end

-- A PodTemplateSpec at `prefix` (metadata + spec).
local function template_at(into, prefix)
  put(into, prefix .. ".metadata", OBJECT_META)
  pod_spec_at(into, prefix .. ".spec")
end

-- Builds one kind's table: its own metadata plus what `extra` adds.
local function kind_table(extra)
  local t = {}
  put(t, "metadata", OBJECT_META)
  if extra then extra(t) end
  return t
end

local function status_conditions(t) put(t, "status", CONDITIONS) end

local function workload(t)
  template_at(t, "spec.template")
  status_conditions(t)
end

local BUILDERS = {
  [""] = {
    Pod = function(t)
      pod_spec_at(t, "spec")
      put(t, "status", POD_STATUS)
    end,
    PodTemplate = function(t) template_at(t, "template") end,
    ReplicationController = workload,
    Node = function(t)
      put(t, "spec", { podCIDRs = MERGE })
      put(t, "status", { conditions = merge_by("type"),
                         addresses = merge_by("type") })
    end,
    Service = function(t)
      put(t, "spec", { ports = merge_by("port") })
      status_conditions(t)
    end,
    Namespace = status_conditions,
    ServiceAccount = function(t)
      put(t, "", { secrets = merge_by("name") })
    end,
    ConfigMap = false, Secret = false, Event = false, Endpoints = false,
    PersistentVolumeClaim = status_conditions,
    PersistentVolume = false, LimitRange = false, ResourceQuota = false,
  },
  apps = {
    Deployment = function(t)
      workload(t)
      put(t, "spec", { strategy = { strategy = "retainKeys" } })
    end,
    ReplicaSet = workload,
    DaemonSet = workload,
    StatefulSet = workload,
    ControllerRevision = false,
  },
  batch = {
    Job = workload,
    CronJob = function(t)
      put(t, "spec.jobTemplate.metadata", OBJECT_META)
      template_at(t, "spec.jobTemplate.spec.template")
    end,
  },
  ["coordination.k8s.io"] = { Lease = false },
  ["events.k8s.io"] = { Event = false },
  ["discovery.k8s.io"] = { EndpointSlice = false },
  ["policy"] = { PodDisruptionBudget = status_conditions },
  ["autoscaling"] = { HorizontalPodAutoscaler = false },
}

local cache = {}
local GENERIC = {}

local function normalize_group(group)
  if group == nil or group == "core" then return "" end
  return group
end

--- merge_keys.for_kind(group, kind) -> table for patch.strategic. Unknown
--- kinds get an empty table (maps merge, lists replace). The returned
--- tables are shared: treat them as read-only.
function M.for_kind(group, kind)
  group = normalize_group(group)
  local builders = BUILDERS[group]
  local b = builders and builders[kind]
  if b == nil then return GENERIC end
  local id = group .. "/" .. kind
  local t = cache[id]
  if not t then
    t = kind_table(b or nil)
    cache[id] = t
  end
  return t
end

--- merge_keys.supports_strategic(group, kind) -> boolean: whether the API
--- server accepts application/strategic-merge-patch+json for the kind.
--- False for custom resources (Kubernetes answers 415 Unsupported Media
--- Type for them).
function M.supports_strategic(group, kind)
  local builders = BUILDERS[normalize_group(group)]
  return builders ~= nil and builders[kind] ~= nil
end

return M
