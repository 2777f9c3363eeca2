-- Resource metrics of joined nodes (`moonlet node --listen`), gathered as
-- metrics-server scrapes each kubelet: the server asks every Ready node that
-- publishes a kubelet endpoint (moonlet.kubelet.log_proxy.endpoint) for GET
-- /stats/usage (served by moonlet.kubelet.log_server), all at once on the
-- loop (moonlet.http), with a short timeout. A node that does not answer is
-- left out and logged, as metrics-server skips a kubelet it cannot scrape.
local json = require("moonlet.json")
local node_health = require("moonlet.node_health")
local log_proxy = require("moonlet.kubelet.log_proxy")

local M = {}

M.PATH = "/stats/usage"
-- `kubectl top` waits for the slowest node: a node that is gone costs at
-- most this, not kube-apiserver's 30 s dial timeout.
M.CONNECT_TIMEOUT_MS = 1000
M.TIMEOUT_MS = 3000
-- A node's answer is a few hundred bytes per pod; more is not a usage
-- document.
M.MAX_BODY = 16 * 1024 * 1024

--- Where a node left out is told (replaceable: tests).
function M.log(level, msg) require("moonlet.core.runtime").log(level, msg) end

--- The joined nodes to ask, from a list of Node objects: Ready, publishing
--- an endpoint, not named `own` (the server's node, sampled in-process) and
--- selected by keep(node) when given.
--- @return list of { name =, base = (https://HOST:PORT), node = }
function M.targets(nodes, own, keep)
  local out = {}
  for _, n in ipairs(nodes or {}) do
    local name = n.metadata and n.metadata.name
    if name and name ~= own and node_health.ready(n) == "True" and (not keep or keep(n)) then
      local base = log_proxy.endpoint(n)
      if base then out[#out + 1] = { name = name, base = base, node = n } end
    end
  end
  return out
end

-- One node's answer, checked: { node = NodeMetrics-like | nil, pods = {...} }
-- or nil, why.
local function decode(res)
  if res.truncated then return nil, "answer larger than " .. M.MAX_BODY .. " bytes" end
  if res.status ~= 200 then
    local st = json.decode(res.body or "")
    return nil, string.format("HTTP %d%s", res.status,
      type(st) == "table" and st.message and (": " .. tostring(st.message)) or "")
  end
  local body = json.decode(res.body or "")
  if type(body) ~= "table" or type(body.pods) ~= "table" or (body.node ~= nil and type(body.node) ~= "table") then
    return nil, "not a usage document"
  end
  return body
end

--- Asks every target for its usage, concurrently; call in a coroutine.
--- opts: token (bearer), log(level, msg), request (moonlet.http.request's
--- shape; tests). @return name -> { node =, pods = } of the nodes that
--- answered
function M.scrape(targets, opts)
  opts = opts or {}
  local request = opts.request or require("moonlet.http").request
  local log = opts.log or M.log
  local sched, loop = require("moonlet.sched"), require("moonlet.loop")
  local out, left, id = {}, #targets, loop.next_id()
  for _, t in ipairs(targets) do
    sched.spawn("metrics scrape " .. t.name, function()
      local url = t.base .. M.PATH
      -- pcall: a failure here must still count down, or the caller waits
      -- for ever.
      local ok, body, err = pcall(function()
        local res, rerr = request({ method = "GET", url = url, insecure = true,
          headers = { ["Authorization"] = "Bearer " .. tostring(opts.token or "") },
          connect_timeout_ms = M.CONNECT_TIMEOUT_MS, timeout_ms = M.TIMEOUT_MS, max_body = M.MAX_BODY })
        if not res then return nil, rerr end
        return decode(res)
      end)
      if not ok then body, err = nil, body end
      if body then
        out[t.name] = body
      else
        log("warn", string.format('metrics: node %s left out: Get "%s": %s', t.name, url,
          tostring(err or "no answer")))
      end
      left = left - 1
      if left == 0 then sched.wake(id) end
    end)
  end
  -- Requests that fail at once count down before this point.
  if left > 0 then sched.wait(id) end
  sched.forget(id)
  return out
end

return M
