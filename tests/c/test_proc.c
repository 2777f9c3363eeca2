/* Tests of the process runtime (core/proc.c, proc_log.c, proc_cgroup.c) on
 * a bare moonlet loop: exit codes and 128+signal, exec failures without
 * zombies, env/cwd, group signals reaching grandchildren, stop escalation,
 * CRI log lines, partial lines and rotation, the log reader and follower,
 * exec capture and timeout, PDEATHSIG and leftover reaping after a simulated
 * server crash, the SIGCHLD fallback, memory limits (when the host allows),
 * replacements armed to start at an exit (their spare logs made and opened
 * when armed), the PATH lookup and its cache, the scheduling hand-off
 * around a spawn undone on both sides.
 * The test process is a child subreaper so orphaned grandchildren come back
 * to it and their fate can be checked. Prints TAP. ML_BENCH=1 adds timings. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "loop.h"
#include "proc.h"
#include "proc_internal.h"

#include "tap.h"

/* {====== loop harness: events land in a list; run until one arrives */

static uv_loop_t uv;
static ml_loop_t loop;
static char tmpdir[256];

#define MAX_EVENTS 4096
static ml_event_t *events[MAX_EVENTS];
static int nevents;

static void collect(ml_loop_t *l, void *ud) {
  (void)ud;
  ml_event_t *e;
  while ((e = ml_loop_pop(l)) != NULL) {
    if (nevents < MAX_EVENTS)
      events[nevents++] = e;
    else
      ml_event_free(e);
  }
}

static ml_event_t *take(uint64_t id) {
  for (int i = 0; i < nevents; i++) {
    if (events[i]->id == id) {
      ml_event_t *e = events[i];
      memmove(events + i, events + i + 1,
              sizeof *events * (size_t)(nevents - i - 1));
      nevents--;
      return e;
    }
  }
  return NULL;
}

typedef struct {
  uint64_t id;
  bool expired;
} waitfor_t;

static bool have(void *ud) {
  waitfor_t *w = ud;
  if (w->expired) return true;
  for (int i = 0; i < nevents; i++)
    if (events[i]->id == w->id) return true;
  return false;
}

static void on_deadline(uv_timer_t *t) {
  ((waitfor_t *)t->data)->expired = true;
  uv_stop(t->loop); /* else the turn may go on to block in poll */
}

/* One deadline timer for every wait (a timer on the stack could still be
 * in libuv's closing queue when the frame is gone). */
static uv_timer_t deadline;

static void run_until(waitfor_t *w, uint64_t ms) {
  deadline.data = w;
  uv_timer_start(&deadline, on_deadline, ms, 0);
  ml_loop_run(&loop, have, w);
  uv_timer_stop(&deadline);
}

/* Runs the loop until event `id` arrives or `ms` pass. */
static ml_event_t *wait_event(uint64_t id, uint64_t ms) {
  waitfor_t w = {id, false};
  run_until(&w, ms);
  return take(id);
}

static ml_proc_exit_t *wait_exit(uint64_t id, uint64_t ms) {
  return (ml_proc_exit_t *)wait_event(id, ms);
}

static void run_for(uint64_t ms) {
  waitfor_t w = {0, false};
  run_until(&w, ms);
}

static uint64_t next_id(void) { return ml_loop_next_id(&loop); }

typedef struct {
  const char *argv[8];
  const char *env[8];
} cmd_t;

static ml_proc_t *spawn_opts(uint64_t id, ml_proc_opts_t *o) {
  ml_proc_t *p = NULL;
  char msg[512];
  int rc = ml_proc_spawn(&loop, id, o, &p, msg, sizeof msg);
  if (rc < 0) printf("# spawn failed: %s %s\n", ml_err_name(rc), msg);
  return p;
}

static ml_proc_t *spawn_sh(uint64_t id, const char *script) {
  const char *argv[] = {"sh", "-c", script, NULL};
  ml_proc_opts_t o = {.argv = argv};
  return spawn_opts(id, &o);
}

/* Runs `script` to completion and returns its exit event. */
static ml_proc_exit_t *run_sh(const char *script) {
  uint64_t id = next_id();
  ml_proc_t *p = spawn_sh(id, script);
  if (!p) return NULL;
  ml_proc_exit_t *ev = wait_exit(id, 10000);
  ml_proc_release(p);
  return ev;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return buf;
}

static bool file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Waits up to 5 s for a file that a child writes (a pid). */
static int read_pid_file(const char *path) {
  for (int i = 0; i < 500; i++) {
    char *s = slurp(path);
    if (s && strchr(s, '\n')) return atoi(s);
    run_for(10);
  }
  return -1;
}

/* Counts our children that exist (running or zombie), from /proc. */
static int count_children(void) {
  DIR *d = opendir("/proc");
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    int fd = open(path, O_RDONLY);
    if (fd < 0) continue;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0) continue;
    buf[r] = 0;
    char *p = strrchr(buf, ')');
    int ppid = 0;
    if (p && sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == getpid()) n++;
  }
  closedir(d);
  return n;
}

/* Waits for an orphan that came back to us (subreaper) and returns its
 * wait status, or -1. */
static int reap_orphan(int pid, int ms) {
  int status;
  for (int i = 0; i < ms; i++) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return -1;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  return -1;
}

static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void free_ev(void *ev) {
  if (ev) ml_event_free((ml_event_t *)ev);
}

/* }====== */

static void test_exit_codes(void) {
  ml_proc_exit_t *ev = run_sh("exit 3");
  ok(ev != NULL, "exit event arrives");
  if (!ev) return;
  IS_INT(ev->head.kind, ML_PROC_EV_EXIT, "event kind");
  IS_INT(ev->exit_code, 3, "exit status");
  IS_INT(ev->signal, 0, "no signal");
  ok(ev->finished_ns >= ev->started_ns &&
         ev->started_ns > 1700000000LL * 1000000000LL,
     "start and finish times");
  free_ev(ev);
  ev = run_sh("kill -TERM $$");
  IS_INT(ev ? ev->exit_code : -1, 143, "SIGTERM gives 143");
  IS_INT(ev ? ev->signal : -1, SIGTERM, "signal reported");
  free_ev(ev);
  ev = run_sh("kill -KILL $$");
  IS_INT(ev ? ev->exit_code : -1, 137, "SIGKILL gives 137");
  free_ev(ev);
  ev = run_sh("true");
  IS_INT(ev ? ev->exit_code : -1, 0, "exit 0");
  free_ev(ev);

  char buf[40];
  ml_proc_format_time(1795946645123456789LL, buf);
  IS_STR(buf, "2026-11-29T10:04:05.123456789Z", "RFC 3339 with nanoseconds");
  ml_proc_format_time(1795946645000000001LL, buf);
  IS_STR(buf, "2026-11-29T10:04:05.000000001Z",
         "leading zeros of the fraction");
}

static void test_exec_failures(void) {
  int before = count_children();
  ml_proc_t *p = NULL;
  char msg[512];
  const char *a1[] = {"no-such-command-moonlet", NULL};
  ml_proc_opts_t o = {.argv = a1};
  int rc = ml_proc_spawn(&loop, next_id(), &o, &p, msg, sizeof msg);
  IS_INT(rc, UV_ENOENT, "unknown command: ENOENT");
  ok(strstr(msg, "executable file not found in $PATH") != NULL, "message: %s",
     msg);
  const char *a2[] = {"/nonexistent/bin/x", NULL};
  o.argv = a2;
  rc = ml_proc_spawn(&loop, next_id(), &o, &p, msg, sizeof msg);
  IS_INT(rc, UV_ENOENT, "missing path: ENOENT (from exec in the child)");
  ok(strstr(msg, "/nonexistent/bin/x") != NULL, "message: %s", msg);

  char noexec[300];
  snprintf(noexec, sizeof noexec, "%s/noexec.sh", tmpdir);
  FILE *f = fopen(noexec, "w");
  fputs("#!/bin/sh\necho hi\n", f);
  fclose(f);
  chmod(noexec, 0644);
  const char *a3[] = {noexec, NULL};
  o.argv = a3;
  rc = ml_proc_spawn(&loop, next_id(), &o, &p, msg, sizeof msg);
  IS_INT(rc, UV_EACCES, "not executable: EACCES");

  const char *a4[] = {"true", NULL};
  o.argv = a4;
  o.cwd = "/nonexistent-dir";
  rc = ml_proc_spawn(&loop, next_id(), &o, &p, msg, sizeof msg);
  IS_INT(rc, UV_ENOENT, "bad cwd: ENOENT");
  ok(strstr(msg, "chdir") != NULL, "message: %s", msg);
  o.cwd = NULL;
  o.stdout_log = "/nonexistent-dir/x.log";
  rc = ml_proc_spawn(&loop, next_id(), &o, &p, msg, sizeof msg);
  IS_INT(rc, UV_ENOENT, "bad log path: ENOENT");
  IS_INT(count_children(), before, "no child (zombie) left behind by failures");
  IS_INT(nevents, 0, "no exit events for failed spawns");
}

