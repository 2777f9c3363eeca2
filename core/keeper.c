/* Server side of kept containers (keeper.h): start a keeper and wait for its
 * report, adopt one from its records, watch it through a pidfd, and turn its
 * exit record into the ML_EV_PROC_EXIT event the process runtime posts, so
 * Lua handles a kept container's end like any other. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "keeper.h"
#include "log.h"
#include "proc.h"
#include "proc_internal.h"

extern char **environ;

#define REPORT_TIMEOUT_MS 10000

struct ml_keeper_s {
  ml_loop_t *loop;
  uint64_t id;
  intptr_t udata;
  pid_t keeper, pid;
  int pidfd;
  int64_t started_ns;
  char *base;
  unsigned watching : 1, posted : 1;
  uv_poll_t poll;
};

/* {====== record files */

static int record_path(char *buf, size_t len, const char *base,
                       const char *ext) {
  int n = snprintf(buf, len, "%s.%s", base, ext);
  return n < 0 || (size_t)n >= len ? ML_ETOOLARGE : 0;
}

/* Whole-file write through a temporary name, so a reader never sees half a
 * record. */
static int write_file(const char *path, const char *data, size_t len) {
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
    return ML_ETOOLARGE;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  ssize_t w = write(fd, data, len);
  int err = w == (ssize_t)len ? 0 : (w < 0 ? -errno : ML_EIO);
  close(fd);
  if (err == 0 && rename(tmp, path) < 0) err = -errno;
  if (err) unlink(tmp);
  return err;
}

static int read_line(const char *path, char *buf, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = read(fd, buf, len - 1);
  close(fd);
  if (n <= 0) return ML_EIO;
  buf[n] = 0;
  return 0;
}

static void remove_records(const char *base) {
  static const char *const exts[] = {"run", "exit", "spec"};
  char path[PATH_MAX];
  for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
    if (record_path(path, sizeof path, base, exts[i]) == 0) unlink(path);
}

/* }====== */

/* {====== watching */

