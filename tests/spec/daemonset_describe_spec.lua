-- `moonlet describe ds` in kubectl 1.32's DaemonSetDescriber layout.
require("moonlet_core")
local describe_ds = require("moonlet.cli.describe_daemonset")
local describe_mod = require("moonlet.cli.describe")

describe("describe daemonset", function()
  it("renders kubectl's layout", function()
    local ds = { metadata = { name = "ssd-monitor", namespace = "default", uid = "u1",
      annotations = { ["deprecated.daemonset.template.generation"] = "1" } },
      spec = { selector = { matchLabels = { app = "ssd-monitor" } },
        template = { metadata = { labels = { app = "ssd-monitor" } },
          spec = { nodeSelector = { disk = "ssd" },
            containers = { { name = "main", image = "idealism/ssd-monitor" } } } } },
      status = { desiredNumberScheduled = 2, currentNumberScheduled = 2, updatedNumberScheduled = 1,
        numberAvailable = 1, numberMisscheduled = 1 } }
    local mine = { ownerReferences = { { controller = true, uid = "u1" } } }
    local pods = {
      { metadata = mine, status = { phase = "Running" } },
      { metadata = mine, status = { phase = "Pending" } },
      { metadata = { ownerReferences = { { controller = true, uid = "other" } } }, status = { phase = "Running" } },
    }
    local now = 1577836800
    local events = { { type = "Normal", reason = "SuccessfulCreate", message = "Created pod: ssd-monitor-bbqbp",
      source = { component = "daemonset-controller" }, count = 1,
      firstTimestamp = "2020-01-01T00:00:00Z", lastTimestamp = "2020-01-01T00:00:00Z" } }
    local text = describe_ds.render(ds, pods, events, now + 120)
    assert.are.equal(table.concat({
      "Name:           ssd-monitor",
      "Selector:       app=ssd-monitor",
      "Node-Selector:  disk=ssd",
      "Labels:         <none>",
      "Annotations:    deprecated.daemonset.template.generation: 1",
      "Desired Number of Nodes Scheduled: 2",
      "Current Number of Nodes Scheduled: 2",
      "Number of Nodes Scheduled with Up-to-date Pods: 1",
      "Number of Nodes Scheduled with Available Pods: 1",
      "Number of Nodes Misscheduled: 1",
      "Pods Status:  1 Running / 1 Waiting / 0 Succeeded / 0 Failed",
      "Pod Template:",
      "  Labels:  app=ssd-monitor",
      "  Containers:",
      "   main:",
      "    Image:         idealism/ssd-monitor",
      "    Port:          <none>",
      "    Host Port:     <none>",
      "    Environment:   <none>",
      "    Mounts:        <none>",
      "  Volumes:         <none>",
      "  Node-Selectors:  disk=ssd",
      "  Tolerations:     <none>",
      "Events:",
      "  Type    Reason            Age   From                  Message",
      "  ----    ------            ----  ----                  -------",
      "  Normal  SuccessfulCreate  2m    daemonset-controller  Created pod: ssd-monitor-bbqbp",
      "" }, "\n"), text)
  end)

  it("is registered for apps/DaemonSet", function()
    assert.are.equal("moonlet.cli.describe_daemonset", describe_mod.describers["apps/DaemonSet"])
  end)
end)
