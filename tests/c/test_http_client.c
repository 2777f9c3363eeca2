/* Tests of core/http_client.c against a small HTTP/1.1 server written here
 * on the same libuv loop (TCP and a unix socket in a temp dir). Prints TAP.
 * `test_http_client --serve SOCK PORTFILE` runs only the server (the
 * fixture of tests/spec/http_spec.lua); it exits when stdin closes. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <lualib.h>

#include "curl_load.h"
#include "err.h"
#include "http_client.h"
#include "loop.h"
#include "runtime.h"

#include "tap.h"

/* {====== fixture server */

typedef struct srv_s srv_t;

typedef struct {
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } u;
  srv_t *srv;
  char *buf;
  size_t len, cap;
  bool busy, closing, close_after;
  uv_timer_t timer; /* delayed responses and stream ticks */
  int ticks, max_ticks;
  int handles;
} conn_t;

struct srv_s {
  uv_loop_t *loop;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
  int port;
  int accepted, open;
  int requests;
};

static void conn_parse(conn_t *c);

static void conn_handle_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->handles == 0) {
    c->srv->open--;
    free(c->buf);
    free(c);
  }
}

static void conn_close(conn_t *c) {
  if (c->closing) return;
  c->closing = true;
  uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
  uv_close(&c->u.h, conn_handle_closed);
}

typedef struct {
  uv_write_t w;
  conn_t *c;
  bool done; /* the response is complete: parse the next request */
  char data[];
} wreq_t;

static void on_written(uv_write_t *w, int status) {
  wreq_t *r = (wreq_t *)w;
  conn_t *c = r->c;
  bool done = r->done;
  free(r);
  if (status < 0 || c->closing) return;
  if (done) {
    if (c->close_after) {
      conn_close(c);
      return;
    }
    c->busy = false;
    conn_parse(c);
  }
}

static void conn_write(conn_t *c, const char *data, size_t n, bool done) {
  if (c->closing) return;
  wreq_t *r = malloc(sizeof *r + n);
  r->c = c;
  r->done = done;
  memcpy(r->data, data, n);
  uv_buf_t b = uv_buf_init(r->data, (unsigned)n);
  if (uv_write(&r->w, &c->u.s, &b, 1, on_written) < 0) free(r);
}

static void respond(conn_t *c, int status, const char *extra, const char *body,
                    size_t blen) {
  char head[1024];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s%s\r\n", status,
                   blen, extra ? extra : "",
                   c->close_after ? "Connection: close\r\n" : "");
  char *all = malloc((size_t)n + blen);
  memcpy(all, head, (size_t)n);
  if (blen) memcpy(all + n, body, blen);
  conn_write(c, all, (size_t)n + blen, true);
  free(all);
}

static void on_tick(uv_timer_t *t) {
  conn_t *c = t->data;
  char chunk[64];
  if (c->max_ticks && c->ticks >= c->max_ticks) {
    uv_timer_stop(t);
    conn_write(c, "0\r\n\r\n", 5, true);
    return;
  }
  c->ticks++;
  char line[32];
  int n = snprintf(line, sizeof line, "line %d\n", c->ticks);
  int m = snprintf(chunk, sizeof chunk, "%x\r\n%s\r\n", n, line);
  conn_write(c, chunk, (size_t)m, false);
}

static void on_slow(uv_timer_t *t) {
  conn_t *c = t->data;
  respond(c, 200, NULL, "late", 4);
}

/* Value of header `name` in the request head [h, end), copied to out. */
static const char *req_header(const char *h, const char *end, const char *name,
                              char *out, size_t outsz) {
  size_t nl = strlen(name);
  for (const char *p = h; p < end;) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) break;
    if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 &&
        p[nl] == ':') {
      const char *v = p + nl + 1;
      while (*v == ' ') v++;
      size_t vl = (size_t)(eol - v);
      if (vl && v[vl - 1] == '\r') vl--;
      if (vl >= outsz) vl = outsz - 1;
      memcpy(out, v, vl);
      out[vl] = '\0';
      return out;
    }
    p = eol + 1;
  }
  return NULL;
}

static void route(conn_t *c, const char *method, const char *path,
                  const char *head, const char *hend, const char *body,
                  size_t blen) {
  srv_t *s = c->srv;
  char extra[1024], val[256], out[4096];
  s->requests++;
  if (strcmp(path, "/hello") == 0) {
    respond(c, 200, "X-Test: yes\r\nX-Multi: a\r\nX-Multi: b\r\n",
            "hello world", 11);
  } else if (strcmp(path, "/echo") == 0) {
    char ct[128], auth[256];
    snprintf(extra, sizeof extra,
             "X-Got: %s\r\nX-Content-Type: %s\r\nX-Auth: %s\r\n",
             req_header(head, hend, "x-custom", val, sizeof val) ? val : "-",
             req_header(head, hend, "content-type", ct, sizeof ct) ? ct : "-",
             req_header(head, hend, "authorization", auth, sizeof auth) ? auth
                                                                        : "-");
    int n = snprintf(out, sizeof out, "%s %.*s", method, (int)blen, body);
    respond(c, 200, extra, out, (size_t)n);
  } else if (strcmp(path, "/count") == 0) {
    int n = snprintf(out, sizeof out, "%d", s->accepted);
    respond(c, 200, NULL, out, (size_t)n);
  } else if (strcmp(path, "/slow") == 0) {
    uv_timer_start(&c->timer, on_slow, 2000, 0);
  } else if (strncmp(path, "/delay/", 7) == 0) {
    uv_timer_start(&c->timer, on_slow, (uint64_t)atoi(path + 7), 0);
  } else if (strcmp(path, "/stream") == 0 || strcmp(path, "/forever") == 0) {
    const char *h =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: text/plain\r\n\r\n";
    conn_write(c, h, strlen(h), false);
    c->ticks = 0;
    c->max_ticks = strcmp(path, "/stream") == 0 ? 5 : 0;
    uv_timer_start(&c->timer, on_tick, 20, 20);
  } else if (strcmp(path, "/big") == 0) {
    size_t n = 100000;
    char *b = malloc(n);
    memset(b, 'x', n);
    respond(c, 200, NULL, b, n);
    free(b);
  } else if (strncmp(path, "/redir/", 7) == 0) {
    int n = atoi(path + 7);
    if (n <= 0)
      snprintf(extra, sizeof extra, "Location: /hello\r\n");
    else
      snprintf(extra, sizeof extra, "Location: /redir/%d\r\n", n - 1);
    respond(c, 302, extra, "moved", 5);
  } else if (strcmp(path, "/loop") == 0) {
    respond(c, 302, "Location: /loop\r\n", "", 0);
  } else if (strcmp(path, "/offhost") == 0) {
    snprintf(extra, sizeof extra, "Location: http://other.invalid:%d/hello\r\n",
             s->port);
    respond(c, 302, extra, "moved away", 10);
  } else if (strcmp(path, "/absolute") == 0) {
    snprintf(extra, sizeof extra, "Location: http://127.0.0.1:%d/hello\r\n",
             s->port);
    respond(c, 301, extra, "", 0);
  } else if (strcmp(path, "/see-other") == 0) {
    respond(c, 303, "Location: /echo\r\n", "", 0);
  } else if (strcmp(path, "/close") == 0) {
    c->close_after = true;
    respond(c, 200, NULL, "bye", 3);
  } else {
    respond(c, 404, NULL, "not found", 9);
  }
}

