-- Duplicate and unknown fields in request bodies under ?fieldValidation,
-- through the router: the texts of kube-apiserver's strict decoding
-- (test/integration/apiserver/field_validation_test.go): Strict answers
-- 400 with every finding in one message, Warn one Warning each and keeps
-- the last value, Ignore says nothing. JSON bodies in text order, YAML
-- bodies go-yaml's lines first, patches their own duplicates first.
require("moonlet_core")
local json = require("moonlet.json")
local api_stack = require("api_stack")
local fake = require("fake_client") -- for fake.run only

-- The Deployment of field_validation_test.go's invalidBodyJSON.
local function deployment_json(name)
  return [[{
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "dupename", "name": "]] .. name .. [[", "labels": {"app": "nginx"},
      "unknownMeta": "metaVal"},
    "spec": {"unknown1": "val1", "unknownDupe": "valDupe", "unknownDupe": "valDupe2",
      "paused": true, "paused": false,
      "selector": {"matchLabels": {"app": "nginx"}},
      "template": {"metadata": {"labels": {"app": "nginx"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:latest", "unknownNested": "val1",
          "imagePullPolicy": "Always", "imagePullPolicy": "Never"}]}}}}]]
end

-- Its invalidBodyYAML.
local function deployment_yaml(name)
  return table.concat({ "apiVersion: apps/v1", "kind: Deployment", "metadata:", "  name: dupename",
    "  name: " .. name, "  unknownMeta: metaVal", "  labels:", "    app: nginx", "spec:",
    "  unknown1: val1", "  unknownDupe: valDupe", "  unknownDupe: valDupe2", "  paused: true",
    "  paused: false", "  selector:", "    matchLabels:", "      app: nginx", "  template:",
    "    metadata:", "      labels:", "        app: nginx", "    spec:", "      containers:",
    "      - name: nginx", "        image: nginx:latest", "        unknownNested: val1",
    "        imagePullPolicy: Always", "        imagePullPolicy: Never" }, "\n")
end

local JSON_FINDINGS = {
  'duplicate field "metadata.name"',
  'unknown field "metadata.unknownMeta"',
  'unknown field "spec.unknown1"',
  'unknown field "spec.unknownDupe"',
  'duplicate field "spec.paused"',
  'unknown field "spec.template.spec.containers[0].unknownNested"',
  'duplicate field "spec.template.spec.containers[0].imagePullPolicy"',
}

local YAML_LINES = {
  'line 5: key "name" already set in map',
  'line 12: key "unknownDupe" already set in map',
  'line 14: key "paused" already set in map',
  'line 28: key "imagePullPolicy" already set in map',
}

local YAML_UNKNOWN = {
  'unknown field "metadata.unknownMeta"',
  'unknown field "spec.template.spec.containers[0].unknownNested"',
  'unknown field "spec.unknown1"',
  'unknown field "spec.unknownDupe"',
}

local function warning_header(texts)
  local parts = {}
  for i, w in ipairs(texts) do parts[i] = string.format('299 - "%s"', (w:gsub('[\\"]', "\\%0"))) end
  return table.concat(parts, ", ")
end

