/* Tests of the Service proxy (core/svc_proxy.c) on a real libuv loop: two
 * backend servers written here (each sends its name, echoes what it reads
 * and answers EOF with "bye" before closing) and a client thread with
 * blocking sockets. Covers: no backends (closed at once), round robin over
 * two backends, bytes both ways with half-close, a 16 MB echo that needs
 * backpressure, a refusing backend skipped for the next, only refusing
 * backends (closed), counters, and a clean uv_loop_close(). Prints TAP. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "svc_proxy.h"

#include "tap.h"

/* {====== backends (loop thread) */

typedef struct {
  uv_tcp_t tcp;
  char name;
} bconn_t;

typedef struct {
  uv_write_t req;
  char *buf;
} bwrite_t;

static uv_loop_t loop;
static uv_tcp_t backend[2];
static int backend_port[2];
static int refused_port;

static void b_closed(uv_handle_t *h) { free(h->data); }

static void b_written(uv_write_t *req, int status) {
  (void)status;
  bwrite_t *w = (bwrite_t *)req;
  free(w->buf);
  free(w);
}

static void b_write(bconn_t *c, const char *data, size_t n) {
  bwrite_t *w = malloc(sizeof *w);
  w->buf = malloc(n);
  memcpy(w->buf, data, n);
  uv_buf_t b = uv_buf_init(w->buf, (unsigned)n);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, b_written) < 0) {
    free(w->buf);
    free(w);
  }
}

static void b_shut(uv_shutdown_t *req, int status) {
  (void)status;
  uv_close((uv_handle_t *)req->handle, b_closed);
  free(req);
}

static void b_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)h;
  (void)hint;
  static char mem[65536];
  *b = uv_buf_init(mem, sizeof mem);
}

static void b_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  bconn_t *c = s->data;
  if (n > 0) {
    b_write(c, b->base, (size_t)n);
    return;
  }
  if (n == 0) return;
  if (n == UV_EOF) {
    b_write(c, " bye\n", 5);
    uv_shutdown_t *req = malloc(sizeof *req);
    if (uv_shutdown(req, s, b_shut) == 0) return;
    free(req);
  }
  if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, b_closed);
}

static void b_accept(uv_stream_t *server, int status) {
  if (status < 0) return;
  bconn_t *c = calloc(1, sizeof *c);
  c->name = server == (uv_stream_t *)&backend[0] ? 'A' : 'B';
  uv_tcp_init(&loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
    uv_close((uv_handle_t *)&c->tcp, b_closed);
    return;
  }
  char hello[2] = {c->name, '\n'};
  b_write(c, hello, 2);
  uv_read_start((uv_stream_t *)&c->tcp, b_alloc, b_read);
}

static int listen_on(uv_tcp_t *t, uv_connection_cb cb) {
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_init(&loop, t);
  if (uv_tcp_bind(t, (const struct sockaddr *)&a, 0) < 0) return -1;
  if (uv_listen((uv_stream_t *)t, 64, cb) < 0) return -1;
  struct sockaddr_in got;
  int len = sizeof got;
  uv_tcp_getsockname(t, (struct sockaddr *)&got, &len);
  return ntohs(got.sin_port);
}

/* A port nothing listens on: bound, then closed. */
static int closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bind(fd, (struct sockaddr *)&a, sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  close(fd);
  return ntohs(a.sin_port);
}

/* }====== */

/* {====== phases: the client thread asks, the loop thread acts */

enum { SET_AB = 1, SET_REFUSED_A, SET_REFUSED, STATS, FINISH };

static ml_svc_proxy_t *proxy;
static int proxy_port;
static uv_async_t wake;
static atomic_int asked, done;
static ml_svc_proxy_stats_t seen_stats;

static void set_backends(int n, const int *ports) {
  char text[4][32];
  const char *addrs[4];
  for (int i = 0; i < n; i++) {
    snprintf(text[i], sizeof text[i], "127.0.0.1:%d", ports[i]);
    addrs[i] = text[i];
  }
  OK(ml_svc_proxy_set_backends(proxy, addrs, (size_t)n) == 0, "set %d backends", n);
}

