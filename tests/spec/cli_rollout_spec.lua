-- The Deployment CLI (`rollout status|history|undo|pause|resume|restart`,
-- `scale`, `describe deployment`) on the real API stack in process, with
-- the Deployment controller played by the spec: it writes the ReplicaSets
-- and the status fields the real controller would, so every message and
-- patch can be checked against kubectl 1.32's exact output.
require("moonlet_core")
local json = require("moonlet.json")
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")
local cli = require("moonlet.cli")
local util = require("moonlet.cli.rollout_util")
local fake = require("fake_client") -- for fake.run only

local DEPLOY, RS = "apps/v1/Deployment", "apps/v1/ReplicaSet"

local function template(image, hash)
  local labels = { app = "kubia" }
  if hash then labels["pod-template-hash"] = hash end
  return { metadata = { labels = labels },
    spec = { containers = { { name = "kubia", image = image, ports = { { containerPort = 8080, protocol = "TCP" } } } } } }
end

local function deployment(replicas)
  return { apiVersion = "apps/v1", kind = "Deployment", metadata = { name = "kubia", namespace = "default" },
    spec = { replicas = replicas or 3, selector = { matchLabels = { app = "kubia" } }, template = template("idealism/kubia") } }
end

-- A ReplicaSet as the controller makes it: owned, hashed, with a revision.
local function rs_of(d, hash, image, revision, replicas, cause)
  local ann = { ["deployment.kubernetes.io/revision"] = tostring(revision) }
  if cause then ann["kubernetes.io/change-cause"] = cause end
  return { apiVersion = "apps/v1", kind = "ReplicaSet",
    metadata = { name = "kubia-" .. hash, namespace = "default", labels = { app = "kubia", ["pod-template-hash"] = hash },
      annotations = ann,
      ownerReferences = { { apiVersion = "apps/v1", kind = "Deployment", name = "kubia", uid = d.metadata.uid,
        controller = true, blockOwnerDeletion = true } } },
    spec = { replicas = replicas, selector = { matchLabels = { app = "kubia", ["pod-template-hash"] = hash } },
      template = template(image, hash) } }
end

local function with_stack(fn)
  fake.run(function()
    local s = require("api_stack").new()
    local ok, err = pcall(fn, s)
    require("api_stack").close(s, ok, err)
  end)
end

