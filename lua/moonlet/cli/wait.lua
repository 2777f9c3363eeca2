-- `moonlet wait`: kubectl 1.32's wait. For each object (TYPE NAME,
-- TYPE/NAME, -l, --all) it lists the object by name, checks the condition
-- (a status condition, deletion, or a JSONPath value) and otherwise
-- watches from the list's resourceVersion until the condition holds or
-- the one deadline (--timeout, 30s by default) for the whole command ends.
local common = require("moonlet.cli.common")
local util = require("moonlet.cli.rollout_util")
local sort_by = require("moonlet.cli.sort_by")
local jsonpath = require("moonlet.printers.jsonpath")
local json = require("moonlet.json")

local M = {}

M.usage = "Usage:\n  moonlet wait ([-f FILENAME] | resource.group/resource.name | resource.group [(-l label | --all)]) [--for=create|--for=delete|--for condition=available|--for=jsonpath='{}'[=value]]"

M.flags = {
  { name = "for", type = "string", default = "", help = "The condition to wait on: [create|delete|condition=condition-name[=condition-value]|jsonpath='{JSONPath expression}'=[JSONPath value]]. The default condition-value is true. Condition values are compared after Unicode simple case folding, which is a more general form of case-insensitivity." },
  { name = "timeout", type = "string", default = "30s", help = "The length of time to wait before giving up. Zero means check once and don't wait, negative means wait for a week." },
  { name = "selector", short = "l", type = "string", default = "", help = "Selector (label query) to filter on, supports '=', '==', and '!='.(e.g. -l key1=value1,key2=value2)" },
  { name = "all", type = "bool", help = "Select all resources in the namespace of the specified resource types" },
  { name = "all-namespaces", short = "A", type = "bool", help = "If present, list the requested object(s) across all namespaces." },
  { name = "field-selector", type = "string", default = "", help = "Selector (field query) to filter on." },
  { name = "filename", short = "f", type = "list", help = "identifying the resource." },
  { name = "recursive", short = "R", type = "bool", default = true, help = "Process the directory used in -f, --filename recursively." },
  { name = "output", short = "o", type = "string", help = "Output format: name|json|yaml." },
}

local WEEK_MS = 168 * 3600 * 1000

local function is_table(v) return type(v) == "table" and v ~= json.null end

