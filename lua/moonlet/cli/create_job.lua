-- `moonlet create job NAME --from=cronjob/CRONJOB` (and `--image=IMAGE`):
-- kubectl's create job. From a CronJob, the Job gets the jobTemplate's
-- spec, labels and annotations plus cronjob.kubernetes.io/instantiate:
-- manual, and an ownerReference to the CronJob (controller, without
-- blockOwnerDeletion, as kubectl sets it). Prints "job.batch/NAME created".
local common = require("moonlet.cli.common")
local json = require("moonlet.json")

local M = {}

local function copy_map(m)
  if type(m) ~= "table" or m == json.null then return nil end
  local out = {}
  for k, v in pairs(m) do out[k] = v end
  return out
end

--- The Job kubectl's createJobFromCronJob builds.
function M.from_cronjob(name, cj)
  local jt = (cj.spec or {}).jobTemplate or {}
  local md = jt.metadata or {}
  local ann = { ["cronjob.kubernetes.io/instantiate"] = "manual" }
  for k, v in pairs(copy_map(md.annotations) or {}) do ann[k] = v end
  return {
    apiVersion = "batch/v1", kind = "Job",
    metadata = {
      name = name, namespace = cj.metadata.namespace, annotations = ann, labels = copy_map(md.labels),
      ownerReferences = json.array({ { apiVersion = "batch/v1", kind = "CronJob", name = cj.metadata.name,
        uid = cj.metadata.uid, controller = true } }),
    },
    spec = json.copy(jt.spec or {}),
  }
end

--- kubectl's createJob for --image: one container named NAME, restartPolicy Never.
function M.from_image(name, image, namespace, command)
  local c = { name = name, image = image }
  if command and #command > 0 then c.command = json.array(command) end
  return {
    apiVersion = "batch/v1", kind = "Job",
    metadata = { name = name, namespace = namespace },
    spec = { template = { spec = { containers = json.array({ c }), restartPolicy = "Never" } } },
  }
end

--- argv: the words after `create job`. @return exit code
function M.run(ctx, argv)
  local name = argv[1]
  if not name then common.fail("exactly one NAME is required, got 0") end
  local from, image = ctx.flags.from, ctx.flags.image
  if from and from ~= "" and #argv > 1 then common.fail("cannot specify --from and command") end
  if (not from or from == "") == (not image or image == "") then
    common.fail("either --image or --from must be specified")
  end
  local ns = common.namespace(ctx)
  local c = common.client(ctx)
  local job
  if from and from ~= "" then
    local word, cname = from:match("^([^/]+)/(.+)$")
    if not word then
      common.fail(string.format('from must be an existing cronjob: "%s" is not TYPE/NAME', from))
    end
    local r = common.resolve(ctx, word)
    if r.kind ~= "CronJob" then
      common.fail(string.format("unknown object type *%s.%s", r.version, r.kind))
    end
    local cj, st = c:get(r, ns, cname)
    if not cj then common.fail_status(ctx, st) end
    job = M.from_cronjob(name, cj)
  else
    local command = {}
    for i = 2, #argv do command[#command + 1] = argv[i] end
    job = M.from_image(name, image, ns, command)
  end
  local jr = c:kind("batch/v1/Job")
  if not jr then common.fail("the server doesn't have a resource type \"jobs\"") end
  local out, st = c:create(jr, job, { field_manager = "kubectl-create",
    dry_run = ctx.flags["dry-run"] == "server" })
  if not out then common.fail_status(ctx, st) end
  local fmt = ctx.flags.output
  if fmt == "name" then
    ctx.out(common.object_name(jr, out.metadata.name) .. "\n")
  elseif fmt == "json" then
    ctx.out(common.to_json(common.fill_kind(jr, out)))
  elseif fmt == "yaml" then
    ctx.out(common.to_yaml(common.fill_kind(jr, out)))
  else
    ctx.out(common.object_name(jr, out.metadata.name) .. " created"
      .. (ctx.flags["dry-run"] == "server" and " (server dry run)" or "") .. "\n")
  end
  return 0
end

return M
