-- moonlet.controller.util: small helpers shared by the controller runtime:
-- object keys, kind names, snapshots (deep copies), label-selector
-- matching, waits that never block the loop, pacing of long work, merge
-- patches between two states and writes whose answer is not decoded.
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local json = require("moonlet.json")

local M = {}

--- "namespace/name" for namespaced objects, "name" for cluster-scoped ones
--- (client-go MetaNamespaceKeyFunc).
function M.key(obj)
  local md = obj.metadata or {}
  local ns = md.namespace
  if ns and ns ~= "" then return ns .. "/" .. (md.name or "") end
  return md.name or ""
end

--- Splits a key back into namespace (nil when cluster-scoped) and name.
function M.split_key(key)
  local ns, name = key:match("^([^/]*)/(.*)$")
  if ns then return ns, name end
  return nil, key
end

--- "apps/v1/ReplicaSet" -> group "apps", version "v1", kind "ReplicaSet",
--- apiVersion "apps/v1"; "v1/Pod" -> group "", version "v1", kind "Pod".
function M.parse_kind(kind)
  local g, v, k = kind:match("^(.+)/([^/]+)/([^/]+)$")
  if not g then
    g = ""
    v, k = kind:match("^([^/]+)/([^/]+)$")
  end
  if not v then error("moonlet: bad kind '" .. tostring(kind) .. "' (want group/version/Kind)", 3) end
  return { group = g, version = v, kind = k, api_version = g == "" and v or g .. "/" .. v }
end

--- The group part of an apiVersion ("apps/v1" -> "apps", "v1" -> "").
function M.api_group(api_version)
  return (api_version or ""):match("^(.*)/[^/]*$") or ""
end

--- Deep copy of a JSON-like value; metatables (array/object markers set by
--- the codec) are kept so the copy encodes the same way. The codec's C
--- copy: informer snapshots are the controllers' most frequent operation.
M.copy = json.copy

-- client -> kind -> resolved resource: the client looks a kind up in its
-- discovery list on every call; these few kinds do not change under it.
local resolved = setmetatable({}, { __mode = "k" })

--- A write whose answer the caller does not read (status writes, events):
--- sent with the client's raw call, so the stored object that comes back
--- is not decoded. `fallback()` (the typed call) serves clients without
--- raw requests (specs' fakes). @return true | nil, Status {code, reason,
--- message}
function M.write_unread(c, kind, ns, name, sub, method, body, ctype, fallback)
  if not (c.raw and c.kind) then return fallback() end
  local byc = resolved[c]
  if not byc then
    byc = {}
    resolved[c] = byc
  end
  local r = byc[kind]
  if not r then
    local st
    r, st = c:kind(kind)
    if not r then return nil, st end
    byc[kind] = r
  end
  -- The table itself: the client encodes it unless its transport (the
  -- in-process one) takes tables.
  local path, perr = require("moonlet.client").path(r, ns, name, sub)
  if not path then return nil, perr end
  local res, err = c:raw(method, path, body, ctype and { ["Content-Type"] = ctype } or nil)
  if not res then return nil, err end
  if res.status < 200 or res.status > 299 then
    local v = json.decode(res.body or "")
    if type(v) ~= "table" then v = {} end
    return nil, { code = res.status, reason = v.reason, message = v.message or res.body }
  end
  return true
end

local NOCHANGE = {}

local function is_object(v)
  return type(v) == "table" and not json.is_array(v)
end

local function diff(old, new)
  if is_object(old) and is_object(new) then
    local out, any = {}, false
    for k in pairs(old) do
      if new[k] == nil then out[k], any = json.null, true end
    end
    for k, v in pairs(new) do
      local d = old[k] == nil and v or diff(old[k], v)
      if d ~= NOCHANGE then out[k], any = d, true end
    end
    return any and out or NOCHANGE
  end
  if M.equal(old, new) then return NOCHANGE end
  return new
end

--- The JSON merge patch (RFC 7386) that turns `old` into `new` (objects
--- without nulls): removed keys become null, changed objects are patched
--- key by key, anything else is sent whole. An empty object when equal.
function M.merge_patch(old, new)
  local d = diff(old or {}, new or {})
  if d == NOCHANGE then return {} end
  return d
end