-- Runs the CLI in process. @return rc, stdout, stderr
local function run(s, argv, opts)
  local out, err = {}, {}
  local rc = cli.main(argv, { client = s.client, now = opts and opts.now,
    out = function(t) out[#out + 1] = t end, err = function(t) err[#err + 1] = t end,
    stdin = opts and opts.stdin })
  return rc, table.concat(out), table.concat(err)
end

-- Sets status fields of the Deployment (what the controller would write).
local function set_status(s, st)
  local d = assert(s.client:get(DEPLOY, "default", "kubia"))
  d.status = st
  if st.observedGeneration == true then st.observedGeneration = d.metadata.generation end
  return assert(s.client:update_status(DEPLOY, d))
end

-- A Deployment with two revisions: kubia (1, scaled to 0) and kubia:v2 (2).
local function two_revisions(s)
  local d = assert(s.client:create(DEPLOY, deployment()))
  assert(s.client:create(RS, rs_of(d, "5b8f7d9c4", "idealism/kubia", 1, 0)))
  d.spec.template = template("idealism/kubia:v2")
  d.metadata.annotations = { ["deployment.kubernetes.io/revision"] = "2" }
  d = assert(s.client:update(DEPLOY, d))
  assert(s.client:create(RS, rs_of(d, "6d4c8b7f9", "idealism/kubia:v2", 2, 3, "kubectl set image v2")))
  return d
end

describe("rollout status messages (DeploymentStatusViewer)", function()
  local function d(gen, observed, replicas, st)
    st.observedGeneration = observed
    return { metadata = { name = "kubia", generation = gen }, spec = { replicas = replicas }, status = st }
  end

  it("prints kubectl's line for each stage", function()
    local cases = {
      { d(2, 1, 3, {}), 'Waiting for deployment spec update to be observed...\n', false },
      { d(2, 2, 3, { updatedReplicas = 1, replicas = 4 }),
        'Waiting for deployment "kubia" rollout to finish: 1 out of 3 new replicas have been updated...\n', false },
      { d(2, 2, 3, { updatedReplicas = 3, replicas = 4 }),
        'Waiting for deployment "kubia" rollout to finish: 1 old replicas are pending termination...\n', false },
      { d(2, 2, 3, { updatedReplicas = 3, replicas = 3, availableReplicas = 2 }),
        'Waiting for deployment "kubia" rollout to finish: 2 of 3 updated replicas are available...\n', false },
      { d(2, 3, 3, { updatedReplicas = 3, replicas = 3, availableReplicas = 3 }),
        'deployment "kubia" successfully rolled out\n', true },
    }
    for _, c in ipairs(cases) do
      local msg, done = util.deployment_status(c[1], 0)
      assert.are.equal(c[2], msg)
      assert.are.equal(c[3], done)
    end
  end)

  it("fails on ProgressDeadlineExceeded and on a different revision", function()
    local x = d(1, 1, 3, { updatedReplicas = 1, conditions = {
      { type = "Progressing", status = "False", reason = "ProgressDeadlineExceeded" } } })
    local msg, done, err = util.deployment_status(x, 0)
    assert.is_nil(msg)
    assert.is_false(done)
    assert.are.equal('deployment "kubia" exceeded its progress deadline', err)
    x.metadata.annotations = { ["deployment.kubernetes.io/revision"] = "3" }
    assert.are.equal("desired revision (2) is different from the running revision (3)",
      select(3, util.deployment_status(x, 2)))
  end)

  it("daemon sets have their own viewer", function()
    local ds = { metadata = { name = "ssd", generation = 1 }, spec = { updateStrategy = { type = "RollingUpdate" } },
      status = { observedGeneration = 1, desiredNumberScheduled = 2, updatedNumberScheduled = 2, numberAvailable = 1 } }
    assert.are.equal('Waiting for daemon set "ssd" rollout to finish: 1 of 2 updated pods are available...\n',
      util.daemonset_status(ds))
    ds.status.numberAvailable = 2
    assert.are.equal('daemon set "ssd" successfully rolled out\n', util.daemonset_status(ds))
  end)
end)

describe("moonlet rollout status", function()
  it("--watch=false prints the current state once", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment()))
      set_status(s, { observedGeneration = true, replicas = 3, updatedReplicas = 1 })
      local rc, out = run(s, { "rollout", "status", "deployment/kubia", "--watch=false" })
      assert.are.equal(0, rc)
      assert.are.equal('Waiting for deployment "kubia" rollout to finish: 1 out of 3 new replicas have been updated...\n', out)
    end)
  end)

  it("watches until the rollout is done, one line per change", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment()))
      set_status(s, { observedGeneration = true, replicas = 3, updatedReplicas = 1 })
      sched.spawn("controller", function()
        loop.sleep(50)
        set_status(s, { observedGeneration = true, replicas = 4, updatedReplicas = 3 })
        loop.sleep(50)
        set_status(s, { observedGeneration = true, replicas = 3, updatedReplicas = 3, availableReplicas = 2 })
        loop.sleep(50)
        set_status(s, { observedGeneration = true, replicas = 3, updatedReplicas = 3, availableReplicas = 3 })
      end)
      local rc, out = run(s, { "rollout", "status", "deploy", "kubia" })
      assert.are.equal(0, rc)
      assert.are.equal(table.concat({
        'Waiting for deployment "kubia" rollout to finish: 1 out of 3 new replicas have been updated...\n',
        'Waiting for deployment "kubia" rollout to finish: 1 old replicas are pending termination...\n',
        'Waiting for deployment "kubia" rollout to finish: 2 of 3 updated replicas are available...\n',
        'deployment "kubia" successfully rolled out\n' }), out)
    end)
  end)

  it("exits non-zero when the progress deadline is exceeded", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment()))
      set_status(s, { observedGeneration = true, replicas = 3, updatedReplicas = 1 })
      sched.spawn("controller", function()
        loop.sleep(50)
        set_status(s, { observedGeneration = true, replicas = 3, updatedReplicas = 1, conditions = {
          { type = "Progressing", status = "False", reason = "ProgressDeadlineExceeded",
            message = 'ReplicaSet "kubia-x" has timed out progressing.' } } })
      end)
      local rc, out, err = run(s, { "rollout", "status", "deployment", "kubia" })
      assert.are.equal(1, rc)
      assert.are.equal('Waiting for deployment "kubia" rollout to finish: 1 out of 3 new replicas have been updated...\n', out)
      assert.are.equal('error: deployment "kubia" exceeded its progress deadline\n', err)
    end)
  end)

  it("gives up after --timeout", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment()))
      local t0 = loop.now()
      local rc, out, err = run(s, { "rollout", "status", "deployment/kubia", "--timeout=1s" })
      assert.are.equal(1, rc)
      assert.are.equal("Waiting for deployment spec update to be observed...\n", out)
      assert.are.equal("error: timed out waiting for the condition\n", err)
      assert.is_true(loop.now() - t0 >= 900)
    end)
  end)

  it("reports kubectl's errors for bad arguments", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment()))
      local rc, _, err = run(s, { "rollout", "status" })
      assert.are.equal(1, rc)
      assert.are.equal("error: required resource not specified\n", err)
      rc, _, err = run(s, { "rollout", "status", "deployment/nope" })
      assert.are.equal(1, rc)
      assert.are.equal('Error from server (NotFound): deployments.apps "nope" not found\n', err)
      rc, _, err = run(s, { "rollout", "status", "deployment/kubia", "--to-revision=2" })
      assert.are.equal(1, rc)
      assert.matches("unknown flag: %-%-to%-revision", err)
      assert(s.client:create(RS, rs_of(s.client:get(DEPLOY, "default", "kubia"), "abc", "x", 1, 1)))
      rc, _, err = run(s, { "rollout", "status", "rs/kubia-abc" })
      assert.are.equal("error: no status viewer has been implemented for ReplicaSet.apps\n", err)
      rc, _, err = run(s, { "rollout", "status", "deployment/kubia", "--timeout=5" })
      assert.are.equal('error: invalid argument "5" for "--timeout" flag: time: missing unit in duration "5"\n', err)
      rc, _, err = run(s, { "scale", "deployment/kubia", "--replicas=1", "--timeout=soon" })
      assert.are.equal('error: invalid argument "soon" for "--timeout" flag: time: invalid duration "soon"\n', err)
      rc, _, err = run(s, { "rollout", "frobnicate" })
      assert.are.equal('error: unknown command "frobnicate" for "moonlet rollout"\n', err)
    end)
  end)
