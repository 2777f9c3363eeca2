-- `moonlet describe`: kubectl's describers for Namespace and ConfigMap, the
-- generic (unstructured) describer for every other kind, and the Events
-- section (`48s (x6 over 2m58s)`), all aligned by a padding-2 tabwriter.
local common = require("moonlet.cli.common")
local tabwriter = require("moonlet.printers.tabwriter")
local duration = require("moonlet.printers.duration")
local json = require("moonlet.json")

local M = {}

M.usage = "Usage:\n  moonlet describe (-f FILENAME | TYPE [NAME_PREFIX | -l label] | TYPE/NAME) [flags]"

M.flags = {
  { name = "selector", short = "l", type = "string", help = "Selector (label query) to filter on." },
  { name = "all-namespaces", short = "A", type = "bool", help = "List the requested object(s) across all namespaces." },
  { name = "show-events", type = "bool", default = true, help = "If true, display events related to the described object." },
}

local MAX_ANNOTATION = 140
local LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

-- A describe writer: lines with 2-space indent levels, formatted at the end
-- by tabwriter(minwidth 0, tabwidth 8, padding 2).
local function writer()
  local w = { parts = {} }
  function w.write(level, s) w.parts[#w.parts + 1] = string.rep("  ", level) .. s end
  function w.text()
    return tabwriter.format(table.concat(w.parts), { minwidth = 0, tabwidth = 8, padding = 2 })
  end
  return w
end
M.writer = writer

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function map_or_empty(v)
  if type(v) ~= "table" then return {} end
  return v
end

function M.labels(w, title, labels)
  w.write(0, title .. ":\t")
  local keys = sorted_keys(map_or_empty(labels))
  if #keys == 0 then w.write(0, "<none>\n"); return end
  for i, k in ipairs(keys) do
    if i > 1 then w.write(0, "\t") end
    w.write(0, k .. "=" .. tostring(labels[k]) .. "\n")
  end
end

function M.annotations(w, title, ann)
  w.write(0, title .. ":\t")
  local keys = {}
  for _, k in ipairs(sorted_keys(map_or_empty(ann))) do
    if k ~= LAST_APPLIED then keys[#keys + 1] = k end
  end
  if #keys == 0 then w.write(0, "<none>\n"); return end
  for i, k in ipairs(keys) do
    if i > 1 then w.write(0, "\t") end
    local v = tostring(ann[k]):gsub("\n$", "")
    if #v + #k + 2 > MAX_ANNOTATION or v:find("\n", 1, true) then
      w.write(0, k .. ":\n")
      for line in (v .. "\n"):gmatch("(.-)\n") do
        if #line > MAX_ANNOTATION - 2 then line = line:sub(1, MAX_ANNOTATION - 2) .. "..." end
        w.write(0, "\t  " .. line .. "\n")
      end
    else
      w.write(0, k .. ": " .. v .. "\n")
    end
  end
end

local function since(ts, now)
  if ts == nil or ts == json.null or ts == "" then return "<unknown>" end
  return duration.since(ts, now)
end

--- The Events section (DescribeEvents) for a list of core/v1 Events.
function M.events(w, items, now)
  if #items == 0 then
    w.write(0, "Events:\t<none>\n")
    return
  end
  -- sort.Sort by time in kubectl; events of the same second keep the
  -- server's order here, which is stable and reads in creation order.
  local order = {}
  for i, e in ipairs(items) do order[e] = i end
  local function at(e) return duration.parse(e.lastTimestamp) or duration.parse(e.eventTime) or 0 end
  table.sort(items, function(a, b)
    local ta, tb = at(a), at(b)
    if ta ~= tb then return ta < tb end
    return order[a] < order[b]
  end)
  w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
  w.write(1, "----\t------\t----\t----\t-------\n")
  for _, e in ipairs(items) do
    local first = (e.eventTime and e.eventTime ~= json.null) and since(e.eventTime, now)
      or since(e.firstTimestamp, now)
    local interval
    local series = type(e.series) == "table" and e.series or nil
    if series then
      interval = string.format("%s (x%d over %s)", since(series.lastObservedTime, now),
        math.tointeger(series.count) or 0, first)
    elseif (tonumber(e.count) or 0) > 1 then
      interval = string.format("%s (x%d over %s)", since(e.lastTimestamp, now),
        math.tointeger(e.count) or 0, first)
    else
      interval = first
    end
    local source = type(e.source) == "table" and e.source.component or nil
    if source == nil or source == "" or source == json.null then source = e.reportingController or "" end
    if source == json.null then source = "" end
    local msg = tostring(e.message or ""):match("^%s*(.-)%s*$")
    w.write(1, string.format("%s\t%s\t%s\t%s\t%s\n", tostring(e.type or ""), tostring(e.reason or ""),
      interval, tostring(source), msg))
  end
end

-- Events about `obj`, found with the field selector kubectl builds.
-- `ref` overrides the reference's kind and uid (false leaves one out), as
-- the pod and node describers do.
local function search_events(ctx, r, obj, ref)
  local c = common.client(ctx)
  local ev = c:kind("v1/Event")
  if not ev then return nil end
  local m = obj.metadata or {}
  ref = ref or {}
  local kind, uid = r.kind, m.uid
  if ref.kind ~= nil then kind = ref.kind end
  if ref.uid ~= nil then uid = ref.uid end
  local parts = {}
  if kind and kind ~= "" then parts[#parts + 1] = "involvedObject.kind=" .. kind end
  parts[#parts + 1] = "involvedObject.name=" .. tostring(m.name or "")
  parts[#parts + 1] = "involvedObject.namespace=" .. tostring(m.namespace or "")
  if uid and uid ~= "" then parts[#parts + 1] = "involvedObject.uid=" .. uid end
  local list = c:list(ev, { namespace = r.namespaced and m.namespace or nil,
    field_selector = table.concat(parts, ",") })
  if not list then return nil end
  local items = {}
  for _, e in ipairs(list.items or {}) do items[#items + 1] = e end
  return items
end
M.search_events = search_events

-- Kind-specific describers, by "group/Kind": modules with
-- describe(ctx, r, obj, now) -> text that fetch their own events and
-- related objects (kubectl's describerMap). Other kinds use M.describe.
M.describers = {
  ["/Pod"] = "moonlet.cli.describe_pod",
  ["/Node"] = "moonlet.cli.describe_node",
  ["/Service"] = "moonlet.cli.describe_service",
  ["apps/ReplicaSet"] = "moonlet.cli.describe_replicaset",
  ["batch/CronJob"] = "moonlet.cli.describe_cronjob",
  ["batch/Job"] = "moonlet.cli.describe_job",
  ["apps/DaemonSet"] = "moonlet.cli.describe_daemonset",
  ["apps/Deployment"] = "moonlet.cli.describe_deployment",
}

-- camelcase.Split + Title, with the acronyms kubectl keeps upper-case.
local ACRONYMS = { API = true, URL = true, UID = true, OSB = true, GUID = true }

function M.smart_label(field)
  if field:find("[^%a%-]") then return field end
  local parts = {}
  local cur, cls = "", nil
  local function class(ch)
    if ch:match("%l") then return "l" end
    if ch:match("%u") then return "u" end
    if ch:match("%d") then return "d" end
    return "o"
  end
  -- split on class changes; an upper run followed by lower keeps its last
  -- upper letter for the next word ("HTTPServer" -> HTTP, Server)
  local runs = {}
  for ch in field:gmatch(".") do
    local c = class(ch)
    if c == cls then cur = cur .. ch
    else
      if cur ~= "" then runs[#runs + 1] = cur end
      cur, cls = ch, c
    end
  end
  if cur ~= "" then runs[#runs + 1] = cur end
  local i = 1
  while i <= #runs do
    local a, b = runs[i], runs[i + 1]
    if b and a:match("^%u+$") and b:match("^%l+$") then
      if #a > 1 then parts[#parts + 1] = a:sub(1, -2) end
      parts[#parts + 1] = a:sub(-1) .. b
      i = i + 2
    else
      parts[#parts + 1] = a
      i = i + 1
    end
  end
  for j, p in ipairs(parts) do
    if ACRONYMS[p:upper()] then parts[j] = p:upper()
    else parts[j] = p:sub(1, 1):upper() .. p:sub(2) end
  end
  return table.concat(parts, " ")
end

local function scalar(v)
  if v == json.null or v == nil then return "<nil>" end
  if type(v) == "number" then
    if math.type(v) == "integer" or v == math.floor(v) then return string.format("%d", v) end
    return string.format("%.14g", v)
  end
  return tostring(v)
end

local function unstructured(w, level, content, prefix, skip)
  for _, field in ipairs(sorted_keys(content)) do
    local v = content[field]
    local expr = prefix .. "." .. field
    if not skip[expr] then
      if type(v) == "table" and not json.is_array(v) then
        w.write(level, M.smart_label(field) .. ":\n")
        unstructured(w, level + 1, v, expr, skip)
      elseif type(v) == "table" then
        w.write(level, M.smart_label(field) .. ":\n")
        for _, child in ipairs(v) do
          if type(child) == "table" and not json.is_array(child) then
            unstructured(w, level + 1, child, expr, skip)
          else
            w.write(level + 1, scalar(child) .. "\n")
          end
        end
      else
        w.write(level, M.smart_label(field) .. ":\t" .. scalar(v) .. "\n")
      end
    end
  end
end

local GENERIC_SKIP = { [".metadata.managedFields"] = true, [".metadata.name"] = true,
  [".metadata.namespace"] = true, [".metadata.labels"] = true, [".metadata.annotations"] = true }

--- Describes one object; `events` is the list for the Events section, or
--- nil to leave it out; `quotas`/`limits` (namespaces) the ResourceQuotas
--- and LimitRanges found, nil when the server has none. @return the text
function M.describe(r, obj, events, now, quotas, limits)
  local w = writer()
  local m = obj.metadata or {}
  if r.group == "" and r.kind == "Namespace" then
    w.write(0, "Name:\t" .. tostring(m.name or "") .. "\n")
    M.labels(w, "Labels", m.labels)
    M.annotations(w, "Annotations", m.annotations)
    local status = type(obj.status) == "table" and obj.status or {}
    w.write(0, "Status:\t" .. tostring(status.phase or "") .. "\n")
    if type(status.conditions) == "table" and #status.conditions > 0 then
      w.write(0, "Conditions:\n")
      w.write(1, "Type\tStatus\tLastTransitionTime\tReason\tMessage\n")
      w.write(1, "----\t------\t------------------\t------\t-------\n")
      for _, c in ipairs(status.conditions) do
        local t = duration.parse(c.lastTransitionTime)
        w.write(1, string.format("%s\t%s\t%s\t%s\t%s\n", tostring(c.type or ""), tostring(c.status or ""),
          t and duration.format_rfc1123z(t) or "Mon, 01 Jan 0001 00:00:00 +0000",
          tostring(c.reason or ""), tostring(c.message or "")))
      end
    end
    -- quotas and limit ranges: only when the server serves them, as kubectl
    -- leaves the sections out when listing them answers NotFound
    if quotas then
      w.write(0, "\n")
      w.write(0, #quotas == 0 and "No resource quota.\n" or string.format("Resource Quotas: %d\n", #quotas))
    end
    if limits then
      w.write(0, "\n")
      w.write(0, #limits == 0 and "No LimitRange resource.\n" or string.format("Resource Limits: %d\n", #limits))
    end
    return w.text()
  end
  w.write(0, "Name:\t" .. tostring(m.name or "") .. "\n")
  w.write(0, "Namespace:\t" .. tostring(m.namespace or "") .. "\n")
  M.labels(w, "Labels", m.labels)
  M.annotations(w, "Annotations", m.annotations)
  if r.group == "" and r.kind == "ConfigMap" then
    w.write(0, "\nData\n====\n")
    local data = map_or_empty(obj.data)
    for _, k in ipairs(sorted_keys(data)) do
      w.write(0, k .. ":\n----\n")
      w.write(0, tostring(data[k]) .. "\n")
      w.write(0, "\n")
    end
    w.write(0, "\nBinaryData\n====\n")
    local bin = map_or_empty(obj.binaryData)
    for _, k in ipairs(sorted_keys(bin)) do
      -- base64 length -> decoded byte count
      local b64 = tostring(bin[k])
      local pad = select(2, b64:gsub("=", ""))
      w.write(0, string.format("%s: %d bytes\n", k, #b64 * 3 // 4 - pad))
    end
    w.write(0, "\n")
  else
    unstructured(w, 0, obj, "", GENERIC_SKIP)
  end
  if events then M.events(w, events, now) end
  return w.text()
end

-- Items of a kind in a namespace; nil when the server does not serve it.
local function list_in(ctx, kind, ns)
  local c = common.client(ctx)
  local r = c:kind(kind)
  if not r then return nil end
  local list = c:list(r, { namespace = ns })
  return list and (list.items or {}) or nil
end

function M.run(ctx, argv)
  local f = ctx.flags
  if #argv == 0 then
    common.fail("You must specify the type of resource to describe. Use \"moonlet api-resources\" for a complete list of supported resources.")
  end
  if f["all-namespaces"] then f.namespace = nil end
  local get = require("moonlet.cli.get")
  local targets = get.targets(ctx, argv)
  local c = common.client(ctx)
  local ns = common.namespace(ctx)
  local objs = {}
  for _, t in ipairs(targets) do
    if #t.names == 0 then
      local list, st = c:list(t.r, { namespace = (t.r.namespaced and not f["all-namespaces"]) and ns or nil,
        label_selector = f.selector })
      if not list then common.fail_status(ctx, st) end
      for _, o in ipairs(list.items or {}) do objs[#objs + 1] = { r = t.r, obj = o } end
    else
      for _, name in ipairs(t.names) do
        local obj, st = c:get(t.r, ns, name)
        if obj then
          objs[#objs + 1] = { r = t.r, obj = obj }
        elseif st.code == 404 and not st.transport then
          -- kubectl falls back to a name-prefix match
          local list = c:list(t.r, { namespace = t.r.namespaced and ns or nil })
          local found = false
          for _, o in ipairs(list and list.items or {}) do
            if o.metadata.name:sub(1, #name) == name then
              objs[#objs + 1] = { r = t.r, obj = o }
              found = true
            end
          end
          if not found then common.report(ctx, st) end
        else
          common.report(ctx, st)
        end
      end
    end
  end
  if #objs == 0 and not ctx.failed then
    if f["all-namespaces"] then ctx.err("No resources found\n")
    else ctx.err(string.format("No resources found in %s namespace.\n", ns)) end
    return 0
  end
  for i, o in ipairs(objs) do
    if i > 1 then ctx.out("\n\n") end
    local describer = M.describers[o.r.group .. "/" .. o.r.kind]
    if describer then
      ctx.out(require(describer).describe(ctx, o.r, common.fill_kind(o.r, o.obj), ctx.now))
      goto continue
    end
    local events
    local is_ns = o.r.group == "" and o.r.kind == "Namespace"
    if f["show-events"] and not is_ns then
      events = search_events(ctx, o.r, o.obj)
    end
    local quotas, limits
    if is_ns then
      quotas = list_in(ctx, "v1/ResourceQuota", o.obj.metadata.name)
      limits = list_in(ctx, "v1/LimitRange", o.obj.metadata.name)
    end
    ctx.out(M.describe(o.r, common.fill_kind(o.r, o.obj), events, ctx.now, quotas, limits))
    ::continue::
  end
  return ctx.failed and 1 or 0
end

return M
