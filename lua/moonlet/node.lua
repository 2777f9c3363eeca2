-- `moonlet node`: a node that joins a server. Runs only the node agent
-- (moonlet.kubelet.agent) with its own data dir and node name, talking to
-- the server's HTTPS listener with its bearer token (from --kubeconfig,
-- e.g. the one `moonlet server --listen` writes, or --server and
-- --token-file). With --listen it serves its containers' logs and its
-- resource usage there (moonlet.kubelet.log_server) and publishes the
-- endpoint in its Node, so the server can forward pods/NAME/log and gather
-- its metrics. Stops like the server's kubelet on SIGINT/SIGTERM.
local agent_mod = require("moonlet.kubelet.agent")

local M = {}

M.USAGE = [[
Usage: moonlet node (--kubeconfig FILE | --server URL --token-file FILE) [flags]

Flags:
  --kubeconfig FILE    the server's address, token and CA (e.g. the kubeconfig
                       `moonlet server --listen` writes into its data dir)
  --server URL         the server's https://HOST:PORT (instead of --kubeconfig)
  --token-file FILE    file holding the bearer token (with --server)
  --certificate-authority FILE  the server's CA certificate (with --server)
  --listen URL         serve this node's container logs and resource usage on
                       tcp://HOST:PORT (HTTPS, the same bearer token required)
  --data-dir DIR       this node's pods, logs and state (default as the
                       server's; one server or node per data dir)
  --scripts DIR        load policies/ and probes/ scripts from DIR (repeatable)
  --log-level L        debug, info, warn or error (default info)
  -h, --help           show this help

Node agent flags:
]] .. agent_mod.USAGE:gsub("  %-%-no%-kubelet[^\n]*\n", "")

local VALUE = { ["--kubeconfig"] = "kubeconfig", ["--server"] = "server", ["--token-file"] = "token_file",
  ["--certificate-authority"] = "ca_file", ["--listen"] = "listen", ["--data-dir"] = "data_dir",
  ["--log-level"] = "log_level" }

