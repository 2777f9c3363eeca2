/* The machine's floor for a restart and a start (bench_pods.sh compiles and
 * runs it next to pods_bench.lua, so both see the same load): a bare
 * `sleep` child in its own process group is killed with SIGKILL, its pidfd
 * is awaited with epoll, it is reaped and a new one is vforked and exec'd.
 * Nothing else: no logs, no records, no Lua. Prints one JSON line (ms).
 *   restart_floor [N=100] [GAP_MS=30] */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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

static pid_t spawn(void) {
  char *argv[] = {"sleep", "100000", NULL};
  pid_t pid = vfork();
  if (pid == 0) {
    setpgid(0, 0);
    execve("/bin/sleep", argv, environ);
    _exit(127);
  }
  return pid;
}

static double pct(double *v, int n, double p) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  int i = (int)(p * n + 0.999999) - 1;
  return v[i < 0 ? 0 : i];
}

int main(int argc, char **argv) {
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
