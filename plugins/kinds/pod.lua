-- v1 Pod: PodSpec defaults and validation (moonlet.api.podspec), the
-- admission the API server applies on create (service account, priority,
-- the DefaultTolerationSeconds tolerations, status Pending + QoS class),
-- the pod update rules, graceful deletion and kubectl's printer columns.
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local validation = require("moonlet.validation")
local json = require("moonlet.json")
local podspec = require("moonlet.api.podspec")
local printer = require("moonlet.printers.pod")

local PodStatus = S.struct("v1.PodStatus", {
  phase = S.string, conditions = S.list(S.any), message = S.string, reason = S.string,
  nominatedNodeName = S.string, hostIP = S.string, hostIPs = S.list(S.any), podIP = S.string,
  podIPs = S.list(S.any), startTime = S.time, initContainerStatuses = S.list(S.any),
  containerStatuses = S.list(S.any), qosClass = S.string,
  ephemeralContainerStatuses = S.list(S.any), resize = S.string,
  resourceClaimStatuses = S.list(S.any), observedGeneration = S.int64,
})

-- Priorities of the built-in PriorityClasses (no PriorityClass kind yet).
local SYSTEM_PRIORITIES = { ["system-cluster-critical"] = 2000000000, ["system-node-critical"] = 2000001000 }

-- DefaultTolerationSeconds admission: every pod tolerates a not-ready or
-- unreachable node for 300 s unless it already tolerates those taints.
local function default_tolerations(spec)
  local not_ready, unreachable = false, false
  for _, t in ipairs(type(spec.tolerations) == "table" and spec.tolerations or {}) do
    local k, e = t.key or "", t.effect or ""
    if e == "NoExecute" or e == "" then
      if k == "node.kubernetes.io/not-ready" or k == "" then not_ready = true end
      if k == "node.kubernetes.io/unreachable" or k == "" then unreachable = true end
    end
  end
  local tols = type(spec.tolerations) == "table" and spec.tolerations or json.array()
  if not not_ready then
    tols[#tols + 1] = { key = "node.kubernetes.io/not-ready", operator = "Exists",
      effect = "NoExecute", tolerationSeconds = 300 }
  end
  if not unreachable then
    tols[#tols + 1] = { key = "node.kubernetes.io/unreachable", operator = "Exists",
      effect = "NoExecute", tolerationSeconds = 300 }
  end
  spec.tolerations = tols
end

-- Admission on create: ServiceAccount, Priority, DefaultTolerationSeconds.
local function admit(spec)
  if (spec.serviceAccountName or "") == "" then
    spec.serviceAccountName = (spec.serviceAccount ~= nil and spec.serviceAccount ~= "")
      and spec.serviceAccount or "default"
  end
  if spec.priority == nil then
    spec.priority = SYSTEM_PRIORITIES[spec.priorityClassName or ""] or 0
  end
  if spec.preemptionPolicy == nil then spec.preemptionPolicy = "PreemptLowerPriority" end
  default_tolerations(spec)
end

-- Objects seen by prepare_update, i.e. written through the main resource.
local main_writes = setmetatable({}, { __mode = "k" })
-- Objects validate_update saw as status writes (validate then skips the spec).
local status_writes = setmetatable({}, { __mode = "k" })

-- ValidateContainerStateTransition: under Never (and OnFailure after a
-- success) a terminated container may not come back. Restart policies
-- loaded from plugins decide restarts themselves and are not checked.
local function state_transitions(new, old, path, policy, errs)
  if policy ~= "Never" and policy ~= "OnFailure" then return end
  for i, o in ipairs(type(old) == "table" and old or {}) do
    local term = type(o.state) == "table" and o.state.terminated
    if type(term) == "table" and not (policy == "OnFailure" and (term.exitCode or 0) ~= 0) then
      for _, n in ipairs(type(new) == "table" and new or {}) do
        if n.name == o.name and not (type(n.state) == "table" and type(n.state.terminated) == "table") then
          errs:add(validation.forbidden(string.format("%s[%d].state", path, i - 1),
            "may not be transitioned to non-terminated state"))
        end
      end
    end
  end
end

