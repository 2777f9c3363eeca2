/* The machine's floor for HTTP liveness probes (bench_peers.sh health; not
 * in ctest): the kubelet's check done with nothing but nonblocking sockets
 * and one epoll set, so its CPU per check is what the kernel's loopback
 * connect/send/recv/close costs plus the least user work around it.
 *
 *   probe_floor BASE NPORTS SECONDS [HOST]
 *
 * Checks each of 127.0.0.1:BASE .. BASE+NPORTS-1 once a second, spread
 * evenly over the second (as the moonlet benchmark's pods are): a new
 * connection per check, the kubelet's request (GET, Host, User-Agent
 * kube-probe, Accept any type, Connection: close), the response read to EOF,
 * close. A check is a success when the status is 200-399 within 1 s.
 * Measures its own CPU (getrusage) over SECONDS after a 2 s warm-up and
 * prints one line of key=value pairs. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WARMUP_S 2
#define TIMEOUT_NS 1000000000LL
#define BATCH 256

typedef struct {
  int fd; /* -1 when idle */
  int64_t started;
  size_t got;
  char buf[512]; /* the status line is all a check reads */
  size_t reqlen;
  char req[256];
} check_t;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t cpu_us(int64_t *user, int64_t *sys) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec;
  *sys = (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
  return *user + *sys;
}

static uint64_t n_ok, n_fail, n_timeout, n_skipped;
static int epfd;
static struct sockaddr_in addr;

static void finish(check_t *c, int ok) {
  close(c->fd); /* also leaves the epoll set */
  c->fd = -1;
  if (ok)
    n_ok++;
  else
    n_fail++;
}

/* The status line decides: "HTTP/1.x NNN". */
static int status_ok(const check_t *c) {
  if (c->got < 12 || memcmp(c->buf, "HTTP/1.", 7) != 0) return 0;
  int st = atoi(c->buf + 9);
  return st >= 200 && st < 400;
}

static void on_readable(check_t *c) {
  for (;;) {
    char *p = c->buf + c->got;
    size_t room = sizeof c->buf - c->got;
    char sink[4096];
    if (room == 0) { /* past the status line: read and drop */
      p = sink;
      room = sizeof sink;
    }
    ssize_t n = recv(c->fd, p, room, 0);
    if (n > 0) {
      if (p != sink) c->got += (size_t)n;
      continue;
    }
    if (n == 0) {
      finish(c, status_ok(c));
      return;
    }
    if (errno == EAGAIN) return;
    if (errno == EINTR) continue;
    finish(c, 0);
    return;
  }
}

static void send_request(check_t *c) {
  if (send(c->fd, c->req, c->reqlen, MSG_NOSIGNAL) != (ssize_t)c->reqlen) {
    finish(c, 0);
    return;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) finish(c, 0);
}

static void on_event(check_t *c, uint32_t events) {
  if (c->fd < 0) return;
  if (events & EPOLLOUT) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      finish(c, 0);
      return;
    }
    send_request(c);
    return;
  }
  on_readable(c);
}

static void start(check_t *c, int port, int64_t t) {
  if (c->fd >= 0) { /* the last one is still running: no overlap */
    n_skipped++;
    return;
  }
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    n_fail++;
    return;
  }
  c->started = t;
  c->got = 0;
  addr.sin_port = htons((uint16_t)port);
  int rc = connect(c->fd, (struct sockaddr *)&addr, sizeof addr);
  if (rc < 0 && errno != EINPROGRESS) {
    finish(c, 0);
    return;
  }
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) finish(c, 0);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: probe_floor BASE NPORTS SECONDS [HOST]\n");
    return 2;
  }
  int base = atoi(argv[1]), nports = atoi(argv[2]);
  double seconds = atof(argv[3]);
  const char *host = argc > 4 ? argv[4] : "127.0.0.1";
  if (nports <= 0 || seconds <= 0) return 2;
  addr.sin_family = AF_INET;
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) return 2;
  check_t *cs = calloc((size_t)nports, sizeof *cs);
  if (!cs) return 1;
  for (int i = 0; i < nports; i++) {
    cs[i].fd = -1;
    /* What the kubelet's Go client sends for httpGet path "/". */
    int n = snprintf(cs[i].req, sizeof cs[i].req,
                     "GET / HTTP/1.1\r\nHost: %s:%d\r\n"
                     "User-Agent: kube-probe/1.32\r\nAccept: */*\r\n"
                     "Connection: close\r\n\r\n",
                     host, base + i);
    cs[i].reqlen = (size_t)n;
  }
  epfd = epoll_create1(EPOLL_CLOEXEC);
  int64_t t0 = now_ns(), step = 1000000000LL / nports;
  int64_t measure_at = t0 + WARMUP_S * 1000000000LL;
  int64_t end_at = measure_at + (int64_t)(seconds * 1e9);
  int64_t next = t0; /* when check number `k` is due */
  uint64_t k = 0, k_measure = 0, ok0 = 0, fail0 = 0, to0 = 0;
  int64_t u0 = 0, s0 = 0, c0 = 0;
  int measuring = 0;
  struct epoll_event evs[BATCH];
  for (;;) {
    int64_t t = now_ns();
    if (!measuring && t >= measure_at) {
      measuring = 1;
      c0 = cpu_us(&u0, &s0);
      k_measure = k;
      ok0 = n_ok;
      fail0 = n_fail;
      to0 = n_timeout;
    }
    if (t >= end_at) break;
    while (next <= t) {
      check_t *c = &cs[k % (uint64_t)nports];
      start(c, base + (int)(k % (uint64_t)nports), t);
      k++;
      next += step;
    }
    int64_t wait_ns = next - now_ns();
    int ms = wait_ns > 0 ? (int)((wait_ns + 999999) / 1000000) : 0;
    int n = epoll_wait(epfd, evs, BATCH, ms);
    for (int i = 0; i < n; i++) on_event(evs[i].data.ptr, evs[i].events);
    /* A check older than the timeout fails (scanned once per 1/64 s). */
    static int64_t last_scan;
    if (t - last_scan > 15000000) {
      last_scan = t;
      for (int i = 0; i < nports; i++) {
        if (cs[i].fd >= 0 && t - cs[i].started > TIMEOUT_NS) {
          finish(&cs[i], 0);
          n_timeout++;
          n_fail--;
        }
      }
    }
  }
  int64_t u1, s1, c1 = cpu_us(&u1, &s1);
  uint64_t checks = k - k_measure;
  double per = checks ? (double)(c1 - c0) / (double)checks : 0;
  printf("checks=%llu per_s=%.1f ok=%llu fail=%llu timeout=%llu skipped=%llu "
         "cpu_us=%lld user_us=%lld sys_us=%lld us_per_check=%.1f "
         "user_us_per_check=%.1f sys_us_per_check=%.1f cpu_pct=%.2f\n",
         (unsigned long long)checks, (double)checks / seconds,
         (unsigned long long)(n_ok - ok0), (unsigned long long)(n_fail - fail0),
         (unsigned long long)(n_timeout - to0), (unsigned long long)n_skipped,
         (long long)(c1 - c0), (long long)(u1 - u0), (long long)(s1 - s0), per,
         checks ? (double)(u1 - u0) / (double)checks : 0,
         checks ? (double)(s1 - s0) / (double)checks : 0,
         100.0 * (double)(c1 - c0) / (seconds * 1e6));
  free(cs);
  return 0;
}
