/* Tests of the probe runner (core/probe*.c) against loopback fixture servers
 * written here on the same libuv loop: HTTP (200, 500, same-host and
 * other-host redirects, redirect loops, a slow answer, a big body, header
 * capture) and a TCP banner server; exec through the process runtime;
 * closed ports, timeouts, cancellation,
 * the in-flight bound, a custom kind, and shutdown with attempts running
 * (also through the Lua binding, in both shutdown orders). Prints TAP. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <lualib.h>

#include "err.h"
#include "http_client.h"
#include "loop.h"
#include "probe.h"
#include "runtime.h"

#include "tap.h"

/* {====== fixture servers */

typedef struct conn_s conn_t;
struct conn_s {
  uv_tcp_t tcp;
  char buf[8192];
  size_t len;
  bool closing, answered;
  conn_t *next;
};

static uv_loop_t uv;
static uv_tcp_t http_srv, banner_srv;
static int http_port, banner_port;
static conn_t *conns;
static char last_head[8192];
static int open_conns;

static void conn_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  for (conn_t **pp = &conns; *pp; pp = &(*pp)->next) {
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  }
  open_conns--;
  free(c);
}

static void conn_close(conn_t *c) {
  if (c->closing) return;
  c->closing = true;
  uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void on_written(uv_write_t *w, int status) {
  (void)status;
  conn_t *c = w->data;
  free(w);
  if (c) conn_close(c);
}

/* Writes `data`; closes the connection afterwards when `last`. */
static void conn_write(conn_t *c, const char *data, size_t n, bool last) {
  uv_write_t *w = malloc(sizeof *w + n);
  char *copy = (char *)(w + 1);
  memcpy(copy, data, n);
  w->data = last ? c : NULL;
  uv_buf_t b = uv_buf_init(copy, (unsigned)n);
  if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) free(w);
}

static void respond(conn_t *c, int status, const char *extra, const char *body,
                    size_t blen) {
  char head[1024];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n%s\r\n",
                   status, blen, extra ? extra : "");
  char *all = malloc((size_t)n + blen);
  memcpy(all, head, (size_t)n);
  if (blen) memcpy(all + n, body, blen);
  conn_write(c, all, (size_t)n + blen, true);
  free(all);
}

static void route(conn_t *c, const char *path) {
  char extra[256];
  if (strcmp(path, "/ok") == 0 || strcmp(path, "/") == 0 ||
      strncmp(path, "/ok?", 4) == 0) {
    respond(c, 200, NULL, "fine", 4);
  } else if (strcmp(path, "/500") == 0) {
    respond(c, 500, NULL, "broken body", 11);
  } else if (strcmp(path, "/404") == 0) {
    respond(c, 404, NULL, "", 0);
  } else if (strcmp(path, "/same") == 0) {
    respond(c, 302, "Location: /ok\r\n", "moved", 5);
  } else if (strcmp(path, "/same-bad") == 0) {
    respond(c, 301, "Location: /500\r\n", "moved", 5);
  } else if (strcmp(path, "/other") == 0) {
    snprintf(extra, sizeof extra, "Location: http://localhost:%d/ok\r\n",
             http_port);
    respond(c, 302, extra, "gone elsewhere", 14);
  } else if (strcmp(path, "/loop") == 0) {
    respond(c, 302, "Location: /loop\r\n", "", 0);
  } else if (strcmp(path, "/big") == 0) {
    size_t n = 100 * 1024;
    char *body = malloc(n);
    memset(body, 'x', n);
    respond(c, 200, NULL, body, n);
    free(body);
  } else if (strcmp(path, "/slow") == 0) {
    /* never answers: the probe's deadline must end it */
  } else if (strcmp(path, "/slowbody") == 0) {
    const char *h = "HTTP/1.1 200 X\r\nContent-Length: 100\r\n\r\nabc";
    conn_write(c, h, strlen(h), false);
  } else {
    respond(c, 418, NULL, "", 0);
  }
}

static void http_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  conn_t *c = h->data;
  *b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len - 1));
}

static void http_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  conn_t *c = s->data;
  if (n < 0) {
    conn_close(c);
    return;
  }
  c->len += (size_t)n;
  c->buf[c->len] = '\0';
  char *end = strstr(c->buf, "\r\n\r\n");
  if (!end || c->answered) return;
  c->answered = true;
  size_t hl = (size_t)(end - c->buf);
  memcpy(last_head, c->buf, hl);
  last_head[hl] = '\0';
  char path[1024] = "";
  sscanf(c->buf, "%*s %1023s", path);
  route(c, path);
}

static conn_t *accept_conn(uv_stream_t *srv) {
  conn_t *c = calloc(1, sizeof *c);
  uv_tcp_init(&uv, &c->tcp);
  c->tcp.data = c;
  c->next = conns;
  conns = c;
  open_conns++;
  if (uv_accept(srv, (uv_stream_t *)&c->tcp) < 0) {
    conn_close(c);
    return NULL;
  }
  return c;
}

static void on_http_conn(uv_stream_t *srv, int status) {
  if (status < 0) return;
  conn_t *c = accept_conn(srv);
  if (c) uv_read_start((uv_stream_t *)&c->tcp, http_alloc, http_read);
}

/* The banner server greets, then echoes one line back upper-cased. */
static void banner_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  conn_t *c = s->data;
  if (n < 0) {
    conn_close(c);
    return;
  }
  c->len += (size_t)n;
  c->buf[c->len] = '\0';
  char *nl = strchr(c->buf, '\n');
  if (!nl) return;
  for (char *p = c->buf; p <= nl; p++)
    if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32);
  conn_write(c, c->buf, (size_t)(nl - c->buf + 1), true);
}

static void on_banner_conn(uv_stream_t *srv, int status) {
  if (status < 0) return;
  conn_t *c = accept_conn(srv);
  if (!c) return;
  conn_write(c, "HELLO moonlet 1.0\r\n", 19, false);
  uv_read_start((uv_stream_t *)&c->tcp, http_alloc, banner_read);
}

