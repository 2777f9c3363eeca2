-- Elastic-tabstop column alignment with the exact behaviour of Go's
-- text/tabwriter as kubectl uses it (the liggitt fork: RememberWidths keeps
-- column widths across flushes, so `get -w` rows stay aligned).
-- Cells are tab-terminated; the last cell of a line is not part of a column
-- and is never padded. Widths count UTF-8 code points like Go's RuneCount.
local M = {}
M.__index = M

--- New writer. opts: minwidth, tabwidth, padding, padchar (" "),
--- remember_widths (bool), out (function(s) called with formatted text;
--- default collects into w:result()).
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({
    minwidth = opts.minwidth or 0,
    tabwidth = opts.tabwidth or 8,
    padding = opts.padding or 1,
    padchar = opts.padchar or " ",
    remember = opts.remember_widths or false,
    out = opts.out,
    chunks = {},
    maxwidths = {},
  }, M)
  self:_reset()
  return self
end

--- The writer kubectl's printers use: minwidth 6, tabwidth 4, padding 3,
--- spaces, RememberWidths.
function M.kubectl(out)
  return M.new { minwidth = 6, tabwidth = 4, padding = 3, padchar = " ",
    remember_widths = true, out = out }
end

function M:_reset()
  self.lines = { {} } -- each line: list of { text=, width=, htab= }
  self.cell = {}      -- text pieces of the cell being built
  self.widths = {}
end

local function runes(s)
  return utf8.len(s) or #s
end

function M:_emit(s)
  if s == "" then return end
  if self.out then self.out(s) else self.chunks[#self.chunks + 1] = s end
end

local function terminate_cell(self, htab)
  local text = table.concat(self.cell)
  local line = self.lines[#self.lines]
  line[#line + 1] = { text = text, width = runes(text), htab = htab }
  self.cell = {}
  return #line
end

--- Buffers `s`; complete single-cell lines flush like Go's Write does.
function M:write(s)
  local i, n = 1, #s
  while i <= n do
    local j = s:find("[\t\v\n\f]", i)
    if not j then
      self.cell[#self.cell + 1] = s:sub(i)
      break
    end
    self.cell[#self.cell + 1] = s:sub(i, j - 1)
    local ch = s:sub(j, j)
    local ncells = terminate_cell(self, ch == "\t")
    if ch == "\n" or ch == "\f" then
      self.lines[#self.lines + 1] = {}
      if ch == "\f" or ncells == 1 then self:flush() end
    end
    i = j + 1
  end
  return self
end

function M:_padding(textw, cellw)
  if self.padchar == "\t" then
    if self.tabwidth == 0 then return end
    cellw = (cellw + self.tabwidth - 1) // self.tabwidth * self.tabwidth
    local n = cellw - textw
    self:_emit(string.rep("\t", (n + self.tabwidth - 1) // self.tabwidth))
    return
  end
  if cellw > textw then self:_emit(string.rep(self.padchar, cellw - textw)) end
end

function M:_write_lines(line0, line1)
  for i = line0, line1 - 1 do
    local line = self.lines[i]
    for j, c in ipairs(line) do
      if c.text ~= "" then self:_emit(c.text) end
      if j <= #self.widths then self:_padding(c.width, self.widths[j]) end
    end
    if i == #self.lines then
      -- last buffered line has no newline: write the open cell as is
      self:_emit(table.concat(self.cell))
    else
      self:_emit("\n")
    end
  end
end

-- Formats lines [line0, line1): finds blocks of consecutive lines that have
-- a cell in the current column, sizes that column over the block, recurses
-- for the columns to its right.
function M:_format(line0, line1)
  local column = #self.widths + 1
  local this = line0
  while this < line1 do
    local line = self.lines[this]
    if column < #line then
      self:_write_lines(line0, this)
      line0 = this
      local width = self.minwidth
      while this < line1 do
        line = self.lines[this]
        if column >= #line then break end
        local w = line[column].width + self.padding
        if w > width then width = w end
        this = this + 1
      end
      if self.remember then
        local mw = self.maxwidths
        for k = #mw + 1, #self.widths do mw[k] = self.widths[k] end
        if #mw == #self.widths then
          mw[#mw + 1] = width
        elseif mw[column] > width then
          width = mw[column]
        elseif mw[column] < width then
          mw[column] = width
        end
      end
      self.widths[column] = width
      self:_format(line0, this)
      self.widths[column] = nil
      line0 = this
    else
      this = this + 1
    end
  end
  self:_write_lines(line0, line1)
end

--- Formats and emits everything buffered.
function M:flush()
  if #self.cell > 0 and table.concat(self.cell) ~= "" then
    terminate_cell(self, false)
  end
  self:_format(1, #self.lines + 1)
  self:_reset()
  return self
end

--- Collected output when no `out` function was given (clears it).
function M:result()
  local s = table.concat(self.chunks)
  self.chunks = {}
  return s
end

--- One-shot helper: aligns `text` with the kubectl writer settings.
function M.format(text, opts)
  local w = opts and M.new(opts) or M.kubectl()
  w:write(text)
  w:flush()
  return w:result()
end

return M
