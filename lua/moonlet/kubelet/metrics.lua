-- Container and node usage for the resource metrics API (metrics.k8s.io),
-- sampled when asked: no timer scans /proc, so an idle server stays idle.
-- A sampler keeps the previous sample of each container; a container's
-- first answer is its average since it started (CPU time over its age),
-- later ones the rate since the previous sample, taken at least MIN_WINDOW
-- apart (a request sooner reuses the last result). One pass over /proc
-- serves every container (moonlet.core.proc.group_usage).
local files = require("moonlet.files")

local M = {}

M.MIN_WINDOW = 1.0 -- seconds between two samples of one container

local function wall() return require("moonlet.core.loop").time() end
local function mono() return require("moonlet.core.loop").hrtime() / 1e9 end

local function default_read(pgids, cgroups)
  return require("moonlet.core.proc").group_usage(pgids, { cgroups = cgroups })
end

local Sampler = {}
Sampler.__index = Sampler

--- opts (all optional, for tests): read(pgids, cgroups) -> usages,
--- boot_ns (moonlet.core.proc.group_usage's shape); wall() -> epoch
--- seconds; mono() -> monotonic seconds; read_file(path) -> text.
function M.new(opts)
  opts = opts or {}
  return setmetatable({ read = opts.read or default_read, wall = opts.wall or wall,
    mono = opts.mono or mono, read_file = opts.read_file or files.read,
    last = {}, node_last = nil }, Sampler)
end

-- {====== containers

--- Samples containers: list of { key = container id, pgid = process
--- group, cgroup = its own cgroup dir or nil, started = wall seconds of the start (when the group has no
--- leader left) }. The list is every running container of the node:
--- samples of others are dropped.
--- @return key -> { cpu_nano = nanocores, memory = bytes, timestamp =
--- wall seconds, window = seconds } (containers with no process left are
--- missing)
function Sampler:containers(list)
  local now = self.mono()
  local need = false
  for _, c in ipairs(list) do
    local p = self.last[c.key]
    if not p or now - p.mono >= M.MIN_WINDOW then need = true break end
  end
  local out, keep = {}, {}
  if not need then
    for _, c in ipairs(list) do
      keep[c.key] = self.last[c.key]
      out[c.key] = keep[c.key].result
    end
    self.last = keep
    return out
  end
  local pgids, cgroups = {}, {}
  for i, c in ipairs(list) do pgids[i], cgroups[i] = c.pgid, c.cgroup or false end
  local usages, boot_ns = self.read(pgids, cgroups)
  if not usages then return out end
  local wnow = self.wall()
  for i, c in ipairs(list) do
    local u, p = usages[i], self.last[c.key]
    if p and now - p.mono < M.MIN_WINDOW then
      keep[c.key], out[c.key] = p, p.result
    elseif u and u.procs > 0 then
      local cpu, window
      if p then
        window = (boot_ns - p.boot_ns) / 1e9
        cpu = window > 0 and (u.cpu_ns - p.cpu_ns) / window or 0
      else
        window = u.start_ns > 0 and (boot_ns - u.start_ns) / 1e9 or (wnow - (c.started or wnow))
        cpu = window > 0 and u.cpu_ns / window or 0
      end
      -- A member that ended unreaped by the group takes its CPU time
      -- along: the sum may shrink, never the usage below zero.
      if cpu < 0 then cpu = 0 end
      local result = { cpu_nano = math.floor(cpu + 0.5), memory = u.rss, timestamp = wnow,
        window = math.max(window, 0) }
      keep[c.key] = { mono = now, boot_ns = boot_ns, cpu_ns = u.cpu_ns, result = result }
      out[c.key] = result
    end
  end
  self.last = keep
  return out
end

-- }======

-- {====== node

-- /proc/stat's first line: busy and total ticks of all CPUs, and the count
-- of CPUs. Busy is all but idle and iowait (guest time is in user).
function M.parse_stat(text)
  local nums = {}
  local line = text:match("^cpu%s+([^\n]*)")
  if not line then return nil end
  for n in line:gmatch("%d+") do nums[#nums + 1] = tonumber(n) end
  local total = 0
  for i = 1, math.min(#nums, 8) do total = total + nums[i] end
  local idle = (nums[4] or 0) + (nums[5] or 0)
  local ncpu = 0
  for _ in text:gmatch("\ncpu%d+ ") do ncpu = ncpu + 1 end
  return { busy = total - idle, total = total, ncpu = math.max(ncpu, 1) }
end

--- Working set of the host: MemTotal - MemAvailable, in bytes.
function M.parse_meminfo(text)
  local total = tonumber(text:match("MemTotal:%s*(%d+)"))
  local avail = tonumber(text:match("MemAvailable:%s*(%d+)"))
  if not total or not avail then return nil end
  return (total - avail) * 1024
end

--- The host's usage, by the same window rule as a container's.
--- @return { cpu_nano, memory, timestamp, window } | nil
function Sampler:node()
  local now = self.mono()
  local p = self.node_last
  if p and now - p.mono < M.MIN_WINDOW then return p.result end
  local st = M.parse_stat(self.read_file("/proc/stat") or "")
  local mem = M.parse_meminfo(self.read_file("/proc/meminfo") or "")
  if not st or not mem then return nil end
  local cores, window
  if p and st.total > p.total then
    cores = (st.busy - p.busy) / (st.total - p.total) * st.ncpu
    window = now - p.mono
  else
    -- First sample: the average since boot.
    cores = st.total > 0 and st.busy / st.total * st.ncpu or 0
    window = tonumber((self.read_file("/proc/uptime") or ""):match("^([%d.]+)")) or 0
  end
  local result = { cpu_nano = math.floor(math.max(cores, 0) * 1e9 + 0.5), memory = mem,
    timestamp = self.wall(), window = window }
  self.node_last = { mono = now, busy = st.busy, total = st.total, result = result }
  return result
end

-- }======

-- {====== quantities as metrics-server writes them

--- CPU in nanocores: "1234n".
function M.cpu_quantity(nano) return string.format("%dn", nano) end

--- Memory: "123Ki" when whole kibibytes (pages always are), else bytes.
function M.memory_quantity(bytes)
  if bytes % 1024 == 0 then return string.format("%dKi", bytes // 1024) end
  return string.format("%d", bytes)
end

--- A window as metav1.Duration prints it ("10.012s"), to the millisecond.
function M.window(seconds)
  return require("moonlet.go_duration").format(math.floor(seconds * 1000 + 0.5) / 1000)
end

-- }======

return M