/* Serves the buffered requests one at a time, in order. */
static void conn_parse(conn_t *c) {
  while (!c->busy && !c->closing) {
    char *end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
    if (!end) return;
    size_t hlen = (size_t)(end + 4 - c->buf);
    char val[64];
    size_t blen = 0;
    if (req_header(c->buf, end + 2, "content-length", val, sizeof val))
      blen = (size_t)atol(val);
    if (c->len < hlen + blen) return;
    char method[16] = "", path[256] = "";
    sscanf(c->buf, "%15s %255s", method, path);
    char *body = malloc(blen + 1);
    memcpy(body, c->buf + hlen, blen);
    c->busy = true;
    char *head = malloc(hlen);
    memcpy(head, c->buf, hlen);
    memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
    c->len -= hlen + blen;
    route(c, method, path, head, head + hlen - 2, body, blen);
    free(head);
    free(body);
  }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  conn_t *c = h->data;
  if (c->cap - c->len < hint) {
    c->cap = c->len + hint;
    c->buf = realloc(c->buf, c->cap);
  }
  *b = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  (void)b;
  conn_t *c = st->data;
  if (n < 0) {
    conn_close(c);
    return;
  }
  c->len += (size_t)n;
  conn_parse(c);
}

static void on_conn(uv_stream_t *server, int status) {
  if (status < 0) return;
  srv_t *s = server->data;
  conn_t *c = calloc(1, sizeof *c);
  c->srv = s;
  if (server->type == UV_TCP)
    uv_tcp_init(s->loop, &c->u.tcp);
  else
    uv_pipe_init(s->loop, &c->u.pipe, 0);
  uv_timer_init(s->loop, &c->timer);
  c->u.h.data = c;
  c->timer.data = c;
  c->handles = 2;
  s->accepted++;
  s->open++;
  if (uv_accept(server, &c->u.s) < 0) {
    conn_close(c);
    return;
  }
  uv_read_start(&c->u.s, on_alloc, on_read);
}

static int srv_start(srv_t *s, uv_loop_t *loop, const char *sock_path) {
  memset(s, 0, sizeof *s);
  s->loop = loop;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_init(loop, &s->tcp);
  s->tcp.data = s;
  int rc = uv_tcp_bind(&s->tcp, (struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->tcp, 128, on_conn);
  if (rc < 0) return rc;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len);
  s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  uv_pipe_init(loop, &s->pipe, 0);
  s->pipe.data = s;
  rc = uv_pipe_bind(&s->pipe, sock_path);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->pipe, 128, on_conn);
  return rc;
}

static void srv_stop_walk(uv_handle_t *h, void *arg) {
  srv_t *s = arg;
  /* Connections are the server's: close what is left of them. */
  if (h->type == UV_TIMER || h->data == NULL) return;
  if ((h->type == UV_TCP || h->type == UV_NAMED_PIPE) &&
      h != (uv_handle_t *)&s->tcp && h != (uv_handle_t *)&s->pipe &&
      !uv_is_closing(h) && h->data != s) {
    conn_t *c = h->data;
    if (c && c->srv == s) conn_close(c);
  }
}

static void srv_stop(srv_t *s) {
  uv_walk(s->loop, srv_stop_walk, s);
  uv_close((uv_handle_t *)&s->tcp, NULL);
  uv_close((uv_handle_t *)&s->pipe, NULL);
}

/* }====== */

/* {====== client harness: events are stashed by id as they arrive */

static uv_loop_t uv;
static ml_loop_t loop;
static ml_http_client_t *cl;
static srv_t srv;
static char sock_path[256], tmpdir[200];
static char base[64];
static ml_event_t *stash_head, *stash_tail;
static uv_timer_t waker;

static void on_waker(uv_timer_t *t) { (void)t; }

static void pump(void) {
  uv_run(&uv, UV_RUN_ONCE);
  ml_event_t *ev;
  while ((ev = ml_loop_pop(&loop)) != NULL) {
    if (stash_tail)
      stash_tail->next = ev;
    else
      stash_head = ev;
    stash_tail = ev;
  }
}

/* Next event for `id`, or NULL after `ms`. The caller frees it. */
static ml_http_event_t *next_event(uint64_t id, uint64_t ms) {
  uint64_t deadline = uv_hrtime() + ms * 1000000;
  uv_timer_start(&waker, on_waker, 20, 20);
  for (;;) {
    ml_event_t *prev = NULL;
    for (ml_event_t *e = stash_head; e; prev = e, e = e->next) {
      if (e->id != id) continue;
      if (prev)
        prev->next = e->next;
      else
        stash_head = e->next;
      if (stash_tail == e) stash_tail = prev;
      e->next = NULL;
      uv_timer_stop(&waker);
      return (ml_http_event_t *)e;
    }
    if (uv_hrtime() > deadline) {
      uv_timer_stop(&waker);
      return NULL;
    }
    pump();
  }
}

