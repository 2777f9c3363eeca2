/* The machine's floor for a restart and a start (bench_pods.sh compiles and
 * runs it next to pods_bench.lua, so both see the same load): a bare
 * `sleep` child in its own process group is killed with SIGKILL, its pidfd
 * is awaited with epoll, it is reaped and a new one is vforked and exec'd.
 * Nothing else: no logs, no records, no Lua. Prints one JSON line (ms).
 *   restart_floor [N=100] [GAP_MS=30]
 * As a bare supervisor (bench_peers.sh's "floor" peer, killed and timed from
 * outside exactly as moonlet and the peers are): runs each line of FILE
 * (argv words separated by single spaces) in its own process group and
 * restarts it the same way whenever it ends, until SIGTERM.
 *   restart_floor serve FILE
 * serve-sched adds the two scheduling steps of moonlet's spawn (core/proc.c):
 * the child starts on the supervisor's CPU (pinned across the vfork), and
 * its exec does not hand the CPU back to the supervisor midway (the child
 * makes it SCHED_BATCH just before execve; it takes SCHED_OTHER back).
 *   restart_floor serve-sched FILE */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int sched_steps; /* serve-sched */

static pid_t spawn_argv(char **argv) {
  cpu_set_t all, one;
  pid_t parent = getpid();
  bool pinned = false;
  if (sched_steps && sched_getaffinity(0, sizeof all, &all) == 0) {
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    pinned = sched_setaffinity(0, sizeof one, &one) == 0;
  }
  pid_t pid = vfork();
  if (pid == 0) {
    setpgid(0, 0);
    if (sched_steps) {
      struct sched_param sp = {0};
      sched_setscheduler(parent, SCHED_BATCH, &sp);
      if (pinned) sched_setaffinity(0, sizeof all, &all);
    }
    execve(argv[0], argv, environ);
    _exit(127);
  }
  if (sched_steps) {
    struct sched_param sp = {0};
    if (pinned) sched_setaffinity(0, sizeof all, &all);
    sched_setscheduler(0, SCHED_OTHER, &sp);
    sched_yield();
  }
  return pid;
}

static pid_t spawn(void) {
  char *argv[] = {"/bin/sleep", "100000", NULL};
  return spawn_argv(argv);
}

static volatile sig_atomic_t stopping;

static void on_term(int sig) {
  (void)sig;
  stopping = 1;
}

typedef struct {
  char **argv;
  pid_t pid;
  int pidfd;
} prog_t;

/* Starts p and watches its pidfd (epoll data: its index). */
static int serve_start(int ep, prog_t *p, int i) {
  p->pid = spawn_argv(p->argv);
  if (p->pid < 0) return -1;
  p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
  if (p->pidfd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, p->pidfd, &ev) < 0)
    return -1;
  return 0;
}

static int serve(const char *file) {
  FILE *f = fopen(file, "r");
  if (!f) return 1;
  prog_t progs[4096];
  int n = 0;
  char line[4096];
  while (n < 4096 && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    if (!line[0]) continue;
    char **argv = calloc(256, sizeof *argv), *save = NULL;
    int k = 0;
    for (char *w = strtok_r(strdup(line), " ", &save); w && k < 255;
         w = strtok_r(NULL, " ", &save))
      argv[k++] = w;
    progs[n++].argv = argv;
  }
  fclose(f);
  struct sigaction sa = {.sa_handler = on_term}; /* no SA_RESTART */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < n; i++)
    if (ep < 0 || serve_start(ep, &progs[i], i) < 0) return 1;
  while (!stopping) {
    struct epoll_event evs[64];
    int k = epoll_wait(ep, evs, 64, -1);
    if (k < 0 && errno != EINTR) return 1;
    for (int j = 0; j < k; j++) {
      prog_t *p = &progs[evs[j].data.u32];
      waitpid(p->pid, NULL, 0);
      close(p->pidfd); /* leaves the epoll set with it */
      if (serve_start(ep, p, (int)evs[j].data.u32) < 0) return 1;
    }
  }
  for (int i = 0; i < n; i++) kill(-progs[i].pid, SIGKILL);
  for (int i = 0; i < n; i++) waitpid(progs[i].pid, NULL, 0);
  return 0;
}

static double pct(double *v, int n, double p) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  int i = (int)(p * n + 0.999999) - 1;
  return v[i < 0 ? 0 : i];
}

int main(int argc, char **argv) {
  if (argc > 2 && strcmp(argv[1], "serve") == 0) return serve(argv[2]);
  if (argc > 2 && strcmp(argv[1], "serve-sched") == 0) {
    sched_steps = 1;
    return serve(argv[2]);
  }
  int n = argc > 1 ? atoi(argv[1]) : 100;
  int gap = argc > 2 ? atoi(argv[2]) : 30;
  if (n < 1 || n > 10000) n = 100;
  double *start = calloc((size_t)n, sizeof *start);
  double *restart = calloc((size_t)n, sizeof *restart);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (!start || !restart || ep < 0) return 1;
  double t0 = now_ms();
  pid_t pid = spawn();
  start[0] = now_ms() - t0;
  for (int i = 0; i < n; i++) {
    usleep((useconds_t)gap * 1000);
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    struct epoll_event ev = {.events = EPOLLIN};
    if (fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) return 1;
    t0 = now_ms();
    kill(-pid, SIGKILL);
    while (epoll_wait(ep, &ev, 1, -1) < 0) {
    }
    waitpid(pid, NULL, 0);
    close(fd);
    double t1 = now_ms();
    pid = spawn();
    double t2 = now_ms();
    restart[i] = t2 - t0;
    start[i] = t2 - t1;
  }
  kill(-pid, SIGKILL);
  waitpid(pid, NULL, 0);
  printf("{\"floor_spawn_p50_ms\":%.3f,\"floor_spawn_p99_ms\":%.3f,"
         "\"floor_restart_p50_ms\":%.3f,\"floor_restart_p99_ms\":%.3f}\n",
         pct(start, n, 0.5), pct(start, n, 0.99), pct(restart, n, 0.5),
         pct(restart, n, 0.99));
  return 0;
}