--- Parses flags (argv[first..], default 2). @return opts or nil, message
function M.parse_flags(argv, first)
  local o = { scripts = {}, log_level = "info" }
  local i = first or 2
  while argv[i] do
    local a, inline = argv[i], nil
    local flag, v = a:match("^(%-%-[%w-]+)=(.*)$")
    if flag then a, inline = flag, v end
    local function val()
      if inline then return inline end
      i = i + 1
      return argv[i]
    end
    if a == "-h" or a == "--help" then
      o.help = true
    elseif VALUE[a] or a == "--scripts" then
      local x = val()
      if x == nil then return nil, "flag needs an argument: " .. a end
      if a == "--scripts" then o.scripts[#o.scripts + 1] = x else o[VALUE[a]] = x end
    elseif a ~= "--no-kubelet" and agent_mod.FLAGS[a] then
      local taken, err = agent_mod.take_flag(o, a, val)
      if not taken then return nil, err end
    else
      return nil, "unknown flag: " .. a
    end
    i = i + 1
  end
  if o.help then return o end
  if o.kubeconfig and (o.server or o.token_file) then
    return nil, "--kubeconfig and --server/--token-file exclude each other"
  end
  if not o.kubeconfig and not (o.server and o.token_file) then
    return nil, "give --kubeconfig FILE, or --server URL and --token-file FILE"
  end
  if o.server and not o.server:match("^https?://[^/]+") then
    return nil, "--server must be https://HOST:PORT, got " .. o.server
  end
  if o.listen and not (o.listen:match("^tcp://[^:/]+:%d+$") or o.listen:match("^https://[^:/]+:%d+$")) then
    return nil, "--listen must be tcp://HOST:PORT, got " .. o.listen
  end
  return o
end

--- Where and how to reach the server: { server=, token=, ca_pem=, ca_file= }
--- or nil, message.
function M.connection(o, read)
  read = read or require("moonlet.files").read
  if o.kubeconfig then
    local c, err = require("moonlet.kubeconfig").load(o.kubeconfig, read)
    if not c then return nil, o.kubeconfig .. ": " .. err end
    if not c.token or c.token == "" then return nil, o.kubeconfig .. ": no bearer token for the user" end
    if o.ca_file then c.ca_file, c.ca_pem = o.ca_file, nil end
    return c
  end
  local tok = read(o.token_file)
  if not tok then return nil, "cannot read --token-file " .. o.token_file end
  tok = tok:gsub("%s+$", "")
  if tok == "" then return nil, "--token-file " .. o.token_file .. " is empty" end
  return { server = o.server, token = tok, ca_file = o.ca_file }
end

local function log(level, msg) require("moonlet.core.runtime").log(level, msg) end

-- The restart policies and probe checks of the built-in and --scripts
-- plugins, as the server's kubelet has them.
local function load_plugins(dirs)
  local plugins = require("moonlet.plugins")
  local loaded, errors = plugins.load(dirs, { check = { probes = function(v)
    return require("moonlet.kubelet.checks").validate(v) end } })
  for _, e in ipairs(errors) do log("error", "script failed to load: " .. e) end
  for _, e in ipairs(require("moonlet.kubelet.policies").load(loaded)) do log("error", "node: " .. e) end
  local checks = require("moonlet.kubelet.checks")
  local reg = checks.new({ log = log })
  reg:add_loaded(loaded.probes or {})
  checks.set_default(reg)
  return loaded
end

-- The log endpoint on o.listen (with a certificate of the node's own, in
-- its data dir). @return the server, host address, port | nil, message
local function listen_logs(o, dir, handler)
  local httpd = require("moonlet.httpd")
  local host = o.listen:match("^%a+://([^:/]+):")
  if host == "0.0.0.0" then host = "127.0.0.1" end
  local is_ip = host:match("^[%d.]+$") ~= nil
  local created, cerr = httpd.ensure_cert(dir, is_ip and {} or { host }, is_ip and { host } or {})
  if created == nil then return nil, "cannot make the TLS certificate: " .. tostring(cerr) end
  local url = o.listen:gsub("^https://", "tcp://")
  local srv, err = httpd.listen(url, handler, { tls = { cert_file = dir .. "/tls.crt", key_file = dir .. "/tls.key" } })
  if not srv then return nil, "cannot listen on " .. o.listen .. ": " .. tostring(err) end
  return srv, host, srv:port()
end

local Node = {}
Node.__index = Node

function Node:start()
  local o, sys = self.opts, require("moonlet.core.sys")
  -- The server's lock: a server and a node on one data dir would run,
  -- reap and prune each other's pods.
  local lock, err = require("moonlet.data_dir").claim(o.data_dir, "server or node")
  if not lock then return nil, err end
  self.lock = lock
  local conn, cerr = M.connection(o)
  if not conn then return nil, cerr end
  if conn.ca_pem then
    conn.ca_file = o.data_dir .. "/server-ca.crt"
    assert(sys.write_file(conn.ca_file, conn.ca_pem, 384))
  end
  local client = require("moonlet.client").new({ server = conn.server, token = conn.token,
    ca_file = conn.ca_file, timeout_ms = 30000, user_agent = "moonlet-node/" .. require("moonlet.main").VERSION })
  local loaded = load_plugins(o.scripts)
  local agent = agent_mod.new({ client = client, data_dir = o.data_dir, node_name = o.node_name,
    image_path = o.image_path, crashloop_initial = o.crashloop_initial, crashloop_max = o.crashloop_max,
    keep_pods = o.keep_pods, heartbeat = o.heartbeat })
  agent.loaded = loaded
  self.agent = agent
  if o.listen then
    local srv, host, port = listen_logs(o, o.data_dir, require("moonlet.kubelet.log_server").handler(agent, conn.token))
    if not srv then return nil, host end
    self.listener = srv
    agent.host_ip, agent.kubelet_port = host, port
    log("info", string.format("serving container logs on https://%s:%d", host, port))
  end
  return self:join(conn.server)
end

-- The kubelet's registerWithAPIServer back-off: from 0.5 s, doubling, at
-- most 7 s between attempts.
M.RETRY_INITIAL_MS, M.RETRY_MAX_MS = 500, 7000

-- Registers the node, retrying with back-off while the server cannot be
-- reached (not up yet, restarting): a supervisor may well start a node
-- before its server. What a retry cannot fix (401, 403, an invalid Node)
-- ends at once. self.stop_id / self.stopping (set by M.main's signal
-- handlers) end the retries. @return true | "stopped" | nil, message
--- Whether registering again may succeed after the failure `st` (the
--- client's Status): the server unreachable, busy (429) or failing (5xx,
--- as while it starts) may come back; refused credentials or an invalid
--- Node will not.
function M.retryable(st)
  if type(st) ~= "table" then return false end
  local code = tonumber(st.code)
  return st.transport == true or code == 429 or (code ~= nil and code >= 500)
end

function Node:join(server)
  local loop, sched = require("moonlet.loop"), require("moonlet.sched")
  local delay = M.RETRY_INITIAL_MS
  while true do
    if self.stopping then return "stopped" end
    local started, serr, st = self.agent:start()
    if started then break end
    if not M.retryable(st) then return nil, serr end
    if self.stopping then return "stopped" end
    log("warn", string.format("unable to register node with the server %s, retrying in %.1f s: %s",
      server, delay / 1000, tostring(serr)))
    local t = loop.timer(delay, function() sched.wake(self.stop_id, "retry") end)
    sched.wait(self.stop_id)
    t.stop()
    delay = math.min(delay * 2, M.RETRY_MAX_MS)
  end
  log("info", string.format("node %s joined %s", self.agent.node_name, server))
  return true
end

function Node:stop()
  if self.listener then self.listener:close() end
  if self.agent then self.agent:stop() end
end

function M.main(argv)
  local o, err = M.parse_flags(argv)
  if not o then
    io.stderr:write("moonlet node: ", err, "\n", M.USAGE)
    return 1
  end
  if o.help then
    io.stdout:write(M.USAGE)
    return 0
  end
  local runtime = require("moonlet.core.runtime")
  if not pcall(runtime.set_log_level, o.log_level) then
    io.stderr:write("moonlet node: --log-level must be debug, info, warn or error\n")
    return 1
  end
  o.data_dir = o.data_dir or require("moonlet.paths").data_dir()
  local sched, loop = require("moonlet.sched"), require("moonlet.loop")
  local node = setmetatable({ opts = o, stop_id = loop.next_id() }, Node)
  local code = 0
  sched.run(function()
    -- Taken before start, which may wait long for the server; a signal
    -- that comes while nobody waits on stop_id is kept in node.stopping.
    local signals = {}
    for _, name in ipairs({ "SIGINT", "SIGTERM" }) do
      signals[#signals + 1] = loop.on_signal(name, function()
        log("info", "received " .. name .. ", shutting down")
        node.stopping = name
        sched.wake(node.stop_id, name)
      end)
    end
    local function close_signals() for _, s in ipairs(signals) do s.close() end end
    local ok, serr = node:start()
    if not ok then
      log("error", serr)
      code = 1
      if node.listener then node.listener:close() end
      close_signals()
      return
    end
    if not node.stopping then sched.wait(node.stop_id) end
    node:stop()
    -- One more turn lets the last status writes go out.
    loop.sleep(10)
    close_signals()
  end)
  return code
end

return M
