-- Readers of decoded JSON values the describers share: a field may be
-- absent, JSON null or of an unexpected type in any object they print.
local json = require("moonlet.json")

local M = {}

--- True for a table that is not JSON null.
function M.is_table(v) return type(v) == "table" and v ~= json.null end

--- The table itself, or an empty one for anything else.
function M.list(v) return M.is_table(v) and v or {} end

--- The value as text; "" for absent or null.
function M.str(v)
  if v == nil or v == json.null then return "" end
  return tostring(v)
end

return M
