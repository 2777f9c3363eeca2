-- moonlet.api.managed_fields: server-side apply and the field ownership it
-- keeps in metadata.managedFields, as kube-apiserver's field manager does:
--
-- * apply(live, config, opts): merges an applied configuration into the
--   live object (or makes it from nothing), refuses with conflicts when it
--   would change a field another manager owns (unless forced: then the
--   field changes hands), removes the fields this manager applied before
--   and no longer does (unless somebody else owns them), and records the
--   applied fields as the manager's (operation Apply).
-- * track_update(old, new, opts): after a PUT or non-apply PATCH of an
--   object whose fields are tracked, the fields it added or changed become
--   the writer's (operation Update) and leave everybody else's.
--
-- Objects nobody applied are not tracked: creates and updates of them keep
-- no managedFields (Kubernetes records every write; here that would cost
-- every write a walk of its object). An object starts being tracked at its
-- first apply.
local json = require("moonlet.json")
local V = require("moonlet.api.patch.value")
local patchmod = require("moonlet.api.patch")
local fieldset = require("moonlet.api.fieldset")

local M = {}

local function now_text() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

-- metav1.ManagedFieldsEntry values -> entries with decoded sets. Entries of
-- a shape we cannot read are dropped, as an empty `[{}]` clears them.
local function read_entries(list)
  local out = {}
  if not V.is_array(list) then return out end
  for _, e in ipairs(list) do
    if V.is_object(e) and type(e.manager) == "string" then
      local set = V.is_object(e.fieldsV1) and fieldset.decode(e.fieldsV1) or {}
      out[#out + 1] = { manager = e.manager, operation = e.operation, apiVersion = e.apiVersion,
        subresource = e.subresource, time = e.time, set = set }
    end
  end
  return out
end

local function write_entries(entries)
  local list = json.array({})
  for _, e in ipairs(entries) do
    if next(e.set) ~= nil then
      list[#list + 1] = { manager = e.manager, operation = e.operation, apiVersion = e.apiVersion,
        time = e.time, fieldsType = "FieldsV1", fieldsV1 = fieldset.encode(e.set),
        subresource = (e.subresource ~= nil and e.subresource ~= "") and e.subresource or nil }
    end
  end
  if #list == 0 then return nil end
  return list
end

local function is(e, manager, operation, subresource)
  return e.manager == manager and e.operation == operation
    and (e.subresource or "") == (subresource or "")
end

