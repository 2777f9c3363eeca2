-- The structural check of creates and updates (moonlet.api.schema.check,
-- walked in C by moonlet.core.schema) against the walk it replaced, kept
-- here in Lua as the reference: the same type error (message and which one
-- is first), the same unknown paths and the same dropped members, for the
-- built-in kinds' schemas and thousands of mutated objects.
require("moonlet_core")
local json = require("moonlet.json")
local schema = require("moonlet.api.schema")
local plugins = require("moonlet.plugins")
local kinds = require("moonlet.api.kinds")

-- {====== the Lua walk, as it was
local null = json.null
local function json_type(v)
  local tv = type(v)
  if tv == "string" then return "string" end
  if tv == "number" then return "number" end
  if tv == "boolean" then return "bool" end
  if tv == "table" then return json.is_array(v) and "array" or "object" end
  return "null"
end
local function is_list(v) return type(v) == "table" and (json.is_array(v) or next(v) == nil) end
local function is_object(v) return type(v) == "table" and not json.is_array(v) end
local function json_path(ctx, n)
  local acc = ""
  for i = 1, n do
    local via, k = ctx.via[i], ctx.at[i]
    if via == "l" then acc = acc .. "[" .. (k - 1) .. "]"
    elseif via == "f" and acc == "" then acc = k
    else acc = acc .. "." .. k end
  end
  return acc
end
local function go_path(ctx, n)
  local parts = {}
  for i = 1, n do
    if ctx.via[i] == "f" then parts[#parts + 1] = ctx.at[i] end
  end
  return table.concat(parts, ".")
end
local function walk(v, d, struct, ctx, n)
  local t = d.t
  if v == null or t == "any" then return end
  local ok
  if t == "string" or t == "time" then ok = type(v) == "string"
  elseif t == "integer" then ok = math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v))
  elseif t == "number" then ok = type(v) == "number"
  elseif t == "boolean" then ok = type(v) == "boolean"
  elseif t == "intstr" or t == "quantity" then ok = type(v) == "string" or type(v) == "number"
  elseif t == "map" or t == "struct" then ok = is_object(v)
  elseif t == "list" then ok = is_list(v)
  end
  if not ok then
    if not ctx.type_error then
      ctx.type_error = string.format("json: cannot unmarshal %s into Go struct field %s.%s of type %s",
        json_type(v), struct, go_path(ctx, n), d.go)
    end
    return
  end
  local via, at, m = ctx.via, ctx.at, n + 1
  if t == "map" then
    if d.of.t == "any" then return end
    for k, x in pairs(v) do
      via[m], at[m] = "m", k
      walk(x, d.of, struct, ctx, m)
    end
  elseif t == "list" then
    if d.of.t == "any" then return end
    for i, x in ipairs(v) do
      via[m], at[m] = "l", i
      walk(x, d.of, struct, ctx, m)
    end
  elseif t == "struct" then
    for k, x in pairs(v) do
      local fd = d.fields[k]
      via[m], at[m] = "f", k
      if fd then walk(x, fd, d.name, ctx, m)
      else
        ctx.unknown[#ctx.unknown + 1] = json_path(ctx, m)
        ctx.unknown_at[#ctx.unknown_at + 1] = { v, k }
      end
    end
  end
end
local function reference(obj, s)
  local ctx = { unknown = {}, unknown_at = {}, via = {}, at = {} }
  walk(obj, s, s.name, ctx, 0)
  table.sort(ctx.unknown)
  return ctx
end
-- }======

local function load_kinds()
  local loaded, errors = plugins.load({})
  assert(#errors == 0, table.concat(errors, "\n"))
  kinds.reset()
  for _, name in ipairs(plugins.names(loaded, "kinds")) do
    kinds.register(loaded.kinds[name].value, loaded.kinds[name].display)
  end
end

local POD = [[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"kubia","labels":{"app":"kubia"},
 "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"u","controller":true}]},
 "spec":{"containers":[{"name":"kubia","image":"luksa/kubia","ports":[{"containerPort":8080,"protocol":"TCP"}],
 "env":[{"name":"A","value":"1"},{"name":"B","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}],
 "resources":{"limits":{"memory":"64Mi","cpu":1}},
 "livenessProbe":{"httpGet":{"path":"/","port":8080},"initialDelaySeconds":15}}],
 "restartPolicy":"Always","nodeSelector":{"gpu":"true"}},
 "status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}]]

local DEPLOY = [[{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"kubia"},
 "spec":{"replicas":3,"selector":{"matchLabels":{"app":"kubia"},"matchExpressions":[{"key":"app","operator":"In","values":["kubia"]}]},
 "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":"25%","maxUnavailable":1}},
 "template":{"metadata":{"labels":{"app":"kubia"}},"spec":{"containers":[{"name":"nodejs","image":"luksa/kubia:v1"}]}}}}]]

local JOB = [[{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"batch-job"},
 "spec":{"completions":5,"parallelism":2,"backoffLimit":6,"template":{"metadata":{"labels":{"app":"batch-job"}},
 "spec":{"restartPolicy":"OnFailure","containers":[{"name":"main","image":"luksa/batch-job"}]}}}}]]

local function same(obj, s)
  local want = reference(json.decode(json.encode(obj)), s)
  local got = schema.check(json.decode(json.encode(obj)), s)
  assert.are.same(want.type_error, got.type_error)
  assert.are.same(want.unknown, got.unknown)
  assert.are.equal(#want.unknown_at, #got.unknown_at)
end

-- Replacements that break a field's type, add unknown members, or are
-- harmless (null, an empty table).
local WRONG = { "text", 7, 2.5, true, json.null, {}, { 1, 2 }, { extra = "x" }, 1e300 }

-- Every path to a value inside obj: { {parent, key}, ... }.
local function slots(obj, out)
  out = out or {}
  if type(obj) == "table" then
    for k, v in pairs(obj) do
      out[#out + 1] = { obj, k }
      slots(v, out)
    end
  end
  return out
end

describe("schema.check in C", function()
  setup(load_kinds)

  it("reports what encoding/json reports for a wrong type", function()
    local def = kinds.by_kind("apps/v1", "Deployment")
    local obj = json.decode(DEPLOY)
    obj.spec.replicas = "3"
    assert.are.equal("json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
      schema.check(obj, def.schema).type_error)
    obj = json.decode(POD)
    obj.spec.containers[1].ports[1].containerPort = "8080"
    assert.are.equal("json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32",
      schema.check(obj, kinds.by_kind("v1", "Pod").schema).type_error)
  end)

  it("finds unknown fields with their JSON paths and drops them", function()
    local def = kinds.by_kind("v1", "Pod")
    local obj = json.decode(POD)
    obj.spec.containers[1].bogus = 1
    obj.spec.extra = { a = 1 }
    obj.metadata.labels.fine = "yes"
    local res = schema.check(obj, def.schema)
    assert.is_nil(res.type_error)
    assert.are.same({ "spec.containers[0].bogus", "spec.extra" }, res.unknown)
    schema.drop_unknown(res)
    assert.is_nil(obj.spec.containers[1].bogus)
    assert.is_nil(obj.spec.extra)
    assert.are.equal("yes", obj.metadata.labels.fine)
  end)

  it("agrees with the Lua walk on thousands of mutated objects", function()
    math.randomseed(7)
    local cases = {
      { kinds.by_kind("v1", "Pod"), POD },
      { kinds.by_kind("apps/v1", "Deployment"), DEPLOY },
      { kinds.by_kind("batch/v1", "Job"), JOB },
    }
    for _, c in ipairs(cases) do
      local def, text = c[1], c[2]
      same(json.decode(text), def.schema)
      for _ = 1, 1500 do
        local obj = json.decode(text)
        local all = slots(obj)
        for _ = 1, math.random(1, 3) do
          local at = all[math.random(#all)]
          at[1][at[2]] = WRONG[math.random(#WRONG)]
        end
        if math.random(3) == 1 then
          local at = all[math.random(#all)]
          if type(at[1][at[2]]) == "table" and not json.is_array(at[1][at[2]]) then
            at[1][at[2]]["unknown" .. math.random(9)] = "x"
          end
        end
        same(obj, def.schema)
      end
    end
  end)
end)
