-- moonlet.api.fieldset: the sets of fields server-side apply reasons about,
-- as structured-merge-diff (the library behind kube-apiserver's field
-- manager) sees them, over values decoded by moonlet.json.
--
-- A set holds paths to leaves (scalars, atomic lists and structs, empty
-- maps) and to the items of associative lists (keyed by their merge keys)
-- and of set lists (primitive lists merged as sets, like finalizers). A
-- path is its elements joined by "\0", each element as metav1's FieldsV1
-- names it: `f:NAME` (a field or map key), `k:{"name":"c"}` (a list item by
-- its keys), `v:"x"` (a set item). Which list is which comes from the
-- kind's strategic merge keys (moonlet.api.merge_keys): a list with a merge
-- key is associative, a merged list without one a set, every other list
-- atomic, as the x-kubernetes-list-type markers of k8s.io/api say for the
-- built-in kinds.
local json = require("moonlet.json")
local V = require("moonlet.api.patch.value")
local merge_keys = require("moonlet.api.merge_keys")

local M = {}

local SEP = "\0"

-- Fields no manager owns (fieldmanager's stripMeta): the server sets them.
local IGNORED_META = {
  name = true, namespace = true, uid = true, resourceVersion = true,
  generation = true, creationTimestamp = true, managedFields = true,
  selfLink = true, deletionTimestamp = true, deletionGracePeriodSeconds = true,
}

-- Structs and maps Kubernetes marks atomic (structType/mapType=atomic):
-- label selectors (metav1.LabelSelector, Service's and RC's selector maps)
-- and the pod's nodeSelector are replaced whole, owned as one field.
local ATOMIC_FIELDS = {
  selector = true, labelSelector = true, namespaceSelector = true,
  nodeSelector = true,
}

-- Associative lists whose Kubernetes keys are more than the merge key:
-- a container port is keyed by port and protocol (TCP when unset).
local EXTRA_KEYS = {
  containerPort = { { "protocol", "TCP" } },
}

--- The list semantics of a kind: spath ("spec.template.spec.containers",
--- "[]" for list items) -> { keys = {...} } | "set" | nil (atomic).
function M.semantics(group, kind)
  local mk = merge_keys.for_kind(group, kind)
  return setmetatable({}, { __index = function(t, spath)
    local e = mk[spath]
    local s = false
    if e and e.key then
      s = { keys = { { e.key } } }
      for _, extra in ipairs(EXTRA_KEYS[e.key] or {}) do s.keys[#s.keys + 1] = extra end
    elseif e and e.strategy and e.strategy:find("merge", 1, true) then
      s = "set"
    end
    rawset(t, spath, s)
    return s
  end })
end

-- The key element of an associative list item, or nil when it lacks its
-- merge key. Keys are sorted by name, as FieldsV1 writes them.
local function key_element(item, keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local name, default = k[1], k[2]
    local v = item[name]
    if v == nil then
      if default == nil then return nil end
      v = default
    end
    parts[#parts + 1] = { name, v }
  end
  table.sort(parts, function(a, b) return a[1] < b[1] end)
  local out = {}
  for i, p in ipairs(parts) do out[i] = json.encode(p[1]) .. ":" .. json.encode(p[2]) end
  return "k:{" .. table.concat(out, ",") .. "}"
end

local function child_spath(spath, name)
  return spath == "" and name or (spath .. "." .. name)
end

-- Adds the paths under `v` (at path `prefix`, schema path `spath`, field
-- name `field`) to `out`.
local function collect(v, prefix, spath, field, sem, out)
  if V.is_object(v) then
    if next(v) == nil or ATOMIC_FIELDS[field] then
      if prefix ~= "" then out[prefix] = true end
      return
    end
    for k, cv in pairs(v) do
      local p = prefix == "" and ("f:" .. k) or (prefix .. SEP .. "f:" .. k)
      collect(cv, p, child_spath(spath, k), k, sem, out)
    end
    return
  end
  if V.is_array(v) then
    local s = sem[spath]
    if s == "set" then
      for _, item in ipairs(v) do
        if type(item) ~= "table" then out[prefix .. SEP .. "v:" .. json.encode(item)] = true end
      end
      return
    end
    if type(s) == "table" then
      local items = {}
      for _, item in ipairs(v) do
        local ke = V.is_object(item) and key_element(item, s.keys)
        if not ke then items = nil break end
        items[#items + 1] = { ke, item }
      end
      if items then
        for _, it in ipairs(items) do
          local p = prefix .. SEP .. it[1]
          out[p] = true
          for k, cv in pairs(it[2]) do
            collect(cv, p .. SEP .. "f:" .. k, spath .. "[]." .. k, k, sem, out)
          end
        end
        return
      end
    end
  end
  if prefix ~= "" then out[prefix] = true end
end

--- The set of fields of object `obj` for `scope`: "main" (status left out
--- when `status_apart`, the kind having a status subresource) or "status"
--- (status only). apiVersion, kind and the metadata the server sets are
--- never in a set.
function M.of(obj, sem, scope, status_apart)
  local out = {}
  for k, v in pairs(obj) do
    if k == "apiVersion" or k == "kind" then
      -- the type, not a field
    elseif k == "status" and scope ~= "status" and status_apart then
      -- written through the status subresource only
    elseif k ~= "status" and scope == "status" then
      -- a status write changes nothing else
    elseif k == "metadata" and V.is_object(v) then
      for mk, mv in pairs(v) do
        if not IGNORED_META[mk] then
          collect(mv, "f:metadata" .. SEP .. "f:" .. mk, "metadata." .. mk, mk, sem, out)
        end
      end
    else
      collect(v, "f:" .. k, k, k, sem, out)
    end
  end
  return out
end

-- {====== differences

-- Associative list items by their key element; nil when one lacks its key
-- (the list is then one atomic field, as collect sees it).
local function keyed(list, keys)
  local out = {}
  for _, item in ipairs(list) do
    local ke = V.is_object(item) and key_element(item, keys)
    if not ke then return nil end
    if out[ke] == nil then out[ke] = item end
  end
  return out
end

local diff

-- The members of an item (or struct) `v` at `prefix`, into `out`.
local function collect_members(v, prefix, spath, sem, out)
  for k, cv in pairs(v) do
    collect(cv, prefix .. SEP .. "f:" .. k, spath .. "." .. k, k, sem, out)
  end
end

-- Paths under `b` that are new or hold another value than in `a` go to
-- `touched`, paths under `a` that `b` lacks to `removed`: one walk of both
-- values, whatever the size of their lists.
diff = function(a, b, prefix, spath, field, sem, touched, removed)
  if V.is_object(a) and V.is_object(b) and not ATOMIC_FIELDS[field] and next(a) ~= nil and next(b) ~= nil then
    for k, bv in pairs(b) do
      local p, sp, av = prefix .. SEP .. "f:" .. k, child_spath(spath, k), a[k]
      if av == nil then collect(bv, p, sp, k, sem, touched) else diff(av, bv, p, sp, k, sem, touched, removed) end
    end
    for k, av in pairs(a) do
      if b[k] == nil then collect(av, prefix .. SEP .. "f:" .. k, child_spath(spath, k), k, sem, removed) end
    end
    return
  end
  if V.is_array(a) and V.is_array(b) then
    local s = sem[spath]
    if s == "set" then
      local as, bs = {}, {}
      for _, item in ipairs(a) do if type(item) ~= "table" then as["v:" .. json.encode(item)] = true end end
      for _, item in ipairs(b) do if type(item) ~= "table" then bs["v:" .. json.encode(item)] = true end end
      for e in pairs(bs) do if not as[e] then touched[prefix .. SEP .. e] = true end end
      for e in pairs(as) do if not bs[e] then removed[prefix .. SEP .. e] = true end end
      return
    end
    local ak = type(s) == "table" and keyed(a, s.keys)
    local bk = ak and keyed(b, s.keys)
    if bk then
      local ispath = spath .. "[]"
      for e, bi in pairs(bk) do
        local p, ai = prefix .. SEP .. e, ak[e]
        if ai == nil then
          touched[p] = true
          collect_members(bi, p, ispath, sem, touched)
        else
          diff(ai, bi, p, ispath, nil, sem, touched, removed)
        end
      end
      for e, ai in pairs(ak) do
        if bk[e] == nil then
          local p = prefix .. SEP .. e
          removed[p] = true
          collect_members(ai, p, ispath, sem, removed)
        end
      end
      return
    end
  end
  -- Leaves (scalars, atomic fields, empty maps) or a change of shape:
  -- compare what each side holds.
  local pa, pb = {}, {}
  collect(a, prefix, spath, field, sem, pa)
  collect(b, prefix, spath, field, sem, pb)
  for p in pairs(pb) do
    if not pa[p] or (p == prefix and not V.equal(a, b)) then touched[p] = true end
  end
  for p in pairs(pa) do
    if not pb[p] then removed[p] = true end
  end
end

--- What a write of `b` over `a` does to the fields of `scope` (as M.of):
--- the paths it adds or changes, and those it removes (two sets).
function M.diff(a, b, sem, scope, status_apart)
  local touched, removed = {}, {}
  local function keep(k)
    if k == "apiVersion" or k == "kind" then return false end
    if k == "status" then return scope == "status" or not status_apart end
    return scope ~= "status"
  end
  local function one(av, bv, p, sp, k)
    if av == nil then collect(bv, p, sp, k, sem, touched)
    elseif bv == nil then collect(av, p, sp, k, sem, removed)
    else diff(av, bv, p, sp, k, sem, touched, removed) end
  end
  local keys = {}
  for k in pairs(a) do keys[k] = true end
  for k in pairs(b) do keys[k] = true end
  for k in pairs(keys) do
    if keep(k) then
      local av, bv = a[k], b[k]
      if k == "metadata" and V.is_object(av) and V.is_object(bv) then
        local mkeys = {}
        for mk in pairs(av) do mkeys[mk] = true end
        for mk in pairs(bv) do mkeys[mk] = true end
        for mk in pairs(mkeys) do
          if not IGNORED_META[mk] then
            one(av[mk], bv[mk], "f:metadata" .. SEP .. "f:" .. mk, "metadata." .. mk, mk)
          end
        end
      else
        one(av, bv, "f:" .. k, k, k)
      end
    end
  end
  return touched, removed
end

-- }======

-- {====== paths

local function split(path)
  local elems, at = {}, 1
  while true do
    local i = path:find(SEP, at, true)
    if not i then
      elems[#elems + 1] = path:sub(at)
      return elems
    end
    elems[#elems + 1] = path:sub(at, i - 1)
    at = i + 1
  end
end

-- Decoded key fields of a `k:` element, memoized: the same items recur
-- in every write of an object. Started over past KEYS_MAX entries.
local KEYS_MAX = 4096
local decoded_keys, decoded_n = {}, 0
local function keys_of(elem)
  local k = decoded_keys[elem]
  if k == nil then
    k = json.decode(elem:sub(3))
    if not V.is_object(k) then k = false end
    if decoded_n >= KEYS_MAX then decoded_keys, decoded_n = {}, 0 end
    decoded_keys[elem], decoded_n = k, decoded_n + 1
  end
  return k
end

-- The `k:` element an item has under key fields `names` (sorted), or nil.
local function item_key(item, names)
  if not V.is_object(item) then return nil end
  local parts = {}
  for i, name in ipairs(names) do
    local v = item[name]
    if v == nil and name == "protocol" then v = "TCP" end
    if v == nil then return nil end
    parts[i] = json.encode(name) .. ":" .. json.encode(v)
  end
  return "k:{" .. table.concat(parts, ",") .. "}"
end

-- Per list: element text -> index, built once per list and kind of
-- element, so walking every item of a long list stays linear. Dropped
-- when the list changes (remove) and at each fresh() (the lists' owners
-- change them between operations).
local item_index = setmetatable({}, { __mode = "k" })

--- Forgets the list indexes: call before an operation on objects that may
--- have changed since the last one.
function M.fresh() item_index = setmetatable({}, { __mode = "k" }) end

-- Index of the item of list `list` that element `elem` (k: or v:) names.
local function find_item(list, elem)
  local per = item_index[list]
  if not per then
    per = {}
    item_index[list] = per
  end
  local sig, names
  if elem:sub(1, 2) == "v:" then
    sig = "v"
  else
    local keys = keys_of(elem)
    if not keys then return nil end
    names = V.keys(keys)
    sig = table.concat(names, ",")
  end
  local idx = per[sig]
  if not idx then
    idx = {}
    for i, item in ipairs(list) do
      local e
      if names then e = item_key(item, names)
      elseif type(item) ~= "table" then e = "v:" .. json.encode(item) end
      if e and idx[e] == nil then idx[e] = i end
    end
    per[sig] = idx
  end
  return idx[elem]
end

local function step(v, elem)
  if type(v) ~= "table" then return nil end
  if elem:sub(1, 2) == "f:" then
    if V.is_array(v) then return nil end
    return v[elem:sub(3)]
  end
  if not V.is_array(v) then return nil end
  local i = find_item(v, elem)
  return i and v[i]
end

--- The value at `path` in `obj`, or nil.
function M.get(obj, path)
  local v = obj
  for _, e in ipairs(split(path)) do
    v = step(v, e)
    if v == nil then return nil end
  end
  return v
end

--- Removes what `path` names from `obj` (in place); true when it was there.
function M.remove(obj, path)
  local elems = split(path)
  local parent = obj
  for i = 1, #elems - 1 do
    parent = step(parent, elems[i])
    if parent == nil then return false end
  end
  local last = elems[#elems]
  if type(parent) ~= "table" then return false end
  if last:sub(1, 2) == "f:" then
    if V.is_array(parent) or parent[last:sub(3)] == nil then return false end
    parent[last:sub(3)] = nil
    return true
  end
  if not V.is_array(parent) then return false end
  local i = find_item(parent, last)
  if not i then return false end
  table.remove(parent, i)
  item_index[parent] = nil
  return true
end

--- Removes every path of the list `paths` from `obj` (in place): list
--- items are taken out of each list in one pass, however many go.
function M.remove_all(obj, paths)
  local drop = {} -- list -> { [index] = true }
  for _, path in ipairs(paths) do
    local elems = split(path)
    local parent = obj
    for i = 1, #elems - 1 do
      parent = step(parent, elems[i])
      if parent == nil then break end
    end
    local last = elems[#elems]
    if type(parent) ~= "table" then
      -- gone with what held it
    elseif last:sub(1, 2) == "f:" then
      if not V.is_array(parent) then parent[last:sub(3)] = nil end
    elseif V.is_array(parent) then
      local i = find_item(parent, last)
      if i then
        drop[parent] = drop[parent] or {}
        drop[parent][i] = true
      end
    end
  end
  for list, gone in pairs(drop) do
    local n, w = #list, 0
    for r = 1, n do
      if not gone[r] then
        w = w + 1
        list[w] = list[r]
      end
    end
    for r = w + 1, n do list[r] = nil end
    item_index[list] = nil
  end
end

-- One element as structured-merge-diff's fieldpath prints it.
local function element_text(e)
  local t, rest = e:sub(1, 2), e:sub(3)
  if t == "f:" then return "." .. rest end
  if t == "v:" then return "[=" .. rest .. "]" end
  if t == "i:" then return "[" .. rest .. "]" end
  local keys = keys_of(e)
  if not keys then return "[" .. rest .. "]" end
  local parts = {}
  for _, k in ipairs(V.keys(keys)) do parts[#parts + 1] = k .. "=" .. json.encode(keys[k]) end
  return "[" .. table.concat(parts, ",") .. "]"
end

--- `path` as Kubernetes prints it in a conflict: .spec.containers[name="c"].image
function M.text(path)
  local out = {}
  for i, e in ipairs(split(path)) do out[i] = element_text(e) end
  return table.concat(out)
end

-- }======

-- {====== FieldsV1

--- The FieldsV1 tree of a set: each path a chain of nested objects, "."
--- marking a path that is itself in the set and has members below it.
function M.encode(set)
  local root = {}
  local members = {}
  for path in pairs(set) do
    local node = root
    for _, e in ipairs(split(path)) do
      local child = node[e]
      if not child then
        child = {}
        node[e] = child
      end
      node = child
    end
    members[node] = true
  end
  local function finish(node)
    if next(node) ~= nil and members[node] then node["."] = {} end
    for k, child in pairs(node) do
      if k ~= "." then finish(child) end
    end
  end
  finish(root)
  return root
end

--- The set a FieldsV1 tree describes (the inverse of encode); nil for a
--- tree of the wrong shape.
function M.decode(tree)
  if not V.is_object(tree) then return nil end
  local out = {}
  local ok = true
  local function walk(node, prefix)
    for k, child in pairs(node) do
      if k == "." then
        if prefix ~= "" then out[prefix] = true end
      elseif type(k) ~= "string" or not V.is_object(child) then
        ok = false
      else
        local p = prefix == "" and k or (prefix .. SEP .. k)
        if next(child) == nil then out[p] = true else walk(child, p) end
      end
    end
  end
  walk(tree, "")
  return ok and out or nil
end

-- }======

return M
