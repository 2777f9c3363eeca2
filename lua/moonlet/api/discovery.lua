-- API discovery documents: /version, /api, /apis, /api/v1, /apis/{g}/{v}.
-- kubectl builds its REST mapping from these (legacy discovery; it falls
-- back to it when the server does not offer the aggregated form).
local json = require("moonlet.json")
local kinds = require("moonlet.api.kinds")

local M = {}

M.KUBE_VERSION = { major = "1", minor = "32", git = "v1.32.0" }

function M.version(moonlet_version)
  return {
    major = M.KUBE_VERSION.major, minor = M.KUBE_VERSION.minor,
    gitVersion = M.KUBE_VERSION.git .. "+moonlet-" .. moonlet_version,
    gitCommit = "", gitTreeState = "clean", buildDate = "",
    goVersion = "moonlet (Lua 5.4)", compiler = "gc", platform = "linux/amd64",
  }
end

local ADDRESS = json.array({ { clientCIDR = "0.0.0.0/0", serverAddress = "" } })

function M.core_versions()
  return { kind = "APIVersions", versions = json.array({ "v1" }),
    serverAddressByClientCIDRs = ADDRESS }
end

function M.groups()
  local groups = json.array()
  for _, g in ipairs(kinds.groups()) do
    if g.name ~= "" then
      local versions = json.array()
      for i, v in ipairs(g.versions) do
        versions[i] = { groupVersion = g.name .. "/" .. v, version = v }
      end
      groups[#groups + 1] = { name = g.name, versions = versions, preferredVersion = versions[1] }
    end
  end
  return { kind = "APIGroupList", apiVersion = "v1", groups = groups }
end

function M.group(name)
  for _, g in ipairs(M.groups().groups) do
    if g.name == name then
      g.kind, g.apiVersion = "APIGroup", "v1"
      return g
    end
  end
end

local SUBRESOURCE_VERBS = json.array({ "get", "patch", "update" })

--- APIResourceList for one group/version, or nil when it has no kinds.
function M.resources(group, version)
  local list = json.array()
  for _, d in ipairs(kinds.all()) do
    if d.group == group and d.version == version then
      local r = { name = d.plural, singularName = d.singular, namespaced = d.namespaced,
        kind = d.kind, verbs = json.array(d.verbs) }
      if #d.short_names > 0 then r.shortNames = json.array(d.short_names) end
      if #d.categories > 0 then r.categories = json.array(d.categories) end
      list[#list + 1] = r
      for _, sub in ipairs(d.subresources or {}) do
        list[#list + 1] = { name = d.plural .. "/" .. sub, singularName = "", namespaced = d.namespaced,
          kind = d.kind, verbs = SUBRESOURCE_VERBS }
      end
    end
  end
  if #list == 0 then return nil end
  return { kind = "APIResourceList", apiVersion = "v1",
    groupVersion = group == "" and version or (group .. "/" .. version), resources = list }
end

return M
