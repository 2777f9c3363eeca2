-- The pods/NAME/exec subresource (kubectl exec, kubectl cp): a new process
-- in a running container's context (the environment its instance got, its
-- workingDir or pod dir, its cgroup when it has one), with stdio on
-- Kubernetes' WebSocket channel protocol (moonlet.core.exec). Checks and
-- messages follow kube-apiserver's and the kubelet's. A pod on a joined
-- node is refused: exec is not proxied to node agents yet.
local status = require("moonlet.api.status")
local json = require("moonlet.json")

local M = {}

M.V5 = "v5.channel.k8s.io"
M.V4 = "v4.channel.k8s.io"
local SUPPORTED = { M.V5, M.V4 } -- in order of preference

local KILL_AFTER_MS = 2000 -- SIGHUP first, as a closed terminal; then this

local function has_token(value, token)
  for t in (value or ""):gmatch("[^,%s]+") do
    if t:lower() == token then return true end
  end
  return false
end

--- The subprotocol to answer with for a Sec-WebSocket-Protocol header, or
--- nil, Status when the client offers none we speak.
function M.pick_protocol(header)
  local offered = {}
  for p in (header or ""):gmatch("[^,%s]+") do offered[p] = true end
  for _, p in ipairs(SUPPORTED) do
    if offered[p] then return p end
  end
  return nil, status.bad_request(string.format(
    "requested protocol(s) are not supported: [%s]; supports [%s]",
    (header or ""):gsub("%s*,%s*", " "), table.concat(SUPPORTED, " ")))
end

local function bool(q, name)
  local v = q[name] and q[name][1]
  return v == "true" or v == "1"
end

--- PodExecOptions from the query: { command = {...}, container, stdin,
--- stdout, stderr, tty } or nil, Status.
function M.options(q)
  local o = { command = q.command or {}, container = q.container and q.container[1],
    stdin = bool(q, "stdin"), stdout = bool(q, "stdout"), stderr = bool(q, "stderr"), tty = bool(q, "tty") }
  if #o.command == 0 then return nil, status.bad_request("you must specify at least 1 command") end
  if not (o.stdin or o.stdout or o.stderr) then
    return nil, status.bad_request("you must specify at least 1 of stdin, stdout, stderr")
  end
  -- With a terminal, stderr is stdout (the kubelet refuses both together).
  if o.tty then o.stderr = false end
  return o
end

--- Go's %v of a []string: "[sh -c exit 3]".
function M.command_text(argv) return "[" .. table.concat(argv, " ") .. "]" end

--- The Status sent on the error channel once the process ended (exit
--- result of moonlet.proc): Success, or NonZeroExitCode with the code as
--- the ExitCode cause, which kubectl turns into its own exit status.
function M.exit_status(res, argv)
  local code = res.exit_code or 1
  if code == 0 then return '{"metadata":{},"status":"Success"}' end
  return json.encode({ metadata = json.object({}), status = "Failure",
    message = string.format("command terminated with non-zero exit code: error executing command %s, exit code %d",
      M.command_text(argv), code),
    reason = "NonZeroExitCode",
    details = { causes = { { reason = "ExitCode", message = tostring(code) } } } })
end

--- The Status for a command that could not start (message from
--- moonlet.proc, "ENOENT: exec: ..."): an internal error, as the kubelet's.
function M.start_failure(err)
  local msg = "error executing command in container: failed to exec in container: "
    .. tostring(err):gsub("^E%u+: ", "")
  return json.encode({ metadata = json.object({}), status = "Failure",
    message = "Internal error occurred: " .. msg, reason = "InternalError",
    details = { causes = { { message = msg } } }, code = 500 })
end

-- The running instance of container cname on agent ag: worker, record,
-- instance, or nil.
local function running_instance(ag, pod, cname)
  local w = ag.workers and ag.workers[pod.metadata.uid]
  local rec = w and w.cs and w.cs[cname]
  if not (rec and rec.state and rec.state.running and rec.inst) then return nil end
  return w, rec, rec.inst
end

-- Runs the session until the process ended and the client is gone.
local function serve(req, o, proto, spawn_opts)
  local proc = require("moonlet.proc")
  local sched = require("moonlet.sched")
  local loop = require("moonlet.loop")
  local sess, err, name = require("moonlet.core.exec").open(req.id, { protocol = proto, v5 = proto == M.V5,
    stdin = o.stdin, stdout = o.stdout, stderr = o.stderr, tty = o.tty })
  if not sess then return nil, err, name end
  req:upgraded()
  spawn_opts.stdio = sess:child_fds()
  local p, perr = proc.spawn(spawn_opts)
  sess:started()
  local closed, waiter = false, nil
  req:on_close(function()
    closed = true
    -- The client left: its terminal hung up.
    if p and p:running() then
      p:kill("HUP")
      sched.spawn("exec kill", function()
        loop.sleep(KILL_AFTER_MS)
        if p:running() then p:kill("KILL") end
      end)
    end
    if waiter then sched.wake(waiter) end
  end)
  if p then
    local res = p:wait()
    p:close()
    sess:finish(M.exit_status(res, o.command))
  else
    sess:finish(M.start_failure(perr))
  end
  if not closed then
    waiter = loop.next_id()
    sched.wait(waiter)
  end
  sess:close()
  req:upgrade_done()
  return true
end

--- Router handler for GET/POST pods/NAME/exec. ctx.agent, when set, is
--- the node agent to run in, else the server's own (kubelet logs module).
function M.handler(ctx, method)
  if method ~= "GET" and method ~= "POST" then return ctx:fail(status.method_not_allowed()) end
  local pod = ctx.store:get(ctx.def.store_resource, ctx.namespace, ctx.name)
  if not pod then return ctx:fail(status.not_found(ctx.def, ctx.name)) end
  local o, oerr = M.options(ctx.query)
  if not o then return ctx:fail(oerr) end
  local logs = require("moonlet.kubelet.logs")
  local cname, cerr = logs.container_name(pod, o.container)
  if not cname then return ctx:fail(cerr) end
  local pname = pod.metadata.name
  local node = pod.spec.nodeName or ""
  if node == "" then
    return ctx:fail(status.bad_request(string.format("pod %s does not have a host assigned", pname)))
  end
  local ag = ctx.agent or logs.agent()
  if not (ag and ag.node_name == node) then
    return ctx:fail(status.bad_request(string.format(
      "exec into pods on joined node %s is not supported yet: moonlet runs exec only on the server's own node", node)))
  end
  local req = ctx.sink
  if not has_token(ctx.headers["upgrade"], "websocket") or type(req.upgraded) ~= "function" then
    return ctx:fail(status.bad_request("Upgrade request required"))
  end
  local proto, perr = M.pick_protocol(ctx.headers["sec-websocket-protocol"])
  if not proto then return ctx:fail(perr) end
  local w, rec, inst = running_instance(ag, pod, cname)
  if not w then
    return ctx:fail(status.bad_request(string.format('unable to upgrade connection: container not found ("%s")', cname)))
  end
  local c = w:container_spec(rec)
  local env = rec.envlist or w:container_env(c) or {}
  local h = inst.handle
  local opts = { command = o.command, env = env, cwd = c.workingDir or ag:pod_dir(w.pod),
    new_session = o.tty, join_cgroup = h and h.proc and h.proc.cgroup or nil }
  ctx.replied = true
  local ok, err = serve(req, o, proto, opts)
  if not ok then
    ctx.replied = false
    return ctx:fail(status.bad_request("unable to upgrade connection: " .. tostring(err)))
  end
end

return M
