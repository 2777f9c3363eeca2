-- batch/v1beta1 CronJob: the version the book's cronjob.yaml names, served
-- as an alias of the stored batch/v1 kind. Creates through it are stored
-- as batch/v1 (reads show batch/v1 objects); batch/v1 stays the preferred
-- version, so kubectl and moonlet read and update through batch/v1.
return require("moonlet.api.cronjob").def("v1beta1")
