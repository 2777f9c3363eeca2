-- `moonlet server`: opens the store, loads kinds and controllers, serves the
-- Kubernetes API on the data dir's unix socket (and HTTPS with a bearer
-- token on --listen, with a self-signed certificate kept in the data dir and
-- a kubeconfig that kubectl uses as is), and stops cleanly on SIGINT/SIGTERM.
-- SIGHUP reloads scripts.
local runtime = require("moonlet.core.runtime")
local sys = require("moonlet.core.sys")
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")
local json = require("moonlet.json")
local yaml = require("moonlet.yaml")
local plugins = require("moonlet.plugins")
local kinds = require("moonlet.api.kinds")

local M = {}

local USAGE = [[
Usage: moonlet server [flags]

Flags:
  --data-dir DIR       where the store, socket, token and logs live
                       (default $XDG_DATA_HOME/moonlet, ~/.local/share/moonlet,
                       /var/lib/moonlet for root)
  --scripts DIR        load kinds/, controllers/, policies/, probes/ scripts
                       from DIR (repeatable; later dirs override earlier ones)
  --listen URL         also serve HTTPS on tcp://HOST:PORT (bearer token
                       required; certificate in DIR/tls.crt, kubectl config
                       in DIR/kubeconfig)
  --store KIND         sqlite (default, durable) or memory
  --store-sync MODE    sqlite fsync policy: full (default: every commit is
                       on disk) or normal (survives a crash of moonlet, not
                       of the machine; several times faster)
  --log-level L        debug, info, warn or error (default info)
  --event-ttl D        how long Events are kept (default 1h, as kube-apiserver)
  --node-monitor-grace-period D  a node whose kubelet posts no status for
                       this long goes NotReady (default 40s, as Kubernetes)
  --service-cluster-ip-range CIDR  Services' cluster IPs (default
                       127.100.0.0/16: loopback, so every address is local)
  --service-node-port-range LO-HI  Services' node ports (default 30000-32767)
  --check-scripts DIR  validate the scripts in DIR (repeatable) and exit
  -h, --help           show this help

Node agent (kubelet) flags:
]] .. require("moonlet.kubelet.agent").USAGE .. require("moonlet.hpa.config").USAGE

