-- Greeting (example.moonlet.dev/v1): the example custom kind. spec.message
-- is what the greeting controller publishes in a ConfigMap; status says
-- which ConfigMap and which generation it has seen. Printed as
-- NAME MESSAGE CONFIGMAP AGE.
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local validation = require("moonlet.validation")

-- A ConfigMap holds at most 1 MiB; keep the message well inside it.
local MAX_MESSAGE = 64 * 1024

return {
  group = "example.moonlet.dev", version = "v1", kind = "Greeting",
  plural = "greetings", singular = "greeting", short_names = { "gr" },
  namespaced = true,
  generation = true,          -- spec changes bump metadata.generation
  status_subresource = true,  -- status is written through /status only
  field_selectors = { "metadata.name", "metadata.namespace" },
  schema = S.kind("Greeting", {
    spec = S.struct("v1.GreetingSpec", { message = S.string }),
    status = S.struct("v1.GreetingStatus", { observedGeneration = S.int64, configMap = S.string }),
  }),
  defaults = function(obj)
    if type(obj.spec) ~= "table" then obj.spec = {} end
  end,
  validate = function(obj, errs)
    local msg = obj.spec and obj.spec.message
    if msg == nil or msg == "" then
      errs:add(validation.required("spec.message", ""))
    elseif #msg > MAX_MESSAGE then
      errs:add(validation.too_long("spec.message", nil, MAX_MESSAGE))
    end
  end,
  columns = {
    columns.name(),
    { name = "Message", type = "string", description = "The greeting",
      value = function(obj) return obj.spec and obj.spec.message end },
    { name = "ConfigMap", type = "string", description = "ConfigMap holding the greeting",
      value = function(obj) return obj.status and obj.status.configMap end },
    columns.age(),
  },
}