static void ev_free(ml_http_event_t *ev) {
  if (ev) ml_event_free(&ev->ev);
}

static const char *hdr(ml_http_event_t *ev, const char *name, int nth) {
  for (size_t i = 0; i < ev->nheaders; i++)
    if (strcmp(ev->headers[i].name, name) == 0 && nth-- == 0)
      return ev->headers[i].value;
  return NULL;
}

static uint64_t next_id = 1;

/* Runs one request to completion; returns its END event. */
static ml_http_event_t *fetch(ml_http_opts_t o) {
  uint64_t id = next_id++;
  int rc = ml_http_request(cl, id, &o, NULL);
  if (rc < 0) return NULL;
  return next_event(id, 5000);
}

static char *url(const char *path) {
  static char buf[8][256];
  static int i;
  char *b = buf[i++ % 8];
  snprintf(b, 256, "%s%s", base, path);
  return b;
}

/* }====== */

static void test_basic(void) {
  ml_http_event_t *ev = fetch((ml_http_opts_t){.url = url("/hello")});
  ok(ev != NULL, "GET /hello completes");
  if (!ev) return;
  IS_INT(ev->ev.type, ML_EV_HTTP_DONE, "END is an ML_EV_HTTP_DONE event");
  IS_INT(ev->err, 0, "no error");
  IS_INT(ev->status, 200, "status 200");
  IS_STR(ev->body, "hello world", "body");
  IS_STR(hdr(ev, "x-test", 0), "yes", "header names are lower-case");
  IS_STR(hdr(ev, "x-multi", 0), "a", "repeated header: first");
  IS_STR(hdr(ev, "x-multi", 1), "b", "repeated header: second");
  ev_free(ev);

  const char *hs[] = {"X-Custom: forty two", "Content-Type: text/plain"};
  ev = fetch((ml_http_opts_t){.url = "http://localhost/echo",
                              .unix_socket = sock_path,
                              .method = "POST",
                              .body = "payload",
                              .body_len = 7,
                              .headers = hs,
                              .nheaders = 2});
  ok(ev && ev->err == 0, "POST over the unix socket");
  if (ev) {
    IS_STR(ev->body, "POST payload", "request body arrives");
    IS_STR(hdr(ev, "x-got", 0), "forty two", "request header arrives");
    IS_STR(hdr(ev, "x-content-type", 0), "text/plain", "content type as given");
  }
  ev_free(ev);

  ev = fetch((ml_http_opts_t){
      .url = url("/echo"), .method = "PATCH", .body = "{}", .body_len = 2});
  ok(ev && ev->err == 0, "PATCH with body");
  if (ev) {
    IS_STR(ev->body, "PATCH {}", "custom method with body");
    IS_STR(hdr(ev, "x-content-type", 0), "-", "no form content type added");
  }
  ev_free(ev);

  ev = fetch((ml_http_opts_t){.url = url("/echo"), .method = "DELETE"});
  IS_STR(ev ? ev->body : NULL, "DELETE ", "DELETE without body");
  ev_free(ev);
  ev = fetch((ml_http_opts_t){.url = url("/echo"), .method = "PUT"});
  IS_STR(ev ? ev->body : NULL, "PUT ", "PUT with an empty body");
  ev_free(ev);
  ev = fetch((ml_http_opts_t){.url = url("/hello"), .method = "HEAD"});
  ok(ev && ev->status == 200 && ev->body_len == 0, "HEAD has no body");
  ev_free(ev);
  ev = fetch((ml_http_opts_t){.url = url("/echo"), .bearer_token = "s3cret"});
  IS_STR(ev ? hdr(ev, "x-auth", 0) : NULL, "Bearer s3cret",
         "bearer token sent");
  ev_free(ev);
  ev = fetch((ml_http_opts_t){.url = url("/nope")});
  ok(ev && ev->err == 0 && ev->status == 404,
     "404 is a response, not an error");
  ev_free(ev);
}

/* A port nobody listens on: bind, note it, close. */
static int free_port(void) {
  uv_tcp_t tmp;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_init(&uv, &tmp);
  uv_tcp_bind(&tmp, (struct sockaddr *)&a, 0);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&tmp, (struct sockaddr *)&ss, &len);
  int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  uv_close((uv_handle_t *)&tmp, NULL);
  uv_run(&uv, UV_RUN_NOWAIT);
  return port;
}

static void test_errors(void) {
  uint64_t t0 = uv_hrtime();
  ml_http_event_t *ev =
      fetch((ml_http_opts_t){.url = url("/slow"), .timeout_ms = 100});
  double ms = (double)(uv_hrtime() - t0) / 1e6;
  ok(ev != NULL, "slow request ends");
  if (ev) {
    IS_INT(ev->err, UV_ETIMEDOUT, "timeout is ETIMEDOUT");
    ok(ev->errmsg && strstr(ev->errmsg, "timed out"), "message: %s",
       ev->errmsg);
  }
  ok(ms >= 90 && ms < 1500, "timed out after ~100 ms (%.0f ms)", ms);
  ev_free(ev);

  int port = free_port();
  char u[64];
  snprintf(u, sizeof u, "http://127.0.0.1:%d/", port);
  ev = fetch((ml_http_opts_t){.url = u});
  ok(ev && ev->err == UV_ECONNREFUSED, "connection refused: %s",
     ev ? ml_err_name(ev->err) : "no event");
  ev_free(ev);

  char missing[300];
  snprintf(missing, sizeof missing, "%s/missing.sock", tmpdir);
  ev = fetch(
      (ml_http_opts_t){.url = "http://localhost/", .unix_socket = missing});
  ok(ev && ev->err == UV_ENOENT, "missing unix socket: %s",
     ev ? ml_err_name(ev->err) : "no event");
  ev_free(ev);

  ev = fetch((ml_http_opts_t){.url = "ftp://127.0.0.1/x"});
  ok(ev && ev->err == ML_EINVALID, "other protocols refused: %s",
     ev ? ml_err_name(ev->err) : "no event");
  ev_free(ev);
  IS_INT(ml_http_request(cl, 1, &(ml_http_opts_t){.url = NULL}, NULL),
         ML_EINVALID, "no url is EINVALID");
}

