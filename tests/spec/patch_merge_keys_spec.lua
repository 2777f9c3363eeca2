-- Merge keys of the built-in kinds (moonlet.api.merge_keys) and strategic
-- merge patches on real object shapes: what `kubectl patch` and the
-- controllers send to Pods, Nodes and workloads.
require("moonlet_core")
local json = require("moonlet.json")
local patch = require("moonlet.api.patch")
local merge_keys = require("moonlet.api.merge_keys")

local function J(text)
  local v, err = json.decode(text)
  assert(v ~= nil, err)
  return v
end

local function canon(v)
  return assert(json.encode(v, { sort_keys = true }))
end

describe("merge_keys", function()
  it("describes the Pod's lists with core/v1's tags", function()
    local k = merge_keys.for_kind("", "Pod")
    assert.are.same({ key = "name", strategy = "merge" }, k["spec.containers"])
    assert.are.equal("containerPort", k["spec.containers[].ports"].key)
    assert.are.equal("name", k["spec.containers[].env"].key)
    assert.are.equal("mountPath", k["spec.initContainers[].volumeMounts"].key)
    assert.are.equal("devicePath", k["spec.containers[].volumeDevices"].key)
    assert.are.equal("merge,retainKeys", k["spec.volumes"].strategy)
    assert.are.equal("ip", k["spec.hostAliases"].key)
    assert.are.equal("type", k["status.conditions"].key)
    assert.are.equal("uid", k["metadata.ownerReferences"].key)
    assert.are.equal("merge", k["metadata.finalizers"].strategy)
    assert.is_nil(k["spec.tolerations"])
    assert.is_nil(k["spec.containers[].envFrom"])
  end)

  it("places pod templates where each workload keeps them", function()
    for _, c in ipairs({ { "apps", "Deployment", "spec.template.spec" },
                         { "apps", "ReplicaSet", "spec.template.spec" },
                         { "apps", "DaemonSet", "spec.template.spec" },
                         { "batch", "Job", "spec.template.spec" },
                         { "batch", "CronJob", "spec.jobTemplate.spec.template.spec" } }) do
      local k = merge_keys.for_kind(c[1], c[2])
      assert.are.equal("name", k[c[3] .. ".containers"].key, c[2])
      assert.are.equal("name", k[c[3] .. ".containers[].env"].key, c[2])
      assert.are.equal("uid", k["metadata.ownerReferences"].key, c[2])
    end
    assert.are.equal("type", merge_keys.for_kind("apps", "Deployment")["status.conditions"].key)
    assert.are.equal("type", merge_keys.for_kind("batch", "Job")["status.conditions"].key)
    assert.are.equal("retainKeys", merge_keys.for_kind("apps", "Deployment")["spec.strategy"].strategy)
  end)

  it("gives Node conditions and addresses by type", function()
    local k = merge_keys.for_kind("core", "Node")
    assert.are.equal("type", k["status.conditions"].key)
    assert.are.equal("type", k["status.addresses"].key)
  end)

  it("accepts strategic merge patch only for built-in kinds", function()
    assert.is_true(merge_keys.supports_strategic("", "Pod"))
    assert.is_true(merge_keys.supports_strategic("", "ConfigMap"))
    assert.is_true(merge_keys.supports_strategic("apps", "Deployment"))
    assert.is_true(merge_keys.supports_strategic("coordination.k8s.io", "Lease"))
    assert.is_false(merge_keys.supports_strategic("example.com", "Widget"))
    assert.is_false(merge_keys.supports_strategic("apps", "Widget"))
    assert.are.same({}, merge_keys.for_kind("example.com", "Widget"))
  end)
end)

