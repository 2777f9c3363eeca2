-- The apps/v1 DaemonSet and ControllerRevision kinds through the real API
-- in process: defaults, the template generation annotation, validation
-- messages (selector, restartPolicy, update strategy, immutability) and
-- kubectl's columns.
local env_mod = require("daemonset_env")
local plugins = require("moonlet.plugins")

local DS, CR = env_mod.DS, env_mod.CR

local function invalid(env, obj)
  local created, st = env.client:create(DS, obj)
  assert.is_nil(created)
  assert.are.equal(422, st.code)
  return st.message
end

local function with_api(fn) env_mod.with_api(fn, {}) end

describe("daemonset kind", function()
  it("defaults the update strategy, history limit and template generation", function()
    with_api(function(env)
      local ds = assert(env.client:create(DS, env_mod.ds("d")))
      assert.are.same({ type = "RollingUpdate", rollingUpdate = { maxUnavailable = 1, maxSurge = 0 } },
        ds.spec.updateStrategy)
      assert.are.equal(10, ds.spec.revisionHistoryLimit)
      assert.are.equal("Always", ds.spec.template.spec.restartPolicy)
      assert.are.equal("1", ds.metadata.annotations["deprecated.daemonset.template.generation"])
      assert.are.equal(1, ds.metadata.generation)
      assert.is_nil(ds.status and ds.status.desiredNumberScheduled)

      -- a spec change outside the template: generation moves, template generation does not
      ds.spec.minReadySeconds = 5
      ds = assert(env.client:update(DS, ds))
      assert.are.same({ 2, "1" }, { ds.metadata.generation,
        ds.metadata.annotations["deprecated.daemonset.template.generation"] })
      -- a template change bumps both; clients cannot set it themselves
      ds.spec.template.metadata.labels.tier = "x"
      ds.metadata.annotations["deprecated.daemonset.template.generation"] = "40"
      ds = assert(env.client:update(DS, ds))
      assert.are.same({ 3, "2" }, { ds.metadata.generation,
        ds.metadata.annotations["deprecated.daemonset.template.generation"] })

      local od = env_mod.ds("od", { updateStrategy = { type = "OnDelete" } })
      od = assert(env.client:create(DS, od))
      assert.are.same({ type = "OnDelete" }, od.spec.updateStrategy)
    end)
  end)

  it("validates as ValidateDaemonSet does", function()
    with_api(function(env)
      local bad = env_mod.ds("x")
      bad.spec.selector = { matchLabels = { app = "other" } }
      local m = invalid(env, bad)
      assert.truthy(m:find('DaemonSet.apps "x" is invalid: spec.template.metadata.labels: Invalid value: ', 1, true), m)
      assert.truthy(m:find('`selector` does not match template `labels`', 1, true), m)

      local empty = env_mod.ds("x")
      empty.spec.selector = {}
      assert.truthy(invalid(env, empty):find("spec.selector: Invalid value: .*empty selector is invalid for daemonset"))

      local none = env_mod.ds("x")
      none.spec.selector = nil
      assert.truthy(invalid(env, none):find("spec.selector: Required value", 1, true))

      local never = env_mod.ds("x", nil, { restartPolicy = "Never" })
      assert.truthy(invalid(env, never):find('spec.template.spec.restartPolicy: Unsupported value: "Never": '
        .. 'supported values: "Always"', 1, true))

      local deadline = env_mod.ds("x", nil, { activeDeadlineSeconds = 10 })
      assert.truthy(invalid(env, deadline):find("spec.template.spec.activeDeadlineSeconds: Invalid value: 10: "
        .. "activeDeadlineSeconds in DaemonSet is not Supported", 1, true))

      local both = env_mod.ds("x", { updateStrategy = { type = "RollingUpdate",
        rollingUpdate = { maxUnavailable = 1, maxSurge = "10%" } } })
      assert.truthy(invalid(env, both):find('spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: "10%": '
        .. "may not be set when maxUnavailable is non-zero", 1, true))

      local zero = env_mod.ds("x", { updateStrategy = { type = "RollingUpdate",
        rollingUpdate = { maxUnavailable = 0, maxSurge = 0 } } })
      assert.truthy(invalid(env, zero):find("spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: "
        .. "cannot be 0 when maxSurge is 0", 1, true))

      local pct = env_mod.ds("x", { updateStrategy = { type = "RollingUpdate",
        rollingUpdate = { maxUnavailable = "150%" } } })
      assert.truthy(invalid(env, pct):find("must not be greater than 100%", 1, true))

      local kind = env_mod.ds("x", { updateStrategy = { type = "Sometimes" } })
      assert.truthy(invalid(env, kind):find('spec.updateStrategy: Unsupported value: ', 1, true))

      local neg = env_mod.ds("x", { revisionHistoryLimit = -1 })
      assert.truthy(invalid(env, neg):find("spec.revisionHistoryLimit: Invalid value: -1: must be greater than "
        .. "or equal to 0", 1, true))

      -- the selector is immutable
      local ok = assert(env.client:create(DS, env_mod.ds("ok")))
      ok.spec.selector = { matchLabels = { app = "ok", tier = "x" } }
      ok.spec.template.metadata.labels.tier = "x"
      local upd, st = env.client:update(DS, ok)
      assert.is_nil(upd)
      assert.are.equal(422, st.code)
      assert.truthy(st.message:find("spec.selector: Invalid value: .*field is immutable"))
    end)
  end)

  it("prints kubectl's DaemonSet columns", function()
    local def = assert(plugins.load({})).kinds["daemonset"].value
    local ds = env_mod.ds("ssd-monitor", nil, { nodeSelector = { disk = "ssd", zone = "a" } })
    ds.metadata.creationTimestamp = "2020-01-01T00:00:00Z"
    ds.status = { desiredNumberScheduled = 3, currentNumberScheduled = 2, numberReady = 1,
      updatedNumberScheduled = 2, numberAvailable = 1 }
    local names, cells = {}, {}
    for _, col in ipairs(def.columns) do
      names[#names + 1] = col.name .. (col.priority == 1 and "*" or "")
      cells[#cells + 1] = col.value(ds, 1577836800 + 90)
    end
    assert.are.same({ "Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age",
      "Containers*", "Images*", "Selector*" }, names)
    assert.are.same({ "ssd-monitor", 3, 2, 1, 2, 1, "disk=ssd,zone=a", "90s", "main", "idealism/ssd-monitor",
      "app=ssd-monitor" }, cells)
    ds.spec.template.spec.nodeSelector = nil
    assert.are.equal("<none>", def.columns[7].value(ds))
    assert.are.same({ "ds" }, def.short_names)
  end)
end)

describe("controllerrevision kind", function()
  it("requires data, keeps it immutable and names its controller", function()
    with_api(function(env)
      local c = env.client
      local _, st = c:create(CR, { apiVersion = "apps/v1", kind = "ControllerRevision",
        metadata = { name = "r", namespace = "default" }, revision = 1 })
      assert.are.equal(422, st.code)
      assert.truthy(st.message:find("data: Required value", 1, true), st.message)
      local cr = assert(c:create(CR, { apiVersion = "apps/v1", kind = "ControllerRevision",
        metadata = { name = "r", namespace = "default", ownerReferences = { { apiVersion = "apps/v1",
          kind = "DaemonSet", name = "ssd-monitor", uid = "u1", controller = true } } },
        data = { spec = { template = { ["$patch"] = "replace" } } }, revision = 1 }))
      cr.revision = 2
      assert(c:update(CR, cr))
      cr = assert(c:get(CR, "default", "r"))
      cr.data = { other = true }
      local upd, st2 = c:update(CR, cr)
      assert.is_nil(upd)
      assert.truthy(st2.message:find("data: Invalid value: .*field is immutable"), st2.message)
      local def = assert(plugins.load({})).kinds["controllerrevision"].value
      assert.are.equal("daemonset.apps/ssd-monitor", def.columns[2].value(cr))
      assert.are.equal(2, def.columns[3].value(assert(c:get(CR, "default", "r"))))
    end)
  end)
end)
