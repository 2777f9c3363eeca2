-- Command-line parsing with kubectl's (pflag's) conventions: `--name=value`,
-- `--name value`, `-n value`, `-nvalue`, `-n=value`, boolean flags that also
-- take `=true|false`, grouped short booleans (`-Ar`), repeatable flags, and
-- `--` ending the flags. Flags may appear anywhere among the arguments.
local M = {}

--- Parses argv (a list, without the verb) against flag specs:
--- { {name="output", short="o", type="string"|"bool"|"int"|"list",
---    default=...}, ... }. "list" flags collect every use (and split commas
--- when split=true).
--- @return { flags = {name -> value}, args = {...} } or nil, error message
function M.parse(argv, specs)
  local by_long, by_short = {}, {}
  local flags = {}
  for _, s in ipairs(specs) do
    by_long[s.name] = s
    if s.short then by_short[s.short] = s end
    if s.type == "list" then
      flags[s.name] = {}
      for i, v in ipairs(s.default or {}) do flags[s.name][i] = v end
    else
      flags[s.name] = s.default
    end
  end
  local set = {}
  local args = {}

  local function assign(s, value, shown)
    if s.type == "bool" then
      if value == nil or value == "true" then flags[s.name] = true
      elseif value == "false" then flags[s.name] = false
      else
        return string.format('invalid argument "%s" for "%s" flag: strconv.ParseBool: parsing "%s": invalid syntax',
          value, shown, value)
      end
    elseif s.type == "int" then
      local n = math.tointeger(tonumber(value))
      if not n then
        return string.format('invalid argument "%s" for "%s" flag: strconv.ParseInt: parsing "%s": invalid syntax',
          value, shown, value)
      end
      flags[s.name] = n
    elseif s.type == "list" then
      if not set[s.name] then flags[s.name] = {} end
      local l = flags[s.name]
      if s.split then
        for part in value:gmatch("[^,]+") do l[#l + 1] = part end
      else
        l[#l + 1] = value
      end
    else
      flags[s.name] = value
    end
    set[s.name] = true
  end

  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do args[#args + 1] = argv[j] end
      break
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local s = by_long[name]
      if not s then return nil, "unknown flag: --" .. name end
      if value == nil and s.no_opt_default ~= nil then
        -- pflag's NoOptDefVal: a bare `--cascade` takes the default and
        -- never swallows the next word (only `--flag=value` sets a value).
        value = s.no_opt_default
      elseif value == nil and s.type ~= "bool" then
        i = i + 1
        value = argv[i]
        if value == nil then return nil, "flag needs an argument: --" .. name end
      end
      local err = assign(s, value, "--" .. name)
      if err then return nil, err end
    elseif a:sub(1, 1) == "-" and #a > 1 then
      local j = 2
      while j <= #a do
        local ch = a:sub(j, j)
        local s = by_short[ch]
        if not s then
          return nil, string.format("unknown shorthand flag: '%s' in %s", ch, a)
        end
        local shown = "-" .. ch .. ", --" .. s.name
        if s.type == "bool" then
          local value
          if a:sub(j + 1, j + 1) == "=" then value = a:sub(j + 2); j = #a end
          local err = assign(s, value, shown)
          if err then return nil, err end
          j = j + 1
        else
          local value = a:sub(j + 1)
          if value:sub(1, 1) == "=" then value = value:sub(2) end
          if value == "" then
            i = i + 1
            value = argv[i]
            if value == nil then
              return nil, string.format("flag needs an argument: '%s' in -%s", ch, ch)
            end
          end
          local err = assign(s, value, shown)
          if err then return nil, err end
          break
        end
      end
    else
      args[#args + 1] = a
    end
    i = i + 1
  end
  return { flags = flags, args = args, set = set }
end

--- Help text for a verb: usage line, then one line per flag.
function M.help(usage, specs)
  local lines = { usage, "", "Options:" }
  for _, s in ipairs(specs) do
    local head = s.short and ("    -" .. s.short .. ", --" .. s.name) or ("    --" .. s.name)
    if s.type ~= "bool" then head = head .. "=" .. (s.metavar or "''") end
    lines[#lines + 1] = head .. ":"
    lines[#lines + 1] = "\t" .. (s.help or "")
    lines[#lines + 1] = ""
  end
  return table.concat(lines, "\n") .. "\n"
end

return M
