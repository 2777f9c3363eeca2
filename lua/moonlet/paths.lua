-- Where moonlet keeps its state by default, shared by the server and the
-- clients: $XDG_DATA_HOME/moonlet, /var/lib/moonlet for root, else
-- ~/.local/share/moonlet; the API socket lives inside it.
local sys = require("moonlet.core.sys")

local M = {}

function M.data_dir(getenv)
  getenv = getenv or os.getenv
  local xdg = getenv("XDG_DATA_HOME")
  if xdg and xdg ~= "" then return xdg .. "/moonlet" end
  if sys.getuid() == 0 then return "/var/lib/moonlet" end
  local home = getenv("HOME")
  if not home or home == "" then home = sys.homedir() end
  return home .. "/.local/share/moonlet"
end

--- The server URL clients use when none is given: $MOONLET_SERVER, else the
--- default data dir's socket.
function M.server(getenv)
  getenv = getenv or os.getenv
  local s = getenv("MOONLET_SERVER")
  if s and s ~= "" then return s end
  return "unix:" .. M.data_dir(getenv) .. "/moonlet.sock"
end

return M
