-- moonlet.api.patch.strategic: strategic merge patch as apimachinery's
-- pkg/util/strategicpatch applies and computes it, driven by a merge-key
-- table (moonlet.api.merge_keys) instead of Go struct tags.
--
-- Schema: a table keyed by field path, `[]` marking list elements, e.g.
--   ["spec.containers"]        = { key = "name" }
--   ["spec.containers[].ports"] = { key = "containerPort" }
--   ["metadata.finalizers"]    = { strategy = "merge" }
--   ["spec.volumes"]           = { key = "name", strategy = "merge,retainKeys" }
--   ["spec.strategy"]          = { strategy = "retainKeys" }
-- `strategy` is the Go patchStrategy tag; a `key` alone means "merge".
-- Fields not in the table behave as untagged ones: maps merge, lists
-- replace.
--
-- Two modes share one merge (mergeMap in Go):
--   server: applying a patch to a live object ($deleteFromPrimitiveList and
--           $setElementOrder are consumed, nulls delete);
--   client: merging the deletions patch with the changes patch while
--           building kubectl's three-way patch (directives and nulls kept).
-- Where the server inserts a value the target did not have, the value is
-- stripped of nulls and directive keys: Kubernetes gets the same effect by
-- converting the result into typed Go structs.
local V = require("moonlet.api.patch.value")

local null, kind, copy, equal = V.null, V.kind, V.copy, V.equal
local gofmt, gotype, fail = V.gofmt, V.gotype, V.fail
local keys, has_prefix, array = V.keys, V.has_prefix, V.array

local M = {}

local DIRECTIVE = "$patch"
local RETAIN_KEYS = "$retainKeys"
local DELETE_PREFIX = "$deleteFromPrimitiveList"
local ORDER_PREFIX = "$setElementOrder"

-- Error texts of k8s.io/apimachinery/pkg/util/mergepatch; the status codes
-- are what the apiserver's interpretStrategicMergePatchError maps them to.
local ERR_PRIMITIVE = "invalid patch format of primitive list"
local ERR_RETAIN = "invalid patch format of retainKeys"
local ERR_ORDER = "invalid patch format of setElementOrder list"
local ERR_LIST_OF_LISTS = "lists of lists are not supported"

local function no_merge_key(m, key)
  fail(500, "map: %s does not contain declared merge key: %s",
       gofmt(m), key)
end

local function bad_arg_type(expected, actual)
  fail(500, "expected a %s, but received a %s", expected, gotype(actual))
end

-- {====== schema lookups

local function child(path, key)
  if path == "" then return key end
  return path .. "." .. key
end

local function elem(path)
  return path .. "[]"
end

-- -> strategy ("merge" | "replace" | nil), merge key, retainKeys flag
local function field_meta(schema, path)
  local e = schema[path]
  if not e then return nil, nil, false end
  local strategy, retain = nil, false
  for s in string.gmatch(e.strategy or "", "[^,%s]+") do
    if s == "retainKeys" then
      retain = true
    else
      strategy = s
    end
  end
  if not strategy and e.key then strategy = "merge" end
  return strategy, e.key, retain
end

-- }======

-- {====== shared list helpers

-- sliceElementType: the one kind all elements of the given lists share.
local function element_kind(...)
  local first
  for i = 1, select("#", ...) do
    local list = select(i, ...)
    for j = 1, #list do
      local k = kind(list[j])
      if first == nil then
        if k == "array" then fail(422, ERR_LIST_OF_LISTS) end
        first = k
      elseif k ~= first then
        local shown = {}
        for n = 1, select("#", ...) do shown[n] = gofmt(select(n, ...)) end
        fail(500, "list element types are not identical: [%s]",
             table.concat(shown, " "))
      end
    end
  end
  return first
end

-- Go's findMapInSliceBasedOnKeyValue over a whole list at once (a scan per
-- lookup made merging two lists of 20,000 env entries hold the loop for
-- minutes). Returns find(value): the index (1-based) of the first element
-- whose merge key equals `value`, or nil, failing as the scan would on a
-- non-map element before it; and add(i) to take in an element appended at i.
local function key_finder(list, key)
  local at, bad = {}, nil
  local function add(i)
    local e = list[i]
    if kind(e) ~= "object" then
      bad = bad or i
    else
      local v = e[key]
      if v ~= nil and at[v] == nil then at[v] = i end
    end
  end
  for i = 1, #list do add(i) end
  local function find(value)
    local i = value ~= nil and at[value] or nil
    -- The scan would have met the non-map element first.
    if bad and (i == nil or bad < i) then
      fail(500, "value for key %d is not a map.", bad - 1)
    end
    return i
  end
  return find, add
