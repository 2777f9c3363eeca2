-- moonlet.cron: the cron parser Kubernetes' CronJob uses (robfig/cron v3
-- ParseStandard: 5 fields, ranges, steps, names, `?`, the day-of-month /
-- day-of-week star rule, @descriptors, @every, a TZ=/CRON_TZ= prefix) with
-- robfig's error texts, and Next(): the first activation strictly after a
-- time, in a zone, with robfig's DST handling.
local tz = require("moonlet.tz")

local M = {}

local STAR = 1 << 63 -- set when a field was `*` or `?` (with step 1)

local function bounds(min, max, names) return { min = min, max = max, names = names } end

M.bounds = {
  seconds = bounds(0, 59), minutes = bounds(0, 59), hours = bounds(0, 23), dom = bounds(1, 31),
  months = bounds(1, 12, { jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6, jul = 7, aug = 8, sep = 9,
    oct = 10, nov = 11, dec = 12 }),
  dow = bounds(0, 6, { sun = 0, mon = 1, tue = 2, wed = 3, thu = 4, fri = 5, sat = 6 }),
}
local B = M.bounds
M.STAR = STAR

-- {====== fields

--- Bits min..max every step (robfig's getBits).
function M.get_bits(min, max, step)
  local bits = 0
  for i = min, max, step do bits = bits | (1 << i) end
  return bits
end

--- Every value of a field's bounds, with the star flag (robfig's all()).
function M.all(r) return M.get_bits(r.min, r.max, 1) | STAR end

-- Go's strconv.Atoi with its error texts.
local function atoi(s)
  local sign, digits = s:match("^([+-]?)(%d+)$")
  if not digits then
    return nil, string.format('strconv.Atoi: parsing "%s": invalid syntax', s)
  end
  local n = math.tointeger(tonumber(digits))
  if not n or #digits > 18 then
    return nil, string.format('strconv.Atoi: parsing "%s": value out of range', s)
  end
  return sign == "-" and -n or n
end

local function must_parse_int(expr)
  local n, err = atoi(expr)
  if not n then return nil, string.format("failed to parse int from %s: %s", expr, err) end
  if n < 0 then return nil, string.format("negative number (%d) not allowed: %s", n, expr) end
  return n
end

local function parse_int_or_name(expr, names)
  if names then
    local v = names[expr:lower()]
    if v then return v end
  end
  return must_parse_int(expr)
end

local function split(s, sep)
  local out, i = {}, 1
  while true do
    local j = s:find(sep, i, true)
    if not j then out[#out + 1] = s:sub(i); return out end
    out[#out + 1] = s:sub(i, j - 1)
    i = j + 1
  end
end

--- One range expression ("5", "1-5", "*/2", "mon-fri/2") within bounds r.
--- @return bits | nil, message
function M.get_range(expr, r)
  local range_step = split(expr, "/")
  local low_high = split(range_step[1], "-")
  local single = #low_high == 1
  local start, stop, step, extra, err = nil, nil, nil, 0, nil
  if low_high[1] == "*" or low_high[1] == "?" then
    start, stop, extra = r.min, r.max, STAR
  else
    start, err = parse_int_or_name(low_high[1], r.names)
    if not start then return nil, err end
    if #low_high == 1 then
      stop = start
    elseif #low_high == 2 then
      stop, err = parse_int_or_name(low_high[2], r.names)
      if not stop then return nil, err end
    else
      return nil, "too many hyphens: " .. expr
    end
  end
  if #range_step == 1 then
    step = 1
  elseif #range_step == 2 then
    step, err = must_parse_int(range_step[2])
    if not step then return nil, err end
    -- "N/step" means "N-max/step".
    if single then stop = r.max end
    if step > 1 then extra = 0 end
  else
    return nil, "too many slashes: " .. expr
  end
  if start < r.min then
    return nil, string.format("beginning of range (%d) below minimum (%d): %s", start, r.min, expr)
  end
  if stop > r.max then
    return nil, string.format("end of range (%d) above maximum (%d): %s", stop, r.max, expr)
  end
  if start > stop then
    return nil, string.format("beginning of range (%d) beyond end of range (%d): %s", start, stop, expr)
  end
  if step == 0 then return nil, "step of range should be a positive number: " .. expr end
  return M.get_bits(start, stop, step) | extra
end

--- A comma-separated list of ranges. @return bits | nil, message
function M.get_field(field, r)
  local bits = 0
  for expr in field:gmatch("[^,]+") do
    local b, err = M.get_range(expr, r)
    if not b then return nil, err end
    bits = bits | b
  end
  return bits
end

--- Values set in `bits` within r, and whether the star flag is set.
function M.values(bits, r)
  local out = {}
  for i = r.min, r.max do
    if bits & (1 << i) ~= 0 then out[#out + 1] = i end
  end
  return out, bits & STAR ~= 0
end

-- }======

-- {====== Go durations (time.ParseDuration), for @every

local UNIT = { ns = 1, us = 1e3, ["µs"] = 1e3, ["μs"] = 1e3, ms = 1e6, s = 1e9, m = 60e9, h = 3600e9 }

--- Go's time.ParseDuration. @return nanoseconds | nil, message
function M.parse_duration(text)
  local bad = string.format('time: invalid duration "%s"', text)
  local s, neg = text, false
  local c = s:sub(1, 1)
  if c == "-" or c == "+" then neg = c == "-"; s = s:sub(2) end
  if s == "0" then return 0 end
  if s == "" then return nil, bad end
  local total = 0
  while s ~= "" do
    local int, dot, frac, rest = s:match("^(%d*)(%.?)(%d*)(.*)$")
    if dot == "" then frac = "" end
    if int == "" and frac == "" then return nil, bad end
    local unit = rest:match("^[^%d%.]+")
    if not unit then return nil, string.format('time: missing unit in duration "%s"', text) end
    local mul = UNIT[unit]
    if not mul then return nil, string.format('time: unknown unit "%s" in duration "%s"', unit, text) end
    total = total + tonumber(int ~= "" and int or "0") * mul
    if frac ~= "" then total = total + math.floor(tonumber("0." .. frac) * mul) end
    s = rest:sub(#unit + 1)
  end
  if total > 9.2e18 then return nil, bad end
  total = math.tointeger(total) or math.floor(total)
  return neg and -total or total
end

-- }======

-- {====== schedules

local Spec = {}
Spec.__index = Spec
local Every = {}
Every.__index = Every

local function day_matches(s, dom, dow)
  local dm = s.dom & (1 << dom) ~= 0
  local wm = s.dow & (1 << dow) ~= 0
  if s.dom & STAR ~= 0 or s.dow & STAR ~= 0 then return dm and wm end
  return dm or wm
end

--- The first activation strictly after unix time `after` (fractional
--- allowed). `zone` is the zone of the time given (a zone object or IANA
--- name; default the local zone); a schedule with a TZ= prefix uses its
--- own. Same algorithm as robfig's SpecSchedule.Next, so DST gaps and
--- repeats behave the same. @return unix seconds | nil (none in 5 years)
function Spec:next(after, zone)
  local loc = self.location or tz.zone(zone)
  if not loc then return nil end
  local t = math.floor(after) + 1
  local added = false
  local y, mo, d, h, mi, s, wd = tz.fields(t, loc)
  local year_limit = y + 5
  local function refresh() y, mo, d, h, mi, s, wd = tz.fields(t, loc) end
  while true do
    local wrap = false
    if y > year_limit then return nil end
    while self.month & (1 << mo) == 0 do
      if not added then
        added = true
        t = tz.date(y, mo, 1, 0, 0, 0, loc); refresh()
      end
      t = tz.date(y, mo + 1, d, h, mi, s, loc); refresh()
      if mo == 1 then wrap = true; break end
    end
    if not wrap then
      while not day_matches(self, d, wd) do
        if not added then
          added = true
          t = tz.date(y, mo, d, 0, 0, 0, loc); refresh()
        end
        t = tz.date(y, mo, d + 1, h, mi, s, loc); refresh()
        -- Midnight may not exist (DST): step back to the day's start.
        if h ~= 0 then
          if h > 12 then t = t + (24 - h) * 3600 else t = t - h * 3600 end
          refresh()
        end
        if d == 1 then wrap = true; break end
      end
    end
    if not wrap then
      while self.hour & (1 << h) == 0 do
        if not added then
          added = true
          t = tz.date(y, mo, d, h, 0, 0, loc); refresh()
        end
        t = t + 3600; refresh()
        if h == 0 then wrap = true; break end
      end
    end
    if not wrap then
      while self.minute & (1 << mi) == 0 do
        if not added then
          added = true
          t = t - t % 60; refresh()
        end
        t = t + 60; refresh()
        if mi == 0 then wrap = true; break end
      end
    end
    if not wrap then
      while self.second & (1 << s) == 0 do
        if not added then added = true; refresh() end
        t = t + 1; refresh()
        if s == 0 then wrap = true; break end
      end
    end
    if not wrap then return t end
  end
end

--- @every: a constant delay in whole seconds (at least 1 s) from `after`
--- with its fraction dropped.
function Every:next(after)
  return math.floor(after) + self.delay
end

local function spec(fields, loc)
  fields.location = loc
  return setmetatable(fields, Spec)
end

-- delay_ns: the duration as written; delay: whole seconds, at least 1.
local function every(ns)
  local d = ns < 1000000000 and 1 or ns // 1000000000
  return setmetatable({ every = true, delay = math.tointeger(d) or d, delay_ns = ns }, Every)
end

local function descriptor(d, loc)
  if d == "@yearly" or d == "@annually" then
    return spec({ second = 1, minute = 1, hour = 1, dom = 1 << 1, month = 1 << 1, dow = M.all(B.dow) }, loc)
  elseif d == "@monthly" then
    return spec({ second = 1, minute = 1, hour = 1, dom = 1 << 1, month = M.all(B.months), dow = M.all(B.dow) },
      loc)
  elseif d == "@weekly" then
    return spec({ second = 1, minute = 1, hour = 1, dom = M.all(B.dom), month = M.all(B.months), dow = 1 }, loc)
  elseif d == "@daily" or d == "@midnight" then
    return spec({ second = 1, minute = 1, hour = 1, dom = M.all(B.dom), month = M.all(B.months),
      dow = M.all(B.dow) }, loc)
  elseif d == "@hourly" then
    return spec({ second = 1, minute = 1, hour = M.all(B.hours), dom = M.all(B.dom), month = M.all(B.months),
      dow = M.all(B.dow) }, loc)
  end
  if d:sub(1, 7) == "@every " then
    local ns, err = M.parse_duration(d:sub(8))
    if not ns then return nil, string.format("failed to parse duration %s: %s", d, err) end
    return every(ns)
  end
  return nil, "unrecognized descriptor: " .. d
end

-- Go's %s of a []string: "[a b c]".
local function go_list(t) return "[" .. table.concat(t, " ") .. "]" end

local PARSERS = {
  -- name -> min fields, max fields, where an omitted optional field goes
  standard = { min = 5, max = 5 },
  second = { min = 5, max = 6, optional = "dow" },          -- Second|...|DowOptional|Descriptor
  second_optional = { min = 5, max = 6, optional = "second" }, -- SecondOptional|...|Dow|Descriptor
}

--- Parses a schedule. opts.parser: "standard" (default; Kubernetes'
--- cron.ParseStandard), "second" or "second_optional" (robfig's 6-field
--- test parsers, for its vectors).
--- @return schedule | nil, message (robfig's words)
function M.parse(text, opts)
  local p = PARSERS[(opts and opts.parser) or "standard"]
  if not p then error("cron.parse: unknown parser", 2) end
  if type(text) ~= "string" or #text == 0 then return nil, "empty spec string" end
  local loc, loc_name = nil, nil
  if text:sub(1, 3) == "TZ=" or text:sub(1, 8) == "CRON_TZ=" then
    local i = text:find(" ", 1, true)
    if not i then return nil, "missing schedule after time zone prefix: " .. text end
    local eq = text:find("=", 1, true)
    loc_name = text:sub(eq + 1, i - 1)
    local z, err = tz.load(loc_name)
    if not z then return nil, string.format("provided bad location %s: %s", loc_name, err) end
    if loc_name ~= "Local" then loc = z end
    text = text:sub(i):match("^%s*(.-)%s*$")
  end
  local sched, err
  if text:sub(1, 1) == "@" then
    sched, err = descriptor(text, loc)
  else
    local fields = {}
    for f in text:gmatch("%S+") do fields[#fields + 1] = f end
    if #fields < p.min or #fields > p.max then
      if p.min == p.max then
        return nil, string.format("expected exactly %d fields, found %d: %s", p.min, #fields, go_list(fields))
      end
      return nil, string.format("expected %d to %d fields, found %d: %s", p.min, p.max, #fields, go_list(fields))
    end
    if #fields == 5 then
      if p.optional == "dow" then fields[6] = "*"
      else table.insert(fields, 1, "0") end
    end
    local out = {}
    for i, name in ipairs({ "second", "minute", "hour", "dom", "month", "dow" }) do
      local r = ({ B.seconds, B.minutes, B.hours, B.dom, B.months, B.dow })[i]
      local bits, ferr = M.get_field(fields[i], r)
      if not bits then return nil, ferr end
      out[name] = bits
    end
    sched = spec(out, loc)
  end
  if sched then sched.location_name = loc and loc_name or "Local" end
  return sched, err
end

--- true when `s` is a schedule returned by parse.
function M.is_schedule(s)
  local mt = getmetatable(s)
  return mt == Spec or mt == Every
end

-- }======

return M