static void test_env_cwd(void) {
  char log[300];
  snprintf(log, sizeof log, "%s/env.log", tmpdir);
  const char *argv[] = {"sh", "-c", "echo \"$FOO $(pwd) $HOME\"", NULL};
  const char *env[] = {"FOO=bar baz", "PATH=/usr/bin:/bin", NULL};
  ml_proc_opts_t o = {
      .argv = argv, .env = env, .cwd = tmpdir, .stdout_log = log};
  uint64_t id = next_id();
  ml_proc_t *p = spawn_opts(id, &o);
  ml_proc_exit_t *ev = p ? wait_exit(id, 5000) : NULL;
  IS_INT(ev ? ev->exit_code : -1, 0, "env/cwd command ran");
  char want[400];
  snprintf(want, sizeof want, " stdout F bar baz %s \n", tmpdir);
  char *s = slurp(log);
  ok(s && strstr(s, want) != NULL, "env given exactly, cwd applied");
  free_ev(ev);
  ml_proc_release(p);
}

static void test_group_kill(void) {
  char pidf[300], script[600];
  snprintf(pidf, sizeof pidf, "%s/gk.pid", tmpdir);
  snprintf(script, sizeof script,
           "sleep 100 & echo $! > %s; wait; echo waited $?", pidf);
  uint64_t id = next_id();
  char glog[300];
  snprintf(glog, sizeof glog, "%s/gk.log", tmpdir);
  const char *gargv[] = {"sh", "-c", script, NULL};
  ml_proc_opts_t go = {.argv = gargv, .stdout_log = glog, .stderr_log = glog};
  ml_proc_t *p = spawn_opts(id, &go);
  int gpid = read_pid_file(pidf);
  ok(gpid > 0, "grandchild started");
  if (getenv("ML_DEBUG")) {
    char pp[64];
    snprintf(pp, sizeof pp, "/proc/%d/stat", gpid);
    printf("# gpid %d: %s\n", gpid, slurp(pp) ? slurp(pp) : "gone");
    printf("# log: %s\n", slurp(glog));
  }
  IS_INT(getpgid(gpid), ml_proc_pid(p), "grandchild in the container's group");
  IS_INT(getpgid(ml_proc_pid(p)), ml_proc_pid(p), "leader of its own group");
  /* Not a session of its own: setsid would put every container in a new
   * autogroup (see proc.c); the group is what kill and reaping use. */
  IS_INT(getsid(ml_proc_pid(p)), getsid(0), "in the server's session");
  IS_INT(ml_proc_kill(p, SIGTERM), 0, "kill(SIGTERM) to the group");
  ml_proc_exit_t *ev = wait_exit(id, 5000);
  IS_INT(ev ? ev->exit_code : -1, 143, "leader ended by SIGTERM");
  if (!ev || ev->exit_code != 143) printf("# log: %s\n", slurp(glog));
  int st = reap_orphan(gpid, 5000);
  ok(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM,
     "the grandchild got the group's SIGTERM");
  IS_INT(ml_proc_kill(p, SIGTERM), UV_ESRCH, "kill after exit: ESRCH");
  free_ev(ev);
  ml_proc_release(p);

  /* The leader exits on its own: what is left of the group goes too, as a
   * container's processes die with its init. */
  snprintf(pidf, sizeof pidf, "%s/gk2.pid", tmpdir);
  snprintf(script, sizeof script, "sleep 100 >/dev/null 2>&1 & echo $! > %s",
           pidf);
  id = next_id();
  p = spawn_sh(id, script);
  ev = wait_exit(id, 5000);
  IS_INT(ev ? ev->exit_code : -1, 0, "leader exited");
  gpid = read_pid_file(pidf);
  st = reap_orphan(gpid, 5000);
  ok(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
     "the rest of the group is killed when the leader exits");
  free_ev(ev);
  ml_proc_release(p);
}

static void test_stop(void) {
  uint64_t id = next_id();
  ml_proc_t *p = spawn_sh(id, "trap '' TERM; while :; do sleep 0.05; done");
  run_for(100);
  uint64_t t0 = uv_now(&uv);
  IS_INT(ml_proc_stop(p, 300), 0, "stop with a 300 ms grace period");
  ml_proc_exit_t *ev = wait_exit(id, 5000);
  uint64_t took = uv_now(&uv) - t0;
  IS_INT(ev ? ev->exit_code : -1, 137,
         "SIGTERM ignored: SIGKILL after the grace");
  ok(took >= 290 && took < 2000, "escalated after the grace period (%llu ms)",
     (unsigned long long)took);
  free_ev(ev);
  ml_proc_release(p);

  id = next_id();
  p = spawn_sh(id, "exec sleep 100");
  t0 = uv_now(&uv);
  ml_proc_stop(p, 10000);
  ev = wait_exit(id, 5000);
  IS_INT(ev ? ev->exit_code : -1, 143, "SIGTERM honoured: 143");
  ok(uv_now(&uv) - t0 < 1000, "no wait for the grace period");
  IS_INT(ml_proc_stop(p, 1), UV_ESRCH, "stop after exit: ESRCH");
  free_ev(ev);
  ml_proc_release(p);

  id = next_id();
  p = spawn_sh(id, "exec sleep 100");
  ml_proc_stop(p, 0);
  ev = wait_exit(id, 5000);
  IS_INT(ev ? ev->exit_code : -1, 137, "stop(0) kills at once");
  free_ev(ev);
  ml_proc_release(p);
}

static void test_release_running(void) {
  uint64_t id = next_id();
  ml_proc_t *p = spawn_sh(id, "exec sleep 100");
  int pid = ml_proc_pid(p);
  ml_proc_release(p);
  ok(kill(pid, 0) < 0 && errno == ESRCH,
     "release kills and reaps a running process");
  ml_proc_exit_t *ev = wait_exit(id, 1000);
  IS_INT(ev ? ev->exit_code : -1, 137, "its exit is still reported");
  free_ev(ev);
}

/* An armed replacement: started by the runtime at an exit of the process'
 * own (an outside kill -9), before the event, and handed over in it. */
static void test_armed_restart(void) {
  char spare[300], log[300];
  snprintf(spare, sizeof spare, "%s/arm-spare.log", tmpdir);
  snprintf(log, sizeof log, "%s/arm-next.log", tmpdir);
  int fd = open(spare, O_WRONLY | O_CREAT | O_TRUNC, 0640);
  if (fd >= 0) close(fd);
  const char *argv[] = {"sh", "-c", "echo next-$X; exec sleep 100", NULL};
  const char *env[] = {"X=2", "PATH=/usr/bin:/bin", NULL};
  ml_proc_opts_t next = {.argv = argv, .env = env, .stdout_log = log,
                         .stderr_log = log, .stdout_log_from = spare,
                         .state_dir = tmpdir, .udata = 77};
  uint64_t id = next_id(), nid = next_id();
  ml_proc_t *p = spawn_sh(id, "exec sleep 100");
  int rc = ml_proc_arm_restart(p, nid, &next, ML_PROC_RESTART_ANY, 0);
  IS_INT(rc, 0, "arm");
  next.argv = NULL; /* the options were copied */
  kill(ml_proc_pid(p), SIGKILL);
  ml_proc_exit_t *ev = wait_exit(id, 5000);
  ml_proc_t *np = ev ? ev->next : NULL;
  ok(ev && ev->exit_code == 137 && np && ev->next_spawned_ns > 0,
     "an outside kill -9: the exit comes with the replacement");
  ok(np && kill(ml_proc_pid(np), 0) == 0 && !file_exists(spare),
     "it runs, and its log took the spare");
  if (ev) ev->next = NULL;
  free_ev(ev);
  ml_proc_release(p);
  for (int i = 0; i < 100 && !strstr(slurp(log) ? slurp(log) : "", "next-2");
       i++)
    run_for(10);
  ok(strstr(slurp(log) ? slurp(log) : "", " stdout F next-2\n") != NULL,
     "with its own command, environment and log");
  if (np) {
    ml_proc_release(np);
    ml_proc_exit_t *nev = wait_exit(nid, 5000);
    ok(nev && nev->udata == 77 && nev->exit_code == 137 && !nev->next,
       "its own exit goes to its own id");
    free_ev(nev);
  }

  /* "failure": not after exit 0; after exit 3. */
  next.argv = argv;
  next.stdout_log = next.stderr_log = next.stdout_log_from = NULL;
  id = next_id();
  nid = next_id();
  p = spawn_sh(id, "sleep 0.2; exit 0");
  ml_proc_arm_restart(p, nid, &next, ML_PROC_RESTART_FAILURE, 0);
  ev = wait_exit(id, 5000);
  ok(ev && ev->exit_code == 0 && !ev->next, "failure: none after exit 0");
  free_ev(ev);
  ml_proc_release(p);
  id = next_id();
  p = spawn_sh(id, "sleep 0.2; exit 3");
  ml_proc_arm_restart(p, nid, &next, ML_PROC_RESTART_FAILURE, 0);
  ev = wait_exit(id, 5000);
  ok(ev && ev->exit_code == 3 && ev->next, "failure: one after exit 3");
  /* Dropped without being taken: the replacement is stopped with it. */
  int npid = ev && ev->next ? ml_proc_pid(ev->next) : 0;
  free_ev(ev);
  ok(npid > 0 && kill(npid, 0) < 0 && errno == ESRCH,
     "an event dropped with its replacement stops it");
  free_ev(wait_exit(nid, 5000));
  ml_proc_release(p);

  /* Disarmed by stop and kill through the handle, by disarm, and by a
   * time before which no exit restarts. */
  for (int how = 0; how < 4; how++) {
    id = next_id();
    nid = next_id();
    p = spawn_sh(id, "exec sleep 100");
    ml_proc_arm_restart(p, nid, &next, ML_PROC_RESTART_ANY,
                        how == 3 ? 60000 : 0);
    if (how == 0) ml_proc_stop(p, 0);
    if (how == 1) ml_proc_kill(p, SIGKILL);
    if (how == 2) {
      ok(ml_proc_disarm(p) && !ml_proc_disarm(p), "disarm once");
      kill(ml_proc_pid(p), SIGKILL);
    }
    if (how == 3) kill(ml_proc_pid(p), SIGKILL);
    ev = wait_exit(id, 5000);
    ok(ev && !ev->next, "no replacement after %s",
       how == 0   ? "stop"
       : how == 1 ? "kill through the handle"
       : how == 2 ? "disarm"
                  : "an exit before not_before");
    free_ev(ev);
    ml_proc_release(p);
  }

  /* A replacement that cannot start: the exit comes without one. */
  const char *bad[] = {"/nonexistent/cmd", NULL};
  next.argv = bad;
  id = next_id();
  p = spawn_sh(id, "exec sleep 100");
  IS_INT(ml_proc_arm_restart(p, next_id(), &next, ML_PROC_RESTART_ANY, 0), 0,
         "arm a bad command");
  int before = count_children();
  kill(ml_proc_pid(p), SIGKILL);
  ev = wait_exit(id, 5000);
  ok(ev && !ev->next && count_children() < before,
     "a replacement that fails to start: no next, no child left");
  free_ev(ev);
  ml_proc_release(p);
  const char *missing[] = {"no-such-command-for-moonlet", NULL};
  next.argv = missing;
  p = spawn_sh(id = next_id(), "exec sleep 100");
  IS_INT(ml_proc_arm_restart(p, next_id(), &next, ML_PROC_RESTART_ANY, 0),
         UV_ENOENT, "the PATH lookup is done when arming");
  ml_proc_release(p);
  free_ev(wait_exit(id, 5000));
  ml_proc_opts_t cap = {.argv = argv, .capture = true};
  p = spawn_sh(id = next_id(), "exec sleep 100");
  IS_INT(ml_proc_arm_restart(p, next_id(), &cap, ML_PROC_RESTART_ANY, 0),
         ML_EINVALID, "capture cannot be armed");
  ml_proc_release(p);
  free_ev(wait_exit(id, 5000));
}

