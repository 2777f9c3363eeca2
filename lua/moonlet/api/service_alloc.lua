-- moonlet.api.service_alloc: cluster IPs and node ports for Services, as
-- kube-apiserver's service IP and node port allocators with their errors.
-- The IP range is a loopback CIDR (every 127.0.0.0/8 address is local on
-- Linux without configuration), so a cluster IP is an address this host
-- can listen on. What is taken is read from the stored Services at each
-- allocation: a deleted Service's values are free at once, and a restarted
-- server needs no separate allocation state.
local M = {}

local DEFAULT_CIDR = "127.100.0.0/16"
local DEFAULT_PORTS = "30000-32767"

local cfg

--- "a.b.c.d" -> integer, or nil.
function M.ip_to_int(text)
  if type(text) ~= "string" then return nil end
  local a, b, c, d = text:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  local n = 0
  for _, part in ipairs({ a, b, c, d }) do
    local v = tonumber(part)
    if v > 255 or (#part > 1 and part:sub(1, 1) == "0") then return nil end
    n = n * 256 + v
  end
  return n
end

function M.int_to_ip(n)
  return string.format("%d.%d.%d.%d", n >> 24 & 255, n >> 16 & 255, n >> 8 & 255, n & 255)
end

--- Parses "a.b.c.d/bits" -> { text, first, last } (network and broadcast
--- addresses excluded, as Kubernetes' allocator does), or nil, message.
function M.parse_cidr(text)
  local ip, bits = tostring(text):match("^([%d.]+)/(%d+)$")
  local base = M.ip_to_int(ip)
  bits = tonumber(bits)
  if not base or not bits or bits < 1 or bits > 30 then
    return nil, string.format("invalid CIDR %q: want an IPv4 a.b.c.d/N with N from 1 to 30", tostring(text))
  end
  local size = 1 << (32 - bits)
  local net = base & ~(size - 1) & 0xffffffff
  return { text = M.int_to_ip(net) .. "/" .. bits, first = net + 1, last = net + size - 2 }
end

--- Parses "lo-hi" -> { lo, hi, text }, or nil, message.
function M.parse_port_range(text)
  local lo, hi = tostring(text):match("^(%d+)%-(%d+)$")
  lo, hi = tonumber(lo), tonumber(hi)
  if not lo or not hi or lo < 1 or hi > 65535 or lo > hi then
    return nil, string.format("invalid port range %q: want lo-hi within 1-65535", tostring(text))
  end
  return { lo = lo, hi = hi, text = lo .. "-" .. hi }
end

--- Sets the ranges (server flags --service-cluster-ip-range and
--- --service-node-port-range). @return true | nil, message
function M.configure(opts)
  opts = opts or {}
  local ips, err = M.parse_cidr(opts.cidr or DEFAULT_CIDR)
  if not ips then return nil, err end
  local ports, perr = M.parse_port_range(opts.ports or DEFAULT_PORTS)
  if not ports then return nil, perr end
  -- The cursors make a released value the last to be handed out again,
  -- so a client still talking to a deleted Service's address does not
  -- reach a new one at once.
  cfg = { ips = ips, ports = ports, next_ip = ips.first, next_port = ports.lo }
  return true
end

local function config()
  if not cfg then assert(M.configure({})) end
  return cfg
end

--- The configured ranges: { ips = {text, first, last}, ports = {lo, hi, text} }.
function M.ranges()
  local c = config()
  return { ips = c.ips, ports = c.ports }
end

--- The cluster IPs and node ports of every stored Service but `skip`
--- ("ns/name"). @return ip set (text -> true), port set (number -> true)
function M.used(store, skip)
  local ips, ports = {}, {}
  if not store then return ips, ports end
  local res = store:list("services", {})
  for _, svc in ipairs(res and res.items or {}) do
    local md, spec = svc.metadata or {}, svc.spec or {}
    if (md.namespace or "") .. "/" .. (md.name or "") ~= skip then
      if type(spec.clusterIP) == "string" then ips[spec.clusterIP] = true end
      for _, p in ipairs(spec.ports or {}) do
        if math.type(p.nodePort) == "integer" then ports[p.nodePort] = true end
      end
    end
  end
  return ips, ports
end

--- A cluster IP: `want` when given (checked), else the next free one.
--- @return ip | nil, detail (the allocator's message)
function M.allocate_ip(used, want)
  local c = config()
  local r = c.ips
  if want then
    local n = M.ip_to_int(want)
    if not n or n < r.first or n > r.last then
      return nil, string.format("failed to allocate IP %s: the provided IP (%s) is not in the valid range. "
        .. "The range of valid IPs is %s", want, want, r.text)
    end
    if used[want] then
      return nil, string.format("failed to allocate IP %s: provided IP is already allocated", want)
    end
    return want
  end
  local span = r.last - r.first + 1
  for i = 0, span - 1 do
    local n = r.first + (c.next_ip - r.first + i) % span
    local ip = M.int_to_ip(n)
    if not used[ip] then
      c.next_ip = n + 1 > r.last and r.first or n + 1
      return ip
    end
  end
  return nil, "failed to allocate a serviceIP: range is full"
end

--- A node port: `want` when given (checked), else the next free one.
--- @return port | nil, detail
function M.allocate_port(used, want)
  local c = config()
  local r = c.ports
  if want then
    if want < r.lo or want > r.hi then
      return nil, string.format("provided port is not in the valid range. The range of valid ports is %s", r.text)
    end
    if used[want] then return nil, "provided port is already allocated" end
    used[want] = true
    return want
  end
  local span = r.hi - r.lo + 1
  for i = 0, span - 1 do
    local p = r.lo + (c.next_port - r.lo + i) % span
    if not used[p] then
      used[p] = true
      c.next_port = p + 1 > r.hi and r.lo or p + 1
      return p
    end
  end
  return nil, "range is full"
end

return M
