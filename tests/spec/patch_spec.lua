-- The patch algorithms of the API (moonlet.api.patch): RFC 7386 and
-- RFC 6902 appendix A examples, strategic merge cases modeled on
-- apimachinery's strategicpatch tests, and what `kubectl apply` sends.
require("moonlet_core")
local json = require("moonlet.json")
local patch = require("moonlet.api.patch")

local function J(text)
  local v, err = json.decode(text)
  assert(v ~= nil, err)
  return v
end

local function canon(v)
  return assert(json.encode(v, { sort_keys = true }))
end

local function same(expected, actual, what)
  assert.are.equal(canon(expected), canon(actual), what)
end

describe("patch.merge (RFC 7386)", function()
  -- Appendix A, in order: target, patch, result.
  local cases = {
    { '{"a":"b"}', '{"a":"c"}', '{"a":"c"}' },
    { '{"a":"b"}', '{"b":"c"}', '{"a":"b","b":"c"}' },
    { '{"a":"b"}', '{"a":null}', '{}' },
    { '{"a":"b","b":"c"}', '{"a":null}', '{"b":"c"}' },
    { '{"a":["b"]}', '{"a":"c"}', '{"a":"c"}' },
    { '{"a":"c"}', '{"a":["b"]}', '{"a":["b"]}' },
    { '{"a":{"b":"c"}}', '{"a":{"b":"d","c":null}}', '{"a":{"b":"d"}}' },
    { '{"a":[{"b":"c"}]}', '{"a":[1]}', '{"a":[1]}' },
    { '["a","b"]', '["c","d"]', '["c","d"]' },
    { '{"a":"b"}', '["c"]', '["c"]' },
    { '{"a":"foo"}', 'null', 'null' },
    { '{"a":"foo"}', '"bar"', '"bar"' },
    { '{"e":null}', '{"a":1}', '{"e":null,"a":1}' },
    { '[1,2]', '{"a":"b","c":null}', '{"a":"b"}' },
    { '{}', '{"a":{"bb":{"ccc":null}}}', '{"a":{"bb":{}}}' },
  }
  for i, c in ipairs(cases) do
    it("appendix A example " .. i, function()
      same(J(c[3]), patch.merge(J(c[1]), J(c[2])))
    end)
  end

  it("keeps empty arrays as arrays and leaves its inputs alone", function()
    local target = J('{"a":{"x":1},"l":[]}')
    local p = J('{"a":{"y":2}}')
    local out = patch.merge(target, p)
    assert.are.equal('{"a":{"x":1,"y":2},"l":[]}', canon(out))
    assert.are.equal('{"a":{"x":1},"l":[]}', canon(target))
    out.a.x = 99
    assert.are.equal(1, target.a.x)
  end)

  it("diff_merge gives a patch that rebuilds the new document", function()
    local old = J('{"metadata":{"labels":{"app":"web","tier":"fe"},' ..
                  '"name":"p"},"spec":{"ports":[80]}}')
    local new = J('{"metadata":{"labels":{"app":"web","env":"prod"},' ..
                  '"name":"p"},"spec":{"ports":[80,443]}}')
    local d = patch.diff_merge(old, new)
    same(J('{"metadata":{"labels":{"env":"prod","tier":null}},' ..
           '"spec":{"ports":[80,443]}}'), d)
    same(new, patch.merge(old, d))
    assert.is_true(patch.is_empty(patch.diff_merge(old, old)))
  end)
end)

