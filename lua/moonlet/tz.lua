-- moonlet.tz: IANA time zones from the system tz database (TZif files under
-- /usr/share/zoneinfo or $ZONEINFO, package tzdata, with the POSIX rule for
-- times past the last transition), civil time with Go's time.Date
-- normalisation (what robfig/cron's Next relies on around DST changes) and
-- RFC 3339 / RFC 1123Z text. Times are unix seconds; no TZ tricks.
local M = {}

local floor = math.floor
local ALPHA, OMEGA = math.mininteger, math.maxinteger
-- Rule-based transitions past the file's last one are generated up to here.
local EXTEND_UNTIL_YEAR = 2200

-- {====== civil calendar (proleptic Gregorian, days since 1970-01-01)

local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = (z >= 0 and z or z - 146096) // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  return m <= 2 and y + 1 or y, m, d
end

--- Days since 1970-01-01 of y-m-d, and back (proleptic Gregorian).
M.days_from_civil, M.civil_from_days = days_from_civil, civil_from_days

local function is_leap(y) return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) end

local MDAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
local function days_in_month(y, m)
  if m == 2 and is_leap(y) then return 29 end
  return MDAYS[m]
end

M.days_from_civil, M.civil_from_days, M.days_in_month = days_from_civil, civil_from_days, days_in_month

-- }======

