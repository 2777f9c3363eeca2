-- moonlet.log: leveled logging for scripts, through the core's klog-shaped
-- logger (one process-wide level, set by --log-level).
local runtime = require("moonlet.core.runtime")

local M = {}

local function emit(level, fmt, ...)
  local msg = select("#", ...) > 0 and string.format(fmt, ...) or tostring(fmt)
  runtime.log(level, msg)
end

function M.debug(fmt, ...) emit("debug", fmt, ...) end
function M.info(fmt, ...) emit("info", fmt, ...) end
function M.warn(fmt, ...) emit("warn", fmt, ...) end
function M.error(fmt, ...) emit("error", fmt, ...) end

--- "debug" | "info" | "warn" | "error"
M.set_level = runtime.set_log_level

--- A logger that prefixes every line with `name: ` (plugins, controllers).
function M.named(name)
  local l = {}
  for _, lv in ipairs({ "debug", "info", "warn", "error" }) do
    l[lv] = function(fmt, ...) emit(lv, name .. ": " .. fmt, ...) end
  end
  return l
end

return M
