-- Whole-file reads, the one helper every module that reads a small file
-- (host facts, tokens, scripts, zoneinfo, kept ports) shares.
local M = {}

--- @return the file's bytes | nil, err (io.open's message)
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

return M
