/* Integration tests of the HTTP server (core/http_server.c) on a real libuv
 * loop: the main thread runs the server with a C responder in place of Lua,
 * client threads talk to it over loopback TCP and a unix socket with plain
 * blocking sockets. Covers keep-alive, pipelining order, chunked requests,
 * 100-continue, 413/400, socket mode, peer close -> CLOSED, streaming,
 * idle timeout, graceful stop and a clean uv_loop_close(). Also prints a
 * requests/s figure for a trivial responder (16 connections in flight). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "http_server.h"

#include "tap.h"

/* {====== server side (main thread) */

typedef struct {
  ml_loop_t loop;
  ml_httpd_t *srv;
  ml_httpd_listener_t *tcp, *unix_l;
  uv_async_t wake;
  uv_timer_t timer;
  int port;
  char sock_path[108];
  /* shared with the client thread */
  atomic_int client_done;
  atomic_int shutdown_asked;
  atomic_ullong hold_id;  /* last /hold request */
  atomic_ullong closed_id; /* last CLOSED event */
  atomic_int stream_hold_closed;
  atomic_ullong stream_hold_started;
  atomic_ullong flood_done;
  atomic_int transport_unix;
  /* main-thread only */
  bool shut;
  uint64_t delayed_id; /* answered by the timer */
  uint64_t stream_id;
  uint64_t stream_hold_id;
  uint64_t held_for_shutdown;
} server_t;

static server_t S;

static void respond_str(uint64_t id, int status, const char *body) {
  ml_http_field_t h = {"Content-Type", 12, "text/plain", 10};
  int rc = ml_httpd_respond(S.srv, id, status, &h, 1, body, strlen(body));
  if (rc < 0) fprintf(stderr, "# respond %llu: %s\n", (unsigned long long)id,
                      ml_strerror(rc));
}

static void on_timer(uv_timer_t *t) {
  (void)t;
  if (S.delayed_id) {
    respond_str(S.delayed_id, 200, "delayed");
    S.delayed_id = 0;
  }
  if (S.stream_id) {
    /* "two" as one chunk of three pieces (an empty one among them), the
     * way watch frames are written around a shared object text. */
    uv_buf_t parts[3] = {uv_buf_init("t", 1), uv_buf_init("", 0),
                         uv_buf_init("wo", 2)};
    long rc = ml_httpd_stream_writev(S.srv, S.stream_id, parts, 3);
    OK(rc >= 3, "stream_writev queues the pieces (%ld)", rc);
    ml_httpd_stream_end(S.srv, S.stream_id);
    S.stream_id = 0;
  }
  if (S.held_for_shutdown) {
    respond_str(S.held_for_shutdown, 200, "late answer");
    S.held_for_shutdown = 0;
  }
}

static bool path_is(const ml_httpd_request_t *r, const char *p) {
  return strcmp(r->path, p) == 0;
}

