-- `describe job`: kubectl 1.32's JobDescriber layout, exact text, and the
-- completed-indexes cap.
require("moonlet_core")
local describe_job = require("moonlet.cli.describe_job")

local function job(extra_spec, status)
  local j = { metadata = { name = "batch-job", namespace = "default",
      labels = { app = "batch-job", ["job-name"] = "batch-job" } },
    spec = { parallelism = 2, completions = 5, completionMode = "NonIndexed", suspend = false, backoffLimit = 6,
      selector = { matchLabels = { ["batch.kubernetes.io/controller-uid"] = "u1" } },
      template = { metadata = { labels = { app = "batch-job" } },
        spec = { restartPolicy = "OnFailure", containers = { { name = "main", image = "idealism/batch-job" } } } } },
    status = status }
  for k, v in pairs(extra_spec or {}) do j.spec[k] = v end
  return j
end

describe("describe job", function()
  it("prints kubectl's layout", function()
    local ev = { { type = "Normal", reason = "SuccessfulCreate", message = "Created pod: batch-job-abcde",
      source = { component = "job-controller" }, firstTimestamp = "2020-06-07T22:36:04Z",
      lastTimestamp = "2020-06-07T22:36:04Z", count = 1 } }
    local text = describe_job.render(job(nil, { startTime = "2020-06-07T22:36:04Z",
      completionTime = "2020-06-07T22:38:49Z", succeeded = 5, ready = 0 }), ev, 1591569600 + 3600)
    assert.are.equal([[
Name:             batch-job
Namespace:        default
Selector:         batch.kubernetes.io/controller-uid=u1
Labels:           app=batch-job
                  job-name=batch-job
Annotations:      <none>
Parallelism:      2
Completions:      5
Completion Mode:  NonIndexed
Suspend:          false
Backoff Limit:    6
Start Time:       Sun, 07 Jun 2020 22:36:04 +0000
Completed At:     Sun, 07 Jun 2020 22:38:49 +0000
Duration:         2m45s
Pods Statuses:    0 Active (0 Ready) / 5 Succeeded / 0 Failed
Pod Template:
  Labels:  app=batch-job
  Containers:
   main:
    Image:         idealism/batch-job
    Port:          <none>
    Host Port:     <none>
    Environment:   <none>
    Mounts:        <none>
  Volumes:         <none>
  Node-Selectors:  <none>
  Tolerations:     <none>
Events:
  Type    Reason            Age   From            Message
  ----    ------            ----  ----            -------
  Normal  SuccessfulCreate  63m   job-controller  Created pod: batch-job-abcde
]], text)
  end)

  it("Indexed jobs show completed indexes; unset completions and deadlines", function()
    local text = describe_job.render(job({ completionMode = "Indexed", completions = require("moonlet.json").null, activeDeadlineSeconds = 30,
      ttlSecondsAfterFinished = 100 }, { active = 2, completedIndexes = "0-2,4" }), nil, 0)
    assert.truthy(text:find("\nCompletions:%s+<unset>\n"))
    assert.truthy(text:find("\nActive Deadline Seconds:%s+30s\n"))
    assert.truthy(text:find("\nTTL Seconds After Finished:%s+100\n"))
    assert.truthy(text:find("\nPods Statuses:%s+2 Active / 0 Succeeded / 0 Failed\n"))
    assert.truthy(text:find("\nCompleted Indexes:%s+0%-2,4\n"))
    assert.is_nil(text:find("Events:", 1, true))
    assert.are.equal("<none>", describe_job.cap_indexes(nil, 50))
    assert.are.equal("1,3", describe_job.cap_indexes("1,3", 50))
    local long = {}
    for i = 0, 40 do long[#long + 1] = tostring(i * 2) end
    local s = table.concat(long, ",")
    local capped = describe_job.cap_indexes(s, 50)
    assert.are.equal("...", capped:sub(-3))
    assert.are.equal(",", capped:sub(-4, -4))
    assert.is_true(#capped - 4 >= 50)
  end)
end)
