-- moonlet.api.patch: the patch algorithms of the Kubernetes API over values
-- decoded by moonlet.json: JSON merge patch (RFC 7386), JSON patch
-- (RFC 6902), strategic merge patch, and the two- and three-way patches
-- kubectl computes for `apply`. Inputs are never modified; results are new.
--
-- Failures return nil, message, status: the message is the API server's
-- wording, the status the HTTP code it answers with (400 bad request,
-- 413 too many operations, 422 unprocessable, 500 internal error).
local V = require("moonlet.api.patch.value")
local merge = require("moonlet.api.patch.merge")
local jsonpatch = require("moonlet.api.patch.jsonpatch")
local strategic = require("moonlet.api.patch.strategic")

local M = {}

M.MAX_JSON_PATCH_OPERATIONS = jsonpatch.MAX_OPERATIONS

--- JSON merge patch: patch.merge(target, patch) -> doc. Never fails.
function M.merge(target, patch)
  return merge.apply(target, patch)
end

--- JSON patch: patch.json(target, ops) -> doc | nil, err, status.
function M.json(target, ops)
  return V.protect(jsonpatch.apply, target, ops)
end

--- Strategic merge patch: patch.strategic(target, patch, merge_keys, path)
--- -> doc | nil, err, status. `merge_keys` comes from
--- moonlet.api.merge_keys.for_kind; `path` (default "") is where `target`
--- sits in the kind's schema, for patching a sub-document.
function M.strategic(target, patch, merge_keys, path)
  return V.protect(strategic.apply, target, patch, merge_keys, path)
end

--- Two-way strategic patch turning `original` into `modified`
--- (strategicpatch.CreateTwoWayMergePatch) -> patch | nil, err, status.
function M.two_way(original, modified, merge_keys)
  return V.protect(strategic.two_way, original, modified, merge_keys)
end

--- What client-side `kubectl apply` sends for built-in kinds
--- (strategicpatch.CreateThreeWayMergePatch, overwrite on):
--- patch.three_way(original, modified, current, merge_keys)
--- -> patch | nil, err, status. `original` is the last-applied
--- configuration, `modified` the new manifest, `current` the live object.
function M.three_way(original, modified, current, merge_keys)
  return V.protect(strategic.three_way, original, modified, current,
                   merge_keys)
end

--- What `kubectl apply` sends for kinds without merge keys (custom
--- resources): jsonmergepatch.CreateThreeWayJSONMergePatch -> patch.
function M.three_way_merge(original, modified, current)
  return merge.three_way(original, modified, current)
end

--- A JSON merge patch turning `old` into `new` -> patch.
function M.diff_merge(old, new)
  return merge.diff(old, new)
end

--- True when applying `p` would change nothing (an empty object patch).
function M.is_empty(p)
  return V.kind(p) == "object" and next(p) == nil
end

return M
