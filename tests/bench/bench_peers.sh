#!/usr/bin/env bash
# Pods issue, peer comparison (not part of ctest; run as root, loopback only).
# One run measures moonlet and its peers with the peers' own driver
# (bench.py of the shared peer baselines, imported, not copied):
#  1. restart after kill -9 (restartPolicy Always, first restart): moonlet
#     vs supervisord and PM2, each through the same code:
#     - "restart" (default): bench.py's W2 kills (10 programs round-robin,
#       moonlet one pod per kill; 0.3-1.3 s gaps; never younger than 1.5 s),
#       timed by the kernel: from just before kill() to the CLOCK_MONOTONIC
#       stamp of the replacement's exec event (netlink proc connector,
#       bench.py's ExecWatcher). The /proc poll of plain W2 takes one scan
#       per period, and a scan costs ~7 ms of CPU with ~400 processes on
#       this machine: that, not the restart, is what it measured.
#     - "restart-poll": bench.py's own W2, unchanged (poll /proc)
#     In the same part, the machine's floor: restart_floor.c as a bare
#     supervisor ("floor": pidfd, epoll, waitpid, vfork+setpgid+exec of the
#     same program, nothing else; "floor-sched": the same with moonlet's two
#     scheduling steps around the spawn), killed and timed the same way. With
#     BASE_BIN=PATH a second moonlet binary ("moonlet-base") is measured too;
#     ROUNDS=N repeats moonlet-base, moonlet and the floors N times interleaved
#     (the peers run once) and the summary pools the rounds.
#  2. N pods (default 1000), each its own HTTP server on 127.0.0.1 with an
#     HTTP liveness probe every 1 s: moonlet server CPU % of one core over a
#     30 s window, with monit checking 50 servers every 1 s (bench.py W4
#     steady state) as the baseline, compared per check
#  3. moonlet server RSS/PSS with those N running pods, and with N `sleep`
#     pods and no probes (also the idle CPU, to separate the probes' share)
# Usage: tests/bench/bench_peers.sh [BUILD_DIR]
# Env: ML_PEERS_DIR (default $ML_SRC/../shared/bench/peers), W2_REPS (30),
#      PODS (1000), WINDOW (30 s), MONIT_SERVERS (50), PEERS ("supervisord pm2
#      monit"; drop one to skip it), PARTS ("restart health"; also
#      "restart-poll"), IDLE=0 (skip the idle baseline of part 3),
#      KEEP_RESULTS=DIR (keep the JSON there), BASE_BIN, ROUNDS (1), FLOOR=0
#      (skip the floor), ML_FLOOR_BIN (a floor binary already built), OURS
#      (which of "moonlet-base moonlet floor floor-sched" to run).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export ML_SRC="${ML_SRC:-$(cd "$here/../.." && pwd)}"
build="${1:-$ML_SRC/build}"
export ML_BIN="${ML_BIN:-$(cd "$build" && pwd)/moonlet}"
export ML_PEERS_DIR="${ML_PEERS_DIR:-$ML_SRC/../shared/bench/peers}"
export W2_REPS="${W2_REPS:-30}" PODS="${PODS:-1000}" WINDOW="${WINDOW:-30}"
export MONIT_SERVERS="${MONIT_SERVERS:-50}"
peers="${PEERS-supervisord pm2 monit}"
parts="${PARTS:-restart health}"
[ -x "$ML_BIN" ] || { echo "no moonlet binary at $ML_BIN" >&2; exit 1; }
[ -f "$ML_PEERS_DIR/bench.py" ] || { echo "no bench.py in $ML_PEERS_DIR (set ML_PEERS_DIR)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || echo "warning: bench.py expects root (the peers were measured as root)" >&2
tmp="$(mktemp -d)"
export RES="${KEEP_RESULTS:-$tmp/results}"
mkdir -p "$RES"
trap 'rm -rf "$tmp"' EXIT
ulimit -n 65536 2>/dev/null || true

# The moonlet side: bench.py imported as a module, with moonlet registered as
# one more peer (the README's "Adding our product as a peer").
cat >"$tmp/ours.py" <<'PY'
import json, os, signal, socket, statistics, sys, time
sys.path.insert(0, os.environ["ML_PEERS_DIR"])
import bench

BIN = os.environ["ML_BIN"]
SRC = os.environ["ML_SRC"]
HSRV = os.path.join(SRC, "tests", "bench", "peers_hsrv.lua")
LOAD = os.path.join(SRC, "tests", "bench", "peers_load.lua")


class Moonlet(bench.Peer):
    name = "moonlet"
    settings = ("`moonlet server --data-dir DIR --image-path examples/images` (sqlite "
                "store, defaults); one Pod per program, restartPolicy Always, "
                "terminationGracePeriodSeconds 1, command = the program's argv; created "
                "with 16 requests in flight through the API. W2: one pod per kill (as many "
                "pods as kills), so every kill is that pod's first restart.")

    def setup_cold(self, programs, http=False):
        pods = []
        for p in programs:
            c = {"name": "main", "image": "busybox", "command": p.argv}
            if http:
                c["livenessProbe"] = {"httpGet": {"path": "/", "port": p.port},
                                      "periodSeconds": 1, "timeoutSeconds": 1}
            pods.append({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": p.name.lower(), "namespace": "default"},
                         "spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 1,
                                  "containers": [c]}})
        bench.write(f"{self.d}/pods.json", json.dumps(pods))

    def start(self):
        data = f"{self.d}/data"
        self.sock = f"{data}/moonlet.sock"
        self.main_pid = bench.spawn([BIN, "server", "--data-dir", data, "--image-path",
                                     os.path.join(SRC, "examples", "images")],
                                    out=f"{self.d}/server.log")
        if not bench.wait_for(lambda: os.path.exists(self.sock), 30, 0.02):
            raise RuntimeError("moonlet server did not start")
        rc, out, _ = bench.run_cmd([BIN, "lua", "--server", "unix:" + self.sock, LOAD,
                                    f"{self.d}/pods.json"], timeout=600)
        if rc != 0:
            raise RuntimeError(f"creating pods failed ({rc}): {out}")
        return []

    def stop(self):
        if self.alive(self.main_pid):
            bench.kill_pid(self.main_pid, signal.SIGTERM)
            bench.wait_for(lambda: not self.alive(self.main_pid), 60, 0.05)


