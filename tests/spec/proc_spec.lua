-- moonlet.proc on the real loop: spawning, exit results, signals, stop with
-- a grace period, handles that anchor themselves, exec with capture and
-- timeout, CRI logs read and followed, leftover reaping. Only sh, sleep,
-- true, false and cat are run.
require("moonlet_core")
local proc = require("moonlet.proc")
local sched = require("moonlet.sched")
local loop = require("moonlet.loop")
local runtime = require("moonlet.core.runtime")

local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local dir

local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

setup(function()
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -m 700 " .. shq(dir)))
end)

teardown(function()
  os.execute("rm -rf " .. shq(dir))
end)

local function sh(script, extra)
  local o = { command = { "sh", "-c", script } }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

describe("moonlet.proc spawn", function()
  it("returns a handle at once and the exit result from wait()", function()
    local res, pid, p = sched.run(function()
      local p = assert(proc.spawn(sh("exit 3")))
      assert.is_true(p.pid > 0)
      assert.matches("^moonlet.Proc: .*pid %d+", tostring(p))
      return p:wait(), p.pid, p
    end)
    assert.are.equal(3, res.exit_code)
    assert.is_nil(res.signal)
    assert.are.equal(pid, res.pid)
    assert.is_false(res.oom_killed)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%d%d%d%dZ$", res.started_at)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%d%d%d%dZ$", res.finished_at)
    assert.is_true(res.finished_at >= res.started_at)
    assert.is_false(p:running())
    p:close()
  end)

  it("reports 128+signal for kill(name or number)", function()
    local r1, r2, r3 = sched.run(function()
      local a = assert(proc.spawn({ command = { "sleep", "100" } }))
      local b = assert(proc.spawn({ command = { "sleep", "100" } }))
      local c = assert(proc.spawn({ command = { "sleep", "100" } }))
      assert.is_true(a:running())
      assert(a:kill("TERM"))
      assert(b:kill(9))
      assert(c:kill("SIGINT"))
      return a:wait(), b:wait(), c:wait()
    end)
    assert.are.equal(143, r1.exit_code)
    assert.are.equal(15, r1.signal)
    assert.are.equal(137, r2.exit_code)
    assert.are.equal(130, r3.exit_code)
  end)

  it("returns nil, 'ENOENT: ...', 'ENOENT' for a missing command", function()
    local p, err, name = proc.spawn({ command = { "no-such-command-moonlet" } })
    assert.is_nil(p)
    assert.are.equal("ENOENT", name)
    assert.matches('^ENOENT: exec: "no%-such%-command%-moonlet": executable file not found in %$PATH', err)
    local f = dir .. "/plain.txt"
    assert(io.open(f, "w")):close()
    p, err, name = proc.spawn({ command = { f } })
    assert.is_nil(p)
    assert.are.equal("EACCES", name)
    -- no #! line: the kernel refuses it (errno names beyond libuv's list)
    local g = dir .. "/noshebang"
    local fh = assert(io.open(g, "w"))
    fh:write("echo hi\n")
    fh:close()
    os.execute("chmod +x " .. shq(g))
    p, err, name = proc.spawn({ command = { g } })
    assert.is_nil(p)
    assert.are.equal("ENOEXEC", name)
    assert.matches("^ENOEXEC: exec: .*noshebang\": ", err)
  end)

  it("raises on misuse", function()
    assert.has_error(function() proc.spawn({}) end)
    assert.has_error(function() proc.spawn({ command = {} }) end)
    assert.has_error(function() proc.spawn({ command = "sh" }) end)
    assert.has_error(function() proc.spawn({ command = { "true" }, log_max_bytes = -1 }) end)
    sched.run(function()
      local p = assert(proc.spawn({ command = { "true" } }))
      assert.has_error(function() p:kill("NOPE") end)
      p:wait()
      p:close()
      p:close() -- idempotent
      assert.has_error(function() p:kill("TERM") end, "attempt to use a closed moonlet.Proc")
    end)
  end)

  it("gives env (list or map) and cwd to the process", function()
    local log = dir .. "/env.log"
    sched.run(function()
      local p = assert(proc.spawn(sh('echo "$A $B $(pwd)"', {
        env = { A = "1", B = "two words", PATH = "/usr/bin:/bin" }, cwd = dir,
        stdout_log = log })))
      p:wait()
      p = assert(proc.spawn(sh('echo "$C"', { env = { "C=list" }, stdout_log = log })))
      p:wait()
    end)
    local text = assert(proc.read_log(log))
    assert.are.equal("1 two words " .. dir .. "\nlist\n", text)
  end)

  it("delivers to several waiters and on_exit callbacks", function()
    local seen = {}
    sched.run(function()
      local p = assert(proc.spawn(sh("sleep 0.05; exit 4")))
      local done = 0
      for i = 1, 3 do
        sched.spawn("w" .. i, function()
          local code = p:wait().exit_code
          seen[#seen + 1] = code
          done = done + 1
        end)
      end
      p:on_exit(function(res, handle)
        assert.are.equal(p, handle)
        seen[#seen + 1] = res.exit_code + 100
        done = done + 1
      end)
      while done < 4 do loop.sleep(5) end
      -- after the fact: immediate
      assert.are.equal(4, p:wait().exit_code)
      assert.are.equal(4, p:result().exit_code)
    end)
    table.sort(seen)
    assert.are.same({ 4, 4, 4, 104 }, seen)
  end)

  it("stop() sends SIGTERM, then SIGKILL after the grace period", function()
    local r1, dt, r2 = sched.run(function()
      local ready = dir .. "/term-ignored"
      local p = assert(proc.spawn(sh("trap '' TERM; : > " .. shq(ready) ..
        "; while :; do sleep 0.05; done")))
      -- The trap must be in place before the SIGTERM (a loaded machine can
      -- take longer than any fixed pause to start the shell).
      for _ = 1, 500 do
        if read(ready) then break end
        loop.sleep(10)
      end
      local t0 = loop.hrtime()
      assert(p:stop(0.2))
      local r = p:wait()
      local took = (loop.hrtime() - t0) / 1e6
      local q = assert(proc.spawn({ command = { "sleep", "100" } }))
      q:stop(30)
      local nil_, err, name = p:stop(1)
      assert.is_nil(nil_)
      assert.are.equal("ESRCH", name)
      return r, took, q:wait()
    end)
    assert.are.equal(137, r1.exit_code)
    assert.is_true(dt >= 190, "escalated after " .. dt .. " ms")
    assert.are.equal(143, r2.exit_code)
  end)

  it("anchors a running handle and lets it go after the exit", function()
    local before = runtime.live_refs()
    local stats0 = sched.stats()
    local got
    sched.run(function()
      -- no reference kept: the exit still arrives
      assert(proc.spawn(sh("sleep 0.05; exit 6"))):on_exit(function(res) got = res.exit_code end)
      collectgarbage()
      collectgarbage()
      while not got do loop.sleep(5) end
    end)
    assert.are.equal(6, got)
    collectgarbage()
    assert.are.equal(before, runtime.live_refs())
    assert.are.same(stats0, sched.stats())
  end)

  it("close() and <close> kill a running process; the exit is still reported", function()
    local r1, r2, pid = sched.run(function()
      local p = assert(proc.spawn({ command = { "sleep", "100" } }))
      local res
      sched.spawn("waiter", function() res = p:wait() end)
      p:close()
      assert.is_false(p:running())
      while not res do loop.sleep(1) end
      local q_pid
      do
        local q <close> = assert(proc.spawn({ command = { "sleep", "100" } }))
        q_pid = q.pid
      end
      return res, nil, q_pid
    end)
    assert.are.equal(137, r1.exit_code)
    assert.is_nil(r2)
    assert.is_false(os.execute("kill -0 " .. pid .. " 2>/dev/null") == true)
  end)

  it("starts an armed replacement at an outside kill and hands it over running", function()
    sched.run(function() loop.sleep(50) end) -- earlier tests' exits come in
    collectgarbage()
    local before = runtime.live_refs()
    local stats0 = sched.stats()
    local res, res2, old_pid = sched.run(function()
      local p = assert(proc.spawn({ command = { "sleep", "100" } }))
      assert(p:arm_restart(sh("echo \"$A\"; exec sleep 100", { env = { A = "next" },
        stdout_log = dir .. "/armed.log", stderr_log = dir .. "/armed.log" })))
      assert(proc.kill_pid(p.pid, "KILL"))
      local r = p:wait()
      assert.is_true(r.next:running())
      assert.is_true(r.next_spawned_ns > 0)
      for _ = 1, 200 do
        if (read(dir .. "/armed.log") or ""):match("next") then break end
        loop.sleep(10)
      end
      r.next:kill("KILL")
      return r, r.next:wait(), p.pid
    end)
    assert.are.equal(137, res.exit_code)
    assert.are_not.equal(old_pid, res.next.pid)
    assert.are.equal(137, res2.exit_code)
    assert.is_nil(res2.next)
    assert.matches(" stdout F next\n", read(dir .. "/armed.log"))
    res, res2 = nil, nil
    collectgarbage()
    assert.are.equal(before, runtime.live_refs())
    assert.are.same(stats0, sched.stats())
  end)

  it("forgets an armed replacement on disarm, stop and close, and when arming again", function()
    local before = runtime.live_refs()
    local stats0 = sched.stats()
    sched.run(function()
      local p = assert(proc.spawn({ command = { "sleep", "100" } }))
      assert(p:arm_restart({ command = { "sleep", "101" } }))
      assert(p:arm_restart({ command = { "sleep", "102" } }, "failure"))
      assert.is_true(p:disarm())
      assert.is_false(p:disarm())
      proc.kill_pid(p.pid, "KILL")
      assert.is_nil(p:wait().next)
      local q = assert(proc.spawn({ command = { "sleep", "100" } }))
      assert(q:arm_restart({ command = { "sleep", "101" } }))
      q:stop(0)
      assert.is_nil(q:wait().next)
      local c = assert(proc.spawn({ command = { "sleep", "100" } }))
      assert(c:arm_restart({ command = { "sleep", "101" } }))
      c:close()
      assert.is_nil(c:wait().next)
      -- As kill and stop, arming a closed handle raises.
      assert.has_error(function() c:arm_restart({ command = { "true" } }) end)
    end)
    collectgarbage()
    assert.are.equal(before, runtime.live_refs())
    assert.are.same(stats0, sched.stats())
  end)

  it("records running groups in state_dir and removes them at exit", function()
    local state = dir .. "/state"
    os.execute("mkdir -p " .. shq(state))
    sched.run(function()
      -- One file of fixed-size slots per server: the group's line while it
      -- runs, blanked when it ends.
      local function record_of(pid)
        for _, name in ipairs(require("moonlet.core.sys").listdir(state) or {}) do
          for line in (read(state .. "/" .. name) or ""):gmatch("[^\n]+") do
            if line:match("^" .. pid .. " ") then return line end
          end
        end
      end
      local p = assert(proc.spawn({ command = { "sleep", "100" }, state_dir = state }))
      assert.matches("^" .. p.pid .. " %d+ ", record_of(p.pid))
      assert.are.equal(0, proc.reap_leftovers(state)) -- ours: left alone
      assert.is_true(p:running())
      p:kill("KILL")
      p:wait()
      assert.is_nil(record_of(p.pid))
    end)
    assert.are.equal(0, proc.reap_leftovers(dir .. "/nonexistent"))
  end)

  it("works with the SIGCHLD fallback", function()
    local proc_core = require("moonlet.core.proc")
    proc_core.force_sigchld(true)
    local ok, res, mode = pcall(sched.run, function()
      local p = assert(proc.spawn(sh("exit 9")))
      return p:wait(), p:watch_mode()
    end)
    proc_core.force_sigchld(false)
    assert(ok, res)
    assert.are.equal("sigchld", mode)
    assert.are.equal(9, res.exit_code)
  end)
end)

describe("moonlet.proc start (spawns on libuv's pool)", function()
  it("starts many at once, each with its handle, exit and log", function()
    local results = sched.run(function()
      local out, left = {}, 12
      local done = loop.next_id()
      for i = 1, 12 do
        sched.spawn("start " .. i, function()
          local log = dir .. "/start" .. i .. ".log"
          local p = assert(proc.start({ command = { "sh", "-c", "echo s" .. i .. "; exit " .. (i % 5) },
            stdout_log = log, stderr_log = log }))
          assert.is_true(p.pid > 0)
          out[i] = { code = p:wait().exit_code, pid = p.pid, log = log }
          left = left - 1
          if left == 0 then sched.wake(done) end
        end)
      end
      sched.wait(done)
      return out
    end)
    for i = 1, 12 do
      assert.are.equal(i % 5, results[i].code)
      assert.matches("stdout F s" .. i .. "\n", read(results[i].log))
    end
  end)

  it("answers a failure of the child or of the options as spawn() does", function()
    local p1, e1, n1, p2, e2, n2 = sched.run(function()
      local a, b, c = proc.start({ command = { "true" }, cwd = dir .. "/no-such-dir" })
      local d, e, f = proc.start({ command = { "no-such-command-moonlet" } })
      return a, b, c, d, e, f
    end)
    assert.is_nil(p1)
    assert.are.equal("ENOENT", n1)
    assert.matches("^ENOENT: chdir to cwd", e1)
    assert.is_nil(p2)
    assert.are.equal("ENOENT", n2)
    assert.matches("executable file not found", e2)
  end)

  it("spawns at once outside a coroutine", function()
    local p = assert(proc.start({ command = { "true" } }))
    assert.is_true(p.pid > 0)
    local res = sched.run(function() return p:wait() end)
    assert.are.equal(0, res.exit_code)
  end)
end)

describe("moonlet.proc exec", function()
  it("runs to completion with stdout and stderr captured", function()
    local r = sched.run(function()
      return proc.exec({ command = { "sh", "-c", "echo out; echo err >&2; exit 1" } })
    end)
    assert.are.equal(1, r.exit_code)
    assert.are.equal("out\nerr\n", r.output)
    assert.is_false(r.truncated)
  end)

  it("caps the output at max_output", function()
    local r = sched.run(function()
      return proc.exec({ command = { "sh", "-c", "echo 0123456789abcdef" }, max_output = 4 })
    end)
    assert.are.equal("0123", r.output)
    assert.is_true(r.truncated)
  end)

  it("kills the group on timeout and says ETIMEDOUT", function()
    local r, err, name, dt = sched.run(function()
      local t0 = loop.hrtime()
      local r, err, name = proc.exec({ command = { "sh", "-c", "sleep 100 & sleep 100" },
                                       timeout_ms = 100 })
      return r, err, name, (loop.hrtime() - t0) / 1e6
    end)
    assert.is_nil(r)
    assert.are.equal("ETIMEDOUT", name)
    assert.matches("^ETIMEDOUT: command timed out after 100ms", err)
    assert.is_true(dt < 1500)
  end)

  it("returns spawn errors as values", function()
    local r, err, name = sched.run(function()
      return proc.exec({ command = { "no-such-command-moonlet" } })
    end)
    assert.is_nil(r)
    assert.are.equal("ENOENT", name)
  end)
end)

describe("moonlet.proc logs", function()
  it("writes CRI lines and reads them back with tail, timestamps, limit", function()
    local log = dir .. "/c.log"
    sched.run(function()
      local p = assert(proc.spawn(sh("echo a; echo b >&2; echo c; printf d",
        { stdout_log = log, stderr_log = log })))
      p:wait()
    end)
    local raw = read(log)
    local n = 0
    for line in raw:gmatch("[^\n]+") do
      n = n + 1
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z std[oe][ur][tr] F .$", line)
    end
    assert.are.equal(4, n)
    assert.matches(" stderr F b\n", raw, 1, true)
    local text, off = proc.read_log(log)
    assert.are.equal(4, #text:gsub("[^\n]", ""))
    assert.are.equal(#raw, off)
    -- the two pipes are read independently: take the order from the file
    local msgs = {}
    for m in raw:gmatch(" F (.)\n") do msgs[#msgs + 1] = m end
    assert.are.equal(table.concat(msgs, "\n") .. "\n", text)
    assert.are.equal(msgs[3] .. "\n" .. msgs[4] .. "\n", proc.read_log(log, { tail = 2 }))
    assert.are.equal(text:sub(1, 3), proc.read_log(log, { limit_bytes = 3 }))
    local ts = proc.read_log(log, { tail = 1, timestamps = true })
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT[%d:.]+Z " .. msgs[4] .. "\n$", ts)
    assert.are.equal("", proc.read_log(log, { since_seconds = -5 }))
    assert.are.equal(text, proc.read_log(log, { since_seconds = 60 }))
    local none, err, name = proc.read_log(dir .. "/missing.log")
    assert.is_nil(none)
    assert.are.equal("ENOENT", name)
  end)

  it("rotates by size and keeps log_max_files", function()
    local log = dir .. "/rot.log"
    sched.run(function()
      local p = assert(proc.spawn(sh("i=1; while [ $i -le 200 ]; do echo l$i; i=$((i+1)); done",
        { stdout_log = log, log_max_bytes = 1500, log_max_files = 2 })))
      p:wait()
    end)
    assert.is_truthy(read(log .. ".1"))
    assert.is_nil(read(log .. ".2"))
    local text = proc.read_log(log)
    assert.matches("l200\n$", text)
    local first = tonumber(text:match("^l(%d+)"))
    local count = #text:gsub("[^\n]", "")
    assert.are.equal(200 - first + 1, count)
  end)

  it("follows appended lines until closed", function()
    local log = dir .. "/f.log"
    local got = sched.run(function()
      local p = assert(proc.spawn(sh("echo first; sleep 0.2; echo second; echo third",
        { stdout_log = log })))
      loop.sleep(100)
      local _, off = assert(proc.read_log(log))
      local f = assert(proc.follow_log(log, off, { interval_ms = 10 }))
      local acc = ""
      while not acc:find("third\n", 1, true) do acc = acc .. assert(f:read()) end
      p:wait()
      f:close()
      assert.is_nil(f:read())
      return acc
    end)
    assert.are.equal("second\nthird\n", got)
  end)
end)

describe("moonlet.proc host", function()
  it("says whether memory limits are enforced, and why", function()
    local ok, why = proc.cgroups_available()
    assert.is_boolean(ok)
    assert.is_string(why)
    assert.is_true(#why > 0)
  end)

  it("kills a process over its memory limit (when cgroups are available)", function()
    if not proc.cgroups_available() then return end
    local r = sched.run(function()
      local p = assert(proc.spawn(sh("a=xxxxxxxxxxxxxxxx; while :; do a=$a$a; done",
        { memory_limit_bytes = 32 * 1024 * 1024 })))
      return p:wait()
    end)
    assert.is_true(r.oom_killed)
    assert.are.equal(137, r.exit_code)
  end)

  it("maps signal names", function()
    assert.are.equal(15, proc.signal("TERM"))
    assert.are.equal(9, proc.signal("SIGKILL"))
    assert.are.equal(2, proc.signal(2))
  end)
end)
