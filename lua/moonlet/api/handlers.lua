-- The REST verbs over the store: get, list, watch, create, update, patch,
-- delete, deletecollection. Each handler gets a request context from the
-- router (kind definition, namespace, name, query, body) and answers
-- through ctx:reply(code, obj_or_json_text) or ctx:fail(status).
local json = require("moonlet.json")
local yaml = require("moonlet.yaml")
local protobuf = require("moonlet.api.protobuf")
local status = require("moonlet.api.status")
local schema = require("moonlet.api.schema")
local strict = require("moonlet.api.strict")
local request = require("moonlet.api.request")
local tables = require("moonlet.api.table")
local views = require("moonlet.core.table")
-- Loaded with the API, not at the first PATCH: compiling them then made
-- that request (and its watchers' events) several ms late.
local patchmod = require("moonlet.api.patch")
local merge_keys = require("moonlet.api.merge_keys")
local validation = require("moonlet.validation")
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")

local M = {}

local param = request.param
local managed_fields = require("moonlet.api.managed_fields")
local fieldset = require("moonlet.api.fieldset")

-- Server-side apply's patch type, and helpers defined with it below.
local APPLY_PATCH = "application/apply-patch+yaml"
local patch_options_invalid, managed_opts

-- Store errors come back as nil, "ENAME: message", "ENAME".
local function strip(msg) return (tostring(msg):gsub("^E%u+: ", "")) end

local function store_failure(ctx, name, msg, code)
  local def = ctx.def
  if code == "ENOTFOUND" then return status.not_found(def, name) end
  if code == "EEXISTS" then return status.already_exists(def, name) end
  if code == "ECONFLICT" then return status.conflict(def, name, strip(msg)) end
  if code == "EGONE" then return status.expired(strip(msg)) end
  if code == "EINVALID" then return status.bad_request(strip(msg)) end
  return status.internal(strip(msg))
end

--- Decodes a request body: JSON, or YAML when the client sent YAML.
local function decode_body(ctx)
  local body = ctx.body or ""
  if type(body) == "table" then
    -- An in-process caller's table: copied, as the write changes it.
    if json.is_array(body) then
      return nil, status.bad_request("couldn't get version/kind; json parse error: not an object")
    end
    return json.copy(body)
  end
  if body == "" then return nil, status.bad_request("the request body is empty") end
  local ct = ctx.headers["content-type"] or "application/json"
  if ct ~= "application/json" and protobuf.is_protobuf(ct) then return protobuf.decode_body(ctx) end
  local v, err, dups
  if ct:find("yaml", 1, true) then
    v, err, dups = yaml.decode(body)
    if dups then ctx.body_dups = dups end
  else
    v, err = json.decode_strict(body)
    -- A name repeated in an object (kept: its last value): admit_shape
    -- finds where from the text, only then.
    if v ~= nil then
      if err then ctx.body_dups = true end
      err = nil
    end
  end
  if v == nil or type(v) ~= "table" or json.is_array(v) then
    return nil, status.bad_request("couldn't get version/kind; json parse error: " .. tostring(err or "not an object"))
  end
  return v
end

local function field_validation(ctx)
  local fv = param(ctx.query, "fieldValidation") or "Warn"
  if fv ~= "Strict" and fv ~= "Warn" and fv ~= "Ignore" then
    return nil, status.bad_request(string.format(
      'fieldValidation parameter unsupported: %s. Valid values are Strict, Warn, Ignore', fv))
  end
  return fv
end

-- What strict decoding reports about the body (moonlet.api.strict): the
-- unknown paths and the duplicates the decoders flagged (ctx.body_dups:
-- true for JSON, go-yaml's lines for YAML; absent on a clean body, so
-- that check is one lookup). `patch_kind`: the body was a patch of that
-- kind.
local function strict_reports(ctx, unknown, patch_kind)
  local body, text = ctx.body, nil
  if type(body) == "string" then
    local ct = ctx.headers and ctx.headers["content-type"] or "application/json"
    if not ct:find("yaml", 1, true) and (ct == "application/json" or not protobuf.is_protobuf(ct)) then
      text = body
    end
  end
  local dups = ctx.body_dups
  return strict.reports({ text = text, dup = dups == true, yaml_dups = dups ~= true and dups or nil,
    patch = patch_kind and (patch_kind == "json" and "json" or "merge"),
    untyped = not ctx.def.omitempty }, unknown)
end

-- apiVersion/kind in the body must name the kind of the path; schema check
-- for wrong types, unknown and duplicate fields per fieldValidation.
-- `patch` (merge and strategic patches): the object is the stored one
-- (admitted already) with the patch laid over it, so a patch that is clean
-- by itself makes a clean object and the whole-object walk is skipped; a
-- patch with anything to report is judged on the whole object, as before.
-- `patch_kind`: the body was a patch ("merge", "strategic", "json").
local function admit_shape(ctx, obj, patch, patch_kind)
  local def = ctx.def
  if obj.apiVersion == nil and obj.kind == nil then
    obj.apiVersion, obj.kind = def.api_version, def.kind
  end
  if obj.kind ~= def.kind or obj.apiVersion ~= def.api_version then
    return status.bad_request(string.format(
      "the API version in the data (%s) does not match the expected API version (%s)",
      tostring(obj.apiVersion), def.api_version))
  end
  local fv, err = field_validation(ctx)
  if not fv then return err end
  local res
  if patch ~= nil then
    res = schema.check(patch, def.schema, def.omitempty)
    -- An empty map or list in the patch, or a null that deletes, may leave
    -- an empty one in the object (a merge of `annotations: {}`, a replaced
    -- `args`, a map's last key deleted): the whole walk finds it there.
    if res.type_error or #res.unknown > 0 or (def.omitempty and (#res.empty_at > 0 or res.saw_null)) then
      res = nil
    end
  end
  res = res or schema.check(obj, def.schema, def.omitempty)
  if res.type_error then
    return status.bad_request(string.format('%s in version "%s" cannot be handled as a %s: %s',
      def.kind, def.version, def.kind, res.type_error))
  end
  if (#res.unknown > 0 or ctx.body_dups) and fv ~= "Ignore" then
    local reports = strict_reports(ctx, res.unknown, patch_kind)
    if fv == "Strict" and #reports > 0 then return status.bad_request(strict.message(reports)) end
    if fv == "Warn" then strict.warnings(reports, ctx.warnings) end
  end
  if #res.unknown > 0 then schema.drop_unknown(res) end
  if def.omitempty then schema.drop_empty(res) end
  if type(obj.metadata) ~= "table" then obj.metadata = {} end
  return nil
end

local function dry_run(ctx)
  local dr = ctx.query.dryRun
  if ctx.options and ctx.options.dryRun then dr = ctx.options.dryRun end
  if not dr then return false end
  for _, v in ipairs(dr) do
    if v == "All" then return true end
  end
  return false
end

--- For kinds with their own verb handlers (moonlet.api.review): the body
--- decoding and the shape check every create goes through.
M.decode_body = decode_body

--- A JSON body of any shape (a patch, DeleteOptions): decoded text, or a
--- copy of an in-process caller's table. @return value | nil, err
function M.body_value(ctx)
  local body = ctx.body
  if type(body) == "table" then return json.copy(body) end
  return json.decode(body or "")
end
M.admit_shape = admit_shape

--- True when the request asks for ?dryRun=All (or DeleteOptions.dryRun):
--- subresource handlers answer without writing.
M.is_dry_run = dry_run

-- Runs defaults and validation; returns a 422 Status or nil.
local function validate(ctx, obj, old)
  local def = ctx.def
  if def.defaults then def.defaults(obj, old) end
  local errs = validation.errors()
  validation.validate_object_meta(obj.metadata, def.namespaced, def.name_validator, "metadata", errs)
  if old then
    if def.validate_update then def.validate_update(obj, old, errs) end
  end
  -- The store lets a kind check values unique across objects (a Service's
  -- cluster IP and node ports).
  if def.validate then def.validate(obj, errs, old, ctx.store) end
  if #errs > 0 then
    return status.invalid(def, obj.metadata.name or obj.metadata.generateName, errs:list())
  end
end

-- Namespace name -> { rv = its resourceVersion, terminating = bool }:
-- every namespaced create reads its namespace, and decoding it each time
-- cost about a twentieth of a create (copying its text out, 1.5%).
-- The resourceVersion is the key: any write to the namespace, and its
-- deletion and re-creation, changes it.
local ns_seen = setmetatable({}, { __mode = "k" })

local function namespace_terminating(st, name)
  local rv = st:object_version("namespaces", "", name)
  local per_store = ns_seen[st]
  if not per_store then
    per_store = {}
    ns_seen[st] = per_store
  end
  if not rv then
    per_store[name] = nil
    return nil
  end
  local seen = per_store[name]
  if not seen or seen.rv ~= rv then
    local ns = json.decode(assert(st:get_json("namespaces", "", name)))
    seen = { rv = rv, terminating = ns.metadata.deletionTimestamp ~= nil
      or (ns.status ~= nil and ns.status.phase == "Terminating") }
    per_store[name] = seen
  end
  return seen.terminating
end

local function namespace_admits(ctx)
  if not ctx.def.namespaced then return nil end
  local terminating = namespace_terminating(ctx.store, ctx.namespace)
  if terminating == nil then
    return status.not_found(require("moonlet.api.kinds").by_kind("v1/Namespace"), ctx.namespace)
  end
  if terminating then
    local def = ctx.def
    return status.forbidden(string.format(
      '%s "%s" is forbidden: unable to create new content in namespace %s because it is being terminated',
      def.qualified, ctx.name or "", ctx.namespace), def, ctx.name)
  end
end

local function store_opts(def, sub)
  return { generation = def.generation == true, status_subresource = def.status_subresource == true,
    subresource = sub }
end

-- {======================================================= reads

-- A kind served in more than one version from one stored form (the
-- HorizontalPodAutoscaler's autoscaling/v1 beside v2) has
-- def.from_stored: what leaves through that version is converted (JSON
-- text or a table in, the same out). Table views print the stored form.
local function outward(def, v)
  local conv = def.from_stored
  if not conv then return v end
  if type(v) ~= "string" then return conv(v) end
  local obj = json.decode(v)
  if json.is_array(obj) then
    for i, o in ipairs(obj) do obj[i] = conv(o) end
    return json.encode(json.array(obj))
  end
  return json.encode(conv(obj))
end
M.outward = outward

function M.get(ctx)
  local def = ctx.def
  local text = ctx.store:get_json(def.store_resource, ctx.namespace or "", ctx.name)
  if not text then return ctx:fail(status.not_found(def, ctx.name)) end
  if ctx.table then
    local t, terr = tables.text(def, "[" .. text .. "]", { include = param(ctx.query, "includeObject") })
    if not t then return ctx:fail(status.internal(terr)) end
    return ctx:reply(200, t)
  end
  if ctx.partial then return ctx:reply(200, assert(views.partial(text))) end
  return ctx:reply(200, outward(def, text))
end

-- Field selectors name fields a kind supports; aliases map to JSON paths
-- (Events' `source` is source.component).
local function field_selector(ctx)
  local fs = param(ctx.query, "fieldSelector")
  if not fs or fs == "" then return nil end
  local paths = ctx.def.field_paths
  local out = {}
  for term in (fs .. ","):gmatch("(.-[^\\]),") do
    local key, op, val = term:match("^%s*([^!=]+)%s*([!=]=?)%s*(.*)$")
    if not key then return nil, status.bad_request("invalid selector: '" .. fs .. "'; can't understand '" .. term .. "'") end
    key = key:gsub("%s+$", "")
    local path = paths[key]
    if not path then return nil, status.bad_request(string.format('field label not supported: %s', key)) end
    out[#out + 1] = path .. op .. val
  end
  return table.concat(out, ",")
end

local function list_opts(ctx)
  local fs, err = field_selector(ctx)
  if err then return nil, err end
  local limit = tonumber(param(ctx.query, "limit") or "")
  return {
    namespace = ctx.namespace, label_selector = param(ctx.query, "labelSelector"),
    field_selector = fs, limit = limit and limit > 0 and math.floor(limit) or nil,
    continue = param(ctx.query, "continue"), resource_version = param(ctx.query, "resourceVersion"),
  }
end

function M.list(ctx)
  local def = ctx.def
  local opts, err = list_opts(ctx)
  if not opts then return ctx:fail(err) end
  local items, rv, cont = ctx.store:list_json(def.store_resource, opts)
  if not items then return ctx:fail(store_failure(ctx, "", rv, cont)) end
  if ctx.table then
    -- Rows straight from the stored texts (moonlet.api.table).
    local t, terr = tables.text(def, items, { include = param(ctx.query, "includeObject"),
      resource_version = rv, continue = cont })
    if not t then return ctx:fail(status.internal(terr)) end
    return ctx:reply(200, t)
  end
  local meta = { resourceVersion = rv, continue = cont }
  local kind, api_version = def.kind .. "List", def.api_version
  if ctx.partial then
    -- client-go's metadata client: each item's metadata only.
    kind, api_version, items = "PartialObjectMetadataList", "meta.k8s.io/v1", assert(views.partial_items(items))
  else
    items = outward(def, items)
  end
  local text = string.format('{"kind":"%s","apiVersion":"%s","metadata":%s,"items":%s}',
    kind, api_version, json.encode(meta), items)
  return ctx:reply(200, text)
end

-- Watch: newline-delimited JSON events on a chunked response until the
-- client goes away, timeoutSeconds passes, or the server stops.
function M.watch(ctx)
  local def = ctx.def
  local opts, err = list_opts(ctx)
  if not opts then return ctx:fail(err) end
  -- The in-process garbage collector watches only what ownership needs
  -- (ml_store_watch_opts_t.owner_events): a plain object's creation costs
  -- it nothing. Not part of the public API: ignored from sockets.
  if ctx.transport == "inproc" and ctx.headers["x-moonlet-owner-events"] == "true" then
    opts.owner_events = true
  end
  if ctx.name then opts.field_selector = "metadata.name=" .. ctx.name .. (opts.field_selector and ("," .. opts.field_selector) or "") end
  local id = loop.next_id()
  local out = ctx:stream(200, { ["Content-Type"] = "application/json" })
  -- Plain watches over HTTP are piped in C: each event is framed around the
  -- stored text and written to every stream with no Lua per watcher. Table
  -- and metadata-only watches (and the in-process transport) print each
  -- event here.
  local piped = not ctx.table and not ctx.partial and out and out.pipe_watch ~= nil and not def.from_stored
  local w, msg, code
  if piped then w, msg, code = out:pipe_watch(ctx.store, id, def.store_resource, opts)
  else w, msg, code = ctx.store:watch(id, def.store_resource, opts) end
  if not w then
    local st = code == "EGONE" and status.expired(strip(msg)) or store_failure(ctx, "", msg, code)
    out:write('{"type":"ERROR","object":' .. json.encode(st) .. '}\n')
    return out:finish()
  end
  local done = false
  local function stop()
    if done then return end
    done = true
    sched.wake(id, nil)
  end
  ctx:on_close(stop)
  M.active_watches[id] = stop
  local timeout = tonumber(param(ctx.query, "timeoutSeconds") or "")
  local timer = timeout and timeout > 0 and loop.timer(timeout * 1000, stop)
  local include = param(ctx.query, "includeObject")
  local first = true
  -- A piped watch hears only its end: stop() or ("closed") from the core.
  if piped and not done then sched.wait(id) end
  while not done and not piped do
    local typ, text = sched.wait(id)
    if typ == nil or done then break end
    local obj_text = text
    if ctx.table then
      obj_text = assert(tables.text(def, "[" .. text .. "]", { include = include, no_headers = not first,
        rv_from_object = true }))
      first = false
    elseif ctx.partial then
      obj_text = assert(views.partial(text))
    else
      obj_text = outward(def, text)
    end
    out:write('{"type":"' .. typ .. '","object":' .. obj_text .. '}\n')
  end
  M.active_watches[id] = nil
  if timer then timer.stop() end
  w:close()
  sched.forget(id)
  out:finish()
end
M.active_watches = {}

--- Ends every open watch (server shutdown).
function M.stop_watches()
  local stops = {}
  for _, stop in pairs(M.active_watches) do stops[#stops + 1] = stop end
  for _, stop in ipairs(stops) do stop() end
end

-- }=======================================================

-- {======================================================= writes

-- Kubernetes' name generator: the prefix (cut to 58 characters) and five
-- characters from an alphabet without vowels or look-alikes.
local ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
local seeded = false

function M.generate_name(prefix)
  if not seeded then
    local hex = require("moonlet.core.sys").random_hex(8)
    math.randomseed(tonumber(hex:sub(1, 8), 16), tonumber(hex:sub(9, 16), 16))
    seeded = true
  end
  local out = {}
  for i = 1, 5 do
    local k = math.random(#ALPHABET)
    out[i] = ALPHABET:sub(k, k)
  end
  return prefix:sub(1, 58) .. table.concat(out)
end

local create_object

function M.create(ctx)
  if ctx.name then return ctx:fail(status.method_not_allowed()) end
  local obj, err = decode_body(ctx)
  if not obj then return ctx:fail(err) end
  err = admit_shape(ctx, obj)
  if err then return ctx:fail(err) end
  return create_object(ctx, obj)
end

-- The create of an admitted object `obj` (a POST's body, or what a
-- server-side apply makes when nothing is there yet).
create_object = function(ctx, obj)
  local def = ctx.def
  local err
  local meta = obj.metadata
  if def.namespaced then
    if meta.namespace and meta.namespace ~= "" and meta.namespace ~= ctx.namespace then
      return ctx:fail(status.bad_request("the namespace of the provided object does not match the namespace sent on the request"))
    end
    meta.namespace = ctx.namespace
  else
    meta.namespace = nil
  end
  -- Fields the server owns are never taken from a create.
  meta.uid, meta.resourceVersion, meta.creationTimestamp, meta.deletionTimestamp = nil, nil, nil, nil
  meta.deletionGracePeriodSeconds, meta.generation, meta.selfLink = nil, nil, nil
  if (meta.name == nil or meta.name == "") and (meta.generateName == nil or meta.generateName == "") then
    local e = validation.required("metadata.name", "name or generateName is required")
    return ctx:fail(status.invalid(def, "", { e }))
  end
  -- As the API server does, the name is generated before validation.
  if (meta.name == nil or meta.name == "") and type(meta.generateName) == "string" then
    meta.name = M.generate_name(meta.generateName)
  end
  err = namespace_admits(ctx)
  if err then return ctx:fail(err) end
  if def.prepare_create then def.prepare_create(obj) end
  err = validate(ctx, obj, nil)
  if err then return ctx:fail(err) end
  if dry_run(ctx) then return ctx:reply(201, outward(def, obj)) end
  if def.aggregate then
    -- Kinds like Event fold a repeat into the stored object.
    local existing = def.aggregate(obj, ctx.store)
    if existing then
      local res, msg, code = ctx.store:update(def.store_resource, existing, store_opts(def))
      if not res then return ctx:fail(store_failure(ctx, existing.metadata.name, msg, code)) end
      return ctx:reply(201, res)
    end
  end
  local opts = store_opts(def)
  -- The stored object's own JSON text goes back to the client: no second
  -- conversion through Lua tables on the hot path. on_created sees the
  -- object as admitted.
  opts.json = true
  -- Kinds whose create needs the uid (a Job's generated selector) get it
  -- here, after validation, as the apiserver fills system metadata before
  -- its strategy generates the selector: one write instead of two.
  if def.prepare_create_uid then
    meta.uid = ctx.store:new_uid()
    def.prepare_create_uid(obj)
    opts.keep_uid = true
  end
  local res, msg, code = ctx.store:create(def.store_resource, meta.namespace or "", obj, opts)
  if not res then return ctx:fail(store_failure(ctx, meta.name, msg, code)) end
  if def.on_created then def.on_created(obj) end
  return ctx:reply(201, outward(def, res))
end

-- Shared by PUT and PATCH: `obj` is the full new object.
local function write_update(ctx, obj, old)
  local def = ctx.def
  local meta = obj.metadata
  if meta.name ~= ctx.name then
    return ctx:fail(status.bad_request(string.format(
      "the name of the object (%s) does not match the name on the URL (%s)", tostring(meta.name), ctx.name)))
  end
  if def.namespaced then
    if meta.namespace and meta.namespace ~= "" and meta.namespace ~= ctx.namespace then
      return ctx:fail(status.bad_request("the namespace of the provided object does not match the namespace sent on the request"))
    end
    meta.namespace = ctx.namespace
  end
  local sub = ctx.subresource
  if sub == "status" then
    if not def.status_subresource then return ctx:fail(status.not_found(def, ctx.name)) end
  elseif sub then
    return ctx:fail(status.not_found(def, ctx.name))
  end
  if sub ~= "status" and def.prepare_update then def.prepare_update(obj, old) end
  -- rest.BeforeUpdate: the stored uid when the body gives none.
  if obj.metadata.uid == nil or obj.metadata.uid == "" then obj.metadata.uid = old.metadata.uid end
  if sub == "status" then
    -- The status strategies' PrepareForUpdate: everything but status and
    -- metadata comes from the stored object, so a body of status alone
    -- validates (and nothing else could change anyway).
    for k in pairs(obj) do
      if k ~= "status" and k ~= "metadata" and k ~= "apiVersion" and k ~= "kind" then obj[k] = nil end
    end
    -- `old` is this request's own decoded copy: its tables can be shared.
    for k, v in pairs(old) do
      if k ~= "status" and k ~= "metadata" and k ~= "apiVersion" and k ~= "kind" then obj[k] = v end
    end
  end
  local err = validate(ctx, obj, old)
  if err then return ctx:fail(err) end
  -- Field ownership of objects somebody applied (an apply records its own).
  if not ctx.applied then M.track_fields(ctx, old, obj) end
  if dry_run(ctx) then return ctx:reply(200, outward(def, obj)) end
  local opts = store_opts(def, sub)
  opts.json = true
  -- A status write takes only status from the body (and the name, the
  -- version and uid preconditions from metadata): the rest need not be
  -- converted.
  local payload = obj
  if sub == "status" then
    local m = obj.metadata
    if m.managedFields ~= nil or old.metadata.managedFields ~= nil then
      -- A tracked object's status write also records who wrote it: the
      -- whole object goes, its metadata as stored but for managedFields
      -- (the store's status write keeps all stored metadata).
      local meta = {}
      for k, v in pairs(old.metadata) do meta[k] = v end
      meta.managedFields, meta.resourceVersion = m.managedFields, m.resourceVersion
      if m.uid ~= nil then meta.uid = m.uid end
      payload = {}
      for k, v in pairs(obj) do payload[k] = v end
      payload.metadata = meta
      opts.subresource, opts.status_subresource = nil, false
    else
      payload = { metadata = { name = m.name, namespace = m.namespace,
        resourceVersion = m.resourceVersion, uid = m.uid }, status = obj.status }
    end
  end
  local res, msg, code = ctx.store:update(def.store_resource, payload, opts)
  if not res then return ctx:fail(store_failure(ctx, ctx.name, msg, code)) end
  return ctx:reply(200, outward(def, res))
end

function M.update(ctx)
  local def = ctx.def
  local obj, err = decode_body(ctx)
  if not obj then return ctx:fail(err) end
  err = admit_shape(ctx, obj)
  if err then return ctx:fail(err) end
  local old = ctx.store:get(def.store_resource, ctx.namespace or "", ctx.name)
  if not old then return ctx:fail(status.not_found(def, ctx.name)) end
  return write_update(ctx, obj, old)
end

local PATCH_TYPES = {
  ["application/merge-patch+json"] = "merge",
  ["application/json-patch+json"] = "json",
  ["application/strategic-merge-patch+json"] = "strategic",
}

-- A merge patch of the status subresource: write_update keeps only status,
-- metadata, apiVersion and kind of the result and takes the rest from
-- `old` (this request's own copy), so only those are merged into fresh
-- tables; the rest is shared. A deep copy of the whole stored object (a pod's spec) per status
-- write was most of the patch's own work.
local function merge_status(old, p)
  local new = {}
  for k, v in pairs(old) do new[k] = v end
  for _, k in ipairs({ "status", "metadata", "apiVersion", "kind" }) do
    local pv = p[k]
    if pv == json.null then new[k] = nil
    elseif pv ~= nil then new[k] = patchmod.merge(old[k], pv)
    elseif old[k] ~= nil then new[k] = json.copy(old[k]) end
  end
  return new
end

local apply_patch

function M.patch(ctx)
  local def = ctx.def
  local ct = (ctx.headers["content-type"] or ""):match("^[^;%s]+") or ""
  if ct == APPLY_PATCH then return apply_patch(ctx) end
  if param(ctx.query, "force") ~= nil then
    return ctx:fail(patch_options_invalid("force", "FieldValueForbidden",
      "Forbidden: may not be specified for non-apply patch"))
  end
  local kind = PATCH_TYPES[ct]
  if not kind or (kind == "strategic" and not merge_keys.supports_strategic(def.group, def.kind)) then
    return ctx:fail(status.unsupported_media_type(
      "application/json-patch+json, application/merge-patch+json"
      .. (merge_keys.supports_strategic(def.group, def.kind) and ", application/strategic-merge-patch+json" or "")
      .. ", " .. APPLY_PATCH))
  end
  -- A merge patch is only read (merged into fresh tables, never kept): an
  -- in-process caller's table serves as it is (a copy per status write
  -- was 2% of a Job burst's server CPU).
  local p, perr
  if type(ctx.body) == "string" then
    -- Read as kube-apiserver reads a patch: a repeated name is reported
    -- (fieldValidation), the last value applied.
    local dup
    p, dup = json.decode_strict(ctx.body)
    if p == nil then perr = dup elseif dup then ctx.body_dups = true end
  elseif kind == "merge" then p = ctx.body
  else p, perr = M.body_value(ctx) end
  if p == nil then return ctx:fail(status.bad_request("error decoding patch: " .. tostring(perr))) end
  local old = ctx.store:get(def.store_resource, ctx.namespace or "", ctx.name)
  if not old then return ctx:fail(status.not_found(def, ctx.name)) end
  -- A patch applies to the object as the request's version shows it.
  if def.from_stored then old = def.from_stored(old) end
  if p == json.null and kind ~= "json" then
    return ctx:fail(status.bad_request("Invalid JSON Patch"))
  end
  local new, err, code
  if kind == "merge" and ctx.subresource == "status" and type(p) == "table" and not json.is_array(p) then
    new = merge_status(old, p)
  elseif kind == "merge" then new = patchmod.merge(old, p)
  elseif kind == "json" then new, err, code = patchmod.json(old, p)
  else new, err, code = patchmod.strategic(old, p, merge_keys.for_kind(def.group, def.kind)) end
  if not new then
    if code == 400 then return ctx:fail(status.bad_request(tostring(err))) end
    if code == 413 then return ctx:fail(status.new(413, "RequestEntityTooLarge", tostring(err))) end
    if code == 500 then return ctx:fail(status.internal(err)) end
    return ctx:fail(status.new(422, "Invalid", tostring(err)))
  end
  if type(new) ~= "table" or json.is_array(new) then
    return ctx:fail(status.bad_request("the patch did not produce an object"))
  end
  local clean_base = (kind == "merge" or kind == "strategic") and type(p) == "table" and not json.is_array(p)
  local serr = admit_shape(ctx, new, clean_base and p or nil, kind)
  if serr then return ctx:fail(serr) end
  -- A patch applies to the object as read; only an explicit resourceVersion
  -- in the patch makes it conditional.
  local prv = type(p) == "table" and type(p.metadata) == "table" and p.metadata.resourceVersion
  if not prv then new.metadata.resourceVersion = old.metadata.resourceVersion end
  return write_update(ctx, new, old)
end

-- {====== server-side apply

-- PatchOptions the apply cannot take (ValidatePatchOptions): 422 on the
-- options, not on the object.
patch_options_invalid = function(field, reason, message)
  return { kind = "Status", apiVersion = "v1", metadata = {}, status = "Failure",
    message = string.format('PatchOptions.meta.k8s.io "" is invalid: %s: %s', field, message),
    reason = "Invalid", details = { group = "meta.k8s.io", kind = "PatchOptions",
      causes = { { reason = reason, message = message, field = field } } }, code = 422 }
end

--- Records a non-apply write of `new` over `old` in the field ownership of
--- an object somebody applied (subresource handlers call it too); nothing
--- for objects nobody applied.
function M.track_fields(ctx, old, new)
  if new.metadata.managedFields == nil and old.metadata.managedFields == nil then return end
  managed_fields.track_update(old, new, managed_opts(ctx,
    managed_fields.manager_of(param(ctx.query, "fieldManager"), ctx.headers["user-agent"])))
end

managed_opts = function(ctx, manager)
  local def = ctx.def
  return { manager = manager, api_version = def.api_version,
    semantics = fieldset.semantics(def.group, def.kind), merge_keys = merge_keys.for_kind(def.group, def.kind),
    subresource = ctx.subresource, status_apart = def.status_subresource == true }
end

-- PATCH with application/apply-patch+yaml: the body is the manager's whole
-- intent for the fields it names (moonlet.api.managed_fields); the object
-- is made when there is none yet (201), as the apiserver's apply does.
apply_patch = function(ctx)
  local def = ctx.def
  local manager = param(ctx.query, "fieldManager")
  if manager == nil or manager == "" then
    return ctx:fail(patch_options_invalid("fieldManager", "FieldValueRequired",
      "Required value: is required for apply patch"))
  end
  if #manager > 128 then
    return ctx:fail(patch_options_invalid("fieldManager", "FieldValueTooLong",
      "Too long: may not be more than 128 bytes"))
  end
  local force = param(ctx.query, "force")
  local body, config, derr, dups = ctx.body, nil, nil, nil
  if type(body) == "table" then config = json.copy(body) else config, derr, dups = yaml.decode(body or "") end
  -- Repeated keys are reported per fieldValidation, as for other bodies.
  if dups then ctx.body_dups = dups end
  if type(config) ~= "table" or json.is_array(config) then
    return ctx:fail(status.bad_request("error decoding YAML: " .. tostring(derr or "the applied configuration is not an object")))
  end
  local old = ctx.store:get(def.store_resource, ctx.namespace or "", ctx.name)
  if not old and ctx.subresource then return ctx:fail(status.not_found(def, ctx.name)) end
  local opts = managed_opts(ctx, manager)
  opts.force = force == "true"
  local new, conflicts, merr, mcode = managed_fields.apply(old, config, opts)
  if not new then
    if conflicts then return ctx:fail(managed_fields.conflict_status(conflicts)) end
    if mcode == 400 then return ctx:fail(status.bad_request(tostring(merr))) end
    return ctx:fail(status.new(422, "Invalid", tostring(merr)))
  end
  ctx.applied = true
  local serr = admit_shape(ctx, new)
  if serr then return ctx:fail(serr) end
  if new.metadata.name ~= ctx.name then
    return ctx:fail(status.bad_request(string.format(
      "the name of the object (%s) does not match the name on the URL (%s)", tostring(new.metadata.name), ctx.name)))
  end
  if not old then return create_object(ctx, new) end
  -- As a patch: conditional only on a resourceVersion the config gives.
  local crv = type(config.metadata) == "table" and config.metadata.resourceVersion
  new.metadata.resourceVersion = crv or old.metadata.resourceVersion
  return write_update(ctx, new, old)
end

-- }======

-- DeleteOptions from the body and/or query parameters.
local function delete_options(ctx)
  local o = {}
  if ctx.body and ctx.body ~= "" then
    local v = M.body_value(ctx)
    if type(v) == "table" then o = v end
  end
  local q = ctx.query
  o.propagationPolicy = param(q, "propagationPolicy") or o.propagationPolicy
  local g = param(q, "gracePeriodSeconds")
  if g then o.gracePeriodSeconds = tonumber(g) end
  local orphan = param(q, "orphanDependents")
  if orphan ~= nil then o.orphanDependents = orphan == "true" end
  if q.dryRun then o.dryRun = q.dryRun end
  return o
end

-- Deletes one object with DeleteOptions; returns res, removed | nil, status.
function M.delete_object(ctx, name, opts)
  local def = ctx.def
  local ns = ctx.namespace or ""
  local obj = ctx.store:get(def.store_resource, ns, name)
  if not obj then return nil, status.not_found(def, name) end
  -- Propagation is the garbagecollector controller's work; the server only
  -- puts the finalizer that asks for Orphan or Foreground on the object.
  local gc = require("moonlet.api.gc")
  local bad = gc.validate_options(opts)
  if bad then return nil, bad end
  local fins, warning = gc.deletion_finalizers(def, obj, opts)
  if warning and ctx.warnings then
    local seen = false
    for _, w in ipairs(ctx.warnings) do if w == warning then seen = true end end
    if not seen then ctx.warnings[#ctx.warnings + 1] = warning end
  end
  if ctx.options and ctx.options.dryRun or dry_run(ctx) then return obj, false end
  if def.before_delete then
    local st = def.before_delete(obj, ctx.store, opts)
    if st then return nil, st end
  end
  local pre = opts.preconditions or {}
  local pre_rv = pre.resourceVersion
  if fins and (not pre.uid or pre.uid == obj.metadata.uid)
      and (not pre_rv or pre_rv == obj.metadata.resourceVersion) then
    obj.metadata.finalizers = #fins > 0 and fins or nil
    local upd, msg, code = ctx.store:update(def.store_resource, obj, store_opts(def))
    if not upd then return nil, store_failure(ctx, name, msg, code) end
    -- Taking the last finalizer off a deleted object removes it.
    if msg == true then return upd, true end
    -- The precondition was met by the object this write replaced.
    if pre_rv then pre_rv = upd.metadata.resourceVersion end
  end
  local grace = opts.gracePeriodSeconds
  if def.graceful then grace = def.graceful(obj, grace) end
  local res, removed_or_msg, code = ctx.store:delete(def.store_resource, ns, name,
    { uid = pre.uid, resource_version = pre_rv, grace_seconds = def.graceful and grace or nil })
  if not res then return nil, store_failure(ctx, name, removed_or_msg, code) end
  return res, removed_or_msg
end

function M.delete(ctx)
  local opts = delete_options(ctx)
  ctx.options = opts
  local res, removed = M.delete_object(ctx, ctx.name, opts)
  if not res then return ctx:fail(removed) end
  if removed and ctx.def.delete_returns_status then
    return ctx:reply(200, status.success(ctx.def, ctx.name, res.metadata.uid))
  end
  return ctx:reply(removed and 200 or 202, res)
end

function M.deletecollection(ctx)
  local def = ctx.def
  local opts = delete_options(ctx)
  ctx.options = opts
  local lopts, err = list_opts(ctx)
  if not lopts then return ctx:fail(err) end
  local res, msg, code = ctx.store:list(def.store_resource, lopts)
  if not res then return ctx:fail(store_failure(ctx, "", msg, code)) end
  local items = json.array()
  for _, o in ipairs(res.items) do
    local sub = setmetatable({ namespace = o.metadata.namespace }, { __index = ctx })
    local d = M.delete_object(sub, o.metadata.name, opts)
    if d then items[#items + 1] = d end
  end
  return ctx:reply(200, { kind = def.kind .. "List", apiVersion = def.api_version,
    metadata = { resourceVersion = tostring(ctx.store:resource_version()) }, items = items })
end

-- }=======================================================

return M
