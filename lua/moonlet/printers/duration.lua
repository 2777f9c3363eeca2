-- Human-readable durations and timestamps as kubectl prints them: AGE
-- columns, event ages (apimachinery's HumanDuration), RFC 3339 parsing and
-- the RFC 1123Z form describe uses. Shared by the server and the CLI.
local M = {}

local floor = math.floor

local function tdiv(a, b) -- Go integer division truncates toward zero
  local q = a / b
  return q >= 0 and floor(q) or -floor(-q)
end

--- Formats `seconds` (a number, may be fractional or negative) exactly as
--- HumanDuration does: `119s`, `4m9s`, `179m`, `7h5m`, `2d3h`, `3y12d`.
function M.human(seconds)
  local s = tdiv(seconds, 1)
  if s < -1 then return "<invalid>" end
  if s < 0 then return "0s" end
  if s < 120 then return string.format("%ds", s) end
  local minutes = tdiv(s, 60)
  if minutes < 10 then
    local rest = s % 60
    if rest == 0 then return string.format("%dm", minutes) end
    return string.format("%dm%ds", minutes, rest)
  end
  if minutes < 180 then return string.format("%dm", minutes) end
  local hours = tdiv(s, 3600)
  if hours < 8 then
    local m = minutes % 60
    if m == 0 then return string.format("%dh", hours) end
    return string.format("%dh%dm", hours, m)
  end
  if hours < 48 then return string.format("%dh", hours) end
  if hours < 24 * 8 then
    local h = hours % 24
    if h == 0 then return string.format("%dd", hours // 24) end
    return string.format("%dd%dh", hours // 24, h)
  end
  if hours < 24 * 365 * 2 then return string.format("%dd", hours // 24) end
  if hours < 24 * 365 * 8 then
    local dy = (hours // 24) % 365
    if dy == 0 then return string.format("%dy", hours // 24 // 365) end
    return string.format("%dy%dd", hours // 24 // 365, dy)
  end
  return string.format("%dy", hours // 24 // 365)
end

--- The older short form (ShortHumanDuration): `59s`, `59m`, `23h`, `364d`, `2y`.
function M.short(seconds)
  local s = tdiv(seconds, 1)
  if s < -1 then return "<invalid>" end
  if s < 0 then return "0s" end
  if s < 60 then return string.format("%ds", s) end
  local m = s // 60
  if m < 60 then return string.format("%dm", m) end
  local h = m // 60
  if h < 24 then return string.format("%dh", h) end
  if h < 24 * 365 then return string.format("%dd", h // 24) end
  return string.format("%dy", h // 24 // 365)
end

-- The proleptic Gregorian calendar of moonlet.tz, so nothing depends on
-- the process' time zone (os.time is local time).
local days_from_civil = require("moonlet.tz").days_from_civil
local civil_from_days = require("moonlet.tz").civil_from_days

--- Parses an RFC 3339 timestamp (`2024-05-01T10:00:00Z`, fractions and
--- offsets allowed) into Unix seconds (float); nil for anything else.
function M.parse(ts)
  if type(ts) ~= "string" then return nil end
  local y, mo, d, h, mi, s, rest =
    ts:match("^(%d%d%d%d)-(%d%d)-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil end
  local frac = 0
  local f = rest:match("^%.(%d+)")
  if f then
    frac = tonumber("0." .. f)
    rest = rest:sub(#f + 2)
  end
  local off = 0
  if rest == "Z" or rest == "z" then
    off = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):(%d%d)$")
    if not sign then return nil end
    off = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  local days = days_from_civil(tonumber(y), tonumber(mo), tonumber(d))
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
    + frac - off
end

--- Unix seconds -> `2006-01-02T15:04:05Z` (UTC, whole seconds).
function M.format_rfc3339(t)
  t = floor(t)
  local days, secs = t // 86400, t % 86400
  local y, m, d = civil_from_days(days)
  return string.format("%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d,
    secs // 3600, secs % 3600 // 60, secs % 60)
end

local WDAY = { "Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed" }
local MON = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
  "Oct", "Nov", "Dec" }

--- Unix seconds -> RFC 1123Z in UTC (`Mon, 02 Jan 2006 15:04:05 +0000`), the
--- form describe prints times in.
function M.format_rfc1123z(t)
  t = floor(t)
  local days, secs = t // 86400, t % 86400
  local y, m, d = civil_from_days(days)
  return string.format("%s, %02d %s %04d %02d:%02d:%02d +0000",
    WDAY[days % 7 + 1], d, MON[m], y, secs // 3600, secs % 3600 // 60, secs % 60)
end

--- HumanDuration of now - timestamp; `<unknown>` for a missing timestamp.
--- `now` defaults to the wall clock.
function M.since(ts, now)
  local t = M.parse(ts)
  if not t then return "<unknown>" end
  return M.human((now or os.time()) - t)
end

return M
