-- Services on the in-process API: cluster IPs from the loopback range and
-- node ports from 30000-32767, taken values and out-of-range values
-- refused with kube-apiserver's messages, values released on delete and
-- kept on update, the defaults, ValidateService messages and kubectl's
-- columns; plus the allocator module on its own (range parsing, wrap-around,
-- a full range).
require("moonlet_core")
local json = require("moonlet.json")
local alloc = require("moonlet.api.service_alloc")
local fake = require("fake_client") -- for fake.run only

local SVC = "v1/Service"

local function svc(name, spec)
  local obj = { apiVersion = "v1", kind = "Service", metadata = { name = name, namespace = "default" },
    spec = { selector = { app = "kubia" }, ports = { { port = 80, targetPort = 8080 } } } }
  for k, v in pairs(spec or {}) do obj.spec[k] = v end
  return obj
end

local function with_stack(fn)
  fake.run(function()
    assert(alloc.configure({ cidr = "127.100.0.0/29", ports = "30000-30002" }))
    local s = require("api_stack").new()
    local ok, err = pcall(fn, s)
    require("moonlet.api.handlers").stop_watches()
    s.store:close()
    assert(alloc.configure({}))
    if not ok then error(err, 0) end
  end)
end

local function message(st) return type(st) == "table" and st.message or tostring(st) end

describe("service allocator", function()
  it("parses ranges and refuses bad ones", function()
    local r = assert(alloc.parse_cidr("127.100.0.0/16"))
    assert.are.equal("127.100.0.1", alloc.int_to_ip(r.first))
    assert.are.equal("127.100.255.254", alloc.int_to_ip(r.last))
    assert.are.equal("127.100.0.0/16", assert(alloc.parse_cidr("127.100.3.4/16")).text)
    assert.is_nil(alloc.parse_cidr("127.100.0.0"))
    assert.is_nil(alloc.parse_cidr("300.1.1.1/16"))
    assert.is_nil(alloc.parse_port_range("32767-30000"))
    assert.are.same({ lo = 30000, hi = 32767, text = "30000-32767" }, alloc.parse_port_range("30000-32767"))
    local ok, err = alloc.configure({ cidr = "nonsense" })
    assert.is_nil(ok)
    assert.matches("invalid CIDR", err)
    assert(alloc.configure({}))
  end)

  it("hands out each value once, wraps around, and says when a range is full", function()
    assert(alloc.configure({ cidr = "127.100.0.0/30", ports = "30000-30001" }))
    local used = {}
    local a = assert(alloc.allocate_ip(used))
    used[a] = true
    local b = assert(alloc.allocate_ip(used))
    used[b] = true
    assert.are.same({ "127.100.0.1", "127.100.0.2" }, { a, b })
    local none, msg = alloc.allocate_ip(used)
    assert.is_nil(none)
    assert.are.equal("failed to allocate a serviceIP: range is full", msg)
    -- A freed value is handed out again.
    used[a] = nil
    assert.are.equal(a, alloc.allocate_ip(used))
    local ports = {}
    assert.are.equal(30000, alloc.allocate_port(ports))
    assert.are.equal(30001, alloc.allocate_port(ports))
    assert.are.same({ nil, "range is full" }, { alloc.allocate_port(ports) })
    assert(alloc.configure({}))
  end)
end)