static void handle_request(ml_httpd_request_t *r) {
  uint64_t id = r->req_id;
  if (path_is(r, "/b")) {
    respond_str(id, 200, "ok");
  } else if (path_is(r, "/echo")) {
    char body[8192];
    const ml_http_field_t *te = NULL;
    for (size_t i = 0; i < r->nfields; i++)
      if (strcmp(r->fields[i].name, "transfer-encoding") == 0) te = &r->fields[i];
    snprintf(body, sizeof body, "%s %s?%s|%s|%s|%s", r->method, r->path,
             r->query, r->transport, te ? te->value : "-",
             r->body_len < 4000 ? r->body : "(big)");
    if (strcmp(r->transport, "unix") == 0) atomic_store(&S.transport_unix, 1);
    respond_str(id, 200, body);
  } else if (path_is(r, "/delay")) {
    S.delayed_id = id;
    uv_timer_start(&S.timer, on_timer, 30, 0);
  } else if (path_is(r, "/stream")) {
    ml_http_field_t h = {"Content-Type", 12, "application/json", 16};
    ml_httpd_stream_begin(S.srv, id, 200, &h, 1);
    ml_httpd_stream_write(S.srv, id, "one", 3);
    S.stream_id = id;
    uv_timer_start(&S.timer, on_timer, 20, 0);
  } else if (path_is(r, "/stream-hold")) {
    ml_httpd_stream_begin(S.srv, id, 200, NULL, 0);
    ml_httpd_stream_write(S.srv, id, "open", 4);
    S.stream_hold_id = id;
    atomic_store(&S.stream_hold_started, id);
  } else if (path_is(r, "/flood")) {
    /* A peer that reads nothing: the stream is cut, not buffered forever. */
    static char mb[1 << 20];
    ml_httpd_stream_begin(S.srv, id, 200, NULL, 0);
    long rc = 0;
    int i;
    for (i = 0; i < 64 && rc >= 0; i++)
      rc = ml_httpd_stream_write(S.srv, id, mb, sizeof mb);
    OK(rc == ML_ECLOSED && i <= 17, "stream cut at 16 MiB behind (%d MiB)", i);
    atomic_store(&S.flood_done, 1);
  } else if (path_is(r, "/hold")) {
    atomic_store(&S.hold_id, id);
  } else if (path_is(r, "/hold-shutdown")) {
    S.held_for_shutdown = id;
    atomic_store(&S.hold_id, id);
  } else if (path_is(r, "/bad-header")) {
    ml_http_field_t h = {"X-Evil", 6, "a\r\nSet-Cookie: x", 16};
    int rc = ml_httpd_respond(S.srv, id, 200, &h, 1, "", 0);
    OK(rc == ML_EINVALID, "header injection refused");
    respond_str(id, 200, "clean");
  } else {
    respond_str(id, 404, "not found");
  }
}

static void responder(ml_loop_t *loop, void *ud) {
  (void)ud;
  ml_event_t *ev;
  while ((ev = ml_loop_pop(loop)) != NULL) {
    if (ev->type == ML_EV_HTTPD_REQUEST) {
      handle_request((ml_httpd_request_t *)ev);
    } else if (ev->type == ML_EV_HTTPD_CLOSED) {
      uint64_t id = ((ml_httpd_closed_t *)ev)->req_id;
      if (id == S.stream_hold_id) {
        /* The listener is going away: end the stream like a watch would. */
        OK(ml_httpd_stream_end(S.srv, id) == 0, "stream ended after CLOSED");
        atomic_store(&S.stream_hold_closed, 1);
      }
      if (id == atomic_load(&S.hold_id)) {
        /* What the Lua facade does: the handler still finishes. */
        ml_http_field_t h = {"X", 1, "y", 1};
        OK(ml_httpd_respond(S.srv, id, 200, &h, 1, "gone", 4) == 0,
           "a request whose peer left can still be answered");
        OK(ml_httpd_respond(S.srv, id, 200, &h, 1, "gone", 4) == ML_ENOTFOUND,
           "but only once");
      }
      atomic_store(&S.closed_id, id);
    }
    ml_event_free(ev);
  }
  if (atomic_load(&S.shutdown_asked) && !S.shut) {
    S.shut = true;
    ml_httpd_listener_close(S.tcp);
    ml_httpd_listener_close(S.unix_l);
    /* An unanswered request may still be answered after the close. */
    uv_timer_start(&S.timer, on_timer, 50, 0);
  }
}

static void on_wake(uv_async_t *a) { (void)a; }

static bool client_finished(void *ud) {
  (void)ud;
  return atomic_load(&S.client_done);
}

/* }====== */

/* {====== client side (blocking sockets) */

typedef struct {
  int fd;
  char buf[1 << 16];
  size_t len;
} cli_t;

typedef struct {
  int status;
  char head[4096];
  char body[1 << 16];
  size_t body_len;
  bool chunked, close;
} resp_t;