class MoonletBase(Moonlet):
    """The same with the binary of BASE_BIN (a same-run A/B)."""
    name = "moonlet-base"

    def start(self):
        global BIN
        saved, BIN = BIN, os.environ["BASE_BIN"]
        try:
            return super().start()
        finally:
            BIN = saved


class Floor(bench.Peer):
    """The machine's floor: tests/bench/restart_floor.c as a bare supervisor."""
    name = "floor"
    settings = ("`restart_floor serve FILE` (tests/bench/restart_floor.c, cc -O2): each "
                "program vforked into its own process group and exec'd, its pidfd in one "
                "epoll set; on exit waitpid and the same spawn. No logs, no records, no API.")

    def setup_cold(self, programs, http=False):
        bench.write(f"{self.d}/progs.txt", "".join(" ".join(p.argv) + "\n" for p in programs))

    mode = "serve"

    def start(self):
        self.main_pid = bench.spawn([os.environ["ML_FLOOR_BIN"], self.mode, f"{self.d}/progs.txt"],
                                    out=f"{self.d}/floor.log")
        return []

    def stop(self):
        if self.alive(self.main_pid):
            bench.kill_pid(self.main_pid, signal.SIGTERM)
            bench.wait_for(lambda: not self.alive(self.main_pid), 30, 0.05)


class FloorSched(Floor):
    """The floor with moonlet's two scheduling steps around the spawn."""
    name = "floor-sched"
    mode = "serve-sched"
    settings = Floor.settings + (" serve-sched: the child starts on the supervisor's CPU "
                                 "and its exec is not preempted by the supervisor (as in "
                                 "core/proc.c).")


bench.PEERS = bench.PEERS + ("moonlet", "moonlet-base", "floor", "floor-sched")
bench.PEER_CLASSES["moonlet"] = Moonlet
bench.PEER_CLASSES["moonlet-base"] = MoonletBase
bench.PEER_CLASSES["floor"] = Floor
bench.PEER_CLASSES["floor-sched"] = FloorSched


