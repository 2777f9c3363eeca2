-- moonlet.go_duration: Go's time.Duration text, which Kubernetes and
-- kubectl use for flags (--timeout=2m30s, --since=5s), probe messages and
-- back-off messages: parse() is time.ParseDuration, format() is
-- Duration.String(). Values are seconds (floats) on the Lua side.
local M = {}

local UNIT_NS = { ns = 1, us = 1e3, ["µs"] = 1e3, ["μs"] = 1e3, ms = 1e6, s = 1e9, m = 60e9, h = 3600e9 }

--- "1h30m", "-1.5s", "300ms", "0" -> seconds.
--- @return seconds | nil, Go's error text
function M.parse(s)
  if type(s) ~= "string" then return nil, "time: invalid duration " .. string.format("%q", tostring(s)) end
  local quoted = '"' .. s .. '"'
  local rest, sign = s, 1
  local c = rest:sub(1, 1)
  if c == "-" or c == "+" then
    sign = c == "-" and -1 or 1
    rest = rest:sub(2)
  end
  if rest == "0" then return 0 end
  if rest == "" then return nil, "time: invalid duration " .. quoted end
  local total = 0
  while rest ~= "" do
    local num, tail = rest:match("^(%d*%.?%d*)(.*)$")
    if num == "" or num == "." then return nil, "time: invalid duration " .. quoted end
    local unit, after = tail:match("^([^%d%.]+)(.*)$")
    if not unit then return nil, "time: missing unit in duration " .. quoted end
    local mult = UNIT_NS[unit]
    if not mult then return nil, 'time: unknown unit "' .. unit .. '" in duration ' .. quoted end
    total = total + tonumber(num) * mult
    rest = after
  end
  return sign * total / 1e9
end

-- Fraction digits of v / 10^prec without trailing zeros ("" when none).
local function frac(v, prec)
  local unit = 10 ^ prec
  local whole, part = v // unit, v % unit
  if part == 0 then return string.format("%d", whole) end
  local digits = string.format("%0" .. prec .. "d", part):gsub("0+$", "")
  return string.format("%d.%s", whole, digits)
end

--- Seconds -> Go's Duration.String(): "0s", "500ms", "1.5s", "1m30s", "1h0m0s".
function M.format(seconds)
  local ns = math.floor(seconds * 1e9 + 0.5)
  if ns == 0 then return "0s" end
  local neg = ns < 0
  if neg then ns = -ns end
  local out
  if ns < 1000 then
    out = ns .. "ns"
  elseif ns < 1000000 then
    out = frac(ns, 3) .. "µs"
  elseif ns < 1000000000 then
    out = frac(ns, 6) .. "ms"
  else
    local secs_ns = ns % 60000000000
    local mins = ns // 60000000000
    out = frac(secs_ns, 9) .. "s"
    if mins > 0 then
      out = (mins % 60) .. "m" .. out
      if mins >= 60 then out = (mins // 60) .. "h" .. out end
    end
  end
  return neg and "-" .. out or out
end

return M
