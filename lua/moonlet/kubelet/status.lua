-- Pod status as the kubelet computes it, as pure functions over the spec and
-- the container status objects: phase (kubelet_pods.go getPhase), the pod
-- conditions (status/generate.go), RFC 3339 times and the containerStatus
-- shape. No I/O: the worker feeds them and writes the result.
local json = require("moonlet.json")

local M = {}

--- RFC 3339 UTC with second precision (metav1.Time).
function M.time(unix)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(unix))
end

local function by_name(statuses)
  local m = {}
  for _, s in ipairs(statuses or {}) do m[s.name] = s end
  return m
end

local function restartable(c) return c.restartPolicy == "Always" end

--- Pod phase. policy_final: for restart policies other than the three
--- built-ins, whether no stopped container will be restarted any more.
--- terminal: the pod is being shut down for good (deadline, deletion).
function M.phase(spec, init_statuses, statuses, opts)
  opts = opts or {}
  local policy = spec.restartPolicy or "Always"
  local inits = by_name(init_statuses)
  local pending_init, failed_init = 0, 0
  for _, c in ipairs(spec.initContainers or {}) do
    if not restartable(c) then
      local s = inits[c.name]
      local st = s and s.state or {}
      if not s then pending_init = pending_init + 1
      elseif st.running then pending_init = pending_init + 1
      elseif st.terminated then
        if st.terminated.exitCode ~= 0 then failed_init = failed_init + 1 end
      elseif st.waiting then
        local lt = s.lastState and s.lastState.terminated
        if lt then
          if lt.exitCode ~= 0 then failed_init = failed_init + 1 end
        else
          pending_init = pending_init + 1
        end
      else
        pending_init = pending_init + 1
      end
    end
  end
  local apps = by_name(statuses)
  local unknown, running, waiting, stopped, succeeded = 0, 0, 0, 0, 0
  local any_started = false
  for _, c in ipairs(spec.containers or {}) do
    local s = apps[c.name]
    local st = s and s.state or {}
    if not s then unknown = unknown + 1
    elseif st.running then running = running + 1; any_started = true
    elseif st.terminated then
      stopped = stopped + 1
      any_started = true
      if st.terminated.exitCode == 0 then succeeded = succeeded + 1 end
    elseif st.waiting then
      if s.lastState and s.lastState.terminated then
        stopped = stopped + 1
        any_started = true
      else
        waiting = waiting + 1
      end
    else
      unknown = unknown + 1
    end
  end
  local never = policy == "Never" or (opts.policy_final == true and policy ~= "Always" and policy ~= "OnFailure")
  if failed_init > 0 and (policy == "Never" or opts.init_failed_final) then return "Failed" end
  if (pending_init > 0 and not any_started) or waiting > 0 then return "Pending" end
  if running > 0 and unknown == 0 then return "Running" end
  if running == 0 and stopped > 0 and unknown == 0 then
    if opts.terminal then return stopped == succeeded and "Succeeded" or "Failed" end
    if policy == "Always" then return "Running" end
    if stopped == succeeded then return "Succeeded" end
    if never then return "Failed" end
    if policy == "OnFailure" then return "Running" end
    return "Running"
  end
  return "Pending"
end

-- Go's %s of a []string: [a b c]
local function go_list(names) return "[" .. table.concat(names, " ") .. "]" end

local function cond(typ, ok, reason, message)
  return { type = typ, status = ok and "True" or "False", reason = reason, message = message }
end