def get(port, path, timeout=1.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            buf = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                buf += b
        head, _, body = buf.partition(b"\r\n\r\n")
        return int(head.split()[1]), body.decode()
    except (OSError, ValueError, IndexError):
        return None, None


def user_sys_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def health(opts, probes=True):
    """N pods, each its own HTTP server, each probed every second: the
    server's CPU and memory over a window (bench.py's measure_window), and
    the probes the servers saw in that window (their /count). With
    probes=False: N `sleep` pods and no probes (the idle baseline)."""
    n = opts.n
    if probes:
        progs = [bench.Prog(f"h{19000 + i}", [BIN, "lua", HSRV, str(19000 + i)], port=19000 + i)
                 for i in range(n)]
    else:
        progs = bench.sleep_programs(n)
    with bench.Session("moonlet", opts) as peer:
        t0 = bench.now()
        w = bench.start_and_wait(peer, progs, opts, http=probes)
        t_up = bench.now() - t0
        if probes and not bench.wait_for(
                lambda: all(get(p.port, "/count")[0] == 200 for p in progs), 120, 0.5):
            raise RuntimeError("not all HTTP servers answer")
        time.sleep(opts.settle)
        s0 = bench.now()
        c0 = [int(get(p.port, "/count")[1] or -1) for p in progs] if probes else []
        s0 = (s0 + bench.now()) / 2  # each server's count is read in turn
        t0, ut0 = bench.now(), user_sys_ticks(peer.main_pid)
        win = bench.measure_window(peer, opts.seconds)
        ut1, dt = user_sys_ticks(peer.main_pid), bench.now() - t0
        # The server's user/system split over the same window.
        win["cpu_pct_user"] = round(100.0 * (ut1[0] - ut0[0]) / bench.CLK_TCK / dt, 2)
        win["cpu_pct_system"] = round(100.0 * (ut1[1] - ut0[1]) / bench.CLK_TCK / dt, 2)
        s1 = bench.now()
        c1 = [int(get(p.port, "/count")[1] or -1) for p in progs] if probes else []
        s1 = (s1 + bench.now()) / 2
        floor = None
        if probes and os.environ.get("FLOOR_BIN"):
            # The machine's floor against the same servers (probe_floor.c):
            # bare sockets and epoll, the kubelet's request, same rate.
            rc, out, _ = bench.run_cmd([os.environ["FLOOR_BIN"], str(19000), str(n),
                                        str(opts.seconds)], timeout=opts.seconds + 60)
            if rc == 0 and out.strip():
                floor = {k: float(v) for k, v in
                         (kv.split("=", 1) for kv in out.split())}
        w.scan()
        n_run = sum(1 for p in progs if p.name in w.key2pid)
    seen = [b - a for a, b in zip(c0, c1) if a >= 0 and b >= 0]
    data = {"workload": "health" if probes else "idle", "peer": "moonlet", "pods": n,
            "settings": Moonlet.settings + (
                " Each pod runs tests/bench/peers_hsrv.lua (moonlet lua, 127.0.0.1:PORT) "
                "with livenessProbe httpGet / every 1 s, timeout 1 s." if probes else
                " Each pod runs `sleep 100000+i`, no probes."),
            "all_pods_exec_s": round(t_up, 2), "steady_state": win,
            "pods_running_at_end": n_run}
    if probes:
        data.update({"probes_in_window": sum(seen), "servers_answering": len(seen),
                     "probes_per_server_median": statistics.median(seen) if seen else 0,
                     # over the time between the two count sweeps (longer
                     # than the CPU window by one sweep)
                     "probes_per_s": round(sum(seen) / (s1 - s0), 1),
                     "loadavg": open("/proc/loadavg").read().split()[:3]})
        if floor:
            data["floor"] = floor
    bench.save(opts, f"{data['workload']}-moonlet-{n}", data)


def w2k(opts):
    """bench.py's W2 kills, timed by the kernel's exec stamp of the
    replacement process instead of by polling /proc."""
    import random
    rng = random.Random(opts.seed)
    n_prog = max(10, opts.reps) if opts.peer.startswith("moonlet") else 10
    programs = bench.sleep_programs(n_prog)
    lat = []
    with bench.Session(opts.peer, opts) as peer:
        w = bench.start_and_wait(peer, programs, opts)
        pid_of = dict(w.key2pid)
        ex = bench.ExecWatcher(programs)
        try:
            time.sleep(2.0)
            started = {p.name: bench.now() - 2.0 for p in programs}
            for i in range(opts.reps):
                k = programs[i % len(programs)].name
                wait = started[k] + opts.min_age - bench.now()
                if wait > 0:
                    time.sleep(wait)
                old = pid_of[k]
                with ex.cv:
                    ex.first.pop(k, None)
                t0 = bench.now()
                bench.kill_pid(old, signal.SIGKILL)
                with ex.cv:
                    while not (k in ex.first and ex.first[k][0] != old):
                        if bench.now() - t0 > opts.timeout:
                            raise RuntimeError(f"{k} not restarted within {opts.timeout}s")
                        ex.cv.wait(0.05)
                    pid_of[k], ts = ex.first[k]
                lat.append(ts - t0)
                started[k] = ts
                print(f"rep {i:2d} {k} {1000 * (ts - t0):8.2f} ms", flush=True)
                time.sleep(rng.uniform(opts.gap_min, opts.gap_max))
        finally:
            ex.close()
    settings = peer.settings() if callable(peer.settings) else peer.settings
    data = {"workload": "w2k", "peer": opts.peer, "programs": n_prog, "settings": settings,
            "timing": "kill() -> kernel exec event of the replacement (CLOCK_MONOTONIC)",
            "exec_events_lost": ex.overflow, "gap_s": [opts.gap_min, opts.gap_max],
            "loadavg": open("/proc/loadavg").read().split()[:3],
            "restart_ms": bench.summary(lat, 1000, 2),
            "runs_ms": [round(1000 * x, 2) for x in lat]}
    bench.save(opts, f"w2k-{opts.peer}" + (f"-r{opts.round}" if opts.round else ""), data)


if __name__ == "__main__":
    if sys.argv[1] == "w2k":
        import argparse
        ap = argparse.ArgumentParser()
        ap.add_argument("workload")
        ap.add_argument("--peer", required=True)
        ap.add_argument("--reps", type=int, default=30)
        ap.add_argument("--round", type=int, default=0)
        ap.add_argument("--out-dir", required=True)
        opts = ap.parse_args()
        # bench.py's defaults for everything its peers and W2 read
        for k, v in {"n": 10, "mode": "cold", "seconds": 30.0, "settle": 5.0, "servers": 50,
                     "hang_reps": 10, "min_age": 1.5, "monit_cycle": 1, "s6_notify": 1,
                     "http_timeout": 1, "monit_start_timeout": None, "timeout": 300.0,
                     "seed": 1, "gap_min": 0.3, "gap_max": 1.3, "no_exec_events": False,
                     "keep": False, "hold": 0}.items():
            setattr(opts, k, v)
        bench.become_subreaper()
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            w2k(opts)
        finally:
            bench.cleanup_descendants()
    elif sys.argv[1] in ("health", "idle"):
        import argparse
        ap = argparse.ArgumentParser()
        ap.add_argument("workload")
        ap.add_argument("--n", type=int, default=1000)
        ap.add_argument("--seconds", type=float, default=30.0)
        ap.add_argument("--settle", type=float, default=5.0)
        ap.add_argument("--timeout", type=float, default=300.0)
        ap.add_argument("--keep", action="store_true")
        ap.add_argument("--out-dir", required=True)
        opts = ap.parse_args()
        bench.become_subreaper()
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            health(opts, probes=opts.workload == "health")
        finally:
            bench.cleanup_descendants()
    else:
        # W2 with one pod per kill: every kill is that pod's first restart
        # (a second one would wait out Kubernetes' 10 s crash-loop back-off).
        reps = int(sys.argv[sys.argv.index("--reps") + 1])
        orig = bench.sleep_programs
        bench.sleep_programs = lambda k: orig(max(k, reps))
        bench.main()
PY

py() { python3 "$@"; }
has() { case " $1 " in *" $2 "*) return 0 ;; esac; return 1; }
if has "$parts" restart; then
  echo "== 1. restart after kill -9 (W2 kills timed by kernel exec events, $W2_REPS kills; load: $(cut -d' ' -f1-3 /proc/loadavg))"
  ours="moonlet"
  [ -n "${BASE_BIN:-}" ] && ours="moonlet-base moonlet"
  if [ -n "${ML_FLOOR_BIN:-}" ]; then
    ours="$ours floor floor-sched"
  elif [ "${FLOOR:-1}" != 0 ] && ${CC:-cc} -O2 -o "$tmp/restart_floor" "$here/restart_floor.c"; then
    export ML_FLOOR_BIN="$tmp/restart_floor"
    ours="$ours floor floor-sched"
  fi
  ours="${OURS:-$ours}"
  rounds="${ROUNDS:-1}"
  for r in $(seq 1 "$rounds"); do
    for p in $ours; do
      echo "-- $p (round $r of $rounds; load: $(cut -d' ' -f1-3 /proc/loadavg))"
      py "$tmp/ours.py" w2k --peer "$p" --reps "$W2_REPS" --round "$r" --out-dir "$RES"
    done
  done
  for p in supervisord pm2; do
    if has "$peers" "$p"; then
      py "$tmp/ours.py" w2k --peer "$p" --reps "$W2_REPS" --out-dir "$RES"
    fi
  done