static int pidfd_open(pid_t pid) {
  return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* The keeper is gone: post what its record says (a keeper killed before it
 * could write one took its container with it, as SIGKILL). */
static void post_exit(ml_keeper_t *k) {
  if (k->posted) return;
  k->posted = 1;
  ml_proc_exit_t *ev = ml__proc_exit_new(k->id, k->udata, k->pid);
  char path[PATH_MAX], line[256];
  int code = 128 + SIGKILL, sig = SIGKILL, oom = 0;
  long long started = k->started_ns, finished = ml_proc_now_ns();
  if (record_path(path, sizeof path, k->base, "exit") == 0 &&
      read_line(path, line, sizeof line) == 0) {
    int c, s;
    long long st, fi;
    if (sscanf(line, "%d %d %lld %lld %d", &c, &s, &st, &fi, &oom) == 5) {
      code = c, sig = s, started = st, finished = fi;
    }
  }
  remove_records(k->base);
  if (!ev) return;
  ev->exit_code = code;
  ev->signal = sig;
  ev->started_ns = started;
  ev->finished_ns = finished;
  ev->oom_killed = oom != 0;
  ml_loop_post(k->loop, &ev->head.ev);
}

static void stop_watching(ml_keeper_t *k) {
  if (!k->watching) return;
  k->watching = 0;
  uv_poll_stop(&k->poll);
}

static void on_keeper_exit(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  ml_keeper_t *k = h->data;
  stop_watching(k);
  /* Our own child until reaped; an adopted keeper is init's (ECHILD). */
  while (waitpid(k->keeper, NULL, WNOHANG) < 0 && errno == EINTR) {
  }
  post_exit(k);
}

static void keeper_free(uv_handle_t *h) {
  ml_keeper_t *k = h->data;
  if (k->pidfd >= 0) close(k->pidfd);
  free(k->base);
  free(k);
}

static ml_keeper_t *keeper_new(ml_loop_t *loop, uint64_t id, intptr_t udata,
                               const char *base) {
  ml_keeper_t *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  k->loop = loop, k->id = id, k->udata = udata, k->pidfd = -1;
  k->base = strdup(base);
  if (!k->base) {
    free(k);
    return NULL;
  }
  return k;
}

static int watch(ml_keeper_t *k) {
  int rc = uv_poll_init(k->loop->uv, &k->poll, k->pidfd);
  if (rc < 0) return rc;
  k->poll.data = k;
  k->watching = 1;
  return uv_poll_start(&k->poll, UV_READABLE, on_keeper_exit);
}

/* }====== */

/* {====== spawn and adopt */

/* Reads the keeper's one-line report from `fd` within the time limit. */
static int read_report(int fd, char *buf, size_t len) {
  size_t got = 0;
  uint64_t deadline = uv_hrtime() / 1000000 + REPORT_TIMEOUT_MS;
  while (got < len - 1 && !memchr(buf, '\n', got)) {
    uint64_t now = uv_hrtime() / 1000000;
    if (now >= deadline) return ML_ETIMEDOUT;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, (int)(deadline - now));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n == 0 ? ML_ETIMEDOUT : -errno;
    ssize_t r = read(fd, buf + got, len - 1 - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break; /* the keeper died before it reported */
    got += (size_t)r;
    buf[got] = 0;
  }
  buf[got] = 0;
  return got > 0 ? 0 : ML_EIO;
}

static int start_keeper(const char *exe, const char *base, int report_fd,
                        pid_t *out) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  /* The keeper must not hold the server's terminal or output pipes: a
   * harness waiting for the server's output to end would wait for pods. */
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_adddup2(&fa, report_fd, 3);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  /* Its own session: no terminal hang-up or job-control signal reaches a
   * pod that is meant to outlive the server. */
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
                                    POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
  char *argv[] = {"moonlet-keeper", "__keeper", (char *)base, NULL};
  int rc = posix_spawn(out, exe, &fa, &at, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  return -rc;
}

int ml_keeper_spawn(ml_loop_t *loop, uint64_t id, intptr_t udata,
                    const char *exe, const char *base, const char *spec,
                    size_t spec_len, ml_keeper_t **out, char *errmsg,
                    size_t errlen) {
  char path[PATH_MAX], report[4400];
  if (errmsg && errlen) errmsg[0] = 0;
  int rc = record_path(path, sizeof path, base, "spec");
  if (rc == 0) rc = write_file(path, spec, spec_len);
  if (rc < 0) return rc;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    rc = -errno;
    unlink(path);
    return rc;
  }
  pid_t kp = 0;
  rc = start_keeper(exe, base, fds[1], &kp);
  close(fds[1]);
  if (rc == 0) rc = read_report(fds[0], report, sizeof report);
  close(fds[0]);
  unlink(path); /* the keeper removed it after reading, unless it failed */
  if (rc < 0) {
    if (kp > 0) kill(kp, SIGKILL);
    if (errmsg) snprintf(errmsg, errlen, "the keeper did not start: %s",
                         ml_strerror(rc));
    goto reap;
  }
  int cpid, code;
  long long started;
  int off = 0;
  if (sscanf(report, "ok %d %lld", &cpid, &started) == 2) {
    ml_keeper_t *k = keeper_new(loop, id, udata, base);
    if (!k) {
      kill(kp, SIGKILL);
      rc = ML_ENOMEM;
      goto reap;
    }
    k->keeper = kp, k->pid = cpid, k->started_ns = started;
    k->pidfd = pidfd_open(kp); /* works on a zombie child too */
    rc = k->pidfd < 0 ? -errno : watch(k);
    if (rc < 0) {
      /* Unwatchable: do not leave a container nobody can see. */
      kill(kp, SIGKILL);
      while (waitpid(kp, NULL, 0) < 0 && errno == EINTR) {
      }
      remove_records(base);
      if (k->pidfd >= 0) close(k->pidfd);
      free(k->base);
      free(k);
      if (errmsg) snprintf(errmsg, errlen, "cannot watch the keeper: %s",
                           ml_strerror(rc));
      return rc;
    }
    *out = k;
    return 0;
  }
  if (sscanf(report, "err %d %n", &code, &off) == 1 && code < 0) {
    rc = code;
    if (errmsg) {
      size_t m = strcspn(report + off, "\n");
      snprintf(errmsg, errlen, "%.*s", (int)m, report + off);
    }
  } else {
    rc = ML_EIO;
    if (errmsg) snprintf(errmsg, errlen, "the keeper sent a bad report");
  }
reap:
  if (kp > 0)
    while (waitpid(kp, NULL, 0) < 0 && errno == EINTR) {
    }
  return rc;
}

