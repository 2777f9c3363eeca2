-- How kubectl summarises a pod (printPod in Kubernetes' printers.go): the
-- STATUS reason (Init:1/2, CrashLoopBackOff, Completed, Terminating ...),
-- READY ready/total with restartable init "sidecar" containers counted, and
-- RESTARTS with the age of the last restart, "1 (5s ago)". Shared by the
-- Pod kind's printer columns and `describe`.
local json = require("moonlet.json")
local duration = require("moonlet.printers.duration")

local M = {}

local function is_table(v) return type(v) == "table" and v ~= json.null end
local function list(v) return is_table(v) and v or {} end
local function str(v) return type(v) == "string" and v or "" end

local function is_sidecar(c) return is_table(c) and c.restartPolicy == "Always" end

local function ts(v) return duration.parse(v) end

-- the later of a and b (either may be nil)
local function later(a, b)
  if a == nil then return b end
  if b == nil then return a end
  return b > a and b or a
end

local function condition_true(pod, typ)
  for _, c in ipairs(list(pod.status and pod.status.conditions)) do
    if is_table(c) and c.type == typ then return c.status == "True" end
  end
  return false
end

--- printPod's summary. @return {reason=, ready=, total=, restarts=,
--- last_restart= (unix seconds or nil)}
function M.summary(pod)
  local spec = is_table(pod.spec) and pod.spec or {}
  local status = is_table(pod.status) and pod.status or {}
  local restarts, sidecar_restarts = 0, 0
  local total, ready = #list(spec.containers), 0
  local last, sidecar_last
  local reason = str(status.phase)
  if str(status.reason) ~= "" then reason = status.reason end
  for _, c in ipairs(list(status.conditions)) do
    if is_table(c) and c.type == "PodScheduled" and c.reason == "SchedulingGated" then
      reason = "SchedulingGated"
    end
  end

  local inits = {}
  for _, c in ipairs(list(spec.initContainers)) do
    if is_table(c) then
      inits[str(c.name)] = c
      if is_sidecar(c) then total = total + 1 end
    end
  end

  local initializing = false
  local ninit = #list(spec.initContainers)
  for i, cs in ipairs(list(status.initContainerStatuses)) do
    if is_table(cs) then
      local state = is_table(cs.state) and cs.state or {}
      local lastterm = is_table(cs.lastState) and is_table(cs.lastState.terminated) and cs.lastState.terminated
      restarts = restarts + (math.tointeger(cs.restartCount) or 0)
      if lastterm then last = later(last, ts(lastterm.finishedAt)) end
      local sidecar = is_sidecar(inits[str(cs.name)])
      if sidecar then
        sidecar_restarts = sidecar_restarts + (math.tointeger(cs.restartCount) or 0)
        if lastterm then sidecar_last = later(sidecar_last, ts(lastterm.finishedAt)) end
      end
      local term = is_table(state.terminated) and state.terminated
      local waiting = is_table(state.waiting) and state.waiting
      local done = false
      if term and (term.exitCode or 0) == 0 then
        done = true
      elseif sidecar and cs.started == true then
        if cs.ready == true then ready = ready + 1 end
        done = true
      elseif term then
        if str(term.reason) == "" then
          if (term.signal or 0) ~= 0 then
            reason = string.format("Init:Signal:%d", term.signal)
          else
            reason = string.format("Init:ExitCode:%d", term.exitCode or 0)
          end
        else
          reason = "Init:" .. term.reason
        end
        initializing = true
      elseif waiting and str(waiting.reason) ~= "" and waiting.reason ~= "PodInitializing" then
        reason = "Init:" .. waiting.reason
        initializing = true
      else
        reason = string.format("Init:%d/%d", i - 1, ninit)
        initializing = true
      end
      if not done then break end
    end
  end

  if not initializing or condition_true(pod, "Initialized") then
    restarts, last = sidecar_restarts, sidecar_last
    local has_running = false
    local css = list(status.containerStatuses)
    for i = #css, 1, -1 do
      local cs = css[i]
      if is_table(cs) then
        local state = is_table(cs.state) and cs.state or {}
        restarts = restarts + (math.tointeger(cs.restartCount) or 0)
        local lastterm = is_table(cs.lastState) and is_table(cs.lastState.terminated) and cs.lastState.terminated
        if lastterm then last = later(last, ts(lastterm.finishedAt)) end
        local term = is_table(state.terminated) and state.terminated
        local waiting = is_table(state.waiting) and state.waiting
        if waiting and str(waiting.reason) ~= "" then
          reason = waiting.reason
        elseif term and str(term.reason) ~= "" then
          reason = term.reason
        elseif term then
          if (term.signal or 0) ~= 0 then
            reason = string.format("Signal:%d", term.signal)
          else
            reason = string.format("ExitCode:%d", term.exitCode or 0)
          end
        elseif cs.ready == true and is_table(state.running) then
          has_running = true
          ready = ready + 1
        end
      end
    end
    if reason == "Completed" and has_running then
      reason = condition_true(pod, "Ready") and "Running" or "NotReady"
    end
  end

  local meta = is_table(pod.metadata) and pod.metadata or {}
  if str(meta.deletionTimestamp) ~= "" then
    if status.reason == "NodeLost" then
      reason = "Unknown"
    elseif status.phase ~= "Succeeded" and status.phase ~= "Failed" then
      reason = "Terminating"
    end
  end
  return { reason = reason, ready = ready, total = total, restarts = restarts, last_restart = last }
end

--- STATUS column text.
function M.status(pod) return M.summary(pod).reason end

--- READY column text ("1/1").
function M.ready(pod)
  local s = M.summary(pod)
  return string.format("%d/%d", s.ready, s.total)
end

--- RESTARTS column text: "2", or "2 (48s ago)" once a restart has a time.
function M.restarts(pod, now)
  local s = M.summary(pod)
  if s.restarts ~= 0 and s.last_restart then
    return string.format("%d (%s ago)", s.restarts, duration.human((now or os.time()) - s.last_restart))
  end
  return tostring(s.restarts)
end

local function or_none(s) return (s == nil or s == "") and "<none>" or s end

--- Wide columns: IP (first of status.podIPs), NODE, NOMINATED NODE.
function M.ip(pod)
  local ips = list(pod.status and pod.status.podIPs)
  return or_none(is_table(ips[1]) and str(ips[1].ip) or "")
end

function M.node(pod) return or_none(str(pod.spec and pod.spec.nodeName)) end

function M.nominated_node(pod) return or_none(str(pod.status and pod.status.nominatedNodeName)) end

--- READINESS GATES: "<true>/<gates>" or <none>.
function M.readiness_gates(pod)
  local gates = list(pod.spec and pod.spec.readinessGates)
  if #gates == 0 then return "<none>" end
  local n = 0
  for _, g in ipairs(gates) do
    for _, c in ipairs(list(pod.status and pod.status.conditions)) do
      if is_table(g) and is_table(c) and c.type == g.conditionType then
        if c.status == "True" then n = n + 1 end
        break
      end
    end
  end
  return string.format("%d/%d", n, #gates)
end

return M