local function concat(...)
  local out = {}
  for _, list in ipairs({ ... }) do
    for _, v in ipairs(list) do out[#out + 1] = v end
  end
  return out
end

describe("fieldValidation of duplicate fields", function()
  local st, call

  local function with_stack(fn)
    fake.run(function()
      st = api_stack.new()
      call = function(method, path, ct, body)
        local out = {}
        local bare, query = path:match("^([^?]*)%??(.*)$")
        st.router:handle({ method = method, path = bare, query = query,
          headers = { ["content-type"] = ct }, body = body, transport = "unix" },
          { respond = function(_, code, headers, text) out.code, out.headers, out.body = code, headers, text end })
        out.obj = out.body and json.decode(out.body)
        return out
      end
      local ok, err = pcall(fn)
      api_stack.close(st, ok, err)
    end)
  end

  local DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"

  it("answers a JSON create with Kubernetes' texts, in the body's order", function()
    with_stack(function()
      local res = call("POST", DEPLOYMENTS .. "?fieldValidation=Strict", "application/json", deployment_json("s"))
      assert.are.equal(400, res.code)
      assert.are.equal("BadRequest", res.obj.reason)
      assert.are.equal("strict decoding error: " .. table.concat(JSON_FINDINGS, ", "), res.obj.message)

      res = call("POST", DEPLOYMENTS .. "?fieldValidation=Warn", "application/json", deployment_json("w"))
      assert.are.equal(201, res.code)
      assert.are.equal(warning_header(JSON_FINDINGS), res.headers["Warning"])
      -- the last value of each repeated field is the one kept
      assert.are.equal("w", res.obj.metadata.name)
      assert.is_not_true(res.obj.spec.paused)
      assert.are.equal("Never", res.obj.spec.template.spec.containers[1].imagePullPolicy)

      -- Warn is the default
      res = call("POST", DEPLOYMENTS, "application/json", deployment_json("d"))
      assert.are.equal(201, res.code)
      assert.are.equal(warning_header(JSON_FINDINGS), res.headers["Warning"])

      res = call("POST", DEPLOYMENTS .. "?fieldValidation=Ignore", "application/json", deployment_json("i"))
      assert.are.equal(201, res.code)
      assert.is_nil(res.headers["Warning"])
      assert.are.equal("i", res.obj.metadata.name)
    end)
  end)

  it("names a duplicate alone, and several unknown fields in the body's order", function()
    with_stack(function()
      local res = call("POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", "application/json",
        '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"b"},"data":{"x":"1","x":"2"}}')
      assert.are.equal(400, res.code)
      assert.are.equal('strict decoding error: duplicate field "metadata.name", duplicate field "data.x"',
        res.obj.message)
      -- unknown fields without duplicates: text order, not sorted
      res = call("POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", "application/json",
        '{"zz":1,"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"aa":2}')
      assert.are.equal('strict decoding error: unknown field "zz", unknown field "aa"', res.obj.message)
      -- a name three times is one finding; past 100 findings the rest are left out
      res = call("POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", "application/json",
        '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","name":"d","name":"e"}}')
      assert.are.equal('strict decoding error: duplicate field "metadata.name"', res.obj.message)
      local data = {}
      for i = 1, 150 do data[i] = string.format('"k%d":"1","k%d":"2"', i, i) end
      res = call("POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", "application/json",
        '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{' .. table.concat(data, ",") .. '},"zz":1}')
      local _, findings = res.obj.message:gsub('field "', "")
      assert.are.equal(100, findings)
      assert.truthy(res.obj.message:find('duplicate field "data.k100"$'))
      -- a duplicate under an unknown field is not reported (its value is skipped)
      res = call("POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", "application/json",
        '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"bogus":{"k":1,"k":2}}')
      assert.are.equal('strict decoding error: unknown field "bogus"', res.obj.message)
    end)
  end)

  it("reports a custom resource's duplicates first, then its unknown fields, as for a CRD", function()
    with_stack(function()
      local kinds = require("moonlet.api.kinds")
      local S = require("moonlet.api.schema")
      kinds.register({ group = "example.moonlet.dev", version = "v1", kind = "Widget", plural = "widgets",
        namespaced = true, schema = S.kind("Widget", { spec = S.struct("v1.WidgetSpec", {
          knownField1 = S.string, ports = S.list(S.struct("v1.WidgetPort", { name = S.string,
            hostPort = S.integer })) }) }) }, "api_strict_spec")
      local ok, err = pcall(function()
        -- field_validation_test.go's crdInvalidBody, cut to this schema
        local res = call("POST", "/apis/example.moonlet.dev/v1/namespaces/default/widgets?fieldValidation=Strict",
          "application/json", [[{"apiVersion": "example.moonlet.dev/v1", "kind": "Widget",
            "metadata": {"name": "dupename", "name": "w", "unknownMeta": "metaVal"},
            "spec": {"unknown1": "val1", "unknownDupe": "valDupe", "unknownDupe": "valDupe2",
              "knownField1": "val1", "knownField1": "val2",
              "ports": [{"name": "portName", "hostPort": 8081, "hostPort": 8082, "unknownNested": "val"}]}}]])
        assert.are.equal(400, res.code)
        assert.are.equal('strict decoding error: duplicate field "metadata.name", duplicate field "spec.unknownDupe", '
          .. 'duplicate field "spec.knownField1", duplicate field "spec.ports[0].hostPort", '
          .. 'unknown field "metadata.unknownMeta", unknown field "spec.ports[0].unknownNested", '
          .. 'unknown field "spec.unknown1", unknown field "spec.unknownDupe"', res.obj.message)
      end)
      kinds.unregister_source("api_strict_spec")
      assert(ok, err)
    end)
  end)

  it("answers a YAML create with go-yaml's lines, then the unknown fields", function()
    with_stack(function()
      local res = call("POST", DEPLOYMENTS .. "?fieldValidation=Strict", "application/yaml", deployment_yaml("s"))
      assert.are.equal(400, res.code)
      assert.are.equal("strict decoding error: yaml: unmarshal errors:\n  " .. table.concat(YAML_LINES, "\n  ")
        .. ", " .. table.concat(YAML_UNKNOWN, ", "), res.obj.message)

      res = call("POST", DEPLOYMENTS .. "?fieldValidation=Warn", "application/yaml", deployment_yaml("w"))
      assert.are.equal(201, res.code)
      assert.are.equal(warning_header(concat(YAML_LINES, YAML_UNKNOWN)), res.headers["Warning"])
      assert.are.equal("w", res.obj.metadata.name)

      res = call("POST", DEPLOYMENTS .. "?fieldValidation=Ignore", "application/yaml", deployment_yaml("i"))
      assert.are.equal(201, res.code)
      assert.is_nil(res.headers["Warning"])
    end)
  end)

  it("answers a PUT as a create", function()
    with_stack(function()
      assert.are.equal(201, call("POST", DEPLOYMENTS .. "?fieldValidation=Ignore", "application/json",
        deployment_json("p")).code)
      local res = call("PUT", DEPLOYMENTS .. "/p?fieldValidation=Strict", "application/json", deployment_json("p"))
      assert.are.equal(400, res.code)
      assert.are.equal("strict decoding error: " .. table.concat(JSON_FINDINGS, ", "), res.obj.message)
      res = call("PUT", DEPLOYMENTS .. "/p?fieldValidation=Warn", "application/json", deployment_json("p"))
      assert.are.equal(200, res.code)
      assert.are.equal(warning_header(JSON_FINDINGS), res.headers["Warning"])
    end)
  end)

  it("reports a patch's own duplicates first, then the patched object's unknown fields", function()
    with_stack(function()
      assert.are.equal(201, call("POST", DEPLOYMENTS .. "?fieldValidation=Ignore", "application/json",
        deployment_json("m")).code)
      local merge = [[{"spec": {"unknown1": "val1", "unknownDupe": "valDupe", "unknownDupe": "valDupe2",
        "paused": true, "paused": false, "template": {"spec": {"containers": [{"name": "nginx",
        "image": "nginx:latest", "unknownNested": "val1", "imagePullPolicy": "Always",
        "imagePullPolicy": "Never"}]}}}}]]
      local findings = {
        'duplicate field "spec.unknownDupe"',
        'duplicate field "spec.paused"',
        'duplicate field "spec.template.spec.containers[0].imagePullPolicy"',
        'unknown field "spec.template.spec.containers[0].unknownNested"',
        'unknown field "spec.unknown1"',
        'unknown field "spec.unknownDupe"',
      }
      local res = call("PATCH", DEPLOYMENTS .. "/m?fieldValidation=Strict", "application/merge-patch+json", merge)
      assert.are.equal("strict decoding error: " .. table.concat(findings, ", "), res.obj.message)
      res = call("PATCH", DEPLOYMENTS .. "/m?fieldValidation=Warn", "application/merge-patch+json", merge)
      assert.are.equal(200, res.code)
      assert.are.equal(warning_header(findings), res.headers["Warning"])
      assert.is_false(res.obj.spec.paused)
      res = call("PATCH", DEPLOYMENTS .. "/m?fieldValidation=Ignore", "application/merge-patch+json", merge)
      assert.are.equal(200, res.code)
      assert.is_nil(res.headers["Warning"])

      -- duplicates alone, in a strategic merge patch
      res = call("PATCH", DEPLOYMENTS .. "/m?fieldValidation=Strict", "application/strategic-merge-patch+json",
        '{"spec":{"paused":true,"paused":false}}')
      assert.are.equal('strict decoding error: duplicate field "spec.paused"', res.obj.message)

      -- a JSON patch's operations
      res = call("PATCH", DEPLOYMENTS .. "/m?fieldValidation=Strict", "application/json-patch+json",
        '[{"op":"add","path":"/spec/paused","path":"/spec/minReadySeconds","value":3}]')
      assert.are.equal('strict decoding error: json patch duplicate field "[0].path"', res.obj.message)
    end)
  end)
end)
