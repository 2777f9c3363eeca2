#!/usr/bin/env python3
"""Where the time of a restart after kill -9 goes, by the kernel's clock
(not part of ctest; root, ftrace at /sys/kernel/tracing).

A moonlet server runs 10 `sleep` pods (restartPolicy Always, as in
bench_peers.sh's restart part); each pod's process is killed once, with the
same 0.3-1.3 s gaps, while ftrace (a tracing instance of its own, "mono"
clock) records scheduler events and the system calls of the server and its
children. For each kill it prints, in microseconds from just before kill(),
when each step happened:
  exit     the victim's sched_process_exit (its teardown starts: exit_mm)
  wake     the server thread woken (sched_wakeup/sched_waking of its pid)
  run      the server thread on a CPU (sched_switch to it)
  ep_ret   its epoll_wait returned
  clone    its clone() entered            fork  sched_process_fork
  child    the child's first system call  execve  its execve() entered
  vf_done  the parent woken by the exec (vfork done)  exec  sched_process_exec
  off      how long the child sat off the CPU during its execve
plus, with STEPS=1, the server's and the child's system calls in between.
  tests/bench/restart_trace.py [BUILD_DIR]   (env ML_BIN, KILLS=10, GAPS=1)
GAPS=0 kills 30 ms apart instead (no idle CPU between kills). FLOOR=PATH
traces restart_floor.c's bare supervisor (`PATH serve FILE`) instead, and
FLOOR_MODE=serve-sched its variant; KEEP_TRACE=FILE keeps the raw trace."""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

# A tracing instance of our own: the global buffer and settings stay as
# they are (others may be tracing).
T = f"/sys/kernel/tracing/instances/moonlet-restart-{os.getpid()}"
HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("ML_SRC") or os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("ML_BIN") or os.path.join(
    sys.argv[1] if len(sys.argv) > 1 else os.path.join(SRC, "build"), "moonlet")
KILLS = int(os.environ.get("KILLS", "10"))
GAPS = os.environ.get("GAPS", "1") != "0"
SLEEP = "/usr/bin/sleep" if os.path.exists("/usr/bin/sleep") else "/bin/sleep"
BASE = 200001

NR = {7: "poll", 232: "epoll_wait", 281: "epoll_pwait", 441: "epoll_pwait2",
      247: "waitid", 61: "wait4", 62: "kill", 56: "clone", 435: "clone3", 58: "vfork",
      59: "execve", 322: "execveat", 109: "setpgid", 157: "prctl", 110: "getppid",
      33: "dup2", 292: "dup3", 436: "close_range", 80: "chdir", 160: "setrlimit",
      13: "rt_sigaction", 14: "rt_sigprocmask", 0: "read", 1: "write", 3: "close",
      18: "pwrite64", 17: "pread64", 72: "fcntl", 293: "pipe2", 257: "openat",
      434: "pidfd_open", 233: "epoll_ctl", 228: "clock_gettime", 82: "rename",
      16: "ioctl", 39: "getpid", 272: "unshare", 302: "prlimit64", 4: "stat",
      262: "newfstatat", 21: "access", 439: "faccessat2"}


def w(path, text):
    with open(os.path.join(T, path), "w") as f:
        f.write(text)


def pids_of(args):
    found = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cl = f.read().split(b"\0")[:-1]
        except OSError:
            continue
        if len(cl) == 2 and cl[0] == SLEEP.encode() and cl[1].decode() in args:
            found[cl[1].decode()] = int(d)
    return found


def main():
    tmp = tempfile.mkdtemp()
    data = f"{tmp}/data"
    sock = f"{data}/moonlet.sock"
    log = open(f"{tmp}/server.log", "w")
    if os.environ.get("FLOOR"):
        with open(f"{tmp}/progs.txt", "w") as f:
            f.write("".join(f"{SLEEP} {BASE + i}\n" for i in range(KILLS)))
        sock = None
        srv = subprocess.Popen([os.environ["FLOOR"], os.environ.get("FLOOR_MODE", "serve"),
                                f"{tmp}/progs.txt"],
                               stdout=log, stderr=log)
    else:
        srv = subprocess.Popen([BIN, "server", "--data-dir", data, "--image-path",
                                os.path.join(SRC, "examples", "images")],
                               stdout=log, stderr=log)
    os.mkdir(T)
    try:
        run(srv, tmp, sock)
    finally:
        w("tracing_on", "0")
        os.rmdir(T)
        srv.send_signal(signal.SIGTERM)
        srv.wait(60)
        subprocess.run(["rm", "-rf", tmp])


def run(srv, tmp, sock):
    args = [str(BASE + i) for i in range(KILLS)]
    if sock:
        create_pods(tmp, sock, args)
    for _ in range(500):
        pids = pids_of(args)
        if len(pids) == len(args):
            break
        time.sleep(0.02)
    time.sleep(2.0)
    trace(srv, tmp, pids, args)


def create_pods(tmp, sock, args):
    for _ in range(1500):
        if os.path.exists(sock):
            break
        time.sleep(0.02)
    pods = [{"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": f"t{a}", "namespace": "default"},
             "spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 1,
                      "containers": [{"name": "main", "image": "busybox",
                                      "command": [SLEEP, a]}]}} for a in args]
    with open(f"{tmp}/pods.json", "w") as f:
        json.dump(pods, f)
    subprocess.run([BIN, "lua", "--server", "unix:" + sock,
                    os.path.join(HERE, "peers_load.lua"), f"{tmp}/pods.json"], check=True)


