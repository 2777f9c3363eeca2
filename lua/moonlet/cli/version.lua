-- `moonlet version`: client and server versions (kubectl's layout), or
-- both as JSON/YAML with -o.
local common = require("moonlet.cli.common")

local M = {}

M.usage = "Usage:\n  moonlet version [flags]"

M.flags = {
  { name = "client", type = "bool", help = "If true, shows client version only (no server required)." },
  { name = "output", short = "o", type = "string", help = "One of 'yaml' or 'json'." },
}

local function client_version()
  local ok, main = pcall(require, "moonlet.main")
  local v = ok and main.VERSION or "0.0.0"
  return { major = v:match("^(%d+)") or "0", minor = v:match("^%d+%.(%d+)") or "0",
    gitVersion = "v" .. v, goVersion = _VERSION, compiler = "moonlet", platform = "linux" }
end

function M.run(ctx, argv)
  local f = ctx.flags
  if #argv > 0 then common.fail("unexpected arguments: " .. table.concat(argv, " ")) end
  local fmt = f.output
  if fmt and fmt ~= "json" and fmt ~= "yaml" then
    common.fail("--output must be 'yaml' or 'json'")
  end
  local cv = client_version()
  local sv, st
  if not f.client then sv, st = common.client(ctx):version() end
  if fmt then
    local doc = { clientVersion = cv, serverVersion = sv }
    ctx.out(fmt == "json" and common.to_json(doc) or common.to_yaml(doc))
  else
    ctx.out("Client Version: " .. cv.gitVersion .. "\n")
    if sv then ctx.out("Server Version: " .. tostring(sv.gitVersion) .. "\n") end
  end
  if not f.client and not sv then common.fail_status(ctx, st) end
  return 0
end

return M