end)

describe("moonlet rollout history", function()
  it("lists revisions with their change-cause", function()
    with_stack(function(s)
      two_revisions(s)
      local rc, out = run(s, { "rollout", "history", "deployment/kubia" })
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia \nREVISION  CHANGE-CAUSE\n1         <none>\n2         kubectl set image v2\n\n", out)
    end)
  end)

  it("--revision prints that revision's pod template", function()
    with_stack(function(s)
      two_revisions(s)
      local rc, out = run(s, { "rollout", "history", "deploy/kubia", "--revision=2" })
      assert.are.equal(0, rc)
      assert.are.equal(table.concat({
        "deployment.apps/kubia with revision #2\n",
        "Pod Template:\n",
        "  Labels:\tapp=kubia\n",
        "\tpod-template-hash=6d4c8b7f9\n",
        "  Annotations:\tkubernetes.io/change-cause: kubectl set image v2\n",
        "  Containers:\n",
        "   kubia:\n",
        "    Image:\tidealism/kubia:v2\n",
        "    Port:\t8080/TCP\n",
        "    Host Port:\t0/TCP\n",
        "    Environment:\t<none>\n",
        "    Mounts:\t<none>\n",
        "  Volumes:\t<none>\n",
        "  Node-Selectors:\t<none>\n",
        "  Tolerations:\t<none>\n",
        "\n" }), out)
      local rc2, _, err = run(s, { "rollout", "history", "deploy/kubia", "--revision=7" })
      assert.are.equal(1, rc2)
      assert.are.equal("error: unable to find the specified revision\n", err)
      -- Only the formats this verb prints are offered.
      local rc3, _, err3 = run(s, { "rollout", "history", "deploy/kubia", "-o", "go-template={{.kind}}" })
      assert.are.equal(1, rc3)
      assert.are.equal('error: unable to match a printer suitable for the output format "go-template={{.kind}}", '
        .. "allowed formats are: json,name,yaml\n", err3)
    end)
  end)

  it("says when there is no history and names unsupported kinds", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment()))
      local rc, out = run(s, { "rollout", "history", "deployment", "kubia" })
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia \nNo rollout history found.\n", out)
      assert(s.client:create("v1/ConfigMap", { apiVersion = "v1", kind = "ConfigMap",
        metadata = { name = "c", namespace = "default" } }))
      local _, _, err = run(s, { "rollout", "history", "cm/c" })
      assert.are.equal('error: no history viewer has been implemented for "ConfigMap"\n', err)
    end)
  end)
