-- The verb handlers of metrics.k8s.io/v1beta1 PodMetrics and NodeMetrics
-- (plugins/kinds/podmetrics.lua, nodemetrics.lua): objects as
-- metrics-server writes them, computed from the node agent's containers
-- when asked (moonlet.kubelet.metrics), never stored. Joined nodes are
-- asked for theirs when a list or get needs them (moonlet.kubelet.
-- metrics_scrape; a node serves M.usage); a node that does not answer,
-- and pods with no running container, are left out, as metrics-server
-- leaves out what it cannot scrape.
local json = require("moonlet.json")
local status = require("moonlet.api.status")
local request = require("moonlet.api.request")
local tables = require("moonlet.api.table")
local selector = require("moonlet.selector")
local metrics = require("moonlet.kubelet.metrics")
local kstatus = require("moonlet.kubelet.status")
local scrape = require("moonlet.kubelet.metrics_scrape")

local M = {}

local agent   -- the running node agent (configure), nil without one
local sampler -- one per agent: the previous samples live there
-- Each configured agent's sampler, for M.usage of an agent (its own node's
-- endpoint) that is not, or no longer, the configured one.
local samplers = setmetatable({}, { __mode = "k" })

--- opts.agent: the running node agent (nil when there is none);
--- opts.sampler: a moonlet.kubelet.metrics sampler (tests).
function M.configure(opts)
  agent = opts.agent
  sampler = opts.sampler or (agent and (samplers[agent] or metrics.new())) or nil
  if agent then samplers[agent] = sampler end
end

local API_VERSION = "metrics.k8s.io/v1beta1"

-- {====== selection

-- labelSelector and fieldSelector (metadata.name, and metadata.namespace
-- for pods: what metrics-server takes) as a filter, or nil and a Status.
local function filter(ctx, namespaced)
  local q = ctx.query or {}
  local ls = request.param(q, "labelSelector")
  local sel, fs
  if ls and ls ~= "" then
    local err
    sel, err = selector.parse(ls)
    if not sel then return nil, status.bad_request(tostring(err)) end
  end
  local fstr = request.param(q, "fieldSelector")
  if fstr and fstr ~= "" then
    local err
    fs, err = selector.parse_fields(fstr)
    if not fs then return nil, status.bad_request(tostring(err)) end
    for _, k in ipairs(fs:keys()) do
      if k ~= "metadata.name" and not (namespaced and k == "metadata.namespace") then
        return nil, status.bad_request("field label not supported: " .. k)
      end
    end
  end
  return function(obj)
    if ctx.namespace and obj.metadata.namespace ~= ctx.namespace then return false end
    if ctx.name and obj.metadata.name ~= ctx.name then return false end
    if sel and not sel:matches(obj.metadata.labels or {}) then return false end
    if fs and not fs:matches(obj) then return false end
    return true
  end
end

local function metadata(obj, now)
  local md = obj.metadata
  return { name = md.name, namespace = md.namespace, creationTimestamp = kstatus.time(now),
    labels = md.labels }
end

-- Orders PodMetrics as a list answers them: by namespace, then name.
local function sort_pods(items)
  table.sort(items, function(a, b)
    if a.metadata.namespace ~= b.metadata.namespace then return a.metadata.namespace < b.metadata.namespace end
    return a.metadata.name < b.metadata.name
  end)
  return items
end

local function reply_list(ctx, kind, items)
  if ctx.table then
    local text = assert(tables.text(ctx.def, json.encode(json.array(items)),
      { include = request.param(ctx.query, "includeObject") }))
    return ctx:reply(200, text)
  end
  return ctx:reply(200, { kind = kind, apiVersion = API_VERSION, metadata = json.object({}),
    items = json.array(items) })
end

local function reply_one(ctx, obj)
  if ctx.table then
    return ctx:reply(200, assert(tables.text(ctx.def, "[" .. json.encode(obj) .. "]",
      { include = request.param(ctx.query, "includeObject") })))
  end
  return ctx:reply(200, obj)
end

-- }======