static int listen_on(uv_tcp_t *t, uv_connection_cb cb) {
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_init(&uv, t);
  uv_tcp_bind(t, (struct sockaddr *)&a, 0);
  if (uv_listen((uv_stream_t *)t, 64, cb) < 0) return -1;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A listener nobody accepts from: the kernel completes handshakes from its
 * backlog, so a probe connects, sends and is never answered, and nothing
 * on the loop notices. @return the descriptor (port in *port) or -1 */
static int silent_listener(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      listen(fd, 8) < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

/* A port nobody listens on: bound once, then released. */
static int closed_port(void) {
  uv_tcp_t t;
  int port = listen_on(&t, on_http_conn);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&uv, UV_RUN_NOWAIT);
  return port;
}

/* }====== */

/* {====== driving the loop */

static ml_loop_t loop;

typedef struct {
  uint64_t id;
  int result;
  char *message;
} got_t;

#define MAX_GOT 256
static got_t got[MAX_GOT];
static int ngot;

static void collect(void) {
  ml_event_t *e;
  while ((e = ml_loop_pop(&loop)) != NULL) {
    if (e->type == ML_EV_PROBE_DONE && ngot < MAX_GOT) {
      ml_probe_event_t *pe = (ml_probe_event_t *)e;
      got[ngot].id = e->id;
      got[ngot].result = pe->result;
      got[ngot].message = strdup(pe->message);
      ngot++;
    }
    ml_event_free(e);
  }
}

static got_t *find_got(uint64_t id) {
  for (int i = 0; i < ngot; i++)
    if (got[i].id == id) return &got[i];
  return NULL;
}

static void on_deadline(uv_timer_t *t) { *(bool *)t->data = true; }

/* Runs the loop until the result for `id` arrived or `ms` passed. */
static got_t *wait_for(uint64_t id, uint64_t ms) {
  bool expired = false;
  uv_timer_t t;
  uv_timer_init(&uv, &t);
  t.data = &expired;
  uv_timer_start(&t, on_deadline, ms, 0);
  got_t *g;
  while (!(g = find_got(id)) && !expired) {
    uv_run(&uv, UV_RUN_ONCE);
    collect();
  }
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&uv, UV_RUN_NOWAIT);
  collect();
  return g;
}

/* Runs the loop for `ms` regardless. */
static void spin(uint64_t ms) {
  bool expired = false;
  uv_timer_t t;
  uv_timer_init(&uv, &t);
  t.data = &expired;
  uv_timer_start(&t, on_deadline, ms, 0);
  while (!expired) {
    uv_run(&uv, UV_RUN_ONCE);
    collect();
  }
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&uv, UV_RUN_NOWAIT);
}

static uint64_t next_id = 100;

static got_t *run_probe(ml_probe_runner_t *r, const char *kind,
                        const ml_probe_params_t *o, uint64_t timeout_ms) {
  uint64_t id = next_id++;
  int rc = ml_probe_start(r, kind, o, timeout_ms, id);
  if (rc < 0) {
    ok(0, "start %s failed: %s", kind, ml_strerror(rc));
    return NULL;
  }
  return wait_for(id, 5000);
}

static void expect(ml_probe_runner_t *r, const char *kind,
                   const ml_probe_params_t *o, uint64_t timeout_ms, int result,
                   const char *message, const char *name) {
  got_t *g = run_probe(r, kind, o, timeout_ms);
  ok(g != NULL, "%s: a result arrived", name);
  if (!g) return;
  ok(g->result == result, "%s: result %s (want %s)", name,
     ml_probe_result_name(g->result), ml_probe_result_name(result));
  if (message) IS_STR(g->message, message, name);
}

/* }====== */

/* {====== tests */

