/* Spawning, watching and stopping container processes (see proc.h).
 *
 *   spawn: clone as vfork, on our CPU ─► child: own copy of the low fds,
 *            │   setpgid, PDEATHSIG, cgroup, stdio, chdir, our thread made
 *            │   SCHED_BATCH (its exec is not preempted by us), exec
 *            │   (a failure is written into our memory, then _exit 127;
 *            │   after fork (ASan) into a CLOEXEC pipe)
 *            └─► parent: SCHED_OTHER and its CPUs back, the failure if any,
 *                pidfd_open, uv_poll on it (or uv_signal SIGCHLD), pipes
 *                read by libuv into the CRI log writer, a state record
 *   exit:  pidfd readable ─► kill what is left of the group
 *            ─► spawn the armed replacement, if any (ml_proc_arm_restart)
 *            ─► reap ─► pipes at EOF (or a drain deadline) ─► ML_EV_PROC_EXIT
 *
 * One record per process, no threads: a watcher, two pipes, one timer (grace
 * period, exec timeout or drain deadline). */
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "proc_internal.h"

extern char **environ;

#define DRAIN_MS 500 /* after the exit, how long pipes may stay open */
#define POOL_STACK 65536 /* a pool spawn's child stack (ml_proc_spawn_async) */
#define POOL_MSG 4200    /* and its failure message */

enum { TIMER_NONE, TIMER_TIMEOUT, TIMER_STOP, TIMER_DRAIN };

typedef struct slots_s slots_t; /* a state dir's file of records */

/* An armed replacement (ml_proc_arm_restart): its options, with every list
 * and string copied into the same allocation. */
typedef struct {
  uint64_t id;
  int when;
  uint64_t not_before; /* uv_hrtime() */
  const char *file;    /* argv[0] looked up in the PATH when armed */
  ml__clog_t *log;     /* o.stdout_log's writer on o.stdout_log_from,
                          opened when armed, or NULL */
  ml_proc_opts_t o;
} armed_t;

static void armed_free(armed_t *a) {
  if (!a) return;
  ml__clog_unref(a->log);
  free(a);
}

struct ml_proc_s {
  ml_loop_t *loop;
  uint64_t id;
  intptr_t udata;
  pid_t pid;
  int pidfd;   /* -1 when watched by SIGCHLD */
  int refs;    /* the caller's, plus one until the handles are closed */
  int handles; /* open uv handles */
  int timer_reason;
  uint64_t kill_at; /* loop ms of the pending timer action */
  int status;       /* from waitpid */
  int64_t started_ns, finished_ns;
  unsigned mode : 2, reaped : 1, posted : 1, released : 1, timed_out : 1,
      termed : 1, out_open : 1, err_open : 1, watching : 1, capture : 1,
      cap_truncated : 1;
  union {
    uv_handle_t h;
    uv_poll_t poll;
    uv_signal_t sig;
  } w;
  uv_pipe_t out, err;
  uv_timer_t timer;
  ml__clog_stream_t sout, serr;
  char *cap;
  size_t cap_len, cap_max;
  char *cgroup; /* cgroup dir, or NULL */
  char *record; /* a record file of its own, or NULL */
  slots_t *slots; /* else the slots file holding its record, or NULL */
  int slot;
  armed_t *armed;   /* started when the process ends by itself, or NULL */
  ml_proc_t *next;  /* started from `armed`, until the exit event takes it */
  uint64_t next_ns; /* uv_hrtime() when its spawn had returned */
};

static bool force_sigchld;

void ml_proc_force_sigchld(bool on) { force_sigchld = on; }

/* {====== time */

int64_t ml_proc_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void ml_proc_format_time(int64_t ns, char buf[40]) {
  time_t s = (time_t)(ns / 1000000000LL);
  long frac = (long)(ns % 1000000000LL);
  if (frac < 0) {
    frac += 1000000000L;
    s--;
  }
  struct tm tm;
  gmtime_r(&s, &tm);
  size_t n = strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, 40 - n, ".%09ldZ", frac);
}

/* }====== */

/* {====== /proc and the state dir */

int ml__proc_starttime(int pid, unsigned long long *out) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return UV_EIO;
  buf[n] = 0;
  /* The command name may hold spaces and ')': fields follow the last ')'. */
  char *p = strrchr(buf, ')');
  if (!p) return UV_EIO;
  p++;
  for (int field = 2; field < 21; field++) { /* skip to field 22 */
    p = strchr(p + 1, ' ');
    if (!p) return UV_EIO;
  }
  *out = strtoull(p + 1, NULL, 10);
  return 0;
}

static unsigned long long self_start(void) {
  static unsigned long long v;
  static pid_t for_pid;
  if (for_pid != getpid()) { /* a forked helper is another server */
    for_pid = getpid();
    v = 0;
    ml__proc_starttime(for_pid, &v);
  }
  return v;
}

/* Records of running groups. One file per server process in the state
 * dir, "procs-<pid>-<starttime>", of fixed-size slots rewritten in place;
 * a slot holds "pgid starttime server_pid server_starttime cgroup|-" padded
 * with spaces, a blank (or never written) slot is free. A file per process
 * cost an inode allocation at each start and an unlink at each exit: ext4
 * skips inodes freed in the last minute when it allocates one, and with the
 * churn of restarting containers that took 0.2-3 ms per spawn. A record too
 * long for a slot (a very long cgroup path) gets its own "proc-<pgid>"
 * file, the older layout, which reap_leftovers still reads. */
#define SLOT_SIZE 256

struct slots_s {
  slots_t *next;
  pid_t owner; /* the process that opened it (a forked helper starts anew) */
  int fd;
  unsigned char *used;
  size_t cap, hint;
  char dir[];
};

static slots_t *slot_files;

static void slots_name(char *buf, size_t len, const char *dir) {
  snprintf(buf, len, "%s/procs-%d-%llu", dir, (int)getpid(), self_start());
}

static slots_t *slots_for(const char *dir) {
  if (slot_files && slot_files->owner != getpid()) {
    /* Forked: those files are the parent's. Their descriptors are
     * close-on-exec; the records stay in the parent's memory. */
    slot_files = NULL;
  }
  for (slots_t *f = slot_files; f; f = f->next)
    if (strcmp(f->dir, dir) == 0) return f;
  char path[PATH_MAX];
  slots_name(path, sizeof path, dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    ML_WARN("proc: cannot record processes in %s: %s", dir, strerror(errno));
    return NULL;
  }
  size_t dlen = strlen(dir);
  slots_t *f = calloc(1, sizeof *f + dlen + 1);
  if (!f) {
    close(fd);
    return NULL;
  }
  memcpy(f->dir, dir, dlen + 1);
  f->fd = fd;
  f->owner = getpid();
  f->next = slot_files;
  slot_files = f;
  return f;
}

static int slot_take(slots_t *f) {
  for (size_t i = f->hint; i < f->cap; i++)
    if (!f->used[i]) {
      f->used[i] = 1;
      f->hint = i + 1;
      return (int)i;
    }
  size_t ncap = f->cap ? f->cap * 2 : 64;
  unsigned char *nu = realloc(f->used, ncap);
  if (!nu) return -1;
  memset(nu + f->cap, 0, ncap - f->cap);
  f->used = nu;
  size_t i = f->cap;
  f->cap = ncap;
  f->used[i] = 1;
  f->hint = i + 1;
  return (int)i;
}

static void slot_free(slots_t *f, int slot) {
  char blank[SLOT_SIZE];
  memset(blank, ' ', sizeof blank);
  blank[SLOT_SIZE - 1] = '\n';
  if (f->owner == getpid()) {
    ssize_t w = pwrite(f->fd, blank, sizeof blank, (off_t)slot * SLOT_SIZE);
    (void)w; /* a record left behind only makes a reap check a dead pgid */
    f->used[slot] = 0;
    if ((size_t)slot < f->hint) f->hint = (size_t)slot;
  }
}