-- {====== pods

-- Every running container of the node, as the sampler takes them, and
-- pod uid -> { {name, key} } in spec order.
local function running_containers(ag)
  local list, by_pod = {}, {}
  for uid, w in pairs(ag and ag.workers or {}) do
    local spec = w.pod and w.pod.spec or {}
    local cs = {}
    for _, group in ipairs({ spec.initContainers or {}, spec.containers or {} }) do
      for _, c in ipairs(group) do
        local rec = w.cs[c.name]
        local inst = rec and rec.inst
        local h = inst and inst.handle
        if h and h.pid then
          -- h.pid is the container's pid, also under a keeper (a kept
          -- container's cgroup is the keeper's business: its sums count)
          list[#list + 1] = { key = inst.id, pgid = h.pid, cgroup = h.proc and h.proc.cgroup,
            started = inst.started }
          cs[#cs + 1] = { name = c.name, key = inst.id }
        end
      end
    end
    by_pod[uid] = cs
  end
  return list, by_pod
end

-- The PodMetrics of agent ag's pods that `keep(pod)` selects, by sampler smp.
local function pod_items(ag, smp, keep)
  local list, by_pod = running_containers(ag)
  local usage = smp and smp:containers(list) or {}
  local items = {}
  for uid, cs in pairs(by_pod) do
    local pod = ag.workers[uid].pod
    if keep(pod) then
      local containers, ts, window = json.array(), nil, nil
      for _, c in ipairs(cs) do
        local u = usage[c.key]
        if u then
          containers[#containers + 1] = { name = c.name, usage = {
            cpu = metrics.cpu_quantity(u.cpu_nano), memory = metrics.memory_quantity(u.memory) } }
          if not ts or u.timestamp > ts then ts = u.timestamp end
          if not window or u.window < window then window = u.window end
        end
      end
      if #containers > 0 then
        items[#items + 1] = { kind = "PodMetrics", apiVersion = API_VERSION,
          metadata = metadata(pod, ts), timestamp = kstatus.time(ts), window = metrics.window(window),
          containers = containers }
      end
    end
  end
  return sort_pods(items)
end

--- The PodMetrics of the node's pods that `keep(pod)` selects.
function M.pod_metrics(keep) return pod_items(agent, sampler, keep) end

local function pods_get(ctx)
  local keep, err = filter(ctx, true)
  if not keep then return ctx:fail(err) end
  local text = ctx.store and ctx.store:get_json("pods", ctx.namespace, ctx.name)
  local pod = text and json.decode(text)
  local on = pod and pod.spec and pod.spec.nodeName
  local items
  if on and on ~= "" and on ~= (agent and agent.node_name) then
    -- A pod of a joined node: only that node is asked.
    items = M.joined_pod_metrics(ctx.store, keep, function(n) return n.metadata.name == on end)
  else
    items = M.pod_metrics(keep)
  end
  if #items == 0 then
    local known = ctx.store and ctx.store:object_version("pods", ctx.namespace, ctx.name)
    return ctx:fail(status.not_found(ctx.def, known and (ctx.namespace .. "/" .. ctx.name) or ctx.name))
  end
  return reply_one(ctx, items[1])
end

local function pods_list(ctx)
  local keep, err = filter(ctx, true)
  if not keep then return ctx:fail(err) end
  local items = M.pod_metrics(keep)
  for _, item in ipairs(M.joined_pod_metrics(ctx.store, keep)) do items[#items + 1] = item end
  return reply_list(ctx, "PodMetricsList", sort_pods(items))
end

M.pods = { get = pods_get, list = pods_list }

-- }======

