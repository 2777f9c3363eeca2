-- moonlet.selector against every upstream vector in ML_VECTORS (apimachinery
-- pkg/labels, pkg/apis/meta/v1 tests), plus field selectors.
require("moonlet_core")
local selector = require("moonlet.selector")
local json = require("moonlet.json")

local VECTORS = os.getenv("ML_VECTORS") or "../shared/vectors"

local function load(name)
  local f = assert(io.open(VECTORS .. "/" .. name, "rb"), "missing vector file " .. name)
  local text = f:read("a")
  f:close()
  return assert(json.decode(text))
end

local function is_null(v) return v == nil or json.is_null(v) end

-- Plain copies of decoded maps (drops the array/object marks).
local function plain_map(t)
  if is_null(t) then return nil end
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

local function label(e)
  local s = e.input or e.selector or e.key or ""
  if #s > 40 then s = s:sub(1, 37) .. "..." end
  return string.format("%q", s)
end

describe("label selector lexer (selectors_lexer.json)", function()
  for i, e in ipairs(load("selectors_lexer.json")) do
    it(e.kind .. " #" .. i .. " " .. label(e), function()
      if e.kind == "single_token" then
        local toks = selector._tokens(e.input)
        assert.are.equal(e.tokens[1], toks[1][1])
        assert.are.equal(e.literal, toks[1][2])
      elseif e.kind == "token_sequence" then
        local toks, names = selector._tokens(e.input), {}
        for j = 1, #toks - 1 do names[j] = toks[j][1] end
        assert.are.equal("EndOfStringToken", toks[#toks][1])
        assert.are.same(plain_map(e.tokens), names)
      elseif e.kind == "parse_operator" then
        local op, err = selector._parse_operator(e.input)
        if e.valid then
          assert.is_not_nil(op, err)
        else
          assert.is_nil(op)
          assert.are.equal(e.error, err)
        end
      else
        error("unknown kind " .. tostring(e.kind))
      end
    end)
  end
end)

local function reqs_of(sel)
  local out = {}
  for i, r in ipairs(sel:requirements()) do
    local vals = {}
    for j, v in ipairs(r.values) do vals[j] = v end
    table.sort(vals)
    out[i] = { key = r.key, operator = r.operator, values = vals }
  end
  return out
end

local function plain_reqs(list)
  local out = {}
  for i, r in ipairs(list) do
    local vals = {}
    for j, v in ipairs(r.values) do vals[j] = v end
    out[i] = { key = r.key, operator = r.operator, values = vals }
  end
  return out
end

describe("labels.Parse (selectors_parse.json)", function()
  local entries = load("selectors_parse.json")
  for i, e in ipairs(entries) do
    it("#" .. i .. " " .. label(e) .. (e.valid and " parses" or " is rejected"), function()
      local sel, err = selector.parse(e.input)
      if not e.valid then
        assert.is_nil(sel)
        assert.is_string(err)
        assert.is_true(#err > 0)
        return
      end
      assert.is_not_nil(sel, err)
      if e.canonical then assert.are.equal(e.canonical, sel:string()) end
      if e.canonical_derived then assert.are.equal(e.canonical_derived, sel:string()) end
      if e.requirements then assert.are.same(plain_reqs(e.requirements), reqs_of(sel)) end
      -- String() is a fixed point of Parse.
      local again = assert(selector.parse(sel:string()))
      assert.are.equal(sel:string(), again:string())
    end)
  end

  it("gives order-independent String() (TestDeterministicParse)", function()
    local a = assert(selector.parse("x=a,a=x"))
    local b = assert(selector.parse("a=x,x=a"))
    assert.are.equal(a:string(), b:string())
    assert.are.equal("a=x,x=a", a:string())
  end)

  it("words errors as Kubernetes does", function()
    local cases = {
      { "x,,y", "found ',', expected: identifier after ','" },
      { ",x,y", "found ',', expected: !, identifier, or 'end of string'" },
      { "a in (xyz),", "found '', expected: identifier after ','" },
      { "a in (xyz)b notin ()", "found 'b', expected: ',' or 'end of string'" },
      { "x nott in (y)", "unable to parse requirement: found 'nott', expected: in, notin, =, ==, !=, gt, lt" },
      { "a in (xyz abc)", "unable to parse requirement: found 'abc', expected: ',' or ')'" },
      { "a notin(", "unable to parse requirement: found '', expected: ',', ')' or identifier" },
      { "a (", "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt" },
      { "(", "found '(', expected: !, identifier, or 'end of string'" },
      { "x in (a,=)", "unable to parse requirement: found '=', expected: ',', or identifier" },
      { "x<a", "unable to parse requirement: values[0]: Invalid value: \"a\": "
        .. "for 'Gt', 'Lt' operators, the value must be an integer" },
      { "app:monolith", "unable to parse requirement: <nil>: Invalid value: \"app:monolith\": "
        .. "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
        .. "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
        .. "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')" },
      { "x=a||y=b", "unable to parse requirement: values[0][x]: Invalid value: \"a||y\": "
        .. "a valid label must be an empty string or consist of alphanumeric characters, '-', "
        .. "'_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',"
        .. "  or 'my_value',  or '12345', regex used for validation is "
        .. "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')" },
    }
    for _, c in ipairs(cases) do
      local sel, err = selector.parse(c[1])
      assert.is_nil(sel, c[1])
      assert.are.equal(c[2], err)
    end
  end)
end)

describe("matching (selectors_match.json)", function()
  for i, e in ipairs(load("selectors_match.json")) do
    it("#" .. i .. " " .. label(e) .. (e.match and " matches" or " does not match"), function()
      local labels = plain_map(e.labels)
      local sel = assert(selector.parse(e.selector))
      assert.are.equal(e.match, sel:matches(labels))
      if e.requirements then
        local built = selector.new()
        for _, r in ipairs(e.requirements) do
          assert(built:add(r.key, r.operator, plain_map(r.values)))
        end
        assert.are.equal(e.selector, built:string())
        assert.are.equal(e.match, built:matches(labels))
      elseif e.selector_set then
        local built = selector.from_set(plain_map(e.selector_set))
        assert.are.equal(e.selector, built:string())
        assert.are.equal(e.match, built:matches(labels))
      end
    end)
  end

  it("treats a missing key as a match for != and notin, not for > / <", function()
    assert.is_true(assert(selector.parse("x!=a")):matches({}))
    assert.is_true(assert(selector.parse("x notin (a)")):matches(nil))
    assert.is_false(assert(selector.parse("x>1")):matches({}))
    assert.is_false(assert(selector.parse("x<1")):matches({ x = "-5x" }))
    assert.is_true(assert(selector.parse("x<1")):matches({ x = "-5" }))
  end)
end)

describe("String() (selectors_string.json)", function()
  for i, e in ipairs(load("selectors_string.json")) do
    it("#" .. i .. " " .. string.format("%q", e.string), function()
      if e.set then
        local set = plain_map(e.set)
        assert.are.equal(e.string, selector.from_set(set):string())
        -- labels.Set.String() prints the same; FormatLabels adds <none>
        local formatted = selector.format_labels(set)
        assert.are.equal(e.string == "" and "<none>" or e.string, formatted)
        return
      end
      local sel, ok = selector.new(), true
      for _, r in ipairs(e.requirements) do
        local added = sel:add(r.key, r.operator, plain_map(r.values))
        ok = ok and added == true
      end
      if e.valid then
        assert.is_true(ok)
        assert.are.equal(e.string, sel:string())
      else
        -- Go's zero-value Requirement cannot be built through NewRequirement.
        assert.is_false(ok)
      end
    end)
  end
end)

describe("NewRequirement (requirements.json)", function()
  for i, e in ipairs(load("requirements.json")) do
    it("#" .. i .. " " .. label(e) .. " " .. e.operator, function()
      local sel = selector.new()
      local ok, errs = sel:add(e.key, e.operator, plain_map(e.values))
      if e.valid then
        assert.is_true(ok)
        return
      end
      assert.is_nil(ok)
      local got = {}
      for j, fe in ipairs(errs) do got[j] = { type = fe.type, field = fe.field } end
      local want = {}
      for j, fe in ipairs(e.errors) do want[j] = { type = "FieldValue" .. fe.type, field = fe.field } end
      assert.are.same(want, got)
    end)
  end
end)

describe("label validation (label_validation.json)", function()
  local validation = require("moonlet.validation")
  local fns = {
    key = validation.is_qualified_name,
    value = validation.is_valid_label_value,
    dns1123_subdomain = validation.is_dns1123_subdomain,
  }
  for i, e in ipairs(load("label_validation.json")) do
    it("#" .. i .. " " .. e.kind .. " " .. label(e), function()
      local msgs = fns[e.kind](e.input)
      if e.valid then
        assert.are.same({}, msgs)
      else
        assert.is_true(#msgs > 0)
        if e.error_substring then
          assert.is_truthy(table.concat(msgs, "; "):find(e.error_substring, 1, true),
            table.concat(msgs, "; "))
        end
      end
      -- validate_labels/validate_annotations answer the valid case in C
      -- (labels_valid, annotations_valid): the same verdict as the messages
      local core = require("moonlet.core.selector")
      if e.kind == "key" then
        assert.are.equal(e.valid, core.labels_valid({ [e.input] = "v" }))
        assert.are.equal(#fns.key(e.input:lower()) == 0,
          core.annotations_valid({ [e.input] = "v" }, validation.TOTAL_ANNOTATION_SIZE_LIMIT))
      elseif e.kind == "value" then
        assert.are.equal(e.valid, core.labels_valid({ k = e.input }))
      end
      -- keys and values also go through the selector parser's checks
      if e.kind == "key" then
        local sel = selector.parse(e.input)
        if e.valid then assert.is_not_nil(sel) end
      end
    end)
  end
end)

describe("LabelSelector objects (label_selector_struct.json)", function()
  for i, e in ipairs(load("label_selector_struct.json")) do
    local ls = nil
    if not e.selector_is_nil then
      ls = { matchLabels = e.matchLabels, matchExpressions = e.matchExpressions }
    end
    it("#" .. i .. " " .. e.check, function()
      if e.check == "LabelSelectorAsSelector" then
        local sel, errs = selector.from_table(ls, "spec.selector")
        if not e.valid then
          assert.is_nil(sel)
          assert.is_true(#errs > 0)
          return
        end
        assert.is_not_nil(sel)
        if e.result == "Nothing" then
          assert.is_true(sel:nothing())
          assert.is_false(sel:matches({}))
          assert.is_false(sel:matches({ a = "b" }))
          assert.are.equal("<none>", selector.format_selector(ls))
        elseif e.result == "Everything" then
          assert.is_true(sel:empty())
          assert.is_true(sel:matches({ a = "b" }))
        end
        if e.selector_string then
          assert.are.equal(e.selector_string, sel:string())
          assert.are.equal(e.selector_string == "" and "<none>" or e.selector_string,
            selector.format_selector(ls))
        end
      elseif e.check == "LabelSelectorAsMap" then
        local map, err = selector.as_map(ls)
        assert.are.same(plain_map(e.map), map)
        if e.valid then
          assert.is_nil(err)
        else
          assert.is_string(err)
          assert.is_truthy(err:find(e.error_substring, 1, true), err)
        end
      elseif e.check == "ValidateLabelSelector" then
        local sel, errs = selector.from_table(ls, "spec.selector")
        if e.valid then
          assert.is_not_nil(sel)
          return
        end
        assert.is_nil(sel)
        assert.are.equal(e.error_count, #errs)
        assert.is_truthy(errs:aggregate():find(e.error_substring, 1, true), errs:aggregate())
      elseif e.check == "ValidatedSelectorFromSet" then
        local sel, errs = selector.from_set(plain_map(e.matchLabels), true)
        if e.valid then
          assert.are.equal(e.selector_string, sel:string())
          return
        end
        assert.is_nil(sel)
        local got = {}
        for j, fe in ipairs(errs) do got[j] = { type = fe.type, field = fe.field } end
        local want = {}
        for j, fe in ipairs(e.errors) do want[j] = { type = "FieldValue" .. fe.type, field = fe.field } end
        assert.are.same(want, got)
      else
        error("unknown check " .. e.check)
      end
    end)
  end

  it("reports ValidateLabelSelector errors with field paths and messages", function()
    local sel, errs = selector.from_table({
      matchExpressions = {
        { key = "app", operator = "In", values = {} },
        { key = "tier", operator = "Exists", values = { "x" } },
        { key = "k", operator = "Gt", values = { "1" } },
      },
    }, "spec.selector")
    assert.is_nil(sel)
    assert.are.same({
      "spec.selector.matchExpressions[0].values: Required value: must be specified when "
        .. "`operator` is 'In' or 'NotIn'",
      "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when "
        .. "`operator` is 'Exists' or 'DoesNotExist'",
      "spec.selector.matchExpressions[2].operator: Invalid value: \"Gt\": not a valid "
        .. "selector operator",
    }, { errs[1]:error(), errs[2]:error(), errs[3]:error() })
    assert.are.equal("FieldValueRequired", errs[1].type)
    assert.are.equal("Required value: must be specified when `operator` is 'In' or 'NotIn'",
      errs[1]:body())
    assert.is_truthy(tostring(errs):match("^%[spec%.selector%.matchExpressions%[0%]"))
  end)

  it("matches through a from_table selector and renders FormatLabelSelector", function()
    local ls = { matchLabels = { app = "web" },
      matchExpressions = { { key = "tier", operator = "NotIn", values = { "db", "cache" } } } }
    local sel = assert(selector.from_table(ls))
    assert.are.equal("app=web,tier notin (cache,db)", tostring(sel))
    assert.is_true(sel:matches({ app = "web" }))
    assert.is_true(sel:matches({ app = "web", tier = "front" }))
    assert.is_false(sel:matches({ app = "web", tier = "db" }))
    assert.are.equal("app=web,tier notin (cache,db)", selector.format_selector(ls))
    assert.are.equal("<none>", selector.format_selector({}))
    assert.are.equal("<error>", selector.format_selector({ matchLabels = { ["a b"] = "c" } }))
  end)
end)

describe("ConvertSelectorToLabelsMap (selector_to_labels_map.json)", function()
  for i, e in ipairs(load("selector_to_labels_map.json")) do
    it("#" .. i .. " " .. label(e), function()
      local map, err = selector.to_labels_map(e.input)
      assert.are.same(plain_map(e.labels), map)
      if e.valid then assert.is_nil(err) else assert.is_string(err) end
    end)
  end
end)

describe("format_labels", function()
  it("sorts keys and says <none> when empty", function()
    assert.are.equal("a=1,b=2", selector.format_labels({ b = "2", a = "1" }))
    assert.are.equal("<none>", selector.format_labels({}))
    assert.are.equal("<none>", selector.format_labels(nil))
  end)
end)

describe("to_label_selector (ParseToLabelSelector)", function()
  it("splits equality into matchLabels and sets into expressions", function()
    local ls = assert(selector.to_label_selector("app=web,tier in (a,b),!old"))
    assert.are.same({ app = "web" }, ls.matchLabels)
    assert.are.same({ { key = "old", operator = "DoesNotExist", values = {} },
      { key = "tier", operator = "In", values = { "a", "b" } } }, ls.matchExpressions)
    local none, err = selector.to_label_selector("x>1")
    assert.is_nil(none)
    assert.are.equal('"gt" isn\'t supported in label selectors', err)
  end)
end)

describe("field selectors", function()
  it("parses, sorts terms and prints String() with escapes", function()
    local fs = assert(selector.parse_fields("status.phase=Running,metadata.name!=a\\,b"))
    assert.are.equal("metadata.name!=a\\,b,status.phase=Running", fs:string())
    assert.are.same({ "metadata.name", "status.phase" }, fs:keys())
    assert.are.equal(fs:string(), tostring(fs))
    local eq = assert(selector.parse_fields("spec.nodeName==n1"))
    assert.are.equal("spec.nodeName=n1", eq:string())
    assert.are.same({}, assert(selector.parse_fields("")):keys())
  end)

  it("matches dotted paths, missing fields as empty, numbers by text", function()
    local obj = { metadata = { name = "p1", namespace = "default" },
      status = { phase = "Running" }, spec = { replicas = 3, paused = false } }
    local function m(s) return assert(selector.parse_fields(s)):matches(obj) end
    assert.is_true(m("metadata.name=p1"))
    assert.is_true(m("metadata.name=p1,status.phase!=Pending"))
    assert.is_false(m("metadata.name=p2"))
    assert.is_true(m("spec.nodeName="))
    assert.is_false(m("spec.nodeName!="))
    assert.is_true(m("spec.replicas=3"))
    assert.is_true(m("spec.paused=false"))
    assert.is_true(m("metadata.name.deeper="))
  end)

  it("rejects what Kubernetes rejects, with its messages", function()
    local cases = {
      { "abc", "invalid selector: 'abc'; can't understand 'abc'" },
      { "a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'" },
      { "a=b=c", "invalid field selector: unescaped character in value: 61" },
      { "a=b\\q", "invalid field selector: invalid escape sequence: \\q" },
      { "a=b\\", "invalid field selector: invalid escape sequence: \\" },
      { "a!==b", "invalid field selector: unescaped character in value: 61" },
    }
    for _, c in ipairs(cases) do
      local fs, err = selector.parse_fields(c[1])
      assert.is_nil(fs, c[1])
      assert.are.equal(c[2], err)
    end
  end)

  it("round-trips escaped values", function()
    local fs = assert(selector.parse_fields("a=x\\=y\\\\z"))
    assert.are.same({ { field = "a", operator = "=", value = "x=y\\z" } }, fs:terms())
    assert.are.equal("a=x\\=y\\\\z", fs:string())
    assert.are.equal("a\\,b\\=c\\\\", selector.escape_field_value("a,b=c\\"))
  end)
end)

describe("labels_valid and annotations_valid", function()
  local core = require("moonlet.core.selector")
  local validation = require("moonlet.validation")
  it("send anything that is not a clean string map to the detailed checks", function()
    assert.is_true(core.labels_valid(nil))
    assert.is_true(core.labels_valid({}))
    assert.is_false(core.labels_valid({ app = 3 }))
    assert.is_false(core.labels_valid({ "x" }))
    assert.is_false(core.labels_valid({ ["a\0b"] = "v" }))
    assert.is_true(core.annotations_valid({ ["Example.COM/Key"] = "anything at all, spaces too" }, 100))
    assert.is_false(core.annotations_valid({ k = string.rep("x", 101) }, 100))
    assert.is_false(core.annotations_valid({ k = true }, 100))
    local errs = validation.validate_annotations({ k = string.rep("x", validation.TOTAL_ANNOTATION_SIZE_LIMIT) },
      "metadata.annotations")
    assert.are.equal(1, #errs)
    errs = validation.validate_labels({ ["bad key!"] = "v", ok = "in valid" }, "metadata.labels")
    assert.are.equal(2, #errs)
  end)
end)
