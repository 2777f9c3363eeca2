-- `moonlet logs POD [-c C] [-p] [-f] [--tail N] [--since D] [--since-time T]
-- [--timestamps] [--limit-bytes N] [--all-containers]`: a container's log
-- through the pods/NAME/log subresource, choosing the container as kubectl
-- does (the kubectl.kubernetes.io/default-container annotation, else the
-- first, with a "Defaulted container" note when there are several).
local common = require("moonlet.cli.common")
local client = require("moonlet.client")
local json = require("moonlet.json")

local M = {}

M.usage = "Usage:\n  moonlet logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER] [flags]"

M.flags = {
  { name = "container", short = "c", type = "string", help = "Print the logs of this container." },
  { name = "follow", short = "f", type = "bool", help = "Specify if the logs should be streamed." },
  { name = "previous", short = "p", type = "bool",
    help = "If true, print the logs for the previous instance of the container in a pod if it exists." },
  { name = "tail", type = "int", default = -1,
    help = "Lines of recent log file to display. Defaults to -1 (all lines)." },
  { name = "since", type = "string", help = "Only return logs newer than a relative duration like 5s, 2m, or 3h." },
  { name = "since-time", type = "string", help = "Only return logs after a specific date (RFC3339)." },
  { name = "timestamps", type = "bool", help = "Include timestamps on each line in the log output." },
  { name = "limit-bytes", type = "int", default = 0, help = "Maximum bytes of logs to return." },
  { name = "all-containers", type = "bool", help = "Get all containers' logs in the pod(s)." },
  { name = "prefix", type = "bool", help = "Prefix each log line with the log source (pod name and container name)." },
  { name = "pod-running-timeout", type = "string", default = "20s",
    help = "The length of time (like 5s, 2m, or 3h, higher than zero) to wait until at least one pod is running" },
}

-- Go duration ("5s", "2m30s", "1h") -> seconds, rounded as kubectl does.
local function go_duration(s)
  local secs = require("moonlet.go_duration").parse(s)
  return secs and math.floor(secs + 0.5)
end

local function pod_name(ctx, arg, ns)
  local typ, name = arg:match("^([^/]+)/(.+)$")
  if not typ then return arg end
  local r = common.resolve(ctx, typ)
  if r.kind ~= "Pod" then return require("moonlet.cli.logs_pick").pod(ctx, r, ns, name) end
  return name
end

local function containers_of(pod)
  local spec = pod.spec or {}
  local out = {}
  for _, c in ipairs(spec.initContainers or {}) do out[#out + 1] = { name = c.name, init = true } end
  for _, c in ipairs(spec.containers or {}) do out[#out + 1] = { name = c.name } end
  return out
end

-- kubectl's default container choice.
local function default_container(ctx, pod)
  local spec = pod.spec or {}
  local ann = (pod.metadata.annotations or {})["kubectl.kubernetes.io/default-container"]
  if ann and ann ~= "" then
    for _, c in ipairs(spec.containers or {}) do if c.name == ann then return ann end end
  end
  local first = (spec.containers or {})[1]
  if not first then return nil end
  local all = containers_of(pod)
  if #all > 1 then
    local names = {}
    for _, c in ipairs(spec.containers or {}) do names[#names + 1] = c.name end
    for _, c in ipairs(spec.initContainers or {}) do names[#names + 1] = c.name .. " (init)" end
    ctx.err(string.format('Defaulted container "%s" out of: %s\n', first.name, table.concat(names, ", ")))
  end
  return first.name
end

local function query(params)
  local parts = {}
  for _, p in ipairs(params) do
    if p[2] ~= nil then parts[#parts + 1] = p[1] .. "=" .. client.escape(tostring(p[2])) end
  end
  return #parts > 0 and ("?" .. table.concat(parts, "&")) or ""
end

local function fail_body(ctx, code, body)
  local st = json.decode(body or "")
  if type(st) ~= "table" or st.kind ~= "Status" then
    st = client.status(code, "", body ~= "" and body or ("the server responded with status " .. code))
  end
  common.fail_status(ctx, st)
end

-- One container's log to ctx.out (streamed with follow).
local function show(ctx, c, r, ns, name, container, prefix)
  local f = ctx.flags
  local since
  if f.since then
    since = go_duration(f.since)
    if not since then common.fail(string.format('invalid argument "%s" for "--since" flag: time: invalid duration "%s"', f.since, f.since)) end
  end
  if f.since and f["since-time"] then common.fail("at most one of `sinceTime` or `sinceSeconds` may be specified") end
  local path, perr = client.path(r, ns, name, "log")
  if not path then common.fail_status(ctx, perr) end
  path = path .. query({
    { "container", container },
    { "follow", f.follow and "true" or nil },
    { "previous", f.previous and "true" or nil },
    { "tailLines", f.tail >= 0 and f.tail or nil },
    { "sinceSeconds", since },
    { "sinceTime", f["since-time"] },
    { "timestamps", f.timestamps and "true" or nil },
    { "limitBytes", f["limit-bytes"] > 0 and f["limit-bytes"] or nil },
  })
  local pre = prefix and string.format("[pod/%s/%s] ", name, container) or nil
  local function emit(text)
    if pre then text = text:gsub("([^\n]*\n)", pre .. "%1") end
    ctx.out(text)
  end
  if not f.follow then
    local res, st = c:raw("GET", path, nil, { Accept = "application/json, */*" })
    if not res then common.fail_status(ctx, st) end
    if res.status < 200 or res.status > 299 then fail_body(ctx, res.status, res.body) end
    emit(res.body or "")
    return
  end
  local ok, res, err = pcall(c.transport, { method = "GET", path = path, stream = true,
    headers = { Accept = "application/json, */*", ["User-Agent"] = c.user_agent } })
  if not ok or not res then
    common.fail_status(ctx, client.status(0, "ConnectionRefused", tostring(ok and err or res), true))
  end
  local read, close = res.read, res.close
  if type(res.stream) == "table" then
    local s = res.stream
    read = function() return s.read(s) end
    close = function() return s.close(s) end
  end
  if res.status and (res.status < 200 or res.status > 299) then
    local parts = { res.body or "" }
    while read do
      local chunk = read()
      if not chunk then break end
      parts[#parts + 1] = chunk
    end
    if close then close() end
    fail_body(ctx, res.status, table.concat(parts))
  end
  if res.body and res.body ~= "" then emit(res.body) end
  while read do
    local chunk = read()
    if not chunk then break end
    emit(chunk)
  end
  if close then close() end
end

function M.run(ctx, argv)
  if #argv == 0 then
    common.fail("expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command")
  end
  if #argv > 2 then common.fail("expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.") end
  local f = ctx.flags
  local c = common.client(ctx)
  local r = common.resolve(ctx, "pods")
  local ns = common.namespace(ctx)
  local name = pod_name(ctx, argv[1], ns)
  local container = f.container or argv[2]
  local pod, st = c:get(r, ns, name)
  if not pod then common.fail_status(ctx, st) end
  if f["all-containers"] then
    for _, ct in ipairs(containers_of(pod)) do show(ctx, c, r, ns, name, ct.name, f.prefix) end
    return 0
  end
  container = container or default_container(ctx, pod)
  show(ctx, c, r, ns, name, container, f.prefix)
  return 0
end

return M