describe("patch.json (RFC 6902)", function()
  -- Appendix A (A.13, a document with a duplicate member, cannot be
  -- represented once decoded).
  local ok_cases = {
    { "A.1 adding an object member", '{"foo":"bar"}',
      '[{"op":"add","path":"/baz","value":"qux"}]', '{"baz":"qux","foo":"bar"}' },
    { "A.2 adding an array element", '{"foo":["bar","baz"]}',
      '[{"op":"add","path":"/foo/1","value":"qux"}]', '{"foo":["bar","qux","baz"]}' },
    { "A.3 removing an object member", '{"baz":"qux","foo":"bar"}',
      '[{"op":"remove","path":"/baz"}]', '{"foo":"bar"}' },
    { "A.4 removing an array element", '{"foo":["bar","qux","baz"]}',
      '[{"op":"remove","path":"/foo/1"}]', '{"foo":["bar","baz"]}' },
    { "A.5 replacing a value", '{"baz":"qux","foo":"bar"}',
      '[{"op":"replace","path":"/baz","value":"boo"}]', '{"baz":"boo","foo":"bar"}' },
    { "A.6 moving a value",
      '{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}',
      '[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]',
      '{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}' },
    { "A.7 moving an array element", '{"foo":["all","grass","cows","eat"]}',
      '[{"op":"move","from":"/foo/1","path":"/foo/3"}]',
      '{"foo":["all","cows","eat","grass"]}' },
    { "A.8 testing a value: success", '{"baz":"qux","foo":["a",2,"c"]}',
      '[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]',
      '{"baz":"qux","foo":["a",2,"c"]}' },
    { "A.10 adding a nested member object", '{"foo":"bar"}',
      '[{"op":"add","path":"/child","value":{"grandchild":{}}}]',
      '{"foo":"bar","child":{"grandchild":{}}}' },
    { "A.11 ignoring unrecognized elements", '{"foo":"bar"}',
      '[{"op":"add","path":"/baz","value":"qux","xyz":123}]',
      '{"foo":"bar","baz":"qux"}' },
    { "A.14 ~ escape ordering", '{"/":9,"~1":10}',
      '[{"op":"test","path":"/~01","value":10}]', '{"/":9,"~1":10}' },
    { "A.16 adding an array value", '{"foo":["bar"]}',
      '[{"op":"add","path":"/foo/-","value":["abc","def"]}]',
      '{"foo":["bar",["abc","def"]]}' },
    { "copy, and pointers escaping / and ~", '{"a/b":{"m~n":[1]}}',
      '[{"op":"copy","from":"/a~1b/m~0n","path":"/c"},' ..
      '{"op":"add","path":"/a~1b/m~0n/0","value":0}]',
      '{"a/b":{"m~n":[0,1]},"c":[1]}' },
    { "negative indices count from the end (as Kubernetes allows)",
      '{"l":[1,2,3]}', '[{"op":"remove","path":"/l/-1"}]', '{"l":[1,2]}' },
    { "replace of an absent member sets it (as Kubernetes does)", '{"a":1}',
      '[{"op":"replace","path":"/b","value":2}]', '{"a":1,"b":2}' },
    { "test of an absent member against null passes (as Kubernetes)", '{"a":1}',
      '[{"op":"test","path":"/b","value":null}]', '{"a":1}' },
    { "replace of the whole document", '{"a":1}',
      '[{"op":"replace","path":"","value":{"b":2}}]', '{"b":2}' },
  }
  for _, c in ipairs(ok_cases) do
    it(c[1], function()
      local doc = J(c[2])
      local before = canon(doc)
      local out, err = patch.json(doc, J(c[3]))
      assert.is_nil(err)
      same(J(c[4]), out)
      assert.are.equal(before, canon(doc))
    end)
  end

  -- Failures answer 422 with evanphx/json-patch v4's words, as the
  -- apiserver does.
  local fail_cases = {
    { "A.9 testing a value: error", '{"baz":"qux"}',
      '[{"op":"test","path":"/baz","value":"bar"}]',
      "testing value /baz failed: test failed" },
    { "A.12 adding to a nonexistent target", '{"foo":"bar"}',
      '[{"op":"add","path":"/baz/bat","value":"qux"}]',
      'add operation does not apply: doc is missing path: "/baz/bat": missing value' },
    { "A.15 comparing strings and numbers", '{"/":9,"~1":10}',
      '[{"op":"test","path":"/~01","value":"10"}]',
      "testing value /~01 failed: test failed" },
    { "removing an absent member", '{"a":1}', '[{"op":"remove","path":"/b"}]',
      "error in remove for path: '/b': Unable to remove nonexistent key: b: missing value" },
    { "adding past the end of an array", '{"l":[1]}',
      '[{"op":"add","path":"/l/5","value":2}]',
      "error in add for path: '/l/5': Unable to access invalid index: 5: invalid index referenced" },
    { "a non-numeric array index", '{"l":[1]}',
      '[{"op":"add","path":"/l/x","value":2}]',
      "error in add for path: '/l/x': value was not a proper array index: 'x': " ..
      'strconv.Atoi: parsing "x": invalid syntax' },
    { "replacing a missing array element", '{"l":[1]}',
      '[{"op":"replace","path":"/l/3","value":2}]',
      "replace operation does not apply: doc is missing key: /l/3: missing value" },
    { "replacing under a missing parent", '{}',
      '[{"op":"replace","path":"/a/b","value":2}]',
      "replace operation does not apply: doc is missing path: /a/b: missing value" },
    { "moving from a missing parent", '{}',
      '[{"op":"move","from":"/a/b","path":"/c"}]',
      "move operation does not apply: doc is missing from path: /a/b: missing value" },
    { "moving an absent member", '{"a":{}}',
      '[{"op":"move","from":"/a/b","path":"/c"}]',
      "error in move for path: 'b': Unable to remove nonexistent key: b: missing value" },
    { "an unknown operation", '{}', '[{"op":"frobnicate","path":"/a"}]',
      "Unexpected kind: frobnicate" },
    { "an operation without op", '{}', '[{"path":"/a"}]', "Unexpected kind: unknown" },
    { "add without a path", '{}', '[{"op":"add","value":1}]',
      "add operation failed to decode path: missing value" },
    { "a failing op undoes the earlier ones", '{"a":1}',
      '[{"op":"add","path":"/b","value":2},{"op":"test","path":"/a","value":2}]',
      "testing value /a failed: test failed" },
  }
  for _, c in ipairs(fail_cases) do
    it("fails: " .. c[1], function()
      local doc = J(c[2])
      local out, err, code = patch.json(doc, J(c[3]))
      assert.is_nil(out)
      assert.are.equal(c[4], err)
      assert.are.equal(422, code)
      same(J(c[2]), doc)
    end)
  end

  it("refuses more operations than the apiserver allows (413)", function()
    local ops = json.array({})
    for i = 1, patch.MAX_JSON_PATCH_OPERATIONS + 1 do
      ops[i] = { op = "test", path = "/a", value = 1 }
    end
    local out, err, code = patch.json({ a = 1 }, ops)
    assert.is_nil(out)
    assert.are.equal(413, code)
    assert.are.equal("The allowed maximum operations in a JSON patch is " ..
                     "10000, got 10001", err)
  end)

  it("refuses a patch that is not a list of operations (400)", function()
    local out, err, code = patch.json({ a = 1 }, J('{"op":"add"}'))
    assert.is_nil(out)
    assert.are.equal(400, code)
    assert.matches("cannot unmarshal object", err, 1, true)
  end)
end)