end

-- The position of `item` in `order`: by merge key for maps, by value else.
-- Built once per order: positions(order, key, ek)(item) -> index or -1.
local function positions(order, key, ek)
  local at, first_nil = {}, nil
  for i = 1, #order do
    local v = order[i]
    if ek == "object" then
      v = kind(v) == "object" and v[key] or nil
    end
    if v == nil then
      first_nil = first_nil or i
    elseif at[v] == nil then
      at[v] = i
    end
  end
  return function(item)
    local probe = item
    if ek == "object" then
      probe = kind(item) == "object" and item[key] or nil
    end
    if probe == nil then return first_nil or -1 end
    return at[probe] or -1
  end
end

local function check_merge_keys(key, ...)
  for i = 1, select("#", ...) do
    local list = select(i, ...)
    for j = 1, #list do
      local e = list[j]
      if kind(e) ~= "object" then bad_arg_type("map[string]interface {}", e) end
      if e[key] == nil then no_merge_key(e, key) end
    end
  end
end

-- normalizeSliceOrder: stable-sorts `list` by position in `order`; for
-- maps, delete directives move to the end. The comparison keeps Go's
-- shape (an item missing from `order` sorts before its neighbour), with an
-- insertion sort, which is what sort.SliceStable runs on short lists.
local function sort_by_order(list, order, key, ek)
  local items, deletes = {}, {}
  if ek == "object" then
    check_merge_keys(key, list, order)
    for i = 1, #list do
      local e = list[i]
      if e[DIRECTIVE] == "delete" then
        deletes[#deletes + 1] = e
      else
        items[#items + 1] = e
      end
    end
  else
    for i = 1, #list do items[i] = list[i] end
  end
  local pos, index_of, missing = {}, positions(order, key, ek), false
  for i = 1, #items do
    pos[i] = index_of(items[i])
    missing = missing or pos[i] < 0
  end
  if not missing then
    -- Every item is in `order`: the insertion sort is a stable sort by
    -- position, done here in n log n (it was n^2 swaps on a reversed list).
    local idx = {}
    for i = 1, #items do idx[i] = i end
    table.sort(idx, function(a, b)
      if pos[a] ~= pos[b] then return pos[a] < pos[b] end
      return a < b
    end)
    local out = array()
    for i = 1, #idx do out[i] = items[idx[i]] end
    for i = 1, #deletes do out[#out + 1] = deletes[i] end
    return out
  end
  for i = 2, #items do
    local j = i
    while j > 1 do
      local a, b = pos[j], pos[j - 1]
      local less = true
      if a >= 0 and b >= 0 then less = a < b end
      if not less then break end
      items[j], items[j - 1] = items[j - 1], items[j]
      pos[j], pos[j - 1] = pos[j - 1], pos[j]
      j = j - 1
    end
  end
  local out = array()
  for i = 1, #items do out[#out + 1] = items[i] end
  for i = 1, #deletes do out[#out + 1] = deletes[i] end
  return out
end

-- mergeSortedSlice: interleaves server-only items (`left`) with patch
-- items (`right`); a server item goes first only when both are in the
-- server order and it comes earlier there, so items new to the server
-- land before the server-only items that follow them.
local function merge_sorted(left, right, order, key, ek)
  local out = array()
  local i, j = 1, 1
  local index_of = positions(order, key, ek)
  while i <= #left and j <= #right do
    local li = index_of(left[i])
    local ri = index_of(right[j])
    if li >= 0 and ri >= 0 and li < ri then
      out[#out + 1] = left[i]
      i = i + 1
    else
      out[#out + 1] = right[j]
      j = j + 1
    end
  end
  for n = i, #left do out[#out + 1] = left[n] end
  for n = j, #right do out[#out + 1] = right[n] end
  return out
end

-- normalizeElementOrder: patch items in patch order, server-only items in
-- server order, merged.
local function normalize_order(patch_items, server_items, patch_order,
                               server_order, key, ek)
  patch_items = sort_by_order(patch_items, patch_order, key, ek)
  server_items = sort_by_order(server_items, server_order, key, ek)
  return merge_sorted(server_items, patch_items, server_order, key, ek)
end

-- Splits `list` into items present in `by` and the others.
local function partition(list, by, key, ek)
  local inside, outside = {}, {}
  if ek ~= "object" then
    local set = {}
    for i = 1, #by do set[by[i]] = true end
    for i = 1, #list do
      local v = list[i]
      if set[v] then inside[#inside + 1] = v else outside[#outside + 1] = v end
    end
    return inside, outside
  end
  local find = key_finder(by, key)
  for i = 1, #list do
    local v = list[i]
    if kind(v) ~= "object" then bad_arg_type("map[string]interface {}", v) end
    local mv = v[key]
    if mv == nil then no_merge_key(v, key) end
    if find(mv) then
      inside[#inside + 1] = v
    else
      outside[#outside + 1] = v
    end
  end
  return inside, outside
end

local function dedupe(list)
  local out, seen = array(), {}
  for i = 1, #list do
    local v = list[i]
    local probe = v
    if type(v) == "table" then probe = nil end
    if probe == nil or not seen[probe] then
      if probe ~= nil then seen[probe] = true end
      out[#out + 1] = v
    end
  end
  return out
end

-- }======

-- {====== apply (mergeMap / mergeSlice)

-- A value taken from the patch as is. On the server nulls and directive
-- keys are dropped (and delete-directive list elements), as decoding into
-- typed objects would; the client keeps the patch verbatim.
local function strip(v)
  local k = kind(v)
  if k == "object" then
    local out = {}
    for key, x in pairs(v) do
      if x ~= null and key ~= DIRECTIVE and key ~= RETAIN_KEYS
          and not has_prefix(key, ORDER_PREFIX)
          and not has_prefix(key, DELETE_PREFIX) then
        out[key] = strip(x)
      end
    end
    return out
  elseif k == "array" then
    local out = array()
    for i = 1, #v do
      local x = v[i]
      if not (kind(x) == "object" and x[DIRECTIVE] == "delete") then
        out[#out + 1] = strip(x)
      end
    end
    return out
  end
  return v
end

local function take(v, o)
  if o.server then return strip(v) end
  return copy(v)
end

local function extract_key(s, prefix)
  local head, rest = s:match("^([^/]*)/(.*)$")
  if head ~= prefix then
    fail(400, prefix == DELETE_PREFIX and ERR_PRIMITIVE or ERR_ORDER)
  end
  return rest
end

local merge_map

-- mergeSliceWithSpecialElements: applies `$patch: delete` and
-- `$patch: replace` elements; returns the new original and the patch
-- without them.
local function special_elements(orig, patch, key, o)
  -- The deleted keys are gathered and dropped in one pass at the end (a
  -- pass per `$patch: delete` element was n^2); the first delete checks
  -- the elements, as its pass did.
  local rest, replace, deleted = {}, false, nil
  for i = 1, #patch do
    local v = patch[i]
    local d = v[DIRECTIVE]
    if d == nil then
      rest[#rest + 1] = v
    elseif d == "delete" then
      local mv = v[key]
      if mv == nil then no_merge_key(v, key) end
      if not deleted then
        deleted = {}
        for j = 1, #orig do
          if kind(orig[j]) ~= "object" then
            fail(500, "value for key %d is not a map.", j - 1)
          end
        end
      end
      deleted[mv] = true
    elseif d == "replace" then
      replace = true
    elseif d == "merge" then
      fail(500, "merging lists cannot yet be specified in the patch")
    else
      fail(500, "unknown patch type: %s in map: %s", gofmt(d), gofmt(v))
    end
  end
  if deleted then
    local kept = array()
    for j = 1, #orig do
      if not deleted[orig[j][key]] then kept[#kept + 1] = orig[j] end
    end
    orig = kept
  end
  if replace then
    local list = array()
    for i = 1, #rest do list[i] = take(rest[i], o) end
    return list, array()
  end
  return orig, rest
end

-- mergeSlice: `orig` is owned (a copy), `patch` is the caller's.
local function merge_slice(orig, patch, epath, key, o, is_delete, schema)
  if #orig == 0 and #patch == 0 then return orig end
  local ek = element_kind(orig, patch)
  local merged
  if ek ~= "object" then
    if o.server and is_delete then
      local drop = {}
      for i = 1, #patch do drop[patch[i]] = true end
      local out = array()
      for i = 1, #orig do
        if not drop[orig[i]] then out[#out + 1] = orig[i] end
      end
      return out
    end
    local both = {}
    for i = 1, #orig do both[#both + 1] = orig[i] end
    for i = 1, #patch do both[#both + 1] = patch[i] end
    merged = dedupe(both)
  else
    if not key then
      fail(500, "cannot merge lists without merge key for type struct")
    end
    orig, patch = special_elements(orig, patch, key, o)
    merged = array()
    for i = 1, #orig do merged[i] = orig[i] end
    -- A merged element keeps its merge key (the patch's equals it).
    local find, add = key_finder(merged, key)
    for i = 1, #patch do
      local pe = patch[i]
      local mv = pe[key]
      if mv == nil then no_merge_key(pe, key) end
      local at = find(mv)
      if at then
        merged[at] = merge_map(merged[at], pe, epath, o, schema)
      else
        merged[#merged + 1] = take(pe, o)
        add(#merged)
      end
    end
  end
  local inside, outside = partition(merged, patch, key, ek)
  return normalize_order(inside, outside, patch, orig, key, ek)
end

-- mergeSliceHandler: merge by strategy, or the patch list replaces.
local function merge_list_field(ov, pv, fpath, o, is_delete, schema)
  local strategy, key = field_meta(schema, fpath)
  if strategy == "merge" then
    return merge_slice(ov, pv, elem(fpath), key, o, is_delete, schema)
  end
  return take(pv, o)
end

-- validatePatchWithSetOrderList: the patch list must follow the order.
local function check_order(plist, order, key)
  if plist == nil or #order == 0 or #plist == 0 then return end
  local items = {}
  for i = 1, #plist do
    local v = plist[i]
    if key then
      if kind(v) ~= "object" then bad_arg_type("map[string]interface {}", v) end
      if v[DIRECTIVE] ~= "delete" then items[#items + 1] = v end
    else
      items[#items + 1] = v
    end
  end
  local pi, oi = 1, 1
  while pi <= #items and oi <= #order do
    local item = items[pi]
    if kind(item) == "object" and item[DIRECTIVE] ~= nil then
      pi = pi + 1
    else
      local same
      if key then
        local o = order[oi]
        if kind(o) ~= "object" then bad_arg_type("map[string]interface {}", o) end
        if item[key] == nil then no_merge_key(item, key) end
        if o[key] == nil then no_merge_key(o, key) end
        same = item[key] == o[key]
      else
        same = item == order[oi]
      end
      if same then pi = pi + 1 end
      oi = oi + 1
    end
  end
  if pi <= #items and oi > #order then
    fail(500, "The order in patch list:\n%s\n doesn't match %s list:\n%s\n",
         gofmt(plist), ORDER_PREFIX, gofmt(order))
  end
end

-- mergePatchIntoOriginal: each $setElementOrder/<field> with its list.
local function apply_orders(orig, patch, path, o, done, schema)
  for _, pkey in ipairs(keys(patch)) do
    if has_prefix(pkey, ORDER_PREFIX) then
      done[pkey] = true
      local order = patch[pkey]
      if not o.server then
        local have = orig[pkey]
        if have ~= nil then
          if not equal(have, order) then fail(400, ERR_ORDER) end
        else
          orig[pkey] = copy(order)
        end
      end
      if kind(order) ~= "array" then bad_arg_type("[]interface {}", order) end
      local field = extract_key(pkey, ORDER_PREFIX)
      local ol, pl = orig[field], patch[field]
      if ol ~= nil and kind(ol) ~= "array" then bad_arg_type("[]interface {}", ol) end
      if pl ~= nil and kind(pl) ~= "array" then bad_arg_type("[]interface {}", pl) end
      local fpath = child(path, field)
      local _, key = field_meta(schema, fpath)
      local ek = element_kind(ol or {}, pl or {})
      -- An order only means something for lists merged by value or key;
      -- Go panics on the other shapes, we let the list replace.
      local ordered = ek ~= nil and (ek ~= "object" or key ~= nil)
      if ordered then check_order(pl, order, key) end
      local merged
      if ol ~= nil and pl == nil then
        merged = ol
      elseif ol == nil and pl ~= nil then
        merged = take(pl, o)
      elseif ol ~= nil and pl ~= nil then
        merged = merge_list_field(ol, pl, fpath, o, false, schema)
      end
      if merged ~= nil then
        done[field] = true
        if not ordered then
          orig[field] = merged
        else
          local inside, outside = partition(merged, order, key, ek)
          orig[field] = normalize_order(inside, outside, order, ol or {},
                                        key, ek)
        end
      end
    end
  end
end

-- applyRetainKeysDirective
local function apply_retain_keys(orig, patch, o, done)
  local list = patch[RETAIN_KEYS]
  if list == nil then return end
  done[RETAIN_KEYS] = true
  if not o.server then
    local have = orig[RETAIN_KEYS]
    if have ~= nil then
      if not equal(have, list) then
        fail(500, "%s and %s are not deep equal: this may happen when " ..
                  "calculating the 3-way diff patch", gofmt(have), gofmt(list))
      end
    else
      orig[RETAIN_KEYS] = copy(list)
    end
    return
  end
  if kind(list) ~= "array" then fail(400, ERR_RETAIN) end
  local keep = {}
  for i = 1, #list do keep[list[i]] = true end
  for k, v in pairs(patch) do
    if not done[k] and v ~= null and not has_prefix(k, DELETE_PREFIX)
        and not has_prefix(k, ORDER_PREFIX) and not keep[k] then
      fail(400, ERR_RETAIN)
    end
  end
  for _, k in ipairs(keys(orig)) do
    if not keep[k] then orig[k] = nil end
  end
end

-- mergeMap: merges `patch` into `orig` (owned; nil means {}).
function merge_map(orig, patch, path, o, schema)
  local d = patch[DIRECTIVE]
  if d ~= nil then
    if d == "replace" then
      local out = {}
      for k, v in pairs(patch) do
        if k ~= DIRECTIVE then out[k] = v end
      end
      return take(out, o)
    elseif d == "delete" then
      return {}
    end
    fail(500, "unknown patch type: %s in map: %s", gofmt(d), gofmt(patch))
  end
  orig = orig or {}
  local done = {}
  apply_retain_keys(orig, patch, o, done)
  apply_orders(orig, patch, path, o, done, schema)
  for _, k in ipairs(keys(patch)) do
    if not done[k] then
      local pv = patch[k]
      local field, is_delete = k, false
      local skip = false
      if has_prefix(k, DELETE_PREFIX) then
        if not o.server then
          orig[k] = copy(pv)
          skip = true
        else
          field = extract_key(k, DELETE_PREFIX)
          is_delete = true
        end
      end
      if not skip and pv == null then
        orig[field] = nil
        skip = o.server
      end
      if not skip then
        local ov = orig[field]
        local ok, pk = kind(ov), kind(pv)
        if ov == nil or ok ~= pk then
          -- Deleting from a list the object does not have is a no-op;
          -- (Go would store the deletion list itself as the value.)
          if not is_delete then orig[field] = take(pv, o) end
        elseif ok == "object" then
          local fpath = child(path, field)
          if field_meta(schema, fpath) == "replace" then
            orig[field] = take(pv, o)
          else
            orig[field] = merge_map(ov, pv, fpath, o, schema)
          end
        elseif ok == "array" then
          local fpath = child(path, field)
          if is_delete and field_meta(schema, fpath) ~= "merge" then
            -- a deletion list only means something for merging lists
            orig[field] = ov
          else
            orig[field] = merge_list_field(ov, pv, fpath, o, is_delete, schema)
          end
        else
          orig[field] = take(pv, o)
        end
      end
    end
  end
  return orig
end

local SERVER = { server = true }
local CLIENT = { server = false }

--- Applies strategic merge patch `patch` to a copy of `target`.
--- Raises a refusal (value.protect turns it into nil, message, code).
function M.apply(target, patch, schema, path)
  schema = schema or {}
  if patch == nil or patch == null then patch = {} end
  if kind(patch) ~= "object" then
    fail(400, "json: cannot unmarshal %s into Go value of type " ..
              "map[string]interface {}", kind(patch))
  end
  local doc = kind(target) == "object" and copy(target) or {}
  return merge_map(doc, patch, path or "", SERVER, schema)
end

-- }======

-- {====== diff (diffMaps / diffLists), for two- and three-way patches

-- %v text used to sort and pair list entries, as Go does.
local function sort_text(v)
  return gofmt(v)
end

local function sorted_copy(list, text_of)
  local items = {}
  for i = 1, #list do
    items[i] = { v = list[i], t = text_of(list[i]), i = i }
  end
  table.sort(items, function(a, b)
    if a.t ~= b.t then return a.t < b.t end
    return a.i < b.i
  end)
  return items
end

local diff_maps

-- diffListsOfScalars -> additions, deletions
local function diff_scalars(orig, mod, opt)
  local os_ = sorted_copy(orig, sort_text)
  local ms = sorted_copy(mod, sort_text)
  local adds, dels = array(), {}
  local i, j = 1, 1
  while i <= #os_ or j <= #ms do
    local oin, min = i <= #os_, j <= #ms
    if oin and min and os_[i].t == ms[j].t then
      i, j = i + 1, j + 1
    elseif not oin or (min and os_[i].t > ms[j].t) then
      if not opt.ignore_changes then adds[#adds + 1] = copy(ms[j].v) end
      j = j + 1
    else
      if not opt.ignore_deletions then dels[#dels + 1] = copy(os_[i].v) end
      i = i + 1
    end
  end
  return adds, dedupe(dels)
end

-- diffListsOfMaps -> changes/additions, delete directives
local function diff_map_lists(orig, mod, epath, key, opt, schema)
  local function key_text(e)
    if kind(e) ~= "object" then bad_arg_type("map[string]interface {}", e) end
    if e[key] == nil then no_merge_key(e, key) end
    return sort_text(e[key])
  end
  local os_ = sorted_copy(orig, key_text)
  local ms = sorted_copy(mod, key_text)
  local patch, dels = array(), array()
  local i, j = 1, 1
  while i <= #os_ or j <= #ms do
    local oin, min = i <= #os_, j <= #ms
    if oin and min and os_[i].t == ms[j].t then
      local sub = diff_maps(os_[i].v, ms[j].v, epath, opt, schema)
      if next(sub) ~= nil then
        sub[key] = copy(ms[j].v[key])
        patch[#patch + 1] = sub
      end
      i, j = i + 1, j + 1
    elseif not oin or (min and os_[i].t > ms[j].t) then
      if not opt.ignore_changes then patch[#patch + 1] = copy(ms[j].v) end
      j = j + 1
    else
      if not opt.ignore_deletions then
        dels[#dels + 1] = { [key] = copy(os_[i].v[key]), [DIRECTIVE] = "delete" }
      end
      i = i + 1
    end
  end
  return patch, dels
end

local function same_order(orig, mod, key)
  if #orig ~= #mod then return false end
  for i = 1, #mod do
    local a, b = orig[i], mod[i]
    if kind(a) ~= "object" then bad_arg_type("map[string]interface {}", a) end
    if kind(b) ~= "object" then bad_arg_type("map[string]interface {}", b) end
    if a[key] == nil then no_merge_key(a, key) end
    if b[key] == nil then no_merge_key(b, key) end
    if a[key] ~= b[key] then return false end
  end
  return true
end

-- diffLists -> patch list, deletion list, $setElementOrder list
local function diff_lists(orig, mod, epath, key, opt, schema)
  local none = array()
  if #orig == 0 then
    if #mod == 0 or opt.ignore_changes then return none, none, none end
    return copy(mod), none, none
  end
  local ek = element_kind(orig, mod)
  local plist, dlist, order = none, none, none
  if ek == "object" then
    if not key then no_merge_key(orig[1], "") end
    local dels
    plist, dels = diff_map_lists(orig, mod, epath, key, opt, schema)
    plist = sort_by_order(plist, mod, key, ek)
    local same = same_order(orig, mod, key)
    for i = 1, #dels do plist[#plist + 1] = dels[i] end
    if opt.set_order and ((not opt.ignore_changes and (#plist > 0 or not same))
        or (not opt.ignore_deletions and #plist > 0)) then
      order = array()
      for i = 1, #mod do order[i] = { [key] = copy(mod[i][key]) } end
    end
  else
    plist, dlist = diff_scalars(orig, mod, opt)
    plist = sort_by_order(plist, mod, nil, ek)
    if opt.set_order and ((not opt.ignore_deletions and #dlist > 0)
        or (not opt.ignore_changes and not equal(orig, mod))) then
      order = copy(mod)
    end
  end
  return plist, dlist, order
end

local function with_retain(opt, retain)
  if opt.retain == retain then return opt end
  local o = {}
  for k, v in pairs(opt) do o[k] = v end
  o.retain = retain
  return o
end

-- diffMaps: the strategic patch that turns `orig` into `mod`, limited by
-- opt.ignore_changes / opt.ignore_deletions; opt.set_order adds
-- $setElementOrder lists, opt.retain builds $retainKeys.
function diff_maps(orig, mod, path, opt, schema)
  local patch, retain = {}, {}
  local function replace_if_changed(key, ov, mv)
    if not opt.ignore_changes and not equal(ov, mv) then
      patch[key] = copy(mv)
    end
  end
  for _, key in ipairs(keys(mod)) do
    local mv, ov = mod[key], orig[key]
    if opt.retain and mv ~= null then retain[#retain + 1] = key end
    if ov == nil then
      if not opt.ignore_changes then patch[key] = copy(mv) end
    elseif key == DIRECTIVE then
      if type(ov) ~= "string" or type(mv) ~= "string" then
        fail(500, "invalid value for special key: %s", DIRECTIVE)
      end
      if ov ~= mv then patch[key] = mv end
    elseif kind(ov) ~= kind(mv) then
      if not opt.ignore_changes then patch[key] = copy(mv) end
    elseif kind(ov) == "object" then
      local fpath = child(path, key)
      local strategy, _, rk = field_meta(schema, fpath)
      if strategy == "replace" then
        if not opt.ignore_changes then patch[key] = copy(mv) end
      else
        local sub = diff_maps(ov, mv, fpath, with_retain(opt, rk), schema)
        if next(sub) ~= nil then patch[key] = sub end
      end
    elseif kind(ov) == "array" then
      local fpath = child(path, key)
      local strategy, mkey, rk = field_meta(schema, fpath)
      if strategy == "merge" then
        local plist, dlist, order = diff_lists(ov, mv, elem(fpath), mkey,
                                               with_retain(opt, rk), schema)
        if #plist > 0 then patch[key] = plist end
        if #dlist > 0 then patch[DELETE_PREFIX .. "/" .. key] = dlist end
        if #order > 0 then patch[ORDER_PREFIX .. "/" .. key] = order end
      else
        replace_if_changed(key, ov, mv)
      end
    else
      replace_if_changed(key, ov, mv)
    end
  end
  if not opt.ignore_deletions then
    for key in pairs(orig) do
      if mod[key] == nil then patch[key] = null end
    end
  end
  if #retain > 0 then
    local extra = false
    for k, v in pairs(orig) do
      if v ~= null and mod[k] == nil then extra = true end
    end
    if next(patch) ~= nil or extra then
      table.sort(retain)
      patch[RETAIN_KEYS] = array(retain)
    end
  end
  return patch
end

local function as_object(v)
  return kind(v) == "object" and v or {}
end

--- Two-way patch (CreateTwoWayMergePatch): applying it to `original`
--- yields `modified`.
function M.two_way(original, modified, schema)
  return diff_maps(as_object(original), as_object(modified), "",
                   { set_order = true }, schema or {})
end

--- Three-way patch (CreateThreeWayMergePatch with overwrite): the changes
--- from `current` to `modified` without deletions, plus the deletions from
--- the last-applied `original` to `modified`.
function M.three_way(original, modified, current, schema)
  schema = schema or {}
  original, modified, current =
    as_object(original), as_object(modified), as_object(current)
  local delta = diff_maps(current, modified, "",
                          { ignore_deletions = true, set_order = true }, schema)
  local deletions = diff_maps(original, modified, "",
                              { ignore_changes = true, set_order = true },
                              schema)
  return merge_map(deletions, delta, "", CLIENT, schema)
end

-- }======

return M