static void test_http(ml_probe_runner_t *r) {
  char msg[512];
  ml_probe_params_t o = {.port = http_port, .path = "/ok"};
  expect(r, "http", &o, 1000, ML_PROBE_SUCCESS, "", "http 200");
  ok(strstr(last_head, "GET /ok HTTP/1.1") == last_head, "http: GET path");
  ok(strcasestr(last_head, "\r\nUser-Agent: kube-probe/1.32") != NULL,
     "http: kube-probe user agent");
  ok(strcasestr(last_head, "\r\nAccept: */*") != NULL, "http: Accept */*");
  ok(strcasestr(last_head, "\r\nConnection: close") != NULL,
     "http: no keep-alive");

  ml_probe_header_t hs[] = {{"X-Custom", "one"},
                            {"X-Custom", "two"},
                            {"Accept", "application/json"},
                            {"User-Agent", "mine/1"}};
  o = (ml_probe_params_t){
      .port = http_port, .path = "ok?a=b c", .headers = hs, .nheaders = 4};
  expect(r, "http", &o, 1000, ML_PROBE_SUCCESS, "", "http headers");
  ok(strstr(last_head, "GET /ok?a=b%20c HTTP/1.1") == last_head,
     "http: path gets its slash, query kept, space escaped");
  ok(strstr(last_head, "X-Custom: one\r\nX-Custom: two") != NULL,
     "http: repeated custom headers in order");
  ok(strcasestr(last_head, "Accept: application/json") &&
         !strcasestr(last_head, "Accept: */*"),
     "http: user Accept replaces the default");
  ok(strcasestr(last_head, "User-Agent: mine/1") &&
         !strcasestr(last_head, "kube-probe"),
     "http: user User-Agent replaces the default");

  ml_probe_header_t empty_accept[] = {{"Accept", ""}};
  o = (ml_probe_params_t){.port = http_port, .headers = empty_accept,
                          .nheaders = 1};
  expect(r, "http", &o, 1000, ML_PROBE_SUCCESS, "", "http empty Accept");
  ok(!strcasestr(last_head, "\r\nAccept:"), "http: empty Accept removes it");

  o = (ml_probe_params_t){.port = http_port, .path = "/500"};
  expect(r, "http", &o, 1000, ML_PROBE_FAILURE,
         "HTTP probe failed with statuscode: 500", "http 500");
  o.path = "/404";
  expect(r, "http", &o, 1000, ML_PROBE_FAILURE,
         "HTTP probe failed with statuscode: 404", "http 404");
  o.path = "/same";
  expect(r, "http", &o, 1000, ML_PROBE_SUCCESS, "",
         "http same-host redirect followed");
  o.path = "/same-bad";
  expect(r, "http", &o, 1000, ML_PROBE_FAILURE,
         "HTTP probe failed with statuscode: 500",
         "http same-host redirect to a failure");
  o.path = "/other";
  expect(r, "http", &o, 1000, ML_PROBE_WARNING,
         "Probe terminated redirects, Response body: gone elsewhere",
         "http other-host redirect is a warning");
  o.path = "/loop";
  snprintf(msg, sizeof msg,
           "Get \"http://127.0.0.1:%d/loop\": stopped after 10 redirects",
           http_port);
  expect(r, "http", &o, 2000, ML_PROBE_FAILURE, msg, "http redirect loop");
  o.path = "/big";
  expect(r, "http", &o, 2000, ML_PROBE_SUCCESS, "",
         "http 100 KiB body: truncation is not a failure");
  o.path = "/slow";
  snprintf(msg, sizeof msg,
           "Get \"http://127.0.0.1:%d/slow\": context deadline exceeded "
           "(Client.Timeout exceeded while awaiting headers)",
           http_port);
  expect(r, "http", &o, 300, ML_PROBE_FAILURE, msg, "http timeout");
  o.path = "/slowbody";
  snprintf(msg, sizeof msg,
           "Get \"http://127.0.0.1:%d/slowbody\": context deadline exceeded "
           "(Client.Timeout or context cancellation while reading body)",
           http_port);
  expect(r, "http", &o, 300, ML_PROBE_FAILURE, msg,
         "http timeout while reading the body");

  int port = closed_port();
  o = (ml_probe_params_t){.port = port, .path = "/healthz"};
  snprintf(msg, sizeof msg,
           "Get \"http://127.0.0.1:%d/healthz\": dial tcp 127.0.0.1:%d: "
           "connect: connection refused",
           port, port);
  expect(r, "http", &o, 1000, ML_PROBE_FAILURE, msg, "http refused");

  o = (ml_probe_params_t){.port = http_port, .scheme = "HTTP", .host = "::1"};
  got_t *g = run_probe(r, "http", &o, 1000);
  ok(g && g->result == ML_PROBE_FAILURE &&
         strstr(g->message, "Get \"http://[::1]:") == g->message,
     "http: IPv6 host in brackets (%s)", g ? g->message : "-");

  o = (ml_probe_params_t){.port = http_port, .scheme = "https"};
  g = run_probe(r, "http", &o, 1000);
  ok(g && g->result == ML_PROBE_FAILURE &&
         strstr(g->message, "Get \"https://127.0.0.1:"),
     "http: https against a plain server fails (%s)", g ? g->message : "-");
}

/* A burst of probes up to the in-flight bound reuses the easy handles of
 * the last one: an init and a cleanup per attempt cost more than the
 * rest of our side of a check. */
static void test_handle_pool(ml_probe_runner_t *r) {
  enum { BURST = 48 };
  ml_probe_params_t o = {.port = http_port, .path = "/ok"};
  uint64_t handles[2];
  for (int round = 0; round < 2; round++) {
    uint64_t first = next_id;
    for (int i = 0; i < BURST; i++)
      ml_probe_start(r, "http", &o, 2000, next_id++);
    ml_probe_stats_t st;
    ml_probe_runner_stats(r, &st);
    IS_INT((int)st.http_active, BURST, "handle pool: a burst all in flight");
    int done = 0;
    for (uint64_t id = first; id < first + BURST; id++) {
      got_t *g = wait_for(id, 5000);
      done += g && g->result == ML_PROBE_SUCCESS;
    }
    IS_INT(done, BURST, "handle pool: every attempt of the burst succeeded");
    ml_probe_runner_stats(r, &st);
    handles[round] = st.http_handles;
  }
  ok(handles[1] == handles[0],
     "handle pool: the second burst created no handle (%llu then %llu)",
     (unsigned long long)handles[0], (unsigned long long)handles[1]);
}

/* IP literals skip libcurl's DNS cache, whose per-transfer prune walked one
 * entry per probed port (see http_client.c setup()); names keep it. */
static void test_prepared_numeric(void) {
  static const struct {
    const char *url;
    bool numeric;
  } cases[] = {
      {"http://127.0.0.1:8080/healthz", true},
      {"http://10.1.2.3:80/", true},
      {"http://[::1]:8080/", true},
      {"https://[fe80::1]:443/x", true},
      {"http://localhost:8080/", false},
      {"http://example.com/", false},
      {"http://127.0.0.1.example:80/", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ml_http_prepared_t *p = ml_http_prepare(cases[i].url, NULL, 0);
    ok(p && ml__http_prepared_numeric(p) == cases[i].numeric,
       "prepared %s: %s", cases[i].url,
       cases[i].numeric ? "IP literal, not cached" : "a name, cached");
    ml_http_prepared_free(p);
  }
}

typedef struct {
  uint64_t id;
  bool expired;
} awaited_t;

static bool got_or_expired(void *ud) {
  awaited_t *a = ud;
  collect();
  return a->expired || find_got(a->id) != NULL;
}

/* curl ends a timed-out transfer from its timer, outside the poll phase
 * (before it, or after the check of a UV_RUN_ONCE turn): its result must
 * come at the deadline, not at the loop's next unrelated wakeup, seconds
 * later on a quiet server. The loop runs as the server's (ml_loop_run). */
static void test_timeout_on_quiet_loop(ml_probe_runner_t *r) {
  int port = 0;
  int lfd = silent_listener(&port);
  ok(lfd >= 0, "quiet timeout: silent listener");
  if (lfd < 0) return;
  ml_probe_params_t o = {.port = port, .path = "/"};
  awaited_t a = {.id = next_id++};
  uv_timer_t t;
  uv_timer_init(&uv, &t);
  t.data = &a.expired;
  uv_timer_start(&t, on_deadline, 3000, 0);
  uv_update_time(&uv);
  uint64_t t0 = uv_now(&uv);
  IS_INT(ml_probe_start(r, "http", &o, 200, a.id), 0, "quiet timeout: start");
  ml_loop_run(&loop, got_or_expired, &a);
  uv_update_time(&uv);
  uint64_t took = uv_now(&uv) - t0;
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&uv, UV_RUN_NOWAIT);
  got_t *g = find_got(a.id);
  ok(g && g->result == ML_PROBE_FAILURE &&
         strstr(g->message, "context deadline exceeded"),
     "quiet timeout: a timeout failure (%s)", g ? g->message : "none");
  ok(took < 1500, "quiet timeout: reported after %llu ms (deadline 200 ms)",
     (unsigned long long)took);
  close(lfd);
}

