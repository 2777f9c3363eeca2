-- Joining nodes (`moonlet node`): its flags and connection (kubeconfig,
-- --server/--token-file), the kubeconfig reader, and pods/NAME/log for a
-- pod on another node: the server's API stack forwards it (log_proxy) to
-- the node's HTTPS endpoint (log_server), options and errors included.
require("moonlet_core")
local json = require("moonlet.json")
local yaml = require("moonlet.yaml")
local fake = require("fake_client") -- for fake.run only
local kubeconfig = require("moonlet.kubeconfig")
local node = require("moonlet.node")
local log_proxy = require("moonlet.kubelet.log_proxy")

local function files(map) return function(path) return map[path] end end

describe("moonlet.kubeconfig", function()
  it("decodes base64", function()
    assert.are.equal("hello, world", kubeconfig.base64_decode("aGVsbG8sIHdvcmxk"))
    assert.are.equal("ab", kubeconfig.base64_decode("YW\nI="))
    assert.are.equal("", kubeconfig.base64_decode(""))
    assert.is_nil(kubeconfig.base64_decode("a*b"))
  end)

  it("reads the current context's server, token and CA", function()
    local text = yaml.encode({ apiVersion = "v1", kind = "Config", ["current-context"] = "b",
      clusters = json.array({ { name = "ca", cluster = { server = "https://a:1" } },
        { name = "cb", cluster = { server = "https://b:2", ["certificate-authority-data"] = "UEVN" } } }),
      users = json.array({ { name = "ua", user = { token = "ta" } }, { name = "ub", user = { token = "tb" } } }),
      contexts = json.array({ { name = "a", context = { cluster = "ca", user = "ua" } },
        { name = "b", context = { cluster = "cb", user = "ub" } } }) })
    local c = assert(kubeconfig.parse(text, "/d"))
    assert.are.same({ server = "https://b:2", token = "tb", ca_pem = "PEM" }, c)
  end)

  it("resolves tokenFile and certificate-authority next to the kubeconfig", function()
    local text = yaml.encode({ ["current-context"] = "x",
      clusters = json.array({ { name = "c", cluster = { server = "https://h:3", ["certificate-authority"] = "ca.crt" } } }),
      users = json.array({ { name = "u", user = { tokenFile = "tok" } } }),
      contexts = json.array({ { name = "x", context = { cluster = "c", user = "u" } } }) })
    local c = assert(kubeconfig.load("/cfg/kc", files({ ["/cfg/kc"] = text, ["/cfg/tok"] = "secret\n" })))
    assert.are.same({ server = "https://h:3", token = "secret", ca_file = "/cfg/ca.crt" }, c)
  end)

  it("says what is missing", function()
    local _, err = kubeconfig.parse("kind: Config\n")
    assert.matches("no cluster server", err)
    _, err = kubeconfig.parse(yaml.encode({ ["current-context"] = "nope", contexts = json.array({}) }))
    assert.matches('context "nope" not found', err)
    _, err = kubeconfig.load("/none", files({}))
    assert.matches("cannot read /none", err)
  end)
end)

describe("moonlet node flags", function()
  local function parse(...) return node.parse_flags({ "node", ... }) end

  it("takes the connection and the node agent's flags", function()
    local o = assert(parse("--kubeconfig", "/k", "--node-name", "second", "--data-dir=/d2",
      "--image-path", "/i1", "--image-path", "/i2", "--keep-pods", "--crashloop-initial", "2s",
      "--node-status-update-frequency", "500ms", "--listen", "tcp://127.0.0.1:0"))
    assert.are.equal("/k", o.kubeconfig)
    assert.are.equal("second", o.node_name)
    assert.are.equal("/d2", o.data_dir)
    assert.are.same({ "/i1", "/i2" }, o.image_path)
    assert.is_true(o.keep_pods)
    assert.are.equal(2, o.crashloop_initial)
    assert.are.equal(0.5, o.heartbeat)
    assert.are.equal("tcp://127.0.0.1:0", o.listen)
  end)

  it("rejects what a node cannot do", function()
    local _, err = parse()
    assert.matches("give %-%-kubeconfig FILE", err)
    _, err = parse("--kubeconfig", "/k", "--no-kubelet")
    assert.matches("unknown flag: %-%-no%-kubelet", err)
    _, err = parse("--server", "https://h:1")
    assert.matches("give %-%-kubeconfig", err)
    _, err = parse("--kubeconfig", "/k", "--server", "https://h:1", "--token-file", "/t")
    assert.matches("exclude each other", err)
    _, err = parse("--server", "h:1", "--token-file", "/t")
    assert.matches("%-%-server must be https://", err)
    _, err = parse("--kubeconfig", "/k", "--listen", "unix:/x")
    assert.matches("%-%-listen must be tcp://", err)
    _, err = parse("--kubeconfig", "/k", "--crashloop-max", "soon")
    assert.matches("invalid duration", err)
    assert.is_true(parse("-h").help)
  end)

  it("connects with --server and --token-file", function()
    local o = assert(parse("--server", "https://h:1", "--token-file", "/t", "--certificate-authority", "/ca"))
    assert.are.same({ server = "https://h:1", token = "abc", ca_file = "/ca" },
      node.connection(o, files({ ["/t"] = "abc\n" })))
    local _, err = node.connection(o, files({ ["/t"] = "\n" }))
    assert.matches("is empty", err)
    o = assert(parse("--kubeconfig", "/k"))
    _, err = node.connection(o, files({ ["/k"] = yaml.encode({ clusters = json.array({ { name = "c",
      cluster = { server = "https://h:1" } } }) }) }))
    assert.matches("no bearer token", err)
  end)
end)