static void test_body_cap(void) {
  ml_http_event_t *ev =
      fetch((ml_http_opts_t){.url = url("/big"), .max_body = 10240});
  ok(ev && ev->err == 0, "capped body is not a failure");
  if (ev) {
    IS_INT(ev->body_len, 10240, "first 10 KiB kept");
    ok(ev->truncated, "truncated flag set");
  }
  ev_free(ev);
  ev = fetch((ml_http_opts_t){.url = url("/big")});
  ok(ev && ev->body_len == 100000 && !ev->truncated, "uncapped body complete");
  ev_free(ev);
  /* The connection survives a capped read (the rest was drained). */
  ml_http_stats_t st0, st1;
  ml_http_client_stats(cl, &st0);
  ev = fetch((ml_http_opts_t){.url = url("/hello")});
  ml_http_client_stats(cl, &st1);
  ok(ev && ev->err == 0 && st1.connects == st0.connects,
     "connection reused after cap");
  ev_free(ev);
}

static void test_redirects(void) {
  ml_http_event_t *ev = fetch((ml_http_opts_t){.url = url("/redir/3")});
  ok(ev && ev->status == 302 && ev->err == 0, "no redirect by default");
  IS_STR(ev ? hdr(ev, "location", 0) : NULL, "/redir/2", "location returned");
  ev_free(ev);

  ev = fetch((ml_http_opts_t){.url = url("/redir/3"),
                              .redirects = ML_HTTP_REDIRECT_ALL});
  ok(ev && ev->status == 200, "ALL follows to the end");
  if (ev) {
    IS_STR(ev->body, "hello world", "final body only");
    IS_STR(hdr(ev, "location", 0) ? "has location" : "none", "none",
           "final headers only");
  }
  ev_free(ev);
  ev = fetch(
      (ml_http_opts_t){.url = url("/loop"), .redirects = ML_HTTP_REDIRECT_ALL});
  ok(ev && ev->err == ML_EIO && strstr(ev->errmsg, "10 redirects"),
     "ALL stops after 10 redirects: %s", ev ? ev->errmsg : "");
  ev_free(ev);

  ev = fetch((ml_http_opts_t){.url = url("/redir/3"),
                              .redirects = ML_HTTP_REDIRECT_SAME_HOST});
  ok(ev && ev->status == 200, "SAME_HOST follows relative redirects");
  if (ev) {
    IS_INT(ev->redirects, 4, "four redirects counted");
    IS_STR(ev->body, "hello world", "final body");
  }
  ev_free(ev);
  ev = fetch((ml_http_opts_t){.url = url("/absolute"),
                              .redirects = ML_HTTP_REDIRECT_SAME_HOST});
  ok(ev && ev->status == 200 && ev->redirects == 1,
     "SAME_HOST follows an absolute same-host URL");
  ev_free(ev);
  ev = fetch((ml_http_opts_t){.url = url("/offhost"),
                              .redirects = ML_HTTP_REDIRECT_SAME_HOST});
  ok(ev && ev->err == 0 && ev->status == 302,
     "SAME_HOST returns the 3xx for another host");
  IS_STR(ev ? ev->body : NULL, "moved away", "with its body");
  ev_free(ev);
  ev = fetch((ml_http_opts_t){.url = url("/loop"),
                              .redirects = ML_HTTP_REDIRECT_SAME_HOST});
  ok(ev && ev->err == ML_EIO && ev->errmsg &&
         strstr(ev->errmsg, "10 redirects"),
     "SAME_HOST stops after 10 redirects: %s", ev && ev->errmsg ? ev->errmsg : "");
  ev_free(ev);
  ev = fetch((ml_http_opts_t){.url = url("/see-other"),
                              .method = "POST",
                              .body = "x",
                              .body_len = 1,
                              .redirects = ML_HTTP_REDIRECT_SAME_HOST});
  IS_STR(ev ? ev->body : NULL, "GET ", "303 turns POST into GET");
  ev_free(ev);
}

