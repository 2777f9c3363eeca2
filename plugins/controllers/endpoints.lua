-- endpoints: keeps the v1 Endpoints and discovery.k8s.io/v1 EndpointSlices
-- of every Service with a selector, as Kubernetes' endpoints and
-- endpointslice controllers do: the matching pods' addresses, Ready ones
-- as addresses (ready=true), the others as notReadyAddresses (ready=false).
-- Pods share the host's network here and each declared container port has
-- its own host port (published by the kubelet in the pod annotation
-- moonlet.dev/host-ports), so an endpoint is the pod IP with the HOST port
-- its targetPort maps to; pods with different host ports land in different
-- subsets and slices, as Kubernetes splits by port set.
local json = require("moonlet.json")
local selector = require("moonlet.selector")
local refs = require("moonlet.controller.refs")
local podutil = require("moonlet.controller.podutil")
local ports = require("moonlet.kubelet.ports")

local SVC = "v1/Service"
local POD = "v1/Pod"
local EP = "v1/Endpoints"
local SLICE = "discovery.k8s.io/v1/EndpointSlice"
local SERVICE_NAME = "kubernetes.io/service-name"
local MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
local MANAGER = "endpointslice-controller.k8s.io"

local msg_of, not_found = refs.message, refs.not_found

-- Service selectors by key, to map pods to Services.
local selectors = require("moonlet.controller.selector_index").new()

local function has_selector(svc)
  return type(svc.spec.selector) == "table" and next(svc.spec.selector) ~= nil
end

-- findPort: the container port a Service port's targetPort names, with
-- the container declaring it; a named port that no container declares is
-- not served by this pod (nil).
local function find_port(pod, sp)
  local tp = sp.targetPort or sp.port
  for _, c in ipairs(pod.spec.containers or {}) do
    for _, p in ipairs(c.ports or {}) do
      if (p.protocol or "TCP") == (sp.protocol or "TCP") then
        if (type(tp) == "string" and p.name == tp) or p.containerPort == tp then return p.containerPort, c end
      end
    end
  end
  if type(tp) == "string" then
    local n = math.tointeger(tonumber(tp))
    if n then return n end
    return nil
  end
  return tp
end

-- The host port behind container port `cp` of container `c`: from the
-- kubelet's published map; a port no container declares is the process's
-- own. nil while a declared port's mapping is not published yet.
local function host_port(pod, c, cp)
  if not c then return cp end
  local map = ports.published(pod)
  return map and map[c.name .. "/" .. tostring(cp)]
end