--- Parses flags into a table; returns opts or nil, message.
function M.parse_flags(argv, first)
  local o = { scripts = {}, listen = {}, check = {}, store = "sqlite", log_level = "info",
    store_sync = "full" }
  local i = first or 2
  local function value(flag)
    local v = argv[i + 1]
    if v == nil then return nil end
    i = i + 1
    return v
  end
  while argv[i] do
    local a = argv[i]
    local flag, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    if flag then a = flag end
    local function val()
      if inline then return inline end
      return value(a)
    end
    local needs = { ["--data-dir"] = "data_dir", ["--store"] = "store", ["--log-level"] = "log_level",
      ["--store-sync"] = "store_sync", ["--event-ttl"] = "event_ttl",
      ["--node-monitor-grace-period"] = "node_grace",
      ["--service-cluster-ip-range"] = "service_cidr", ["--service-node-port-range"] = "node_ports" }
    local lists = { ["--scripts"] = "scripts", ["--listen"] = "listen", ["--check-scripts"] = "check" }
    if a == "-h" or a == "--help" then
      o.help = true
    elseif needs[a] or lists[a] then
      local v = val()
      if v == nil then return nil, "flag needs an argument: " .. a end
      if needs[a] then o[needs[a]] = v else table.insert(o[lists[a]], v) end
    elseif require("moonlet.kubelet.agent").FLAGS[a] then
      -- node agent flags: moonlet.kubelet.agent owns them
      local taken, ferr = require("moonlet.kubelet.agent").take_flag(o, a, val)
      if not taken then return nil, ferr end
    elseif require("moonlet.hpa.config").FLAGS[a] then
      local taken, ferr = require("moonlet.hpa.config").take_flag(o, a, val)
      if not taken then return nil, ferr end
    elseif o.check[1] and not a:match("^%-") then
      o.check[#o.check + 1] = a
    else
      return nil, "unknown flag: " .. a
    end
    i = i + 1
  end
  if o.store ~= "sqlite" and o.store ~= "memory" then
    return nil, "--store must be sqlite or memory"
  end
  if o.store_sync ~= "full" and o.store_sync ~= "normal" then
    return nil, "--store-sync must be full or normal"
  end
  local ttl = require("moonlet.kubelet.agent").parse_duration(o.event_ttl or "1h")
  if not ttl or ttl <= 0 then
    return nil, "--event-ttl must be a positive duration such as 1h or 90s, got " .. tostring(o.event_ttl)
  end
  o.event_ttl = ttl
  local grace = require("moonlet.kubelet.agent").parse_duration(o.node_grace or "40s")
  if not grace or grace <= 0 then
    return nil, "--node-monitor-grace-period must be a positive duration such as 40s, got " .. tostring(o.node_grace)
  end
  o.node_grace = grace
  local ranged, rerr = require("moonlet.api.service_alloc").configure({ cidr = o.service_cidr, ports = o.node_ports })
  if not ranged then return nil, rerr end
  for _, l in ipairs(o.listen) do
    if not (l:match("^tcp://[^:/]+:%d+$") or l:match("^https://[^:/]+:%d+$")) then
      return nil, "--listen must be tcp://HOST:PORT, got " .. tostring(l)
    end
  end
  return o
end


local read_file = require("moonlet.files").read

-- The bearer token for TCP clients: made once, kept in the data dir (0600).
local function ensure_token(dir)
  local path = dir .. "/token"
  local tok = read_file(path)
  if tok and tok:match("^%x+%s*$") then return (tok:gsub("%s+$", "")) end
  tok = sys.random_hex(32)
  assert(sys.write_file(path, tok .. "\n", 384))
  return tok
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    local q = {}
    for k = 1, 4 do
      local idx = (n >> (6 * (4 - k))) & 63
      q[k] = B64:sub(idx + 1, idx + 1)
    end
    if not b then q[3] = "=" end
    if not c then q[4] = "=" end
    out[#out + 1] = table.concat(q)
  end
  return table.concat(out)
end

local function write_kubeconfig(dir, url, token, ca_pem)
  local cfg = {
    apiVersion = "v1", kind = "Config", ["current-context"] = "moonlet",
    clusters = json.array({ { name = "moonlet", cluster = { server = url,
      ["certificate-authority-data"] = base64(ca_pem) } } }),
    users = json.array({ { name = "moonlet", user = { token = token } } }),
    contexts = json.array({ { name = "moonlet", context = { cluster = "moonlet", user = "moonlet",
      namespace = "default" } } }),
    preferences = {},
  }
  assert(sys.write_file(dir .. "/kubeconfig", yaml.encode(cfg), 384))
end

local CHECKS = {
  kinds = kinds.check,
  controllers = function(v)
    if type(v) ~= "table" then return "a controller plugin must return a table" end
    if type(v.name) ~= "string" then return 'field "name": must be a string' end
    if type(v.kind) ~= "string" then return 'field "kind": must be a string like "apps/v1/ReplicaSet"' end
    if type(v.reconcile) ~= "function" then return 'field "reconcile": must be a function' end
  end,
  probes = function(v) return require("moonlet.kubelet.checks").validate(v) end,
}

--- `moonlet server --check-scripts DIR...`
local function check_scripts(dirs)
  local loaded, errors = plugins.load(dirs, { skip_builtin = true, check = CHECKS })
  for _, e in ipairs(errors) do io.stderr:write(e, "\n") end
  local n = 0
  for _, t in ipairs(plugins.TYPES) do
    for _ in pairs(loaded[t]) do n = n + 1 end
  end
  if #errors > 0 then
    io.stderr:write(string.format("%d script(s) failed to load\n", #errors))
    return 1
  end
  io.stdout:write(string.format("%d script(s) OK\n", n))
  return 0
end

local Server = {}
Server.__index = Server

-- Registers kinds from loaded plugins (built-ins first, then overrides).
function Server:load_scripts()
  local loaded, errors = plugins.load(self.opts.scripts, { check = CHECKS })
  for _, e in ipairs(errors) do runtime.log("error", "script failed to load: " .. e) end
  kinds.reset()
  for _, name in ipairs(plugins.names(loaded, "kinds")) do
    local p = loaded.kinds[name]
    local ok, err = pcall(kinds.register, p.value, p.display)
    if not ok then runtime.log("error", p.display .. ": " .. tostring(err)) end
  end
  -- Scale-down policies (policies/scaledown/*.lua) for the ReplicaSet controller.
  for _, e in ipairs(require("moonlet.scaledown").load(loaded)) do runtime.log("error", e) end
  -- Missed-run and overlap policies (policies/cron/*.lua) for the CronJob controller.
  for _, e in ipairs(require("moonlet.cron_policy").load(loaded)) do runtime.log("error", e) end
  -- Custom probe checks (probes/*.lua) become the registry `lua:` handlers use.
  local checks = require("moonlet.kubelet.checks")
  local reg = checks.new({ log = runtime.log })
  reg:add_loaded(loaded.probes or {})
  checks.set_default(reg)
  self.loaded = loaded
  return #errors
end

function Server:ensure_namespaces()
  for _, ns in ipairs({ "default", "kube-system", "kube-public", "kube-node-lease" }) do
    if not self.store:get("namespaces", "", ns) then
      local res = self.client_router_create("v1/Namespace", { apiVersion = "v1", kind = "Namespace",
        metadata = { name = ns } })
      if not res then runtime.log("error", "cannot create namespace " .. ns) end
    end
  end
end

function Server:start()
  local o = self.opts
  local lock, err = require("moonlet.data_dir").claim(o.data_dir, "server")
  if not lock then return nil, err end
  self.lock = lock
  local storemod = require("moonlet.store")
  -- A watch may resume from the last 1,000 events (the store's default is
  -- 10,000): each kept event pins one or two whole object texts, and the
  -- apiserver's own watch cache holds fewer.
  local s, serr = storemod.open({ backend = o.store, path = o.data_dir .. "/store.db",
    sync = o.store_sync, watch_window = 1000 })
  if not s then return nil, "cannot open store: " .. tostring(serr) end
  self.store = s
  self:load_scripts()
  local router = require("moonlet.api.router").new({ store = s, token = ensure_token(o.data_dir),
    version = require("moonlet.main").VERSION, log = runtime.log })
  self.router = router
  -- Joined nodes serve their pods' logs to holders of this token.
  require("moonlet.kubelet.log_proxy").configure({ token = router.token })
  require("moonlet.node_health").configure({ grace = o.node_grace })
  require("moonlet.hpa.config").configure(o.hpa)
  local inproc = require("moonlet.api.inproc")
  self.transport = inproc.transport(router)
  self.client_router_create = function(kind, obj) return inproc.create(router, kind, obj) end
  self:ensure_namespaces()
  self:start_controllers()
  self.stop_event_ttl = require("moonlet.api.event_ttl").start({ client = self.client, ttl = o.event_ttl })
  local httpd = require("moonlet.httpd")
  local function handler(req) router:handle(req, req) end
  self.listeners = {}
  local sock = o.data_dir .. "/moonlet.sock"
  local srv, lerr = httpd.listen("unix:" .. sock, handler, { mode = 384 })
  if not srv then return nil, "cannot listen on " .. sock .. ": " .. tostring(lerr) end
  self.listeners[#self.listeners + 1] = srv
  runtime.log("info", "serving the API on unix:" .. sock)
  for i, url in ipairs(o.listen) do
    local public, perr = self:listen_tls(url, handler)
    if not public then return nil, perr end
    if i == 1 then
      write_kubeconfig(o.data_dir, public, router.token, read_file(o.data_dir .. "/tls.crt"))
    end
    runtime.log("info", "serving the API on " .. public .. " (bearer token in " .. o.data_dir
      .. "/token, CA in " .. o.data_dir .. "/tls.crt)")
  end
  self:start_kubelet()
  return true
end

-- {====== node agent: moonlet.kubelet.agent runs this host's pods

function Server:start_kubelet()
  local agent, err = require("moonlet.kubelet.agent").start(self)
  if err then runtime.log("error", "kubelet: " .. tostring(err)) end
  self.kubelet = agent
end

function Server:stop_kubelet()
  if self.kubelet then self.kubelet:stop() end
end

-- }======

-- Serves HTTPS on tcp://HOST:PORT (or https://HOST:PORT) with the data
-- dir's certificate, made to cover HOST. Returns the URL clients use.
function Server:listen_tls(url, handler)
  local dir = self.opts.data_dir
  local host = url:match("^%a+://([^:/]+):")
  -- A wildcard address is no name to verify: clients come by loopback.
  local client_host = host
  if host == "0.0.0.0" then client_host = "127.0.0.1" end
  local names, ips = {}, {}
  if client_host:match("^[%d.]+$") or client_host:find(":", 1, true) then
    ips[1] = client_host
  else
    names[1] = client_host
  end
  local httpd = require("moonlet.httpd")
  local created, cerr = httpd.ensure_cert(dir, names, ips)
  if created == nil then return nil, "cannot make the TLS certificate: " .. tostring(cerr) end
  if created then runtime.log("info", "wrote a new TLS certificate to " .. dir .. "/tls.crt") end
  local t, terr = httpd.listen(url, handler, { tls = { cert_file = dir .. "/tls.crt",
    key_file = dir .. "/tls.key" } })
  if not t then return nil, "cannot listen on " .. url .. ": " .. tostring(terr) end
  self.listeners[#self.listeners + 1] = t
  return string.format("https://%s:%d", client_host, t:port())
end

-- Controllers run in-process and talk to the API through the router, so
-- their writes get the same admission as any client's.
function Server:start_controllers()
  local client = require("moonlet.client").new({ transport = self.transport })
  local m = require("moonlet.controller").new({ client = client, log = runtime.log })
  for _, name in ipairs(plugins.names(self.loaded, "controllers")) do
    local p = self.loaded.controllers[name]
    local ok, err = pcall(m.add, m, p.value)
    if not ok then runtime.log("error", p.display .. ": " .. tostring(err)) end
  end
  m:start()
  self.manager = m
  self.client = client
end

function Server:stop()
  if self.stop_event_ttl then self.stop_event_ttl() end
  for _, l in ipairs(self.listeners or {}) do l:close() end
  self:stop_kubelet()
  -- Controllers finish the item in hand before their watches end.
  if self.manager then self.manager:stop(5) end
  -- Service proxy listeners outlive controller reloads, not the server.
  require("moonlet.svc_proxy").close_all()
  require("moonlet.api.handlers").stop_watches()
end

function M.main(argv)
  local o, err = M.parse_flags(argv)
  if not o then
    io.stderr:write("moonlet server: ", err, "\n", USAGE)
    return 1
  end
  if o.help then
    io.stdout:write(USAGE)
    return 0
  end
  local ok_level = pcall(runtime.set_log_level, o.log_level)
  if not ok_level then
    io.stderr:write("moonlet server: --log-level must be debug, info, warn or error\n")
    return 1
  end
  if #o.check > 0 then return check_scripts(o.check) end
  o.data_dir = o.data_dir or require("moonlet.paths").data_dir()
  local server = setmetatable({ opts = o }, Server)
  local code = 0
  sched.run(function()
    local started, serr = server:start()
    if not started then
      runtime.log("error", serr)
      code = 1
      if server.store then server.store:close() end
      return
    end
    local stop_id = loop.next_id()
    local signals = loop.on_stop_signals(stop_id, runtime.log)
    signals[#signals + 1] = loop.on_signal("SIGHUP", function()
      local n = server:load_scripts()
      -- Controllers restart on the new scripts; the store keeps all state.
      if server.manager then server.manager:stop(5) end
      server:start_controllers()
      runtime.log("info", string.format("reloaded scripts (%d error(s))", n))
    end)
    -- SIGUSR1: a one-line memory report in the log, for operators
    -- watching a long-running server.
    signals[#signals + 1] = loop.on_signal("SIGUSR1", function()
      local before = collectgarbage("count")
      collectgarbage()
      runtime.log("info", string.format("memory: rss %d KiB, lua heap %d KiB (%d KiB live)",
        math.floor(sys.rss() / 1024), math.floor(before), math.floor(collectgarbage("count"))))
    end)
    -- Memory a burst left goes back to the system once the loop is quiet.
    signals[#signals + 1] = require("moonlet.idle_trim").start()
    sched.wait(stop_id)
    server:stop()
    -- One more turn lets in-flight responses and the last commit go out.
    loop.sleep(10)
    for _, s in ipairs(signals) do s.close() end
    server.store:close()
  end)
  return code
end

return M
