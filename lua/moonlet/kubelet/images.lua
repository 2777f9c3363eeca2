-- Images are directories: `image: idealism/kubia:1.0` names the executable
-- <dir>/idealism/kubia/entrypoint in the first --image-path dir that has it
-- (the tag and digest select nothing: one version per directory). A
-- registry host prefix (docker.io/...) and docker's library/ are optional.
local sys = require("moonlet.core.sys")

local M = {}

--- The repository part of an image reference: no tag, no digest.
function M.strip(image)
  local s = tostring(image or "")
  s = s:gsub("@.*$", "")
  local last_slash = s:find("/[^/]*$") or 0
  local colon = s:find(":[^:/]*$")
  if colon and colon > last_slash then s = s:sub(1, colon - 1) end
  return s
end

-- Names to look for, most specific first.
local function candidates(repo)
  local out = { repo }
  local first, rest = repo:match("^([^/]+)/(.+)$")
  if first and (first:find("[.:]") or first == "localhost") then
    out[#out + 1] = rest
    repo = rest
  end
  local lib = repo:match("^library/(.+)$")
  if lib then out[#out + 1] = lib end
  return out
end

local function executable(path)
  local st = sys.stat(path)
  return st and st.type ~= "dir" and st.mode and (st.mode & 73) ~= 0 -- 0111
end

--- Resolves image over dirs (list). @return entrypoint path, or nil,
--- message saying where it was looked for.
function M.resolve(image, dirs)
  if type(image) ~= "string" or image == "" then return nil, "no image given" end
  local repo = M.strip(image)
  if repo:find("%.%.") or repo:sub(1, 1) == "/" then
    return nil, string.format('invalid image name "%s"', image)
  end
  for _, dir in ipairs(dirs or {}) do
    for _, name in ipairs(candidates(repo)) do
      local p = dir .. "/" .. name .. "/entrypoint"
      if executable(p) then return p end
    end
  end
  if not dirs or #dirs == 0 then
    return nil, string.format('image "%s" not found: no --image-path directories are configured', image)
  end
  return nil, string.format('image "%s" not found: no %s/entrypoint in %s', image, repo,
    table.concat(dirs, ", "))
end

return M
