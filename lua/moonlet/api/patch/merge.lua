-- moonlet.api.patch.merge: JSON merge patch (RFC 7386): applying one,
-- computing one between two documents, and the three-way variant kubectl
-- `apply` sends for kinds without patch metadata (custom resources), after
-- apimachinery's jsonmergepatch.CreateThreeWayJSONMergePatch.
local V = require("moonlet.api.patch.value")

local null, kind, copy, equal = V.null, V.kind, V.copy, V.equal

local M = {}

-- Merges `patch` (an object) into `target`, an object this module owns.
local function merge_into(target, patch)
  for k, v in pairs(patch) do
    if v == null then
      target[k] = nil
    elseif kind(v) == "object" then
      local cur = target[k]
      if kind(cur) ~= "object" then
        cur = {}
      end
      target[k] = merge_into(cur, v)
    else
      target[k] = copy(v)
    end
  end
  return target
end

--- RFC 7386 MergePatch(target, patch): null deletes a member, objects merge
--- recursively, anything else (arrays included) replaces. Returns a new
--- document; the inputs are not modified.
function M.apply(target, patch)
  if patch == nil then patch = null end
  if kind(patch) ~= "object" then return copy(patch) end
  local out = kind(target) == "object" and copy(target) or {}
  return merge_into(out, patch)
end

-- The diff of two objects, as evanphx/json-patch getDiff computes it:
-- added and changed members, nested objects recursed, arrays compared as a
-- whole, and null for every member that disappeared.
local function diff_objects(a, b)
  local into = {}
  for key, bv in pairs(b) do
    local av = a[key]
    if av == nil or kind(av) ~= kind(bv) then
      into[key] = copy(bv)
    elseif kind(av) == "object" then
      local sub = diff_objects(av, bv)
      if next(sub) ~= nil then into[key] = sub end
    elseif not equal(av, bv) then
      into[key] = copy(bv)
    end
  end
  for key in pairs(a) do
    if b[key] == nil then into[key] = null end
  end
  return into
end

--- A merge patch turning `old` into `new` (what `label`, `annotate` and
--- `edit` send). When either side is not an object the patch is `new`.
function M.diff(old, new)
  if kind(old) == "object" and kind(new) == "object" then
    return diff_objects(old, new)
  end
  if new == nil then return null end
  return copy(new)
end

-- keepOrDeleteNullInObj: with keep_null, only the deletions (nulls) of a
-- merge patch survive; without, only additions and changes. An explicitly
-- empty object is a value, kept only on the additions side.
local function filter_nulls(m, keep_null)
  local out = {}
  for key, val in pairs(m) do
    if val == null then
      if keep_null then out[key] = null end
    elseif kind(val) == "object" then
      if next(val) == nil then
        if not keep_null then out[key] = {} end
      else
        local sub = filter_nulls(val, keep_null)
        if next(sub) ~= nil then out[key] = sub end
      end
    elseif not keep_null then
      out[key] = copy(val)
    end
  end
  return out
end

--- Three-way JSON merge patch: deletions are what the last-applied
--- `original` had and `modified` dropped; additions and changes are the
--- difference from `current` to `modified`. Fields only `current` has (set by
--- controllers or other clients) are left alone. The two halves cannot
--- touch the same field, so no conflict check is needed (kubectl applies
--- with overwrite anyway).
function M.three_way(original, modified, current)
  local function obj(v)
    return kind(v) == "object" and v or {}
  end
  original, modified, current = obj(original), obj(modified), obj(current)
  local additions = filter_nulls(diff_objects(current, modified), false)
  local deletions = filter_nulls(diff_objects(original, modified), true)
  return merge_into(deletions, additions)
end

return M
