-- Go's time.ParseDuration and Duration.String, the cases of Go's own
-- time package tests that matter to flags and messages.
require("moonlet_core")
local gd = require("moonlet.go_duration")

describe("go_duration", function()
  it("parses what time.ParseDuration parses", function()
    local cases = { ["0"] = 0, ["5s"] = 5, ["30s"] = 30, ["1478s"] = 1478, ["-5s"] = -5, ["+5s"] = 5,
      ["5.0s"] = 5, ["5.6s"] = 5.6, [".5s"] = 0.5, ["1.s"] = 1, ["10ns"] = 1e-8, ["11us"] = 11e-6,
      ["12µs"] = 12e-6, ["13ms"] = 0.013, ["15m"] = 900, ["16h"] = 57600, ["3h30m"] = 12600,
      ["10.5s4m"] = 250.5, ["1h2m3s4ms5us6ns"] = 3723.004005006 }
    for text, want in pairs(cases) do
      local got = assert(gd.parse(text), text)
      assert.is_true(math.abs(got - want) < 1e-9, text .. " -> " .. tostring(got))
    end
  end)

  it("rejects what time.ParseDuration rejects, with its messages", function()
    assert.are.same({ nil, 'time: invalid duration ""' }, { gd.parse("") })
    assert.are.same({ nil, 'time: missing unit in duration "3"' }, { gd.parse("3") })
    assert.are.same({ nil, 'time: unknown unit "x" in duration "3x"' }, { gd.parse("3x") })
    assert.are.same({ nil, 'time: invalid duration "-"' }, { gd.parse("-") })
    assert.are.same({ nil, 'time: invalid duration "s"' }, { gd.parse("s") })
    assert.are.same({ nil, 'time: invalid duration ".s"' }, { gd.parse(".s") })
  end)

  it("formats as Duration.String", function()
    local cases = { { 0, "0s" }, { 1e-9, "1ns" }, { 1.1e-6, "1.1µs" }, { 2.2e-3, "2.2ms" },
      { 3.3, "3.3s" }, { 10, "10s" }, { 80, "1m20s" }, { 300, "5m0s" }, { 3600, "1h0m0s" },
      { 4 * 60 + 5.001, "4m5.001s" }, { 5 * 3600 + 6 * 60 + 7.001, "5h6m7.001s" },
      { -1, "-1s" }, { 0.5, "500ms" } }
    for _, c in ipairs(cases) do assert.are.equal(c[2], gd.format(c[1])) end
  end)
end)