/* The start time /proc/PID/stat would show for a process forked while the
 * boot-time clock read from `lo_ns` to `hi_ns`: the kernel stamps a new
 * process with that clock and shows it in clock ticks, truncated. Both ends
 * in the same tick give the value without reading /proc/PID/stat, which
 * waits while the child is still inside execve (0.1-3 ms after a spawn).
 * @return true when the value is certain */
static bool starttime_between(int64_t lo_ns, int64_t hi_ns,
                              unsigned long long *out) {
  static long ns_per_tick;
  if (!ns_per_tick) {
    long hz = sysconf(_SC_CLK_TCK);
    /* Other tick rates use a rounding formula of their own: ask /proc. */
    ns_per_tick = hz > 0 && 1000000000L % hz == 0 ? 1000000000L / hz : -1;
  }
  if (ns_per_tick < 0 || lo_ns <= 0 || hi_ns < lo_ns) return false;
  if (lo_ns / ns_per_tick != hi_ns / ns_per_tick) return false;
  *out = (unsigned long long)(lo_ns / ns_per_tick);
  return true;
}

static int64_t boot_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0) return 0;
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Records the group of `pid` in `dir`: a slot of the server's file, else
 * (a record longer than a slot) a file of its own in p->record. `st` is the
 * leader's start time when known, else 0. */
static void write_record(ml_proc_t *p, const char *dir, unsigned long long st) {
  if (!st && ml__proc_starttime(p->pid, &st) < 0) return; /* already gone */
  char line[PATH_MAX + 96];
  int n = snprintf(line, sizeof line, "%d %llu %d %llu %s", (int)p->pid, st,
                   (int)getpid(), self_start(), p->cgroup ? p->cgroup : "-");
  if (n < 0 || (size_t)n >= sizeof line) return;
  slots_t *f = n < SLOT_SIZE ? slots_for(dir) : NULL;
  if (f) {
    int slot = slot_take(f);
    if (slot >= 0) {
      char buf[SLOT_SIZE];
      memset(buf, ' ', sizeof buf);
      memcpy(buf, line, (size_t)n);
      buf[SLOT_SIZE - 1] = '\n';
      if (pwrite(f->fd, buf, sizeof buf, (off_t)slot * SLOT_SIZE) ==
          (ssize_t)sizeof buf) {
        p->slots = f;
        p->slot = slot;
        return;
      }
      f->used[slot] = 0;
    }
  }
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/proc-%d", dir, (int)p->pid);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    ML_WARN("proc: cannot record process %d in %s: %s", (int)p->pid, dir,
            strerror(errno));
    return;
  }
  line[n++] = '\n';
  ssize_t w = write(fd, line, (size_t)n);
  close(fd);
  if (w != n) {
    unlink(path);
    return;
  }
  p->record = strdup(path);
}

static void drop_record(ml_proc_t *p) {
  if (p->slots) slot_free(p->slots, p->slot);
  p->slots = NULL;
  if (p->record) unlink(p->record);
}

/* Acts on one record line of another server: kills its group if it is
 * still the same group. @return 1 if it was killed, 0 if not, -1 when the
 * line names a group of this very server (left alone). */
static int reap_record(const char *line) {
  char cgroup[PATH_MAX];
  int pgid, spid;
  unsigned long long st, sst;
  if (sscanf(line, "%d %llu %d %llu %4095s", &pgid, &st, &spid, &sst,
             cgroup) != 5 ||
      pgid <= 1)
    return 0;
  if (spid == getpid() && sst == self_start()) return -1; /* ours, running */
  /* The leader alive with the same start time: the group is ours. The
   * leader gone: a pid is not handed out again while a group still uses
   * it as its id, so any member left is ours. A different start time: the
   * pid was reused after our group died. */
  unsigned long long now_st;
  int rc = ml__proc_starttime(pgid, &now_st);
  if (rc == 0 && now_st != st) return 0;
  int killed = kill(-pgid, SIGKILL) == 0;
  if (strcmp(cgroup, "-") != 0) {
    ml__cgroup_kill(cgroup);
    ml__cgroup_remove(cgroup);
  }
  return killed;
}

/* A slots file of another server: every record in it, then the file. */
static int reap_slots(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  int killed = 0, ours = 0;
  char buf[SLOT_SIZE + 1];
  ssize_t n;
  while ((n = read(fd, buf, SLOT_SIZE)) > 0) {
    buf[n] = 0;
    int r = reap_record(buf);
    if (r < 0) ours = 1;
    if (r > 0) killed++;
  }
  close(fd);
  if (!ours) unlink(path);
  return killed;
}

int ml_proc_reap_leftovers(const char *state_dir) {
  DIR *d = opendir(state_dir);
  if (!d) return errno == ENOENT ? 0 : -errno;
  char mine[PATH_MAX];
  slots_name(mine, sizeof mine, state_dir);
  const char *mine_base = strrchr(mine, '/') + 1;
  int killed = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char path[PATH_MAX];
    if (strncmp(e->d_name, "procs-", 6) == 0) {
      if (strcmp(e->d_name, mine_base) == 0) continue;
      snprintf(path, sizeof path, "%s/%s", state_dir, e->d_name);
      killed += reap_slots(path);
      continue;
    }
    if (strncmp(e->d_name, "proc-", 5) != 0) continue;
    snprintf(path, sizeof path, "%s/%s", state_dir, e->d_name);
    char line[PATH_MAX + 96];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t n = read(fd, line, sizeof line - 1);
    close(fd);
    line[n > 0 ? n : 0] = 0;
    int r = reap_record(line);
    if (r < 0) continue;
    killed += r;
    unlink(path);
  }
  closedir(d);
  return killed;
}

/* }====== */

/* {====== spawning */

enum {
  STAGE_SETPGID = 1,
  STAGE_PDEATHSIG,
  STAGE_CGROUP,
  STAGE_STDIO,
  STAGE_CHDIR,
  STAGE_EXEC
};

typedef struct {
  int stage, err;
} child_err_t;

typedef struct {
  const char *file;
  char *const *argv;
  char *const *envp;
  const char *cwd;
  int fd_in, fd_out, fd_err, fd_report, fd_cgroup;
  bool new_session; /* setsid, and stdin as the controlling terminal */
  child_err_t *report; /* non-NULL (vfork): a failure is written here, in
                          the parent's memory, not into fd_report */
  pid_t parent;
  struct rlimit nofile; /* the limit children get back */
  bool restore_nofile;
  bool sigs_known;     /* sigs holds the signals not at their default */
  uint64_t sigs;       /* bit n-1: signal n is caught or ignored */
  int64_t *born_ns;    /* a vfork child stores the boot-time clock here */
  pid_t yield_tid;     /* > 0: the waiting parent thread, made SCHED_BATCH
                          by the child just before its exec (see below) */
  bool *yielded;       /* the child sets it when that call succeeded */
  const cpu_set_t *cpus; /* non-NULL: started on the parent's CPU only;
                            the CPUs to take back before the exec */
  int keep_below;      /* > 0: the descriptor table is the parent's (shared
                          by clone): the child keeps a copy of the ones
                          below this number, where every fd above is */
} child_args_t;

static struct rlimit orig_nofile;
static bool nofile_raised;

/* 1,000 pods hold several fds each: raise our soft limit to the hard one
 * once, and give children the limit we were started with. */
