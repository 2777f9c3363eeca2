-- `moonlet api-resources`: the server's preferred resources as kubectl
-- prints them (NAME SHORTNAMES APIVERSION NAMESPACED KIND), sorted by group
-- then name; -o wide adds VERBS and CATEGORIES, -o name the names only.
local common = require("moonlet.cli.common")
local tprint = require("moonlet.printers.table")

local M = {}

M.usage = "Usage:\n  moonlet api-resources [flags]"

M.flags = {
  { name = "output", short = "o", type = "string", help = "Output format: wide|name." },
  { name = "no-headers", type = "bool", help = "When using the default or custom-column output format, don't print headers." },
  { name = "namespaced", type = "string", help = "If false, non-namespaced resources will be returned, otherwise namespaced ones." },
  { name = "api-group", type = "string", help = "Limit to resources in the specified API group." },
  { name = "sort-by", type = "string", help = "If non-empty, sort list of resources using specified field (name or kind)." },
  { name = "verbs", type = "list", split = true, help = "Limit to resources that support the specified verbs." },
}

local function has_all(list, wanted)
  local set = {}
  for _, v in ipairs(list or {}) do set[v] = true end
  for _, w in ipairs(wanted) do if not set[w] then return false end end
  return true
end

function M.run(ctx, argv)
  local f = ctx.flags
  if #argv > 0 then common.fail("unexpected arguments: " .. table.concat(argv, " ")) end
  local fmt = f.output or ""
  if fmt ~= "" and fmt ~= "wide" and fmt ~= "name" then
    common.fail(string.format('--output %s is not available', fmt))
  end
  local c = common.client(ctx)
  local list, st = c:discovery()
  if not list then common.fail_status(ctx, st) end
  local rows = {}
  for _, r in ipairs(list) do
    local keep = r.preferred
    if f.namespaced ~= nil then keep = keep and (tostring(r.namespaced) == f.namespaced) end
    if f["api-group"] ~= nil then keep = keep and r.group == f["api-group"] end
    if #f.verbs > 0 then keep = keep and has_all(r.verbs, f.verbs) end
    if keep then rows[#rows + 1] = r end
  end
  local sort_by = f["sort-by"]
  table.sort(rows, function(a, b)
    local x, y
    if sort_by == "name" then x, y = a.name, b.name
    elseif sort_by == "kind" then x, y = a.kind, b.kind
    else x, y = a.group, b.group end
    if x ~= y then return x < y end
    return a.name < b.name
  end)
  if fmt == "name" then
    for _, r in ipairs(rows) do
      ctx.out((r.group ~= "" and (r.name .. "." .. r.group) or r.name) .. "\n")
    end
    return 0
  end
  local headers = { "NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND" }
  if fmt == "wide" then
    headers[#headers + 1] = "VERBS"
    headers[#headers + 1] = "CATEGORIES"
  end
  local out = {}
  for _, r in ipairs(rows) do
    local row = { r.name, table.concat(r.short_names, ","), r.api_version,
      tostring(r.namespaced), r.kind }
    if fmt == "wide" then
      local verbs = {}
      for i, v in ipairs(r.verbs or {}) do verbs[i] = v end
      row[#row + 1] = "[" .. table.concat(verbs, " ") .. "]"
      local cats = {}
      for i, v in ipairs(r.categories or {}) do cats[i] = v end
      row[#row + 1] = table.concat(cats, ",")
    end
    out[#out + 1] = row
  end
  tprint.printer({ no_headers = f["no-headers"], out = ctx.out }):print_rows(headers, out)
  return 0
end

return M
