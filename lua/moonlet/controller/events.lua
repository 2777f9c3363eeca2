-- moonlet.controller.events: the event recorder behind ctx:event. Writes a
-- core v1 Event about an object through the API client, shaped as
-- client-go's recorder makes a new one (name <object>.<hex unix nanos>,
-- count 1, first = last timestamp); repeats are aggregated by the server.
local loop = require("moonlet.loop")
local util = require("moonlet.controller.util")

local M = {}
local Recorder = {}
Recorder.__index = Recorder

--- RFC 3339 UTC timestamp with second precision, as metav1.Time encodes.
function M.timestamp(seconds)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(seconds))
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
--- (source.host, optional), clock() -> unix seconds (float).
function M.new(opts)
  assert(opts and opts.client, "events: client required")
  return setmetatable({
    client = opts.client,
    component = opts.component or "moonlet",
    host = opts.host,
    clock = opts.clock or loop.time,
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

--- The Event object the recorder would write for obj (not sent).
function Recorder:build(obj, type_, reason, message)
  if type_ ~= "Normal" and type_ ~= "Warning" then
    error("events: type must be Normal or Warning, got " .. tostring(type_), 3)
  end
  assert(type(reason) == "string" and reason ~= "", "events: reason required")
  local md = obj.metadata or {}
  local now = self.clock()
  local ts = M.timestamp(now)
  -- Events about cluster-scoped objects live in "default", as upstream.
  local ns = (md.namespace and md.namespace ~= "") and md.namespace or "default"
  return {
    apiVersion = "v1",
    kind = "Event",
    metadata = { name = M.event_name(md.name or "unknown", nanos(self, now)), namespace = ns },
    involvedObject = {
      apiVersion = obj.apiVersion, kind = obj.kind, name = md.name,
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

--- Records an event about obj. Misuse (bad type) raises; an API failure is
--- returned, never raised: a lost event must not fail a reconcile. The
--- stored Event that the API answers is not decoded (nobody reads it: it
--- cost a decode of the whole Event per event).
--- @return true | nil, status
function Recorder:event(obj, type_, reason, message)
  local ev = self:build(obj, type_, reason, message)
  local c = self.client
  local ok, res, st = pcall(util.write_unread, c, "v1/Event", ev.metadata.namespace, nil, nil, "POST", ev, nil,
    function() return c:create("v1/Event", ev) end)
  if not ok then return nil, { code = 500, reason = "InternalError", message = tostring(res) } end
  if not res then return nil, st end
  return true
end

return M
