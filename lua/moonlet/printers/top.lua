-- `top` output as kubectl's TopCmdPrinter writes it: PodMetrics and
-- NodeMetrics as NAME CPU(cores) MEMORY(bytes) rows (CPU in whole
-- millicores rounded up, memory in whole MiB), nodes with their share of
-- the Node's allocatable (or capacity), sorted by name or, with sort_by,
-- by cpu or memory, highest first. Every cell ends in a tab, as kubectl's
-- do, and goes through its tab writer.
local quantity = require("moonlet.api.quantity")
local tabwriter = require("moonlet.printers.tabwriter")

local M = {}

M.POD_COLUMNS = { "NAME", "CPU(cores)", "MEMORY(bytes)" }
M.NODE_COLUMNS = { "NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)" }

local function q(v) return quantity.parse(v or "0") or quantity.zero() end

local function milli(v) return q(v).milli end

-- CPU in nanocores: metrics-server writes "<n>n", which the milli-unit
-- quantities of moonlet.api.quantity would round.
local function nano(v)
  local n = type(v) == "string" and v:match("^(%d+)n$")
  if n then return math.tointeger(tonumber(n)) end
  return milli(v) * 1000000
end

--- CPU as kubectl prints it: "919m" (Quantity.MilliValue(): rounded up).
--- v: a quantity text or a number of nanocores.
function M.cpu(v)
  local n = type(v) == "number" and v or nano(v)
  return string.format("%dm", (n + 999999) // 1000000)
end

--- Memory as kubectl prints it: "77Mi" (whole MiB, rounded down).
--- v: a quantity text or a number of bytes.
function M.memory(v)
  local bytes = type(v) == "number" and v or q(v):value()
  return string.format("%dMi", bytes // (1024 * 1024))
end

-- The sum of the containers' usage (kubectl's getPodMetrics).
local function pod_usage(m)
  local cpu, mem = 0, quantity.zero()
  for _, c in ipairs(m.containers or {}) do
    cpu = cpu + nano((c.usage or {}).cpu)
    mem = mem:add(q((c.usage or {}).memory))
  end
  return cpu, mem.milli
end

local function by(sort_by, usage_of, name_of)
  return function(a, b)
    if sort_by == "cpu" or sort_by == "memory" then
      local ca, ma = usage_of(a)
      local cb, mb = usage_of(b)
      local x, y = ca, cb
      if sort_by == "memory" then x, y = ma, mb end
      if x ~= y then return x > y end
    end
    return name_of(a) < name_of(b)
  end
end

local function row(cells) return table.concat(cells, "\t") .. "\t\n" end

--- PodMetrics items as text. opts: containers (a row per container),
--- namespace (a NAMESPACE column), no_headers, sort_by ("cpu"|"memory").
function M.pods(items, opts)
  opts = opts or {}
  if #items == 0 then return "" end
  local lines = {}
  if not opts.no_headers then
    local h = {}
    if opts.namespace then h[#h + 1] = "NAMESPACE" end
    if opts.containers then h[#h + 1] = "POD" end
    for _, c in ipairs(M.POD_COLUMNS) do h[#h + 1] = c end
    lines[#lines + 1] = row(h)
  end
  local sorted = {}
  for i, m in ipairs(items) do sorted[i] = m end
  table.sort(sorted, by(opts.sort_by, pod_usage, function(m)
    return (opts.namespace and m.metadata.namespace or "") .. "\0" .. m.metadata.name end))
  for _, m in ipairs(sorted) do
    local prefix = {}
    if opts.namespace then prefix[1] = m.metadata.namespace end
    if opts.containers then
      prefix[#prefix + 1] = m.metadata.name
      local cs = {}
      for i, c in ipairs(m.containers or {}) do cs[i] = c end
      table.sort(cs, by(opts.sort_by, function(c)
        return nano((c.usage or {}).cpu), milli((c.usage or {}).memory) end, function(c) return c.name end))
      for _, c in ipairs(cs) do
        local cells = { table.unpack(prefix) }
        cells[#cells + 1] = c.name
        cells[#cells + 1] = M.cpu((c.usage or {}).cpu)
        cells[#cells + 1] = M.memory((c.usage or {}).memory)
        lines[#lines + 1] = row(cells)
      end
    else
      local cpu, mem = pod_usage(m)
      local cells = prefix
      cells[#cells + 1] = m.metadata.name
      cells[#cells + 1] = M.cpu(cpu)
      cells[#cells + 1] = M.memory((mem + 999) // 1000)
      lines[#lines + 1] = row(cells)
    end
  end
  return tabwriter.format(table.concat(lines))
end

local function percent(used, available)
  if available == nil then return nil end
  local a = milli(available)
  if a == 0 then return "0%" end
  return string.format("%d%%", math.floor(milli(used) / a * 100))
end

--- NodeMetrics items as text. available: node name -> ResourceList (the
--- Node's allocatable or capacity); a node there without metrics gets a
--- row of <unknown>. opts: no_headers, sort_by.
function M.nodes(items, available, opts)
  opts = opts or {}
  if #items == 0 then return "" end
  local lines = {}
  if not opts.no_headers then lines[1] = row(M.NODE_COLUMNS) end
  local sorted, seen = {}, {}
  for i, m in ipairs(items) do sorted[i] = m end
  table.sort(sorted, by(opts.sort_by, function(m)
    return nano((m.usage or {}).cpu), milli((m.usage or {}).memory) end, function(m) return m.metadata.name end))
  for _, m in ipairs(sorted) do
    local name, u = m.metadata.name, m.usage or {}
    local av = available[name] or {}
    seen[name] = true
    -- no percentage cell at all for a node kubectl has no Node of
    local cells = { name, M.cpu(u.cpu), percent(u.cpu, av.cpu) }
    cells[#cells + 1] = M.memory(u.memory)
    cells[#cells + 1] = percent(u.memory, av.memory)
    lines[#lines + 1] = row(cells)
  end
  local missing = {}
  for name in pairs(available) do if not seen[name] then missing[#missing + 1] = name end end
  table.sort(missing)
  for _, name in ipairs(missing) do
    lines[#lines + 1] = row({ name, "<unknown>", "<unknown>", "<unknown>", "<unknown>" })
  end
  return tabwriter.format(table.concat(lines))
end

return M
