-- CLI verbs end to end against an in-memory API (tests/spec/cli_fake_api):
-- outputs and error messages as kubectl 1.32 prints them.
require("moonlet_core")
local fake = require("cli_fake_api")
local args = require("moonlet.cli.args")
local json = require("moonlet.json")

local function cm(name, ns, data, labels)
  return { apiVersion = "v1", kind = "ConfigMap", data = data,
    metadata = { name = name, namespace = ns or "default", labels = labels } }
end

local function tmpfile(text)
  local p = os.tmpname()
  local f = assert(io.open(p, "w"))
  f:write(text)
  f:close()
  return p
end

describe("cli args", function()
  local specs = {
    { name = "output", short = "o", type = "string" },
    { name = "all-namespaces", short = "A", type = "bool" },
    { name = "recursive", short = "R", type = "bool" },
    { name = "filename", short = "f", type = "list" },
    { name = "grace-period", type = "int", default = -1 },
    { name = "label-columns", short = "L", type = "list", split = true },
  }

  it("accepts pflag forms", function()
    local p = assert(args.parse({ "get", "-o", "wide", "cm", "-A", "--grace-period=5", "x",
      "-fa.yaml", "--filename", "b.yaml", "-Lapp,tier", "-L=x" }, specs))
    assert.are.same({ "get", "cm", "x" }, p.args)
    assert.are.equal("wide", p.flags.output)
    assert.is_true(p.flags["all-namespaces"])
    assert.are.equal(5, p.flags["grace-period"])
    assert.are.same({ "a.yaml", "b.yaml" }, p.flags.filename)
    assert.are.same({ "app", "tier", "x" }, p.flags["label-columns"])
  end)

  it("groups short booleans and stops at --", function()
    local p = assert(args.parse({ "-ARf", "x.yaml", "--", "-o" }, specs))
    assert.is_true(p.flags.recursive)
    assert.is_true(p.flags["all-namespaces"])
    assert.are.same({ "x.yaml" }, p.flags.filename)
    assert.are.same({ "-o" }, p.args)
    assert.is_false(assert(args.parse({ "--all-namespaces=false" }, specs)).flags["all-namespaces"])
  end)

  it("reports bad flags like pflag", function()
    assert.are.equal("unknown flag: --nope", select(2, args.parse({ "--nope" }, specs)))
    assert.are.equal("unknown shorthand flag: 'z' in -z", select(2, args.parse({ "-z" }, specs)))
    assert.are.equal("flag needs an argument: --output", select(2, args.parse({ "--output" }, specs)))
    assert.are.equal('invalid argument "x" for "--grace-period" flag: strconv.ParseInt: parsing "x": invalid syntax',
      select(2, args.parse({ "--grace-period", "x" }, specs)))
  end)
end)

