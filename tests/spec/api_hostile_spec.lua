-- Hostile requests to the API through the real HTTP server: each gets
-- kube-apiserver's answer, and none holds the loop (the one thread every
-- client, probe and controller shares) for long. Paths are decoded once,
-- as Go's URL.Path that kube-apiserver's router splits; request bodies that
-- cost more to decode than to read are refused or decoded in time.
require("moonlet_core")
local json = require("moonlet.json")
local httpd = require("moonlet.httpd")
local api_stack = require("api_stack")
local bg = require("curl_bg")

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p " .. tmp))
local sock = tmp .. "/api.sock"

-- Runs fn(call) against an API server on a unix socket; call(method, path,
-- body_file, content_type) -> status, decoded answer, seconds taken.
local function with_server(fn)
  bg.run(function()
    local st = api_stack.new()
    local srv = assert(httpd.listen("unix:" .. sock, function(req) st.router:handle(req, req) end))
    local ok, err = pcall(fn, function(method, path, file, ctype)
      local args = string.format("-o %s/answer -w '%%{http_code} %%{time_total}' -X %s --unix-socket %s",
        tmp, method, sock)
      if file then
        args = args .. string.format(" -H 'Content-Type: %s' --data-binary @%s", ctype, file)
      end
      local out = bg.curl(args .. " 'http://x" .. path .. "'")(60000)
      local code, secs = out:match("^(%d+) ([%d.]+)")
      return tonumber(code), json.decode(bg.slurp(tmp .. "/answer")), tonumber(secs)
    end)
    srv:close()
    api_stack.close(st, ok, err)
  end)
end

local function write(name, text)
  local f = assert(io.open(tmp .. "/" .. name, "wb"))
  f:write(text)
  f:close()
  return tmp .. "/" .. name
end

local CM = "/api/v1/namespaces/default/configmaps"

