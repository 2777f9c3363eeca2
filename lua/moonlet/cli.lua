-- The moonlet CLI: kubectl-compatible verbs (get, apply, create, delete,
-- describe, label, annotate, edit, patch, set image, wait, api-resources,
-- version, ...) over the REST client. M.main(argv) picks the verb module in
-- moonlet.cli.*, parses its flags, runs it on the loop and returns the exit
-- status.
local args = require("moonlet.cli.args")
local common = require("moonlet.cli.common")

local M = {}

local VERBS = {
  get = "moonlet.cli.get",
  apply = "moonlet.cli.apply",
  create = "moonlet.cli.apply",
  delete = "moonlet.cli.delete",
  describe = "moonlet.cli.describe",
  label = "moonlet.cli.label",
  annotate = "moonlet.cli.label",
  edit = "moonlet.cli.edit",
  ["api-resources"] = "moonlet.cli.api_resources",
  version = "moonlet.cli.version",
  logs = "moonlet.cli.logs", -- kubelet: pods/NAME/log
  exec = "moonlet.cli.exec", -- kubelet: pods/NAME/exec (WebSocket)
  rollout = "moonlet.cli.rollout", -- status|history|undo|pause|resume|restart
  scale = "moonlet.cli.scale",
  expose = "moonlet.cli.expose", -- a Service for a workload, pod or Service
  explain = "moonlet.cli.explain",
  top = "moonlet.cli.top", -- pod|node: the metrics.k8s.io API
  patch = "moonlet.cli.patch",
  set = "moonlet.cli.set_image", -- `set image`, the one `set` subcommand
  wait = "moonlet.cli.wait",
}

--- Verb names, sorted (for help output).
function M.verbs()
  local out = {}
  for k in pairs(VERBS) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local function run_verb(mod, ctx, parsed)
  local ok, rc = xpcall(mod.run, function(e)
    if type(e) == "table" and e.cli then return e end
    return debug.traceback(tostring(e), 2)
  end, ctx, parsed.args)
  if ok then return rc end
  if type(rc) == "table" and rc.cli then
    local msg = rc.cli
    if not rc.raw and not msg:match("^error: ") and not msg:match("^Error from server")
        and not msg:match("^The connection to the server") and not msg:match("^Unable to connect") then
      msg = "error: " .. msg
    end
    ctx.err(msg .. "\n")
    return 1
  end
  ctx.err("error: " .. tostring(rc) .. "\n")
  return 1
end

--- Runs one CLI invocation. argv[1] is the verb. opts (for specs and the
--- in-process uses): out, err (functions receiving text), getenv, stdin
--- (text for `-f -`), client (a moonlet.client to use), now (Unix seconds).
--- @return the exit status
-- Global flags may come before the verb (`moonlet -n x get cm`): move the
-- verb to the front so it is found.
local function verb_first(argv)
  local with_value = {}
  for _, s in ipairs(common.GLOBAL_FLAGS) do
    if s.type ~= "bool" then
      with_value["--" .. s.name] = true
      if s.short then with_value["-" .. s.short] = true end
    end
  end
  local i = 1
  while i <= #argv and argv[i]:sub(1, 1) == "-" and argv[i] ~= "-" do
    if with_value[argv[i]] then i = i + 1 end
    i = i + 1
  end
  if i == 1 or i > #argv then return argv end
  local out = { argv[i] }
  for j = 1, #argv do if j ~= i then out[#out + 1] = argv[j] end end
  return out
end

function M.main(argv, opts)
  opts = opts or {}
  argv = verb_first(argv)
  local verb = argv[1]
  local ctx = {
    verb = verb,
    -- flushed at once: `get -w` output must appear as events arrive
    out = opts.out or function(s) io.stdout:write(s); io.stdout:flush() end,
    err = opts.err or function(s) io.stderr:write(s) end,
    getenv = opts.getenv or os.getenv,
    stdin = opts.stdin,
    client = opts.client,
    now = opts.now,
    editor_run = opts.editor_run,
  }
  local modname = VERBS[verb]
  if not modname then
    ctx.err(string.format('error: unknown command "%s" for "moonlet"\n', tostring(verb)))
    return 1
  end
  local mod = require(modname)
  local specs = common.flags(mod.flags_for and mod.flags_for(verb) or mod.flags or {})
  local rest = {}
  for i = 2, #argv do rest[#rest + 1] = argv[i] end
  local parsed, perr = args.parse(rest, specs)
  if not parsed then
    ctx.err(string.format("error: %s\nSee 'moonlet %s --help' for usage.\n", perr, verb))
    return 1
  end
  ctx.flags = parsed.flags
  ctx.set = parsed.set
  if parsed.flags.help then
    local usage = mod.usage
    if type(usage) == "function" then usage = usage(verb) end
    ctx.out(args.help(usage or ("moonlet " .. verb), specs))
    return 0
  end
  local sched = require("moonlet.sched")
  local rc
  if sched.in_coroutine() then
    rc = run_verb(mod, ctx, parsed)
  else
    local ok, res = pcall(sched.run, run_verb, mod, ctx, parsed)
    if not ok then
      ctx.err("error: " .. tostring(res) .. "\n")
      return 1
    end
    rc = res
  end
  if ctx.failed and (rc == nil or rc == 0) then rc = 1 end
  return rc or 0
end

return M
