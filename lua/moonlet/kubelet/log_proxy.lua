-- pods/NAME/log for a pod on a joined node (`moonlet node`): as
-- kube-apiserver proxies the request to the kubelet of the pod's node, the
-- server forwards it to the endpoint the Node publishes (its InternalIP and
-- status.daemonEndpoints.kubeletEndpoint.Port) as GET
-- /containerLogs/NS/POD/CONTAINER with the log options, its own bearer
-- token, and passes the answer back; with follow, chunk by chunk until
-- either side ends. An unreachable node fails fast with the proxy's error.
local status = require("moonlet.api.status")
local request = require("moonlet.api.request")

local M = {}

local token -- the bearer token the nodes accept (the server's own)

--- opts.token: the token sent to nodes' kubelet endpoints.
function M.configure(opts) token = opts.token end

--- The token sent to nodes' kubelet endpoints (also for their metrics).
function M.token() return token end

-- Connecting to a node that is gone must not hold kubectl for long: the
-- kubelet dial timeout of kube-apiserver is 30 s, ours is shorter.
M.CONNECT_TIMEOUT_MS = 5000
M.TIMEOUT_MS = 60000

-- The log options a kubelet takes, under kube-apiserver's query names.
local PARAMS = { "previous", "follow", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "limitBytes" }

local escape = require("moonlet.client").escape

--- The query string for the kubelet ("" or "?a=b&..."), from a parsed query.
function M.query(q)
  local parts = {}
  for _, name in ipairs(PARAMS) do
    local v = request.param(q, name)
    if v ~= nil and v ~= "" then parts[#parts + 1] = name .. "=" .. escape(v) end
  end
  return #parts > 0 and ("?" .. table.concat(parts, "&")) or ""
end

--- The base URL of node's kubelet endpoint, or nil when it publishes none
--- (the server's own node: its logs are read in-process).
function M.endpoint(node)
  local st = type(node) == "table" and node.status or {}
  local port = math.tointeger(((st.daemonEndpoints or {}).kubeletEndpoint or {}).Port)
  if not port or port <= 0 then return nil end
  local addr
  for _, want in ipairs({ "InternalIP", "ExternalIP", "Hostname" }) do
    for _, a in ipairs(st.addresses or {}) do
      if not addr and a.type == want and (a.address or "") ~= "" then addr = a.address end
    end
  end
  if not addr then return nil end
  if addr:find(":", 1, true) then addr = "[" .. addr .. "]" end
  return string.format("https://%s:%d", addr, port)
end

--- The kubelet URL of container cname of pod at node base URL `base`.
function M.url(base, pod, cname, q)
  local md = pod.metadata
  return string.format("%s/containerLogs/%s/%s/%s%s", base, escape(md.namespace), escape(md.name),
    escape(cname), M.query(q))
end

-- What kube-apiserver answers when the kubelet cannot be reached: Go's
-- `Get "URL": ...` as an unknown-reason 500.
local function unreachable(url, err)
  local msg = tostring(err or "no answer"):gsub("^E[%u_]+: ", "")
  return status.new(500, "", string.format('Get "%s": %s', url, msg))
end

local function pass_through(ctx, code, headers, body)
  ctx.replied = true
  ctx.sink:respond(code, { ["Content-Type"] = (headers or {})["content-type"] or "text/plain" }, body or "")
end

--- Forwards the log request in ctx for container cname of pod to the
--- node whose kubelet endpoint is `base`.
function M.forward(ctx, base, pod, cname)
  local http = require("moonlet.http")
  local url = M.url(base, pod, cname, ctx.query)
  -- Nodes serve a self-signed certificate; kube-apiserver too checks a
  -- kubelet's only when given --kubelet-certificate-authority.
  local opts = { method = "GET", url = url, insecure = true,
    headers = { ["Authorization"] = "Bearer " .. tostring(token or "") },
    connect_timeout_ms = M.CONNECT_TIMEOUT_MS }
  local follow = request.param(ctx.query, "follow")
  if not (follow == "true" or follow == "1") then
    opts.timeout_ms = M.TIMEOUT_MS
    local res, err = http.request(opts)
    if not res then return ctx:fail(unreachable(url, err)) end
    -- The answer (an error's Status too) goes back as it came.
    return pass_through(ctx, res.status, res.headers, res.body)
  end
  local s, err = http.stream(opts)
  if not s then return ctx:fail(unreachable(url, err)) end
  if s.status ~= 200 then
    local parts = {}
    for chunk in s.read, s do parts[#parts + 1] = chunk end
    s:close()
    return pass_through(ctx, s.status, s.headers, table.concat(parts))
  end
  local out = ctx:stream(200, { ["Content-Type"] = "text/plain" })
  local gone = false
  ctx:on_close(function()
    gone = true
    s:close()
  end)
  while not gone do
    local chunk = s:read()
    if not chunk or out:write(chunk) == nil then break end
  end
  s:close()
  out:finish()
end

return M
