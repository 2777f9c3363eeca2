-- `describe pod`, laid out as kubectl 1.32's describePod: metadata, status,
-- each container (state, last state, probes, environment, mounts), the
-- Conditions table, volumes, QoS class, node selectors, tolerations and the
-- Events section. The container/volume/toleration pieces are exported for
-- the pod-template describers (DescribePodTemplate).
local describe = require("moonlet.cli.describe")
local duration = require("moonlet.printers.duration")
local json = require("moonlet.json")
local podspec = require("moonlet.api.podspec")

local M = {}

local values = require("moonlet.cli.describe_values")
local is_table, list, str = values.is_table, values.list, values.str
local function int(v) return math.tointeger(v) or 0 end

local function rfc1123z(ts)
  local t = duration.parse(ts)
  -- a zero time.Time prints as Go's zero date
  if not t then return "Mon, 01 Jan 0001 00:00:00 +0000" end
  return duration.format_rfc1123z(t)
end

local function bool_text(v) return v == true and "True" or "False" end

local function or_none(s) return (s == nil or s == "") and "<none>" or s end

-- {======================================================= probes

local function port_text(p)
  if p == nil or p == json.null then return "" end
  if math.type(p) then return tostring(math.tointeger(p) or p) end
  return tostring(p)
end

-- net.JoinHostPort: brackets around IPv6 hosts
local function join_host_port(host, port)
  if host:find(":", 1, true) then return "[" .. host .. "]:" .. port end
  return host .. ":" .. port
end

--- DescribeProbe: "http-get http://:8080/ delay=0s timeout=1s period=10s
--- #success=1 #failure=3" and the exec/tcp-socket/grpc forms.
function M.probe(p)
  local attrs = string.format("delay=%ds timeout=%ds period=%ds #success=%d #failure=%d",
    int(p.initialDelaySeconds), int(p.timeoutSeconds), int(p.periodSeconds),
    int(p.successThreshold), int(p.failureThreshold))
  if is_table(p.exec) then
    return string.format("exec [%s] %s", table.concat(list(p.exec.command), " "), attrs)
  elseif is_table(p.httpGet) then
    local h = p.httpGet
    local port = port_text(h.port)
    local host = port ~= "" and join_host_port(str(h.host), port) or str(h.host)
    local url = str(h.scheme):lower() .. "://" .. host .. str(h.path)
    return string.format("http-get %s %s", url, attrs)
  elseif is_table(p.tcpSocket) then
    return string.format("tcp-socket %s:%s %s", str(p.tcpSocket.host), port_text(p.tcpSocket.port), attrs)
  elseif is_table(p.grpc) then
    return string.format("grpc <pod>:%d %s %s", int(p.grpc.port), str(p.grpc.service), attrs)
  elseif is_table(p.lua) then
    -- moonlet's Lua check: named like the other handlers
    return string.format("lua %s %s", str(p.lua.check), attrs)
  end
  return "unknown " .. attrs
end

-- }=======================================================

