-- /apis lists groups in kube-apiserver's priority order (kubectl prints
-- `get all` and api-resources in it), plugin groups after the built-in
-- ones, by name; batch/v1 stays batch's preferred version.
require("moonlet_core")
local kinds = require("moonlet.api.kinds")
local discovery = require("moonlet.api.discovery")

local SRC = os.getenv("ML_SRC") or "."

describe("discovery group order", function()
  setup(function()
    require("api_stack").register_kinds({ SRC .. "/examples/greeting" })
  end)

  it("follows kube-apiserver's group priorities", function()
    local names, batch = {}, nil
    for _, g in ipairs(discovery.groups().groups) do
      names[#names + 1] = g.name
      if g.name == "batch" then batch = g end
    end
    -- metrics.k8s.io last: metrics-server's APIService has priority 100
    assert.are.same({ "apps", "authentication.k8s.io", "authorization.k8s.io", "autoscaling", "batch",
      "coordination.k8s.io", "discovery.k8s.io", "example.moonlet.dev", "metrics.k8s.io" }, names)
    assert.are.equal("batch/v1", batch.preferredVersion.groupVersion)
  end)

  it("ranks groups of equal priority by name", function()
    local function def(group)
      return { group = group, version = "v1", kind = "Thing", plural = "things", namespaced = true,
        schema = { type = "object" } }
    end
    kinds.register(def("zz.example.com"))
    kinds.register(def("aa.example.com"))
    local names = {}
    for _, g in ipairs(discovery.groups().groups) do names[#names + 1] = g.name end
    assert.are.same({ "aa.example.com", "example.moonlet.dev", "zz.example.com", "metrics.k8s.io" },
      { names[#names - 3], names[#names - 2], names[#names - 1], names[#names] })
  end)
end)
