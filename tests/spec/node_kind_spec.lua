-- The v1 Node kind in process (defaults, taint validation, printer
-- columns, kubectl's STATUS and ROLES) and `describe node` (lease, taints,
-- the node's pods against allocatable, allocated totals).
require("moonlet_core")
local plugins = require("moonlet.plugins")
local kinds = require("moonlet.api.kinds")
local duration = require("moonlet.printers.duration")
local nodeprinter = require("moonlet.printers.node")
local describe_node = require("moonlet.cli.describe_node")
local fake = require("fake_client") -- for fake.run only

local function api()
  local store = assert(require("moonlet.store").open({ backend = "memory" }))
  local loaded, errors = plugins.load({})
  assert.are.same({}, errors)
  kinds.reset()
  for _, name in ipairs(plugins.names(loaded, "kinds")) do
    kinds.register(loaded.kinds[name].value, loaded.kinds[name].display)
  end
  local router = require("moonlet.api.router").new({ store = store, token = "t", version = "0.0.0",
    log = function() end })
  return require("moonlet.client").new({ transport = require("moonlet.api.inproc").transport(router) })
end

local function node(mutate)
  local n = {
    apiVersion = "v1", kind = "Node",
    metadata = { name = "node-a", labels = { ["kubernetes.io/hostname"] = "node-a",
      ["node-role.kubernetes.io/control-plane"] = "", ["kubernetes.io/role"] = "edge" } },
    spec = { taints = { { key = "dedicated", value = "gpu", effect = "NoSchedule" } } },
    status = {
      capacity = { cpu = "4", memory = "8192Mi", pods = "110", ["ephemeral-storage"] = "100Gi" },
      conditions = { { type = "Ready", status = "True", reason = "KubeletReady",
        lastHeartbeatTime = "2024-05-01T10:00:00Z", lastTransitionTime = "2024-05-01T09:00:00Z" } },
      addresses = { { type = "InternalIP", address = "10.0.0.5" }, { type = "Hostname", address = "node-a" } },
      nodeInfo = { kubeletVersion = "v1.32.0", osImage = "Debian GNU/Linux 12", kernelVersion = "6.1.0",
        containerRuntimeVersion = "moonlet://0.1" },
    },
  }
  if mutate then mutate(n) end
  return n
end

describe("v1 Node kind", function()
  it("is cluster-scoped with kubectl's columns", function()
    fake.run(function()
      local client = api()
      local n = assert(client:create("v1/Node", node()))
      assert.is_nil(n.metadata.namespace)
      -- allocatable defaults to capacity, quantities canonical
      assert.are.same({ cpu = "4", memory = "8Gi", pods = "110", ["ephemeral-storage"] = "100Gi" }, n.status.allocatable)
      local t = assert(client:table("v1/Node", {}))
      local names = {}
      for i, c in ipairs(t.columnDefinitions) do names[i] = c.name end
      assert.are.same({ "Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP", "OS-Image",
        "Kernel-Version", "Container-Runtime" }, names)
      local cells = t.rows[1].cells
      assert.are.same({ "node-a", "Ready", "control-plane,edge" }, { cells[1], cells[2], cells[3] })
      assert.are.same({ "v1.32.0", "10.0.0.5", "<none>", "Debian GNU/Linux 12", "6.1.0", "moonlet://0.1" },
        { cells[5], cells[6], cells[7], cells[8], cells[9], cells[10] })
      local list = assert(client:list("v1/Node", { field_selector = "metadata.name=node-a" }))
      assert.are.equal(1, #list.items)
    end)
  end)

  it("validates taints", function()
    fake.run(function()
      local client = api()
      local _, st = client:create("v1/Node", node(function(n)
        n.spec.taints = { { key = "a", effect = "Sometimes" }, { effect = "NoSchedule" } } end))
      assert.are.equal(422, st.code)
      assert.are.equal('Node "node-a" is invalid: [spec.taints[0].effect: Unsupported value: "Sometimes": '
        .. 'supported values: "NoSchedule", "PreferNoSchedule", "NoExecute", spec.taints[1].key: Required value]', st.message)
      -- as the API server does, a namespace on a cluster-scoped object is dropped
      local n = assert(client:create("v1/Node", node(function(x) x.metadata.namespace = "default" end)))
      assert.is_nil(n.metadata.namespace)
    end)
  end)

  it("prints STATUS and ROLES as kubectl does", function()
    local n = node()
    assert.are.equal("Ready", nodeprinter.status(n))
    n.spec.unschedulable = true
    assert.are.equal("Ready,SchedulingDisabled", nodeprinter.status(n))
    n.status.conditions[1].status = "Unknown"
    assert.are.equal("NotReady,SchedulingDisabled", nodeprinter.status(n))
    n.status.conditions = {}
    n.spec.unschedulable = nil
    assert.are.equal("Unknown", nodeprinter.status(n))
    assert.are.same({ "control-plane", "edge" }, nodeprinter.roles(n))
    assert.are.equal("<none>", nodeprinter.roles_text({ metadata = { labels = { ["node-role.kubernetes.io/"] = "" } } }))
  end)
end)

describe("describe node", function()
  local NOW = duration.parse("2024-05-01T10:10:00Z")

  local function pod(name, containers, init)
    return { metadata = { name = name, namespace = "default", creationTimestamp = "2024-05-01T10:05:00Z" },
      spec = { containers = containers, initContainers = init } }
  end

  it("sums requests as PodRequests does (sidecars add, init containers cap)", function()
    local p = pod("p", { { resources = { requests = { cpu = "100m" } } }, { resources = { requests = { cpu = "200m" } } } },
      { { resources = { requests = { cpu = "1" } } },
        { restartPolicy = "Always", resources = { requests = { cpu = "50m", memory = "10Mi" } } } })
    local r = describe_node.pod_resources(p, "requests")
    assert.are.equal("1", r.cpu:string())       -- max(350m app+sidecar, 1 init)
    assert.are.equal("10Mi", r.memory:string())
  end)

  it("prints the node, its lease and its pods against allocatable", function()
    local n = node(function(x) x.metadata.creationTimestamp = "2024-05-01T09:00:00Z" end)
    n.status.allocatable = { cpu = "4", memory = "8Gi", pods = "110", ["ephemeral-storage"] = "100Gi" }
    local pods = {
      pod("web", { { resources = { requests = { cpu = "250m", memory = "64Mi" }, limits = { cpu = "500m", memory = "128Mi" } } } }),
      pod("batch", { { resources = { requests = { cpu = "1500m" } } } }),
    }
    local lease = { spec = { holderIdentity = "node-a", renewTime = "2024-05-01T10:09:50.000000Z" } }
    local text = describe_node.render(n, pods, lease, {}, NOW)
    assert.truthy(text:find([[
Name:               node-a
Roles:              control-plane,edge
Labels:             kubernetes.io/hostname=node-a
                    kubernetes.io/role=edge
                    node-role.kubernetes.io/control-plane=
Annotations:        <none>
CreationTimestamp:  Wed, 01 May 2024 09:00:00 +0000
Taints:             dedicated=gpu:NoSchedule
Unschedulable:      false
Lease:
  HolderIdentity:  node-a
  AcquireTime:     <unset>
  RenewTime:       Wed, 01 May 2024 10:09:50 +0000
]], 1, true), text)
    assert.truthy(text:find([[
Non-terminated Pods:          (2 in total)
  Namespace                   Name     CPU Requests  CPU Limits  Memory Requests  Memory Limits  Age
  ---------                   ----     ------------  ----------  ---------------  -------------  ---
  default                     web      250m (6%)     500m (12%)  64Mi (0%)        128Mi (1%)     5m
  default                     batch    1500m (37%)   0 (0%)      0 (0%)           0 (0%)         5m
Allocated resources:
  (Total limits may be over 100 percent, i.e., overcommitted.)
  Resource           Requests     Limits
  --------           --------     ------
  cpu                1750m (43%)  500m (12%)
  memory             64Mi (0%)    128Mi (1%)
  ephemeral-storage  0 (0%)       0 (0%)
Events:              <none>
]], 1, true), text)
    local no_lease = describe_node.render(n, nil, "the server could not find the requested resource", nil, NOW)
    assert.truthy(no_lease:find("Lease:              Failed to get lease: the server could not find the requested resource\n", 1, true))
    assert.truthy(no_lease:find("\nPods:                         not authorized\n", 1, true), no_lease)
  end)
end)
