-- `moonlet delete --cascade` as kubectl 1.32 parses it: the three policies,
-- the deprecated boolean forms with their warning, the invalid-value error.
require("moonlet_core")
local fake = require("cli_fake_api")
local json = require("moonlet.json")

local function last_delete_body(api)
  local body
  for _, req in ipairs(api.log) do if req.method == "DELETE" then body = json.decode(req.body) end end
  return body
end

local function run(value)
  local api = fake.new()
  api.add("configmaps", { apiVersion = "v1", kind = "ConfigMap", metadata = { name = "a", namespace = "default" } })
  local argv = { "delete", "cm", "a", "--wait=false" }
  if value then argv[#argv + 1] = "--cascade=" .. value end
  local rc, out, err = fake.run(api, argv)
  local body = last_delete_body(api)
  return rc, out, err, body and body.propagationPolicy
end

describe("delete --cascade", function()
  it("sends Background by default and the named policies", function()
    for value, policy in pairs({ [false] = "Background", background = "Background",
                                 foreground = "Foreground", orphan = "Orphan" }) do
      local rc, out, err, sent = run(value or nil)
      assert.are.equal(0, rc)
      assert.are.equal('configmap "a" deleted\n', out)
      assert.are.equal("", err)
      assert.are.equal(policy, sent)
    end
  end)

  it("takes Go booleans with kubectl's deprecation warning", function()
    for value, policy in pairs({ ["true"] = "background", ["1"] = "background", T = "background",
                                 ["false"] = "orphan", ["0"] = "orphan", False = "orphan" }) do
      local rc, _, err, sent = run(value)
      assert.are.equal(0, rc)
      assert.are.equal(string.format("warning: --cascade=%s is deprecated (boolean value) and can be "
        .. "replaced with --cascade=%s.\n", value, policy), err)
      assert.are.equal(policy == "orphan" and "Orphan" or "Background", sent)
    end
  end)

  it("takes a bare --cascade as background without eating the next word", function()
    local api = fake.new()
    for _, n in ipairs({ "a", "b" }) do
      api.add("configmaps", { apiVersion = "v1", kind = "ConfigMap", metadata = { name = n, namespace = "default" } })
    end
    local rc, out, err = fake.run(api, { "delete", "cm", "a", "--cascade", "b", "--wait=false" })
    assert.are.equal(0, rc, err)
    assert.are.equal('configmap "a" deleted\nconfigmap "b" deleted\n', out)
    assert.are.equal("Background", last_delete_body(api).propagationPolicy)
  end)

  it("refuses anything else in kubectl's words", function()
    local rc, out, err, sent = run("yes")
    assert.are.equal(1, rc)
    assert.are.equal("", out)
    assert.are.equal('error: invalid cascade value (yes). Must be "background", "foreground", or "orphan"\n', err)
    assert.is_nil(sent)
  end)
end)