/* Whether this process holds a descriptor open on `path`'s inode. */
static bool holds_open(const char *path) {
  struct stat want, st;
  if (stat(path, &want) < 0) return false;
  DIR *d = opendir("/proc/self/fd");
  bool found = false;
  struct dirent *e;
  while (d && !found && (e = readdir(d)) != NULL) {
    char fdpath[300];
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%s", e->d_name);
    found = e->d_name[0] != '.' && stat(fdpath, &st) == 0 &&
            st.st_ino == want.st_ino && st.st_dev == want.st_dev;
  }
  if (d) closedir(d);
  return found;
}

static ino_t make_file(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
  struct stat st;
  st.st_ino = 0;
  if (fd >= 0) {
    fstat(fd, &st);
    close(fd);
  }
  return st.st_ino;
}

/* An armed replacement's spare log is opened when arming, not on the way
 * to its exec; a spare replaced in between is opened afresh. */
static void test_armed_spare_log(void) {
  char spare[300], log[300], other[300];
  snprintf(spare, sizeof spare, "%s/pre-spare.log", tmpdir);
  snprintf(log, sizeof log, "%s/pre-next.log", tmpdir);
  snprintf(other, sizeof other, "%s/pre-other.log", tmpdir);
  const char *argv[] = {"sh", "-c", "echo pre-$X; exec sleep 100", NULL};
  const char *env[] = {"X=1", "PATH=/usr/bin:/bin", NULL};
  for (int replace = 0; replace < 2; replace++) {
    ino_t ino = make_file(spare);
    ml_proc_opts_t next = {.argv = argv, .env = env, .stdout_log = log,
                           .stderr_log = log, .stdout_log_from = spare};
    uint64_t id = next_id(), nid = next_id();
    ml_proc_t *p = spawn_sh(id, "exec sleep 100");
    IS_INT(ml_proc_arm_restart(p, nid, &next, ML_PROC_RESTART_ANY, 0), 0,
           "arm with a spare log");
    ok(holds_open(spare), "the spare is open once armed");
    if (replace) { /* as keep_spare_log recycles an old log into it */
      ino = make_file(other);
      rename(other, spare);
    }
    kill(ml_proc_pid(p), SIGKILL);
    ml_proc_exit_t *ev = wait_exit(id, 5000);
    ml_proc_t *np = ev ? ev->next : NULL;
    if (ev) ev->next = NULL;
    free_ev(ev);
    ml_proc_release(p);
    struct stat st;
    ok(np && stat(log, &st) == 0 && st.st_ino == ino && !file_exists(spare),
       replace ? "a spare replaced after arming: the new one becomes the log"
               : "the spare opened when armed becomes the log");
    for (int i = 0; i < 100 && !strstr(slurp(log) ? slurp(log) : "", "pre-1");
         i++)
      run_for(10);
    ok(strstr(slurp(log) ? slurp(log) : "", " stdout F pre-1\n") != NULL,
       "the replacement writes into it");
    if (np) {
      ml_proc_release(np);
      free_ev(wait_exit(nid, 5000));
    }
    unlink(log);
  }
  /* Disarming (or a spawn that does not happen) closes it again. */
  make_file(spare);
  ml_proc_opts_t next = {.argv = argv, .stdout_log = log, .stderr_log = log,
                         .stdout_log_from = spare};
  uint64_t id = next_id();
  ml_proc_t *p = spawn_sh(id, "exec sleep 100");
  ml_proc_arm_restart(p, next_id(), &next, ML_PROC_RESTART_ANY, 0);
  ml_proc_arm_restart(p, next_id(), &next, ML_PROC_RESTART_ANY, 0);
  ml_proc_disarm(p);
  ok(!holds_open(spare) && !file_exists(log),
     "rearmed, then disarmed: the spare is closed, no log made");
  ml_proc_release(p);
  free_ev(wait_exit(id, 5000));
  unlink(spare);
}

/* An armed replacement's spare is made by the arm itself (the kubelet
 * creates no file for it), and an old log recycled under its name is
 * emptied. */
static void test_arm_makes_spare(void) {
  char spare[300], log[300];
  snprintf(spare, sizeof spare, "%s/made-spare.log", tmpdir);
  snprintf(log, sizeof log, "%s/made-next.log", tmpdir);
  unlink(spare);
  const char *argv[] = {"sh", "-c", "echo made; exec sleep 100", NULL};
  ml_proc_opts_t next = {.argv = argv, .stdout_log = log, .stderr_log = log,
                         .stdout_log_from = spare};
  uint64_t id = next_id();
  ml_proc_t *p = spawn_sh(id, "exec sleep 100");
  IS_INT(ml_proc_arm_restart(p, next_id(), &next, ML_PROC_RESTART_ANY, 0), 0,
         "arm with a spare that does not exist");
  struct stat st;
  ok(stat(spare, &st) == 0 && st.st_size == 0 && holds_open(spare),
     "the arm made it, empty, and holds it open");
  int fd = open(spare, O_WRONLY | O_APPEND);
  if (fd >= 0) {
    ssize_t w = write(fd, "old text\n", 9);
    (void)w;
    close(fd);
  }
  IS_INT(ml_proc_arm_restart(p, next_id(), &next, ML_PROC_RESTART_ANY, 0), 0,
         "armed again over an old log recycled as the spare");
  ok(stat(spare, &st) == 0 && st.st_size == 0, "its old text is gone");
  ok(!file_exists(log), "no instance log made before the instance runs");
  ml_proc_disarm(p);
  ml_proc_release(p);
  free_ev(wait_exit(id, 5000));
  unlink(spare);
}

/* A log file is made by the first line written: a process that writes
 * nothing leaves none; one that writes later gets its file then; an
 * existing file is appended to, its size counted for rotation. */
