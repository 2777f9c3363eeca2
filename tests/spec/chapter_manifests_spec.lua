-- The book chapter's manifests (examples/chapter/*.yaml), read the way
-- `moonlet apply -f DIR` reads them and created through the in-process API
-- with strict field validation: each is accepted and stored with every field
-- it wrote (the server only adds defaults), except the chapter's
-- matchExpressions typo, which gets the 422 naming the missing key (and, when
-- strict, the unknown field). A manifest drifting from what the server
-- accepts, or a file the README or the e2e tests name going missing, fails
-- here first.
require("moonlet_core")
local json = require("moonlet.json")
local manifest = require("moonlet.cli.manifest")
local stack = require("api_stack")
local fake = require("fake_client") -- for fake.run only

local SRC = os.getenv("ML_SRC") or "."
local DIR = SRC .. "/examples/chapter"
local TYPO = "kubia-deployment-matchexpressions-typo.yaml"

-- The files and what each holds; a new file needs a row here and a line in
-- the README's walkthrough.
local EXPECTED = {
  ["batch-job.yaml"] = "batch/v1/Job batch-job",
  ["cronjob.yaml"] = "batch/v1beta1/CronJob batch-job-every-fifteen-minutes",
  ["kubia-deployment.yaml"] = "apps/v1/Deployment kubia",
  ["kubia-deployment-matchexpressions.yaml"] = "apps/v1/Deployment kubia",
  [TYPO] = "apps/v1/Deployment kubia",
  ["kubia-liveness-probe.yaml"] = "v1/Pod kubia-liveness",
  ["kubia-liveness-probe-initial-delay.yaml"] = "v1/Pod kubia-liveness",
  ["kubia-replicaset.yaml"] = "apps/v1/ReplicaSet kubia",
  ["multi-completion-parallel-batch-job.yaml"] = "batch/v1/Job multi-completion-parallel-batch-job",
  ["ssd-monitor-daemonset.yaml"] = "apps/v1/DaemonSet ssd-monitor",
}

local function basename(path) return (path:match("([^/]+)$")) end

local function read_text(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- every document of the directory, keyed by file name
local function documents()
  local docs = assert(manifest.read({}, { DIR }, false))
  local by_file = {}
  for _, d in ipairs(docs) do
    assert.is_nil(d.err, d.err)
    local name = basename(d.source)
    assert.is_nil(by_file[name], name .. " holds more than one document")
    by_file[name] = d.obj
  end
  return by_file
end

-- Every leaf of `want` is in `got` with the same value: the server may add
-- defaults but must not drop or change what the manifest says.
local function contains(got, want, path)
  if type(want) ~= "table" then
    assert.are.equal(want, got, path)
    return
  end
  assert.are.equal("table", type(got), path .. " missing")
  if json.is_array(want) then
    assert.is_true(#got >= #want, path .. " lost items")
  end
  for k, v in pairs(want) do
    contains(got[k], v, path .. "." .. tostring(k))
  end
end

local function kind_key(obj) return obj.apiVersion .. "/" .. obj.kind end

describe("the chapter's manifests (examples/chapter)", function()
  local by_file = documents()

  it("are the expected files, one object each", function()
    local seen = {}
    for name, obj in pairs(by_file) do
      seen[name] = kind_key(obj) .. " " .. obj.metadata.name
    end
    assert.are.same(EXPECTED, seen)
  end)

  for name in pairs(EXPECTED) do
    if name ~= TYPO then
      it(name .. " is accepted (strict) and stored as written", function()
        fake.run(function()
          local c = stack.new().client
          local obj = by_file[name]
          local created, st = c:create(kind_key(obj), obj, { field_validation = "Strict" })
          assert.is_table(created, st and st.message)
          local stored = assert(c:get(kind_key(obj):gsub("/v1beta1/", "/v1/"), "default", obj.metadata.name))
          local want = json.decode(json.encode(obj))
          -- batch/v1beta1 is served as an alias of the stored batch/v1
          want.apiVersion = stored.apiVersion
          contains(stored, want, name)
        end)
      end)
    end
  end

  it("the matchExpressions typo gets a 422 naming the missing key and the unknown field", function()
    fake.run(function()
      local c = stack.new().client
      local obj = by_file[TYPO]
      local res, st = c:create(kind_key(obj), obj)
      assert.is_nil(res, "the typo was accepted")
      assert.are.equal(422, st.code)
      assert.truthy(st.message:find('Deployment.apps "kubia" is invalid: ', 1, true), st.message)
      assert.truthy(st.message:find("spec.selector.matchExpressions[0].key: Invalid value: \"\"", 1, true), st.message)
      res, st = c:create(kind_key(obj), obj, { field_validation = "Strict" })
      assert.is_nil(res, "the typo was accepted (strict)")
      assert.truthy(st.message:find('unknown field "spec.selector.matchExpressions[0].app"', 1, true), st.message)
      assert.is_nil(c:get("apps/v1/Deployment", "default", "kubia"))
    end)
  end)

  it("the corrected matchExpressions selects app In (kubia)", function()
    local sel = by_file["kubia-deployment-matchexpressions.yaml"].spec.selector
    assert.are.same({ { key = "app", operator = "In", values = { "kubia" } } }, sel.matchExpressions)
    -- and it is the typo's file with that one line fixed
    local typo = read_text(DIR .. "/" .. TYPO):gsub("^.-\n(# 遵循)", "%1")
    local fixed = read_text(DIR .. "/kubia-deployment-matchexpressions.yaml"):gsub("^.-\n(# 遵循)", "%1")
    assert.are.equal((typo:gsub("%- app: app\n", "- key: app\n", 1)), fixed)
  end)

  it("are named by the README and the e2e tests only as files that exist", function()
    local texts = { README = read_text(SRC .. "/README.md") }
    local sys = require("moonlet.core.sys")
    for _, n in ipairs(assert(sys.listdir(SRC .. "/tests/e2e"))) do
      if n:match("%.sh$") then texts[n] = read_text(SRC .. "/tests/e2e/" .. n) end
    end
    local mentioned = {}
    for src, text in pairs(texts) do
      for name in text:gmatch("examples/chapter/([%w%._%-]+%.yaml)") do
        assert.is_truthy(EXPECTED[name], src .. " names examples/chapter/" .. name .. ", which does not exist")
        if src == "README" then mentioned[name] = true end
      end
    end
    for name in pairs(EXPECTED) do
      assert.is_true(mentioned[name] == true, "the README's walkthrough does not name " .. name)
    end
  end)
end)
