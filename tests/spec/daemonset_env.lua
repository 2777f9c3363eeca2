-- Test helper (not a spec): the in-process API with the built-in kinds and
-- the daemonset controller (optionally the scheduler too), plus Node
-- objects without kubelets, for the DaemonSet specs.
require("moonlet_core")
local loop = require("moonlet.loop")
local manager = require("moonlet.controller.manager")
local stack = require("api_stack")
local fake = require("fake_client") -- for fake.run only
local assert = require("luassert")

local M = {}

M.DS = "apps/v1/DaemonSet"
M.CR = "apps/v1/ControllerRevision"

--- A DaemonSet named `name` whose pods carry app=<name>; `extra` merges
--- into spec, `tpl` into the template's spec.
function M.ds(name, extra, tpl)
  local obj = {
    apiVersion = "apps/v1", kind = "DaemonSet",
    metadata = { name = name, namespace = "default" },
    spec = {
      selector = { matchLabels = { app = name } },
      template = { metadata = { labels = { app = name } },
        spec = { containers = { { name = "main", image = "idealism/ssd-monitor" } } } },
    },
  }
  for k, v in pairs(extra or {}) do obj.spec[k] = v end
  for k, v in pairs(tpl or {}) do obj.spec.template.spec[k] = v end
  return obj
end

--- Runs fn(env) against a fresh API and a manager running the named
--- controllers (default: the daemonset controller only).
function M.with_api(fn, controllers)
  fake.run(function()
    local api = stack.new()
    local lines = {}
    local log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end
    local c = api.client
    local m = manager.new({ client = c, log = log })
    local ctls = {}
    for _, name in ipairs(controllers or { "daemonset" }) do
      ctls[name] = m:add(api.loaded.controllers[name].value)
    end
    m:start()
    local env = { client = c, m = m, ctl = ctls.daemonset, ctls = ctls, lines = lines }
    function env.settle()
      assert.is_true(m:wait_idle(5, 40))
      loop.sleep(150)
      assert.is_true(m:wait_idle(5, 40))
    end
    function env.node(name, labels, spec, ready)
      local n = assert(c:create("v1/Node", { apiVersion = "v1", kind = "Node",
        metadata = { name = name, labels = labels }, spec = spec }))
      if ready then
        n.status = { conditions = { { type = "Ready", status = "True", reason = "KubeletReady",
          lastHeartbeatTime = "2020-01-01T00:00:00Z", lastTransitionTime = "2020-01-01T00:00:00Z" } } }
        n = assert(c:update_status("v1/Node", n))
      end
      return n
    end
    function env.pods(filter)
      local out = {}
      for _, p in ipairs(assert(c:list("v1/Pod", { namespace = "default" })).items) do
        if not filter or filter(p) then out[#out + 1] = p end
      end
      table.sort(out, function(a, b) return a.metadata.name < b.metadata.name end)
      return out
    end
    -- pods alive (no deletionTimestamp), by target node
    function env.by_node()
      local out = {}
      local target = api.loaded.controllers.daemonset.value.target_node
      for _, p in ipairs(env.pods()) do
        if not p.metadata.deletionTimestamp then
          local n = target(p) or "?"
          out[n] = out[n] or {}
          out[n][#out[n] + 1] = p
        end
      end
      return out
    end
    function env.status(name)
      return assert(c:get(M.DS, "default", name)).status or {}
    end
    function env.set_ready(pod, ready)
      local p = assert(c:get("v1/Pod", "default", pod.metadata.name))
      p.status = p.status or {}
      p.status.phase = "Running"
      p.status.conditions = { { type = "Ready", status = ready == false and "False" or "True",
        lastTransitionTime = "2020-01-01T00:00:00Z" } }
      return assert(c:update_status("v1/Pod", p))
    end
    function env.events(kind)
      local out = {}
      for _, e in ipairs(assert(c:list("v1/Event", { namespace = "default" })).items) do
        if not kind or e.involvedObject.kind == kind then out[#out + 1] = e end
      end
      return out
    end
    local ok, err = pcall(fn, env)
    m:stop()
    require("api_stack").close(api, ok, err, lines)
  end)
end

return M
