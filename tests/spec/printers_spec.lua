-- Printers shared by the server and the CLI: HumanDuration, timestamps,
-- the kubectl tabwriter (byte-exact) and server Table rendering.
require("moonlet_core")
local duration = require("moonlet.printers.duration")
local tabwriter = require("moonlet.printers.tabwriter")
local tprint = require("moonlet.printers.table")
local json = require("moonlet.json")

describe("printers.duration", function()
  it("formats HumanDuration like apimachinery (semantics.md 12.1)", function()
    local cases = {
      { -5, "<invalid>" }, { -2, "<invalid>" }, { -1.5, "0s" }, { -1, "0s" }, { -0.5, "0s" },
      { 0, "0s" }, { 1, "1s" }, { 59.9, "59s" }, { 119, "119s" }, { 120, "2m" },
      { 121, "2m1s" }, { 249, "4m9s" }, { 300, "5m" }, { 599, "9m59s" },
      { 600, "10m" }, { 179 * 60 + 59, "179m" }, { 3 * 3600, "3h" },
      { 7 * 3600 + 5 * 60, "7h5m" }, { 8 * 3600 - 1, "7h59m" }, { 8 * 3600, "8h" },
      { 47 * 3600 + 3599, "47h" }, { 48 * 3600, "2d" }, { 51 * 3600, "2d3h" },
      { 8 * 86400 - 1, "7d23h" }, { 8 * 86400, "8d" }, { 400 * 86400, "400d" },
      { 730 * 86400 - 1, "729d" }, { 730 * 86400, "2y" },
      { (3 * 365 + 12) * 86400, "3y12d" }, { 8 * 365 * 86400, "8y" },
      { 20 * 365 * 86400 + 5 * 86400, "20y" },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], duration.human(c[1]), "for " .. c[1])
    end
  end)

  it("formats the short form", function()
    assert.are.equal("59s", duration.short(59))
    assert.are.equal("1m", duration.short(119))
    assert.are.equal("23h", duration.short(86399))
    assert.are.equal("364d", duration.short(364 * 86400))
    assert.are.equal("2y", duration.short(731 * 86400))
  end)

  it("parses RFC 3339 in UTC regardless of the local zone", function()
    assert.are.equal(0, duration.parse("1970-01-01T00:00:00Z"))
    assert.are.equal(1714557600, duration.parse("2024-05-01T10:00:00Z"))
    assert.are.equal(1714557600.25, duration.parse("2024-05-01T10:00:00.25Z"))
    assert.are.equal(1714557600, duration.parse("2024-05-01T12:00:00+02:00"))
    assert.is_nil(duration.parse("yesterday"))
    assert.is_nil(duration.parse(nil))
    assert.are.equal("2024-05-01T10:00:00Z", duration.format_rfc3339(1714557600))
    assert.are.equal("Wed, 01 May 2024 10:00:00 +0000", duration.format_rfc1123z(1714557600))
    assert.are.equal("Thu, 29 Feb 2024 23:59:59 +0000",
      duration.format_rfc1123z(duration.parse("2024-02-29T23:59:59Z")))
  end)

  it("ages a timestamp against a given clock", function()
    local now = duration.parse("2024-05-01T10:04:09Z")
    assert.are.equal("4m9s", duration.since("2024-05-01T10:00:00Z", now))
    assert.are.equal("<unknown>", duration.since(nil, now))
  end)
end)