static void ms_sleep(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void set_timeout(int fd, int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

static int connect_tcp(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  set_timeout(fd, 5000);
  return fd;
}

static int connect_unix(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  set_timeout(fd, 5000);
  return fd;
}

static void cli_open(cli_t *c, int fd) {
  c->fd = fd;
  c->len = 0;
}

static bool send_all(int fd, const char *s, size_t n) {
  while (n) {
    ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    s += w;
    n -= (size_t)w;
  }
  return true;
}

static bool send_str(cli_t *c, const char *s) { return send_all(c->fd, s, strlen(s)); }

/* Makes `want` bytes available in c->buf. @return false on EOF/timeout. */
static bool fill(cli_t *c, size_t want) {
  while (c->len < want) {
    if (c->len == sizeof c->buf) return false;
    ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (r <= 0) return false;
    c->len += (size_t)r;
  }
  return true;
}

static void consume(cli_t *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
}

static char *find_crlf2(cli_t *c) {
  for (size_t i = 0; i + 3 < c->len; i++)
    if (memcmp(c->buf + i, "\r\n\r\n", 4) == 0) return c->buf + i;
  return NULL;
}

static const char *head_field(const resp_t *r, const char *name) {
  static __thread char val[256];
  size_t n = strlen(name);
  for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
    if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
      const char *v = p + 3 + n;
      while (*v == ' ') v++;
      size_t k = strcspn(v, "\r");
      if (k >= sizeof val) k = sizeof val - 1;
      memcpy(val, v, k);
      val[k] = '\0';
      return val;
    }
  }
  return NULL;
}

/* Reads one response (Content-Length or chunked). @return false on error. */
static bool read_response(cli_t *c, resp_t *r) {
  memset(r, 0, sizeof *r);
  char *end;
  while ((end = find_crlf2(c)) == NULL)
    if (!fill(c, c->len + 1)) return false;
  size_t hlen = (size_t)(end - c->buf) + 4;
  if (hlen >= sizeof r->head) return false;
  memcpy(r->head, c->buf, hlen);
  r->head[hlen] = '\0';
  consume(c, hlen);
  r->status = atoi(r->head + 9);
  const char *conn = head_field(r, "Connection");
  r->close = conn && strcasecmp(conn, "close") == 0;
  const char *te = head_field(r, "Transfer-Encoding");
  r->chunked = te && strcasecmp(te, "chunked") == 0;
  if (r->status == 100) return true;
  if (r->chunked) {
    for (;;) {
      char *nl;
      while ((nl = memchr(c->buf, '\n', c->len)) == NULL)
        if (!fill(c, c->len + 1)) return false;
      size_t size = strtoul(c->buf, NULL, 16);
      consume(c, (size_t)(nl - c->buf) + 1);
      if (!fill(c, size + 2)) return false;
      if (r->body_len + size >= sizeof r->body) return false;
      memcpy(r->body + r->body_len, c->buf, size);
      r->body_len += size;
      consume(c, size + 2);
      if (size == 0) break;
    }
  } else {
    const char *cl = head_field(r, "Content-Length");
    size_t n = cl ? strtoul(cl, NULL, 10) : 0;
    if (n >= sizeof r->body || !fill(c, n)) return false;
    memcpy(r->body, c->buf, n);
    r->body_len = n;
    consume(c, n);
  }
  r->body[r->body_len] = '\0';
  return true;
}

/* @return true when the server closed the connection (EOF, not timeout). */
static bool peer_closed(cli_t *c, int timeout_ms) {
  set_timeout(c->fd, timeout_ms);
  char b[256];
  for (;;) {
    ssize_t r = recv(c->fd, b, sizeof b, 0);
    if (r == 0) return true;
    if (r < 0) return false;
  }
}

static bool wait_flag(atomic_ullong *v, unsigned long long want, int ms) {
  for (int i = 0; i < ms; i++) {
    unsigned long long x = atomic_load(v);
    if (want ? x == want : x != 0) return true;
    ms_sleep(1);
  }
  return false;
}

/* }====== */

/* {====== scenarios */