fi
if has "$parts" restart-poll; then
  echo "== 1b. restart after kill -9 (bench.py's W2: /proc poll, $W2_REPS kills; load: $(cut -d' ' -f1-3 /proc/loadavg))"
  py "$tmp/ours.py" w2 --peer moonlet --reps "$W2_REPS" --out-dir "$RES"
  for p in supervisord pm2; do
    if has "$peers" "$p"; then py "$ML_PEERS_DIR/bench.py" w2 --peer "$p" --reps "$W2_REPS" --out-dir "$RES"; fi
  done
fi
if has "$parts" health; then
  # The floor (tests/bench/probe_floor.c) runs against the same servers.
  if [ "${FLOOR:-1}" != 0 ] && ${CC:-cc} -std=c11 -O2 -o "$tmp/probe_floor" "$here/probe_floor.c"; then
    export FLOOR_BIN="$tmp/probe_floor"
  fi
  if [ "${IDLE:-1}" != 0 ]; then
    echo "== 3. $PODS sleep pods, no probes (idle baseline)"
    py "$tmp/ours.py" idle --n "$PODS" --seconds "$WINDOW" --out-dir "$RES"
  fi
  echo "== 2. $PODS pods with an HTTP liveness probe every 1 s"
  py "$tmp/ours.py" health --n "$PODS" --seconds "$WINDOW" --out-dir "$RES"
  if has "$peers" monit; then
    py "$ML_PEERS_DIR/bench.py" w4 --peer monit --servers "$MONIT_SERVERS" --reps 0 --hang-reps 0 \
      --seconds "$WINDOW" --out-dir "$RES"
  fi
