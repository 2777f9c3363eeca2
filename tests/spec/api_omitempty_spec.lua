-- Empty maps and lists in what the API stores and answers: kube-apiserver
-- decodes each write into Go structs and encodes it back with
-- encoding/json, whose omitempty leaves an empty map or slice out, so
-- `labels: {}`, `data: {}` or `args: []` read back as absent (and `kubectl
-- diff` shows no `annotations: {}` that the real server would not keep).
-- Fields Go keeps when empty (PodSpec.containers) and empty structs
-- (`resources: {}`) stay.
require("moonlet_core")
local json = require("moonlet.json")
local api_stack = require("api_stack")
local fake = require("fake_client") -- for fake.run only

local CM = "/api/v1/namespaces/default/configmaps"

-- Runs fn(call) on a fresh API stack; call(method, path, body, ctype) ->
-- status code, decoded answer.
local function with_api(fn)
  fake.run(function()
    local st = api_stack.new()
    local ok, err = pcall(fn, function(method, path, body, ctype)
      local out = {}
      st.router:handle({ method = method, path = path, query = "",
        headers = { ["content-type"] = ctype or "application/json" },
        body = body and json.encode(body), transport = "unix" },
        { respond = function(_, code, _, text) out.code, out.body = code, text end })
      return out.code, out.body and json.decode(out.body)
    end)
    api_stack.close(st, ok, err)
  end)
end

describe("empty maps and lists (Go's omitempty)", function()
  it("are left out of a created object and of what is read back", function()
    with_api(function(call)
      local code, cm = call("POST", CM, { apiVersion = "v1", kind = "ConfigMap",
        metadata = { name = "c", labels = json.object({}), annotations = json.object({}),
          finalizers = json.array({}), ownerReferences = json.array({}) },
        data = json.object({}), binaryData = json.object({}) })
      assert.are.equal(201, code)
      for _, k in ipairs({ "labels", "annotations", "finalizers", "ownerReferences" }) do
        assert.is_nil(cm.metadata[k], k)
      end
      assert.is_nil(cm.data)
      assert.is_nil(cm.binaryData)
      local _, got = call("GET", CM .. "/c")
      assert.is_nil(got.metadata.labels)
      assert.is_nil(got.data)
    end)
  end)

  it("keep what is not empty, empty structs and Go's non-omitempty fields", function()
    with_api(function(call)
      local code, pod = call("POST", "/api/v1/namespaces/default/pods", { apiVersion = "v1", kind = "Pod",
        metadata = { name = "p", labels = { app = "x" } },
        spec = { containers = { { name = "c", image = "i", args = json.array({}), env = json.array({}),
          resources = json.object({}) } } } })
      assert.are.equal(201, code)
      assert.are.same({ app = "x" }, pod.metadata.labels)
      local c = pod.spec.containers[1]
      assert.is_nil(c.args)
      assert.is_nil(c.env)
      assert.is_table(c.resources) -- a struct: encoding/json writes `{}`
      -- containers: [] stays for validation to name, as the API server's.
      local bad, st = call("POST", "/api/v1/namespaces/default/pods", { apiVersion = "v1", kind = "Pod",
        metadata = { name = "q" }, spec = { containers = json.array({}) } })
      assert.are.equal(422, bad)
      assert.truthy(st.message:find("spec.containers: Required value", 1, true), st.message)
    end)
  end)

  it("are dropped when a patch leaves one in the object", function()
    with_api(function(call)
      assert.are.equal(201, (call("POST", CM, { apiVersion = "v1", kind = "ConfigMap",
        metadata = { name = "c" }, data = { a = "b" } })))
      -- What `kubectl diff`/`apply` send for an object without annotations.
      local code, cm = call("PATCH", CM .. "/c", { metadata = { annotations = json.object({}) },
        data = { a = "c" } }, "application/strategic-merge-patch+json")
      assert.are.equal(200, code)
      assert.is_nil(cm.metadata.annotations)
      assert.are.same({ a = "c" }, cm.data)
      code, cm = call("PATCH", CM .. "/c", { metadata = { labels = json.object({}) } },
        "application/merge-patch+json")
      assert.are.equal(200, code)
      assert.is_nil(cm.metadata.labels)
      -- A merge patch that empties a map: gone, not `data: {}`.
      code, cm = call("PATCH", CM .. "/c", { data = { a = json.null } }, "application/merge-patch+json")
      assert.are.equal(200, code)
      assert.is_nil(cm.data)
      -- A JSON patch that adds an empty list.
      code, cm = call("PATCH", CM .. "/c", { { op = "add", path = "/metadata/finalizers",
        value = json.array({}) } }, "application/json-patch+json")
      assert.are.equal(200, code)
      assert.is_nil(cm.metadata.finalizers)
    end)
  end)

  it("stay in a custom resource, stored as the JSON given", function()
    with_api(function(call)
      local kinds = require("moonlet.api.kinds")
      local S = require("moonlet.api.schema")
      kinds.register({ group = "example.moonlet.dev", version = "v1", kind = "Widget", plural = "widgets",
        schema = S.kind("Widget", { spec = S.struct("v1.WidgetSpec", { tags = S.map(S.string),
          items = S.list(S.string) }) }) }, "api_omitempty_spec")
      local code, w = call("POST", "/apis/example.moonlet.dev/v1/namespaces/default/widgets",
        { apiVersion = "example.moonlet.dev/v1", kind = "Widget", metadata = { name = "w" },
          spec = { tags = json.object({}), items = json.array({}) } })
      kinds.unregister_source("api_omitempty_spec")
      assert.are.equal(201, code)
      assert.is_table(w.spec.tags)
      assert.is_table(w.spec.items)
    end)
  end)
end)
