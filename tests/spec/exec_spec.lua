-- kubectl exec's Lua side: PodExecOptions from the query, the subprotocol
-- choice, the final Status for an exit (what kubectl turns into its exit
-- status) and for a command that cannot start; moonlet exec's query and
-- its Status -> exit status mapping; and the API's refusals before any
-- upgrade (unknown pod or container, no host, a joined node's pod, a
-- request that is no WebSocket upgrade) on the in-process API stack.
require("moonlet_core")
local json = require("moonlet.json")
local fake = require("fake_client") -- for fake.run only
local exec = require("moonlet.kubelet.exec")
local cli = require("moonlet.cli.exec")

local function q(t)
  local out = {}
  for k, v in pairs(t) do out[k] = type(v) == "table" and v or { v } end
  return out
end

describe("pods/exec options", function()
  it("reads the command list and the stream flags", function()
    local o = assert(exec.options(q({ command = { "sh", "-c", "echo hi" }, stdin = "true", stdout = "true",
      stderr = "true", container = "main" })))
    assert.are.same({ "sh", "-c", "echo hi" }, o.command)
    assert.are.equal("main", o.container)
    assert.is_true(o.stdin and o.stdout and o.stderr)
    assert.is_false(o.tty)
  end)
  it("merges stderr into stdout with a tty", function()
    local o = assert(exec.options(q({ command = "sh", stdout = "true", stderr = "true", tty = "true" })))
    assert.is_true(o.tty)
    assert.is_false(o.stderr)
  end)
  it("refuses no command and no stream as Kubernetes does", function()
    local _, st = exec.options(q({ stdout = "true" }))
    assert.are.equal(400, st.code)
    assert.are.equal("you must specify at least 1 command", st.message)
    _, st = exec.options(q({ command = "ls" }))
    assert.are.equal("you must specify at least 1 of stdin, stdout, stderr", st.message)
  end)
  it("picks v5 over v4 and refuses other protocols", function()
    assert.are.equal("v5.channel.k8s.io", exec.pick_protocol("v4.channel.k8s.io, v5.channel.k8s.io"))
    assert.are.equal("v4.channel.k8s.io", exec.pick_protocol("v4.channel.k8s.io,channel.k8s.io"))
    local p, st = exec.pick_protocol("channel.k8s.io")
    assert.is_nil(p)
    assert.are.equal(400, st.code)
    assert.matches("not supported", st.message)
  end)
end)

describe("exec status", function()
  it("is Success for exit 0", function()
    assert.are.same({ metadata = {}, status = "Success" }, json.decode(exec.exit_status({ exit_code = 0 }, { "true" })))
  end)
  it("carries a non-zero exit code as kubelet's NonZeroExitCode", function()
    local st = json.decode(exec.exit_status({ exit_code = 3 }, { "sh", "-c", "exit 3" }))
    assert.are.equal("Failure", st.status)
    assert.are.equal("NonZeroExitCode", st.reason)
    assert.are.same({ { reason = "ExitCode", message = "3" } }, st.details.causes)
    assert.are.equal("command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
      st.message)
    -- a signal: 128 + its number, as the kubelet reports it
    assert.are.equal("137", json.decode(exec.exit_status({ exit_code = 137 }, { "x" })).details.causes[1].message)
  end)
  it("reports a command that cannot start as an internal error", function()
    local st = json.decode(exec.start_failure('ENOENT: exec: "nope": executable file not found in $PATH'))
    assert.are.equal("InternalError", st.reason)
    assert.are.equal(500, st.code)
    assert.are.equal('Internal error occurred: error executing command in container: failed to exec in container: '
      .. 'exec: "nope": executable file not found in $PATH', st.message)
  end)
  it("maps back to kubectl's exit status in moonlet exec", function()
    assert.are.equal(0, cli.exit_code(exec.exit_status({ exit_code = 0 }, { "true" })))
    local code, line = cli.exit_code(exec.exit_status({ exit_code = 3 }, { "sh" }))
    assert.are.equal(3, code)
    assert.are.equal("command terminated with exit code 3", line)
    code, line = cli.exit_code(exec.start_failure("ENOENT: exec: x"))
    assert.are.equal(1, code)
    assert.matches("^error: Internal error occurred", line)
    assert.are.equal(0, cli.exit_code(nil)) -- a session closed without a Status
  end)
  it("builds the query as kubectl does", function()
    assert.are.equal("?container=c%201&command=sh&command=-c&command=echo%20%24A&stdin=true&stdout=true&stderr=true",
      cli.query("c 1", { "sh", "-c", "echo $A" }, true, false))
    assert.are.equal("?command=sh&stdout=true&tty=true", cli.query(nil, { "sh" }, false, true))
  end)
end)

describe("pods/exec refusals", function()
  local function stack()
    local s = require("api_stack").new()
    require("moonlet.kubelet.subresources").install()
    return s
  end
  local function call(s, path)
    local res = s.transport({ method = "GET", path = path, headers = {} })
    return res.status, json.decode(res.body or "")
  end
  local function pod(name, node)
    return { apiVersion = "v1", kind = "Pod", metadata = { name = name, namespace = "default" },
      spec = { nodeName = node, containers = { { name = "main", image = "sh", command = { "sleep", "9" } } } } }
  end

  it("answers with the API server's messages", function()
    fake.run(function()
      local s = stack()
      assert(s.client:create("v1/Pod", pod("unbound")))
      assert(s.client:create("v1/Pod", pod("away", "n2")))
      local base = "/api/v1/namespaces/default/pods/"
      local code, st = call(s, base .. "ghost/exec?command=ls&stdout=true")
      assert.are.equal(404, code)
      assert.are.equal('pods "ghost" not found', st.message)
      code, st = call(s, base .. "unbound/exec?command=ls&stdout=true&container=x")
      assert.are.equal(400, code)
      assert.are.equal("container x is not valid for pod unbound", st.message)
      code, st = call(s, base .. "unbound/exec?command=ls&stdout=true")
      assert.are.equal("pod unbound does not have a host assigned", st.message)
      code, st = call(s, base .. "away/exec?command=ls&stdout=true")
      assert.are.equal(400, code)
      assert.matches("joined node n2 is not supported yet", st.message)
    end)
  end)
end)
