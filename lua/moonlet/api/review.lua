-- moonlet.api.review: the create handler of the review kinds (access and
-- identity reviews): the body is decoded and checked like any create, the
-- kind's fill function answers it, and nothing is stored (Kubernetes
-- answers these 201 without persisting them either).
local handlers = require("moonlet.api.handlers")

local M = {}

--- A verb handler for `create` that answers with fill(obj) applied.
function M.handler(fill)
  return function(ctx)
    local obj, st = handlers.decode_body(ctx)
    if not obj then return ctx:fail(st) end
    st = handlers.admit_shape(ctx, obj)
    if st then return ctx:fail(st) end
    obj.metadata = type(obj.metadata) == "table" and obj.metadata or {}
    obj.metadata.creationTimestamp = nil
    fill(obj)
    return ctx:reply(201, obj)
  end
end

return M