static void raise_nofile(void) {
  if (nofile_raised) return;
  nofile_raised = true;
  if (getrlimit(RLIMIT_NOFILE, &orig_nofile) < 0) return;
  struct rlimit r = orig_nofile;
  if (r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

static int dup_to(int fd, int target) {
  if (fd == target) return fcntl(fd, F_SETFD, 0); /* keep it across exec */
  return dup2(fd, target);
}

/* Runs in the vfork child, sharing the parent's memory: only system calls,
 * no allocation, no stdio, then exec or _exit. */
__attribute__((noreturn, noinline)) static void
child_exec(const child_args_t *a) {
  child_err_t ce = {0, 0};
  /* Read after the kernel stamped our start: it bounds that time (the
   * parent's memory: seen by the parent after vfork, lost after fork). */
  *a->born_ns = boot_ns();
#ifdef SYS_close_range
  if (a->keep_below > 0) {
    /* Still the parent's descriptor table: take a copy of the few below
     * keep_below (the server's first descriptors and the ones lent for
     * this child) rather than of the thousands a node with many pods holds,
     * which the exec would then close one by one (close_range with
     * CLOSE_RANGE_UNSHARE copies only what lies outside the range). */
    if (syscall(SYS_close_range, (unsigned)a->keep_below, ~0U,
                2U /* CLOSE_RANGE_UNSHARE */) < 0 &&
        unshare(CLONE_FILES) < 0) {
      ce.stage = STAGE_STDIO;
      goto fail;
    }
  }
#endif
  /* A process group of its own, not a session: with autogroup scheduling
   * (the default on desktop and many server kernels) setsid() also makes a
   * new CFS task group per container. Creating and tearing one down, and
   * placing a fresh group among busy ones, cost 3-6 ms per start or exit on
   * a loaded 2-core machine against 0.5-1.5 ms without. */
  if ((a->new_session ? setsid() : setpgid(0, 0)) < 0) {
    ce.stage = STAGE_SETPGID;
    goto fail;
  }
  /* Killed when the server dies, even by SIGKILL. The parent may have died
   * before this line: then we must not run at all. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
    ce.stage = STAGE_PDEATHSIG;
    goto fail;
  }
  if (getppid() != a->parent) _exit(127);
  if (a->fd_cgroup >= 0 && write(a->fd_cgroup, "0", 1) < 0) {
    ce.stage = STAGE_CGROUP;
    goto fail;
  }
  if (dup_to(a->fd_in, 0) < 0 || dup_to(a->fd_out, 1) < 0 ||
      dup_to(a->fd_err, 2) < 0) {
    ce.stage = STAGE_STDIO;
    goto fail;
  }
  /* A terminal session (exec -t): the pty is its controlling terminal, so
   * job control works and a hang-up reaches its foreground group. */
  if (a->new_session && isatty(0) && ioctl(0, TIOCSCTTY, 0) < 0) {
    ce.stage = STAGE_STDIO;
    goto fail;
  }
#ifdef SYS_close_range
  /* Descriptors opened by others without O_CLOEXEC must not leak in. */
  syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
#endif
  if (a->cwd && chdir(a->cwd) < 0) {
    ce.stage = STAGE_CHDIR;
    goto fail;
  }
  if (a->restore_nofile) setrlimit(RLIMIT_NOFILE, &a->nofile);
  /* The server ignores SIGPIPE and libuv handles some signals: a container
   * starts with every disposition at its default and nothing blocked. */
  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction sa;
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if (a->sigs_known) {
      if (sig > 64 || !((a->sigs >> (sig - 1)) & 1)) continue;
    } else if (sigaction(sig, NULL, &sa) < 0 || sa.sa_handler == SIG_DFL) {
      continue;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  /* The exec wakes the parent as soon as the memory is handed back (early
   * in execve), and a woken SCHED_OTHER thread preempts the one that woke
   * it: the server then ran its exit bookkeeping (Lua, a store commit) for
   * 1-5 ms while this exec waited, half-done, on the same CPU (ftrace:
   * tests/bench/restart_trace.py). A SCHED_BATCH thread does not preempt
   * on wake-up, so the exec runs to its end first; the parent takes its
   * policy back as soon as it runs (and yields, see there). */
  if (a->yield_tid > 0) {
    struct sched_param sp = {.sched_priority = 0};
    if (sched_setscheduler(a->yield_tid, SCHED_BATCH, &sp) == 0)
      *a->yielded = true;
  }
  if (a->cpus) sched_setaffinity(0, sizeof *a->cpus, a->cpus);
  execve(a->file, a->argv, a->envp);
  ce.stage = STAGE_EXEC;
fail:
  if (!ce.err) ce.err = errno;
  if (a->report) {
    *a->report = ce;
  } else {
    ssize_t w = write(a->fd_report, &ce, sizeof ce);
    (void)w;
  }
  _exit(127);
}

#if defined(__SANITIZE_ADDRESS__)
#define CHILD_BORROWS_MEMORY 0
#else
#define CHILD_BORROWS_MEMORY 1 /* as vfork: we resume at its exec or exit */
#endif

static int fd_above_stdio(int fd);

/* The calling thread's id when the exec of its vfork child may hand it
 * SCHED_BATCH until it runs again (child_exec): only for a plain
 * SCHED_OTHER thread, the one policy we know how to give back (asked at
 * every spawn: it may be changed from outside at any time), and only when
 * the child borrows our memory (after fork nobody would see `yielded`, and
 * the parent does not wait). @return 0 when not */
static pid_t batch_handoff_tid(void) {
  if (!CHILD_BORROWS_MEMORY || sched_getscheduler(0) != SCHED_OTHER) return 0;
  return (pid_t)syscall(SYS_gettid);
}

/* Pins the calling thread to the CPU it runs on, so that the child it is
 * about to clone starts there: a new task goes to the least busy CPU, and
 * on this 2-vCPU VM that made the child wait 1-4 ms for the other CPU
 * (busy, or halted and slow to wake) while ours sat idle, its only task
 * blocked until the child's exec (ftrace: tests/bench/restart_trace.py).
 * The child takes `saved` back before its exec, we after the clone.
 * Only when the child borrows our memory (a fork's parent goes on).
 * @param saved receives the thread's CPUs
 * @return true when pinned */
static bool pin_to_this_cpu(cpu_set_t *saved) {
  if (!CHILD_BORROWS_MEMORY) return false;
  int cpu = sched_getcpu();
  if (cpu < 0 || cpu >= CPU_SETSIZE ||
      sched_getaffinity(0, sizeof *saved, saved) < 0 ||
      !CPU_ISSET(cpu, saved) || CPU_COUNT(saved) < 2)
    return false;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return sched_setaffinity(0, sizeof one, &one) == 0;
}

/* The signals whose disposition is not the default (caught or ignored):
 * one read here instead of a sigaction() per signal in the child, which the
 * parent waits for (64 system calls, ~80 us on a virtual machine). Read
 * afresh at every spawn (a handler may come or go at any time), from
 * /proc/self/stat through a descriptor kept open: its fields 33 and 34
 * (sigignore, sigcatch) hold signals 1-64 where a long has 64 bits, and a
 * pread of it took 3-4 us here against 9-13 us to open, read and close
 * /proc/self/status.
 * @return false when unknown: the child asks for each. */
static bool nondefault_signals(uint64_t *out) {
  static int fd = -1;
  static pid_t fd_pid;
  char buf[1024];
  if (sizeof(unsigned long) < 8) return false;
  if (fd >= 0 && fd_pid != getpid()) { /* forked: "self" names the parent */
    close(fd);
    fd = -1;
  }
  if (fd < 0) {
    fd = fd_above_stdio(open("/proc/self/stat", O_RDONLY | O_CLOEXEC));
    if (fd < 0) return false;
    fd_pid = getpid();
  }
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return false;
  buf[n] = 0;
  /* The command name may hold spaces and ')': fields follow the last ')',
   * and the first of them is field 3. */
  char *p = strrchr(buf, ')');
  if (!p) return false;
  for (int field = 2; field < 33; field++) { /* to the space before 33 */
    p = strchr(p + 1, ' ');
    if (!p) return false;
  }
  char *end;
  unsigned long long ign = strtoull(p + 1, &end, 10);
  if (end == p + 1 || *end != ' ') return false;
  unsigned long long cgt = strtoull(end + 1, &p, 10);
  if (p == end + 1) return false;
  *out = (uint64_t)(ign | cgt);
  return true;
}

/* {====== descriptors lent to a child
 * The child of clone(CLONE_FILES) copies only the descriptors below
 * keep_below, so the ones it needs must lie there: a few numbers taken at
 * the first spawn, while the table is still small, and held by /dev/null
 * placeholders (close-on-exec) between spawns. A spawn moves its pipe ends
 * into them (dup3) and puts the placeholders back once the child runs. */

enum { LENT_IN, LENT_OUT, LENT_ERR, LENT_REPORT, LENT_CGROUP, LENT_N };
static int lent[LENT_N] = {-1, -1, -1, -1, -1};
static int lent_below; /* 0: none taken (the child copies the whole table) */

static int devnull_fd(void);

static void take_low_fds(void) {
  static bool tried;
  if (tried) return;
  tried = true;
  int below = devnull_fd() + 1;
  for (int i = 0; i < LENT_N; i++) {
    lent[i] = fcntl(devnull_fd(), F_DUPFD_CLOEXEC, 3);
    if (lent[i] < 0) {
      for (int j = 0; j < i; j++) {
        close(lent[j]);
        lent[j] = -1;
      }
      return;
    }
    if (lent[i] >= below) below = lent[i] + 1;
  }
  lent_below = below;
}

/* Moves *fd (if any) into lent[slot]: the child finds it there. */
static int lend(int slot, int *fd) {
  if (*fd < 0 || *fd == devnull_fd()) return 0;
  if (dup3(*fd, lent[slot], O_CLOEXEC) < 0) return -errno;
  *fd = lent[slot];
  return 0;
}

/* Back to placeholders: drops the parent's extra reference to the lent
 * pipe ends, so EOF comes when the child closes them. */
static void unlend(void) {
  for (int i = 0; i < LENT_N; i++)
    if (lent[i] >= 0) dup3(devnull_fd(), lent[i], O_CLOEXEC);
}

/* Places the child's descriptors below lent_below. @return keep_below for
 * the child (0: it will share nothing, as after fork) */
static int lend_fds(child_args_t *a) {
  if (!CHILD_BORROWS_MEMORY) return 0; /* fork copies the table anyway */
  take_low_fds();
  if (!lent_below) return 0;
  child_args_t was = *a;
  if (lend(LENT_IN, &a->fd_in) < 0 || lend(LENT_OUT, &a->fd_out) < 0 ||
      lend(LENT_ERR, &a->fd_err) < 0 ||
      lend(LENT_REPORT, &a->fd_report) < 0 ||
      lend(LENT_CGROUP, &a->fd_cgroup) < 0) {
    unlend();
    *a = was; /* the whole table, as before */
    return 0;
  }
  return lent_below;
}

/* }====== */

#if CHILD_BORROWS_MEMORY
static int child_main(void *arg) { child_exec(arg); }
#endif

/* @param pool_stack NULL (the loop's thread: one child at a time, on a
 * stack kept for it) or POOL_STACK bytes of the spawn's own */
static pid_t start_child(const child_args_t *a, char *pool_stack) {
#if CHILD_BORROWS_MEMORY
  /* As vfork (we resume at the exec or exit), on a stack of the child's
   * own; sharing the descriptor table too when its fds were lent. */
  static char stack[65536] __attribute__((aligned(64)));
  char *top = pool_stack ? pool_stack + POOL_STACK : stack + sizeof stack;
  int flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
  if (a->keep_below > 0) flags |= CLONE_FILES;
  return clone(child_main, top, flags, (void *)a);
#else
  /* ASan keeps per-thread state on the stack vfork would share. */
  (void)pool_stack;
  pid_t pid = fork();
  if (pid == 0) child_exec(a);
  return pid;
#endif
}

static void rename_log(const char *from, const char *to) {
  if (rename(from, to) < 0 && errno != ENOENT)
    ML_WARN("proc: cannot rename log %s to %s: %s", from, to, strerror(errno));
}

static int fd_above_stdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return nfd;
}

static int make_pipe(int fds[2], int flags) {
  if (pipe2(fds, O_CLOEXEC | flags) < 0) return -errno;
  fds[0] = fd_above_stdio(fds[0]);
  fds[1] = fd_above_stdio(fds[1]);
  if (fds[0] < 0 || fds[1] < 0) {
    if (fds[0] >= 0) close(fds[0]);
    if (fds[1] >= 0) close(fds[1]);
    return UV_EMFILE;
  }
  return 0;
}

static int devnull_fd(void) {
  static int fd = -1;
  if (fd < 0) fd = fd_above_stdio(open("/dev/null", O_RDWR | O_CLOEXEC));
  return fd;
}

/* }====== */

/* {====== exit path */

static void proc_unref(ml_proc_t *p) {
  if (--p->refs > 0) return;
  armed_free(p->armed);
  if (p->next) ml_proc_release(p->next); /* never handed over */
  ml__clog_unref(p->sout.file);
  ml__clog_unref(p->serr.file);
  free(p->cap);
  free(p->cgroup);
  free(p->record);
  free(p);
}

static void handle_closed(uv_handle_t *h) {
  ml_proc_t *p = h->data;
  if (--p->handles == 0) proc_unref(p); /* the "handles open" reference */
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, handle_closed);
}

static void exit_destroy(ml_event_t *e) {
  ml_proc_exit_t *ev = (ml_proc_exit_t *)e;
  /* Not taken (the event was dropped): nobody would ever stop it. */
  if (ev->next) ml_proc_release(ev->next);
  free(ev->output);
  free(e);
}

ml_proc_exit_t *ml__proc_exit_new(uint64_t id, intptr_t udata, int pid) {
  ml_proc_exit_t *ev = calloc(1, sizeof *ev);
  if (!ev) return NULL;
  ev->head.ev.type = ML_EV_PROC_EXIT;
  ev->head.ev.id = id;
  ev->head.ev.destroy = exit_destroy;
  ev->head.kind = ML_PROC_EV_EXIT;
  ev->udata = udata;
  ev->pid = pid;
  return ev;
}

/* Everything is in: flush logs, clean the cgroup, post the event. */
static void finish(ml_proc_t *p) {
  if (p->posted) return;
  p->posted = 1;
  if (p->out_open) close_handle((uv_handle_t *)&p->out);
  if (p->err_open) close_handle((uv_handle_t *)&p->err);
  p->out_open = p->err_open = 0;
  close_handle((uv_handle_t *)&p->timer);
  ml__clog_finish(&p->sout);
  ml__clog_finish(&p->serr);
  ml_proc_exit_t *ev = ml__proc_exit_new(p->id, p->udata, (int)p->pid);
  if (p->cgroup) {
    if (ev) ev->oom_killed = ml__cgroup_oom_killed(p->cgroup);
    if (ml__cgroup_remove(p->cgroup) < 0)
      ML_WARN("proc: cannot remove cgroup %s", p->cgroup);
  }
  drop_record(p);
  if (!ev) return; /* a replacement in p->next goes with p */
  if (WIFSIGNALED(p->status)) {
    ev->signal = WTERMSIG(p->status);
    ev->exit_code = 128 + ev->signal;
  } else {
    ev->exit_code = WEXITSTATUS(p->status);
  }
  ev->started_ns = p->started_ns;
  ev->finished_ns = p->finished_ns;
  ev->timed_out = p->timed_out;
  ev->next = p->next;
  ev->next_spawned_ns = p->next_ns;
  p->next = NULL;
  if (p->capture) {
    ev->output = p->cap;
    ev->output_len = p->cap_len;
    ev->output_truncated = p->cap_truncated;
    p->cap = NULL;
  }
  ml_loop_post(p->loop, &ev->head.ev);
}

static void maybe_finish(ml_proc_t *p) {
  if (p->reaped && !p->out_open && !p->err_open) finish(p);
}

static void stop_watching(ml_proc_t *p) {
  if (!p->watching) return;
  p->watching = 0;
  if (p->mode == ML_PROC_WATCH_PIDFD) {
    uv_poll_stop(&p->w.poll);
    close(p->pidfd); /* safe once the poll is stopped */
    p->pidfd = -1;
  }
  close_handle(&p->w.h);
}

static void kill_group(ml_proc_t *p) {
  kill(-p->pid, SIGKILL);
  if (p->cgroup) ml__cgroup_kill(p->cgroup);
}

static void on_timer(uv_timer_t *t);

static int spawn_resolved(ml_loop_t *loop, uint64_t id,
                          const ml_proc_opts_t *o, const char *resolved,
                          ml__clog_t *log, ml_proc_t **out, char *errmsg,
                          size_t errlen);

/* Starts the armed replacement of a process that has just ended (seen, not
 * yet reaped), if its exit calls for one: first, before it is reaped, the
 * log is closed, the pipes drained or anything is posted, so that a
 * restart costs one spawn on top of the exit. */
static void start_armed(ml_proc_t *p, bool failed) {
  armed_t *a = p->armed;
  p->armed = NULL;
  if ((a->when == ML_PROC_RESTART_ANY || failed) &&
      uv_hrtime() >= a->not_before) {
    char msg[512];
    int rc = spawn_resolved(p->loop, a->id, &a->o, a->file, a->log, &p->next,
                            msg, sizeof msg);
    a->log = NULL; /* the spawn's, in every case */
    if (rc == 0) {
      p->next_ns = uv_hrtime();
    } else {
      /* The caller starts it the ordinary way and reports the failure. */
      p->next = NULL;
      ML_DEBUG("proc: no replacement for %d: %s", (int)p->pid, msg);
    }
  }
  armed_free(a);
}

/* Reaps the leader if it has ended. @return true when it had. */
static bool try_reap(ml_proc_t *p, bool block) {
  if (p->reaped) return true;
  siginfo_t si;
  si.si_pid = 0;
  int flags = WEXITED | WNOWAIT | (block ? 0 : WNOHANG);
  if (waitid(P_PID, (id_t)p->pid, &si, flags) < 0 || si.si_pid == 0)
    return false;
  /* Peeked without reaping, so the pid still names our group: kill what is
   * left of it, as a container dies with its init process. */
  kill_group(p);
  p->finished_ns = ml_proc_now_ns();
  /* The replacement before the reap: the zombie keeps our group's id
   * reserved meanwhile, and reaping it (the kernel frees the task) took
   * 40-90 us that a restart need not wait for. */
  if (p->armed)
    start_armed(p, si.si_code != CLD_EXITED || si.si_status != 0);
  int status = 0;
  while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR) {
  }
  p->status = status;
  p->reaped = 1;
  stop_watching(p);
  if (p->out_open || p->err_open) {
    /* A process that escaped the group may hold the pipes: do not wait on
     * it forever. */
    p->timer_reason = TIMER_DRAIN;
    uv_timer_start(&p->timer, on_timer, DRAIN_MS, 0);
  } else {
    uv_timer_stop(&p->timer);
  }
  return true;
}