static void test_lazy_log(void) {
  char silent[300], late[300], old[300];
  snprintf(silent, sizeof silent, "%s/lazy-silent.log", tmpdir);
  snprintf(late, sizeof late, "%s/lazy-late.log", tmpdir);
  snprintf(old, sizeof old, "%s/lazy-old.log", tmpdir);
  const char *a1[] = {"true", NULL};
  ml_proc_opts_t o = {.argv = a1, .stdout_log = silent, .stderr_log = silent};
  uint64_t id = next_id();
  ml_proc_t *p = spawn_opts(id, &o);
  ok(p && !file_exists(silent), "no log file at the spawn");
  free_ev(wait_exit(id, 5000));
  ml_proc_release(p);
  ok(!file_exists(silent), "none after a process that wrote nothing");
  const char *a2[] = {"sh", "-c", "sleep 0.2; echo late", NULL};
  o.argv = a2;
  o.stdout_log = o.stderr_log = late;
  id = next_id();
  p = spawn_opts(id, &o);
  ok(p && !file_exists(late), "a process that writes later: none yet");
  free_ev(wait_exit(id, 5000));
  ml_proc_release(p);
  char *text = slurp(late);
  ok(text && strstr(text, " stdout F late\n") != NULL, "made by its first line");
  FILE *f = fopen(old, "w");
  for (int i = 0; f && i < 20; i++)
    fputs("2026-01-01T00:00:00.000000000Z stdout F old\n", f);
  if (f) fclose(f);
  const char *a3[] = {"sh", "-c", "echo new", NULL};
  o.argv = a3;
  o.stdout_log = o.stderr_log = old;
  o.log_max_bytes = 900; /* 20 old lines are 880 bytes: the new one rotates */
  o.log_max_files = 2;
  id = next_id();
  p = spawn_opts(id, &o);
  free_ev(wait_exit(id, 5000));
  ml_proc_release(p);
  char rot[320];
  snprintf(rot, sizeof rot, "%s.1", old);
  text = slurp(old); /* one static buffer: each file checked in turn */
  bool new_alone = text && strstr(text, " stdout F new\n") &&
                   !strstr(text, " old\n");
  text = slurp(rot);
  ok(new_alone && text && strstr(text, " old\n"),
     "an existing file: its size counts (rotated before the new line)");
  unlink(late);
  unlink(old);
  unlink(rot);
}

static void write_script(const char *path, const char *body) {
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(body, f);
    fclose(f);
  }
  chmod(path, 0755);
}

/* Spawns argv with env and returns its exit code, or the spawn's error. */
static int run_env(const char *const *argv, const char *const *env,
                   char *msg, size_t mlen) {
  ml_proc_t *p = NULL;
  ml_proc_opts_t o = {.argv = argv, .env = env};
  uint64_t id = next_id();
  int rc = ml_proc_spawn(&loop, id, &o, &p, msg, mlen);
  if (rc < 0) return rc;
  ml_proc_exit_t *ev = wait_exit(id, 5000);
  int code = ev ? ev->exit_code : -1;
  free_ev(ev);
  ml_proc_release(p);
  return code;
}

/* One PATH search per start: the spawn searches, the arm that follows
 * takes the cached answer, and so do later spawns within the cache's
 * lifetime, each checking the file with one stat. A file changed, made
 * unexecutable or gone is searched again; after the lifetime, a command
 * installed since into an earlier PATH directory is found. */
static void test_path_cache(void) {
  char da[300], db[300], fa[320], fb[320], path[700];
  snprintf(da, sizeof da, "%s/path-a", tmpdir);
  snprintf(db, sizeof db, "%s/path-b", tmpdir);
  mkdir(da, 0700);
  mkdir(db, 0700);
  snprintf(fa, sizeof fa, "%s/ml-cmd", da);
  snprintf(fb, sizeof fb, "%s/ml-cmd", db);
  snprintf(path, sizeof path, "PATH=%s:%s:/usr/bin:/bin", da, db);
  write_script(fb, "#!/bin/sh\nexit 3\n");
  const char *argv[] = {"ml-cmd", NULL};
  const char *env[] = {path, NULL};
  char msg[512];
  ml__proc_path_forget();
  unsigned long n0 = ml__proc_path_searches();
  ml_proc_opts_t o = {.argv = argv, .env = env};
  uint64_t id = next_id();
  ml_proc_t *p = NULL;
  IS_INT(ml_proc_spawn(&loop, id, &o, &p, msg, sizeof msg), 0, "spawn");
  IS_INT(ml_proc_arm_restart(p, next_id(), &o, ML_PROC_RESTART_FAILURE, 0), 0,
         "arm");
  ml_proc_disarm(p);
  IS_INT((int)(ml__proc_path_searches() - n0), 1,
         "spawn and arm: one PATH search");
  ml_proc_exit_t *ev = wait_exit(id, 5000);
  ok(ev && ev->exit_code == 3, "found in the second directory");
  free_ev(ev);
  ml_proc_release(p);
  IS_INT(run_env(argv, env, msg, sizeof msg), 3, "again");
  IS_INT((int)(ml__proc_path_searches() - n0), 1, "from the cache");
  unlink(fb); /* a new file (inode) in its place */
  write_script(fb, "#!/bin/sh\nexit 4\n");
  IS_INT(run_env(argv, env, msg, sizeof msg), 4, "a replaced file");
  IS_INT((int)(ml__proc_path_searches() - n0), 2, "is searched again");
  chmod(fb, 0644);
  IS_INT(run_env(argv, env, msg, sizeof msg), UV_EACCES,
         "made unexecutable: EACCES, as without a cache");
  chmod(fb, 0755);
  IS_INT(run_env(argv, env, msg, sizeof msg), 4, "executable again");
  write_script(fa, "#!/bin/sh\nexit 5\n");
  unsigned long n1 = ml__proc_path_searches();
  struct timespec ts = {1, 50000000};
  nanosleep(&ts, NULL);
  IS_INT(run_env(argv, env, msg, sizeof msg), 5,
         "after a second: a command installed into an earlier directory");
  IS_INT((int)(ml__proc_path_searches() - n1), 1, "found by a new search");
  unlink(fa);
  unlink(fb);
  IS_INT(run_env(argv, env, msg, sizeof msg), UV_ENOENT, "gone: ENOENT");
  ok(strstr(msg, "executable file not found in $PATH") != NULL, "message: %s",
     msg);
  rmdir(da);
  rmdir(db);
}

/* The scheduling hand-off around a spawn (the server thread made
 * SCHED_BATCH by the child's exec and pinned to its CPU while the child
 * starts) is undone on both sides, and a policy or CPU set of the
 * server's own is left as it was. */
static int policy_of(pid_t pid) { return sched_getscheduler(pid); }

static void test_spawn_sched(void) {
  cpu_set_t mine, got;
  CPU_ZERO(&mine);
  sched_getaffinity(0, sizeof mine, &mine);
  uint64_t id = next_id();
  ml_proc_t *p = spawn_sh(id, "exec sleep 100");
  pid_t pid = p ? ml_proc_pid(p) : 0;
  CPU_ZERO(&got);
  sched_getaffinity(0, sizeof got, &got);
  ok(policy_of(0) == SCHED_OTHER && CPU_EQUAL(&got, &mine),
     "after a spawn the server thread has its policy and CPUs back");
  CPU_ZERO(&got);
  ok(pid > 0 && policy_of(pid) == SCHED_OTHER &&
         sched_getaffinity(pid, sizeof got, &got) == 0 &&
         CPU_EQUAL(&got, &mine),
     "the child runs SCHED_OTHER on every CPU the server may use");
  ml_proc_release(p);
  free_ev(wait_exit(id, 5000));

  struct sched_param sp = {.sched_priority = 0};
  if (sched_setscheduler(0, SCHED_BATCH, &sp) == 0) {
    p = spawn_sh(id = next_id(), "exec sleep 100");
    ok(policy_of(0) == SCHED_BATCH && p &&
           policy_of(ml_proc_pid(p)) == SCHED_BATCH,
       "a server run as SCHED_BATCH stays so, and its child inherits it");
    ml_proc_release(p);
    free_ev(wait_exit(id, 5000));
    sched_setscheduler(0, SCHED_OTHER, &sp);
  }
  int cpu = sched_getcpu();
  if (CPU_COUNT(&mine) > 1 && cpu >= 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    sched_setaffinity(0, sizeof one, &one);
    p = spawn_sh(id = next_id(), "exec sleep 100");
    CPU_ZERO(&got);
    sched_getaffinity(0, sizeof got, &got);
    bool server_kept = CPU_EQUAL(&got, &one);
    CPU_ZERO(&got);
    ok(server_kept && p &&
           sched_getaffinity(ml_proc_pid(p), sizeof got, &got) == 0 &&
           CPU_EQUAL(&got, &one),
       "a server held to one CPU stays so, and so does its child");
    ml_proc_release(p);
    free_ev(wait_exit(id, 5000));
    sched_setaffinity(0, sizeof mine, &mine);
  }
}

static bool cri_line_ok(const char *l, const char *stream, char tag,
                        const char *msg) {
  /* 2026-11-29T10:04:05.123456789Z stdout F msg */
  if (strlen(l) < 31 || l[4] != '-' || l[10] != 'T' || l[19] != '.' ||
      l[29] != 'Z' || l[30] != ' ')
    return false;
  for (int i = 20; i < 29; i++)
    if (l[i] < '0' || l[i] > '9') return false;
  char want[256];
  snprintf(want, sizeof want, "%s %c %s", stream, tag, msg);
  return strncmp(l + 31, want, strlen(want)) == 0;
}

