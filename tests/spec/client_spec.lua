-- moonlet.client against a fake transport: discovery and kubectl's
-- resource-name rules, REST paths and query strings, bodies, Status errors,
-- watch streams.
require("moonlet_core")
local client = require("moonlet.client")
local json = require("moonlet.json")

local DISCOVERY = {
  ["/api"] = { kind = "APIVersions", versions = { "v1" } },
  ["/api/v1"] = { kind = "APIResourceList", groupVersion = "v1", resources = {
    { name = "configmaps", singularName = "configmap", namespaced = true, kind = "ConfigMap",
      verbs = { "get", "list" }, shortNames = { "cm" } },
    { name = "namespaces", singularName = "namespace", namespaced = false, kind = "Namespace",
      verbs = { "get" }, shortNames = { "ns" } },
    { name = "pods", singularName = "pod", namespaced = true, kind = "Pod", verbs = { "get" },
      shortNames = { "po" } },
    { name = "pods/status", singularName = "", namespaced = true, kind = "Pod", verbs = { "get" } },
    { name = "events", singularName = "event", namespaced = true, kind = "Event", verbs = { "get" },
      shortNames = { "ev" } },
  } },
  ["/apis"] = { kind = "APIGroupList", groups = {
    { name = "apps", versions = { { groupVersion = "apps/v1", version = "v1" } },
      preferredVersion = { groupVersion = "apps/v1", version = "v1" } },
    { name = "events.k8s.io", versions = { { groupVersion = "events.k8s.io/v1", version = "v1" } },
      preferredVersion = { groupVersion = "events.k8s.io/v1", version = "v1" } },
  } },
  ["/apis/apps/v1"] = { kind = "APIResourceList", groupVersion = "apps/v1", resources = {
    { name = "deployments", singularName = "deployment", namespaced = true, kind = "Deployment",
      verbs = { "get" }, shortNames = { "deploy" } },
    { name = "replicasets", singularName = "replicaset", namespaced = true, kind = "ReplicaSet",
      verbs = { "get" }, shortNames = { "rs" } },
  } },
  ["/apis/events.k8s.io/v1"] = { kind = "APIResourceList", groupVersion = "events.k8s.io/v1",
    resources = { { name = "events", singularName = "event", namespaced = true, kind = "Event",
      verbs = { "get" }, shortNames = { "ev" } } } },
}

