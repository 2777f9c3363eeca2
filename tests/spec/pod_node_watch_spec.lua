-- Pod watches with the kubelet's fieldSelector=spec.nodeName=NODE on the
-- in-process API stack: a pod the scheduler binds after its creation (the
-- binding subresource, an update) arrives as ADDED, later writes as
-- MODIFIED, its deletion as DELETED; a pod that stops matching a field
-- selector arrives as DELETED; a watch resumed from an older version sees
-- the same; and the informer a joined node's agent runs keeps only its pods.
require("moonlet_core")
local fake = require("fake_client") -- for fake.run only
local stack = require("api_stack")
local informer = require("moonlet.controller.informer")

local function pod(name, node)
  return { apiVersion = "v1", kind = "Pod", metadata = { name = name, namespace = "default" },
    spec = { nodeName = node, containers = { { name = "main", image = "busybox" } } } }
end

-- POST pods/NAME/binding as the scheduler does.
local function bind(s, p, node)
  local res = s.transport({ method = "POST", path = "/api/v1/namespaces/default/pods/" .. p.metadata.name .. "/binding",
    headers = { ["Content-Type"] = "application/json" },
    body = require("moonlet.json").encode({ apiVersion = "v1", kind = "Binding",
      metadata = { name = p.metadata.name, namespace = "default" },
      target = { apiVersion = "v1", kind = "Node", name = node } }) })
  assert(res.status == 201, "binding: " .. tostring(res.status) .. " " .. tostring(res.body))
end

-- The next event of watch w as "TYPE name nodeName phase".
local function next_event(w)
  local ev = assert(w:next())
  local o = ev.object
  return string.format("%s %s %s %s", ev.type, o.metadata.name, tostring(o.spec.nodeName),
    tostring(o.status and o.status.phase))
end

local function with_stack(fn)
  fake.run(function()
    local s = stack.new()
    require("moonlet.kubelet.subresources").install() -- pods/NAME/binding
    local ok, err = pcall(fn, s)
    stack.close(s, ok, err)
  end)
end

describe("pod watch with fieldSelector spec.nodeName", function()
  it("sees a pod bound after its creation as ADDED, then MODIFIED and DELETED", function()
    with_stack(function(s)
      local rv0 = tostring(s.store:resource_version())
      local w = assert(s.client:watch("v1/Pod", { field_selector = "spec.nodeName=n1" }))
      local p = assert(s.client:create("v1/Pod", pod("late")))
      assert(s.client:create("v1/Pod", pod("elsewhere", "n2")))
      bind(s, p, "n1")
      p = assert(s.client:get("v1/Pod", "default", "late"))
      p.status.phase = "Running"
      assert(s.client:update_status("v1/Pod", p))
      assert(s.client:delete("v1/Pod", "default", "late", { grace_period_seconds = 0 }))
      assert.are.equal("ADDED late n1 Pending", next_event(w))
      assert.are.equal("MODIFIED late n1 Running", next_event(w))
      assert.are.equal("DELETED late n1 Running", next_event(w))
      w:close()
      -- resumed from before the creation: the same events from the window
      local r = assert(s.client:watch("v1/Pod", { field_selector = "spec.nodeName=n1", resource_version = rv0 }))
      assert.are.equal("ADDED late n1 Pending", next_event(r))
      assert.are.equal("MODIFIED late n1 Running", next_event(r))
      assert.are.equal("DELETED late n1 Running", next_event(r))
      r:close()
    end)
  end)

  it("sees a pod that stops matching as DELETED, with its content before the change", function()
    with_stack(function(s)
      local w = assert(s.client:watch("v1/Pod", { field_selector = "status.phase=Pending,spec.nodeName=n1" }))
      local p = assert(s.client:create("v1/Pod", pod("p", "n1")))
      p.status.phase = "Running"
      local upd = assert(s.client:update_status("v1/Pod", p))
      assert.are.equal("ADDED p n1 Pending", next_event(w))
      local ev = assert(w:next())
      assert.are.equal("DELETED", ev.type)
      assert.are.equal("Pending", ev.object.status.phase)
      assert.are.equal(upd.metadata.resourceVersion, ev.object.metadata.resourceVersion)
      w:close()
    end)
  end)

  it("refuses a field the Pod kind does not select on, on watch as on list", function()
    with_stack(function(s)
      local w, st = s.client:watch("v1/Pod", { field_selector = "spec.hostname=x" })
      assert.is_nil(w)
      assert.are.equal("field label not supported: spec.hostname", st.message)
      local l, lst = s.client:list("v1/Pod", { field_selector = "spec.hostname=x" })
      assert.is_nil(l)
      assert.are.equal(st.message, lst.message)
    end)
  end)

  it("gives a field-selected informer (a joined node's) only its node's pods, bound ones as adds", function()
    with_stack(function(s)
      assert(s.client:create("v1/Pod", pod("before", "n1")))
      assert(s.client:create("v1/Pod", pod("other", "n2")))
      local late = assert(s.client:create("v1/Pod", pod("late")))
      local inf = informer.new({ client = s.client, kind = "v1/Pod", field_selector = "spec.nodeName=n1",
        log = function() end })
      local seen = {}
      inf:add_handler({
        add = function(o) seen[#seen + 1] = "add " .. o.metadata.name end,
        update = function(_, o) seen[#seen + 1] = "update " .. o.metadata.name end,
        delete = function(o) seen[#seen + 1] = "delete " .. o.metadata.name end,
      })
      inf:start()
      assert(inf:wait_synced(3))
      bind(s, late, "n1")
      assert(stack.wait_until(function() return #seen >= 2 end))
      assert(s.client:delete("v1/Pod", "default", "before", { grace_period_seconds = 0 }))
      assert(stack.wait_until(function() return #seen >= 3 end))
      assert.are.same({ "add before", "add late", "delete before" }, seen)
      assert.is_nil(inf:get("default", "other"))
      assert.are.equal("n1", inf:get("default", "late").spec.nodeName)
      inf:stop()
    end)
  end)

  it("is how a joined node's agent lists and watches, over the wire", function()
    with_stack(function(s)
      assert(s.client:create("v1/Pod", pod("other", "node-b")))
      local paths = {}
      local client = require("moonlet.client").new({ transport = function(req)
        if req.path:match("^/api/v1/pods") then paths[#paths + 1] = req.path end
        return s.transport(req)
      end })
      local agent = require("moonlet.kubelet.agent").new({ client = client, data_dir = os.tmpname() .. ".d",
        node_name = "node-a", runtime = { spawn = function() error("no pods here") end }, log = function() end })
      agent.probes = false
      assert(agent:start())
      assert(agent.informer:wait_synced(3))
      assert(stack.wait_until(function() return #paths >= 2 end))
      agent:stop()
      assert.is_nil(agent.informer:get("default", "other"))
      -- the informer's list, then its watch
      for _, p in ipairs(paths) do assert.matches("fieldSelector=spec.nodeName%%3Dnode%-a", p) end
      assert.is_nil(paths[1]:find("watch=true", 1, true))
      assert.matches("watch=true", paths[2])
    end)
  end)
end)
