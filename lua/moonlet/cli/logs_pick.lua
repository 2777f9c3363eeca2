-- `logs TYPE/NAME` for a workload (deploy, rs, ds, job, ...): the pod kubectl
-- would attach to. Its selector's pods in kubectl's ByLogging order
-- (scheduled, running, ready, ready longest, most restarts, oldest), the
-- first taken, "Found N pods, using pod/NAME" when there were several; with
-- none yet, the first one to appear within --pod-running-timeout.
local common = require("moonlet.cli.common")
local json = require("moonlet.json")
local selector = require("moonlet.selector")

local M = {}

local function is_table(v) return type(v) == "table" and v ~= json.null end
local function list(v) return is_table(v) and v or {} end

-- Running beats Unknown beats Pending; other phases rank with Pending.
local PHASE = { Pending = 0, Unknown = 1, Running = 2 }

local function ready_since(pod)
  for _, c in ipairs(list(list(pod.status).conditions)) do
    if c.type == "Ready" then return c.status == "True", c.lastTransitionTime or "" end
  end
  return false, ""
end

local function restarts(pod)
  local n = 0
  for _, s in ipairs(list(list(pod.status).containerStatuses)) do
    if (s.restartCount or 0) > n then n = s.restartCount end
  end
  return n
end

-- a before b for two RFC 3339 times where an empty one sorts last.
local function earlier(a, b)
  if a == "" or b == "" then return a ~= "" end
  return a < b
end

--- kubectl's podutils.ByLogging: is pod a the better one to read?
function M.before(a, b)
  local na, nb = list(a.spec).nodeName or "", list(b.spec).nodeName or ""
  if na ~= nb and (na == "" or nb == "") then return na ~= "" end
  local pa, pb = PHASE[list(a.status).phase] or 0, PHASE[list(b.status).phase] or 0
  if pa ~= pb then return pa > pb end
  local ra, ta = ready_since(a)
  local rb, tb = ready_since(b)
  if ra ~= rb then return ra end
  if ra and ta ~= tb then return earlier(ta, tb) end
  local xa, xb = restarts(a), restarts(b)
  if xa ~= xb then return xa > xb end
  local ca, cb = list(a.metadata).creationTimestamp or "", list(b.metadata).creationTimestamp or ""
  if ca ~= cb then return earlier(ca, cb) end
  return false
end

-- Kinds whose spec.selector picks their pods, as kubectl's
-- AttachablePodForObject knows them.
local SELECTS = { Deployment = true, ReplicaSet = true, DaemonSet = true, StatefulSet = true,
  Job = true, ReplicationController = true }

--- The name of the pod to read for workload `name` of resource `r`.
function M.pod(ctx, r, ns, name)
  if not SELECTS[r.kind] then
    common.fail(string.format("cannot get the logs from %s", common.kind_word(r)))
  end
  local c = common.client(ctx)
  local obj, st = c:get(r, ns, name)
  if not obj then common.fail_status(ctx, st) end
  local sel = list(obj.spec).selector
  -- A ReplicationController's selector is a plain map.
  if r.kind == "ReplicationController" then sel = { matchLabels = sel } end
  local text = selector.format_selector(sel)
  local pods_r = common.resolve(ctx, "pods")
  local pods, lst = c:list(pods_r, { namespace = ns, label_selector = text })
  if not pods then common.fail_status(ctx, lst) end
  local items = list(pods.items)
  if #items == 0 then
    local ms = common.parse_timeout(ctx.flags["pod-running-timeout"]) or 20000
    local w, werr = c:watch(pods_r, { namespace = ns, label_selector = text,
      resource_version = list(pods.metadata).resourceVersion,
      timeout_seconds = math.max(1, math.ceil(ms / 1000)) })
    if not w then common.fail_status(ctx, werr) end
    while true do
      local ev = w:next()
      if not ev then break end
      if ev.type == "ADDED" then
        w:close()
        return ev.object.metadata.name
      end
    end
    w:close()
    common.fail("timed out waiting for the condition")
  end
  table.sort(items, M.before)
  if #items > 1 then
    ctx.err(string.format("Found %d pods, using pod/%s\n", #items, items[1].metadata.name))
  end
  return items[1].metadata.name
end

return M