-- {====== conditions: each a check(obj) -> met, err

local function condition_check(name, want)
  local lname, lwant = string.lower(name), string.lower(want)
  return function(obj)
    local st = is_table(obj.status) and obj.status or {}
    for _, c in ipairs(is_table(st.conditions) and st.conditions or {}) do
      if is_table(c) and type(c.type) == "string" and string.lower(c.type) == lname
          and type(c.status) == "string" then
        -- a condition from before the latest spec change says nothing yet
        local gen = is_table(obj.metadata) and math.tointeger(obj.metadata.generation)
        if gen then
          local observed = math.tointeger(c.observedGeneration) or math.tointeger(st.observedGeneration)
          if observed and observed < gen then return false end
        end
        return string.lower(c.status) == lwant
      end
    end
    return false
  end
end

-- Go's %v of a decoded JSON scalar.
local function scalar_text(v)
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 1e15 then
    return string.format("%d", v)
  end
  if type(v) == "number" then return tostring(v) end
  return tostring(v)
end

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

local function jsonpath_check(tmpl, want)
  local opts = { null = json.null, is_array = json.is_array }
  local tree = jsonpath.parse(tmpl)
  return function(obj)
    local res, err = jsonpath.find(tree, obj, opts)
    if not res then return false, err end
    if #res == 0 or #res[1] == 0 then return false end
    if #res > 1 then return false, "given jsonpath expression matches more than one list" end
    if #res[1] > 1 then return false, "given jsonpath expression matches more than one value" end
    local v = res[1][1]
    if want == nil then return true end
    if is_table(v) then return false, "jsonpath leads to a nested object or list which is not supported" end
    if v == json.null then v = "<nil>" end
    return trim(scalar_text(v)) == trim(want)
  end
end

-- splitJSONPathInput: split on single `=`, `==` stays in the text.
local function split_eq(s)
  local out, cur, i = {}, {}, 1
  while i <= #s do
    local ch = s:sub(i, i)
    if ch == "=" then
      if s:sub(i + 1, i + 1) == "=" then
        cur[#cur + 1] = "=="
        i = i + 1
      else
        out[#out + 1] = table.concat(cur)
        cur = {}
      end
    else
      cur[#cur + 1] = ch
    end
    i = i + 1
  end
  out[#out + 1] = table.concat(cur)
  return out
end

--- Parses --for. @return { delete = true } | { create = true } |
--- { check = fn }, or raises kubectl's message
function M.parse_for(s)
  if string.lower(s) == "delete" then return { delete = true } end
  if string.lower(s) == "create" then return { create = true, check = function() return true end } end
  if s:sub(1, 10) == "condition=" then
    local name, want = s:sub(11), "true"
    local eq = name:find("=", 1, true)
    if eq then name, want = name:sub(1, eq - 1), name:sub(eq + 1) end
    return { check = condition_check(name, want) }
  end
  if s:sub(1, 9) == "jsonpath=" then
    local parts = split_eq(s:sub(10))
    if #parts < 1 or #parts > 2 then
      common.fail("jsonpath wait format must be --for=jsonpath='{.status.readyReplicas}'=3 or --for=jsonpath='{.status.readyReplicas}'")
    end
    local tmpl, rerr = sort_by.relaxed(parts[1])
    if not tmpl then common.fail(rerr) end
    local want
    if #parts == 2 then
      want = parts[2]:gsub("^['\"]+", ""):gsub("['\"]+$", "")
      if want == "" then
        common.fail("jsonpath wait has to have a value after equal sign, like --for=jsonpath='{.status.readyReplicas}'=3")
      end
    end
    if tmpl == "" then common.fail("jsonpath expression cannot be empty") end
    local ok, perr = pcall(jsonpath.parse, tmpl)
    if not ok then common.fail(type(perr) == "table" and tostring(perr.jsonpath) or tostring(perr)) end
    return { check = jsonpath_check(tmpl, want) }
  end
  common.fail(string.format("unrecognized condition: %q", s))
end

-- }======

--- Go duration with a sign: negative waits a week. @return ms
local function timeout_ms(s)
  if s:sub(1, 1) == "-" then
    local ms, err = util.duration_flag("timeout", s:sub(2))
    if not ms then common.fail((err:gsub('"' .. s:sub(2):gsub("%p", "%%%0") .. '"', '"' .. s .. '"'))) end
    return ms == 0 and 0 or WEEK_MS
  end
  local ms, err = util.duration_flag("timeout", s)
  if not ms then common.fail(err) end
  return ms
end

-- Closes `stream` at the deadline: the server ends a watch after whole
-- seconds (timeoutSeconds), --timeout=500ms must end after 500 ms.
-- @return a function that disarms the timer
local function cut_at(stream, deadline)
  local loop = require("moonlet.loop")
  local fired = false
  local t = loop.timer(math.max(0, deadline - loop.now()), function()
    fired = true
    stream:close()
  end)
  return function() if not fired then t.stop() end end
end

-- Waits for one object. @return the object to print, or nil, message|Status
local function wait_one(ctx, o, cond, deadline, once)
  local loop = require("moonlet.loop")
  local c = common.client(ctx)
  local m = o.obj.metadata
  local name, ns = m.name, o.r.namespaced and m.namespace or nil
  local plural_name = o.r.name .. "/" .. name
  local timed_out = "timed out waiting for the condition on " .. plural_name
  local not_met = "condition not met for " .. plural_name
  if once then
    local obj, st = c:get(o.r, ns, name)
    if cond.delete then
      if not obj and st.code == 404 and not st.transport then return o.obj end
      if not obj then return nil, st end
      return nil, not_met
    end
    if not obj then return nil, st end
    local met, err = cond.check(obj)
    if err then return nil, err end
    if not met then return nil, not_met end
    return obj
  end
  -- UntilWithSync: list by name, check, then watch from the list's version
  local fs = "metadata.name=" .. name
  local relist = true
  local rv, last
  while true do
    if relist then
      local l, st = c:list(o.r, { namespace = ns, field_selector = fs })
      if not l then return nil, st end
      rv = l.metadata and l.metadata.resourceVersion
      local obj = (l.items or {})[1]
      if not obj then
        if cond.delete then return last or o.obj end
        return nil, require("moonlet.client").status(404, "NotFound",
          string.format("%s %q not found", o.r.group ~= "" and (o.r.name .. "." .. o.r.group) or o.r.name, name))
      end
      last = common.fill_kind(o.r, obj)
      if not cond.delete then
        local met, err = cond.check(obj)
        if err then return nil, err end
        if met then return last end
      end
      relist = false
    end
    local left = deadline - loop.now()
    if left <= 0 then return nil, timed_out end
    local stream, st = c:watch(o.r, { namespace = ns, field_selector = fs, resource_version = rv,
      timeout_seconds = math.max(1, math.ceil(left / 1000)) })
    if not stream then
      if st and st.code == 410 and not st.transport then relist = true else return nil, st end
    else
      local disarm = cut_at(stream, deadline)
      while true do
        local ev = stream:next()
        if not ev then break end
        local obj = ev.object
        if ev.type == "ERROR" then
          if is_table(obj) and obj.code == 410 then relist = true; break end
          ctx.err("error: An error occurred while waiting for the " ..
            (cond.delete and "object to be deleted" or "condition to be satisfied") .. ": " ..
            tostring(is_table(obj) and obj.message or obj))
        elseif is_table(obj) and is_table(obj.metadata) then
          rv = obj.metadata.resourceVersion or rv
          if ev.type == "DELETED" then
            if cond.delete then disarm(); stream:close(); return last or o.obj end
          elseif ev.type ~= "BOOKMARK" then
            last = common.fill_kind(o.r, obj)
            if not cond.delete then
              local met, err = cond.check(obj)
              if err then disarm(); stream:close(); return nil, err end
              if met then disarm(); stream:close(); return last end
            end
          end
        end
      end
      disarm()
      stream:close()
    end
    if loop.now() >= deadline then return nil, timed_out end
  end
end

-- The objects to wait for, each as read now. Under --for=delete a named
-- object that is gone already is skipped (kubectl ignores its NotFound);
-- under --for=create it is kept as { r =, ns =, name = } to watch for.
local function gather(ctx, argv, f, cond)
  if #f.filename > 0 then
    return util.objects(ctx, argv, { filenames = f.filename, recursive = f.recursive })
  end
  local c = common.client(ctx)
  local ns = common.namespace(ctx)
  local out = {}
  for _, t in ipairs(require("moonlet.cli.get").targets(ctx, argv)) do
    if #t.names > 0 then
      if f.selector ~= "" then common.fail("name cannot be provided when a selector is specified") end
      for _, n in ipairs(t.names) do
        local obj, st = c:get(t.r, ns, n)
        if obj then
          out[#out + 1] = { r = t.r, obj = common.fill_kind(t.r, obj) }
        elseif st.code == 404 and not st.transport and cond.create then
          out[#out + 1] = { r = t.r, ns = t.r.namespaced and ns or nil, name = n }
        elseif not (cond.delete and st.code == 404 and not st.transport) then
          common.fail_status(ctx, st)
        end
      end
    elseif f.all or f.selector ~= "" or f["all-namespaces"] then
      local l, st = c:list(t.r, { namespace = (t.r.namespaced and not f["all-namespaces"]) and ns or nil,
        label_selector = f.selector ~= "" and f.selector or nil,
        field_selector = f["field-selector"] ~= "" and f["field-selector"] or nil })
      if not l then common.fail_status(ctx, st) end
      for _, obj in ipairs(l.items or {}) do out[#out + 1] = { r = t.r, obj = common.fill_kind(t.r, obj) } end
    else
      common.fail("resource(s) were provided, but no name was specified")
    end
  end
  return out
end

-- --for=create of an object not there yet: watch its name until it is
-- added. (kubectl polls every 2 s; a watch answers at once.)
local function wait_created(ctx, o, deadline)
  local loop = require("moonlet.loop")
  local c = common.client(ctx)
  local fs = "metadata.name=" .. o.name
  while true do
    local l, st = c:list(o.r, { namespace = o.ns, field_selector = fs })
    if not l then return nil, st end
    if l.items and l.items[1] then return l.items[1] end
    local left = deadline - loop.now()
    if left <= 0 then return nil, "timed out waiting for the condition" end
    local stream, wst = c:watch(o.r, { namespace = o.ns, field_selector = fs,
      resource_version = l.metadata and l.metadata.resourceVersion,
      timeout_seconds = math.max(1, math.ceil(left / 1000)) })
    if not stream then
      if not (wst and wst.code == 410 and not wst.transport) then return nil, wst end
    else
      local disarm = cut_at(stream, deadline)
      while true do
        local ev = stream:next()
        if not ev then break end
        if (ev.type == "ADDED" or ev.type == "MODIFIED") and is_table(ev.object) then
          disarm()
          stream:close()
          return ev.object
        end
      end
      disarm()
      stream:close()
    end
    if loop.now() >= deadline then return nil, "timed out waiting for the condition" end
  end
end

function M.run(ctx, argv)
  local f = ctx.flags
  local cond = M.parse_for(f["for"])
  local ms = timeout_ms(f.timeout)
  local fmt = f.output
  if fmt ~= nil and fmt ~= "" and fmt ~= "name" and fmt ~= "json" and fmt ~= "yaml" then
    common.fail(string.format('unable to match a printer suitable for the output format "%s", allowed formats are: json,name,yaml', fmt))
  end
  if f["all-namespaces"] then f.namespace = nil end
  if #argv == 0 and #f.filename == 0 then
    common.fail("You must provide one or more resources by argument or filename.\n" ..
      "Example resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")
  end
  local loop = require("moonlet.loop")
  local deadline = loop.now() + ms
  local objs = gather(ctx, argv, f, cond)
  if ctx.failed then return 1 end
  if #objs == 0 and not cond.delete then common.fail("no matching resources found") end
  for _, o in ipairs(objs) do
    local obj, err
    if o.obj then
      obj, err = wait_one(ctx, o, cond, deadline, ms == 0)
    else
      obj, err = wait_created(ctx, o, deadline)
    end
    if not obj then
      if type(err) == "table" then common.fail_status(ctx, err) end
      common.fail(err)
    end
    common.fill_kind(o.r, obj)
    if fmt == "json" then
      ctx.out(common.to_json(obj))
    elseif fmt == "yaml" then
      ctx.out(common.to_yaml(obj))
    elseif fmt == "name" then
      ctx.out(common.object_name(o.r, obj.metadata.name) .. "\n")
    else
      ctx.out(common.object_name(o.r, obj.metadata.name) .. " condition met\n")
    end
  end
  return 0
end

return M
