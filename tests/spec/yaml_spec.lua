-- moonlet.yaml: manifests in (YAML 1.1 as kubectl reads them, several
-- documents per stream) and kubectl-style YAML out. Expected outputs below
-- were produced by kubectl 1.32 (`kubectl label --local -f ... -o yaml`).
require("moonlet_core")
local yaml = require("moonlet.yaml")
local json = require("moonlet.json")

-- From the book chapter in the seed notes (kubia-liveness-probe.yaml), with
-- its comments and indented sequences.
local LIVENESS = [==[
# 遵循 v1 版本的 Kubernetes API
apiVersion: v1
# 资源类型为 Pod
kind: Pod
metadata:
  # pod 的名称
  name: kubia-liveness
spec:
  containers:
    # 创建容器所使用的镜像
    - image: idealism/kubia-unhealthy
      # 容器的名称
      name: kubia
      ports:
        # 应用监听的端口
        - containerPort: 8080
          protocol: TCP
      # 开启一个存活探测器
      livenessProbe:
        # 存活探测器的类型为 HTTP GET
        httpGet:
          # 探测器连接的网络端口
          port: 8080
          # 探测器请求的路径
          path: /
]==]

local CRONJOB = [==[
apiVersion: batch/v1beta1
kind: CronJob
metadata:
  name: batch-job-every-fifteen-minutes
spec:
  # Cron 表达式表明当前任务在每天每小时的 0, 15, 30, 45 分运行
  schedule: "0,15,30,45 * * * *"
  startingDeadlineSeconds: 15
  jobTemplate:
    spec:
      template:
        metadata:
          labels:
            app: periodic-batch-job
        spec:
          restartPolicy: OnFailure
          containers:
            - name: main
              image: idealism/batch-job
]==]

local DEPLOYMENT_JSON = [==[
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{"deployment.kubernetes.io/revision":"1","kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"annotations\":{},\"name\":\"kubia\",\"namespace\":\"default\"},\"spec\":{\"replicas\":3,\"selector\":{\"matchLabels\":{\"app\":\"kubia\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"kubia\"}},\"spec\":{\"containers\":[{\"image\":\"idealism/kubia\",\"name\":\"kubia\",\"ports\":[{\"containerPort\":8080,\"protocol\":\"TCP\"}]}]}}}}\n"},"creationTimestamp":"2020-06-07T10:00:00Z","generation":1,"name":"kubia","namespace":"default","resourceVersion":"12345","uid":"3e1c0b7a-8f0e-4d3c-9b1a-2f6c7d8e9a0b"},"spec":{"progressDeadlineSeconds":600,"replicas":3,"revisionHistoryLimit":10,"selector":{"matchLabels":{"app":"kubia"}},"strategy":{"rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"},"type":"RollingUpdate"},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"kubia"}},"spec":{"containers":[{"image":"idealism/kubia","imagePullPolicy":"Always","livenessProbe":{"failureThreshold":3,"httpGet":{"path":"/","port":8080,"scheme":"HTTP"},"initialDelaySeconds":15,"periodSeconds":10,"successThreshold":1,"timeoutSeconds":1},"name":"kubia","ports":[{"containerPort":8080,"protocol":"TCP"}],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],"dnsPolicy":"ClusterFirst","restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":30}}},"status":{"availableReplicas":3,"conditions":[{"lastTransitionTime":"2020-06-07T10:00:05Z","lastUpdateTime":"2020-06-07T10:00:05Z","message":"Deployment has minimum availability.","reason":"MinimumReplicasAvailable","status":"True","type":"Available"},{"lastTransitionTime":"2020-06-07T10:00:00Z","lastUpdateTime":"2020-06-07T10:00:05Z","message":"ReplicaSet \"kubia-9495d9bf5\" has successfully progressed.","reason":"NewReplicaSetAvailable","status":"True","type":"Progressing"}],"observedGeneration":1,"readyReplicas":3,"replicas":3,"updatedReplicas":3}}]==]

local DEPLOYMENT_YAML = [==[
apiVersion: apps/v1
kind: Deployment
metadata:
  annotations:
    deployment.kubernetes.io/revision: "1"
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"name":"kubia","namespace":"default"},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"kubia"}},"template":{"metadata":{"labels":{"app":"kubia"}},"spec":{"containers":[{"image":"idealism/kubia","name":"kubia","ports":[{"containerPort":8080,"protocol":"TCP"}]}]}}}}
  creationTimestamp: "2020-06-07T10:00:00Z"
  generation: 1
  name: kubia
  namespace: default
  resourceVersion: "12345"
  uid: 3e1c0b7a-8f0e-4d3c-9b1a-2f6c7d8e9a0b