static void on_pidfd(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  ml_proc_t *p = h->data;
  if (try_reap(p, false)) maybe_finish(p);
}

static void on_sigchld(uv_signal_t *h, int signum) {
  (void)signum;
  ml_proc_t *p = h->data;
  if (try_reap(p, false)) maybe_finish(p);
}

static void on_timer(uv_timer_t *t) {
  ml_proc_t *p = t->data;
  switch (p->timer_reason) {
  case TIMER_TIMEOUT:
    p->timed_out = 1;
    ml_proc_disarm(p); /* killed by us: no replacement */
    /* fallthrough */
  case TIMER_STOP:
    if (!p->reaped) kill_group(p);
    break;
  case TIMER_DRAIN:
    if (p->out_open) close_handle((uv_handle_t *)&p->out);
    if (p->err_open) close_handle((uv_handle_t *)&p->err);
    p->out_open = p->err_open = 0;
    maybe_finish(p);
    break;
  }
}

/* Reads go through one buffer: each chunk is consumed inside the callback. */
static char read_buf[65536];

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  ml_proc_t *p = s->data;
  bool is_out = s == (uv_stream_t *)&p->out;
  if (n > 0) {
    if (p->capture) {
      size_t room = p->cap_max - p->cap_len;
      size_t take = (size_t)n < room ? (size_t)n : room;
      if (take < (size_t)n) p->cap_truncated = 1;
      if (take > 0) {
        char *nb = realloc(p->cap, p->cap_len + take);
        if (nb) {
          memcpy(nb + p->cap_len, buf->base, take);
          p->cap = nb;
          p->cap_len += take;
        }
      }
    } else {
      ml__clog_feed(is_out ? &p->sout : &p->serr, buf->base, (size_t)n);
    }
    return;
  }
  if (n == 0) return;
  /* EOF or error: this stream is done. */
  close_handle((uv_handle_t *)s);
  if (is_out)
    p->out_open = 0;
  else
    p->err_open = 0;
  maybe_finish(p);
}

