-- What the write path keeps from one request to the next so each create
-- costs less, checked for staying right: the route cache (and its reset
-- when kinds change), media types, the namespace check keyed by the
-- namespace's resourceVersion (s:object_version), metadata validation's
-- cached paths and namespaces, the shared answer headers, and the HTTP
-- request and answer fields the server now builds with fewer strings.
require("moonlet_core")
local json = require("moonlet.json")
local kinds = require("moonlet.api.kinds")
local request = require("moonlet.api.request")
local validation = require("moonlet.validation")
local api_stack = require("api_stack")
local fake = require("fake_client") -- for fake.run only

describe("API write path caches", function()
  it("serves a route from its cache until the kinds change", function()
    local path = "/apis/example.com/v1/namespaces/default/widgets"
    local before = request.route(path)
    assert.is_nil(before.def)
    assert.are.equal(before, request.route(path)) -- one table, from the cache
    local def = kinds.register({ group = "example.com", version = "v1", kind = "Widget",
      plural = "widgets" }, "api_write_path_spec")
    local after = request.route(path)
    assert.are.equal(def, after.def)
    assert.are.equal("default", after.namespace)
    kinds.unregister_source("api_write_path_spec")
    assert.is_nil(request.route(path).def)
    assert.is_nil(request.route("/nowhere"))
    assert.is_nil(request.route("/nowhere"))
  end)

  it("keeps routes apart past the cache's bound", function()
    for i = 1, 600 do
      local r = request.route("/api/v1/things" .. i .. "/name" .. i)
      assert.are.equal("things" .. i, r.plural)
      assert.are.equal("name" .. i, r.name)
    end
  end)

  it("reads media types without parameters, lowercased", function()
    assert.are.equal("application/json", request.media_type("Application/JSON; charset=utf-8"))
    assert.are.equal("application/json", request.media_type("Application/JSON; charset=utf-8"))
    assert.are.equal("", request.media_type(""))
    assert.are.equal("application/yaml", request.media_type("  application/yaml"))
  end)

  it("gives an object's resourceVersion without reading it", function()
    local s = assert(require("moonlet.core.store").open({ backend = "memory" }))
    assert.is_nil(s:object_version("namespaces", "", "a"))
    local ns = assert(s:create("namespaces", "", { metadata = { name = "a" } }))
    local rv = s:object_version("namespaces", "", "a")
    assert.are.equal(tonumber(ns.metadata.resourceVersion), rv)
    ns.status = { phase = "Terminating" }
    assert(s:update("namespaces", ns))
    assert.is_true(s:object_version("namespaces", "", "a") > rv)
    assert(s:delete("namespaces", "", "a"))
    assert.is_nil(s:object_version("namespaces", "", "a"))
    s:close()
  end)

  it("refuses creates in a namespace that became terminating, and in a new one of the same name",
    function()
      fake.run(function()
        local st = api_stack.new()
        local ok, err = pcall(function()
          local c, store = st.client, st.store
          assert(c:create("v1/Namespace", { apiVersion = "v1", kind = "Namespace", metadata = { name = "t" } }))
          local cm = { apiVersion = "v1", kind = "ConfigMap", metadata = { name = "a", namespace = "t" } }
          assert(c:create("v1/ConfigMap", cm))
          -- Changed behind the API's back: judged on what is stored now.
          local ns = store:get("namespaces", "", "t")
          ns.status = { phase = "Terminating" }
          assert(store:update("namespaces", ns))
          cm.metadata.name = "b"
          local res, e = c:create("v1/ConfigMap", cm)
          assert.is_nil(res)
          assert.are.equal(403, e.code)
          -- Gone, then created again: admitted again.
          assert(store:delete("namespaces", "", "t"))
          res, e = c:create("v1/ConfigMap", cm)
          assert.is_nil(res)
          assert.are.equal(404, e.code)
          assert(c:create("v1/Namespace", { apiVersion = "v1", kind = "Namespace", metadata = { name = "t" } }))
          assert(c:create("v1/ConfigMap", cm))
        end)
        api_stack.close(st, ok, err)
      end)
    end)

  it("names metadata fields under each path and checks each namespace", function()
    local errs = validation.validate_object_meta({ name = "a", namespace = "default" }, true)
    assert.are.equal(0, #errs)
    errs = validation.validate_object_meta({ name = "Bad_", namespace = "default" }, true, nil,
      "spec.template.metadata")
    assert.are.equal("spec.template.metadata.name", errs:list()[1].field)
    errs = validation.validate_object_meta({ name = "Bad_", namespace = "default" }, true)
    assert.are.equal("metadata.name", errs:list()[1].field)
    errs = validation.validate_object_meta({ name = "a", namespace = "Not_A_Label" }, true)
    assert.are.equal("metadata.namespace", errs:list()[1].field)
    errs = validation.validate_object_meta({ name = "a", namespace = "Not_A_Label" }, true)
    assert.are.equal(1, #errs, "an invalid namespace is never remembered as valid")
    for i = 1, 300 do
      assert.are.equal(0, #validation.validate_object_meta({ name = "a", namespace = "n" .. i }, true))
    end
  end)

  it("shares the plain answer headers without leaking a warning into them", function()
    fake.run(function()
      local st = api_stack.new()
      local ok, err = pcall(function()
        local function call(body)
          local out = {}
          st.router:handle({ method = "POST", path = "/api/v1/namespaces/default/configmaps",
            query = "", headers = { ["content-type"] = "application/json" },
            body = json.encode(body), transport = "unix" },
            { respond = function(_, code, headers, text) out.code, out.headers, out.body = code, headers, text end })
          return out
        end
        local warned = call({ apiVersion = "v1", kind = "ConfigMap", metadata = { name = "w" }, bogus = 1 })
        assert.are.equal(201, warned.code)
        assert.truthy(warned.headers["Warning"]:find('unknown field \\"bogus\\"', 1, true))
        local plain = call({ apiVersion = "v1", kind = "ConfigMap", metadata = { name = "p" } })
        assert.are.equal(201, plain.code)
        assert.is_nil(plain.headers["Warning"])
        assert.are.equal("application/json", plain.headers["Content-Type"])
        local again = call({ apiVersion = "v1", kind = "ConfigMap", metadata = { name = "q" } })
        assert.is_nil(again.headers["Warning"])
      end)
      api_stack.close(st, ok, err)
    end)
  end)
end)

describe("HTTP request and answer fields", function()
  local httpd = require("moonlet.httpd")
  local bg = require("curl_bg")
  local tmp = os.tmpname()
  os.remove(tmp)
  assert(os.execute("mkdir -p " .. tmp))

  it("gives url, raw_path and path for plain and escaped paths, and numbers as header values",
    function()
      local seen = {}
      bg.run(function()
        local srv = assert(httpd.listen("unix:" .. tmp .. "/h.sock", function(req)
          seen[#seen + 1] = { url = req.url, raw_path = req.raw_path, path = req.path,
            query = req.query, version = req.http_version }
          req:respond(200, { ["X-Count"] = 5, ["X-List"] = { "a", 2.5 }, ["X-Text"] = "t" }, "ok")
        end))
        local out = bg.curl("-i --unix-socket " .. tmp .. "/h.sock http://x/api/v1/plain")()
        assert.truthy(out:match("^HTTP/1.1 200 OK\r\n"))
        assert.truthy(out:find("X-Count: 5\r\n", 1, true))
        assert.truthy(out:find("X-List: a\r\n", 1, true))
        assert.truthy(out:find("X-List: 2.5\r\n", 1, true))
        assert.truthy(out:find("X-Text: t\r\n", 1, true))
        assert.truthy(out:find("Content-Length: 2\r\n", 1, true))
        bg.curl("--unix-socket " .. tmp .. "/h.sock 'http://x/api/v1/a%20b?x=1'")()
        bg.curl("--http1.0 --unix-socket " .. tmp .. "/h.sock 'http://x/q?'")()
        srv:close()
      end)
      assert.are.same({ url = "/api/v1/plain", raw_path = "/api/v1/plain", path = "/api/v1/plain",
        query = "", version = "1.1" }, seen[1])
      assert.are.same({ url = "/api/v1/a%20b?x=1", raw_path = "/api/v1/a%20b", path = "/api/v1/a b",
        query = "x=1", version = "1.1" }, seen[2])
      assert.are.same({ url = "/q?", raw_path = "/q", path = "/q", query = "", version = "1.0" }, seen[3])
      os.execute("rm -rf " .. tmp)
    end)
end)