end)

describe("moonlet rollout undo", function()
  it("copies the previous revision's template back, hash label removed", function()
    with_stack(function(s)
      two_revisions(s)
      local rc, out = run(s, { "rollout", "undo", "deployment/kubia" })
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia rolled back\n", out)
      local d = assert(s.client:get(DEPLOY, "default", "kubia"))
      assert.are.equal("idealism/kubia", d.spec.template.spec.containers[1].image)
      assert.are.same({ app = "kubia" }, d.spec.template.metadata.labels)
      -- bookkeeping annotations stay; the RS's other annotations come along
      assert.are.equal("2", d.metadata.annotations["deployment.kubernetes.io/revision"])
      assert.are.equal(3, d.metadata.generation)
    end)
  end)

  it("--to-revision: missing, already current, paused", function()
    with_stack(function(s)
      two_revisions(s)
      local rc, _, err = run(s, { "rollout", "undo", "deployment/kubia", "--to-revision=5" })
      assert.are.equal(1, rc)
      assert.are.equal("error: unable to find specified revision 5 in history\n", err)
      local out
      rc, out = run(s, { "rollout", "undo", "deployment/kubia", "--to-revision=2" })
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia skipped rollback (current template already matches revision 2)\n", out)
      rc, out = run(s, { "rollout", "undo", "deployment/kubia", "--to-revision=1", "--dry-run=server" })
      assert.are.equal("deployment.apps/kubia rolled back (server dry run)\n", out)
      assert.are.equal("idealism/kubia:v2", s.client:get(DEPLOY, "default", "kubia").spec.template.spec.containers[1].image)
      assert.are.equal(0, (run(s, { "rollout", "pause", "deployment/kubia" })))
      rc, _, err = run(s, { "rollout", "undo", "deployment/kubia" })
      assert.are.equal(1, rc)
      assert.are.equal("error: you cannot rollback a paused deployment; resume it first with 'moonlet rollout resume' and try again\n", err)
    end)
  end)

  it("needs a previous revision", function()
    with_stack(function(s)
      local d = assert(s.client:create(DEPLOY, deployment()))
      assert(s.client:create(RS, rs_of(d, "5b8f7d9c4", "idealism/kubia", 1, 3)))
      local rc, _, err = run(s, { "rollout", "undo", "deployment/kubia" })
      assert.are.equal(1, rc)
      assert.are.equal('error: no rollout history found for deployment "kubia"\n', err)
    end)
  end)
end)

