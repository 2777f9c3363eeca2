-- Probe check "http-json": GET a path and compare one field of the JSON
-- reply, for services whose health endpoint always answers 200 and tells
-- the truth in its body.
--
--   livenessProbe:
--     lua: { check: http-json, args: { port: http, path: /health,
--            field: status, equals: ok } }
--
-- args: port (number or container port name; default 80), path ("/"),
-- scheme ("http" | "https", certificates not verified as for httpGet),
-- field (dotted path into the document, list items 1-based: "checks.db.state",
-- "items.1.ok"), equals (expected value compared as text; without it the
-- field must be present and neither false nor null).
local http = require("moonlet.http")
local json = require("moonlet.json")

local function lookup(doc, field)
  local v = doc
  for part in field:gmatch("[^.]+") do
    if type(v) ~= "table" then return nil end
    local i = math.tointeger(tonumber(part))
    if i and v[i] ~= nil then v = v[i] else v = v[part] end
  end
  return v
end

local function text(v)
  if v == nil or json.is_null(v) then return "null" end
  if type(v) == "table" then return (json.encode(v)) end
  return tostring(v)
end

return {
  name = "http-json",
  check = function(ctx, args)
    assert(type(args.field) == "string" and args.field ~= "", "http-json: args.field is required")
    local host, port = ctx.port_for(args.port or 80)
    if not host then return false, port end
    local scheme = (args.scheme or "http"):lower()
    local path = args.path or "/"
    if path:sub(1, 1) ~= "/" then path = "/" .. path end
    if host:find(":", 1, true) then host = "[" .. host .. "]" end
    local url = string.format("%s://%s:%d%s", scheme, host, port, path)
    local res, err = http.request{
      url = url, timeout_ms = (ctx.timeout or 1) * 1000, keepalive = false,
      insecure = scheme == "https", max_body = 1024 * 1024,
      headers = { ["User-Agent"] = "kube-probe/1.32", Accept = "application/json" },
    }
    if not res then return false, string.format('Get "%s": %s', url, err) end
    if res.status < 200 or res.status >= 400 then
      return false, "HTTP probe failed with statuscode: " .. res.status
    end
    local doc, derr = json.decode(res.body)
    if doc == nil then return false, "response is not JSON: " .. tostring(derr) end
    local v = lookup(doc, args.field)
    if args.equals ~= nil then
      if v ~= nil and text(v) == text(args.equals) then return true end
      return false, string.format('field "%s" is %s, want %s', args.field, text(v), text(args.equals))
    end
    if v == nil or v == false or json.is_null(v) then
      return false, string.format('field "%s" is %s', args.field, text(v))
    end
    return true
  end,
}
