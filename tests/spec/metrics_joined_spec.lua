-- Resource metrics of joined nodes: which nodes the server asks
-- (metrics_scrape.targets), the concurrent scrape and what it leaves out,
-- and the metrics.k8s.io API on the in-process stack merging the server's
-- own node with a joined node's GET /stats/usage (log_server over TLS),
-- while a refused, a hung and a NotReady node are left out in time.
require("moonlet_core")
local json = require("moonlet.json")
local metrics = require("moonlet.kubelet.metrics")
local scrape = require("moonlet.kubelet.metrics_scrape")
local fake = require("fake_client") -- for fake.run only

-- A Node named `name`, Ready `ready`, publishing `port` on 127.0.0.1.
local function node(name, ready, port, labels)
  return { metadata = { name = name, labels = labels }, status = {
    conditions = { { type = "Ready", status = ready } },
    addresses = { { type = "InternalIP", address = "127.0.0.1" } },
    daemonEndpoints = { kubeletEndpoint = { Port = port } } } }
end

describe("metrics scrape of joined nodes", function()
  it("asks Ready nodes with an endpoint, not the server's own, those keep selects", function()
    local nodes = { node("own", "True", 1), node("far", "True", 2), node("down", "Unknown", 3),
      node("quiet", "True", 0), node("other", "True", 4) }
    local t = scrape.targets(nodes, "own", function(n) return n.metadata.name ~= "other" end)
    assert.are.equal(1, #t)
    assert.are.equal("far", t[1].name)
    assert.are.equal("https://127.0.0.1:2", t[1].base)
    assert.are.same({}, scrape.targets({}, "own"))
  end)

  it("keeps the answers that are usage documents, logs the rest", function()
    local logged, seen = {}, {}
    local answers = {
      ["https://a:1/stats/usage"] = { status = 200, body = '{"nodeName":"a","pods":[{"metadata":{"name":"p"}}]}' },
      ["https://b:1/stats/usage"] = { status = 401, body = '{"kind":"Status","message":"Unauthorized"}' },
      ["https://c:1/stats/usage"] = { status = 200, body = "[1,2]" },
      ["https://f:1/stats/usage"] = { status = 200, body = '{"pods": [' },
      ["https://g:1/stats/usage"] = { status = 200, body = "{}", truncated = true },
    }
    local out = fake.run(function()
      return scrape.scrape({ { name = "a", base = "https://a:1" }, { name = "b", base = "https://b:1" },
        { name = "c", base = "https://c:1" }, { name = "d", base = "https://d:1" },
        { name = "e", base = "https://e:1" }, { name = "f", base = "https://f:1" },
        { name = "g", base = "https://g:1" } }, {
        token = "tok",
        log = function(level, msg) logged[#logged + 1] = level .. " " .. msg end,
        request = function(opts)
          seen[#seen + 1] = opts.headers.Authorization
          assert(opts.insecure and opts.timeout_ms == scrape.TIMEOUT_MS)
          if opts.url:find("//d:") then return nil, "ECONNREFUSED: Connection refused", "ECONNREFUSED" end
          if opts.url:find("//e:") then error("boom") end
          return answers[opts.url]
        end })
    end)
    assert.are.same({ "a" }, (function()
      local names = {}
      for k in pairs(out) do names[#names + 1] = k end
      return names
    end)())
    assert.are.equal("p", out.a.pods[1].metadata.name)
    assert.are.equal(7, #seen)
    for _, h in ipairs(seen) do assert.are.equal("Bearer tok", h) end
    table.sort(logged)
    assert.are.equal(6, #logged)
    assert.matches('^warn metrics: node b left out: Get "https://b:1/stats/usage": HTTP 401: Unauthorized$', logged[1])
    assert.matches("node c left out: .*not a usage document$", logged[2])
    assert.matches("node d left out: .*Connection refused$", logged[3])
    assert.matches("node e left out: .*boom", logged[4])
    assert.matches("node f left out: .*not a usage document$", logged[5])
    assert.matches("node g left out: .*answer larger than", logged[6])
  end)
end)

-- {====== the API merging a joined node's figures

-- A sampler on a fixed clock answering from `usage` (pgid -> usage) and,
-- with `node_files`, /proc figures of the host.
local function sampler_with(usage, node_files)
  return metrics.new({
    mono = function() return 100 end,
    wall = function() return 1700000000 end,
    read = function(pgids)
      local out = {}
      for i, p in ipairs(pgids) do out[i] = usage[p] or { cpu_ns = 0, rss = 0, start_ns = 0, procs = 0 } end
      return out, 20e9
    end,
    read_file = function(path) return node_files and node_files[path] end,
  })
end

local function agent_with(name, pods)
  local workers = {}
  for i, p in ipairs(pods) do
    local pod = { metadata = { name = p[1], namespace = "default", labels = { app = p[1] }, uid = p[1] .. "-uid" },
      spec = { nodeName = name, containers = { { name = "main", image = "x" } } } }
    workers[pod.metadata.uid] = { pod = pod,
      cs = { main = { inst = { id = p[1] .. "-main", started = 0, handle = { pid = p[2] } } } } }
    pods[i] = pod
  end
  return { node_name = name, workers = workers }
end

local PROC = {
  ["/proc/stat"] = "cpu  100 0 0 100 0 0 0 0\ncpu0 1\ncpu1 1\n",
  ["/proc/meminfo"] = "MemTotal: 4096 kB\nMemAvailable: 1024 kB\n", ["/proc/uptime"] = "8 1\n",
}

describe("metrics.k8s.io with a joined node", function()
  it("lists and gets pods and nodes of both, leaving out nodes that do not answer", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local httpd = require("moonlet.httpd")
    local sched, loop = require("moonlet.sched"), require("moonlet.loop")
    assert(httpd.ensure_cert(dir, {}, { "127.0.0.1" }))
    local tls = { tls = { cert_file = dir .. "/tls.crt", key_file = dir .. "/tls.key" } }
    local r = {}
    local saved_timeout, saved_log = scrape.TIMEOUT_MS, scrape.log
    fake.run(function()
      local s = require("api_stack").new()
      local logged, asked_down = {}, 0
      local ok, err = pcall(function()
        scrape.TIMEOUT_MS = 400
        scrape.log = function(_, msg) logged[#logged + 1] = msg end
        local api = require("moonlet.kubelet.metrics_api")
        local far_pods, own_pods = { { "remote", 30 } }, { { "web", 10 } }
        local far = agent_with("far", far_pods)
        local own = agent_with("n1", own_pods)
        local usage = { [10] = { cpu_ns = 2e9, rss = 1048576, start_ns = 10e9, procs = 1 },
          [30] = { cpu_ns = 5e9, rss = 4 * 1048576, start_ns = 10e9, procs = 1 } }
        -- the joined node's process configures its own agent; the server then its own
        api.configure({ agent = far, sampler = sampler_with(usage, PROC) })
        api.configure({ agent = own, sampler = sampler_with(usage, PROC) })
        require("moonlet.kubelet.log_proxy").configure({ token = "t" })
        local handler = require("moonlet.kubelet.log_server").handler(far, "t")
        local srv = assert(httpd.listen("tcp://127.0.0.1:0", handler, tls))
        -- a node that accepts and never answers, and one that is NotReady
        local hang = loop.next_id()
        local hung = assert(httpd.listen("tcp://127.0.0.1:0", function(req)
          sched.wait(hang)
          req:respond(200, {}, "{}")
        end, tls))
        local down = assert(httpd.listen("tcp://127.0.0.1:0", function(req)
          asked_down = asked_down + 1
          req:respond(200, {}, "{}")
        end, tls))
        local refused = assert(httpd.listen("tcp://127.0.0.1:0", function() end, tls))
        local refused_port = refused:port()
        refused:close()
        for _, n in ipairs({ { "n1", "True", 0 }, { "far", "True", srv:port(), { zone = "b" } },
            { "hung", "True", hung:port() }, { "down", "Unknown", down:port() },
            { "refused", "True", refused_port } }) do
          local want = node(n[1], n[2], n[3], n[4])
          assert(s.client:create("v1/Node", { apiVersion = "v1", kind = "Node", metadata = want.metadata }))
          local got = s.client:get("v1/Node", nil, n[1])
          got.status = want.status
          assert(s.client:update_status("v1/Node", got))
        end
        for _, p in ipairs({ far_pods[1], own_pods[1] }) do
          assert(s.client:create("v1/Pod", { apiVersion = "v1", kind = "Pod", metadata = { name = p.metadata.name,
            namespace = "default", labels = p.metadata.labels }, spec = p.spec }))
        end
        local function get(path)
          local res = s.transport({ method = "GET", path = "/apis/metrics.k8s.io/v1beta1/" .. path,
            headers = { Accept = "application/json" } })
          return res.status, json.decode(res.body or "")
        end
        local t0 = loop.now()
        local _, pods = get("pods")
        r.pods_ms = loop.now() - t0
        r.pods = {}
        for _, item in ipairs(pods.items) do
          r.pods[#r.pods + 1] = item.metadata.name .. " " .. item.containers[1].usage.cpu .. " "
            .. item.containers[1].usage.memory
        end
        local _, nodes = get("nodes")
        r.nodes = {}
        for _, item in ipairs(nodes.items) do r.nodes[#r.nodes + 1] = item.metadata.name .. " " .. item.usage.cpu end
        r.far_node = select(2, get("nodes/far"))
        r.remote_code, r.remote = get("namespaces/default/pods/remote")
        local _, sel = get("pods?labelSelector=app%3Dremote")
        r.selected = #sel.items
        r.hung_code = get("nodes/hung")
        r.asked_down = asked_down
        -- the joined node goes away: the list answers with the server's own
        srv:close()
        t0 = loop.now()
        local code, after = get("pods")
        r.after_ms, r.after_code = loop.now() - t0, code
        r.after = #after.items == 1 and after.items[1].metadata.name
        r.logged = logged
        sched.wake(hang)
        hung:close()
        down:close()
      end)
      scrape.TIMEOUT_MS, scrape.log = saved_timeout, saved_log
      require("moonlet.kubelet.metrics_api").configure({ agent = nil })
      require("api_stack").close(s, ok, err)
    end)
    os.execute("rm -rf " .. dir)
    -- 2 s of CPU over 10 s and 5 s over 10 s, both since the start
    assert.are.same({ "remote 500000000n 4096Ki", "web 200000000n 1024Ki" }, r.pods)
    assert.is_true(r.pods_ms < 3000, "the hung node costs the timeout, not more: " .. r.pods_ms)
    assert.are.same({ "far 1000000000n", "n1 1000000000n" }, r.nodes)
    assert.are.equal("NodeMetrics", r.far_node.kind)
    assert.are.same({ zone = "b" }, r.far_node.metadata.labels, "labels of the stored Node")
    assert.are.same({ cpu = "1000000000n", memory = "3072Ki" }, r.far_node.usage)
    assert.are.equal("8s", r.far_node.window)
    assert.are.equal(200, r.remote_code)
    assert.are.equal("PodMetrics", r.remote.kind)
    assert.are.equal("500000000n", r.remote.containers[1].usage.cpu)
    assert.are.equal(1, r.selected)
    assert.are.equal(404, r.hung_code)
    assert.are.equal(0, r.asked_down, "a NotReady node is not asked")
    assert.are.equal(200, r.after_code)
    assert.are.equal("web", r.after)
    assert.is_true(r.after_ms < 3000, "a gone node costs little: " .. r.after_ms)
    local text = table.concat(r.logged, "\n")
    assert.matches("node hung left out", text)
    assert.matches("node refused left out", text)
    assert.matches("node far left out", text)
    assert.is_nil(text:find("node down", 1, true))
  end)
end)

-- }======
