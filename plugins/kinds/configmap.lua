-- v1 ConfigMap: data and binaryData maps, keys validated as config keys,
-- `immutable` honoured; printed as NAME DATA AGE.
local S = require("moonlet.api.schema")
local columns = require("moonlet.api.table")
local validation = require("moonlet.validation")
local json = require("moonlet.json")

local CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
local MAX_SIZE = 1024 * 1024

local function count(t)
  local n = 0
  for _ in pairs(t or {}) do n = n + 1 end
  return n
end

local function check_key(key, field, errs)
  if #key > 253 then
    errs:add(validation.invalid(field, key, "must be no more than 253 characters"))
  elseif key == "." or key == ".." then
    errs:add(validation.invalid(field, key, "must not be '.'"))
  elseif not key:match("^[-._a-zA-Z0-9]+$") then
    errs:add(validation.invalid(field, key, CONFIG_KEY_MSG))
  end
end

return {
  group = "", version = "v1", kind = "ConfigMap", plural = "configmaps", singular = "configmap",
  short_names = { "cm" }, namespaced = true,
  schema = S.kind("ConfigMap", { data = S.map(S.string), binaryData = S.map(S.string), immutable = S.boolean }),
  validate = function(obj, errs, old)
    local size = 0
    for k, v in pairs(obj.data or {}) do
      check_key(k, "data[" .. k .. "]", errs)
      size = size + #k + #v
      if obj.binaryData and obj.binaryData[k] ~= nil then
        errs:add(validation.invalid("data[" .. k .. "]", k, "duplicate of key present in binaryData"))
      end
    end
    for k, v in pairs(obj.binaryData or {}) do
      check_key(k, "binaryData[" .. k .. "]", errs)
      size = size + #k + #v
    end
    if size > MAX_SIZE then
      errs:add(validation.too_long("", "", MAX_SIZE))
    end
    if old and old.immutable == true then
      if obj.immutable ~= true then
        errs:add(validation.forbidden("immutable", "field is immutable when `immutable` is set"))
      end
      if json.encode(obj.data or {}) ~= json.encode(old.data or {}) then
        errs:add(validation.forbidden("data", "field is immutable when `immutable` is set"))
      end
      if json.encode(obj.binaryData or {}) ~= json.encode(old.binaryData or {}) then
        errs:add(validation.forbidden("binaryData", "field is immutable when `immutable` is set"))
      end
    end
  end,
  columns = {
    columns.name(),
    { name = "Data", type = "integer", description = "Number of keys",
      value = function(obj) return count(obj.data) + count(obj.binaryData) end },
    columns.age(),
  },
}
