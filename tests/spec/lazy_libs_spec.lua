-- A moonlet process loads libcurl, SQLite and OpenSSL only once it needs
-- them (an HTTP client, a sqlite store, TLS): CLI calls and `moonlet lua`
-- images start without relocating them. Runs the real binary (ML_BIN).
require("moonlet_core")

local BIN = assert(os.getenv("ML_BIN"), "ML_BIN not set")

-- Runs `moonlet lua` on `code`; returns its stdout.
local function run(code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local p = assert(io.popen(BIN .. " lua " .. path .. " 2>&1"))
  local out = p:read("a")
  p:close()
  os.remove(path)
  return out
end

local MAPS = [[
local function mapped(name)
  for line in io.lines("/proc/self/maps") do
    if line:find(name, 1, true) then return "yes" end
  end
  return "no"
end
]]

describe("lazily loaded libraries", function()
  it("are not mapped by a process that does not use them", function()
    local out = run(MAPS .. [[
require("moonlet.json").encode({ a = 1 })
print("curl " .. mapped("libcurl"), "sqlite " .. mapped("libsqlite3"),
  "ssl " .. mapped("libssl"), "crypto " .. mapped("libcrypto"))
]])
    assert.are.equal("curl no\tsqlite no\tssl no\tcrypto no\n", out)
  end)

  it("are loaded by the first store that needs one", function()
    local dir = os.tmpname()
    os.remove(dir)
    local out = run(MAPS .. string.format([[
local before = mapped("libsqlite3")
local s = assert(require("moonlet.store").open({ backend = "sqlite", path = %q }))
assert(s:create("configmaps", "ns", { metadata = { name = "a" } }))
s:close()
print(before, mapped("libsqlite3"))
]], dir .. ".db"))
    os.remove(dir .. ".db")
    os.remove(dir .. ".db-wal")
    assert.are.equal("no\tyes\n", out)
  end)
end)
