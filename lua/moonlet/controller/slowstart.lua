-- moonlet.controller.slowstart: Kubernetes' slowStartBatch
-- (pkg/controller/replicaset/replica_set.go): run `count` calls in batches
-- of 1, 2, 4, ... concurrent calls, stopping after the first batch with a
-- failure, so a quota or validation error costs one call, not hundreds.
local sched = require("moonlet.sched")
local util = require("moonlet.controller.util")

local M = {}

--- Calls fn(i) for i = 1..count; fn returns a result (truthy) or nil,
--- error. Batches start at `initial` (default 1) and double. Calls made in
--- process return at once; the caller's coroutine gives the loop a turn
--- every few milliseconds of them (util.pacer), as Kubernetes' batch runs
--- its calls beside everything else.
--- @return the successful results in order, and the first error or nil
function M.run(count, fn, initial)
  local ok_results, done, first_err = {}, 0, nil
  local batch = initial or 1
  local pace = sched.in_coroutine() and util.pacer(30) or nil
  while done < count do
    local size = math.min(batch, count - done)
    local results, pending = {}, size
    for j = 1, size do
      if pace and j > 1 then pace:tick() end
      local i = done + j
      sched.spawn("slowstart", function()
        local ok, res, err = pcall(fn, i)
        if not ok then res, err = nil, tostring(res) end
        results[j] = { res = res, err = err }
        pending = pending - 1
      end)
    end
    util.wait_for(function() return pending == 0 end, math.huge, 1)
    for j = 1, size do
      local r = results[j]
      if r.res then ok_results[#ok_results + 1] = r.res
      elseif not first_err then first_err = r.err or "failed" end
    end
    done = done + size
    if first_err then break end
    batch = batch * 2
  end
  return ok_results, first_err
end

return M
