-- A Job create is one store write: the API layer assigns the uid before the
-- write (store:new_uid + create{keep_uid=true}), so the generated selector
-- and the controller-uid labels are stored with the Job, and a watcher sees
-- one ADDED event that already carries them (as from kube-apiserver).
require("moonlet_core")
local json = require("moonlet.json")
local fake = require("fake_client") -- for fake.run only

local UID_LABEL = "batch.kubernetes.io/controller-uid"

local function with_stack(fn)
  fake.run(function()
    local s = require("api_stack").new()
    local ok, err = pcall(fn, s)
    require("moonlet.api.handlers").stop_watches()
    s.store:close()
    if not ok then error(err, 0) end
  end)
end

local function job(name, spec)
  local obj = { apiVersion = "batch/v1", kind = "Job", metadata = { name = name, namespace = "default" },
    spec = { template = { spec = { restartPolicy = "Never",
      containers = { { name = "main", image = "busybox", command = { "true" } } } } } } }
  for k, v in pairs(spec or {}) do obj.spec[k] = v end
  return obj
end

describe("job create", function()
  it("stores the generated selector in the create's own write", function()
    with_stack(function(s)
      local w = assert(s.client:watch("batch/v1/Job", { namespace = "default" }))
      local rv0 = s.store:resource_version()
      local created = assert(s.client:create("batch/v1/Job", job("one")))
      assert.are.equal(rv0 + 1, s.store:resource_version())
      local uid = created.metadata.uid
      assert.is_truthy(uid:match("^%x+%-%x+%-4%x+%-%x+%-%x+$"))
      assert.are.same({ matchLabels = { [UID_LABEL] = uid } }, created.spec.selector)
      local labels = created.spec.template.metadata.labels
      assert.are.equal(uid, labels[UID_LABEL])
      assert.are.equal(uid, labels["controller-uid"])
      assert.are.equal("one", labels["job-name"])
      assert.are.equal(1, created.metadata.generation)
      assert.are.equal(tostring(rv0 + 1), created.metadata.resourceVersion)
      local ev = assert(w:next())
      assert.are.equal("ADDED", ev.type)
      assert.are.same(created, ev.object)
      w:close()
      -- what the store holds is what the create answered
      assert.are.same(created, s.client:get("batch/v1/Job", "default", "one"))
    end)
  end)

  it("leaves manual selectors, dry runs and foreign uids as they were", function()
    with_stack(function(s)
      local manual = job("manual", { manualSelector = true, selector = { matchLabels = { app = "m" } } })
      manual.spec.template.metadata = { labels = { app = "m" } }
      local m = assert(s.client:create("batch/v1/Job", manual))
      assert.are.same({ matchLabels = { app = "m" } }, m.spec.selector)
      assert.is_nil(m.spec.template.metadata.labels[UID_LABEL])
      local dry = assert(s.client:create("batch/v1/Job", job("dry"), { dry_run = true }))
      assert.is_nil(dry.spec.selector)
      assert.is_nil(dry.metadata.uid)
      assert.is_nil(s.client:get("batch/v1/Job", "default", "dry"))
      -- a uid in the body is never taken, with or without the hook
      local given = job("given")
      given.metadata.uid = "11111111-2222-4333-8444-555555555555"
      local g = assert(s.client:create("batch/v1/Job", given))
      assert.are_not.equal(given.metadata.uid, g.metadata.uid)
      assert.are.equal(g.metadata.uid, g.spec.selector.matchLabels[UID_LABEL])
      local cm = assert(s.client:create("v1/ConfigMap", { apiVersion = "v1", kind = "ConfigMap",
        metadata = { name = "c", uid = "11111111-2222-4333-8444-555555555555" } }))
      assert.are_not.equal("11111111-2222-4333-8444-555555555555", cm.metadata.uid)
    end)
  end)

  it("store: create keeps a caller's uid only when asked", function()
    local store = assert(require("moonlet.store").open({ backend = "memory" }))
    local uid = store:new_uid()
    assert.is_truthy(uid:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x+$"))
    assert.are_not.equal(uid, store:new_uid())
    local kept = assert(store:create("configmaps", "default", { metadata = { name = "a", uid = uid } },
      { keep_uid = true }))
    assert.are.equal(uid, kept.metadata.uid)
    local fresh = assert(store:create("configmaps", "default", { metadata = { name = "b", uid = uid } }))
    assert.are_not.equal(uid, fresh.metadata.uid)
    local text = assert(store:create("configmaps", "default", { metadata = { name = "c" } },
      { keep_uid = true, json = true }))
    assert.are.equal("string", type(text))
    assert.is_truthy(json.decode(text).metadata.uid:match("^%x+%-"))
    store:close()
  end)
end)
