-- moonlet.validation: field error texts and content validators, compared
-- byte for byte with what apimachinery prints.
require("moonlet_core")
local validation = require("moonlet.validation")
local json = require("moonlet.json")

local SUBDOMAIN_MSG = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
  .. "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
  .. "'example.com', regex used for validation is "
  .. "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
local LABEL_MSG = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
  .. "or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
  .. "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
local NAME_PART_MSG = "name part must consist of alphanumeric characters, '-', '_' or '.', and "
  .. "must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
  .. "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"

describe("field errors", function()
  it("prints field.Error.Error() and ErrorBody()", function()
    local e = validation.invalid("metadata.name", "Foo_", SUBDOMAIN_MSG)
    assert.are.equal('metadata.name: Invalid value: "Foo_": ' .. SUBDOMAIN_MSG, e:error())
    assert.are.equal('Invalid value: "Foo_": ' .. SUBDOMAIN_MSG, e:body())
    assert.are.equal(e:error(), tostring(e))
    assert.are.equal("FieldValueInvalid", e.type)
  end)

  it("prints each error type as Kubernetes does", function()
    local cases = {
      { validation.required("metadata.name", "name or generateName is required"),
        "metadata.name: Required value: name or generateName is required" },
      { validation.required("metadata.namespace", ""), "metadata.namespace: Required value" },
      { validation.forbidden("metadata.namespace", "not allowed on this type"),
        "metadata.namespace: Forbidden: not allowed on this type" },
      { validation.not_supported("spec.restartPolicy", "Sometimes", { "Always", "OnFailure", "Never" }),
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
          .. '"OnFailure", "Never"' },
      { validation.duplicate("spec.ports[1].name", "http"),
        'spec.ports[1].name: Duplicate value: "http"' },
      { validation.too_long("metadata.annotations", "", 262144),
        "metadata.annotations: Too long: may not be more than 262144 bytes" },
      { validation.too_many("spec.containers", 5, 3),
        "spec.containers: Too many: 5: must have at most 3 items" },
      { validation.type_invalid("spec.replicas", "three", "must be of type integer"),
        'spec.replicas: Invalid value: "three": must be of type integer' },
      { validation.invalid("spec.replicas", -1, "must be greater than or equal to 0"),
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0" },
      { validation.invalid("spec.paused", true, "x"), "spec.paused: Invalid value: true: x" },
      { validation.invalid("spec.ratio", 1.5, "x"), "spec.ratio: Invalid value: 1.5: x" },
      { validation.invalid("spec.x", json.null, "x"), "spec.x: Invalid value: null: x" },
      { validation.invalid("spec.args", { "a", "<b>" }, "bad"),
        'spec.args: Invalid value: ["a","\\u003cb\\u003e"]: bad' },
      { validation.internal_error("spec", "boom"), "spec: Internal error: boom" },
      { validation.invalid("spec.cmd", "a\tb\"c\1", "x"),
        'spec.cmd: Invalid value: "a\\tb\\"c\\x01": x' },
    }
    for _, c in ipairs(cases) do assert.are.equal(c[2], c[1]:error()) end
  end)

  it("aggregates like utilerrors.NewAggregate", function()
    local errs = validation.errors()
    assert.are.equal(0, #errs)
    assert.are.equal("", errs:aggregate())
    errs:add(validation.required("a", "x"))
    assert.are.equal("a: Required value: x", errs:aggregate())
    errs:add(validation.required("a", "x")) -- duplicate text shows once
    assert.are.equal("a: Required value: x", errs:aggregate())
    errs:add(validation.forbidden("b", "y"))
    assert.are.equal(3, #errs)
    assert.are.equal("[a: Required value: x, b: Forbidden: y]", errs:aggregate())
    assert.are.equal(errs:aggregate(), tostring(errs))
    local list = errs:list()
    assert.are.equal(3, #list)
    assert.is_nil(getmetatable(list))
    assert.are.equal("b: Forbidden: y", list[3]:error())
  end)

  it("wraps plain error tables", function()
    local e = validation.wrap({ type = "FieldValueRequired", field = "x", detail = "d" })
    assert.are.equal("x: Required value: d", e:error())
  end)
end)

describe("content validators", function()
  it("IsDNS1123Subdomain", function()
    assert.are.same({}, validation.is_dns1123_subdomain("example.com"))
    assert.are.same({ SUBDOMAIN_MSG }, validation.is_dns1123_subdomain("Foo_"))
    assert.are.same({ "must be no more than 253 characters", SUBDOMAIN_MSG },
      validation.is_dns1123_subdomain(string.rep("a", 254) .. "-"))
  end)

  it("IsDNS1123Label", function()
    assert.are.same({}, validation.is_dns1123_label("my-name"))
    assert.are.same({ "must not contain dots" }, validation.is_dns1123_label("a.b"))
    assert.are.same({ LABEL_MSG }, validation.is_dns1123_label("A"))
    assert.are.same({ "must be no more than 63 characters" },
      validation.is_dns1123_label(string.rep("a", 64)))
  end)

  it("IsDNS1035Label", function()
    assert.are.same({}, validation.is_dns1035_label("abc-1"))
    assert.are.same({ "a DNS-1035 label must consist of lower case alphanumeric characters or "
      .. "'-', start with an alphabetic character, and end with an alphanumeric character (e.g. "
      .. "'my-name',  or 'abc-123', regex used for validation is "
      .. "'[a-z]([-a-z0-9]*[a-z0-9])?')" }, validation.is_dns1035_label("1abc"))
  end)

  it("IsQualifiedName and IsValidLabelValue", function()
    assert.are.same({}, validation.is_qualified_name("example.com/MyName"))
    assert.are.same({ NAME_PART_MSG }, validation.is_qualified_name("-key"))
    assert.are.same({ "prefix part must be non-empty" }, validation.is_qualified_name("/simple"))
    assert.are.same({ "name part must be non-empty", NAME_PART_MSG },
      validation.is_qualified_name("example.com/"))
    assert.are.same({ "prefix part " .. SUBDOMAIN_MSG }, validation.is_qualified_name("Example.com/abc"))
    assert.are.same({ "a valid label key must consist of alphanumeric characters, '-', '_' or "
      .. "'.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
      .. "'my.name',  or '123-abc', regex used for validation is "
      .. "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
      .. "and '/' (e.g. 'example.com/MyName')" }, validation.is_qualified_name("a/b/c"))
    assert.are.same({}, validation.is_valid_label_value(""))
    assert.are.same({ "must be no more than 63 characters" },
      validation.is_valid_label_value(string.rep("a", 64)))
  end)

  it("ports, C identifiers and env var names", function()
    assert.are.same({}, validation.is_valid_port_num(8080))
    assert.are.same({ "must be between 1 and 65535, inclusive" }, validation.is_valid_port_num(0))
    assert.are.same({}, validation.is_valid_port_name("http"))
    assert.are.same({ "must contain at least one letter (a-z)" }, validation.is_valid_port_name("123"))
    assert.are.same({ "must be no more than 15 characters",
      "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
      "must not contain consecutive hyphens",
      "must not begin or end with a hyphen" }, validation.is_valid_port_name("-Abcdefghij--klmn"))
    assert.are.same({}, validation.is_c_identifier("MY_VAR"))
    assert.are.same({ "a valid C identifier must start with alphabetic character or '_', followed "
      .. "by a string of alphanumeric characters or '_' (e.g. 'my_name',  or 'MY_NAME',  or "
      .. "'MyName', regex used for validation is '[A-Za-z_][A-Za-z0-9_]*')" },
      validation.is_c_identifier("1x"))
    assert.are.same({}, validation.is_env_var_name("my.env-name"))
    assert.are.same({ "a valid environment variable name must consist of alphabetic characters, "
      .. "digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or "
      .. "'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is "
      .. "'[-._a-zA-Z][-._a-zA-Z0-9]*')" }, validation.is_env_var_name("1A"))
    assert.are.same({ "must not start with '..'" }, validation.is_env_var_name("..a"))
  end)
end)

describe("validate_object_meta", function()
  local function texts(errs)
    local out = {}
    for i, e in ipairs(errs) do out[i] = e:error() end
    return out
  end

  it("accepts a good namespaced object", function()
    local errs = validation.validate_object_meta({ name = "web-1", namespace = "default",
      labels = { app = "web" }, annotations = { ["example.com/x"] = "y" },
      finalizers = { "example.com/f" } }, true)
    assert.are.equal(0, #errs)
  end)

  it("reports name, namespace, labels, annotations, owners and finalizers", function()
    local errs = validation.errors()
    local ret = validation.validate_object_meta({
      name = "Foo_", labels = { ["-bad"] = "ok", good = "-bad" },
      annotations = { ["a/b/c"] = "x" },
      ownerReferences = { { apiVersion = "v1", kind = "Event", name = "e", uid = "u" },
        { apiVersion = "", kind = "", name = "", uid = "" } },
      finalizers = { "orphan", "foregroundDeletion" },
    }, true, nil, "metadata", errs)
    assert.are.equal(errs, ret)
    local t = texts(errs)
    assert.are.equal('metadata.name: Invalid value: "Foo_": ' .. SUBDOMAIN_MSG, t[1])
    assert.are.equal("metadata.namespace: Required value", t[2])
    assert.are.equal('metadata.labels: Invalid value: "-bad": ' .. NAME_PART_MSG, t[3])
    assert.is_truthy(t[4]:find('metadata.labels: Invalid value: "-bad": a valid label', 1, true))
    assert.is_truthy(t[5]:find('metadata.annotations: Invalid value: "a/b/c": a valid label key', 1, true))
    assert.is_truthy(t[6]:find('metadata.ownerReferences: Invalid value: {"apiVersion":"v1",'
      .. '"kind":"Event","name":"e","uid":"u"}: /v1, Kind=Event is disallowed from being an owner', 1, true))
    assert.are.equal('metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty', t[7])
    assert.are.equal('metadata.ownerReferences.kind: Invalid value: "": must not be empty', t[8])
    assert.are.equal('metadata.finalizers: Invalid value: ["orphan","foregroundDeletion"]: '
      .. "finalizer orphan and foregroundDeletion cannot be both set", t[#t])
  end)

  it("checks generateName with the trailing dash masked, and cluster scope", function()
    local errs = validation.validate_object_meta({ generateName = "web-", name = "web-x1",
      namespace = "default" }, false)
    assert.are.same({ "metadata.namespace: Forbidden: not allowed on this type" }, texts(errs))
    errs = validation.validate_object_meta({}, false)
    assert.are.same({ "metadata.name: Required value: name or generateName is required" }, texts(errs))
    errs = validation.validate_object_meta({ name = "a.b", namespace = "x" }, true, "dns1123_label")
    assert.are.same({ 'metadata.name: Invalid value: "a.b": must not contain dots' }, texts(errs))
  end)

  it("limits the total annotation size to 256 KiB", function()
    local errs = validation.validate_object_meta({ name = "a",
      annotations = { big = string.rep("x", 256 * 1024) } }, false)
    assert.are.same({ "metadata.annotations: Too long: may not be more than 262144 bytes" }, texts(errs))
  end)

  it("flags immutable fields on update", function()
    local errs = validation.validate_object_meta_update(
      { name = "b", namespace = "ns", uid = "u", resourceVersion = "2" },
      { name = "a", namespace = "ns", uid = "u" })
    assert.are.same({ 'metadata.name: Invalid value: "b": field is immutable' }, texts(errs))
  end)
end)
