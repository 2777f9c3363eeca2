-- moonlet.controller.manager: runs controller plugins. One shared informer
-- per kind feeds every controller's work queue: changes to the primary
-- kind enqueue the object's key, changes to owned kinds enqueue their
-- controlling owner (ownerReference controller=true of the primary kind),
-- `watches` entries map through the plugin's function. Workers pull keys
-- and call reconcile(ctx, key, obj) in protected mode: an error is logged
-- with the controller's name and requeued with back-off; the rest goes on.
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local util = require("moonlet.controller.util")
local informer = require("moonlet.controller.informer")
local workqueue = require("moonlet.controller.workqueue")
local ratelimit = require("moonlet.controller.ratelimit")
local events = require("moonlet.controller.events")

local M = {}
local Manager = {}
Manager.__index = Manager

local function default_log(level, msg)
  require("moonlet.core.runtime").log(level, msg)
end

--- Creates a manager. opts: client (API client), clock() -> unix seconds
--- (ctx.now and event timestamps; default loop.time), log(level, msg),
--- rate_limiter() -> a fresh limiter per controller (default
--- ratelimit.default), informer_backoff ({initial=, max=} seconds),
--- host (source.host of events), sync_events (ctx:event writes before it
--- returns instead of queueing in the event sink).
function M.new(opts)
  assert(opts and opts.client, "manager: client required")
  return setmetatable({
    client = opts.client,
    clock = opts.clock or loop.time,
    log = opts.log or default_log,
    new_limiter = opts.rate_limiter or ratelimit.default,
    informer_backoff = opts.informer_backoff,
    host = opts.host,
    sync_events = opts.sync_events == true,
    informers = {},   -- kind -> shared informer
    controllers = {}, -- in add() order
    by_name = {},
    started = false,
    stopped = false,
  }, Manager)
end

--- The shared informer for kind (created, and started when the manager
--- runs, on first use). With `metadata`, the caller needs only metadata:
--- the informer stays metadata-only (PartialObjectMetadata) until some
--- caller wants whole objects. With `owner_events` too, its watch carries
--- only ownership changes (informer.new) until a caller wants every event.
function Manager:informer(kind, metadata, owner_events)
  local inf = self.informers[kind]
  if not inf then
    inf = informer.new({ client = self.client, kind = kind, log = self.log,
                         backoff = self.informer_backoff, metadata_only = metadata == true,
                         owner_events = owner_events == true })
    self.informers[kind] = inf
    if self.started then inf:start() end
  elseif not metadata then
    inf:want_full()
  elseif not owner_events then
    inf:want_all_events()
  end
  return inf
end

-- The informer of kind when it caches whole objects (reads are served from
-- it), else nil (reads go to the API).
local function whole(mgr, kind)
  local inf = mgr.informers[kind]
  if inf and not inf.metadata_only then return inf end
  return nil
end

