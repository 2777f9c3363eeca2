-- Server-side apply: the field sets (moonlet.api.fieldset), ownership and
-- its conflicts (moonlet.api.managed_fields), and the PATCH with
-- application/apply-patch+yaml through the real router (in-process), as
-- kube-apiserver answers it.
require("moonlet_core")
local json = require("moonlet.json")
local fieldset = require("moonlet.api.fieldset")
local managed = require("moonlet.api.managed_fields")
local merge_keys = require("moonlet.api.merge_keys")
local api_stack = require("api_stack")
local fake = require("fake_client") -- for fake.run only

local SEP = "\0"
local function path(...) return table.concat({ ... }, SEP) end

local function sorted_paths(set)
  local out = {}
  for p in pairs(set) do out[#out + 1] = fieldset.text(p) end
  table.sort(out)
  return out
end

local DEPLOY = fieldset.semantics("apps", "Deployment")

local function opts(manager, extra)
  local o = { manager = manager, api_version = "apps/v1", semantics = DEPLOY,
    merge_keys = merge_keys.for_kind("apps", "Deployment"), status_apart = true }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

local function deployment(image, extra_container)
  local containers = { { name = "main", image = image, args = { "1" },
    ports = { { containerPort = 80 } }, env = { { name = "A", value = "1" } } } }
  if extra_container then containers[2] = extra_container end
  return { apiVersion = "apps/v1", kind = "Deployment",
    metadata = { name = "web", namespace = "default", labels = { app = "web" } },
    spec = { replicas = 2, selector = { matchLabels = { app = "web" } },
      template = { metadata = { labels = { app = "web" } }, spec = { containers = containers } } } }
end

describe("field sets", function()
  it("hold leaves, keyed list items, set items and atomic fields", function()
    local d = deployment("a")
    d.metadata.finalizers = { "x/y" }
    d.status = { replicas = 2 }
    d.metadata.uid, d.metadata.resourceVersion = "u", "1"
    assert.are.same({
      ".metadata.finalizers[=\"x/y\"]",
      ".metadata.labels.app",
      ".spec.replicas",
      ".spec.selector",
      ".spec.template.metadata.labels.app",
      ".spec.template.spec.containers[name=\"main\"]",
      ".spec.template.spec.containers[name=\"main\"].args",
      ".spec.template.spec.containers[name=\"main\"].env[name=\"A\"]",
      ".spec.template.spec.containers[name=\"main\"].env[name=\"A\"].name",
      ".spec.template.spec.containers[name=\"main\"].env[name=\"A\"].value",
      ".spec.template.spec.containers[name=\"main\"].image",
      ".spec.template.spec.containers[name=\"main\"].name",
      ".spec.template.spec.containers[name=\"main\"].ports[containerPort=80,protocol=\"TCP\"]",
      ".spec.template.spec.containers[name=\"main\"].ports[containerPort=80,protocol=\"TCP\"].containerPort",
    }, sorted_paths(fieldset.of(d, DEPLOY, "main", true)))
    -- The status subresource's writes see status only.
    assert.are.same({ ".status.replicas" }, sorted_paths(fieldset.of(d, DEPLOY, "status", true)))
  end)

  it("encode to FieldsV1 and back", function()
    local set = fieldset.of(deployment("a"), DEPLOY, "main", true)
    local tree = fieldset.encode(set)
    local item = tree["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"main"}']
    assert.are.same({}, item["."])
    assert.are.same({}, item["f:image"])
    assert.is_nil(tree["f:spec"]["."]) -- a struct with members is not a member itself
    assert.are.same(set, fieldset.decode(json.decode(json.encode(tree))))
    assert.is_nil(fieldset.decode({ ["f:a"] = "not an object" }))
  end)

  it("diff names what a write adds, changes and removes, in one walk", function()
    local a = deployment("a", { name = "side", image = "s" })
    local b = deployment("b")
    b.metadata.labels.extra = "x"
    b.spec.template.spec.containers[1].env[2] = { name = "B", value = "2" }
    b.metadata.resourceVersion = "9" -- the server's: never a change
    local touched, removed = fieldset.diff(a, b, DEPLOY, "main", true)
    assert.are.same({
      ".metadata.labels.extra",
      ".spec.template.spec.containers[name=\"main\"].env[name=\"B\"]",
      ".spec.template.spec.containers[name=\"main\"].env[name=\"B\"].name",
      ".spec.template.spec.containers[name=\"main\"].env[name=\"B\"].value",
      ".spec.template.spec.containers[name=\"main\"].image",
    }, sorted_paths(touched))
    assert.are.same({
      ".spec.template.spec.containers[name=\"side\"]",
      ".spec.template.spec.containers[name=\"side\"].image",
      ".spec.template.spec.containers[name=\"side\"].name",
    }, sorted_paths(removed))
    -- A change of shape (an atomic list becoming keyed) compares both sides.
    local c = json.copy(b)
    c.spec.template.spec.containers[1].args = "not a list"
    touched = fieldset.diff(b, c, DEPLOY, "main", true)
    assert.are.same({ ".spec.template.spec.containers[name=\"main\"].args" }, sorted_paths(touched))
  end)

  it("reads and removes what a path names", function()
    local d = deployment("a", { name = "side", image = "b" })
    local c = path("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"side"}')
    assert.are.equal("b", fieldset.get(d, c .. SEP .. "f:image"))
    assert.is_true(fieldset.remove(d, c))
    assert.are.equal(1, #d.spec.template.spec.containers)
    assert.is_false(fieldset.remove(d, c))
    assert.is_true(json.is_array(d.spec.template.spec.containers))
  end)
end)

describe("managed fields", function()
  it("apply makes the object and owns exactly what it applied", function()
    local obj = assert(managed.apply(nil, deployment("a"), opts("kubectl")))
    local mf = obj.metadata.managedFields
    assert.are.equal(1, #mf)
    assert.are.equal("kubectl", mf[1].manager)
    assert.are.equal("Apply", mf[1].operation)
    assert.are.equal("apps/v1", mf[1].apiVersion)
    assert.are.equal("FieldsV1", mf[1].fieldsType)
    assert.truthy(mf[1].time:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"))
    assert.are.same({}, mf[1].fieldsV1["f:spec"]["f:replicas"])
  end)

  it("refuses to change another manager's field, unless forced", function()
    local live = assert(managed.apply(nil, deployment("a"), opts("kubectl")))
    local edited = json.copy(live)
    edited.spec.template.spec.containers[1].image = "edited"
    managed.track_update(live, edited, opts("kubectl-edit"))
    local byname = {}
    for _, e in ipairs(edited.metadata.managedFields) do byname[e.manager] = e end
    assert.are.equal("Update", byname["kubectl-edit"].operation)
    -- The changed field left the applier's set.
    local applier = fieldset.decode(byname.kubectl.fieldsV1)
    local image = path("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"main"}', "f:image")
    assert.is_nil(applier[image])

    local new, conflicts = managed.apply(edited, deployment("b"), opts("kubectl"))
    assert.is_nil(new)
    local st = managed.conflict_status(conflicts)
    assert.are.equal(409, st.code)
    assert.are.equal("Conflict", st.reason)
    assert.are.equal('Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: '
      .. '.spec.template.spec.containers[name="main"].image', st.message)
    assert.are.same({ { type = "FieldManagerConflict", message = 'conflict with "kubectl-edit" using apps/v1',
      field = '.spec.template.spec.containers[name="main"].image' } }, st.details.causes)

    -- The same value is shared ownership, not a conflict.
    local same = assert(managed.apply(edited, deployment("edited"), opts("kubectl")))
    assert.are.equal("edited", same.spec.template.spec.containers[1].image)

    local forced = assert(managed.apply(edited, deployment("b"), opts("kubectl", { force = true })))
    assert.are.equal("b", forced.spec.template.spec.containers[1].image)
    for _, e in ipairs(forced.metadata.managedFields) do
      assert.are_not.equal("kubectl-edit", e.manager) -- its only field changed hands: entry gone
    end
  end)

  it("names every conflict, grouped by manager", function()
    local st = managed.conflict_status({ { manager = '"b"', path = ".data.y" }, { manager = '"a"', path = ".data.x" },
      { manager = '"b"', path = ".data.x" } })
    assert.are.equal('Apply failed with 3 conflicts: conflicts with "a":\n- .data.x\nconflicts with "b":\n'
      .. '- .data.x\n- .data.y', st.message)
  end)

  it("removes what the manager stops applying, unless somebody else owns it", function()
    local live = assert(managed.apply(nil, deployment("a", { name = "side", image = "s" }), opts("kubectl")))
    live.metadata.labels.extra = "kept"
    local other = json.copy(live)
    other.metadata.labels.extra = "mine"
    managed.track_update(live, other, opts("labeler"))
    local new = assert(managed.apply(other, deployment("a"), opts("kubectl")))
    local names = {}
    for _, c in ipairs(new.spec.template.spec.containers) do names[#names + 1] = c.name end
    assert.are.same({ "main" }, names)
    assert.are.equal("mine", new.metadata.labels.extra)
    -- Dropping a label it applied alone removes it.
    local cfg = deployment("a")
    cfg.metadata.labels = nil
    new = assert(managed.apply(new, cfg, opts("kubectl")))
    assert.is_nil(new.metadata.labels.app)
    assert.are.equal("mine", new.metadata.labels.extra)
  end)

  it("leaves objects nobody applied untracked, and [{}] clears", function()
    local old = deployment("a")
    local new = json.copy(old)
    new.spec.replicas = 5
    managed.track_update(old, new, opts("kubectl-edit"))
    assert.is_nil(new.metadata.managedFields)
    local live = assert(managed.apply(nil, deployment("a"), opts("kubectl")))
    local cleared = json.copy(live)
    cleared.metadata.managedFields = json.array({ {} })
    managed.track_update(live, cleared, opts("kubectl-edit"))
    assert.is_nil(cleared.metadata.managedFields)
  end)

  it("keeps the stored entries for subresource writes, whatever the body says", function()
    local live = assert(managed.apply(nil, deployment("a"), opts("kubectl")))
    local st = json.copy(live)
    st.metadata.managedFields = json.array({})
    st.status = { replicas = 2 }
    managed.track_update(live, st, opts("moonlet", { subresource = "status" }))
    local mf = st.metadata.managedFields
    assert.are.equal(2, #mf)
    assert.are.equal("status", mf[2].subresource)
    assert.are.same({ ["f:status"] = { ["f:replicas"] = {} } }, mf[2].fieldsV1)
  end)

  it("names writers as kube-apiserver does", function()
    assert.are.equal("kubectl-edit", managed.manager_of("kubectl-edit", "kubectl/v1.32.4 (linux/amd64)"))
    assert.are.equal("kubectl", managed.manager_of(nil, "kubectl/v1.32.4 (linux/amd64) kubernetes/4cb5f07"))
    assert.are.equal("moonlet", managed.manager_of("", nil))
  end)
end)

describe("PATCH application/apply-patch+yaml", function()
  local CM = "/api/v1/namespaces/default/configmaps"

  local function apply(st, name, body, query)
    return st.transport({ method = "PATCH", path = CM .. "/" .. name .. "?" .. (query or "fieldManager=kubectl"),
      headers = { ["Content-Type"] = "application/apply-patch+yaml" }, body = body })
  end

  it("creates, updates, conflicts and forces through the router", function()
    fake.run(function()
      local st = api_stack.new()
      local ok, err = pcall(function()
        local yaml_body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k1: v1\n"
        local res = apply(st, "a", yaml_body)
        assert.are.equal(201, res.status, res.body)
        local obj = json.decode(res.body)
        assert.are.equal("kubectl", obj.metadata.managedFields[1].manager)
        res = apply(st, "a", yaml_body)
        assert.are.equal(200, res.status, res.body)

        res = st.transport({ method = "PATCH", path = CM .. "/a?fieldManager=kubectl-edit",
          headers = { ["Content-Type"] = "application/merge-patch+json" }, body = '{"data":{"k1":"edited"}}' })
        assert.are.equal(200, res.status, res.body)

        res = apply(st, "a", yaml_body)
        assert.are.equal(409, res.status, res.body)
        local status = json.decode(res.body)
        assert.are.equal('Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.k1',
          status.message)

        res = apply(st, "a", yaml_body, "fieldManager=kubectl&force=true")
        assert.are.equal(200, res.status, res.body)
        assert.are.equal("v1", json.decode(res.body).data.k1)

        -- dryRun answers without writing.
        res = apply(st, "b", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
          "fieldManager=kubectl&dryRun=All")
        assert.are.equal(201, res.status, res.body)
        assert.is_nil(st.store:get("configmaps", "default", "b"))

        -- The options and the body are checked as the apiserver does.
        res = apply(st, "a", yaml_body, "force=true")
        assert.are.equal(422, res.status)
        assert.are.equal('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
          .. "is required for apply patch", json.decode(res.body).message)
        res = st.transport({ method = "PATCH", path = CM .. "/a?force=true",
          headers = { ["Content-Type"] = "application/merge-patch+json" }, body = "{}" })
        assert.are.equal(422, res.status)
        assert.truthy(json.decode(res.body).message:find("force: Forbidden: may not be specified for non-apply patch",
          1, true))
        res = apply(st, "c", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n")
        assert.are.equal(400, res.status)
        assert.are.equal("the name of the object (other) does not match the name on the URL (c)",
          json.decode(res.body).message)
        res = apply(st, "c", "- a list\n")
        assert.are.equal(400, res.status)
        -- A repeated key follows fieldValidation, as in any other body.
        local dup = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\n  name: d\n"
        res = apply(st, "d", dup, "fieldManager=kubectl&fieldValidation=Strict")
        assert.are.equal(400, res.status)
        assert.truthy(json.decode(res.body).message:find('line 5: key "name" already set in map', 1, true))
        res = apply(st, "d", dup, "fieldManager=kubectl")
        assert.are.equal(201, res.status)
        assert.truthy((res.headers.Warning or ""):find('key \\"name\\" already set', 1, true), res.headers.Warning)
      end)
      api_stack.close(st, ok, err)
    end)
  end)
end)
