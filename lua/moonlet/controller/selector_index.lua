-- moonlet.controller.selector_index: which owners' label selectors match
-- an object, for controllers that adopt orphans (a pod or ReplicaSet that
-- appears maps to every ReplicaSet, DaemonSet or Deployment in its
-- namespace whose selector matches it, as the GetPodReplicaSets family
-- does in Kubernetes' controllers).
local M = {}

local Index = {}
Index.__index = Index

function M.new() return setmetatable({ by_key = {} }, Index) end

--- Records the selector (compiled) of the owner under `key`.
function Index:set(key, namespace, sel) self.by_key[key] = { ns = namespace, sel = sel } end

--- Forgets the owner under `key`.
function Index:forget(key) self.by_key[key] = nil end

--- Keys of the owners in obj's namespace whose selector matches its labels.
function Index:matching(obj)
  local keys = {}
  local md = obj.metadata or {}
  local labels = md.labels or {}
  for key, s in pairs(self.by_key) do
    if s.ns == md.namespace and s.sel:matches(labels) then keys[#keys + 1] = key end
  end
  return keys
end

--- Every owner key.
function Index:keys()
  local keys = {}
  for key in pairs(self.by_key) do keys[#keys + 1] = key end
  return keys
end

return M