describe("service kind", function()
  it("allocates a loopback cluster IP and defaults the spec", function()
    with_stack(function(s)
      local got = assert(s.client:create(SVC, svc("a")))
      local spec = got.spec
      assert.are.equal("127.100.0.1", spec.clusterIP)
      assert.are.same({ "127.100.0.1" }, spec.clusterIPs)
      assert.are.equal("ClusterIP", spec.type)
      assert.are.equal("None", spec.sessionAffinity)
      assert.are.equal("TCP", spec.ports[1].protocol)
      assert.are.same({ "IPv4" }, spec.ipFamilies)
      assert.are.equal("SingleStack", spec.ipFamilyPolicy)
      assert.is_nil(spec.ports[1].nodePort)
      -- targetPort defaults to port
      local b = assert(s.client:create(SVC, svc("b", { ports = { { port = 81 } } })))
      assert.are.equal(81, b.spec.ports[1].targetPort)
      assert.are.equal("127.100.0.2", b.spec.clusterIP)
    end)
  end)

  it("refuses a taken or out-of-range cluster IP and reuses one after delete", function()
    with_stack(function(s)
      local a = assert(s.client:create(SVC, svc("a", { clusterIP = "127.100.0.3" })))
      assert.are.equal("127.100.0.3", a.spec.clusterIP)
      local none, st = s.client:create(SVC, svc("b", { clusterIP = "127.100.0.3" }))
      assert.is_nil(none)
      assert.are.equal(422, st.code)
      assert.matches('spec.clusterIPs: Invalid value: .*127.100.0.3.*: failed to allocate IP 127.100.0.3: '
        .. 'provided IP is already allocated', message(st))
      none, st = s.client:create(SVC, svc("c", { clusterIP = "10.96.0.10" }))
      assert.is_nil(none)
      assert.matches("failed to allocate IP 10.96.0.10: the provided IP %(10.96.0.10%) is not in the valid "
        .. "range. The range of valid IPs is 127.100.0.0/29", message(st))
      assert(s.client:delete(SVC, "default", "a"))
      local b = assert(s.client:create(SVC, svc("b", { clusterIP = "127.100.0.3" })))
      assert.are.equal("127.100.0.3", b.spec.clusterIP)
      -- headless: no address at all
      local h = assert(s.client:create(SVC, svc("h", { clusterIP = "None" })))
      assert.are.equal("None", h.spec.clusterIP)
    end)
  end)

  it("allocates node ports, refuses taken and out-of-range ones, frees them on delete", function()
    with_stack(function(s)
      local a = assert(s.client:create(SVC, svc("a", { type = "NodePort",
        ports = { { port = 80, nodePort = 30001 } } })))
      assert.are.equal(30001, a.spec.ports[1].nodePort)
      assert.are.equal("Cluster", a.spec.externalTrafficPolicy)
      local none, st = s.client:create(SVC, svc("b", { type = "NodePort",
        ports = { { port = 80, nodePort = 30001 } } }))
      assert.is_nil(none)
      assert.are.equal(422, st.code)
      assert.matches("spec.ports%[0%].nodePort: Invalid value: 30001: provided port is already allocated", message(st))
      none, st = s.client:create(SVC, svc("c", { type = "NodePort", ports = { { port = 80, nodePort = 80 } } }))
      assert.is_nil(none)
      assert.matches("spec.ports%[0%].nodePort: Invalid value: 80: provided port is not in the valid range. "
        .. "The range of valid ports is 30000%-30002", message(st))
      -- automatic: the free ones, then full
      local d = assert(s.client:create(SVC, svc("d", { type = "NodePort",
        ports = { { name = "x", port = 80 }, { name = "y", port = 81 } } })))
      local got = { d.spec.ports[1].nodePort, d.spec.ports[2].nodePort }
      table.sort(got)
      assert.are.same({ 30000, 30002 }, got)
      none, st = s.client:create(SVC, svc("e", { type = "NodePort" }))
      assert.is_nil(none)
      assert.matches("range is full", message(st))
      assert(s.client:delete(SVC, "default", "a"))
      local b = assert(s.client:create(SVC, svc("b", { type = "NodePort",
        ports = { { port = 80, nodePort = 30001 } } })))
      assert.are.equal(30001, b.spec.ports[1].nodePort)
    end)
  end)

  it("keeps the cluster IP and node ports on update and refuses a new cluster IP", function()
    with_stack(function(s)
      local a = assert(s.client:create(SVC, svc("a", { type = "NodePort" })))
      local ip, np = a.spec.clusterIP, a.spec.ports[1].nodePort
      -- an update that leaves both out (kubectl replace of the manifest)
      local upd = svc("a", { type = "NodePort", selector = { app = "other" } })
      upd.metadata.resourceVersion = a.metadata.resourceVersion
      local b = assert(s.client:update(SVC, upd))
      assert.are.equal(ip, b.spec.clusterIP)
      assert.are.equal(np, b.spec.ports[1].nodePort)
      assert.are.equal("other", b.spec.selector.app)
      local moved = json.copy(b)
      moved.spec.clusterIP = "127.100.0.6"
      moved.spec.clusterIPs = nil
      local none, st = s.client:update(SVC, moved)
      assert.is_nil(none)
      assert.matches("spec.clusterIPs%[0%]: Invalid value: \"127.100.0.6\": may not change once set", message(st))
      -- NodePort -> ClusterIP drops the node port
      local c = json.copy(b)
      c.spec.type = "ClusterIP"
      c.spec.ports[1].nodePort = nil
      c.spec.externalTrafficPolicy = nil
      local got = assert(s.client:update(SVC, c))
      assert.is_nil(got.spec.ports[1].nodePort)
    end)
  end)

  it("validates as kube-apiserver does", function()
    with_stack(function(s)
      local cases = {
        { { ports = json.array() }, "spec.ports: Required value" },
        { { ports = { { port = 0 } } }, "spec.ports%[0%].port: Invalid value: 0: must be between 1 and 65535, inclusive" },
        { { ports = { { port = 80, protocol = "XTP" } } },
          'spec.ports%[0%].protocol: Unsupported value: "XTP": supported values: "SCTP", "TCP", "UDP"' },
        { { ports = { { port = 80 }, { port = 81 } } }, "spec.ports%[1%].name: Required value" },
        { { ports = { { name = "a", port = 80 }, { name = "a", port = 81 } } },
          'spec.ports%[1%].name: Duplicate value: "a"' },
        { { ports = { { port = 80, nodePort = 30000 } } },
          "spec.ports%[0%].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'" },
        { { type = "LoadBalancer" },
          'spec.type: Unsupported value: "LoadBalancer": supported values: "ClusterIP", "NodePort"' },
        { { sessionAffinity = "ClientIP" },
          'spec.sessionAffinity: Unsupported value: "ClientIP": supported values: "None"' },
        { { ports = { { port = 80, targetPort = "Bad_Name" } } }, "spec.ports%[0%].targetPort: Invalid value" },
      }
      for i, c in ipairs(cases) do
        local none, st = s.client:create(SVC, svc("v" .. i, c[1]))
        assert.is_nil(none, "case " .. i)
        assert.are.equal(422, st.code)
        assert.matches(c[2], message(st))
      end
      -- UDP is accepted (the proxy does not relay it)
      assert(s.client:create(SVC, svc("udp", { ports = { { port = 53, protocol = "UDP" } } })))
    end)
  end)

  it("prints kubectl's columns", function()
    with_stack(function(s)
      assert(s.client:create(SVC, svc("np", { type = "NodePort", ports = { { port = 80, nodePort = 30002 } } })))
      local res = s.transport({ method = "GET", path = "/api/v1/namespaces/default/services",
        headers = { Accept = "application/json;as=Table;v=v1;g=meta.k8s.io" } })
      assert.are.equal(200, res.status, res.body)
      local t = json.decode(res.body)
      local names = {}
      for i, c in ipairs(t.columnDefinitions) do names[i] = c.name end
      assert.are.same({ "Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector" }, names)
      local row = t.rows[1].cells
      assert.are.same({ "np", "NodePort", "127.100.0.1", "<none>", "80:30002/TCP" },
        { row[1], row[2], row[3], row[4], row[5] })
      assert.are.equal("app=kubia", row[7])
    end)
  end)
end)