static void t_keep_alive(void) {
  cli_t *c = calloc(1, sizeof *c);
  resp_t *r = calloc(1, sizeof *r);
  cli_open(c, connect_tcp(S.port));
  OK(c->fd >= 0, "tcp connect");
  for (int i = 0; i < 3; i++) {
    send_str(c, "GET /echo?i=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    bool ok = read_response(c, r);
    OK(ok && r->status == 200 && strcmp(r->body, "GET /echo?i=1|tcp|-|") == 0 &&
           !r->close && head_field(r, "Date"),
       "keep-alive request %d on one connection (%s)", i, r->body);
  }
  send_str(c, "GET /nothing HTTP/1.1\r\n\r\n");
  OK(read_response(c, r) && r->status == 404 &&
         strstr(r->head, "HTTP/1.1 404 Not Found\r\n") == r->head,
     "status line with reason");
  send_str(c, "HEAD /echo HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
  /* The HEAD answer announces a length but carries no body, so the next
   * response follows its head directly. */
  while (!find_crlf2(c)) fill(c, c->len + 1);
  OK(strncmp(c->buf, "HTTP/1.1 200 OK\r\n", 17) == 0 &&
         strstr(c->buf, "Content-Length: 18\r\n"),
     "HEAD: length announced");
  consume(c, (size_t)(find_crlf2(c) - c->buf) + 4);
  OK(read_response(c, r) && strcmp(r->body, "ok") == 0, "HEAD: no body sent");
  send_str(c, "GET /bad-header HTTP/1.1\r\n\r\n");
  OK(read_response(c, r) && strcmp(r->body, "clean") == 0 &&
         !strstr(r->head, "Set-Cookie"),
     "answer after a refused header");
  close(c->fd);
  free(c);
  free(r);
}

static void t_pipelining(void) {
  cli_t *c = calloc(1, sizeof *c);
  resp_t *r = calloc(1, sizeof *r);
  cli_open(c, connect_tcp(S.port));
  send_str(c,
           "GET /echo?n=1 HTTP/1.1\r\n\r\n"
           "GET /delay HTTP/1.1\r\n\r\n"
           "POST /echo?n=3 HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"
           "POST /echo?n=4 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
           "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  const char *want[] = {"GET /echo?n=1|tcp|-|", "delayed",
                        "POST /echo?n=3|tcp|-|body",
                        "POST /echo?n=4|tcp|chunked|abcde"};
  for (int i = 0; i < 4; i++) {
    bool ok = read_response(c, r);
    OK(ok && strcmp(r->body, want[i]) == 0, "pipelined answer %d in order (%s)",
       i + 1, r->body);
  }
  close(c->fd);
  free(c);
  free(r);
}

static void t_continue(void) {
  cli_t *c = calloc(1, sizeof *c);
  resp_t *r = calloc(1, sizeof *r);
  cli_open(c, connect_tcp(S.port));
  send_str(c, "PUT /echo HTTP/1.1\r\nContent-Length: 5\r\n"
              "Expect: 100-continue\r\n\r\n");
  OK(read_response(c, r) && r->status == 100, "100 Continue before the body");
  send_str(c, "hello");
  OK(read_response(c, r) && strcmp(r->body, "PUT /echo?|tcp|-|hello") == 0,
     "then the answer");
  close(c->fd);
  free(c);
  free(r);
}

static void t_errors(void) {
  cli_t *c = calloc(1, sizeof *c);
  resp_t *r = calloc(1, sizeof *r);
  cli_open(c, connect_tcp(S.port));
  send_str(c, "PUT /echo HTTP/1.1\r\nContent-Length: 4000000\r\n"
              "Content-Type: application/json\r\n\r\n");
  /* Some body bytes, as a client that does not wait would send. */
  char junk[8192];
  memset(junk, 'x', sizeof junk);
  send_all(c->fd, junk, sizeof junk);
  bool ok = read_response(c, r);
  OK(ok && r->status == 413 && r->close, "413 with Connection: close");
  OK(strcmp(r->body,
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
            "\"status\":\"Failure\",\"message\":\"Request entity too large: "
            "limit is 3145728\",\"reason\":\"RequestEntityTooLarge\","
            "\"code\":413}") == 0,
     "413 body is the Kubernetes Status");
  OK(strcmp(head_field(r, "Content-Type"), "application/json") == 0,
     "413 content type");
  OK(peer_closed(c, 3000), "connection closed after 413");
  close(c->fd);

  cli_open(c, connect_tcp(S.port));
  size_t hn = 1100 * 1024;
  char *huge = malloc(hn);
  memset(huge, 'a', hn);
  send_str(c, "GET / HTTP/1.1\r\nX-Huge: ");
  send_all(c->fd, huge, hn); /* read and dropped while the server lingers */
  free(huge);
  OK(read_response(c, r) && r->status == 431 && r->close,
     "header block over 1 MiB: 431 (%d)", r->status);
  OK(peer_closed(c, 3000), "connection closed after 431");
  close(c->fd);

  cli_open(c, connect_tcp(S.port));
  send_str(c, "THIS IS NOT HTTP\r\n\r\n");
  OK(read_response(c, r) && r->status == 400 && r->close, "malformed: 400");
  OK(peer_closed(c, 3000), "connection closed after 400");
  close(c->fd);

  cli_open(c, connect_tcp(S.port));
  send_str(c, "GET /echo HTTP/1.0\r\n\r\n");
  OK(read_response(c, r) && r->status == 200 && r->close, "HTTP/1.0: close");
  OK(peer_closed(c, 3000), "HTTP/1.0 connection closed");
  close(c->fd);
  free(c);
  free(r);
}

static void t_unix(void) {
  struct stat st;
  OK(stat(S.sock_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
         (st.st_mode & 0777) == 0600,
     "unix socket mode 0600 (%o)", st.st_mode & 0777);
  cli_t *c = calloc(1, sizeof *c);
  resp_t *r = calloc(1, sizeof *r);
  cli_open(c, connect_unix(S.sock_path));
  OK(c->fd >= 0, "unix connect");
  send_str(c, "GET /echo?u=1 HTTP/1.1\r\n\r\n");
  OK(read_response(c, r) && strcmp(r->body, "GET /echo?u=1|unix|-|") == 0,
     "request over the unix socket");
  close(c->fd);
  free(c);
  free(r);
}

static void t_stream(void) {
  cli_t *c = calloc(1, sizeof *c);
  resp_t *r = calloc(1, sizeof *r);
  cli_open(c, connect_tcp(S.port));
  send_str(c, "GET /stream HTTP/1.1\r\n\r\n");
  bool ok = read_response(c, r);
  OK(ok && r->chunked && strcmp(r->body, "onetwo") == 0 &&
         !head_field(r, "Content-Length"),
     "chunked stream in two writes (%s)", r->body);
  send_str(c, "GET /echo HTTP/1.1\r\n\r\n");
  OK(read_response(c, r) && r->status == 200, "keep-alive after a stream");
  close(c->fd);
  free(c);
  free(r);
}

static void t_peer_close(void) {
  cli_t *c = calloc(1, sizeof *c);
  cli_open(c, connect_tcp(S.port));
  atomic_store(&S.hold_id, 0);
  send_str(c, "GET /hold HTTP/1.1\r\n\r\n");
  OK(wait_flag(&S.hold_id, 0, 3000), "held request reached the responder");
  unsigned long long id = atomic_load(&S.hold_id);
  close(c->fd);
  OK(wait_flag(&S.closed_id, id, 3000), "peer close -> CLOSED for the request");
  free(c);
}

static void t_flood(void) {
  cli_t *c = calloc(1, sizeof *c);
  cli_open(c, connect_tcp(S.port));
  send_str(c, "GET /flood HTTP/1.1\r\n\r\n");
  OK(wait_flag(&S.flood_done, 0, 3000), "flooding stream handled");
  OK(peer_closed(c, 3000), "its connection closed");
  close(c->fd);
  free(c);
}

static void t_idle(void) {
  cli_t *c = calloc(1, sizeof *c);
  cli_open(c, connect_tcp(S.port));
  OK(peer_closed(c, 3000), "idle connection times out");
  close(c->fd);
  free(c);
}

static void t_shutdown(void) {
  cli_t *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b),
        *s = calloc(1, sizeof *s);
  resp_t *r = calloc(1, sizeof *r);
  cli_open(b, connect_tcp(S.port)); /* stays idle after one request */
  send_str(b, "GET /echo HTTP/1.1\r\n\r\n");
  read_response(b, r);
  cli_open(s, connect_unix(S.sock_path));
  send_str(s, "GET /stream-hold HTTP/1.1\r\n\r\n");
  OK(wait_flag(&S.stream_hold_started, 0, 3000), "stream started");
  cli_open(a, connect_tcp(S.port));
  atomic_store(&S.hold_id, 0);
  send_str(a, "GET /hold-shutdown HTTP/1.1\r\n\r\n");
  OK(wait_flag(&S.hold_id, 0, 3000), "request in flight before the stop");
  atomic_store(&S.shutdown_asked, 1);
  uv_async_send(&S.wake);
  OK(peer_closed(b, 3000), "idle connection closed at stop");
  OK(read_response(a, r) && strcmp(r->body, "late answer") == 0 && r->close,
     "in-flight request still answered, with Connection: close (%d %s)", r->status, r->body);
  OK(peer_closed(a, 3000), "then its connection closes");
  OK(read_response(s, r) && strcmp(r->body, "open") == 0 &&
         atomic_load(&S.stream_hold_closed),
     "stream told CLOSED, ended cleanly");
  OK(peer_closed(s, 3000), "stream connection closed");
  OK(connect_tcp(S.port) < 0, "no new connections");
  struct stat st;
  OK(stat(S.sock_path, &st) < 0, "unix socket file removed");
  close(a->fd);
  close(b->fd);
  close(s->fd);
  free(a);
  free(b);
  free(s);
  free(r);
}

/* }====== */

/* {====== benchmark: 16 keep-alive connections, one request in flight each */

static int bench_n;

static void *bench_thread(void *arg) {
  (void)arg;
  cli_t *c = calloc(1, sizeof *c);
  resp_t *r = calloc(1, sizeof *r);
  cli_open(c, connect_unix(S.sock_path));
  long ok = 0;
  for (int i = 0; i < bench_n; i++) {
    if (!send_str(c, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n") || !read_response(c, r))
      break;
    ok += r->status == 200;
  }
  close(c->fd);
  free(c);
  free(r);
  return (void *)ok;
}

/* @return requests answered by 16 threads doing bench_n requests each. */
static long bench_run(double *secs) {
  pthread_t th[16];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < 16; i++) pthread_create(&th[i], NULL, bench_thread, NULL);
  long total = 0;
  for (int i = 0; i < 16; i++) {
    void *ret;
    pthread_join(th[i], &ret);
    total += (long)ret;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  *secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  return total;
}

static void t_bench(void) {
  const char *env = getenv("ML_BENCH_N");
  bench_n = env ? atoi(env) : 1000;
  double s;
  long total = bench_run(&s);
  printf("# bench: %ld requests over unix socket, 16 in flight: %.0f req/s\n",
         total, (double)total / s);
  OK(total == 16L * bench_n, "every benchmark request answered");
}

/* }====== */

static void *client_main(void *arg) {
  (void)arg;
  t_bench();
  t_keep_alive();
  t_pipelining();
  t_continue();
  t_errors();
  t_unix();
  t_stream();
  t_peer_close();
  t_flood();
  t_idle();
  t_shutdown();
  atomic_store(&S.client_done, 1);
  uv_async_send(&S.wake);
  return NULL;
}

static void walk_report(uv_handle_t *h, void *arg) {
  (void)arg;
  fprintf(stderr, "# leftover handle %s\n", uv_handle_type_name(h->type));
}

/* Re-exec helper for the Lua spec: `--bench-client PATH N` drives a
 * server on unix socket PATH and prints "<answered> <seconds>". */
static int bench_client(const char *path, int n) {
  snprintf(S.sock_path, sizeof S.sock_path, "%s", path);
  bench_n = n;
  double s;
  long total = bench_run(&s);
  printf("%ld %.6f\n", total, s);
  return total == 16L * n ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--bench-client") == 0)
    return bench_client(argv[2], atoi(argv[3]));
  uv_loop_t uv;
  uv_loop_init(&uv);
  ml_loop_init(&S.loop, &uv);
  /* The responder plays the Lua drain hook: it runs before the flush. */
  ml_loop_add_hook(&S.loop, responder, NULL);
  ml_httpd_opts_t opts = {.idle_timeout_ms = 400, .shutdown_grace_ms = 3000};
  OK(ml_httpd_new(&S.loop, &opts, &S.srv) == 0, "server created");

  char dir[] = "/tmp/ml-httpd-XXXXXX";
  OK(mkdtemp(dir) != NULL, "temp dir");
  snprintf(S.sock_path, sizeof S.sock_path, "%s/api.sock", dir);
  /* A stale socket file from an earlier run must not stop us. */
  int stale = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", S.sock_path);
  bind(stale, (struct sockaddr *)&a, sizeof a);
  close(stale);

  int rc = ml_httpd_listen(S.srv, "tcp://127.0.0.1:0", 0, 7, &S.tcp);
  OK(rc == 0, "tcp listen (%s)", rc ? ml_strerror(rc) : "");
  S.port = S.tcp ? ml_httpd_listener_port(S.tcp) : 0;
  OK(S.port > 0, "bound port reported (%d)", S.port);
  char want[64];
  snprintf(want, sizeof want, "tcp://127.0.0.1:%d", S.port);
  OK(S.tcp && strcmp(ml_httpd_listener_url(S.tcp), want) == 0, "url has the port");
  char url[160];
  snprintf(url, sizeof url, "unix:%s", S.sock_path);
  rc = ml_httpd_listen(S.srv, url, 0, 8, &S.unix_l);
  OK(rc == 0, "unix listen over a stale socket file (%s)", rc ? ml_strerror(rc) : "");
  ml_httpd_listener_t *bad;
  OK(ml_httpd_listen(S.srv, "http://x", 0, 9, &bad) == ML_EINVALID && !bad,
     "bad url refused");
  OK(ml_httpd_listen(S.srv, "tcp://nohost:1", 0, 9, &bad) == ML_EINVALID,
     "unresolvable host refused");
  int busy = ml_httpd_listen(S.srv, want, 0, 9, &bad);
  OK(busy == UV_EADDRINUSE, "port in use reported (%s)", ml_err_name(busy));

  uv_async_init(&uv, &S.wake, on_wake);
  uv_timer_init(&uv, &S.timer);
  pthread_t client;
  pthread_create(&client, NULL, client_main, NULL);
  ml_loop_run(&S.loop, client_finished, NULL);
  pthread_join(client, NULL);

  ml_httpd_stats_t st = ml_httpd_stats(S.srv);
  OK(st.listeners == 0 && st.requests == 0 && st.streams == 0,
     "nothing open after the stop (l=%zu r=%zu s=%zu c=%zu)", st.listeners,
     st.requests, st.streams, st.connections);
  OK(st.served >= 16ull * (unsigned)bench_n, "served count (%llu)", (unsigned long long)st.served);
  ml_httpd_free(S.srv);
  uv_close((uv_handle_t *)&S.wake, NULL);
  uv_close((uv_handle_t *)&S.timer, NULL);
  while (uv_run(&uv, UV_RUN_NOWAIT)) ml_loop_run_hooks(&S.loop);
  ml_loop_run_hooks(&S.loop); /* the flush hook is now a no-op */
  ml_loop_close(&S.loop);
  rc = uv_loop_close(&uv);
  if (rc) uv_walk(&uv, walk_report, NULL);
  OK(rc == 0, "uv_loop_close() == 0");
  rmdir(dir);
  return tap_done();
}
