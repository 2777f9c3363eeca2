-- fake_client: an in-memory stand-in for the API client (lua/moonlet/
-- client.lua) for specs: same methods and return conventions, one global
-- resourceVersion counter, an event history so watches resume from a
-- revision (410 Expired once compacted), and watch streams built on the
-- moonlet scheduler. Every call yields for a loop turn (like a real round
-- trip) and watch events arrive on a later turn, never inside the writer.
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")

local M = {}
local Fake = {}
Fake.__index = Fake

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

local function equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, x in pairs(a) do if not equal(x, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function key_of(ns, name)
  if ns and ns ~= "" then return ns .. "/" .. name end
  return name
end

local function resource_name(kind)
  return kind:match("([^/]+)$"):lower() .. "s"
end

local function status(code, reason, message)
  return { kind = "Status", apiVersion = "v1", status = "Failure", code = code,
           reason = reason, message = message }
end

local function not_found(kind, name)
  return status(404, "NotFound", string.format('%s "%s" not found', resource_name(kind), name))
end

-- Equality-based label selector strings: "a=b,c!=d,e,!f".
local function parse_selector(s)
  if not s or s == "" then return nil end
  local reqs = {}
  for part in s:gmatch("[^,]+") do
    part = part:match("^%s*(.-)%s*$")
    local k, v = part:match("^([^!=]+)!=(.*)$")
    if k then reqs[#reqs + 1] = { k, "ne", v }
    else
      k, v = part:match("^([^!=]+)==?(.*)$")
      if k then reqs[#reqs + 1] = { k, "eq", v }
      elseif part:sub(1, 1) == "!" then reqs[#reqs + 1] = { part:sub(2), "absent" }
      else reqs[#reqs + 1] = { part, "present" } end
    end
  end
  return function(labels)
    labels = labels or {}
    for _, r in ipairs(reqs) do
      local have = labels[r[1]]
      if r[2] == "eq" and have ~= r[3] then return false end
      if r[2] == "ne" and have == r[3] then return false end
      if r[2] == "present" and have == nil then return false end
      if r[2] == "absent" and have ~= nil then return false end
    end
    return true
  end
end

local function parse_fields(s)
  if not s or s == "" then return nil end
  local reqs = {}
  for part in s:gmatch("[^,]+") do
    local f, v = part:match("^([^=]+)==?(.*)$")
    reqs[#reqs + 1] = { f, v }
  end
  return function(obj)
    for _, r in ipairs(reqs) do
      local cur = obj
      for seg in r[1]:gmatch("[^.]+") do cur = type(cur) == "table" and cur[seg] or nil end
      if tostring(cur or "") ~= r[2] then return false end
    end
    return true
  end
end

--- Creates a fake client. opts: latency_ms (default 0: each call yields one
--- loop turn; false: calls never yield), expired_as ("event": a watch from
--- a compacted revision gets an ERROR 410 event, "status": watch() returns
--- nil + 410).
function M.new(opts)
  opts = opts or {}
  return setmetatable({
    latency_ms = opts.latency_ms == nil and 0 or opts.latency_ms,
    expired_as = opts.expired_as or "event",
    rv = 0,
    objs = {},      -- kind -> key -> object
    history = {},   -- { rv, kind, type, object } in order
    compacted = 0,  -- watches must resume at or after this revision
    watchers = {},  -- open streams
    outbox = {},    -- { stream, ev, st } waiting for the next turn
    failures = {},  -- method -> { status, ... } injected failures
    calls = {},     -- method -> count
    uids = 0,
  }, Fake)
end

-- One simulated round trip; then maybe an injected failure.
local function enter(self, method)
  self.calls[method] = (self.calls[method] or 0) + 1
  if self.latency_ms then loop.sleep(self.latency_ms) end
  local f = self.failures[method]
  if f and #f > 0 then return table.remove(f, 1) end
end

--- Makes the next `n` (default 1) calls of `method` fail with `st`.
function Fake:fail_next(method, st, n)
  local f = self.failures[method] or {}
  for _ = 1, n or 1 do f[#f + 1] = st end
  self.failures[method] = f
end

local function flush(self)
  local box = self.outbox
  self.outbox = {}
  self.flush_timer = nil
  for _, item in ipairs(box) do
    if not item[1].closed then sched.dispatch(item[1].id, item[2], item[3]) end
  end
end

local function post(self, stream, ev, st)
  self.outbox[#self.outbox + 1] = { stream, ev, st }
  if not self.flush_timer then
    self.flush_timer = loop.timer(0, function() flush(self) end)
  end
end

local function matches(stream, obj)
  local md = obj.metadata
  if stream.namespace and stream.namespace ~= "" and md.namespace ~= stream.namespace then return false end
  if stream.sel and not stream.sel(md.labels) then return false end
  return true
end

local function emit(self, kind, type_, obj)
  self.history[#self.history + 1] = { rv = self.rv, kind = kind, type = type_, object = copy(obj) }
  for _, s in ipairs(self.watchers) do
    if s.kind == kind and matches(s, obj) then
      post(self, s, { type = type_, object = copy(obj) })
    end
  end
end

local function bump(self, obj)
  self.rv = self.rv + 1
  obj.metadata.resourceVersion = tostring(self.rv)
end

local function bucket(self, kind)
  local b = self.objs[kind]
  if not b then
    b = {}
    self.objs[kind] = b
  end
  return b
end

local function stamp()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

function Fake:get(kind, namespace, name)
  local err = enter(self, "get")
  if err then return nil, err end
  local obj = bucket(self, kind)[key_of(namespace, name)]
  if not obj then return nil, not_found(kind, name) end
  return copy(obj)
end

function Fake:list(kind, opts)
  opts = opts or {}
  local err = enter(self, "list")
  if err then return nil, err end
  local sel, fsel = parse_selector(opts.label_selector), parse_fields(opts.field_selector)
  local keys = {}
  for key, obj in pairs(bucket(self, kind)) do
    if (not opts.namespace or opts.namespace == "" or obj.metadata.namespace == opts.namespace)
      and (not sel or sel(obj.metadata.labels)) and (not fsel or fsel(obj)) then
      keys[#keys + 1] = key
    end
  end
  table.sort(keys)
  local items = {}
  -- Like the real API server, list items carry no apiVersion/kind.
  for i, key in ipairs(keys) do
    local o = copy(self.objs[kind][key])
    o.apiVersion, o.kind = nil, nil
    items[i] = o
  end
  return { items = items, metadata = { resourceVersion = tostring(self.rv) } }
end

local Stream = {}
Stream.__index = Stream

--- Next watch event, or nil + status (a 410 Status when expired) at the end.
function Stream:next()
  if self.closed then return nil end
  local ev, st = sched.wait(self.id)
  if not ev then
    self:close()
    return nil, st
  end
  return ev
end

function Stream:close()
  if self.closed then return end
  self.closed = true
  local fake = self.fake
  for i, s in ipairs(fake.watchers) do
    if s == self then
      table.remove(fake.watchers, i)
      break
    end
  end
  -- A reader parked in next() sees the end; nothing stays in the scheduler.
  sched.wake(self.id, false)
  sched.forget(self.id)
end

local function expired(rv, compacted)
  return status(410, "Expired", string.format("too old resource version: %s (%d)", rv, compacted))
end

-- Ends a stream from the server side: ERROR event (if st) then end.
local function finish(self, s, st, as_event)
  for i, w in ipairs(self.watchers) do
    if w == s then
      table.remove(self.watchers, i)
      break
    end
  end
  if st and as_event then
    post(self, s, { type = "ERROR", object = st })
    post(self, s, false)
  else
    post(self, s, false, st)
  end
end

function Fake:watch(kind, opts)
  opts = opts or {}
  local err = enter(self, "watch")
  if err then return nil, err end
  local s = setmetatable({ fake = self, id = loop.next_id(), kind = kind,
                           namespace = opts.namespace,
                           sel = parse_selector(opts.label_selector) }, Stream)
  local from = tonumber(opts.resource_version)
  if from and from < self.compacted then
    if self.expired_as == "status" then return nil, expired(opts.resource_version, self.compacted) end
    finish(self, s, expired(opts.resource_version, self.compacted), true)
    return s
  end
  self.watchers[#self.watchers + 1] = s
  -- A revision resumes: everything after it is replayed first. Unlike the
  -- real "0" (any revision), every number here is exact: the fake starts
  -- at revision 0 and list hands that out for an empty store.
  if from then
    for _, h in ipairs(self.history) do
      if h.rv > from and h.kind == kind and matches(s, h.object) then
        post(self, s, { type = h.type, object = copy(h.object) })
      end
    end
  end
  return s
end

local function fill_meta(self, kind, obj)
  local md = obj.metadata
  if not md.name or md.name == "" then
    if not md.generateName then return status(422, "Invalid", "metadata.name: Required value") end
    self.uids = self.uids + 1
    md.name = string.format("%s%05x", md.generateName, self.uids)
  end
  self.uids = self.uids + 1
  md.uid = string.format("00000000-0000-4000-8000-%012x", self.uids)
  md.creationTimestamp = stamp()
  md.generation = 1
  local parts = {}
  for p in kind:gmatch("[^/]+") do parts[#parts + 1] = p end
  obj.kind = parts[#parts]
  obj.apiVersion = #parts == 3 and parts[1] .. "/" .. parts[2] or parts[1]
end

function Fake:create(kind, obj)
  local err = enter(self, "create")
  if err then return nil, err end
  obj = copy(obj)
  obj.metadata = obj.metadata or {}
  local bad = fill_meta(self, kind, obj)
  if bad then return nil, bad end
  local key = key_of(obj.metadata.namespace, obj.metadata.name)
  local b = bucket(self, kind)
  if b[key] then
    return nil, status(409, "AlreadyExists",
      string.format('%s "%s" already exists', resource_name(kind), obj.metadata.name))
  end
  bump(self, obj)
  b[key] = obj
  emit(self, kind, "ADDED", obj)
  return copy(obj)
end

-- Spec-side change: generation moves when anything but metadata/status did.
local function spec_changed(old, new)
  for k, v in pairs(new) do
    if k ~= "metadata" and k ~= "status" and not equal(v, old[k]) then return true end
  end
  for k in pairs(old) do
    if k ~= "metadata" and k ~= "status" and new[k] == nil then return true end
  end
  return false
end

local function conflict(kind, name)
  return status(409, "Conflict", string.format(
    'Operation cannot be fulfilled on %s "%s": the object has been modified; ' ..
    "please apply your changes to the latest version and try again", resource_name(kind), name))
end

-- Writes `new` over the stored object; status_only picks the subresource.
local function write(self, kind, new, status_only)
  local md = new.metadata or {}
  local key = key_of(md.namespace, md.name)
  local b = bucket(self, kind)
  local old = b[key]
  if not old then return nil, not_found(kind, md.name) end
  if md.resourceVersion and md.resourceVersion ~= "" and md.resourceVersion ~= old.metadata.resourceVersion then
    return nil, conflict(kind, md.name)
  end
  local obj
  if status_only then
    obj = copy(old)
    obj.status = copy(new.status)
  else
    obj = copy(new)
    obj.status = copy(old.status)
    for _, f in ipairs({ "uid", "creationTimestamp", "generation", "deletionTimestamp" }) do
      obj.metadata[f] = old.metadata[f]
    end
    obj.kind, obj.apiVersion = old.kind, old.apiVersion
    if spec_changed(old, obj) then obj.metadata.generation = (old.metadata.generation or 1) + 1 end
  end
  if equal(obj, old) then return copy(old) end
  -- Finalizers gone from an object being deleted: it goes now.
  if obj.metadata.deletionTimestamp and not next(obj.metadata.finalizers or {}) then
    b[key] = nil
    bump(self, obj)
    emit(self, kind, "DELETED", obj)
    return copy(obj)
  end
  bump(self, obj)
  b[key] = obj
  emit(self, kind, "MODIFIED", obj)
  return copy(obj)
end

function Fake:update(kind, obj)
  local err = enter(self, "update")
  if err then return nil, err end
  return write(self, kind, obj, false)
end

function Fake:update_status(kind, obj)
  local err = enter(self, "update_status")
  if err then return nil, err end
  return write(self, kind, obj, true)
end

-- RFC 7386 JSON merge patch.
local function merge_patch(target, patch)
  if type(patch) ~= "table" or patch[1] ~= nil then return copy(patch) end
  if type(target) ~= "table" then target = {} end
  for k, v in pairs(patch) do
    if v == M.null then target[k] = nil else target[k] = merge_patch(target[k], v) end
  end
  return target
end

-- RFC 6902 JSON patch: add, replace, remove, test (pointers into tables;
-- array indexes are 0-based as in JSON, "-" appends).
local function json_patch(doc, ops)
  for _, op in ipairs(ops) do
    local segs = {}
    for seg in (op.path or ""):gmatch("/([^/]*)") do
      segs[#segs + 1] = seg:gsub("~1", "/"):gsub("~0", "~")
    end
    local parent = doc
    for i = 1, #segs - 1 do
      local s = segs[i]
      parent = parent[tonumber(s) and #parent > 0 and tonumber(s) + 1 or s]
      if type(parent) ~= "table" then return nil, "path not found: " .. op.path end
    end
    local last = segs[#segs]
    local is_array = parent[1] ~= nil or last == "-"
    local idx = last == "-" and #parent + 1 or (is_array and tonumber(last) and tonumber(last) + 1) or last
    if op.op == "add" then
      if is_array and type(idx) == "number" then table.insert(parent, idx, copy(op.value))
      else parent[idx] = copy(op.value) end
    elseif op.op == "replace" then
      if parent[idx] == nil then return nil, "path not found: " .. op.path end
      parent[idx] = copy(op.value)
    elseif op.op == "remove" then
      if parent[idx] == nil then return nil, "path not found: " .. op.path end
      if is_array and type(idx) == "number" then table.remove(parent, idx) else parent[idx] = nil end
    elseif op.op == "test" then
      if not equal(parent[idx], op.value) then return nil, "test failed: " .. op.path end
    else
      return nil, "unsupported op " .. tostring(op.op)
    end
  end
  return doc
end

--- "merge" and "strategic" apply a JSON merge patch (strategic list
--- merging is not modelled), "json" an RFC 6902 patch.
function Fake:patch(kind, namespace, name, ptype, patch)
  local err = enter(self, "patch")
  if err then return nil, err end
  local cur = bucket(self, kind)[key_of(namespace, name)]
  if not cur then return nil, not_found(kind, name) end
  local doc, perr
  if ptype == "json" then
    doc, perr = json_patch(copy(cur), patch)
  elseif ptype == "merge" or ptype == "strategic" then
    doc = merge_patch(copy(cur), patch)
  else
    return nil, status(415, "UnsupportedMediaType", "unsupported patch type " .. tostring(ptype))
  end
  if not doc then return nil, status(422, "Invalid", perr) end
  doc.metadata.resourceVersion = nil
  return write(self, kind, doc, false)
end

--- Deletes at once, or marks deletionTimestamp while finalizers remain.
function Fake:delete(kind, namespace, name, _opts)
  local err = enter(self, "delete")
  if err then return nil, err end
  local b = bucket(self, kind)
  local key = key_of(namespace, name)
  local cur = b[key]
  if not cur then return nil, not_found(kind, name) end
  local obj = copy(cur)
  if next(obj.metadata.finalizers or {}) then
    if not obj.metadata.deletionTimestamp then
      obj.metadata.deletionTimestamp = stamp()
      bump(self, obj)
      b[key] = obj
      emit(self, kind, "MODIFIED", obj)
    end
    return copy(obj)
  end
  b[key] = nil
  bump(self, obj)
  emit(self, kind, "DELETED", obj)
  return copy(obj)
end

-- {====== test controls (never yield)

--- Snapshot of a stored object, without a round trip.
function Fake:peek(kind, namespace, name)
  return copy(bucket(self, kind)[key_of(namespace, name)])
end

--- Stored objects of kind, sorted by key.
function Fake:objects(kind)
  local keys = {}
  for k in pairs(bucket(self, kind)) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for i, k in ipairs(keys) do out[i] = copy(self.objs[kind][k]) end
  return out
end

--- Drops the event history: watches from older revisions now get 410.
function Fake:compact()
  self.history = {}
  self.compacted = self.rv
end

--- Ends every open watch with 410 Expired (as an ERROR event, or as
--- nil + status with as_status) after compacting the history.
function Fake:expire_watches(as_status)
  self:compact()
  local ws = self.watchers
  for i = #ws, 1, -1 do
    finish(self, ws[i], expired(tostring(self.rv), self.compacted), not as_status)
  end
end

--- Ends every open watch cleanly (as a server timeout would).
function Fake:end_watches()
  local ws = self.watchers
  for i = #ws, 1, -1 do finish(self, ws[i], nil) end
end

--- Number of open watch streams.
function Fake:open_watches() return #self.watchers end

-- }======

--- A unique value for "delete this key" in merge patches (JSON null).
M.null = setmetatable({}, { __tostring = function() return "null" end })

--- sched.run with a 1 ms repeating tick. It works around two gaps of
--- ml_loop_run (core/loop.c) reported to the lead: events posted by timer
--- callbacks wait for the next poll timeout when another timer is armed,
--- and the loop ends when the last timer fired even though Lua armed a new
--- one in the same turn. Harmless once those are fixed.
function M.run(fn, ...)
  local tick = loop.timer(1, function() end, 1)
  local r = table.pack(pcall(sched.run, fn, ...))
  tick.stop()
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

return M
