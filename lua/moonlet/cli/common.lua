-- What every CLI verb shares: the invocation context (output streams,
-- namespace, client), kubectl's error messages, object names and encodings
-- (`configmap/x`, JSON with 4-space indent, YAML), and the default server.
local json = require("moonlet.json")
local client = require("moonlet.client")

local M = {}

--- Flags every verb accepts.
M.GLOBAL_FLAGS = {
  { name = "server", short = "s", type = "string", metavar = "URL",
    help = "The address of the moonlet API server (unix:PATH or https://HOST:PORT)." },
  { name = "token", type = "string", help = "Bearer token for authentication to the API server." },
  { name = "certificate-authority", type = "string", metavar = "FILE",
    help = "Path to the server's certificate (<data-dir>/tls.crt) for https servers; default $MOONLET_CA." },
  { name = "namespace", short = "n", type = "string", help = "If present, the namespace scope for this CLI request." },
  { name = "request-timeout", type = "string", default = "0",
    help = "The length of time to wait before giving up on a single server request (0: no timeout)." },
  { name = "log-level", type = "string", help = "Log level (accepted for compatibility)." },
  { name = "v", short = "v", type = "string", help = "Log verbosity: 6 and up logs each request and its answer's status to stderr, as kubectl's -v=6." },
  { name = "help", short = "h", type = "bool", help = "Help for this command." },
}

