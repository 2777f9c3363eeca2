-- moonlet.api.patch.jsonpatch: JSON patch (RFC 6902) with JSON pointers
-- (RFC 6901), behaving and worded as the Kubernetes API server answers
-- application/json-patch+json: it applies patches with evanphx/json-patch
-- v4 and returns that library's error text with status 422.
--
-- Where v4 is laxer than the RFC we follow Kubernetes, since clients are
-- written against it: `replace` of an absent object member sets it, `test`
-- of an absent member succeeds when the expected value is null, `copy` from
-- an absent member copies null, negative array indices count from the end,
-- and the root pointer "" is accepted only by `replace` and `test`.
local V = require("moonlet.api.patch.value")
local json = require("moonlet.json")

local null, kind, copy, equal = V.null, V.kind, V.copy, V.equal
local fail = V.fail

local M = {}

--- Most operations one patch may carry (apiserver maxJSONPatchOperations).
M.MAX_OPERATIONS = 10000

--- Most bytes the copies of one patch may add (kube-apiserver's
--- JSONPatchMaxCopyBytes, v4's AccumulatedCopySizeLimit): without it, 40
--- copies of an array into itself double it 40 times.
M.MAX_COPY_BYTES = 3 * 1024 * 1024

-- Bytes copied so far by the patch being applied (apply never yields).
local copied = 0

local MISSING = "missing value"
local BAD_INDEX = "invalid index referenced"

-- Errors inside container operations come back as strings, then get
-- wrapped the way pkg/errors.Wrapf does: "context: cause".
local function wrap(context, cause)
  return context .. ": " .. cause
end

local function decode_token(s)
  -- RFC 6901: ~1 first, then ~0, so "~01" means "~1" and not "/"
  return (s:gsub("~1", "/"):gsub("~0", "~"))
end

-- strings.Split(path, "/") semantics: "" -> {""}, "/a" -> {"", "a"}.
local function split(path)
  local parts, start = {}, 1
  while true do
    local i = path:find("/", start, true)
    if not i then
      parts[#parts + 1] = path:sub(start)
      return parts
    end
    parts[#parts + 1] = path:sub(start, i - 1)
    start = i + 1
  end
end

-- strconv.Atoi: optional sign, decimal digits.
local function atoi(s)
  if s:match("^[+-]?%d+$") and #s < 19 then
    return math.tointeger(tonumber(s))
  end
  return nil, string.format('strconv.Atoi: parsing "%s": invalid syntax', s)
end

local function invalid_index(idx)
  return wrap(string.format("Unable to access invalid index: %d", idx),
              BAD_INDEX)
end

-- {====== containers: get / set / add / remove on an object or array
-- Arrays are addressed with 0-based indices, as in the pointer text.

local function get(c, key)
  if kind(c) == "object" then return c[key] end
  local idx, err = atoi(key)
  if not idx then return nil, err end
  if idx < 0 then
    if idx < -#c then return nil, invalid_index(idx) end
    idx = idx + #c
  end
  if idx >= #c then return nil, invalid_index(idx) end
  return c[idx + 1]
end

local function set(c, key, val)
  if kind(c) == "object" then
    c[key] = val
    return true
  end
  local idx, err = atoi(key)
  if not idx then return nil, err end
  if idx < 0 then idx = idx + #c end
  c[idx + 1] = val
  return true
end

local function add(c, key, val)
  if kind(c) == "object" then
    c[key] = val
    return true
  end
  if key == "-" then
    c[#c + 1] = val
    return true
  end
  local idx, err = atoi(key)
  if not idx then
    return nil, wrap(string.format("value was not a proper array index: '%s'",
                                   key), err)
  end
  local size = #c + 1
  if idx >= size then return nil, invalid_index(idx) end
  if idx < 0 then
    if idx < -size then return nil, invalid_index(idx) end
    idx = idx + size
  end
  table.insert(c, idx + 1, val)
  return true
end

local function remove(c, key)
  if kind(c) == "object" then
    if c[key] == nil then
      return nil, wrap("Unable to remove nonexistent key: " .. key, MISSING)
    end
    c[key] = nil
    return true
  end
  local idx, err = atoi(key)
  if not idx then return nil, err end
  if idx >= #c then return nil, invalid_index(idx) end
  if idx < 0 then
    if idx < -#c then return nil, invalid_index(idx) end
    idx = idx + #c
  end
  table.remove(c, idx + 1)
  return true
end

-- }======

-- Resolves all but the last token of `path`; returns the container holding
-- the target and the decoded last token, or nil when a step is missing.
local function find(doc, path)
  if type(path) ~= "string" then return nil end
  local parts = split(path)
  if #parts < 2 then return nil end
  local cur = doc
  for i = 2, #parts - 1 do
    local nxt, err = get(cur, decode_token(parts[i]))
    if nxt == nil or err then return nil end
    local k = kind(nxt)
    if k ~= "object" and k ~= "array" then return nil end
    cur = nxt
  end
  return cur, decode_token(parts[#parts])
end

-- An operation's "value" member; absent reads as null, as in v4.
local function value_of(op)
  local v = op.value
  if v == nil then return null end
  return copy(v)
end

local ops = {}

function ops.add(doc, op)
  local path = op.path
  if type(path) ~= "string" then
    fail(422, wrap("add operation failed to decode path", MISSING))
  end
  local c, key = find(doc, path)
  if not c then
    fail(422, wrap(string.format('add operation does not apply: doc is ' ..
                                 'missing path: "%s"', path), MISSING))
  end
  local ok, err = add(c, key, value_of(op))
  if not ok then
    fail(422, wrap(string.format("error in add for path: '%s'", path), err))
  end
  return doc
end

function ops.remove(doc, op)
  local path = op.path
  if type(path) ~= "string" then
    fail(422, wrap("remove operation failed to decode path", MISSING))
  end
  local c, key = find(doc, path)
  if not c then
    fail(422, wrap(string.format('remove operation does not apply: doc is ' ..
                                 'missing path: "%s"', path), MISSING))
  end
  local ok, err = remove(c, key)
  if not ok then
    fail(422, wrap(string.format("error in remove for path: '%s'", path), err))
  end
  return doc
end

function ops.replace(doc, op)
  local path = op.path
  if type(path) ~= "string" then
    fail(422, wrap("replace operation failed to decode path",
                   wrap("operation missing path field", MISSING)))
  end
  if path == "" then
    local v = value_of(op)
    local k = kind(v)
    if k ~= "object" and k ~= "array" then
      fail(422, "replace operation value must be object or array")
    end
    return v
  end
  local c, key = find(doc, path)
  if not c then
    fail(422, wrap("replace operation does not apply: doc is missing path: "
                   .. path, MISSING))
  end
  local _, err = get(c, key)
  if err then
    fail(422, wrap("replace operation does not apply: doc is missing key: "
                   .. path, MISSING))
  end
  local ok
  ok, err = set(c, key, value_of(op))
  if not ok then
    fail(422, wrap(string.format("error in remove for path: '%s'", path), err))
  end
  return doc
end

function ops.move(doc, op)
  local from = op.from
  if type(from) ~= "string" then
    fail(422, wrap("move operation failed to decode from",
                   wrap("operation, missing from field", MISSING)))
  end
  local c, key = find(doc, from)
  if not c then
    fail(422, wrap("move operation does not apply: doc is missing from path: "
                   .. from, MISSING))
  end
  local val, err = get(c, key)
  if err then
    fail(422, wrap(string.format("error in move for path: '%s'", key), err))
  end
  local ok
  ok, err = remove(c, key)
  if not ok then
    fail(422, wrap(string.format("error in move for path: '%s'", key), err))
  end
  local path = op.path
  if type(path) ~= "string" then
    fail(422, wrap("move operation failed to decode path",
                   wrap("operation missing path field", MISSING)))
  end
  c, key = find(doc, path)
  if not c then
    fail(422, wrap("move operation does not apply: doc is missing " ..
                   "destination path: " .. path, MISSING))
  end
  ok, err = add(c, key, val)
  if not ok then
    fail(422, wrap(string.format("error in move for path: '%s'", path), err))
  end
  return doc
end

function ops.test(doc, op)
  local path = op.path
  if type(path) ~= "string" then
    fail(422, wrap("test operation failed to decode path",
                   wrap("operation missing path field", MISSING)))
  end
  local expected = op.value
  if expected == nil then expected = null end
  local failed = wrap(string.format("testing value %s failed", path),
                      "test failed")
  if path == "" then
    if not equal(doc, expected) then fail(422, failed) end
    return doc
  end
  local c, key = find(doc, path)
  if not c then
    fail(422, wrap("test operation does not apply: is missing path: " .. path,
                   MISSING))
  end
  local val, err = get(c, key)
  if err then
    fail(422, wrap(string.format("error in test for path: '%s'", path), err))
  end
  if val == nil or val == null then
    if expected == null then return doc end
    fail(422, failed)
  end
  if not equal(val, expected) then fail(422, failed) end
  return doc
end

function ops.copy(doc, op)
  local from = op.from
  if type(from) ~= "string" then
    fail(422, wrap("copy operation failed to decode from",
                   wrap("operation, missing from field", MISSING)))
  end
  local c, key = find(doc, from)
  if not c then
    fail(422, wrap("copy operation does not apply: doc is missing from path: "
                   .. from, MISSING))
  end
  local val, err = get(c, key)
  if err then
    fail(422, wrap(string.format("error in copy for from: '%s'", from), err))
  end
  if val == nil then val = null end
  local path = op.path
  if type(path) ~= "string" then
    fail(422, wrap("copy operation failed to decode path", MISSING))
  end
  c, key = find(doc, path)
  if not c then
    fail(422, wrap("copy operation does not apply: doc is missing " ..
                   "destination path: " .. path, MISSING))
  end
  -- v4 counts the copy's JSON text, as json.Marshal writes it.
  copied = copied + #json.encode(val)
  if copied > M.MAX_COPY_BYTES then
    fail(422, "Unable to complete the copy, the accumulated size increase of copy is %d, "
      .. "exceeding the limit %d", copied, M.MAX_COPY_BYTES)
  end
  local ok
  ok, err = add(c, key, copy(val))
  if not ok then
    fail(422, wrap("error while adding value during copy", err))
  end
  return doc
end

--- Applies `operations` (a decoded JSON array of operation objects) to a
--- copy of `target`. Raises a refusal (see value.protect) on failure.
function M.apply(target, operations)
  if type(operations) ~= "table"
      or (kind(operations) ~= "array" and next(operations) ~= nil) then
    fail(400, "json: cannot unmarshal %s into Go value of type " ..
              "jsonpatch.Patch", kind(operations) or "null")
  end
  for _, op in ipairs(operations) do
    if kind(op) ~= "object" then
      fail(400, "json: cannot unmarshal %s into Go value of type " ..
                "jsonpatch.Operation", kind(op))
    end
  end
  if #operations > M.MAX_OPERATIONS then
    fail(413, "The allowed maximum operations in a JSON patch is %d, got %d",
         M.MAX_OPERATIONS, #operations)
  end
  local k = kind(target)
  if k ~= "object" and k ~= "array" then
    fail(400, "json: cannot unmarshal %s into Go value of type " ..
              "jsonpatch.partialDoc", k or "null")
  end
  local doc = copy(target)
  copied = 0
  for _, op in ipairs(operations) do
    local name = type(op.op) == "string" and op.op or "unknown"
    local fn = ops[name]
    if not fn then fail(422, "Unexpected kind: %s", name) end
    doc = fn(doc, op)
  end
  return doc
end

return M
