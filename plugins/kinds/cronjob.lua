-- batch/v1 CronJob: runs Jobs from spec.jobTemplate on a cron schedule
-- (the controller is plugins/controllers/cronjob.lua). The definition
-- lives in moonlet.api.cronjob, shared with the batch/v1beta1 alias.
return require("moonlet.api.cronjob").def("v1")
