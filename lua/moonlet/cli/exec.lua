-- `moonlet exec POD [-c C] [-i] [-t] -- COMMAND [ARGS...]`: runs a command
-- in a pod's container through the pods/NAME/exec subresource, on the
-- server's unix socket (moonlet.core.exec's client: WebSocket, the
-- v5.channel.k8s.io protocol). Exit status as kubectl's: the command's own
-- ("command terminated with exit code N" on stderr when not 0), 1 for an
-- error of the server or the session.
local common = require("moonlet.cli.common")
local client = require("moonlet.client")
local json = require("moonlet.json")

local M = {}

M.usage = "Usage:\n  moonlet exec (POD | TYPE/NAME) [-c CONTAINER] [flags] -- COMMAND [args...]"

M.flags = {
  { name = "container", short = "c", type = "string",
    help = "Container name. If omitted, use the kubectl.kubernetes.io/default-container annotation for selecting the container to be attached or the first container in the pod will be chosen" },
  { name = "stdin", short = "i", type = "bool", help = "Pass stdin to the container" },
  { name = "tty", short = "t", type = "bool", help = "Stdin is a TTY" },
  { name = "quiet", short = "q", type = "bool", help = "Only print output from the remote session" },
}

--- The exec subresource's query for a command (list) and the flags.
function M.query(container, command, stdin, tty)
  local parts = {}
  if container then parts[#parts + 1] = "container=" .. client.escape(container) end
  for _, a in ipairs(command) do parts[#parts + 1] = "command=" .. client.escape(a) end
  if stdin then parts[#parts + 1] = "stdin=true" end
  parts[#parts + 1] = "stdout=true"
  -- A terminal merges stderr into stdout (kubectl asks for no stderr).
  if not tty then parts[#parts + 1] = "stderr=true" end
  if tty then parts[#parts + 1] = "tty=true" end
  return "?" .. table.concat(parts, "&")
end

--- The exit status for the session's final Status (JSON text, or nil when
--- the server closed without one) and the line for stderr, if any.
function M.exit_code(body)
  if not body or body == "" then return 0 end
  local st = json.decode(body)
  if type(st) ~= "table" then return 1, "error: unreadable status from the server: " .. body end
  if st.status == "Success" then return 0 end
  if st.reason == "NonZeroExitCode" then
    for _, c in ipairs((st.details or {}).causes or {}) do
      local n = c.reason == "ExitCode" and math.tointeger(tonumber(c.message))
      if n then return n, string.format("command terminated with exit code %d", n) end
    end
  end
  return 1, "error: " .. tostring(st.message or "command failed")
end

function M.run(ctx, argv)
  local f = ctx.flags
  if #argv == 0 then common.fail("expected 'exec (POD | TYPE/NAME) COMMAND [ARG1] [ARG2] ... [ARGN]'.\nPOD or TYPE/NAME is a required argument for the exec command") end
  if #argv < 2 then common.fail("you must specify at least one command for the container") end
  local name = argv[1]:match("^pods?/(.+)$") or argv[1]:match("^po/(.+)$") or argv[1]
  local command = { table.unpack(argv, 2) }
  local c = common.client(ctx)
  local server = ctx.server or ""
  local sock = server:match("^unix://(.+)$") or server:match("^unix:(.+)$")
  if not sock then
    common.fail("moonlet exec talks to the server's unix socket only (" .. server .. "): use kubectl exec over HTTPS")
  end
  local r = common.resolve(ctx, "pods")
  local ns = common.namespace(ctx)
  local path, perr = client.path(r, ns, name, "exec")
  if not path then common.fail_status(ctx, perr) end
  local pod, st = c:get(r, ns, name)
  if not pod then common.fail_status(ctx, st) end
  io.stdout:flush()
  io.stderr:flush()
  local status, body, name_err = require("moonlet.core.exec").run_client(sock,
    path .. M.query(f.container, command, f.stdin, f.tty),
    { stdin = f.stdin, tty = f.tty, token = f.token or ctx.getenv("MOONLET_TOKEN") })
  if not status then common.fail(tostring(body or name_err)) end
  if status ~= 101 then
    local s = json.decode(body or "")
    if type(s) ~= "table" or s.kind ~= "Status" then
      s = client.status(status, "", (body and body ~= "") and body or ("the server responded with status " .. status))
    end
    common.fail_status(ctx, s)
  end
  local code, line = M.exit_code(body)
  if line and not (f.quiet and code ~= 1) then ctx.err(line .. "\n") end
  return code
end

return M
