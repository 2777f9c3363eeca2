-- A container's environment as the kubelet builds it: `env` entries in
-- order with $(VAR) expansion against the entries before them, envFrom
-- ConfigMaps, valueFrom.fieldRef (the downward API) and configMapKeyRef;
-- the same expansion applies to command and args.
local M = {}

-- Kubernetes' expansion (third_party/forked/golang/expansion): `$(NAME)`
-- becomes the value when NAME is known, stays as written otherwise; `$$`
-- is an escaped `$`; any other `$` is kept.
function M.expand(input, lookup)
  if type(input) ~= "string" or not input:find("$", 1, true) then return input end
  local out, i, n = {}, 1, #input
  while i <= n do
    local c = input:sub(i, i)
    if c == "$" and i < n then
      local nx = input:sub(i + 1, i + 1)
      if nx == "$" then
        out[#out + 1] = "$"
        i = i + 2
      elseif nx == "(" then
        local close = input:find(")", i + 2, true)
        if close then
          local name = input:sub(i + 2, close - 1)
          local v = lookup(name)
          out[#out + 1] = v ~= nil and v or ("$(" .. name .. ")")
          i = close + 1
        else
          out[#out + 1] = "$("
          i = i + 2
        end
      else
        out[#out + 1] = "$" .. nx
        i = i + 2
      end
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  return table.concat(out)
end

-- metadata.labels['key'] / metadata.annotations['key']
local function map_path(pod, path)
  local which, key = path:match("^metadata%.(%a+)%['(.*)'%]$")
  if not which then which, key = path:match('^metadata%.(%a+)%["(.*)"%]$') end
  if which == "labels" or which == "annotations" then
    local m = (pod.metadata or {})[which] or {}
    return true, m[key] or ""
  end
  return false
end

local function format_map(m)
  local keys = {}
  for k in pairs(m or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  local lines = {}
  for _, k in ipairs(keys) do lines[#lines + 1] = string.format("%s=%q", k, tostring(m[k])) end
  return table.concat(lines, "\n")
end

--- The value of a downward-API fieldPath for pod; nil, message if unsupported.
function M.field_ref(pod, path)
  local md, spec, st = pod.metadata or {}, pod.spec or {}, pod.status or {}
  local ok, v = map_path(pod, path)
  if ok then return v end
  if path == "metadata.name" then return md.name or "" end
  if path == "metadata.namespace" then return md.namespace or "" end
  if path == "metadata.uid" then return md.uid or "" end
  if path == "metadata.labels" then return format_map(md.labels) end
  if path == "metadata.annotations" then return format_map(md.annotations) end
  if path == "spec.nodeName" then return spec.nodeName or "" end
  if path == "spec.serviceAccountName" then return spec.serviceAccountName or "" end
  if path == "status.hostIP" then return st.hostIP or "" end
  if path == "status.podIP" then return st.podIP or "" end
  if path == "status.hostIPs" or path == "status.podIPs" then
    local list = path == "status.hostIPs" and st.hostIPs or st.podIPs
    local ips = {}
    for _, ip in ipairs(list or {}) do ips[#ips + 1] = ip.ip end
    return table.concat(ips, ",")
  end
  return nil, string.format("unsupported fieldPath: %s", path)
end

--- Builds the environment of container c in pod. opts: base (list of
--- {name, value} set first, e.g. PATH, HOSTNAME, PORT...), get_configmap(ns,
--- name) -> ConfigMap | nil.
--- @return list of "K=V", lookup(name) -> value | nil, err (for
--- CreateContainerConfigError)
function M.build(pod, c, opts)
  opts = opts or {}
  local order, values = {}, {}
  local function set(k, v)
    if values[k] == nil then order[#order + 1] = k end
    values[k] = v
  end
  for _, kv in ipairs(opts.base or {}) do set(kv[1], kv[2]) end
  local ns = (pod.metadata or {}).namespace or "default"
  local function configmap(name, optional)
    local cm = opts.get_configmap and opts.get_configmap(ns, name)
    if not cm and not optional then return nil, string.format('configmap "%s" not found', name) end
    return cm or { data = {} }
  end
  for _, ef in ipairs(c.envFrom or {}) do
    local ref = ef.configMapRef
    if ref then
      local cm, err = configmap(ref.name, ref.optional)
      if not cm then return nil, nil, err end
      for k, v in pairs(cm.data or {}) do set((ef.prefix or "") .. k, v) end
    elseif ef.secretRef and not ef.secretRef.optional then
      return nil, nil, string.format('secret "%s" not found', ef.secretRef.name)
    end
  end
  local function lookup(name) return values[name] end
  for _, e in ipairs(c.env or {}) do
    local v
    if e.valueFrom then
      local vf = e.valueFrom
      if vf.fieldRef then
        local err
        v, err = M.field_ref(pod, vf.fieldRef.fieldPath or "")
        if v == nil then return nil, nil, err end
      elseif vf.configMapKeyRef then
        local ref = vf.configMapKeyRef
        local cm, err = configmap(ref.name, ref.optional)
        if not cm then return nil, nil, err end
        v = (cm.data or {})[ref.key]
        if v == nil and not ref.optional then
          return nil, nil, string.format("couldn't find key %s in ConfigMap %s/%s", ref.key, ns, ref.name)
        end
      elseif vf.secretKeyRef then
        if not vf.secretKeyRef.optional then
          return nil, nil, string.format('secret "%s" not found', vf.secretKeyRef.name)
        end
      elseif vf.resourceFieldRef then
        v = ""
      end
    else
      v = M.expand(e.value or "", lookup)
    end
    if v ~= nil then set(e.name, v) end
  end
  local list = {}
  for _, k in ipairs(order) do list[#list + 1] = k .. "=" .. values[k] end
  return list, lookup
end

--- command and args with $(VAR) expanded; `entrypoint` (the image's)
--- replaces an absent command.
--- @return argv list (may be empty when neither is given)
function M.argv(c, lookup, entrypoint)
  local out = {}
  if c.command and #c.command > 0 then
    for _, a in ipairs(c.command) do out[#out + 1] = M.expand(a, lookup) end
  elseif entrypoint then
    out[1] = entrypoint
  end
  for _, a in ipairs(c.args or {}) do out[#out + 1] = M.expand(a, lookup) end
  return out
end

return M