spec:
  progressDeadlineSeconds: 600
  replicas: 3
  revisionHistoryLimit: 10
  selector:
    matchLabels:
      app: kubia
  strategy:
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 25%
    type: RollingUpdate
  template:
    metadata:
      creationTimestamp: null
      labels:
        app: kubia
    spec:
      containers:
      - image: idealism/kubia
        imagePullPolicy: Always
        livenessProbe:
          failureThreshold: 3
          httpGet:
            path: /
            port: 8080
            scheme: HTTP
          initialDelaySeconds: 15
          periodSeconds: 10
          successThreshold: 1
          timeoutSeconds: 1
        name: kubia
        ports:
        - containerPort: 8080
          protocol: TCP
        resources: {}
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
status:
  availableReplicas: 3
  conditions:
  - lastTransitionTime: "2020-06-07T10:00:05Z"
    lastUpdateTime: "2020-06-07T10:00:05Z"
    message: Deployment has minimum availability.
    reason: MinimumReplicasAvailable
    status: "True"
    type: Available
  - lastTransitionTime: "2020-06-07T10:00:00Z"
    lastUpdateTime: "2020-06-07T10:00:05Z"
    message: ReplicaSet "kubia-9495d9bf5" has successfully progressed.
    reason: NewReplicaSetAvailable
    status: "True"
    type: Progressing
  observedGeneration: 1
  readyReplicas: 3
  replicas: 3
  updatedReplicas: 3
]==]

local QUOTING_IN = [==[
apiVersion: v1
kind: Pod
metadata:
  name: kubia
  annotations:
    a: ""
    b: "true"
    c: "123"
    d: "1.5"
    e: "y"
    n: "x"
    g: "2024-01-02T03:04:05Z"
    h: "1:20"
    i: "x: y"
    j: "- x"
    k: "#c"
    l: " lead"
    m: "-c"
    t: "a\tb"
    o: "*"
    p: "0x1F"
    q: "2024-01-02"
    r: "it's"
    long: "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo pppp qqqq"
    ml: "x\ny\n"
    ml2: "x\ny"
    ml3: "x\n\n"
    a10: "1"
    a9: "2"
    a-b: "3"
    ab: "4"
    B: "5"
    _x: "7"
spec:
  containers:
  - name: kubia
    image: luksa/kubia
    args: [1.5, 3.0, 0.1, 1e21, 1234567.5, 0.00001, 1e-7, yes, 08, 0x10]
]==]

local QUOTING_OUT = [==[
apiVersion: v1
kind: Pod
metadata:
  annotations:
    _x: "7"
    B: "5"
    a: ""
    a-b: "3"
    a9: "2"
    a10: "1"
    ab: "4"
    b: "true"
    c: "123"
    d: "1.5"
    e: "y"
    "false": x
    g: "2024-01-02T03:04:05Z"
    h: "1:20"
    i: 'x: y'
    j: '- x'
    k: '#c'
    l: ' lead'
    long: aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo
      pppp qqqq
    m: -c
    ml: |
      x
      y
    ml2: |-
      x
      y
    ml3: |+
      x

    o: '*'
    p: "0x1F"
    q: "2024-01-02"
    r: it's
    t: "a\tb"
  name: kubia
spec:
  containers:
  - args:
    - 1.5
    - 3
    - 0.1
    - 1e+21
    - 1.2345675e+06
    - 1e-05
    - 1e-07
    - true
    - 8
    - 16
    image: luksa/kubia
    name: kubia
]==]

