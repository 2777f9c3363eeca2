-- The endpoints controller on the in-process API (memory store, router,
-- controller manager; pods written directly, with the host-port annotation
-- and status a kubelet would write): ready and not-ready pods as addresses
-- and notReadyAddresses / ready=false, readiness flips, label changes, pod
-- deletion, a named targetPort, pods with different host ports in
-- different subsets and slices (the same port set shares one), a pod whose
-- ports are not published yet, and the Service's deletion.
require("moonlet_core")
local json = require("moonlet.json")
local fake = require("fake_client") -- for fake.run only
local stack = require("api_stack")

local POD, SVC, EP = "v1/Pod", "v1/Service", "v1/Endpoints"
local SLICE = "discovery.k8s.io/v1/EndpointSlice"

local function with_controller(fn)
  fake.run(function()
    local s = stack.new()
    local lines = {}
    local m = require("moonlet.controller").new({ client = s.client,
      log = function(level, msg) lines[#lines + 1] = level .. " " .. msg end })
    m:add(s.loaded.controllers["endpoints"].value)
    m:start()
    local ok, err = pcall(fn, s, m)
    if type(err) == "table" then err = json.encode(err) end
    m:stop()
    stack.close(s, ok, err, lines)
  end)
end

-- A running pod on n1 whose container "main" declares 8080 (named http),
-- published on host port `hp` (nil: not published yet).
local function make_pod(s, name, hp, ready, labels)
  local ann = hp and { ["moonlet.dev/host-ports"] = string.format('{"main/8080":%d}', hp) } or nil
  local p = assert(s.client:create(POD, { apiVersion = "v1", kind = "Pod",
    metadata = { name = name, namespace = "default", labels = labels or { app = "kubia" }, annotations = ann },
    spec = { nodeName = "n1", containers = { { name = "main", image = "idealism/kubia",
      ports = { { name = "http", containerPort = 8080 } } } } } }))
  p.status = p.status or {}
  p.status.phase, p.status.podIP = "Running", "127.0.0.1"
  p.status.conditions = { { type = "Ready", status = ready and "True" or "False" } }
  return assert(s.client:update_status(POD, p))
end

local function set_ready(s, name, ready)
  local p = assert(s.client:get(POD, "default", name))
  p.status.conditions = { { type = "Ready", status = ready and "True" or "False" } }
  assert(s.client:update_status(POD, p))
end

local function service(s, name, target)
  return assert(s.client:create(SVC, { apiVersion = "v1", kind = "Service",
    metadata = { name = name, namespace = "default" },
    spec = { selector = { app = "kubia" }, ports = { { name = "web", port = 80, targetPort = target or 8080 } } } }))
end

-- "name:port" of the ready and the not-ready addresses, sorted.
local function endpoints(s, name)
  local ep = s.client:get(EP, "default", name)
  if not ep then return nil end
  local ready, not_ready = {}, {}
  for _, ss in ipairs(ep.subsets or {}) do
    for _, a in ipairs(ss.addresses or {}) do
      ready[#ready + 1] = a.targetRef.name .. ":" .. ss.ports[1].port
      assert.are.equal("127.0.0.1", a.ip)
    end
    for _, a in ipairs(ss.notReadyAddresses or {}) do
      not_ready[#not_ready + 1] = a.targetRef.name .. ":" .. ss.ports[1].port
    end
  end
  table.sort(ready)
  table.sort(not_ready)
  return table.concat(ready, ","), table.concat(not_ready, ","), #(ep.subsets or {})
end

-- "name:port=ready" per endpoint over all slices of the Service, sorted,
-- and the number of slices.
local function slices(s, name)
  local res = assert(s.client:list(SLICE, { namespace = "default",
    label_selector = "kubernetes.io/service-name=" .. name }))
  local out = {}
  for _, sl in ipairs(res.items) do
    assert.are.equal("endpointslice-controller.k8s.io", sl.metadata.labels["endpointslice.kubernetes.io/managed-by"])
    assert.are.equal("IPv4", sl.addressType)
    for _, e in ipairs(sl.endpoints or {}) do
      out[#out + 1] = string.format("%s:%d=%s", e.targetRef.name, sl.ports[1].port, tostring(e.conditions.ready))
    end
  end
  table.sort(out)
  return table.concat(out, ","), #res.items
end

local function eventually(fn, want, what)
  local got
  local ok = stack.wait_until(function()
    got = table.pack(fn())
    for i, w in ipairs(want) do if got[i] ~= w then return false end end
    return true
  end)
  assert(ok, string.format("%s: want %s, got %s", what, json.encode(want), json.encode({ table.unpack(got, 1, #want) })))
end

describe("endpoints controller", function()
  it("lists ready pods as addresses and others as not ready, one subset and slice per host port", function()
    with_controller(function(s, m)
      make_pod(s, "a", 31001, true)
      make_pod(s, "b", 31002, true)
      make_pod(s, "c", 31003, false)
      make_pod(s, "other", 31004, true, { app = "other" })
      service(s, "kubia")
      eventually(function() return endpoints(s, "kubia") end, { "a:31001,b:31002", "c:31003", 3 }, "endpoints")
      eventually(function() return slices(s, "kubia") end,
        { "a:31001=true,b:31002=true,c:31003=false", 3 }, "slices")
      -- Settled: nothing is written again (no write loop on our own echoes).
      assert.is_true(m:wait_idle(5, 40))
      local function versions()
        local out = { assert(s.client:get(EP, "default", "kubia")).metadata.resourceVersion }
        for _, x in ipairs(assert(s.client:list(SLICE, { namespace = "default" })).items) do
          out[#out + 1] = x.metadata.resourceVersion
        end
        return table.concat(out, ",")
      end
      local before = versions()
      require("moonlet.loop").sleep(200)
      assert.is_true(m:wait_idle(5, 40))
      assert.are.equal(before, versions())
      local sl = assert(s.client:list(SLICE, { namespace = "default" })).items[1]
      assert.are.equal("Service", sl.metadata.ownerReferences[1].kind)
      assert.are.equal("web", sl.ports[1].name)

      -- readiness flips both ways
      set_ready(s, "c", true)
      set_ready(s, "a", false)
      eventually(function() return endpoints(s, "kubia") end, { "b:31002,c:31003", "a:31001", 3 }, "after flips")
      eventually(function() return slices(s, "kubia") end,
        { "a:31001=false,b:31002=true,c:31003=true", 3 }, "slices after flips")
    end)
  end)

  it("follows label changes and pod deletion", function()
    with_controller(function(s)
      make_pod(s, "a", 31001, true)
      make_pod(s, "b", 31002, true)
      service(s, "kubia")
      eventually(function() return endpoints(s, "kubia") end, { "a:31001,b:31002", "" }, "both")
      -- relabelled away: it leaves
      local a = assert(s.client:get(POD, "default", "a"))
      a.metadata.labels = { app = "elsewhere" }
      assert(s.client:update(POD, a))
      eventually(function() return endpoints(s, "kubia") end, { "b:31002", "" }, "a relabelled away")
      -- relabelled back: it returns
      a = assert(s.client:get(POD, "default", "a"))
      a.metadata.labels = { app = "kubia" }
      assert(s.client:update(POD, a))
      eventually(function() return endpoints(s, "kubia") end, { "a:31001,b:31002", "" }, "a back")
      -- deleted: gone from Endpoints and slices; no pods left: one empty slice
      assert(s.client:delete(POD, "default", "b", { grace_period_seconds = 0 }))
      assert(s.client:delete(POD, "default", "a", { grace_period_seconds = 0 }))
      eventually(function() return endpoints(s, "kubia") end, { "", "", 0 }, "all deleted")
      eventually(function() return slices(s, "kubia") end, { "", 1 }, "placeholder slice")
    end)
  end)

  it("resolves a named targetPort and groups pods that share a port set", function()
    with_controller(function(s)
      make_pod(s, "a", 31001, true)
      make_pod(s, "b", 31001, true) -- same host port: same port set
      make_pod(s, "c", 31005, true)
      make_pod(s, "unpublished", nil, true)
      service(s, "named", "http")
      eventually(function() return endpoints(s, "named") end, { "a:31001,b:31001,c:31005", "", 2 }, "named port")
      eventually(function() return slices(s, "named") end, { "a:31001=true,b:31001=true,c:31005=true", 2 }, "slices")
      -- a name no container declares: no endpoints
      service(s, "nameless", "nope")
      eventually(function() return endpoints(s, "nameless") end, { "", "", 0 }, "unknown port name")
    end)
  end)

  it("removes the Endpoints and slices of a deleted Service", function()
    with_controller(function(s)
      make_pod(s, "a", 31001, true)
      service(s, "kubia")
      eventually(function() return endpoints(s, "kubia") end, { "a:31001", "" }, "endpoints")
      assert(s.client:delete(SVC, "default", "kubia"))
      eventually(function() return s.client:get(EP, "default", "kubia") == nil end, { true }, "endpoints gone")
      eventually(function() return slices(s, "kubia") end, { "", 0 }, "slices gone")
    end)
  end)
end)