-- {====== ctx: what reconcile sees

local Ctx = {}
Ctx.__index = Ctx

--- Snapshot of kind/ns/name from the informer cache when the controller
--- watches that kind, else read through the API client. nil when absent.
function Ctx:get(kind, namespace, name)
  local inf = whole(self._mgr, kind)
  if inf then
    if self._readonly then
      return inf:peek((namespace and namespace ~= "") and (namespace .. "/" .. name) or name)
    end
    return inf:get(namespace, name)
  end
  local obj = self.client:get(kind, namespace, name)
  return obj
end

--- Snapshots of kind from the cache (or the API when not watched), sorted
--- by key. opts: namespace, selector (compiled or LabelSelector table).
function Ctx:list(kind, opts)
  opts = opts or {}
  local inf = whole(self._mgr, kind)
  if inf then return inf:list(opts, self._readonly) end
  local res, st = self.client:list(kind, { namespace = opts.namespace })
  if not res then
    error(string.format("list %s: %s", kind, type(st) == "table" and st.message or tostring(st)), 2)
  end
  local sel = util.selector(opts.selector)
  local out = {}
  for _, obj in ipairs(res.items or {}) do
    if not sel or sel:matches((obj.metadata or {}).labels or {}) then out[#out + 1] = obj end
  end
  return out
end

--- For a plugin's setup(ctx): hands raw changes of `kind` to handlers
--- { add = fn(obj), update = fn(old, new), delete = fn(obj) } on the shared
--- informer, and holds this controller's workers until it has synced.
--- Objects are the cached tables: read them, never change them.
--- opts.metadata: the handlers need only metadata (objects may then be
--- PartialObjectMetadata views, unless another controller wants more);
--- opts.owner_events (with metadata): only objects that have or had
--- owners, finalizers or a deletion under way, and deletions.
--- @return the informer
function Ctx:watch(kind, handlers, opts)
  local ctl = self._ctl
  local inf = self._mgr:informer(kind, opts and opts.metadata, opts and opts.owner_events)
  ctl.informers[#ctl.informers + 1] = inf
  inf:add_handler(handlers)
  return inf
end

--- Snapshots of the objects of kind that name `uid` in an ownerReference,
--- from the informer's owner index when the kind is watched (a sync then
--- costs the owner's dependents, not the namespace), else from the API.
function Ctx:owned(kind, uid, namespace)
  local inf = whole(self._mgr, kind)
  if inf and inf:has_synced() then return inf:by_owner(uid, self._readonly) end
  local out = {}
  for _, obj in ipairs(self:list(kind, { namespace = namespace })) do
    for _, ref in ipairs((obj.metadata or {}).ownerReferences or {}) do
      if ref.uid == uid then out[#out + 1] = obj break end
    end
  end
  return out
end

--- Calls fn(obj) for every cached object of kind, read-only: the cache's
--- own tables, not copies, for passes that look at everything (the
--- scheduler's view of every pod). Falls back to a list when not watched.
function Ctx:each_cached(kind, fn)
  local inf = whole(self._mgr, kind)
  if inf and inf:has_synced() then
    for _, obj in pairs(inf.cache) do fn(obj) end
    return
  end
  for _, obj in ipairs(self:list(kind)) do fn(obj) end
end

--- Records a v1 Event about obj (source.component = controller name):
--- queued and written by the event sink when the loop is idle (within a
--- second), as client-go's recorder hands events to its broadcaster; a
--- manager made with sync_events writes it before returning.
--- @return true | nil, status (failures are not raised)
function Ctx:event(obj, type_, reason, message)
  return self._recorder:event(obj, type_, reason, message)
end

local function new_ctx(mgr, ctl)
  local ctx = setmetatable({
    _mgr = mgr,
    _ctl = ctl,
    queue = ctl.queue,
    _recorder = events.new({ client = mgr.client, component = ctl.name,
                             host = mgr.host, clock = mgr.clock, async = not mgr.sync_events,
                             log = mgr.log }),
    client = mgr.client,
    name = ctl.name,
    now = mgr.clock,
    _readonly = ctl.plugin.readonly == true,
  }, Ctx)
  ctx.log = function(level, fmt, ...)
    local msg = select("#", ...) > 0 and string.format(fmt, ...) or tostring(fmt)
    mgr.log(level, "controller " .. ctl.name .. ": " .. msg)
  end
  return ctx
end

-- }======

-- {====== event handlers: objects in, keys out

-- Key of the controlling owner of obj when that owner is of `owner` kind
-- (group and Kind compared: versions are views of the same objects).
local function owner_key(obj, owner, owner_inf)
  local md = obj.metadata or {}
  for _, ref in ipairs(md.ownerReferences or {}) do
    if ref.controller == true then
      if ref.kind ~= owner.kind or util.api_group(ref.apiVersion) ~= owner.group then
        return nil
      end
      -- The uid index finds cluster-scoped owners too; an owner not seen
      -- yet is assumed to live in the dependent's namespace.
      local key = ref.uid and owner_inf:key_for_uid(ref.uid)
      if key then return key end
      if md.namespace and md.namespace ~= "" then return md.namespace .. "/" .. ref.name end
      return ref.name
    end
  end
  return nil
end

-- With plugin.filter(obj) (read-only), adds and updates of objects it
-- turns down wake nothing: the scheduler need not look at every change of
-- every bound pod. Deletes always wake the key.
--
-- With plugin.batch_period, an update that leaves metadata.generation as
-- it was (a status write, a label) is batched like the owned objects'
-- changes; a spec change still wakes the controller at once (the Job
-- controller's updateJob).
local function primary_handler(ctl)
  local q, filter, batch = ctl.queue, ctl.plugin.filter, ctl.plugin.batch_period
  local function enqueue(obj) q:add(util.key(obj)) end
  local function maybe(obj)
    if filter(obj) then q:add(util.key(obj)) end
  end
  if filter then
    return { add = maybe, update = function(_, new) maybe(new) end, delete = enqueue }
  end
  local update = function(_, new) enqueue(new) end
  if batch then
    update = function(old, new)
      local og, ng = old.metadata.generation, new.metadata.generation
      if og ~= nil and og == ng then q:add_batched(util.key(new), batch) else enqueue(new) end
    end
  end
  return { add = enqueue, update = update, delete = enqueue }
end

-- With plugin.batch_period (seconds), changes of owned objects wake their
-- owner at the end of a short window that gathers them (the Job
-- controller's syncJobBatchPeriod): a pod that starts and ends within it
-- costs its owner one sync and one status write, not one per change.
local function owned_handler(ctl, owner_inf)
  local q, owner, batch = ctl.queue, ctl.gvk, ctl.plugin.batch_period
  local function enqueue(obj)
    local key = owner_key(obj, owner, owner_inf)
    if not key then return end
    if batch then q:add_batched(key, batch) else q:add(key) end
  end
  return {
    add = enqueue,
    update = function(old, new)
      -- Same resourceVersion: a resync; the owner's own resync covers it.
      local orv, nrv = old.metadata.resourceVersion, new.metadata.resourceVersion
      if orv ~= nil and orv == nrv then return end
      enqueue(new)
      -- A changed controller reference wakes the previous owner as well.
      if owner_key(old, owner, owner_inf) ~= owner_key(new, owner, owner_inf) then enqueue(old) end
    end,
    delete = enqueue,
  }
end

-- map gets the cached object itself (read, never change it): a copy of
-- every pod on every change, for each controller that maps pods, was the
-- largest single cost of a busy node.
local function mapped_handler(ctl, w)
  local q = ctl.queue
  local function enqueue(obj)
    local ok, keys = xpcall(w.map, debug.traceback, obj)
    if not ok then
      ctl.mgr.log("error", string.format("controller %s: map for %s failed: %s", ctl.name, w.kind, keys))
      return
    end
    if type(keys) == "string" then q:add(keys)
    elseif type(keys) == "table" then
      for _, k in ipairs(keys) do q:add(k) end
    end
  end
  return {
    add = enqueue,
    update = function(old, new)
      if old.metadata.resourceVersion ~= nil
        and old.metadata.resourceVersion == new.metadata.resourceVersion then return end
      enqueue(new)
    end,
    delete = enqueue,
  }
end

-- }======

-- {====== workers

local function first_line(s)
  return (tostring(s):match("^[^\n]*"))
end

local function process(ctl, key)
  local inf = ctl.mgr.informers[ctl.kind]
  local obj = inf and (ctl.ctx._readonly and inf:peek(key) or inf:get_by_key(key))
  ctl.stats.reconciles = ctl.stats.reconciles + 1
  local ok, res = xpcall(ctl.plugin.reconcile, debug.traceback, ctl.ctx, key, obj)
  local q = ctl.queue
  if not ok then
    ctl.stats.errors = ctl.stats.errors + 1
    ctl.mgr.log("error", string.format("controller %s: reconcile %s failed (requeue %d): %s",
      ctl.name, key, q:num_requeues(key) + 1, tostring(res)))
    -- Rule 14: the failure is visible on the object, not only in the log.
    if obj then
      local msg = first_line(res):gsub("^[^:]*:%d+: ", "")
      ctl.ctx:event(obj, "Warning", "ReconcileError", msg)
    end
    q:add_rate_limited(key)
  elseif type(res) == "table" and res.requeue_after then
    q:forget(key)
    q:add_after(key, res.requeue_after)
  elseif type(res) == "table" and res.requeue then
    q:add_rate_limited(key)
  else
    q:forget(key)
  end
end

-- A worker gives the loop a turn after PACE_MS of keys in a row: a
-- backlog (the scheduler's pending pods, a Job's burst of syncs) is worked
-- off between other work, not as one dispatch.
local PACE_MS = 30

local function worker(ctl)
  local pace = util.pacer(PACE_MS)
  while true do
    local parked = ctl.queue:len() == 0
    local key = ctl.queue:get()
    if key == nil then break end
    if parked then pace:reset() end
    process(ctl, key)
    ctl.queue:done(key)
    pace:tick()
  end
  ctl.running = ctl.running - 1
end

-- Workers start once every informer the controller reads has listed, so a
-- first reconcile never mistakes an unfilled cache for "nothing exists".
local function start_controller(mgr, ctl)
  sched.spawn("controller " .. ctl.name, function()
    util.wait_for(function()
      if mgr.stopped then return true end
      for _, inf in ipairs(ctl.informers) do
        if not inf:has_synced() then return false end
      end
      return true
    end, math.huge, 5)
    if mgr.stopped then return end
    ctl.workers_started = true
    for i = 1, ctl.workers do
      ctl.running = ctl.running + 1
      sched.spawn(string.format("controller %s worker %d", ctl.name, i), worker, ctl)
    end
  end)
end

-- }======

--- Adds a controller plugin: { name, kind, owns = {kinds}, watches =
--- {{kind=, map=fn(obj) -> key | {keys}}} (obj: the cached object, read
--- only), filter = fn(obj) -> bool (optional: which adds and updates of
--- the primary kind wake it; obj read only), readonly = true (reconcile,
--- ctx:get, ctx:list and ctx:owned hand out the cached objects, not
--- copies: for plugins that never change what they read), batch_period =
--- seconds (changes of owned objects, and updates of the primary object
--- that keep its generation, wake it in batches), workers = 1,
--- resync_seconds,
--- setup = fn(ctx) (optional: called once here; may ctx:watch() kinds and
--- keep state on ctx), reconcile = fn(ctx, key, obj) -> nil |
--- {requeue_after=s} | {requeue=true} }. kind "*" (with setup) means no
--- primary kind: keys come from what setup wires to ctx.queue, obj is nil.
--- @return the controller record (queue, stats, ctx)
function Manager:add(plugin)
  assert(type(plugin) == "table", "manager: plugin must be a table")
  local name = plugin.name
  assert(type(name) == "string" and name ~= "", "manager: plugin needs a name")
  assert(type(plugin.reconcile) == "function", "controller " .. name .. ": reconcile must be a function")
  assert(type(plugin.kind) == "string", "controller " .. name .. ": kind required")
  if self.by_name[name] then error("manager: controller '" .. name .. "' added twice", 2) end
  local primary_kind = plugin.kind ~= "*"
  assert(primary_kind or type(plugin.setup) == "function",
    "controller " .. name .. ': kind "*" needs a setup function')
  local ctl = {
    mgr = self, plugin = plugin, name = name, kind = plugin.kind,
    gvk = primary_kind and util.parse_kind(plugin.kind) or nil,
    workers = plugin.workers or 1,
    queue = workqueue.new({ name = name, rate_limiter = self.new_limiter() }),
    informers = {},
    running = 0,
    stats = { reconciles = 0, errors = 0 },
  }
  ctl.ctx = new_ctx(self, ctl)
  local primary
  if primary_kind then
    primary = self:informer(plugin.kind)
    ctl.informers[1] = primary
    primary:add_handler(primary_handler(ctl), plugin.resync_seconds)
  else
    assert(#(plugin.owns or {}) == 0, "controller " .. name .. ': kind "*" cannot own kinds')
  end
  if plugin.setup then plugin.setup(ctl.ctx) end
  for _, kind in ipairs(plugin.owns or {}) do
    local inf = self:informer(kind)
    ctl.informers[#ctl.informers + 1] = inf
    inf:add_handler(owned_handler(ctl, primary))
  end
  for _, w in ipairs(plugin.watches or {}) do
    assert(type(w.kind) == "string" and type(w.map) == "function",
      "controller " .. name .. ": watches entries need kind and map")
    local inf = self:informer(w.kind)
    ctl.informers[#ctl.informers + 1] = inf
    inf:add_handler(mapped_handler(ctl, w))
  end
  self.controllers[#self.controllers + 1] = ctl
  self.by_name[name] = ctl
  if self.started then start_controller(self, ctl) end
  return ctl
end

--- The controller record by name (queue, stats = {reconciles, errors}).
function Manager:controller(name) return self.by_name[name] end

--- Starts the informers, then each controller's workers once its caches
--- have synced. Does not wait.
function Manager:start()
  if self.started then return self end
  self.started = true
  for _, inf in pairs(self.informers) do inf:start() end
  for _, ctl in ipairs(self.controllers) do start_controller(self, ctl) end
  return self
end

--- Stops intake everywhere and lets every worker finish the key in hand.
--- Called from a coroutine it waits for that (up to `timeout` s, default 30)
--- and then writes the events still queued in the sink.
--- @return true | nil, "timeout"
function Manager:stop(timeout)
  if self.stopped then return true end
  self.stopped = true
  for _, ctl in ipairs(self.controllers) do ctl.queue:shutdown() end
  for _, inf in pairs(self.informers) do inf:stop() end
  if not sched.in_coroutine() then return true end
  local ok, err = util.wait_for(function()
    for _, ctl in ipairs(self.controllers) do
      if ctl.running > 0 then return false end
    end
    return true
  end, timeout or 30, 1)
  events.flush(timeout or 30)
  return ok, err
end

local function idle_now(self)
  for _, inf in pairs(self.informers) do
    if not inf:has_synced() then return false end
  end
  for _, ctl in ipairs(self.controllers) do
    if not ctl.workers_started or not ctl.queue:idle() then return false end
  end
  return events.pending() == 0
end

--- Yields until every cache has synced and every queue, the event sink's
--- too, has been empty (nothing queued, in hand or delayed) for `settle_ms`
--- (default 20: watch events of the last writes are still in flight when
--- the queue drains).
--- @return true | nil, "timeout"
function Manager:wait_idle(timeout, settle_ms)
  settle_ms = settle_ms or 20
  local since
  return util.wait_for(function()
    if not idle_now(self) then
      since = nil
      return false
    end
    since = since or loop.now()
    return loop.now() - since >= settle_ms
  end, timeout or 10, 2)
end

return M
