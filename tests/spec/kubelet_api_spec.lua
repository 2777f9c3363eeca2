-- The kubelet's API pieces on the in-process API stack (memory store,
-- router, built-in kinds): node registration and lease by the agent, the
-- pods/NAME/binding subresource with the API server's checks, the
-- scheduler plugin, and the pods/NAME/log error messages.
require("moonlet_core")
local json = require("moonlet.json")
local fake = require("fake_client") -- for fake.run only

local function stack()
  local s = require("api_stack").new()
  require("moonlet.kubelet.subresources").install()
  return s
end

local function pod(name, extra)
  local p = { apiVersion = "v1", kind = "Pod", metadata = { name = name, namespace = "default" },
    spec = { containers = { { name = "main", image = "busybox", command = { "sleep", "9" } } } } }
  for k, v in pairs(extra or {}) do p.spec[k] = v end
  return p
end

local function raw(s, method, path, body)
  local res = s.transport({ method = method, path = path, headers = { ["Content-Type"] = "application/json" },
    body = body and json.encode(body) or nil })
  return res.status, json.decode(res.body or "") or res.body
end

describe("kubelet API pieces", function()
  it("the agent registers its node and lease", function()
    fake.run(function()
      local s = stack()
      local agent = require("moonlet.kubelet.agent").new({ client = s.client, data_dir = os.tmpname() .. ".d",
        node_name = "node-a", runtime = { spawn = function() error("no pods here") end },
        log = function() end })
      agent.probes = false
      assert(agent:start())
      local n = assert(s.client:get("v1/Node", nil, "node-a"))
      assert.are.equal("node-a", n.metadata.labels["kubernetes.io/hostname"])
      assert.are.equal("linux", n.metadata.labels["kubernetes.io/os"])
      assert.are.equal("110", n.status.capacity.pods)
      local ready
      for _, c in ipairs(n.status.conditions) do if c.type == "Ready" then ready = c end end
      assert.are.equal("True", ready.status)
      assert.are.equal("KubeletReady", ready.reason)
      local lease = assert(s.client:get("coordination.k8s.io/v1/Lease", "kube-node-lease", "node-a"))
      assert.are.equal("node-a", lease.spec.holderIdentity)
      assert.are.equal(40, lease.spec.leaseDurationSeconds)
      assert.are.equal(n.metadata.uid, lease.metadata.ownerReferences[1].uid)
      -- a second start (server restart) keeps labels users added
      n.metadata.labels.disk = "ssd"
      assert(s.client:update("v1/Node", n))
      assert(agent:register_node())
      assert.are.equal("ssd", s.client:get("v1/Node", nil, "node-a").metadata.labels.disk)
      agent:stop()
    end)
  end)

  it("a start that cannot reach the server says so, and a retry prepares nothing twice", function()
    fake.run(function()
      local s = stack()
      local down = true
      -- The API stack behind a transport that fails like a refused connection.
      local client = require("moonlet.client").new({ transport = function(req)
        if down then return nil, "connect: ECONNREFUSED" end
        return s.transport(req)
      end })
      local agent = require("moonlet.kubelet.agent").new({ client = client, data_dir = os.tmpname() .. ".d",
        node_name = "node-r", runtime = { spawn = function() error("no pods here") end },
        log = function() end })
      agent.probes = false
      local scans, scan = 0, agent.scan_pod_dirs
      agent.scan_pod_dirs = function(a) scans = scans + 1; return scan(a) end
      local ok, err, st = agent:start()
      assert.is_nil(ok)
      assert.matches("ECONNREFUSED", err)
      assert.is_true(st.transport)
      assert.are.equal(0, #agent.timers)
      down = false
      assert(agent:start())
      assert.are.equal(1, scans)
      assert(s.client:get("v1/Node", nil, "node-r"))
      agent:stop()
      -- a server that answers with an error is no transport failure
      local denied = require("moonlet.client").new({ transport = function()
        return { status = 401, headers = {}, body = '{"kind":"Status","code":401,"reason":"Unauthorized","message":"Unauthorized"}' }
      end })
      local a2 = require("moonlet.kubelet.agent").new({ client = denied, data_dir = os.tmpname() .. ".d",
        node_name = "node-d", runtime = { spawn = function() error("no pods here") end }, log = function() end })
      a2.probes = false
      local ok2, err2, st2 = a2:start()
      assert.is_nil(ok2)
      assert.matches("Unauthorized", err2)
      assert.are.equal(401, st2.code)
      assert.is_nil(st2.transport)
    end)
  end)

  it("binding: assigns once, with the API server's errors", function()
    fake.run(function()
      local s = stack()
      assert(s.client:create("v1/Pod", pod("p1")))
      local path = "/api/v1/namespaces/default/pods/p1/binding"
      local code, st = raw(s, "POST", path, { apiVersion = "v1", kind = "Binding", metadata = { name = "other" },
        target = { kind = "Node", name = "n1" } })
      assert.are.equal(400, code)
      assert.are.equal("name in URL does not match name in Binding object", st.message)
      code, st = raw(s, "POST", path, { apiVersion = "v1", kind = "Binding", metadata = { name = "p1" }, target = {} })
      assert.are.equal(422, code)
      assert.is_truthy(st.message:find("target.name: Required value", 1, true))
      code, st = raw(s, "POST", path, { apiVersion = "v1", kind = "Binding", metadata = { name = "p1" },
        target = { kind = "Node", name = "n1" } })
      assert.are.equal(201, code)
      assert.are.equal("Success", st.status)
      local p = s.client:get("v1/Pod", "default", "p1")
      assert.are.equal("n1", p.spec.nodeName)
      assert.are.equal("PodScheduled", p.status.conditions[#p.status.conditions].type)
      assert.are.equal("True", p.status.conditions[#p.status.conditions].status)
      code, st = raw(s, "POST", path, { apiVersion = "v1", kind = "Binding", metadata = { name = "p1" },
        target = { kind = "Node", name = "n2" } })
      assert.are.equal(409, code)
      assert.are.equal('Operation cannot be fulfilled on pods/binding "p1": pod p1 is already assigned to node "n1"', st.message)
    end)
  end)

  it("the scheduler binds to a fitting node or reports why none fits", function()
    fake.run(function()
      local s = stack()
      local m = require("moonlet.controller").new({ client = s.client, log = function() end })
      m:add(s.loaded.controllers["scheduler"].value)
      m:start()
      local function node(name, labels, ready)
        local n = assert(s.client:create("v1/Node", { apiVersion = "v1", kind = "Node",
          metadata = { name = name, labels = labels } }))
        n.status = { conditions = { { type = "Ready", status = ready and "True" or "False" } } }
        assert(s.client:update_status("v1/Node", n))
      end
      node("a", { disk = "hdd" }, true)
      node("b", { disk = "ssd" }, false)
      assert(s.client:create("v1/Pod", pod("web")))
      assert(s.client:create("v1/Pod", pod("ssd", { nodeSelector = { disk = "ssd" } })))
      assert.is_true(m:wait_idle(5))
      assert.are.equal("a", s.client:get("v1/Pod", "default", "web").spec.nodeName)
      local p = s.client:get("v1/Pod", "default", "ssd")
      assert.is_nil(p.spec.nodeName)
      local ev = s.client:list("v1/Event", { namespace = "default", field_selector = "involvedObject.name=ssd" })
      assert.are.equal("FailedScheduling", ev.items[1].reason)
      assert.are.equal("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, " ..
        "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }.", ev.items[1].message)
      assert.are.equal("default-scheduler", ev.items[1].source.component)
      local cond
      for _, c in ipairs(p.status.conditions or {}) do if c.type == "PodScheduled" then cond = c end end
      assert.are.equal("Unschedulable", cond.reason)
      ev = s.client:list("v1/Event", { namespace = "default", field_selector = "involvedObject.name=web" })
      assert.are.equal("Successfully assigned default/web to a", ev.items[1].message)
      -- b becomes Ready: the waiting pod is scheduled there
      local b = s.client:get("v1/Node", nil, "b")
      b.status.conditions[1].status = "True"
      assert(s.client:update_status("v1/Node", b))
      assert.is_true(m:wait_idle(5))
      assert.are.equal("b", s.client:get("v1/Pod", "default", "ssd").spec.nodeName)
      m:stop()
    end)
  end)

  it("log: the container checks and the kubelet's instance messages", function()
    fake.run(function()
      local s = stack()
      local two = pod("two")
      two.spec.containers[2] = { name = "side", image = "busybox", command = { "sleep", "9" } }
      two.spec.initContainers = { { name = "init", image = "busybox", command = { "true" } } }
      two.spec.nodeName = "n1"
      assert(s.client:create("v1/Pod", two))
      local base = "/api/v1/namespaces/default/pods/two/log"
      local code, st = raw(s, "GET", base)
      assert.are.equal(400, code)
      assert.are.equal("a container name must be specified for pod two, choose one of: [main side] " ..
        "or one of the init containers: [init]", st.message)
      code, st = raw(s, "GET", base .. "?container=nope")
      assert.are.equal("container nope is not valid for pod two", st.message)
      code, st = raw(s, "GET", base .. "?container=main")
      assert.are.equal('container "main" in pod "two" is waiting to start: ContainerCreating', st.message)
      code, st = raw(s, "GET", base .. "?container=main&previous=true")
      assert.are.equal('container "main" in pod "two" is waiting to start: ContainerCreating', st.message)
      local p = s.client:get("v1/Pod", "default", "two")
      p.status.containerStatuses = { { name = "main", restartCount = 0, ready = true, image = "busybox",
        imageID = "", containerID = "moonlet://aa", state = { running = { startedAt = "2026-01-01T00:00:00Z" } },
        lastState = {} } }
      assert(s.client:update_status("v1/Pod", p))
      code, st = raw(s, "GET", base .. "?container=main&previous=true")
      assert.are.equal(400, code)
      assert.are.equal('previous terminated container "main" in pod "two" not found', st.message)
      code, st = raw(s, "GET", base .. "?container=main&tailLines=-1")
      assert.are.equal(422, code)
      -- a running container without an agent: an empty log
      code, st = raw(s, "GET", base .. "?container=main")
      assert.are.equal(200, code)
    end)
  end)
end)
