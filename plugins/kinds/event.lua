-- v1 Event, aggregated as Kubernetes' event recorder does: a repeat of the
-- same (involved object, type, reason, message, source) bumps `count` and
-- `lastTimestamp` on the stored Event instead of adding another.
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local validation = require("moonlet.validation")
local duration = require("moonlet.printers.duration")

local ObjectReference = S.struct("v1.ObjectReference", {
  kind = S.string, namespace = S.string, name = S.string, uid = S.string,
  apiVersion = S.string, resourceVersion = S.string, fieldPath = S.string,
})

local index = {} -- dedup key -> event name, per namespace: index[ns][key]
-- The key aggregate computed for an Event being created, for on_created
-- (the same table): the key is built once per create.
local keys = setmetatable({}, { __mode = "k" })

-- (one concatenation, no table per key)
local function dedup_key(e)
  local io, src = e.involvedObject or {}, e.source or {}
  return (io.kind or "") .. "\0" .. (io.namespace or "") .. "\0" .. (io.name or "") .. "\0"
    .. (io.uid or "") .. "\0" .. (io.apiVersion or "") .. "\0" .. (io.fieldPath or "") .. "\0"
    .. (e.type or "") .. "\0" .. (e.reason or "") .. "\0" .. (e.message or "") .. "\0"
    .. (src.component or "") .. "\0" .. (src.host or "")
end

local function ts_or(e, f) return e[f] or e.eventTime end

return {
  group = "", version = "v1", kind = "Event", plural = "events", singular = "event",
  short_names = { "ev" }, namespaced = true,
  field_selectors = {
    "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
    "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
    "reason", "reportingComponent", "type", source = "source.component",
  },
  schema = S.kind("Event", {
    involvedObject = ObjectReference, reason = S.string, message = S.string,
    source = S.struct("v1.EventSource", { component = S.string, host = S.string }),
    firstTimestamp = S.time, lastTimestamp = S.time, count = S.integer, type = S.string,
    eventTime = S.time, series = S.any, action = S.string, related = ObjectReference,
    reportingComponent = S.string, reportingInstance = S.string,
  }),
  defaults = function(obj)
    obj.count = obj.count or 1
    -- (the clock is read only when a timestamp is missing: recorders set both)
    if not obj.firstTimestamp and not obj.eventTime then obj.firstTimestamp = duration.format_rfc3339(os.time()) end
    if not obj.lastTimestamp and obj.firstTimestamp then obj.lastTimestamp = obj.firstTimestamp end
    obj.type = obj.type or "Normal"
  end,
  validate = function(obj, errs)
    local io = obj.involvedObject
    if type(io) ~= "table" then
      errs:add(validation.required("involvedObject", ""))
      return
    end
    if io.namespace and io.namespace ~= "" and io.namespace ~= obj.metadata.namespace then
      errs:add(validation.invalid("involvedObject.namespace", io.namespace,
        "does not match event.namespace"))
    end
    if obj.type ~= "Normal" and obj.type ~= "Warning" then
      errs:add(validation.not_supported("type", obj.type, { "Normal", "Warning" }))
    end
  end,
  -- Returns the stored Event to update when obj repeats one, else nil.
  aggregate = function(obj, store)
    local ns = obj.metadata.namespace
    local byns = index[ns]
    if not byns then
      byns = {}
      index[ns] = byns
      local res = store:list("events", { namespace = ns })
      for _, e in ipairs(res and res.items or {}) do byns[dedup_key(e)] = e.metadata.name end
    end
    local key = dedup_key(obj)
    local name = byns[key]
    local existing = name and store:get("events", ns, name)
    if not existing then
      byns[key] = obj.metadata.name
      keys[obj] = key
      return nil
    end
    existing.count = (existing.count or 1) + (obj.count or 1)
    existing.lastTimestamp = obj.lastTimestamp or duration.format_rfc3339(os.time())
    return existing
  end,
  -- Called with the Event as admitted (its name, fields and dedup key are
  -- the stored ones): the create then answers with the stored JSON text.
  on_created = function(obj)
    local byns = index[obj.metadata.namespace]
    if byns then byns[keys[obj] or dedup_key(obj)] = obj.metadata.name end
    keys[obj] = nil
  end,
  columns = {
    { name = "Last Seen", type = "string", description = "Time since the most recent occurrence",
      value = function(e, now) return duration.since(ts_or(e, "lastTimestamp") or e.firstTimestamp, now) end },
    { name = "Type", type = "string", value = function(e) return e.type end },
    { name = "Reason", type = "string", value = function(e) return e.reason end },
    { name = "Object", type = "string", value = function(e)
      local io = e.involvedObject or {}
      return string.format("%s/%s", (io.kind or ""):lower(), io.name or "") end },
    { name = "Subobject", type = "string", priority = 1,
      value = function(e) return (e.involvedObject or {}).fieldPath or "" end },
    { name = "Source", type = "string", priority = 1, value = function(e)
      local s = e.source or {}
      local c = s.component or e.reportingComponent or ""
      if s.host and s.host ~= "" then return c .. ", " .. s.host end
      return c end },
    { name = "Message", type = "string", value = function(e) return ((e.message or ""):gsub("^%s+", ""):gsub("%s+$", "")) end },
    { name = "First Seen", type = "string", priority = 1,
      value = function(e, now) return duration.since(ts_or(e, "firstTimestamp"), now) end },
    { name = "Count", type = "string", priority = 1, value = function(e) return tostring(e.count or 1) end },
    { name = "Name", type = "string", priority = 1, value = function(e) return e.metadata.name end },
  },
}