static void test_bad_params(ml_probe_runner_t *r) {
  ml_probe_params_t o = {.port = http_port, .scheme = "ftp"};
  IS_INT(ml_probe_start(r, "http", &o, 1000, 1), ML_EINVALID, "http: ftp");
  o = (ml_probe_params_t){.port = 0};
  IS_INT(ml_probe_start(r, "http", &o, 1000, 1), ML_EINVALID, "http: port 0");
  o = (ml_probe_params_t){.port = 70000};
  IS_INT(ml_probe_start(r, "tcp", &o, 1000, 1), ML_EINVALID, "tcp: port");
  o = (ml_probe_params_t){.port = 80, .host = "example.com"};
  IS_INT(ml_probe_start(r, "tcp", &o, 1000, 1), ML_EINVALID,
         "tcp: host names other than localhost");
  ml_probe_header_t bad[] = {{"Bad Name", "x"}};
  o = (ml_probe_params_t){.port = 80, .headers = bad, .nheaders = 1};
  IS_INT(ml_probe_start(r, "http", &o, 1000, 1), ML_EINVALID,
         "http: bad header name");
  IS_INT(ml_probe_start(r, "nope", &o, 1000, 1), ML_ENOTFOUND, "unknown kind");
  ml_probe_stats_t st;
  ml_probe_runner_stats(r, &st);
  IS_INT(st.active, 0, "failed starts leave nothing running");
}

static void test_tcp(ml_probe_runner_t *r) {
  char msg[256];
  ml_probe_params_t o = {.port = http_port};
  expect(r, "tcp", &o, 1000, ML_PROBE_SUCCESS, "", "tcp open");
  o.host = "localhost";
  expect(r, "tcp", &o, 1000, ML_PROBE_SUCCESS, "", "tcp localhost");
  int port = closed_port();
  o = (ml_probe_params_t){.port = port};
  snprintf(msg, sizeof msg,
           "dial tcp 127.0.0.1:%d: connect: connection refused", port);
  expect(r, "tcp", &o, 1000, ML_PROBE_FAILURE, msg, "tcp refused");

  o = (ml_probe_params_t){.port = banner_port, .read_max = 100};
  expect(r, "tcp", &o, 1000, ML_PROBE_SUCCESS, "HELLO moonlet 1.0\r\n",
         "tcp reads a banner line");
  o = (ml_probe_params_t){.port = banner_port, .read_max = 5};
  expect(r, "tcp", &o, 1000, ML_PROBE_SUCCESS, "HELLO",
         "tcp read stops at read_max");
  /* The HTTP fixture says nothing until it has a whole request. */
  o = (ml_probe_params_t){.port = http_port, .read_max = 10};
  snprintf(msg, sizeof msg, "read tcp 127.0.0.1:%d: i/o timeout", http_port);
  expect(r, "tcp", &o, 200, ML_PROBE_FAILURE, msg, "tcp read timeout");
  o = (ml_probe_params_t){.port = http_port,
                          .send = "GET /ok HTTP/1.0\r\n\r\n",
                          .send_len = 20,
                          .read_max = 200};
  expect(r, "tcp", &o, 1000, ML_PROBE_SUCCESS, "HTTP/1.1 200 X\r\n",
         "tcp send then read");
}

static void test_cancel_and_bound(ml_probe_runner_t *r) {
  ml_probe_params_t o = {.port = http_port, .path = "/slow"};
  uint64_t id = next_id++;
  IS_INT(ml_probe_start(r, "http", &o, 5000, id), 0, "cancel: started");
  spin(50);
  ok(ml_probe_cancel(r, id), "cancel: was running");
  ok(!ml_probe_cancel(r, id), "cancel: only once");
  spin(100);
  ok(find_got(id) == NULL, "cancel: no result posted");
  ml_probe_stats_t st;
  ml_probe_runner_stats(r, &st);
  IS_INT(st.active + st.closing + st.http_active, 0, "cancel: all released");

  uint64_t tid = next_id++;
  o = (ml_probe_params_t){.port = banner_port, .read_max = 100};
  IS_INT(ml_probe_start(r, "tcp", &o, 5000, tid), 0, "cancel tcp: started");
  ok(ml_probe_cancel(r, tid), "cancel tcp");
  spin(50);
  ok(find_got(tid) == NULL, "cancel tcp: no result");

  ml_probe_runner_set_max_http(r, 2);
  uint64_t first = next_id;
  o = (ml_probe_params_t){.port = http_port, .path = "/slow"};
  for (int i = 0; i < 5; i++) ml_probe_start(r, "http", &o, 300, next_id++);
  ml_probe_runner_stats(r, &st);
  ok(st.http_active <= 2 && st.http_active + st.http_queued >= 4,
     "bound: at most 2 in flight (%zu active, %zu queued)", st.http_active,
     st.http_queued);
  for (uint64_t i = first; i < next_id; i++) wait_for(i, 3000);
  int n = 0;
  for (uint64_t i = first; i < next_id; i++) n += find_got(i) != NULL;
  IS_INT(n, 5, "bound: queued probes all finish");
  ml_probe_runner_set_max_http(r, 0);
}