/* }====== */

static int open_pipe_handle(ml_proc_t *p, uv_pipe_t *h, int fd) {
  uv_pipe_init(p->loop->uv, h, 0);
  h->data = p;
  p->handles++;
  int rc = uv_pipe_open(h, fd);
  if (rc == 0) rc = uv_read_start((uv_stream_t *)h, on_alloc, on_read);
  return rc;
}

/* Go-style (lower-case) text for an errno, also where libuv has none. */
static const char *errtext(int err) {
  static char buf[128];
  const char *m = ml_strerror(err);
  if (strncmp(m, "Unknown", 7) != 0) return m;
  snprintf(buf, sizeof buf, "%s", strerror(-err));
  if (buf[0] >= 'A' && buf[0] <= 'Z') buf[0] = (char)(buf[0] - 'A' + 'a');
  return buf;
}

static const char *stage_msg(int stage) {
  switch (stage) {
  case STAGE_SETPGID: return "setpgid";
  case STAGE_PDEATHSIG: return "prctl(PR_SET_PDEATHSIG)";
  case STAGE_CGROUP: return "joining the cgroup";
  case STAGE_STDIO: return "setting up stdio";
  default: return "starting the process";
  }
}

/* ml_proc_spawn, with the executable already looked up when `resolved` is
 * given and stdout_log's writer already open on stdout_log_from when `log`
 * is (an armed replacement: both done when armed, not on the way; `log` is
 * taken over in every case). */
/* One spawn's state across its three steps: prepare (options, PATH, logs,
 * pipes, cgroup: the loop's thread), launch (the clone, waiting for the
 * child's exec: the loop's thread, or one of libuv's pool for
 * ml_proc_spawn_async) and finish (watchers and records: the loop's
 * thread). */
typedef struct {
  ml_loop_t *loop;
  uint64_t id;
  const ml_proc_opts_t *o;
  ml__clog_t *log;
  ml_proc_t *p;
  char *file;
  const char *log_from;
  int outp[2], errp[2], rep[2], cgfd;
  child_err_t shared_err, ce;
  ssize_t n; /* bytes of ce the child reported */
  child_args_t a;
  int64_t born, before;
  bool yielded;
  pid_t pid;
  int fork_err;
  char *stack; /* the child's stack; NULL: the loop thread's own */
  char *msg;
  size_t mlen;
} spawn_t;