describe("moonlet node registration retries", function()
  it("retries what the server may recover from, not what it refused", function()
    assert.is_true(node.retryable({ transport = true, code = 0, message = "connection refused" }))
    assert.is_true(node.retryable({ code = 503, reason = "ServiceUnavailable" }))
    assert.is_true(node.retryable({ code = 500 }))
    assert.is_true(node.retryable({ code = 429 }))
    assert.is_false(node.retryable({ code = 401, reason = "Unauthorized" }))
    assert.is_false(node.retryable({ code = 403 }))
    assert.is_false(node.retryable({ code = 422, reason = "Invalid" }))
    assert.is_false(node.retryable("a message"))
  end)
end)

describe("pods/NAME/log on a joined node", function()
  it("builds the kubelet URL from the Node and the log options", function()
    local n = { status = { addresses = { { type = "Hostname", address = "box" }, { type = "InternalIP", address = "10.0.0.2" } },
      daemonEndpoints = { kubeletEndpoint = { Port = 10250 } } } }
    assert.are.equal("https://10.0.0.2:10250", log_proxy.endpoint(n))
    n.status.daemonEndpoints.kubeletEndpoint.Port = 0
    assert.is_nil(log_proxy.endpoint(n))
    assert.is_nil(log_proxy.endpoint({}))
    local q = require("moonlet.api.request").parse_query(
      "container=c&tailLines=2&previous=true&sinceTime=2026-01-01T00%3A00%3A00Z&pretty=1")
    assert.are.equal("https://h:1/containerLogs/ns/p/c?previous=true&tailLines=2&sinceTime=2026-01-01T00%3A00%3A00Z",
      log_proxy.url("https://h:1", { metadata = { namespace = "ns", name = "p" } }, "c", q))
  end)

  it("forwards to the node's endpoint: text, options, its errors and an unreachable node's", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir .. "/pods"))
    local httpd = require("moonlet.httpd")
    assert(httpd.ensure_cert(dir, {}, { "127.0.0.1" }))
    local results = {}
    fake.run(function()
      local s = require("api_stack").new()
      require("moonlet.kubelet.subresources").install()
      require("moonlet.kubelet.logs").configure({ agent = nil })
      log_proxy.configure({ token = "t" })
      -- the joined node: an agent's pod dir and the endpoint serving it
      local p = { apiVersion = "v1", kind = "Pod", metadata = { name = "p", namespace = "default" },
        spec = { nodeName = "far", containers = { { name = "main", image = "busybox" } } } }
      p = assert(s.client:create("v1/Pod", p))
      p.status.phase = "Running"
      p.status.containerStatuses = { { name = "main", restartCount = 0, ready = true,
        image = "busybox", imageID = "", containerID = "moonlet://aa",
        state = { running = { startedAt = "2026-01-01T00:00:00Z" } }, lastState = {} } }
      p = assert(s.client:update_status("v1/Pod", p))
      local agent = require("moonlet.kubelet.agent").new({ client = s.client, data_dir = dir, node_name = "far" })
      agent.workers[p.metadata.uid] = { pod = p }
      local pdir = agent:pod_dir(p)
      assert(os.execute("mkdir -p " .. pdir))
      local f = assert(io.open(require("moonlet.kubelet.agent").log_file(pdir, "main", "aa"), "w"))
      f:write("2026-01-01T00:00:01.000000000Z stdout F one\n2026-01-01T00:00:02.000000000Z stdout F two\n")
      f:close()
      local srv = assert(httpd.listen("tcp://127.0.0.1:0", require("moonlet.kubelet.log_server").handler(agent, "t"),
        { tls = { cert_file = dir .. "/tls.crt", key_file = dir .. "/tls.key" } }))
      assert(s.client:create("v1/Node", { apiVersion = "v1", kind = "Node", metadata = { name = "far" } }))
      local n = s.client:get("v1/Node", nil, "far")
      n.status = { addresses = { { type = "InternalIP", address = "127.0.0.1" } },
        daemonEndpoints = { kubeletEndpoint = { Port = srv:port() } } }
      assert(s.client:update_status("v1/Node", n))
      local function get(q)
        local res = s.transport({ method = "GET", path = "/api/v1/namespaces/default/pods/p/log?" .. q,
          headers = {} })
        return { status = res.status, body = res.body }
      end
      results.all = get("")
      results.tail = get("tailLines=1")
      results.previous = get("previous=true")
      results.bad_container = get("container=nope")
      -- the node refuses another token
      log_proxy.configure({ token = "wrong" })
      results.token = get("")
      log_proxy.configure({ token = "t" })
      results.port = srv:port()
      srv:close()
      results.gone = get("")
    end)
    os.execute("rm -rf " .. dir)
    assert.are.same({ status = 200, body = "one\ntwo\n" }, results.all)
    assert.are.same({ status = 200, body = "two\n" }, results.tail)
    assert.are.equal(400, results.previous.status)
    assert.are.equal('previous terminated container "main" in pod "p" not found',
      json.decode(results.previous.body).message)
    assert.are.equal("container nope is not valid for pod p", json.decode(results.bad_container.body).message)
    assert.are.equal(401, results.token.status)
    assert.are.equal(500, results.gone.status)
    assert.matches('^Get "https://127%.0%.0%.1:' .. results.port .. '/containerLogs/default/p/main": ',
      json.decode(results.gone.body).message)
  end)
end)
