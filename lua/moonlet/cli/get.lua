-- `moonlet get`: server-side Tables printed like kubectl (wide, -A,
-- --show-labels, -L, --no-headers), objects as yaml/json/name/jsonpath,
-- -w which keeps printing rows as watch events arrive, and --sort-by
-- (moonlet.cli.sort_by) over table rows and objects alike.
local common = require("moonlet.cli.common")
local tprint = require("moonlet.printers.table")
local jsonpath = require("moonlet.printers.jsonpath")
local json = require("moonlet.json")

local M = {}

M.usage = "Usage:\n  moonlet get [(-o|--output=)json|yaml|name|wide|jsonpath=...] (TYPE[.VERSION][.GROUP] [NAME ...] | TYPE[.VERSION][.GROUP]/NAME ...) [flags]"

M.flags = {
  { name = "output", short = "o", type = "string", help = "Output format: json|yaml|name|wide|jsonpath=TEMPLATE." },
  { name = "selector", short = "l", type = "string", help = "Selector (label query) to filter on." },
  { name = "field-selector", type = "string", help = "Selector (field query) to filter on." },
  { name = "all-namespaces", short = "A", type = "bool", help = "List the requested object(s) across all namespaces." },
  { name = "watch", short = "w", type = "bool", help = "After listing/getting the requested object, watch for changes." },
  { name = "watch-only", type = "bool", help = "Watch for changes to the requested object(s), without listing/getting first." },
  { name = "output-watch-events", type = "bool", help = "Output watch event objects when --watch or --watch-only is used." },
  { name = "show-labels", type = "bool", help = "When printing, show all labels as the last column." },
  { name = "label-columns", short = "L", type = "list", split = true, help = "Labels to be presented as columns." },
  { name = "no-headers", type = "bool", help = "When using the default or custom-column output format, don't print headers." },
  { name = "ignore-not-found", type = "bool", help = "If the requested object does not exist the command will return exit code 0." },
  { name = "show-kind", type = "bool", help = "If present, list the resource type for the requested object(s)." },
  { name = "sort-by", type = "string", default = "", help = "If non-empty, sort list types using this field specification. The field specification is expressed as a JSONPath expression (e.g. '{.metadata.name}')." },
  { name = "chunk-size", type = "int", default = 500, help = "Return large lists in chunks rather than all at once." },
  { name = "allow-missing-template-keys", type = "bool", default = true,
    help = "Ignore errors in templates when a field or map key is missing." },
}

-- What this CLI prints. kubectl's list also has the Go template and file
-- forms, which it alone renders: those names get a pointer to kubectl.
local FORMATS = "custom-columns,json,jsonpath,jsonpath-as-json,name,wide,yaml"
local KUBECTL_ONLY = { ["go-template"] = true, ["go-template-file"] = true, template = true,
  templatefile = true, ["jsonpath-file"] = true, ["custom-columns-file"] = true }

