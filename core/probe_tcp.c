/* The "tcp" probe kind: the kubelet's tcpSocket check (connect = success,
 * closed at once, nothing written) with uv_tcp_connect and a deadline timer.
 * For custom checks it can also write `send` and read a reply of up to
 * `read_max` bytes (stopping at a newline), returned as the message. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "probe_internal.h"

typedef struct {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t connect;
  uv_write_t write;
  char addr[300]; /* host:port as Go's JoinHostPort */
  char *send;
  size_t send_len;
  size_t read_max;
  char *buf;
  size_t len;
  bool connected;
} tcp_probe_t;

static void errno_text(int err, char *out, size_t n) {
  snprintf(out, n, "%s", strerror(-err));
  if (out[0]) out[0] = (char)tolower((unsigned char)out[0]);
}

static void on_timeout(uv_timer_t *t) {
  ml_probe_t *p = t->data;
  tcp_probe_t *tp = p->data;
  ml_probe_done(p, ML_PROBE_FAILURE, "%s tcp %s: i/o timeout",
                tp->connected ? "read" : "dial", tp->addr);
}

/* The reply is the first line (newline included) or what came before EOF
 * or the read_max cap. */
static void read_done(ml_probe_t *p) {
  tcp_probe_t *tp = p->data;
  size_t n = tp->len;
  const char *nl = tp->buf ? memchr(tp->buf, '\n', n) : NULL;
  if (nl) n = (size_t)(nl - tp->buf) + 1;
  ml_probe_done_bytes(p, ML_PROBE_SUCCESS, tp->buf ? tp->buf : "", n);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  ml_probe_t *p = h->data;
  tcp_probe_t *tp = p->data;
  if (!tp->buf) tp->buf = malloc(tp->read_max + 1);
  if (!tp->buf) {
    *b = uv_buf_init(NULL, 0);
    return;
  }
  *b = uv_buf_init(tp->buf + tp->len, (unsigned)(tp->read_max - tp->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  ml_probe_t *p = s->data;
  tcp_probe_t *tp = p->data;
  if (ml_probe_ended(p)) return;
  if (n == UV_EOF) {
    read_done(p);
    return;
  }
  if (n == UV_ENOBUFS) {
    ml_probe_done(p, ML_PROBE_UNKNOWN, "out of memory");
    return;
  }
  if (n < 0) {
    char text[128];
    errno_text((int)n, text, sizeof text);
    ml_probe_done(p, ML_PROBE_FAILURE, "read tcp %s: read: %s", tp->addr, text);
    return;
  }
  size_t from = tp->len;
  tp->len += (size_t)n;
  tp->buf[tp->len] = '\0';
  if (tp->len >= tp->read_max || memchr(tp->buf + from, '\n', (size_t)n))
    read_done(p);
}

static void on_write(uv_write_t *w, int status) {
  ml_probe_t *p = w->data;
  tcp_probe_t *tp = p->data;
  if (ml_probe_ended(p) || status == 0) return;
  char text[128];
  errno_text(status, text, sizeof text);
  ml_probe_done(p, ML_PROBE_FAILURE, "write tcp %s: write: %s", tp->addr, text);
}

static void on_connect(uv_connect_t *c, int status) {
  ml_probe_t *p = c->data;
  /* ECANCELED: the attempt ended and its handle is closing. */
  if (ml_probe_ended(p) || status == UV_ECANCELED) return;
  tcp_probe_t *tp = p->data;
  if (status < 0) {
    char text[128];
    errno_text(status, text, sizeof text);
    ml_probe_done(p, ML_PROBE_FAILURE, "dial tcp %s: connect: %s", tp->addr,
                  text);
    return;
  }
  tp->connected = true;
  if (!tp->send_len && !tp->read_max) {
    ml_probe_done(p, ML_PROBE_SUCCESS, "%s", "");
    return;
  }
  if (tp->send_len) {
    uv_buf_t b = uv_buf_init(tp->send, (unsigned)tp->send_len);
    tp->write.data = p;
    int rc = uv_write(&tp->write, (uv_stream_t *)&tp->tcp, &b, 1, on_write);
    if (rc < 0) {
      on_write(&tp->write, rc);
      return;
    }
  }
  if (!tp->read_max) {
    ml_probe_done(p, ML_PROBE_SUCCESS, "%s", "");
    return;
  }
  int rc = uv_read_start((uv_stream_t *)&tp->tcp, on_alloc, on_read);
  if (rc < 0) on_read((uv_stream_t *)&tp->tcp, rc, NULL);
}

/* Parses host (an IP literal or "localhost"; empty: 127.0.0.1). */
static int parse_addr(const char *host, int port, struct sockaddr_storage *ss) {
  if (!host || !*host || strcmp(host, "localhost") == 0) host = "127.0.0.1";
  if (port < 1 || port > 65535) return ML_EINVALID;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 0;
  const char *h = host;
  char tmp[64];
  size_t n = strlen(host);
  if (h[0] == '[' && n > 2 && n < sizeof tmp + 2 && h[n - 1] == ']') {
    memcpy(tmp, h + 1, n - 2);
    tmp[n - 2] = '\0';
    h = tmp;
  }
  if (uv_ip6_addr(h, port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return ML_EINVALID;
}

static int tcp_start(ml_probe_t *p, const ml_probe_params_t *o) {
  struct sockaddr_storage ss;
  if (parse_addr(o->host, o->port, &ss) < 0) return ML_EINVALID;
  tcp_probe_t *tp = calloc(1, sizeof *tp);
  if (!tp) return ML_ENOMEM;
  p->data = tp;
  const char *host = o->host && *o->host ? o->host : "127.0.0.1";
  bool v6 = strchr(host, ':') && host[0] != '[';
  snprintf(tp->addr, sizeof tp->addr, v6 ? "[%s]:%d" : "%s:%d", host, o->port);
  if (o->send_len) {
    tp->send = malloc(o->send_len);
    if (!tp->send) return ML_ENOMEM;
    memcpy(tp->send, o->send, o->send_len);
    tp->send_len = o->send_len;
  }
  tp->read_max = o->read_max > ML_PROBE_MAX_OUTPUT ? ML_PROBE_MAX_OUTPUT
                                                   : o->read_max;
  uv_loop_t *uv = ml_probe_uv(p);
  int rc = uv_tcp_init(uv, &tp->tcp);
  if (rc < 0) return rc;
  ml_probe_own(p, (uv_handle_t *)&tp->tcp);
  uv_timer_init(uv, &tp->timer);
  ml_probe_own(p, (uv_handle_t *)&tp->timer);
  tp->connect.data = p;
  rc = uv_tcp_connect(&tp->connect, &tp->tcp, (struct sockaddr *)&ss,
                      on_connect);
  if (rc < 0) {
    char text[128];
    errno_text(rc, text, sizeof text);
    ml_probe_done(p, ML_PROBE_FAILURE, "dial tcp %s: connect: %s", tp->addr,
                  text);
    return 0;
  }
  if (p->timeout_ms) uv_timer_start(&tp->timer, on_timeout, p->timeout_ms, 0);
  return 0;
}

static void tcp_destroy(ml_probe_t *p) {
  tcp_probe_t *tp = p->data;
  if (!tp) return;
  free(tp->send);
  free(tp->buf);
  free(tp);
}

/* Cancelling needs nothing beyond what the runner does: closing the owned
 * handles aborts the connect, the write and the read. */
static void tcp_cancel(ml_probe_t *p) { (void)p; }

const ml_probe_kind_t ml__probe_tcp = {
    .name = "tcp",
    .start = tcp_start,
    .cancel = tcp_cancel,
    .destroy = tcp_destroy,
};
