-- moonlet.api.protobuf: Kubernetes protobuf request bodies decoded to the
-- shape moonlet.json gives, through the router as kubectl sends them.
--
-- The KUBECTL fixtures are the request bodies kubectl v1.32.4 sent for the
-- commands named, captured from `kubectl -v=9 ...` against a moonlet server
-- (client-go logs a protobuf request body as a hex dump; the hex here is
-- that dump's bytes). The ownerReferences uid in job_from is the CronJob of
-- the server they were captured from.
require("moonlet_core")
local pb = require("moonlet.api.protobuf")
local json = require("moonlet.json")
local stack = require("api_stack")
local kinds = require("moonlet.api.kinds")
local fake = require("fake_client") -- for fake.run only

local function unhex(h) return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end
local function enc(v) return json.encode(v, { sort_keys = true }) end

local KUBECTL = {
  -- kubectl create configmap cm1 --from-literal=a=b --from-literal=c=d --from-file=bin.dat
  -- (bin.dat holds "bin\0\1\255")
  configmap = "6b3873000a0f0a0276311209436f6e6669674d617012380a130a03636d3112001a0022002a0032003800420012060a016112016212060a01631201641a110a0762696e2e646174120662696e0001ff1a002200",
  -- kubectl create namespace ns1
  namespace = "6b3873000a0f0a02763112094e616d657370616365121b0a130a036e733112001a0022002a0032003800420012001a020a001a002200",
  -- kubectl create deployment web --image=idealism/kubia --replicas=2 --port=8080
  deployment = "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412c2010a1f0a0377656212001a0022002a003200380042005a0a0a0361707012037765621290010802120c0a0a0a0361707012037765621a760a1c0a0012001a0022002a003200380042005a0a0a036170701203776562125612380a056b75626961120e696465616c69736d2f6b756269612a00320b0a00100018903f22002a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200",
  -- kubectl create job j1 --image=busybox -- echo hi
  job = "6b3873000a0f0a0862617463682f763112034a6f621284010a120a026a3112001a0022002a00320038004200126432620a100a0012001a0022002a00320038004200124e122b0a026a31120762757379626f781a046563686f1a0268692a0042006a007200800100880100900100a201001a054e65766572320042004a0052005800600068008201008a01009a0100c201001a082000280030003a001a002200",
  -- kubectl create cronjob c1 --image=busybox --schedule="*/5 * * * *" -- date
  cronjob = "6b3873000a130a0862617463682f7631120743726f6e4a6f6212a4010a120a02633112001a0022002a00320038004200128b010a0b2a2f35202a202a202a202a1a002a7a0a120a02633112001a0022002a00320038004200126432620a100a0012001a0022002a00320038004200124e12270a026331120762757379626f781a04646174652a0042006a007200800100880100900100a201001a094f6e4661696c757265320042004a0052005800600068008201008a01009a0100c201001a001a002200",
  -- kubectl create job manual --from=cronjob/ticker
  job_from = "6b3873000a0f0a0862617463682f763112034a6f6212bc020a88010a066d616e75616c12001a0022002a00320038004200622b0a2163726f6e6a6f622e6b756265726e657465732e696f2f696e7374616e746961746512066d616e75616c6a430a0743726f6e4a6f621a067469636b6572222465356363313130652d383863362d343430642d626338322d3361356338336631396663302a0862617463682f7631300112a40132a1010a100a0012001a0022002a00320038004200128c0112440a0174120762757379626f782204646174652a0042006a142f6465762f7465726d696e6174696f6e2d6c6f677206416c77617973800100880100900100a2010446696c651a094f6e4661696c757265201e320c436c7573746572466972737442004a00520058006000680072008201008a01009a011164656661756c742d7363686564756c6572c201001a082000280030003a001a002200",
}

-- What kubectl's JSON for the same commands holds (less the
-- "creationTimestamp": null that Go writes for an unset Time).
local EXPECTED = {
  configmap = [[{"apiVersion":"v1","binaryData":{"bin.dat":"YmluAAH/"},"data":{"a":"b","c":"d"},"kind":"ConfigMap","metadata":{"name":"cm1"}}]],
  namespace = [[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ns1"},"spec":{},"status":{}}]],
  deployment = [[{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels":{"app":"web"},"name":"web"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"strategy":{},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"image":"idealism/kubia","name":"kubia","ports":[{"containerPort":8080}],"resources":{}}]}}},"status":{}}]],
  job = [[{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j1"},"spec":{"template":{"metadata":{},"spec":{"containers":[{"command":["echo","hi"],"image":"busybox","name":"j1","resources":{}}],"restartPolicy":"Never"}}},"status":{}}]],
  cronjob = [[{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"c1"},"spec":{"jobTemplate":{"metadata":{"name":"c1"},"spec":{"template":{"metadata":{},"spec":{"containers":[{"command":["date"],"image":"busybox","name":"c1","resources":{}}],"restartPolicy":"OnFailure"}}}},"schedule":"*/5 * * * *"},"status":{}}]],
  job_from = [[{"apiVersion":"batch/v1","kind":"Job","metadata":{"annotations":{"cronjob.kubernetes.io/instantiate":"manual"},"name":"manual","ownerReferences":[{"apiVersion":"batch/v1","controller":true,"kind":"CronJob","name":"ticker","uid":"e5cc110e-88c6-440d-bc82-3a5c83f19fc0"}]},"spec":{"template":{"metadata":{},"spec":{"containers":[{"args":["date"],"image":"busybox","imagePullPolicy":"Always","name":"t","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],"dnsPolicy":"ClusterFirst","restartPolicy":"OnFailure","schedulerName":"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":30}}},"status":{}}]],
}

-- A small protobuf writer for hand-built cases.
local function varint(n)
  local t = {}
  repeat
    local b = n & 0x7f
    n = n >> 7
    if n ~= 0 then b = b | 0x80 end
    t[#t + 1] = string.char(b)
  until n == 0
  return table.concat(t)
end
local function V(num, n) return varint(num << 3) .. varint(n) end
local function L(num, s) return varint((num << 3) | 2) .. varint(#s) .. s end
local function envelope(api_version, kind, raw)
  return "k8s\0" .. L(1, L(1, api_version) .. L(2, kind)) .. L(2, raw) .. L(3, "") .. L(4, "")
end

describe("protobuf decoding of kubectl's bodies", function()
  for name, hex in pairs(KUBECTL) do
    it("decodes kubectl create " .. name .. " as its JSON would", function()
      local obj, unknown = pb.decode(unhex(hex))
      assert.is_table(obj, unknown)
      assert.are.same({}, unknown)
      assert.are.equal(EXPECTED[name], enc(obj))
    end)
  end

  it("keeps lists marked as JSON arrays", function()
    local obj = assert(pb.decode(unhex(KUBECTL.job)))
    assert.is_true(json.is_array(obj.spec.template.spec.containers))
    assert.is_true(json.is_array(obj.spec.template.spec.containers[1].command))
  end)
end)

describe("protobuf special types", function()
  local function pod_meta(meta) return assert(pb.decode_message(L(1, meta), "core.v1.Pod")).metadata end

  it("maps: labels and annotations, empty values kept, last key wins", function()
    local m = pod_meta(L(11, L(1, "a") .. L(2, "1")) .. L(11, L(1, "e")) .. L(11, L(1, "a") .. L(2, "2"))
      .. L(12, L(1, "note") .. L(2, "x")))
    assert.are.same({ a = "2", e = "" }, m.labels)
    assert.are.same({ note = "x" }, m.annotations)
  end)

  it("map values that are messages: resource quantities", function()
    local c = L(1, "c") .. L(8, L(1, L(1, "cpu") .. L(2, L(1, "500m"))) .. L(2, L(1, "memory") .. L(2, L(1, "64Mi"))))
    local spec = assert(pb.decode_message(L(2, c), "core.v1.PodSpec"))
    assert.are.same({ limits = { cpu = "500m" }, requests = { memory = "64Mi" } }, spec.containers[1].resources)
  end)

  it("bytes as base64 (ConfigMap binaryData), every padding length", function()
    local raw = L(1, "") .. L(3, L(1, "one") .. L(2, "a")) .. L(3, L(1, "two") .. L(2, "ab"))
      .. L(3, L(1, "three") .. L(2, "abc")) .. L(3, L(1, "bin") .. L(2, "\0\255\128\1"))
    local cm = assert(pb.decode_message(raw, "core.v1.ConfigMap"))
    assert.are.same({ one = "YQ==", two = "YWI=", three = "YWJj", bin = "AP+AAQ==" }, cm.binaryData)
  end)

  it("IntOrString: int or string by its type field (and a repeated singular message merges)", function()
    local function ru(x) return L(4, L(2, L(2, x))) end
    local s = assert(pb.decode_message(ru(V(1, 0) .. V(2, 25) .. L(3, "")) .. L(4, L(1, "RollingUpdate")),
      "apps.v1.DeploymentSpec"))
    assert.are.same({ type = "RollingUpdate", rollingUpdate = { maxSurge = 25 } }, s.strategy)
    s = assert(pb.decode_message(ru(V(1, 1) .. V(2, 0) .. L(3, "25%")), "apps.v1.DeploymentSpec"))
    assert.are.equal("25%", s.strategy.rollingUpdate.maxSurge)
    s = assert(pb.decode_message(ru(V(2, -1)), "apps.v1.DeploymentSpec"))
    assert.are.equal(-1, s.strategy.rollingUpdate.maxSurge)
  end)

  it("Time: seconds to RFC 3339; an empty Time is unset", function()
    local m = pod_meta(L(1, "p") .. L(8, V(1, 1700000000) .. V(2, 999)) .. L(9, ""))
    assert.are.equal("2023-11-14T22:13:20Z", m.creationTimestamp)
    assert.is_nil(m.deletionTimestamp)
    assert.are.equal("1969-12-31T23:59:59Z", pod_meta(L(8, V(1, -1))).creationTimestamp)
    assert.are.equal("2000-02-29T00:00:00Z", pod_meta(L(8, V(1, 951782400))).creationTimestamp)
  end)

  it("MicroTime keeps microseconds (Event eventTime)", function()
    local ev = assert(pb.decode_message(L(10, V(1, 1700000000) .. V(2, 123456789)), "core.v1.Event"))
    assert.are.equal("2023-11-14T22:13:20.123456Z", ev.eventTime)
  end)

  it("Duration prints as Go does", function()
    assert.are.equal("0s", pb.duration(0))
    assert.are.equal("1h2m3.5s", pb.duration(3723500000000))
    assert.are.equal("1.5ms", pb.duration(1500000))
    assert.are.equal("2µs", pb.duration(2000))
    assert.are.equal("-90ns", pb.duration(-90))
    assert.are.equal("1m0s", pb.duration(60000000000))
  end)

  it("RawExtension holds JSON (ControllerRevision data)", function()
    local cr = assert(pb.decode_message(L(2, L(1, '{"spec":{"x":[1,2]}}')) .. V(3, 4), "apps.v1.ControllerRevision"))
    assert.are.equal('{"spec":{"x":[1,2]}}', enc(cr.data))
    assert.are.equal(4, cr.revision)
    assert.is_nil((pb.decode_message(L(2, L(1, "{nope")), "apps.v1.ControllerRevision")))
  end)

  it("nested repeated messages with their own lists", function()
    local c1 = L(1, "a") .. L(6, V(3, 80)) .. L(6, V(3, 443) .. L(4, "TCP")) .. L(4, "x") .. L(4, "")
    local spec = assert(pb.decode_message(L(2, c1) .. L(2, L(1, "b")), "core.v1.PodSpec"))
    assert.are.equal(2, #spec.containers)
    assert.are.same({ { containerPort = 80 }, { containerPort = 443, protocol = "TCP" } }, spec.containers[1].ports)
    assert.are.same({ "x", "" }, spec.containers[1].args) -- list items stay, even empty
    assert.are.equal("b", spec.containers[2].name)
  end)

  it("packed repeated scalars are read too", function()
    local sc = assert(pb.decode_message(L(4, varint(1) .. varint(2) .. varint(300)), "core.v1.PodSecurityContext"))
    assert.are.same({ 1, 2, 300 }, sc.supplementalGroups)
  end)

  it("zero values: dropped for Go non-pointers, kept for pointers", function()
    local spec = assert(pb.decode_message(V(1, 0) .. V(5, 0) .. V(7, 0) .. V(9, 0), "apps.v1.DeploymentSpec"))
    assert.are.same({ replicas = 0, progressDeadlineSeconds = 0 }, spec)
    local c = assert(pb.decode_message(L(2, L(1, "") .. L(14, "")), "core.v1.PodSpec")).containers[1]
    assert.are.same({}, c)
    local owner = pod_meta(L(13, V(6, 0) .. V(7, 0))).ownerReferences[1]
    assert.are.same({ controller = false, blockOwnerDeletion = false }, owner)
  end)

  it("negative int32 and large int64", function()
    local m = pod_meta(V(10, -30) .. V(7, 1 << 40))
    assert.are.equal(-30, m.deletionGracePeriodSeconds)
    assert.are.equal(1 << 40, m.generation)
    local p = assert(pb.decode_message(L(6, V(3, -1)), "core.v1.Container"))
    assert.are.equal(-1, p.ports[1].containerPort)
  end)
end)

describe("protobuf malformed input", function()
  local function bad(buf, name, pattern)
    local ok, v, err = pcall(pb.decode_message, buf, name or "core.v1.Pod")
    assert.is_true(ok, v)
    assert.is_nil(v)
    assert.is_string(err)
    if pattern then assert.matches(pattern, err) end
  end

  it("truncated varint", function() bad("\x38\x80\x80", "meta.v1.ObjectMeta", "unexpected EOF") end)
  it("varint longer than 10 bytes", function()
    bad("\x38" .. string.rep("\xff", 10) .. "\x01", "meta.v1.ObjectMeta", "integer overflow")
  end)
  it("length past the end", function() bad(L(1, "x"):sub(1, -2) .. "", "core.v1.Pod", "unexpected EOF") end)
  it("length beyond the buffer by a lot", function() bad("\x0a\xff\xff\xff\xff\x0f", nil, "unexpected EOF") end)
  it("negative length", function() bad("\x0a" .. varint(-5), nil, "negative length") end)
  it("wrong wire type for a known field", function()
    bad(V(1, 5), "core.v1.Pod", "wrong wireType = 0 for field metadata")
    bad(L(7, "x"), "meta.v1.ObjectMeta", "wrong wireType = 2 for field generation")
  end)
  it("field number 0 and group wire types", function()
    bad("\x00\x01", nil, "illegal tag 0")
    bad("\x7b", nil, "illegal wireType 3")
  end)
  it("invalid UTF-8 in a string", function() bad(L(1, "\xff\xfe"), "meta.v1.ObjectMeta", "UTF%-8") end)
  it("non-finite float", function()
    local schema = { messages = { M = { [1] = { n = "x", t = "double" } } } }
    local v, err = pb.decode_message("\x09" .. string.pack("<d", 0 / 0), "M", { schema = schema })
    assert.is_nil(v)
    assert.matches("finite", err)
  end)
  it("nesting deeper than the limit", function()
    local schema = { messages = { R = { [1] = { n = "r", t = "message", m = "R" } } } }
    local buf = ""
    for _ = 1, 80 do buf = L(1, buf) end
    local v, err = pb.decode_message(buf, "R", { schema = schema })
    assert.is_nil(v)
    assert.matches("nesting deeper than 64", err)
    assert.is_table((pb.decode_message(buf, "R", { schema = schema, max_depth = 100 })))
  end)
  it("envelope: magic, kind, encoding", function()
    local v, err = pb.decode('{"kind":"Pod"}')
    assert.is_nil(v)
    assert.matches("does not appear to be a protobuf message", err)
    v, err = pb.decode(envelope("v1", "Secret", ""))
    assert.is_nil(v)
    assert.are.equal('no kind "Secret" is registered for version "v1"', err)
    v, err = pb.decode("k8s\0" .. L(1, L(1, "v1") .. L(2, "Pod")) .. L(3, "gzip"))
    assert.is_nil(v)
    assert.matches("content encoding", err)
    v, err = pb.decode("k8s\0\x0a\x05")
    assert.is_nil(v)
    assert.matches("unexpected EOF", err)
  end)
  it("never raises on mutated kubectl bodies", function()
    math.randomseed(42)
    local seeds = {}
    for _, hex in pairs(KUBECTL) do seeds[#seeds + 1] = unhex(hex) end
    table.sort(seeds)
    for i = 1, 3000 do
      local s = seeds[i % #seeds + 1]
      local p = math.random(5, #s)
      local b = {}
      for j = 1, #s do b[j] = s:sub(j, j) end
      for _ = 1, math.random(1, 4) do b[math.random(5, #s)] = string.char(math.random(0, 255)) end
      if i % 3 == 0 then s = table.concat(b, "", 1, p) else s = table.concat(b) end
      local ok, err = pcall(pb.decode, s)
      assert(ok, err)
    end
  end)
end)

describe("protobuf through the router", function()
  local CT = "application/vnd.kubernetes.protobuf"
  local function post(e, path, body, query)
    local res = e.transport({ method = "POST", path = path .. (query and ("?" .. query) or ""),
      headers = { ["Content-Type"] = CT, Accept = CT .. ",application/json" }, body = body })
    return res.status, json.decode(res.body or "") or res.body, res.headers or {}
  end

  it("creates every kind kubectl's generators send", function()
    fake.run(function()
      local e = stack.new()
      local paths = {
        configmap = "/api/v1/namespaces/default/configmaps", namespace = "/api/v1/namespaces",
        deployment = "/apis/apps/v1/namespaces/default/deployments",
        job = "/apis/batch/v1/namespaces/default/jobs", cronjob = "/apis/batch/v1/namespaces/default/cronjobs",
        job_from = "/apis/batch/v1/namespaces/default/jobs",
      }
      for name, path in pairs(paths) do
        local code, obj, headers = post(e, path, unhex(KUBECTL[name]), "fieldManager=kubectl-create&fieldValidation=Strict")
        assert.are.equal(201, code, name .. ": " .. enc(obj))
        assert.matches("application/json", headers["Content-Type"] or "")
        assert.is_nil(headers["Warning"])
      end
      local d = assert(e.client:get("apps/v1/Deployment", "default", "web"))
      assert.are.equal(2, d.spec.replicas)
      assert.are.equal("idealism/kubia", d.spec.template.spec.containers[1].image)
      assert.are.equal(8080, d.spec.template.spec.containers[1].ports[1].containerPort)
      assert.are.equal(1, d.metadata.generation)
      local cm = assert(e.client:get("v1/ConfigMap", "default", "cm1"))
      assert.are.same({ ["bin.dat"] = "YmluAAH/" }, cm.binaryData)
      local j = assert(e.client:get("batch/v1/Job", "default", "manual"))
      assert.are.equal("ticker", j.metadata.ownerReferences[1].name)
      assert.are.equal("manual", j.metadata.annotations["cronjob.kubernetes.io/instantiate"])
      assert.are.equal(6, j.spec.backoffLimit) -- defaults ran: the field was absent
      local cj = assert(e.client:get("batch/v1/CronJob", "default", "c1"))
      assert.are.equal("*/5 * * * *", cj.spec.schedule)
      assert(e.client:get("v1/Namespace", nil, "ns1"))
    end)
  end)

  it("updates with a protobuf body (PUT)", function()
    fake.run(function()
      local e = stack.new()
      assert.are.equal(201, (post(e, "/api/v1/namespaces/default/configmaps", unhex(KUBECTL.configmap))))
      local cm = assert(e.client:get("v1/ConfigMap", "default", "cm1"))
      local raw = L(1, L(1, "cm1") .. L(3, "default") .. L(6, cm.metadata.resourceVersion)) .. L(2, L(1, "a") .. L(2, "z"))
      local res = e.transport({ method = "PUT", path = "/api/v1/namespaces/default/configmaps/cm1",
        headers = { ["Content-Type"] = CT }, body = envelope("v1", "ConfigMap", raw) })
      assert.are.equal(200, res.status, res.body)
      assert.are.same({ a = "z" }, assert(e.client:get("v1/ConfigMap", "default", "cm1")).data)
    end)
  end)

  it("updates the status subresource with a protobuf body", function()
    fake.run(function()
      local e = stack.new()
      assert.are.equal(201, (post(e, "/api/v1/namespaces", unhex(KUBECTL.namespace))))
      local ns = assert(e.client:get("v1/Namespace", nil, "ns1"))
      -- Namespace{metadata{name, resourceVersion}, status{phase, conditions[{type, status, time}]}}
      local raw = L(1, L(1, "ns1") .. L(6, ns.metadata.resourceVersion))
        .. L(3, L(1, "Active") .. L(2, L(1, "Checked") .. L(2, "True") .. L(4, V(1, 1700000000))))
      local res = e.transport({ method = "PUT", path = "/api/v1/namespaces/ns1/status",
        headers = { ["Content-Type"] = CT }, body = envelope("v1", "Namespace", raw) })
      assert.are.equal(200, res.status, res.body)
      ns = assert(e.client:get("v1/Namespace", nil, "ns1"))
      assert.are.same({ { type = "Checked", status = "True", lastTransitionTime = "2023-11-14T22:13:20Z" } },
        ns.status.conditions)
    end)
  end)

  it("unknown field numbers follow fieldValidation", function()
    fake.run(function()
      local e = stack.new()
      local raw = L(1, L(1, "u1") .. L(99, "?")) .. L(2, L(1, "a") .. L(2, "b")) .. V(77, 1)
      local path = "/api/v1/namespaces/default/configmaps"
      local code, st = post(e, path, envelope("v1", "ConfigMap", raw), "fieldValidation=Strict")
      assert.are.equal(400, code)
      assert.are.equal("BadRequest", st.reason)
      assert.are.equal('strict decoding error: unknown field number 99 in meta.v1.ObjectMeta at "metadata", '
        .. "unknown field number 77 in core.v1.ConfigMap", st.message)
      local headers
      code, st, headers = post(e, path, envelope("v1", "ConfigMap", raw))
      assert.are.equal(201, code, enc(st))
      assert.matches("unknown field number 99 in meta.v1.ObjectMeta", headers["Warning"])
      assert.are.same({ a = "b" }, st.data)
      raw = L(1, L(1, "u2") .. L(99, "?"))
      code, st, headers = post(e, path, envelope("v1", "ConfigMap", raw), "fieldValidation=Ignore")
      assert.are.equal(201, code, enc(st))
      assert.is_nil(headers["Warning"])
    end)
  end)

  it("undecodable bodies are 400, with Kubernetes' wording where it has one", function()
    fake.run(function()
      local e = stack.new()
      local path = "/api/v1/namespaces/default/configmaps"
      local code, st = post(e, path, "k8s\0\x0a\xff")
      assert.are.equal(400, code)
      assert.are.equal("unexpected EOF", st.message)
      code, st = post(e, path, "{}")
      assert.are.equal(400, code)
      assert.matches("does not appear to be a protobuf message", st.message)
      -- A Deployment body on the ConfigMap path: the kind must match.
      code, st = post(e, path, unhex(KUBECTL.deployment))
      assert.are.equal(400, code)
      assert.matches("does not match the expected API version", st.message)
    end)
  end)

  it("kinds without a protobuf message get 415, as CRDs do in Kubernetes", function()
    fake.run(function()
      local e = stack.new()
      kinds.register({ group = "example.com", version = "v1", kind = "Widget", plural = "widgets" }, "test")
      local code, st = post(e, "/apis/example.com/v1/namespaces/default/widgets",
        envelope("example.com/v1", "Widget", L(1, L(1, "w"))))
      assert.are.equal(415, code)
      assert.are.equal("UnsupportedMediaType", st.reason)
      assert.are.equal("the body of the request was in an unknown format - accepted media types include: "
        .. "application/json, application/yaml", st.message)
      code, st = post(e, "/api/v1/namespaces/default/configmaps", "k8s\0", nil)
      assert.are_not.equal(415, code)
      local res = e.transport({ method = "POST", path = "/api/v1/namespaces/default/configmaps",
        headers = { ["Content-Type"] = "application/cbor" }, body = "\xa0" })
      assert.are.equal(415, res.status)
      assert.matches("application/vnd.kubernetes.protobuf", res.body)
    end)
  end)
end)
