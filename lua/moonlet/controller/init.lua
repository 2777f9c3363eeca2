-- moonlet.controller: the controller runtime in one table. manager runs
-- controller plugins on shared informers and rate-limited work queues;
-- the parts are usable on their own (specs, custom loops).
local manager = require("moonlet.controller.manager")

local M = {
  new = manager.new,
  manager = manager,
  informer = require("moonlet.controller.informer"),
  workqueue = require("moonlet.controller.workqueue"),
  ratelimit = require("moonlet.controller.ratelimit"),
  events = require("moonlet.controller.events"),
  util = require("moonlet.controller.util"),
}

return M
