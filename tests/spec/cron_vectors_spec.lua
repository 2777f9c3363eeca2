-- moonlet.cron and moonlet.tz against the upstream vectors: robfig/cron's
-- activation, Next, parse and field tests (cron.json, cron_fields.json) and
-- Kubernetes' mostRecentScheduleTime / nextScheduleTime /
-- nextScheduleTimeDuration table (cronjob_missed.json). Every entry is
-- asserted and named in its failure message.
require("moonlet_core")
local json = require("moonlet.json")
local cron = require("moonlet.cron")
local tz = require("moonlet.tz")
local schedule = require("moonlet.cronjob_schedule")

local function load(name)
  local dir = assert(os.getenv("ML_VECTORS"), "ML_VECTORS not set")
  local f = assert(io.open(dir .. "/" .. name, "rb"))
  local text = f:read("a")
  f:close()
  return assert(json.decode(text))
end

local function label(i, e)
  return string.format("#%d %s %q%s", i, e.kind or e["function"], e.schedule or e.expr or "",
    e.from and (" from " .. e.from) or (e.name and (" " .. e.name) or ""))
end

local function t(text)
  local v = tz.parse_rfc3339(text)
  assert(v, "bad time " .. tostring(text))
  return v
end

-- The zone a vector's `from` carries: from_location, else its fixed offset.
local function from_zone(e)
  if e.from_location then return assert(tz.load(e.from_location)) end
  local _, off = tz.parse_rfc3339(e.from)
  return tz.fixed(off)
end

local function fmt(v) return v and tz.rfc3339(v) or "nil" end

