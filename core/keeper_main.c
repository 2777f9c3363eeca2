/* The keeper process of a kept container (keeper.h): runs the container with
 * the process runtime on a private loop, reports the start on fd 3, serves
 * the server's stop/kill requests (queued real-time signals read through a
 * signalfd), and records the container's end in <base>.exit before it
 * exits. No Lua runs here, so a keeper costs one small process. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "keeper.h"
#include "proc.h"
#include "proc_internal.h"

#define REPORT_FD 3
#define DEFAULT_GRACE_MS 30000 /* SIGTERM to the keeper: a normal stop */

typedef struct {
  ml_loop_t *loop;
  ml_proc_t *proc;
  bool done;
  ml_proc_exit_t exit;
} keeper_t;

/* {====== the spawn options from <base>.spec */

typedef struct {
  json_t *root;
  const char **argv, **env;
  ml_proc_opts_t o;
} spec_t;

/* An empty Lua table encodes as {}: an empty list too. */
static const char **string_list(json_t *a) {
  if (!json_is_array(a) && !(json_is_object(a) && json_object_size(a) == 0))
    return NULL;
  size_t n = json_array_size(a);
  const char **v = calloc(n + 1, sizeof *v);
  if (!v) return NULL;
  for (size_t i = 0; i < n; i++) {
    v[i] = json_string_value(json_array_get(a, i));
    if (!v[i]) v[i] = "";
  }
  return v;
}

static const char *str(json_t *o, const char *key) {
  return json_string_value(json_object_get(o, key));
}

static uint64_t num(json_t *o, const char *key) {
  json_int_t v = json_integer_value(json_object_get(o, key));
  return v > 0 ? (uint64_t)v : 0;
}

static int load_spec(const char *path, spec_t *s, char *err, size_t errlen) {
  json_error_t je;
  s->root = json_load_file(path, 0, &je);
  unlink(path);
  if (!json_is_object(s->root)) {
    snprintf(err, errlen, "bad keeper spec: %s", je.text);
    return ML_EINVALID;
  }
  s->argv = string_list(json_object_get(s->root, "command"));
  s->env = string_list(json_object_get(s->root, "env"));
  if (!s->argv || !s->argv[0]) {
    snprintf(err, errlen, "bad keeper spec: no command");
    return ML_EINVALID;
  }
  ml_proc_opts_t *o = &s->o;
  o->argv = s->argv;
  o->env = s->env;
  o->cwd = str(s->root, "cwd");
  o->stdout_log = str(s->root, "stdout_log");
  o->stderr_log = str(s->root, "stderr_log");
  o->log_max_bytes = num(s->root, "log_max_bytes");
  o->log_max_files = (int)num(s->root, "log_max_files");
  o->memory_limit_bytes = num(s->root, "memory_limit_bytes");
  return 0;
}

static void free_spec(spec_t *s) {
  free(s->argv);
  free(s->env);
  json_decref(s->root);
}

/* }====== */

/* {====== requests and the exit */

static void on_signal(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  keeper_t *k = h->data;
  struct signalfd_siginfo si;
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)h, &fd) < 0) return;
  while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
    if (k->done) continue;
    int sig = (int)si.ssi_signo;
    if (sig == SIGRTMIN)
      ml_proc_stop(k->proc, (uint64_t)(si.ssi_int < 0 ? 0 : si.ssi_int));
    else if (sig == SIGRTMIN + 1 && si.ssi_int > 0 && si.ssi_int < NSIG)
      ml_proc_kill(k->proc, si.ssi_int);
    else if (sig == SIGTERM || sig == SIGINT)
      ml_proc_stop(k->proc, DEFAULT_GRACE_MS);
  }
}

/* Pops the loop's events; the container's exit ends the keeper's loop. */
static bool exited(void *ud) {
  keeper_t *k = ud;
  ml_event_t *e;
  while ((e = ml_loop_pop(k->loop)) != NULL) {
    ml_proc_evhead_t *h = (ml_proc_evhead_t *)e;
    if (e->type == ML_EV_PROC_EXIT && h->kind == ML_PROC_EV_EXIT) {
      k->exit = *(ml_proc_exit_t *)e;
      k->exit.output = NULL;
      k->done = true;
    }
    ml_event_free(e);
  }
  return k->done;
}

