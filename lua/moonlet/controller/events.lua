-- moonlet.controller.events: the event recorder behind ctx:event. Writes a
-- core v1 Event about an object through the API client, shaped as
-- client-go's recorder makes a new one (name <object>.<hex unix nanos>,
-- count 1, first = last timestamp); repeats are aggregated by the server.
-- An asynchronous recorder (client-go's is: Eventf hands the event to a
-- broadcaster and returns) queues the event in the process's sink, which
-- writes it when the loop has nothing else to do, under constant work
-- after max_delay_ms (0.5 s) and surely by twice that, and at flush()
-- (controller manager stop).
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local util = require("moonlet.controller.util")

local M = {
  -- How long an event waits in the sink for an idle loop; past it the sink
  -- writes a slice every turn, and everything once twice as late.
  max_delay_ms = 500,
  -- Writes in one go once the loop is idle, before it looks again: a
  -- request arriving meanwhile waits at most about this long.
  slice_ms = 2,
  -- Writes in one turn once events are past their deadline (a busy loop):
  -- the rest of the turn's work gets the drain budget (50 ms) first.
  overdue_slice_ms = 20,
}
local Recorder = {}
Recorder.__index = Recorder

-- The last second formatted: events come in bursts within one second.
local ts_second, ts_text

--- RFC 3339 UTC timestamp with second precision, as metav1.Time encodes.
function M.timestamp(seconds)
  local s = math.floor(seconds)
  if s ~= ts_second then
    ts_second, ts_text = s, os.date("!%Y-%m-%dT%H:%M:%SZ", s)
  end
  return ts_text
end

-- A DNS-1123 subdomain: what an object name must be.
local function valid_name(name)
  return #name <= 253 and name:match("^[a-z0-9][-a-z0-9.]*$") ~= nil
    and name:match("[a-z0-9]$") ~= nil
end

local function random_uuid()
  local t = {}
  for i = 1, 16 do t[i] = math.random(0, 255) end
  t[7] = (t[7] & 0x0f) | 0x40
  t[9] = (t[9] & 0x3f) | 0x80
  return string.format("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
    table.unpack(t))
end

--- Event name for an object (client-go GenerateEventName): the object's
--- name, a dot and the lowercase hex of unix nanoseconds; a UUID when that
--- is not a valid object name.
function M.event_name(obj_name, nanos)
  local name = string.format("%s.%x", obj_name, nanos)
  if valid_name(name) then return name end
  return random_uuid()
end

--- Creates a recorder. opts: client, component (source.component), host
--- (source.host, optional), clock() -> unix seconds (float), async (true:
--- event() queues in the sink and returns at once), log(level, msg) (the
--- sink's failed writes, at debug).
function M.new(opts)
  assert(opts and opts.client, "events: client required")
  return setmetatable({
    client = opts.client,
    component = opts.component or "moonlet",
    host = opts.host,
    clock = opts.clock or loop.time,
    async = opts.async == true,
    log = opts.log,
    last_nanos = 0,
  }, Recorder)
end

-- Unix nanoseconds from the clock, strictly increasing per recorder so two
-- events in one clock tick still get distinct names.
local function nanos(self, now)
  local whole = math.floor(now)
  local n = whole * 1000000000 + math.floor((now - whole) * 1e9)
  if n <= self.last_nanos then n = self.last_nanos + 1 end
  self.last_nanos = n
  return n
end

local function check(type_, reason)
  if type_ ~= "Normal" and type_ ~= "Warning" then
    error("events: type must be Normal or Warning, got " .. tostring(type_), 4)
  end
  assert(type(reason) == "string" and reason ~= "", "events: reason required")
end

-- The Event for the involved object's fields at clock time `now`.
local function make(self, api_version, kind, md, type_, reason, message, now)
  local ts = M.timestamp(now)
  -- Events about cluster-scoped objects live in "default", as upstream.
  local ns = (md.namespace and md.namespace ~= "") and md.namespace or "default"
  return {
    apiVersion = "v1",
    kind = "Event",
    metadata = { name = M.event_name(md.name or "unknown", nanos(self, now)), namespace = ns },
    involvedObject = {
      apiVersion = api_version, kind = kind, name = md.name,
      namespace = md.namespace, uid = md.uid, resourceVersion = md.resourceVersion,
    },
    reason = reason,
    message = message or "",
    type = type_,
    source = { component = self.component, host = self.host },
    reportingComponent = self.component,
    reportingInstance = self.host or "",
    firstTimestamp = ts,
    lastTimestamp = ts,
    count = 1,
  }
end

--- The Event object the recorder would write for obj (not sent).
function Recorder:build(obj, type_, reason, message)
  check(type_, reason)
  return make(self, obj.apiVersion, obj.kind, obj.metadata or {}, type_, reason, message, self.clock())
end

-- Writes one Event; never raises. @return true | nil, status
local function write(c, ev)
  local ok, res, st = pcall(util.write_unread, c, "v1/Event", ev.metadata.namespace, nil, nil, "POST", ev, nil,
    function() return c:create("v1/Event", ev) end)
  if not ok then return nil, { code = 500, reason = "InternalError", message = tostring(res) } end
  if not res then return nil, st end
  return true
end

--- Writes an event about obj now, in the caller's coroutine. Misuse (bad
--- type) raises; an API failure is returned, never raised: a lost event
--- must not fail a reconcile. The stored Event that the API answers is not
--- decoded (nobody reads it: it cost a decode of the whole Event per event).
--- @return true | nil, status
function Recorder:write(obj, type_, reason, message)
  return write(self.client, self:build(obj, type_, reason, message))