/* Everything before the clone. @return 0 or an error (then spawn_fail) */
static int spawn_prepare(spawn_t *s, const char *resolved) {
  const ml_proc_opts_t *o = s->o;
  if (s->mlen) s->msg[0] = 0;
  s->outp[0] = s->outp[1] = s->errp[0] = s->errp[1] = -1;
  s->rep[0] = s->rep[1] = s->cgfd = -1;
  if (!o->argv || !o->argv[0]) {
    snprintf(s->msg, s->mlen, "no command");
    return ML_EINVALID;
  }
  raise_nofile();
  int rc = 0;
  ml_proc_t *p = calloc(1, sizeof *p);
  if (!p) return ML_ENOMEM;
  s->p = p;
  p->loop = s->loop;
  p->id = s->id;
  p->udata = o->udata;
  p->pidfd = -1;
  p->refs = 1; /* the caller's; the handles' reference comes with them */
  p->capture = o->capture;
  p->cap_max = o->max_output ? o->max_output : ML_PROC_MAX_OUTPUT;
  p->sout.name = "stdout";
  p->serr.name = "stderr";

  /* A spare to rename to stdout_log: once the exec is done, or on
   * failure (the instance's log is there either way, as it is without). */
  s->log_from = o->stdout_log && !o->capture ? o->stdout_log_from : NULL;
  if (resolved) {
    if (!(s->file = strdup(resolved))) return ML_ENOMEM;
  } else if ((rc = ml__proc_resolve(o->argv[0], o->env, true, &s->file,
                                     s->msg, s->mlen)) < 0) {
    return rc;
  }
  /* Log files first: a bad log path is the caller's error, before fork. A
   * writer opened when armed is used if its spare is still there (one
   * fstat instead of an open and a fstat); a spare removed or replaced
   * since is opened as if never armed. */
  if (s->log && (o->capture || !o->stdout_log || !s->log_from ||
                 !ml__clog_still_named(s->log))) {
    ml__clog_unref(s->log);
    s->log = NULL;
  }
  if (!o->capture) {
    if (s->log) {
      p->sout.file = s->log; /* on the spare: renamed below, as it would be */
      s->log = NULL;
    } else if (o->stdout_log) {
      bool used_from = false;
      p->sout.file =
          ml__clog_open(o->stdout_log, o->stdout_log_from, false, &used_from,
                        o->log_max_bytes, o->log_max_files, &rc);
      if (!used_from) s->log_from = NULL; /* no spare: the log was made */
      if (!p->sout.file) {
        snprintf(s->msg, s->mlen, "open log %s: %s", o->stdout_log,
                 ml_strerror(rc));
        return rc;
      }
    }
    if (o->stderr_log && o->stdout_log &&
        strcmp(o->stderr_log, o->stdout_log) == 0) {
      p->serr.file = p->sout.file;
      ml__clog_ref(p->serr.file);
    } else if (o->stderr_log) {
      p->serr.file = ml__clog_open(o->stderr_log, NULL, false, NULL,
                                   o->log_max_bytes, o->log_max_files, &rc);
      if (!p->serr.file) {
        snprintf(s->msg, s->mlen, "open log %s: %s", o->stderr_log,
                 ml_strerror(rc));
        return rc;
      }
    }
  }
  bool want_out = o->capture || p->sout.file;
  bool want_err = !o->capture && p->serr.file;
  /* A child that borrows our memory reports a failure in it; after fork, a
   * report pipe, which never blocks: the child writes 8 bytes into it at
   * most, and we read it once (see spawn_launch). */
  if ((want_out && (rc = make_pipe(s->outp, 0)) < 0) ||
      (want_err && (rc = make_pipe(s->errp, 0)) < 0) ||
      (!CHILD_BORROWS_MEMORY && (rc = make_pipe(s->rep, O_NONBLOCK)) < 0)) {
    snprintf(s->msg, s->mlen, "pipe: %s", ml_strerror(rc));
    return rc;
  }
  if (devnull_fd() < 0) {
    rc = UV_EMFILE;
    snprintf(s->msg, s->mlen, "open /dev/null: %s", ml_strerror(rc));
    return rc;
  }
  if (o->memory_limit_bytes > 0 && ml_proc_cgroups_available(NULL)) {
    rc = ml__cgroup_create(o->memory_limit_bytes, &p->cgroup, &s->cgfd);
    if (rc < 0) {
      snprintf(s->msg, s->mlen, "create cgroup: %s", ml_strerror(rc));
      return rc;
    }
    s->cgfd = fd_above_stdio(s->cgfd);
  } else if (o->join_cgroup) {
    /* The child writes "0" into it before its exec, as into its own. */
    char path[4096];
    snprintf(path, sizeof path, "%s/cgroup.procs", o->join_cgroup);
    s->cgfd = open(path, O_WRONLY | O_CLOEXEC);
    if (s->cgfd < 0) {
      rc = uv_translate_sys_error(errno);
      snprintf(s->msg, s->mlen, "join cgroup %s: %s", o->join_cgroup,
               ml_strerror(rc));
      return rc;
    }
    s->cgfd = fd_above_stdio(s->cgfd);
  }
  s->shared_err = (child_err_t){0, 0};
  s->a = (child_args_t){
      .file = s->file,
      .argv = (char *const *)o->argv,
      .envp = o->env ? (char *const *)o->env : environ,
      .cwd = o->cwd,
      .fd_in = devnull_fd(),
      .fd_out = want_out ? s->outp[1] : devnull_fd(),
      .fd_err = o->capture ? s->outp[1]
                : want_err ? s->errp[1]
                           : devnull_fd(),
      .new_session = o->new_session,
      .fd_report = s->rep[1],
      .report = CHILD_BORROWS_MEMORY ? &s->shared_err : NULL,
      .fd_cgroup = s->cgfd,
      .parent = getpid(),
      .nofile = orig_nofile,
      .restore_nofile = nofile_raised,
  };
  if (o->stdio) {
    if (o->stdio[0] >= 0) s->a.fd_in = o->stdio[0];
    if (o->stdio[1] >= 0) s->a.fd_out = o->stdio[1];
    if (o->stdio[2] >= 0) s->a.fd_err = o->stdio[2];
  }
  s->a.sigs_known = NSIG <= 65 && nondefault_signals(&s->a.sigs);
  s->a.born_ns = &s->born;
  s->a.yielded = &s->yielded;
  return 0;
}

/* The clone, and the child's report once it has exec'd or failed. On the
 * loop's thread (pooled false) the child's descriptors are lent to it and
 * it starts on our CPU, handing us SCHED_BATCH (a restart's latency); on a
 * pool thread (pooled) it shares nothing of the kind: several may start at
 * once there, each on a stack of its own. */
static void spawn_launch(spawn_t *s, bool pooled) {
  child_args_t *a = &s->a;
  if (!pooled) a->keep_below = lend_fds(a);
  /* Signals stay blocked until the child has reset its handlers: a
   * handler of ours must never run in the child's borrowed memory. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  s->p->started_ns = ml_proc_now_ns();
  s->born = 0;
  s->before = boot_ns();
  s->yielded = false;
  a->yield_tid = pooled ? 0 : batch_handoff_tid();
  cpu_set_t cpus;
  a->cpus = !pooled && pin_to_this_cpu(&cpus) ? &cpus : NULL;
  s->pid = start_child(a, s->stack);
  s->fork_err = errno;
  if (a->cpus) sched_setaffinity(0, sizeof cpus, &cpus);
  if (s->yielded) {
    struct sched_param sp = {.sched_priority = 0};
    sched_setscheduler(0, SCHED_OTHER, &sp);
    /* SCHED_BATCH keeps the wake-up from preempting, not the child's slice
     * from running out (2 execs in 10 in a trace), after which we were
     * picked anyway: then give the CPU back until the child blocks (a
     * no-op when it already has, or runs on the other CPU). */
    sched_yield();
  }
  if (a->keep_below > 0) unlend();
  if (!s->born) s->born = boot_ns(); /* fork: after it returned */
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (s->pid < 0) return;
  if (s->rep[1] >= 0) close(s->rep[1]);
  s->rep[1] = -1;
  if (s->outp[1] >= 0) close(s->outp[1]);
  if (s->errp[1] >= 0) close(s->errp[1]);
  s->outp[1] = s->errp[1] = -1;
  if (s->cgfd >= 0) close(s->cgfd);
  s->cgfd = -1;
  /* A record: the child failed and has exited. Nothing: the exec happened.
   * After vfork we resume once the child has either written its record
   * into our memory and exited or passed the exec's point of no return, so
   * the record is read at once, without waiting for the exec to close the
   * child's copies of our descriptors (0.5 ms and more with hundreds of
   * pods running). After fork we wait for the record or for EOF. */
  s->ce = s->shared_err;
  s->n = s->ce.stage ? (ssize_t)sizeof s->ce : 0;
  if (!CHILD_BORROWS_MEMORY) {
    struct pollfd pfd = {.fd = s->rep[0], .events = POLLIN};
    while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
    }
    while ((s->n = read(s->rep[0], &s->ce, sizeof s->ce)) < 0 &&
           errno == EINTR) {
    }
    close(s->rep[0]);
    s->rep[0] = -1;
  }
}

/* After the launch: the exec's failure, or the watchers of a running
 * process. @return 0 with *out set, or an error (then spawn_fail) */