--- Initialized condition.
function M.initialized(spec, init_statuses, phase)
  if not spec.initContainers or #spec.initContainers == 0 then return cond("Initialized", true) end
  local inits = by_name(init_statuses)
  local unknown, incomplete = {}, {}
  for _, c in ipairs(spec.initContainers) do
    local s = inits[c.name]
    if not s then unknown[#unknown + 1] = c.name
    else
      local done
      if restartable(c) then done = s.started == true
      else
        local t = s.state and s.state.terminated
        done = t ~= nil and t.exitCode == 0
      end
      if not done then incomplete[#incomplete + 1] = c.name end
    end
  end
  if phase == "Succeeded" and #unknown == 0 then return cond("Initialized", true, "PodCompleted") end
  local msgs = {}
  if #unknown > 0 then msgs[#msgs + 1] = "containers with unknown status: " .. go_list(unknown) end
  if #incomplete > 0 then msgs[#msgs + 1] = "containers with incomplete status: " .. go_list(incomplete) end
  if #msgs > 0 then return cond("Initialized", false, "ContainersNotInitialized", table.concat(msgs, ", ")) end
  return cond("Initialized", true)
end

--- ContainersReady condition.
function M.containers_ready(spec, init_statuses, statuses, phase)
  local apps, inits = by_name(statuses), by_name(init_statuses)
  local unknown, unready = {}, {}
  for _, c in ipairs(spec.initContainers or {}) do
    if restartable(c) then
      local s = inits[c.name]
      if not s then unknown[#unknown + 1] = c.name
      elseif not s.ready then unready[#unready + 1] = c.name end
    end
  end
  for _, c in ipairs(spec.containers or {}) do
    local s = apps[c.name]
    if not s then unknown[#unknown + 1] = c.name
    elseif not s.ready then unready[#unready + 1] = c.name end
  end
  if phase == "Succeeded" and #unknown == 0 then return cond("ContainersReady", false, "PodCompleted") end
  if phase == "Failed" then return cond("ContainersReady", false, "PodFailed") end
  local msgs = {}
  if #unknown > 0 then msgs[#msgs + 1] = "containers with unknown status: " .. go_list(unknown) end
  if #unready > 0 then msgs[#msgs + 1] = "containers with unready status: " .. go_list(unready) end
  if #msgs > 0 then return cond("ContainersReady", false, "ContainersNotReady", table.concat(msgs, ", ")) end
  return cond("ContainersReady", true)
end

--- Ready condition: ContainersReady and every readiness gate.
function M.ready(spec, containers_ready, conditions)
  if containers_ready.status ~= "True" then
    return cond("Ready", false, containers_ready.reason, containers_ready.message)
  end
  local have = {}
  for _, c in ipairs(conditions or {}) do have[c.type] = c end
  local missing, falsy = {}, {}
  for _, g in ipairs(spec.readinessGates or {}) do
    local c = have[g.conditionType]
    if not c then missing[#missing + 1] = g.conditionType
    elseif c.status ~= "True" then falsy[#falsy + 1] = g.conditionType end
  end
  local msgs = {}
  for _, t in ipairs(missing) do
    msgs[#msgs + 1] = string.format('corresponding condition of pod readiness gate "%s" does not exist.', t)
  end
  if #falsy > 0 then
    msgs[#msgs + 1] = string.format("the status of pod readiness gate %s is not \"True\", but False", table.concat(falsy, ", "))
  end
  if #msgs > 0 then return cond("Ready", false, "ReadinessGatesNotReady", table.concat(msgs, ", ")) end
  return cond("Ready", true)
end

--- The kubelet's conditions in its order, keeping lastTransitionTime of
--- conditions whose status did not change (old: the previous list).
function M.conditions(spec, init_statuses, statuses, phase, old, now)
  local ts = M.time(now)
  local prev = {}
  for _, c in ipairs(old or {}) do prev[c.type] = c end
  local cr = M.containers_ready(spec, init_statuses, statuses, phase)
  local list = {
    cond("PodReadyToStartContainers", phase ~= "Succeeded" and phase ~= "Failed"),
    M.initialized(spec, init_statuses, phase),
    M.ready(spec, cr, old),
    cr,
    cond("PodScheduled", true),
  }
  for _, c in ipairs(list) do
    local p = prev[c.type]
    c.lastTransitionTime = (p and p.status == c.status and p.lastTransitionTime) or ts
    c.lastProbeTime = json.null
  end
  -- Conditions written by others (readiness gates, DisruptionTarget) stay.
  local mine = { PodReadyToStartContainers = true, Initialized = true, Ready = true,
    ContainersReady = true, PodScheduled = true }
  for _, c in ipairs(old or {}) do
    if not mine[c.type] then list[#list + 1] = c end
  end
  return json.array(list)
end

--- READY column helpers for tests and logs: ready/total app containers.
function M.ready_count(statuses)
  local n = 0
  for _, s in ipairs(statuses or {}) do
    if s.ready and s.state and s.state.running then n = n + 1 end
  end
  return n
end

--- Terminated-state reason for an exit as container runtimes report it.
function M.exit_reason(exit)
  if exit.oom_killed then return "OOMKilled" end
  if exit.start_error then return "StartError" end
  if exit.exit_code == 0 then return "Completed" end
  return "Error"
end

return M