describe("strategic merge patch on built-in kinds", function()
  local POD = merge_keys.for_kind("", "Pod")
  local pod = J([[{
    "metadata": {"name": "p", "finalizers": ["a"],
                 "ownerReferences": [{"uid": "1", "name": "rs-1", "kind": "ReplicaSet"}]},
    "spec": {
      "containers": [
        {"name": "app", "image": "app:1",
         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
         "ports": [{"containerPort": 80, "protocol": "TCP"}]}
      ],
      "volumes": [{"name": "data", "emptyDir": {}}],
      "tolerations": [{"key": "x"}]
    },
    "status": {"conditions": [{"type": "Ready", "status": "False"},
                              {"type": "Initialized", "status": "True"}]}
  }]])

  local function apply(p)
    local out, err = patch.strategic(pod, J(p), POD)
    assert.is_nil(err)
    return out
  end

  it("unions finalizers and merges owner references by uid", function()
    local out = apply('{"metadata":{"finalizers":["b","a"],' ..
                      '"ownerReferences":[{"uid":"2","name":"rs-2"}]}}')
    assert.are.same({ "b", "a" }, out.metadata.finalizers)
    assert.are.equal(2, #out.metadata.ownerReferences)
    assert.are.equal("rs-2", out.metadata.ownerReferences[1].name)
    assert.are.equal("rs-1", out.metadata.ownerReferences[2].name)
  end)

  it("removes one finalizer with $deleteFromPrimitiveList", function()
    local out = apply('{"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]}}')
    assert.are.equal(0, #out.metadata.finalizers)
    assert.are.equal("[]", json.encode(out.metadata.finalizers))
  end)

  it("updates one condition by type, leaving the others", function()
    local out = apply('{"status":{"conditions":[{"type":"Ready","status":"True"}]}}')
    local by = {}
    for _, c in ipairs(out.status.conditions) do by[c.type] = c.status end
    assert.are.same({ Ready = "True", Initialized = "True" }, by)
  end)

  it("merges env by name inside the container found by name", function()
    local out = apply('{"spec":{"containers":[{"name":"app","image":"app:2",' ..
                      '"env":[{"name":"B","value":"3"},{"name":"C","value":"4"}]}]}}')
    local c = out.spec.containers[1]
    assert.are.equal("app:2", c.image)
    assert.are.equal(80, c.ports[1].containerPort)
    local env = {}
    for _, e in ipairs(c.env) do env[#env + 1] = e.name .. "=" .. e.value end
    -- patch entries in patch order, server-only A before the ones it preceded
    assert.are.same({ "A=1", "B=3", "C=4" }, env)
  end)

  it("removes an env entry with a $patch: delete element", function()
    local out = apply('{"spec":{"containers":[{"name":"app",' ..
                      '"env":[{"name":"A","$patch":"delete"}]}]}}')
    assert.are.equal(1, #out.spec.containers[1].env)
    assert.are.equal("B", out.spec.containers[1].env[1].name)
  end)

  it("replaces untagged lists such as tolerations", function()
    local out = apply('{"spec":{"tolerations":[{"key":"y"}]}}')
    assert.are.equal('[{"key":"y"}]', canon(out.spec.tolerations))
  end)

  it("switches a volume's source with $retainKeys", function()
    local out = apply('{"spec":{"volumes":[{"$retainKeys":["configMap","name"],' ..
                      '"name":"data","configMap":{"name":"cm"}}]}}')
    assert.are.equal('[{"configMap":{"name":"cm"},"name":"data"}]',
                     canon(out.spec.volumes))
  end)

  it("patches a sub-document given its path", function()
    local spec = pod.spec
    local out = assert(patch.strategic(spec, J('{"containers":[{"name":"side","image":"s"}]}'),
                                       POD, "spec"))
    assert.are.equal(2, #out.containers)
    assert.are.equal("app", out.containers[2].name)
  end)

  it("leaves the stored object untouched", function()
    local before = canon(pod)
    apply('{"metadata":{"finalizers":["z"]},"spec":{"containers":[{"name":"app","image":"x"}]}}')
    assert.are.equal(before, canon(pod))
  end)
end)