return {
  group = "", version = "v1", kind = "Pod", plural = "pods", singular = "pod",
  short_names = { "po" }, namespaced = true, categories = { "all" },
  status_subresource = true,
  -- metadata.generation: set on create and bumped by spec changes, as the
  -- API server does since PodObservedGenerationTracking (1.33+).
  generation = true,
  -- Discovery lists these; `log` and `binding` are served by the kubelet
  -- and scheduler modules, which add their handlers to
  -- `subresource_handlers` of this definition when they load.
  subresources = { "status", "log", "exec", "binding", "eviction" },
  field_selectors = {
    "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
    "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName",
  },
  schema = S.kind("Pod", { spec = podspec.schema, status = PodStatus }),

  -- The strategy's PrepareForCreate: a client cannot create a pod with a
  -- status; the API server starts it as Pending (phase set in defaults).
  prepare_create = function(obj)
    obj.status = nil
  end,

  defaults = function(obj, old)
    -- A status write keeps the stored spec (validate_update puts it back):
    -- defaulting the spec it sent would be thrown away.
    if old ~= nil and not main_writes[obj] then return end
    obj.spec = type(obj.spec) == "table" and obj.spec or {}
    podspec.defaults(obj.spec, { pod = true })
    -- v1 keeps the deprecated serviceAccount field equal to the name
    if old == nil then admit(obj.spec) end
    if (obj.spec.serviceAccountName or "") ~= "" then obj.spec.serviceAccount = obj.spec.serviceAccountName end
    if old == nil then
      obj.status = type(obj.status) == "table" and obj.status or {}
      obj.status.phase = obj.status.phase or "Pending"
      obj.status.qosClass = podspec.qos_class(obj.spec)
    end
  end,

  validate = function(obj, errs, old)
    -- A status write (ValidatePodStatusUpdate) does not validate the spec:
    -- it is the stored one, validated when it was written.
    if status_writes[obj] then
      status_writes[obj] = nil
      return
    end
    podspec.validate(obj.spec, "spec", errs, { pod = true })
    if old == nil then
      local spec = obj.spec or {}
      if type(spec.ephemeralContainers) == "table" and #spec.ephemeralContainers > 0 then
        errs:add(validation.forbidden("spec.ephemeralContainers", "cannot be set on create"))
      end
      if (spec.nodeName or "") ~= "" and type(spec.schedulingGates) == "table" and #spec.schedulingGates > 0 then
        errs:add(validation.forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"))
      end
    end
  end,

  -- Only main writes pass here (the API layer skips it for /status), so
  -- validate_update can tell a spec update from a status write.
  prepare_update = function(obj)
    main_writes[obj] = true
  end,

  validate_update = function(obj, old, errs)
    if main_writes[obj] then
      main_writes[obj] = nil
      podspec.validate_update(obj.spec, old.spec, "spec", errs)
      return
    end
    -- A status write (ValidatePodStatusUpdate): the spec stays as stored.
    -- `old` is this request's own decoded copy, so it can be shared.
    obj.spec = old.spec
    status_writes[obj] = true
    local ns, os_ = type(obj.status) == "table" and obj.status or {}, type(old.status) == "table" and old.status or {}
    if ns.qosClass ~= os_.qosClass then
      errs:add(validation.invalid("status.qosClass", ns.qosClass or json.null, "field is immutable"))
    end
    state_transitions(ns.containerStatuses, os_.containerStatuses, "status.containerStatuses",
      (old.spec or {}).restartPolicy, errs)
  end,

  -- CheckGracefulDelete: the pod's grace period, but at once for a pod never
  -- scheduled to a node or already finished.
  -- The grace period a delete gets: a pod that never ran or already
  -- finished goes at once whatever was asked; otherwise the request's
  -- gracePeriodSeconds, else the pod's own.
  graceful = function(pod, requested)
    local spec, status = pod.spec or {}, pod.status or {}
    if (spec.nodeName or "") == "" then return 0 end
    if status.phase == "Succeeded" or status.phase == "Failed" then return 0 end
    if requested ~= nil then return requested end
    return spec.terminationGracePeriodSeconds or 30
  end,

  columns = {
    columns.name(),
    { name = "Ready", type = "string", description = "The aggregate readiness state of this pod for accepting traffic.",
      value = function(pod) return printer.ready(pod) end },
    { name = "Status", type = "string", description = "The aggregate status of the containers in this pod.",
      value = function(pod) return printer.status(pod) end },
    { name = "Restarts", type = "string",
      description = "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
      value = function(pod, now) return printer.restarts(pod, now) end },
    columns.age(),
    { name = "IP", type = "string", priority = 1,
      description = "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
      value = function(pod) return printer.ip(pod) end },
    { name = "Node", type = "string", priority = 1,
      description = "NodeName indicates in which node this pod is scheduled.",
      value = function(pod) return printer.node(pod) end },
    { name = "Nominated Node", type = "string", priority = 1,
      description = "nominatedNodeName is set only when this pod preempts other pods on the node.",
      value = function(pod) return printer.nominated_node(pod) end },
    { name = "Readiness Gates", type = "string", priority = 1,
      description = "If specified, all readiness gates will be evaluated for pod readiness.",
      value = function(pod) return printer.readiness_gates(pod) end },
  },
}
