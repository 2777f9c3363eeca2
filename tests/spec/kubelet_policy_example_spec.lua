-- The example restart policy (examples/policies): loaded from a scripts dir
-- as the server loads it, accepted by name, and giving up after N exits in
-- the window; also through the pod worker with a fake runtime.
require("moonlet_core")
local plugins = require("moonlet.plugins")
local policies = require("moonlet.kubelet.policies")

local SRC = os.getenv("ML_SRC") or "."

describe("example restart policy LimitedRestarts", function()
  local loaded
  before_each(function()
    local errors
    loaded, errors = plugins.load({ SRC .. "/examples/policies" })
    assert.are.same({}, errors)
    assert.are.same({}, policies.load(loaded))
  end)
  after_each(function() policies.reset() end)

  it("is a restart policy the Pod kind accepts by name", function()
    assert.are.same({ "Always", "OnFailure", "Never", "LimitedRestarts" }, policies.names())
  end)

  it("restarts until more than max exits fall in the window", function()
    local pod = { metadata = { annotations = { ["restart.moonlet.dev/max-restarts"] = "2" } } }
    local function decide(history)
      return policies.decide("LimitedRestarts", pod, {}, { exit_code = 1, finished_at = history[#history],
        history = history }).restart
    end
    assert.is_true(decide({ 100 }))
    assert.is_true(decide({ 100, 110 }))
    assert.is_false(decide({ 100, 110, 120 }))
    -- old exits leave the 60 s window
    assert.is_true(decide({ 100, 110, 200 }))
    -- defaults: 3 in 60 s
    local d = policies.decide("LimitedRestarts", { metadata = {} }, {},
      { exit_code = 1, finished_at = 10, history = { 1, 2, 3, 10 } })
    assert.is_false(d.restart)
  end)

  it("drives the pod worker: gives up and the pod fails", function()
    local worker = require("moonlet.kubelet.worker")
    local backoff = require("moonlet.kubelet.backoff")
    local now = 0
    local a = { host_ip = "127.0.0.1", image_dirs = {}, base_env = {}, spawned = {} }
    a.clock = function() return now end
    a.crash_backoff = backoff.new({ initial = 1, max = 1, clock = a.clock })
    a.image_backoff = backoff.new({ clock = a.clock })
    a.ports = require("moonlet.kubelet.ports").new({ pick = function() return 1 end })
    a.runtime = { spawn = function(_, on_exit)
      local h = { stop = function() end, exit = function(c) on_exit({ exit_code = c }) end }
      a.spawned[#a.spawned + 1] = h
      return h
    end }
    a.api = { status = function(_, st) a.last = st return true end, delete = function() end, event = function() end }
    local timers = {}
    a.timer = function(ms, fn) local t = { at = now + ms / 1000, fn = fn, stop = function() end }
      timers[#timers + 1] = t return t end
    a.new_id = function() return "ab" end
    a.log = function() end
    a.pod_dir = function() return "/tmp" end
    a.make_pod_dir = function() return false end
    a.log_path = function() return "/dev/null" end
    a.prune_logs = function() end
    local pod = { metadata = { name = "flaky", namespace = "default", uid = "u",
      annotations = { ["restart.moonlet.dev/max-restarts"] = "1" } },
      spec = { restartPolicy = "LimitedRestarts", terminationGracePeriodSeconds = 30,
        containers = { { name = "main", image = "busybox", command = { "false" } } } } }
    worker.new(a, pod):start()
    a.spawned[1].exit(1)
    assert.are.equal(2, #a.spawned)
    now = now + 5
    a.spawned[2].exit(1)
    for _, t in ipairs(timers) do if not t.fired then t.fired = true t.fn() end end
    assert.are.equal(2, #a.spawned)
    assert.are.equal("Failed", a.last.phase)
  end)
end)
