-- The resource metrics API and `top`: the sampler's window rule on injected
-- samples (first answer = average since start, then rates at least a
-- second apart, reuse in between), node figures from a fake /proc, the
-- group_usage binding on a fake /proc tree, the metrics.k8s.io handlers on
-- the in-process API stack with a fake node agent, and the kubectl top
-- printer.
require("moonlet_core")
local json = require("moonlet.json")
local metrics = require("moonlet.kubelet.metrics")
local top = require("moonlet.printers.top")
local fake = require("fake_client") -- for fake.run only

-- A sampler on a controllable clock whose reads answer from `usage`
-- (pgid -> { cpu_ns, rss, start_ns, procs }) at boot time `clock.boot`.
local function sampler_with(clock, usage)
  clock.reads = 0
  return metrics.new({
    mono = function() return clock.mono end,
    wall = function() return clock.wall end,
    read = function(pgids, cgroups)
      clock.reads = clock.reads + 1
      clock.cgroups = cgroups
      local out = {}
      for _, p in ipairs(pgids) do out[#out + 1] = usage[p] or { cpu_ns = 0, rss = 0, start_ns = 0, procs = 0 } end
      return out, clock.boot
    end,
    read_file = function(path) return clock.files and clock.files[path] end,
  })
end

describe("metrics sampler", function()
  it("answers a first request with the average since the container started", function()
    local clock = { mono = 100, wall = 1700000000, boot = 50e9 }
    local s = sampler_with(clock, { [10] = { cpu_ns = 5e9, rss = 4096 * 10, start_ns = 40e9, procs = 2 } })
    local r = s:containers({ { key = "a", pgid = 10 } })
    assert.are.equal(500000000, r.a.cpu_nano) -- 5 s of CPU over 10 s: half a core
    assert.are.equal(40960, r.a.memory)
    assert.are.equal(10, r.a.window)
    assert.are.equal(1700000000, r.a.timestamp)
  end)

  it("then the rate since the previous sample, reusing results less than a second old", function()
    local clock = { mono = 100, wall = 1700000000, boot = 50e9 }
    local usage = { [10] = { cpu_ns = 5e9, rss = 8192, start_ns = 40e9, procs = 1 } }
    local s = sampler_with(clock, usage)
    s:containers({ { key = "a", pgid = 10 } })
    clock.mono, clock.boot = 100.5, 50.5e9
    usage[10] = { cpu_ns = 9e9, rss = 8192, start_ns = 40e9, procs = 1 }
    local r = s:containers({ { key = "a", pgid = 10 } })
    assert.are.equal(1, clock.reads, "no /proc pass within the window")
    assert.are.equal(500000000, r.a.cpu_nano)
    clock.mono, clock.boot, clock.wall = 102, 52e9, 1700000002
    usage[10] = { cpu_ns = 8e9, rss = 12288, start_ns = 40e9, procs = 1 }
    r = s:containers({ { key = "a", pgid = 10 } })
    assert.are.equal(2, clock.reads)
    assert.are.equal(1500000000, r.a.cpu_nano) -- 3 s of CPU over 2 s
    assert.are.equal(2, r.a.window)
    assert.are.equal(12288, r.a.memory)
    assert.are.equal(1700000002, r.a.timestamp)
  end)

  it("never reports negative CPU, leaves out gone groups, forgets stopped containers", function()
    local clock = { mono = 100, wall = 1, boot = 50e9 }
    local usage = { [10] = { cpu_ns = 5e9, rss = 0, start_ns = 40e9, procs = 1 },
      [20] = { cpu_ns = 1e9, rss = 0, start_ns = 45e9, procs = 1 } }
    local s = sampler_with(clock, usage)
    s:containers({ { key = "a", pgid = 10 }, { key = "b", pgid = 20 } })
    clock.mono, clock.boot = 102, 52e9
    usage[10] = { cpu_ns = 4e9, rss = 0, start_ns = 40e9, procs = 1 } -- a member ended unreaped
    usage[20] = nil
    local r = s:containers({ { key = "a", pgid = 10 }, { key = "b", pgid = 20 } })
    assert.are.equal(0, r.a.cpu_nano)
    assert.is_nil(r.b)
    s:containers({ { key = "b", pgid = 20 } })
    assert.is_nil(s.last.a, "a stopped container's sample is dropped")
  end)

  it("passes each container's cgroup along with its group", function()
    local clock = { mono = 100, wall = 1, boot = 20e9 }
    local s = sampler_with(clock, { [10] = { cpu_ns = 1e9, rss = 4096, start_ns = 10e9, procs = 1 },
      [30] = { cpu_ns = 2e9, rss = 8192, start_ns = 10e9, procs = 3 } })
    local r = s:containers({ { key = "limited", pgid = 30, cgroup = "/cg/x" }, { key = "plain", pgid = 10 } })
    assert.are.same({ "/cg/x", false }, clock.cgroups)
    assert.are.equal(200000000, r.limited.cpu_nano)
    assert.are.equal(8192, r.limited.memory)
    assert.are.equal(100000000, r.plain.cpu_nano)
  end)

  it("takes the host's CPU from /proc/stat and its working set from /proc/meminfo", function()
    local clock = { mono = 100, wall = 5, boot = 0, files = {
      ["/proc/stat"] = "cpu  300 0 100 1500 100 0 0 0 0 0\ncpu0 150 0 50 750 50 0 0 0 0 0\ncpu1 150 0 50 750 50 0 0 0 0 0\nintr 1\n",
      ["/proc/meminfo"] = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    600 kB\n",
      ["/proc/uptime"] = "10.00 15.00\n",
    } }
    local s = sampler_with(clock, {})
    local n = s:node()
    assert.are.equal(400000000, n.cpu_nano) -- 400 busy of 2000 ticks on 2 CPUs
    assert.are.equal(400 * 1024, n.memory)
    assert.are.equal(10, n.window)
    clock.files["/proc/stat"] = "cpu  500 0 200 1700 100 0 0 0 0 0\ncpu0 1\ncpu1 1\n"
    clock.mono = 100.5
    assert.are.equal(400000000, s:node().cpu_nano, "reused within a second")
    clock.mono = 101
    n = s:node()
    assert.are.equal(1200000000, n.cpu_nano) -- 300 busy of 500 ticks, 2 CPUs
    assert.are.equal(1, n.window)
  end)

  it("writes quantities and windows as metrics-server does", function()
    assert.are.equal("918950110n", metrics.cpu_quantity(918950110))
    assert.are.equal("1428Ki", metrics.memory_quantity(1428 * 1024))
    assert.are.equal("1000", metrics.memory_quantity(1000))
    assert.are.equal("10.012s", metrics.window(10.0123))
    assert.are.equal("1m0.5s", metrics.window(60.5))
  end)
end)

describe("group_usage binding", function()
  it("sums a group from a /proc-shaped directory", function()
    local core = require("moonlet.core.proc")
    local root = os.tmpname()
    os.remove(root)
    assert(os.execute("mkdir -p " .. root .. "/77 " .. root .. "/78"))
    local function stat(pid, pgid, ut, st, rss)
      local f = assert(io.open(root .. "/" .. pid .. "/stat", "w"))
      f:write(string.format("%d (x y) S 1 %d %d 0 -1 0 0 0 0 0 %d %d 0 0 20 0 1 0 1000 100 %d 0\n",
        pid, pgid, pgid, ut, st, rss))
      f:close()
    end
    stat(77, 77, 100, 0, 3)
    stat(78, 77, 50, 50, 2)
    local u, boot = core.group_usage({ 77, 999 }, { root = root })
    -- a v1 memory cgroup's working set stands in for the members' RSS
    assert(os.execute("mkdir -p " .. root .. "/cg"))
    local f = assert(io.open(root .. "/cg/memory.usage_in_bytes", "w"))
    f:write("10485760\n")
    f:close()
    f = assert(io.open(root .. "/cg/memory.stat", "w"))
    f:write("cache 0\ninactive_file 1\ntotal_inactive_file 2097152\n")
    f:close()
    local cu = core.group_usage({ 77 }, { root = root, cgroups = { root .. "/cg" } })
    os.execute("rm -rf " .. root)
    assert.are.equal(8 * 1048576, cu[1].rss)
    assert.are.equal(u[1].cpu_ns, cu[1].cpu_ns, "v1: CPU stays the members' sum")
    assert.are.equal(2, u[1].procs)
    assert.is_true(u[1].cpu_ns > 0 and u[1].rss > 0)
    assert.are.equal(0, u[2].procs)
    assert.is_true(boot > 0)
    assert.has_error(function() core.group_usage({ -1 }) end)
  end)
end)

-- {====== the API on the in-process stack

local function stack_with_agent(usage)
  local s = require("api_stack").new()
  local function pod(name, ns, labels, containers)
    local cs = {}
    for i, c in ipairs(containers) do cs[i] = { name = c, image = "x", command = { "sleep", "9" } } end
    return { metadata = { name = name, namespace = ns, labels = labels, uid = name .. "-uid" },
      spec = { containers = cs } }
  end
  local function worker(p, pids)
    local cs = {}
    for i, c in ipairs(p.spec.containers) do
      cs[c.name] = { inst = pids[i] and { id = p.metadata.name .. "-" .. c.name, started = 0,
        handle = { pid = pids[i] } } or nil }
    end
    return { pod = p, cs = cs }
  end
  local agent = { node_name = "n1", workers = {
    web = worker(pod("web", "default", { app = "web" }, { "main", "side" }), { 10, 11 }),
    db = worker(pod("db", "other", { app = "db" }, { "main" }), { 20 }),
    idle = worker(pod("idle", "default", { app = "web" }, { "main" }), {}),
  } }
  local clock = { mono = 100, wall = 1700000000, boot = 20e9 }
  require("moonlet.kubelet.metrics_api").configure({ agent = agent, sampler = sampler_with(clock, usage) })
  assert(s.client:create("v1/Node", { apiVersion = "v1", kind = "Node",
    metadata = { name = "n1", labels = { zone = "a" } } }))
  return s
end

local function get(s, path, headers)
  local h = { Accept = "application/json" }
  for k, v in pairs(headers or {}) do h[k] = v end
  local res = s.transport({ method = "GET", path = path, headers = h })
  return res.status, json.decode(res.body or "") or res.body
end

local USAGE = {
  [10] = { cpu_ns = 2e9, rss = 2 * 1048576, start_ns = 10e9, procs = 1 },
  [11] = { cpu_ns = 1e9, rss = 1048576, start_ns = 10e9, procs = 1 },
  [20] = { cpu_ns = 5e9, rss = 64 * 1048576, start_ns = 10e9, procs = 1 },
}

describe("metrics.k8s.io API", function()
  it("is in discovery and read-only", function()
    fake.run(function()
      local s = stack_with_agent(USAGE)
      local ok, err = pcall(function()
        local code, groups = get(s, "/apis")
        assert.are.equal(200, code)
        local found = false
        for _, g in ipairs(groups.groups) do
          if g.name == "metrics.k8s.io" then found = g.preferredVersion.groupVersion == "metrics.k8s.io/v1beta1" end
        end
        assert.is_true(found)
        local _, rl = get(s, "/apis/metrics.k8s.io/v1beta1")
        local kinds = {}
        for _, r in ipairs(rl.resources) do kinds[r.name] = r.kind .. ":" .. table.concat(r.verbs, ",") end
        assert.are.same({ pods = "PodMetrics:get,list", nodes = "NodeMetrics:get,list" }, kinds)
        for _, req in ipairs({ { "POST", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods" },
            { "DELETE", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web" },
            { "PUT", "/apis/metrics.k8s.io/v1beta1/nodes/n1" } }) do
          local res = s.transport({ method = req[1], path = req[2], headers = { ["Content-Type"] = "application/json" },
            body = "{}" })
          assert.are.equal(405, res.status, req[1] .. " " .. req[2])
        end
        local code2 = get(s, "/apis/metrics.k8s.io/v1beta1/pods?watch=true")
        assert.are.equal(405, code2)
      end)
      require("api_stack").close(s, ok, err)
    end)
  end)

  it("lists and gets PodMetrics as metrics-server writes them", function()
    fake.run(function()
      local s = stack_with_agent(USAGE)
      local ok, err = pcall(function()
        local code, list = get(s, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods")
        assert.are.equal(200, code)
        assert.are.equal("PodMetricsList", list.kind)
        assert.are.equal(1, #list.items, "the pod with no running container is left out")
        local web = list.items[1]
        assert.are.equal("PodMetrics", web.kind)
        assert.are.equal("metrics.k8s.io/v1beta1", web.apiVersion)
        assert.are.same({ name = "web", namespace = "default", labels = { app = "web" },
          creationTimestamp = "2023-11-14T22:13:20Z" }, web.metadata)
        assert.are.equal("2023-11-14T22:13:20Z", web.timestamp)
        assert.are.equal("10s", web.window)
        assert.are.same({ { name = "main", usage = { cpu = "200000000n", memory = "2048Ki" } },
          { name = "side", usage = { cpu = "100000000n", memory = "1024Ki" } } }, web.containers)
        local _, all = get(s, "/apis/metrics.k8s.io/v1beta1/pods")
        assert.are.equal(2, #all.items)
        assert.are.equal("web", all.items[1].metadata.name, "by namespace, then name")
        local _, sel = get(s, "/apis/metrics.k8s.io/v1beta1/pods?labelSelector=app%3Ddb")
        assert.are.equal(1, #sel.items)
        local _, byname = get(s, "/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=metadata.name%3Dweb")
        assert.are.equal("web", byname.items[1].metadata.name)
        local bad = get(s, "/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=spec.nodeName%3Dx")
        assert.are.equal(400, bad)
        local c1, one = get(s, "/apis/metrics.k8s.io/v1beta1/namespaces/other/pods/db")
        assert.are.equal(200, c1)
        assert.are.equal("500000000n", one.containers[1].usage.cpu)
        local c2, st = get(s, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/db")
        assert.are.equal(404, c2)
        assert.are.equal("NotFound", st.reason)
        local c3, tbl = get(s, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
          { Accept = "application/json;as=Table;v=v1;g=meta.k8s.io" })
        assert.are.equal(200, c3)
        assert.are.same({ "web", "300m", "3Mi", "10s" }, tbl.rows[1].cells)
      end)
      require("api_stack").close(s, ok, err)
    end)
  end)

  it("serves NodeMetrics of the agent's node only", function()
    fake.run(function()
      local s = stack_with_agent(USAGE)
      local ok, err = pcall(function()
        local _, list = get(s, "/apis/metrics.k8s.io/v1beta1/nodes")
        assert.are.equal("NodeMetricsList", list.kind)
        -- the fake read_file has no /proc files: no node figures, no item
        assert.are.equal(0, #list.items)
        require("moonlet.kubelet.metrics_api").configure({ agent = { node_name = "n1", workers = {} },
          sampler = sampler_with({ mono = 1, wall = 1700000000, boot = 0, files = {
            ["/proc/stat"] = "cpu  100 0 0 100 0 0 0 0\ncpu0 1\n",
            ["/proc/meminfo"] = "MemTotal: 2048 kB\nMemAvailable: 1024 kB\n", ["/proc/uptime"] = "4.5 1\n" } }, {}) })
        local code, l2 = get(s, "/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=zone%3Da")
        assert.are.equal(200, code)
        assert.are.equal(1, #l2.items)
        local n = l2.items[1]
        assert.are.same({ cpu = "500000000n", memory = "1024Ki" }, n.usage)
        assert.are.equal("4.5s", n.window)
        assert.are.same({ zone = "a" }, n.metadata.labels)
        local _, none = get(s, "/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=zone%3Db")
        assert.are.equal(0, #none.items)
        assert.are.equal(200, (get(s, "/apis/metrics.k8s.io/v1beta1/nodes/n1")))
        assert.are.equal(404, (get(s, "/apis/metrics.k8s.io/v1beta1/nodes/n2")))
        require("moonlet.kubelet.metrics_api").configure({ agent = nil })
        local _, empty = get(s, "/apis/metrics.k8s.io/v1beta1/pods")
        assert.are.equal(0, #empty.items, "no node agent: no pod metrics")
      end)
      require("api_stack").close(s, ok, err)
    end)
  end)
end)

-- }======

describe("top printer", function()
  local function pm(ns, name, cs)
    local containers = {}
    for i, c in ipairs(cs) do containers[i] = { name = c[1], usage = { cpu = c[2], memory = c[3] } } end
    return { metadata = { namespace = ns, name = name }, containers = containers }
  end
  local items = {
    pm("default", "web", { { "main", "900000001n", "2048Ki" }, { "side", "1000000n", "1048576Ki" } }),
    pm("kube", "db", { { "main", "5m", "64Mi" } }),
  }

  it("prints pods as kubectl top pod", function()
    assert.are.equal(
      "NAME   CPU(cores)   MEMORY(bytes)   \n" ..
      "db     5m           64Mi            \n" ..
      "web    902m         1026Mi          \n", top.pods(items))
    assert.are.equal(
      "NAMESPACE   NAME   CPU(cores)   MEMORY(bytes)   \n" ..
      "default     web    902m         1026Mi          \n" ..
      "kube        db     5m           64Mi            \n", top.pods(items, { namespace = true }))
    assert.are.equal("db    5m     64Mi     \nweb   902m   1026Mi   \n",
      top.pods({ items[2], items[1] }, { no_headers = true }), "by name")
    assert.are.equal("web   902m   1026Mi   \ndb    5m     64Mi     \n",
      top.pods(items, { no_headers = true, sort_by = "memory" }))
    assert.are.equal(
      "POD   NAME   CPU(cores)   MEMORY(bytes)   \n" ..
      "web   main   901m         2Mi             \n" ..
      "web   side   1m           1024Mi          \n" ..
      "db    main   5m           64Mi            \n", top.pods(items, { containers = true, sort_by = "cpu" }))
    assert.are.equal("db    5m     64Mi     \nweb   902m   1026Mi   \n", top.pods(items, { no_headers = true }))
    assert.are.equal("", top.pods({}))
  end)

  it("prints nodes with their share of allocatable, and <unknown> for nodes without metrics", function()
    local nodes = { { metadata = { name = "n1" }, usage = { cpu = "1740226986n", memory = "577820Ki" } } }
    assert.are.equal(
      "NAME   CPU(cores)   CPU(%)      MEMORY(bytes)   MEMORY(%)   \n" ..
      "n1     1741m        87%         564Mi           13%         \n" ..
      "n2     <unknown>    <unknown>   <unknown>       <unknown>   \n",
      top.nodes(nodes, { n1 = { cpu = "2", memory = "4Gi" }, n2 = { cpu = "1" } }))
    assert.are.equal("n1    1741m   564Mi   \n", top.nodes(nodes, {}, { no_headers = true }))
  end)
end)
