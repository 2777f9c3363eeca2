-- The v1 PodSpec shared by Pod and every pod template (ReplicaSet,
-- Deployment, Job ...): its structural schema with the Go type names decode
-- errors use, Kubernetes' defaulting (SetDefaults_PodSpec, _Container,
-- _Probe, ...) and ValidatePodSpec with apimachinery field paths and
-- messages; plus the QoS class and the pod update rules.
--
--   podspec.defaults(spec, {pod = true})      -- defaults in place
--   podspec.validate(spec, "spec", errs, {pod = true})
--   podspec.validate_update(new_spec, old_spec, "spec", errs)
local S = require("moonlet.api.schema")
local json = require("moonlet.json")
local validation = require("moonlet.validation")
local quantity = require("moonlet.api.quantity")

local M = {}

local MAX_INT32 = 2147483647

-- {======================================================= schema

local ExecAction = S.struct("v1.ExecAction", { command = S.list(S.string) })
local HTTPHeader = S.struct("v1.HTTPHeader", { name = S.string, value = S.string })
local HTTPGetAction = S.struct("v1.HTTPGetAction", {
  path = S.string, port = S.intstr, host = S.string, scheme = S.string,
  httpHeaders = S.list(HTTPHeader),
})
local TCPSocketAction = S.struct("v1.TCPSocketAction", { port = S.intstr, host = S.string })
local GRPCAction = S.struct("v1.GRPCAction", { port = S.integer, service = S.string })
-- moonlet's extension: a Lua check plugin by name with free-form arguments
local LuaAction = S.struct("v1.LuaAction", { check = S.string, args = S.any })
local SleepAction = S.struct("v1.SleepAction", { seconds = S.int64 })

local Probe = S.struct("v1.Probe", {
  exec = ExecAction, httpGet = HTTPGetAction, tcpSocket = TCPSocketAction, grpc = GRPCAction,
  lua = LuaAction,
  initialDelaySeconds = S.integer, timeoutSeconds = S.integer, periodSeconds = S.integer,
  successThreshold = S.integer, failureThreshold = S.integer,
  terminationGracePeriodSeconds = S.int64,
})
local LifecycleHandler = S.struct("v1.LifecycleHandler", {
  exec = ExecAction, httpGet = HTTPGetAction, tcpSocket = TCPSocketAction, sleep = SleepAction,
})
local Lifecycle = S.struct("v1.Lifecycle", {
  postStart = LifecycleHandler, preStop = LifecycleHandler, stopSignal = S.string,
})
local ContainerPort = S.struct("v1.ContainerPort", {
  name = S.string, hostPort = S.integer, containerPort = S.integer, protocol = S.string,
  hostIP = S.string,
})
local EnvVarSource = S.struct("v1.EnvVarSource", {
  fieldRef = S.struct("v1.ObjectFieldSelector", { apiVersion = S.string, fieldPath = S.string }),
  resourceFieldRef = S.struct("v1.ResourceFieldSelector", {
    containerName = S.string, resource = S.string, divisor = S.quantity }),
  configMapKeyRef = S.struct("v1.ConfigMapKeySelector", {
    name = S.string, key = S.string, optional = S.boolean }),
  secretKeyRef = S.struct("v1.SecretKeySelector", {
    name = S.string, key = S.string, optional = S.boolean }),
})
local EnvVar = S.struct("v1.EnvVar", { name = S.string, value = S.string, valueFrom = EnvVarSource })
local EnvFromSource = S.struct("v1.EnvFromSource", {
  prefix = S.string,
  configMapRef = S.struct("v1.ConfigMapEnvSource", { name = S.string, optional = S.boolean }),
  secretRef = S.struct("v1.SecretEnvSource", { name = S.string, optional = S.boolean }),
})
local ResourceList = S.map(S.quantity, "v1.ResourceList")
local ResourceRequirements = S.struct("v1.ResourceRequirements", {
  limits = ResourceList, requests = ResourceList, claims = S.list(S.any),
})
local VolumeMount = S.struct("v1.VolumeMount", {
  name = S.string, readOnly = S.boolean, recursiveReadOnly = S.string, mountPath = S.string,
  subPath = S.string, mountPropagation = S.string, subPathExpr = S.string,
})
local VolumeDevice = S.struct("v1.VolumeDevice", { name = S.string, devicePath = S.string })

M.Probe = Probe

M.Container = S.struct("v1.Container", {
  name = S.string, image = S.string, command = S.list(S.string), args = S.list(S.string),
  workingDir = S.string, ports = S.list(ContainerPort), envFrom = S.list(EnvFromSource),
  env = S.list(EnvVar), resources = ResourceRequirements, resizePolicy = S.list(S.any),
  restartPolicy = S.string, restartPolicyRules = S.list(S.any),
  volumeMounts = S.list(VolumeMount), volumeDevices = S.list(VolumeDevice),
  livenessProbe = Probe, readinessProbe = Probe, startupProbe = Probe, lifecycle = Lifecycle,
  terminationMessagePath = S.string, terminationMessagePolicy = S.string,
  imagePullPolicy = S.string, securityContext = S.any, stdin = S.boolean,
  stdinOnce = S.boolean, tty = S.boolean,
})

-- Every VolumeSource member: a volume is a name plus exactly one of these.
M.VOLUME_SOURCES = {
  "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
  "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
  "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
  "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
  "storageos", "csi", "ephemeral", "image",
}
local volume_fields = { name = S.string }
for _, k in ipairs(M.VOLUME_SOURCES) do volume_fields[k] = S.any end
local Volume = S.struct("v1.Volume", volume_fields)

local Toleration = S.struct("v1.Toleration", {
  key = S.string, operator = S.string, value = S.string, effect = S.string,
  tolerationSeconds = S.int64,
})

M.schema = S.struct("v1.PodSpec", {
  volumes = S.list(Volume), initContainers = S.list(M.Container),
  containers = S.keep_empty(S.list(M.Container)), ephemeralContainers = S.list(S.any),
  restartPolicy = S.string, terminationGracePeriodSeconds = S.int64,
  activeDeadlineSeconds = S.int64, dnsPolicy = S.string, nodeSelector = S.map(S.string),
  serviceAccountName = S.string, serviceAccount = S.string,
  automountServiceAccountToken = S.boolean, nodeName = S.string, hostNetwork = S.boolean,
  hostPID = S.boolean, hostIPC = S.boolean, shareProcessNamespace = S.boolean,
  securityContext = S.any,
  imagePullSecrets = S.list(S.struct("v1.LocalObjectReference", { name = S.string })),
  hostname = S.string, subdomain = S.string, affinity = S.any, schedulerName = S.string,
  tolerations = S.list(Toleration), hostAliases = S.list(S.any),
  priorityClassName = S.string, priority = S.integer, dnsConfig = S.any,
  readinessGates = S.list(S.struct("v1.PodReadinessGate", { conditionType = S.string })),
  runtimeClassName = S.string, enableServiceLinks = S.boolean, preemptionPolicy = S.string,
  overhead = ResourceList, topologySpreadConstraints = S.list(S.any),
  setHostnameAsFQDN = S.boolean, os = S.any, hostUsers = S.boolean,
  schedulingGates = S.list(S.any), resourceClaims = S.list(S.any),
  resources = ResourceRequirements,
})

-- }=======================================================