-- The MergeItem type of apimachinery's strategicpatch tests, as a merge-key
-- table: which fields merge and by which key.
local ITEM = {
  mergingList = { key = "name" },
  ["mergingList[].mergingList"] = { key = "name" },
  ["mergingList[].mergingIntList"] = { strategy = "merge" },
  mergingIntList = { strategy = "merge" },
  replacingItem = { strategy = "replace" },
  retainKeysMap = { strategy = "retainKeys" },
  ["retainKeysMap.mergingList"] = { key = "name" },
  ["retainKeysMap.mergingIntList"] = { strategy = "merge" },
  retainKeysMergingList = { key = "name", strategy = "merge,retainKeys" },
}

describe("patch.strategic", function()
  -- original, patch, result
  local cases = {
    { "unique scalars when merging lists", '{"mergingIntList":[1,2]}',
      '{"mergingIntList":[2,3]}', '{"mergingIntList":[1,2,3]}' },
    { "delete map from nested map", '{"simpleMap":{"key1":1,"key2":1}}',
      '{"simpleMap":{"$patch":"delete"}}', '{"simpleMap":{}}' },
    { "delete all items from merging list",
      '{"mergingList":[{"name":"1"},{"name":"2"}]}',
      '{"mergingList":[{"$patch":"replace"}]}', '{"mergingList":[]}' },
    { "merge empty merging lists", '{"mergingList":[]}', '{"mergingList":[]}',
      '{"mergingList":[]}' },
    { "delete all keys from map", '{"name":1,"value":1}', '{"$patch":"replace"}', '{}' },
    { "add key and delete all keys from map", '{"name":1,"value":1}',
      '{"other":"a","$patch":"replace"}', '{"other":"a"}' },
    { "delete all duplicate entries in a merging list",
      '{"mergingList":[{"name":"1"},{"name":"1"},{"name":"2","value":"a"},' ..
      '{"name":"3"},{"name":"3"}]}',
      '{"mergingList":[{"name":"1","$patch":"delete"},{"name":"3","$patch":"delete"}]}',
      '{"mergingList":[{"name":"2","value":"a"}]}' },
    { "retainKeys map can add a field when no directive is present",
      '{"retainKeysMap":{"name":"foo"}}', '{"retainKeysMap":{"value":"bar"}}',
      '{"retainKeysMap":{"name":"foo","value":"bar"}}' },
    { "retainKeys map can delete a field when no directive is present",
      '{"retainKeysMap":{"name":"foo","value":"a"}}', '{"retainKeysMap":{"value":null}}',
      '{"retainKeysMap":{"name":"foo"}}' },
    { "$retainKeys clears the fields it does not list",
      '{"retainKeysMap":{"name":"foo","value":"a","other":"x"}}',
      '{"retainKeysMap":{"$retainKeys":["name","value"],"value":"b"}}',
      '{"retainKeysMap":{"name":"foo","value":"b"}}' },
    { "retainKeys list merges its elements by key",
      '{"retainKeysMergingList":[{"name":"bar"},{"name":"foo","value":"a"}]}',
      '{"retainKeysMergingList":[{"name":"foo","value":"b"}]}',
      '{"retainKeysMergingList":[{"name":"bar"},{"name":"foo","value":"b"}]}' },
    { "preserve the order from the patch in a merging list",
      '{"mergingList":[{"name":"1"},{"name":"2","value":"b"},{"name":"3"}]}',
      '{"mergingList":[{"name":"3","value":"c"},{"name":"1","value":"a"},' ..
      '{"name":"2","other":"x"}]}',
      '{"mergingList":[{"name":"3","value":"c"},{"name":"1","value":"a"},' ..
      '{"name":"2","value":"b","other":"x"}]}' },
    { "preserve the order from the patch in a merging list 2",
      '{"mergingList":[{"name":"1"},{"name":"2","value":"b"},{"name":"3"}]}',
      '{"mergingList":[{"name":"3","value":"c"},{"name":"1","value":"a"}]}',
      '{"mergingList":[{"name":"2","value":"b"},{"name":"3","value":"c"},' ..
      '{"name":"1","value":"a"}]}' },
    { "preserve the order from the patch in a merging int list",
      '{"mergingIntList":[1,2,3]}', '{"mergingIntList":[3,1]}',
      '{"mergingIntList":[2,3,1]}' },
    { "$setElementOrder with an item the list does not have",
      '{"mergingList":[{"name":"1"},{"name":"3"}]}',
      '{"$setElementOrder/mergingList":[{"name":"3"},{"name":"2"},{"name":"1"}],' ..
      '"mergingList":[{"name":"3","value":"3"},{"name":"1","value":"1"}]}',
      '{"mergingList":[{"name":"3","value":"3"},{"name":"1","value":"1"}]}' },
    { "$setElementOrder alone reorders an int list",
      '{"mergingIntList":[1,3]}', '{"$setElementOrder/mergingIntList":[3,2,1]}',
      '{"mergingIntList":[3,1]}' },
    { "$setElementOrder places a new element where the client wants it",
      '{"mergingList":[{"name":"1"},{"name":"2"}]}',
      '{"$setElementOrder/mergingList":[{"name":"1"},{"name":"2"},{"name":"3"}],' ..
      '"mergingList":[{"name":"3","value":"x"}]}',
      '{"mergingList":[{"name":"1"},{"name":"2"},{"name":"3","value":"x"}]}' },
    { "without $setElementOrder a new element goes first, as in Kubernetes",
      '{"mergingList":[{"name":"1"},{"name":"2"}]}',
      '{"mergingList":[{"name":"3"}]}',
      '{"mergingList":[{"name":"3"},{"name":"1"},{"name":"2"}]}' },
    { "$deleteFromPrimitiveList removes values",
      '{"mergingIntList":[1,2,3,3,4]}',
      '{"$setElementOrder/mergingIntList":[1,2],"$deleteFromPrimitiveList/mergingIntList":[3]}',
      '{"mergingIntList":[1,2,4]}' },
    { "lists without a merge key are replaced",
      '{"nonMergingList":[{"name":"1","value":"a"}],"nonMergingIntList":[1,2]}',
      '{"nonMergingList":[{"name":"2"}],"nonMergingIntList":[3]}',
      '{"nonMergingList":[{"name":"2"}],"nonMergingIntList":[3]}' },
    { "nested merging lists merge by their own key",
      '{"mergingList":[{"name":"a","mergingList":[{"name":"x","value":"1"}]}]}',
      '{"mergingList":[{"name":"a","mergingList":[{"name":"y"}]}]}',
      '{"mergingList":[{"name":"a","mergingList":[{"name":"y"},{"name":"x","value":"1"}]}]}' },
    { "a replace-strategy map is replaced whole",
      '{"replacingItem":{"a":1,"b":2}}', '{"replacingItem":{"c":3}}',
      '{"replacingItem":{"c":3}}' },
    { "null deletes a field; nulls in new subtrees are dropped",
      '{"name":"a","value":"b"}', '{"value":null,"simpleMap":{"k":"v","z":null}}',
      '{"name":"a","simpleMap":{"k":"v"}}' },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local target, p = J(c[2]), J(c[3])
      local out, err = patch.strategic(target, p, ITEM)
      assert.is_nil(err)
      same(J(c[4]), out)
      same(J(c[2]), target)
      same(J(c[3]), p)
    end)
  end

  local errors = {
    { "missing merge key", '{"mergingList":[{"name":"1","value":"a"}]}',
      '{"mergingList":[{"value":"b"}]}',
      "map: map[value:b] does not contain declared merge key: name", 500 },
    { "order in patch list and $setElementOrder disagree",
      '{"mergingList":[{"name":"1"},{"name":"3"},{"name":"2"}]}',
      '{"$setElementOrder/mergingList":[{"name":"1"},{"name":"2"},{"name":"3"}],' ..
      '"mergingList":[{"name":"3","value":"3"},{"name":"1","value":"1"}]}',
      "doesn't match", 500 },
    { "bad $deleteFromPrimitiveList key", '{"mergingIntList":[1]}',
      '{"$deleteFromPrimitiveListmergingIntList":[1]}',
      "invalid patch format of primitive list", 400 },
    { "patch fields outside $retainKeys", '{"retainKeysMap":{"name":"a"}}',
      '{"retainKeysMap":{"$retainKeys":["name"],"value":"b"}}',
      "invalid patch format of retainKeys", 400 },
    { "lists of lists", '{"mergingIntList":[[1]]}', '{"mergingIntList":[[2]]}',
      "lists of lists are not supported", 422 },
    { "unknown $patch directive", '{"simpleMap":{"a":"b"}}',
      '{"simpleMap":{"$patch":"frobnicate"}}',
      "unknown patch type: frobnicate in map: map[$patch:frobnicate]", 500 },
  }
  for _, c in ipairs(errors) do
    it("fails: " .. c[1], function()
      local out, err, code = patch.strategic(J(c[2]), J(c[3]), ITEM)
      assert.is_nil(out)
      assert.matches(c[4], err, 1, true)
      assert.are.equal(c[5], code)
    end)
  end

  it("refuses a patch that is not an object (400)", function()
    local out, err, code = patch.strategic({}, J("[1]"), ITEM)
    assert.is_nil(out)
    assert.are.equal(400, code)
    assert.matches("cannot unmarshal array", err, 1, true)
  end)
end)

