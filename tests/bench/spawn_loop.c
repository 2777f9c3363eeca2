/* The process floor of the Job benchmarks (bench_job.sh compiles and runs
 * it in the same minutes as the server runs, so both see the same load):
 * N `true` processes started with posix_spawn, in waves of P at once (P=1:
 * one after the other, as the shell loop does), each reaped before its
 * slot is reused. No logs, no records, no Lua. Prints one JSON line.
 *   spawn_loop [N=1000] [P=1]
 * With a third argument `live` (bench_deploy.sh's floor): N `sleep`s started
 * one after the other and all left running until the last has exec'd
 * (posix_spawn returns once its child has exec'd), then killed. */
#define _GNU_SOURCE
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* N live `sleep`s: the process floor of the scale-up of sleep pods. */
static int live_sleeps(int n) {
  pid_t *pids = calloc((size_t)n, sizeof *pids);
  if (!pids) return 2;
  char *args[] = {"sleep", "100000", NULL};
  int started = 0, failed = 0;
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    if (posix_spawnp(&pids[started], "sleep", NULL, NULL, args, environ) == 0) {
      started++;
    } else {
      failed++;
    }
  }
  double secs = now_s() - t0;
  for (int i = 0; i < started; i++) kill(pids[i], SIGKILL);
  for (int i = 0; i < started; i++) waitpid(pids[i], NULL, 0);
  free(pids);
  printf("{\"baseline\":\"posix_spawn live sleeps\",\"processes\":%d,\"seconds\":%.3f,\"failed\":%d}\n",
         n, secs, failed);
  return failed > 0;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000;
  int p = argc > 2 ? atoi(argv[2]) : 1;
  if (n < 1 || p < 1) {
    fprintf(stderr, "usage: spawn_loop [N>=1] [P>=1]\n");
    return 2;
  }
  if (argc > 3 && strcmp(argv[3], "live") == 0) return live_sleeps(n);
  char *args[] = {"true", NULL};
  double t0 = now_s();
  int started = 0, running = 0, failed = 0;
  while (started < n || running > 0) {
    while (started < n && running < p) {
      pid_t pid;
      if (posix_spawnp(&pid, "true", NULL, NULL, args, environ) != 0) {
        failed++;
      } else {
        running++;
      }
      started++;
    }
    if (running > 0) {
      int st;
      if (waitpid(-1, &st, 0) > 0) running--;
    }
  }
  printf("{\"baseline\":\"posix_spawn loop\",\"processes\":%d,\"parallel\":%d,\"seconds\":%.3f,\"failed\":%d}\n",
         n, p, now_s() - t0, failed);
  return failed > 0;
}
