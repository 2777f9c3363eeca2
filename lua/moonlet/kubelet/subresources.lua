-- Puts the pod subresources served by the kubelet's modules (`log`,
-- `exec`, `binding`) on the registered v1 Pod kind. The Pod kind plugin declares
-- them for discovery; kinds are re-registered on script reloads, so the
-- node agent re-installs them on each heartbeat and the scheduler on use.
local M = {}

--- Installs the handlers on the current v1/Pod definition (idempotent).
--- @return true when a Pod kind is registered
function M.install()
  local def = require("moonlet.api.kinds").by_kind("v1/Pod")
  if not def then return false end
  local h = def.subresource_handlers or {}
  h.log = h.log or require("moonlet.kubelet.logs").handler
  h.exec = h.exec or require("moonlet.kubelet.exec").handler
  h.binding = h.binding or require("moonlet.kubelet.binding").handler
  def.subresource_handlers = h
  return true
end

return M