static int spawn_finish(spawn_t *s, ml_proc_t **out) {
  const ml_proc_opts_t *o = s->o;
  ml_proc_t *p = s->p;
  ml_loop_t *loop = s->loop;
  int rc;
  if (s->pid < 0) {
    rc = -s->fork_err;
    snprintf(s->msg, s->mlen, "fork: %s", ml_strerror(rc));
    return rc;
  }
  pid_t pid = s->pid;
  p->pid = pid;
  /* Nothing has been read from the process yet: the file takes its name
   * before the writer uses it. */
  if (s->log_from) rename_log(s->log_from, o->stdout_log);
  s->log_from = NULL;
  if (s->n == (ssize_t)sizeof s->ce) {
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    rc = -s->ce.err;
    if (s->ce.stage == STAGE_EXEC)
      snprintf(s->msg, s->mlen, "exec: \"%s\": %s", s->file, errtext(rc));
    else if (s->ce.stage == STAGE_CHDIR)
      snprintf(s->msg, s->mlen, "chdir to cwd (\"%s\") failed: %s", o->cwd,
               errtext(rc));
    else
      snprintf(s->msg, s->mlen, "%s: %s", stage_msg(s->ce.stage),
               errtext(rc));
    return rc;
  }
  free(s->file);
  s->file = NULL;

  /* From here on the process runs: nothing can fail the spawn. */
  uv_timer_init(loop->uv, &p->timer);
  p->timer.data = p;
  p->handles++;
  p->refs++; /* held until the last handle is closed */
  if (s->outp[0] >= 0 && open_pipe_handle(p, &p->out, s->outp[0]) == 0)
    p->out_open = 1;
  else if (s->outp[0] >= 0)
    close_handle((uv_handle_t *)&p->out);
  if (s->errp[0] >= 0 && open_pipe_handle(p, &p->err, s->errp[0]) == 0)
    p->err_open = 1;
  else if (s->errp[0] >= 0)
    close_handle((uv_handle_t *)&p->err);
  s->outp[0] = s->errp[0] = -1;

  p->pidfd = force_sigchld ? -1 : (int)syscall(SYS_pidfd_open, pid, 0);
  if (p->pidfd >= 0) {
    p->mode = ML_PROC_WATCH_PIDFD;
    if (uv_poll_init(loop->uv, &p->w.poll, p->pidfd) == 0) {
      p->w.poll.data = p;
      p->handles++;
      p->watching = 1;
      uv_poll_start(&p->w.poll, UV_READABLE, on_pidfd);
    } else {
      close(p->pidfd);
      p->pidfd = -1;
    }
  }
  if (p->pidfd < 0) {
    p->mode = ML_PROC_WATCH_SIGCHLD;
    uv_signal_init(loop->uv, &p->w.sig);
    p->w.sig.data = p;
    p->handles++;
    p->watching = 1;
    uv_signal_start(&p->w.sig, on_sigchld, SIGCHLD);
  }
  if (o->state_dir) {
    unsigned long long st = 0;
    if (!starttime_between(s->before, s->born, &st)) st = 0;
    write_record(p, o->state_dir, st);
  }
  if (o->timeout_ms > 0) {
    p->timer_reason = TIMER_TIMEOUT;
    /* From now, not from the start of a turn that may have run long: a
     * stale clock would fire the timeout early. */
    uv_update_time(loop->uv);
    p->kill_at = uv_now(loop->uv) + o->timeout_ms;
    uv_timer_start(&p->timer, on_timer, o->timeout_ms, 0);
  }
  /* A SIGCHLD before the watcher existed is lost: look once now. */
  if (p->mode == ML_PROC_WATCH_SIGCHLD && try_reap(p, false)) maybe_finish(p);
  *out = p;
  return 0;
}

/* Undoes what a failed spawn made. */
static void spawn_fail(spawn_t *s) {
  ml__clog_unref(s->log); /* not taken over yet */
  if (s->log_from) rename_log(s->log_from, s->o->stdout_log);
  if (s->cgfd >= 0) close(s->cgfd);
  for (int i = 0; i < 2; i++) {
    if (s->outp[i] >= 0) close(s->outp[i]);
    if (s->errp[i] >= 0) close(s->errp[i]);
    if (s->rep[i] >= 0) close(s->rep[i]);
  }
  if (s->p) {
    if (s->p->cgroup) ml__cgroup_remove(s->p->cgroup);
    proc_unref(s->p);
  }
  free(s->file);
}

static int spawn_resolved(ml_loop_t *loop, uint64_t id,
                          const ml_proc_opts_t *o, const char *resolved,
                          ml__clog_t *log, ml_proc_t **out, char *errmsg,
                          size_t errlen) {
  char msgbuf[PATH_MAX + 128];
  spawn_t s = {.loop = loop, .id = id, .o = o, .log = log,
               .msg = errmsg ? errmsg : msgbuf,
               .mlen = errmsg ? errlen : sizeof msgbuf};
  int rc = spawn_prepare(&s, resolved);
  if (rc == 0) {
    spawn_launch(&s, false);
    rc = spawn_finish(&s, out);
  }
  if (rc < 0) spawn_fail(&s);
  return rc;
}

int ml_proc_spawn(ml_loop_t *loop, uint64_t id, const ml_proc_opts_t *o,
                  ml_proc_t **out, char *errmsg, size_t errlen) {
  return spawn_resolved(loop, id, o, NULL, NULL, out, errmsg, errlen);
}

/* {====== spawns on libuv's pool */

static int copy_options(const ml_proc_opts_t *o, const char *file,
                        armed_t **out);


/* An asynchronous spawn: its options copied (they outlive the call), the
 * spawn's state, the child's stack and the answer posted to Lua. */
typedef struct {
  uv_work_t work;
  ml_proc_spawned_t *ev; /* the answer, posted when done */
  armed_t *opts;         /* the copied options (only `o` is used) */
  spawn_t s;
} pool_spawn_t;

static void pool_spawn_free(pool_spawn_t *j) {
  free(j->s.stack);
  armed_free(j->opts);
  free(j);
}

static void pool_work(uv_work_t *w) {
  pool_spawn_t *j = w->data;
  spawn_launch(&j->s, true);
}

static void pool_done(uv_work_t *w, int status) {
  pool_spawn_t *j = w->data;
  ml_proc_spawned_t *ev = j->ev;
  spawn_t *s = &j->s;
  ml_proc_t *p = NULL;
  int rc;
  if (status < 0 || s->loop->closing) {
    /* The loop is going away: nobody is left to watch the process. */
    if (status == 0 && s->pid > 0) {
      kill(-s->pid, SIGKILL);
      kill(s->pid, SIGKILL);
      while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR) {
      }
      s->pid = -1;
    }
    s->fork_err = ECANCELED;
    rc = UV_ECANCELED;
    snprintf(s->msg, s->mlen, "spawn canceled");
    spawn_fail(s);
    ml_event_free(&ev->head.ev);
    pool_spawn_free(j);
    return;
  }
  rc = spawn_finish(s, &p);
  if (rc < 0) spawn_fail(s);
  ev->rc = rc;
  ev->proc = rc == 0 ? p : NULL;
  ml_loop_post(s->loop, &ev->head.ev);
  pool_spawn_free(j);
}

static void spawned_destroy(ml_event_t *e) {
  ml_proc_spawned_t *ev = (ml_proc_spawned_t *)e;
  if (ev->proc) ml_proc_release(ev->proc);
  free(ev->msg);
  free(ev);
}

int ml_proc_spawn_async(ml_loop_t *loop, uint64_t id, uint64_t done_id,
                        const ml_proc_opts_t *o, char *errmsg,
                        size_t errlen) {
  if (errlen) errmsg[0] = 0;
  pool_spawn_t *j = calloc(1, sizeof *j);
  ml_proc_spawned_t *ev = calloc(1, sizeof *ev);
  char *msg = malloc(POOL_MSG);
  char *stack = CHILD_BORROWS_MEMORY ? malloc(POOL_STACK) : NULL;
  armed_t *opts = NULL;
  int rc = j && ev && msg && (stack || !CHILD_BORROWS_MEMORY)
               ? copy_options(o, NULL, &opts)
               : ML_ENOMEM;
  if (rc < 0) {
    free(j);
    free(ev);
    free(msg);
    free(stack);
    return rc;
  }
  ev->head.ev.type = ML_EV_PROC_EXIT;
  ev->head.ev.id = done_id;
  ev->head.ev.destroy = spawned_destroy;
  ev->head.kind = ML_PROC_EV_SPAWNED;
  ev->udata = o->udata;
  ev->msg = msg;
  j->ev = ev;
  j->opts = opts;
  j->s = (spawn_t){.loop = loop, .id = id, .o = &opts->o, .stack = stack,
                   .msg = msg, .mlen = POOL_MSG};
  rc = spawn_prepare(&j->s, NULL);
  if (rc == 0) {
    j->work.data = j;
    rc = uv_queue_work(loop->uv, &j->work, pool_work, pool_done);
  }
  if (rc < 0) {
    snprintf(errmsg, errlen, "%s", msg);
    spawn_fail(&j->s);
    ml_event_free(&ev->head.ev);
    pool_spawn_free(j);
    return rc;
  }
  return 0;
}