-- {====== nodes

-- The NodeMetrics of a node by its sampler smp, named and labelled as `node`.
local function node_item(smp, node)
  local u = smp and smp:node()
  if not u then return nil end
  return { kind = "NodeMetrics", apiVersion = API_VERSION, metadata = metadata(node, u.timestamp),
    timestamp = kstatus.time(u.timestamp), window = metrics.window(u.window),
    usage = { cpu = metrics.cpu_quantity(u.cpu_nano), memory = metrics.memory_quantity(u.memory) } }
end

--- The NodeMetrics of this agent's node when `keep(node)` selects it.
function M.node_metrics(store, keep)
  if not agent or not sampler then return {} end
  local text = store:get_json("nodes", "", agent.node_name)
  local node = text and json.decode(text) or { metadata = { name = agent.node_name } }
  if not keep(node) then return {} end
  return { node_item(sampler, node) }
end

local function nodes_get(ctx)
  local keep, err = filter(ctx, false)
  if not keep then return ctx:fail(err) end
  local items = M.node_metrics(ctx.store, keep)
  if #items == 0 then items = M.joined_node_metrics(ctx.store, keep) end
  if #items == 0 then return ctx:fail(status.not_found(ctx.def, ctx.name)) end
  return reply_one(ctx, items[1])
end

local function nodes_list(ctx)
  local keep, err = filter(ctx, false)
  if not keep then return ctx:fail(err) end
  local items = M.node_metrics(ctx.store, keep)
  for _, item in ipairs(M.joined_node_metrics(ctx.store, keep)) do items[#items + 1] = item end
  table.sort(items, function(a, b) return a.metadata.name < b.metadata.name end)
  return reply_list(ctx, "NodeMetricsList", items)
end

M.nodes = { get = nodes_get, list = nodes_list }

-- }======

-- {====== joined nodes

--- A node's answer to GET /stats/usage (moonlet.kubelet.log_server): the
--- figures of agent ag (default: the configured one) as this API would
--- serve them, { nodeName =, node = NodeMetrics | nil, pods = {
--- PodMetrics... } }, every pod with a running container.
function M.usage(ag)
  ag = ag or agent
  if not ag then return { pods = json.array() } end
  local smp = samplers[ag]
  if not smp then
    smp = metrics.new()
    samplers[ag] = smp
  end
  return { nodeName = ag.node_name, node = node_item(smp, { metadata = { name = ag.node_name } }),
    pods = json.array(pod_items(ag, smp, function() return true end)) }
end

-- Asks the joined nodes of store that pick(node) selects (all when nil).
-- @return name -> usage of those that answered, name -> Node
local function ask_joined(store, pick)
  local text = store and store:list_json("nodes", {})
  local nodes = text and json.decode(text) or {}
  local targets = scrape.targets(nodes, agent and agent.node_name, pick)
  if #targets == 0 then return {}, {} end
  local by_name = {}
  for _, t in ipairs(targets) do by_name[t.name] = t.node end
  return scrape.scrape(targets, { token = require("moonlet.kubelet.log_proxy").token() }), by_name
end

--- The PodMetrics that joined nodes (those pick(node) selects) report and
--- `keep(pod)` selects.
function M.joined_pod_metrics(store, keep, pick)
  local items = {}
  for _, u in pairs((ask_joined(store, pick))) do
    for _, item in ipairs(u.pods) do
      local md = type(item) == "table" and item.metadata
      -- (a malformed item is skipped: a selector must not trip on it)
      if type(md) == "table" and type(md.name) == "string" and type(md.namespace) == "string"
        and type(md.labels or {}) == "table" and keep(item) then
        item.kind, item.apiVersion = "PodMetrics", API_VERSION
        items[#items + 1] = item
      end
    end
  end
  return items
end

--- The NodeMetrics of the joined nodes that `keep(node)` selects, named and
--- labelled as their Node objects.
function M.joined_node_metrics(store, keep)
  local items = {}
  local answers, nodes = ask_joined(store, keep)
  for name, u in pairs(answers) do
    local n = u.node
    if type(n) == "table" and type(n.usage) == "table" then
      local md = nodes[name].metadata
      items[#items + 1] = { kind = "NodeMetrics", apiVersion = API_VERSION,
        metadata = { name = name, creationTimestamp = n.timestamp, labels = md.labels },
        timestamp = n.timestamp, window = n.window, usage = n.usage }
    end
  end
  return items
end

-- }======

return M