describe("cron.json", function()
  local entries = load("cron.json")

  it("has the entries SOURCES.md lists", function()
    assert.are.equal(140, #entries)
  end)

  it("passes every entry", function()
    local failures, checked = {}, 0
    for i, e in ipairs(entries) do
      local name = label(i, e)
      local parser = (e.parser == "every") and "standard" or e.parser
      local s, err = cron.parse(e.schedule, { parser = parser })
      if e.kind == "activation" or e.kind == "next" then
        if not s then
          failures[#failures + 1] = name .. ": parse failed: " .. tostring(err)
        else
          local got = s:next(t(e.from), from_zone(e))
          if e.next_not then
            if got == t(e.next_not) then failures[#failures + 1] = name .. ": got the excluded " .. e.next_not end
          elseif e.next == json.null or e.next == nil then
            if got ~= nil then failures[#failures + 1] = name .. ": want none, got " .. fmt(got) end
          elseif got ~= t(e.next) then
            failures[#failures + 1] = string.format("%s: want %s, got %s", name, e.next, fmt(got))
          end
          if e.delay_ns and (not s.every or s.delay_ns ~= e.delay_ns) then
            failures[#failures + 1] = name .. ": delay_ns " .. tostring(s.delay_ns)
          end
        end
      elseif e.kind == "parse" then
        if e.error then
          if s then failures[#failures + 1] = name .. ": parsed, want an error"
          elseif e.error_substring and not err:find(e.error_substring, 1, true) then
            failures[#failures + 1] = string.format("%s: error %q lacks %q", name, err, e.error_substring)
          end
        elseif not s then
          failures[#failures + 1] = name .. ": " .. tostring(err)
        elseif e.every then
          local want = assert(cron.parse_duration(e.every))
          if not s.every or s.delay_ns ~= want then failures[#failures + 1] = name .. ": not @every " .. e.every end
        else
          local r = { second = cron.bounds.seconds, minute = cron.bounds.minutes, hour = cron.bounds.hours,
            dom = cron.bounds.dom, month = cron.bounds.months, dow = cron.bounds.dow }
          for field, want in pairs(e.fields) do
            local vals, star = cron.values(s[field], r[field])
            if want == "*" then
              if not star or #vals ~= r[field].max - r[field].min + 1 then
                failures[#failures + 1] = name .. ": field " .. field .. " not *"
              end
            elseif star or table.concat(vals, ",") ~= table.concat(want, ",") then
              failures[#failures + 1] = string.format("%s: field %s = {%s}", name, field, table.concat(vals, ","))
            end
          end
          if s.location_name ~= e.location then
            failures[#failures + 1] = name .. ": location " .. tostring(s.location_name)
          end
        end
      elseif e.kind == "k8s_validate" then
        local errs = schedule.validate_schedule(e.schedule, nil, false)
        if e.error ~= (#errs > 0) then
          failures[#failures + 1] = name .. ": validation errors " .. #errs
        end
      else
        failures[#failures + 1] = name .. ": unknown kind"
      end
      checked = checked + 1
    end
    assert.are.equal(#entries, checked)
    assert.are.same({}, failures)
  end)
end)

describe("cron_fields.json", function()
  it("passes every entry", function()
    local entries = load("cron_fields.json")
    assert.are.equal(33, #entries)
    local failures = {}
    for i, e in ipairs(entries) do
      local name = label(i, e)
      local bits, err
      if e.kind == "range" then
        bits, err = cron.get_range(e.expr, { min = e.min, max = e.max })
      elseif e.kind == "field" then
        bits, err = cron.get_field(e.expr, { min = e.min, max = e.max })
      elseif e.kind == "all" then
        bits = cron.all({ min = e.min, max = e.max })
      elseif e.kind == "bits" then
        bits = cron.get_bits(e.min, e.max, e.step)
      end
      if e.error then
        if bits then failures[#failures + 1] = name .. ": no error"
        elseif not err:find(e.error_substring, 1, true) then
          failures[#failures + 1] = string.format("%s: %q lacks %q", name, err, e.error_substring)
        end
      elseif not bits then
        failures[#failures + 1] = name .. ": " .. tostring(err)
      else
        local vals, star = cron.values(bits, { min = math.min(e.min, 0), max = 62 })
        if table.concat(vals, ",") ~= table.concat(e.values, ",") then
          failures[#failures + 1] = name .. ": values " .. table.concat(vals, ",")
        end
        if e.star ~= nil and star ~= e.star then failures[#failures + 1] = name .. ": star " .. tostring(star) end
      end
    end
    assert.are.same({}, failures)
  end)
end)

describe("cronjob_missed.json", function()
  it("passes every entry", function()
    local entries = load("cronjob_missed.json")
    assert.are.equal(25, #entries)
    local failures = {}
    local function nul(v) return v == nil or v == json.null end
    for i, e in ipairs(entries) do
      local name = label(i, e)
      local s = assert(cron.parse(e.schedule))
      local cj = { metadata = { creationTimestamp = e.creationTimestamp },
        spec = { schedule = e.schedule, startingDeadlineSeconds = not nul(e.startingDeadlineSeconds)
          and e.startingDeadlineSeconds or nil },
        status = { lastScheduleTime = not nul(e.lastScheduleTime) and e.lastScheduleTime or nil } }
      local now = t(e.now)
      local f = e["function"]
      if f == "mostRecentScheduleTime" then
        local earliest, recent, missed, err = schedule.most_recent(cj, now, s, e.includeStartingDeadlineSeconds,
          tz.utc)
        if e.error then
          if not err then failures[#failures + 1] = name .. ": no error" end
        elseif err then
          failures[#failures + 1] = name .. ": " .. err
        else
          if earliest ~= t(e.expected_earliest_time) then
            failures[#failures + 1] = name .. ": earliest " .. fmt(earliest)
          end
          local want = not nul(e.expected_most_recent_time) and t(e.expected_most_recent_time) or nil
          if recent ~= want then failures[#failures + 1] = name .. ": most recent " .. fmt(recent) end
          if missed ~= e.expected_missed then failures[#failures + 1] = name .. ": missed " .. missed end
        end
      elseif f == "nextScheduleTime" then
        local got, err = schedule.next_schedule_time(cj, now, s, tz.utc)
        if e.error then
          if not err then failures[#failures + 1] = name .. ": no error" end
        elseif err then
          failures[#failures + 1] = name .. ": " .. err
        elseif e.expect_non_null then
          if not got then failures[#failures + 1] = name .. ": want a time" end
        else
          local want = not nul(e.expected_schedule_time) and t(e.expected_schedule_time) or nil
          if got ~= want then failures[#failures + 1] = name .. ": got " .. fmt(got) end
        end
      elseif f == "nextScheduleTimeDuration" then
        local d = schedule.requeue_after(cj, now, s, tz.utc)
        if math.floor(d * 1000 + 0.5) ~= e.expected_duration_ms then
          failures[#failures + 1] = name .. ": duration " .. d
        end
      else
        failures[#failures + 1] = name .. ": unknown function"
      end
    end
    assert.are.same({}, failures)
  end)

  it("rejects the rogue schedule in nextScheduleTime too", function()
    local s = assert(cron.parse("59 23 31 2 *"))
    local _, err = schedule.next_schedule_time({ metadata = { creationTimestamp = "2016-05-19T10:00:10Z" },
      spec = {}, status = {} }, t("2016-05-19T11:00:00Z"), s, tz.utc)
    assert.are.equal("time difference between two schedules is less than 1 second", err)
  end)
end)
