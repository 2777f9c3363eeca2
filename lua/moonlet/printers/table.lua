-- Renders meta.k8s.io/v1 Table objects the way kubectl's HumanReadablePrinter
-- does: upper-cased headers, priority-0 columns unless wide, NAMESPACE and
-- LABELS decorations, watch event prefixes, all through the kubectl
-- tabwriter. A printer object keeps state across calls for `get -w`.
local tabwriter = require("moonlet.printers.tabwriter")

local M = {}

local json = require("moonlet.json")

local function is_null(v)
  return v == nil or v == json.null
end

--- Go's fmt.Sprint of a JSON scalar: integral numbers without a fraction.
function M.cell_text(v)
  if is_null(v) then return nil end
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    if v == math.floor(v) and math.abs(v) < 2^63 then
      return string.format("%d", math.floor(v))
    end
    return string.format("%.14g", v)
  end
  if t == "boolean" then return v and "true" or "false" end
  return tostring(v)
end

--- labels.FormatLabels: `a=1,b=2` sorted by key, `<none>` when empty.
function M.format_labels(labels)
  local keys = {}
  for k in pairs(labels or {}) do keys[#keys + 1] = k end
  if #keys == 0 then return "<none>" end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = k .. "=" .. tostring(labels[k]) end
  return table.concat(parts, ",")
end

-- A cell is cut at the first line break (tabwriter would start a new row).
local function clean(s)
  local b = s:find("[\f\n\r]")
  if b then return s:sub(1, b - 1) .. "..." end
  return s
end

local EVENT = { ADDED = "ADDED   ", MODIFIED = "MODIFIED", DELETED = "DELETED ",
  ERROR = "ERROR   " }

local function same_columns(a, b)
  if a == nil or b == nil or #a ~= #b then return false end
  for i = 1, #a do
    local x, y = a[i], b[i]
    if x.name ~= y.name or x.type ~= y.type or (x.priority or 0) ~= (y.priority or 0)
      or x.format ~= y.format then
      return false
    end
  end
  return true
end

local Printer = {}
Printer.__index = Printer

--- A table printer. opts: wide, no_headers, with_namespace, show_labels,
--- label_columns (list of label keys, `-L`), kind (e.g. "configmap" to
--- prefix names `configmap/x`), out (function(s); default io.stdout:write).
function M.printer(opts)
  opts = opts or {}
  local out = opts.out or function(s) io.stdout:write(s) end
  return setmetatable({
    opts = opts,
    tw = tabwriter.kubectl(out),
    last_columns = nil,
    printed_headers = false,
  }, Printer)
end

--- Prints one Table (optionally as watch event `event_type`); flushes.
--- Headers print once per distinct column set, and not for empty tables.
function Printer:print(tbl, event_type)
  local o = self.opts
  local columns = tbl.columnDefinitions
  local no_headers = o.no_headers
  if self.printed_headers and (columns == nil or #columns == 0
      or same_columns(columns, self.last_columns)) then
    no_headers = true
  end
  if columns == nil or #columns == 0 then
    columns = self.last_columns or {}
  elseif not same_columns(columns, self.last_columns) then
    self.last_columns = columns
    self.printed_headers = false
  end
  local rows = tbl.rows or {}
  if #rows > 0 then self.printed_headers = true end

  local visible = {}
  for i, c in ipairs(columns) do
    if o.wide or (c.priority or 0) == 0 then visible[#visible + 1] = i end
  end
  local tw = self.tw
  if not no_headers and #rows > 0 then
    local h = {}
    if event_type then h[#h + 1] = "EVENT" end
    if o.with_namespace then h[#h + 1] = "NAMESPACE" end
    for _, i in ipairs(visible) do h[#h + 1] = string.upper(columns[i].name) end
    for _, l in ipairs(o.label_columns or {}) do
      h[#h + 1] = string.upper(l:match("([^/]*)$"))
    end
    if o.show_labels then h[#h + 1] = "LABELS" end
    tw:write(table.concat(h, "\t") .. "\n")
  end
  for _, row in ipairs(rows) do
    local meta = type(row.object) == "table" and type(row.object.metadata) == "table"
      and row.object.metadata or nil
    local cells = {}
    if event_type then cells[#cells + 1] = EVENT[event_type] or event_type end
    if o.with_namespace then cells[#cells + 1] = meta and meta.namespace or "" end
    local first = true
    for _, i in ipairs(visible) do
      local s = M.cell_text((row.cells or {})[i]) or ""
      if first and o.kind and columns[i].format == "name" then
        s = o.kind .. "/" .. s
      end
      first = false
      cells[#cells + 1] = clean(s)
    end
    if meta or o.show_labels or o.label_columns then
      local labels = meta and meta.labels or {}
      for _, l in ipairs(o.label_columns or {}) do cells[#cells + 1] = labels[l] or "" end
      if o.show_labels then cells[#cells + 1] = M.format_labels(labels) end
    end
    tw:write(table.concat(cells, "\t") .. "\n")
  end
  tw:flush()
end

--- Prints plain rows (list of lists of strings) with a header list, through
--- the same writer (used for client-side tables such as api-resources).
function Printer:print_rows(headers, rows)
  local tw = self.tw
  if headers and not self.opts.no_headers then
    tw:write(table.concat(headers, "\t") .. "\n")
  end
  for _, r in ipairs(rows) do tw:write(table.concat(r, "\t") .. "\n") end
  tw:flush()
end

--- Renders one table to a string (convenience for specs and describe).
function M.render(tbl, opts)
  local chunks = {}
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.out = function(s) chunks[#chunks + 1] = s end
  M.printer(o):print(tbl)
  return table.concat(chunks)
end

return M
