-- moonlet.controller.informer: list-then-watch one kind through the API
-- client (lua/moonlet/client.lua), keep a cache keyed "ns/name" with
-- indexes (namespace, owner uid, uid) and tell handlers about adds,
-- updates and deletes. A watch that ends is resumed from the last seen
-- resourceVersion; 410 Expired re-lists (diffing against the cache); every
-- failure backs off. Per-handler resync re-delivers the whole cache.
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local util = require("moonlet.controller.util")

local M = {}
local Informer = {}
Informer.__index = Informer

local function default_log(level, msg)
  require("moonlet.core.runtime").log(level, msg)
end

--- Creates an informer (not started). opts: client, kind ("apps/v1/
--- ReplicaSet"), namespace (nil = all), label_selector and field_selector
--- (strings, passed to list/watch: with a field selector the server sends
--- an object that starts matching as ADDED, one that stops as DELETED),
--- log(level, msg), backoff = { initial = 0.8, max = 30 }
--- seconds, name (for logs), metadata_only (list and watch
--- PartialObjectMetadata, as client-go's metadata informers do: handlers
--- get each object's metadata, and the cache keeps only what identifies an
--- object (uid, name, namespace, resourceVersion), so the cache's reads
--- (get, list, by_owner) are not for such an informer; see want_full),
--- owner_events (with metadata_only, in-process: the watch carries only
--- objects that have, or had, ownerReferences, finalizers or a
--- deletionTimestamp, and every deletion; the list is whole. For the
--- garbage collector; see want_all_events).
function M.new(opts)
  assert(opts and opts.client, "informer: client required")
  local gvk = util.parse_kind(assert(opts.kind, "informer: kind required"))
  local backoff = opts.backoff or {}
  return setmetatable({
    client = opts.client,
    kind = opts.kind,
    gvk = gvk,
    namespace = opts.namespace,
    label_selector = opts.label_selector,
    field_selector = opts.field_selector,
    metadata_only = opts.metadata_only == true,
    owner_events = opts.metadata_only == true and opts.owner_events == true,
    log = opts.log or default_log,
    name = opts.name or ("informer " .. opts.kind),
    backoff_initial = backoff.initial or 0.8,
    backoff_max = backoff.max or 30,
    cache = {},     -- key -> object (owned by the informer; hand out copies)
    idx_ns = {},    -- namespace -> { key = true }
    idx_owner = {}, -- owner uid -> { key = true }
    idx_uid = {},   -- uid -> key
    handlers = {},
    synced = false,
    stopped = false,
    started = false,
    sleeper = util.sleeper(),
    stats = { lists = 0, watches = 0, relists = 0, events = 0, failures = 0 },
  }, Informer)
end

local function set_add(index, k, key)
  local s = index[k]
  if not s then
    s = {}
    index[k] = s
  end
  s[key] = true
end

local function set_del(index, k, key)
  local s = index[k]
  if not s then return end
  s[key] = nil
  if next(s) == nil then index[k] = nil end
end

local function index_obj(self, key, obj, add)
  local md = obj.metadata or {}
  local f = add and set_add or set_del
  f(self.idx_ns, md.namespace or "", key)
  for _, ref in ipairs(md.ownerReferences or {}) do
    if ref.uid then f(self.idx_owner, ref.uid, key) end
  end
  if md.uid then
    if add then self.idx_uid[md.uid] = key
    elseif self.idx_uid[md.uid] == key then self.idx_uid[md.uid] = nil end
  end
end

-- List items from a real API server carry no apiVersion/kind; handlers,
-- owner references and events need them, so the informer fills them in.
-- A metadata informer's objects say PartialObjectMetadata: they get the
-- kind they are views of.
local function normalize(self, obj)
  if obj.apiVersion == nil or obj.kind == "PartialObjectMetadata" then
    obj.apiVersion, obj.kind = self.gvk.api_version, self.gvk.kind
  end
  if obj.kind == nil then obj.kind = self.gvk.kind end
  return obj
end

local function notify(self, what, a, b)
  for _, h in ipairs(self.handlers) do
    local fn = h[what]
    if fn then
      local ok, err = xpcall(fn, debug.traceback, a, b)
      if not ok then
        self.log("error", string.format("%s: %s handler failed: %s", self.name, what, err))
      end
    end
  end
end

-- What a metadata-only informer keeps of an object: enough for the
-- re-list diff, update(old, new) and delete(old).
local function identity(self, obj)
  local md = obj.metadata or {}
  return { apiVersion = self.gvk.api_version, kind = self.gvk.kind, metadata = {
    uid = md.uid, name = md.name, namespace = md.namespace, resourceVersion = md.resourceVersion } }
end

local function store(self, obj)
  obj = normalize(self, obj)
  local key = util.key(obj)
  local old = self.cache[key]
  if old then index_obj(self, key, old, false) end
  local kept = self.metadata_only and identity(self, obj) or obj
  self.cache[key] = kept
  index_obj(self, key, kept, true)
  if old then notify(self, "update", old, obj) else notify(self, "add", obj) end
end

local function remove(self, obj)
  obj = normalize(self, obj)
  local key = util.key(obj)
  local old = self.cache[key]
  if old then index_obj(self, key, old, false) end
  self.cache[key] = nil
  -- The delete event carries the final state; prefer it over the cache.
  notify(self, "delete", obj)
end

-- A (re-)list: diff the fresh list against the cache so handlers see only
-- what changed while the watch was gone; objects missing are deletes.
local function replace(self, items)
  local seen = {}
  for _, obj in ipairs(items) do
    normalize(self, obj)
    seen[util.key(obj)] = true
    store(self, obj)
  end
  local gone = {}
  for key, obj in pairs(self.cache) do
    if not seen[key] then gone[#gone + 1] = obj end
  end
  for _, obj in ipairs(gone) do remove(self, obj) end
end

local function status_code(st)
  return type(st) == "table" and tonumber(st.code) or nil
end

-- Client calls in protected mode: a client that raises (a bug, a broken
-- transport) counts as a failed call, so the informer backs off and lives.
local function call(self, method, ...)
  local ok, res, st = pcall(self.client[method], self.client, ...)
  if not ok then return nil, { code = 0, reason = "ClientError", message = tostring(res) } end
  return res, st
end

local function rv_of(obj)
  return obj and obj.metadata and obj.metadata.resourceVersion
end

-- Sleeps the back-off for the n-th consecutive failure (n >= 1).
local function back_off(self)
  self.stats.failures = self.stats.failures + 1
  self.fails = (self.fails or 0) + 1
  local d = math.min(self.backoff_max, self.backoff_initial * 2 ^ (self.fails - 1))
  self.sleeper:sleep(d)
end

-- One watch session: returns "relist" (410), "full" (want_full),
-- "rewatch" (ended) or "stop".
local function watch_once(self)
  local stream, st = call(self, "watch", self.kind, {
    namespace = self.namespace, label_selector = self.label_selector,
    field_selector = self.field_selector,
    resource_version = self.rv, metadata = self.metadata_only,
    owner_events = self.owner_events,
  })
  if self.stopped then
    if stream then stream:close() end
    return "stop"
  end
  if not stream then
    if status_code(st) == 410 then
      if self.empty_relist then back_off(self) end
      self.empty_relist = true
      return "relist"
    end
    self.log("warn", string.format("%s: watch failed: %s", self.name,
      type(st) == "table" and tostring(st.message) or tostring(st)))
    back_off(self)
    return "rewatch"
  end
  self.stats.watches = self.stats.watches + 1
  self.stream = stream
  local got, result = 0, "rewatch"
  while true do
    local okn, ev, est = pcall(stream.next, stream)
    if not okn then ev, est = nil, { message = tostring(ev) } end
    if self.stopped then
      result = "stop"
      break
    end
    if not ev then
      if status_code(est) == 410 then result = "relist" end
      break
    end
    if ev.type == "ERROR" then
      if status_code(ev.object) == 410 then
        result = "relist"
      else
        self.log("warn", string.format("%s: watch error: %s", self.name,
          tostring(type(ev.object) == "table" and ev.object.message)))
      end
      break
    end
    got = got + 1
    self.fails = 0
    self.stats.events = self.stats.events + 1
    local obj = ev.object
    if ev.type == "ADDED" or ev.type == "MODIFIED" then
      store(self, obj)
    elseif ev.type == "DELETED" then
      remove(self, obj)
    end
    -- BOOKMARK (and anything newer) only moves the resume point.
    self.rv = rv_of(obj) or self.rv
  end
  stream:close()
  self.stream = nil
  -- A stream that ends before telling us anything is a failure: without a
  -- back-off a server that drops watches at once would get a hot loop. One
  -- immediate 410 is normal (we resumed from a compacted revision), so the
  -- first re-list after it is not delayed, a second in a row is.
  if self.relist_now then
    -- want_full() closed the stream: list whole objects at once.
    self.empty_relist = false
    return "full"
  end
  if got == 0 and not self.stopped and (result == "rewatch" or self.empty_relist) then
    back_off(self)
  end
  self.empty_relist = got == 0 and result == "relist"
  return result
end

local function run(self)
  local need_list = true
  while not self.stopped do
    if self.relist_now then need_list = true end
    if need_list then
      self.relist_now = false
      local res, st = call(self, "list", self.kind, {
        namespace = self.namespace, label_selector = self.label_selector,
        field_selector = self.field_selector,
        metadata = self.metadata_only,
      })
      if self.stopped then break end
      if not res then
        self.log("warn", string.format("%s: list failed: %s", self.name,
          type(st) == "table" and tostring(st.message) or tostring(st)))
        back_off(self)
      else
        self.stats.lists = self.stats.lists + 1
        if self.synced then self.stats.relists = self.stats.relists + 1 end
        replace(self, res.items or {})
        self.rv = res.metadata and res.metadata.resourceVersion
        -- (a want_full() during this list: synced once whole objects are in)
        self.synced = not self.relist_now
        need_list = false
      end
    else
      local r = watch_once(self)
      if r == "stop" then break end
      if r == "full" then need_list = true end
      if r == "relist" then
        self.log("info", string.format("%s: watch expired at %s, re-listing",
          self.name, tostring(self.rv)))
        need_list = true
      end
    end
  end
  self.done = true
end

--- Makes a metadata informer cache whole objects from now on: a running
--- one re-lists at once (handlers then see update(metadata, whole) for
--- every object). Until that list is in, the cache holds metadata.
function Informer:want_full()
  if not self.metadata_only then return end
  self.metadata_only = false
  self.owner_events = false
  if self.started and not self.stopped then
    -- Not synced until whole objects are in: readers wait for them.
    self.synced = false
    self.relist_now = true
    if self.stream then self.stream:close() end
  end
end

--- Makes an owner_events informer hear every change from now on: a
--- running one re-lists at once, so identities that changed unheard are
--- brought up to date.
function Informer:want_all_events()
  if not self.owner_events then return end
  self.owner_events = false
  if self.started and not self.stopped then
    self.relist_now = true
    if self.stream then self.stream:close() end
  end
end

--- Registers handlers { add = fn(obj), update = fn(old, new),
--- delete = fn(obj) }. Objects are the cached tables: read, never change.
--- With resync_seconds > 0, update(obj, obj) is called for every cached
--- object at that period (level-triggered controllers re-check the world).
--- Handlers added after the first list get add() for the current cache.
function Informer:add_handler(h, resync_seconds)
  self.handlers[#self.handlers + 1] = h
  if self.synced and h.add then
    for _, obj in pairs(self.cache) do h.add(obj) end
  end
  if resync_seconds and resync_seconds > 0 then
    local ms = math.max(1, math.floor(resync_seconds * 1000))
    h.resync_timer = loop.timer(ms, function()
      if not self.synced or self.stopped or not h.update then return end
      for _, obj in pairs(self.cache) do
        local ok, err = xpcall(h.update, debug.traceback, obj, obj)
        if not ok then
          self.log("error", string.format("%s: resync handler failed: %s", self.name, err))
        end
      end
    end, ms)
  end
  return h
end

--- Starts listing and watching in its own coroutine.
function Informer:start()
  if self.started then return self end
  self.started = true
  sched.spawn(self.name, run, self)
  return self
end

--- Stops watching (the stream is closed, a back-off sleep cut short) and
--- the resync timers. The cache stays readable.
function Informer:stop()
  if self.stopped then return end
  self.stopped = true
  for _, h in ipairs(self.handlers) do
    if h.resync_timer then
      h.resync_timer.stop()
      h.resync_timer = nil
    end
  end
  self.sleeper:cancel()
  if self.stream then self.stream:close() end
end

function Informer:has_synced() return self.synced end

--- Yields until the first list has been applied. @return true | nil, "timeout"
function Informer:wait_synced(timeout)
  return util.wait_for(function() return self.synced end, timeout)
end

--- A snapshot (deep copy) of the cached object, or nil.
function Informer:get(namespace, name)
  if namespace and namespace ~= "" then return self:get_by_key(namespace .. "/" .. name) end
  return self:get_by_key(name)
end

function Informer:get_by_key(key)
  local obj = self.cache[key]
  return obj and util.copy(obj)
end

--- The cached object itself: for code that only reads (handlers, maps).
function Informer:peek(key) return self.cache[key] end

--- The cache key of the object with this uid, or nil.
function Informer:key_for_uid(uid) return self.idx_uid[uid] end

-- `readonly`: the cached objects themselves, for callers that never
-- change them (a Job's sync reads every pod it ever made).
local function collect(self, keys, sel, readonly)
  -- Sorted by cache key, which is util.key of the object: the keys sort as
  -- plain strings (a comparator building two keys per comparison was 8% of
  -- a 1,000-pod scale-up, the ReplicaSet listing its pods on every sync).
  local sorted = {}
  for key in pairs(keys) do sorted[#sorted + 1] = key end
  table.sort(sorted)
  local out = {}
  for _, key in ipairs(sorted) do
    local obj = self.cache[key]
    if obj and (not sel or sel:matches((obj.metadata or {}).labels or {})) then
      out[#out + 1] = obj
    end
  end
  if not readonly then
    for i, obj in ipairs(out) do out[i] = util.copy(obj) end
  end
  return out
end

--- Snapshots of cached objects, sorted by key. opts: namespace,
--- selector (compiled selector or LabelSelector table). readonly: the
--- cached objects instead of copies (read, never change them).
function Informer:list(opts, readonly)
  opts = opts or {}
  local sel = util.selector(opts.selector)
  if opts.namespace then return collect(self, self.idx_ns[opts.namespace] or {}, sel, readonly) end
  return collect(self, self.cache, sel, readonly)
end

--- Snapshots of the objects in one namespace.
function Informer:by_namespace(namespace)
  return collect(self, self.idx_ns[namespace or ""] or {})
end

--- Snapshots of the objects with an ownerReference to `uid` (readonly:
--- the cached objects themselves).
function Informer:by_owner(uid, readonly)
  return collect(self, self.idx_owner[uid] or {}, nil, readonly)
end

--- Number of cached objects.
function Informer:size()
  local n = 0
  for _ in pairs(self.cache) do n = n + 1 end
  return n
end

return M