static void test_logs(void) {
  char log[300], elog[300];
  snprintf(log, sizeof log, "%s/c.log", tmpdir);
  snprintf(elog, sizeof elog, "%s/c.err.log", tmpdir);
  const char *argv[] = {"sh", "-c",
                        "echo one; echo two >&2; printf 'no newline'", NULL};
  ml_proc_opts_t o = {.argv = argv, .stdout_log = log, .stderr_log = log};
  uint64_t id = next_id();
  ml_proc_t *p = spawn_opts(id, &o);
  ml_proc_exit_t *ev = wait_exit(id, 5000);
  ok(ev != NULL, "logged command exited");
  free_ev(ev);
  ml_proc_release(p);
  char *s = slurp(log);
  char *l1 = s, *l2 = l1 ? strchr(l1, '\n') + 1 : NULL;
  char *l3 = l2 ? strchr(l2, '\n') + 1 : NULL;
  ok(l1 && cri_line_ok(l1, "stdout", 'F', "one\n"), "CRI stdout line");
  ok(l2 && cri_line_ok(l2, "stderr", 'F', "two\n"),
     "CRI stderr line, same file");
  ok(l3 && cri_line_ok(l3, "stdout", 'F', "no newline\n"),
     "an unterminated last line is written as F at exit");

  /* Separate files for the two streams. */
  o.stderr_log = elog;
  snprintf(log, sizeof log, "%s/c2.log", tmpdir);
  o.stdout_log = log;
  id = next_id();
  p = spawn_opts(id, &o);
  free_ev(wait_exit(id, 5000));
  ml_proc_release(p);
  s = slurp(elog);
  ok(s && cri_line_ok(s, "stderr", 'F', "two\n") && !strstr(s, "stdout"),
     "stderr in its own file");

  /* A 40,000-byte line: P 16384, P 16384, F 7232 (containerd's cut). */
  char big[300];
  snprintf(big, sizeof big, "%s/big.txt", tmpdir);
  FILE *f = fopen(big, "w");
  for (int i = 0; i < 40000; i++) fputc('a' + i % 26, f);
  fputs("\nshort\n", f);
  fclose(f);
  snprintf(log, sizeof log, "%s/big.log", tmpdir);
  const char *cat[] = {"cat", big, NULL};
  ml_proc_opts_t oc = {.argv = cat, .stdout_log = log};
  id = next_id();
  p = spawn_opts(id, &oc);
  free_ev(wait_exit(id, 5000));
  ml_proc_release(p);
  s = slurp(log);
  int np = 0, nf = 0;
  size_t lens[8] = {0};
  int nl = 0;
  for (char *l = s; l && *l && nl < 8; nl++) {
    char *e = strchr(l, '\n');
    if (l[38] == 'P') np++;
    if (l[38] == 'F') nf++;
    lens[nl] = (size_t)(e - l) - 40;
    l = e + 1;
  }
  IS_INT(np, 2, "two P parts");
  IS_INT(nf, 2, "then F (and the next line)");
  ok(lens[0] == 16384 && lens[1] == 16384 && lens[2] == 7232,
     "parts of 16384, 16384, 7232 bytes");
  ml_proc_log_opts_t ro = {.tail = -1};
  char *text;
  size_t len;
  uint64_t off;
  IS_INT(ml_proc_read_log(log, &ro, &text, &len, &off), 0, "read_log");
  IS_INT(len, 40000 + 1 + 6, "partial lines joined by the reader");
  ok(text[39999] == 'a' + 39999 % 26 && text[40000] == '\n', "joined in order");
  free(text);
  ro.timestamps = true;
  ro.tail = 1;
  ml_proc_read_log(log, &ro, &text, &len, &off);
  ok(len > 7 && text[4] == '-' && strstr(text, "Z short\n") != NULL,
     "timestamps and tail");
  free(text);
}

/* stdout_log_from: a file made beforehand becomes the log (same inode,
 * renamed by the time spawn returns); a missing one means the usual file. */
static void test_log_from(void) {
  char spare[300], log[300], log2[300];
  snprintf(spare, sizeof spare, "%s/spare.log", tmpdir);
  snprintf(log, sizeof log, "%s/from.log", tmpdir);
  snprintf(log2, sizeof log2, "%s/from2.log", tmpdir);
  int fd = open(spare, O_WRONLY | O_CREAT | O_TRUNC, 0640);
  if (fd >= 0) close(fd);
  struct stat sb;
  ino_t ino = stat(spare, &sb) == 0 ? sb.st_ino : 0;
  const char *argv[] = {"sh", "-c", "echo from-spare", NULL};
  ml_proc_opts_t o = {.argv = argv, .stdout_log = log, .stderr_log = log,
                      .stdout_log_from = spare};
  uint64_t id = next_id();
  ml_proc_t *p = spawn_opts(id, &o);
  ok(p && !file_exists(spare) && stat(log, &sb) == 0 && sb.st_ino == ino,
     "the spare is the log once spawn returns");
  free_ev(wait_exit(id, 5000));
  ml_proc_release(p);
  char *text = slurp(log);
  ok(text && strstr(text, " stdout F from-spare\n") != NULL,
     "the output went into it");

  o.stdout_log = o.stderr_log = log2; /* the spare is gone now */
  id = next_id();
  p = spawn_opts(id, &o);
  ok(p != NULL, "a missing spare is no error");
  free_ev(wait_exit(id, 5000));
  ml_proc_release(p);
  text = slurp(log2);
  ok(text && strstr(text, " stdout F from-spare\n") != NULL,
     "the log is made as usual");

  /* A start that fails still leaves the log under its name. */
  fd = open(spare, O_WRONLY | O_CREAT | O_TRUNC, 0640);
  if (fd >= 0) close(fd);
  const char *bad[] = {"/nonexistent/cmd", NULL};
  char log3[300];
  snprintf(log3, sizeof log3, "%s/from3.log", tmpdir);
  ml_proc_opts_t ob = {.argv = bad, .stdout_log = log3, .stderr_log = log3,
                       .stdout_log_from = spare};
  ml_proc_t *pb = NULL;
  int rc = ml_proc_spawn(&loop, next_id(), &ob, &pb, NULL, 0);
  ok(rc < 0 && !pb, "a failed start fails");
  ok(file_exists(log3) && !file_exists(spare), "its log still took the spare");

  /* Also when the command is not found in the PATH. */
  fd = open(spare, O_WRONLY | O_CREAT | O_TRUNC, 0640);
  if (fd >= 0) close(fd);
  const char *missing[] = {"no-such-command-for-moonlet", NULL};
  char log4[300];
  snprintf(log4, sizeof log4, "%s/from4.log", tmpdir);
  ob.argv = missing;
  ob.stdout_log = ob.stderr_log = log4;
  pb = NULL;
  rc = ml_proc_spawn(&loop, next_id(), &ob, &pb, NULL, 0);
  ok(rc == UV_ENOENT && !pb, "a command not found fails");
  ok(file_exists(log4) && !file_exists(spare),
     "its log took the spare as well");
}

static void test_rotation(void) {
  char log[300], name[320];
  snprintf(log, sizeof log, "%s/rot.log", tmpdir);
  const char *argv[] = {
      "sh", "-c", "i=1; while [ $i -le 300 ]; do echo line$i; i=$((i+1)); done",
      NULL};
  ml_proc_opts_t o = {.argv = argv,
                      .stdout_log = log,
                      .log_max_bytes = 2000,
                      .log_max_files = 3};
  uint64_t id = next_id();
  ml_proc_t *p = spawn_opts(id, &o);
  free_ev(wait_exit(id, 5000));
  ml_proc_release(p);
  ok(file_exists(log), "live file");
  snprintf(name, sizeof name, "%s.1", log);
  ok(file_exists(name), "rotated .1");
  snprintf(name, sizeof name, "%s.2", log);
  ok(file_exists(name), "rotated .2");
  snprintf(name, sizeof name, "%s.3", log);
  ok(!file_exists(name), "no .3: the oldest is dropped");
  bool small = true;
  for (int i = 0; i < 3; i++) {
    struct stat st;
    if (i)
      snprintf(name, sizeof name, "%s.%d", log, i);
    else
      snprintf(name, sizeof name, "%s", log);
    if (stat(name, &st) == 0 && st.st_size > 2000) small = false;
  }
  ok(small, "no file above the size limit");

  ml_proc_log_opts_t ro = {.tail = -1};
  char *text;
  size_t len;
  uint64_t off;
  IS_INT(ml_proc_read_log(log, &ro, &text, &len, &off), 0,
         "read across rotated files");
  /* Consecutive lines ending with line300. */
  int first = atoi(text + 4), prev = first - 1;
  bool seq = true;
  for (char *l = text; l < text + len; l = strchr(l, '\n') + 1) {
    int n = atoi(l + 4);
    if (n != prev + 1) seq = false;
    prev = n;
  }
  ok(seq && prev == 300 && first > 1, "in order, oldest first (%d..%d)", first,
     prev);
  struct stat st;
  stat(log, &st);
  IS_INT(off, st.st_size, "offset is the live file's size");
  free(text);
  ro.tail = 60; /* more than the live file holds */
  ml_proc_read_log(log, &ro, &text, &len, &off);
  ok(strncmp(text, "line241\n", 8) == 0 && strstr(text, "line300\n"),
     "tail reaches into the rotated files");
  free(text);
  ro.tail = -1;
  ro.limit_bytes = 10;
  ml_proc_read_log(log, &ro, &text, &len, &off);
  IS_INT(len, 10, "limit_bytes cuts the output");
  free(text);
  ro.limit_bytes = 0;
  ro.since_ns = ml_proc_now_ns() + 1000000000LL;
  ml_proc_read_log(log, &ro, &text, &len, &off);
  IS_INT(len, 0, "since in the future: nothing");
  free(text);
  ro.since_ns = ml_proc_now_ns() - 60 * 1000000000LL;
  ml_proc_read_log(log, &ro, &text, &len, &off);
  ok(len > 0, "since a minute ago: everything");
  free(text);
  IS_INT(ml_proc_read_log("/nonexistent/x.log", &ro, &text, &len, &off),
         UV_ENOENT, "no log: ENOENT");
}

