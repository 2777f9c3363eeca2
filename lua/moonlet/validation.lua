-- moonlet.validation: apimachinery field errors (field.Error, ErrorList,
-- the aggregate text) and the content validators every kind's validation
-- uses, with Kubernetes' exact messages; plus ValidateObjectMeta.
--
--   local e = validation.invalid("metadata.name", "Foo_", msg)
--   e:error()  --> 'metadata.name: Invalid value: "Foo_": ...'
--   e:body()   --> 'Invalid value: "Foo_": ...' (Status causes[].message)
--   local errs = validation.errors(); errs:add(e); #errs; errs:aggregate()
--
-- A field error is a table {type=, field=, value=, detail=}; value nil means
-- the value is not printed, json.null prints as null.
local core = require("moonlet.core.selector")

local M = {}

M.TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024

-- {======================================================= field errors

local Error = {}
Error.__index = Error

--- field.Error.ErrorBody(): what Kubernetes puts in causes[].message.
function Error:body()
  if self.value == nil then return core.error_body(self.type, self.detail) end
  return core.error_body(self.type, self.detail, self.value)
end

--- field.Error.Error(): "<field>: <body>".
function Error:error()
  return (self.field or "<nil>") .. ": " .. self:body()
end

Error.__tostring = Error.error

local function new_error(type_, field, value, detail)
  return setmetatable({ type = type_, field = field, value = value, detail = detail or "" }, Error)
end

--- Turns a plain {type, field, value, detail} table into a field error.
function M.wrap(e)
  if getmetatable(e) == Error then return e end
  return setmetatable(e, Error)
end

function M.is_error(e) return getmetatable(e) == Error end

function M.invalid(field, value, detail)
  return new_error("FieldValueInvalid", field, value, detail)
end

function M.required(field, detail)
  return new_error("FieldValueRequired", field, nil, detail)
end

function M.forbidden(field, detail)
  return new_error("FieldValueForbidden", field, nil, detail)
end

function M.not_found(field, value)
  return new_error("FieldValueNotFound", field, value, "")
end

function M.duplicate(field, value)
  return new_error("FieldValueDuplicate", field, value, "")
end

--- NotSupported: detail lists the quoted valid values.
function M.not_supported(field, value, valid_values)
  local detail = ""
  if valid_values and #valid_values > 0 then
    local q = {}
    for i, v in ipairs(valid_values) do q[i] = core.go_quote(tostring(v)) end
    detail = "supported values: " .. table.concat(q, ", ")
  end
  return new_error("FieldValueNotSupported", field, value, detail)
end

--- TooLong: the value is kept on the error but never printed.
function M.too_long(field, value, max)
  local detail
  if max and max >= 0 then
    detail = string.format("may not be more than %d %s", max, max == 1 and "byte" or "bytes")
  else
    detail = "value is too long"
  end
  return new_error("FieldValueTooLong", field, value, detail)
end

--- TooMany: `actual` (nil = unknown, not printed) items where `max` fit.
function M.too_many(field, actual, max)
  local detail = (max and max >= 0) and string.format("must have at most %d items", max)
    or "has too many items"
  return new_error("FieldValueTooMany", field, actual, detail)
end

function M.type_invalid(field, value, detail)
  return new_error("FieldValueTypeInvalid", field, value, detail)
end

function M.internal_error(field, err)
  return new_error("InternalError", field, nil, tostring(err))
end

-- }=======================================================