static void test_exec(ml_probe_runner_t *r) {
  const char *t[] = {"true"};
  ml_probe_params_t o = {.argv = t, .argc = 1};
  expect(r, "exec", &o, 2000, ML_PROBE_SUCCESS, "", "exec true");
  const char *sh[] = {"sh", "-c", "echo out; echo err >&2; exit 3"};
  o = (ml_probe_params_t){.argv = sh, .argc = 3};
  expect(r, "exec", &o, 2000, ML_PROBE_FAILURE, "out\nerr\n",
         "exec exit 3: failure with the combined output");
  const char *env_sh[] = {"sh", "-c", "echo \"$GREETING\"; pwd"};
  const char *env[] = {"GREETING=hi \"there\"", "PATH=/usr/bin:/bin"};
  o = (ml_probe_params_t){
      .argv = env_sh, .argc = 3, .env = env, .nenv = 2, .cwd = "/"};
  expect(r, "exec", &o, 2000, ML_PROBE_SUCCESS, "hi \"there\"\n/\n",
         "exec env and cwd");
  const char *big[] = {"sh", "-c", "head -c 50000 /dev/zero | tr '\\0' x"};
  o = (ml_probe_params_t){.argv = big, .argc = 3};
  got_t *g = run_probe(r, "exec", &o, 2000);
  ok(g && g->result == ML_PROBE_SUCCESS && strlen(g->message) == 10240,
     "exec output capped at 10 KiB (%zu)", g ? strlen(g->message) : 0);
  const char *slow[] = {"sh", "-c", "sleep 5; echo \"done\""};
  o = (ml_probe_params_t){.argv = slow, .argc = 3};
  expect(r, "exec", &o, 200, ML_PROBE_FAILURE,
         "command \"sh -c sleep 5; echo \\\"done\\\"\" timed out",
         "exec timeout is a failure");
  const char *none[] = {"/nonexistent/probe-cmd"};
  o = (ml_probe_params_t){.argv = none, .argc = 1};
  g = run_probe(r, "exec", &o, 2000);
  ok(g && g->result == ML_PROBE_UNKNOWN && g->message[0],
     "exec of a missing command is a probe error (%s)", g ? g->message : "-");
  o = (ml_probe_params_t){.argc = 0};
  IS_INT(ml_probe_start(r, "exec", &o, 1000, 1), ML_EINVALID,
         "exec without a command");
  const char *sleeper[] = {"sleep", "30"};
  o = (ml_probe_params_t){.argv = sleeper, .argc = 2};
  uint64_t id = next_id++;
  IS_INT(ml_probe_start(r, "exec", &o, 30000, id), 0, "exec cancel: started");
  spin(50);
  ok(ml_probe_cancel(r, id), "exec cancel");
  spin(100);
  ok(find_got(id) == NULL, "exec cancel: no result");
  ml_probe_stats_t st;
  ml_probe_runner_stats(r, &st);
  IS_INT(st.active + st.closing, 0, "exec cancel: all released");
}

/* A kind that answers inside start(): exercises the vtable and the hold
 * that keeps the record valid through a synchronous finish. */
static int const_start(ml_probe_t *p, const ml_probe_params_t *o) {
  if (o->port == 13) return ML_EINVALID;
  ml_probe_done(p, o->port == 1 ? ML_PROBE_SUCCESS : ML_PROBE_FAILURE,
                "constant %d", o->port);
  return 0;
}

static const ml_probe_kind_t const_kind = {.name = "const",
                                           .start = const_start};

static void test_custom_kind(ml_probe_runner_t *r) {
  IS_INT(ml_probe_register(r, &const_kind), 0, "register a kind");
  ok(ml_probe_find_kind(r, "const") == &const_kind, "find it by name");
  ml_probe_params_t o = {.port = 1};
  expect(r, "const", &o, 0, ML_PROBE_SUCCESS, "constant 1", "custom kind");
  o.port = 2;
  expect(r, "const", &o, 0, ML_PROBE_FAILURE, "constant 2",
         "custom kind failure");
  o.port = 13;
  IS_INT(ml_probe_start(r, "const", &o, 0, 1), ML_EINVALID,
         "custom kind start error");
}

/* {====== tickers */

/* A kind that plays a script of results, one per attempt, answering
 * inside start(); after the script it succeeds. */
static const int *script;
static int nscript, played;

static int seq_start(ml_probe_t *p, const ml_probe_params_t *o) {
  (void)o;
  int res = played < nscript ? script[played] : ML_PROBE_SUCCESS;
  played++;
  ml_probe_done(p, res, "seq %d", played);
  return 0;
}

static const ml_probe_kind_t seq_kind = {.name = "seq", .start = seq_start};

/* Results posted to `id`, as a string of letters (S W F U). */
static void posted(uint64_t id, char *out, size_t n) {
  size_t k = 0;
  for (int i = 0; i < ngot && k + 1 < n; i++)
    if (got[i].id == id) out[k++] = "?SWFU"[got[i].result];
  out[k] = '\0';
}

