-- What the rollout verbs, `scale` and `describe deployment` share, in
-- kubectl 1.32's terms: the objects named on the command line (TYPE NAME,
-- TYPE/NAME, -f, -l), a Deployment's ReplicaSets split into new and old the
-- way deploymentutil does, revisions, template equality ignoring
-- pod-template-hash, and the rollout status messages.
local common = require("moonlet.cli.common")
local json = require("moonlet.json")
local selector = require("moonlet.selector")
local duration = require("moonlet.printers.duration")

local M = {}

M.REVISION = "deployment.kubernetes.io/revision"
M.CHANGE_CAUSE = "kubernetes.io/change-cause"
M.HASH_LABEL = "pod-template-hash"
M.RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
M.TIMED_OUT = "ProgressDeadlineExceeded"

local function is_table(v) return type(v) == "table" and v ~= json.null end
local function list(v) return is_table(v) and v or {} end
M.is_table = is_table
M.list = list

--- Go's schema.GroupKind String(): `Deployment.apps`, `Pod`.
function M.group_kind(r)
  if r.group == "" then return r.kind end
  return r.kind .. "." .. r.group
end

--- `deployments.apps "kubia"`: how kubectl's rollout verbs name an object
--- in their per-object errors.
function M.resource_quoted(r, name)
  return common.quoted(r, name)
end

