-- Decodes Kubernetes protobuf request bodies (application/vnd.kubernetes.protobuf:
-- "k8s\0" + runtime.Unknown{typeMeta, raw}) into the Lua shape moonlet.json
-- gives for the same object, so handlers cannot tell the two apart. Field
-- numbers come from moonlet.api.proto_schema; malformed input is an error
-- (nil, message), never a Lua error.
local json = require("moonlet.json")
local proto_schema = require("moonlet.api.proto_schema")
local status = require("moonlet.api.status")
local request = require("moonlet.api.request")

local M = {}

M.MAGIC = "k8s\0"
-- Nesting deeper than any Kubernetes object needs is refused, so a hostile
-- schema or body cannot exhaust the C stack.
M.MAX_DEPTH = 64

local byte, sub, unpack, format = string.byte, string.sub, string.unpack, string.format

-- Errors inside the decoder are thrown as a table and turned into nil, msg
-- at the top; any other error is a bug and propagates.
local Fail = {}
local function fail(msg, ...) error(setmetatable({ msg = format(msg, ...) }, Fail), 0) end

local function varint(buf, pos, lim)
  local v, shift = 0, 0
  while true do
    if shift >= 64 then fail("proto: integer overflow") end
    if pos > lim then fail("unexpected EOF") end
    local b = byte(buf, pos)
    pos = pos + 1
    v = v | ((b & 0x7f) << shift)
    if b < 0x80 then return v, pos end
    shift = shift + 7
  end
end

-- Reads a length prefix; returns the first and last byte of the payload.
local function span(buf, pos, lim)
  local n
  n, pos = varint(buf, pos, lim)
  if n < 0 then fail("proto: negative length found during unmarshaling") end
  if n > lim - pos + 1 then fail("unexpected EOF") end
  return pos, pos + n - 1
end

-- Skips a value of wire type wt; returns the position after it.
local function skip(buf, pos, lim, wt)
  if wt == 0 then
    local _
    _, pos = varint(buf, pos, lim)
    return pos
  elseif wt == 1 or wt == 5 then
    local n = wt == 1 and 8 or 4
    if n > lim - pos + 1 then fail("unexpected EOF") end
    return pos + n
  elseif wt == 2 then
    local _, e = span(buf, pos, lim)
    return e + 1
  end
  fail("proto: illegal wireType %d", wt)
end