describe("moonlet.yaml", function()
  it("decodes the book's liveness-probe pod", function()
    local pod = assert(yaml.decode(LIVENESS))
    assert.are.equal("v1", pod.apiVersion)
    assert.are.equal("kubia-liveness", pod.metadata.name)
    local c = pod.spec.containers[1]
    assert.is_true(json.is_array(pod.spec.containers))
    assert.are.equal("idealism/kubia-unhealthy", c.image)
    assert.are.equal(8080, c.ports[1].containerPort)
    assert.are.equal("integer", math.type(c.livenessProbe.httpGet.port))
    assert.are.equal("/", c.livenessProbe.httpGet.path)
  end)

  it("decodes the book's CronJob with a quoted schedule", function()
    local cj = assert(yaml.decode(CRONJOB))
    assert.are.equal("0,15,30,45 * * * *", cj.spec.schedule)
    assert.are.equal("OnFailure", cj.spec.jobTemplate.spec.template.spec.restartPolicy)
  end)

  it("resolves scalars like go-yaml v2", function()
    local v = assert(yaml.decode("[yes, off, y, ~, '', 0x1F, 017, 1_000, 1.5, 2.0, '8', 1e400]"))
    assert.are.same(json.array({ true, false, true, json.null, "", 31, 15, 1000, 1.5, 2, "8", "1e400" }), v)
    assert.are.equal("integer", math.type(v[10]))
    assert.are.equal("float", math.type(v[9]))
  end)

  it("decodes every document of a stream separately", function()
    local docs = yaml.decode_all(LIVENESS .. "---\nkind: : bad\n---\n---\n" .. CRONJOB)
    assert.are.equal(3, #docs)
    assert.are.equal("kubia-liveness", docs[1].value.metadata.name)
    assert.are.equal(2, docs[1].line)
    assert.is_nil(docs[2].value)
    assert.are.equal("error converting YAML to JSON: yaml: mapping values are not allowed in this context",
      docs[2].err)
    assert.are.equal(27, docs[2].line)
    assert.are.equal(27, docs[2].err_line)
    assert.are.equal(7, docs[2].err_column)
    assert.are.equal("CronJob", docs[3].value.kind)
  end)

  it("returns the first document, or the error, from decode", function()
    assert.are.equal("Pod", yaml.decode("---\n---\nkind: Pod\n---\nkind: Svc\n").kind)
    local v, err = yaml.decode("a:\n  b: 1\n c: 2\n")
    assert.is_nil(v)
    assert.are.equal("error converting YAML to JSON: yaml: line 2: did not find expected key", err)
    assert.are.equal(json.null, yaml.decode(""))
  end)

  it("accepts JSON, which is YAML", function()
    local v = assert(yaml.decode(DEPLOYMENT_JSON))
    assert.are.equal("Deployment", v.kind)
    assert.are.equal(3, v.spec.replicas)
  end)

  it("keeps a duplicate key's last value, naming it, and refuses alias bombs", function()
    -- kubectl's decoder keeps the last value; the lines are go-yaml's
    -- strict ones, for the API's fieldValidation
    local v, err, dups = yaml.decode("a: 1\nb:\n  c: 1\n  c: 2\na: 2\n")
    assert.is_nil(err)
    assert.are.same({ a = 2, b = { c = 2 } }, v)
    assert.are.same({ 'line 4: key "c" already set in map', 'line 5: key "a" already set in map' }, dups)
    assert.are.equal(1, select("#", yaml.decode("a: 1\n")))
    local docs = yaml.decode_all("a: 1\na: 2\n---\nb: 1\n")
    assert.are.same({ 'line 2: key "a" already set in map' }, docs[1].dups)
    assert.is_nil(docs[2].dups)
    local bomb = { "a: &a [x,x,x,x,x,x,x,x,x,x]" }
    for i = 2, 9 do
      local p, c = string.char(96 + i - 1), string.char(96 + i)
      bomb[i] = c .. ": &" .. c .. " [" .. string.rep("*" .. p, 10, ",") .. "]"
    end
    v, err = yaml.decode(table.concat(bomb, "\n"))
    assert.is_nil(v)
    assert.matches("excessive aliasing", err)
  end)

  it("expands anchors and merge keys", function()
    local v = assert(yaml.decode("base: &b {image: x, name: a}\nc:\n  <<: *b\n  name: b\n"))
    assert.are.same({ image = "x", name = "b" }, v.c)
  end)

  it("encodes a Deployment exactly like kubectl -o yaml", function()
    local v = assert(json.decode(DEPLOYMENT_JSON))
    assert.are.equal(DEPLOYMENT_YAML, yaml.encode(v))
  end)

  it("quotes, folds and blocks strings exactly like kubectl", function()
    local v = assert(yaml.decode(QUOTING_IN))
    assert.are.equal(QUOTING_OUT, yaml.encode(v))
  end)

  it("round-trips its own output", function()
    local v = assert(json.decode(DEPLOYMENT_JSON))
    local again = assert(yaml.decode(yaml.encode(v)))
    assert.are.equal(json.encode(v), json.encode(again))
  end)

  it("encodes Lua values with the json conventions", function()
    assert.are.equal("a: []\nb: {}\nc: null\nd:\n- 1\n- x\n",
      yaml.encode({ a = json.array(), b = {}, c = json.null, d = { 1, "x" } }))
    local text, err = yaml.encode({ f = print })
    assert.is_nil(text)
    assert.are.equal("f: cannot encode a function", err)
    assert.are.equal("a: 1\n---\nb: 2\n", yaml.encode_all({ { a = 1 }, { b = 2 } }))
  end)
end)
