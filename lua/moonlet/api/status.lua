-- Kubernetes Status objects for API errors: the reasons, codes, messages and
-- details the API server sends (k8s.io/apimachinery pkg/api/errors).
local M = {}

local function status(code, reason, message, details)
  return {
    kind = "Status", apiVersion = "v1", metadata = {},
    status = "Failure", message = message, reason = reason,
    details = details, code = code,
  }
end
M.new = status

local function details(def, name)
  if not def then return { name = name } end
  local d = { name = name, kind = def.plural }
  if def.group ~= "" then d.group = def.group end
  return d
end

function M.not_found(def, name)
  return status(404, "NotFound",
    string.format('%s "%s" not found', def and def.qualified or "resource", name),
    details(def, name))
end

function M.already_exists(def, name)
  return status(409, "AlreadyExists",
    string.format('%s "%s" already exists', def.qualified, name), details(def, name))
end

function M.conflict(def, name, msg)
  return status(409, "Conflict",
    string.format('Operation cannot be fulfilled on %s "%s": %s', def.qualified, name, msg),
    details(def, name))
end

--- 422 from a list of field errors (moonlet.validation error tables).
function M.invalid(def, name, errs)
  local causes, texts = {}, {}
  for i, e in ipairs(errs) do
    causes[i] = { reason = e.type, message = e:body(), field = e.field }
    texts[i] = e:error()
  end
  local agg = #texts == 1 and texts[1] or ("[" .. table.concat(texts, ", ") .. "]")
  local d = { name = name, kind = def.kind, causes = causes }
  if def.group ~= "" then d.group = def.group end
  -- Kubernetes names the kind with its group: `ReplicaSet.apps "x"`.
  local qkind = def.group ~= "" and (def.kind .. "." .. def.group) or def.kind
  return status(422, "Invalid", string.format('%s "%s" is invalid: %s', qkind, name or "", agg), d)
end

function M.bad_request(msg) return status(400, "BadRequest", msg) end
function M.unauthorized() return status(401, "Unauthorized", "Unauthorized") end
function M.forbidden(msg, def, name) return status(403, "Forbidden", msg, def and details(def, name)) end
function M.method_not_allowed(msg)
  return status(405, "MethodNotAllowed", msg or "the server does not allow this method on the requested resource")
end
function M.not_acceptable(msg) return status(406, "NotAcceptable", msg) end
function M.expired(msg) return status(410, "Expired", msg) end
function M.too_large(limit)
  return status(413, "RequestEntityTooLarge", "Request entity too large: limit is " .. limit)
end
function M.unsupported_media_type(ct)
  return status(415, "UnsupportedMediaType", string.format("the body of the request was in an unknown format - accepted media types include: %s", ct))
end
function M.internal(msg)
  return status(500, "InternalError", "Internal error occurred: " .. tostring(msg),
    { causes = { { message = tostring(msg) } } })
end
function M.path_not_found(path)
  return status(404, "NotFound", "the server could not find the requested resource", { })
end

function M.success(def, name, uid)
  local d = details(def, name)
  d.uid = uid
  return { kind = "Status", apiVersion = "v1", metadata = {}, status = "Success", details = d }
end

return M