-- original (last applied), modified (new manifest), current (live),
-- the two-way and three-way patches Kubernetes computes, and the result of
-- applying the three-way patch to current (from strategicpatch's tests).
local THREE_WAY = {
  { name = "add field and delete field from map",
    original = '{"name":"1"}', modified = '{"value":"1"}',
    current = '{"name":"1","other":"a"}',
    two_way = '{"name":null,"value":"1"}', three_way = '{"name":null,"value":"1"}',
    result = '{"value":"1","other":"a"}' },
  { name = "delete field from nested map with conflict",
    original = '{"simpleMap":{"key1":"1","key2":"1"}}',
    modified = '{"simpleMap":{"key1":"1"}}',
    current = '{"simpleMap":{"key1":"a","key2":"1","other":"a"}}',
    two_way = '{"simpleMap":{"key2":null}}',
    three_way = '{"simpleMap":{"key1":"1","key2":null}}',
    result = '{"simpleMap":{"key1":"1","other":"a"}}' },
  { name = "delete items in lists of scalars",
    original = '{"mergingIntList":[1,2,3]}', modified = '{"mergingIntList":[1,2]}',
    current = '{"mergingIntList":[1,2,3,4]}',
    two_way = '{"$setElementOrder/mergingIntList":[1,2],' ..
              '"$deleteFromPrimitiveList/mergingIntList":[3]}',
    three_way = '{"$setElementOrder/mergingIntList":[1,2],' ..
                '"$deleteFromPrimitiveList/mergingIntList":[3]}',
    result = '{"mergingIntList":[1,2,4]}' },
  { name = "add and delete items in lists of scalars",
    original = '{"mergingIntList":[1,2,3]}', modified = '{"mergingIntList":[1,2,4]}',
    current = '{"mergingIntList":[1,2,3,4]}',
    two_way = '{"$setElementOrder/mergingIntList":[1,2,4],' ..
              '"$deleteFromPrimitiveList/mergingIntList":[3],"mergingIntList":[4]}',
    three_way = '{"$setElementOrder/mergingIntList":[1,2,4],' ..
                '"$deleteFromPrimitiveList/mergingIntList":[3]}',
    result = '{"mergingIntList":[1,2,4]}' },
  { name = "merge lists of maps",
    original = '{"mergingList":[{"name":"1"},{"name":"2","value":"2"}]}',
    modified = '{"mergingList":[{"name":"4","value":"4"},{"name":"1"},' ..
               '{"name":"2","value":"2"},{"name":"3","value":"3"}]}',
    current = '{"mergingList":[{"name":"1","other":"a"},' ..
              '{"name":"2","value":"2","other":"b"}]}',
    two_way = '{"$setElementOrder/mergingList":[{"name":"4"},{"name":"1"},' ..
              '{"name":"2"},{"name":"3"}],' ..
              '"mergingList":[{"name":"4","value":"4"},{"name":"3","value":"3"}]}',
    three_way = '{"$setElementOrder/mergingList":[{"name":"4"},{"name":"1"},' ..
                '{"name":"2"},{"name":"3"}],' ..
                '"mergingList":[{"name":"4","value":"4"},{"name":"3","value":"3"}]}',
    result = '{"mergingList":[{"name":"4","value":"4"},{"name":"1","other":"a"},' ..
             '{"name":"2","value":"2","other":"b"},{"name":"3","value":"3"}]}' },
  { name = "merge lists of maps with conflict",
    original = '{"mergingList":[{"name":"1"},{"name":"2","value":"2"}]}',
    modified = '{"mergingList":[{"name":"1"},{"name":"2","value":"2"},' ..
               '{"name":"3","value":"3"}]}',
    current = '{"mergingList":[{"name":"1","other":"a"},' ..
              '{"name":"2","value":"3","other":"b"}]}',
    two_way = '{"$setElementOrder/mergingList":[{"name":"1"},{"name":"2"},' ..
              '{"name":"3"}],"mergingList":[{"name":"3","value":"3"}]}',
    three_way = '{"$setElementOrder/mergingList":[{"name":"1"},{"name":"2"},' ..
                '{"name":"3"}],"mergingList":[{"name":"2","value":"2"},' ..
                '{"name":"3","value":"3"}]}',
    result = '{"mergingList":[{"name":"1","other":"a"},' ..
             '{"name":"2","value":"2","other":"b"},{"name":"3","value":"3"}]}' },
  { name = "delete map from merging list",
    original = '{"mergingList":[{"name":"1"},{"name":"2"}]}',
    modified = '{"mergingList":[{"name":"2"}]}',
    current = '{"mergingList":[{"name":"1"},{"name":"2","other":"b"}]}',
    two_way = '{"$setElementOrder/mergingList":[{"name":"2"}],' ..
              '"mergingList":[{"name":"1","$patch":"delete"}]}',
    three_way = '{"$setElementOrder/mergingList":[{"name":"2"}],' ..
                '"mergingList":[{"name":"1","$patch":"delete"}]}',
    result = '{"mergingList":[{"name":"2","other":"b"}]}' },
  { name = "retainKeys list elements carry $retainKeys",
    original = '{"retainKeysMergingList":[{"name":"a","value":"1"}]}',
    modified = '{"retainKeysMergingList":[{"name":"a","other":"2"}]}',
    current = '{"retainKeysMergingList":[{"name":"a","value":"1","extra":"x"}]}',
    two_way = '{"$setElementOrder/retainKeysMergingList":[{"name":"a"}],' ..
              '"retainKeysMergingList":[{"$retainKeys":["name","other"],' ..
              '"name":"a","other":"2","value":null}]}',
    three_way = '{"$setElementOrder/retainKeysMergingList":[{"name":"a"}],' ..
                '"retainKeysMergingList":[{"$retainKeys":["name","other"],' ..
                '"name":"a","other":"2","value":null}]}',
    result = '{"retainKeysMergingList":[{"name":"a","other":"2"}]}' },
}

describe("patch.two_way and patch.three_way", function()
  for _, c in ipairs(THREE_WAY) do
    it(c.name, function()
      local original, modified, current = J(c.original), J(c.modified), J(c.current)
      local two = assert(patch.two_way(original, modified, ITEM))
      same(J(c.two_way), two, "two-way patch")
      same(modified, assert(patch.strategic(original, two, ITEM)), "two-way result")
      local three = assert(patch.three_way(original, modified, current, ITEM))
      same(J(c.three_way), three, "three-way patch")
      same(J(c.result), assert(patch.strategic(current, three, ITEM)), "result")
      same(J(c.original), original)
      same(J(c.current), current)
    end)
  end
end)

-- `kubectl apply` of a Deployment, with the merge keys moonlet serves.
describe("kubectl apply (client-side three-way)", function()
  local merge_keys = require("moonlet.api.merge_keys")
  local KEYS = merge_keys.for_kind("apps", "Deployment")

  local function deployment(labels, containers)
    return {
      apiVersion = "apps/v1", kind = "Deployment",
      metadata = { name = "web", labels = labels },
      spec = { replicas = 2, template = { metadata = { labels = { app = "web" } },
               spec = { containers = json.array(containers) } } },
    }
  end
  local function apply(last, manifest, live)
    local p = assert(patch.three_way(last, manifest, live, KEYS))
    return assert(patch.strategic(live, p, KEYS)), p
  end

  local last = deployment({ app = "web", tier = "fe" }, {
    { name = "app", image = "app:1", ports = json.array({ { containerPort = 80 } }) },
    { name = "sidecar", image = "proxy:1" },
  })
  -- The live object: defaults and status the server and controllers added.
  local live = json.copy(last)
  live.metadata.uid = "u-1"
  live.metadata.annotations = { ["deployment.kubernetes.io/revision"] = "1" }
  live.spec.template.spec.containers[1].imagePullPolicy = "IfNotPresent"
  live.spec.template.spec.containers[1].terminationMessagePath = "/dev/termination-log"
  live.status = { replicas = 2, conditions = json.array({ { type = "Available", status = "True" } }) }

  it("removes a label the manifest dropped and keeps others' fields", function()
    local manifest = deployment({ app = "web" }, json.copy(last.spec.template.spec.containers))
    local out, p = apply(last, manifest, live)
    assert.are.same(json.null, p.metadata.labels.tier)
    assert.is_nil(p.status)
    assert.are.same({ app = "web" }, out.metadata.labels)
    assert.are.equal("u-1", out.metadata.uid)
    assert.are.equal("1", out.metadata.annotations["deployment.kubernetes.io/revision"])
    assert.are.equal("True", out.status.conditions[1].status)
    assert.are.equal("IfNotPresent", out.spec.template.spec.containers[1].imagePullPolicy)
  end)

  it("changes a container image in place", function()
    local containers = json.copy(last.spec.template.spec.containers)
    containers[1].image = "app:2"
    local out, p = apply(last, deployment(last.metadata.labels, containers), live)
    same(J('{"spec":{"template":{"spec":{' ..
           '"$setElementOrder/containers":[{"name":"app"},{"name":"sidecar"}],' ..
           '"containers":[{"image":"app:2","name":"app"}]}}}}'), p)
    local c = out.spec.template.spec.containers
    assert.are.equal(2, #c)
    assert.are.equal("app:2", c[1].image)
    assert.are.equal("IfNotPresent", c[1].imagePullPolicy)
    assert.are.equal(80, c[1].ports[1].containerPort)
    assert.are.equal("proxy:1", c[2].image)
  end)

  it("removes a container with a $patch: delete element", function()
    local containers = json.array({ json.copy(last.spec.template.spec.containers[1]) })
    local out, p = apply(last, deployment(last.metadata.labels, containers), live)
    same(J('{"spec":{"template":{"spec":{' ..
           '"$setElementOrder/containers":[{"name":"app"}],' ..
           '"containers":[{"$patch":"delete","name":"sidecar"}]}}}}'), p)
    local c = out.spec.template.spec.containers
    assert.are.equal(1, #c)
    assert.are.equal("app", c[1].name)
    assert.are.equal("IfNotPresent", c[1].imagePullPolicy)
  end)

  it("adds a container after the existing ones", function()
    local containers = json.copy(last.spec.template.spec.containers)
    containers[3] = { name = "logger", image = "log:1" }
    local out = apply(last, deployment(last.metadata.labels, containers), live)
    local names = {}
    for i, c in ipairs(out.spec.template.spec.containers) do names[i] = c.name end
    assert.are.same({ "app", "sidecar", "logger" }, names)
  end)

  it("keeps a field a controller added (not in last-applied)", function()
    local live2 = json.copy(live)
    live2.spec.template.spec.containers[1].env = json.array({ { name = "INJECTED", value = "1" } })
    live2.metadata.finalizers = json.array({ "example.com/protect" })
    local manifest = deployment(last.metadata.labels, json.copy(last.spec.template.spec.containers))
    local out, p = apply(last, manifest, live2)
    assert.is_true(patch.is_empty(p))
    assert.are.equal("INJECTED", out.spec.template.spec.containers[1].env[1].name)
    assert.are.same({ "example.com/protect" }, out.metadata.finalizers)
  end)

  it("drops a port the manifest no longer lists", function()
    local last2 = json.copy(last)
    last2.spec.template.spec.containers[1].ports[2] = { containerPort = 443 }
    local live2 = json.copy(live)
    live2.spec.template.spec.containers[1].ports[2] = { containerPort = 443 }
    local out = apply(last2, deployment(last.metadata.labels,
                      json.copy(last.spec.template.spec.containers)), live2)
    local ports = out.spec.template.spec.containers[1].ports
    assert.are.equal(1, #ports)
    assert.are.equal(80, ports[1].containerPort)
  end)
end)

describe("patch.three_way_merge (kinds without merge keys)", function()
  it("deletes what the manifest dropped, sets changes, keeps the rest", function()
    local original = J('{"spec":{"a":1,"b":2,"list":[1,2]},"metadata":{"labels":{"x":"1"}}}')
    local modified = J('{"spec":{"a":1,"c":3,"list":[1]},"metadata":{"labels":{}}}')
    local current = J('{"spec":{"a":5,"b":2,"list":[1,2],"d":4},' ..
                      '"metadata":{"labels":{"x":"1","y":"2"}},"status":{"ok":true}}')
    local p = patch.three_way_merge(original, modified, current)
    same(J('{"spec":{"a":1,"b":null,"c":3,"list":[1]},"metadata":{"labels":{"x":null}}}'), p)
    same(J('{"spec":{"a":1,"c":3,"list":[1],"d":4},"metadata":{"labels":{"y":"2"}},' ..
           '"status":{"ok":true}}'), patch.merge(current, p))
  end)
end)
