-- moonlet.controller.owner_graph: the garbage collector's view of ownership
-- across every kind. Nodes by uid (what the object is, its owner references
-- and deletion state) and an owner index uid -> dependent uids, both fed
-- from informer events, so each question the collector asks costs the size
-- of its answer, never a scan of all objects. Most objects own nothing and
-- are owned by nothing: for those the graph keeps only their kind and
-- namespace (two map entries, no table), and builds a node when asked.
local M = {}
local Graph = {}
Graph.__index = Graph

--- A new, empty graph.
function M.new()
  -- nodes: uid -> node for objects with owners or a deletion in progress;
  -- plain_kind / plain_ns: uid -> kind def / namespace for the rest.
  return setmetatable({ nodes = {}, plain_kind = {}, plain_ns = {}, deps = {}, n = 0 }, Graph)
end

--- The group of an apiVersion ("apps/v1" -> "apps", "v1" -> "").
function M.group(api_version)
  return (api_version or ""):match("^(.*)/[^/]*$") or ""
end

local function has(list, x)
  for _, v in ipairs(list or {}) do if v == x then return true end end
  return false
end

--- The node for obj seen through the informer of `kind`: { uid,
--- kind_key ("apps/v1/ReplicaSet", for the client), api_version, kind,
--- group, namespaced, namespace ("" when cluster-scoped), name, owners =
--- {{uid, api_version, kind, name, controller, block}}, deleting,
--- deleting_dependents (Foreground), orphaning (Orphan) }.
--- @param kind { gvk, api_version, kind, group, namespaced } (a kind def)
function M.node_of(obj, kind)
  local md = obj.metadata or {}
  local owners = {}
  for _, ref in ipairs(md.ownerReferences or {}) do
    if ref.uid then
      owners[#owners + 1] = { uid = ref.uid, api_version = ref.apiVersion, kind = ref.kind,
        name = ref.name, controller = ref.controller == true, block = ref.blockOwnerDeletion == true }
    end
  end
  local deleting = md.deletionTimestamp ~= nil
  return {
    uid = md.uid, kind_key = kind.gvk, api_version = kind.api_version, kind = kind.kind,
    group = kind.group or "", namespaced = kind.namespaced ~= false,
    namespace = md.namespace or "", name = md.name, owners = owners,
    deleting = deleting,
    deleting_dependents = deleting and has(md.finalizers, "foregroundDeletion"),
    orphaning = deleting and has(md.finalizers, "orphan"),
  }
end

local function link(self, node, on)
  for _, ref in ipairs(node.owners) do
    local s = self.deps[ref.uid]
    if on then
      if not s then
        s = {}
        self.deps[ref.uid] = s
      end
      s[node.uid] = true
    elseif s then
      s[node.uid] = nil
      if next(s) == nil then self.deps[ref.uid] = nil end
    end
  end
end

local NO_OWNERS = setmetatable({}, { __newindex = function() error("read-only", 2) end })

-- The node of a plain object (no owners, not being deleted), or nil.
local function plain_node(self, uid)
  local kind = self.plain_kind[uid]
  if not kind then return nil end
  return { uid = uid, kind_key = kind.gvk, api_version = kind.api_version, kind = kind.kind,
    group = kind.group or "", namespaced = kind.namespaced ~= false,
    namespace = self.plain_ns[uid] or "", owners = NO_OWNERS, deleting = false,
    deleting_dependents = false, orphaning = false }
end

-- True when obj is owned by nothing and is not being deleted: the graph
-- then keeps only its kind and namespace.
local function is_plain(md)
  local refs = md.ownerReferences
  return (refs == nil or #refs == 0) and md.deletionTimestamp == nil
end

--- Records obj (added or changed). @return the new node, the previous one
--- or nil (a plain object's nodes are built for the caller, not kept)
function Graph:upsert(obj, kind)
  local md = obj.metadata or {}
  local uid = md.uid
  if not uid then return nil end
  local old = self.nodes[uid] or plain_node(self, uid)
  if old then
    link(self, old, false)
  else
    self.n = self.n + 1
  end
  if is_plain(md) then
    self.nodes[uid] = nil
    self.plain_kind[uid], self.plain_ns[uid] = kind, md.namespace
    return plain_node(self, uid), old
  end
  local node = M.node_of(obj, kind)
  self.plain_kind[uid], self.plain_ns[uid] = nil, nil
  self.nodes[uid] = node
  link(self, node, true)
  return node, old
end

--- Forgets the object with this uid. Its own dependents stay indexed under
--- its uid: they still name it until they are collected or orphaned.
--- @return the removed node or nil
function Graph:remove(uid)
  local old = self.nodes[uid] or plain_node(self, uid)
  if not old then return nil end
  link(self, old, false)
  self.nodes[uid] = nil
  self.plain_kind[uid], self.plain_ns[uid] = nil, nil
  self.n = self.n - 1
  return old
end

--- The node of the object with this uid, or nil when the graph has none.
--- A plain object's node is built afresh: read it, do not keep it.
function Graph:node(uid) return self.nodes[uid] or plain_node(self, uid) end

--- Number of objects in the graph.
function Graph:size() return self.n end

--- uids of the objects naming `uid` as an owner (a set; do not change).
function Graph:dependent_uids(uid) return self.deps[uid] or {} end

--- True when some object names `uid` as an owner.
function Graph:has_dependents(uid) return self.deps[uid] ~= nil end

--- Nodes of the dependents whose reference to `uid` has
--- blockOwnerDeletion: the ones a Foreground delete waits for.
function Graph:blocking(uid)
  local out = {}
  for dep in pairs(self.deps[uid] or {}) do
    local n = self.nodes[dep]
    if n then
      for _, ref in ipairs(n.owners) do
        if ref.uid == uid and ref.block then
          out[#out + 1] = n
          break
        end
      end
    end
  end
  return out
end

--- Whether `owner` (a node) is the object `ref` of dependent `node` names:
--- same group and kind, and for a namespaced owner the dependent's
--- namespace (references never cross namespaces).
function M.resolves(owner, ref, node)
  if owner.kind ~= ref.kind or owner.group ~= M.group(ref.api_version) then return false end
  if owner.namespaced and owner.namespace ~= node.namespace then return false end
  return true
end

--- What changed in the owner references from node `old` to `new`: owner
--- uids no longer referenced or no longer blocking (a Foreground owner may
--- now be free to go) and whether any reference was added.
--- @return { uid = true } released, boolean added
function M.ref_changes(old, new)
  local before, after = {}, {}
  for _, r in ipairs(old and old.owners or {}) do before[r.uid] = r end
  for _, r in ipairs(new and new.owners or {}) do after[r.uid] = r end
  local released, added = {}, false
  for uid, r in pairs(before) do
    local a = after[uid]
    if not a or (r.block and not a.block) then released[uid] = true end
  end
  for uid in pairs(after) do if not before[uid] then added = true end end
  return released, added
end

return M
