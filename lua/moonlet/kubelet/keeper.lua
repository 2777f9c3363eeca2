-- The process runtime of `moonlet server --keep-pods`: every container runs
-- under its own keeper process (core/keeper.h), so it survives the server's
-- stop, upgrade or crash, and a later server adopts it by its container id
-- (the record files under the kubelet's state dir). The same shape as the
-- agent's plain runtime: spawn(opts, on_exit) -> handle {pid, stop, kill},
-- plus adopt(container_id, on_exit) -> handle | nil and sweep(keep_ids),
-- which ends the kept containers no pod claims.
local core = require("moonlet.core.keeper")
local proc = require("moonlet.proc") -- registers the exit event's pusher
local json = require("moonlet.json")
local loop = require("moonlet.core.loop")
local sys = require("moonlet.core.sys")
local sched = require("moonlet.sched")

local M = {}

local function handle_for(k, id, on_exit)
  sched.on(id, function(res)
    sched.forget(id)
    k:close()
    on_exit(res)
  end)
  return {
    pid = k:pid(),
    stop = function(_, grace) return k:stop(grace) end,
    kill = function(_, sig) return k:kill(proc.signal(sig or "TERM")) end,
    keeper = k,
  }
end

--- A runtime keeping its records in state_dir. exe: the moonlet binary
--- the keepers run (default: this process' own executable; specs, which
--- run in lua5.4, pass the built binary).
function M.runtime(state_dir, exe)
  exe = exe or "/proc/self/exe"
  local function base(cid) return state_dir .. "/keep-" .. cid end
  local claimed = {} -- container ids spawned or adopted by this server
  return {
    kept = true,
    --- opts as for moonlet.proc.spawn plus keep_id (the container id).
    spawn = function(opts, on_exit)
      assert(opts.keep_id, "keeper runtime: keep_id is required")
      local env = opts.env
      if env and env[1] == nil and next(env) ~= nil then
        local list = {}
        for k, v in pairs(env) do list[#list + 1] = k .. "=" .. tostring(v) end
        table.sort(list)
        env = list
      end
      local spec = json.encode({ command = opts.command, env = env, cwd = opts.cwd,
        stdout_log = opts.stdout_log, stderr_log = opts.stderr_log,
        log_max_bytes = opts.log_max_bytes, log_max_files = opts.log_max_files,
        memory_limit_bytes = opts.memory_limit_bytes })
      local id = loop.next_id()
      local k, err, name = core.spawn(id, exe, base(opts.keep_id), spec)
      if not k then return nil, err, name end
      claimed[opts.keep_id] = true
      return handle_for(k, id, on_exit)
    end,
    --- Re-attaches to the container `cid` a keeper still runs (or whose end
    --- it recorded while no server watched). @return handle | nil
    adopt = function(cid, on_exit)
      local id = loop.next_id()
      local k = core.adopt(id, base(cid))
      if not k then return nil end
      claimed[cid] = true
      return handle_for(k, id, on_exit)
    end,
    --- Kills the kept containers whose ids are not in `keep` (a set) and
    --- that this server did not start or adopt. @return how many
    sweep = function(keep)
      local n = 0
      for _, name in ipairs(sys.listdir(state_dir) or {}) do
        local cid = name:match("^keep%-(.+)%.run$")
        if cid and not claimed[cid] and not keep[cid] then
          local id = loop.next_id()
          local k = core.adopt(id, base(cid))
          if k then
            n = n + 1
            sched.on(id, function()
              sched.forget(id)
              k:close()
            end)
            k:kill(9)
          end
        end
      end
      return n
    end,
  }
end

return M
