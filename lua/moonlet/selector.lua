-- moonlet.selector: Kubernetes label and field selectors for scripts.
--   sel, err  = selector.parse("app=web,tier in (a,b)")    -- labels.Parse
--   sel, errs = selector.from_table(spec.selector, "spec.selector")
--   sel:matches(labels) / sel:string() / tostring(sel) / sel:empty() / sel:nothing()
--   fs, err   = selector.parse_fields("status.phase=Running")
--   fs:matches(obj) / fs:keys() / fs:string()
--   selector.format_labels(map), selector.format_selector(label_selector)
-- Matching, parsing and validation run in C (core/selector.c).
local core = require("moonlet.core.selector")
local validation = require("moonlet.validation")

local M = {}

--- labels.Parse: nil, Kubernetes' message on error; "" matches everything.
function M.parse(str)
  if type(str) ~= "string" then error("selector.parse: string expected", 2) end
  return core.parse(str)
end

local function wrap_errors(errs)
  local list = validation.errors()
  for _, e in ipairs(errs) do list:add(e) end
  return list
end

--- A LabelSelector table ({matchLabels=, matchExpressions=}) as a selector,
--- after ValidateLabelSelector. nil matches nothing, {} everything.
--- @return sel | nil, errs (a moonlet.validation error list)
function M.from_table(ls, field_path)
  local sel, errs = core.from_table(ls, field_path)
  if not sel then return nil, wrap_errors(errs) end
  return sel
end

--- labels.Everything() / labels.Nothing().
function M.everything() return core.new() end
function M.nothing() return core.nothing() end

--- SelectorFromSet(map) (no validation) or, with validate=true,
--- ValidatedSelectorFromSet: nil, errs on the first bad key or value.
function M.from_set(map, validate)
  local keys = {}
  for k in pairs(map or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  local sel = core.new()
  for _, k in ipairs(keys) do
    local ok, errs = sel:add(k, "=", { tostring(map[k]) }, not validate)
    if not ok then return nil, wrap_errors(errs) end
  end
  return sel
end

--- An empty selector to build with sel:add(key, op, values), where op is a
--- selection spelling: in, notin, =, ==, !=, gt, lt, exists, !.
function M.new() return core.new() end

--- fields.ParseSelector: nil, Kubernetes' message on error.
function M.parse_fields(str)
  if type(str) ~= "string" then error("selector.parse_fields: string expected", 2) end
  return core.parse_fields(str)
end

--- fields.EscapeValue.
M.escape_field_value = core.escape_field_value

--- labels.FormatLabels: "a=b,c=d" sorted by key, or "<none>".
function M.format_labels(map)
  local keys = {}
  for k in pairs(map or {}) do keys[#keys + 1] = k end
  if #keys == 0 then return "<none>" end
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = k .. "=" .. tostring(map[k]) end
  return table.concat(keys, ",")
end

--- metav1.FormatLabelSelector: the selector string, "<none>" when empty
--- (or nil), "<error>" when it does not convert.
function M.format_selector(ls)
  local sel = core.from_table(ls)
  if not sel then return "<error>" end
  local s = sel:string()
  if s == "" then return "<none>" end
  return s
end

--- metav1.LabelSelectorAsMap: matchLabels plus single-value In
--- expressions. @return map (nil for a nil selector), err (the partial map
--- is still returned with an error, as Kubernetes does)
function M.as_map(ls)
  if ls == nil then return nil end
  local out = {}
  for k, v in pairs(ls.matchLabels or {}) do out[k] = v end
  for _, e in ipairs(ls.matchExpressions or {}) do
    local op = e.operator or ""
    if op == "In" then
      if #(e.values or {}) ~= 1 then
        return out, string.format("operator %s without a single value cannot be converted "
          .. "into the old label selector format", core.go_quote(op))
      end
      out[e.key] = e.values[1]
    elseif op == "NotIn" or op == "Exists" or op == "DoesNotExist" then
      return out, string.format("operator %s cannot be converted into the old label selector "
        .. "format", core.go_quote(op))
    else
      return out, string.format("%s is not a valid selector operator", core.go_quote(op))
    end
  end
  return out
end

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

local function split(s, sep)
  local out, start = {}, 1
  while true do
    local i = s:find(sep, start, true)
    if not i then out[#out + 1] = s:sub(start); return out end
    out[#out + 1] = s:sub(start, i - 1)
    start = i + #sep
  end
end

--- labels.ConvertSelectorToLabelsMap: only "k=v" pairs, comma-separated.
--- @return map, err (the partial map is returned with an error)
function M.to_labels_map(str)
  local out = {}
  if str == nil or str == "" then return out end
  for _, label in ipairs(split(str, ",")) do
    local kv = split(label, "=")
    if #kv ~= 2 then
      return out, "invalid selector: [" .. table.concat(kv, " ") .. "]"
    end
    local key, value = trim(kv[1]), trim(kv[2])
    local kerr = core.label_key_errors(key)
    if #kerr > 0 then
      return out, validation.invalid(nil, key, table.concat(kerr, "; ")):error()
    end
    local verr = core.label_value_errors(value)
    if #verr > 0 then
      return out, validation.invalid("[" .. key .. "]", value, table.concat(verr, "; ")):error()
    end
    out[key] = value
  end
  return out
end

local api_ops = { ["in"] = "In", notin = "NotIn", exists = "Exists", ["!"] = "DoesNotExist" }

--- metav1.ParseToLabelSelector: a selector string as a LabelSelector table.
function M.to_label_selector(str)
  local sel, err = core.parse(str)
  if not sel then
    return nil, string.format('couldn\'t parse the selector string "%s": %s', str, err)
  end
  local ls = { matchLabels = {}, matchExpressions = {} }
  for _, r in ipairs(sel:requirements()) do
    if r.operator == "=" or r.operator == "==" then
      ls.matchLabels[r.key] = r.values[1]
    elseif api_ops[r.operator] then
      ls.matchExpressions[#ls.matchExpressions + 1] = {
        key = r.key, operator = api_ops[r.operator], values = r.values }
    elseif r.operator == "gt" or r.operator == "lt" then
      return nil, string.format("%s isn't supported in label selectors", core.go_quote(r.operator))
    else
      return nil, string.format("%s is not a valid label selector operator",
        core.go_quote(r.operator))
    end
  end
  return ls
end

-- Test hooks for the upstream lexer vectors.
M._tokens = core.tokens
M._parse_operator = core.parse_operator

return M