-- {======================================================= error lists

local List = {}
List.__index = List

--- A new error list; `#errs` counts its errors.
function M.errors(initial)
  local l = setmetatable({}, List)
  if initial then l:add_all(initial) end
  return l
end

function List:add(e)
  if e then self[#self + 1] = M.wrap(e) end
  return self
end

function List:add_all(list)
  for _, e in ipairs(list or {}) do self:add(e) end
  return self
end

--- A plain array of the errors (for status.invalid and friends).
function List:list()
  local out = {}
  for i = 1, #self do out[i] = self[i] end
  return out
end

--- utilerrors.NewAggregate(list).Error(): one message as is, several
--- (duplicates dropped) as "[a, b]"; "" when empty.
function M.aggregate(list)
  local seen, msgs = {}, {}
  for _, e in ipairs(list) do
    local m = type(e) == "table" and (getmetatable(e) == Error and e:error()
      or M.wrap(e):error()) or tostring(e)
    if not seen[m] then
      seen[m] = true
      msgs[#msgs + 1] = m
    end
  end
  if #msgs == 1 then return msgs[1] end
  if #msgs == 0 then return "" end
  return "[" .. table.concat(msgs, ", ") .. "]"
end

function List:aggregate() return M.aggregate(self) end

List.__tostring = List.aggregate

-- }=======================================================

-- {======================================================= content validators
-- Each returns a list of messages, empty when the value is valid.

local DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
local DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT .. "(\\." .. DNS1123_LABEL_FMT .. ")*"
local DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
local C_IDENT_FMT = "[A-Za-z_][A-Za-z0-9_]*"
local ENV_VAR_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"

--- validation.RegexError: msg (e.g. 'a' or 'b', regex used for validation is 'fmt')
function M.regex_error(msg, fmt, ...)
  local examples = { ... }
  if #examples == 0 then
    return msg .. " (regex used for validation is '" .. fmt .. "')"
  end
  msg = msg .. " (e.g. "
  for i, ex in ipairs(examples) do
    if i > 1 then msg = msg .. " or " end
    msg = msg .. "'" .. ex .. "', "
  end
  return msg .. "regex used for validation is '" .. fmt .. "')"
end

function M.max_len_error(n) return string.format("must be no more than %d characters", n) end

function M.inclusive_range_error(lo, hi)
  return string.format("must be between %d and %d, inclusive", lo, hi)
end

M.empty_error = "must be non-empty"

local function dns1123_label_ok(s)
  return s:match("^[a-z0-9]$") ~= nil or s:match("^[a-z0-9][-a-z0-9]*[a-z0-9]$") ~= nil
end

local function dns1123_subdomain_ok(s)
  if s == "" then return false end
  for part in (s .. "."):gmatch("([^.]*)%.") do
    if not dns1123_label_ok(part) then return false end
  end
  return true
end

function M.is_dns1123_subdomain(s)
  return core.dns1123_subdomain_errors(s)
end

function M.is_dns1123_label(s)
  local errs = {}
  if #s > 63 then errs[#errs + 1] = M.max_len_error(63) end
  if not dns1123_label_ok(s) then
    if dns1123_subdomain_ok(s) then
      errs[#errs + 1] = "must not contain dots"
    else
      errs[#errs + 1] = M.regex_error("a lowercase RFC 1123 label must consist of lower case "
        .. "alphanumeric characters or '-', and must start and end with an alphanumeric "
        .. "character", DNS1123_LABEL_FMT, "my-name", "123-abc")
    end
  end
  return errs
end

function M.is_dns1035_label(s)
  local errs = {}
  if #s > 63 then errs[#errs + 1] = M.max_len_error(63) end
  if not (s:match("^[a-z]$") or s:match("^[a-z][-a-z0-9]*[a-z0-9]$")) then
    errs[#errs + 1] = M.regex_error("a DNS-1035 label must consist of lower case alphanumeric "
      .. "characters or '-', start with an alphabetic character, and end with an "
      .. "alphanumeric character", DNS1035_LABEL_FMT, "my-name", "abc-123")
  end
  return errs
end

--- IsQualifiedName (= content.IsLabelKey): label keys, finalizers, ...
function M.is_qualified_name(s) return core.label_key_errors(s) end

function M.is_valid_label_value(s) return core.label_value_errors(s) end

function M.is_valid_port_num(port)
  if math.type(port) == "integer" and port >= 1 and port <= 65535 then return {} end
  return { M.inclusive_range_error(1, 65535) }
end

--- IsValidPortName (IANA_SVC_NAME).
function M.is_valid_port_name(port)
  local errs = {}
  if #port > 15 then errs[#errs + 1] = M.max_len_error(15) end
  if not port:match("^[-a-z0-9]+$") then
    errs[#errs + 1] = "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
  end
  if not port:match("[a-z]") then errs[#errs + 1] = "must contain at least one letter (a-z)" end
  if port:find("--", 1, true) then errs[#errs + 1] = "must not contain consecutive hyphens" end
  if #port > 0 and (port:sub(1, 1) == "-" or port:sub(-1) == "-") then
    errs[#errs + 1] = "must not begin or end with a hyphen"
  end
  return errs
end

function M.is_c_identifier(s)
  if s:match("^[A-Za-z_][A-Za-z0-9_]*$") then return {} end
  return { M.regex_error("a valid C identifier must start with alphabetic character or '_', "
    .. "followed by a string of alphanumeric characters or '_'", C_IDENT_FMT,
    "my_name", "MY_NAME", "MyName") }
end

--- IsEnvVarName, including the '.'/'..' prefix checks.
function M.is_env_var_name(s)
  local errs = {}
  if not s:match("^[-._a-zA-Z][-._a-zA-Z0-9]*$") then
    errs[#errs + 1] = M.regex_error("a valid environment variable name must consist of "
      .. "alphabetic characters, digits, '_', '-', or '.', and must not start with a digit",
      ENV_VAR_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1")
  end
  if s == "." then
    errs[#errs + 1] = "must not be '.'"
  elseif s == ".." then
    errs[#errs + 1] = "must not be '..'"
  elseif s:sub(1, 2) == ".." then
    errs[#errs + 1] = "must not start with '..'"
  end
  return errs
end

-- Name validators (ValidateNameFunc): fn(name, prefix) -> messages. With
-- prefix=true the name is a generateName, whose trailing '-' is allowed.
local function mask_trailing_dash(name)
  if #name > 1 and name:sub(-1) == "-" then return name:sub(1, -3) .. "a" end
  return name
end

function M.name_is_dns_subdomain(name, prefix)
  if prefix then name = mask_trailing_dash(name) end
  return M.is_dns1123_subdomain(name)
end

function M.name_is_dns_label(name, prefix)
  if prefix then name = mask_trailing_dash(name) end
  return M.is_dns1123_label(name)
end

function M.name_is_dns1035_label(name, prefix)
  if prefix then name = mask_trailing_dash(name) end
  return M.is_dns1035_label(name)
end

-- }=======================================================

-- {======================================================= object meta

local function child(path, name)
  if path == nil or path == "" then return name end
  return path .. "." .. name
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

--- ValidateLabels: keys and values; every error sits at `path` itself.
function M.validate_labels(labels, path, errs)
  errs = errs or M.errors()
  -- Every create and update comes here: answer the valid case in C.
  if labels == nil or (type(labels) == "table" and core.labels_valid(labels)) then return errs end
  for _, k in ipairs(sorted_keys(labels)) do
    for _, msg in ipairs(M.is_qualified_name(k)) do errs:add(M.invalid(path, k, msg)) end
    local v = labels[k]
    if type(v) ~= "string" then
      errs:add(M.type_invalid(path, v, "must be a string"))
    else
      for _, msg in ipairs(M.is_valid_label_value(v)) do errs:add(M.invalid(path, v, msg)) end
    end
  end
  return errs
end

--- ValidateAnnotations: keys as lowercased qualified names, total size.
function M.validate_annotations(annotations, path, errs)
  errs = errs or M.errors()
  if annotations == nil or (type(annotations) == "table"
      and core.annotations_valid(annotations, M.TOTAL_ANNOTATION_SIZE_LIMIT)) then
    return errs
  end
  local total = 0
  for _, k in ipairs(sorted_keys(annotations)) do
    for _, msg in ipairs(M.is_qualified_name(k:lower())) do errs:add(M.invalid(path, k, msg)) end
    total = total + #k + #tostring(annotations[k])
  end
  if total > M.TOTAL_ANNOTATION_SIZE_LIMIT then
    errs:add(M.too_long(path, "", M.TOTAL_ANNOTATION_SIZE_LIMIT))
  end
  return errs
end

-- schema.FromAPIVersionAndKind: "group/version" or "version".
local function parse_group_version(api_version)
  if api_version == nil or api_version == "" then return "", "" end
  local slashes = select(2, api_version:gsub("/", ""))
  if slashes == 0 then return "", api_version end
  if slashes == 1 then return api_version:match("^(.-)/(.*)$") end
  return "", "" -- not a group version: Kubernetes keeps only the kind
end

--- ValidateOwnerReferences.
function M.validate_owner_references(refs, path, errs)
  errs = errs or M.errors()
  local first_controller = ""
  for _, ref in ipairs(refs or {}) do
    local group, version = parse_group_version(ref.apiVersion)
    local kind = ref.kind or ""
    if version == "" then
      errs:add(M.invalid(child(path, "apiVersion"), ref.apiVersion or "", "version must not be empty"))
    end
    if kind == "" then errs:add(M.invalid(child(path, "kind"), kind, "must not be empty")) end
    if (ref.name or "") == "" then
      errs:add(M.invalid(child(path, "name"), ref.name or "", "must not be empty"))
    end
    if (ref.uid or "") == "" then
      errs:add(M.invalid(child(path, "uid"), ref.uid or "", "must not be empty"))
    end
    if group == "" and version == "v1" and kind == "Event" then
      errs:add(M.invalid(path, ref, "/v1, Kind=Event is disallowed from being an owner"))
    end
    if ref.controller == true then
      local cur = kind .. "/" .. (ref.name or "")
      if first_controller ~= "" then
        errs:add(M.invalid(path, refs, string.format('Only one reference can have Controller '
          .. 'set to true. Found "true" in references for %s and %s', first_controller, cur)))
      else
        first_controller = cur
      end
    end
  end
  return errs
end

--- ValidateFinalizers.
function M.validate_finalizers(finalizers, path, errs)
  errs = errs or M.errors()
  local orphan, delete = false, false
  for _, f in ipairs(finalizers or {}) do
    for _, msg in ipairs(M.is_qualified_name(f)) do errs:add(M.invalid(path, f, msg)) end
    if f == "orphan" then orphan = true end
    if f == "foregroundDeletion" then delete = true end
  end
  if orphan and delete then
    errs:add(M.invalid(path, finalizers,
      "finalizer orphan and foregroundDeletion cannot be both set"))
  end
  return errs
end

local name_validators = {
  dns1123_subdomain = M.name_is_dns_subdomain,
  dns1123_label = M.name_is_dns_label,
  dns1035_label = M.name_is_dns1035_label,
}

--- ValidateObjectMeta(meta, requiresNamespace, nameFn, fldPath): name and
--- generateName through name_fn (fn(name, prefix) -> messages, or the name
--- of one above; default DNS-1123 subdomain), namespace, generation,
--- labels, annotations, ownerReferences, finalizers. Appends to `errs`
--- when given; returns the error list.
-- Field path -> its children's paths ("metadata" -> "metadata.labels",
-- ...): every create and update validates its metadata, which joined the
-- same eight paths each time. The paths callers pass are a handful of
-- literals; bounded all the same.
local META_CHILDREN = { "name", "generateName", "namespace", "generation", "labels",
  "annotations", "ownerReferences", "finalizers" }
local meta_paths, meta_paths_n = {}, 0

local function meta_child_paths(field)
  local p = meta_paths[field]
  if p then return p end
  p = {}
  for _, k in ipairs(META_CHILDREN) do p[k] = child(field, k) end
  if meta_paths_n >= 64 then meta_paths, meta_paths_n = {}, 0 end
  meta_paths[field], meta_paths_n = p, meta_paths_n + 1
  return p
end

-- Namespace names known to be valid DNS-1123 labels (the check cannot
-- change): a create's namespace is nearly always one of a few.
local good_namespaces, good_namespaces_n = {}, 0

local function namespace_messages(ns)
  if good_namespaces[ns] then return nil end
  local msgs = M.name_is_dns_label(ns, false)
  if #msgs == 0 then
    if good_namespaces_n >= 256 then good_namespaces, good_namespaces_n = {}, 0 end
    good_namespaces[ns], good_namespaces_n = true, good_namespaces_n + 1
    return nil
  end
  return msgs
end

function M.validate_object_meta(meta, namespaced, name_fn, field, errs)
  errs = errs or M.errors()
  field = field or "metadata"
  meta = meta or {}
  local paths = meta_child_paths(field)
  if type(name_fn) == "string" then name_fn = name_validators[name_fn] end
  name_fn = name_fn or M.name_is_dns_subdomain
  local gen_name = meta.generateName or ""
  if gen_name ~= "" then
    for _, msg in ipairs(name_fn(gen_name, true)) do
      errs:add(M.invalid(paths.generateName, gen_name, msg))
    end
  end
  local name = meta.name or ""
  if name == "" then
    errs:add(M.required(paths.name, "name or generateName is required"))
  else
    for _, msg in ipairs(name_fn(name, false)) do
      errs:add(M.invalid(paths.name, name, msg))
    end
  end
  local ns = meta.namespace or ""
  if namespaced then
    if ns == "" then
      errs:add(M.required(paths.namespace, ""))
    else
      for _, msg in ipairs(namespace_messages(ns) or {}) do
        errs:add(M.invalid(paths.namespace, ns, msg))
      end
    end
  elseif ns ~= "" then
    errs:add(M.forbidden(paths.namespace, "not allowed on this type"))
  end
  if math.type(meta.generation) and meta.generation < 0 then
    errs:add(M.invalid(paths.generation, meta.generation,
      "must be greater than or equal to 0"))
  end
  M.validate_labels(meta.labels, paths.labels, errs)
  M.validate_annotations(meta.annotations, paths.annotations, errs)
  M.validate_owner_references(meta.ownerReferences, paths.ownerReferences, errs)
  M.validate_finalizers(meta.finalizers, paths.finalizers, errs)
  return errs
end

--- ValidateObjectMetaUpdate's immutable-field checks and the meta checks
--- that also apply on update (labels, annotations, owners, finalizers).
function M.validate_object_meta_update(new, old, field, errs)
  errs = errs or M.errors()
  field = field or "metadata"
  new, old = new or {}, old or {}
  if old.deletionTimestamp ~= nil then
    local had, extra = {}, {}
    for _, f in ipairs(old.finalizers or {}) do had[f] = true end
    for _, f in ipairs(new.finalizers or {}) do
      if not had[f] then extra[#extra + 1] = f; had[f] = true end
    end
    if #extra > 0 then
      table.sort(extra)
      local q = {}
      for i, f in ipairs(extra) do q[i] = core.go_quote(f) end
      errs:add(M.forbidden(child(field, "finalizers"), "no new finalizers can be added if the "
        .. "object is being deleted, found new finalizers []string{" .. table.concat(q, ", ") .. "}"))
    end
  end
  if (new.resourceVersion or "") == "" then
    errs:add(M.invalid(child(field, "resourceVersion"), new.resourceVersion or "",
      "must be specified for an update"))
  end
  if math.type(new.generation) and math.type(old.generation) and new.generation < old.generation then
    errs:add(M.invalid(child(field, "generation"), new.generation, "must not be decremented"))
  end
  for _, f in ipairs({ "name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
    "deletionGracePeriodSeconds" }) do
    if new[f] ~= old[f] then
      local v = new[f]
      if v == nil then v = require("moonlet.json").null end
      errs:add(M.invalid(child(field, f), v, "field is immutable"))
    end
  end
  M.validate_labels(new.labels, child(field, "labels"), errs)
  M.validate_annotations(new.annotations, child(field, "annotations"), errs)
  M.validate_owner_references(new.ownerReferences, child(field, "ownerReferences"), errs)
  M.validate_finalizers(new.finalizers, child(field, "finalizers"), errs)
  return errs
end

-- }=======================================================

return M
