-- moonlet.store: the object store for scripts. Everything but watch streams
-- is the C store itself (moonlet.core.store); this module adds streams that
-- a coroutine reads with :next() (decoded objects) or :next_raw() (JSON).
--
--   local s = assert(store.open{ backend = "memory" })
--   local cm = assert(s:create("configmaps", "default", { metadata = { name = "a" } }))
--   local w = store.watch_stream(s, "configmaps", { resource_version = "0" })
--   local kind, obj = w:next()   -- "ADDED", { metadata = ... }
--   w:close()
local core = require("moonlet.core.store")
local loop = require("moonlet.core.loop")
local json = require("moonlet.json")
local sched = require("moonlet.sched")

local M = {}

--- Opens a store: { backend = "sqlite"|"memory", path = FILE,
--- sync = "full"|"normal"|"off", watch_window = N, watch_window_seconds = S }
--- -> store | nil, err, code.
M.open = core.open

local Stream = {}
Stream.__index = Stream

--- Waits for the next event; returns type, JSON text, or nil once the
--- stream is closed (by :close() or because the store closed).
function Stream:next_raw()
  if self.closed then return nil end
  local kind, text = sched.wait(self.id)
  if not kind then
    self:close()
    return nil
  end
  return kind, text
end

--- Waits for the next event; returns type and the decoded object.
function Stream:next()
  local kind, text = self:next_raw()
  if not kind then return nil end
  return kind, assert(json.decode(text))
end

--- Stops the stream. Events already queued for it are dropped.
function Stream:close()
  if self.closed then return end
  self.closed = true
  local id = self.id
  local queued = self.watcher:close()
  sched.forget(id)
  if queued > 0 then
    -- Each queued event is still delivered once: swallow them, then forget.
    local left = queued
    sched.on(id, function()
      left = left - 1
      if left == 0 then sched.forget(id) end
    end)
  end
end

Stream.__close = Stream.close

--- Watches `resource` ({ namespace=, label_selector=, field_selector=,
--- resource_version= }) -> stream | nil, err, code. resource_version "0"
--- or nil starts with ADDED for every current object.
function M.watch_stream(s, resource, opts)
  local id = loop.next_id()
  local w, err, code = s:watch(id, resource, opts)
  if not w then return nil, err, code end
  return setmetatable({ id = id, watcher = w, closed = false }, Stream)
end

--- The message part of a failure ("ECONFLICT: text" -> "text").
function M.message(err)
  return (tostring(err):gsub("^E%u+: ", ""))
end

return M