describe("moonlet rollout pause / resume / restart", function()
  it("toggle spec.paused with kubectl's words", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment()))
      local rc, out, err = run(s, { "rollout", "pause", "deployment/kubia" })
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia paused\n", out)
      assert.is_true(s.client:get(DEPLOY, "default", "kubia").spec.paused)
      rc, out, err = run(s, { "rollout", "pause", "deployment/kubia" })
      assert.are.equal(1, rc)
      assert.are.equal("", out)
      assert.are.equal('error: deployments.apps "kubia" is already paused\n', err)
      rc, out, err = run(s, { "rollout", "restart", "deployment/kubia" })
      assert.are.equal(1, rc)
      assert.are.equal('error: deployments.apps "kubia" can\'t restart paused deployment (run rollout resume first)\n', err)
      rc, out = run(s, { "rollout", "resume", "deployment/kubia" })
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia resumed\n", out)
      assert.is_not_true(s.client:get(DEPLOY, "default", "kubia").spec.paused)
      rc, out, err = run(s, { "rollout", "resume", "deployment/kubia" })
      assert.are.equal(1, rc)
      assert.are.equal('error: deployments.apps "kubia" is not paused\n', err)
      rc, out = run(s, { "rollout", "pause", "deployment/kubia", "-o", "name" })
      assert.are.equal("deployment.apps/kubia\n", out)
    end)
  end)

  it("restart stamps the template with restartedAt", function()
    with_stack(function(s)
      local before = assert(s.client:create(DEPLOY, deployment()))
      local rc, out = run(s, { "rollout", "restart", "deployment/kubia" })
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia restarted\n", out)
      local d = s.client:get(DEPLOY, "default", "kubia")
      local at = d.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[Z+-]", at)
      assert.is_true(math.abs(require("moonlet.printers.duration").parse(at) - os.time()) < 5)
      assert.are.equal(before.metadata.generation + 1, d.metadata.generation)
      local _, _, err = run(s, { "rollout", "restart", "cm/none" })
      assert.are.equal('Error from server (NotFound): configmaps "none" not found\n', err)
    end)
  end)

  it("formats RFC 3339 like Go for any zone", function()
    assert.matches("^2026%-", util.rfc3339_now(1795000000))
    assert.are.equal(20, #util.rfc3339_now(1795000000):gsub("[+-]%d%d:%d%d$", "Z"))
  end)
end)

describe("moonlet scale", function()
  it("sets replicas through the scale subresource", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment()))
      local rc, out = run(s, { "scale", "deployment", "kubia", "--replicas=5" })
      assert.are.equal(0, rc)
      assert.are.equal("deployment.apps/kubia scaled\n", out)
      assert.are.equal(5, s.client:get(DEPLOY, "default", "kubia").spec.replicas)
      rc, out = run(s, { "scale", "deploy/kubia", "--replicas=2", "--current-replicas=5" })
      assert.are.equal(0, rc)
      assert.are.equal(2, s.client:get(DEPLOY, "default", "kubia").spec.replicas)
      local err
      rc, out, err = run(s, { "scale", "deploy/kubia", "--replicas=4", "--current-replicas=3" })
      assert.are.equal(1, rc)
      assert.are.equal("error: Expected replicas to be 3, was 2\n", err)
      assert.are.equal(2, s.client:get(DEPLOY, "default", "kubia").spec.replicas)
      rc, out = run(s, { "scale", "deploy/kubia", "--replicas=9", "--dry-run=client" })
      assert.are.equal("deployment.apps/kubia scaled (dry run)\n", out)
      assert.are.equal(2, s.client:get(DEPLOY, "default", "kubia").spec.replicas)
      rc, out = run(s, { "scale", "deploy/kubia", "--replicas=9", "--dry-run=server" })
      assert.are.equal("deployment.apps/kubia scaled (server dry run)\n", out)
    end)
  end)

  it("scales replica sets, -f manifests and -l selections", function()
    with_stack(function(s)
      local d = assert(s.client:create(DEPLOY, deployment()))
      assert(s.client:create(RS, rs_of(d, "abc", "x", 1, 1)))
      local rc, out = run(s, { "scale", "rs", "kubia-abc", "--replicas=0" })
      assert.are.equal(0, rc)
      assert.are.equal("replicaset.apps/kubia-abc scaled\n", out)
      assert.are.equal(0, s.client:get(RS, "default", "kubia-abc").spec.replicas)
      rc, out = run(s, { "scale", "-f", "-", "--replicas=7" }, { stdin = json.encode(deployment()) })
      assert.are.equal("deployment.apps/kubia scaled\n", out)
      assert.are.equal(7, s.client:get(DEPLOY, "default", "kubia").spec.replicas)
      rc, out = run(s, { "scale", "rs", "-l", "app=kubia", "--replicas=2", "-o", "name" })
      assert.are.equal("replicaset.apps/kubia-abc\n", out)
      assert.are.equal(2, s.client:get(RS, "default", "kubia-abc").spec.replicas)
    end)
  end)

  it("checks its flags as kubectl does", function()
    with_stack(function(s)
      assert(s.client:create(DEPLOY, deployment()))
      local rc, _, err = run(s, { "scale", "deploy/kubia" })
      assert.are.equal(1, rc)
      assert.are.equal('error: required flag(s) "replicas" not set\n', err)
      _, _, err = run(s, { "scale", "deploy/kubia", "--replicas=-1" })
      assert.are.equal("error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0\n", err)
      _, _, err = run(s, { "scale", "deploy", "--replicas=1" })
      assert.are.equal("error: resource(s) were provided, but no name was specified\n", err)
      _, _, err = run(s, { "scale", "deploy/nope", "--replicas=1" })
      assert.are.equal('Error from server (NotFound): deployments.apps "nope" not found\n', err)
    end)
  end)