static void test_stream(void) {
  uint64_t id = next_id++;
  ml_http_req_t *req;
  int rc = ml_http_request(
      cl, id, &(ml_http_opts_t){.url = url("/stream"), .stream = true}, &req);
  IS_INT(rc, 0, "stream started");
  ml_http_event_t *ev = next_event(id, 2000);
  ok(ev && ev->ev.type == ML_EV_HTTP_CHUNK && ev->kind == ML_HTTP_HEAD,
     "first event is HEAD");
  if (ev) {
    IS_INT(ev->status, 200, "HEAD status");
    IS_STR(hdr(ev, "content-type", 0), "text/plain", "HEAD headers");
  }
  ev_free(ev);
  char all[256] = "";
  int nchunks = 0;
  for (;;) {
    ev = next_event(id, 2000);
    if (!ev || ev->kind != ML_HTTP_DATA) break;
    strncat(all, ev->body, sizeof all - strlen(all) - 1);
    nchunks++;
    ev_free(ev);
  }
  ok(ev && ev->kind == ML_HTTP_END && ev->err == 0, "END closes the stream");
  ok(nchunks >= 2, "data came in pieces (%d)", nchunks);
  IS_STR(all, "line 1\nline 2\nline 3\nline 4\nline 5\n", "all data in order");
  ev_free(ev);
  IS_INT(ml_http_cancel(req), ML_HTTP_DELIVERED,
         "cancel after delivery: DELIVERED");
  ml_http_req_release(req);

  /* An endless stream, aborted by the caller. */
  id = next_id++;
  ml_http_request(
      cl, id, &(ml_http_opts_t){.url = url("/forever"), .stream = true}, &req);
  ev = next_event(id, 2000);
  ok(ev && ev->kind == ML_HTTP_HEAD, "endless stream: HEAD");
  ev_free(ev);
  ev = next_event(id, 2000);
  ok(ev && ev->kind == ML_HTTP_DATA, "endless stream: DATA");
  ev_free(ev);
  int open_before = srv.open;
  IS_INT(ml_http_cancel(req), ML_HTTP_CANCELLED,
         "cancel while running: CANCELLED");
  IS_INT(ml_http_cancel(req), ML_HTTP_UNDELIVERED,
         "then UNDELIVERED until END is taken");
  for (;;) {
    ev = next_event(id, 2000);
    if (!ev || ev->kind == ML_HTTP_END) break;
    ev_free(ev);
  }
  ok(ev && ev->err == UV_ECANCELED, "END with ECANCELED follows");
  ev_free(ev);
  IS_INT(ml_http_cancel(req), ML_HTTP_DELIVERED, "and DELIVERED after");
  ml_http_req_release(req);
  for (int i = 0; i < 50 && srv.open >= open_before; i++) {
    uv_timer_start(&waker, on_waker, 10, 0);
    pump();
  }
  ok(srv.open < open_before, "the server saw the connection close");

  /* Redirects in a stream are followed before HEAD. */
  id = next_id++;
  ml_http_request(cl, id,
                  &(ml_http_opts_t){.url = url("/redir/1"),
                                    .stream = true,
                                    .redirects = ML_HTTP_REDIRECT_SAME_HOST},
                  NULL);
  ev = next_event(id, 2000);
  ok(ev && ev->kind == ML_HTTP_HEAD && ev->status == 200,
     "stream HEAD after redirects");
  ev_free(ev);
  ev = next_event(id, 2000);
  IS_STR(ev && ev->kind == ML_HTTP_DATA ? ev->body : NULL, "hello world",
         "stream body");
  ev_free(ev);
  ev = next_event(id, 2000);
  ok(ev && ev->kind == ML_HTTP_END, "stream END");
  ev_free(ev);

  /* A stream that fails before headers gets only END. */
  id = next_id++;
  ml_http_request(
      cl, id,
      &(ml_http_opts_t){.url = url("/slow"), .stream = true, .timeout_ms = 50},
      NULL);
  ev = next_event(id, 2000);
  ok(ev && ev->kind == ML_HTTP_END && ev->err == UV_ETIMEDOUT,
     "failed stream: END only");
  ev_free(ev);
}

/* TLS verification switches, against `openssl s_server -www`. */
static void test_tls(void) {
  char cert[300], key[300], cmd[1024], port_s[16], u[64];
  snprintf(cert, sizeof cert, "%s/cert.pem", tmpdir);
  snprintf(key, sizeof key, "%s/key.pem", tmpdir);
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost "
           "-addext subjectAltName=DNS:localhost -days 1 -keyout %s -out %s "
           ">/dev/null 2>&1",
           key, cert);
  if (system(cmd) != 0) {
    ok(1, "# SKIP tls: no openssl command");
    return;
  }
  int port = free_port();
  snprintf(port_s, sizeof port_s, "%d", port);
  snprintf(u, sizeof u, "https://localhost:%d/", port);
  char *args[] = {"openssl", "s_server", "-quiet", "-www", "-accept", port_s,
                  "-cert",   cert,       "-key",   key,    NULL};
  uv_process_t proc;
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_IGNORE}};
  uv_process_options_t po = {
      .file = "openssl", .args = args, .stdio = stdio, .stdio_count = 3};
  if (uv_spawn(&uv, &proc, &po) < 0) {
    ok(1, "# SKIP tls: cannot start openssl s_server");
    return;
  }
  ml_http_event_t *ev = NULL;
  for (int i = 0; i < 100; i++) { /* until it listens */
    ev = fetch((ml_http_opts_t){.url = u, .insecure = true});
    if (ev && ev->err != UV_ECONNREFUSED) break;
    ev_free(ev);
    ev = NULL;
    uv_sleep(20);
  }
  ok(ev && ev->err == 0 && ev->status == 200,
     "insecure: self-signed accepted (%s)", ev && ev->err ? ev->errmsg : "ok");
  ev_free(ev);
  ev = fetch((ml_http_opts_t){.url = u});
  ok(ev && ev->err == UV_EPROTO, "verified by default: %s",
     ev ? (ev->errmsg ? ev->errmsg : "no error") : "no event");
  ev_free(ev);
  ev = fetch((ml_http_opts_t){.url = u, .ca_file = cert});
  ok(ev && ev->err == 0 && ev->status == 200, "ca_file trusts it (%s)",
     ev && ev->err ? ev->errmsg : "ok");
  ev_free(ev);
  uv_process_kill(&proc, SIGTERM);
  uv_close((uv_handle_t *)&proc, NULL);
  uv_run(&uv, UV_RUN_NOWAIT);
  unlink(cert);
  unlink(key);
}

static void test_reuse(void) {
  int acc0 = srv.accepted;
  ml_http_stats_t st0, st1;
  ml_http_client_stats(cl, &st0);
  int okc = 0;
  for (int i = 0; i < 100; i++) {
    ml_http_event_t *ev = fetch((ml_http_opts_t){.url = url("/hello")});
    okc += ev && ev->status == 200;
    ev_free(ev);
  }
  ml_http_client_stats(cl, &st1);
  IS_INT(okc, 100, "100 sequential TCP requests");
  ok(srv.accepted - acc0 <= 1, "TCP: at most one new connection (%d)",
     srv.accepted - acc0);
  ok(st1.connects - st0.connects <= 1, "client counted the same");

  acc0 = srv.accepted;
  okc = 0;
  for (int i = 0; i < 100; i++) {
    ml_http_event_t *ev = fetch((ml_http_opts_t){
        .url = "http://localhost/hello", .unix_socket = sock_path});
    okc += ev && ev->status == 200;
    ev_free(ev);
  }
  IS_INT(okc, 100, "100 sequential unix socket requests");
  ok(srv.accepted - acc0 <= 1, "unix: at most one new connection (%d)",
     srv.accepted - acc0);

  acc0 = srv.accepted;
  for (int i = 0; i < 3; i++)
    ev_free(fetch((ml_http_opts_t){.url = url("/hello"), .no_reuse = true}));
  IS_INT(srv.accepted - acc0, 3, "no_reuse: a connection per request");

  ev_free(fetch((ml_http_opts_t){.url = url("/hello")})); /* one cached */
  acc0 = srv.accepted;
  for (int i = 0; i < 3; i++) {
    ml_http_event_t *ev = fetch((ml_http_opts_t){.url = url("/close")});
    ok(ev && ev->err == 0 && strcmp(ev->body, "bye") == 0,
       "Connection: close response %d", i);
    ev_free(ev);
  }
  IS_INT(srv.accepted - acc0, 2, "server-closed connections are not reused");
}

