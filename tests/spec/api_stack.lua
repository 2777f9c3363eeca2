-- Test helper (not a spec): the server's API stack in-process — a memory
-- store, the built-in kinds, the router and an in-process client — with the
-- namespaces a server creates at start. Specs that need the real API without
-- a socket build on this.
local plugins = require("moonlet.plugins")
local kinds = require("moonlet.api.kinds")

local M = {}

--- Registers the built-in kinds and those of the plugin dirs given (a
--- fresh registry, as a server's start). @return the loaded plugins
function M.register_kinds(dirs)
  local loaded, errors = plugins.load(dirs or {})
  assert(#errors == 0, table.concat(errors, "\n"))
  kinds.reset()
  for _, name in ipairs(plugins.names(loaded, "kinds")) do
    kinds.register(loaded.kinds[name].value, loaded.kinds[name].display)
  end
  return loaded
end

--- @return { store, router, transport, client, loaded }
function M.new()
  local store = assert(require("moonlet.store").open({ backend = "memory" }))
  local loaded = M.register_kinds()
  local router = require("moonlet.api.router").new({ store = store, token = "t", version = "0.0.0",
    log = function() end })
  local transport = require("moonlet.api.inproc").transport(router)
  local client = require("moonlet.client").new({ transport = transport })
  for _, ns in ipairs({ "default", "kube-node-lease" }) do
    assert(client:create("v1/Namespace", { apiVersion = "v1", kind = "Namespace", metadata = { name = ns } }))
  end
  return { store = store, router = router, transport = transport, client = client, loaded = loaded }
end

--- A controller manager on stack `s` running only the built-in scheduler
--- (pods get bound to the node as on a server). @return the manager
function M.with_scheduler(s)
  local m = require("moonlet.controller").new({ client = s.client, log = function() end })
  m:add(s.loaded.controllers["scheduler"].value)
  m:start()
  return m
end

--- Polls fn every 5 ms until it returns true or `ms` (default 3000) pass.
--- @return whether fn came true in time
function M.wait_until(fn, ms)
  local loop = require("moonlet.loop")
  local deadline = loop.now() + (ms or 3000)
  while not fn() do
    if loop.now() > deadline then return false end
    loop.sleep(5)
  end
  return true
end

--- Ends a spec's run on stack `s` (anything with a `store`; inside the
--- fake loop): closes every open watch, lets their coroutines finish,
--- closes the store, then raises `err` again when the spec's body failed
--- (ok false), followed by the lines of `log` when given.
function M.close(s, ok, err, log)
  require("moonlet.api.handlers").stop_watches()
  require("moonlet.loop").sleep(5)
  s.store:close()
  if ok then return end
  if log then error(tostring(err) .. "\n" .. table.concat(log, "\n"), 0) end
  error(err, 0)
end

return M