static void test_follow(void) {
  char log[300];
  snprintf(log, sizeof log, "%s/follow.log", tmpdir);
  const char *argv[] = {"sh", "-c",
                        "i=1; while [ $i -le 30 ]; do echo f$i; i=$((i+1)); "
                        "sleep 0.01; done",
                        NULL};
  ml_proc_opts_t o = {.argv = argv,
                      .stdout_log = log,
                      .log_max_bytes = 600,
                      .log_max_files = 2};
  uint64_t fid = next_id();
  ml_proc_follow_t *fw;
  /* Started before the file exists: picks it up when it appears. */
  IS_INT(ml_proc_follow(&loop, fid, log, 0, false, 5, &fw), 0, "follow_log");
  uint64_t id = next_id();
  ml_proc_t *p = spawn_opts(id, &o);
  free_ev(wait_exit(id, 5000));
  ml_proc_release(p);
  run_for(100);
  ml_proc_follow_close(fw);
  char got[4096] = "";
  size_t glen = 0;
  bool ended = false;
  for (int i = 0; i < 100 && !ended; i++) {
    ml_proc_log_ev_t *ev = (ml_proc_log_ev_t *)wait_event(fid, 1000);
    if (!ev) break;
    if (ev->head.kind == ML_PROC_EV_LOG_END)
      ended = true;
    else if (glen + ev->len < sizeof got) {
      memcpy(got + glen, ev->data, ev->len);
      glen += ev->len;
      got[glen] = 0;
    }
    ml_event_free(&ev->head.ev);
  }
  ok(ended, "one END event after close");
  ok(strncmp(got, "f1\nf2\n", 6) == 0 && strstr(got, "f29\nf30\n") != NULL,
     "followed every line across rotations");
  int prev = 0;
  bool seq = true;
  for (char *l = got; *l; l = strchr(l, '\n') + 1) {
    if (atoi(l + 1) != prev + 1) seq = false;
    prev = atoi(l + 1);
  }
  ok(seq && prev == 30, "in order, none lost or doubled");
}

static void test_capture(void) {
  const char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 2", NULL};
  ml_proc_opts_t o = {.argv = argv, .capture = true};
  uint64_t id = next_id();
  ml_proc_t *p = spawn_opts(id, &o);
  ml_proc_exit_t *ev = wait_exit(id, 5000);
  IS_INT(ev ? ev->exit_code : -1, 2, "exec: exit status");
  ok(ev && ev->output_len == 8 && memcmp(ev->output, "out\nerr\n", 8) == 0,
     "exec: stdout and stderr captured in order");
  free_ev(ev);
  ml_proc_release(p);

  const char *argv2[] = {
      "sh", "-c",
      "i=0; while [ $i -lt 100 ]; do echo 0123456789; i=$((i+1)); done", NULL};
  ml_proc_opts_t o2 = {.argv = argv2, .capture = true, .max_output = 50};
  id = next_id();
  p = spawn_opts(id, &o2);
  ev = wait_exit(id, 5000);
  ok(ev && ev->output_len == 50 && ev->output_truncated,
     "output capped at max_output");
  free_ev(ev);
  ml_proc_release(p);

  /* The server ignores SIGPIPE (as this test does) and may block signals:
   * a container starts with neither. */
  const char *argvs[] = {"cat", "/proc/self/status", NULL};
  ml_proc_opts_t os = {.argv = argvs, .capture = true, .max_output = 65536};
  id = next_id();
  p = spawn_opts(id, &os);
  ev = wait_exit(id, 5000);
  ok(ev && ev->output_len > 0, "captured /proc/self/status");
  if (ev && ev->output) {
    char *ign = memmem(ev->output, ev->output_len, "SigIgn:\t", 8);
    char *blk = memmem(ev->output, ev->output_len, "SigBlk:\t", 8);
    ok(ign && strncmp(ign + 8, "0000000000000000", 16) == 0,
       "no signal ignored in the child (SIGPIPE back to default)");
    ok(blk && strncmp(blk + 8, "0000000000000000", 16) == 0,
       "no signal blocked");
  }
  free_ev(ev);
  ml_proc_release(p);

  const char *argv3[] = {"sh", "-c", "sleep 100 & sleep 100", NULL};
  ml_proc_opts_t o3 = {.argv = argv3, .capture = true, .timeout_ms = 200};
  id = next_id();
  uint64_t t0 = uv_now(&uv);
  p = spawn_opts(id, &o3);
  ev = wait_exit(id, 5000);
  ok(ev && ev->timed_out && ev->exit_code == 137, "timeout kills the group");
  ok(uv_now(&uv) - t0 < 1500, "promptly, pipes held by grandchildren included");
  free_ev(ev);
  ml_proc_release(p);
}

/* Running groups recorded in a state dir: "proc-PGID" files plus the
 * non-blank slots of "procs-*" files. */
static int count_records(const char *state) {
  DIR *d = opendir(state);
  int records = 0;
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "procs-", 6) == 0) {
      char path[600];
      snprintf(path, sizeof path, "%s/%s", state, e->d_name);
      FILE *f = fopen(path, "r");
      char line[512];
      while (f && fgets(line, sizeof line, f))
        if (line[0] >= '0' && line[0] <= '9') records++;
      if (f) fclose(f);
    } else if (strncmp(e->d_name, "proc-", 5) == 0) {
      records++;
    }
  }
  if (d) closedir(d);
  return records;
}

/* The "server" is a forked helper with its own loop: it spawns a container
 * whose grandchild stays in the group, then dies without cleanup. */
static void test_crash_and_reap(void) {
  char state[300], pidf[300], script[600];
  snprintf(state, sizeof state, "%s/state", tmpdir);
  mkdir(state, 0700);
  snprintf(pidf, sizeof pidf, "%s/crash.pid", tmpdir);
  snprintf(script, sizeof script, "sleep 100 & echo $$ $! > %s; wait", pidf);
  int fds[2];
  if (pipe(fds) < 0) return;
  pid_t helper = fork();
  if (helper == 0) {
    uv_loop_t huv;
    ml_loop_t hloop;
    uv_loop_init(&huv);
    ml_loop_init(&hloop, &huv);
    const char *argv[] = {"sh", "-c", script, NULL};
    ml_proc_opts_t o = {.argv = argv, .state_dir = state};
    ml_proc_t *p;
    int rc = ml_proc_spawn(&hloop, 1, &o, &p, NULL, 0);
    char c = rc == 0 ? 'y' : 'n';
    if (write(fds[1], &c, 1) < 0) _exit(2);
    for (int i = 0; i < 500 && !file_exists(pidf); i++) usleep(10000);
    usleep(50000);
    _exit(0); /* crash: no release, no cleanup */
  }
  close(fds[1]);
  char c = 0;
  if (read(fds[0], &c, 1) != 1) c = 0;
  close(fds[0]);
  ok(c == 'y', "helper server spawned a container");
  int hst;
  waitpid(helper, &hst, 0);
  char *s = slurp(pidf);
  int leader = 0, grand = 0;
  if (s) sscanf(s, "%d %d", &leader, &grand);
  ok(leader > 0 && grand > 0, "container and grandchild pids");
  IS_INT(count_records(state), 1,
         "the running group was recorded in the state dir");
  int st = reap_orphan(leader, 5000);
  ok(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
     "PDEATHSIG: the container died with its server");
  ok(kill(grand, 0) == 0, "its grandchild outlived it");
  IS_INT(ml_proc_reap_leftovers(state), 1, "reap_leftovers kills one group");
  st = reap_orphan(grand, 5000);
  ok(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
     "the grandchild is killed");
  IS_INT(ml_proc_reap_leftovers(state), 0,
         "records removed: nothing the second time");
  IS_INT(count_records(state), 0, "the crashed server's records are gone");

  /* A record whose pid now names another process (start time differs) is
   * never acted on. */
  char rec[400];
  snprintf(rec, sizeof rec, "%s/proc-%d", state, (int)getpid());
  FILE *f = fopen(rec, "w");
  fprintf(f, "%d 1 99999 1 -\n", (int)getpid());
  fclose(f);
  IS_INT(ml_proc_reap_leftovers(state), 0, "a reused pid is not killed");
  ok(!file_exists(rec), "stale record removed");

  /* Our own live processes are not leftovers. */
  uint64_t id = next_id();
  const char *argv[] = {"sleep", "100", NULL};
  ml_proc_opts_t o = {.argv = argv, .state_dir = state};
  ml_proc_t *p = spawn_opts(id, &o);
  IS_INT(ml_proc_reap_leftovers(state), 0,
         "records of this server are left alone");
  ok(p && kill(ml_proc_pid(p), 0) == 0, "our process still runs");
  IS_INT(count_records(state), 1, "a running group of ours is recorded");
  ml_proc_kill(p, SIGKILL);
  free_ev(wait_exit(id, 5000));
  ml_proc_release(p);
  IS_INT(count_records(state), 0, "the record goes with the exit");

  /* Records are slots rewritten in place: starts and exits do not grow the
   * file (nor create or remove files). */
  char slots[600];
  snprintf(slots, sizeof slots, "%s/procs-%d-", state, (int)getpid());
  for (int round = 0; round < 5; round++) {
    uint64_t ids[2] = {next_id(), next_id()};
    ml_proc_t *ps[2] = {spawn_opts(ids[0], &o), spawn_opts(ids[1], &o)};
    IS_INT(count_records(state), 2, "two running groups recorded");
    for (int i = 0; i < 2; i++) {
      ml_proc_kill(ps[i], SIGKILL);
      free_ev(wait_exit(ids[i], 5000));
      ml_proc_release(ps[i]);
    }
  }
  IS_INT(count_records(state), 0, "no record left");
  DIR *d = opendir(state);
  struct dirent *e;
  off_t size = -1;
  int files = 0;
  while (d && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    files++;
    char path[900];
    snprintf(path, sizeof path, "%s/%s", state, e->d_name);
    struct stat sb;
    if (strncmp(path, slots, strlen(slots)) == 0 && stat(path, &sb) == 0)
      size = sb.st_size;
  }
  if (d) closedir(d);
  IS_INT(files, 1, "one file of records");
  IS_INT((int)size, 2 * 256, "two slots, reused");
}