end)

describe("moonlet describe deployment", function()
  it("renders kubectl's DeploymentDescriber layout", function()
    with_stack(function(s)
      local d = two_revisions(s)
      set_status(s, { observedGeneration = true, replicas = 3, updatedReplicas = 3, readyReplicas = 3,
        availableReplicas = 3, conditions = {
          { type = "Available", status = "True", reason = "MinimumReplicasAvailable",
            message = "Deployment has minimum availability." },
          { type = "Progressing", status = "True", reason = "NewReplicaSetAvailable",
            message = 'ReplicaSet "kubia-6d4c8b7f9" has successfully progressed.' } } })
      local rs2 = assert(s.client:get(RS, "default", "kubia-6d4c8b7f9"))
      rs2.status = { replicas = 3 }
      assert(s.client:update_status(RS, rs2))
      local created = require("moonlet.printers.duration").parse(d.metadata.creationTimestamp)
      local rc, out = run(s, { "describe", "deployment", "kubia", "--show-events=false" }, { now = created + 60 })
      assert.are.equal(0, rc)
      local want = table.concat({
        "Name:                   kubia\n",
        "Namespace:              default\n",
        "CreationTimestamp:      " .. require("moonlet.printers.duration").format_rfc1123z(created) .. "\n",
        "Labels:                 <none>\n",
        "Annotations:            deployment.kubernetes.io/revision: 2\n",
        "Selector:               app=kubia\n",
        "Replicas:               3 desired | 3 updated | 3 total | 3 available | 0 unavailable\n",
        "StrategyType:           RollingUpdate\n",
        "MinReadySeconds:        0\n",
        "RollingUpdateStrategy:  25% max unavailable, 25% max surge\n",
        "Pod Template:\n",
        "  Labels:  app=kubia\n",
        "  Containers:\n",
        "   kubia:\n",
        "    Image:         idealism/kubia:v2\n",
        "    Port:          8080/TCP\n",
        "    Host Port:     0/TCP\n",
        "    Environment:   <none>\n",
        "    Mounts:        <none>\n",
        "  Volumes:         <none>\n",
        "  Node-Selectors:  <none>\n",
        "  Tolerations:     <none>\n",
        "Conditions:\n",
        "  Type           Status  Reason\n",
        "  ----           ------  ------\n",
        "  Available      True    MinimumReplicasAvailable\n",
        "  Progressing    True    NewReplicaSetAvailable\n",
        "OldReplicaSets:  kubia-5b8f7d9c4 (0/0 replicas created)\n",
        "NewReplicaSet:   kubia-6d4c8b7f9 (3/3 replicas created)\n",
      })
      assert.are.equal(want, out)
    end)
  end)

  it("lists the old ReplicaSets it is given, and events", function()
    local dd = require("moonlet.cli.describe_deployment")
    local d = { metadata = { name = "kubia", namespace = "default", creationTimestamp = "2024-05-01T10:00:00Z" },
      spec = { replicas = 3, selector = { matchLabels = { app = "kubia" } }, strategy = { type = "Recreate" },
        template = template("idealism/kubia") }, status = {} }
    local old = { { metadata = { name = "kubia-a" }, spec = { replicas = 2 }, status = { replicas = 2 } },
      { metadata = { name = "kubia-b" }, spec = { replicas = 1 }, status = {} } }
    local text = dd.render(d, old, nil, {}, 0)
    assert.matches("\nStrategyType:       Recreate\nMinReadySeconds:    0\nPod Template:\n", text, 1, true)
    assert.is_nil(text:find("RollingUpdateStrategy", 1, true))
    assert.matches("OldReplicaSets:    kubia-a (2/2 replicas created), kubia-b (0/1 replicas created)\n"
      .. "NewReplicaSet:     <none>\nEvents:            <none>\n", text, 1, true)
  end)
end)