fi

echo "== summary"
py - <<'PY'
import json, os
res = os.environ["RES"]
def load(name):
    try:
        with open(os.path.join(res, name + ".json")) as f:
            return json.load(f)
    except OSError:
        return None
import glob, statistics
def pooled(peer):
    """Every round of a peer: its runs pooled, and each round's median and load."""
    runs, rounds = [], []
    for path in sorted(glob.glob(os.path.join(res, f"w2k-{peer}-r*.json"))):
        with open(path) as f:
            d = json.load(f)
        runs += d["runs_ms"]
        rounds.append(f"{d['restart_ms']['median']} (load {d['loadavg'][0]})")
    if not runs:
        return None, rounds
    s = sorted(runs)
    p90 = s[max(0, -(-9 * len(s) // 10) - 1)]
    return {"n": len(s), "min": s[0], "median": round(statistics.median(s), 2),
            "p90": p90, "max": s[-1]}, rounds
ours, _ = pooled("moonlet")
if ours or pooled("floor")[0]:
    print(f"restart after kill -9, kill -> exec (kernel stamp), ms (n, min / median / p90 / max;"
          f" rounds pooled, then each round's median):")
    for p in ("moonlet", "moonlet-base", "floor", "floor-sched"):
        r, rounds = pooled(p)
        if r:
            print(f"  {p:12s} n={r['n']} {r['min']} / {r['median']} / {r['p90']} / {r['max']}"
                  f"   rounds: {', '.join(rounds)}")
    for fp in ("floor", "floor-sched"):
        fl, _ = pooled(fp)
        if fl and ours:
            print(f"  -> moonlet median is {ours['median'] - fl['median']:.2f} ms above {fp}'s"
                  f" ({ours['median'] / max(fl['median'], 0.01):.2f}x)")
for p in ("supervisord", "pm2"):
    d = load(f"w2k-{p}") if ours else None
    if d:
        r = d["restart_ms"]
        print(f"  {p:11s} n={r['n']} {r['min']} / {r['median']} / {r['p90']} / {r['max']}"
              f"   -> moonlet median is {r['median'] / max(ours['median'], 0.01):.1f}x faster"
              f" (target >= 10x; load {' '.join(d['loadavg'])})")
w2 = load("w2-moonlet")
ours = w2["restart_ms"] if w2 else None
if ours:
    print(f"restart after kill -9, bench.py W2 (/proc poll), ms (n, min / median / p90 / max):")
    print(f"  moonlet     n={ours['n']} (poll period {w2['poll_period_ms_mean']} ms) {ours['min']} / {ours['median']} / {ours['p90']} / {ours['max']}")
for p in ("supervisord", "pm2"):
    d = load(f"w2-{p}") if ours else None
    if d:
        r = d["restart_ms"]
        print(f"  {p:11s} n={r['n']} (poll period {d['poll_period_ms_mean']} ms) {r['min']} / {r['median']} / {r['p90']} / {r['max']}"
              f"   -> moonlet median is {r['median'] / max(ours['median'], 0.01):.1f}x faster"
              f" (target >= 10x)")
h = load(f"health-moonlet-{os.environ['PODS']}")
if not h:
    raise SystemExit(0)
s = h["steady_state"]
checks = h["probes_per_s"]
us = s["cpu_pct"] / 100 * 1e6 / checks if checks else float("nan")
print(f"{h['pods']} pods, HTTP liveness probe every 1 s ({h['probes_in_window']} probes seen by "
      f"{h['servers_answering']} servers between two count sweeps = {checks}/s; CPU window "
      f"{s['window_s']} s):")
print(f"  moonlet server CPU {s['cpu_pct']} % of one core (self {s['cpu_pct_self']} %, reaped "
      f"children {s['cpu_pct_reaped_children']} %; target <= 10 %) = {us:.1f} us CPU per check"
      f" (load {' '.join(h.get('loadavg', []))})")
if "cpu_pct_user" in s and checks:
    print(f"  split: user {s['cpu_pct_user']} % + system {s['cpu_pct_system']} % = "
          f"{s['cpu_pct_user'] / 100 * 1e6 / checks:.1f} + "
          f"{s['cpu_pct_system'] / 100 * 1e6 / checks:.1f} us per check")
f = h.get("floor")
if f:
    print(f"  floor (probe_floor.c, bare epoll, same servers, right after): {f['per_s']:.0f} checks/s, "
          f"{f['us_per_check']:.1f} us per check (user {f['user_us_per_check']:.1f} + system "
          f"{f['sys_us_per_check']:.1f}) = {f['cpu_pct']:.2f} % of a core; ok {f['ok']:.0f}, "
          f"failed {f['fail']:.0f}")
print(f"  moonlet server RSS {s['rss_mib_median']} MiB median, {s['rss_mib_max']} max, PSS "
      f"{s['pss_mib_median']} MiB (target 40 MiB); {h['pods_running_at_end']} pods running at "
      f"the end; all {h['pods']} exec'd {h['all_pods_exec_s']} s after server start")
i = load(f"idle-moonlet-{os.environ['PODS']}")
if i:
    s = i["steady_state"]
    print(f"{i['pods']} sleep pods, no probes: moonlet server CPU {s['cpu_pct']} % of one core, RSS "
          f"{s['rss_mib_median']} MiB median, PSS {s['pss_mib_median']} MiB (target 40 MiB); "
          f"all exec'd {i['all_pods_exec_s']} s after server start")
m = load("w4-monit")
if m:
    ms = m["steady_state"]
    mus = ms["cpu_pct"] / 100 * 1e6 / m["servers"]
    print(f"  monit, {m['servers']} servers every 1 s: CPU {ms['cpu_pct']} % = {mus:.1f} us per check; "
          f"RSS {ms['rss_mib_median']} MiB")
    if us == us and us > 0:
        print(f"  -> per check moonlet uses {mus / us:.1f}x less CPU than monit; monit's CPU scaled "
              f"to {checks:.0f} checks/s would be {ms['cpu_pct'] / m['servers'] * checks:.1f} %")
PY