int ml_keeper_adopt(ml_loop_t *loop, uint64_t id, intptr_t udata,
                    const char *base, ml_keeper_t **out) {
  char path[PATH_MAX], line[256];
  int rc = record_path(path, sizeof path, base, "run");
  if (rc < 0) return rc;
  if (read_line(path, line, sizeof line) < 0) return UV_ENOENT;
  int kp, cpid;
  unsigned long long kst, now_st;
  long long started;
  if (sscanf(line, "%d %llu %d %lld", &kp, &kst, &cpid, &started) != 4 ||
      kp <= 1) {
    remove_records(base);
    return UV_ENOENT;
  }
  ml_keeper_t *k = keeper_new(loop, id, udata, base);
  if (!k) return ML_ENOMEM;
  k->keeper = kp, k->pid = cpid, k->started_ns = started;
  /* Opened first, checked after: a pid recycled in between is caught. */
  k->pidfd = pidfd_open(kp);
  bool alive = k->pidfd >= 0 && ml__proc_starttime(kp, &now_st) == 0 &&
               now_st == kst;
  if (alive) {
    rc = watch(k);
    if (rc < 0) {
      close(k->pidfd);
      free(k->base);
      free(k);
      return rc;
    }
    *out = k;
    return 0;
  }
  if (k->pidfd >= 0) close(k->pidfd);
  k->pidfd = -1;
  char exitp[PATH_MAX];
  if (record_path(exitp, sizeof exitp, base, "exit") == 0 &&
      access(exitp, F_OK) == 0) {
    /* Ended while no server watched: its record says how. */
    post_exit(k);
    *out = k;
    return 0;
  }
  remove_records(base);
  free(k->base);
  free(k);
  return UV_ENOENT;
}

/* }====== */

/* {====== requests */

static int send_request(ml_keeper_t *k, int sig, int value) {
  if (k->posted || k->pidfd < 0) return UV_ESRCH;
  siginfo_t info;
  memset(&info, 0, sizeof info);
  info.si_signo = sig;
  info.si_code = SI_QUEUE;
  info.si_pid = getpid();
  info.si_uid = getuid();
  info.si_value.sival_int = value;
  if (syscall(SYS_pidfd_send_signal, k->pidfd, sig, &info, 0) < 0)
    return -errno;
  return 0;
}

int ml_keeper_pid(const ml_keeper_t *k) { return (int)k->pid; }

int ml_keeper_stop(ml_keeper_t *k, uint64_t grace_ms) {
  return send_request(k, SIGRTMIN, grace_ms > INT_MAX ? INT_MAX
                                                      : (int)grace_ms);
}

int ml_keeper_kill(ml_keeper_t *k, int sig) {
  return send_request(k, SIGRTMIN + 1, sig);
}

void ml_keeper_release(ml_keeper_t *k) {
  if (!k) return;
  if (k->poll.type == UV_POLL && !uv_is_closing((uv_handle_t *)&k->poll)) {
    stop_watching(k);
    uv_close((uv_handle_t *)&k->poll, keeper_free);
    return;
  }
  /* Never watched (an exit found on adoption), or the loop was shut down
   * under us (its handles closed by a uv_walk): libuv is off limits. */
  if (k->pidfd >= 0) close(k->pidfd);
  free(k->base);
  free(k);
}

/* }====== */
