-- `patch`, `set image`, `wait` and `get --sort-by` on the real API stack in
-- process: outputs and error messages as kubectl 1.32 prints them, the
-- patch types and Content-Types sent, and that `wait` watches (one list,
-- one watch) rather than polling.
require("moonlet_core")
local json = require("moonlet.json")
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local cli = require("moonlet.cli")
local client = require("moonlet.client")
local fake = require("fake_client") -- for fake.run only
local api_stack = require("api_stack")

local DEPLOY, POD, CJ, CM = "apps/v1/Deployment", "v1/Pod", "batch/v1/CronJob", "v1/ConfigMap"

local function deployment(name, replicas, image)
  return { apiVersion = "apps/v1", kind = "Deployment", metadata = { name = name or "kubia", namespace = "default",
    labels = { app = "kubia" } },
    spec = { replicas = replicas or 3, selector = { matchLabels = { app = "kubia" } },
      template = { metadata = { labels = { app = "kubia" } },
        spec = { containers = { { name = "kubia", image = image or "idealism/kubia" } } } } } }
end

-- Runs fn(s, log) on a fresh stack; `log` lists every request the CLI sent.
local function with_stack(fn)
  fake.run(function()
    local s = api_stack.new()
    local log = {}
    local transport = setmetatable({ tables = true }, { __call = function(_, req)
      log[#log + 1] = req
      return s.transport(req)
    end })
    s.cli_client = client.new({ transport = transport })
    local ok, err = pcall(fn, s, log)
    api_stack.close(s, ok, err)
  end)
end

-- Runs the CLI in process. @return rc, stdout, stderr
local function run(s, argv)
  local out, err = {}, {}
  local rc = cli.main(argv, { client = s.cli_client,
    out = function(t) out[#out + 1] = t end, err = function(t) err[#err + 1] = t end })
  return rc, table.concat(out), table.concat(err)
end

local function tmpfile(text)
  local p = os.tmpname()
  local f = assert(io.open(p, "w"))
  f:write(text)
  f:close()
  return p
end

local function patches(log)
  local out = {}
  for _, r in ipairs(log) do
    if r.method == "PATCH" then out[#out + 1] = r end
  end
  return out
end

describe("cli patch", function()
  it("sends a strategic merge patch by default and says when nothing changed", function()
    with_stack(function(s, log)
      assert(s.client:create(DEPLOY, deployment()))
      local p = '{"spec":{"template":{"spec":{"containers":[{"name":"kubia","image":"idealism/kubia:v2"}]}}}}'
      local rc, out, err = run(s, { "patch", "deployment", "kubia", "-p", p })
      assert.are.equal("", err)
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia patched\n", out)
      local sent = patches(log)
      assert.are.equal(1, #sent)
      assert.are.equal("application/strategic-merge-patch+json", sent[1].headers["Content-Type"])
      assert.matches("fieldManager=kubectl%-patch", sent[1].path)
      local d = assert(s.client:get(DEPLOY, "default", "kubia"))
      -- the merge key kept the container (a merge patch would have replaced the list)
      assert.are.equal(1, #d.spec.template.spec.containers)
      assert.are.equal("idealism/kubia:v2", d.spec.template.spec.containers[1].image)
      rc, out = run(s, { "patch", "deploy/kubia", "-p", p })
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia patched (no change)\n", out)
    end)
  end)

  it("sends merge and JSON patches, from YAML and from a file", function()
    with_stack(function(s, log)
      assert(s.client:create(DEPLOY, deployment()))
      local rc, out = run(s, { "patch", "deploy", "kubia", "--type", "merge", "-p", "metadata: {labels: {tier: web}}" })
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia patched\n", out)
      assert.are.equal("application/merge-patch+json", patches(log)[1].headers["Content-Type"])
      assert.are.same({ app = "kubia", tier = "web" }, assert(s.client:get(DEPLOY, "default", "kubia")).metadata.labels)
      local file = tmpfile('[{"op": "replace", "path": "/spec/replicas", "value": 5}]')
      rc, out = run(s, { "patch", "deploy/kubia", "--type=json", "--patch-file", file, "-o", "name" })
      os.remove(file)
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia\n", out)
      assert.are.equal("application/json-patch+json", patches(log)[2].headers["Content-Type"])
      assert.are.equal(5, assert(s.client:get(DEPLOY, "default", "kubia")).spec.replicas)
      rc, out = run(s, { "patch", "deploy/kubia", "--type=merge", "-p", '{"spec":{"replicas":2}}', "-o", "json" })
      assert.are.equal(0, rc)
      local obj = json.decode(out)
      assert.are.equal("Deployment", obj.kind)
      assert.are.equal(2, obj.spec.replicas)
    end)
  end)

  it("patches the objects a manifest names, and the status subresource", function()
    with_stack(function(s, log)
      assert(s.client:create(DEPLOY, deployment()))
      local file = tmpfile("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: kubia\n")
      local rc, out = run(s, { "patch", "-f", file, "--type", "merge", "-p", '{"spec":{"paused":true}}' })
      os.remove(file)
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia patched\n", out)
      rc, out = run(s, { "patch", "deploy", "kubia", "--subresource=status", "--type=merge",
        "-p", '{"status":{"replicas":7}}' })
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia patched\n", out)
      local sent = patches(log)
      assert.matches("/deployments/kubia/status%?", sent[#sent].path)
      assert.are.equal(7, assert(s.client:get(DEPLOY, "default", "kubia")).status.replicas)
    end)
  end)

  it("applies the patch locally with --dry-run=client, on the server with =server, changing nothing", function()
    with_stack(function(s, log)
      assert(s.client:create(DEPLOY, deployment()))
      local rc, out = run(s, { "patch", "deploy", "kubia", "--dry-run=client", "-o", "yaml",
        "-p", '{"spec":{"replicas":9}}' })
      assert.are.equal(0, rc)
      assert.matches("replicas: 9", out)
      assert.are.equal(0, #patches(log))
      assert.are.equal(3, assert(s.client:get(DEPLOY, "default", "kubia")).spec.replicas)
      -- server-side: sent with dryRun=All; kubectl's line has no dry-run suffix
      rc, out = run(s, { "patch", "deploy", "kubia", "--dry-run=server", "-p", '{"spec":{"replicas":9}}' })
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia patched\n", out)
      assert.matches("dryRun=All", patches(log)[1].path)
      assert.are.equal(3, assert(s.client:get(DEPLOY, "default", "kubia")).spec.replicas)
    end)
  end)

  it("reports bad flags, bad patches and missing objects as kubectl does", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment()))
      local cases = {
        { { "patch", "deploy", "kubia", "-p", "{}", "--type", "apply" },
          'error: --type must be one of [json merge strategic], not "apply"\n' },
        { { "patch", "deploy", "kubia" }, "error: must specify --patch or --patch-file containing the contents of the patch\n" },
        { { "patch", "deploy", "kubia", "-p", "{}", "--patch-file", "x" }, "error: cannot specify --patch and --patch-file together\n" },
        { { "patch", "deploy", "nope", "-p", "{}" }, 'Error from server (NotFound): deployments.apps "nope" not found\n' },
        { { "patch", "deploy", "-p", "{}" }, "error: resource(s) were provided, but no name was specified\n" },
        { { "patch", "deploy", "kubia", "--type", "json", "-p", '[{"op":' },
          'error: unable to parse "[{\\"op\\":": yaml: line 1: did not find expected node content\n' },
      }
      for _, c in ipairs(cases) do
        local rc, out, err = run(s, c[1])
        assert.are.equal(1, rc)
        assert.are.equal("", out)
        assert.are.equal(c[2], err)
      end
      -- text starting with `{` goes to the server as it is: its answer is the error
      local rc, _, err = run(s, { "patch", "deploy", "kubia", "-p", '{"spec":{' })
      assert.are.equal(1, rc)
      assert.matches("^Error from server %(BadRequest%): error decoding patch", err)
    end)
  end)
end)

describe("cli set image", function()
  it("updates a Deployment's template with the strategic patch kubectl sends", function()
    with_stack(function(s, log)
      local d = deployment()
      table.insert(d.spec.template.spec.containers, { name = "side", image = "idealism/ssd-monitor" })
      assert(s.client:create(DEPLOY, d))
      local rc, out, err = run(s, { "set", "image", "deployment/kubia", "kubia=idealism/kubia:v2" })
      assert.are.equal("", err)
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia image updated\n", out)
      local sent = patches(log)
      assert.are.equal(1, #sent)
      assert.are.equal("application/strategic-merge-patch+json", sent[1].headers["Content-Type"])
      local got = assert(s.client:get(DEPLOY, "default", "kubia"))
      local cs = got.spec.template.spec.containers
      assert.are.equal("idealism/kubia:v2", cs[1].image)
      assert.are.equal("idealism/ssd-monitor", cs[2].image)
      assert.are.equal(2, got.metadata.generation) -- a template change: the controller rolls out
      -- the same image again: no patch, no output (kubectl skips an empty patch)
      rc, out = run(s, { "set", "image", "deploy", "kubia", "kubia=idealism/kubia:v2" })
      assert.are.equal(0, rc)
      assert.are.equal("", out)
      assert.are.equal(1, #patches(log))
    end)
  end)

  it("sets every container with *, init containers too, in pods and CronJobs", function()
    with_stack(function(s)
      assert(s.client:create(POD, { apiVersion = "v1", kind = "Pod", metadata = { name = "p", namespace = "default" },
        spec = { initContainers = { { name = "init", image = "a" } }, containers = { { name = "main", image = "a" } } } }))
      local rc, out = run(s, { "set", "image", "pod/p", "*=b" })
      assert.are.equal(0, rc)
      assert.are.equal("pod/p image updated\n", out)
      local p = assert(s.client:get(POD, "default", "p"))
      assert.are.equal("b", p.spec.initContainers[1].image)
      assert.are.equal("b", p.spec.containers[1].image)
      assert(s.client:create(CJ, { apiVersion = "batch/v1", kind = "CronJob", metadata = { name = "cj", namespace = "default" },
        spec = { schedule = "*/1 * * * *", jobTemplate = { spec = { template = { spec = { restartPolicy = "OnFailure",
          containers = { { name = "job", image = "idealism/batch-job" } } } } } } } }))
      rc, out = run(s, { "set", "image", "cronjob", "cj", "job=idealism/batch-job:v2", "-o", "name" })
      assert.are.equal(0, rc)
      assert.are.equal("cronjob.batch/cj\n", out)
      local cj = assert(s.client:get(CJ, "default", "cj"))
      assert.are.equal("idealism/batch-job:v2", cj.spec.jobTemplate.spec.template.spec.containers[1].image)
    end)
  end)

  it("reports unknown containers and kinds without a pod template as kubectl does", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment()))
      assert(s.client:create(CM, { apiVersion = "v1", kind = "ConfigMap", metadata = { name = "cfg", namespace = "default" } }))
      local rc, out, err = run(s, { "set", "image", "deploy/kubia", "nope=x" })
      assert.are.equal(1, rc)
      assert.are.equal("", out)
      assert.are.equal('error: unable to find container named "nope"\n', err)
      -- the known container is still updated, the error comes after
      rc, out, err = run(s, { "set", "image", "deploy/kubia", "kubia=v3", "nope=x" })
      assert.are.equal(1, rc)
      assert.are.equal("deployment.apps/kubia image updated\n", out)
      assert.are.equal('error: unable to find container named "nope"\n', err)
      rc, _, err = run(s, { "set", "image", "cm/cfg", "*=x" })
      assert.are.equal(1, rc)
      assert.are.equal("error: configmaps/cfg the object is not a pod or does not have a pod template: *v1.ConfigMap\n", err)
      local cases = {
        { { "set", "image", "deploy/kubia" }, "error: at least one image update is required\n" },
        { { "set", "image", "deploy/kubia", "a=b", "deploy/x" }, "error: all resources must be specified before image changes: deploy/x\n" },
        { { "set", "image", "deploy/kubia", "*=b", "a=c" }, "error: all containers are already specified by *, but saw more than one container_name=container_image pairs\n" },
        { { "set", "foo" }, "error: unknown command \"foo\"\nSee 'moonlet set -h' for help and examples\n" },
        { { "set", "image", "deploy/nope", "a=b" }, 'Error from server (NotFound): deployments.apps "nope" not found\n' },
      }
      for _, c in ipairs(cases) do
        rc, out, err = run(s, c[1])
        assert.are.equal(1, rc)
        assert.are.equal(c[2], err)
      end
    end)
  end)
end)

-- Sets the Deployment's status (what the controller would write).
local function set_status(s, name, st)
  local d = assert(s.client:get(DEPLOY, "default", name))
  if st.observedGeneration == true then st.observedGeneration = d.metadata.generation end
  d.status = st
  return assert(s.client:update_status(DEPLOY, d))
end

local function available(status)
  return { observedGeneration = true, conditions = { { type = "Available", status = status } } }
end

local function count(log, pred)
  local n = 0
  for _, r in ipairs(log) do if pred(r) then n = n + 1 end end
  return n
end

describe("cli wait", function()
  it("prints condition met at once when the condition holds (case-folded)", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment()))
      set_status(s, "kubia", available("True"))
      local rc, out, err = run(s, { "wait", "deploy/kubia", "--for=condition=available" })
      assert.are.equal("", err)
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia condition met\n", out)
      rc, out = run(s, { "wait", "deploy", "kubia", "--for", "condition=Available=TRUE", "-o", "name" })
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia\n", out)
    end)
  end)

  it("watches until the condition holds: one list, one watch, no polling", function()
    with_stack(function(s, log)
      assert(s.client:create(DEPLOY, deployment()))
      set_status(s, "kubia", available("False"))
      local function watching(r) return r.path:find("watch=true", 1, true) ~= nil end
      sched.spawn("controller", function()
        -- change the status only once the CLI's watch is open
        assert(api_stack.wait_until(function() return count(log, watching) > 0 end, 5000))
        set_status(s, "kubia", available("True"))
      end)
      local t0 = loop.now()
      local rc, out, err = run(s, { "wait", "deploy/kubia", "--for=condition=Available", "--timeout=20s" })
      assert.are.equal("", err)
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia condition met\n", out)
      assert.is_true(loop.now() - t0 < 5000)
      assert.are.equal(1, count(log, watching))
      assert.are.equal(1, count(log, function(r) return r.path:find("fieldSelector=metadata.name", 1, true) ~= nil
        and not watching(r) end))
    end)
  end)

  it("does not trust a condition older than the spec (observedGeneration)", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment()))
      set_status(s, "kubia", { observedGeneration = 0, conditions = { { type = "Available", status = "True" } } })
      local rc, out, err = run(s, { "wait", "deploy/kubia", "--for=condition=Available", "--timeout=0" })
      assert.are.equal(1, rc)
      assert.are.equal("", out)
      assert.are.equal("error: condition not met for deployments/kubia\n", err)
    end)
  end)

  it("times out with kubectl's message", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment()))
      local t0 = loop.now()
      local rc, out, err = run(s, { "wait", "deploy/kubia", "--for=condition=Available", "--timeout=1s" })
      assert.are.equal(1, rc)
      assert.are.equal("", out)
      assert.are.equal("error: timed out waiting for the condition on deployments/kubia\n", err)
      assert.is_true(loop.now() - t0 >= 900)
      -- under a second: the CLI ends the watch itself (the server's
      -- timeoutSeconds counts whole seconds)
      t0 = loop.now()
      rc, out, err = run(s, { "wait", "deploy/kubia", "--for=condition=Available", "--timeout=300ms" })
      local took = loop.now() - t0
      assert.are.equal(1, rc)
      assert.are.equal("error: timed out waiting for the condition on deployments/kubia\n", err)
      assert.is_true(took >= 290 and took < 1000, "took " .. took .. " ms")
    end)
  end)

  it("waits for deletion and creation", function()
    with_stack(function(s, log)
      assert(s.client:create(CM, { apiVersion = "v1", kind = "ConfigMap", metadata = { name = "gone", namespace = "default" } }))
      local function watching(r) return r.path:find("watch=true", 1, true) ~= nil end
      sched.spawn("deleter", function()
        assert(api_stack.wait_until(function() return count(log, watching) > 0 end, 5000))
        assert(s.client:delete(CM, "default", "gone"))
      end)
      local rc, out, err = run(s, { "wait", "cm/gone", "--for=delete", "--timeout=20s" })
      assert.are.equal("", err)
      assert.are.equal(0, rc)
      assert.are.equal("configmap/gone condition met\n", out)
      -- gone already: nothing to wait for, nothing printed
      rc, out, err = run(s, { "wait", "cm/gone", "--for=delete" })
      assert.are.same({ 0, "", "" }, { rc, out, err })
      local before = count(log, watching)
      sched.spawn("creator", function()
        assert(api_stack.wait_until(function() return count(log, watching) > before end, 5000))
        assert(s.client:create(CM, { apiVersion = "v1", kind = "ConfigMap", metadata = { name = "late", namespace = "default" } }))
      end)
      rc, out, err = run(s, { "wait", "cm/late", "--for=create", "--timeout=20s" })
      assert.are.equal("", err)
      assert.are.equal(0, rc)
      assert.are.equal("configmap/late condition met\n", out)
    end)
  end)

  it("compares JSONPath values, over every object a selector picks", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment("a", 3)))
      assert(s.client:create(DEPLOY, deployment("b", 3)))
      local rc, out, err = run(s, { "wait", "deploy", "-l", "app=kubia", "--for=jsonpath={.spec.replicas}=3" })
      assert.are.equal("", err)
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/a condition met\ndeployment.apps/b condition met\n", out)
      rc, out, err = run(s, { "wait", "deploy", "--all", "--for=jsonpath=.spec.paused", "--timeout=0" })
      assert.are.equal(1, rc)
      assert.are.equal("", out)
      assert.are.equal("error: condition not met for deployments/a\n", err)
      rc, _, err = run(s, { "wait", "deploy/a", "--for=jsonpath={.spec}=3" })
      assert.are.equal(1, rc)
      assert.are.equal("error: jsonpath leads to a nested object or list which is not supported\n", err)
    end)
  end)

  it("reports bad conditions and empty selections as kubectl does", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment()))
      local cases = {
        { { "wait", "deploy/kubia" }, 'error: unrecognized condition: ""\n' },
        { { "wait", "deploy/kubia", "--for=foo" }, 'error: unrecognized condition: "foo"\n' },
        { { "wait", "deploy", "-l", "app=none", "--for=delete" }, "" },
        { { "wait", "deploy", "-l", "app=none", "--for=condition=Available" }, "error: no matching resources found\n" },
        { { "wait", "deploy", "--for=condition=Available" }, "error: resource(s) were provided, but no name was specified\n" },
        { { "wait", "deploy/nope", "--for=condition=Available" }, 'Error from server (NotFound): deployments.apps "nope" not found\n' },
        { { "wait", "deploy/kubia", "--for=jsonpath={.spec.replicas}=" },
          "error: jsonpath wait has to have a value after equal sign, like --for=jsonpath='{.status.readyReplicas}'=3\n" },
        { { "wait", "deploy/kubia", "--for=condition=Available", "--timeout=5" },
          'error: invalid argument "5" for "--timeout" flag: time: missing unit in duration "5"\n' },
      }
      for _, c in ipairs(cases) do
        local rc, out, err = run(s, c[1])
        assert.are.equal(c[2] == "" and 0 or 1, rc)
        assert.are.equal("", out)
        assert.are.equal(c[2], err)
      end
    end)
  end)