describe("cli get", function()
  local api
  before_each(function()
    api = fake.new()
    api.put("configmaps", cm("kube-root-ca.crt", "default", { ["ca.crt"] = "x" }))
    api.put("configmaps", cm("web", "default", { a = "1", b = "2" }, { app = "web" }))
    api.put("configmaps", cm("other", "kube-system", {}, { app = "sys" }))
    api.put("namespaces", { apiVersion = "v1", kind = "Namespace", metadata = { name = "default" } })
  end)

  it("prints the server's table", function()
    local rc, out, err = fake.run(api, { "get", "cm" })
    assert.are.equal(0, rc)
    assert.are.equal("", err)
    assert.are.equal("NAME               DATA   AGE\nkube-root-ca.crt   1      5m\nweb                2      5m\n", out)
  end)

  it("prints wide, -A, --show-labels and -L columns", function()
    local _, out = fake.run(api, { "get", "configmaps", "-A", "--show-labels" })
    assert.are.equal(
      "NAMESPACE     NAME               DATA   AGE   LABELS\n" ..
      "default       kube-root-ca.crt   1      5m    <none>\n" ..
      "default       web                2      5m    app=web\n" ..
      "kube-system   other              0      5m    app=sys\n", out)
    _, out = fake.run(api, { "get", "cm", "web", "-o", "wide", "-L", "app" })
    assert.are.equal("NAME   DATA   AGE   UID       APP\nweb    2      5m    uid-web   web\n", out)
  end)

  it("gets named objects and TYPE/NAME forms", function()
    local rc, out = fake.run(api, { "get", "cm/web", "configmap/kube-root-ca.crt", "--no-headers" })
    assert.are.equal(0, rc)
    assert.are.equal("web                2     5m\nkube-root-ca.crt   1     5m\n", out)
  end)

  it("reports missing objects after printing the found ones", function()
    local rc, out, err = fake.run(api, { "get", "cm", "web", "nope" })
    assert.are.equal(1, rc)
    assert.are.equal("NAME   DATA   AGE\nweb    2      5m\n", out)
    assert.are.equal('Error from server (NotFound): configmaps "nope" not found\n', err)
    rc, out, err = fake.run(api, { "get", "cm", "nope", "--ignore-not-found" })
    assert.are.equal(0, rc)
    assert.are.equal("", out .. err)
  end)

  it("reports a jsonpath syntax error as kubectl does, before any request", function()
    local sent = #api.log
    local rc, out, err = fake.run(api, { "get", "cm", "web", "-o", "jsonpath={.data." })
    assert.are.equal(1, rc)
    assert.are.equal("", out)
    assert.are.equal("error: error parsing jsonpath {.data., unclosed action\n", err)
    for i = sent + 1, #api.log do
      assert.is_nil(api.log[i].path:find("/configmaps/web", 1, true))
    end
  end)

  it("expands a category (get all) as kubectl does", function()
    local rc, out, err = fake.run(api, { "get", "all" })
    assert.are.equal(0, rc)
    assert.are.equal("", out)
    assert.are.equal("No resources found in default namespace.\n", err)
    api.put("deployments", { apiVersion = "apps/v1", kind = "Deployment",
      metadata = { name = "web", namespace = "default" }, spec = { replicas = 1 } })
    local _, want = fake.run(api, { "get", "deploy" })
    rc, out, err = fake.run(api, { "get", "all" })
    assert.are.equal(0, rc)
    assert.are.equal("", err)
    assert.are.equal(want, out)
    assert.truthy(out:find("web", 1, true))
  end)

  it("reports unknown resource types", function()
    local rc, out, err = fake.run(api, { "get", "foo" })
    assert.are.equal(1, rc)
    assert.are.equal("", out)
    assert.are.equal('error: the server doesn\'t have a resource type "foo"\n', err)
  end)

  it("says so when nothing matches", function()
    local rc, out, err = fake.run(api, { "get", "cm", "-n", "empty" })
    assert.are.equal(0, rc)
    assert.are.equal("", out)
    assert.are.equal("No resources found in empty namespace.\n", err)
    _, _, err = fake.run(api, { "get", "cm", "-A", "-l", "app=none" })
    assert.are.equal("No resources found\n", err)
    _, _, err = fake.run(api, { "get", "deploy" })
    assert.are.equal("No resources found in default namespace.\n", err)
  end)

  it("filters with label and field selectors", function()
    local _, out = fake.run(api, { "get", "cm", "-l", "app=web", "-o", "name" })
    assert.are.equal("configmap/web\n", out)
    _, out = fake.run(api, { "get", "cm", "--field-selector", "metadata.name=kube-root-ca.crt", "-o", "name" })
    assert.are.equal("configmap/kube-root-ca.crt\n", out)
    local req = api.log[#api.log]
    assert.are.equal("/api/v1/namespaces/default/configmaps?fieldSelector=metadata.name%3Dkube-root-ca.crt&limit=500",
      req.path)
  end)

  it("prints JSON like kubectl: one object, or a List", function()
    local _, out = fake.run(api, { "get", "cm", "web", "-o", "json" })
    local obj = json.decode(out)
    assert.are.equal("ConfigMap", obj.kind)
    assert.are.equal("web", obj.metadata.name)
    assert.truthy(out:find('\n    "apiVersion": "v1",\n', 1, true))
    _, out = fake.run(api, { "get", "cm", "-o", "json" })
    obj = json.decode(out)
    assert.are.equal("List", obj.kind)
    assert.are.equal(2, #obj.items)
    assert.are.equal("ConfigMap", obj.items[1].kind) -- filled in like kubectl
    assert.are.equal("v1", obj.items[1].apiVersion)
    assert.are.equal("", obj.metadata.resourceVersion)
  end)

  it("prints YAML", function()
    local _, out = fake.run(api, { "get", "cm", "web", "-o", "yaml" })
    assert.truthy(out:match("^apiVersion: v1\n"))
    assert.truthy(out:find("\nkind: ConfigMap\n", 1, true))
    assert.truthy(out:find("  name: web\n", 1, true))
  end)

  it("prints jsonpath templates", function()
    local _, out = fake.run(api, { "get", "cm", "-o", "jsonpath={.items[*].metadata.name}" })
    assert.are.equal("kube-root-ca.crt web", out)
    _, out = fake.run(api, { "get", "cm", "web", "-o", "jsonpath={.data.a}" })
    assert.are.equal("1", out)
    _, out = fake.run(api, { "get", "cm", "-o",
      'jsonpath={range .items[?(@.metadata.labels.app=="web")]}{.metadata.name}{"\\n"}{end}' })
    assert.are.equal("web\n", out)
  end)

  it("prints custom columns", function()
    local _, out = fake.run(api, { "get", "cm", "-o", "custom-columns=NAME:.metadata.name,APP:.metadata.labels.app,KEYS:{.data.*}" })
    assert.are.equal("NAME               APP      KEYS\nkube-root-ca.crt   <none>   x\nweb                web      1,2\n", out)
  end)

  it("rejects unknown output formats", function()
    local rc, _, err = fake.run(api, { "get", "cm", "-o", "xml" })
    assert.are.equal(1, rc)
    assert.truthy(err:find('error: unable to match a printer suitable for the output format "xml"', 1, true))
    -- The list names only what this CLI prints; kubectl's own formats say so.
    assert.falsy(err:find("go-template", 1, true))
    rc, _, err = fake.run(api, { "get", "cm", "-o", "go-template={{.kind}}" })
    assert.are.equal(1, rc)
    assert.truthy(err:find("(go-template is printed by kubectl, not by this CLI)", 1, true))
  end)

  it("prefixes kinds when several types are asked for", function()
    local _, out = fake.run(api, { "get", "cm,ns", "-l", "app=web" })
    assert.are.equal("NAME            DATA   AGE\nconfigmap/web   2      5m\n", out)
    _, out = fake.run(api, { "get", "ns,cm" })
    assert.truthy(out:find("^NAME                STATUS   AGE\nnamespace/default   Active   5m\n\nNAME"))
  end)

  it("watches: the list first, then rows as events arrive", function()
    api.watch_events = {
      { type = "ADDED", object = cm("new-one", "default", { x = "1" }) },
      { type = "DELETED", object = cm("web", "default", { a = "1", b = "2" }) },
    }
    api.watch_events[1].object.metadata.uid = "u1"
    local rc, out = fake.run(api, { "get", "cm", "-w" })
    assert.are.equal(0, rc)
    assert.are.equal(
      "NAME               DATA   AGE\n" ..
      "kube-root-ca.crt   1      5m\n" ..
      "web                2      5m\n" ..
      "new-one            1      5m\n" ..
      "web                2      5m\n", out)
    local w = api.log[#api.log]
    assert.truthy(w.path:find("watch=true", 1, true))
    assert.truthy(w.path:find("resourceVersion=", 1, true))
    _, out = fake.run(api, { "get", "cm", "--watch-only", "--output-watch-events" })
    assert.are.equal("EVENT      NAME      DATA   AGE\nADDED      new-one   1      5m\nDELETED    web       2      5m\n", out)
  end)
end)

describe("cli apply and create", function()
  local api
  before_each(function() api = fake.new() end)

  local MANIFEST = [[
apiVersion: v1
kind: ConfigMap
metadata:
  name: one
data:
  a: "1"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: two
  namespace: other
data:
  b: "2"
]]

  it("creates, then reports unchanged, then configured", function()
    local f = tmpfile(MANIFEST)
    local rc, out, err = fake.run(api, { "apply", "-f", f })
    assert.are.equal(0, rc)
    assert.are.equal("", err)
    assert.are.equal("configmap/one created\nconfigmap/two created\n", out)
    local one = api.get("configmaps", "default", "one")
    assert.are.equal('{"apiVersion":"v1","data":{"a":"1"},"kind":"ConfigMap","metadata":{"annotations":{},"name":"one","namespace":"default"}}\n',
      one.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"])
    rc, out = fake.run(api, { "apply", "-f", f })
    assert.are.equal(0, rc)
    assert.are.equal("configmap/one unchanged\nconfigmap/two unchanged\n", out)
    local f2 = tmpfile((MANIFEST:gsub('a: "1"', 'c: "3"')))
    rc, out = fake.run(api, { "apply", "-f", f2 })
    assert.are.equal("configmap/one configured\nconfigmap/two unchanged\n", out)
    one = api.get("configmaps", "default", "one")
    assert.are.same({ c = "3" }, one.data) -- "a" was removed: it left the manifest
    os.remove(f)
    os.remove(f2)
  end)

  it("reads stdin, JSON and List kinds", function()
    local list = json.encode({ apiVersion = "v1", kind = "List", items = {
      cm("x"), { apiVersion = "v1", kind = "Namespace", metadata = { name = "n1" } } } })
    local rc, out = fake.run(api, { "create", "-f", "-" }, { stdin = list })
    assert.are.equal(0, rc)
    assert.are.equal("configmap/x created\nnamespace/n1 created\n", out)
  end)

  it("reports bad documents and still applies the good ones", function()
    local f = tmpfile([[
apiVersion: v1
kind: ConfigMap
metadata:
  name: good
---
apiVersion: v1
metadata:
  name: nokind
---
apiVersion: v1
kind: Widget
metadata:
  name: w
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: bad
]])
    local rc, out, err = fake.run(api, { "apply", "-f", f })
    assert.are.equal(1, rc)
    assert.are.equal("configmap/good created\n", out)
    assert.truthy(err:find(string.format([[error: unable to decode "%s": Object 'Kind' is missing in '{"apiVersion":"v1","metadata":{"name":"nokind"}}']], f), 1, true))
    assert.truthy(err:find(string.format([[error: resource mapping not found for name: "w" namespace: "" from "%s": no matches for kind "Widget" in version "v1"]], f), 1, true))
    assert.truthy(err:find(string.format([[Error from server (Invalid): error when creating "%s": ConfigMap "bad" is invalid: metadata.name: Invalid value]], f), 1, true))
    os.remove(f)
  end)

  it("reports a malformed YAML document with kubectl's words and still applies the rest", function()
    local f = tmpfile("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\n---\nmetadata: [\n")
    local rc, out, err = fake.run(api, { "apply", "-f", f })
    assert.are.equal(1, rc)
    assert.are.equal("configmap/fine created\n", out)
    assert.are.equal(string.format("error: error parsing %s: error converting YAML to JSON: yaml: line 1: did not find expected node content\n", f), err)
    os.remove(f)
  end)

  it("create reports AlreadyExists as kubectl does", function()
    local f = tmpfile(MANIFEST)
    fake.run(api, { "create", "-f", f })
    local rc, out, err = fake.run(api, { "create", "-f", f })
    assert.are.equal(1, rc)
    assert.are.equal("", out)
    assert.are.equal(string.format('Error from server (AlreadyExists): error when creating "%s": configmaps "one" already exists\n' ..
      'Error from server (AlreadyExists): error when creating "%s": configmaps "two" already exists\n', f, f), err)
    os.remove(f)
  end)

  it("refuses a namespace that contradicts -n", function()
    local f = tmpfile(MANIFEST)
    local rc, out, err = fake.run(api, { "apply", "-f", f, "-n", "third" })
    assert.are.equal(1, rc)
    assert.are.equal("configmap/one created\n", out)
    assert.are.equal("error: the namespace from the provided object \"other\" does not match the namespace \"third\". You must pass '--namespace=other' to perform this operation.\n", err)
    os.remove(f)
  end)

  it("reports missing paths and empty input", function()
    local rc, _, err = fake.run(api, { "apply", "-f", "/nonexistent/x.yaml" })
    assert.are.equal(1, rc)
    assert.are.equal('error: the path "/nonexistent/x.yaml" does not exist\n', err)
    rc, _, err = fake.run(api, { "apply", "-f", "-" }, { stdin = "" })
    assert.are.equal("error: no objects passed to apply\n", err)
    rc, _, err = fake.run(api, { "apply" })
    assert.are.equal("error: must specify one of -f and -k\n", err)
  end)

  it("creates namespaces and configmaps from arguments", function()
    local rc, out = fake.run(api, { "create", "namespace", "team" })
    assert.are.equal(0, rc)
    assert.are.equal("namespace/team created\n", out)
    rc, out = fake.run(api, { "create", "configmap", "cfg", "--from-literal=k=v", "--from-literal", "x=y" })
    assert.are.equal("configmap/cfg created\n", out)
    assert.are.same({ k = "v", x = "y" }, api.get("configmaps", "default", "cfg").data)
  end)
end)

describe("cli timeouts", function()
  local common = require("moonlet.cli.common")
  it("reads kubectl durations, with zero meaning no fixed limit", function()
    assert.is_nil(common.parse_timeout("0"))
    assert.is_nil(common.parse_timeout("0s"))
    assert.is_nil(common.parse_timeout(""))
    assert.are.equal(1500, common.parse_timeout("1.5s"))
    assert.are.equal(90000, common.parse_timeout("1m30s"))
  end)
end)

describe("cli delete", function()
  local api
  before_each(function()
    api = fake.new()
    api.put("configmaps", cm("a", "default", {}, { app = "x" }))
    api.put("configmaps", cm("b", "default", {}, { app = "x" }))
    api.put("configmaps", cm("c", "default", {}))
  end)

  it("deletes by name and reports missing ones", function()
    local rc, out, err = fake.run(api, { "delete", "cm", "a", "zz" })
    assert.are.equal(1, rc)
    assert.are.equal('configmap "a" deleted\n', out)
    assert.are.equal('Error from server (NotFound): configmaps "zz" not found\n', err)
    assert.is_nil(api.get("configmaps", "default", "a"))
  end)

  it("deletes by selector and --all, with cascade and grace period", function()
    local rc, out = fake.run(api, { "delete", "cm", "-l", "app=x", "--cascade=orphan", "--grace-period=5" })
    assert.are.equal(0, rc)
    assert.are.equal('configmap "a" deleted\nconfigmap "b" deleted\n', out)
    local body
    for _, req in ipairs(api.log) do if req.method == "DELETE" then body = json.decode(req.body) end end
    assert.are.equal("Orphan", body.propagationPolicy)
    assert.are.equal(5, body.gracePeriodSeconds)
    rc, out = fake.run(api, { "delete", "cm", "-l", "app=x" })
    assert.are.equal("No resources found\n", out)
    rc, out = fake.run(api, { "delete", "cm", "--all" })
    assert.are.equal('configmap "c" deleted\n', out)
  end)

  it("takes an object gone since the list as deleted, unless --ignore-not-found=false", function()
    -- Deleting "a" takes "b" with it, as the collector takes a
    -- Deployment's ReplicaSets during `delete all --all`.
    local inner = api.transport
    api.transport = function(req)
      local res = inner(req)
      if req.method == "DELETE" and req.path:find("/configmaps/a", 1, true) then
        api.objects["configmaps/default/b"] = nil
      end
      return res
    end
    local rc, out, err = fake.run(api, { "delete", "cm", "-l", "app=x" })
    assert.are.equal(0, rc)
    assert.are.equal('configmap "a" deleted\n', out)
    assert.are.equal("", err)
    api.put("configmaps", cm("a", "default", {}, { app = "x" }))
    api.put("configmaps", cm("b", "default", {}, { app = "x" }))
    rc, _, err = fake.run(api, { "delete", "cm", "--all", "--ignore-not-found=false" })
    assert.are.equal(1, rc)
    assert.are.equal('Error from server (NotFound): configmaps "b" not found\n', err)
  end)

  it("force-deletes with a warning", function()
    local rc, out, err = fake.run(api, { "delete", "cm/a", "--force" })
    assert.are.equal(0, rc)
    assert.are.equal('configmap "a" force deleted\n', out)
    assert.truthy(err:find("^Warning: Immediate deletion does not wait"))
  end)

  it("needs names, a selector or --all", function()
    local rc, _, err = fake.run(api, { "delete", "cm" })
    assert.are.equal(1, rc)
    assert.are.equal("error: resource(s) were provided, but no name was specified\n", err)
    rc, _, err = fake.run(api, { "delete", "cm", "a", "--cascade=sideways" })
    assert.truthy(err:find("invalid cascade value (sideways)", 1, true))
  end)

  it("deletes what a manifest names", function()
    local f = tmpfile("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n")
    local rc, out = fake.run(api, { "delete", "-f", f })
    assert.are.equal(0, rc)
    assert.are.equal('configmap "b" deleted\n', out)
    os.remove(f)
  end)

  -- Over HTTP, libcurl resolves dot segments: `delete pod .. -n NS` was a
  -- DELETE of the namespace and `delete cm .` of every ConfigMap. client-go
  -- refuses such names before sending anything; so must we.
  it("refuses names and namespaces that are no path segment, sending nothing", function()
    local cases = {
      { { "delete", "cm", "..", "-n", "myns" }, 'error: invalid resource name "..": [may not be \'..\']\n' },
      { { "delete", "cm", "." }, 'error: invalid resource name ".": [may not be \'.\']\n' },
      { { "get", "cm", "a%b" }, 'error: invalid resource name "a%b": [may not contain \'%\']\n' },
      { { "get", "cm", "-n", ".." }, 'error: invalid namespace "..": [may not be \'..\']\n' },
      { { "delete", "cm", "" }, "error: resource name may not be empty\n" },
      { { "label", "cm", ".", "x=y" }, 'error: invalid resource name ".": [may not be \'.\']\n' },
    }
    for _, case in ipairs(cases) do
      local sent = #api.log
      local rc, out, err = fake.run(api, case[1])
      local what = table.concat(case[1], " ")
      assert.are.equal(1, rc, what)
      assert.are.equal("", out, what)
      assert.are.equal(case[2], err, what)
      for i = sent + 1, #api.log do
        assert.are_not.equal("DELETE", api.log[i].method, what)
        assert.are_not.equal("PATCH", api.log[i].method, what)
      end
    end
    assert.is_not_nil(api.get("configmaps", "default", "a"))
  end)
end)

describe("cli label and annotate", function()
  local api
  before_each(function()
    api = fake.new()
    api.put("configmaps", cm("x", "default", {}, { app = "web" }))
  end)

  it("adds, refuses to overwrite, overwrites and removes labels", function()
    local rc, out = fake.run(api, { "label", "cm", "x", "tier=front" })
    assert.are.equal(0, rc)
    assert.are.equal("configmap/x labeled\n", out)
    assert.are.same({ app = "web", tier = "front" }, api.get("configmaps", "default", "x").metadata.labels)
    local _, _, err
    rc, _, err = fake.run(api, { "label", "cm", "x", "app=db" })
    assert.are.equal(1, rc)
    assert.are.equal("error: 'app' already has a value (web), and --overwrite is false\n", err)
    rc, out = fake.run(api, { "label", "cm/x", "app=db", "--overwrite" })
    assert.are.equal("configmap/x labeled\n", out)
    rc, out = fake.run(api, { "label", "cm", "x", "tier-" })
    assert.are.equal("configmap/x unlabeled\n", out)
    assert.are.same({ app = "db" }, api.get("configmaps", "default", "x").metadata.labels)
    rc, out = fake.run(api, { "label", "cm", "x", "app=db" })
    assert.are.equal("configmap/x not labeled\n", out)
    rc, out, err = fake.run(api, { "label", "cm", "x", "gone-" })
    assert.are.equal('label "gone" not found.\n', err)
    local req
    for _, r in ipairs(api.log) do if r.method == "PATCH" then req = r end end
    assert.are.equal("PATCH", req.method)
    assert.are.equal("application/merge-patch+json", req.headers["Content-Type"])
  end)

  it("annotates", function()
    local rc, out = fake.run(api, { "annotate", "cm", "x", "note=hello world" })
    assert.are.equal(0, rc)
    assert.are.equal("configmap/x annotated\n", out)
    assert.are.equal("hello world", api.get("configmaps", "default", "x").metadata.annotations.note)
    local _, _, err = fake.run(api, { "annotate", "cm", "x" })
    assert.are.equal("error: at least one annotation update is required\n", err)
    rc, _, err = fake.run(api, { "annotate", "cm", "x", "note=bye" })
    assert.are.equal(1, rc)
    assert.are.equal("error: --overwrite is false but found the following declared annotation(s): 'note' already has a value (hello world)\n", err)
  end)
end)

describe("cli describe", function()
  it("describes a ConfigMap with its events", function()
    local api = fake.new()
    api.put("configmaps", cm("x", "default", { b = "two", a = "one" }, { app = "web", tier = "f" }))
    api.get("configmaps", "default", "x").metadata.annotations = { note = "hi",
      ["kubectl.kubernetes.io/last-applied-configuration"] = "{}" }
    api.put("events", { apiVersion = "v1", kind = "Event", type = "Warning", reason = "Odd",
      message = "something odd ", count = 6, source = { component = "tester" },
      firstTimestamp = "2024-05-01T10:00:00Z", lastTimestamp = "2024-05-01T10:02:10Z",
      involvedObject = { kind = "ConfigMap", name = "x", namespace = "default", uid = "uid-x" },
      metadata = { name = "x.1", namespace = "default" } })
    local now = require("moonlet.printers.duration").parse("2024-05-01T10:02:58Z")
    local rc, out = fake.run(api, { "describe", "cm", "x" }, { now = now })
    assert.are.equal(0, rc)
    assert.are.equal(
      "Name:         x\n" ..
      "Namespace:    default\n" ..
      "Labels:       app=web\n" ..
      "              tier=f\n" ..
      "Annotations:  note: hi\n" ..
      "\n" ..
      "Data\n====\n" ..
      "a:\n----\none\n\n" ..
      "b:\n----\ntwo\n\n" ..
      "\nBinaryData\n====\n\n" ..
      "Events:\n" ..
      "  Type     Reason  Age                  From    Message\n" ..
      "  ----     ------  ----                 ----    -------\n" ..
      "  Warning  Odd     48s (x6 over 2m58s)  tester  something odd\n", out)
    local q = api.log[#api.log].path
    assert.are.equal("/api/v1/namespaces/default/events?fieldSelector=" ..
      "involvedObject.kind%3DConfigMap%2CinvolvedObject.name%3Dx%2CinvolvedObject.namespace%3Ddefault%2CinvolvedObject.uid%3Duid-x", q)
  end)

  it("describes a Namespace", function()
    local api = fake.new()
    api.put("namespaces", { apiVersion = "v1", kind = "Namespace", status = { phase = "Active" },
      metadata = { name = "default", labels = { ["kubernetes.io/metadata.name"] = "default" } } })
    local rc, out = fake.run(api, { "describe", "ns", "default" })
    assert.are.equal(0, rc)
    assert.are.equal(
      "Name:         default\n" ..
      "Labels:       kubernetes.io/metadata.name=default\n" ..
      "Annotations:  <none>\n" ..
      "Status:       Active\n", out)
  end)

  it("describes other kinds generically, matching name prefixes", function()
    local api = fake.new()
    api.put("deployments", { apiVersion = "apps/v1", kind = "Deployment",
      metadata = { name = "web-1", namespace = "default" },
      spec = { replicas = 2, selector = { matchLabels = { app = "web" } } } })
    -- Deployments have their own describer now: take it out to see the generic one
    local describers = require("moonlet.cli.describe").describers
    local own = describers["apps/Deployment"]
    describers["apps/Deployment"] = nil
    local rc, out = fake.run(api, { "describe", "deploy", "web" })
    describers["apps/Deployment"] = own
    assert.are.equal(0, rc)
    assert.are.equal(
      "Name:         web-1\n" ..
      "Namespace:    default\n" ..
      "Labels:       <none>\n" ..
      "Annotations:  <none>\n" ..
      "API Version:  apps/v1\n" ..
      "Kind:         Deployment\n" ..
      "Metadata:\n" ..
      "  Creation Timestamp:  2024-05-01T10:00:00Z\n" ..
      "  Resource Version:    11\n" ..
      "  UID:                 uid-web-1\n" ..
      "Spec:\n" ..
      "  Replicas:  2\n" ..
      "  Selector:\n" ..
      "    Match Labels:\n" ..
      "      App:  web\n" ..
      "Events:     <none>\n", out)
  end)
end)

describe("cli api-resources and version", function()
  it("lists resources sorted by group then name", function()
    local api = fake.new()
    local rc, out = fake.run(api, { "api-resources" })
    assert.are.equal(0, rc)
    assert.are.equal(
      "NAME          SHORTNAMES   APIVERSION   NAMESPACED   KIND\n" ..
      "configmaps    cm           v1           true         ConfigMap\n" ..
      "events        ev           v1           true         Event\n" ..
      "namespaces    ns           v1           false        Namespace\n" ..
      "deployments   deploy       apps/v1      true         Deployment\n", out)
    _, out = fake.run(api, { "api-resources", "-o", "name", "--namespaced=false" })
    assert.are.equal("namespaces\n", out)
  end)

  it("prints client and server versions", function()
    local api = fake.new()
    local rc, out = fake.run(api, { "version" })
    assert.are.equal(0, rc)
    assert.truthy(out:match("^Client Version: v%d+%.%d+%.%d+\nServer Version: v1%.32%.0%+moonlet%-test\n$"))
  end)
end)

describe("cli edit", function()
  it("patches what the editor changed, and cancels when nothing changed", function()
    local api = fake.new()
    api.put("configmaps", cm("x", "default", { a = "1" }))
    local rc, out, err = fake.run(api, { "edit", "cm", "x" }, { editor_run = function() return true end })
    assert.are.equal(0, rc)
    assert.are.equal("", out)
    assert.are.equal("Edit cancelled, no changes made.\n", err)
    local seen
    rc, out = fake.run(api, { "edit", "cm/x" }, { editor_run = function(path)
      local f = io.open(path)
      seen = f:read("a")
      f:close()
      f = io.open(path, "w")
      f:write((seen:gsub('a: "1"', 'a: "2"'):gsub("a: '1'", "a: '2'")))
      f:close()
      return true
    end })
    assert.are.equal(0, rc)
    assert.truthy(seen:find("^# Please edit the object below"))
    assert.are.equal("configmap/x edited\n", out)
    assert.are.equal("2", api.get("configmaps", "default", "x").data.a)
  end)
end)

describe("cli errors", function()
  it("reports connection failures like kubectl", function()
    local cli = require("moonlet.cli")
    local err = {}
    local rc = cli.main({ "get", "cm", "--server", "unix:/nonexistent/moonlet.sock" }, {
      out = function() end, err = function(s) err[#err + 1] = s end, getenv = function() return nil end })
    assert.are.equal(1, rc)
    assert.are.equal("The connection to the server unix:/nonexistent/moonlet.sock was refused - did you specify the right host or port?\n",
      table.concat(err))
  end)

  it("reports unknown verbs and flags", function()
    local api = fake.new()
    local rc, _, err = fake.run(api, { "frobnicate" })
    assert.are.equal(1, rc)
    assert.are.equal('error: unknown command "frobnicate" for "moonlet"\n', err)
    rc, _, err = fake.run(api, { "get", "cm", "--bogus" })
    assert.are.equal(1, rc)
    assert.are.equal("error: unknown flag: --bogus\nSee 'moonlet get --help' for usage.\n", err)
  end)

  it("prints help per verb", function()
    local api = fake.new()
    local rc, out = fake.run(api, { "get", "-h" })
    assert.are.equal(0, rc)
    assert.truthy(out:find("^Usage:\n  moonlet get"))
    assert.truthy(out:find("--all-namespaces", 1, true))
  end)
end)

describe("--dry-run values", function()
  it("read as kubectl's GetDryRunStrategy reads them, for every verb", function()
    local common = require("moonlet.cli.common")
    for v, want in pairs({ none = "none", client = "client", server = "server", unchanged = "client",
      ["true"] = "client", ["1"] = "client", T = "client", ["false"] = "none", ["0"] = "none" }) do
      assert.are.equal(want, common.dry_run(v), v)
    end
    local ok, err = pcall(common.dry_run, "maybe")
    assert.is_false(ok)
    assert.are.equal('Invalid dry-run value (maybe). Must be "none", "server", or "client".', err.cli)
  end)
end)