/* }====== */

int ml_proc_pid(const ml_proc_t *p) { return (int)p->pid; }

const char *ml_proc_cgroup(const ml_proc_t *p) { return p->cgroup; }

bool ml_proc_exited(const ml_proc_t *p) { return p->reaped; }

int ml_proc_watch_mode(const ml_proc_t *p) { return p->mode; }

static size_t list_len(const char *const *v) {
  size_t n = 0;
  while (v && v[n]) n++;
  return n;
}

/* Copies string `s` (or NULL) to *pos and advances it. */
static const char *put_str(char **pos, const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  memcpy(*pos, s, n);
  const char *r = *pos;
  *pos += n;
  return r;
}

static const char *const *put_list(const char ***vec, char **pos,
                                   const char *const *v) {
  if (!v) return NULL;
  const char **out = *vec;
  size_t n = list_len(v);
  for (size_t i = 0; i < n; i++) out[i] = put_str(pos, v[i]);
  out[n] = NULL;
  *vec += n + 1;
  return out;
}

/* The options `o` with every list and string copied into one allocation,
 * and `file` (argv[0] found in the PATH) when given. */
static int copy_options(const ml_proc_opts_t *o, const char *file,
                        armed_t **out) {
  const char *one[] = {o->cwd,       o->stdout_log, o->stderr_log,
                       o->stdout_log_from, o->state_dir, o->join_cgroup,
                       file};
  size_t na = list_len(o->argv), ne = list_len(o->env);
  size_t nptr = (o->argv ? na + 1 : 0) + (o->env ? ne + 1 : 0), bytes = 0;
  for (size_t i = 0; i < na; i++) bytes += strlen(o->argv[i]) + 1;
  for (size_t i = 0; i < ne; i++) bytes += strlen(o->env[i]) + 1;
  for (size_t i = 0; i < sizeof one / sizeof *one; i++)
    if (one[i]) bytes += strlen(one[i]) + 1;
  armed_t *a = malloc(sizeof *a + nptr * sizeof(char *) + bytes);
  if (!a) return ML_ENOMEM;
  const char **vec = (const char **)(a + 1);
  char *pos = (char *)(vec + nptr);
  a->id = 0;
  a->when = 0;
  a->not_before = 0;
  a->log = NULL;
  a->o = *o;
  a->o.argv = put_list(&vec, &pos, o->argv);
  a->o.env = put_list(&vec, &pos, o->env);
  a->o.cwd = put_str(&pos, o->cwd);
  a->o.stdout_log = put_str(&pos, o->stdout_log);
  a->o.stderr_log = put_str(&pos, o->stderr_log);
  a->o.stdout_log_from = put_str(&pos, o->stdout_log_from);
  a->o.state_dir = put_str(&pos, o->state_dir);
  a->o.join_cgroup = put_str(&pos, o->join_cgroup);
  a->o.stdio = NULL; /* the caller's descriptors: for ml_proc_spawn only */
  a->file = put_str(&pos, file);
  *out = a;
  return 0;
}

int ml_proc_arm_restart(ml_proc_t *p, uint64_t next_id,
                        const ml_proc_opts_t *next, int when,
                        uint64_t not_before_ms) {
  if (p->reaped) return UV_ESRCH;
  if (!next->argv || !next->argv[0] || next->capture ||
      (when != ML_PROC_RESTART_ANY && when != ML_PROC_RESTART_FAILURE))
    return ML_EINVALID;
  /* The PATH lookup now, not at the exit: off the restart's path. The
   * spawn that arms has most often just looked the same command up, so
   * the cache answers without a stat; a file gone by the exit fails that
   * spawn, and the caller starts it the ordinary way. */
  char *file = NULL, msg[64];
  int rc = ml__proc_resolve(next->argv[0], next->env, false, &file, msg,
                            sizeof msg);
  if (rc < 0) return rc;
  armed_t *a;
  rc = copy_options(next, file, &a);
  free(file);
  if (rc < 0) return rc;
  a->id = next_id;
  a->when = when;
  a->not_before = uv_hrtime() + not_before_ms * 1000000u;
  /* The spare log made (or emptied) and opened now too: the inode is
   * created off the restart's path, and by us, with one open (the kubelet
   * created it itself before, then we opened it again). Only the spare:
   * the instance's own log is never made before the instance runs. Held
   * open while armed, one descriptor. */
  a->log = NULL;
  if (a->o.stdout_log && a->o.stdout_log_from) {
    int err = 0;
    a->log = ml__clog_open(a->o.stdout_log, a->o.stdout_log_from, true, NULL,
                           a->o.log_max_bytes, a->o.log_max_files, &err);
  }
  armed_free(p->armed);
  p->armed = a;
  return 0;
}

bool ml_proc_disarm(ml_proc_t *p) {
  if (!p->armed) return false;
  armed_free(p->armed);
  p->armed = NULL;
  return true;
}

int ml_proc_kill(ml_proc_t *p, int sig) {
  if (p->reaped) return UV_ESRCH;
  /* The sender decides what follows the exit it asked for. */
  if (sig != 0) ml_proc_disarm(p);
  if (kill(-p->pid, sig) < 0) return -errno;
  return 0;
}

int ml_proc_stop(ml_proc_t *p, uint64_t grace_ms) {
  if (p->reaped) return UV_ESRCH;
  ml_proc_disarm(p);
  if (grace_ms == 0) {
    kill_group(p);
    return 0;
  }
  if (!p->termed) {
    p->termed = 1;
    kill(-p->pid, SIGTERM);
  }
  uv_update_time(p->loop->uv); /* the grace period counts from now */
  uint64_t at = uv_now(p->loop->uv) + grace_ms;
  if (uv_is_active((uv_handle_t *)&p->timer) && p->kill_at <= at) return 0;
  p->timer_reason = TIMER_STOP;
  p->kill_at = at;
  uv_timer_start(&p->timer, on_timer, grace_ms, 0);
  return 0;
}

/* The loop was shut down under the process (its handles closed by someone
 * else's uv_walk, as at runtime shutdown): libuv is off limits. Kill and
 * reap, clean up on the OS side, free at once; no event. */
static void release_orphaned(ml_proc_t *p) {
  if (!p->reaped) {
    kill_group(p);
    while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  if (p->pidfd >= 0) close(p->pidfd);
  ml__clog_finish(&p->sout);
  ml__clog_finish(&p->serr);
  if (p->cgroup) ml__cgroup_remove(p->cgroup);
  drop_record(p);
  p->refs = 1;
  proc_unref(p);
}

void ml_proc_release(ml_proc_t *p) {
  if (!p || p->released) return;
  p->released = 1;
  ml_proc_disarm(p);
  if (!p->posted && uv_is_closing((uv_handle_t *)&p->timer)) {
    release_orphaned(p);
    return;
  }
  if (!p->reaped) {
    /* Nobody will wait for it: kill it now and reap it here, so no zombie
     * and no running process outlives its handle. Output still in the
     * pipes is dropped. */
    kill_group(p);
    try_reap(p, true);
    if (p->out_open) close_handle((uv_handle_t *)&p->out);
    if (p->err_open) close_handle((uv_handle_t *)&p->err);
    p->out_open = p->err_open = 0;
    maybe_finish(p);
  }
  proc_unref(p);
}