-- Reads a field key; returns field number, wire type, position after it.
local function key(buf, pos, lim, msg)
  local k
  k, pos = varint(buf, pos, lim)
  local num, wt = k >> 3, k & 7
  if num <= 0 or num > 0x1fffffff then
    fail("proto: %s: illegal tag %d (wire type %d)", msg, num, wt)
  end
  return num, wt, pos
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = byte(s, i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    local q = {}
    for j = 1, 4 do
      local k = (n >> (6 * (4 - j))) & 63
      q[j] = sub(B64, k + 1, k + 1)
    end
    if not b then q[3], q[4] = "=", "="
    elseif not c then q[4] = "=" end
    out[#out + 1] = table.concat(q)
  end
  return table.concat(out)
end
M.base64 = base64

-- Proleptic Gregorian date of a day count from 1970-01-01 (the well-known
-- era-based civil-from-days arithmetic).
local function civil(days)
  local z = days + 719468
  local era = z // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  return yoe + era * 400 + (m <= 2 and 1 or 0), m, d
end

--- RFC 3339 UTC text of Unix seconds + nanoseconds, as metav1.Time
--- (micro=false: whole seconds) or metav1.MicroTime (micro=true) marshal it.
function M.rfc3339(secs, nanos, micro)
  secs = secs + nanos // 1000000000
  nanos = nanos % 1000000000
  local y, mo, d = civil(secs // 86400)
  local s = secs % 86400
  local text = format("%04d-%02d-%02dT%02d:%02d:%02d", y, mo, d, s // 3600, s // 60 % 60, s % 60)
  if micro then text = text .. format(".%06d", nanos // 1000) end
  return text .. "Z"
end

-- Go's time.Duration.String(): fractional digits without trailing zeros.
local function frac(v, prec)
  local s, shown = "", false
  for _ = 1, prec do
    local digit = v % 10
    shown = shown or digit ~= 0
    if shown then s = digit .. s end
    v = v // 10
  end
  return v, shown and ("." .. s) or ""
end

--- The text Go's time.Duration prints for ns nanoseconds ("1h2m3.5s").
function M.duration(ns)
  if ns == 0 then return "0s" end
  if ns == math.mininteger then return "-2562047h47m16.854775808s" end
  local neg, u = ns < 0, math.abs(ns)
  local out
  if u < 1000 then out = u .. "ns"
  elseif u < 1000000 then
    local i, f = frac(u, 3)
    out = i .. f .. "µs"
  elseif u < 1000000000 then
    local i, f = frac(u, 6)
    out = i .. f .. "ms"
  else
    local i, f = frac(u, 9)
    out = (i % 60) .. f .. "s"
    i = i // 60
    if i > 0 then
      out = (i % 60) .. "m" .. out
      i = i // 60
      if i > 0 then out = i .. "h" .. out end
    end
  end
  return neg and ("-" .. out) or out
end

local VARINT = { int32 = true, int64 = true, uint32 = true, uint64 = true, bool = true,
  enum = true, sint32 = true, sint64 = true }
local FIXED = { fixed64 = "<I8", sfixed64 = "<i8", double = "<d", fixed32 = "<I4",
  sfixed32 = "<i4", float = "<f" }

local function int32(v)
  v = v & 0xffffffff
  return v >= 0x80000000 and v - 0x100000000 or v
end

local function uint64(v) return v >= 0 and v or (v + 0.0) + 18446744073709551616.0 end

-- Converts a varint to the Lua value of its declared type.
local function from_varint(t, v)
  if t == "bool" then return v ~= 0 end
  if t == "int32" or t == "enum" then return int32(v) end
  if t == "uint32" then return v & 0xffffffff end
  if t == "uint64" then return uint64(v) end
  if t == "sint32" then return int32((v >> 1) ~ -(v & 1)) end
  if t == "sint64" then return (v >> 1) ~ -(v & 1) end
  return v
end

local function wire_of(t)
  if VARINT[t] then return 0 end
  local f = FIXED[t]
  if f then return (f == "<I8" or f == "<i8" or f == "<d") and 1 or 5 end
  return 2
end

local function text(buf, s, e, what)
  local v = sub(buf, s, e)
  if not utf8.len(v) then fail("proto: invalid UTF-8 in %s", what) end
  return v
end

-- Reads one scalar of type t at pos (wire type already checked); returns
-- value, next position.
local function scalar(buf, pos, lim, t, what)
  if VARINT[t] then
    local v
    v, pos = varint(buf, pos, lim)
    return from_varint(t, v), pos
  end
  local f = FIXED[t]
  if f then
    local n = (f == "<I8" or f == "<i8" or f == "<d") and 8 or 4
    if n > lim - pos + 1 then fail("unexpected EOF") end
    local v = unpack(f, buf, pos)
    if t == "fixed64" then v = uint64(v) end
    if (t == "double" or t == "float") and (v ~= v or v == math.huge or v == -math.huge) then
      fail("proto: %s is not a finite number", what)
    end
    return v, pos + n
  end
  local s, e = span(buf, pos, lim)
  if t == "bytes" then return base64(sub(buf, s, e)), e + 1 end
  return text(buf, s, e, what), e + 1
end

local decode_message

-- The wire shape of the special Kubernetes types (scalars by field number);
-- unknown fields in them are skipped as Kubernetes' own decoders do.
local function scan(buf, pos, lim, name, want)
  local got = {}
  while pos <= lim do
    local num, wt
    num, wt, pos = key(buf, pos, lim, name)
    local t = want[num]
    if t and wt ~= wire_of(t) then
      fail("proto: wrong wireType = %d for field %d of %s", wt, num, name)
    end
    if t == "raw" then
      local s, e = span(buf, pos, lim)
      got[num], pos = sub(buf, s, e), e + 1
    elseif t == "string" then
      local s, e = span(buf, pos, lim)
      got[num], pos = text(buf, s, e, name), e + 1
    elseif t then
      got[num], pos = scalar(buf, pos, lim, t, name)
    else
      pos = skip(buf, pos, lim, wt)
    end
  end
  return got
end

local function raw_json(raw, name)
  if raw == nil or raw == "" then return nil end
  local v, err = json.decode(raw)
  if v == nil then fail("proto: %s does not hold JSON: %s", name, tostring(err)) end
  return v
end

-- Decoders of the messages whose JSON form is not an object. Each returns
-- the JSON value, or nil when the field is to be left out (unset).
local SPECIAL = {
  ["meta.v1.Time"] = function(buf, pos, lim, name)
    if pos > lim then return nil end
    local g = scan(buf, pos, lim, name, { "int64", "int32" })
    return M.rfc3339(g[1] or 0, g[2] or 0, false)
  end,
  ["meta.v1.MicroTime"] = function(buf, pos, lim, name)
    if pos > lim then return nil end
    local g = scan(buf, pos, lim, name, { "int64", "int32" })
    return M.rfc3339(g[1] or 0, g[2] or 0, true)
  end,
  ["meta.v1.Duration"] = function(buf, pos, lim, name)
    return M.duration(scan(buf, pos, lim, name, { "int64" })[1] or 0)
  end,
  ["resource.Quantity"] = function(buf, pos, lim, name)
    return scan(buf, pos, lim, name, { "string" })[1] or "0"
  end,
  ["intstr.IntOrString"] = function(buf, pos, lim, name)
    local g = scan(buf, pos, lim, name, { "int64", "int32", "string" })
    if g[1] == 1 then return g[3] or "" end
    return g[2] or 0
  end,
  ["runtime.RawExtension"] = function(buf, pos, lim, name)
    return raw_json(scan(buf, pos, lim, name, { "raw" })[1], name)
  end,
  ["meta.v1.FieldsV1"] = function(buf, pos, lim, name)
    return raw_json(scan(buf, pos, lim, name, { "raw" })[1], name)
  end,
}

-- Decodes a value of message type `name` in buf[pos..lim].
local function message_value(st, buf, pos, lim, name, depth, path, into)
  local special = SPECIAL[name]
  if special then return special(buf, pos, lim, name) end
  return decode_message(st, buf, pos, lim, name, depth + 1, path, into)
end

-- One map entry message (key = 1, value = 2); returns key, value.
local function map_entry(st, buf, pos, lim, f, depth, path)
  local k, v
  local vmsg = f.m:find(".", 1, true) ~= nil
  while pos <= lim do
    local num, wt
    num, wt, pos = key(buf, pos, lim, path)
    local t = num == 1 and f.k or num == 2 and (vmsg and "message" or f.m) or nil
    if t and wt ~= wire_of(t) then fail("proto: wrong wireType = %d for field %s", wt, path) end
    if num == 1 then
      k, pos = scalar(buf, pos, lim, t, path)
    elseif num == 2 and vmsg then
      local s, e = span(buf, pos, lim)
      v = message_value(st, buf, s, e, f.m, depth, path)
      pos = e + 1
    elseif num == 2 then
      v, pos = scalar(buf, pos, lim, t, path)
    else
      pos = skip(buf, pos, lim, wt)
    end
  end
  if k == nil then k = VARINT[f.k] and 0 or "" end
  if v == nil then
    if vmsg then v = SPECIAL[f.m] and message_value(st, "", 1, 0, f.m, depth, path) or {}
    elseif f.m == "bool" then v = false
    elseif VARINT[f.m] or FIXED[f.m] then v = 0
    else v = "" end
  end
  return tostring(k), v
end

-- `into`: the value of an earlier occurrence of the same singular field,
-- which protobuf merges the new one into.
function decode_message(st, buf, pos, lim, name, depth, path, into)
  if depth > st.max_depth then
    fail("proto: message nesting deeper than %d at %s", st.max_depth, path)
  end
  local fields = st.messages[name]
  if not fields then fail("proto: no message %s in the schema", name) end
  local obj = into or {}
  while pos <= lim do
    local num, wt
    num, wt, pos = key(buf, pos, lim, name)
    local f = fields[num]
    if not f then
      st.unknown[#st.unknown + 1] = { number = num, message = name, path = path }
      pos = skip(buf, pos, lim, wt)
    else
      local fpath = path == "" and f.n or (path .. "." .. f.n)
      local t = f.t
      local want = wire_of(t == "map" and "message" or t)
      local packed = f.r and wt == 2 and want ~= 2
      if wt ~= want and not packed then
        fail("proto: wrong wireType = %d for field %s", wt, fpath)
      end
      if t == "map" then
        local s, e = span(buf, pos, lim)
        local m = obj[f.n] or {}
        local k, v = map_entry(st, buf, s, e, f, depth + 1, fpath)
        m[k] = v
        obj[f.n], pos = m, e + 1
      elseif packed then
        local s, e = span(buf, pos, lim)
        local list = obj[f.n] or json.array({})
        local p = s
        while p <= e do list[#list + 1], p = scalar(buf, p, e, t, fpath) end
        obj[f.n], pos = list, e + 1
      else
        local v
        if t == "message" then
          local s, e = span(buf, pos, lim)
          local ipath = f.r and format("%s[%d]", fpath, obj[f.n] and #obj[f.n] or 0) or fpath
          local prev = not f.r and obj[f.n]
          v = message_value(st, buf, s, e, f.m, depth, ipath, type(prev) == "table" and prev or nil)
          pos = e + 1
          if v == nil and f.r then v = json.null end
        else
          v, pos = scalar(buf, pos, lim, t, fpath)
        end
        if f.r then
          local list = obj[f.n] or json.array({})
          list[#list + 1] = v
          obj[f.n] = list
        elseif f.z and (v == 0 or v == false or v == "") then
          -- gogo writes the zero value of a Go non-pointer field, which
          -- JSON leaves out (omitempty), so defaults apply the same way.
          obj[f.n] = nil
        else
          obj[f.n] = v
        end
      end
    end
  end
  return obj
end

local function run(fn, ...)
  local ok, a, b = pcall(fn, ...)
  if ok then return a, b end
  if getmetatable(a) == Fail then return nil, a.msg end
  error(a, 0)
end

--- Decodes a message body (no envelope) of message `name`.
--- opts: { schema = proto_schema-shaped table, max_depth = n }.
--- @return obj, unknown ({ {number, message, path}... }) | nil, err
function M.decode_message(buf, name, opts)
  opts = opts or {}
  local st = { messages = (opts.schema or proto_schema).messages, unknown = {},
    max_depth = opts.max_depth or M.MAX_DEPTH }
  return run(function()
    local v = decode_message(st, buf, 1, #buf, name, 1, "")
    return v, st.unknown
  end)
end

-- Reads the runtime.Unknown envelope after the magic bytes.
local function envelope(buf)
  local env = { }
  local pos, lim = #M.MAGIC + 1, #buf
  while pos <= lim do
    local num, wt
    num, wt, pos = key(buf, pos, lim, "runtime.Unknown")
    if num <= 4 and wt ~= 2 then
      fail("proto: wrong wireType = %d for field %d of runtime.Unknown", wt, num)
    end
    if num == 1 then
      local s, e = span(buf, pos, lim)
      local tm = scan(buf, s, e, "runtime.TypeMeta", { "string", "string" })
      env.apiVersion, env.kind, pos = tm[1], tm[2], e + 1
    elseif num <= 4 then
      local s, e = span(buf, pos, lim)
      env[({ "", "raw", "contentEncoding", "contentType" })[num]], pos = sub(buf, s, e), e + 1
    else
      pos = skip(buf, pos, lim, wt)
    end
  end
  return env
end

--- The message that carries apiVersion/kind, or nil.
function M.message_for(api_version, kind, schema)
  return (schema or proto_schema).kinds[tostring(api_version) .. "/" .. tostring(kind)]
end

--- Decodes a whole request body: "k8s\0" + runtime.Unknown holding the
--- object. The result has apiVersion and kind from the envelope.
--- opts as decode_message.
--- @return obj, unknown | nil, err
function M.decode(body, opts)
  opts = opts or {}
  if type(body) ~= "string" or sub(body, 1, #M.MAGIC) ~= M.MAGIC then
    return nil, "provided data does not appear to be a protobuf message, "
      .. "expected prefix [107 56 115 0]"
  end
  return run(function()
    local env = envelope(body)
    if (env.contentEncoding or "") ~= "" then
      fail("unsupported content encoding %q", env.contentEncoding)
    end
    local ct = env.contentType or ""
    if ct ~= "" and ct ~= "application/vnd.kubernetes.protobuf" then
      fail("unsupported content type %q", ct)
    end
    if not env.kind or env.kind == "" then fail("Object 'Kind' is missing in protobuf envelope") end
    local name = M.message_for(env.apiVersion or "", env.kind, opts.schema)
    if not name then
      fail('no kind "%s" is registered for version "%s"', env.kind, tostring(env.apiVersion or ""))
    end
    local raw = env.raw or ""
    local st = { messages = (opts.schema or proto_schema).messages, unknown = {},
      max_depth = opts.max_depth or M.MAX_DEPTH }
    local obj = decode_message(st, raw, 1, #raw, name, 1, "")
    obj.apiVersion, obj.kind = env.apiVersion, env.kind
    return obj, st.unknown
  end)
end

--- Words an unknown field for messages: `unknown field number 42 in
--- core.v1.PodSpec at "spec"`.
function M.unknown_text(u)
  local at = u.path ~= "" and format(' at "%s"', u.path) or ""
  return format("unknown field number %d in %s%s", u.number, u.message, at)
end

--- True when content type `ct` is Kubernetes protobuf.
function M.is_protobuf(ct)
  local mt = type(ct) == "string" and ct:match("^%s*([^;%s]+)")
  return mt and mt:lower() == "application/vnd.kubernetes.protobuf" or false
end

--- Request body decoding for the API handlers: the object, or nil and a
--- 400 Status. Unknown field numbers follow ?fieldValidation (Strict: 400,
--- Warn: a Warning header, Ignore: dropped; they are never kept).
function M.decode_body(ctx)
  local obj, unknown = M.decode(ctx.body or "")
  if not obj then return nil, status.bad_request(unknown) end
  local fv = request.param(ctx.query or {}, "fieldValidation") or "Warn"
  if #unknown > 0 and fv == "Strict" then
    local parts = {}
    for i, u in ipairs(unknown) do parts[i] = M.unknown_text(u) end
    return nil, status.bad_request("strict decoding error: " .. table.concat(parts, ", "))
  elseif fv == "Warn" and ctx.warnings then
    for _, u in ipairs(unknown) do ctx.warnings[#ctx.warnings + 1] = M.unknown_text(u) end
  end
  return obj
end

return M