-- {====== zones

local Zone = {}
Zone.__index = Zone

--- The zone in force at unix second `sec`: offset (seconds east of UTC),
--- abbreviation, isdst, and the [start, end) range it holds for (Go's
--- Location.lookup, which time.Date needs to settle an offset).
function Zone:lookup(sec)
  local tx = self.tx
  if #tx == 0 or sec < tx[1].at then
    local t = self.types[self.first]
    return t.off, t.abbr, t.isdst, ALPHA, (#tx > 0 and tx[1].at or OMEGA)
  end
  local lo, hi, stop = 1, #tx + 1, OMEGA
  while hi - lo > 1 do
    local mid = (lo + hi) // 2
    if sec < tx[mid].at then stop = tx[mid].at; hi = mid else lo = mid end
  end
  local t = self.types[tx[lo].type]
  return t.off, t.abbr, t.isdst, tx[lo].at, stop
end

--- Offset (seconds east of UTC) at unix second `sec`.
function Zone:offset(sec)
  return (self:lookup(sec))
end

function Zone:__tostring() return "zone " .. self.name end

local function fixed_zone(name, off)
  return setmetatable({ name = name, tx = {}, types = { { off = off, abbr = name, isdst = false } }, first = 1 },
    Zone)
end

--- A zone with a constant offset (seconds east of UTC).
function M.fixed(off, name)
  if not name then
    if off == 0 then name = "UTC" else
      local a = math.abs(off)
      name = string.format("%s%02d:%02d", off < 0 and "-" or "+", a // 3600, (a % 3600) // 60)
    end
  end
  return fixed_zone(name, off)
end

M.utc = fixed_zone("UTC", 0)

-- POSIX TZ footer: "EST5EDT,M3.2.0,M11.1.0", "<-03>3", "CET-1CEST,M3.5.0,M10.5.0/3".
local function posix_name(s, i)
  if s:sub(i, i) == "<" then
    local j = s:find(">", i, true)
    if not j then return nil end
    return s:sub(i + 1, j - 1), j + 1
  end
  local j = i
  while j <= #s and s:sub(j, j):match("%a") do j = j + 1 end
  if j - i < 3 then return nil end
  return s:sub(i, j - 1), j
end

-- [+-]hh[:mm[:ss]] -> seconds, next index
local function posix_hms(s, i)
  local sign = 1
  local c = s:sub(i, i)
  if c == "+" then i = i + 1 elseif c == "-" then sign = -1; i = i + 1 end
  local h, j = s:match("^(%d+)()", i)
  if not h then return nil end
  local total = tonumber(h) * 3600
  i = j
  for _, mul in ipairs({ 60, 1 }) do
    local v, k = s:match("^:(%d+)()", i)
    if not v then break end
    total = total + tonumber(v) * mul
    i = k
  end
  return sign * total, i
end

local function posix_rule(s, i)
  local r = {}
  local c = s:sub(i, i)
  if c == "M" then
    local m, w, d, j = s:match("^M(%d+)%.(%d+)%.(%d+)()", i)
    if not m then return nil end
    r.kind, r.m, r.w, r.d, i = "M", tonumber(m), tonumber(w), tonumber(d), j
  elseif c == "J" then
    local n, j = s:match("^J(%d+)()", i)
    if not n then return nil end
    r.kind, r.n, i = "J", tonumber(n), j
  else
    local n, j = s:match("^(%d+)()", i)
    if not n then return nil end
    r.kind, r.n, i = "N", tonumber(n), j
  end
  r.time = 7200
  if s:sub(i, i) == "/" then
    local t, j = posix_hms(s, i + 1)
    if not t then return nil end
    r.time, i = t, j
  end
  return r, i
end

local function parse_posix(s)
  local std, i = posix_name(s, 1)
  if not std then return nil end
  local off
  off, i = posix_hms(s, i)
  if not off then return nil end
  local rule = { std = std, std_off = -off }
  if i > #s then return rule end
  local dst
  dst, i = posix_name(s, i)
  if not dst then return nil end
  rule.dst, rule.dst_off = dst, rule.std_off + 3600
  if i <= #s and s:sub(i, i) ~= "," then
    local o
    o, i = posix_hms(s, i)
    if not o then return nil end
    rule.dst_off = -o
  end
  if i > #s then
    rule.start, rule.stop = posix_rule("M3.2.0", 1), posix_rule("M11.1.0", 1)
    return rule
  end
  if s:sub(i, i) ~= "," then return nil end
  rule.start, i = posix_rule(s, i + 1)
  if not rule.start or s:sub(i, i) ~= "," then return nil end
  rule.stop, i = posix_rule(s, i + 1)
  if not rule.stop or i <= #s then return nil end
  return rule
end

-- Local day number (days since epoch) a POSIX rule names in year y.
local function rule_day(r, y)
  if r.kind == "J" then -- 1..365, Feb 29 never counted
    local d = r.n
    if is_leap(y) and d >= 60 then d = d + 1 end
    return days_from_civil(y, 1, 1) + d - 1
  elseif r.kind == "N" then -- 0..365, Feb 29 counted
    return days_from_civil(y, 1, 1) + r.n
  end
  local first = days_from_civil(y, r.m, 1)
  local wd = (first + 4) % 7 -- 1970-01-01 was a Thursday
  local day = 1 + (r.d - wd) % 7
  for _ = 2, r.w do
    if day + 7 > days_in_month(y, r.m) then break end
    day = day + 7
  end
  return first + day - 1
end

-- Appends the footer's DST transitions after the file's last transition.
local function extend(zone, rule, from_year)
  if not rule.dst then
    if #zone.tx == 0 then
      zone.types[#zone.types + 1] = { off = rule.std_off, abbr = rule.std, isdst = false }
      zone.first = #zone.types
    end
    return
  end
  local types = zone.types
  types[#types + 1] = { off = rule.std_off, abbr = rule.std, isdst = false }
  local std_i = #types
  types[#types + 1] = { off = rule.dst_off, abbr = rule.dst, isdst = true }
  local dst_i = #types
  local last = #zone.tx > 0 and zone.tx[#zone.tx].at or ALPHA
  local gen = {}
  for y = from_year, EXTEND_UNTIL_YEAR do
    -- start: local standard time; stop: local daylight time.
    gen[#gen + 1] = { at = rule_day(rule.start, y) * 86400 + rule.start.time - rule.std_off, type = dst_i }
    gen[#gen + 1] = { at = rule_day(rule.stop, y) * 86400 + rule.stop.time - rule.dst_off, type = std_i }
  end
  table.sort(gen, function(a, b) return a.at < b.at end)
  for _, t in ipairs(gen) do
    if t.at > last then zone.tx[#zone.tx + 1] = t; last = t.at end
  end
end

-- Go's lookupFirstZone: the zone for times before the first transition.
local function first_zone(types, tx)
  local used = {}
  for _, t in ipairs(tx) do used[t.type] = true end
  if not used[1] then return 1 end
  if #tx > 0 and types[tx[1].type].isdst then
    for i = tx[1].type - 1, 1, -1 do
      if not types[i].isdst then return i end
    end
  end
  for i, t in ipairs(types) do
    if not t.isdst then return i end
  end
  return 1
end

local parse_tzif

--- Parses TZif data (RFC 8536, v1..v4). Truncated or inconsistent data
--- (a damaged file) is "malformed", never a Lua error.
--- @return zone | nil, message
function M.parse_tzif(data, name)
  local ok, z, err = pcall(parse_tzif, data, name)
  if not ok then return nil, "malformed time zone information" end
  return z, err
end

parse_tzif = function(data, name)
  if type(data) ~= "string" or data:sub(1, 4) ~= "TZif" then return nil, "malformed time zone information" end
  local version = data:sub(5, 5)
  local function header(pos)
    local isutc, isstd, leap, time, typ, char = string.unpack(">i4i4i4i4i4i4", data, pos + 20)
    local h = { isutc = isutc, isstd = isstd, leap = leap, time = time, type = typ, char = char }
    -- Counts a damaged file may claim: each must fit in the bytes left, so
    -- nothing is allocated for data that is not there.
    for _, n in pairs(h) do
      if n < 0 or n > #data then error("malformed", 0) end
    end
    return h
  end
  local h, pos, tsize = header(1), 45, 4
  if version >= "2" then
    -- Skip the v1 block; the v2 block has 64-bit times.
    pos = pos + h.time * 5 + h.type * 6 + h.char + h.leap * 8 + h.isstd + h.isutc
    h = header(pos)
    pos, tsize = pos + 44, 8
  end
  local need = h.time * (tsize + 1) + h.type * 6 + h.char + h.leap * (tsize + 4) + h.isstd + h.isutc
  if pos + need - 1 > #data then return nil, "malformed time zone information" end
  local fmt = tsize == 8 and ">i8" or ">i4"
  local tx = {}
  for i = 1, h.time do
    tx[i] = { at = (string.unpack(fmt, data, pos + (i - 1) * tsize)) }
  end
  pos = pos + h.time * tsize
  for i = 1, h.time do
    tx[i].type = data:byte(pos + i - 1) + 1
  end
  pos = pos + h.time
  local types, raw = {}, {}
  for i = 1, h.type do
    local off, isdst, idx = string.unpack(">i4BB", data, pos + (i - 1) * 6)
    raw[i] = idx
    types[i] = { off = off, isdst = isdst ~= 0 }
  end
  pos = pos + h.type * 6
  local chars = data:sub(pos, pos + h.char - 1)
  for i, t in ipairs(types) do
    t.abbr = chars:match("^[^%z]*", raw[i] + 1) or ""
  end
  pos = pos + h.char + h.leap * (tsize + 4) + h.isstd + h.isutc
  if #types == 0 then return nil, "malformed time zone information" end
  local zone = setmetatable({ name = name or "", tx = tx, types = types }, Zone)
  zone.first = first_zone(types, tx)
  if tsize == 8 then
    local footer = data:match("^\n([^\n]*)\n", pos)
    local rule = footer and footer ~= "" and parse_posix(footer)
    if rule then
      local from = #tx > 0 and (civil_from_days(tx[#tx].at // 86400)) or 1970
      extend(zone, rule, from)
    end
  end
  return zone
end

local function zoneinfo_dirs()
  local dirs = {}
  local env = os.getenv("ZONEINFO")
  if env and env ~= "" then dirs[1] = env end
  for _, d in ipairs({ "/usr/share/zoneinfo", "/usr/share/lib/zoneinfo", "/usr/lib/locale/TZ",
    "/etc/zoneinfo" }) do dirs[#dirs + 1] = d end
  return dirs
end

local read_file = require("moonlet.files").read

local cache = {}

M.LOCAL = "Local"

--- Loads an IANA zone by name as Go's time.LoadLocation does: "" and
--- "UTC" are UTC, "Local" is the process's local zone (M.local_zone()).
--- @return zone | nil, message ("unknown time zone X" as Go says it)
function M.load(name)
  if name == "" or name == "UTC" then return M.utc end
  if name == "Local" then return M.local_zone() end
  if cache[name] then return cache[name] end
  if name:find("..", 1, true) or name:sub(1, 1) == "/" or name:sub(1, 1) == "\\" then
    return nil, "time: invalid location name"
  end
  for _, dir in ipairs(zoneinfo_dirs()) do
    local data = read_file(dir .. "/" .. name)
    if data then
      local z = M.parse_tzif(data, name)
      if z then
        cache[name] = z
        return z
      end
    end
  end
  return nil, "unknown time zone " .. name
end

local local_zone
--- The local zone as Go's initLocal finds it: $TZ ("" = UTC, ":Name" or
--- "Name" or an absolute path), else /etc/localtime; UTC when unreadable.
function M.local_zone()
  if local_zone then return local_zone end
  local env = os.getenv("TZ")
  local z
  if env == nil then
    local data = read_file("/etc/localtime")
    z = data and M.parse_tzif(data, "Local")
  elseif env ~= "" then
    env = env:gsub("^:", "")
    if env:sub(1, 1) == "/" then
      local data = read_file(env)
      z = data and M.parse_tzif(data, "Local")
    elseif env ~= "UTC" then
      z = M.load(env)
    end
  end
  local_zone = z or M.utc
  return local_zone
end

--- A zone from a name or a zone object (nil -> local zone).
function M.zone(z)
  if z == nil then return M.local_zone() end
  if type(z) == "string" then return M.load(z) end
  return z
end

-- }======

-- {====== civil fields and Go's time.Date

--- Civil fields of unix second `sec` in `zone`: year, month, day, hour,
--- min, sec, weekday (0 = Sunday), offset.
function M.fields(sec, zone)
  local s = floor(sec)
  local off = zone:offset(s)
  local l = s + off
  local days = l // 86400
  local rem = l - days * 86400
  local y, m, d = civil_from_days(days)
  return y, m, d, rem // 3600, (rem % 3600) // 60, rem % 60, (days + 4) % 7, off
end

local function norm(hi, lo, base)
  if lo < 0 then
    local n = (-lo - 1) // base + 1
    hi, lo = hi - n, lo + n * base
  end
  if lo >= base then
    local n = lo // base
    hi, lo = hi + n, lo - n * base
  end
  return hi, lo
end

--- Go's time.Date(y, mo, d, h, mi, s, 0, zone): out-of-range fields
--- overflow into the next larger one; a wall time that does not exist or
--- exists twice around a zone change resolves as Go resolves it.
--- @return unix seconds
function M.date(y, mo, d, h, mi, s, zone)
  local m0
  y, m0 = norm(y, mo - 1, 12)
  mi, s = norm(mi, s, 60)
  h, mi = norm(h, mi, 60)
  d, h = norm(d, h, 24)
  local unix = (days_from_civil(y, m0 + 1, 1) + d - 1) * 86400 + h * 3600 + mi * 60 + s
  local off, _, _, start, stop = zone:lookup(unix)
  if off ~= 0 then
    local utc = unix - off
    if utc < start or utc >= stop then off = zone:lookup(utc) end
    unix = unix - off
  end
  return unix
end

-- }======

-- {====== formatting and parsing

local function fmt_offset(off, colon)
  local a = math.abs(off)
  return string.format(colon and "%s%02d:%02d" or "%s%02d%02d", off < 0 and "-" or "+", a // 3600, (a % 3600) // 60)
end

--- RFC 3339 (Go's time.RFC3339) of unix second `sec` in `zone` (default
--- UTC): "2016-05-19T10:00:00Z" or "2016-05-19T06:00:00-04:00".
function M.rfc3339(sec, zone)
  local y, m, d, h, mi, s, _, off = M.fields(sec, zone or M.utc)
  local z = off == 0 and "Z" or fmt_offset(off, true)
  return string.format("%04d-%02d-%02dT%02d:%02d:%02d%s", y, m, d, h, mi, s, z)
end

local WD = { [0] = "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }
local MON = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }

--- RFC 1123Z (Go's time.RFC1123Z) in `zone` (default UTC):
--- "Thu, 19 May 2016 10:00:00 +0000".
function M.rfc1123z(sec, zone)
  local y, m, d, h, mi, s, wd, off = M.fields(sec, zone or M.utc)
  return string.format("%s, %02d %s %04d %02d:%02d:%02d %s", WD[wd], d, MON[m], y, h, mi, s, fmt_offset(off, false))
end

--- Parses RFC 3339 ("2016-05-19T10:00:00Z", "...T10:00:00.5-04:00").
--- @return unix seconds (fractional when the text has a fraction), offset
--- seconds east of UTC | nil
function M.parse_rfc3339(text)
  if type(text) ~= "string" then return nil end
  local y, mo, d, h, mi, s, frac, zone = text:match(
    "^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt](%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$")
  if not y then return nil end
  local off
  if zone == "Z" or zone == "z" then off = 0 else
    local sign, oh, om = zone:match("^([+-])(%d%d):(%d%d)$")
    if not sign then return nil end
    off = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  local unix = (days_from_civil(tonumber(y), tonumber(mo), tonumber(d))) * 86400
    + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s) - off
  if frac ~= "" and frac ~= "." then unix = unix + tonumber("0" .. frac) end
  return unix, off
end

-- }======

return M