describe("hostile API requests", function()
  teardown(function() os.execute("rm -rf " .. tmp) end)

  it("decodes a path once: %2525 names the object %25", function()
    with_server(function(call)
      local code, st = call("GET", CM .. "/%2525")
      assert.are.equal(404, code)
      assert.are.equal('configmaps "%25" not found', st.message)
      assert.are.equal("%25", st.details.name)
      code, st = call("GET", CM .. "/%252e%252e")
      assert.are.equal(404, code)
      assert.are.equal('configmaps "%2e%2e" not found', st.message)
    end)
  end)

  it("decodes an in-process client's path once", function()
    bg.run(function()
      local st = api_stack.new()
      local ok, err = pcall(function()
        -- The client escapes the name into the path; the router sees it as given.
        local obj, status = st.client:get("v1/ConfigMap", "default", "a:b")
        assert.is_nil(obj)
        assert.are.equal('configmaps "a:b" not found', status.message)
        local res = st.transport({ method = "GET", path = CM .. "/%2525" })
        assert.are.equal(404, res.status)
        assert.are.equal('configmaps "%25" not found', json.decode(res.body).message)
      end)
      api_stack.close(st, ok, err)
    end)
  end)

  it("refuses a YAML body of a million values 980 flow collections deep, at once", function()
    -- Was 5 s of libyaml walking every open collection for every token.
    local parts = { "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata: " }
    local level = "[" .. string.rep("v, ", 1000)
    for i = 1, 980 do parts[#parts + 1] = level end
    parts[#parts + 1] = "1" .. string.rep("]", 980) .. "\n"
    local file = write("deep.yaml", table.concat(parts))
    with_server(function(call)
      local code, st, secs = call("POST", CM, file, "application/yaml")
      assert.are.equal(400, code)
      assert.are.equal("BadRequest", st.reason)
      assert.are.equal("couldn't get version/kind; json parse error: error converting YAML to JSON: "
        .. "yaml: document contains excessive nesting of flow collections", st.message)
      assert.is_true(secs < 2, string.format("took %.2f s", secs))
    end)
  end)

  it("decodes a YAML body of 40,000 anchors and their aliases in time", function()
    -- Was 9 s: every alias looked its anchor up by a scan of all of them.
    local parts = { "apiVersion: apps/v1\nkind: ControllerRevision\nmetadata:\n  name: anchors\n"
      .. "revision: 1\ndata:\n" }
    for i = 0, 39999 do parts[#parts + 1] = string.format("- &a%d x%d\n", i, i) end
    for i = 0, 39999 do parts[#parts + 1] = string.format("- *a%d\n", i) end
    local file = write("anchors.yaml", table.concat(parts))
    with_server(function(call)
      local code, obj, secs = call("POST", "/apis/apps/v1/namespaces/default/controllerrevisions",
        file, "application/yaml")
      assert.are.equal(201, code)
      assert.are.equal(80000, #obj.data)
      assert.are.equal("x39999", obj.data[80000])
      assert.is_true(secs < 2, string.format("took %.2f s", secs))
    end)
  end)

  it("merges a strategic patch of 5,000 list elements by merge key in time", function()
    -- Was 9 s (20,000: 150 s): every element looked up, placed and sorted
    -- by a scan of the other list.
    local urlp = "/apis/apps/v1/namespaces/default/deployments"
    local env, back, drop = {}, {}, {}
    for i = 1, 5000 do
      env[i] = { name = "E" .. i, value = "v" }
      back[i] = { name = "E" .. (5001 - i), value = "w" }
      if i % 2 == 0 then drop[#drop + 1] = { name = "E" .. i, ["$patch"] = "delete" } end
    end
    local created = write("dep.json", json.encode({ apiVersion = "apps/v1", kind = "Deployment",
      metadata = { name = "env" }, spec = { replicas = 0, selector = { matchLabels = { app = "env" } },
        template = { metadata = { labels = { app = "env" } },
          spec = { containers = { { name = "main", image = "i", env = env } } } } } }))
    local function containers(list)
      return json.encode({ spec = { template = { spec = { containers = { { name = "main", env = list } } } } } })
    end
    local reverse, delete = write("reverse.json", containers(back)), write("delete.json", containers(drop))
    local smp = "application/strategic-merge-patch+json"
    with_server(function(call)
      assert.are.equal(201, (call("POST", urlp, created, "application/json")))
      -- Every element is in the patch: the patch's order, the patch's values.
      local code, obj, secs = call("PATCH", urlp .. "/env", reverse, smp)
      assert.are.equal(200, code)
      local got = obj.spec.template.spec.containers[1].env
      assert.are.equal(5000, #got)
      assert.are.same({ name = "E5000", value = "w" }, got[1])
      assert.are.same({ name = "E1", value = "w" }, got[5000])
      assert.is_true(secs < 2, string.format("took %.2f s", secs))
      code, obj, secs = call("PATCH", urlp .. "/env", delete, smp)
      assert.are.equal(200, code)
      got = obj.spec.template.spec.containers[1].env
      assert.are.equal(2500, #got)
      assert.are.same({ name = "E4999", value = "w" }, got[1])
      assert.are.same({ name = "E1", value = "w" }, got[2500])
      assert.is_true(secs < 2, string.format("took %.2f s", secs))
    end)
  end)

  it("refuses a JSON patch whose copies add more than 3 MiB", function()
    -- Copies multiply what a patch adds: 40 copies of an array into itself
    -- held the loop for minutes and ended with the kernel killing the
    -- server. kube-apiserver stops at 3 MiB of copied JSON.
    local urlp = "/apis/apps/v1/namespaces/default/controllerrevisions"
    local created = write("cr.json", json.encode({ apiVersion = "apps/v1", kind = "ControllerRevision",
      metadata = { name = "copies" }, revision = 1, data = { string.rep("x", 1000000) } }))
    local ops = {}
    for i = 1, 4 do ops[i] = { op = "copy", from = "/data/0", path = "/data/-" } end
    local patch = write("copies.json", json.encode(ops))
    with_server(function(call)
      assert.are.equal(201, (call("POST", urlp, created, "application/json")))
      local code, st, secs = call("PATCH", urlp .. "/copies", patch, "application/json-patch+json")
      assert.are.equal(422, code)
      assert.are.equal("Unable to complete the copy, the accumulated size increase of copy is "
        .. "4000008, exceeding the limit 3145728", st.message)
      assert.is_true(secs < 2, string.format("took %.2f s", secs))
      code, st = call("GET", urlp .. "/copies")
      assert.are.equal(200, code)
      assert.are.equal(1, #st.data)
    end)
  end)
end)
