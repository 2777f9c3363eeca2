-- Entry point of the moonlet executable: picks the subcommand and returns
-- the process exit status.
local M = {}

local VERSION = "0.1.0"

local function usage(out)
  -- The verb list comes from the CLI's own table, so it cannot go stale.
  local verbs, lines, line = require("moonlet.cli").verbs(), {}, ""
  for i, v in ipairs(verbs) do
    local piece = v .. (i < #verbs and "," or "")
    if #line + #piece + 1 > 40 then lines[#lines + 1] = line; line = "" end
    line = line == "" and piece or (line .. " " .. piece)
  end
  lines[#lines + 1] = line
  out:write([[
moonlet: Kubernetes' workload model for local processes.

Usage:
  moonlet server [flags]        run the API server, controllers and node agent
  moonlet node [flags]          join a server as one more node (node agent only)
  moonlet lua FILE [ARGS...]    run a Lua script with the moonlet.* modules
  moonlet VERB ...              CLI: ]], table.concat(lines, "\n" .. string.rep(" ", 37)), [[


Run 'moonlet VERB --help' for a verb's flags.
]])
end

--- Runs FILE as a chunk in a coroutine on the loop; `arg` holds its args.
--- With --server URL, moonlet.client.default() talks to that server.
local function run_lua(argv)
  local i = 2
  local server
  while argv[i] and argv[i]:match("^%-%-") do
    local flag, inline = argv[i]:match("^(%-%-[%w-]+)=?(.*)$")
    if flag == "--server" then
      if inline ~= "" then server = inline else i = i + 1; server = argv[i] end
    else
      io.stderr:write("moonlet lua: unknown flag ", argv[i], "\n")
      return 1
    end
    i = i + 1
  end
  local file = argv[i]
  if not file then
    io.stderr:write("usage: moonlet lua [--server URL] FILE [ARGS...]\n")
    return 1
  end
  local chunk, err = loadfile(file)
  if not chunk then
    io.stderr:write("moonlet lua: ", err, "\n")
    return 1
  end
  if server then require("moonlet.client").set_default_server(server) end
  local args = { [0] = file }
  for j = i + 1, #argv do args[#args + 1] = argv[j] end
  _G.arg = args
  local sched = require("moonlet.sched")
  local ok, res = pcall(sched.run, chunk, table.unpack(args))
  if not ok then
    io.stderr:write(tostring(res), "\n")
    return 1
  end
  return math.type(res) == "integer" and res or 0
end

function M.main(argv)
  local cmd = argv[1]
  if cmd == nil or cmd == "help" or cmd == "--help" or cmd == "-h" then
    usage(cmd and io.stdout or io.stderr)
    return cmd and 0 or 1
  elseif cmd == "--version" then
    io.stdout:write("moonlet v", VERSION, "\n")
    return 0
  elseif cmd == "lua" then
    return run_lua(argv)
  elseif cmd == "server" then
    -- The server makes many short-lived tables per request; the generational
    -- collector handles that with far less work than the incremental one.
    collectgarbage("generational")
    return require("moonlet.server").main(argv)
  elseif cmd == "node" then
    return require("moonlet.node").main(argv)
  end
  return require("moonlet.cli").main(argv)
end

M.VERSION = VERSION

return setmetatable(M, { __call = function(_, argv) return M.main(argv) end })
