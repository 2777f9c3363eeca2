-- moonlet.svc_proxy: the Service proxy's listeners, by address. Each is a
-- C relay (moonlet.core.svc_proxy) that copies bytes on the loop with no
-- Lua per connection; this module only opens, retargets and closes them.
-- State lives here, not in the controller plugin, so a script reload
-- (SIGHUP) finds the listeners still bound and keeps them.
local core = require("moonlet.core.svc_proxy")

local M = {}

-- "host:port" -> { proxy = userdata, owner = Service key, backends = text }
local open = {}

local function close(addr)
  open[addr].proxy:close()
  open[addr] = nil
end

--- Makes the listeners of Service `key` exactly `want`: addr ->
--- { host =, port =, backends = {"ip:port", ...} }. Listeners of the key
--- not wanted any more close; new ones open; all get their backends.
--- @return list of { addr =, message = } for addresses that cannot be
--- listened on (in use, privileged port, taken by another Service)
function M.sync(key, want)
  for addr, l in pairs(open) do
    if l.owner == key and not want[addr] then close(addr) end
  end
  local failures = {}
  local addrs = {}
  for addr in pairs(want) do addrs[#addrs + 1] = addr end
  table.sort(addrs)
  for _, addr in ipairs(addrs) do
    local w = want[addr]
    local l = open[addr]
    if l and l.owner ~= key then
      failures[#failures + 1] = { addr = addr, message = "address in use by Service " .. l.owner }
    else
      if not l then
        local p, err = core.listen(w.host, w.port)
        if p then
          l = { proxy = p, owner = key }
          open[addr] = l
        else
          failures[#failures + 1] = { addr = addr, message = err }
        end
      end
      if l then
        local list = {}
        for i, b in ipairs(w.backends) do list[i] = b end
        table.sort(list)
        local text = table.concat(list, ",")
        if text ~= l.backends then
          assert(l.proxy:set_backends(list))
          l.backends = text
        end
      end
    end
  end
  return failures
end

--- Counters of the listener on addr ({accepted, rejected, active,
--- bytes_in, bytes_out}), or nil when none is open there.
function M.stats(addr)
  local l = open[addr]
  return l and l.proxy:stats()
end

--- The addresses listened on for Service `key` (all when key is nil).
function M.addresses(key)
  local out = {}
  for addr, l in pairs(open) do
    if key == nil or l.owner == key then out[#out + 1] = addr end
  end
  table.sort(out)
  return out
end

--- Closes every listener (server stop).
function M.close_all()
  for addr in pairs(open) do close(addr) end
end

return M