/* A prepared URL and header list shared by requests, and the lean
 * (probe) response handling. */
static void test_prepared_lean(void) {
  const char *lines[] = {"X-Custom: prep"};
  ml_http_prepared_t *echo = ml_http_prepare(url("/echo"), lines, 1);
  ok(echo != NULL, "prepare");
  if (!echo) return;
  ml_http_event_t *ev = fetch((ml_http_opts_t){.prepared = echo});
  ok(ev && ev->err == 0 && ev->status == 200, "prepared GET");
  IS_STR(ev ? hdr(ev, "x-got", 0) : NULL, "prep", "prepared header sent");
  IS_STR(ev ? ev->body : NULL, "GET ", "full body without lean");
  ev_free(ev);
  ev = fetch((ml_http_opts_t){.prepared = echo, .lean = true});
  ok(ev && ev->err == 0 && ev->status == 200, "lean GET");
  if (ev) {
    IS_INT((int)ev->nheaders, 0, "lean: no headers captured");
    IS_INT((int)ev->body_len, 0, "lean: 2xx body dropped");
  }
  ev_free(ev);
  ml_http_opts_t post = {.prepared = echo, .method = "POST", .body = "x",
                         .body_len = 1};
  IS_INT(ml_http_request(cl, next_id++, &post, NULL), ML_EINVALID,
         "prepared requests carry no body");

  /* The creator lets go while requests still use it. */
  uint64_t id1 = next_id++, id2 = next_id++;
  ml_http_opts_t o = {.prepared = echo, .no_reuse = true, .lean = true};
  ok(ml_http_request(cl, id1, &o, NULL) == 0 &&
         ml_http_request(cl, id2, &o, NULL) == 0,
     "two requests started");
  ml_http_prepared_free(echo);
  for (uint64_t id = id1; id <= id2; id++) {
    ev = next_event(id, 5000);
    ok(ev && ev->err == 0 && ev->status == 200,
       "request %d outlives the creator's reference", (int)(id - id1 + 1));
    ev_free(ev);
  }

  ml_http_prepared_t *redir = ml_http_prepare(url("/redir/2"), NULL, 0);
  ev = fetch((ml_http_opts_t){.prepared = redir, .lean = true,
                              .redirects = ML_HTTP_REDIRECT_SAME_HOST});
  ok(ev && ev->err == 0 && ev->status == 200 && ev->redirects == 3,
     "lean SAME_HOST follows the Location it kept");
  ev_free(ev);
  ml_http_prepared_free(redir);
  ml_http_prepared_t *off = ml_http_prepare(url("/offhost"), NULL, 0);
  ev = fetch((ml_http_opts_t){.prepared = off, .lean = true,
                              .max_body = 5,
                              .redirects = ML_HTTP_REDIRECT_SAME_HOST});
  ok(ev && ev->err == 0 && ev->status == 302, "lean: 3xx to another host");
  if (ev) {
    IS_STR(ev->body, "moved", "lean: 3xx body kept, up to the cap");
    IS_INT((int)ev->nheaders, 0, "lean: its Location not returned");
  }
  ev_free(ev);
  ml_http_prepared_free(off);

  /* A connection per request, as probes make: every socket leaves the
   * epoll set again, and none is reused. */
  ml_http_prepared_t *hello = ml_http_prepare(url("/hello"), NULL, 0);
  int acc0 = srv.accepted, okc = 0;
  for (int i = 0; i < 50; i++) {
    ev = fetch((ml_http_opts_t){.prepared = hello, .lean = true,
                                .no_reuse = true});
    okc += ev && ev->err == 0 && ev->status == 200;
    ev_free(ev);
  }
  ml_http_prepared_free(hello);
  ml_http_stats_t st;
  ml_http_client_stats(cl, &st);
  IS_INT(okc, 50, "50 fresh-connection requests");
  IS_INT(srv.accepted - acc0, 50, "one connection each");
  IS_INT((int)st.sockets, 0, "no socket left in the set");
  IS_INT(ml_http_request(cl, next_id++, &(ml_http_opts_t){0}, NULL),
         ML_EINVALID, "neither url nor prepared");
}

static void test_parallel(void) {
  enum { N = 500, BOUND = 64 };
  ml_http_client_set_max_inflight(cl, BOUND);
  int acc0 = srv.accepted;
  uint64_t first = next_id;
  for (int i = 0; i < N; i++) {
    const char *u = i % 2 ? url("/hello") : "http://localhost/hello";
    ml_http_request(
        cl, next_id++,
        &(ml_http_opts_t){.url = u, .unix_socket = i % 2 ? NULL : sock_path},
        NULL);
  }
  ml_http_stats_t st;
  ml_http_client_stats(cl, &st);
  IS_INT(st.active, BOUND, "in flight bounded");
  IS_INT(st.queued, N - BOUND, "the rest queued");
  size_t max_active = 0;
  int done = 0, good = 0;
  uint64_t deadline = uv_hrtime() + 20000000000ull;
  uv_timer_start(&waker, on_waker, 20, 20);
  while (done < N && uv_hrtime() < deadline) {
    pump();
    ml_http_client_stats(cl, &st);
    if (st.active > max_active) max_active = st.active;
    ml_event_t *e;
    while ((e = stash_head) != NULL) {
      stash_head = e->next;
      if (!stash_head) stash_tail = NULL;
      ml_http_event_t *ev = (ml_http_event_t *)e;
      if (e->id >= first && e->id < first + N) {
        done++;
        good += ev->err == 0 && ev->status == 200 &&
                strcmp(ev->body, "hello world") == 0;
      }
      ml_event_free(e);
    }
  }
  uv_timer_stop(&waker);
  IS_INT(done, N, "all parallel requests ended");
  IS_INT(good, N, "all succeeded");
  ok(max_active <= BOUND, "never more than %d in flight (%zu)", BOUND,
     max_active);
  ok(srv.accepted - acc0 <= 2 * BOUND,
     "connections reused across the burst (%d new)", srv.accepted - acc0);
  ml_http_client_stats(cl, &st);
  IS_INT(st.active + st.queued, 0, "nothing left in flight");

  /* Cancel a queued request. */
  ml_http_client_set_max_inflight(cl, 1);
  uint64_t a = next_id++, b = next_id++;
  ml_http_req_t *rb;
  ml_http_request(cl, a, &(ml_http_opts_t){.url = url("/hello")}, NULL);
  ml_http_request(cl, b, &(ml_http_opts_t){.url = url("/hello")}, &rb);
  ml_http_client_stats(cl, &st);
  IS_INT(st.queued, 1, "second request queued behind a bound of 1");
  IS_INT(ml_http_cancel(rb), ML_HTTP_CANCELLED, "queued request cancelled");
  ml_http_req_release(rb);
  ml_http_event_t *ev = next_event(b, 2000);
  ok(ev && ev->err == UV_ECANCELED, "it ends with ECANCELED");
  ev_free(ev);
  ev = next_event(a, 2000);
  ok(ev && ev->status == 200, "the running one completes");
  ev_free(ev);
  ml_http_client_set_max_inflight(cl, 0);
}

