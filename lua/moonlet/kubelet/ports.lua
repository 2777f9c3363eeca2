-- Host ports for pods: every declared container port gets its own free
-- host port (the explicit hostPort when given), so replicas declaring the
-- same containerPort run side by side on one host. The mapping is fixed
-- for the pod's life (restarts keep it) and released when the pod goes.
local M = {}
local Alloc = {}
Alloc.__index = Alloc

-- Asks the kernel for a free loopback port (bind to port 0, then close:
-- libuv closes the socket at once, so the port is free for the pod).
local function kernel_port()
  local httpd = require("moonlet.httpd")
  local srv = httpd.listen("tcp://127.0.0.1:0", function(req) req:respond(503, {}, "") end)
  if not srv then return nil end
  local port = srv:port()
  srv:close()
  return port
end

--- opts: pick() -> a free port number (default: ask the kernel).
function M.new(opts)
  opts = opts or {}
  return setmetatable({ pick = opts.pick or kernel_port, used = {}, by_pod = {} }, Alloc)
end

local function port_key(c, p)
  return c.name .. "/" .. tostring(p.containerPort)
end

--- Host ports explicitly requested by a pod spec: list of numbers.
function M.requested(spec)
  local out = {}
  for _, group in ipairs({ spec.initContainers or {}, spec.containers or {} }) do
    for _, c in ipairs(group) do
      for _, p in ipairs(c.ports or {}) do
        if p.hostPort and p.hostPort > 0 then out[#out + 1] = p.hostPort end
      end
    end
  end
  return out
end

--- Allocates (once) the host ports of pod `uid` with `spec`.
--- @return map "container/containerPort" -> hostPort, or nil, message
function Alloc:assign(uid, spec)
  local have = self.by_pod[uid]
  if have then return have end
  local m, taken = {}, {}
  local function release()
    for _, hp in ipairs(taken) do self.used[hp] = nil end
  end
  for _, group in ipairs({ spec.initContainers or {}, spec.containers or {} }) do
    for _, c in ipairs(group) do
      for _, p in ipairs(c.ports or {}) do
        local hp = p.hostPort and p.hostPort > 0 and p.hostPort or nil
        if hp and self.used[hp] and self.used[hp] ~= uid then
          release()
          return nil, string.format("host port %d is already in use", hp)
        end
        if not hp then
          for _ = 1, 20 do
            local cand = self.pick()
            if cand and not self.used[cand] then hp = cand break end
          end
          if not hp then
            release()
            return nil, "no free host port"
          end
        end
        self.used[hp] = uid
        taken[#taken + 1] = hp
        m[port_key(c, p)] = hp
      end
    end
  end
  self.by_pod[uid] = m
  return m
end

--- Gives pod uid back the map it had (a kept pod adopted by a restarted
--- server), marking its ports used. @return the map
function Alloc:restore(uid, map)
  for _, hp in pairs(map) do self.used[hp] = uid end
  self.by_pod[uid] = map
  return map
end

--- The host port for container c's port given by number or name; nil if
--- the container does not declare it (then the number itself is used).
function M.lookup(map, c, port)
  for _, p in ipairs(c.ports or {}) do
    if p.containerPort == port or (type(port) == "string" and p.name == port) then
      return map and map[port_key(c, p)]
    end
  end
  return nil
end

--- The pod annotation that publishes the map, so that others (the
--- endpoints controller) can find the host port behind a container port.
M.ANNOTATION = "moonlet.dev/host-ports"

--- The annotation's value for a map: JSON with sorted keys, so the same
--- map always gives the same text. nil for an empty map.
function M.encode(map)
  local keys = {}
  for k in pairs(map or {}) do keys[#keys + 1] = k end
  if #keys == 0 then return nil end
  table.sort(keys)
  local json = require("moonlet.json")
  for i, k in ipairs(keys) do keys[i] = json.encode(k) .. ":" .. tostring(map[k]) end
  return "{" .. table.concat(keys, ",") .. "}"
end

--- The map a pod's annotation publishes, or nil.
function M.published(pod)
  local text = (((pod or {}).metadata or {}).annotations or {})[M.ANNOTATION]
  if type(text) ~= "string" then return nil end
  local ok, map = pcall(require("moonlet.json").decode, text)
  if ok and type(map) == "table" then return map end
  return nil
end

--- Frees the ports of pod uid.
function Alloc:release(uid)
  local m = self.by_pod[uid]
  if not m then return end
  for _, hp in pairs(m) do
    if self.used[hp] == uid then self.used[hp] = nil end
  end
  self.by_pod[uid] = nil
end

--- Environment entries for container c: PORT (first port), and per port
--- PORT_<NAME> (name upper-cased, '-' as '_') and PORT_<containerPort>.
function M.env(map, c)
  local out = {}
  for i, p in ipairs(c.ports or {}) do
    local hp = map and map[port_key(c, p)]
    if hp then
      if i == 1 then out[#out + 1] = { "PORT", tostring(hp) } end
      if p.name and p.name ~= "" then
        out[#out + 1] = { "PORT_" .. p.name:upper():gsub("[^%w]", "_"), tostring(hp) }
      end
      out[#out + 1] = { "PORT_" .. tostring(p.containerPort), tostring(hp) }
    end
  end
  return out
end

return M
