-- A server's or a joined node's data dir: made 0700 (with its parents) and
-- locked, so one process owns it. Two would take over each other's socket
-- and run, reap and prune the same pods (the memory store has no lock of
-- its own, and SQLite's only says "database is locked"). The lock is an
-- flock the kernel drops when the holder dies, even by kill -9.
local sys = require("moonlet.core.sys")

local M = {}

--- mkdir -p with mode 0700 for the directories it makes.
--- @return true | nil, err
function M.mkdir_p(path)
  local acc = path:sub(1, 1) == "/" and "" or "."
  for part in path:gmatch("[^/]+") do
    acc = acc .. "/" .. part
    local ok, err = sys.mkdir(acc, 448) -- 0700
    if not ok then return nil, err end
  end
  return true
end

--- Makes `dir` (0700) and takes its lock for `what` ("server", "node").
--- @return the lock | nil, message naming the holder
function M.claim(dir, what)
  local ok, err = M.mkdir_p(dir)
  if not ok then return nil, "cannot create data dir: " .. tostring(err) end
  sys.chmod(dir, 448)
  local lock, lerr, code, holder = sys.lock_file(dir .. "/server.lock")
  if lock then return lock end
  if code ~= "EAGAIN" and code ~= "EWOULDBLOCK" then return nil, "cannot lock the data dir: " .. tostring(lerr) end
  return nil, string.format("another moonlet %s%s is using the data dir %s", what,
    (holder or 0) > 0 and string.format(" (pid %d)", holder) or "", dir)
end

return M