static void test_ticker_rules(ml_probe_runner_t *r) {
  ml_probe_register(r, &seq_kind);
  /* U U S: one error retried twice within a tick; then steady successes
   * are quiet, a failure is posted, and so is the success after it. */
  static const int s1[] = {ML_PROBE_UNKNOWN, ML_PROBE_UNKNOWN,
                           ML_PROBE_SUCCESS, ML_PROBE_SUCCESS,
                           ML_PROBE_SUCCESS, ML_PROBE_FAILURE,
                           ML_PROBE_SUCCESS, ML_PROBE_SUCCESS,
                           ML_PROBE_WARNING, ML_PROBE_UNKNOWN,
                           ML_PROBE_UNKNOWN, ML_PROBE_UNKNOWN};
  script = s1;
  nscript = (int)(sizeof s1 / sizeof s1[0]);
  played = 0;
  ml_probe_stats_t st0, st1;
  ml_probe_runner_stats(r, &st0);
  ml_probe_params_t o = {.port = 1};
  ml_probe_every_t every = {.period_ms = 10, .success_threshold = 1,
                            .max_tries = 3};
  ml_probe_ticker_t *t;
  uint64_t id = next_id++;
  IS_INT(ml_probe_ticker_new(r, "seq", &o, &every, id, &t), 0, "ticker new");
  ml_probe_ticker_arm(t, 0);
  while (played < nscript + 5) spin(5);
  ml_probe_ticker_disarm(t);
  int at = played;
  spin(40);
  IS_INT(played, at, "disarmed: no more attempts");
  char seen[64];
  posted(id, seen, sizeof seen);
  IS_STR(seen, "SFSWU", "ticker: only the results that matter are posted");
  ml_probe_runner_stats(r, &st1);
  ok(st1.quiet - st0.quiet >= 6, "ticker: quiet successes counted (%d)",
     (int)(st1.quiet - st0.quiet));
  IS_INT(st1.tickers, 1, "ticker: counted while alive");
  /* A success threshold of 2 posts two successes in a row. */
  static const int s2[] = {ML_PROBE_FAILURE};
  script = s2;
  nscript = 1;
  played = 0;
  ml_probe_ticker_free(t);
  every.success_threshold = 2;
  id = next_id++;
  IS_INT(ml_probe_ticker_new(r, "seq", &o, &every, id, &t), 0, "ticker 2");
  ml_probe_ticker_arm(t, 0);
  while (played < 8) spin(5);
  ml_probe_ticker_free(t);
  posted(id, seen, sizeof seen);
  IS_STR(seen, "FSS", "successThreshold 2: two successes posted");
  /* reset(): the next success is posted again. */
  script = NULL;
  nscript = 0;
  played = 0;
  id = next_id++;
  every.success_threshold = 1;
  ml_probe_ticker_new(r, "seq", &o, &every, id, &t);
  ml_probe_ticker_arm(t, 0);
  while (played < 3) spin(5);
  ml_probe_ticker_reset(t);
  at = played;
  while (played < at + 3) spin(5);
  ml_probe_ticker_free(t);
  posted(id, seen, sizeof seen);
  IS_STR(seen, "SS", "reset: the streak starts again");
  ml_probe_runner_stats(r, &st1);
  IS_INT(st1.tickers, 0, "freed tickers leave the runner");
  ok(ml_probe_ticker_new(r, "nope", &o, &every, 1, &t) == ML_ENOTFOUND &&
         t == NULL,
     "ticker of an unknown kind");
  every.period_ms = 0;
  IS_INT(ml_probe_ticker_new(r, "seq", &o, &every, 1, &t), ML_EINVALID,
         "ticker without a period");
}

/* Quick retries: before the first success, failures are retried on a
 * short back-off and only their success is posted; after it, and after the
 * window of one period, only the periodic attempts run. */
static void test_ticker_quick(ml_probe_runner_t *r) {
  static const int s[] = {ML_PROBE_FAILURE, ML_PROBE_FAILURE,
                          ML_PROBE_UNKNOWN, ML_PROBE_FAILURE,
                          ML_PROBE_SUCCESS, ML_PROBE_FAILURE,
                          ML_PROBE_FAILURE};
  script = s;
  nscript = (int)(sizeof s / sizeof s[0]);
  played = 0;
  ml_probe_stats_t st0, st1;
  ml_probe_runner_stats(r, &st0);
  ml_probe_params_t o = {.port = 1};
  /* A long period: under ASan on a loaded machine five 5 ms retries took
   * over 200 ms, and the quick window of one period had closed. */
  ml_probe_every_t every = {.period_ms = 1000, .success_threshold = 1,
                            .max_tries = 3, .quick_ms = 5};
  ml_probe_ticker_t *t;
  uint64_t id = next_id++;
  IS_INT(ml_probe_ticker_new(r, "seq", &o, &every, id, &t), 0,
         "quick: ticker new");
  uint64_t t0 = uv_now(&uv);
  ml_probe_ticker_arm(t, 0);
  while (played < 5 && uv_now(&uv) - t0 < 2000) spin(2);
  uint64_t took = uv_now(&uv) - t0;
  ok(played == 5 && took < 700,
     "quick: the success came after %d attempts in %d ms (period 1000)",
     played, (int)took);
  char seen[64];
  posted(id, seen, sizeof seen);
  IS_STR(seen, "FS", "quick: the first failure and the success posted");
  /* After the success: failures at the period only, all posted. */
  spin(1150);
  IS_INT(played, 6, "quick: after a success, periodic attempts only");
  posted(id, seen, sizeof seen);
  IS_STR(seen, "FSF", "quick: a later failure is posted");
  ml_probe_runner_stats(r, &st1);
  IS_INT((int)(st1.quick - st0.quick), 4, "quick: four quick retries");
  /* A new instance (reset) retries quickly again; freeing the ticker
   * with a quick retry pending is clean. */
  static const int fails[] = {ML_PROBE_FAILURE, ML_PROBE_FAILURE,
                              ML_PROBE_FAILURE, ML_PROBE_FAILURE,
                              ML_PROBE_FAILURE, ML_PROBE_FAILURE};
  script = fails;
  nscript = (int)(sizeof fails / sizeof fails[0]);
  played = 0;
  ml_probe_ticker_reset(t);
  ml_probe_ticker_arm(t, 0);
  while (played < 3) spin(1);
  ml_probe_ticker_free(t);
  int at = played;
  spin(40);
  IS_INT(played, at, "quick: a freed ticker retries no more");
  /* Without quick_ms nothing is retried between periods. */
  played = 0;
  every.quick_ms = 0;
  id = next_id++;
  ml_probe_ticker_new(r, "seq", &o, &every, id, &t);
  ml_probe_ticker_arm(t, 0);
  spin(100);
  IS_INT(played, 1, "no quick_ms: one attempt per period");
  ml_probe_ticker_free(t);
  script = NULL;
  nscript = 0;
}

