/* Watch fan-out latency measured by a client that adds almost nothing: N
 * watch streams on the API's unix socket, read with epoll, and U merge
 * patches of one ConfigMap on another connection; each watcher's latency is
 * from just before the PATCH is written to the read that brings its
 * MODIFIED event. api_load.lua's watch-latency mode measures the same with
 * one Lua/libcurl process reading every stream in turn, which is part of
 * what it measures. One untimed update warms the server up first. Not part
 * of ctest.
 *   cc -O2 -o watch_latency watch_latency.c
 *   watch_latency SOCKET [WATCHERS=100] [UPDATES=20]
 * Prints one JSON line: p50_ms, p99_ms, max_ms, received. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_WATCHERS 1024
#define TAIL 64 /* bytes kept between reads: a marker may straddle two */

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int dial(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("connect");
    exit(1);
  }
  return fd;
}

static void send_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) {
      perror("write");
      exit(1);
    }
    s += w, n -= (size_t)w;
  }
}

/* One request on a fresh connection; returns the response (headers and
 * body) once `until` shows up in it. */
static char *request(const char *sock, const char *req, const char *until) {
  int fd = dial(sock);
  send_all(fd, req, strlen(req));
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap);
  buf[0] = 0;
  while (!strstr(buf, until) && len < cap - 1) {
    ssize_t r = read(fd, buf + len, cap - 1 - len);
    if (r <= 0) break;
    len += (size_t)r;
    buf[len] = 0;
  }
  close(fd);
  return buf;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s SOCKET [WATCHERS] [UPDATES]\n", argv[0]);
    return 2;
  }
  const char *sock = argv[1];
  int n = argc > 2 ? atoi(argv[2]) : 100, u = argc > 3 ? atoi(argv[3]) : 20;
  if (n < 1 || n > MAX_WATCHERS || u < 1) return 2;
  const char *path = "/api/v1/namespaces/default/configmaps";
  char name[64], req[1024], body[256];
  snprintf(name, sizeof name, "watched-c-%d", (int)getpid());
  snprintf(body, sizeof body,
           "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
           "\"name\":\"%s\"},\"data\":{\"n\":\"0\"}}",
           name);
  snprintf(req, sizeof req,
           "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
           path, strlen(body), body);
  char *created = request(sock, req, "}}");
  char *rvp = strstr(created, "\"resourceVersion\":\"");
  if (!strstr(created, " 201 ") || !rvp) {
    fprintf(stderr, "create failed: %.200s\n", created);
    return 1;
  }
  long rv = atol(rvp + 19);
  free(created);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  static int fds[MAX_WATCHERS];
  static char tails[MAX_WATCHERS][TAIL * 2 + 4096];
  static int next_n[MAX_WATCHERS];
  for (int i = 0; i < n; i++) {
    fds[i] = dial(sock);
    snprintf(req, sizeof req,
             "GET %s?watch=true&fieldSelector=metadata.name%%3D%s"
             "&resourceVersion=%ld HTTP/1.1\r\nHost: x\r\n\r\n",
             path, name, rv);
    send_all(fds[i], req, strlen(req));
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    next_n[i] = 0;
  }
  usleep(200 * 1000); /* every watch registered before the first update */
  char drain[4096];
  for (;;) { /* the response heads */
    struct epoll_event evs[64];
    int k = epoll_wait(ep, evs, 64, 0);
    if (k <= 0) break;
    for (int j = 0; j < k; j++)
      if (read(fds[evs[j].data.u32], drain, sizeof drain) <= 0) return 1;
  }

  double *lat = calloc((size_t)n * (size_t)u, sizeof *lat);
  size_t got = 0;
  int patch = dial(sock);
  /* Update 0 warms the server up and is not counted: a fresh server's
   * first PATCH runs code paths for the first time (4-5 ms here). */
  for (int up = 0; up <= u; up++) {
    char val[16];
    snprintf(val, sizeof val, up ? "%d" : "warm-up", up);
    snprintf(body, sizeof body, "{\"data\":{\"n\":\"%s\"}}", val);
    snprintf(req, sizeof req,
             "PATCH %s/%s HTTP/1.1\r\nHost: x\r\n"
             "Content-Type: application/merge-patch+json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             path, name, strlen(body), body);
    char marker[32];
    snprintf(marker, sizeof marker, "\"n\":\"%s\"", val);
    double t0 = now_ms();
    send_all(patch, req, strlen(req));
    int seen = 0;
    double deadline = t0 + 10000;
    while (seen < n && now_ms() < deadline) {
      struct epoll_event evs[64];
      int k = epoll_wait(ep, evs, 64, 100);
      double t = now_ms();
      for (int j = 0; j < k; j++) {
        int i = (int)evs[j].data.u32;
        char *b = tails[i];
        size_t have = strlen(b);
        ssize_t r = read(fds[i], b + have, sizeof tails[i] - 1 - have);
        if (r <= 0) continue;
        b[have + (size_t)r] = 0;
        if (next_n[i] == up && strstr(b, marker)) {
          if (up > 0) lat[got++] = t - t0;
          next_n[i]++;
          seen++;
        }
        size_t len = strlen(b);
        if (len > TAIL) memmove(b, b + len - TAIL, TAIL + 1);
      }
    }
    /* The PATCH answer, before the next update goes out. */
    ssize_t r = read(patch, drain, sizeof drain);
    if (r <= 0 || !strstr(drain, " 200 ")) {
      fprintf(stderr, "patch %d failed\n", up);
      return 1;
    }
    usleep(20 * 1000);
  }
  qsort(lat, got, sizeof *lat, cmp);
  size_t p50 = got ? (got + 1) / 2 - 1 : 0, p99 = got ? (got * 99 + 99) / 100 - 1 : 0;
  printf("{\"client\":\"c-epoll\",\"watchers\":%d,\"updates\":%d,\"received\":%zu,"
         "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
         n, u, got, got ? lat[p50] : -1.0, got ? lat[p99] : -1.0,
         got ? lat[got - 1] : -1.0);
  return got == (size_t)n * (size_t)u ? 0 : 1;
}
