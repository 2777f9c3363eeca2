-- Load generator for the API benchmarks, run with `moonlet lua`:
--   moonlet lua api_load.lua create-moonlet SOCKET N CONCURRENCY
--   moonlet lua api_load.lua create-etcd URL N CONCURRENCY
--   moonlet lua api_load.lua list SOCKET REPEAT
--   moonlet lua api_load.lua watch-latency SOCKET WATCHERS UPDATES
-- Prints one JSON line of figures.
local http = require("moonlet.http")
local json = require("moonlet.json")
local loop = require("moonlet.loop")
local sched = require("moonlet.sched")

local mode, target = arg[1], arg[2]

local function b64(s)
  local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return ((s:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end

local function configmap(i)
  return json.encode({ apiVersion = "v1", kind = "ConfigMap",
    metadata = { name = "bench-" .. i, namespace = "default", labels = { bench = "yes", shard = tostring(i % 10) } },
    data = { key = "value-" .. i, other = "some configuration text" } })
end

-- Runs `n` requests made by make(i) with `conc` in flight; returns seconds.
local function drive(n, conc, make)
  local next_i, done, failures = 0, 0, 0
  local finished = loop.next_id()
  local t0 = loop.hrtime()
  for _ = 1, conc do
    sched.spawn("load", function()
      while next_i < n do
        next_i = next_i + 1
        local res = http.request(make(next_i))
        if not res or res.status >= 300 then
          failures = failures + 1
          if failures < 3 then io.stderr:write("request failed: ", tostring(res and res.body), "\n") end
        end
        done = done + 1
      end
      if done == n then sched.wake(finished) end
    end)
  end
  if done < n then sched.wait(finished) end
  return (loop.hrtime() - t0) / 1e9, failures
end

if mode == "create-moonlet" then
  local n, conc = tonumber(arg[3]), tonumber(arg[4])
  local bodies = {}
  for i = 1, n do bodies[i] = configmap(i) end
  local secs, failures = drive(n, conc, function(i)
    return { method = "POST", url = "http://localhost/api/v1/namespaces/default/configmaps",
      unix_socket = target, headers = { ["Content-Type"] = "application/json" }, body = bodies[i] }
  end)
  print(json.encode({ system = "moonlet", n = n, concurrency = conc, seconds = secs, per_second = n / secs, failures = failures }))
elseif mode == "create-etcd" then
  local n, conc = tonumber(arg[3]), tonumber(arg[4])
  -- Bodies are made before the clock starts: only the store is measured.
  local bodies = {}
  for i = 1, n do
    bodies[i] = json.encode({ key = b64("/registry/configmaps/default/bench-" .. i), value = b64(configmap(i)) })
  end
  local secs, failures = drive(n, conc, function(i)
    return { method = "POST", url = target .. "/v3/kv/put", headers = { ["Content-Type"] = "application/json" },
      body = bodies[i] }
  end)
  print(json.encode({ system = "etcd", n = n, concurrency = conc, seconds = secs, per_second = n / secs, failures = failures }))
elseif mode == "list" then
  local rep = tonumber(arg[3]) or 5
  local out = {}
  for _, kind in ipairs({ "json", "table" }) do
    local best = math.huge
    for _ = 1, rep do
      local headers = kind == "table" and { Accept = "application/json;as=Table;v=v1;g=meta.k8s.io" } or nil
      local t0 = loop.hrtime()
      local res = http.request({ url = "http://localhost/api/v1/namespaces/default/configmaps",
        unix_socket = target, headers = headers, timeout_ms = 60000 })
      local ms = (loop.hrtime() - t0) / 1e6
      assert(res and res.status == 200, "list failed")
      if ms < best then best = ms end
    end
    out[kind .. "_ms"] = best
  end
  print(json.encode(out))
elseif mode == "watch-latency" then
  local watchers, updates = tonumber(arg[3]), tonumber(arg[4])
  local base = "http://localhost/api/v1/namespaces/default/configmaps"
  local name = "watched-" .. loop.hrtime()
  local sent_at, lat, streams = {}, {}, {}
  local res = http.request({ method = "POST", url = base, unix_socket = target,
    headers = { ["Content-Type"] = "application/json" },
    body = json.encode({ apiVersion = "v1", kind = "ConfigMap", metadata = { name = name }, data = { n = "0" } }) })
  assert(res and res.status == 201, "create watched failed")
  local rv = json.decode(res.body).metadata.resourceVersion
  local seen, all_seen = 0, loop.next_id()
  for w = 1, watchers do
    local s = assert(http.stream({ url = base .. "?watch=true&fieldSelector=metadata.name%3D" .. name .. "&resourceVersion=" .. rv,
      unix_socket = target }))
    streams[w] = s
    sched.spawn("watcher", function()
      for line in s:lines() do
        -- A pattern, not a JSON decode: the client's own work must not be
        -- what the latency measures.
        local n = tonumber(line:match('"n":"(%d+)"'))
        if n and sent_at[n] then
          lat[#lat + 1] = (loop.hrtime() - sent_at[n]) / 1e6
          seen = seen + 1
          if seen == watchers * updates then sched.wake(all_seen) end
        end
      end
    end)
  end
  loop.sleep(200) -- let every watch register before the first update
  for n = 1, updates do
    sent_at[n] = loop.hrtime()
    local body = json.encode({ data = { n = tostring(n) } })
    local r = http.request({ method = "PATCH", url = base .. "/" .. name, unix_socket = target,
      headers = { ["Content-Type"] = "application/merge-patch+json" }, body = body })
    assert(r and r.status == 200, "patch failed")
    loop.sleep(20)
  end
  local timer = loop.timer(10000, function() sched.wake(all_seen) end)
  if seen < watchers * updates then sched.wait(all_seen) end
  timer.stop()
  for _, s in ipairs(streams) do s:close() end
  table.sort(lat)
  local function pct(p) return lat[math.max(1, math.ceil(#lat * p))] or -1 end
  print(json.encode({ watchers = watchers, updates = updates, received = #lat,
    p50_ms = pct(0.5), p99_ms = pct(0.99), max_ms = lat[#lat] or -1 }))
end