end)

describe("client on_request (the CLI's -v=6 log)", function()
  it("reports each answer's status line, watches included", function()
    with_stack(function(s)
      local seen = {}
      local c = client.new({ transport = s.transport, on_request = function(method, path, code, ms)
        seen[#seen + 1] = { method, path, code, math.type(ms) ~= nil }
      end })
      assert(c:get(CM, "default", "kube-root-ca.crt") == nil)
      local w = assert(c:watch(CM, { namespace = "default", timeout_seconds = 1 }))
      w:close()
      local n = #seen
      assert.are.same({ "GET", "/api/v1/namespaces/default/configmaps/kube-root-ca.crt", 404, true }, seen[n - 1])
      assert.are.equal("GET", seen[n][1])
      assert.matches("watch=true", seen[n][2])
      assert.are.equal(200, seen[n][3])
    end)
  end)
end)

describe("cli get --sort-by", function()
  local sort_by = require("moonlet.cli.sort_by")

  it("orders as kubectl 1.32 sorts: strings bytewise, quantities, numbers, booleans", function()
    assert.is_true(sort_by.less("a10", "a9"))
    assert.is_false(sort_by.less("a9", "a10"))
    assert.is_true(sort_by.less("2024-05-01T09:00:00Z", "2024-05-01T10:00:00Z"))
    assert.is_true(sort_by.less("9", "10"))
    assert.is_true(sort_by.less("100m", "1"))
    assert.is_true(sort_by.less("512Mi", "1Gi"))
    assert.is_true(sort_by.less(9, 10))
    assert.is_true(sort_by.less(false, true))
    assert.are.equal("{.metadata.name}", sort_by.relaxed(".metadata.name"))
    assert.are.equal("{.status.replicas}", sort_by.relaxed("{.status.replicas}"))
    assert.are.equal("{.a.b}", sort_by.relaxed("a.b"))
    assert.is_nil(sort_by.relaxed("{{.a}"))
  end)

  it("sorts table rows, names, JSON and YAML lists; missing values first", function()
    with_stack(function(s)
      for _, c in ipairs({ { "a10", 10 }, { "a9", 9 }, { "b", 100 }, { "c" } }) do
        local d = deployment(c[1], c[2] or 1)
        if not c[2] then d.spec.paused = true end
        d.metadata.annotations = c[2] and { n = tostring(c[2]) } or nil
        assert(s.client:create(DEPLOY, d))
      end
      local rc, out, err = run(s, { "get", "deploy", "--sort-by=.metadata.name", "-o", "name" })
      assert.are.equal("", err)
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/a10\ndeployment.apps/a9\ndeployment.apps/b\ndeployment.apps/c\n", out)
      rc, out = run(s, { "get", "deploy", "--sort-by={.spec.replicas}" })
      assert.are.equal(0, rc)
      local names = {}
      for n in out:gmatch("\n(%S+)") do names[#names + 1] = n end
      assert.are.same({ "c", "a9", "a10", "b" }, names)
      rc, out = run(s, { "get", "deploy", "-o", "wide", "--sort-by", "{.metadata.annotations.n}" })
      assert.are.equal(0, rc)
      names = {}
      for n in out:gmatch("\n(%S+)") do names[#names + 1] = n end
      assert.are.same({ "c", "a9", "a10", "b" }, names)
      rc, out = run(s, { "get", "deploy", "-o", "json", "--sort-by=.spec.replicas" })
      assert.are.equal(0, rc)
      local list = json.decode(out)
      assert.are.equal("c", list.items[1].metadata.name)
      assert.are.equal("b", list.items[4].metadata.name)
      rc, out = run(s, { "get", "deploy", "-o", "yaml", "--sort-by=.spec.replicas" })
      assert.are.equal(0, rc)
      assert.is_true(out:find("name: a9", 1, true) < out:find("name: a10", 1, true))
      rc, out = run(s, { "get", "deploy", "-o", "jsonpath={.items[*].metadata.name}", "--sort-by=.spec.replicas" })
      assert.are.equal("c a9 a10 b", out)
    end)
  end)

  it("reports a field no object has and a malformed path", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment("a")))
      assert(s.client:create(DEPLOY, deployment("b")))
      local rc, out, err = run(s, { "get", "deploy", "-o", "name", "--sort-by={.status.nothing}" })
      assert.are.equal(1, rc)
      assert.are.equal("", out)
      assert.are.equal('error: couldn\'t find any field with path "{.status.nothing}" in the list of objects\n', err)
      rc, _, err = run(s, { "get", "deploy", "--sort-by={{.x}" })
      assert.are.equal(1, rc)
      assert.are.equal("error: unexpected path string, expected a 'name1.name2' or '.name1.name2' or '{name1.name2}' or '{.name1.name2}'\n", err)
      -- one named object is no list: printed as it is
      rc, out = run(s, { "get", "deploy", "a", "-o", "name", "--sort-by={.status.nothing}" })
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/a\n", out)
    end)
  end)
end)