static void bench(void) {
  enum { N = 5000 };
  uint64_t t0 = uv_hrtime();
  int good = 0;
  for (int i = 0; i < N; i++) {
    ml_http_event_t *ev = fetch((ml_http_opts_t){
        .url = "http://localhost/hello", .unix_socket = sock_path});
    good += ev && ev->status == 200;
    ev_free(ev);
  }
  double s = (double)(uv_hrtime() - t0) / 1e9;
  IS_INT(good, N, "benchmark requests succeeded");
  printf(
      "# bench: %d sequential keep-alive GETs over a unix socket: %.0f req/s "
      "(%.1f us/req, client and server in one thread)\n",
      N, N / s, s * 1e6 / N);
}

static void test_close(void) {
  uint64_t id = next_id++;
  ml_http_request(cl, id, &(ml_http_opts_t){.url = url("/slow")}, NULL);
  ml_http_req_t *held;
  uint64_t id2 = next_id++;
  ml_http_request(cl, id2,
                  &(ml_http_opts_t){.url = url("/forever"), .stream = true},
                  &held);
  uv_run(&uv, UV_RUN_NOWAIT);
  ml_http_client_close(cl);
  cl = NULL;
  ml_http_event_t *ev = next_event(id, 100);
  ok(ev && ev->err == UV_ECANCELED, "close cancels running requests");
  ev_free(ev);
  IS_INT(ml_http_cancel(held), ML_HTTP_UNDELIVERED,
         "a held request survives the client");
  ml_http_req_release(held);
}

/* {====== the Lua binding in-process (ASan covers lhttp.c as well) */

static int l_ok(lua_State *L) {
  ok(lua_toboolean(L, 1), "lua: %s", luaL_optstring(L, 2, "?"));
  return 0;
}

static const char *lua_script =
    "local http = require('moonlet.http')\n"
    "local sched = require('moonlet.sched')\n"
    "local loop = require('moonlet.loop')\n"
    "sched.run(function()\n"
    "  local r = http.request{ url = BASE .. '/hello' }\n"
    "  ok(r and r.status == 200 and r.body == 'hello world', 'request')\n"
    "  ok(r.headers['x-multi'] == 'a, b', 'joined headers')\n"
    "  r = http.request{ url = 'http://localhost/echo', unix_socket = SOCK,\n"
    "    method = 'PUT', body = 'b', headers = { ['X-Custom'] = { 'x', 'y' },\n"
    "    Accept = false } }\n"
    "  ok(r and r.body == 'PUT b' and r.headers['x-got'] == 'x', 'unix + "
    "headers')\n"
    "  local _, err, name = http.request{ url = BASE .. '/slow', timeout_ms = "
    "30 }\n"
    "  ok(name == 'ETIMEDOUT' and err:match('^ETIMEDOUT: '), 'timeout name')\n"
    "  r = http.request{ url = BASE .. '/big', max_body = 100 }\n"
    "  ok(#r.body == 100 and r.truncated, 'max_body')\n"
    "  r = http.request{ url = BASE .. '/offhost', follow_redirects = "
    "'same_host' }\n"
    "  ok(r.status == 302, 'same_host')\n"
    "  local s = assert(http.stream{ url = BASE .. '/stream' })\n"
    "  local n = 0\n"
    "  for line in s:lines() do n = n + 1 end\n"
    "  ok(n == 5 and s.status == 200, 'stream lines')\n"
    "  s = assert(http.stream{ url = BASE .. '/forever' })\n"
    "  ok(s:read() ~= nil, 'endless stream reads')\n"
    "  s:close()\n"
    "  local c, e = s:read()\n"
    "  ok(c == nil and e:match('ECANCELED'), 'read after close')\n"
    "  do local d = assert(http.stream{ url = BASE .. '/forever' }) end\n"
    "  collectgarbage(); collectgarbage()\n"
    "  local done = 0\n"
    "  for i = 1, 40 do\n"
    "    sched.spawn('p', function()\n"
    "      local x = http.request{ url = BASE .. '/hello' }\n"
    "      if x and x.status == 200 then done = done + 1 end\n"
    "    end)\n"
    "  end\n"
    "  while done < 40 do loop.sleep(1) end\n"
    "  ok(done == 40, 'parallel coroutines')\n"
    "  loop.sleep(50)\n"
    "  ok(http.stats().active == 0, 'nothing active')\n"
    "end)\n"
    "local st = sched.stats()\n"
    "ok(st.waiting == 0 and st.pending == 0 and st.handlers == 0, 'sched "
    "clean')\n"
    "ok(require('moonlet.core.runtime').live_refs() == 0, 'no live refs')\n"
    "-- left running on purpose: shutdown must cancel it\n"
    "sched.spawn('left', function()\n"
    "  LEFT = assert(http.stream{ url = BASE .. '/forever' })\n"
    "  LEFT:read()\n"
    "end)\n"
    "require('moonlet.core.runtime').run(function() return LEFT ~= nil end)\n";