-- kubectl's categories (`get all`, `delete all --all`): a word no resource
-- answers to names every preferred resource that lists it among its
-- categories, in discovery order. nil when none does.
local function category(ctx, word)
  local c = common.client(ctx)
  if c:resolve(word) then return nil end
  local out = {}
  for _, r in ipairs(c:discovery() or {}) do
    if r.preferred then
      for _, cat in ipairs(r.categories or {}) do
        if cat == word then out[#out + 1] = r; break end
      end
    end
  end
  if #out > 0 then return out end
end

--- Splits `get` arguments into targets { {r=, names={...}} ... }.
function M.targets(ctx, argv)
  local targets = {}
  if #argv == 0 then return targets end
  local slash = false
  for _, a in ipairs(argv) do if a:find("/", 1, true) then slash = true end end
  if slash then
    for _, a in ipairs(argv) do
      local t, n = a:match("^([^/]+)/(.+)$")
      if not t then
        common.fail(string.format("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'moonlet get resource/<resource_name>' instead of 'moonlet get resource resource/<resource_name>'"))
      end
      local r = common.resolve(ctx, t)
      local last = targets[#targets]
      if last and last.r == r then
        last.names[#last.names + 1] = n
      else
        targets[#targets + 1] = { r = r, names = { n } }
      end
    end
    return targets
  end
  local names = {}
  for i = 2, #argv do names[#names + 1] = argv[i] end
  for word in argv[1]:gmatch("[^,]+") do
    local rs = category(ctx, word)
    if rs then
      for _, r in ipairs(rs) do targets[#targets + 1] = { r = r, names = names } end
    else
      targets[#targets + 1] = { r = common.resolve(ctx, word), names = names }
    end
  end
  return targets
end

local function strip_managed(obj)
  if type(obj) == "table" and type(obj.metadata) == "table" then
    obj.metadata.managedFields = nil
  end
  return obj
end

-- Lists or gets the objects of one target (not tables). Errors are
-- reported and skipped so other names still print.
local function fetch_objects(ctx, t, items)
  local c = common.client(ctx)
  local f = ctx.flags
  local ns = common.namespace(ctx)
  if #t.names > 0 then
    for _, name in ipairs(t.names) do
      local obj, st = c:get(t.r, ns, name)
      if obj then
        items[#items + 1] = strip_managed(common.fill_kind(t.r, obj))
      elseif not (f["ignore-not-found"] and st.code == 404) then
        ctx.errors[#ctx.errors + 1] = st
      end
    end
    return
  end
  local token
  repeat
    local list, st = c:list(t.r, { namespace = (not f["all-namespaces"]) and ns or nil,
      label_selector = f.selector, field_selector = f["field-selector"],
      limit = f["chunk-size"] > 0 and f["chunk-size"] or nil, continue = token })
    if not list then
      ctx.errors[#ctx.errors + 1] = st
      return
    end
    for _, obj in ipairs(list.items or {}) do
      items[#items + 1] = strip_managed(common.fill_kind(t.r, obj))
    end
    token = list.metadata and list.metadata.continue
  until token == nil or token == ""
  return true
end

local function jsonpath_opts(ctx)
  return {
    allow_missing = ctx.flags["allow-missing-template-keys"],
    encode = function(v) return json.encode(v, { sort_keys = true }) end,
    is_array = json.is_array, null = json.null,
  }
end

-- Prints objects in a non-table format; returns true if anything was written.
local function print_objects(ctx, items, single, fmt)
  if fmt == "name" then
    for _, obj in ipairs(items) do
      local r = obj.__r
      ctx.out(common.object_name(r, obj.metadata.name) .. "\n")
    end
    return #items > 0
  end
  for _, obj in ipairs(items) do obj.__r = nil end
  local spec = fmt:match("^custom%-columns=(.*)$")
  if spec then return M.custom_columns(ctx, spec, items) end
  local data = single and items[1] or common.list_of(items)
  if fmt == "json" then
    ctx.out(common.to_json(data))
  elseif fmt == "yaml" then
    ctx.out(common.to_yaml(data))
  else
    local tmpl = fmt:match("^jsonpath=(.*)$") or fmt:match("^jsonpath%-as%-json=(.*)$")
    local out, err = jsonpath.execute(tmpl, data, jsonpath_opts(ctx))
    if not out then
      common.fail(string.format("error executing jsonpath %q: Error executing template: %s. Printing more information for debugging the template:\n\ttemplate was:\n\t\t%s\n\tobject given to jsonpath engine was:\n\t\t%s\n",
        tmpl, err, tmpl, json.encode(data, { sort_keys = true })))
    end
    ctx.out(out)
  end
  return true
end

--- `-o custom-columns=HEADER:.path,...`: one row per object, the values of
--- each column's JSONPath joined with commas, `<none>` when missing.
function M.custom_columns(ctx, spec, items)
  local cols = {}
  for part in spec:gmatch("[^,]+") do
    local header, path = part:match("^([^:]+):(.*)$")
    if not header then
      common.fail(string.format("unexpected custom-columns spec: %s, expected <header>:<json-path-expr>", part))
    end
    if not path:match("^{") then
      path = "{" .. (path:match("^%.") and path or ("." .. path)) .. "}"
    end
    local ok, perr = pcall(jsonpath.parse, path)
    if not ok then common.fail(tostring(type(perr) == "table" and perr.jsonpath or perr)) end
    cols[#cols + 1] = { header = header, path = path }
  end
  local opts = jsonpath_opts(ctx)
  local tprint_rows = {}
  for _, obj in ipairs(items) do
    local row = {}
    for i, c in ipairs(cols) do
      local vals = jsonpath.values(c.path, obj, opts) or {}
      row[i] = #vals > 0 and table.concat(vals, ",") or "<none>"
    end
    tprint_rows[#tprint_rows + 1] = row
  end
  local headers = {}
  for i, c in ipairs(cols) do headers[i] = c.header end
  tprint.printer({ no_headers = ctx.flags["no-headers"], out = ctx.out }):print_rows(headers, tprint_rows)
  return #items > 0
end

local function check_format(fmt)
  local tmpl = fmt:match("^jsonpath=(.*)$") or fmt:match("^jsonpath%-as%-json=(.*)$")
  if tmpl then
    -- kubectl parses the template before any request: a syntax error is
    -- reported as such, never as an execution error on some object.
    local ok, err = pcall(jsonpath.parse, tmpl)
    if not ok then
      common.fail(string.format("error parsing jsonpath %s, %s",
        tmpl, type(err) == "table" and tostring(err.jsonpath) or tostring(err)))
    end
    return
  end
  if fmt == "" or fmt == "wide" or fmt == "json" or fmt == "yaml" or fmt == "name"
      or fmt:match("^custom%-columns=") then
    return
  end
  local name = fmt:match("^[^=]*")
  common.fail(string.format('unable to match a printer suitable for the output format "%s", allowed formats are: %s%s',
    fmt, FORMATS, KUBECTL_ONLY[name] and string.format(" (%s is printed by kubectl, not by this CLI)", name) or ""))
end

local function table_printer(ctx, t, multi)
  local f = ctx.flags
  return tprint.printer({
    wide = f.output == "wide",
    no_headers = f["no-headers"],
    with_namespace = f["all-namespaces"] and t.r.namespaced,
    show_labels = f["show-labels"],
    label_columns = #f["label-columns"] > 0 and f["label-columns"] or nil,
    kind = (multi or f["show-kind"]) and common.kind_word(t.r) or nil,
    out = ctx.out,
  })
end

-- Collects the Table for one target: one GET per name, or a paged list.
local function fetch_table(ctx, t)
  local c = common.client(ctx)
  local f = ctx.flags
  local ns = common.namespace(ctx)
  local result
  local function merge(tbl)
    if not result then
      result = tbl
      result.rows = result.rows or {}
    else
      for _, row in ipairs(tbl.rows or {}) do result.rows[#result.rows + 1] = row end
    end
  end
  if #t.names > 0 then
    for _, name in ipairs(t.names) do
      local tbl, st = c:table(t.r, { namespace = ns, name = name, include_object = ctx.sort and "Object" or nil })
      if tbl then
        merge(tbl)
      elseif not (f["ignore-not-found"] and st.code == 404) then
        ctx.errors[#ctx.errors + 1] = st
      end
    end
    return result
  end
  local token
  repeat
    local tbl, st = c:table(t.r, { namespace = (not f["all-namespaces"]) and ns or nil,
      label_selector = f.selector, field_selector = f["field-selector"],
      limit = f["chunk-size"] > 0 and f["chunk-size"] or nil, continue = token,
      -- sorting reads fields beyond the metadata: the rows carry whole objects
      include_object = ctx.sort and "Object" or nil })
    if not tbl then
      ctx.errors[#ctx.errors + 1] = st
      return result
    end
    merge(tbl)
    token = tbl.metadata and tbl.metadata.continue
  until token == nil or token == ""
  return result
end

-- A row for a watch event whose object is not a Table (a server that does
-- not print tables for watches): NAME and AGE like kubectl's default.
local function fallback_table(ctx, obj)
  local duration = require("moonlet.printers.duration")
  local m = obj.metadata or {}
  return {
    columnDefinitions = {
      { name = "Name", type = "string", format = "name", priority = 0 },
      { name = "Age", type = "string", format = "", priority = 0 },
    },
    rows = { { cells = { m.name or "", duration.since(m.creationTimestamp, ctx.now) },
      object = { metadata = m } } },
  }
end

local function watch(ctx, targets, fmt)
  if #targets ~= 1 then
    common.fail(string.format("watch is only supported on individual resources and resource collections, but %d resources were found",
      #targets))
  end
  local t = targets[1]
  local f = ctx.flags
  local c = common.client(ctx)
  local human = fmt == "" or fmt == "wide"
  local printer = human and table_printer(ctx, t, false)
  local rv
  local name = t.names[1]
  if #t.names > 1 then
    common.fail("watch is only supported on individual resources and resource collections, but " ..
      #t.names .. " resources were found")
  end
  local first_obj = true
  local function emit_object(obj)
    strip_managed(common.fill_kind(t.r, obj))
    if fmt == "yaml" then
      if not first_obj then ctx.out("---\n") end
      ctx.out(common.to_yaml(obj))
    elseif fmt == "json" then
      ctx.out(common.to_json(obj))
    elseif fmt == "name" then
      ctx.out(common.object_name(t.r, obj.metadata.name) .. "\n")
    else
      obj.__r = nil
      local out = jsonpath.execute(fmt:match("=(.*)$"), obj, jsonpath_opts(ctx))
      ctx.out(out or "")
    end
    first_obj = false
  end
  if not f["watch-only"] then
    if human then
      local tbl = fetch_table(ctx, t)
      if tbl then
        rv = tbl.metadata and tbl.metadata.resourceVersion
        printer:print(tbl, f["output-watch-events"] and "ADDED" or nil)
      end
    else
      local items = {}
      fetch_objects(ctx, t, items)
      for _, obj in ipairs(items) do emit_object(obj) end
    end
    for _, st in ipairs(ctx.errors) do common.report(ctx, st) end
    if #ctx.errors > 0 then return 1 end
  end
  if not rv and not f["watch-only"] and not human then
    -- object formats: start the watch from the list's resourceVersion
    local list = c:list(t.r, { namespace = (not f["all-namespaces"]) and common.namespace(ctx) or nil,
      label_selector = f.selector, field_selector = f["field-selector"], limit = 1 })
    rv = list and list.metadata and list.metadata.resourceVersion
  end
  local stream, st = c:watch(t.r, {
    namespace = (not f["all-namespaces"]) and common.namespace(ctx) or nil,
    label_selector = f.selector, field_selector = f["field-selector"], name = name,
    resource_version = rv, table = human,
  })
  if not stream then common.fail_status(ctx, st) end
  while true do
    local ev = stream:next()
    if not ev then break end
    if ev.type == "ERROR" then
      stream:close()
      common.fail_status(ctx, ev.object)
    elseif ev.type ~= "BOOKMARK" and type(ev.object) == "table" then
      if human then
        local tbl = ev.object
        if tbl.kind ~= "Table" then tbl = fallback_table(ctx, tbl) end
        printer:print(tbl, f["output-watch-events"] and ev.type or nil)
      else
        emit_object(ev.object)
      end
    end
  end
  stream:close()
  return 0
end

function M.run(ctx, argv)
  local f = ctx.flags
  local fmt = f.output or ""
  check_format(fmt)
  if #argv == 0 then
    error({ raw = true, cli = "You must specify the type of resource to get. Use \"moonlet api-resources\" for a complete list of supported resources.\n\n" ..
      "error: Required resource not specified.\nUse \"moonlet api-resources\" for a list of resource types.\n" ..
      "See 'moonlet get -h' for help and examples" }, 0)
  end
  if f["all-namespaces"] and ctx.set.namespace then
    -- kubectl ignores -n when -A is given
    f.namespace = nil
  end
  ctx.errors = {}
  local sort_by = require("moonlet.cli.sort_by")
  if f["sort-by"] ~= "" and not (f.watch or f["watch-only"]) then
    local tmpl, serr = sort_by.template(f["sort-by"])
    if not tmpl then common.fail(serr) end
    ctx.sort = tmpl
  end
  local targets = M.targets(ctx, argv)
  if f.watch or f["watch-only"] then return watch(ctx, targets, fmt) end

  local wrote = false
  if fmt == "" or fmt == "wide" then
    local multi = #targets > 1
    for _, t in ipairs(targets) do
      local tbl = fetch_table(ctx, t)
      if tbl and tbl.rows and #tbl.rows > 0 then
        if ctx.sort and #tbl.rows > 1 then
          local ok, serr = sort_by.sort(tbl.rows, ctx.sort, function(row) return row.object or {} end)
          if not ok then common.fail(serr) end
        end
        if wrote then ctx.out("\n") end
        table_printer(ctx, t, multi):print(tbl)
        wrote = true
      end
    end
  else
    local items = {}
    for _, t in ipairs(targets) do
      local before = #items
      fetch_objects(ctx, t, items)
      for i = before + 1, #items do items[i].__r = t.r end
    end
    local single = #targets == 1 and #targets[1].names == 1 and #items == 1
    if ctx.sort and not single then
      -- kubectl sorts lists only: one named object is printed as it is
      local ok, serr = sort_by.sort(items, ctx.sort, function(obj) return obj end)
      if not ok then common.fail(serr) end
    end
    if fmt ~= "name" or #items > 0 then
      wrote = print_objects(ctx, items, single, fmt)
    end
  end

  for _, st in ipairs(ctx.errors) do common.report(ctx, st) end
  if not wrote and #ctx.errors == 0 and not f["ignore-not-found"] then
    local all_namespaced = not f["all-namespaces"]
    for _, t in ipairs(targets) do
      if not t.r.namespaced then all_namespaced = false end
    end
    if all_namespaced then
      ctx.err(string.format("No resources found in %s namespace.\n", common.namespace(ctx)))
    else
      ctx.err("No resources found\n")
    end
  end
  return #ctx.errors > 0 and 1 or 0
end

return M
