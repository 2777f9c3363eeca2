-- Restart-policy registry: the names a pod's spec.restartPolicy may take and
-- the decision each policy makes when a container exits. The built-ins
-- (Always, OnFailure, Never) are plugins under plugins/policies/restart/;
-- a scripts dir's policies/restart/*.lua adds more or replaces them.
--
-- A policy plugin returns { name = "Always", decide = function(pod,
-- container, exit, state) return { restart = bool, delay = seconds|nil } end }.
-- `exit`: exit_code, reason (Completed|Error|OOMKilled|StartError), killed_by
-- ("liveness"|"startup"|nil), restart_count, finished_at (unix s), history
-- (unix times of earlier exits, oldest first). `state` is a table kept per
-- pod and container for the policy's own bookkeeping. No delay means the
-- kubelet's crash-loop back-off applies.
--
-- A policy whose answer never depends on more than the exit code may say
-- so with `restarts = "any"` (every exit: { restart = true }) or
-- `restarts = "failure"` (exactly the non-zero exit codes and probe kills):
-- the kubelet then lets the process runtime start the replacement by
-- itself at the exit, without asking decide() first.
local M = {}

-- Kubernetes' order for the built-ins in "supported values" messages.
local BUILTIN_ORDER = { Always = 1, OnFailure = 2, Never = 3 }

local base = require("moonlet.policy_registry").new({ type = "restart", fn = "decide",
  what = "restart policy", example = "Always" })
M.check, M.load, M.register, M.get, M.reset = base.check, base.load, base.register, base.get, base.reset

--- Accepted restartPolicy values: the built-ins in Kubernetes' order, then
--- the others sorted.
function M.names() return base.names(BUILTIN_ORDER) end

--- What policy `name` declares of its answers: "any", "failure" or nil.
function M.restarts(name)
  local p = base.get(name)
  local r = p and p.restarts
  if r == "any" or r == "failure" then return r end
  return nil
end

--- Asks policy `name` about an exit. A failing or unknown policy never
--- restarts (the error is returned so the caller can report it).
--- @return { restart = bool, delay = seconds|nil }, err
function M.decide(name, pod, container, exit, state)
  local p = base.get(name)
  if not p then return { restart = false }, string.format("unknown restart policy %q", tostring(name)) end
  local ok, res = pcall(p.decide, pod, container, exit, state or {})
  if not ok then return { restart = false }, string.format("restart policy %s: %s", name, tostring(res)) end
  if type(res) == "boolean" then return { restart = res } end
  if type(res) ~= "table" then return { restart = false }, string.format("restart policy %s: answer must be a table", name) end
  local delay = tonumber(res.delay)
  if delay and delay < 0 then delay = 0 end
  return { restart = res.restart == true, delay = delay }
end

return M