/* Each record carries its leader's start time as /proc/PID/stat shows it
 * (the spawn works it out from the clock when it can, without reading
 * /proc): a wrong one would make reap_leftovers spare a leftover group. */
static void test_record_starttime(void) {
  enum { N = 40 };
  char state[300];
  snprintf(state, sizeof state, "%s/state-st", tmpdir);
  mkdir(state, 0700);
  const char *argv[] = {"sleep", "100", NULL};
  ml_proc_opts_t o = {.argv = argv, .state_dir = state};
  ml_proc_t *ps[N];
  uint64_t ids[N];
  for (int i = 0; i < N; i++) {
    ids[i] = next_id();
    ps[i] = spawn_opts(ids[i], &o);
  }
  int records = 0, right = 0;
  DIR *d = opendir(state);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "procs-", 6) != 0) continue;
    char path[600], line[512];
    snprintf(path, sizeof path, "%s/%s", state, e->d_name);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
      int pgid;
      unsigned long long st, now_st;
      if (sscanf(line, "%d %llu", &pgid, &st) != 2) continue;
      records++;
      if (ml__proc_starttime(pgid, &now_st) == 0 && now_st == st) right++;
    }
    if (f) fclose(f);
  }
  if (d) closedir(d);
  IS_INT(records, N, "every running process recorded");
  IS_INT(right, N, "with the start time /proc shows for it");
  for (int i = 0; i < N; i++) {
    ml_proc_stop(ps[i], 0);
    free_ev(wait_exit(ids[i], 5000));
    ml_proc_release(ps[i]);
  }
}

/* No descriptor of the server reaches a container, whether or not it was
 * opened close-on-exec; and a signal the server starts ignoring after
 * earlier spawns is still reset in the next container. */
static void test_child_hygiene(void) {
  int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC on purpose */
  int fds[2];
  int have_pipe = pipe(fds) == 0; /* nor here */
  /* Many more, as a node with hundreds of pods holds. */
  enum { MANY = 300 };
  int many[MANY];
  for (int i = 0; i < MANY; i++) many[i] = open("/dev/null", O_RDONLY);
  const char *argv[] = {"ls", "/proc/self/fd", NULL};
  ml_proc_opts_t o = {.argv = argv, .capture = true};
  uint64_t id = next_id();
  ml_proc_t *p = spawn_opts(id, &o);
  ml_proc_exit_t *ev = wait_exit(id, 5000);
  /* ls itself holds the directory open as descriptor 3. */
  ok(ev && ev->output_len == 8 && memcmp(ev->output, "0\n1\n2\n3\n", 8) == 0,
     "the container holds only stdin, stdout and stderr");
  if (ev && !(ev->output_len == 8))
    printf("# fds: %.*s\n", (int)ev->output_len, ev->output);
  free_ev(ev);
  ml_proc_release(p);
  /* The server lends the child its pipe ends and takes them back: the
   * exit is reported at EOF, not after the drain deadline (500 ms). */
  char log[300];
  snprintf(log, sizeof log, "%s/hygiene.log", tmpdir);
  const char *argvt[] = {"true", NULL};
  ml_proc_opts_t ot = {.argv = argvt, .stdout_log = log, .stderr_log = log};
  int prompt = 0;
  for (int i = 0; i < 5; i++) {
    id = next_id();
    uint64_t t0 = uv_hrtime();
    p = spawn_opts(id, &ot);
    ev = wait_exit(id, 5000);
    if (ev && uv_hrtime() - t0 < 400000000ULL) prompt++;
    free_ev(ev);
    ml_proc_release(p);
  }
  IS_INT(prompt, 5, "exits come at the pipes' EOF");
  for (int i = 0; i < MANY; i++)
    if (many[i] >= 0) close(many[i]);
  if (leak >= 0) close(leak);
  if (have_pipe) {
    close(fds[0]);
    close(fds[1]);
  }

  struct sigaction ign = {.sa_handler = SIG_IGN}, old;
  sigaction(SIGUSR1, &ign, &old);
  const char *argvs[] = {"cat", "/proc/self/status", NULL};
  ml_proc_opts_t os = {.argv = argvs, .capture = true, .max_output = 65536};
  id = next_id();
  p = spawn_opts(id, &os);
  ev = wait_exit(id, 5000);
  char *line = ev && ev->output
                   ? memmem(ev->output, ev->output_len, "SigIgn:\t", 8)
                   : NULL;
  ok(line && strncmp(line + 8, "0000000000000000", 16) == 0,
     "a signal ignored since the last spawn is reset too");
  free_ev(ev);
  ml_proc_release(p);
  sigaction(SIGUSR1, &old, NULL);
}

static void test_watch_modes(void) {
  uint64_t id = next_id();
  ml_proc_t *p = spawn_sh(id, "exit 0");
  IS_INT(p ? ml_proc_watch_mode(p) : 0, ML_PROC_WATCH_PIDFD,
         "pidfd by default");
  free_ev(wait_exit(id, 5000));
  ml_proc_release(p);

  ml_proc_force_sigchld(true);
  id = next_id();
  p = spawn_sh(id, "sleep 0.05; exit 7");
  IS_INT(p ? ml_proc_watch_mode(p) : 0, ML_PROC_WATCH_SIGCHLD,
         "SIGCHLD fallback");
  uint64_t id2 = next_id();
  ml_proc_t *p2 = spawn_sh(id2, "exit 5");
  ml_proc_exit_t *ev = wait_exit(id, 5000);
  IS_INT(ev ? ev->exit_code : -1, 7, "SIGCHLD fallback: exit status");
  free_ev(ev);
  ev = wait_exit(id2, 5000);
  IS_INT(ev ? ev->exit_code : -1, 5, "SIGCHLD fallback: an immediate exit");
  free_ev(ev);
  ml_proc_release(p);
  ml_proc_release(p2);
  ml_proc_force_sigchld(false);
}

static void test_many(void) {
  enum { N = 100 };
  ml_proc_t *ps[N];
  uint64_t ids[N];
  for (int i = 0; i < N; i++) {
    ids[i] = next_id();
    char s[64];
    snprintf(s, sizeof s, "exit %d", i % 50);
    ps[i] = spawn_sh(ids[i], s);
  }
  int good = 0;
  for (int i = 0; i < N; i++) {
    ml_proc_exit_t *ev = wait_exit(ids[i], 10000);
    if (ev && ev->exit_code == i % 50) good++;
    free_ev(ev);
    ml_proc_release(ps[i]);
  }
  IS_INT(good, N, "100 concurrent processes, every exit reported right");
}

static void test_memory_limit(void) {
  const char *why;
  bool avail = ml_proc_cgroups_available(&why);
  printf("# cgroups: %s (%s)\n", avail ? "available" : "not available", why);
  ok(why && *why, "cgroups_available says why");
  if (!avail) {
    ok(1, "# SKIP memory limit: %s", why);
    return;
  }
  const char *argv[] = {"sh", "-c",
                        "a=xxxxxxxxxxxxxxxx; while :; do a=$a$a; done", NULL};
  ml_proc_opts_t o = {.argv = argv, .memory_limit_bytes = 32 << 20};
  uint64_t id = next_id();
  ml_proc_t *p = spawn_opts(id, &o);
  ml_proc_exit_t *ev = wait_exit(id, 30000);
  ok(ev && ev->oom_killed && ev->exit_code == 137,
     "over the limit: OOM killed, 137");
  free_ev(ev);
  ml_proc_release(p);
  const char *argv2[] = {"true", NULL};
  o.argv = argv2;
  id = next_id();
  p = spawn_opts(id, &o);
  ev = wait_exit(id, 5000);
  ok(ev && !ev->oom_killed && ev->exit_code == 0, "under the limit: fine");
  free_ev(ev);
  ml_proc_release(p);
}

/* The runtime shuts its loop down (uv_walk closing every handle) while a
 * process still runs and a follower is open; releasing them afterwards must
 * kill and reap without touching libuv. */