static void test_ticker_http(ml_probe_runner_t *r) {
  /* A slow server and a short period: attempts never overlap, each tick
   * that comes during one starts the next as soon as it ends. */
  ml_probe_params_t o = {.port = http_port, .path = "/slow"};
  ml_probe_every_t every = {.period_ms = 20, .timeout_ms = 100,
                            .max_tries = 3};
  ml_probe_ticker_t *t;
  uint64_t id = next_id++;
  IS_INT(ml_probe_ticker_new(r, "http", &o, &every, id, &t), 0,
         "http ticker");
  ml_probe_ticker_arm(t, 0);
  size_t most = 0;
  for (int i = 0; i < 70; i++) {
    spin(5);
    ml_probe_stats_t st;
    ml_probe_runner_stats(r, &st);
    if (st.active > most) most = st.active;
  }
  IS_INT((int)most, 1, "http ticker: one attempt at a time");
  char seen[64];
  posted(id, seen, sizeof seen);
  ok(strlen(seen) >= 2 && strspn(seen, "F") == strlen(seen),
     "http ticker: timeouts posted back to back (%s)", seen);
  got_t *g = find_got(id);
  ok(g && strstr(g->message, "context deadline exceeded"),
     "http ticker: the timeout message");
  /* Freed with an attempt in flight: the attempt is left to end on its
   * own (a cancelled live transfer once left libcurl sockets unpolled),
   * and nothing more is posted. */
  int before = ngot;
  ml_probe_stats_t fst;
  ml_probe_runner_stats(r, &fst);
  size_t running = fst.active;
  ml_probe_ticker_free(t);
  ml_probe_runner_stats(r, &fst);
  IS_INT((int)fst.active, (int)running, "ticker freed: its attempt runs on");
  spin(150);
  ml_probe_runner_stats(r, &fst);
  IS_INT((int)fst.active, 0, "ticker freed: the attempt ended by itself");
  posted(id, seen, sizeof seen);
  int after = 0;
  for (int i = before; i < ngot; i++) after += got[i].id == id;
  IS_INT(after, 0, "http ticker freed: no event after");
  /* A healthy endpoint: one success posted, the rest quiet; the copied
   * parameters (path, headers) outlive the caller's. */
  char path[16] = "/ok";
  ml_probe_header_t hs[] = {{"X-Ticker", "yes"}};
  o = (ml_probe_params_t){.port = http_port, .path = path, .headers = hs,
                          .nheaders = 1};
  every = (ml_probe_every_t){.period_ms = 15, .timeout_ms = 1000};
  id = next_id++;
  ml_probe_ticker_new(r, "http", &o, &every, id, &t);
  memset(path, 'x', sizeof path - 1);
  hs[0].name = "Broken header";
  ml_probe_ticker_arm(t, 0);
  spin(120);
  ml_probe_ticker_free(t);
  posted(id, seen, sizeof seen);
  IS_STR(seen, "S", "http ticker: steady success posted once");
  ok(strstr(last_head, "GET /ok HTTP/1.1") == last_head &&
         strcasestr(last_head, "\r\nX-Ticker: yes") != NULL,
     "http ticker: its own copy of path and headers");
}

/* The first attempt comes `first_ms` after the arm call, even when the
 * loop's cached time is stale (a long turn before the arm). */
static void test_ticker_arm_stale_clock(ml_probe_runner_t *r) {
  ml_probe_params_t o = {.port = http_port, .path = "/ok"};
  ml_probe_every_t every = {.period_ms = 10000, .timeout_ms = 1000};
  ml_probe_ticker_t *t;
  uint64_t id = next_id++;
  IS_INT(ml_probe_ticker_new(r, "http", &o, &every, id, &t), 0,
         "stale clock: ticker");
  uv_update_time(&uv);
  usleep(200 * 1000); /* 200 ms of work within one loop turn */
  uint64_t armed = uv_hrtime();
  ml_probe_ticker_arm(t, 300);
  got_t *g = wait_for(id, 3000);
  uint64_t ms = (uv_hrtime() - armed) / 1000000;
  ok(g && g->result == ML_PROBE_SUCCESS && ms >= 299,
     "stale clock: first attempt %llu ms after the arm (want >= 300)",
     (unsigned long long)ms);
  ml_probe_ticker_free(t);
}

/* Tickers alive when the runner closes; freed afterwards. */
static void test_ticker_close_order(void) {
  ml_probe_runner_t *r = ml_probe_runner_new(&loop, 0);
  ml_probe_params_t o = {.port = http_port, .path = "/slow"};
  ml_probe_every_t every = {.period_ms = 10, .timeout_ms = 5000,
                            .quick_ms = 1};
  ml_probe_ticker_t *a, *b;
  ml_probe_ticker_new(r, "http", &o, &every, 7001, &a);
  ml_probe_ticker_new(r, "tcp", &o, &every, 7002, &b);
  ml_probe_ticker_arm(a, 0);
  ml_probe_ticker_arm(b, 0);
  spin(30);
  ml_probe_ticker_free(b);
  ml_probe_runner_close(r);
  spin(30);
  ml_probe_ticker_free(a);
  spin(10);
  ok(!find_got(7001), "runner closed under a ticker: nothing posted");
}

/* }====== */

static void test_close_in_flight(void) {
  ml_probe_runner_t *r = ml_probe_runner_new(&loop, 0);
  ml_probe_params_t o = {.port = http_port, .path = "/slow"};
  ml_probe_start(r, "http", &o, 5000, 1);
  o.read_max = 10;
  ml_probe_start(r, "tcp", &o, 5000, 2);
  o = (ml_probe_params_t){.port = closed_port()};
  ml_probe_start(r, "tcp", &o, 5000, 3);
  const char *sleeper[] = {"sleep", "30"};
  o = (ml_probe_params_t){.argv = sleeper, .argc = 2};
  ml_probe_start(r, "exec", &o, 30000, 4);
  spin(30);
  ml_probe_runner_close(r);
  spin(30);
  collect();
  ok(!find_got(1) && !find_got(2) && !find_got(4),
     "close: running attempts post nothing");
}