-- {====== objects named on the command line

--- The objects a verb acts on: -f files (their kind and name), TYPE NAME
--- or TYPE/NAME arguments, or a TYPE with -l/--all. Every object is fetched
--- (kubectl's Builder.Latest()). opts: selector, all, filenames,
--- recursive. A missing object is reported and skipped.
--- @return list of { r=, obj= }
function M.objects(ctx, argv, opts)
  opts = opts or {}
  local c = common.client(ctx)
  local ns = common.namespace(ctx)
  local named = {}
  if opts.filenames and #opts.filenames > 0 then
    local manifest = require("moonlet.cli.manifest")
    local docs, rerr = manifest.read(ctx, opts.filenames, opts.recursive)
    if not docs then common.fail(rerr) end
    for _, doc in ipairs(docs) do
      if doc.err then
        common.report(ctx, doc.err)
      else
        local obj = doc.obj
        local r = c:kind(tostring(obj.apiVersion) .. "/" .. tostring(obj.kind))
        if not r then
          common.report(ctx, string.format('error: resource mapping not found for name: "%s" namespace: "%s" from "%s": no matches for kind "%s" in version "%s"\nensure CRDs are installed first',
            tostring(list(obj.metadata).name or ""), tostring(list(obj.metadata).namespace or ""),
            doc.source, tostring(obj.kind), tostring(obj.apiVersion)))
        else
          local m = list(obj.metadata)
          named[#named + 1] = { r = r, ns = r.namespaced and (m.namespace or ns) or nil, name = m.name }
        end
      end
    end
    if #argv > 0 then
      -- kubectl adds args to the files' objects; a bare type is an error there
      for _, t in ipairs(require("moonlet.cli.get").targets(ctx, argv)) do
        for _, n in ipairs(t.names) do named[#named + 1] = { r = t.r, ns = ns, name = n } end
      end
    end
  else
    if #argv == 0 then return {} end
    local targets = require("moonlet.cli.get").targets(ctx, argv)
    for _, t in ipairs(targets) do
      if #t.names > 0 then
        if opts.selector and opts.selector ~= "" then
          common.fail("name cannot be provided when a selector is specified")
        end
        for _, n in ipairs(t.names) do named[#named + 1] = { r = t.r, ns = ns, name = n } end
      elseif (opts.selector and opts.selector ~= "") or opts.all then
        local res, st = c:list(t.r, { namespace = t.r.namespaced and ns or nil, label_selector = opts.selector })
        if not res then common.fail_status(ctx, st) end
        for _, o in ipairs(res.items or {}) do
          named[#named + 1] = { r = t.r, obj = common.fill_kind(t.r, o) }
        end
      else
        common.fail("resource(s) were provided, but no name was specified")
      end
    end
  end
  local out = {}
  for _, n in ipairs(named) do
    if n.obj then
      out[#out + 1] = n
    else
      local obj, st = c:get(n.r, n.ns, n.name)
      if obj then
        out[#out + 1] = { r = n.r, obj = common.fill_kind(n.r, obj) }
      else
        common.report(ctx, st)
      end
    end
  end
  return out
end

--- Prints the errors collected for several objects the way kubectl's
--- aggregate errors come out, and marks the invocation failed.
function M.report_errors(ctx, errs)
  if #errs == 0 then return end
  ctx.failed = true
  if #errs == 1 then
    local msg = errs[1]
    if not msg:match("^error: ") then msg = "error: " .. msg end
    ctx.err(msg .. "\n")
    return
  end
  local parts = {}
  for i, e in ipairs(errs) do parts[i] = (e:gsub("^error: ", "")) end
  ctx.err("error: [" .. table.concat(parts, ", ") .. "]\n")
end

-- }======

-- {====== revisions and templates

--- deploymentutil.Revision: the revision annotation as an integer, 0 when
--- absent. @return n or nil, message when it does not parse
function M.revision(obj)
  local v = list(list(list(obj).metadata).annotations)[M.REVISION]
  if v == nil or v == json.null then return 0 end
  local n = math.tointeger(tonumber(tostring(v)))
  if not n or not tostring(v):match("^[+-]?%d+$") then
    return nil, string.format('strconv.ParseInt: parsing "%s": invalid syntax', tostring(v))
  end
  return n
end

-- Semantic deep equality: nil, null and empty maps/lists are the same
-- value (apimachinery's forked DeepEqual treats empty and nil alike).
local function empty(v)
  return v == nil or v == json.null or (type(v) == "table" and next(v) == nil)
end

local function equal(a, b)
  if empty(a) and empty(b) then return true end
  if type(a) ~= "table" or type(b) ~= "table" then
    if type(a) == "number" and type(b) == "number" then return a == b end
    return a == b
  end
  for k, v in pairs(a) do if not equal(v, b[k]) then return false end end
  for k, v in pairs(b) do if a[k] == nil and not empty(v) then return false end end
  return true
end
M.equal = equal

--- A copy of a pod template without the pod-template-hash label.
function M.strip_hash(template)
  local t = json.copy(is_table(template) and template or {})
  if is_table(t.metadata) and is_table(t.metadata.labels) then
    t.metadata.labels[M.HASH_LABEL] = nil
  end
  return t
end

--- EqualIgnoreHash: two pod templates equal apart from pod-template-hash.
function M.equal_ignore_hash(t1, t2)
  return equal(M.strip_hash(t1), M.strip_hash(t2))
end

-- }======

-- {====== a Deployment's ReplicaSets

local function controller_uid(obj)
  for _, ref in ipairs(list(list(obj.metadata).ownerReferences)) do
    if is_table(ref) and ref.controller == true then return ref.uid end
  end
  return nil
end

local function by_creation(a, b)
  local ta = duration.parse(list(a.metadata).creationTimestamp) or 0
  local tb = duration.parse(list(b.metadata).creationTimestamp) or 0
  if ta == tb then return tostring(list(a.metadata).name) < tostring(list(b.metadata).name) end
  return ta < tb
end

--- deploymentutil.GetAllReplicaSets over a list of ReplicaSets: those
--- controlled by `d` (ownerReference uid), sorted by creation; the new one
--- (oldest with the deployment's template, ignoring the hash label), the
--- old ones with replicas != 0, and all old ones.
--- @return new_rs (or nil), old, all_old
function M.split(d, rss)
  local uid = list(d.metadata).uid
  local owned = {}
  for _, rs in ipairs(rss or {}) do
    if uid ~= nil and controller_uid(rs) == uid then owned[#owned + 1] = rs end
  end
  table.sort(owned, by_creation)
  local tmpl = list(d.spec).template
  local new_rs
  for _, rs in ipairs(owned) do
    if M.equal_ignore_hash(list(rs.spec).template, tmpl) then
      new_rs = rs
      break
    end
  end
  local old, all_old = {}, {}
  for _, rs in ipairs(owned) do
    if rs ~= new_rs then
      all_old[#all_old + 1] = rs
      local n = list(rs.spec).replicas
      if n == nil or n == json.null or n ~= 0 then old[#old + 1] = rs end
    end
  end
  return new_rs, old, all_old
end

--- The ReplicaSets of a Deployment's namespace that its selector matches
--- (listed with the selector, as kubectl does), then split as M.split.
--- @return new_rs, old, all_old; or nil, nil, nil, Status
function M.replica_sets(ctx, d)
  local c = common.client(ctx)
  local sel = selector.from_table(list(d.spec).selector)
  if not sel then return nil, nil, nil, { message = "invalid label selector" } end
  local res, st = c:list("apps/v1/ReplicaSet", { namespace = list(d.metadata).namespace,
    label_selector = sel:string() ~= "" and sel:string() or nil })
  if not res then return nil, nil, nil, st end
  return M.split(d, res.items or {})
end

-- }======

-- {====== rollout status (polymorphichelpers/rollout_status.go)

local function int(v) return math.tointeger(v) or 0 end

local function condition(status, t)
  for _, c in ipairs(list(list(status).conditions)) do
    if is_table(c) and c.type == t then return c end
  end
  return nil
end

--- DeploymentStatusViewer.Status. `revision` > 0 pins the revision.
--- @return message, done; or nil, false, error message
function M.deployment_status(d, revision)
  local meta, spec, st = list(d.metadata), list(d.spec), list(d.status)
  local name = tostring(meta.name)
  if revision and revision > 0 then
    local rev, err = M.revision(d)
    if not rev then
      return nil, false, string.format("cannot get the revision of deployment %q: %s", name, err)
    end
    if rev ~= revision then
      return nil, false, string.format("desired revision (%d) is different from the running revision (%d)",
        revision, rev)
    end
  end
  if int(meta.generation) <= int(st.observedGeneration) then
    local cond = condition(st, "Progressing")
    if cond and cond.reason == M.TIMED_OUT then
      return nil, false, string.format("deployment %q exceeded its progress deadline", name)
    end
    local replicas = spec.replicas
    local updated, total, available = int(st.updatedReplicas), int(st.replicas), int(st.availableReplicas)
    if math.tointeger(replicas) and updated < replicas then
      return string.format("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...\n",
        name, updated, replicas), false
    end
    if total > updated then
      return string.format("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...\n",
        name, total - updated), false
    end
    if available < updated then
      return string.format("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...\n",
        name, available, updated), false
    end
    return string.format("deployment %q successfully rolled out\n", name), true
  end
  return "Waiting for deployment spec update to be observed...\n", false
end

--- DaemonSetStatusViewer.Status (revision is ignored, as kubectl does).
function M.daemonset_status(ds)
  local meta, spec, st = list(ds.metadata), list(ds.spec), list(ds.status)
  local name = tostring(meta.name)
  local strategy = list(spec.updateStrategy).type
  if strategy ~= "RollingUpdate" then
    return nil, true, "rollout status is only available for RollingUpdate strategy type"
  end
  if int(meta.generation) <= int(st.observedGeneration) then
    local updated, desired = int(st.updatedNumberScheduled), int(st.desiredNumberScheduled)
    if updated < desired then
      return string.format("Waiting for daemon set %q rollout to finish: %d out of %d new pods have been updated...\n",
        name, updated, desired), false
    end
    local available = int(st.numberAvailable)
    if available < desired then
      return string.format("Waiting for daemon set %q rollout to finish: %d of %d updated pods are available...\n",
        name, available, desired), false
    end
    return string.format("daemon set %q successfully rolled out\n", name), true
  end
  return "Waiting for daemon set spec update to be observed...\n", false
end

--- The status viewer for a resource, or nil, kubectl's error.
function M.status_viewer(r)
  if r.group == "apps" and r.kind == "Deployment" then return M.deployment_status end
  if r.group == "apps" and r.kind == "DaemonSet" then return M.daemonset_status end
  return nil, "no status viewer has been implemented for " .. M.group_kind(r)
end

-- }======

--- A Go duration flag (`30s`, `1m30s`, `0`): milliseconds, 0 for none.
--- @return ms or nil, kubectl's message for a bad value
function M.duration_flag(name, s)
  local rest = s
  if s:match("^%d+$") and tonumber(s) ~= 0 then
    return nil, string.format('invalid argument "%s" for "--%s" flag: time: missing unit in duration "%s"', s, name, s)
  end
  if not s:match("^%d+$") then
    while rest ~= "" do
      local tail = rest:match("^%d+%.?%d*ms(.*)$") or rest:match("^%d+%.?%d*[smh](.*)$")
      if not tail then break end
      rest = tail
    end
  else
    rest = ""
  end
  if s == "" or rest ~= "" then
    return nil, string.format('invalid argument "%s" for "--%s" flag: time: invalid duration "%s"', s, name, s)
  end
  return common.parse_timeout(s) or 0
end

--- Go's time.Now().Format(time.RFC3339) in the local zone.
function M.rfc3339_now(now)
  local t = math.floor(now or os.time())
  local utc = os.date("!*t", t)
  local loc = os.date("*t", t)
  utc.isdst = loc.isdst
  local off = os.difftime(os.time(loc), os.time(utc))
  local s = os.date("%Y-%m-%dT%H:%M:%S", t)
  if off == 0 then return s .. "Z" end
  local sign = off < 0 and "-" or "+"
  off = math.abs(math.floor(off))
  return string.format("%s%s%02d:%02d", s, sign, off // 3600, off % 3600 // 60)
end

return M