def trace(srv, tmp, pids, args):
    w("tracing_on", "0")
    w("trace", "")
    w("trace_clock", "mono")
    w("buffer_size_kb", "16384")
    w("events/enable", "0")
    for ev in ("sched_process_exit", "sched_process_fork", "sched_process_exec",
               "sched_wakeup", "sched_waking", "sched_switch", "sched_process_free"):
        w(f"events/sched/{ev}/enable", "1")
    # The server and its children only (pods, replacements before exec).
    w("set_event_pid", " ".join(str(x) for x in [srv.pid] + list(pids.values())))
    w("options/event-fork", "1")
    w("events/raw_syscalls/enable", "1")
    w("tracing_on", "1")
    rng = random.Random(1)
    marks = []
    with open(os.path.join(T, "trace_marker"), "w") as mk:
        for a in args:
            time.sleep(rng.uniform(0.3, 1.3) if GAPS else 0.03)
            pid = pids[a]
            mk.write(f"KILL {pid}\n")
            mk.flush()
            t0 = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            marks.append((pid, t0))
    time.sleep(0.3)
    w("tracing_on", "0")
    with open(os.path.join(T, "trace")) as f:
        text = f.read()
    w("events/enable", "0")
    with open(f"{tmp}/trace.txt", "w") as f:
        f.write(text)
    if os.environ.get("KEEP_TRACE"):
        subprocess.run(["cp", f"{tmp}/trace.txt", os.environ["KEEP_TRACE"]])
    analyse(text, srv.pid, marks)


def parse(text):
    evs = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        try:
            head, rest = line.split(": ", 1)
            ts = float(head.split()[-1])
            name, body = rest.split(": ", 1) if ": " in rest else (rest, "")
            task = head.split("[")[0].strip()
            pid = int(task.rsplit("-", 1)[1])
            cpu = int(head.split("[")[1].split("]")[0])
        except (ValueError, IndexError):
            continue
        evs.append((ts, pid, cpu, name.strip(), body))
    return evs


def field(body, key):
    for part in body.split():
        if part.startswith(key + "="):
            return part[len(key) + 1:]
    return None


def analyse(text, srv_pid, marks):
    evs = parse(text)
    rows = []
    for pid, t0 in marks:
        r = {"pid": pid}
        steps = []
        i0 = next(i for i, e in enumerate(evs) if e[0] >= t0 - 1e-4)
        child = None
        for ts, tpid, cpu, name, body in evs[i0:]:
            us = (ts - t0) * 1e6
            if us > 50000:
                break
            if name == "sched_waking" and "execve" in r and tpid == child \
                    and field(body, "pid") == str(srv_pid):
                r.setdefault("vf_done", us)
            elif name == "sched_switch" and child is not None and "execve" in r \
                    and field(body, "prev_pid") == str(child):
                r["off"] = r.get("off", 0)
                r["_off_at"] = us
                steps.append((us, "child off cpu " + field(body, "prev_state")))
            elif name == "sched_switch" and child is not None and "_off_at" in r \
                    and field(body, "next_pid") == str(child):
                r["off"] += us - r.pop("_off_at")
                steps.append((us, "child on cpu"))
            elif name == "sched_process_exit" and field(body, "pid") == str(pid):
                r.setdefault("exit", us)
            elif name in ("sched_waking", "sched_wakeup") and field(body, "pid") == str(srv_pid):
                r.setdefault("wake", us)
            elif name == "sched_switch" and field(body, "next_pid") == str(srv_pid) and "wake" in r:
                r.setdefault("run", us)
                r.setdefault("run_cpu", cpu)
            elif name == "sys_exit" and tpid == srv_pid and "wake" in r and "ep_ret" not in r:
                nr = int(body.split("NR ")[1].split()[0])
                if NR.get(nr, "").startswith("epoll"):
                    r["ep_ret"] = us
            elif name == "sys_enter" and tpid == srv_pid and "ep_ret" in r and "clone" not in r:
                nr = int(body.split("NR ")[1].split()[0])
                steps.append((us, NR.get(nr, str(nr))))
                if nr in (56, 58, 435):
                    r["clone"] = us
            elif name == "sched_process_fork" and "clone" in r and child is None:
                child = int(field(body, "child_pid"))
                r["fork"] = us
            elif name == "sys_enter" and child is not None and tpid == child and "exec" not in r:
                nr = int(body.split("NR ")[1].split()[0])
                r.setdefault("child", us)
                steps.append((us, "child " + NR.get(nr, str(nr))))
                if nr == 59:
                    r["execve"] = us
            elif name == "sched_process_exec" and child is not None and tpid == child:
                r["exec"] = us
                break
        r["steps"] = steps
        rows.append(r)
    keys = ("exit", "wake", "run", "ep_ret", "clone", "fork", "child", "execve", "vf_done",
            "exec", "off")
    print("kill -> (us)  " + " ".join(f"{k:>7s}" for k in keys) + "  cpu")
    for r in rows:
        print(f"pid {r['pid']:7d}  " + " ".join(
            f"{r[k]:7.0f}" if k in r else "      -" for k in keys) + f"  {r.get('run_cpu', '-')}")
    med = {}
    for k in keys:
        v = sorted(r[k] for r in rows if k in r)
        if v:
            med[k] = v[len(v) // 2]
    print("median       " + " ".join(f"{med[k]:7.0f}" if k in med else "      -" for k in keys))
    if os.environ.get("STEPS"):
        for r in rows:
            print(f"pid {r['pid']}: " + ", ".join(f"{n}@{us:.0f}" for us, n in r["steps"]))


if __name__ == "__main__":
    main()