end

-- {====== the sink

-- One queue per process, in record order: { rec, at (loop ms), ... } with
-- the fields to build the Event from (the involved object's identity, read
-- now: the caller may change obj later; the clock time).
local sink = { items = {}, head = 1, tail = 0, running = false, inflight = 0, written = 0, failed = 0 }

local function pop()
  local i = sink.head
  local item = sink.items[i]
  if not item then return nil end
  sink.items[i] = nil
  sink.head = i + 1
  return item
end

local function write_item(item)
  local rec = item.rec
  local ev = make(rec, item.api, item.kind, item, item.type, item.reason, item.message, item.now)
  sink.inflight = sink.inflight + 1
  local ok, st = write(rec.client, ev)
  sink.inflight = sink.inflight - 1
  if ok then
    sink.written = sink.written + 1
  else
    sink.failed = sink.failed + 1
    if rec.log then
      rec.log("debug", string.format("event %s %s: %s", ev.involvedObject.name or "", ev.reason,
        tostring(st and st.message)))
    end
  end
end

-- The sink's coroutine: waits for an idle loop (or the oldest event's
-- deadline), writes a slice, and looks again until the queue is empty.
-- Past the deadline it writes a longer slice every turn, and everything
-- overdue at once when it falls a whole delay behind, so the delay stays
-- bounded however busy the loop is (without one long stall per second).
local function drain()
  while sink.items[sink.head] do
    local left = sink.items[sink.head].at + M.max_delay_ms - loop.now()
    local slice = M.slice_ms
    if left > 0 then
      sink.wait_id = loop.next_id()
      if not loop.idle(left, sink.wait_id) then slice = M.overdue_slice_ms end
      sink.wait_id = nil
    else
      slice = M.overdue_slice_ms
      loop.sleep(0)
    end
    local stop_at = loop.hrtime() + slice * 1e6
    while true do
      local item = sink.items[sink.head]
      if not item then break end
      if loop.now() - item.at < 2 * M.max_delay_ms and loop.hrtime() >= stop_at then break end
      write_item(pop())
    end
  end
end

local function run()
  local ok, err = pcall(drain)
  -- Whatever happened, the next event starts a sink again.
  sink.running = false
  if not ok then error(err, 0) end
end

local function enqueue(item)
  item.at = loop.now()
  sink.tail = sink.tail + 1
  sink.items[sink.tail] = item
  if not sink.running then
    sink.running = true
    sched.spawn("event sink", run)
  end
end

--- Records an event about obj: written now (see write) by a synchronous
--- recorder, queued in the sink by an asynchronous one (which returns true
--- at once and logs a failed write at debug). Misuse (bad type) raises.
--- @return true | nil, status
function Recorder:event(obj, type_, reason, message)
  if not self.async then return self:write(obj, type_, reason, message) end
  check(type_, reason)
  local md = obj.metadata or {}
  -- (the item carries the object's identity as make reads metadata)
  enqueue({ rec = self, api = obj.apiVersion, kind = obj.kind, type = type_, reason = reason, message = message,
    now = self.clock(), name = md.name, namespace = md.namespace, uid = md.uid,
    resourceVersion = md.resourceVersion })
  return true
end

--- Events queued or being written.
function M.pending()
  return sink.tail - sink.head + 1 + sink.inflight
end

--- Counts of the sink: queued, written, failed (for specs and benchmarks).
function M.stats()
  return { queued = sink.tail - sink.head + 1, inflight = sink.inflight, written = sink.written,
    failed = sink.failed }
end

--- Writes every queued event now, in the calling coroutine, and waits (up
--- to `timeout` s, default 5) for a write the sink has in flight.
--- @return true | nil, "timeout"
function M.flush(timeout)
  while true do
    local item = pop()
    if not item then break end
    write_item(item)
  end
  -- A sink parked for an idle turn ends now rather than at that turn.
  if sink.wait_id then sched.wake(sink.wait_id) end
  if sink.inflight == 0 then return true end
  return util.wait_for(function() return sink.inflight == 0 end, timeout or 5, 1)
end

-- }======

return M
