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
local M = {}

-- Kubernetes' order for the built-ins in "supported values" messages.
local BUILTIN_ORDER = { Always = 1, OnFailure = 2, Never = 3 }

local registry -- name -> policy table; nil until loaded

--- Checks a policy plugin value; returns nil or a message.
function M.check(p)
  if type(p) ~= "table" then return "a restart policy plugin must return a table" end
  if type(p.name) ~= "string" or not p.name:match("^[%w][%w%-_.]*$") then
    return 'field "name": must be a name like "Always"'
  end
  if type(p.decide) ~= "function" then return 'field "decide": must be a function' end
  return nil
end

--- Replaces the registry with the restart policies among loaded plugins
--- (moonlet.plugins.load result; entries named "restart/<file>").
--- @return list of "display: message" errors
function M.load(loaded)
  local reg, errors = {}, {}
  local names = {}
  for name in pairs((loaded or {}).policies or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    if name:match("^restart/") then
      local p = loaded.policies[name]
      local err = M.check(p.value)
      if err then errors[#errors + 1] = p.display .. ": " .. err
      else reg[p.value.name] = p.value end
    end
  end
  registry = reg
  return errors
end

-- The built-ins compiled into the binary, loaded on first use so that the
-- Pod kind's validation works before (or without) a node agent.
local function ensure()
  if registry then return registry end
  local plugins = require("moonlet.plugins")
  local loaded = plugins.load({}, {})
  M.load(loaded)
  return registry
end

--- Registers one policy (tests, embedders). Raises on a bad value.
function M.register(p)
  local err = M.check(p)
  if err then error(err, 2) end
  ensure()[p.name] = p
end

--- Accepted restartPolicy values: the built-ins in Kubernetes' order, then
--- the others sorted.
function M.names()
  local out = {}
  for n in pairs(ensure()) do out[#out + 1] = n end
  table.sort(out, function(a, b)
    local oa, ob = BUILTIN_ORDER[a], BUILTIN_ORDER[b]
    if oa and ob then return oa < ob end
    if oa or ob then return oa ~= nil end
    return a < b
  end)
  return out
end

--- The policy table for a name, or nil.
function M.get(name) return ensure()[name] end

--- Asks policy `name` about an exit. A failing or unknown policy never
--- restarts (the error is returned so the caller can report it).
--- @return { restart = bool, delay = seconds|nil }, err
function M.decide(name, pod, container, exit, state)
  local p = ensure()[name]
  if not p then return { restart = false }, string.format("unknown restart policy %q", tostring(name)) end
  local ok, res = pcall(p.decide, pod, container, exit, state or {})
  if not ok then return { restart = false }, string.format("restart policy %s: %s", name, tostring(res)) end
  if type(res) == "boolean" then return { restart = res } end
  if type(res) ~= "table" then return { restart = false }, string.format("restart policy %s: answer must be a table", name) end
  local delay = tonumber(res.delay)
  if delay and delay < 0 then delay = 0 end
  return { restart = res.restart == true, delay = delay }
end

--- Forgets the registry (tests).
function M.reset() registry = nil end

return M