-- The entry of (manager, operation, subresource), made when missing.
local function entry_of(entries, manager, operation, opts)
  for _, e in ipairs(entries) do
    if is(e, manager, operation, opts.subresource) then return e end
  end
  local e = { manager = manager, operation = operation, apiVersion = opts.api_version,
    subresource = opts.subresource, set = {} }
  entries[#entries + 1] = e
  return e
end

-- The manager as conflict messages name it (fieldmanager's printManager).
local function manager_text(e)
  local s = json.encode(e.manager)
  if e.subresource and e.subresource ~= "" then s = s .. " with subresource " .. json.encode(e.subresource) end
  if e.operation == "Update" then s = s .. " using " .. tostring(e.apiVersion) end
  return s
end


-- Null members of an applied configuration set nothing.
local function drop_nulls(v)
  if V.is_object(v) then
    for k, cv in pairs(v) do
      if cv == json.null then v[k] = nil else drop_nulls(cv) end
    end
  elseif V.is_array(v) then
    for _, cv in ipairs(v) do drop_nulls(cv) end
  end
  return v
end

local function scope(opts) return opts.subresource == "status" and "status" or "main" end

local function set_of(obj, opts)
  return fieldset.of(obj, opts.semantics, scope(opts), opts.status_apart)
end

-- The fields a write of `b` over `a` adds or changes, and those it removes.
local function diff_of(a, b, opts)
  return fieldset.diff(a, b, opts.semantics, scope(opts), opts.status_apart)
end

--- Applies `config` for opts.manager over `live` (nil: nothing yet).
--- opts: manager, force, api_version, semantics (fieldset.semantics),
--- merge_keys (for the merge), subresource, status_apart.
--- @return the new object with its managedFields; or nil, conflicts
---   ({ {manager=text, path=text}, ... }); or nil, nil, message, code for a
---   configuration the merge refuses.
function M.apply(live, config, opts)
  fieldset.fresh()
  config = drop_nulls(json.copy(config))
  local entries = live and read_entries(live.metadata and live.metadata.managedFields) or {}
  local merged
  if live then
    local err, code
    merged, err, code = patchmod.strategic(live, config, opts.merge_keys)
    if not merged then return nil, nil, err, code end
  else
    merged = json.copy(config)
  end
  if not V.is_object(merged.metadata) then merged.metadata = {} end
  local applied = set_of(config, opts)
  local mine = entry_of(entries, opts.manager, "Apply", opts)
  local conflicts = {}
  local touched = live and diff_of(live, merged, opts) or applied
  for _, e in ipairs(entries) do
    if e ~= mine then
      for path in pairs(e.set) do
        if applied[path] and touched[path] then
          conflicts[#conflicts + 1] = { entry = e, path = path }
        end
      end
    end
  end
  if #conflicts > 0 then
    if not opts.force then
      local out = {}
      for i, c in ipairs(conflicts) do
        out[i] = { manager = manager_text(c.entry), path = fieldset.text(c.path) }
      end
      return nil, out
    end
    for _, c in ipairs(conflicts) do c.entry.set[c.path] = nil end
  end
  -- What this manager applied before and no longer does goes, unless
  -- another manager owns it or something below it.
  local others, above = {}, {}
  for _, e in ipairs(entries) do
    if e ~= mine then
      for path in pairs(e.set) do
        others[path] = true
        -- Every path above an owned one: an item with an owned field stays.
        local at = 1
        while true do
          local i = path:find("\0", at, true)
          if not i then break end
          above[path:sub(1, i - 1)] = true
          at = i + 1
        end
      end
    end
  end
  local gone = {}
  for path in pairs(mine.set) do
    if not applied[path] and not others[path] and not above[path] then gone[#gone + 1] = path end
  end
  fieldset.remove_all(merged, gone)
  mine.set, mine.time, mine.apiVersion = applied, now_text(), opts.api_version
  merged.metadata.managedFields = write_entries(entries)
  return merged
end

--- Moves ownership for a non-apply write of `new` over `old` (both decoded
--- objects; `new` is changed in place): fields it added or changed become
--- opts.manager's (operation Update), removed fields leave every entry.
--- A body without managedFields keeps the stored ones, and so does every
--- subresource write (a status writer's copy may be stale); `[{}]` clears
--- them. Untracked objects (no managedFields either side) are left alone.
function M.track_update(old, new, opts)
  local meta = new.metadata
  if type(meta) ~= "table" then return end
  local base = meta.managedFields
  if base == nil or (V.is_array(base) and #base == 0) or (opts.subresource or "") ~= "" then
    base = type(old.metadata) == "table" and old.metadata.managedFields or nil
  end
  if not V.is_array(base) or #base == 0 then
    meta.managedFields = nil
    return
  end
  local entries = read_entries(base)
  if #entries == 0 then
    meta.managedFields = nil
    return
  end
  local touched, removed = diff_of(old, new, opts)
  if next(touched) ~= nil or next(removed) ~= nil then
    local mine = entry_of(entries, opts.manager, "Update", opts)
    for _, e in ipairs(entries) do
      for path in pairs(removed) do e.set[path] = nil end
      if e ~= mine then
        for path in pairs(touched) do e.set[path] = nil end
      end
    end
    for path in pairs(touched) do mine.set[path] = true end
    mine.time, mine.apiVersion = now_text(), opts.api_version
  end
  meta.managedFields = write_entries(entries)
end

--- The 409 an apply with conflicts gets (apierrors.NewApplyConflict with
--- the field manager's message).
function M.conflict_status(conflicts)
  table.sort(conflicts, function(a, b)
    if a.manager ~= b.manager then return a.manager < b.manager end
    return a.path < b.path
  end)
  local causes = {}
  for i, c in ipairs(conflicts) do
    causes[i] = { type = "FieldManagerConflict", message = "conflict with " .. c.manager, field = c.path }
  end
  local message
  if #conflicts == 1 then
    message = string.format("Apply failed with 1 conflict: conflict with %s: %s",
      conflicts[1].manager, conflicts[1].path)
  else
    local lines, last = {}, nil
    for _, c in ipairs(conflicts) do
      if c.manager ~= last then
        lines[#lines + 1] = "conflicts with " .. c.manager .. ":"
        last = c.manager
      end
      lines[#lines + 1] = "- " .. c.path
    end
    message = string.format("Apply failed with %d conflicts: %s", #conflicts, table.concat(lines, "\n"))
  end
  return { kind = "Status", apiVersion = "v1", metadata = {}, status = "Failure", message = message,
    reason = "Conflict", details = { causes = causes }, code = 409 }
end

--- Who a non-apply write is on behalf of: the fieldManager parameter, else
--- the User-Agent's product ("kubectl" of "kubectl/v1.32.4 (linux...)"),
--- as managerOrUserAgent does; the server's own writers are "moonlet".
function M.manager_of(query_manager, user_agent)
  if query_manager and query_manager ~= "" then return query_manager end
  if user_agent and user_agent ~= "" then
    local product = user_agent:match("^([^/]*)")
    if product and product ~= "" then return product:sub(1, 128) end
  end
  return "moonlet"
end

return M