describe("printers.tabwriter", function()
  it("aligns like kubectl (minwidth 6, padding 3, last cell unpadded)", function()
    local out = tabwriter.format("NAME\tDATA\tAGE\nkube-root-ca.crt\t1\t5m\nx\t2\t10s\n")
    assert.are.equal(
      "NAME               DATA   AGE\n" ..
      "kube-root-ca.crt   1      5m\n" ..
      "x                  2      10s\n", out)
  end)

  it("applies the minimum width", function()
    assert.are.equal("A     B\n1     2\n", tabwriter.format("A\tB\n1\t2\n"))
  end)

  it("sizes each column over a block of consecutive lines only", function()
    -- the single-cell line breaks the column block: lines after it are
    -- sized on their own
    local text = "aaaaaaaaaa\tb\nc\n" .. "d\te\n"
    local out = tabwriter.format(text, { minwidth = 6, tabwidth = 4, padding = 3 })
    assert.are.equal("aaaaaaaaaa   b\nc\nd     e\n", out)
    -- kubectl's writer remembers the width of the first block
    assert.are.equal("aaaaaaaaaa   b\nc\nd            e\n", tabwriter.format(text))
  end)

  it("pads empty cells and keeps trailing cells unpadded", function()
    local out = tabwriter.format("a\t\tc\nlong-value\tx\t\n")
    assert.are.equal("a                  c\nlong-value   x     \n", out)
  end)

  it("counts runes, not bytes", function()
    local out = tabwriter.format("é\tx\nab\ty\n")
    assert.are.equal("é     x\nab    y\n", out)
  end)

  it("remembers widths across flushes", function()
    local chunks = {}
    local w = tabwriter.kubectl(function(s) chunks[#chunks + 1] = s end)
    w:write("NAME\tAGE\nx\t1s\n"):flush()
    w:write("a-much-longer-name\t2s\n"):flush()
    w:write("y\t3s\n"):flush()
    assert.are.equal(
      "NAME   AGE\nx      1s\n" ..
      "a-much-longer-name   2s\n" ..
      "y                    3s\n", table.concat(chunks))
  end)

  it("supports other settings (describe uses padding 2, minwidth 0)", function()
    local out = tabwriter.format("Name:\tx\nNamespace:\tdefault\n",
      { minwidth = 0, tabwidth = 8, padding = 2 })
    assert.are.equal("Name:       x\nNamespace:  default\n", out)
  end)
end)

describe("printers.table", function()
  local function cm_table(rows)
    return {
      kind = "Table", apiVersion = "meta.k8s.io/v1",
      columnDefinitions = {
        { name = "Name", type = "string", format = "name", priority = 0 },
        { name = "Data", type = "integer", format = "", priority = 0 },
        { name = "Age", type = "string", format = "", priority = 0 },
        { name = "Extra", type = "string", format = "", priority = 1 },
      },
      rows = rows,
    }
  end
  local function row(ns, name, data, age, extra, labels)
    return { cells = { name, data, age, extra },
      object = { metadata = { namespace = ns, name = name, labels = labels } } }
  end

  it("prints priority-0 columns with upper-cased headers", function()
    local t = cm_table({ row("default", "a", 1, "5m", "e1"), row("default", "bb", 2.0, "10s", "e2") })
    assert.are.equal("NAME   DATA   AGE\na      1      5m\nbb     2      10s\n", tprint.render(t))
  end)

  it("shows every column with wide", function()
    local t = cm_table({ row("default", "a", 1, "5m", "e1") })
    assert.are.equal("NAME   DATA   AGE   EXTRA\na      1      5m    e1\n",
      tprint.render(t, { wide = true }))
  end)

  it("adds NAMESPACE and LABELS decorations", function()
    local t = cm_table({ row("kube-system", "a", 1, "5m", "e", { b = "2", a = "1" }),
      row("default", "b", 0, "1s", "e", nil) })
    assert.are.equal(
      "NAMESPACE     NAME   DATA   AGE   LABELS\n" ..
      "kube-system   a      1      5m    a=1,b=2\n" ..
      "default       b      0      1s    <none>\n",
      tprint.render(t, { with_namespace = true, show_labels = true }))
  end)

  it("omits headers with no_headers and prints nothing for no rows", function()
    local t = cm_table({ row("default", "a", 1, "5m") })
    assert.are.equal("a     1     5m\n", tprint.render(t, { no_headers = true }))
    assert.are.equal("", tprint.render(cm_table({})))
  end)

  it("treats JSON null cells as empty and cuts multi-line cells", function()
    local t = cm_table({ { cells = { "a", json.null, "x\ny", "" } } })
    assert.are.equal("NAME   DATA   AGE\na             x...\n", tprint.render(t))
  end)

  it("prints watch rows with one header and remembered widths", function()
    local chunks = {}
    local p = tprint.printer({ out = function(s) chunks[#chunks + 1] = s end })
    p:print(cm_table({ row("default", "a", 1, "5m") }))
    p:print(cm_table({ row("default", "longer-name", 1, "0s") }))
    p:print({ rows = { row("default", "b", 3, "1s") } })
    assert.are.equal(
      "NAME   DATA   AGE\na      1      5m\n" ..
      "longer-name   1      0s\n" ..
      "b             3      1s\n", table.concat(chunks))
  end)

  it("prefixes watch event types", function()
    local t = cm_table({ row("default", "a", 1, "5m") })
    local chunks = {}
    local p = tprint.printer({ out = function(s) chunks[#chunks + 1] = s end })
    p:print(t, "ADDED")
    assert.are.equal("EVENT      NAME   DATA   AGE\nADDED      a      1      5m\n",
      table.concat(chunks))
  end)

  it("formats labels like labels.FormatLabels", function()
    assert.are.equal("<none>", tprint.format_labels({}))
    assert.are.equal("a=1,app=web", tprint.format_labels({ app = "web", a = "1" }))
  end)
end)