-- The endpoint ports of `pod` for the Service, sorted by name, or nil
-- when the pod serves none of them yet.
local function pod_ports(pod, svc)
  local out = {}
  for _, sp in ipairs(svc.spec.ports or {}) do
    local cp, c = find_port(pod, sp)
    local hp = cp and host_port(pod, c, cp)
    if hp then out[#out + 1] = { name = sp.name, port = hp, protocol = sp.protocol or "TCP" } end
  end
  if #out == 0 then return nil end
  table.sort(out, function(a, b) return (a.name or "") < (b.name or "") end)
  return out
end

local function port_set_key(list)
  local parts = {}
  for i, p in ipairs(list) do parts[i] = (p.name or "") .. ":" .. p.port .. "/" .. p.protocol end
  return table.concat(parts, ",")
end

local function target_ref(pod)
  local md = pod.metadata
  return { kind = "Pod", namespace = md.namespace, name = md.name, uid = md.uid }
end

-- The pods behind the Service grouped by port set: { key, ports, pods =
-- {{pod, ready, terminating}} }, sorted by key.
local function groups_for(ctx, svc)
  local md = svc.metadata
  local sel = { matchLabels = svc.spec.selector }
  local by_key, list = {}, {}
  for _, pod in ipairs(ctx:list(POD, { namespace = md.namespace, selector = sel })) do
    local st = pod.status or {}
    local phase = st.phase
    if pod.spec.nodeName and st.podIP and st.podIP ~= "" and phase ~= "Succeeded" and phase ~= "Failed" then
      local pp = pod_ports(pod, svc)
      if pp then
        local key = port_set_key(pp)
        local g = by_key[key]
        if not g then
          g = { key = key, ports = pp, pods = {} }
          by_key[key] = g
          list[#list + 1] = g
        end
        local ready = podutil.ready(pod) or svc.spec.publishNotReadyAddresses == true
        g.pods[#g.pods + 1] = { pod = pod, ready = ready, terminating = pod.metadata.deletionTimestamp ~= nil }
      end
    end
  end
  table.sort(list, function(a, b) return a.key < b.key end)
  for _, g in ipairs(list) do
    table.sort(g.pods, function(a, b) return a.pod.metadata.name < b.pod.metadata.name end)
  end
  return list
end

-- A text that is equal for equal contents (our tables' key order is not
-- stable across encodes), to write only what changed.
local function canon(v)
  if type(v) ~= "table" then return json.encode(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = tostring(k) .. "=" .. canon(v[k]) end
  return "{" .. table.concat(parts, ";") .. "}"
end

-- {====== Endpoints

local function endpoints_subsets(groups)
  local subsets = {}
  for _, g in ipairs(groups) do
    local ready, not_ready = {}, {}
    for _, e in ipairs(g.pods) do
      -- Terminating pods leave Endpoints (ShouldPodBeInEndpoints).
      if not e.terminating then
        local a = { ip = e.pod.status.podIP, nodeName = e.pod.spec.nodeName, targetRef = target_ref(e.pod) }
        if e.ready then ready[#ready + 1] = a else not_ready[#not_ready + 1] = a end
      end
    end
    if #ready + #not_ready > 0 then
      local ss = { ports = json.array(g.ports) }
      if #ready > 0 then ss.addresses = json.array(ready) end
      if #not_ready > 0 then ss.notReadyAddresses = json.array(not_ready) end
      subsets[#subsets + 1] = ss
    end
  end
  return subsets
end

local function sync_endpoints(ctx, svc, groups)
  local md = svc.metadata
  local subsets = endpoints_subsets(groups)
  local labels = json.copy(md.labels or {})
  local cur = ctx:get(EP, md.namespace, md.name)
  if cur and canon(cur.subsets or {}) == canon(subsets) and canon(cur.metadata.labels or {}) == canon(labels) then
    return
  end
  local body = {
    apiVersion = "v1", kind = "Endpoints",
    metadata = { name = md.name, namespace = md.namespace, labels = next(labels) and labels or nil },
    subsets = json.array(subsets),
  }
  local ok, err
  if cur then
    body.metadata.resourceVersion = cur.metadata.resourceVersion
    body.metadata.annotations = cur.metadata.annotations
    ok, err = ctx.client:update(EP, body)
  else
    ok, err = ctx.client:create(EP, body)
  end
  if not ok then
    ctx:event(svc, "Warning", "FailedToUpdateEndpoint",
      string.format("Failed to update endpoint %s/%s: %s", md.namespace, md.name, msg_of(err)))
    error("endpoints: " .. msg_of(err), 0)
  end
end

-- }======

-- {====== EndpointSlices

local function slice_body(svc, g)
  local md = svc.metadata
  local endpoints = {}
  for _, e in ipairs(g and g.pods or {}) do
    endpoints[#endpoints + 1] = {
      addresses = json.array({ e.pod.status.podIP }),
      -- Ready means ready and not terminating; serving is readiness alone.
      conditions = { ready = e.ready and not e.terminating, serving = e.ready, terminating = e.terminating },
      nodeName = e.pod.spec.nodeName, targetRef = target_ref(e.pod),
    }
  end
  -- Slice port names are pointers in Go that the controller always sets
  -- ("" for an unnamed port): kubectl describe dereferences them.
  local slice_ports = {}
  for i, p in ipairs(g and g.ports or {}) do
    slice_ports[i] = { name = p.name or "", port = p.port, protocol = p.protocol }
  end
  local labels = json.copy(md.labels or {})
  labels[SERVICE_NAME] = md.name
  labels[MANAGED_BY] = MANAGER
  return {
    apiVersion = "discovery.k8s.io/v1", kind = "EndpointSlice",
    metadata = { namespace = md.namespace, labels = labels,
      ownerReferences = json.array({ refs.owner_ref(svc, "v1", "Service") }) },
    addressType = "IPv4",
    endpoints = json.array(endpoints),
    ports = json.array(slice_ports),
  }
end

local function slice_sig(s)
  return canon({ e = s.endpoints or {}, p = s.ports or {}, l = s.metadata.labels or {} })
end

local function sync_slices(ctx, svc, groups)
  local md = svc.metadata
  local have = {}
  for _, s in ipairs(ctx:list(SLICE, { namespace = md.namespace,
    selector = { matchLabels = { [SERVICE_NAME] = md.name, [MANAGED_BY] = MANAGER } } })) do
    have[#have + 1] = s
  end
  -- One slice per port set; with no pods at all, one empty placeholder.
  local want = {}
  for _, g in ipairs(groups) do want[#want + 1] = slice_body(svc, g) end
  if #want == 0 then want[1] = slice_body(svc, nil) end
  -- A slice already holding a port set keeps it; the rest are reused
  -- before new ones are made, and what is left over goes.
  local by_ports, spare = {}, {}
  for _, s in ipairs(have) do
    local k = port_set_key(s.ports or {})
    if by_ports[k] then spare[#spare + 1] = s else by_ports[k] = s end
  end
  local pending = {}
  for _, w in ipairs(want) do
    local k = port_set_key(w.ports)
    local cur = by_ports[k]
    if cur then
      by_ports[k] = nil
      pending[#pending + 1] = { want = w, cur = cur }
    else
      pending[#pending + 1] = { want = w }
    end
  end
  for _, s in pairs(by_ports) do spare[#spare + 1] = s end
  table.sort(spare, function(a, b) return a.metadata.name < b.metadata.name end)
  for _, p in ipairs(pending) do
    if not p.cur and #spare > 0 then p.cur = table.remove(spare, 1) end
    local w, cur = p.want, p.cur
    local ok, err
    if cur then
      if slice_sig(cur) ~= slice_sig(w) then
        w.metadata.name = cur.metadata.name
        w.metadata.resourceVersion = cur.metadata.resourceVersion
        ok, err = ctx.client:update(SLICE, w)
      else
        ok = true
      end
    else
      w.metadata.generateName = md.name .. "-"
      ok, err = ctx.client:create(SLICE, w)
    end
    if not ok then error("endpointslices: " .. msg_of(err), 0) end
  end
  for _, s in ipairs(spare) do
    local ok, err = ctx.client:delete(SLICE, s.metadata.namespace, s.metadata.name)
    if not ok and not not_found(err) then error("endpointslices: " .. msg_of(err), 0) end
  end
end

-- }======

local function forget(ctx, key)
  selectors:forget(key)
  local ns, name = key:match("^([^/]*)/(.*)$")
  local ok, err = ctx.client:delete(EP, ns, name)
  if not ok and not not_found(err) then error("delete endpoints: " .. msg_of(err), 0) end
  -- The slices name the Service as owner: the garbage collector takes
  -- them too, but a deleted Service should stop routing at once.
  for _, s in ipairs(ctx:list(SLICE, { namespace = ns,
    selector = { matchLabels = { [SERVICE_NAME] = name, [MANAGED_BY] = MANAGER } } })) do
    local dok, derr = ctx.client:delete(SLICE, ns, s.metadata.name)
    if not dok and not not_found(derr) then error("delete endpointslices: " .. msg_of(derr), 0) end
  end
end

local function enqueue_pod(ctx, pod)
  for _, key in ipairs(selectors:matching(pod)) do ctx.queue:add(key) end
end

return {
  name = "endpoints-controller",
  kind = SVC,
  -- Changes to a Service's slices (someone else's edit) wake it to repair.
  owns = { SLICE },
  setup = function(ctx)
    -- A pod that changes labels wakes the Services it left as well as
    -- those it joined, so both old and new objects are mapped.
    ctx:watch(POD, {
      add = function(pod) enqueue_pod(ctx, pod) end,
      update = function(old, new)
        if old.metadata.resourceVersion == new.metadata.resourceVersion then return end
        enqueue_pod(ctx, old)
        enqueue_pod(ctx, new)
      end,
      delete = function(pod) enqueue_pod(ctx, pod) end,
    })
    ctx:watch(EP, {
      delete = function(ep) ctx.queue:add(ep.metadata.namespace .. "/" .. ep.metadata.name) end,
    })
  end,

  reconcile = function(ctx, key, svc)
    if not svc then return forget(ctx, key) end
    if not has_selector(svc) then
      selectors:forget(key)
      return
    end
    selectors:set(key, svc.metadata.namespace, selector.from_set(svc.spec.selector))
    if svc.metadata.deletionTimestamp then return end
    local groups = groups_for(ctx, svc)
    sync_endpoints(ctx, svc, groups)
    sync_slices(ctx, svc, groups)
  end,
}
