-- resource.Quantity for Lua: parse "100m", "1.5", "128Mi", "1e3", compare,
-- add, and print in Kubernetes' canonical form ("1500m", "2k", "192Mi"), at
-- the milli precision the API server rounds resource lists up to. Used by
-- pod defaults (QoS class, canonical resource lists) and describe node.
local M = {}

local DECIMAL = { [""] = 0, n = -9, u = -6, m = -3, k = 3, M = 6, G = 9, T = 12, P = 15, E = 18 }
local BINARY = { Ki = 1, Mi = 2, Gi = 3, Ti = 4, Pi = 5, Ei = 6 }
local BINARY_SUFFIX = { [0] = "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" }
local DECIMAL_SUFFIX = { [-3] = "m", [0] = "", [3] = "k", [6] = "M", [9] = "G", [12] = "T",
  [15] = "P", [18] = "E" }

--- The message the API server gives for text that is not a quantity.
M.FORMAT_ERROR = "quantities must match the regular expression "
  .. "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"

local Q = {}
Q.__index = Q

local function new(milli, format) return setmetatable({ milli = milli, format = format }, Q) end

-- ceil(a / b) for integers, b > 0
local function ceil_div(a, b)
  local q = a // b
  if q * b ~= a then q = q + 1 end
  return q
end

-- milli-units of digits * 2^(10*bin) * 10^exp10 (exp10 already includes the
-- +3 for milli), rounded up; floats only where integers would overflow.
local function scaled(digits, bin, exp10)
  local v = digits
  for _ = 1, bin do
    if v > math.maxinteger // 1024 then return nil end
    v = v * 1024
  end
  if exp10 >= 0 then
    for _ = 1, exp10 do
      if v > math.maxinteger // 10 then return nil end
      v = v * 10
    end
    return v
  end
  if exp10 < -18 then return v > 0 and 1 or 0 end
  return ceil_div(v, 10 ^ -exp10 // 1)
end

--- Parses a quantity (string or JSON number). @return quantity or nil, msg
function M.parse(v)
  if math.type(v) == "integer" then return new(v * 1000, "DecimalSI") end
  if type(v) == "number" then v = string.format("%.17g", v) end
  if type(v) ~= "string" then return nil, M.FORMAT_ERROR end
  local sign, num, suffix = v:match("^([+-]?)([0-9.]+)(.*)$")
  if not num or not num:find("%d") or select(2, num:gsub("%.", "")) > 1 then
    return nil, M.FORMAT_ERROR
  end
  local ip, fp = num:match("^(%d*)%.?(%d*)$")
  local digits_s = ((ip or "") .. (fp or "")):gsub("^0+", "")
  if #digits_s > 18 then return nil, M.FORMAT_ERROR end
  local digits = tonumber(digits_s ~= "" and digits_s or "0") // 1
  local exp10, bin, format = -#(fp or ""), 0, "DecimalSI"
  if BINARY[suffix] then
    bin, format = BINARY[suffix], "BinarySI"
  elseif DECIMAL[suffix] then
    exp10 = exp10 + DECIMAL[suffix]
  else
    local e = suffix:match("^[eE]([+-]?%d+)$")
    if not e then return nil, M.FORMAT_ERROR end
    exp10, format = exp10 + tonumber(e), "DecimalExponent"
  end
  -- beyond int64 milli-units (exa scale) a float keeps the magnitude
  local milli = scaled(digits, bin, exp10 + 3) or digits * 1024.0 ^ bin * 10.0 ^ (exp10 + 3)
  if sign == "-" then milli = -milli end
  return new(milli, format)
end

--- A quantity of `milli` milli-units (format DecimalSI unless given).
function M.from_milli(milli, format) return new(milli, format or "DecimalSI") end

function M.zero() return new(0, "DecimalSI") end

--- Canonical text, as Quantity.String().
function Q:string()
  local milli, format = self.milli, self.format
  if milli == 0 then return "0" end
  local neg = milli < 0
  local a = neg and -milli or milli
  if format == "BinarySI" and (a < 1024000 or a % 1000 ~= 0) then format = "DecimalSI" end
  local out
  if format == "BinarySI" then
    local units, k = a // 1000, 0
    while k < 6 and units % 1024 == 0 do units, k = units // 1024, k + 1 end
    out = string.format("%.0f", units) .. BINARY_SUFFIX[k]
  else
    local m, e = a, -3
    while m % 1000 == 0 and e < 18 do m, e = m // 1000, e + 3 end
    local ms = string.format("%.0f", m)
    if format == "DecimalExponent" then
      out = ms .. (e == 0 and "" or ("e" .. e))
    else
      out = ms .. DECIMAL_SUFFIX[e]
    end
  end
  return (neg and "-" or "") .. out
end
Q.__tostring = Q.string

--- Sum, keeping the receiver's format (as Quantity.Add).
function Q:add(o) return new(self.milli + o.milli, self.format) end

--- -1, 0 or 1.
function Q:cmp(o)
  if self.milli < o.milli then return -1 end
  if self.milli > o.milli then return 1 end
  return 0
end

--- Whole units, rounded up (Quantity.Value()).
function Q:value() return ceil_div(self.milli, 1000) end

--- The canonical text of a quantity value, or the value unchanged when it
--- does not parse (validation reports it).
function M.canonical(v)
  local q = M.parse(v)
  if not q then return v end
  return q:string()
end

M.is_quantity = function(v) return getmetatable(v) == Q end

return M
