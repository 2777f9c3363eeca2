-- kubectl JSONPath templates (`get -o jsonpath=...`): a table of cases
-- modelled on client-go's jsonpath tests.
require("moonlet_core")
local jsonpath = require("moonlet.printers.jsonpath")
local json = require("moonlet.json")

local DATA = json.decode([[{
  "kind": "List",
  "items": [
    {"metadata": {"name": "a", "labels": {"app": "web"},
                  "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "cfg"}},
     "spec": {"replicas": 3, "ok": true,
              "containers": [{"name": "c1", "image": "i1"}, {"name": "c2", "image": "i2"}]},
     "status": {"phase": "Running"}},
    {"metadata": {"name": "b"},
     "spec": {"replicas": 1, "containers": [{"name": "c3", "image": "i3"}]},
     "status": {"phase": "Pending"}}
  ],
  "empty": [],
  "nothing": null,
  "ratio": 0.5
}]])

local function run(t)
  return jsonpath.execute(t, DATA, {
    encode = function(v) return json.encode(v, { sort_keys = true }) end,
    is_array = json.is_array, null = json.null,
  })
end

describe("jsonpath", function()
  local cases = {
    { "{.kind}", "List" },
    { "{.items[*].metadata.name}", "a b" },
    { "{range .items[*]}{.metadata.name}{\"\\n\"}{end}", "a\nb\n" },
    { "{range .items[*]}[{.metadata.name},{.status.phase}] {end}", "[a,Running] [b,Pending] " },
    { "{.items[?(@.status.phase==\"Running\")].metadata.name}", "a" },
    { "{.items[?(@.status.phase=='Running')].metadata.name}", "a" },
    { "{.items[?(@.status.phase!=\"Running\")].metadata.name}", "b" },
    { "{.items[?(@.spec.replicas>1)].metadata.name}", "a" },
    { "{.items[?(@.spec.replicas<=1)].metadata.name}", "b" },
    { "{.items[?(@.metadata.labels.app)].metadata.name}", "a" },
    { "{.items[?(@.spec.ok==true)].metadata.name}", "a" },
    { "{..image}", "i1 i2 i3" },
    { "{.items[0].metadata.name}", "a" },
    { "{.items[-1].metadata.name}", "b" },
    { "{.items[0:1].metadata.name}", "a" },
    { "{.items[:].metadata.name}", "a b" },
    { "{.items[0:2:2].metadata.name}", "a" },
    { "{.items[*].spec.containers[*].name}", "c1 c2 c3" },
    { "{.items[0].spec.containers[*]['name','image']}", "c1 c2 i1 i2" },
    { "{.items[0].metadata.labels}", "{\"app\":\"web\"}" },
    { "{.items[1].spec.containers[0]}", "{\"image\":\"i3\",\"name\":\"c3\"}" },
    { "{.empty}", "[]" },
    { "{.nothing}", "null" },
    { "{.ratio} {.items[0].spec.replicas} {.items[0].spec.ok}", "0.5 3 true" },
    { "{.items[*].metadata.missing}", "" },
    { "{.items[0].metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}", "cfg" },
    { "{.items[0].metadata['annotations']['kubectl.kubernetes.io/last-applied-configuration']}", "cfg" },
    { "name: {.items[0].metadata.name}!", "name: a!" },
    { "plain text", "plain text" },
    { "{range .items[*]}{.metadata.name}:{range .spec.containers[*]}{.name},{end};{end}", "a:c1,c2,;b:c3,;" },
    { "{$.kind}", "List" },
    { "{.items[*]['metadata.name']}", "" },
  }
  for _, c in ipairs(cases) do
    it("evaluates " .. c[1], function()
      local out, err = run(c[1])
      assert.is_nil(err)
      assert.are.equal(c[2], out)
    end)
  end

  it("reports index errors like client-go", function()
    local out, err = run("{.items[5]}")
    assert.is_nil(out)
    assert.are.equal("array index out of bounds: index 5, length 2", err)
  end)

  it("reports missing keys when they are not allowed", function()
    local out, err = jsonpath.execute("{.nope}", DATA, { allow_missing = false })
    assert.is_nil(out)
    assert.are.equal("nope is not found", err)
  end)

  it("reports syntax errors", function()
    assert.are.equal("unclosed action", select(2, run("{.kind")))
    assert.are.equal("not in range, nothing to end", select(2, run("{end}")))
    assert.are.equal("unclosed range", select(2, run("{range .items[*]}x")))
  end)
end)
