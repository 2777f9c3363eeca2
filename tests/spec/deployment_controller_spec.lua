-- The Deployment kind and controller with the ReplicaSet controller on the
-- real API stack, in process. No kubelet: the spec plays it by marking pods
-- Running and Ready. Covers the ReplicaSet per template and its names,
-- labels and annotations, rolling updates within maxSurge/maxUnavailable,
-- Recreate, scaling (proportional mid-rollout), pause, rollback renumbering,
-- history pruning, adoption after an orphaning delete, a deleted RS made
-- again, an edited RS not flowing back (hash collision), conditions,
-- events and the progress deadline.
require("moonlet_core")
local json = require("moonlet.json")
local util = require("moonlet.controller.util")
local du = require("moonlet.controller.deployment_util")
local denv = require("deployment_env")

local D, RS = denv.D, denv.RS
local deploy_obj, with_api, complete = denv.deploy_obj, denv.with_api, denv.complete

local function owned_by(rs)
  return function(p)
    local ref = p.metadata.ownerReferences and p.metadata.ownerReferences[1]
    return ref ~= nil and ref.uid == rs.metadata.uid
  end
end

local function cond(d, t)
  return du.get_condition(d.status, t)
end

describe("deployment controller", function()
  it("creates one ReplicaSet per template with the hash in its name, labels and selector", function()
    with_api(function(env)
      local c = env.client
      local d = assert(c:create(D, deploy_obj("kubia", 3)))
      env.converge("kubia", complete)
      local rss = env.rss("kubia")
      assert.are.equal(1, #rss)
      local rs = rss[1]
      local hash = du.compute_hash(d.spec.template)
      assert.are.equal("kubia-" .. hash, rs.metadata.name)
      assert.are.same({ app = "kubia", [du.HASH_LABEL] = hash }, rs.metadata.labels)
      assert.are.same({ app = "kubia", [du.HASH_LABEL] = hash }, rs.spec.selector.matchLabels)
      assert.are.same({ app = "kubia", [du.HASH_LABEL] = hash }, rs.spec.template.metadata.labels)
      local ref = rs.metadata.ownerReferences[1]
      assert.are.same({ "apps/v1", "Deployment", "kubia", d.metadata.uid, true, true },
        { ref.apiVersion, ref.kind, ref.name, ref.uid, ref.controller, ref.blockOwnerDeletion })
      local a = rs.metadata.annotations
      assert.are.same({ "1", "3", "4" }, { a[du.REVISION], a[du.DESIRED], a[du.MAX] })
      local pods = env.pods(owned_by(rs))
      assert.are.equal(3, #pods)
      for _, p in ipairs(pods) do
        assert.truthy(p.metadata.name:match("^kubia%-" .. hash .. "%-[bcdfghjklmnpqrstvwxz2456789]+$"))
        assert.are.equal(hash, p.metadata.labels[du.HASH_LABEL])
      end
      d = env.get("kubia")
      assert.are.equal("1", d.metadata.annotations[du.REVISION])
      assert.are.same({ 3, 3, 3, 3, 0, 1 }, { d.status.replicas, d.status.updatedReplicas, d.status.readyReplicas,
        d.status.availableReplicas, d.status.unavailableReplicas or 0, d.status.observedGeneration })
      local av, pr = cond(d, "Available"), cond(d, "Progressing")
      assert.are.same({ "True", "MinimumReplicasAvailable", "Deployment has minimum availability." },
        { av.status, av.reason, av.message })
      assert.are.same({ "True", "NewReplicaSetAvailable",
        string.format('ReplicaSet "%s" has successfully progressed.', rs.metadata.name) },
        { pr.status, pr.reason, pr.message })
      assert.are.same({ "Scaled up replica set " .. rs.metadata.name .. " to 3" }, env.events("ScalingReplicaSet"))

      -- the selector is immutable; a template that does not match it is refused
      local cur = env.get("kubia")
      cur.spec.selector = { matchLabels = { app = "other" } }
      cur.spec.template.metadata.labels = { app = "other" }
      local res, st = c:update(D, cur)
      assert.is_nil(res)
      assert.are.equal(422, st.code)
      assert.truthy(st.message:find("spec.selector: Invalid value", 1, true), st.message)
      assert.truthy(st.message:find("field is immutable", 1, true), st.message)
      assert.are.equal(0, env.ctl.stats.errors)
    end)
  end)

  it("rolls a template change within maxSurge and maxUnavailable, then rolls back", function()
    with_api(function(env)
      local c = env.client
      assert(c:create(D, deploy_obj("web", 4)))
      env.converge("web", complete)
      local first = env.rss("web")[1]
      -- watch the rollout step by step: never more than 5 pods, never fewer than 3 available
      local cur = env.get("web")
      cur.spec.template.spec.containers[1].env = { { name = "V", value = "2" } }
      cur.metadata.annotations[du.CHANGE_CAUSE] = "set env V=2"
      assert(c:update(D, cur))
      local max_pods, min_ready = 0, math.huge
      for _ = 1, 60 do
        env.settle()
        local all = env.pods()
        local ready = 0
        for _, p in ipairs(all) do if (p.status or {}).phase == "Running" then ready = ready + 1 end end
        if #all > max_pods then max_pods = #all end
        if ready < min_ready then min_ready = ready end
        env.ready_all()
        if complete(env.get("web")) and #env.pods(owned_by(first)) == 0 then break end
      end
      local d = env.get("web")
      assert.is_true(complete(d), json.encode(d.status))
      assert.are.equal(5, max_pods)      -- replicas + maxSurge (1)
      assert.is_true(min_ready >= 3, "min ready " .. min_ready)    -- replicas - maxUnavailable (1)
      local rss = env.rss("web")
      assert.are.equal(2, #rss)
      assert.are.equal(first.metadata.name, rss[1].metadata.name)
      assert.are.same({ 0, 4 }, { rss[1].spec.replicas, rss[2].spec.replicas })
      assert.are.equal("2", rss[2].metadata.annotations[du.REVISION])
      assert.are.equal("set env V=2", rss[2].metadata.annotations[du.CHANGE_CAUSE])
      assert.are.equal("2", d.metadata.annotations[du.REVISION])
      local saw_down = false
      for _, m in ipairs(env.events("ScalingReplicaSet")) do
        local rest = m:sub(#("Scaled down replica set " .. first.metadata.name) + 1)
        if m:find("Scaled down replica set " .. first.metadata.name, 1, true) == 1 and rest:match("^ to %d+ from %d+$") then
          saw_down = true
        end
      end
      assert.is_true(saw_down)

      -- rollback the way kubectl does: the old template back into the Deployment
      cur = env.get("web")
      local tpl = util.copy(first.spec.template)
      tpl.metadata.labels[du.HASH_LABEL] = nil
      cur.spec.template = tpl
      assert(c:update(D, cur))
      env.converge("web", function(x) return complete(x) and x.metadata.annotations[du.REVISION] == "3" end)
      rss = env.rss("web")
      assert.are.equal(2, #rss) -- the old set is reused, no third one
      local back = assert(c:get(RS, "default", first.metadata.name))
      assert.are.same({ "3", "1", 4 }, { back.metadata.annotations[du.REVISION],
        back.metadata.annotations[du.REVISION_HISTORY], back.spec.replicas })
      assert.are.equal(0, env.ctl.stats.errors)
    end)
  end)

  it("scales proportionally mid-rollout and plainly otherwise; paused does not roll", function()
    with_api(function(env)
      local c = env.client
      assert(c:create(D, deploy_obj("app", 10)))
      env.converge("app", complete)
      -- a scale is not a rollout
      local r = c:raw("PATCH", "/apis/apps/v1/namespaces/default/deployments/app/scale",
        { spec = { replicas = 6 } }, { ["Content-Type"] = "application/merge-patch+json" })
      assert.are.equal(200, r.status, r.body)
      env.converge("app", complete)
      assert.are.equal(1, #env.rss("app"))
      assert.are.equal(6, #env.pods())
      assert.are.same({ "Scaled down replica set " .. env.rss("app")[1].metadata.name .. " to 6 from 10" },
        { env.events("ScalingReplicaSet")[2] })

      -- pause, change the template: no new ReplicaSet, Progressing Unknown/DeploymentPaused
      local cur = env.get("app")
      cur.spec.paused = true
      cur.spec.template.spec.containers[1].image = "kubia2"
      assert(c:update(D, cur))
      env.settle()
      assert.are.equal(1, #env.rss("app"))
      local pc = cond(env.get("app"), "Progressing")
      assert.are.same({ "Unknown", "DeploymentPaused", "Deployment is paused" }, { pc.status, pc.reason, pc.message })
      -- scaling a paused deployment still works
      cur = env.get("app")
      cur.spec.replicas = 8
      assert(c:update(D, cur))
      env.converge("app", function(x) return #env.pods() == 8 and x.status.replicas == 8 end)
      assert.are.equal(1, #env.rss("app"))

      -- resume: the rollout starts; stop it half-way by not readying pods, then scale up
      cur = env.get("app")
      cur.spec.paused = false
      assert(c:update(D, cur))
      env.settle()
      local rss = env.rss("app")
      assert.are.equal(2, #rss)
      -- 8 replicas: surge 2, unavailable 2 -> old 6, new 4 (not ready)
      assert.are.same({ 6, 4 }, { rss[1].spec.replicas, rss[2].spec.replicas })
      cur = env.get("app")
      cur.spec.replicas = 16
      assert(c:update(D, cur))
      env.settle()
      rss = env.rss("app")
      -- allowed 16 + 4 = 20, was 10 (annotated max 10): old 6 -> 12, new 4 -> 8
      assert.are.same({ 12, 8 }, { rss[1].spec.replicas, rss[2].spec.replicas })
      assert.are.same({ "16", "20" }, { rss[1].metadata.annotations[du.DESIRED], rss[1].metadata.annotations[du.MAX] })
      env.converge("app", complete)
      rss = env.rss("app")
      assert.are.same({ 0, 16 }, { rss[1].spec.replicas, rss[2].spec.replicas })
      assert.are.equal(0, env.ctl.stats.errors)
    end)
  end)

  it("Recreate scales the old set to 0 and waits for its pods before the new one", function()
    with_api(function(env)
      local c = env.client
      assert(c:create(D, deploy_obj("rec", 3, { strategy = { type = "Recreate" } })))
      env.converge("rec", complete)
      local old = env.rss("rec")[1]
      local cur = env.get("rec")
      cur.spec.template.spec.containers[1].image = "kubia2"
      assert(c:update(D, cur))
      env.converge("rec", complete)
      local rss = env.rss("rec")
      assert.are.equal(2, #rss)
      assert.are.same({ 0, 3 }, { rss[1].spec.replicas, rss[2].spec.replicas })
      local msgs = env.events("ScalingReplicaSet")
      assert.are.same({ "Scaled up replica set " .. old.metadata.name .. " to 3",
        "Scaled down replica set " .. old.metadata.name .. " to 0 from 3",
        "Scaled up replica set " .. rss[2].metadata.name .. " to 3" }, msgs)
      -- Recreate must not carry rollingUpdate
      local bad = deploy_obj("bad", 1, { strategy = { type = "Recreate", rollingUpdate = { maxSurge = 1 } } })
      local res, st = c:create(D, bad)
      assert.is_nil(res)
      assert.truthy(st.message:find("spec.strategy.rollingUpdate: Forbidden: may not be specified when "
        .. "strategy `type` is 'Recreate'", 1, true), st.message)
    end)
  end)

  it("remakes a deleted ReplicaSet, prunes history and ignores edits to an owned set", function()
    with_api(function(env)
      local c = env.client
      assert(c:create(D, deploy_obj("h", 1, { revisionHistoryLimit = 1 })))
      env.converge("h", complete)
      for i = 2, 4 do
        local cur = env.get("h")
        cur.spec.template.spec.containers[1].env = { { name = "I", value = tostring(i) } }
        assert(c:update(D, cur))
        env.converge("h", function(x) return complete(x) and x.metadata.annotations[du.REVISION] == tostring(i) end)
      end
      env.settle()
      local rss = env.rss("h")
      assert.are.equal(2, #rss) -- the current one and one old
      assert.are.same({ "3", "4" }, { rss[1].metadata.annotations[du.REVISION], rss[2].metadata.annotations[du.REVISION] })

      -- delete the current set: the same name comes back
      local name = rss[2].metadata.name
      assert(c:delete(RS, "default", name))
      env.converge("h", function(x)
        local again = c:get(RS, "default", name)
        return complete(x) and again ~= nil and again.metadata.uid ~= rss[2].metadata.uid
      end)

      -- edit the owned set's template: not copied back; a new set replaces it
      local owned = assert(c:get(RS, "default", name))
      owned.spec.template.spec.containers[1].image = "edited"
      assert(c:update(RS, owned))
      env.converge("h", function(x) return complete(x) and (x.status.collisionCount or 0) == 1 end)
      local d = env.get("h")
      assert.are.equal("kubia", d.spec.template.spec.containers[1].image)
      local edited = assert(c:get(RS, "default", name))
      assert.are.equal(0, edited.spec.replicas)
      local new = du.find_new(d, env.rss("h"))
      assert.are.equal("h-" .. du.compute_hash(d.spec.template, 1), new.metadata.name)
      assert.are.equal(1, new.spec.replicas)
    end)
  end)

  it("adopts an orphaned ReplicaSet and its pods without replacing them", function()
    with_api(function(env)
      local c = env.client
      assert(c:create(D, deploy_obj("kubia", 2)))
      env.converge("kubia", complete)
      local uids = {}
      for _, p in ipairs(env.pods()) do uids[#uids + 1] = p.metadata.uid end
      table.sort(uids)
      local rs = env.rss("kubia")[1]
      assert(c:delete(D, "default", "kubia", { propagation_policy = "Orphan" }))
      assert.is_true(util.wait_for(function()
        local x = c:get(RS, "default", rs.metadata.name)
        return c:get(D, "default", "kubia") == nil and x and x.metadata.ownerReferences == nil
      end, 10))
      assert(c:create(D, deploy_obj("kubia", 2)))
      env.converge("kubia", complete)
      local d = env.get("kubia")
      local again = assert(c:get(RS, "default", rs.metadata.name))
      assert.are.equal(rs.metadata.uid, again.metadata.uid)
      assert.are.equal(d.metadata.uid, again.metadata.ownerReferences[1].uid)
      local now = {}
      for _, p in ipairs(env.pods()) do now[#now + 1] = p.metadata.uid end
      table.sort(now)
      assert.are.same(uids, now)
      assert.are.equal(1, #env.rss("kubia"))
      local pc = cond(d, "Progressing")
      assert.are.equal("NewReplicaSetAvailable", pc.reason)
    end)
  end)

  it("releases a ReplicaSet relabelled out of its selector and replaces it", function()
    with_api(function(env)
      local c = env.client
      local d = assert(c:create(D, deploy_obj("rel", 1)))
      env.converge("rel", complete)
      local rs = env.rss("rel")[1]
      -- the RS and its template leave the selector (its own selector too: it
      -- must keep matching its template)
      local cur = assert(c:get(RS, "default", rs.metadata.name))
      cur.metadata.labels.app = "gone"
      assert(c:update(RS, cur))
      env.converge("rel", function(x) return complete(x) and (x.status.collisionCount or 0) == 1 end)
      local released = assert(c:get(RS, "default", rs.metadata.name))
      assert.is_nil(released.metadata.ownerReferences)
      local owned = {}
      for _, x in ipairs(env.rss("rel")) do
        if x.metadata.ownerReferences and x.metadata.ownerReferences[1].uid == d.metadata.uid then
          owned[#owned + 1] = x
        end
      end
      assert.are.equal(1, #owned)
      assert.are.equal("rel-" .. du.compute_hash(d.spec.template, 1), owned[1].metadata.name)
      assert.are.equal(1, owned[1].spec.replicas)
      assert.are.equal(0, env.ctl.stats.errors)
    end)
  end)

  it("reports ProgressDeadlineExceeded when the new pods never become ready", function()
    with_api(function(env)
      local c = env.client
      assert(c:create(D, deploy_obj("slow", 1, { progressDeadlineSeconds = 1 })))
      assert.is_true(util.wait_for(function()
        local pc = cond(env.get("slow"), "Progressing")
        return pc ~= nil and pc.reason == "ProgressDeadlineExceeded"
      end, 8))
      local d = env.get("slow")
      local pc = cond(d, "Progressing")
      assert.are.equal("False", pc.status)
      assert.are.equal(string.format('ReplicaSet "%s" has timed out progressing.', env.rss("slow")[1].metadata.name),
        pc.message)
      local av = cond(d, "Available")
      assert.are.same({ "False", "MinimumReplicasUnavailable" }, { av.status, av.reason })
    end)
  end)
end)

describe("deployment kind", function()
  it("defaults the spec and the selector, validates like Kubernetes, prints kubectl's columns", function()
    with_api(function(env)
      local c = env.client
      local obj = deploy_obj("dflt", nil)
      obj.spec.selector = nil
      local d = assert(c:create(D, obj))
      assert.are.same({ 1, "RollingUpdate", "25%", "25%", 10, 600, { app = "dflt" } },
        { d.spec.replicas, d.spec.strategy.type, d.spec.strategy.rollingUpdate.maxSurge,
          d.spec.strategy.rollingUpdate.maxUnavailable, d.spec.revisionHistoryLimit,
          d.spec.progressDeadlineSeconds, d.spec.selector.matchLabels })
      assert.are.equal(1, d.metadata.generation)

      local function refused(spec_extra, mutate)
        local o = deploy_obj("bad", 1, spec_extra)
        if mutate then mutate(o) end
        local res, st = c:create(D, o)
        assert.is_nil(res)
        assert.are.equal(422, st.code)
        return st.message
      end
      local msg = refused(nil, function(o) o.spec.template.metadata.labels = { app = "other" } end)
      assert.truthy(msg:find('Deployment.apps "bad" is invalid: spec.template.metadata.labels: Invalid value: '
        .. '{"app":"other"}: `selector` does not match template `labels`', 1, true), msg)
      msg = refused({ strategy = { type = "RollingUpdate", rollingUpdate = { maxSurge = 0, maxUnavailable = "0%" } } })
      assert.truthy(msg:find("spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": may not be 0 "
        .. "when `maxSurge` is 0", 1, true), msg)
      msg = refused({ strategy = { type = "RollingUpdate", rollingUpdate = { maxSurge = "x", maxUnavailable = "150%" } } })
      assert.truthy(msg:find("spec.strategy.rollingUpdate.maxSurge: Invalid value: \"x\": a valid percent string",
        1, true), msg)
      assert.truthy(msg:find("must not be greater than 100%", 1, true), msg)
      msg = refused({ progressDeadlineSeconds = 5, minReadySeconds = 5 })
      assert.truthy(msg:find("spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds",
        1, true), msg)
      msg = refused({ strategy = { type = "Blue" } })
      assert.truthy(msg:find('spec.strategy.type: Unsupported value: "Blue"', 1, true), msg)

      local t = assert(c:table(D, { namespace = "default" }))
      local names = {}
      for _, col in ipairs(t.columnDefinitions) do names[#names + 1] = col.name end
      assert.are.same({ "Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector" }, names)
      env.converge("dflt", complete)
      t = assert(c:table(D, { namespace = "default" }))
      local cells = t.rows[1].cells
      assert.are.same({ "dflt", "1/1", 1, 1 }, { cells[1], cells[2], cells[3], cells[4] })
      assert.are.same({ "main", "kubia", "app=dflt" }, { cells[6], cells[7], cells[8] })
      local r = c:raw("GET", "/apis/apps/v1/namespaces/default/deployments/dflt/scale")
      local scale = json.decode(r.body)
      assert.are.same({ "Scale", 1, "app=dflt" }, { scale.kind, scale.spec.replicas, scale.status.selector })
    end)
  end)
end)