local function fake()
  local log = {}
  local objects = {}
  local function transport(req)
    log[#log + 1] = req
    local path = req.path:match("^[^?]*")
    if DISCOVERY[path] then
      return { status = 200, headers = { ["Content-Type"] = "application/json" },
        body = json.encode(DISCOVERY[path]) }
    end
    if req.stream then
      return { status = 200, body =
        '{"type":"ADDED","object":{"kind":"ConfigMap","metadata":{"name":"a"}}}\n' ..
        '{"type":"DELETED","object":{"kind":"ConfigMap","metadata":{"name":"a"}}}\n' }
    end
    if req.method == "GET" and objects[path] then
      return { status = 200, body = json.encode(objects[path]) }
    end
    if req.method == "GET" and path == "/api/v1/namespaces/default/configmaps/boom" then
      return { status = 500, body = "oops" }
    end
    if req.method == "POST" or req.method == "PATCH" or req.method == "DELETE" or req.method == "PUT" then
      return { status = req.method == "POST" and 201 or 200, body = req.body or "{}" }
    end
    local name = path:match("([^/]+)$")
    return { status = 404, body = json.encode({ kind = "Status", apiVersion = "v1", status = "Failure",
      reason = "NotFound", code = 404, message = string.format('configmaps "%s" not found', name),
      details = { name = name, kind = "configmaps" } }) }
  end
  return client.new({ transport = transport }), log, objects
end

describe("moonlet.client discovery", function()
  it("lists resources without subresources, remembering them on the parent", function()
    local c = fake()
    local list = assert(c:discovery())
    local names = {}
    for _, r in ipairs(list) do names[#names + 1] = r.api_version .. "/" .. r.name end
    assert.are.same({ "v1/configmaps", "v1/namespaces", "v1/pods", "v1/events",
      "apps/v1/deployments", "apps/v1/replicasets", "events.k8s.io/v1/events" }, names)
    assert.is_true(list[3].subresources.status)
  end)

  it("caches discovery per client", function()
    local c, log = fake()
    c:discovery()
    local n = #log
    c:resolve("cm")
    c:resolve("deploy")
    assert.are.equal(n, #log)
  end)

  it("resolves kubectl's resource words", function()
    local c = fake()
    local cases = {
      { "pods", "v1", "pods" }, { "pod", "v1", "pods" }, { "po", "v1", "pods" },
      { "Pod", "v1", "pods" }, { "deploy", "apps/v1", "deployments" },
      { "deployments.apps", "apps/v1", "deployments" },
      { "deployments.v1.apps", "apps/v1", "deployments" },
      { "configmaps.v1.", "v1", "configmaps" }, { "cm", "v1", "configmaps" },
      { "ConfigMap", "v1", "configmaps" }, { "rs", "apps/v1", "replicasets" },
      { "ns", "v1", "namespaces" },
      -- the core group wins over events.k8s.io, unless asked for
      { "ev", "v1", "events" }, { "events.events.k8s.io", "events.k8s.io/v1", "events" },
    }
    for _, case in ipairs(cases) do
      local r = assert(c:resolve(case[1]), case[1])
      assert.are.equal(case[2], r.api_version, case[1])
      assert.are.equal(case[3], r.name, case[1])
    end
  end)

  it("reports unknown resource types as kubectl does", function()
    local c = fake()
    local r, st = c:resolve("foo")
    assert.is_nil(r)
    assert.are.equal("the server doesn't have a resource type \"foo\"", st.message)
  end)

  it("finds kinds by group/version/Kind", function()
    local c = fake()
    assert.are.equal("deployments", c:kind("apps/v1/Deployment").name)
    assert.are.equal("configmaps", c:kind("v1/ConfigMap").name)
    assert.is_nil((c:kind("v1/Nope")))
  end)
end)

describe("moonlet.client verbs", function()
  it("builds REST paths", function()
    local c = fake()
    local r = c:kind("apps/v1/Deployment")
    assert.are.equal("/apis/apps/v1/namespaces/ns1/deployments/web", client.path(r, "ns1", "web"))
    assert.are.equal("/apis/apps/v1/deployments", client.path(r, nil))
    assert.are.equal("/api/v1/namespaces/x", client.path(c:kind("v1/Namespace"), "ignored", "x"))
    assert.are.equal("/api/v1/namespaces/d/pods/p/status", client.path(c:kind("v1/Pod"), "d", "p", "status"))
  end)

  it("refuses a name or namespace that is no path segment without a request", function()
    local c, log = fake()
    local r = c:kind("v1/ConfigMap")
    local n = #log
    local cases = {
      { function() return c:delete(r, "myns", "..") end, 'invalid resource name "..": [may not be \'..\']' },
      { function() return c:delete(r, nil, ".") end, 'invalid resource name ".": [may not be \'.\']' },
      { function() return c:get(r, nil, "a/%") end,
        'invalid resource name "a/%": [may not contain \'/\' may not contain \'%\']' },
      { function() return c:list(r, { namespace = ".." }) end, 'invalid namespace "..": [may not be \'..\']' },
      { function() return c:patch(r, nil, "", "merge", {}) end, "resource name may not be empty" },
      { function() return c:create(r, { metadata = { name = "x", namespace = "." } }) end,
        'invalid namespace ".": [may not be \'.\']' },
    }
    for _, case in ipairs(cases) do
      local obj, st = case[1]()
      assert.is_nil(obj)
      assert.are.equal(case[2], st.message)
      assert.is_true(st["local"])
    end
    assert.are.equal(n, #log)
    local p, st = client.path(r, "default", "..", "status")
    assert.is_nil(p)
    assert.are.equal(400, st.code)
  end)

  it("gets objects and returns the server's Status on errors", function()
    local c, log, objects = fake()
    objects["/api/v1/namespaces/default/configmaps/x"] = { kind = "ConfigMap", metadata = { name = "x" } }
    local obj = assert(c:get("v1/ConfigMap", nil, "x"))
    assert.are.equal("x", obj.metadata.name)
    assert.are.equal("application/json", log[#log].headers["Accept"])
    local none, st = c:get("v1/ConfigMap", "default", "y")
    assert.is_nil(none)
    assert.are.equal("NotFound", st.reason)
    assert.are.equal(404, st.code)
    assert.are.equal('configmaps "y" not found', st.message)
  end)

  it("synthesizes a Status for non-Status error bodies", function()
    local c = fake()
    local _, st = c:get("v1/ConfigMap", "default", "boom")
    assert.are.equal("InternalError", st.reason)
    assert.are.equal(500, st.code)
    assert.are.equal('an error on the server ("oops") has prevented the request from succeeding',
      st.message)
  end)

  it("synthesizes a transport Status when the transport fails", function()
    local c = client.new({ transport = function() return nil, "ECONNREFUSED: connection refused" end })
    local _, st = c:get("v1/ConfigMap", "default", "x")
    assert.is_true(st.transport)
    assert.are.equal("ECONNREFUSED: connection refused", st.message)
  end)

  it("lists with selectors, limit and continue", function()
    local c, log = fake()
    c:list("v1/ConfigMap", { namespace = "kube-system", label_selector = "app in (a,b)",
      field_selector = "metadata.name=x", limit = 500, continue = "tok" })
    assert.are.equal("/api/v1/namespaces/kube-system/configmaps?labelSelector=app%20in%20%28a%2Cb%29" ..
      "&fieldSelector=metadata.name%3Dx&limit=500&continue=tok", log[#log].path)
    c:list("v1/ConfigMap", {})
    assert.are.equal("/api/v1/configmaps", log[#log].path)
  end)

  it("asks for server-side Tables", function()
    local c, log = fake()
    c:table("v1/ConfigMap", { namespace = "default", name = "x" })
    assert.are.equal("/api/v1/namespaces/default/configmaps/x", log[#log].path)
    assert.are.equal(client.TABLE_ACCEPT, log[#log].headers["Accept"])
    c:table("v1/ConfigMap", { namespace = "default", limit = 500 })
    assert.are.equal("/api/v1/namespaces/default/configmaps?limit=500", log[#log].path)
  end)

  it("creates in the object's namespace with write options", function()
    local c, log = fake()
    local obj = { apiVersion = "v1", kind = "ConfigMap", metadata = { name = "x", namespace = "n1" } }
    local out = assert(c:create("v1/ConfigMap", obj, { field_validation = "Strict", dry_run = true }))
    assert.are.equal("x", out.metadata.name)
    local req = log[#log]
    assert.are.equal("POST", req.method)
    assert.are.equal("/api/v1/namespaces/n1/configmaps?fieldValidation=Strict&dryRun=All", req.path)
    assert.are.equal("application/json", req.headers["Content-Type"])
    assert.are.equal("n1", json.decode(req.body).metadata.namespace)
    c:create("v1/Namespace", { metadata = { name = "n2" } })
    assert.are.equal("/api/v1/namespaces", log[#log].path)
  end)

  it("updates objects and their status", function()
    local c, log = fake()
    local obj = { metadata = { name = "p", namespace = "d" } }
    c:update("v1/Pod", obj)
    assert.are.equal("PUT", log[#log].method)
    assert.are.equal("/api/v1/namespaces/d/pods/p", log[#log].path)
    c:update_status("v1/Pod", obj)
    assert.are.equal("/api/v1/namespaces/d/pods/p/status", log[#log].path)
  end)

  it("reads and writes subresources", function()
    local c, log, objects = fake()
    objects["/apis/apps/v1/namespaces/d/deployments/web/scale"] = { kind = "Scale", spec = { replicas = 2 } }
    local s = assert(c:get_subresource("apps/v1/Deployment", "d", "web", "scale"))
    assert.are.equal(2, s.spec.replicas)
    assert.are.equal("GET", log[#log].method)
    s.spec.replicas = 3
    local out = assert(c:put_subresource(c:kind("apps/v1/Deployment"), "d", "web", "scale", s, { dry_run = true }))
    assert.are.equal(3, out.spec.replicas)
    assert.are.equal("PUT", log[#log].method)
    assert.are.equal("/apis/apps/v1/namespaces/d/deployments/web/scale?dryRun=All", log[#log].path)
  end)

  it("patches with the content type of each patch kind", function()
    local c, log = fake()
    local want = { merge = "application/merge-patch+json", json = "application/json-patch+json",
      strategic = "application/strategic-merge-patch+json" }
    for kind, ctype in pairs(want) do
      c:patch("v1/ConfigMap", "default", "x", kind, { data = { a = "1" } })
      assert.are.equal("PATCH", log[#log].method)
      assert.are.equal(ctype, log[#log].headers["Content-Type"])
      assert.are.equal("/api/v1/namespaces/default/configmaps/x", log[#log].path)
    end
    c:patch("v1/ConfigMap", "default", "x", "json", '[{"op":"remove","path":"/data"}]')
    assert.are.equal('[{"op":"remove","path":"/data"}]', log[#log].body)
  end)

  it("deletes with DeleteOptions", function()
    local c, log = fake()
    c:delete("apps/v1/Deployment", "d", "web", { propagation_policy = "Foreground",
      grace_period_seconds = 0, dry_run = true })
    local req = log[#log]
    assert.are.equal("DELETE", req.method)
    assert.are.equal("/apis/apps/v1/namespaces/d/deployments/web", req.path)
    local body = json.decode(req.body)
    assert.are.equal("DeleteOptions", body.kind)
    assert.are.equal("Foreground", body.propagationPolicy)
    assert.are.equal(0, body.gracePeriodSeconds)
    assert.are.same({ "All" }, body.dryRun)
  end)

  it("streams watch events", function()
    local c, log = fake()
    local s = assert(c:watch("v1/ConfigMap", { namespace = "default", resource_version = "7" }))
    assert.are.equal("/api/v1/namespaces/default/configmaps?resourceVersion=7&watch=true", log[#log].path)
    assert.is_true(log[#log].stream)
    local e1 = assert(s:next())
    assert.are.equal("ADDED", e1.type)
    assert.are.equal("a", e1.object.metadata.name)
    assert.are.equal("DELETED", assert(s:next()).type)
    assert.is_nil(s:next())
    s:close()
  end)

  it("reassembles watch events split across chunks", function()
    local chunks = { '{"type":"ADD', 'ED","object":{}}\n{"type":"MODIFIED",', '"object":{}}\n' }
    local closed = false
    local c = client.new({ transport = function(req)
      if DISCOVERY[req.path] then return { status = 200, body = json.encode(DISCOVERY[req.path]) } end
      return { status = 200, read = function() return table.remove(chunks, 1) end,
        close = function() closed = true end }
    end })
    local s = assert(c:watch("v1/ConfigMap", {}))
    assert.are.equal("ADDED", s:next().type)
    assert.are.equal("MODIFIED", s:next().type)
    assert.is_nil(s:next())
    s:close()
    assert.is_false(closed) -- already ended: nothing to close
  end)

  it("parses server addresses", function()
    assert.are.same({ unix_socket = "/tmp/x.sock", base = "http://localhost" }, client.parse_server("unix:/tmp/x.sock"))
    assert.are.same({ unix_socket = "/tmp/x.sock", base = "http://localhost" }, client.parse_server("unix:///tmp/x.sock"))
    assert.are.same({ base = "http://127.0.0.1:6443" }, client.parse_server("http://127.0.0.1:6443/"))
    assert.is_nil((client.parse_server("ftp://x")))
  end)
end)
