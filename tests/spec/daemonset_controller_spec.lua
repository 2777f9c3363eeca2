-- The DaemonSet controller on the in-process API with Node objects and no
-- kubelets: the chapter's nodeSelector sequence, taints and tolerations,
-- cordoned nodes, new nodes, duplicates, failed pods with back-off, the
-- RollingUpdate (maxUnavailable and maxSurge) and OnDelete strategies with
-- ControllerRevision history, and the status counts.
local env_mod = require("daemonset_env")
local json = require("moonlet.json")

local DS, CR = env_mod.DS, env_mod.CR
local with_api = env_mod.with_api

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local function reasons_of(env)
  local out = {}
  for _, e in ipairs(env.events("DaemonSet")) do out[e.reason] = (out[e.reason] or 0) + (e.count or 1) end
  return out
end

describe("daemonset controller", function()
  it("follows the chapter: pods only on nodes labelled disk=ssd", function()
    with_api(function(env)
      local c = env.client
      env.node("n1", { ["kubernetes.io/hostname"] = "n1" })
      env.node("n2", {})
      local ds = assert(c:create(DS, env_mod.ds("ssd-monitor", nil, { nodeSelector = { disk = "ssd" } })))
      env.settle()
      assert.are.same({}, env.pods())
      local st = env.status("ssd-monitor")
      assert.are.same({ 0, 0, 0, 1 }, { st.desiredNumberScheduled, st.currentNumberScheduled,
        st.numberMisscheduled, st.observedGeneration })

      assert(c:patch("v1/Node", nil, "n1", "merge", { metadata = { labels = { disk = "ssd" } } }))
      env.settle()
      local pods = env.pods()
      assert.are.equal(1, #pods)
      local p = pods[1]
      assert.truthy(p.metadata.name:match("^ssd%-monitor%-[bcdfghjklmnpqrstvwxz2456789]+$"))
      local ref = p.metadata.ownerReferences[1]
      assert.are.same({ "apps/v1", "DaemonSet", "ssd-monitor", ds.metadata.uid, true, true },
        { ref.apiVersion, ref.kind, ref.name, ref.uid, ref.controller, ref.blockOwnerDeletion })
      -- pinned to n1 by required node affinity, as Kubernetes does
      local terms = p.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms
      assert.are.same({ { matchFields = { { key = "metadata.name", operator = "In", values = { "n1" } } } } },
        terms)
      assert.is_nil(p.spec.nodeName)
      assert.are.equal("1", p.metadata.labels["pod-template-generation"])
      local crs = assert(c:list(CR, { namespace = "default" })).items
      assert.are.equal(1, #crs)
      assert.are.equal(1, crs[1].revision)
      assert.are.equal(crs[1].metadata.labels["controller-revision-hash"], p.metadata.labels["controller-revision-hash"])
      assert.are.equal("ssd-monitor-" .. p.metadata.labels["controller-revision-hash"], crs[1].metadata.name)
      assert.are.equal("replace", crs[1].data.spec.template["$patch"])
      -- the automatic tolerations, without tolerationSeconds
      local tols = {}
      for _, t in ipairs(p.spec.tolerations) do
        tols[#tols + 1] = string.format("%s:%s:%s:%s", t.key, t.operator, t.effect, tostring(t.tolerationSeconds))
      end
      table.sort(tols)
      assert.are.same({
        "node.kubernetes.io/disk-pressure:Exists:NoSchedule:nil",
        "node.kubernetes.io/memory-pressure:Exists:NoSchedule:nil",
        "node.kubernetes.io/not-ready:Exists:NoExecute:nil",
        "node.kubernetes.io/pid-pressure:Exists:NoSchedule:nil",
        "node.kubernetes.io/unreachable:Exists:NoExecute:nil",
        "node.kubernetes.io/unschedulable:Exists:NoSchedule:nil",
      }, tols)
      st = env.status("ssd-monitor")
      assert.are.same({ 1, 1, 0, 0, 1, 0, 1 }, { st.desiredNumberScheduled, st.currentNumberScheduled,
        st.numberMisscheduled, st.numberReady, st.updatedNumberScheduled, st.numberAvailable,
        st.numberUnavailable })

      env.set_ready(p)
      env.settle()
      st = env.status("ssd-monitor")
      assert.are.same({ 1, 1, 0 }, { st.numberReady, st.numberAvailable, st.numberUnavailable })

      -- disk=hdd --overwrite: the pod goes
      assert(c:patch("v1/Node", nil, "n1", "merge", { metadata = { labels = { disk = "hdd" } } }))
      env.settle()
      assert.are.same({}, env.by_node())
      st = env.status("ssd-monitor")
      assert.are.same({ 0, 0 }, { st.desiredNumberScheduled, st.currentNumberScheduled })
      local msgs = {}
      for _, e in ipairs(env.events("DaemonSet")) do msgs[#msgs + 1] = e.reason .. " " .. e.message end
      table.sort(msgs)
      assert.are.same({ "SuccessfulCreate Created pod: " .. p.metadata.name,
        "SuccessfulDelete Deleted pod: " .. p.metadata.name }, msgs)
      assert.are.equal(0, env.ctl.stats.errors)
    end)
  end)

  it("honours taints, runs on cordoned nodes, follows new nodes and NoExecute taints", function()
    with_api(function(env)
      local c = env.client
      env.node("a", {})
      env.node("b", {}, { taints = { { key = "dedicated", value = "db", effect = "NoSchedule" } } })
      env.node("c", {}, { unschedulable = true })
      assert(c:create(DS, env_mod.ds("agent")))
      env.settle()
      local by = env.by_node()
      assert.are.equal(2, count(by))
      assert.truthy(by.a and by.c)
      assert.is_nil(by.b)

      -- a new node gets its pod
      env.node("d", {})
      env.settle()
      assert.truthy(env.by_node().d)
      assert.are.equal(3, env.status("agent").desiredNumberScheduled)

      -- NoSchedule added to a node with a pod: it keeps running there
      assert(c:patch("v1/Node", nil, "a", "merge", { spec = { taints = {
        { key = "maint", effect = "NoSchedule" } } } }))
      env.settle()
      assert.truthy(env.by_node().a)
      local st = env.status("agent")
      assert.are.same({ 2, 2, 1 }, { st.desiredNumberScheduled, st.currentNumberScheduled,
        st.numberMisscheduled })

      -- NoExecute: the pod is deleted
      assert(c:patch("v1/Node", nil, "a", "merge", { spec = { taints = {
        { key = "maint", effect = "NoExecute" } } } }))
      env.settle()
      assert.is_nil(env.by_node().a)

      -- a toleration in the template brings the tainted node back
      local ds = assert(c:get(DS, "default", "agent"))
      ds.spec.template.spec.tolerations = { { key = "dedicated", operator = "Exists" },
        { key = "maint", operator = "Equal", value = "", effect = "NoExecute" } }
      assert(c:update(DS, ds))
      env.settle()
      by = env.by_node()
      assert.truthy(by.a and by.b and by.c and by.d)

      -- a node that goes away takes its never-bound pod with it
      assert(c:delete("v1/Node", nil, "d"))
      env.settle()
      by = env.by_node()
      assert.is_nil(by.d)
      assert.are.equal(3, env.status("agent").desiredNumberScheduled)
      assert.are.equal(0, env.ctl.stats.errors)
    end)
  end)

  it("keeps the oldest of duplicates and adopts matching orphans", function()
    with_api(function(env)
      local c = env.client
      env.node("n1", {})
      assert(c:create(DS, env_mod.ds("dup")))
      env.settle()
      local first = env.pods()[1]
      assert.truthy(first)
      -- a newer orphan with the DaemonSet's labels pinned to the same node
      -- (unbound as well: a bound pod would rank first)
      local orphan = assert(c:create("v1/Pod", { apiVersion = "v1", kind = "Pod",
        metadata = { name = "zz-orphan", namespace = "default", labels = { app = "dup" } },
        spec = { containers = { { name = "main", image = "x" } },
          affinity = { nodeAffinity = { requiredDuringSchedulingIgnoredDuringExecution = {
            nodeSelectorTerms = { { matchFields = { { key = "metadata.name", operator = "In",
              values = { "n1" } } } } } } } } } }))
      env.settle()
      local left = env.by_node().n1
      assert.are.equal(1, #left)
      assert.are.equal(first.metadata.name, left[1].metadata.name)
      -- it was adopted (so counted), then deleted as the newer copy
      assert.is_nil(c:get("v1/Pod", "default", orphan.metadata.name))
      assert.are.equal(1, reasons_of(env).SuccessfulDelete)
    end)
  end)

  it("deletes a failed daemon pod with FailedDaemonPod and backs off per node", function()
    with_api(function(env)
      local c = env.client
      env.node("n1", {})
      assert(c:create(DS, env_mod.ds("fail")))
      env.settle()
      local p = assert(env.pods()[1])
      p.status.phase = "Failed"
      local ok, st = c:update_status("v1/Pod", p)
      assert(ok, st and st.message)
      env.settle()
      local pods = env.pods()
      assert.are.equal(1, #pods)
      assert.are_not.equal(p.metadata.name, pods[1].metadata.name)
      local found
      for _, e in ipairs(env.events("DaemonSet")) do
        if e.reason == "FailedDaemonPod" then
          found = true
          assert.are.equal("Warning", e.type)
          assert.are.equal(string.format("Found failed daemon pod default/%s on node n1, will try to kill it",
            p.metadata.name), e.message)
        end
      end
      assert.is_true(found)
      -- failing again at once: within the 1 s back-off, kept for now (the
      -- controller looks again when the back-off ends)
      local q = pods[1]
      q.status.phase = "Failed"
      assert(c:update_status("v1/Pod", q))
      require("moonlet.loop").sleep(400)
      assert.truthy(c:get("v1/Pod", "default", q.metadata.name))
      -- after the back-off it goes and a new one comes
      env.settle()
      assert.is_nil(c:get("v1/Pod", "default", q.metadata.name))
      assert.are.equal(1, #env.pods())
    end)
  end)

  it("rolls a template change out one node at a time (maxUnavailable 1)", function()
    with_api(function(env)
      local c = env.client
      for _, n in ipairs({ "n1", "n2", "n3" }) do env.node(n, {}) end
      assert(c:create(DS, env_mod.ds("roll")))
      env.settle()
      for _, p in ipairs(env.pods()) do env.set_ready(p) end
      env.settle()
      assert.are.equal(3, env.status("roll").numberAvailable)
      local old_hash = env.pods()[1].metadata.labels["controller-revision-hash"]

      local ds = assert(c:get(DS, "default", "roll"))
      ds.spec.template.spec.containers[1].image = "idealism/ssd-monitor:v2"
      ds = assert(c:update(DS, ds))
      assert.are.equal("2", ds.metadata.annotations["deprecated.daemonset.template.generation"])
      local rounds = 0
      while true do
        env.settle()
        local old_n, new_n, unready = 0, 0, 0
        for _, p in ipairs(env.pods()) do
          if p.metadata.labels["controller-revision-hash"] == old_hash then old_n = old_n + 1
          else
            new_n = new_n + 1
            assert.are.equal("2", p.metadata.labels["pod-template-generation"])
            assert.are.equal("idealism/ssd-monitor:v2", p.spec.containers[1].image)
          end
          local ready = false
          for _, cnd in ipairs((p.status or {}).conditions or {}) do
            if cnd.type == "Ready" and cnd.status == "True" then ready = true end
          end
          if not ready then unready = unready + 1 end
        end
        -- never more than maxUnavailable = 1 node without a ready pod
        assert.is_true(unready + (3 - old_n - new_n) <= 1)
        if old_n == 0 and unready == 0 then break end
        for _, p in ipairs(env.pods()) do env.set_ready(p) end
        rounds = rounds + 1
        assert.is_true(rounds <= 6, "rollout did not finish")
      end
      assert.is_true(rounds >= 3)
      local st = env.status("roll")
      assert.are.same({ 3, 3, 3, 2 }, { st.desiredNumberScheduled, st.updatedNumberScheduled,
        st.numberAvailable, st.observedGeneration })
      local revs = {}
      for _, cr in ipairs(assert(c:list(CR, { namespace = "default" })).items) do revs[#revs + 1] = cr.revision end
      table.sort(revs)
      assert.are.same({ 1, 2 }, revs)
      assert.are.equal(0, env.ctl.stats.errors)
    end)
  end)

  it("surges a new pod before deleting the old one with maxSurge", function()
    with_api(function(env)
      local c = env.client
      env.node("n1", {})
      env.node("n2", {})
      assert(c:create(DS, env_mod.ds("surge", { updateStrategy = { type = "RollingUpdate",
        rollingUpdate = { maxSurge = 1, maxUnavailable = 0 } } })))
      env.settle()
      for _, p in ipairs(env.pods()) do env.set_ready(p) end
      env.settle()
      local ds = assert(c:get(DS, "default", "surge"))
      ds.spec.template.metadata.labels.tier = "x"
      assert(c:update(DS, ds))
      env.settle()
      -- one node surged: two pods there, the old one still running
      local by = env.by_node()
      local doubled
      for n, pods in pairs(by) do if #pods == 2 then doubled = n end end
      assert.truthy(doubled)
      assert.are.equal(3, #env.pods())
      -- the new one becomes available: the old one goes, the next node surges
      for _, p in ipairs(by[doubled]) do env.set_ready(p) end
      env.settle()
      by = env.by_node()
      assert.are.equal(1, #by[doubled])
      assert.are.equal("x", by[doubled][1].metadata.labels.tier)
      for _, p in ipairs(env.pods()) do env.set_ready(p) end
      env.settle()
      for _, p in ipairs(env.pods()) do env.set_ready(p) end
      env.settle()
      by = env.by_node()
      assert.are.equal(1, #by.n1)
      assert.are.equal(1, #by.n2)
      assert.are.equal("x", by.n1[1].metadata.labels.tier)
      assert.are.equal("x", by.n2[1].metadata.labels.tier)
    end)
  end)

  it("OnDelete applies a new template only to replaced pods; history is pruned", function()
    with_api(function(env)
      local c = env.client
      env.node("n1", {})
      env.node("n2", {})
      assert(c:create(DS, env_mod.ds("od", { updateStrategy = { type = "OnDelete" }, revisionHistoryLimit = 1 })))
      env.settle()
      local before = env.pods()
      for v = 2, 4 do
        local ds = assert(c:get(DS, "default", "od"))
        ds.spec.template.spec.containers[1].image = "img:v" .. v
        assert(c:update(DS, ds))
        env.settle()
      end
      local now = env.pods()
      assert.are.same({ before[1].metadata.name, before[2].metadata.name },
        { now[1].metadata.name, now[2].metadata.name })
      assert.are.equal(0, env.status("od").updatedNumberScheduled)
      -- revisions: the current one and the one live pods carry; the limit
      -- of 1 old revision counts the live one, so revisions 2 and 3 go
      local names = {}
      for _, cr in ipairs(assert(c:list(CR, { namespace = "default" })).items) do names[#names + 1] = cr.revision end
      table.sort(names)
      assert.are.same({ 1, 4 }, names)
      assert(c:delete("v1/Pod", "default", now[1].metadata.name))
      env.settle()
      local imgs = {}
      for _, p in ipairs(env.pods()) do imgs[#imgs + 1] = p.spec.containers[1].image end
      table.sort(imgs)
      assert.are.same({ "idealism/ssd-monitor", "img:v4" }, imgs)
      assert.are.equal(1, env.status("od").updatedNumberScheduled)
    end)
  end)
end)