--- Deep equality of JSON-like values (ignores metatables).
function M.equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, x in pairs(a) do
    if not M.equal(x, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

-- Label selector semantics of metav1.LabelSelectorAsSelector, used until
-- (or when) moonlet.selector is not loadable: matchLabels and the four
-- matchExpressions operators; an empty selector matches everything.
local function table_selector(t)
  local ml = t.matchLabels or t.match_labels or {}
  local exprs = t.matchExpressions or t.match_expressions or {}
  for _, e in ipairs(exprs) do
    local op = e.operator
    if op ~= "In" and op ~= "NotIn" and op ~= "Exists" and op ~= "DoesNotExist" then
      error("moonlet: invalid label selector operator '" .. tostring(op) .. "'", 3)
    end
  end
  local sel = {}
  function sel:matches(labels)
    labels = labels or {}
    for k, v in pairs(ml) do
      if labels[k] ~= v then return false end
    end
    for _, e in ipairs(exprs) do
      local have = labels[e.key]
      local inset = false
      for _, v in ipairs(e.values or {}) do
        if v == have then inset = true end
      end
      if e.operator == "In" and not inset then return false end
      if e.operator == "NotIn" and have ~= nil and inset then return false end
      if e.operator == "Exists" and have == nil then return false end
      if e.operator == "DoesNotExist" and have ~= nil then return false end
    end
    return true
  end
  return sel
end

--- Turns a selector argument into an object with :matches(labels): a
--- compiled selector passes through; a LabelSelector table (or a selector
--- string) goes through moonlet.selector when it is loadable, else through
--- the table matcher above. nil stays nil (no filtering).
function M.selector(s)
  if s == nil then return nil end
  if type(s) == "table" and type(s.matches) == "function" then return s end
  local ok, mod = pcall(require, "moonlet.selector")
  if not ok then mod = nil end
  local sel, err
  if type(s) == "string" then
    if not mod then error("moonlet: selector strings need moonlet.selector", 2) end
    sel, err = mod.parse(s)
  elseif type(s) == "table" then
    if not mod then return table_selector(s) end
    sel, err = mod.from_table(s)
  else
    error("moonlet: selector must be a table or a string", 2)
  end
  if not sel then
    local msg = type(err) == "table" and err.aggregate and err:aggregate() or tostring(err)
    error("moonlet: bad label selector: " .. msg, 2)
  end
  return sel
end

--- Polls pred() every `interval_ms` (default 2) until it holds or
--- `timeout` seconds pass. @return true | nil, "timeout"
function M.wait_for(pred, timeout, interval_ms)
  local deadline = loop.hrtime() + (timeout or 5) * 1e9
  while not pred() do
    if loop.hrtime() >= deadline then return nil, "timeout" end
    loop.sleep(interval_ms or 2)
  end
  return true
end

--- A pacer for long chains of work in one coroutine: p:tick() yields to
--- the loop (one turn) once the coroutine has run `ms` (default 10) since
--- it started or last yielded; p:reset() restarts the count (after the
--- caller waited anyway). In-process API calls never yield by themselves,
--- so a slow-start batch of hundreds of creates or a scheduler binding
--- every pending pod would otherwise hold the loop until the end: no
--- socket, timer or process exit served, no pod started meanwhile.
--- @return true when tick() yielded
function M.pacer(ms)
  local budget = (ms or 10) * 1e6
  local p = { since = loop.hrtime() }
  function p:tick()
    if loop.hrtime() - self.since < budget then return false end
    loop.sleep(0)
    self.since = loop.hrtime()
    return true
  end
  function p:reset() self.since = loop.hrtime() end
  return p
end

--- A sleep that another coroutine can cut short (stop paths must not wait
--- out a 30 s back-off). s:sleep(seconds) yields; s:cancel() wakes it.
function M.sleeper()
  local s = {}
  function s:sleep(seconds)
    local id = loop.next_id()
    self.id = id
    self.timer = loop.timer(math.max(0, math.ceil(seconds * 1000)), function()
      sched.dispatch(id)
    end)
    sched.wait(id)
    self.id, self.timer = nil, nil
  end
  function s:cancel()
    local id, timer = self.id, self.timer
    if not id then return end
    self.id, self.timer = nil, nil
    timer.stop()
    sched.wake(id)
  end
  return s
end

return M