/* }====== */

/* {====== through Lua, both shutdown orders */

static int l_ok(lua_State *L) {
  ok(lua_toboolean(L, 1), "lua: %s", luaL_optstring(L, 2, "?"));
  return 0;
}

static const char *lua_script =
    "local probe = require('moonlet.probe')\n"
    "local sched = require('moonlet.sched')\n"
    "sched.run(function()\n"
    "  local r, m = probe.run('http', { port = PORT, path = '/500' }, 1)\n"
    "  ok(r == 'failure' and m == 'HTTP probe failed with statuscode: 500',\n"
    "     'http failure: ' .. tostring(m))\n"
    "  r, m = probe.run('http', { port = PORT, headers = {\n"
    "    { name = 'X-A', value = '1' }, { 'X-B', '2' } } }, 1)\n"
    "  ok(r == 'success', 'http success with headers')\n"
    "  ok(probe.connect('127.0.0.1', PORT, 1), 'connect')\n"
    "  ok(probe.exchange{ port = BANNER, timeout = 1 } ==\n"
    "     'HELLO moonlet 1.0\\r\\n', 'exchange')\n"
    "  r, m = probe.run('exec', { command = { 'sh', '-c', 'echo no; exit 1' "
    "} }, 2)\n"
    "  ok(r == 'failure' and m == 'no\\n', 'exec failure: ' .. m)\n"
    "  r, m = probe.run('nope', {}, 1)\n"
    "  ok(r == 'unknown' and m:match('ENOTFOUND'), 'unknown kind: ' .. m)\n"
    "  ok(not pcall(probe.run, 'http', { port = 'x' }), 'bad port raises')\n"
    "end)\n"
    "-- left running on purpose: shutdown must cancel them\n"
    "sched.spawn('left', function() probe.run('http', { port = PORT, path = "
    "'/slow' }, 30) end)\n"
    "sched.spawn('left2', function() probe.run('tcp', { port = PORT, read = "
    "9 }, 30) end)\n"
    "-- (proc cannot be released once the runtime closed under it)\n"
    "if not RUNTIME_FIRST then sched.spawn('left3', function()\n"
    "  probe.run('exec', { command = { 'sleep', '30' } }, 30) end) end\n";

/* }====== */

/* The Lua part runs the runtime's own loop; the fixtures live on `uv`,
 * which a timer on the runtime's loop pumps meanwhile. */
static uv_timer_t pump;
static void on_pump(uv_timer_t *t) {
  (void)t;
  uv_run(&uv, UV_RUN_NOWAIT);
}

static void test_lua_both(void) {
  for (int i = 0; i < 2; i++) {
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "moonlet_core", luaopen_moonlet_core, 0);
    lua_pop(L, 1);
    ml_runtime_t *rt = ml_runtime_get(L);
    uv_timer_init(&rt->uv, &pump);
    uv_timer_start(&pump, on_pump, 1, 1);
    uv_unref((uv_handle_t *)&pump);
    lua_pushinteger(L, http_port);
    lua_setglobal(L, "PORT");
    lua_pushinteger(L, banner_port);
    lua_setglobal(L, "BANNER");
    lua_pushboolean(L, i == 0);
    lua_setglobal(L, "RUNTIME_FIRST");
    lua_pushcfunction(L, l_ok);
    lua_setglobal(L, "ok");
    int rc = luaL_loadstring(L, lua_script);
    if (rc == LUA_OK) rc = ml_lua_pcall(L, 0, 0, "test");
    IS_INT(rc, LUA_OK, "lua: script ran");
    uv_close((uv_handle_t *)&pump, NULL);
    if (i == 0) ml_runtime_close(L);
    lua_close(L);
    ok(1, "lua: shutdown with probes running (%s)",
       i == 0 ? "runtime closed first" : "lua_close only");
  }
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

int main(void) {
  uv_loop_init(&uv);
  ml_loop_init(&loop, &uv);
  http_port = listen_on(&http_srv, on_http_conn);
  banner_port = listen_on(&banner_srv, on_banner_conn);
  ok(http_port > 0 && banner_port > 0, "fixtures listen");

  ml_probe_runner_t *r = ml_probe_runner_new(&loop, 0);
  ok(r != NULL, "runner");
  test_http(r);
  test_handle_pool(r);
  test_prepared_numeric();
  test_bad_params(r);
  test_timeout_on_quiet_loop(r);
  test_tcp(r);
  test_cancel_and_bound(r);
  test_exec(r);
  test_custom_kind(r);
  test_ticker_rules(r);
  test_ticker_quick(r);
  test_ticker_http(r);
  test_ticker_arm_stale_clock(r);
  ml_probe_runner_close(r);
  test_ticker_close_order();
  test_close_in_flight();
  test_lua_both();

  for (conn_t *c = conns; c; c = c->next) conn_close(c);
  uv_close((uv_handle_t *)&http_srv, NULL);
  uv_close((uv_handle_t *)&banner_srv, NULL);
  for (int i = 0; i < 100 && uv_loop_alive(&uv); i++)
    uv_run(&uv, UV_RUN_NOWAIT);
  collect();
  ml_loop_close(&loop);
  for (int i = 0; i < ngot; i++) free(got[i].message);
  int rc = uv_loop_close(&uv);
  if (rc != 0) uv_walk(&uv, close_walk, NULL);
  IS_INT(rc, 0, "uv_loop_close() == 0");
  IS_INT(open_conns, 0, "fixture connections closed");
  printf("1..%d\n", ntests);
  return nfailed ? 1 : 0;
}
