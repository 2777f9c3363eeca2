-- job_indexes: the completion-index interval lists of Indexed Jobs
-- ("0,2-5,7": status.completedIndexes, status.failedIndexes and a success
-- policy's succeededIndexes) as sets of integers, with Kubernetes' lenient
-- parsing for status, its strict parsing for validation, and its printing.
local M = {}

--- Parses an interval list leniently (parseIndexesFromString): fragments
-- that do not parse are skipped, parsing stops at the first index at or
-- above `limit`, and an interval's end is clipped to limit - 1.
-- @return set of integers (index -> true)
function M.parse(s, limit)
  local set = {}
  if type(s) ~= "string" then return set end
  for part in s:gmatch("[^,]+") do
    local a, b = part:match("^(%d+)%-(%d+)$")
    if not a then a = part:match("^(%d+)$"); b = a end
    a, b = tonumber(a), tonumber(b)
    if a then
      if a >= limit then break end
      for i = math.tointeger(a), math.min(math.tointeger(b), limit - 1) do set[i] = true end
    end
  end
  return set
end

local function parse_interval(s, completions)
  local parts = {}
  for p in (s .. "-"):gmatch("([^-]*)-") do parts[#parts + 1] = p end
  if #parts > 2 then
    return nil, string.format("the fragment %q violates the requirement that an index interval can have at "
      .. "most two parts separated by '-'", s)
  end
  local x = parts[1]:match("^%d+$") and math.tointeger(tonumber(parts[1]))
  if not x then return nil, string.format("cannot convert string to integer for index: %q", parts[1]) end
  if x >= completions then return nil, string.format("too large index: %q", parts[1]) end
  if #parts == 1 then return x, x end
  local y = parts[2]:match("^%d+$") and math.tointeger(tonumber(parts[2]))
  if not y then return nil, string.format("cannot convert string to integer for index: %q", parts[2]) end
  if y >= completions then return nil, string.format("too large index: %q", parts[2]) end
  if x >= y then return nil, string.format("non-increasing order, previous: %d, current: %d", x, y) end
  return x, y
end

--- Parses strictly (validateIndexesFormat).
-- @return number of indexes, or nil and Kubernetes' error text
function M.validate(s, completions)
  if s == "" then return 0 end
  local total, last = 0, nil
  for part in (s .. ","):gmatch("([^,]*),") do
    local x, y = parse_interval(part, completions)
    if not x then return nil, y end
    if last and last >= x then
      return nil, string.format("non-increasing order, previous: %d, current: %d", last, x)
    end
    total, last = total + y - x + 1, y
  end
  return total
end

--- Formats a set as Kubernetes prints intervals: runs of three or more as
-- "a-b", a pair as "a,b".
function M.format(set)
  local list = {}
  for i in pairs(set) do list[#list + 1] = i end
  table.sort(list)
  local out, i = {}, 1
  while i <= #list do
    local j = i
    while j < #list and list[j + 1] == list[j] + 1 do j = j + 1 end
    if j == i then
      out[#out + 1] = tostring(list[i])
    elseif j == i + 1 then
      out[#out + 1] = list[i] .. "," .. list[j]
    else
      out[#out + 1] = list[i] .. "-" .. list[j]
    end
    i = j + 1
  end
  return table.concat(out, ",")
end

--- Number of members of a set.
function M.count(set)
  local n = 0
  for _ in pairs(set) do n = n + 1 end
  return n
end

return M
