-- moonlet.cron and moonlet.tz beyond the upstream vectors: month and
-- weekday names, the day-of-month / day-of-week star rule, 7 refused as a
-- weekday, @every rounding, bad TZ= prefixes, zones read from TZif files
-- (rule-based times past the file's last transition, the southern
-- hemisphere), Go's time.Date resolution of skipped and repeated wall
-- times, and the formats the controller writes.
require("moonlet_core")
local cron = require("moonlet.cron")
local tz = require("moonlet.tz")
local schedule = require("moonlet.cronjob_schedule")

local function t(s) return (assert(tz.parse_rfc3339(s))) end
local function nxt(spec, from, zone)
  local s = assert(cron.parse(spec))
  local v = s:next(t(from), zone or tz.utc)
  return v and tz.rfc3339(v, zone or tz.utc)
end

describe("moonlet.cron", function()
  it("reads month and weekday names in any case", function()
    assert.are.equal("2027-01-01T09:30:00Z", nxt("30 9 * jan-MAR Tue-FRI", "2026-11-29T00:00:00Z"))
    assert.are.equal("2027-01-05T09:30:00Z", nxt("30 9 * Jan-mar tue-fri", "2027-01-01T10:00:00Z"))
    assert.is_nil(cron.parse("30 9 * DEC-jan *")) -- ranges do not wrap
  end)

  it("ORs day of month and day of week unless one of them is a star", function()
    -- Friday 13th style: any Friday or any 13th
    assert.are.equal("2026-12-04T00:00:00Z", nxt("0 0 13 * 5", "2026-11-29T00:00:00Z"))
    assert.are.equal("2027-02-13T00:00:00Z", nxt("0 0 13 * 5", "2027-02-12T00:00:01Z"))
    -- */1 keeps the star: only Fridays
    assert.are.equal("2026-12-04T00:00:00Z", nxt("0 0 */1 * 5", "2026-11-29T00:00:00Z"))
    assert.are.equal("2026-12-11T00:00:00Z", nxt("0 0 */1 * 5", "2026-12-04T00:00:00Z"))
    -- 1-31 is no star: every day matches
    assert.are.equal("2026-11-30T00:00:00Z", nxt("0 0 1-31 * 5", "2026-11-29T00:00:00Z"))
    -- ? is a star
    assert.are.equal("2026-11-30T00:00:00Z", nxt("0 0 ? * MON", "2026-11-29T00:00:00Z"))
  end)

  it("refuses what robfig refuses, in its words", function()
    local cases = {
      ["0 0 * * 7"] = "end of range (7) above maximum (6): 7",
      ["* * * *"] = "expected exactly 5 fields, found 4: [* * * *]",
      ["0 0 0 * * *"] = "expected exactly 5 fields, found 6: [0 0 0 * * *]",
      ["*/0 * * * *"] = "step of range should be a positive number: */0",
      ["0 0 5-1 * *"] = "beginning of range (5) beyond end of range (1): 5-1",
      ["0 0 0 * *"] = "beginning of range (0) below minimum (1): 0",
      ["1-2-3 * * * *"] = "too many hyphens: 1-2-3",
      ["x * * * *"] = 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax',
      ["@every"] = "unrecognized descriptor: @every",
      ["@every 5"] = 'failed to parse duration @every 5: time: missing unit in duration "5"',
      ["@fortnightly"] = "unrecognized descriptor: @fortnightly",
      ["TZ=Nope/Zone 0 * * * *"] = "provided bad location Nope/Zone: unknown time zone Nope/Zone",
      [""] = "empty spec string",
    }
    for spec, want in pairs(cases) do
      local s, err = cron.parse(spec)
      assert.is_nil(s, spec)
      assert.are.equal(want, err, spec)
    end
  end)

  it("rounds @every to whole seconds, at least one", function()
    assert.are.equal(1, assert(cron.parse("@every 500ms")).delay)
    assert.are.equal(5400, assert(cron.parse("@every 1h30m")).delay)
    assert.are.equal(90, assert(cron.parse("@every 1.5m")).delay)
    assert.are.equal(t("2026-01-01T00:01:30Z"), assert(cron.parse("@every 90s")):next(t("2026-01-01T00:00:00.7Z")))
  end)

  it("runs schedules in a TZ= zone or in the zone it is given", function()
    local ny = assert(tz.load("America/New_York"))
    -- 09:00 New York in winter and in summer
    assert.are.equal("2026-12-01T14:00:00Z", nxt("TZ=America/New_York 0 9 * * *", "2026-12-01T00:00:00Z"))
    assert.are.equal("2026-07-01T13:00:00Z", nxt("TZ=America/New_York 0 9 * * *", "2026-07-01T00:00:00Z"))
    -- a zone given with the time
    assert.are.equal("2026-07-01T09:00:00-04:00", nxt("0 9 * * *", "2026-07-01T00:00:00-04:00", ny))
    -- 02:30 does not exist on the spring-forward day: robfig skips the day
    assert.are.equal("2027-03-15T02:30:00-04:00", nxt("30 2 * * *", "2027-03-14T00:00:00-05:00", ny))
  end)
end)

