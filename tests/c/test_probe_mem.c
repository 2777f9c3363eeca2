/* Memory bounds of HTTP probes (core/probe_http.c, core/http_client.c): the
 * C heap one HTTP ticker keeps (a server has one per probed container), and
 * what one attempt holds while it waits for its answer (up to the in-flight
 * bound of them at once). Measured with glibc's mallinfo2; under ASan, whose
 * allocator it does not see, only the functional checks run. Prints TAP. */
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "loop.h"
#include "probe.h"

#include "tap.h"

#if defined(__SANITIZE_ADDRESS__)
#define HEAP_VISIBLE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_VISIBLE 0
#endif
#endif
#ifndef HEAP_VISIBLE
#define HEAP_VISIBLE 1
#endif

/* Bytes malloc has handed out and not yet taken back. */
static long heap_used(void) { return (long)mallinfo2().uordblks; }

static uv_loop_t uv;
static ml_loop_t loop;

static void on_deadline(uv_timer_t *t) { *(bool *)t->data = true; }

typedef struct {
  bool (*done)(void *);
  void *arg;
  bool expired;
} until_t;

static bool until_done(void *ud) {
  until_t *u = ud;
  return u->expired || u->done(u->arg);
}

/* Runs the loop as the server does (ml_loop_run) until `done(arg)` or `ms`
 * passed. @return done(arg) */
static bool run_until(bool (*done)(void *), void *arg, uint64_t ms) {
  until_t u = {done, arg, false};
  uv_timer_t t;
  uv_timer_init(&uv, &t);
  t.data = &u.expired;
  uv_timer_start(&t, on_deadline, ms, 0);
  ml_loop_run(&loop, until_done, &u);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&uv, UV_RUN_NOWAIT);
  return done(arg);
}

static size_t posted;

static void drain(void) {
  ml_event_t *e;
  while ((e = ml_loop_pop(&loop)) != NULL) {
    if (e->type == ML_EV_PROBE_DONE) posted++;
    ml_event_free(e);
  }
}

/* A listener that never accepts: the kernel completes the handshakes from
 * its backlog, so each probe connects, sends and then waits. */
static int silent_listener(int backlog, int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      listen(fd, backlog) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

/* {====== per ticker */

enum { TICKERS = 200 };

/* A ticker keeps its copied parameters, the URL and curl header list built
 * once, the messages' host strings and two timers: under 1.5 KiB (1.7 KiB
 * while the messages' host strings were fixed arrays of 556 bytes). */
static void test_ticker_heap(ml_probe_runner_t *r) {
  static ml_probe_ticker_t *t[TICKERS];
  ml_probe_params_t o = {.host = "127.0.0.1", .port = 19000,
                         .path = "/healthz"};
  ml_probe_every_t every = {.period_ms = 1000, .timeout_ms = 1000};
  /* The first one loads libcurl and builds the client: not per ticker. */
  ml_probe_ticker_t *warm;
  IS_INT(ml_probe_ticker_new(r, "http", &o, &every, 1, &warm), 0,
         "first ticker");
  long before = heap_used();
  int made = 0;
  for (int i = 0; i < TICKERS; i++) {
    o.port = 19000 + i;
    made += ml_probe_ticker_new(r, "http", &o, &every, 2 + (uint64_t)i,
                                &t[i]) == 0;
  }
  long per = (heap_used() - before) / TICKERS;
  IS_INT(made, TICKERS, "tickers made");
  if (HEAP_VISIBLE)
    ok(per < 1500, "an HTTP ticker keeps %ld bytes of C heap (< 1500)", per);
  else
    ok(1, "# SKIP heap not visible under ASan");
  for (int i = 0; i < TICKERS; i++) ml_probe_ticker_free(t[i]);
  ml_probe_ticker_free(warm);
}

/* }====== */

/* {====== per attempt in flight */

enum { INFLIGHT = 32 };

static bool all_posted(void *arg) {
  (void)arg;
  drain();
  return posted == INFLIGHT;
}

/* A probe reads a status line and at most 10 KiB of a 3xx body: libcurl's
 * default 16 KiB receive buffer per transfer was most of what an attempt
 * held while it waited. */
static void test_attempt_heap(ml_probe_runner_t *r) {
  int port = 0;
  int lfd = silent_listener(INFLIGHT * 2, &port);
  ok(lfd >= 0, "silent listener");
  if (lfd < 0) return;
  ml_probe_params_t o = {.host = "127.0.0.1", .port = port, .path = "/"};
  /* A first round grows the easy-handle pool to INFLIGHT, so the measured
   * one allocates only per-attempt state. */
  for (int round = 0; round < 2; round++) {
    posted = 0;
    long before = heap_used();
    for (int i = 0; i < INFLIGHT; i++)
      ml_probe_start(r, "http", &o, 400, 1000 + (uint64_t)(round * 100 + i));
    /* Below the bound each attempt is in flight at once; two loop turns
     * take them through curl's connect (where it allocates its receive
     * buffer) and the send. */
    ml_probe_stats_t st;
    ml_probe_runner_stats(r, &st);
    uv_run(&uv, UV_RUN_NOWAIT);
    uv_run(&uv, UV_RUN_NOWAIT);
    long per = (heap_used() - before) / INFLIGHT;
    if (round == 1) {
      IS_INT((int)st.http_active, INFLIGHT, "attempts in flight at once");
      if (HEAP_VISIBLE)
        ok(per < 12 * 1024,
           "an HTTP attempt in flight holds %ld bytes of C heap (< 12 KiB)",
           per);
      else
        ok(1, "# SKIP heap not visible under ASan");
    }
    ok(run_until(all_posted, NULL, 3000),
       "round %d: every attempt ended by its deadline", round);
  }
  close(lfd);
}

/* }====== */

int main(void) {
  uv_loop_init(&uv);
  ml_loop_init(&loop, &uv);
  ml_probe_runner_t *r = ml_probe_runner_new(&loop, 0);
  ok(r != NULL, "runner");
  test_ticker_heap(r);
  test_attempt_heap(r);
  ml_probe_runner_close(r);
  for (int i = 0; i < 100 && uv_loop_alive(&uv); i++)
    uv_run(&uv, UV_RUN_NOWAIT);
  drain();
  ml_loop_close(&loop);
  IS_INT(uv_loop_close(&uv), 0, "uv_loop_close() == 0");
  printf("1..%d\n", ntests);
  return nfailed ? 1 : 0;
}