-- {======================================================= containers

local function ports_text(ports, host)
  local out = {}
  for _, p in ipairs(list(ports)) do
    local port = p.containerPort
    if host then port = p.hostPort end
    -- kubectl 1.32 prints number/protocol only (the port name came later)
    out[#out + 1] = string.format("%d/%s", int(port), str(p.protocol))
  end
  return table.concat(out, ", ")
end

local function describe_state(w, name, state)
  state = is_table(state) and state or {}
  if is_table(state.running) then
    w.write(2, name .. ":\tRunning\n")
    w.write(3, "Started:\t" .. rfc1123z(state.running.startedAt) .. "\n")
  elseif is_table(state.waiting) then
    w.write(2, name .. ":\tWaiting\n")
    if str(state.waiting.reason) ~= "" then w.write(3, "Reason:\t" .. state.waiting.reason .. "\n") end
  elseif is_table(state.terminated) then
    local t = state.terminated
    w.write(2, name .. ":\tTerminated\n")
    if str(t.reason) ~= "" then w.write(3, "Reason:\t" .. t.reason .. "\n") end
    if str(t.message) ~= "" then w.write(3, "Message:\t" .. t.message .. "\n") end
    w.write(3, string.format("Exit Code:\t%d\n", int(t.exitCode)))
    if int(t.signal) > 0 then w.write(3, string.format("Signal:\t%d\n", int(t.signal))) end
    w.write(3, "Started:\t" .. rfc1123z(t.startedAt) .. "\n")
    w.write(3, "Finished:\t" .. rfc1123z(t.finishedAt) .. "\n")
  else
    w.write(2, name .. ":\tWaiting\n")
  end
end

local function describe_resources(w, res, level)
  if not is_table(res) then return end
  for _, which in ipairs({ "limits", "requests" }) do
    local rl = list(res[which])
    local keys = {}
    for k in pairs(rl) do keys[#keys + 1] = k end
    table.sort(keys)
    if #keys > 0 then w.write(level, (which == "limits" and "Limits" or "Requests") .. ":\n") end
    for _, k in ipairs(keys) do w.write(level + 1, k .. ":\t" .. str(rl[k]) .. "\n") end
  end
end

--- EnvValueRetriever: the value a downward-API fieldRef shows. kubectl
--- resolves only metadata fields (fieldpath.ExtractFieldPathAsString);
--- spec and status paths print empty.
function M.field_value(pod, path)
  if not is_table(pod) then return "" end
  local m = list(pod.metadata)
  local base, sub = path:match("^([^%[]+)%['(.*)'%]$")
  if base == "metadata.labels" then return str(list(m.labels)[sub]) end
  if base == "metadata.annotations" then return str(list(m.annotations)[sub]) end
  if path == "metadata.labels" or path == "metadata.annotations" then
    -- FormatMap: sorted key="value" lines
    local t = list(m[path:sub(10)])
    local keys, lines = {}, {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do lines[#lines + 1] = string.format("%s=%q", k, str(t[k])) end
    return table.concat(lines, "\n")
  end
  local fields = { ["metadata.name"] = m.name, ["metadata.namespace"] = m.namespace, ["metadata.uid"] = m.uid }
  return str(fields[path])
end

local function describe_env(w, c, pod)
  local env = list(c.env)
  w.write(2, "Environment:" .. (#env == 0 and "\t<none>" or "") .. "\n")
  for _, e in ipairs(env) do
    local vf = e.valueFrom
    if not is_table(vf) then
      local first = true
      for line in (str(e.value) .. "\n"):gmatch("(.-)\n") do
        if first then w.write(3, str(e.name) .. ":\t" .. line .. "\n") else w.write(3, "\t" .. line .. "\n") end
        first = false
      end
    elseif is_table(vf.fieldRef) then
      local v = pod and M.field_value(pod, str(vf.fieldRef.fieldPath)) or ""
      w.write(3, string.format("%s:\t%s (%s:%s)\n", str(e.name), v, str(vf.fieldRef.apiVersion),
        str(vf.fieldRef.fieldPath)))
    elseif is_table(vf.resourceFieldRef) then
      local res = str(vf.resourceFieldRef.resource)
      local which, rname = res:match("^(%a+)%.(.+)$")
      local rl = is_table(c.resources) and list(c.resources[which or ""]) or {}
      local v = str(rl[rname or ""])
      if v == "" then v = "0" end
      if v == "0" and (res == "limits.cpu" or res == "limits.memory") then v = "node allocatable" end
      w.write(3, string.format("%s:\t%s (%s)\n", str(e.name), v, res))
    elseif is_table(vf.secretKeyRef) then
      local s = vf.secretKeyRef
      w.write(3, string.format("%s:\t<set to the key '%s' in secret '%s'>\tOptional: %s\n", str(e.name),
        str(s.key), str(s.name), tostring(s.optional == true)))
    elseif is_table(vf.configMapKeyRef) then
      local s = vf.configMapKeyRef
      w.write(3, string.format("%s:\t<set to the key '%s' of config map '%s'>\tOptional: %s\n", str(e.name),
        str(s.key), str(s.name), tostring(s.optional == true)))
    end
  end
end

local function describe_env_from(w, c)
  local ef = list(c.envFrom)
  if #ef == 0 then return end
  w.write(2, "Environment Variables from:\n")
  for _, e in ipairs(ef) do
    local from, name, optional = "", "", false
    if is_table(e.configMapRef) then
      from, name, optional = "ConfigMap", str(e.configMapRef.name), e.configMapRef.optional == true
    elseif is_table(e.secretRef) then
      from, name, optional = "Secret", str(e.secretRef.name), e.secretRef.optional == true
    end
    if str(e.prefix) == "" then
      w.write(3, string.format("%s\t%s\tOptional: %s\n", name, from, tostring(optional)))
    else
      w.write(3, string.format("%s\t%s with prefix '%s'\tOptional: %s\n", name, from, e.prefix, tostring(optional)))
    end
  end
end

local function describe_mounts(w, c)
  local mounts = {}
  for _, m in ipairs(list(c.volumeMounts)) do mounts[#mounts + 1] = m end
  w.write(2, "Mounts:" .. (#mounts == 0 and "\t<none>" or "") .. "\n")
  table.sort(mounts, function(a, b) return str(a.mountPath) < str(b.mountPath) end)
  for _, m in ipairs(mounts) do
    local flags = { m.readOnly == true and "ro" or "rw" }
    if str(m.subPath) ~= "" then flags[#flags + 1] = string.format("path=%q", m.subPath) end
    w.write(3, string.format("%s from %s (%s)\n", str(m.mountPath), str(m.name), table.concat(flags, ",")))
  end
  local devices = list(c.volumeDevices)
  if #devices > 0 then
    w.write(2, "Devices:\n")
    for _, d in ipairs(devices) do w.write(3, string.format("%s from %s\n", str(d.devicePath), str(d.name))) end
  end
end

--- describeContainers: `label` ("Containers", "Init Containers"), the
--- containers, their statuses (nil for templates), the pod for fieldRef
--- values (nil for templates) and `space` ("" or "  " inside templates).
function M.containers(w, label, containers, statuses, pod, space)
  space = space or ""
  local by_name = {}
  for _, s in ipairs(list(statuses)) do if is_table(s) then by_name[str(s.name)] = s end end
  containers = list(containers)
  w.write(0, string.format("%s%s:%s\n", space, label, #containers == 0 and " <none>" or ""))
  for _, c in ipairs(containers) do
    local st = by_name[str(c.name)]
    w.write(1, string.format("%s%s:\n", space ~= "" and " " or "", str(c.name)))
    if st then w.write(2, "Container ID:\t" .. str(st.containerID) .. "\n") end
    w.write(2, "Image:\t" .. str(c.image) .. "\n")
    if st then w.write(2, "Image ID:\t" .. str(st.imageID) .. "\n") end
    local ports = ports_text(c.ports, false)
    if ports:find(",", 1, true) then w.write(2, "Ports:\t" .. ports .. "\n")
    else w.write(2, "Port:\t" .. or_none(ports) .. "\n") end
    local hports = ports_text(c.ports, true)
    if hports:find(",", 1, true) then w.write(2, "Host Ports:\t" .. hports .. "\n")
    else w.write(2, "Host Port:\t" .. or_none(hports) .. "\n") end
    for _, f in ipairs({ "command", "args" }) do
      local l = list(c[f])
      if #l > 0 then
        w.write(2, (f == "command" and "Command" or "Args") .. ":\n")
        for _, item in ipairs(l) do
          for line in (str(item) .. "\n"):gmatch("(.-)\n") do w.write(3, line .. "\n") end
        end
      end
    end
    if st then
      describe_state(w, "State", st.state)
      if is_table(st.lastState) and is_table(st.lastState.terminated) then
        describe_state(w, "Last State", st.lastState)
      end
      w.write(2, "Ready:\t" .. bool_text(st.ready) .. "\n")
      w.write(2, string.format("Restart Count:\t%d\n", int(st.restartCount)))
    end
    describe_resources(w, c.resources, 2)
    if is_table(c.livenessProbe) then w.write(2, "Liveness:\t" .. M.probe(c.livenessProbe) .. "\n") end
    if is_table(c.readinessProbe) then w.write(2, "Readiness:\t" .. M.probe(c.readinessProbe) .. "\n") end
    if is_table(c.startupProbe) then w.write(2, "Startup:\t" .. M.probe(c.startupProbe) .. "\n") end
    describe_env_from(w, c)
    describe_env(w, c, pod)
    describe_mounts(w, c)
  end
end

-- }=======================================================

-- {======================================================= volumes, tolerations

local function optional(v) return tostring(is_table(v) and v.optional == true) end

-- What each volume type prints (the common ones; others print <unknown>).
local VOLUME_PRINTERS = {
  hostPath = function(w, v)
    local t = str(v.type)
    w.write(2, "Type:\tHostPath (bare host directory volume)\n    Path:\t" .. str(v.path)
      .. "\n    HostPathType:\t" .. (v.type == nil and "<none>" or t) .. "\n")
  end,
  emptyDir = function(w, v)
    local size = str(v.sizeLimit)
    if size == "" or size == "0" then size = "<unset>" end
    w.write(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n    Medium:\t"
      .. str(v.medium) .. "\n    SizeLimit:\t" .. size .. "\n")
  end,
  secret = function(w, v)
    w.write(2, "Type:\tSecret (a volume populated by a Secret)\n    SecretName:\t" .. str(v.secretName)
      .. "\n    Optional:\t" .. optional(v) .. "\n")
  end,
  configMap = function(w, v)
    w.write(2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n    Name:\t" .. str(v.name)
      .. "\n    Optional:\t" .. optional(v) .. "\n")
  end,
  persistentVolumeClaim = function(w, v)
    w.write(2, "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n"
      .. "    ClaimName:\t" .. str(v.claimName) .. "\n    ReadOnly:\t" .. tostring(v.readOnly == true) .. "\n")
  end,
  downwardAPI = function(w, v)
    w.write(2, "Type:\tDownwardAPI (a volume populated by information about the pod)\n    Items:\n")
    for _, item in ipairs(list(v.items)) do
      if is_table(item.fieldRef) then w.write(3, str(item.fieldRef.fieldPath) .. " -> " .. str(item.path) .. "\n") end
      if is_table(item.resourceFieldRef) then
        w.write(3, str(item.resourceFieldRef.resource) .. " -> " .. str(item.path) .. "\n")
      end
    end
  end,
  projected = function(w, v)
    w.write(2, "Type:\tProjected (a volume that contains injected data from multiple sources)\n")
    for _, s in ipairs(list(v.sources)) do
      if is_table(s.secret) then
        w.write(2, "SecretName:\t" .. str(s.secret.name) .. "\n    SecretOptionalName:\t" .. optional(s.secret) .. "\n")
      elseif is_table(s.downwardAPI) then
        w.write(2, "DownwardAPI:\ttrue\n")
      elseif is_table(s.configMap) then
        w.write(2, "ConfigMapName:\t" .. str(s.configMap.name) .. "\n    ConfigMapOptional:\t"
          .. (s.configMap.optional == nil and "<nil>" or optional(s.configMap)) .. "\n")
      elseif is_table(s.serviceAccountToken) then
        w.write(2, string.format("TokenExpirationSeconds:\t%d\n", int(s.serviceAccountToken.expirationSeconds)))
      end
    end
  end,
}

--- describeVolumes.
function M.volumes(w, volumes, space)
  space = space or ""
  volumes = list(volumes)
  if #volumes == 0 then
    w.write(0, space .. "Volumes:\t<none>\n")
    return
  end
  w.write(0, space .. "Volumes:\n")
  for _, v in ipairs(volumes) do
    w.write(1, (space ~= "" and " " or "") .. str(v.name) .. ":\n")
    local printed = false
    for _, src in ipairs(podspec.VOLUME_SOURCES) do
      if is_table(v[src]) then
        local p = VOLUME_PRINTERS[src]
        if p then p(w, v[src]) else w.write(1, "<unknown>\n") end
        printed = true
        break
      end
    end
    if not printed then w.write(1, "<unknown>\n") end
  end
end

--- printPodTolerationsMultiline (sorted by key).
function M.tolerations(w, title, tolerations, indent)
  indent = indent or ""
  w.write(0, indent .. title .. ":\t")
  local tols = {}
  for _, t in ipairs(list(tolerations)) do tols[#tols + 1] = t end
  if #tols == 0 then
    w.write(0, "<none>\n")
    return
  end
  table.sort(tols, function(a, b) return str(a.key) < str(b.key) end)
  for i, t in ipairs(tols) do
    if i > 1 then w.write(0, indent .. "\t") end
    local s = str(t.key)
    if str(t.value) ~= "" then s = s .. "=" .. t.value end
    if str(t.effect) ~= "" then s = s .. ":" .. t.effect end
    if t.operator == "Exists" and str(t.value) == "" then
      s = s .. ((str(t.key) ~= "" or str(t.effect) ~= "") and " op=Exists" or "op=Exists")
    end
    if math.type(t.tolerationSeconds) then s = s .. string.format(" for %ds", t.tolerationSeconds) end
    w.write(0, s .. "\n")
  end
end

--- DescribePodTemplate, for the workload describers.
function M.pod_template(w, template)
  w.write(0, "Pod Template:\n")
  if not is_table(template) then
    w.write(1, "<unset>")
    return
  end
  local meta, spec = list(template.metadata), list(template.spec)
  describe.labels(w, "  Labels", meta.labels)
  if next(list(meta.annotations)) then describe.annotations(w, "  Annotations", meta.annotations) end
  if str(spec.serviceAccountName) ~= "" then w.write(1, "Service Account:\t" .. spec.serviceAccountName .. "\n") end
  if #list(spec.initContainers) > 0 then M.containers(w, "Init Containers", spec.initContainers, nil, nil, "  ") end
  M.containers(w, "Containers", spec.containers, nil, nil, "  ")
  M.volumes(w, spec.volumes, "  ")
  if str(spec.priorityClassName) ~= "" then w.write(1, "Priority Class Name:\t" .. spec.priorityClassName .. "\n") end
  describe.labels(w, "  Node-Selectors", spec.nodeSelector)
  M.tolerations(w, "Tolerations", spec.tolerations, "  ")
end

-- }=======================================================

--- kubectl's printController: "Kind/name" of the controlling owner, or "".
local function controller_of(meta)
  for _, ref in ipairs(list(meta.ownerReferences)) do
    if is_table(ref) and ref.controller == true then return str(ref.kind) .. "/" .. str(ref.name) end
  end
  return ""
end
M.controller_of = controller_of

--- The whole describePod text for `pod`; `events` a list of Events or nil
--- to leave the section out; `now` unix seconds.
function M.render(pod, events, now)
  local w = describe.writer()
  local meta, spec, status = list(pod.metadata), list(pod.spec), list(pod.status)
  w.write(0, "Name:\t" .. str(meta.name) .. "\n")
  w.write(0, "Namespace:\t" .. str(meta.namespace) .. "\n")
  if math.type(spec.priority) then w.write(0, string.format("Priority:\t%d\n", spec.priority)) end
  if str(spec.priorityClassName) ~= "" then w.write(0, "Priority Class Name:\t" .. spec.priorityClassName .. "\n") end
  if str(spec.runtimeClassName) ~= "" then w.write(0, "Runtime Class Name:\t" .. spec.runtimeClassName .. "\n") end
  if str(spec.serviceAccountName) ~= "" then w.write(0, "Service Account:\t" .. spec.serviceAccountName .. "\n") end
  if str(spec.nodeName) == "" then
    w.write(0, "Node:\t<none>\n")
  else
    w.write(0, "Node:\t" .. spec.nodeName .. "/" .. str(status.hostIP) .. "\n")
  end
  if str(status.startTime) ~= "" then w.write(0, "Start Time:\t" .. rfc1123z(status.startTime) .. "\n") end
  describe.labels(w, "Labels", meta.labels)
  describe.annotations(w, "Annotations", meta.annotations)
  if str(meta.deletionTimestamp) ~= "" and status.phase ~= "Failed" and status.phase ~= "Succeeded" then
    w.write(0, "Status:\tTerminating (lasts " .. duration.since(meta.deletionTimestamp, now) .. ")\n")
    w.write(0, string.format("Termination Grace Period:\t%ds\n", int(meta.deletionGracePeriodSeconds)))
  else
    w.write(0, "Status:\t" .. str(status.phase) .. "\n")
  end
  if str(status.reason) ~= "" then w.write(0, "Reason:\t" .. status.reason .. "\n") end
  if str(status.message) ~= "" then w.write(0, "Message:\t" .. status.message .. "\n") end
  local sc = list(spec.securityContext)
  if is_table(sc.seccompProfile) then
    w.write(0, "SeccompProfile:\t" .. str(sc.seccompProfile.type) .. "\n")
    if sc.seccompProfile.type == "Localhost" then
      w.write(0, "LocalhostProfile:\t" .. str(sc.seccompProfile.localhostProfile) .. "\n")
    end
  end
  w.write(0, "IP:\t" .. str(status.podIP) .. "\n")
  local ips = list(status.podIPs)
  if #ips == 0 then
    w.write(0, "IPs:\t<none>\n")
  else
    w.write(0, "IPs:\n")
    for _, ip in ipairs(ips) do w.write(1, "IP:\t" .. str(ip.ip) .. "\n") end
  end
  local ctl = controller_of(meta)
  if ctl ~= "" then w.write(0, "Controlled By:\t" .. ctl .. "\n") end
  if str(status.nominatedNodeName) ~= "" then w.write(0, "NominatedNodeName:\t" .. status.nominatedNodeName .. "\n") end
  if is_table(spec.resources) and next(spec.resources) then
    w.write(0, "Resources:\n")
    describe_resources(w, spec.resources, 1)
  end
  if #list(spec.initContainers) > 0 then
    M.containers(w, "Init Containers", spec.initContainers, status.initContainerStatuses, pod, "")
  end
  M.containers(w, "Containers", spec.containers, status.containerStatuses, pod, "")
  local gates = list(spec.readinessGates)
  if #gates > 0 then
    w.write(0, "Readiness Gates:\n  Type\tStatus\n")
    for _, g in ipairs(gates) do
      local st = "<none>"
      for _, c in ipairs(list(status.conditions)) do
        if c.type == g.conditionType then st = str(c.status) break end
      end
      w.write(1, string.format("%s \t%s \n", str(g.conditionType), st))
    end
  end
  local conds = list(status.conditions)
  if #conds > 0 then
    w.write(0, "Conditions:\n  Type\tStatus\n")
    for _, c in ipairs(conds) do w.write(1, string.format("%s \t%s \n", str(c.type), str(c.status))) end
  end
  M.volumes(w, spec.volumes, "")
  local qos = str(status.qosClass)
  if qos == "" then qos = podspec.qos_class(spec) end
  w.write(0, "QoS Class:\t" .. qos .. "\n")
  describe.labels(w, "Node-Selectors", spec.nodeSelector)
  M.tolerations(w, "Tolerations", spec.tolerations)
  if events then describe.events(w, events, now) end
  return w.text()
end

--- The describer entry (describe.lua's registry): events as kubectl's
--- PodDescriber finds them, by name, namespace and uid without the kind.
function M.describe(ctx, r, pod, now)
  local events
  if ctx.flags["show-events"] then events = describe.search_events(ctx, r, pod, { kind = false }) end
  return M.render(pod, events, now)
end

return M
