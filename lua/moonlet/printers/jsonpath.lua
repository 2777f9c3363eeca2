-- kubectl's JSONPath templates (`-o jsonpath=...`): literal text and {...}
-- actions with fields, `..`, `[*]`, indexes and slices, unions, filters
-- `[?(@.x=="y")]`, quoted strings and `{range ...}{end}` blocks. Values of
-- one action are joined with spaces; maps and lists print as compact JSON.
local M = {}

-- {====== parsing

local function perr(msg) error({ jsonpath = msg }, 0) end

local UNQUOTE = { n = "\n", t = "\t", r = "\r", ["\\"] = "\\", ['"'] = '"',
  ["'"] = "'", a = "\a", b = "\b", f = "\f", v = "\v", ["0"] = "\0" }

local function unquote(body)
  return (body:gsub("\\(.)", function(c) return UNQUOTE[c] or ("\\" .. c) end))
end

-- Parses the inside of one action into a list of steps.
-- step kinds: field{name}, recursive, index{params}, wildcard, union{list of
-- step lists}, filter{left, op, right}, text{value}, literal{value}
local parse_path

local function parse_bracket(s, i)
  -- s:sub(i, i) == "["; returns step, next index
  local close
  if s:sub(i + 1, i + 2) == "?(" then
    local depth, j = 0, i + 1
    while j <= #s do
      local c = s:sub(j, j)
      if c == "(" then depth = depth + 1
      elseif c == ")" then
        depth = depth - 1
        if depth == 0 then break end
      elseif c == '"' or c == "'" then
        local k = s:find(c, j + 1, true)
        if not k then perr("unterminated filter") end
        j = k
      end
      j = j + 1
    end
    if s:sub(j + 1, j + 1) ~= "]" then perr("unterminated filter") end
    local expr = s:sub(i + 3, j - 1)
    local left, op, right = expr:match("^%s*(.-)%s*([!<>=]=?)%s*(.-)%s*$")
    local step = { kind = "filter" }
    if left and left ~= "" and (op == "==" or op == "!=" or op == "<" or op == ">"
        or op == "<=" or op == ">=") then
      step.left, step.op, step.right = parse_path(left), op, parse_path(right)
    else
      step.left = parse_path(expr)
    end
    return step, j + 2
  end
  -- find the matching ']' outside quotes
  local j = i + 1
  while j <= #s do
    local c = s:sub(j, j)
    if c == "]" then close = j; break end
    if c == "'" or c == '"' then
      local k = s:find(c, j + 1, true)
      if not k then perr("unterminated quote") end
      j = k
    end
    j = j + 1
  end
  if not close then perr("unterminated array") end
  local body = s:sub(i + 1, close - 1)
  if body:match("^%s*%*%s*$") then return { kind = "wildcard" }, close + 1 end
  -- union or quoted fields: split on commas outside quotes
  local parts, cur, q = {}, {}, nil
  for c in body:gmatch(".") do
    if q then
      cur[#cur + 1] = c
      if c == q then q = nil end
    elseif c == "'" or c == '"' then
      q = c
      cur[#cur + 1] = c
    elseif c == "," then
      parts[#parts + 1] = table.concat(cur)
      cur = {}
    else
      cur[#cur + 1] = c
    end
  end
  parts[#parts + 1] = table.concat(cur)
  local steps = {}
  for _, p in ipairs(parts) do
    p = p:match("^%s*(.-)%s*$")
    local qf = p:match("^'(.*)'$") or p:match('^"(.*)"$')
    if qf then
      steps[#steps + 1] = { { kind = "field", name = qf } }
    elseif p:match("^[-%d:%s]*$") and p ~= "" then
      local a, b, c = p:match("^%s*(-?%d*)%s*:?%s*(-?%d*)%s*:?%s*(-?%d*)%s*$")
      if not a then perr("invalid array index " .. p) end
      local colons = select(2, p:gsub(":", ""))
      local params
      if colons == 0 then
        local n = tonumber(a)
        if not n then perr("invalid array index " .. p) end
        params = { n, n + 1, nil, derived = true }
      else
        params = { tonumber(a), tonumber(b), tonumber(c) }
      end
      steps[#steps + 1] = { { kind = "index", params = params } }
    else
      steps[#steps + 1] = parse_path(p)
    end
  end
  if #steps == 1 and #steps[1] == 1 then return steps[1][1], close + 1 end
  return { kind = "union", list = steps }, close + 1
end

-- Field names end at '.', '[', space or the end; `\.` escapes a dot.
local function read_name(s, i)
  local buf = {}
  while i <= #s do
    local c = s:sub(i, i)
    if c == "\\" and i < #s then
      buf[#buf + 1] = s:sub(i + 1, i + 1)
      i = i + 2
    elseif c == "." or c == "[" or c == " " or c == "," or c == ")" then
      break
    else
      buf[#buf + 1] = c
      i = i + 1
    end
  end
  return table.concat(buf), i
end

function parse_path(s)
  local steps, i = {}, 1
  while i <= #s do
    local c = s:sub(i, i)
    if c == " " or c == "\t" then
      i = i + 1
    elseif c == "$" or c == "@" then
      i = i + 1
    elseif c == "." then
      if s:sub(i + 1, i + 1) == "." then
        steps[#steps + 1] = { kind = "recursive" }
        i = i + 2
      else
        i = i + 1
      end
      if s:sub(i, i) == "*" then
        steps[#steps + 1] = { kind = "wildcard" }
        i = i + 1
      elseif i <= #s and s:sub(i, i) ~= "[" and s:sub(i, i) ~= "." then
        local name
        name, i = read_name(s, i)
        if name ~= "" then steps[#steps + 1] = { kind = "field", name = name } end
      end
    elseif c == "[" then
      local step
      step, i = parse_bracket(s, i)
      steps[#steps + 1] = step
    elseif c == '"' or c == "'" then
      local j = i + 1
      while j <= #s and s:sub(j, j) ~= c do
        if s:sub(j, j) == "\\" then j = j + 1 end
        j = j + 1
      end
      if j > #s then perr("unterminated quote") end
      steps[#steps + 1] = { kind = "text", value = unquote(s:sub(i + 1, j - 1)) }
      i = j + 1
    elseif c:match("[-+%d]") then
      local num = s:match("^[-+]?%d+%.?%d*", i)
      steps[#steps + 1] = { kind = "literal", value = tonumber(num) }
      i = i + #num
    elseif c:match("[%a_]") then
      local name
      name, i = read_name(s, i)
      if name == "true" or name == "false" then
        steps[#steps + 1] = { kind = "literal", value = name == "true" }
      else
        -- kubectl also accepts `{metadata.name}` without the leading dot
        steps[#steps + 1] = { kind = "field", name = name }
      end
    else
      perr(string.format("unrecognized character in action: %q", c))
    end
  end
  return steps
end

--- Parses a template into a tree: { {kind="text"|"action"|"range", ...} }.
--- Raises {jsonpath = message} on syntax errors.
function M.parse(template)
  local root = { body = {} }
  local stack = { root }
  local i = 1
  while i <= #template do
    local open = template:find("{", i, true)
    local cur = stack[#stack].body
    if not open then
      cur[#cur + 1] = { kind = "text", value = template:sub(i) }
      break
    end
    if open > i then cur[#cur + 1] = { kind = "text", value = template:sub(i, open - 1) } end
    -- find the closing brace, skipping quoted strings
    local j, close = open + 1, nil
    while j <= #template do
      local c = template:sub(j, j)
      if c == "}" then close = j; break end
      if c == '"' or c == "'" then
        local k = j + 1
        while k <= #template and template:sub(k, k) ~= c do
          if template:sub(k, k) == "\\" then k = k + 1 end
          k = k + 1
        end
        j = k
      end
      j = j + 1
    end
    if not close then perr("unclosed action") end
    local inner = template:sub(open + 1, close - 1):match("^%s*(.-)%s*$")
    if inner == "end" then
      if #stack == 1 then perr("not in range, nothing to end") end
      table.remove(stack)
    elseif inner:match("^range[%s]") or inner == "range" then
      local node = { kind = "range", path = parse_path(inner:sub(6)), body = {} }
      cur[#cur + 1] = node
      stack[#stack + 1] = node
    else
      cur[#cur + 1] = { kind = "action", path = parse_path(inner) }
    end
    i = close + 1
  end
  if #stack > 1 then perr("unclosed range") end
  return root.body
end

-- }======

-- {====== evaluation

local function is_list(v, opts)
  if type(v) ~= "table" then return false end
  if opts.is_array then return opts.is_array(v) end
  return #v > 0 or next(v) == nil
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local eval_path

local function compare(a, op, b)
  if type(a) ~= type(b) then
    if op == "!=" then return true end
    return false
  end
  if type(a) == "table" then return false end
  if op == "==" then return a == b end
  if op == "!=" then return a ~= b end
  if type(a) == "boolean" then return false end
  if op == "<" then return a < b end
  if op == ">" then return a > b end
  if op == "<=" then return a <= b end
  if op == ">=" then return a >= b end
  return false
end

local function step_values(input, step, opts)
  local out = {}
  local k = step.kind
  if k == "field" then
    for _, v in ipairs(input) do
      if type(v) == "table" and not is_list(v, opts) then
        local x = v[step.name]
        if x ~= nil then out[#out + 1] = x end
      elseif type(v) == "table" and next(v) == nil then
        -- an empty object decodes like an empty list: nothing there
      end
    end
    if #out == 0 and not opts.allow_missing then
      perr(step.name .. " is not found")
    end
  elseif k == "wildcard" then
    for _, v in ipairs(input) do
      if type(v) == "table" then
        if is_list(v, opts) then
          for _, x in ipairs(v) do out[#out + 1] = x end
        else
          for _, key in ipairs(sorted_keys(v)) do out[#out + 1] = v[key] end
        end
      end
    end
  elseif k == "recursive" then
    local function walk(v)
      if type(v) ~= "table" then return end
      local children = {}
      if is_list(v, opts) then
        for _, x in ipairs(v) do children[#children + 1] = x end
      else
        for _, key in ipairs(sorted_keys(v)) do children[#children + 1] = v[key] end
      end
      if #children > 0 then
        out[#out + 1] = v
        for _, c in ipairs(children) do walk(c) end
      end
    end
    for _, v in ipairs(input) do walk(v) end
  elseif k == "index" then
    for _, v in ipairs(input) do
      if type(v) ~= "table" or not is_list(v, opts) then
        perr("not array or slice")
      end
      local len = #v
      local p = step.params
      local a, b, c = p[1], p[2], p[3]
      a = a or 0
      if a < 0 then a = a + len end
      b = b or len
      if b < 0 or (b == 0 and p.derived) then b = b + len end
      if a ~= b then
        if a >= len or a < 0 then
          perr(string.format("array index out of bounds: index %d, length %d", a, len))
        end
        if b > len or b < 0 then
          perr(string.format("array index out of bounds: index %d, length %d", b - 1, len))
        end
        if a > b then
          perr(string.format("starting index %d is greater than ending index %d", a, b))
        end
        local st = c or 1
        if st <= 0 then perr("step must be > 0") end
        for idx = a, b - 1, st do out[#out + 1] = v[idx + 1] end
      end
    end
  elseif k == "union" then
    for _, path in ipairs(step.list) do
      for _, x in ipairs(eval_path(input, path, opts)) do out[#out + 1] = x end
    end
  elseif k == "filter" then
    local nopts = setmetatable({ allow_missing = true }, { __index = opts })
    for _, v in ipairs(input) do
      local items
      if type(v) == "table" and is_list(v, opts) then items = v
      elseif type(v) == "table" then
        items = {}
        for _, key in ipairs(sorted_keys(v)) do items[#items + 1] = v[key] end
      else
        items = {}
      end
      for _, item in ipairs(items) do
        local lefts = eval_path({ item }, step.left, nopts)
        local pass = false
        if not step.op then
          pass = #lefts > 0
        else
          local rights = eval_path({ item }, step.right, nopts)
          for _, l in ipairs(lefts) do
            for _, r in ipairs(rights) do
              if compare(l, step.op, r) then pass = true end
            end
          end
        end
        if pass then out[#out + 1] = item end
      end
    end
  elseif k == "text" or k == "literal" then
    out[1] = step.value
  end
  return out
end

function eval_path(input, path, opts)
  local cur = input
  for _, step in ipairs(path) do
    if step.kind == "text" or step.kind == "literal" then
      cur = { step.value }
    else
      cur = step_values(cur, step, opts)
    end
  end
  return cur
end

local function to_text(v, opts)
  if type(v) == "table" then return opts.encode(v) end
  if v == nil or (opts.null ~= nil and v == opts.null) then return "null" end
  if type(v) == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    if v == math.floor(v) and math.abs(v) < 1e15 then return string.format("%d", v) end
    return string.format("%.14g", v)
  end
  return tostring(v)
end

local function run(nodes, data, opts, out)
  for _, node in ipairs(nodes) do
    if node.kind == "text" then
      out[#out + 1] = node.value
    elseif node.kind == "action" then
      local vals = eval_path({ data }, node.path, opts)
      local parts = {}
      for i, v in ipairs(vals) do parts[i] = to_text(v, opts) end
      out[#out + 1] = table.concat(parts, " ")
    else -- range
      local vals = eval_path({ data }, node.path, opts)
      for _, v in ipairs(vals) do run(node.body, v, opts, out) end
    end
  end
end

-- The evaluation options from a caller's opts.
local function eval_opts(opts)
  opts = opts or {}
  return { allow_missing = opts.allow_missing ~= false, encode = opts.encode
    or function() return "<object>" end, is_array = opts.is_array, null = opts.null }
end

-- Runs fn; a template error (raised as {jsonpath = msg}) becomes nil, msg.
local function protected(fn)
  local ok, res = pcall(fn)
  if ok then return res end
  if type(res) == "table" and res.jsonpath then return nil, res.jsonpath end
  error(res, 0)
end

--- Executes `template` against `data`. opts: allow_missing (default true, as
--- kubectl's --allow-missing-template-keys), encode (table -> compact JSON),
--- is_array (table -> bool), null (the JSON null sentinel).
--- @return the text, or nil and an error message.
function M.execute(template, data, opts)
  local o = eval_opts(opts)
  return protected(function()
    local out = {}
    run(M.parse(template), data, o, out)
    return table.concat(out)
  end)
end

-- Runs each action of `template` (text or a parsed tree) on data and adds
-- what `collect(out, found, o)` makes of its results. @return out, or nil
-- and the template's error message
local function each_action(template, data, opts, collect)
  local o = eval_opts(opts)
  return protected(function()
    local out = {}
    local tree = type(template) == "table" and template or M.parse(template)
    for _, node in ipairs(tree) do
      if node.kind == "action" then collect(out, eval_path({ data }, node.path, o), o) end
    end
    return out
  end)
end

--- The values the template's actions find, each as text (for kubectl's
--- custom-columns, which joins them with commas).
--- @return list of strings, or nil and an error message
function M.values(template, data, opts)
  return each_action(template, data, opts, function(out, found, o)
    for _, v in ipairs(found) do out[#out + 1] = to_text(v, o) end
  end)
end

--- The values each action of the template finds, as they are (tables,
--- numbers, strings, the null sentinel): one list per action, as kubectl's
--- FindResults, for `get --sort-by` and `wait --for=jsonpath`. `template`
--- may be a tree from M.parse, to parse once for many objects.
--- @return list of lists, or nil and an error message
function M.find(template, data, opts)
  return each_action(template, data, opts, function(out, found) out[#out + 1] = found end)
end

-- }======

return M