--- Joins verb specs with the global flags.
function M.flags(specs)
  local out = {}
  for _, s in ipairs(specs) do out[#out + 1] = s end
  for _, s in ipairs(M.GLOBAL_FLAGS) do out[#out + 1] = s end
  return out
end

--- The default data dir's socket: $XDG_DATA_HOME/moonlet,
--- /var/lib/moonlet for root, else ~/.local/share/moonlet.
function M.default_server(getenv)
  return "unix:" .. require("moonlet.paths").data_dir(getenv) .. "/moonlet.sock"
end

--- Go time.ParseDuration subset for --request-timeout ("0", "5s", "1m", "30").
function M.parse_timeout(s)
  if not s or s == "" or s == "0" then return nil end
  local n = tonumber(s)
  if n then return math.floor(n * 1000) end
  local total, rest = 0, s
  local units = { ms = 1, s = 1000, m = 60000, h = 3600000 }
  while rest ~= "" do
    local num, unit, tail = rest:match("^(%d+%.?%d*)(%a+)(.*)$")
    if not num or not units[unit] then return nil end
    total = total + tonumber(num) * units[unit]
    rest = tail
  end
  -- "0s" means no fixed limit, as "0" does (kubectl: derive it).
  if total == 0 then return nil end
  return math.floor(total)
end

-- strconv.ParseBool's spellings, which kubectl's --dry-run still takes.
local BOOLS = { ["1"] = true, t = true, T = true, TRUE = true, ["true"] = true, True = true,
  ["0"] = false, f = false, F = false, FALSE = false, ["false"] = false, False = false }

--- --dry-run's value as kubectl's GetDryRunStrategy reads it: "none",
--- "client" or "server" (a bare --dry-run, "unchanged", or a true boolean
--- is client; a false one none); anything else fails with its message.
function M.dry_run(v)
  if v == nil or v == "none" then return "none" end
  if v == "client" or v == "server" then return v end
  if v == "unchanged" then return "client" end
  local b = BOOLS[v]
  if b ~= nil then return b and "client" or "none" end
  M.fail(string.format('Invalid dry-run value (%s). Must be "none", "server", or "client".', v))
end

-- HTTP reason phrases for the -v=6 request log.
local REASON_PHRASES = { [200] = "OK", [201] = "Created", [202] = "Accepted", [400] = "Bad Request",
  [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found", [405] = "Method Not Allowed",
  [409] = "Conflict", [410] = "Gone", [415] = "Unsupported Media Type", [422] = "Unprocessable Entity",
  [429] = "Too Many Requests", [500] = "Internal Server Error", [503] = "Service Unavailable",
  [504] = "Gateway Timeout" }

--- The client for this invocation (ctx.client if the caller supplied one).
function M.client(ctx)
  if ctx.client then return ctx.client end
  local f = ctx.flags
  local server = f.server or ctx.getenv("MOONLET_SERVER")
  if not server or server == "" then server = M.default_server(ctx.getenv) end
  ctx.server = server
  local ok, c = pcall(client.new, { server = server, token = f.token or ctx.getenv("MOONLET_TOKEN"),
    ca_file = f["certificate-authority"],
    timeout_ms = M.parse_timeout(f["request-timeout"]),
    on_warning = function(text) ctx.err("Warning: " .. text .. "\n") end,
    on_request = (tonumber(f.v) or 0) >= 6 and function(method, path, code, ms)
      -- kubectl's round_trippers line: `GET URL 200 OK in 4 milliseconds`
      ctx.err(string.format("I%s client.lua] %s %s%s %d %s in %d milliseconds\n", os.date("%m%d %H:%M:%S"),
        method, server:match("^unix:") and "" or server, path, code, REASON_PHRASES[code] or "", ms))
    end or nil })
  if not ok then error({ cli = tostring(c):gsub("^.-:%d+: ", "") }, 0) end
  ctx.client = c
  return c
end

--- The Status -> message rules of kubectl's StandardErrorMessage.
function M.status_message(st, server)
  if type(st) ~= "table" then return "error: " .. tostring(st) end
  if st["local"] then return "error: " .. tostring(st.message) end
  if st.transport then
    local msg = tostring(st.message or "")
    if msg:find("refused", 1, true) or msg:find("ECONNREFUSED", 1, true)
        or msg:find("ENOENT", 1, true) or msg:find("No such file", 1, true)
        or msg:find("Couldn't connect", 1, true) or msg:find("connect", 1, true) then
      return (string.format("The connection to the server %s was refused - did you specify the right host or port?",
        tostring(server or "")))
    end
    return "Unable to connect to the server: " .. msg
  end
  if st.reason == "Unauthorized" then
    return string.format("error: You must be logged in to the server (%s)", st.message or "Unauthorized")
  end
  if st.reason and st.reason ~= "" then
    return string.format("Error from server (%s): %s", st.reason, st.message or "")
  end
  return "Error from server: " .. tostring(st.message or "")
end

--- A CLI failure: raised with error({cli = message}) and printed by main.
function M.fail(msg) error({ cli = msg }, 0) end

--- Raises the kubectl message for a Status.
function M.fail_status(ctx, st)
  error({ cli = M.status_message(st, ctx.server), raw = true }, 0)
end

--- Prints an error line (kubectl form) without stopping; marks failure.
function M.report(ctx, st)
  ctx.failed = true
  local msg = type(st) == "string" and st or M.status_message(st, ctx.server)
  ctx.err(msg .. "\n")
end

--- Resolves a resource word or raises kubectl's unknown-type error.
function M.resolve(ctx, word)
  local c = M.client(ctx)
  local r, st = c:resolve(word)
  if not r then
    if st and st.code == 404 and not st.transport then M.fail(st.message) end
    M.fail_status(ctx, st)
  end
  return r
end

--- `configmap`, `deployment.apps`: kubectl's lower-case kind[.group].
function M.kind_word(r)
  local k = string.lower(r.kind)
  if r.group ~= "" then k = k .. "." .. r.group end
  return k
end

--- `configmap/x`, `deployment.apps/web`.
function M.object_name(r, name)
  return M.kind_word(r) .. "/" .. name
end

--- `configmaps "x"` as API errors name a resource.
function M.quoted(r, name)
  local res = r.group ~= "" and (r.name .. "." .. r.group) or r.name
  return string.format('%s "%s"', res, name)
end

--- kubectl's JSON printer: 4-space indent, sorted keys, trailing newline.
function M.to_json(v)
  return (json.encode(v, { indent = 4, sort_keys = true })) .. "\n"
end

--- kubectl-style YAML.
function M.to_yaml(v)
  local yaml = require("moonlet.yaml")
  return yaml.encode(v)
end

--- The namespace for namespaced objects of this invocation.
function M.namespace(ctx)
  return ctx.flags.namespace or ctx.namespace or "default"
end

--- Items of a list come without apiVersion/kind; kubectl prints them with.
function M.fill_kind(r, obj)
  if type(obj) == "table" then
    if obj.apiVersion == nil then obj.apiVersion = r.api_version end
    if obj.kind == nil then obj.kind = r.kind end
  end
  return obj
end

--- kubectl's List wrapper for several objects.
function M.list_of(items)
  return { apiVersion = "v1", kind = "List", items = json.array(items),
    metadata = { resourceVersion = "" } }
end

return M
