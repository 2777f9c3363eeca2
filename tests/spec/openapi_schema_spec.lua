-- The OpenAPI v3 components.schemas generated from the kind plugins'
-- schemas (moonlet.api.openapi_schema through the discovery documents):
-- kube-apiserver's names and $refs, the GVK extension kubectl explain looks
-- for, the strategic-merge extensions kubectl apply builds patches from,
-- our descriptions, a plugin kind from examples/greeting; and the plaintext
-- moonlet explain renders from it.
require("moonlet_core")
local json = require("moonlet.json")
local kinds = require("moonlet.api.kinds")
local discovery = require("moonlet.api.discovery")
local openapi_schema = require("moonlet.api.openapi_schema")
local explain = require("moonlet.cli.explain")

local SRC = os.getenv("ML_SRC") or "."
local REF = "#/components/schemas/"

local function load_kinds()
  require("api_stack").register_kinds({ SRC .. "/examples/greeting" })
end

-- The document as a client sees it: through JSON.
local function doc(gvpath)
  return json.decode(json.encode(discovery.openapi_doc(gvpath)))
end

local function target(d, prop)
  local ref = prop["$ref"] or (prop.allOf and prop.allOf[1]["$ref"])
  assert.is_string(ref)
  assert.are.equal(REF, ref:sub(1, #REF))
  local s = d.components.schemas[ref:sub(#REF + 1)]
  assert.is_table(s, "dangling $ref " .. ref)
  return s, ref:sub(#REF + 1)
end

describe("openapi schemas", function()
  setup(load_kinds)

  it("names the core kinds as kube-apiserver does, with their GVK", function()
    local d = doc("api/v1")
    local pod = d.components.schemas["io.k8s.api.core.v1.Pod"]
    assert.is_table(pod)
    assert.are.same({ { group = "", version = "v1", kind = "Pod" } }, pod["x-kubernetes-group-version-kind"])
    assert.are.equal("object", pod.type)
    local _, spec = target(d, pod.properties.spec)
    assert.are.equal("io.k8s.api.core.v1.PodSpec", spec)
    local _, meta = target(d, pod.properties.metadata)
    assert.are.equal("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", meta)
    assert.are.equal("string", pod.properties.apiVersion.type)
  end)

  it("every $ref resolves inside its document", function()
    for gvpath in pairs(discovery.openapi_index().paths) do
      local d = doc(gvpath)
      local n = 0
      local function walk(v)
        if type(v) ~= "table" then return end
        if type(v["$ref"]) == "string" then
          n = n + 1
          local name = v["$ref"]:sub(#REF + 1)
          assert.is_table(d.components.schemas[name], gvpath .. ": dangling " .. v["$ref"])
        end
        for _, x in pairs(v) do walk(x) end
      end
      walk(d)
      assert.is_true(n > 0, gvpath)
    end
  end)

  it("gives arrays, maps, int-or-string, quantity and date-time their shapes", function()
    local d = doc("api/v1")
    local s = d.components.schemas
    local container = s["io.k8s.api.core.v1.Container"]
    assert.are.same({ "name" }, container.required)
    assert.are.equal("array", container.properties.command.type)
    assert.are.equal("string", container.properties.command.items.type)
    local ports = container.properties.ports
    assert.are.equal("array", ports.type)
    assert.are.equal(REF .. "io.k8s.api.core.v1.ContainerPort", ports.items["$ref"])
    local res = s["io.k8s.api.core.v1.ResourceRequirements"]
    assert.are.equal("object", res.properties.limits.type)
    assert.are.equal(REF .. "io.k8s.apimachinery.pkg.api.resource.Quantity",
      res.properties.limits.additionalProperties["$ref"])
    local http = s["io.k8s.api.core.v1.HTTPGetAction"]
    local _, port = target(d, http.properties.port)
    assert.are.equal("io.k8s.apimachinery.pkg.util.intstr.IntOrString", port)
    assert.is_true(s[port]["x-kubernetes-int-or-string"])
    local _, t = target(d, s["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].properties.creationTimestamp)
    assert.are.equal("date-time", s[t].format)
    assert.are.equal("string", s[t].type)
    local probe = s["io.k8s.api.core.v1.Probe"]
    assert.are.same({ type = "integer", format = "int32",
      description = probe.properties.periodSeconds.description }, probe.properties.periodSeconds)
    assert.are.equal("int64", probe.properties.terminationGracePeriodSeconds.format)
    -- an open (any JSON) field is an object kubectl does not walk into ...
    assert.are.equal("object", s["io.k8s.api.core.v1.Container"].properties.stdin and
      s["io.k8s.api.core.v1.LuaAction"].properties.args.type)
    -- ... unless its Kubernetes structure is published (kubectl apply walks it)
    local _, sc = target(d, s["io.k8s.api.core.v1.Container"].properties.securityContext)
    assert.are.equal("io.k8s.api.core.v1.SecurityContext", sc)
    local aff = s["io.k8s.api.core.v1.Affinity"]
    assert.is_table(target(d, aff.properties.nodeAffinity).properties.requiredDuringSchedulingIgnoredDuringExecution)
  end)

  it("carries the strategic-merge keys of merge_keys.lua on list fields", function()
    local s = doc("apis/apps/v1").components.schemas
    local spec = s["io.k8s.api.core.v1.PodSpec"]
    assert.are.equal("name", spec.properties.containers["x-kubernetes-patch-merge-key"])
    assert.are.equal("merge", spec.properties.containers["x-kubernetes-patch-strategy"])
    assert.are.equal("merge,retainKeys", spec.properties.volumes["x-kubernetes-patch-strategy"])
    assert.is_nil(spec.properties.tolerations["x-kubernetes-patch-strategy"])
    local c = s["io.k8s.api.core.v1.Container"].properties
    assert.are.equal("name", c.env["x-kubernetes-patch-merge-key"])
    assert.are.equal("containerPort", c.ports["x-kubernetes-patch-merge-key"])
    assert.are.equal("mountPath", c.volumeMounts["x-kubernetes-patch-merge-key"])
    assert.is_nil(c.envFrom["x-kubernetes-patch-merge-key"])
    local meta = s["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].properties
    assert.are.equal("uid", meta.ownerReferences["x-kubernetes-patch-merge-key"])
    assert.are.equal("merge", meta.finalizers["x-kubernetes-patch-strategy"])
    local dspec = s["io.k8s.api.apps.v1.DeploymentSpec"].properties
    assert.are.equal("retainKeys", dspec.strategy["x-kubernetes-patch-strategy"])
    assert.are.equal("type", s["io.k8s.api.apps.v1.DeploymentStatus"].properties.conditions["x-kubernetes-patch-merge-key"])
  end)

  it("names group types by their group and references the kind from the paths", function()
    local d = doc("apis/batch/v1")
    local s = d.components.schemas
    assert.is_table(s["io.k8s.api.batch.v1.CronJob"])
    assert.is_table(s["io.k8s.api.batch.v1.JobTemplateSpec"])
    assert.is_table(s["io.k8s.api.core.v1.PodTemplateSpec"])
    local op = d.paths["/apis/batch/v1/namespaces/{namespace}/cronjobs/{name}"].get
    assert.are.equal(REF .. "io.k8s.api.batch.v1.CronJob",
      op.responses["200"].content["application/json"].schema["$ref"])
    -- scale answers autoscaling/v1 Scale, not the kind
    local sc = doc("apis/apps/v1").paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"].get
    assert.is_nil(sc.responses["200"].content["application/json"].schema["$ref"])
  end)

  it("describes the chapter's fields in our words, and leaves the rest empty", function()
    local s = doc("api/v1").components.schemas
    local probe = s["io.k8s.api.core.v1.Probe"]
    assert.matches("Defaults to 10", probe.properties.periodSeconds.description)
    assert.is_string(probe.description)
    assert.is_string(s["io.k8s.api.core.v1.Container"].properties.livenessProbe.description)
    assert.is_nil(s["io.k8s.api.core.v1.Container"].properties.tty.description)
  end)

  it("gives a plugin kind from --scripts a schema named like a custom resource", function()
    local d = doc("apis/example.moonlet.dev/v1")
    local gr = d.components.schemas["dev.moonlet.example.v1.Greeting"]
    assert.is_table(gr)
    assert.are.same({ { group = "example.moonlet.dev", version = "v1", kind = "Greeting" } },
      gr["x-kubernetes-group-version-kind"])
    local spec = target(d, gr.properties.spec)
    assert.are.equal("string", spec.properties.message.type)
    assert.are.equal("dev.moonlet.example.v1.Greeting", openapi_schema.kind_name(kinds.by_kind("example.moonlet.dev/v1", "Greeting")))
  end)
end)

describe("openapi documents cache", function()
  setup(load_kinds)

  it("rebuilds a document when the registered kinds change", function()
    local S = require("moonlet.api.schema")
    local before = discovery.openapi_doc("apis/example.moonlet.dev/v1")
    assert.are.equal(before, discovery.openapi_doc("apis/example.moonlet.dev/v1"))
    assert.is_nil(before.components.schemas["dev.moonlet.example.v1.Farewell"])
    kinds.register({ group = "example.moonlet.dev", version = "v1", kind = "Farewell", plural = "farewells",
      schema = S.kind("Farewell", { spec = S.struct("v1.FarewellSpec", { words = S.list(S.string) }) }) }, "test")
    local after = discovery.openapi_doc("apis/example.moonlet.dev/v1")
    local fw = after.components.schemas["dev.moonlet.example.v1.Farewell"]
    assert.is_table(fw)
    assert.is_table(after.components.schemas["dev.moonlet.example.v1.FarewellSpec"].properties.words)
    kinds.unregister_source("test")
    assert.is_nil(discovery.openapi_doc("apis/example.moonlet.dev/v1").components.schemas["dev.moonlet.example.v1.Farewell"])
  end)
end)

describe("moonlet explain rendering", function()
  setup(load_kinds)
  local POD = { group = "", version = "v1", kind = "Pod" }

  it("prints a field with its type, descriptions and fields", function()
    local text = assert(explain.render(doc("api/v1"), POD, { "spec", "containers", "livenessProbe" }))
    local head = "KIND:       Pod\nVERSION:    v1\n\nFIELD: livenessProbe <Probe>\n\n\nDESCRIPTION:\n"
    assert.are.equal(head, text:sub(1, #head))
    assert.matches("\n  periodSeconds\t<integer>\n    Seconds between two checks. Defaults to 10; the minimum is 1.\n\n", text, 1, true)
    assert.matches("\n  httpGet\t<HTTPGetAction>\n", text, 1, true)
  end)

  it("wraps descriptions at 80 columns, marks required fields, recurses", function()
    local text = assert(explain.render(doc("api/v1"), POD, { "spec", "containers" }))
    for line in text:gmatch("[^\n]+") do assert.is_true(#line <= 80, line) end
    assert.matches("\n  name\t<string> -required-\n", text, 1, true)
    local rec = assert(explain.render(doc("api/v1"), POD, { "spec", "containers", "livenessProbe" }, true))
    assert.matches("\n  httpGet\t<HTTPGetAction>\n    host\t<string>\n    httpHeaders\t<[]HTTPHeader>\n      name\t<string> -required-\n", rec, 1, true)
    assert.matches("\n    port\t<IntOrString> -required-\n", rec, 1, true)
  end)

  it("reports unknown fields and kinds missing from the document", function()
    local text, err = explain.render(doc("api/v1"), POD, { "spec", "nosuch" })
    assert.is_nil(text)
    assert.are.equal('field "nosuch" does not exist', err)
    local _, err2 = explain.render({ components = { schemas = {} } }, POD, {})
    assert.are.equal("GVK map[group: kind:Pod version:v1] not found in OpenAPI schema", err2)
  end)
end)