static void on_wake(uv_async_t *a) {
  (void)a;
  int phase = atomic_load(&asked);
  if (phase == atomic_load(&done)) return;
  if (phase == SET_AB) {
    set_backends(2, backend_port);
  } else if (phase == SET_REFUSED_A) {
    int ports[2] = {refused_port, backend_port[0]};
    set_backends(2, ports);
  } else if (phase == SET_REFUSED) {
    set_backends(1, &refused_port);
  } else if (phase == STATS) {
    ml_svc_proxy_stats(proxy, &seen_stats);
  } else if (phase == FINISH) {
    ml_svc_proxy_free(proxy);
    proxy = NULL;
    uv_close((uv_handle_t *)&backend[0], NULL);
    uv_close((uv_handle_t *)&backend[1], NULL);
    uv_close((uv_handle_t *)&wake, NULL);
  }
  atomic_store(&done, phase);
}

/* Asks the loop thread for `phase` and waits (with a deadline) for it. */
static int ask(int phase) {
  atomic_store(&asked, phase);
  uv_async_send(&wake);
  for (int i = 0; i < 5000; i++) {
    if (atomic_load(&done) == phase) return 1;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  return 0;
}

/* }====== */

/* {====== client (its own thread, blocking sockets) */

/* rcvbuf > 0: a small receive buffer, so that the proxy's writes to this
 * client queue up when it does not read. */
static int dial_buf(int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)proxy_port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int dial(void) { return dial_buf(0); }

/* Reads until EOF (or error: -1) into buf; returns the length. */
static ssize_t read_all(int fd, char *buf, size_t cap) {
  size_t len = 0;
  for (;;) {
    ssize_t n = recv(fd, buf + len, cap - len, 0);
    if (n == 0) return (ssize_t)len;
    if (n < 0) return len > 0 ? (ssize_t)len : -1;
    len += (size_t)n;
    if (len == cap) return (ssize_t)len;
  }
}

/* One exchange: send msg, half-close, read the answer until EOF. */
static int exchange(const char *msg, char *out, size_t cap) {
  int fd = dial();
  if (fd < 0) return -1;
  send(fd, msg, strlen(msg), 0);
  shutdown(fd, SHUT_WR);
  ssize_t n = read_all(fd, out, cap - 1);
  close(fd);
  if (n < 0) return -1;
  out[n] = 0;
  return (int)n;
}

static void *client(void *arg) {
  (void)arg;
  char buf[256];

  /* No backends: closed at once, nothing comes back. */
  int fd = dial();
  OK(fd >= 0, "the proxy accepts with no backends");
  ssize_t n = read_all(fd, buf, sizeof buf);
  OK(n <= 0, "and closes the connection at once (read %zd)", n);
  close(fd);

  /* Round robin over A and B; bytes both ways; half-close passed on. */
  OK(ask(SET_AB), "backends A and B set");
  int a = 0, b = 0;
  for (int i = 0; i < 4; i++) {
    n = exchange("ping", buf, sizeof buf);
    OK(n > 0 && (!strcmp(buf, "A\nping bye\n") || !strcmp(buf, "B\nping bye\n")),
       "exchange %d: name, echo, and the backend's answer to EOF [%s]", i, buf);
    if (buf[0] == 'A') a++;
    if (buf[0] == 'B') b++;
  }
  OK(a == 2 && b == 2, "round robin: A %d times, B %d times", a, b);

  /* 16 MB each way (more than the kernel buffers hold), written before anything is read: the proxy has to stop
   * reading the backend while the client is not reading. */
  size_t big = 16u << 20;
  char *data = malloc(big);
  char *back = malloc(big + 64);
  for (size_t i = 0; i < big; i++) data[i] = (char)('a' + i % 26);
  fd = dial_buf(16384);
  size_t sent = 0;
  while (fd >= 0 && sent < big) {
    ssize_t w = send(fd, data + sent, big - sent, 0);
    if (w <= 0) break;
    sent += (size_t)w;
  }
  OK(sent == big, "16 MB written through the proxy (%zu)", sent);
  shutdown(fd, SHUT_WR);
  n = read_all(fd, back, big + 64);
  close(fd);
  OK(n == (ssize_t)big + 7 && back[1] == '\n' && !memcmp(back + 2, data, big) &&
         !memcmp(back + 2 + big, " bye\n", 5),
     "16 MB echoed back intact (%zd bytes)", n);
  free(data);
  free(back);

  /* A refusing backend is skipped for the next one. */
  OK(ask(SET_REFUSED_A), "backends: a closed port, then A");
  int all_a = 1;
  for (int i = 0; i < 3; i++) {
    n = exchange("x", buf, sizeof buf);
    if (n <= 0 || strcmp(buf, "A\nx bye\n") != 0) all_a = 0;
  }
  OK(all_a, "every connection reached A past the refusing backend");

  /* Only a refusing backend: the connection is closed. */
  OK(ask(SET_REFUSED), "backends: only a closed port");
  n = exchange("x", buf, sizeof buf);
  OK(n <= 0, "no backend answers: closed, nothing read (%zd)", n);

  /* The counters, once the connections above have closed. */
  int settled = 0;
  for (int i = 0; i < 500 && !settled; i++) {
    if (!ask(STATS)) break;
    settled = seen_stats.active == 0;
    if (!settled) {
      atomic_store(&done, 0);
      struct timespec ts = {0, 2000000};
      nanosleep(&ts, NULL);
    }
  }
  OK(settled, "no connection left open");
  OK(seen_stats.accepted == 10, "10 connections accepted (%llu)",
     (unsigned long long)seen_stats.accepted);
  OK(seen_stats.rejected == 2, "2 rejected: no backends, only a refusing one (%llu)",
     (unsigned long long)seen_stats.rejected);
  OK(seen_stats.pauses > 0, "backpressure stopped reading (%llu pauses)",
     (unsigned long long)seen_stats.pauses);
  OK(seen_stats.bytes_in >= (16u << 20) && seen_stats.bytes_out >= (16u << 20),
     "bytes counted both ways");
  OK(ask(FINISH), "proxy freed");
  return NULL;
}

/* }====== */

int main(void) {
  /* A peer that closes first must be an error code, not a signal (the
   * server ignores SIGPIPE too). */
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&loop);
  backend_port[0] = listen_on(&backend[0], b_accept);
  backend_port[1] = listen_on(&backend[1], b_accept);
  refused_port = closed_port();
  OK(backend_port[0] > 0 && backend_port[1] > 0, "backends listen");

  /* Addresses that cannot be served are errors, not crashes. */
  ml_svc_proxy_t *bad = NULL;
  IS_INT(ml_svc_proxy_new(&loop, "not-an-ip", 80, &bad), UV_EINVAL,
         "a host that is no IPv4 address: EINVAL");
  OK(ml_svc_proxy_new(&loop, "127.0.0.1", backend_port[0], &bad) ==
         UV_EADDRINUSE,
     "a port in use: EADDRINUSE");

  OK(ml_svc_proxy_new(&loop, "127.0.0.1", 0, &proxy) == 0, "proxy listens");
  proxy_port = ml_svc_proxy_port(proxy);
  OK(proxy_port > 0, "on port %d", proxy_port);
  const char *bad_addr[] = {"127.0.0.1"};
  IS_INT(ml_svc_proxy_set_backends(proxy, bad_addr, 1), UV_EINVAL,
         "a backend without a port: EINVAL");

  uv_async_init(&loop, &wake, on_wake);
  pthread_t t;
  pthread_create(&t, NULL, client, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  pthread_join(t, NULL);
  IS_INT(uv_loop_close(&loop), 0, "loop closes clean");
  return tap_done();
}