describe("moonlet rollout history / undo for DaemonSets", function()
  local DS, CR = "apps/v1/DaemonSet", "apps/v1/ControllerRevision"

  local function ds_template(image)
    return { metadata = { labels = { app = "ssd" } },
      spec = { containers = { { name = "main", image = image } } } }
  end

  -- the DaemonSet at `image` plus one ControllerRevision per image, as the
  -- DaemonSet controller keeps them
  local function with_revisions(s, images, current)
    local ds = assert(s.client:create(DS, { apiVersion = "apps/v1", kind = "DaemonSet",
      metadata = { name = "ssd", namespace = "default" },
      spec = { selector = { matchLabels = { app = "ssd" } }, template = ds_template(current) } }))
    for i, image in ipairs(images) do
      -- the revision stores the template as the API server defaulted it
      local probe = json.copy(ds)
      probe.spec.template.spec.containers[1].image = image
      local tmpl = probe.spec.template
      tmpl["$patch"] = "replace"
      assert(s.client:create(CR, { apiVersion = "apps/v1", kind = "ControllerRevision",
        metadata = { name = "ssd-" .. i, namespace = "default", labels = { app = "ssd" },
          annotations = i == 2 and { ["kubernetes.io/change-cause"] = "to v2" } or nil,
          ownerReferences = { { apiVersion = "apps/v1", kind = "DaemonSet", name = "ssd", uid = ds.metadata.uid,
            controller = true } } },
        data = { spec = { template = tmpl } }, revision = i }))
    end
    return ds
  end

  it("lists ControllerRevisions and prints a revision's template", function()
    with_stack(function(s)
      with_revisions(s, { "ssd:v1", "ssd:v2" }, "ssd:v2")
      local rc, out = run(s, { "rollout", "history", "ds/ssd" })
      assert.are.equal(0, rc)
      assert.are.equal("daemonset.apps/ssd \nREVISION  CHANGE-CAUSE\n1         <none>\n2         to v2\n\n", out)
      rc, out = run(s, { "rollout", "history", "ds/ssd", "--revision=1" })
      assert.are.equal(0, rc)
      assert.matches("^daemonset.apps/ssd with revision #1\nPod Template:\n  Labels:\tapp=ssd\n", out)
      assert.matches("    Image:\tssd:v1\n", out, 1, true)
      rc, out = run(s, { "rollout", "history", "ds/ssd", "-o", "name" })
      assert.are.equal("controllerrevision.apps/ssd-1\ncontrollerrevision.apps/ssd-2\n", out)
    end)
  end)

  it("undo patches the previous revision back", function()
    with_stack(function(s)
      with_revisions(s, { "ssd:v1", "ssd:v2" }, "ssd:v2")
      local rc, out, err = run(s, { "rollout", "undo", "ds/ssd", "--to-revision=2" })
      assert.are.equal(0, rc, err)
      assert.are.equal("daemonset.apps/ssd skipped rollback (current template already matches revision 2)\n", out)
      rc, out = run(s, { "rollout", "undo", "ds/ssd" })
      assert.are.equal(0, rc)
      assert.are.equal("daemonset.apps/ssd rolled back\n", out)
      assert.are.equal("ssd:v1", s.client:get(DS, "default", "ssd").spec.template.spec.containers[1].image)
      rc, _, err = run(s, { "rollout", "undo", "ds/ssd", "--to-revision=3" })
      assert.are.equal(1, rc)
      assert.are.equal("error: unable to find specified revision 3 in history\n", err)
    end)
  end)

  it("needs two revisions to undo", function()
    with_stack(function(s)
      with_revisions(s, { "ssd:v1" }, "ssd:v1")
      local rc, _, err = run(s, { "rollout", "undo", "daemonset", "ssd" })
      assert.are.equal(1, rc)
      assert.are.equal("error: no last revision to roll back to\n", err)
    end)
  end)
end)