/* Writes <base>.<ext> whole (through a temporary name). */
static int write_record(const char *base, const char *ext, const char *line) {
  char path[PATH_MAX], tmp[PATH_MAX + 8];
  if (snprintf(path, sizeof path, "%s.%s", base, ext) >= (int)sizeof path)
    return -1;
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  size_t n = strlen(line);
  bool ok = write(fd, line, n) == (ssize_t)n && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp, path) < 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* "keeper_pid keeper_starttime pid started_ns", read by keeper.c: written
 * before the start is reported, so a server that dies in between still
 * leaves a keeper the next one can find. */
static int record_run(const char *base, int pid, long long started) {
  unsigned long long st = 0;
  ml__proc_starttime(getpid(), &st);
  char line[128];
  snprintf(line, sizeof line, "%d %llu %d %lld\n", (int)getpid(), st, pid,
           started);
  return write_record(base, "run", line);
}

/* "exit_code signal started_ns finished_ns oom_killed", read by keeper.c. */
static void record_exit(const char *base, const ml_proc_exit_t *x) {
  char line[160];
  snprintf(line, sizeof line, "%d %d %lld %lld %d\n", x->exit_code, x->signal,
           (long long)x->started_ns, (long long)x->finished_ns,
           x->oom_killed ? 1 : 0);
  write_record(base, "exit", line);
}

/* }====== */

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdprintf(REPORT_FD, fmt, ap);
  va_end(ap);
  close(REPORT_FD);
}

int ml_keeper_main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "moonlet-keeper: started by the server, not by hand\n");
    return 2;
  }
  const char *base = argv[2];
  /* Whatever the server forgot to mark close-on-exec stays with it. */
  close_range(REPORT_FD + 1, ~0U, 0);
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGRTMIN);
  sigaddset(&set, SIGRTMIN + 1);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigprocmask(SIG_BLOCK, &set, NULL);
  int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);

  char path[PATH_MAX], msg[4200];
  spec_t spec = {0};
  int rc = snprintf(path, sizeof path, "%s.spec", base) >= (int)sizeof path
               ? ML_ETOOLARGE
               : load_spec(path, &spec, msg, sizeof msg);
  if (rc < 0 || sfd < 0) {
    if (rc == 0) rc = -errno, snprintf(msg, sizeof msg, "signalfd failed");
    report("err %d %s\n", rc, msg);
    free_spec(&spec);
    return 1;
  }
  uv_loop_t uv;
  ml_loop_t loop;
  uv_loop_init(&uv);
  ml_loop_init(&loop, &uv);
  keeper_t k = {.loop = &loop};
  msg[0] = 0;
  /* The container gets PDEATHSIG from its keeper: it never outlives it. */
  rc = ml_proc_spawn(&loop, 1, &spec.o, &k.proc, msg, sizeof msg);
  free_spec(&spec);
  long long started = ml_proc_now_ns();
  if (rc == 0 && record_run(base, ml_proc_pid(k.proc), started) < 0) {
    snprintf(msg, sizeof msg, "cannot record the keeper in %s.run", base);
    ml_proc_release(k.proc); /* kills it: nobody could find it */
    k.proc = NULL;
    rc = ML_EIO;
  }
  if (rc < 0) {
    report("err %d %s\n", rc, msg[0] ? msg : ml_strerror(rc));
  } else {
    report("ok %d %lld\n", ml_proc_pid(k.proc), started);
    uv_poll_t sp;
    uv_poll_init(&uv, &sp, sfd);
    sp.data = &k;
    uv_poll_start(&sp, UV_READABLE, on_signal);
    ml_loop_run(&loop, exited, &k);
    if (k.done) record_exit(base, &k.exit);
    ml_proc_release(k.proc);
    uv_close((uv_handle_t *)&sp, NULL);
    uv_run(&uv, UV_RUN_DEFAULT);
  }
  ml_loop_close(&loop);
  uv_loop_close(&uv);
  close(sfd);
  return rc < 0 ? 1 : 0;
}