static void test_loop_gone(void) {
  uv_loop_t uv2;
  ml_loop_t loop2;
  uv_loop_init(&uv2);
  ml_loop_init(&loop2, &uv2);
  const char *argv[] = {"sleep", "100", NULL};
  char log[300];
  snprintf(log, sizeof log, "%s/gone.log", tmpdir);
  ml_proc_opts_t o = {.argv = argv, .stdout_log = log, .stderr_log = log};
  ml_proc_t *p = NULL;
  ml_proc_follow_t *fw = NULL;
  ml_proc_spawn(&loop2, 1, &o, &p, NULL, 0);
  ml_proc_follow(&loop2, 2, log, 0, false, 100, &fw);
  ok(p && fw, "process and follower on a second loop");
  int pid = p ? ml_proc_pid(p) : 0;
  uv_walk(&uv2, walk_close, NULL);
  while (uv_loop_close(&uv2) == UV_EBUSY) uv_run(&uv2, UV_RUN_NOWAIT);
  ml_loop_close(&loop2);
  if (p) ml_proc_release(p);
  if (fw) ml_proc_follow_close(fw);
  ok(pid > 0 && kill(pid, 0) < 0 && errno == ESRCH,
     "release after the loop shut down: killed and reaped");
}

/* Spawns on libuv's pool (ml_proc_spawn_async): many at once, each
 * answered once its child has exec'd, its exit and log as after
 * ml_proc_spawn; the options are the spawn's own copy; a failure in the
 * child comes in the answer, one found before the pool at once; a loop
 * that closes with a spawn in flight leaves no process behind. */
static void test_spawn_async(void) {
  enum { N = 16 };
  int before = count_children();
  uint64_t ids[N], done[N];
  ml_proc_t *procs[N] = {NULL};
  char log[300], msg[512];
  snprintf(log, sizeof log, "%s/async.log", tmpdir);
  int queued = 0;
  for (int i = 0; i < N; i++) {
    ids[i] = next_id();
    done[i] = next_id();
    char script[64]; /* gone before the child runs: copied by the call */
    snprintf(script, sizeof script, "echo hi%d; exit %d", i, i % 7);
    const char *argv[] = {"sh", "-c", script, NULL};
    ml_proc_opts_t o = {.argv = argv, .stdout_log = i == 0 ? log : NULL};
    int rc = ml_proc_spawn_async(&loop, ids[i], done[i], &o, msg, sizeof msg);
    if (rc == 0) queued++;
    else printf("# spawn_async: %s %s\n", ml_err_name(rc), msg);
    memset(script, 'x', sizeof script - 1);
  }
  IS_INT(queued, N, "16 spawns queued to the pool at once");
  int good = 0;
  for (int i = 0; i < N; i++) {
    ml_proc_spawned_t *ev = (ml_proc_spawned_t *)wait_event(done[i], 10000);
    if (ev && ev->head.kind == ML_PROC_EV_SPAWNED && ev->rc == 0 && ev->proc &&
        ml_proc_pid(ev->proc) > 0) {
      procs[i] = ev->proc;
      ev->proc = NULL;
      good++;
    }
    free_ev(ev);
  }
  IS_INT(good, N, "every spawn answered with a running process");
  int exits = 0;
  for (int i = 0; i < N; i++) {
    ml_proc_exit_t *x = wait_exit(ids[i], 10000);
    if (x && x->exit_code == i % 7 && procs[i] && x->pid == ml_proc_pid(procs[i]))
      exits++;
    free_ev(x);
    if (procs[i]) ml_proc_release(procs[i]);
  }
  IS_INT(exits, N, "and every exit reported right, to its own id");
  char *text = slurp(log); /* a static buffer */
  ok(text && strstr(text, "stdout F hi0") != NULL, "its output in its CRI log");

  /* A failure in the child: the answer carries it, with runc's message. */
  const char *t[] = {"true", NULL};
  ml_proc_opts_t o = {.argv = t, .cwd = "/nonexistent-dir"};
  uint64_t id = next_id(), d = next_id();
  IS_INT(ml_proc_spawn_async(&loop, id, d, &o, msg, sizeof msg), 0,
         "bad cwd: queued");
  ml_proc_spawned_t *ev = (ml_proc_spawned_t *)wait_event(d, 10000);
  ok(ev && ev->rc == UV_ENOENT && !ev->proc && strstr(ev->msg, "chdir"),
     "bad cwd: ENOENT in the answer (%s)", ev ? ev->msg : "no answer");
  free_ev(ev);
  /* One found before the pool: at once, and no answer follows. */
  const char *nx[] = {"no-such-command-moonlet", NULL};
  o = (ml_proc_opts_t){.argv = nx};
  d = next_id();
  IS_INT(ml_proc_spawn_async(&loop, next_id(), d, &o, msg, sizeof msg),
         UV_ENOENT, "unknown command: ENOENT at once");
  run_for(50);
  ok(take(d) == NULL, "and no answer");
  IS_INT(count_children(), before, "no child left behind");

  /* The loop closes with a spawn in flight (as the runtime closes it). */
  uv_loop_t uv2;
  ml_loop_t loop2;
  uv_loop_init(&uv2);
  ml_loop_init(&loop2, &uv2);
  const char *sl[] = {"sleep", "100", NULL};
  o = (ml_proc_opts_t){.argv = sl};
  IS_INT(ml_proc_spawn_async(&loop2, 1, 2, &o, msg, sizeof msg), 0,
         "a spawn in flight on a second loop");
  ml_loop_close(&loop2);
  uv_walk(&uv2, walk_close, NULL);
  while (uv_loop_close(&uv2) == UV_EBUSY) uv_run(&uv2, UV_RUN_ONCE);
  ml_loop_close(&loop2);
  IS_INT(count_children(), before, "closed: its child killed and reaped");
}

/* {====== benchmark (ML_BENCH=1) */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void bench(void) {
  enum { N = 200 };
  static ml_proc_t *ps[N];
  static uint64_t ids[N], lat[N];
  const char *argv[] = {"sleep", "1000", NULL};
  char log[300];
  snprintf(log, sizeof log, "%s/bench.log", tmpdir);
  ml_proc_opts_t o = {.argv = argv, .stdout_log = log, .stderr_log = log};
  for (int i = 0; i < N; i++) {
    ids[i] = next_id();
    uint64_t t0 = uv_hrtime();
    ps[i] = spawn_opts(ids[i], &o);
    lat[i] = uv_hrtime() - t0;
  }
  qsort(lat, N, sizeof *lat, cmp_u64);
  printf("# spawn to running, %d sleeps: p50 %.3f ms, p99 %.3f ms\n", N,
         lat[N / 2] / 1e6, lat[N * 99 / 100] / 1e6);
  /* Restart: kill -9, exit event, next spawn. */
  for (int i = 0; i < N; i++) {
    uint64_t t0 = uv_hrtime();
    kill(ml_proc_pid(ps[i]), SIGKILL);
    free_ev(wait_exit(ids[i], 5000));
    ml_proc_release(ps[i]);
    ids[i] = next_id();
    ps[i] = spawn_opts(ids[i], &o);
    lat[i] = uv_hrtime() - t0;
  }
  qsort(lat, N, sizeof *lat, cmp_u64);
  printf("# restart after kill -9 (exit seen -> respawned): p50 %.3f ms, p99 "
         "%.3f ms\n",
         lat[N / 2] / 1e6, lat[N * 99 / 100] / 1e6);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("# max RSS of this test process with %d running: %ld KiB\n", N,
         ru.ru_maxrss);
  for (int i = 0; i < N; i++) {
    ml_proc_stop(ps[i], 0);
    free_ev(wait_exit(ids[i], 5000));
    ml_proc_release(ps[i]);
  }
}

/* }====== */

static void rm_rf(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
      rm_rf(p);
    else
      unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  signal(SIGPIPE,
         SIG_IGN); /* as the server does: children must not inherit it */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  snprintf(tmpdir, sizeof tmpdir, "%s/ml-proc-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(tmpdir)) return 1;
  uv_loop_init(&uv);
  ml_loop_init(&loop, &uv);
  ml_loop_add_hook(&loop, collect, NULL);
  uv_timer_init(&uv, &deadline);

  test_exit_codes();
  test_exec_failures();
  test_env_cwd();
  test_group_kill();
  test_stop();
  test_release_running();
  test_armed_restart();
  test_armed_spare_log();
  test_arm_makes_spare();
  test_path_cache();
  test_lazy_log();
  test_spawn_sched();
  test_logs();
  test_log_from();
  test_rotation();
  test_follow();
  test_capture();
  test_crash_and_reap();
  test_record_starttime();
  test_child_hygiene();
  test_watch_modes();
  test_many();
  test_spawn_async();
  test_memory_limit();
  test_loop_gone();
  if (getenv("ML_BENCH")) bench();

  IS_INT(nevents, 0, "no stray events");
  while (nevents > 0) ml_event_free(events[--nevents]);
  uv_close((uv_handle_t *)&deadline, NULL);
  uv_run(&uv, UV_RUN_DEFAULT);
  ml_loop_close(&loop);
  IS_INT(uv_loop_close(&uv), 0, "uv_loop_close() == 0: every handle closed");
  rm_rf(tmpdir);
  printf("1..%d\n", ntests);
  return nfailed ? 1 : 0;
}