describe("moonlet.tz", function()
  it("follows the POSIX rule past the file's last transition", function()
    local ny = assert(tz.load("America/New_York"))
    assert.are.equal(-4 * 3600, ny:offset(t("2150-07-04T12:00:00Z")))
    assert.are.equal(-5 * 3600, ny:offset(t("2150-01-04T12:00:00Z")))
    local syd = assert(tz.load("Australia/Sydney"))
    assert.are.equal(11 * 3600, syd:offset(t("2190-01-01T00:00:00Z")))
    assert.are.equal(10 * 3600, syd:offset(t("2190-07-01T00:00:00Z")))
    local tokyo = assert(tz.load("Asia/Tokyo"))
    assert.are.equal("2026-11-29T12:00:00+09:00", tz.rfc3339(t("2026-11-29T03:00:00Z"), tokyo))
  end)

  it("resolves wall times as Go's time.Date does", function()
    local ny = assert(tz.load("America/New_York"))
    -- repeated hour: the first (daylight) one
    assert.are.equal("2026-11-01T01:30:00-04:00", tz.rfc3339(tz.date(2026, 11, 1, 1, 30, 0, ny), ny))
    -- overflowing fields normalise: Feb 30 is Mar 2
    assert.are.equal("2026-03-02T00:00:00Z", tz.rfc3339(tz.date(2026, 2, 30, 0, 0, 0, tz.utc)))
    assert.are.equal("2025-12-31T23:00:00Z", tz.rfc3339(tz.date(2026, 1, 1, -1, 0, 0, tz.utc)))
  end)

  it("names zones as Go's LoadLocation does", function()
    assert.are.equal(tz.utc, tz.load(""))
    assert.are.equal(tz.utc, tz.load("UTC"))
    local z, err = tz.load("Nowhere/Land")
    assert.is_nil(z)
    assert.are.equal("unknown time zone Nowhere/Land", err)
    assert.are.equal("time: invalid location name", select(2, tz.load("../etc/passwd")))
    assert.are.equal("Thu, 19 May 2016 10:00:00 +0000", tz.rfc1123z(t("2016-05-19T10:00:00Z")))
    assert.are.equal(t("2016-05-19T10:00:00Z") + 0.5, tz.parse_rfc3339("2016-05-19T06:00:00.5-04:00"))
  end)
end)

describe("CronJob schedule validation", function()
  it("checks spec.timeZone as Kubernetes does", function()
    local function msg(name)
      local errs = schedule.validate_time_zone(name)
      return errs[1] and tostring(errs[1].detail) or nil
    end
    assert.is_nil(msg(nil))
    assert.is_nil(msg("Europe/Berlin"))
    assert.are.equal("unknown time zone ../x", msg("../x"))
    assert.are.equal("unknown time zone -Europe", msg("-Europe"))
    assert.are.equal("unknown time zone America/Argentina_Buenos", msg("America/Argentina_Buenos"))
    assert.are.equal("timeZone must be nil or non-empty string", msg(""))
  end)

  it("names jobs by scheduled minute and stamps them in the CronJob's zone", function()
    local cj = { metadata = { name = "nightly" }, spec = { timeZone = "Asia/Tokyo" } }
    local at = t("2016-05-19T10:00:00Z")
    assert.are.equal("nightly-24394200", schedule.job_name(cj, at))
    assert.are.equal("2016-05-19T19:00:00+09:00", schedule.scheduled_timestamp(cj, at))
    cj.spec.timeZone = nil
    assert.are.equal("2016-05-19T10:00:00Z", schedule.scheduled_timestamp(cj, at))
    assert.are.equal("TZ=Asia/Tokyo 0 * * * *", schedule.format({ spec = { schedule = "0 * * * *",
      timeZone = "Asia/Tokyo" } }))
  end)
end)

-- Found by tests/fuzz/fuzz_cron.c: a damaged TZif file is "malformed",
-- never a Lua error, and its claimed counts allocate nothing.
describe("moonlet.tz with damaged TZif data", function()
  local tz = require("moonlet.tz")
  local f = assert(io.open("/usr/share/zoneinfo/Europe/Paris", "rb"))
  local paris = f:read("a")
  f:close()

  it("refuses a truncated file", function()
    for _, n in ipairs({ 5, 44, 60, 200, #paris // 2 }) do
      local z, err = tz.parse_tzif(paris:sub(1, n), "cut")
      assert.is_nil(z, "cut at " .. n)
      assert.are.equal("malformed time zone information", err)
    end
    assert.truthy(tz.parse_tzif(paris, "Europe/Paris"))
  end)

  it("refuses a header that claims more than the file holds", function()
    local huge = "TZif2" .. string.rep("\0", 15) .. string.pack(">i4i4i4i4i4i4", 0, 0, 0, 0x7fffffff, 1, 4)
      .. string.rep("\0", 64)
    local z, err = tz.parse_tzif(huge, "huge")
    assert.is_nil(z)
    assert.are.equal("malformed time zone information", err)
  end)
end)
