-- Spec helper: the curl command line as an HTTP client that runs in the
-- background, so the loop under test keeps turning while a spec waits for
-- it, and a keep-alive timer for sched.run (used by the httpd specs).
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")

local M = {}

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p " .. tmp))
local seq = 0

--- @return the file's bytes, or nil when it does not exist
function M.slurp(path) return (require("moonlet.files").read(path)) end

--- Starts `curl -s ARGS` in the background. A sanitizer preloaded into the
--- interpreter (LD_PRELOAD) is kept away from the client.
--- @return wait([limit_ms]) -> output, exit code; yields until curl exits
function M.curl(args)
  seq = seq + 1
  local out, done = tmp .. "/out" .. seq, tmp .. "/done" .. seq
  os.execute(string.format("(env -u LD_PRELOAD curl -s %s > %s 2>&1; echo $? > %s) &",
    args, out, done))
  return function(limit_ms)
    local waited = 0
    while not M.slurp(done) or M.slurp(done) == "" do
      loop.sleep(5)
      waited = waited + 5
      assert(waited < (limit_ms or 10000), "curl did not finish: " .. args)
    end
    return M.slurp(out), tonumber(M.slurp(done))
  end
end

-- ml_loop_run decides "nothing left to do" from uv_run's result taken
-- before the end-of-turn hooks, which may start new timers (a coroutine
-- resumed there calling loop.sleep). Once every socket is closed that can
-- end the run early, so a keep-alive timer runs alongside each test.
function M.run(fn)
  return sched.run(function()
    local keep = loop.timer(1000, function() end, 1000)
    local r = table.pack(pcall(fn))
    keep.stop()
    if not r[1] then error(r[2], 0) end
    return table.unpack(r, 2, r.n)
  end)
end

--- Removes the helper's temporary files.
function M.cleanup() os.execute("rm -rf " .. tmp) end

return M
