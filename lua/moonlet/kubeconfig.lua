-- Reads what a client needs from a kubeconfig (the one `moonlet server
-- --listen` writes, or kubectl's own): the current context's server URL,
-- bearer token and CA certificate. `moonlet node --kubeconfig` joins with it.
local yaml = require("moonlet.yaml")

local M = {}

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local VALUE = {}
for i = 1, #B64 do VALUE[B64:byte(i)] = i - 1 end

--- Decodes standard base64 (padding and white space ignored); nil if malformed.
function M.base64_decode(s)
  s = s:gsub("[%s=]", "")
  local out, acc, bits = {}, 0, 0
  for i = 1, #s do
    local v = VALUE[s:byte(i)]
    if not v then return nil end
    acc, bits = ((acc << 6) | v) & 0xffffff, bits + 6
    if bits >= 8 then
      bits = bits - 8
      out[#out + 1] = string.char((acc >> bits) & 255)
    end
  end
  return table.concat(out)
end

local function named(list, name)
  for _, e in ipairs(type(list) == "table" and list or {}) do
    if type(e) == "table" and e.name == name then return e end
  end
  return nil
end

-- A relative file in a kubeconfig means relative to the kubeconfig's dir,
-- as client-go resolves it.
local function resolve(dir, path)
  if path:sub(1, 1) == "/" or not dir then return path end
  return dir .. "/" .. path
end

--- Parses kubeconfig `text` (read from dir `dir`; `read(path)` reads the
--- files it names). @return { server=, token=, ca_pem=, ca_file= } or nil, message
function M.parse(text, dir, read)
  read = read or require("moonlet.files").read
  local cfg, err = yaml.decode(text or "")
  if type(cfg) ~= "table" then return nil, "not a kubeconfig: " .. tostring(err or "empty") end
  local cname = cfg["current-context"]
  local ctx = named(cfg.contexts, cname)
  if cname and not ctx then return nil, string.format('context "%s" not found', tostring(cname)) end
  ctx = (ctx or (cfg.contexts or {})[1] or {}).context or {}
  local cluster = (named(cfg.clusters, ctx.cluster) or (cfg.clusters or {})[1] or {}).cluster
  if type(cluster) ~= "table" or type(cluster.server) ~= "string" then
    return nil, "the kubeconfig names no cluster server"
  end
  local user = (named(cfg.users, ctx.user) or (cfg.users or {})[1] or {}).user or {}
  local out = { server = cluster.server, token = user.token }
  if not out.token and user.tokenFile then
    local t = read(resolve(dir, user.tokenFile))
    if not t then return nil, "cannot read tokenFile " .. tostring(user.tokenFile) end
    out.token = (t:gsub("%s+$", ""))
  end
  local data = cluster["certificate-authority-data"]
  if type(data) == "string" then
    out.ca_pem = M.base64_decode(data)
    if not out.ca_pem then return nil, "certificate-authority-data is not base64" end
  elseif type(cluster["certificate-authority"]) == "string" then
    out.ca_file = resolve(dir, cluster["certificate-authority"])
  end
  return out
end

--- Reads and parses the kubeconfig at path (see parse).
function M.load(path, read)
  read = read or require("moonlet.files").read
  local text = read(path)
  if not text then return nil, "cannot read " .. path end
  return M.parse(text, path:match("^(.*)/[^/]*$"), read)
end

return M
