-- The pods/NAME/log subresource: container logs as text/plain, with the
-- API server's container checks (LogLocation) and the kubelet's choice of
-- instance (validateContainerLogStatus: previous, running, terminated,
-- last terminated, else "waiting to start"). Parameters: container,
-- previous, follow (chunked stream until the instance ends or the client
-- goes), tailLines, sinceSeconds, sinceTime, timestamps, limitBytes.
local status = require("moonlet.api.status")
local request = require("moonlet.api.request")
local sys = require("moonlet.core.sys")

local M = {}

local agent -- the node agent whose log files we serve (configure)

--- opts.agent: the running node agent (nil when there is none).
function M.configure(opts) agent = opts.agent end

--- The configured node agent (the server's own), or nil.
function M.agent() return agent end

local function names(list)
  local out = {}
  for _, c in ipairs(list or {}) do out[#out + 1] = c.name end
  return table.concat(out, " ")
end

local function find(list, name)
  for _, c in ipairs(list or {}) do if c.name == name then return c end end
  return nil
end

--- Which container a request means: name, or nil and a Status.
function M.container_name(pod, name)
  local spec = pod.spec or {}
  local pname = pod.metadata.name
  if not name or name == "" then
    local n = #(spec.containers or {})
    if n == 1 then return spec.containers[1].name end
    if n == 0 then
      return nil, status.bad_request(string.format("a container name must be specified for pod %s", pname))
    end
    local msg = string.format("a container name must be specified for pod %s, choose one of: [%s]", pname,
      names(spec.containers))
    if spec.initContainers and #spec.initContainers > 0 then
      msg = msg .. string.format(" or one of the init containers: [%s]", names(spec.initContainers))
    end
    return nil, status.bad_request(msg)
  end
  if not find(spec.containers, name) and not find(spec.initContainers, name)
      and not find(spec.ephemeralContainers, name) then
    return nil, status.bad_request(string.format("container %s is not valid for pod %s", name, pname))
  end
  return name
end

local function id_of(container_id)
  return type(container_id) == "string" and container_id:match("^moonlet://(%x+)$") or nil
end

--- The container instance whose log to serve: containerID, running (bool)
--- or nil and a Status (the kubelet's messages).
function M.instance(pod, cname, previous)
  local st = pod.status or {}
  local pname = pod.metadata.name
  local cs = find(st.containerStatuses, cname) or find(st.initContainerStatuses, cname)
  if not cs then
    return nil, status.bad_request(string.format('container "%s" in pod "%s" is waiting to start: ContainerCreating',
      cname, pname))
  end
  local state, last = cs.state or {}, (cs.lastState or {}).terminated
  if previous then
    if not last or (last.containerID or "") == "" then
      return nil, status.bad_request(string.format('previous terminated container "%s" in pod "%s" not found',
        cname, pname))
    end
    return last.containerID, false
  end
  if state.running then return cs.containerID, true end
  if state.terminated then
    local id = state.terminated.containerID
    if (id or "") == "" then id = cs.containerID end
    if (id or "") == "" and last then id = last.containerID end
    if (id or "") == "" then
      return nil, status.bad_request(string.format('container "%s" in pod "%s" is terminated', cname, pname))
    end
    return id, false
  end
  if last then
    if (last.containerID or "") == "" then
      return nil, status.bad_request(string.format('container "%s" in pod "%s" is terminated', cname, pname))
    end
    return last.containerID, false
  end
  local reason = (state.waiting or {}).reason or "ContainerCreating"
  if reason == "ErrImagePull" then reason = "image can't be pulled"
  elseif reason == "ImagePullBackOff" then reason = "trying and failing to pull image" end
  return nil, status.bad_request(string.format('container "%s" in pod "%s" is waiting to start: %s',
    cname, pname, reason))
end

--- The log file of an instance of pod's container (nil without an agent;
--- `by`: the agent, default the configured one). A container adopted from
--- a server that kept logs in a directory per container (<pod
--- dir>/<container>/<id>.log) is read from there.
function M.path(pod, cname, container_id, by)
  local id = id_of(container_id)
  by = by or agent
  if not by or not id then return nil end
  local pdir = by:pod_dir(pod)
  local path = require("moonlet.kubelet.agent").log_file(pdir, cname, id)
  local older = pdir .. "/" .. cname .. "/" .. id .. ".log"
  if not sys.stat(path) and sys.stat(older) then
    return older
  end
  return path
end

local function int_param(q, name)
  local v = request.param(q, name)
  if v == nil or v == "" then return nil end
  return math.tointeger(tonumber(v)), v
end

local function bool_param(q, name)
  local v = request.param(q, name)
  return v == "true" or v == "1"
end

local function invalid(field, value, msg)
  return status.new(422, "Invalid", string.format('PodLogOptions "" is invalid: %s: Invalid value: %s: %s',
    field, tostring(value), msg), { kind = "PodLogOptions" })
end

-- Options from the query: table or nil, Status.
local function options(q)
  local o = { previous = bool_param(q, "previous"), follow = bool_param(q, "follow"),
    timestamps = bool_param(q, "timestamps") }
  local n, raw = int_param(q, "tailLines")
  if raw and (not n or n < 0) then return nil, invalid("tailLines", raw, "must be greater than or equal to 0") end
  o.tail = n
  n, raw = int_param(q, "limitBytes")
  if raw and (not n or n < 1) then return nil, invalid("limitBytes", raw, "must be greater than 0") end
  o.limit_bytes = n
  n, raw = int_param(q, "sinceSeconds")
  if raw and (not n or n < 1) then return nil, invalid("sinceSeconds", raw, "must be greater than 0") end
  o.since_seconds = n
  local st = request.param(q, "sinceTime")
  if st and st ~= "" then
    if o.since_seconds then
      return nil, status.new(422, "Invalid", "at most one of `sinceTime` or `sinceSeconds` may be specified")
    end
    local t = require("moonlet.printers.duration").parse(st)
    if not t then return nil, status.bad_request("sinceTime: invalid time " .. st) end
    o.since_time = t
  end
  return o
end

local function respond_text(ctx, text)
  ctx.replied = true
  ctx.sink:respond(200, { ["Content-Type"] = "text/plain" }, text)
end

-- Still the running instance `id` of container cname?
local function still_running(ctx, cname, id)
  local pod = ctx.store:get(ctx.def.store_resource, ctx.namespace, ctx.name)
  if not pod then return false end
  local st = pod.status or {}
  local cs = find(st.containerStatuses, cname) or find(st.initContainerStatuses, cname)
  return cs ~= nil and (cs.state or {}).running ~= nil and cs.containerID == id
end

local function follow(ctx, path, offset, o, cname, id, running, first)
  local proc = require("moonlet.proc")
  local loop = require("moonlet.loop")
  local out = ctx:stream(200, { ["Content-Type"] = "text/plain" })
  local sent = 0
  local function send(text)
    if not text or text == "" then return true end
    if o.limit_bytes then
      local left = o.limit_bytes - sent
      if left <= 0 then return false end
      if #text > left then text = text:sub(1, left) end
    end
    sent = sent + #text
    local ok = out:write(text)
    return ok ~= nil and (not o.limit_bytes or sent < o.limit_bytes)
  end
  if not send(first) or not running then return out:finish() end
  local f = proc.follow_log(path, offset, { timestamps = o.timestamps })
  if not f then return out:finish() end
  local closed = false
  ctx:on_close(function()
    closed = true
    f:close()
  end)
  -- The stream ends a moment after the instance stopped (its last output
  -- is drained to the file before the exit is reported).
  require("moonlet.sched").spawn("log follow watch", function()
    while not closed do
      loop.sleep(250)
      if closed then break end
      if not still_running(ctx, cname, id) then
        loop.sleep(300)
        break
      end
    end
    f:close()
  end)
  while true do
    local text = f:read()
    if not text then break end
    if not send(text) then break end
  end
  closed = true
  f:close()
  out:finish()
end

--- Router handler for GET pods/NAME/log. ctx.agent, when set, is the node
--- agent whose logs to read (a joined node's endpoint), else the configured.
function M.handler(ctx, method)
  if method ~= "GET" then return ctx:fail(status.method_not_allowed()) end
  local pod = ctx.store:get(ctx.def.store_resource, ctx.namespace, ctx.name)
  if not pod then return ctx:fail(status.not_found(ctx.def, ctx.name)) end
  local o, oerr = options(ctx.query)
  if not o then return ctx:fail(oerr) end
  local cname, cerr = M.container_name(pod, request.param(ctx.query, "container"))
  if not cname then return ctx:fail(cerr) end
  -- A pod not on a node yet has no logs: an empty answer, as upstream.
  if (pod.spec.nodeName or "") == "" then return respond_text(ctx, "") end
  -- A pod on another node: its kubelet serves the log (moonlet node).
  local local_agent = ctx.agent or agent
  if not (local_agent and local_agent.node_name == pod.spec.nodeName) then
    local ndef = require("moonlet.api.kinds").by_kind("v1/Node")
    local node = ndef and ctx.store:get(ndef.store_resource, "", pod.spec.nodeName)
    local base = node and require("moonlet.kubelet.log_proxy").endpoint(node)
    if base then return require("moonlet.kubelet.log_proxy").forward(ctx, base, pod, cname) end
  end
  local id, running = M.instance(pod, cname, o.previous)
  if not id then return ctx:fail(running) end
  local path = M.path(pod, cname, id, local_agent)
  if not path then return respond_text(ctx, "") end
  local text, offset = require("moonlet.proc").read_log(path, { tail = o.tail,
    since_seconds = o.since_seconds, since_time = o.since_time, timestamps = o.timestamps, limit_bytes = o.limit_bytes })
  if not text then text, offset = "", 0 end
  if o.follow then return follow(ctx, path, offset, o, cname, id, running and not o.previous, text) end
  return respond_text(ctx, text)
end

return M