static void test_lua(bool runtime_first) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "moonlet_core", luaopen_moonlet_core, 0);
  lua_pop(L, 1);
  ml_runtime_t *rt = ml_runtime_get(L);
  char path[300];
  snprintf(path, sizeof path, "%s/lua.sock", tmpdir);
  srv_t lsrv;
  IS_INT(srv_start(&lsrv, &rt->uv, path), 0,
         "lua: fixture on the runtime loop");
  char b[64];
  snprintf(b, sizeof b, "http://127.0.0.1:%d", lsrv.port);
  lua_pushstring(L, b);
  lua_setglobal(L, "BASE");
  lua_pushstring(L, path);
  lua_setglobal(L, "SOCK");
  lua_pushcfunction(L, l_ok);
  lua_setglobal(L, "ok");
  int rc = luaL_loadstring(L, lua_script);
  if (rc == LUA_OK) rc = ml_lua_pcall(L, 0, 0, "test");
  IS_INT(rc, LUA_OK, "lua: script ran");
  /* The executable's order: runtime first (closes every uv handle), then
   * the state, whose finalizers find the http client orphaned. A plain
   * lua_close (lua5.4 running busted) finalizes the client first. */
  srv_stop(&lsrv);
  if (runtime_first) ml_runtime_close(L);
  lua_close(L);
  unlink(path);
  ok(1, "lua: shutdown with a stream still running (%s)",
     runtime_first ? "runtime closed first" : "lua_close only");
}

/* }====== */

/* {====== libcurl is loaded at the first use */

static bool curl_mapped(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[1024];
  bool found = false;
  while (f && !found && fgets(line, sizeof line, f))
    found = strstr(line, "/libcurl") != NULL;
  if (f) fclose(f);
  return found;
}

/* A Lua program of the runtime that uses the loop, timers, JSON and YAML
 * but no HTTP client: none of that may load libcurl. */
static const char *no_http_script =
    "local loop = require('moonlet.loop')\n"
    "local json = require('moonlet.json')\n"
    "local yaml = require('moonlet.core.yaml')\n"
    "require('moonlet.core.http') -- the module itself is not a use\n"
    "require('moonlet.sched').run(function()\n"
    "  loop.sleep(5)\n"
    "  assert(json.decode(json.encode({ a = 1 })).a == 1)\n"
    "  assert(yaml ~= nil)\n"
    "end)\n";

static void test_lazy_load(void) {
  ok(!curl_mapped(), "lazy: libcurl is not mapped at process start");
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "moonlet_core", luaopen_moonlet_core, 0);
  lua_pop(L, 1);
  int rc = luaL_loadstring(L, no_http_script);
  if (rc == LUA_OK) rc = ml_lua_pcall(L, 0, 0, "test");
  IS_INT(rc, LUA_OK, "lazy: a Lua program without HTTP ran");
  ml_runtime_close(L);
  lua_close(L);
  ok(!curl_mapped(), "lazy: ... and libcurl is still not mapped");
}

/* }====== */

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)s;
  free(b->base);
  if (n < 0) exit(0);
}

static void stdin_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)h;
  *b = uv_buf_init(malloc(hint), (unsigned)hint);
}

/* Fixture mode for the Lua spec: serve until stdin closes. */
static int serve(const char *path, const char *portfile) {
  uv_loop_init(&uv);
  unlink(path);
  if (srv_start(&srv, &uv, path) < 0) return 1;
  uv_pipe_t in;
  uv_pipe_init(&uv, &in, 0);
  if (uv_pipe_open(&in, 0) == 0)
    uv_read_start((uv_stream_t *)&in, stdin_alloc, on_stdin);
  char tmp[512];
  snprintf(tmp, sizeof tmp, "%s.tmp", portfile);
  FILE *f = fopen(tmp, "w");
  if (!f) return 1;
  fprintf(f, "%d\n", srv.port);
  fclose(f);
  rename(tmp, portfile);
  uv_run(&uv, UV_RUN_DEFAULT);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc == 4 && strcmp(argv[1], "--serve") == 0)
    return serve(argv[2], argv[3]);

  snprintf(tmpdir, sizeof tmpdir, "/tmp/ml-httpc-XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  snprintf(sock_path, sizeof sock_path, "%s/s.sock", tmpdir);
  uv_loop_init(&uv);
  ml_loop_init(&loop, &uv);
  uv_timer_init(&uv, &waker);
  IS_INT(srv_start(&srv, &uv, sock_path), 0, "fixture server listening");
  snprintf(base, sizeof base, "http://127.0.0.1:%d", srv.port);
  test_lazy_load();
  cl = ml_http_client_new(&loop, 0);
  ok(cl != NULL, "client created");
  ok(curl_mapped(), "lazy: the first client loaded libcurl");
  ok(ml_curl_loaded() && ml_curl_load() == 0 && !ml_curl_load_error(),
     "lazy: loaded once, no error");

  test_basic();
  test_errors();
  test_body_cap();
  test_redirects();
  test_stream();
  test_tls();
  test_reuse();
  test_prepared_lean();
  test_parallel();
  bench();
  ml_http_stats_t st;
  ml_http_client_stats(cl, &st);
  IS_INT(st.active + st.queued, 0, "idle at the end");
  test_close();

  srv_stop(&srv);
  uv_close((uv_handle_t *)&waker, NULL);
  uv_run(&uv, UV_RUN_DEFAULT);
  ml_event_t *e;
  while ((e = stash_head) != NULL) {
    stash_head = e->next;
    ml_event_free(e);
  }
  ml_loop_close(&loop);
  IS_INT(uv_loop_close(&uv), 0, "uv_loop_close() == 0");
  unlink(sock_path);
  test_lua(true);
  test_lua(false);
  rmdir(tmpdir);
  printf("1..%d\n", ntests);
  return nfailed ? 1 : 0;
}