-- {======================================================= helpers

local function is_table(v) return type(v) == "table" and v ~= json.null end
local function present(v) return v ~= nil and v ~= json.null end
local function list(v) return is_table(v) and v or {} end
local function str(v) return type(v) == "string" and v or "" end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function idx(path, i) return string.format("%s[%d]", path, i - 1) end
local function key(path, k) return string.format("%s[%s]", path, k) end

--- Deep equality of decoded JSON values; a missing member, null and an
--- empty list or object count as the same absence.
function M.equal(a, b)
  local function empty(v) return v == nil or v == json.null or (type(v) == "table" and next(v) == nil) end
  if empty(a) and empty(b) then return true end
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not M.equal(v, b[k]) then return false end end
  for k, v in pairs(b) do if a[k] == nil and not M.equal(nil, v) then return false end end
  return true
end

--- Every container of a spec with its list name: init, regular, ephemeral.
function M.each_container(spec, fn)
  for _, l in ipairs({ "initContainers", "containers", "ephemeralContainers" }) do
    for i, c in ipairs(list(spec[l])) do
      if is_table(c) then fn(c, l, i) end
    end
  end
end

--- The restart policies a pod may name: the three built-ins, or what the
--- kubelet's policy registry has loaded (plugins add their own names).
function M.restart_policies()
  local ok, policies = pcall(require, "moonlet.kubelet.policies")
  if ok and type(policies) == "table" and type(policies.names) == "function" then
    local names = policies.names()
    if type(names) == "table" and #names > 0 then return names end
  end
  return { "Always", "OnFailure", "Never" }
end

--- IsRestartableInitContainer: an init container with restartPolicy Always.
function M.is_sidecar(c) return is_table(c) and c.restartPolicy == "Always" end

-- }=======================================================

-- {======================================================= defaults

-- parsers.ParseImageName's tag: "latest" when neither tag nor digest.
local function image_tag(image)
  local ref = image:match("^([^@]*)") or image
  local digest = image:find("@", 1, true)
  local last = ref:match("([^/]*)$") or ref
  local tag = last:match(":([^:]*)$")
  if tag then return tag end
  if digest then return "" end
  return "latest"
end

local function default_http_get(h)
  if not is_table(h) then return end
  if str(h.path) == "" then h.path = "/" end
  if str(h.scheme) == "" then h.scheme = "HTTP" end
end

local function default_probe(p)
  if not is_table(p) then return end
  if (p.timeoutSeconds or 0) == 0 then p.timeoutSeconds = 1 end
  if (p.periodSeconds or 0) == 0 then p.periodSeconds = 10 end
  if (p.successThreshold or 0) == 0 then p.successThreshold = 1 end
  if (p.failureThreshold or 0) == 0 then p.failureThreshold = 3 end
  default_http_get(p.httpGet)
  if is_table(p.grpc) and p.grpc.service == nil then p.grpc.service = "" end
end

-- SetDefaults_ResourceList: values rounded up to milli scale and written
-- back in canonical form, as the API server stores them.
local function default_resource_list(rl)
  if not is_table(rl) then return end
  for k, v in pairs(rl) do rl[k] = quantity.canonical(v) end
end

local function default_container(c, pod)
  if str(c.imagePullPolicy) == "" then
    -- an image that does not parse (or none) has no tag: IfNotPresent
    local image = str(c.image)
    c.imagePullPolicy = (image ~= "" and image_tag(image) == "latest") and "Always" or "IfNotPresent"
  end
  if str(c.terminationMessagePath) == "" then c.terminationMessagePath = "/dev/termination-log" end
  if str(c.terminationMessagePolicy) == "" then c.terminationMessagePolicy = "File" end
  for _, p in ipairs(list(c.ports)) do
    if is_table(p) and str(p.protocol) == "" then p.protocol = "TCP" end
  end
  for _, e in ipairs(list(c.env)) do
    local fr = is_table(e) and is_table(e.valueFrom) and e.valueFrom.fieldRef
    if is_table(fr) and str(fr.apiVersion) == "" then fr.apiVersion = "v1" end
  end
  default_probe(c.livenessProbe)
  default_probe(c.readinessProbe)
  default_probe(c.startupProbe)
  if is_table(c.lifecycle) then
    for _, h in ipairs({ c.lifecycle.postStart, c.lifecycle.preStop }) do
      if is_table(h) then default_http_get(h.httpGet) end
    end
  end
  if is_table(c.resources) then
    default_resource_list(c.resources.limits)
    default_resource_list(c.resources.requests)
    -- SetDefaults_Pod: requests default to limits (pods only, not templates)
    if pod and is_table(c.resources.limits) then
      local req = is_table(c.resources.requests) and c.resources.requests or {}
      for k, v in pairs(c.resources.limits) do if req[k] == nil then req[k] = v end end
      if next(req) ~= nil then c.resources.requests = req end
    end
  end
end

local function default_volume(v)
  local has = false
  for _, k in ipairs(M.VOLUME_SOURCES) do if present(v[k]) then has = true end end
  if not has then v.emptyDir = json.object({}) end
  for _, k in ipairs({ "secret", "configMap", "downwardAPI", "projected" }) do
    if is_table(v[k]) and v[k].defaultMode == nil then v[k].defaultMode = 420 end
  end
  if is_table(v.hostPath) and v.hostPath.type == nil then v.hostPath.type = "" end
end

--- SetDefaults_PodSpec and the container, probe and volume defaults, in
--- place. opts.pod adds what SetDefaults_Pod does only for Pods (requests
--- from limits, enableServiceLinks, host ports under hostNetwork).
function M.defaults(spec, opts)
  opts = opts or {}
  if not is_table(spec) then return spec end
  if str(spec.dnsPolicy) == "" then spec.dnsPolicy = "ClusterFirst" end
  if str(spec.restartPolicy) == "" then spec.restartPolicy = "Always" end
  if not is_table(spec.securityContext) then spec.securityContext = json.object({}) end
  if spec.terminationGracePeriodSeconds == nil or spec.terminationGracePeriodSeconds == json.null then
    spec.terminationGracePeriodSeconds = 30
  end
  if str(spec.schedulerName) == "" then spec.schedulerName = "default-scheduler" end
  for _, v in ipairs(list(spec.volumes)) do if is_table(v) then default_volume(v) end end
  M.each_container(spec, function(c) default_container(c, opts.pod) end)
  default_resource_list(spec.overhead)
  if opts.pod then
    if spec.enableServiceLinks == nil then spec.enableServiceLinks = true end
    if spec.hostNetwork == true then
      for _, l in ipairs({ spec.containers, spec.initContainers }) do
        for _, c in ipairs(list(l)) do
          for _, p in ipairs(is_table(c) and list(c.ports) or {}) do
            if is_table(p) and (p.hostPort or 0) == 0 then p.hostPort = p.containerPort end
          end
        end
      end
    end
    -- Negative grace periods are stored as 1 (the pod strategy's rule).
    local g = spec.terminationGracePeriodSeconds
    if math.type(g) and g < 0 then spec.terminationGracePeriodSeconds = 1 end
  end
  return spec
end

--- ComputePodQOS: "Guaranteed", "Burstable" or "BestEffort".
function M.qos_class(spec)
  local requests, limits, guaranteed = {}, {}, true
  local zero = quantity.zero()
  local function sum(into, name, v)
    local q = quantity.parse(v)
    if not q or q:cmp(zero) <= 0 then return false end
    into[name] = into[name] and into[name]:add(q) or q
    return true
  end
  local all = {}
  for _, c in ipairs(list(spec and spec.containers)) do all[#all + 1] = c end
  for _, c in ipairs(list(spec and spec.initContainers)) do all[#all + 1] = c end
  for _, c in ipairs(all) do
    local res = is_table(c) and is_table(c.resources) and c.resources or {}
    for _, name in ipairs({ "cpu", "memory" }) do
      if is_table(res.requests) and present(res.requests[name]) then sum(requests, name, res.requests[name]) end
    end
    local found = {}
    for _, name in ipairs({ "cpu", "memory" }) do
      if is_table(res.limits) and present(res.limits[name]) and sum(limits, name, res.limits[name]) then
        found[name] = true
      end
    end
    if not (found.cpu and found.memory) then guaranteed = false end
  end
  if next(requests) == nil and next(limits) == nil then return "BestEffort" end
  if guaranteed then
    for name, req in pairs(requests) do
      if not limits[name] or limits[name]:cmp(req) ~= 0 then guaranteed = false end
    end
  end
  local nreq, nlim = 0, 0
  for _ in pairs(requests) do nreq = nreq + 1 end
  for _ in pairs(limits) do nlim = nlim + 1 end
  if guaranteed and nreq == nlim then return "Guaranteed" end
  return "Burstable"
end

-- }=======================================================

-- {======================================================= validation

local V = validation

local function dns1123_label(value, path, errs)
  for _, msg in ipairs(V.is_dns1123_label(value)) do errs:add(V.invalid(path, value, msg)) end
end

local function dns1123_subdomain(value, path, errs)
  for _, msg in ipairs(V.is_dns1123_subdomain(value)) do errs:add(V.invalid(path, value, msg)) end
end

local function nonnegative(v, path, errs)
  if math.type(v) and v < 0 then errs:add(V.invalid(path, v, "must be greater than or equal to 0")) end
end

-- ValidatePortNumOrName for an int-or-string port.
local function port_num_or_name(port, path, errs)
  if math.type(port) then
    for _, msg in ipairs(V.is_valid_port_num(port)) do errs:add(V.invalid(path, port, msg)) end
  elseif type(port) == "string" then
    -- an IntOrString given as a string is a name, even "8080"
    for _, msg in ipairs(V.is_valid_port_name(port)) do errs:add(V.invalid(path, port, msg)) end
  else
    for _, msg in ipairs(V.is_valid_port_num(0)) do errs:add(V.invalid(path, 0, msg)) end
  end
end

local function validate_http_get(h, path, errs)
  if str(h.path) == "" then errs:add(V.required(path .. ".path", "")) end
  port_num_or_name(h.port, path .. ".port", errs)
  if h.scheme ~= "HTTP" and h.scheme ~= "HTTPS" then
    errs:add(V.not_supported(path .. ".scheme", h.scheme or "", { "HTTP", "HTTPS" }))
  end
  for _, hd in ipairs(list(h.httpHeaders)) do
    local name = is_table(hd) and str(hd.name) or ""
    if not name:match("^[-A-Za-z0-9]+$") then
      errs:add(V.invalid(path .. ".httpHeaders", name, V.regex_error(
        "a valid HTTP header must consist of alphanumeric characters or '-'", "[-A-Za-z0-9]+",
        "X-Header-Name")))
    end
  end
end

-- The handler members in the order validateHandler checks them; `lua` is
-- moonlet's custom check.
local HANDLERS = { "exec", "httpGet", "tcpSocket", "grpc", "sleep", "lua" }

local function validate_handler(h, path, errs, allowed)
  local n = 0
  for _, kind in ipairs(HANDLERS) do
    if allowed[kind] and present(h[kind]) then
      local p = path .. "." .. kind
      if n > 0 then
        errs:add(V.forbidden(p, "may not specify more than 1 handler type"))
      else
        n = n + 1
        local a = h[kind]
        if not is_table(a) then a = {} end
        if kind == "exec" then
          if #list(a.command) == 0 then errs:add(V.required(p .. ".command", "")) end
        elseif kind == "httpGet" then validate_http_get(a, p, errs)
        elseif kind == "tcpSocket" then port_num_or_name(a.port, p .. ".port", errs)
        elseif kind == "grpc" then port_num_or_name(a.port or 0, p .. ".port", errs)
        elseif kind == "lua" then
          if str(a.check) == "" then errs:add(V.required(p .. ".check", "")) end
        elseif kind == "sleep" then
          local g = allowed.grace
          local s = a.seconds
          if math.type(g) and (not math.type(s) or s < 0 or s > g) then
            errs:add(V.invalid(p, s or 0, string.format(
              "must be non-negative and less than terminationGracePeriodSeconds (%d)", g)))
          end
        end
      end
    end
  end
  if n == 0 then errs:add(V.required(path, "must specify a handler type")) end
end

local PROBE_HANDLERS = { exec = true, httpGet = true, tcpSocket = true, grpc = true, lua = true }

local function validate_probe(p, path, errs, which)
  if not present(p) then return end
  if not is_table(p) then p = {} end
  validate_handler(p, path, errs, PROBE_HANDLERS)
  for _, f in ipairs({ "initialDelaySeconds", "timeoutSeconds", "periodSeconds",
    "successThreshold", "failureThreshold" }) do
    nonnegative(p[f], path .. "." .. f, errs)
  end
  local tg = p.terminationGracePeriodSeconds
  if math.type(tg) and tg <= 0 then
    errs:add(V.invalid(path .. ".terminationGracePeriodSeconds", tg, "must be greater than 0"))
  end
  if which ~= "readiness" then
    if (p.successThreshold or 0) ~= 1 then
      errs:add(V.invalid(path .. ".successThreshold", p.successThreshold or 0, "must be 1"))
    end
  elseif present(tg) then
    errs:add(V.invalid(path .. ".terminationGracePeriodSeconds", tg, "must not be set for readinessProbes"))
  end
end

local function validate_lifecycle(l, path, errs, grace)
  if not is_table(l) then return end
  local allowed = { exec = true, httpGet = true, tcpSocket = true, sleep = true, grace = grace }
  if present(l.postStart) then validate_handler(is_table(l.postStart) and l.postStart or {}, path .. ".postStart", errs, allowed) end
  if present(l.preStop) then validate_handler(is_table(l.preStop) and l.preStop or {}, path .. ".preStop", errs, allowed) end
end

local function validate_ports(ports, path, errs)
  local names = {}
  for i, p in ipairs(list(ports)) do
    local ip = idx(path, i)
    if not is_table(p) then p = {} end
    local name = str(p.name)
    if name ~= "" then
      local msgs = V.is_valid_port_name(name)
      if #msgs > 0 then
        for _, msg in ipairs(msgs) do errs:add(V.invalid(ip .. ".name", name, msg)) end
      elseif names[name] then
        errs:add(V.duplicate(ip .. ".name", name))
      else
        names[name] = true
      end
    end
    local cp = p.containerPort or 0
    if cp == 0 then
      errs:add(V.required(ip .. ".containerPort", ""))
    else
      for _, msg in ipairs(V.is_valid_port_num(cp)) do errs:add(V.invalid(ip .. ".containerPort", cp, msg)) end
    end
    local hp = p.hostPort or 0
    if hp ~= 0 then
      for _, msg in ipairs(V.is_valid_port_num(hp)) do errs:add(V.invalid(ip .. ".hostPort", hp, msg)) end
    end
    local proto = str(p.protocol)
    if proto == "" then
      errs:add(V.required(ip .. ".protocol", ""))
    elseif proto ~= "TCP" and proto ~= "UDP" and proto ~= "SCTP" then
      errs:add(V.not_supported(ip .. ".protocol", proto, { "SCTP", "TCP", "UDP" }))
    end
  end
end

local ENV_FIELD_PATHS = { "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
  "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs" }
local ENV_FIELD_SET = {}
for _, p in ipairs(ENV_FIELD_PATHS) do ENV_FIELD_SET[p] = true end
local RESOURCE_FIELD_PATHS = { "limits.cpu", "limits.ephemeral-storage", "limits.memory",
  "requests.cpu", "requests.ephemeral-storage", "requests.memory" }

local CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"

local function key_selector(s, path, errs)
  if not is_table(s) then s = {} end
  local name = str(s.name)
  for _, msg in ipairs(V.is_dns1123_subdomain(name)) do errs:add(V.invalid(path .. ".name", name, msg)) end
  local k = str(s.key)
  if k == "" then
    errs:add(V.required(path .. ".key", ""))
  elseif #k > 253 then
    errs:add(V.invalid(path .. ".key", k, V.max_len_error(253)))
  elseif k == "." or k == ".." then
    errs:add(V.invalid(path .. ".key", k, "must not be '" .. k .. "'"))
  elseif not k:match("^[-._a-zA-Z0-9]+$") then
    errs:add(V.invalid(path .. ".key", k, CONFIG_KEY_MSG))
  end
end

local function validate_env(env, path, errs)
  for i, e in ipairs(list(env)) do
    local ip = idx(path, i)
    if not is_table(e) then e = {} end
    local name = str(e.name)
    if name == "" then
      errs:add(V.required(ip .. ".name", ""))
    else
      for _, msg in ipairs(V.is_env_var_name(name)) do errs:add(V.invalid(ip .. ".name", name, msg)) end
    end
    local vf = e.valueFrom
    if is_table(vf) then
      local vp, n = ip .. ".valueFrom", 0
      if present(vf.fieldRef) then
        n = n + 1
        local fr = is_table(vf.fieldRef) and vf.fieldRef or {}
        local fp = vp .. ".fieldRef"
        if str(fr.apiVersion) == "" then
          errs:add(V.required(fp .. ".apiVersion", ""))
        elseif str(fr.fieldPath) == "" then
          errs:add(V.required(fp .. ".fieldPath", ""))
        else
          local base, sub = fr.fieldPath:match("^([^%[]+)%['(.*)'%]$")
          if base == "metadata.annotations" or base == "metadata.labels" then
            local k = base == "metadata.annotations" and sub:lower() or sub
            for _, msg in ipairs(V.is_qualified_name(k)) do errs:add(V.invalid(fp, k, msg)) end
          elseif base then
            errs:add(V.invalid(fp, base, "does not support subscript"))
          elseif not ENV_FIELD_SET[fr.fieldPath] then
            errs:add(V.not_supported(fp .. ".fieldPath", fr.fieldPath, ENV_FIELD_PATHS))
          end
        end
      end
      if present(vf.resourceFieldRef) then
        n = n + 1
        local rf = is_table(vf.resourceFieldRef) and vf.resourceFieldRef or {}
        local res = str(rf.resource)
        if res == "" then
          errs:add(V.required(vp .. ".resourceFieldRef.resource", ""))
        else
          local ok = false
          for _, r in ipairs(RESOURCE_FIELD_PATHS) do if r == res then ok = true end end
          if res:match("^requests%.hugepages%-") or res:match("^limits%.hugepages%-") then ok = true end
          if not ok then errs:add(V.not_supported(vp .. ".resourceFieldRef.resource", res, RESOURCE_FIELD_PATHS)) end
        end
      end
      if present(vf.configMapKeyRef) then
        n = n + 1
        key_selector(vf.configMapKeyRef, vp .. ".configMapKeyRef", errs)
      end
      if present(vf.secretKeyRef) then
        n = n + 1
        key_selector(vf.secretKeyRef, vp .. ".secretKeyRef", errs)
      end
      if n == 0 then
        errs:add(V.invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
      elseif str(e.value) ~= "" then
        errs:add(V.invalid(vp, "", "may not be specified when `value` is not empty"))
      elseif n > 1 then
        errs:add(V.invalid(vp, "", "may not have more than one field specified at a time"))
      end
    end
  end
end

local function validate_env_from(env_from, path, errs)
  for i, e in ipairs(list(env_from)) do
    local ip = idx(path, i)
    if not is_table(e) then e = {} end
    if str(e.prefix) ~= "" then
      for _, msg in ipairs(V.is_env_var_name(e.prefix)) do errs:add(V.invalid(ip .. ".prefix", e.prefix, msg)) end
    end
    local n = 0
    for _, k in ipairs({ "configMapRef", "secretRef" }) do
      if present(e[k]) then
        n = n + 1
        local name = is_table(e[k]) and str(e[k].name) or ""
        if name == "" then
          errs:add(V.required(ip .. "." .. k .. ".name", ""))
        else
          for _, msg in ipairs(V.name_is_dns_subdomain(name, true)) do
            errs:add(V.invalid(ip .. "." .. k .. ".name", name, msg))
          end
        end
      end
    end
    if n == 0 then
      errs:add(V.invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
    elseif n > 1 then
      errs:add(V.invalid(path, "", "may not have more than one field specified at a time"))
    end
  end
end

local function validate_mounts(mounts, path, errs, volumes)
  local seen = {}
  for i, m in ipairs(list(mounts)) do
    local ip = idx(path, i)
    if not is_table(m) then m = {} end
    local name, mp = str(m.name), str(m.mountPath)
    if name == "" then errs:add(V.required(ip .. ".name", "")) end
    if not volumes[name] then errs:add(V.not_found(ip .. ".name", name)) end
    if mp == "" then errs:add(V.required(ip .. ".mountPath", "")) end
    if seen[mp] then errs:add(V.invalid(ip .. ".mountPath", mp, "must be unique")) end
    seen[mp] = true
  end
end

local STANDARD_CONTAINER_RESOURCES = { cpu = true, memory = true, ["ephemeral-storage"] = true }

local function validate_resources(res, path, errs)
  if not is_table(res) then return end
  local lim_path, req_path = path .. ".limits", path .. ".requests"
  local parsed = {}
  local function check(rl, p, tag)
    parsed[tag] = {}
    if not is_table(rl) then return end
    for _, name in ipairs(sorted_keys(rl)) do
      local fp = key(p, name)
      for _, msg in ipairs(V.is_qualified_name(name)) do errs:add(V.invalid(fp, name, msg)) end
      if not name:find("/", 1, true) then
        if not STANDARD_CONTAINER_RESOURCES[name] and not name:match("^hugepages%-") then
          errs:add(V.invalid(fp, name, "must be a standard resource for containers"))
        end
      end
      local q, msg = quantity.parse(rl[name])
      if not q then
        errs:add(V.invalid(fp, rl[name], msg))
      else
        parsed[tag][name] = q
        if q.milli < 0 then errs:add(V.invalid(fp, q:string(), "must be greater than or equal to 0")) end
      end
    end
  end
  check(res.limits, lim_path, "limits")
  check(res.requests, req_path, "requests")
  for _, name in ipairs(sorted_keys(parsed.requests)) do
    local q, l = parsed.requests[name], parsed.limits[name]
    local overcommit = not name:match("^hugepages%-") and (STANDARD_CONTAINER_RESOURCES[name]
      or name:find("kubernetes.io/", 1, true) ~= nil)
    if l then
      if q:cmp(l) ~= 0 and not overcommit then
        errs:add(V.invalid(req_path, q:string(), string.format("must be equal to %s limit of %s", name, l:string())))
      elseif q:cmp(l) > 0 then
        errs:add(V.invalid(req_path, q:string(), string.format("must be less than or equal to %s limit of %s", name, l:string())))
      end
    elseif not overcommit then
      errs:add(V.required(lim_path, "Limit must be set for non overcommitable resources"))
    end
  end
end

-- validateContainerCommon
local function validate_container_common(c, path, errs, volumes)
  local name = str(c.name)
  if name == "" then errs:add(V.required(path .. ".name", "")) else dns1123_label(name, path .. ".name", errs) end
  if str(c.image) == "" then errs:add(V.required(path .. ".image", "")) end
  local tmp = str(c.terminationMessagePolicy)
  if tmp == "" then
    errs:add(V.required(path .. ".terminationMessagePolicy", ""))
  elseif tmp ~= "File" and tmp ~= "FallbackToLogsOnError" then
    errs:add(V.not_supported(path .. ".terminationMessagePolicy", tmp, { "File", "FallbackToLogsOnError" }))
  end
  validate_ports(c.ports, path .. ".ports", errs)
  validate_env(c.env, path .. ".env", errs)
  validate_env_from(c.envFrom, path .. ".envFrom", errs)
  validate_mounts(c.volumeMounts, path .. ".volumeMounts", errs, volumes)
  local pp = str(c.imagePullPolicy)
  if pp == "" then
    errs:add(V.required(path .. ".imagePullPolicy", ""))
  elseif pp ~= "Always" and pp ~= "IfNotPresent" and pp ~= "Never" then
    errs:add(V.not_supported(path .. ".imagePullPolicy", pp, { "Always", "IfNotPresent", "Never" }))
  end
  validate_resources(c.resources, path .. ".resources", errs)
end

-- checkHostPortConflicts: protocol/hostIP/hostPort unique across containers.
local function host_port_conflicts(containers, path, errs)
  local seen = {}
  for ci, c in ipairs(containers) do
    for pi, p in ipairs(is_table(c) and list(c.ports) or {}) do
      local hp = is_table(p) and p.hostPort or 0
      if hp ~= 0 then
        local s = string.format("%s/%s/%d", str(p.protocol), str(p.hostIP), hp)
        if seen[s] then
          errs:add(V.duplicate(idx(idx(path, ci) .. ".ports", pi) .. ".hostPort", s))
        else
          seen[s] = true
        end
      end
    end
  end
end

local function validate_volumes(volumes, path, errs)
  local names = {}
  for i, v in ipairs(list(volumes)) do
    local ip = idx(path, i)
    if not is_table(v) then v = {} end
    local name = str(v.name)
    if name == "" then
      errs:add(V.required(ip .. ".name", ""))
    else
      dns1123_label(name, ip .. ".name", errs)
      if names[name] then errs:add(V.duplicate(ip .. ".name", name)) end
    end
    local n = 0
    for _, k in ipairs(M.VOLUME_SOURCES) do
      if present(v[k]) then
        if n > 0 then errs:add(V.forbidden(ip .. "." .. k, "may not specify more than 1 volume type")) end
        n = n + 1
      end
    end
    if n == 0 then errs:add(V.required(ip, "must specify a volume type")) end
    if name ~= "" then names[name] = true end
  end
  return names
end

local function validate_tolerations(tols, path, errs)
  for i, t in ipairs(list(tols)) do
    local ip = idx(path, i)
    if not is_table(t) then t = {} end
    local k, op, eff = str(t.key), str(t.operator), str(t.effect)
    if k ~= "" then
      for _, msg in ipairs(V.is_qualified_name(k)) do errs:add(V.invalid(ip .. ".key", k, msg)) end
    end
    if k == "" and op ~= "Exists" then
      errs:add(V.invalid(ip .. ".operator", op,
        "operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
    end
    if present(t.tolerationSeconds) and eff ~= "NoExecute" then
      errs:add(V.invalid(ip .. ".effect", eff, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
    end
    if op == "Equal" or op == "" then
      local msgs = V.is_valid_label_value(str(t.value))
      if #msgs > 0 then errs:add(V.invalid(ip .. ".operator", str(t.value), table.concat(msgs, ";"))) end
    elseif op == "Exists" then
      if str(t.value) ~= "" then
        errs:add(V.invalid(ip .. ".operator", t.value, "value must be empty when `operator` is 'Exists'"))
      end
    else
      errs:add(V.not_supported(ip .. ".operator", op, { "Equal", "Exists" }))
    end
    if eff ~= "" and eff ~= "NoSchedule" and eff ~= "PreferNoSchedule" and eff ~= "NoExecute" then
      errs:add(V.not_supported(ip .. ".effect", eff, { "NoSchedule", "PreferNoSchedule", "NoExecute" }))
    end
  end
end
M.validate_tolerations = validate_tolerations

local DNS_POLICIES = { "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None" }

--- ValidatePodSpec: appends field errors under `path` ("spec",
--- "spec.template.spec") to `errs`. opts.pod adds the checks Kubernetes
--- only makes on Pods (no leading/trailing blanks in images, host ports
--- equal to container ports under hostNetwork); opts.restart_policies
--- replaces the accepted restart policy names. @return errs
function M.validate(spec, path, errs, opts)
  opts = opts or {}
  errs = errs or V.errors()
  path = path or "spec"
  if not is_table(spec) then spec = {} end
  local grace = spec.terminationGracePeriodSeconds
  if not present(grace) then errs:add(V.required(path .. ".terminationGracePeriodSeconds", "")) end
  local volumes = validate_volumes(spec.volumes, path .. ".volumes", errs)

  -- regular containers
  local cpath = path .. ".containers"
  local containers = list(spec.containers)
  local all_names = {}
  if #containers == 0 then
    errs:add(V.required(cpath, ""))
  else
    local names = {}
    for i, c in ipairs(containers) do
      local p = idx(cpath, i)
      if not is_table(c) then c = {} end
      validate_container_common(c, p, errs, volumes)
      local name = str(c.name)
      if names[name] then errs:add(V.duplicate(p .. ".name", name)) else names[name] = true end
      all_names[name] = true
      if present(c.lifecycle) then validate_lifecycle(c.lifecycle, p .. ".lifecycle", errs, grace) end
      validate_probe(c.livenessProbe, p .. ".livenessProbe", errs, "liveness")
      validate_probe(c.readinessProbe, p .. ".readinessProbe", errs, "readiness")
      validate_probe(c.startupProbe, p .. ".startupProbe", errs, "startup")
      if present(c.restartPolicy) then
        errs:add(V.forbidden(p .. ".restartPolicy", "may not be set for non-init containers"))
      end
    end
    host_port_conflicts(containers, cpath, errs)
  end

  -- init containers: run one by one, may be restartable sidecars
  local ipath = path .. ".initContainers"
  for i, c in ipairs(list(spec.initContainers)) do
    local p = idx(ipath, i)
    if not is_table(c) then c = {} end
    validate_container_common(c, p, errs, volumes)
    local always = false
    if present(c.restartPolicy) then
      if c.restartPolicy ~= "Always" then
        errs:add(V.not_supported(p .. ".restartPolicy", c.restartPolicy, { "Always" }))
      end
      always = c.restartPolicy == "Always"
    end
    local name = str(c.name)
    if all_names[name] then
      errs:add(V.duplicate(p .. ".name", name))
    elseif name ~= "" then
      all_names[name] = true
    end
    host_port_conflicts({ c }, ipath, errs)
    if always then
      if present(c.lifecycle) then validate_lifecycle(c.lifecycle, p .. ".lifecycle", errs, grace) end
      validate_probe(c.livenessProbe, p .. ".livenessProbe", errs, "liveness")
      validate_probe(c.readinessProbe, p .. ".readinessProbe", errs, "readiness")
      validate_probe(c.startupProbe, p .. ".startupProbe", errs, "startup")
    else
      for _, f in ipairs({ "lifecycle", "livenessProbe", "readinessProbe", "startupProbe" }) do
        if present(c[f]) then
          errs:add(V.forbidden(p .. "." .. f, "may not be set for init containers without restartPolicy=Always"))
        end
      end
    end
  end

  if spec.hostNetwork == true then
    for i, c in ipairs(containers) do
      for pi, port in ipairs(is_table(c) and list(c.ports) or {}) do
        local hp, cp = port.hostPort or 0, port.containerPort or 0
        if (opts.pod or hp ~= 0) and hp ~= cp then
          errs:add(V.invalid(idx(idx(cpath, i) .. ".ports", pi) .. ".hostPort", hp,
            "must match `containerPort` when `hostNetwork` is true"))
        end
      end
    end
  end

  local rp = str(spec.restartPolicy)
  if rp == "" then
    errs:add(V.required(path .. ".restartPolicy", ""))
  else
    local accepted = opts.restart_policies or M.restart_policies()
    local ok = false
    for _, n in ipairs(accepted) do if n == rp then ok = true end end
    if not ok then errs:add(V.not_supported(path .. ".restartPolicy", rp, accepted)) end
  end

  local dp = str(spec.dnsPolicy)
  if dp == "" then
    errs:add(V.required(path .. ".dnsPolicy", ""))
  else
    local ok = false
    for _, n in ipairs(DNS_POLICIES) do if n == dp then ok = true end end
    if not ok then errs:add(V.not_supported(path .. ".dnsPolicy", dp, DNS_POLICIES)) end
  end

  if is_table(spec.nodeSelector) then
    V.validate_labels(spec.nodeSelector, path .. ".nodeSelector", errs)
  end
  for i, s in ipairs(list(spec.imagePullSecrets)) do
    if is_table(s) then
      for k in pairs(s) do
        if k ~= "name" then errs:add(V.invalid(idx(path .. ".imagePullSecrets", i), s, "only name may be set")) break end
      end
    end
  end
  for i, g in ipairs(list(spec.readinessGates)) do
    local ct = is_table(g) and str(g.conditionType) or ""
    for _, msg in ipairs(V.is_qualified_name(ct)) do
      errs:add(V.invalid(idx(path .. ".readinessGates", i) .. ".conditionType", ct, msg))
    end
  end
  for _, f in ipairs({ "serviceAccountName", "nodeName" }) do
    if str(spec[f]) ~= "" then dns1123_subdomain(spec[f], path .. "." .. f, errs) end
  end
  local ads = spec.activeDeadlineSeconds
  if present(ads) and (not math.type(ads) or ads < 1 or ads > MAX_INT32) then
    errs:add(V.invalid(path .. ".activeDeadlineSeconds", ads, V.inclusive_range_error(1, MAX_INT32)))
  end
  for _, f in ipairs({ "hostname", "subdomain" }) do
    if str(spec[f]) ~= "" then dns1123_label(spec[f], path .. "." .. f, errs) end
  end
  validate_tolerations(spec.tolerations, path .. ".tolerations", errs)
  if str(spec.priorityClassName) ~= "" then dns1123_subdomain(spec.priorityClassName, path .. ".priorityClassName", errs) end

  if opts.pod then
    for _, l in ipairs({ "containers", "initContainers" }) do
      for i, c in ipairs(list(spec[l])) do
        local image = is_table(c) and c.image
        if type(image) == "string" and image ~= image:match("^%s*(.-)%s*$") then
          errs:add(V.invalid(idx(path .. "." .. l, i) .. ".image", image, "must not have leading or trailing whitespace"))
        end
      end
    end
  end
  return errs
end

-- }=======================================================

-- {======================================================= updates

M.UPDATABLE_FIELDS = {
  "`spec.containers[*].image`",
  "`spec.initContainers[*].image`",
  "`spec.activeDeadlineSeconds`",
  "`spec.tolerations` (only additions to existing tolerations)",
  "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
}

-- A short listing of what differs between two specs, in place of Go's
-- cmp.Diff: "-" old and "+" new values per changed field path.
local function diff(old, new, path, out)
  if M.equal(old, new) then return end
  if is_table(old) and is_table(new) then
    local keys, seen = {}, {}
    for k in pairs(old) do keys[#keys + 1] = k; seen[k] = true end
    for k in pairs(new) do if not seen[k] then keys[#keys + 1] = k end end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do
      local p = type(k) == "number" and string.format("%s[%d]", path, k - 1) or (path .. "." .. k)
      diff(old[k], new[k], p, out)
    end
    return
  end
  local function show(v)
    if v == nil then return "<unset>" end
    return json.encode(v) or tostring(v)
  end
  out[#out + 1] = string.format("  %s:\n  - %s\n  + %s", path, show(old), show(new))
end

local function tolerations_only_added(new, old, path, errs)
  for _, o in ipairs(list(old)) do
    local found = false
    for _, n in ipairs(list(new)) do
      local oc = json.copy(o)
      if is_table(oc) and is_table(n) then oc.tolerationSeconds = n.tolerationSeconds end
      if M.equal(oc, n) then found = true break end
    end
    if not found then
      errs:add(V.forbidden(path, "existing toleration can not be modified except its tolerationSeconds"))
      return
    end
  end
  validate_tolerations(new, path, errs)
end

--- ValidatePodUpdate's spec rules: only images, activeDeadlineSeconds
--- (set, or lowered), added tolerations and a negative grace period raised
--- to 1 may change. @return errs
function M.validate_update(new, old, path, errs)
  errs = errs or V.errors()
  path = path or "spec"
  new, old = is_table(new) and new or {}, is_table(old) and old or {}
  for _, l in ipairs({ "containers", "initContainers" }) do
    local nl, ol = list(new[l]), list(old[l])
    if #nl ~= #ol then
      errs:add(V.forbidden(path .. "." .. l, "pod updates may not add or remove containers"))
      return errs
    end
    for i, c in ipairs(nl) do
      local image = is_table(c) and c.image
      if str(image) == "" then errs:add(V.required(idx(path .. "." .. l, i) .. ".image", "")) end
    end
  end
  local nads, oads = new.activeDeadlineSeconds, old.activeDeadlineSeconds
  if present(nads) then
    if not math.type(nads) or nads < 0 or nads > MAX_INT32 then
      errs:add(V.invalid(path .. ".activeDeadlineSeconds", nads, V.inclusive_range_error(0, MAX_INT32)))
      return errs
    end
    if math.type(oads) and oads < nads then
      errs:add(V.invalid(path .. ".activeDeadlineSeconds", nads, "must be less than or equal to previous value"))
      return errs
    end
  elseif present(oads) then
    errs:add(V.invalid(path .. ".activeDeadlineSeconds", json.null, "must not update from a positive integer to nil value"))
  end
  tolerations_only_added(new.tolerations, old.tolerations, path .. ".tolerations", errs)
  if M.equal(new, old) then return errs end
  local munged = json.copy(new)
  for _, l in ipairs({ "containers", "initContainers" }) do
    for i, c in ipairs(list(munged[l])) do
      if is_table(c) and is_table(old[l][i]) then c.image = old[l][i].image end
    end
  end
  munged.activeDeadlineSeconds = old.activeDeadlineSeconds
  munged.tolerations = old.tolerations
  munged.schedulingGates = old.schedulingGates
  local og = old.terminationGracePeriodSeconds
  if math.type(og) and og < 0 and munged.terminationGracePeriodSeconds == 1 then
    munged.terminationGracePeriodSeconds = og
  end
  if not M.equal(munged, old) then
    local lines = {}
    diff(old, munged, path, lines)
    errs:add(V.forbidden(path, "pod updates may not change fields other than "
      .. table.concat(M.UPDATABLE_FIELDS, ",") .. "\n" .. table.concat(lines, "\n")))
  end
  return errs
end

-- }=======================================================

return M
