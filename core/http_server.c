/* HTTP/1.1 server on libuv (see http_server.h). Each connection owns a read
 * buffer, a parser and an output buffer, all reused across its requests. A
 * connection is in one of four states:
 *
 *   READING ──request complete──► WAITING ──respond()──────► READING
 *      ▲                             └─stream_begin()─► STREAMING
 *      └────────────────────────────────stream_end()──────┘
 *   (CLOSING: shut down for writing, draining input until the peer closes)
 *
 * Bytes of a next (pipelined) request wait in the read buffer until the
 * current response has been handed to the kernel, so answers keep order.
 * Output is produced into `out` at any time and written by ml_httpd_flush(),
 * the loop's end-of-turn hook: uv_try_write first, uv_write for the rest.
 *
 * A TLS connection (core/tls.h) reads ciphertext into a shared scratch
 * buffer and decrypts it into `in`, so the parser sees plaintext; at flush
 * `out` is encrypted into `cout`, which is then written in place of `out`.
 * Handshake records join `cout` as they appear and go out at the same flush.
 * Plain connections never touch either path.
 *
 * With a durability gate (core/durable.h, ml_httpd_set_durable) a byte
 * leaves only once every commit made up to the end of the turn that produced
 * it is on disk: the flush hook gives the turn's new bytes of `out` the
 * gate's sequence; those already covered go at once (no sync pending: the
 * same turn, as without a gate), the rest wait in `out` behind `ok` until
 * the gate's watcher releases them. Held bytes count as output, so the next
 * pipelined request, a close_after and TLS sealing all wait behind them.
 *
 *   out: [ ok: may go | held: seq a | held: seq b | produced this turn ]
 *
 * An upgraded connection (WS, ml_httpd_ws_accept) no longer parses HTTP:
 * its input goes through the frame decoder (core/ws_frame.h) to the
 * session's callbacks, its output is frames in `out`, flushed as above. A
 * close (ours or the peer's) ends the session and leads into CLOSING.
 */
#include "http_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "durable.h"
#include "err.h"
#include "log.h"
#include "ws_frame.h"

#define READ_CHUNK 65536
#define PIPELINE_MAX (1024 * 1024) /* unparsed bytes kept while busy */
#define LINGER_MS 2000             /* drain time after an error answer */
#define STREAM_MAX_PENDING (16 * 1024 * 1024) /* a watcher this far behind is cut */
#define SLOT_BITS 24
#define SLOT_MASK ((1u << SLOT_BITS) - 1)

enum { C_READING, C_WAITING, C_STREAMING, C_CLOSING, C_WS };

/* A WebSocket session's state, made by ml_httpd_ws_accept. */
typedef struct {
  ml_ws_decoder_t dec;
  ml_httpd_ws_ops_t ops;
  void *ud;
  bool ended;      /* on_end ran (or the owner detached) */
  bool close_sent; /* our close frame is queued */
  bool paused;     /* the consumer wants no messages for now */
  bool want_drain; /* a send left a backlog: on_drain once it is out */
  bool kick;       /* input arrived before the upgrade: decode at flush */
} ws_t;

typedef struct {
  char *data;
  size_t len, cap;
} buf_t;

typedef union {
  uv_handle_t h;
  uv_stream_t s;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
} stream_u;

typedef struct conn_s conn_t;

struct ml_httpd_listener_s {
  stream_u u;
  ml_httpd_t *srv;
  ml_httpd_listener_t *prev, *next;
  bool is_unix;
  bool closing;
  bool handle_closed;
  bool created; /* the socket file is ours to remove */
  ml_tls_ctx_t *tls; /* TLS listener: one reference held */
  int port;
  uint64_t ev_id;
  size_t nconns;
  uint64_t grace_deadline;
  char *path; /* unix socket file, removed on close */
  char url[160];
};

struct conn_s {
  stream_u u;
  ml_httpd_t *srv;
  ml_httpd_listener_t *lst;
  conn_t *prev, *next;   /* srv->conns */
  conn_t *dprev, *dnext; /* srv->dirty: output waiting for the flush hook */
  bool dirty;
  ml_http_parser_t *parser;
  char *in;
  size_t in_off, in_len, in_cap;
  buf_t out;  /* produced, not yet written */
  /* Durability: the first `ok` bytes of `out` may go; up to `marked` the
   * rest waits in `hold` (ends ascending) for the gate to cover its seq. */
  size_t ok, marked;
  struct {
    size_t end;
    uint64_t seq;
  } hold[2];
  int nhold;
  buf_t wbuf; /* handed to uv_write */
  ml_tls_t *tls; /* TLS session, NULL for plain connections */
  buf_t cout;    /* TLS: ciphertext not yet handed to libuv */
  bool sniffed;  /* TLS: the first byte was looked at */
  bool said_bye; /* TLS: close_notify queued */
  uv_write_t wreq;
  uv_shutdown_t sreq;
  bool writing;
  int state;
  uint64_t req_id;
  uint32_t slot;
  bool is_head;
  bool keep_alive; /* of the current request */
  bool close_after; /* close once the current response is written */
  bool peer_eof;
  bool reading;
  bool closing; /* uv_close called */
  bool notified; /* CLOSED posted for req_id */
  uint64_t last_active;
  uint64_t linger_deadline;
  ws_t *ws; /* upgraded: the WebSocket session (state C_WS) */
};

struct ml_httpd_s {
  ml_loop_t *loop;
  ml_httpd_opts_t opts;
  ml_httpd_listener_t *listeners;
  conn_t *conns;
  conn_t *dirty;
  conn_t **slots;
  size_t nslots, slots_cap;
  uint32_t *free_slots;
  size_t nfree;
  uint64_t seq;
  uv_timer_t sweep;
  bool sweep_started;
  bool hooked;
  bool freeing;
  int handles; /* open uv handles whose callbacks reach this struct */
  ml_httpd_stats_t stats;
  ml_durable_t *durable; /* NULL: bytes go at the end of their turn */
  time_t date_at;
  char date[40];
  char *tls_rbuf; /* ciphertext scratch: read callbacks never interleave */
};

static void conn_close(conn_t *c);
static void conn_flush(conn_t *c);
static void conn_resume(conn_t *c);
static int in_reserve(conn_t *c);
static void ws_input(conn_t *c);
static void ws_end(conn_t *c);
static void ws_queue_close(conn_t *c, int code, const char *reason);

/* Output produced and not yet handed to libuv (plaintext or ciphertext). */
static bool has_output(const conn_t *c) { return c->out.len || c->cout.len; }

/* Bytes the peer has not taken yet, for stream backpressure. */
static size_t unsent(const conn_t *c) {
  return c->out.len + c->cout.len + (c->writing ? c->wbuf.len : 0);
}

/* {====== buffers */

static int buf_reserve(buf_t *b, size_t extra) {
  if (b->cap - b->len >= extra) return 0;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap - b->len < extra) cap *= 2;
  char *nd = realloc(b->data, cap);
  if (!nd) return ML_ENOMEM;
  b->data = nd;
  b->cap = cap;
  return 0;
}

/* Callers reserve first; these only copy. */
static void buf_put(buf_t *b, const void *p, size_t n) {
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void buf_puts(buf_t *b, const char *s) { buf_put(b, s, strlen(s)); }

/* }====== */

/* {====== server lifetime */

static void listener_free(ml_httpd_listener_t *l) {
  ml_tls_ctx_unref(l->tls);
  free(l->path);
  free(l);
}

static void maybe_free_srv(ml_httpd_t *srv) {
  if (srv->freeing && srv->handles == 0) {
    free(srv->tls_rbuf);
    free(srv->slots);
    free(srv->free_slots);
    free(srv);
  }
}

static void flush_hook(ml_loop_t *loop, void *ud) {
  (void)loop;
  ml_httpd_flush(ud);
}

static void noop_hook(ml_loop_t *loop, void *ud) {
  (void)loop;
  (void)ud;
}

/* The loop has no way to remove a hook, so a freed server's slot is turned
 * into a no-op and reused by the next server on the same loop. */
static int hook(ml_httpd_t *srv) {
  ml_loop_t *loop = srv->loop;
  for (int i = 0; i < loop->nhooks; i++) {
    if (loop->hooks[i].fn == noop_hook) {
      loop->hooks[i].fn = flush_hook;
      loop->hooks[i].ud = srv;
      return 0;
    }
  }
  return ml_loop_add_hook(loop, flush_hook, srv);
}

static void unhook(ml_httpd_t *srv) {
  ml_loop_t *loop = srv->loop;
  for (int i = 0; i < loop->nhooks; i++) {
    if (loop->hooks[i].fn == flush_hook && loop->hooks[i].ud == srv) {
      loop->hooks[i].fn = noop_hook;
      loop->hooks[i].ud = NULL;
    }
  }
}

static uint64_t now_ms(ml_httpd_t *srv) { return uv_now(srv->loop->uv); }

/* }====== */

/* {====== request ids: slot in the low bits, a sequence number above */

static int slot_take(ml_httpd_t *srv, conn_t *c) {
  uint32_t slot;
  if (srv->nfree) {
    slot = srv->free_slots[--srv->nfree];
  } else {
    if (srv->nslots > SLOT_MASK) return ML_ETOOLARGE;
    if (srv->nslots == srv->slots_cap) {
      size_t cap = srv->slots_cap ? srv->slots_cap * 2 : 64;
      conn_t **ns = realloc(srv->slots, cap * sizeof *ns);
      if (!ns) return ML_ENOMEM;
      srv->slots = ns;
      uint32_t *nf = realloc(srv->free_slots, cap * sizeof *nf);
      if (!nf) return ML_ENOMEM;
      srv->free_slots = nf;
      srv->slots_cap = cap;
    }
    slot = (uint32_t)srv->nslots++;
  }
  srv->slots[slot] = c;
  c->slot = slot;
  return 0;
}

static void slot_release(ml_httpd_t *srv, conn_t *c) {
  srv->slots[c->slot] = NULL;
  srv->free_slots[srv->nfree++] = c->slot;
}

/* @return the connection whose current request is `id`, or NULL. */
static conn_t *lookup(ml_httpd_t *srv, uint64_t id) {
  uint64_t slot = id & SLOT_MASK;
  if (slot >= srv->nslots) return NULL;
  conn_t *c = srv->slots[slot];
  if (!c || c->req_id != id || c->closing) return NULL;
  if (c->state != C_WAITING && c->state != C_STREAMING && c->state != C_WS)
    return NULL;
  return c;
}

/* }====== */

/* {====== events */

static void post_closed(conn_t *c) {
  if (c->notified || (c->state != C_WAITING && c->state != C_STREAMING &&
                      c->state != C_WS))
    return;
  c->notified = true;
  ml_httpd_closed_t *ev = calloc(1, sizeof *ev);
  if (!ev) return;
  ev->ev.type = ML_EV_HTTPD_CLOSED;
  ev->ev.id = c->lst->ev_id;
  ev->req_id = c->req_id;
  /* In order with the requests, which go first. */
  ml_loop_post_first(c->srv->loop, &ev->ev);
}

/* Copies `s` into the event's string area and NUL-terminates it. */
static const char *put_str(char **w, const char *s, size_t n) {
  char *d = *w;
  memcpy(d, s, n);
  d[n] = '\0';
  *w = d + n + 1;
  return d;
}

/* Hands a complete request to Lua as one self-contained allocation. */
static void deliver(conn_t *c, const ml_http_request_t *r) {
  ml_httpd_t *srv = c->srv;
  size_t strings = r->url_len + r->path_len + r->query_len + r->body_len + 4;
  for (size_t i = 0; i < r->nfields; i++)
    strings += r->fields[i].name_len + r->fields[i].value_len + 2;
  size_t fsize = r->nfields * sizeof(ml_http_field_t);
  ml_httpd_request_t *ev = malloc(sizeof *ev + fsize + strings);
  if (!ev) {
    ML_ERROR("httpd: out of memory for a request");
    conn_close(c);
    return;
  }
  memset(ev, 0, sizeof *ev);
  ml_http_field_t *fields = (ml_http_field_t *)(ev + 1);
  char *w = (char *)fields + fsize;
  for (size_t i = 0; i < r->nfields; i++) {
    const ml_http_field_t *f = &r->fields[i];
    fields[i].name = put_str(&w, f->name, f->name_len);
    fields[i].name_len = f->name_len;
    fields[i].value = put_str(&w, f->value, f->value_len);
    fields[i].value_len = f->value_len;
  }
  ev->url = put_str(&w, r->url, r->url_len);
  ev->url_len = r->url_len;
  ev->path = put_str(&w, r->path, r->path_len);
  ev->path_len = r->path_len;
  ev->query = put_str(&w, r->query, r->query_len);
  ev->query_len = r->query_len;
  ev->has_query = r->has_query;
  ev->body = put_str(&w, r->body, r->body_len);
  ev->body_len = r->body_len;
  ev->fields = fields;
  ev->nfields = r->nfields;
  ev->method = r->method; /* static */
  ev->http_major = r->http_major;
  ev->http_minor = r->http_minor;
  ev->keep_alive = r->keep_alive;
  ev->transport = c->lst->is_unix ? "unix" : "tcp";
  ev->tls = c->tls != NULL;
  /* Ids never repeat: a late answer to a finished request finds nothing. */
  c->req_id = (++srv->seq << SLOT_BITS) | c->slot;
  ev->req_id = c->req_id;
  ev->ev.type = ML_EV_HTTPD_REQUEST;
  ev->ev.id = c->lst->ev_id;
  c->state = C_WAITING;
  c->notified = false;
  c->is_head = strcmp(r->method, "HEAD") == 0;
  c->keep_alive = r->keep_alive;
  if (!r->keep_alive) c->close_after = true;
  srv->stats.requests++;
  /* A client is waiting: ahead of the server's own queued work. */
  ml_loop_post_first(srv->loop, &ev->ev);
}

/* }====== */

/* {====== responses */

static void mark_dirty(conn_t *c) {
  if (c->dirty) return;
  ml_httpd_t *srv = c->srv;
  c->dirty = true;
  c->dprev = NULL;
  c->dnext = srv->dirty;
  if (srv->dirty) srv->dirty->dprev = c;
  srv->dirty = c;
}

static void unmark_dirty(conn_t *c) {
  if (!c->dirty) return;
  if (c->dprev) c->dprev->dnext = c->dnext;
  else c->srv->dirty = c->dnext;
  if (c->dnext) c->dnext->dprev = c->dprev;
  c->dirty = false;
  c->dprev = c->dnext = NULL;
}

static const char *http_date(ml_httpd_t *srv) {
  time_t t = time(NULL);
  if (t != srv->date_at) {
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(srv->date, sizeof srv->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    srv->date_at = t;
  }
  return srv->date;
}

/* Header fields the server owns; the caller's versions are dropped. */
static bool reserved_field(const ml_http_field_t *f) {
  static const char *const names[] = {"content-length", "transfer-encoding",
                                      "connection", "date"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (f->name_len == strlen(names[i]) &&
        strncasecmp(f->name, names[i], f->name_len) == 0)
      return true;
  return false;
}

static bool has_crlf(const char *s, size_t n) {
  return memchr(s, '\r', n) != NULL || memchr(s, '\n', n) != NULL;
}

static int check_fields(const ml_http_field_t *h, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (h[i].name_len == 0 || has_crlf(h[i].name, h[i].name_len) ||
        memchr(h[i].name, ':', h[i].name_len) ||
        has_crlf(h[i].value, h[i].value_len))
      return ML_EINVALID;
  }
  return 0;
}

/* Appends the status line and header block. `body_len` < 0: chunked. */
static int put_head(conn_t *c, int status, const ml_http_field_t *h, size_t n,
                    long long body_len) {
  ml_httpd_t *srv = c->srv;
  if (c->lst->closing || srv->freeing || !c->keep_alive || c->peer_eof)
    c->close_after = true;
  size_t need = 160;
  for (size_t i = 0; i < n; i++) need += h[i].name_len + h[i].value_len + 4;
  int rc = buf_reserve(&c->out, need);
  if (rc < 0) return rc;
  /* Formatted by hand, not with snprintf: every answer comes here. */
  const char *reason = ml_http_reason(status);
  char code[16];
  int clen = 3;
  if (status >= 100 && status <= 999) {
    code[0] = (char)('0' + status / 100);
    code[1] = (char)('0' + status / 10 % 10);
    code[2] = (char)('0' + status % 10);
  } else {
    clen = snprintf(code, sizeof code, "%d", status);
  }
  buf_puts(&c->out, "HTTP/1.1 ");
  buf_put(&c->out, code, (size_t)clen);
  buf_puts(&c->out, " ");
  buf_puts(&c->out, *reason ? reason : "Unknown");
  buf_puts(&c->out, "\r\n");
  for (size_t i = 0; i < n; i++) {
    if (reserved_field(&h[i])) continue;
    buf_put(&c->out, h[i].name, h[i].name_len);
    buf_put(&c->out, ": ", 2);
    buf_put(&c->out, h[i].value, h[i].value_len);
    buf_put(&c->out, "\r\n", 2);
  }
  buf_puts(&c->out, "Date: ");
  buf_puts(&c->out, http_date(srv));
  buf_puts(&c->out, "\r\n");
  if (body_len < 0) {
    buf_puts(&c->out, "Transfer-Encoding: chunked\r\n");
  } else if (status >= 200 && status != 204 && status != 304) {
    char digits[24];
    size_t d = sizeof digits;
    unsigned long long v = (unsigned long long)body_len;
    do digits[--d] = (char)('0' + v % 10); while ((v /= 10) > 0);
    buf_puts(&c->out, "Content-Length: ");
    buf_put(&c->out, digits + d, sizeof digits - d);
    buf_puts(&c->out, "\r\n");
  }
  if (c->close_after) buf_puts(&c->out, "Connection: close\r\n");
  buf_puts(&c->out, "\r\n");
  return 0;
}

static void request_done(conn_t *c) {
  if (c->state == C_WAITING) c->srv->stats.requests--;
  else c->srv->stats.streams--;
  c->state = C_READING;
  c->srv->stats.served++;
  c->last_active = now_ms(c->srv);
  mark_dirty(c);
}

/* Answers a request we could not parse; the connection closes after. */
static void respond_error(conn_t *c, int status, const char *msg) {
  char body[256];
  const char *ctype;
  int n;
  if (status == 413) {
    ctype = "application/json";
    n = snprintf(body, sizeof body,
                 "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                 "\"status\":\"Failure\",\"message\":\"Request entity too "
                 "large: limit is %zu\",\"reason\":\"RequestEntityTooLarge\","
                 "\"code\":413}",
                 c->srv->opts.max_body_bytes);
  } else {
    /* As Go's net/http answers before any handler runs. */
    ctype = "text/plain; charset=utf-8";
    n = snprintf(body, sizeof body, "%d %s: %s", status, ml_http_reason(status),
                 msg);
  }
  ml_http_field_t h = {"Content-Type", 12, ctype, strlen(ctype)};
  c->keep_alive = false;
  c->is_head = false;
  if (put_head(c, status, &h, 1, n) < 0 || buf_reserve(&c->out, (size_t)n) < 0) {
    conn_close(c);
    return;
  }
  buf_put(&c->out, body, (size_t)n);
  c->close_after = true;
  mark_dirty(c);
}

int ml_httpd_respond(ml_httpd_t *srv, uint64_t id, int status,
                     const ml_http_field_t *headers, size_t nheaders,
                     const char *body, size_t body_len) {
  conn_t *c = lookup(srv, id);
  if (!c) return ML_ENOTFOUND;
  if (c->state != C_WAITING || status < 100 || status > 999) return ML_EINVALID;
  int rc = check_fields(headers, nheaders);
  if (rc < 0) return rc;
  bool no_body = c->is_head || status < 200 || status == 204 || status == 304;
  size_t mark = c->out.len;
  rc = put_head(c, status, headers, nheaders, (long long)body_len);
  if (rc == 0 && !no_body) {
    rc = buf_reserve(&c->out, body_len);
    if (rc == 0) buf_put(&c->out, body, body_len);
  }
  if (rc < 0) {
    c->out.len = mark;
    return rc;
  }
  request_done(c);
  return 0;
}

int ml_httpd_stream_begin(ml_httpd_t *srv, uint64_t id, int status,
                          const ml_http_field_t *headers, size_t nheaders) {
  conn_t *c = lookup(srv, id);
  if (!c) return ML_ENOTFOUND;
  if (c->state != C_WAITING || status < 200 || status > 999) return ML_EINVALID;
  int rc = check_fields(headers, nheaders);
  if (rc < 0) return rc;
  size_t mark = c->out.len;
  rc = put_head(c, status, headers, nheaders, -1);
  if (rc < 0) {
    c->out.len = mark;
    return rc;
  }
  c->state = C_STREAMING;
  srv->stats.requests--;
  srv->stats.streams++;
  /* A stream whose listener is going away learns it at once. */
  if (c->lst->closing) post_closed(c);
  mark_dirty(c);
  return 0;
}

long ml_httpd_stream_write(ml_httpd_t *srv, uint64_t id, const char *data,
                           size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  return ml_httpd_stream_writev(srv, id, &b, 1);
}

long ml_httpd_stream_writev(ml_httpd_t *srv, uint64_t id, const uv_buf_t *bufs,
                            size_t nbufs) {
  conn_t *c = lookup(srv, id);
  if (!c) return ML_ENOTFOUND;
  if (c->state != C_STREAMING) return ML_EINVALID;
  size_t len = 0;
  for (size_t i = 0; i < nbufs; i++) len += bufs[i].len;
  /* A peer that stopped reading must not make us buffer without end. */
  if (unsent(c) + len > STREAM_MAX_PENDING) {
    ML_WARN("httpd: closing a stream whose peer is %zu bytes behind",
            unsent(c));
    conn_close(c);
    return ML_ECLOSED;
  }
  if (len > 0 && !c->is_head) {
    char line[24];
    int n = snprintf(line, sizeof line, "%zx\r\n", len);
    int rc = buf_reserve(&c->out, (size_t)n + len + 2);
    if (rc < 0) return rc;
    buf_put(&c->out, line, (size_t)n);
    for (size_t i = 0; i < nbufs; i++) buf_put(&c->out, bufs[i].base, bufs[i].len);
    buf_put(&c->out, "\r\n", 2);
    mark_dirty(c);
  }
  return (long)unsent(c);
}

int ml_httpd_stream_end(ml_httpd_t *srv, uint64_t id) {
  conn_t *c = lookup(srv, id);
  if (!c) return ML_ENOTFOUND;
  if (c->state != C_STREAMING) return ML_EINVALID;
  if (!c->is_head) {
    int rc = buf_reserve(&c->out, 5);
    if (rc < 0) return rc;
    buf_put(&c->out, "0\r\n\r\n", 5);
  }
  request_done(c);
  return 0;
}

/* }====== */

/* {====== WebSocket sessions */

/* The session is over for its owner: once, with the CLOSED event. */
static void ws_end(conn_t *c) {
  ws_t *ws = c->ws;
  if (!ws || ws->ended) return;
  ws->ended = true;
  ws->dec.done = true;
  c->srv->stats.streams--;
  post_closed(c);
  if (ws->ops.on_end) ws->ops.on_end(ws->ud);
}

/* Queues a frame whose payload is `nbufs` pieces. */
static int ws_put(conn_t *c, int opcode, const uv_buf_t *bufs, size_t nbufs) {
  size_t len = 0;
  for (size_t i = 0; i < nbufs; i++) len += bufs[i].len;
  uint8_t head[ML_WS_MAX_HEADER];
  size_t hlen = ml_ws_header(head, opcode, true, len);
  int rc = buf_reserve(&c->out, hlen + len);
  if (rc < 0) return rc;
  buf_put(&c->out, head, hlen);
  for (size_t i = 0; i < nbufs; i++)
    if (bufs[i].len) buf_put(&c->out, bufs[i].base, bufs[i].len);
  mark_dirty(c);
  return 0;
}

/* Our close frame (code 0: none); the connection closes once it is out. */
static void ws_queue_close(conn_t *c, int code, const char *reason) {
  ws_t *ws = c->ws;
  if (ws->close_sent) return;
  ws->close_sent = true;
  ws->dec.done = true; /* whatever follows is not read any more */
  c->close_after = true;
  char payload[125];
  size_t n = 0;
  if (code) {
    payload[0] = (char)(code >> 8);
    payload[1] = (char)code;
    n = strlen(reason);
    if (n > sizeof payload - 2) n = sizeof payload - 2;
    memcpy(payload + 2, reason, n);
    n += 2;
  }
  uv_buf_t b = uv_buf_init(payload, (unsigned)n);
  if (ws_put(c, ML_WS_CLOSE, &b, 1) < 0) conn_close(c);
}

static void ws_on_frame(void *ud, int opcode, const uint8_t *data,
                        size_t len) {
  conn_t *c = ud;
  ws_t *ws = c->ws;
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  switch (opcode) {
  case ML_WS_PING:
    if (!ws->close_sent && ws_put(c, ML_WS_PONG, &b, 1) < 0) conn_close(c);
    break;
  case ML_WS_PONG:
    break;
  case ML_WS_CLOSE:
    /* Echo the peer's code (RFC 6455 5.5.1); the session ends now. */
    ws_queue_close(c, len >= 2 ? data[0] << 8 | data[1] : 0, "");
    ws_end(c);
    break;
  default:
    if (!ws->ended && ws->ops.on_message)
      ws->ops.on_message(ws->ud, opcode, data, len);
    if (ws->paused) ws->dec.stop = true;
  }
}

/* Decodes what the peer sent, as far as the consumer takes it. */
static void ws_input(conn_t *c) {
  ws_t *ws = c->ws;
  if (c->closing || ws->paused || ws->dec.done || c->in_off == c->in_len)
    return;
  long n = ml_ws_decode(&ws->dec, (uint8_t *)c->in + c->in_off,
                        c->in_len - c->in_off, ws_on_frame, c);
  if (c->closing) return;
  if (n < 0) {
    ML_DEBUG("httpd: WebSocket protocol error, closing with %d",
             ws->dec.error);
    ws_queue_close(c, ws->dec.error, "");
    ws_end(c);
    return;
  }
  c->in_off += (size_t)n;
  if (c->in_off == c->in_len) c->in_off = c->in_len = 0;
  if (ws->paused && c->reading) {
    uv_read_stop(&c->u.s);
    c->reading = false;
  }
}

/* @return true when the comma-separated `list` holds `token` (any case). */
static bool has_token(const char *list, size_t n, const char *token) {
  size_t tl = strlen(token), i = 0;
  while (i < n) {
    while (i < n && (list[i] == ' ' || list[i] == '\t' || list[i] == ',')) i++;
    size_t s = i;
    while (i < n && list[i] != ',') i++;
    size_t e = i;
    while (e > s && (list[e - 1] == ' ' || list[e - 1] == '\t')) e--;
    if (e - s == tl && strncasecmp(list + s, token, tl) == 0) return true;
  }
  return false;
}

static const ml_http_field_t *field(const ml_http_request_t *r,
                                    const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < r->nfields; i++)
    if (r->fields[i].name_len == n && memcmp(r->fields[i].name, name, n) == 0)
      return &r->fields[i];
  return NULL;
}

int ml_httpd_ws_accept(ml_httpd_t *srv, uint64_t id, const char *protocol,
                       const ml_httpd_ws_ops_t *ops, void *ud) {
  conn_t *c = lookup(srv, id);
  if (!c) return ML_ENOTFOUND;
  if (c->state != C_WAITING || c->peer_eof) return ML_EINVALID;
  const ml_http_request_t *r = ml_http_parser_request(c->parser);
  if (!r || !r->upgrade || strcmp(r->method, "GET") != 0) return ML_EINVALID;
  const ml_http_field_t *up = field(r, "upgrade");
  const ml_http_field_t *conn = field(r, "connection");
  const ml_http_field_t *ver = field(r, "sec-websocket-version");
  const ml_http_field_t *key = field(r, "sec-websocket-key");
  if (!up || !has_token(up->value, up->value_len, "websocket") || !conn ||
      !has_token(conn->value, conn->value_len, "upgrade") || !ver ||
      ver->value_len != 2 || memcmp(ver->value, "13", 2) != 0 || !key)
    return ML_EINVALID;
  if (protocol && (has_crlf(protocol, strlen(protocol)) || !*protocol))
    return ML_EINVALID;
  char accept[ML_WS_ACCEPT_LEN + 1];
  int rc = ml_ws_accept_key(key->value, key->value_len, accept);
  if (rc < 0) return rc;
  ws_t *ws = calloc(1, sizeof *ws);
  if (!ws) return ML_ENOMEM;
  size_t plen = protocol ? strlen(protocol) : 0;
  if (buf_reserve(&c->out, 160 + plen) < 0) {
    free(ws);
    return ML_ENOMEM;
  }
  buf_puts(&c->out, "HTTP/1.1 101 Switching Protocols\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: ");
  buf_puts(&c->out, accept);
  buf_puts(&c->out, "\r\n");
  if (protocol) {
    buf_puts(&c->out, "Sec-WebSocket-Protocol: ");
    buf_puts(&c->out, protocol);
    buf_puts(&c->out, "\r\n");
  }
  buf_puts(&c->out, "\r\n");
  ws->ops = *ops;
  ws->ud = ud;
  ws->kick = c->in_off < c->in_len;
  c->ws = ws;
  c->state = C_WS;
  c->close_after = false; /* set for the upgrade request: not kept alive */
  srv->stats.requests--;
  srv->stats.streams++;
  mark_dirty(c);
  return 0;
}

/* The session of `id`, open for sending. */
static conn_t *ws_lookup(ml_httpd_t *srv, uint64_t id) {
  conn_t *c = lookup(srv, id);
  return c && c->state == C_WS ? c : NULL;
}

long ml_httpd_ws_send(ml_httpd_t *srv, uint64_t id, int opcode,
                      const uv_buf_t *bufs, size_t nbufs) {
  conn_t *c = ws_lookup(srv, id);
  if (!c) return ML_ENOTFOUND;
  if (c->ws->close_sent || c->ws->ended) return ML_ECLOSED;
  int rc = ws_put(c, opcode, bufs, nbufs);
  if (rc < 0) return rc;
  size_t u = unsent(c);
  if (u > ML_HTTPD_WS_HIGH_WATER) c->ws->want_drain = true;
  return (long)u;
}

int ml_httpd_ws_close(ml_httpd_t *srv, uint64_t id, int code,
                      const char *reason) {
  conn_t *c = ws_lookup(srv, id);
  if (!c) return ML_ENOTFOUND;
  ws_queue_close(c, code, reason ? reason : "");
  return 0;
}

int ml_httpd_ws_pause(ml_httpd_t *srv, uint64_t id, bool paused) {
  conn_t *c = ws_lookup(srv, id);
  if (!c) return ML_ENOTFOUND;
  if (c->ws->paused == paused) return 0;
  c->ws->paused = paused;
  if (paused) {
    if (c->reading) uv_read_stop(&c->u.s);
    c->reading = false;
  } else {
    conn_resume(c); /* what came meanwhile, then more reading */
  }
  return 0;
}

void ml_httpd_ws_detach(ml_httpd_t *srv, uint64_t id) {
  conn_t *c = ws_lookup(srv, id);
  if (!c) return;
  c->ws->ops = (ml_httpd_ws_ops_t){0};
  c->ws->paused = false;
  ws_queue_close(c, ML_WS_GOING_AWAY, "");
  ws_end(c);
}

/* }====== */

/* {====== durability */

/* Drops `n` bytes (written or sealed, n <= ok) from the front of `out`. */
static void out_consume(conn_t *c, size_t n) {
  if (n == 0) return;
  memmove(c->out.data, c->out.data + n, c->out.len - n);
  c->out.len -= n;
  c->ok -= n;
  c->marked -= n;
  for (int i = 0; i < c->nhold; i++) c->hold[i].end -= n;
}

/* Lets out the held bytes whose commits are durable now. */
static void conn_release(conn_t *c) {
  ml_durable_t *d = c->srv->durable;
  int k = 0;
  while (k < c->nhold && ml_durable_covers(d, c->hold[k].seq)) k++;
  if (k == 0) return;
  c->ok = c->hold[k - 1].end;
  c->nhold -= k;
  memmove(c->hold, c->hold + k, (size_t)c->nhold * sizeof c->hold[0]);
}

/* Flush hook: the bytes produced since the last one depend on every commit
 * made so far. @return false when they can never go (the gate failed). */
static bool conn_mark(conn_t *c) {
  size_t end = c->out.len;
  if (end == c->marked) return true;
  c->marked = end;
  ml_durable_t *d = c->srv->durable;
  if (!d) {
    c->ok = end;
    return true;
  }
  conn_release(c);
  uint64_t seq = ml_durable_needed(d);
  if (c->nhold == 0 && ml_durable_covers(d, seq)) {
    c->ok = end;
    return true;
  }
  if (ml_durable_error(d)) return false;
  /* Two levels suffice: the sync in flight and the next one, which covers
   * every commit made before it starts. A third merges into the second. */
  int i = c->nhold;
  if (i > 0 && c->hold[i - 1].seq == seq) i--;
  else if (i == 2) i = 1;
  else c->nhold++;
  c->hold[i].end = end;
  c->hold[i].seq = seq;
  return true;
}

/* The gate advanced (or failed): send what it released; a connection that
 * still holds bytes after a failure is closed, never answered falsely. */
static void on_durable(ml_durable_t *d, void *ud) {
  ml_httpd_t *srv = ud;
  bool failed = ml_durable_error(d) != 0;
  for (conn_t *c = srv->conns; c; c = c->next) {
    if (c->closing || c->nhold == 0) continue;
    conn_release(c);
    if (failed && c->nhold) conn_close(c);
    else conn_flush(c);
  }
}

void ml_httpd_set_durable(ml_httpd_t *srv, ml_durable_t *d) {
  if (srv->durable) ml_durable_unwatch(srv->durable, on_durable, srv);
  srv->durable = NULL;
  if (d && ml_durable_watch(d, on_durable, srv) == 0) srv->durable = d;
  else if (d) ML_ERROR("httpd: no room to watch the durability gate");
}

/* }====== */

/* {====== TLS */

/* Moves the engine's pending ciphertext to `cout`. */
static int tls_drain(conn_t *c) {
  size_t n = ml_tls_pending(c->tls);
  if (n == 0) return 0;
  int rc = buf_reserve(&c->cout, n);
  if (rc < 0) return rc;
  c->cout.len += ml_tls_take(c->tls, c->cout.data + c->cout.len, n);
  return 0;
}

/* Encrypts what may go (at flush time only: responses still wait for the
 * end of their turn and for the gate). */
static int tls_seal(conn_t *c) {
  if (c->ok) {
    int rc = ml_tls_write(c->tls, c->out.data, c->ok);
    if (rc < 0) {
      ML_DEBUG("httpd: TLS write: %s", ml_tls_error(c->tls));
      return rc;
    }
    out_consume(c, c->ok);
  }
  return tls_drain(c);
}

/* A client that speaks plain HTTP to the TLS port gets Go's answer in
 * plain text instead of a handshake failure it cannot read. */
static void answer_plain_http(conn_t *c) {
  static const char msg[] = "HTTP/1.0 400 Bad Request\r\n\r\n"
                            "Client sent an HTTP request to an HTTPS server.\n";
  if (buf_reserve(&c->cout, sizeof msg - 1) < 0) {
    conn_close(c);
    return;
  }
  buf_put(&c->cout, msg, sizeof msg - 1);
  c->said_bye = true; /* no session to close; discard further input */
  c->close_after = true;
  c->keep_alive = false;
  mark_dirty(c);
}

/* Feeds ciphertext to the session and decrypts all it can into `in`.
 * @return 0, UV_EOF after the peer's close_notify, or an error (the alert,
 *   if any, is sent on a best-effort basis: the connection closes next) */
static ssize_t tls_input(conn_t *c, const char *data, size_t len) {
  if (c->said_bye) return 0;
  if (!c->sniffed) {
    c->sniffed = true;
    if ((unsigned char)data[0] != 0x16) { /* not a handshake record */
      answer_plain_http(c);
      return 0;
    }
  }
  ssize_t rc = ml_tls_feed(c->tls, data, len);
  while (rc == 0) {
    rc = in_reserve(c);
    if (rc < 0) break;
    long n = ml_tls_read(c->tls, c->in + c->in_len, c->in_cap - c->in_len);
    if (n == 0) break;
    if (n == ML_TLS_EOF) rc = UV_EOF;
    else if (n < 0) rc = n;
    else c->in_len += (size_t)n;
  }
  /* Handshake records, alerts, key updates. */
  if (tls_drain(c) < 0 && rc == 0) rc = ML_ENOMEM;
  if (rc < 0 && rc != UV_EOF) {
    ML_DEBUG("httpd: TLS: %s", ml_tls_error(c->tls));
    if (c->cout.len) {
      uv_buf_t b = uv_buf_init(c->cout.data, (unsigned)c->cout.len);
      uv_try_write(&c->u.s, &b, 1);
      c->cout.len = 0;
    }
    return rc;
  }
  if (c->cout.len) mark_dirty(c);
  return rc;
}

/* }====== */

/* {====== connections */

static void on_conn_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  ml_httpd_t *srv = c->srv;
  ml_httpd_listener_t *l = c->lst;
  if (c->prev) c->prev->next = c->next;
  else srv->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  srv->stats.connections--;
  ml_http_parser_free(c->parser);
  free(c->in);
  free(c->out.data);
  free(c->wbuf.data);
  free(c->cout.data);
  ml_tls_free(c->tls);
  if (c->ws) ml_ws_decoder_free(&c->ws->dec);
  free(c->ws);
  free(c);
  if (--l->nconns == 0 && l->handle_closed) listener_free(l);
  srv->handles--;
  maybe_free_srv(srv);
}

/* Closes at once; an unanswered or streaming request learns it by CLOSED. */
static void conn_close(conn_t *c) {
  if (c->closing) return;
  if (c->state == C_WS) ws_end(c);
  post_closed(c);
  if (c->state == C_WAITING) c->srv->stats.requests--;
  if (c->state == C_STREAMING) c->srv->stats.streams--;
  c->closing = true;
  c->state = C_CLOSING;
  unmark_dirty(c);
  slot_release(c->srv, c);
  uv_close(&c->u.h, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn_t *c = req->data;
  if (c->closing) return;
  if (status < 0 || c->peer_eof) {
    conn_close(c);
    return;
  }
  /* Keep reading until the peer closes, so unread input does not turn
   * our close into a reset that could destroy the answer in flight. */
  c->linger_deadline = now_ms(c->srv) + LINGER_MS;
  conn_resume(c);
}

/* Everything produced so far is in the kernel. */
static void written_all(conn_t *c) {
  if (c->closing) return;
  if (c->state == C_WS) {
    ws_t *ws = c->ws;
    if (ws->want_drain && !ws->ended) {
      ws->want_drain = false;
      if (ws->ops.on_drain) ws->ops.on_drain(ws->ud);
      if (c->closing || has_output(c)) return; /* the flush hook goes on */
    }
    if (!c->close_after) return;
    /* Our close frame is out: the session ends, the socket goes as an
     * HTTP connection's would after its last answer. */
    ws_end(c);
    c->state = C_READING;
    c->in_off = c->in_len = 0;
  }
  if (c->close_after && c->state == C_READING && c->tls && !c->said_bye) {
    /* A TLS peer learns the end from close_notify, not only from FIN. */
    c->said_bye = true;
    if (ml_tls_close_notify(c->tls) == 0 && tls_drain(c) == 0 && c->cout.len) {
      conn_flush(c);
      return;
    }
  }
  if (c->close_after && c->state == C_READING) {
    c->state = C_CLOSING;
    if (c->peer_eof) {
      conn_close(c);
      return;
    }
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, &c->u.s, on_shutdown) < 0) conn_close(c);
    return;
  }
  conn_resume(c);
}

static void on_write(uv_write_t *req, int status) {
  conn_t *c = req->data;
  c->writing = false;
  c->wbuf.len = 0;
  if (c->closing) return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  /* Bytes added meanwhile were produced in turns that already committed. */
  if (has_output(c)) conn_flush(c);
  else written_all(c);
}

static void conn_flush(conn_t *c) {
  if (c->closing || c->writing) return;
  if (c->tls && tls_seal(c) < 0) {
    conn_close(c);
    return;
  }
  buf_t *p = c->tls ? &c->cout : &c->out;
  size_t len = c->tls ? p->len : c->ok; /* what may go */
  if (len == 0) {
    if (!has_output(c)) written_all(c); /* else: held, the gate flushes */
    return;
  }
  uv_buf_t b = uv_buf_init(p->data, (unsigned)len);
  int n = uv_try_write(&c->u.s, &b, 1);
  if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
  if (n < 0) {
    conn_close(c);
    return;
  }
  if (len < p->len) {
    /* Held bytes follow (plain only: TLS seals just what may go). The
     * unwritten part of what may go is copied to wbuf; `out` keeps the
     * held rest. */
    size_t left = len - (size_t)n;
    if (left && buf_reserve(&c->wbuf, left) < 0) {
      conn_close(c);
      return;
    }
    if (left) memcpy(c->wbuf.data, p->data + n, left);
    c->wbuf.len = left;
    out_consume(c, len);
    if (!left) return;
    b = uv_buf_init(c->wbuf.data, (unsigned)left);
  } else if ((size_t)n == p->len) {
    p->len = 0;
    if (!c->tls) c->ok = c->marked = 0;
    if (!has_output(c)) written_all(c); /* TLS: plaintext may be held */
    return;
  } else {
    /* The rest goes to uv_write from wbuf; new output collects in *p. */
    buf_t t = c->wbuf;
    c->wbuf = *p;
    *p = t;
    p->len = 0;
    if (!c->tls) c->ok = c->marked = 0;
    b = uv_buf_init(c->wbuf.data + n, (unsigned)(c->wbuf.len - (size_t)n));
  }
  c->wreq.data = c;
  int rc = uv_write(&c->wreq, &c->u.s, &b, 1, on_write);
  if (rc < 0) {
    conn_close(c);
    return;
  }
  c->writing = true;
}

static void send_continue(conn_t *c) {
  static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
  if (buf_reserve(&c->out, sizeof line - 1) < 0) return;
  buf_put(&c->out, line, sizeof line - 1);
  mark_dirty(c);
}

static bool conn_ready(const conn_t *c) {
  return !c->closing && c->state == C_READING && !c->close_after &&
         !c->writing && !has_output(c);
}

/* Parses buffered input while the connection is free for a request. */
static void process_input(conn_t *c) {
  while (conn_ready(c) && c->in_off < c->in_len) {
    size_t used;
    ml_http_result_t r = ml_http_parser_feed(c->parser, c->in + c->in_off,
                                             c->in_len - c->in_off, &used);
    c->in_off += used;
    if (ml_http_parser_take_continue(c->parser)) send_continue(c);
    if (r == ML_HTTP_MORE) break;
    if (r == ML_HTTP_ERROR) {
      respond_error(c, ml_http_parser_error_status(c->parser),
                    ml_http_parser_error(c->parser));
      break;
    }
    deliver(c, ml_http_parser_request(c->parser));
  }
  if (c->in_off == c->in_len) c->in_off = c->in_len = 0;
}

/* Makes room for READ_CHUNK more bytes at the end of `in`. */
static int in_reserve(conn_t *c) {
  if (c->in_cap - c->in_len < READ_CHUNK && c->in_off > 0) {
    memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
    c->in_len -= c->in_off;
    c->in_off = 0;
  }
  if (c->in_cap - c->in_len < READ_CHUNK) {
    size_t cap = c->in_len + READ_CHUNK;
    char *ni = realloc(c->in, cap);
    if (!ni) return ML_ENOMEM;
    c->in = ni;
    c->in_cap = cap;
  }
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  conn_t *c = h->data;
  if (c->tls) {
    /* Ciphertext only passes through: tls_input decrypts it into `in`. */
    *buf = uv_buf_init(c->srv->tls_rbuf, READ_CHUNK);
    return;
  }
  if (c->state == C_CLOSING) c->in_off = c->in_len = 0; /* discarding */
  if (in_reserve(c) < 0) {
    *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
    return;
  }
  *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = s->data;
  if (c->closing) return;
  if (c->tls && nread > 0) {
    if (c->state == C_CLOSING) return; /* discarding */
    /* Plaintext lands in `in` directly; what is left to add is nothing,
     * or the end of the TLS stream, or an error. */
    nread = tls_input(c, buf->base, (size_t)nread);
  }
  if (nread == UV_EOF) {
    c->peer_eof = true;
    uv_read_stop(s);
    c->reading = false;
    if (c->state == C_CLOSING) {
      conn_close(c);
      return;
    }
    if (c->state == C_WS) {
      ws_end(c); /* a peer gone without a close frame */
      c->state = C_READING;
      c->in_off = c->in_len = 0;
    }
    process_input(c); /* requests sent just before a half-close */
    if (c->state == C_WAITING || c->state == C_STREAMING) {
      post_closed(c);
      c->close_after = true;
    } else if (c->writing || has_output(c)) {
      c->close_after = true;
    } else {
      conn_close(c);
    }
    return;
  }
  if (nread < 0) {
    conn_close(c);
    return;
  }
  c->in_len += (size_t)nread;
  c->last_active = now_ms(c->srv);
  if (c->state == C_CLOSING) {
    c->in_off = c->in_len = 0;
    return;
  }
  if (c->state == C_WS) {
    ws_input(c);
    return;
  }
  process_input(c);
  /* Busy with a request: keep a bounded backlog, then stop reading. */
  if (c->in_len - c->in_off > PIPELINE_MAX) {
    uv_read_stop(s);
    c->reading = false;
  }
}

/* Continues after a response: next pipelined request, then more reading. */
static void conn_resume(conn_t *c) {
  if (c->closing) return;
  bool want;
  if (c->state == C_WS) {
    ws_input(c);
    want = !c->ws->paused;
  } else {
    process_input(c);
    want = c->state == C_CLOSING || c->in_len - c->in_off <= PIPELINE_MAX;
  }
  if (!c->closing && !c->reading && !c->peer_eof && want) {
    if (uv_read_start(&c->u.s, on_alloc, on_read) == 0) c->reading = true;
  }
}

static void on_connection(uv_stream_t *server, int status) {
  ml_httpd_listener_t *l = server->data;
  ml_httpd_t *srv = l->srv;
  if (status < 0 || l->closing || srv->freeing) return;
  conn_t *c = calloc(1, sizeof *c);
  if (!c) return;
  c->srv = srv;
  c->lst = l;
  c->parser = ml_http_parser_new(srv->opts.max_header_bytes,
                                 srv->opts.max_body_bytes);
  int rc = c->parser ? 0 : ML_ENOMEM;
  if (rc == 0 && l->tls) {
    if (!srv->tls_rbuf) srv->tls_rbuf = malloc(READ_CHUNK);
    c->tls = srv->tls_rbuf ? ml_tls_new(l->tls) : NULL;
    if (!c->tls) rc = ML_ENOMEM;
  }
  if (rc == 0) rc = slot_take(srv, c);
  if (rc < 0) {
    ml_http_parser_free(c->parser);
    ml_tls_free(c->tls);
    free(c);
    ML_WARN("httpd: cannot accept a connection: %s", ml_strerror(rc));
    return;
  }
  if (l->is_unix) uv_pipe_init(srv->loop->uv, &c->u.pipe, 0);
  else uv_tcp_init(srv->loop->uv, &c->u.tcp);
  c->u.h.data = c;
  c->next = srv->conns;
  if (srv->conns) srv->conns->prev = c;
  srv->conns = c;
  srv->stats.connections++;
  srv->handles++;
  l->nconns++;
  c->keep_alive = true;
  c->last_active = now_ms(srv);
  if (uv_accept(server, &c->u.s) < 0) {
    conn_close(c);
    return;
  }
  if (!l->is_unix) uv_tcp_nodelay(&c->u.tcp, 1);
  conn_resume(c);
}

/* }====== */

/* {====== flush hook and timers */

void ml_httpd_flush(ml_httpd_t *srv) {
  /* Flushing can add connections back (an error answer, a pipelined
   * request); loop until the list is empty. */
  while (srv->dirty) {
    conn_t *c = srv->dirty;
    unmark_dirty(c);
    if (c->ws && c->ws->kick) {
      c->ws->kick = false;
      ws_input(c); /* bytes that came with the upgrade request */
    }
    if (conn_mark(c)) conn_flush(c);
    else conn_close(c); /* its answer depends on a sync that failed */
  }
}

static void on_sweep(uv_timer_t *t) {
  ml_httpd_t *srv = t->data;
  uint64_t now = now_ms(srv);
  for (conn_t *c = srv->conns, *next; c; c = next) {
    next = c->next;
    if (c->closing) continue;
    bool idle = c->state == C_READING && !c->writing && !has_output(c) &&
                now - c->last_active >= srv->opts.idle_timeout_ms;
    bool lingered = c->state == C_CLOSING && c->linger_deadline &&
                    now >= c->linger_deadline;
    bool graceless = c->lst->closing && now >= c->lst->grace_deadline;
    if (idle || lingered || graceless) conn_close(c);
  }
}

static void on_sweep_closed(uv_handle_t *h) {
  ml_httpd_t *srv = h->data;
  srv->handles--;
  maybe_free_srv(srv);
}

/* }====== */

/* {====== listeners */

static void on_listener_closed(uv_handle_t *h) {
  ml_httpd_listener_t *l = h->data;
  ml_httpd_t *srv = l->srv;
  l->handle_closed = true;
  if (l->nconns == 0) listener_free(l);
  srv->handles--;
  maybe_free_srv(srv);
}

static void listener_unlink(ml_httpd_listener_t *l) {
  ml_httpd_t *srv = l->srv;
  if (l->prev) l->prev->next = l->next;
  else if (srv->listeners == l) srv->listeners = l->next;
  if (l->next) l->next->prev = l->prev;
  l->prev = l->next = NULL;
  srv->stats.listeners--;
}

void ml_httpd_listener_close(ml_httpd_listener_t *l) {
  if (!l || l->closing) return;
  ml_httpd_t *srv = l->srv;
  l->closing = true;
  l->grace_deadline = now_ms(srv) + srv->opts.shutdown_grace_ms;
  listener_unlink(l);
  if (l->path) unlink(l->path);
  uv_close(&l->u.h, on_listener_closed);
  for (conn_t *c = srv->conns, *next; c; c = next) {
    next = c->next;
    if (c->lst != l || c->closing) continue;
    if (c->state == C_READING && !c->writing && !has_output(c)) {
      conn_close(c); /* idle, or a request only partly received */
      continue;
    }
    if (c->state == C_WS) {
      ws_queue_close(c, ML_WS_GOING_AWAY, "server shutting down");
      ws_end(c);
      continue;
    }
    c->close_after = true;
    if (c->state == C_STREAMING) post_closed(c);
    if (c->state == C_READING) mark_dirty(c); /* closes after writing */
  }
}

int ml_httpd_listener_port(const ml_httpd_listener_t *l) { return l->port; }

const char *ml_httpd_listener_url(const ml_httpd_listener_t *l) {
  return l->url;
}

static int listen_unix(ml_httpd_listener_t *l, const char *path, int mode) {
  ml_httpd_t *srv = l->srv;
  struct stat st;
  if (strlen(path) >= 104) return UV_ENAMETOOLONG; /* sun_path */
  /* Only a socket file is stale; never remove anything else. */
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path);
  l->path = strdup(path);
  if (!l->path) return ML_ENOMEM;
  int rc = uv_pipe_init(srv->loop->uv, &l->u.pipe, 0);
  if (rc < 0) return rc;
  l->u.h.data = l;
  srv->handles++;
  rc = uv_pipe_bind(&l->u.pipe, path);
  if (rc < 0) return rc;
  l->created = true;
  /* Before listen(): nobody can connect until the mode is final. */
  if (chmod(path, (mode_t)(mode ? mode : 0600)) < 0) return uv_translate_sys_error(errno);
  snprintf(l->url, sizeof l->url, "unix:%s", path);
  return 0;
}

static int listen_tcp(ml_httpd_listener_t *l, const char *hostport) {
  ml_httpd_t *srv = l->srv;
  char host[64];
  const char *colon = strrchr(hostport, ':');
  if (!colon || colon == hostport) return ML_EINVALID;
  size_t hlen = (size_t)(colon - hostport);
  if (hostport[0] == '[') {
    if (hlen < 2 || hostport[hlen - 1] != ']') return ML_EINVALID;
    hostport++;
    hlen -= 2;
  }
  if (hlen >= sizeof host) return ML_EINVALID;
  memcpy(host, hostport, hlen);
  host[hlen] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || end == colon + 1 || port < 0 || port > 65535) return ML_EINVALID;
  if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
  struct sockaddr_storage ss;
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss) != 0)
    return ML_EINVALID;
  int rc = uv_tcp_init(srv->loop->uv, &l->u.tcp);
  if (rc < 0) return rc;
  l->u.h.data = l;
  srv->handles++;
  rc = uv_tcp_bind(&l->u.tcp, (struct sockaddr *)&ss, 0);
  if (rc < 0) return rc;
  return 0;
}

static int tcp_finish(ml_httpd_listener_t *l) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  int rc = uv_tcp_getsockname(&l->u.tcp, (struct sockaddr *)&ss, &len);
  if (rc < 0) return rc;
  char ip[64];
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    uv_ip6_name(a, ip, sizeof ip);
    l->port = ntohs(a->sin6_port);
    snprintf(l->url, sizeof l->url, "%s://[%s]:%d", l->tls ? "https" : "tcp",
             ip, l->port);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    uv_ip4_name(a, ip, sizeof ip);
    l->port = ntohs(a->sin_port);
    snprintf(l->url, sizeof l->url, "%s://%s:%d", l->tls ? "https" : "tcp", ip,
             l->port);
  }
  return 0;
}

static int listen_any(ml_httpd_t *srv, const char *url, int mode,
                      ml_tls_ctx_t *tls, uint64_t ev_id,
                      ml_httpd_listener_t **out) {
  *out = NULL;
  if (srv->freeing) return ML_ECLOSED;
  ml_httpd_listener_t *l = calloc(1, sizeof *l);
  if (!l) return ML_ENOMEM;
  l->srv = srv;
  l->ev_id = ev_id;
  int rc;
  if (tls) {
    l->tls = ml_tls_ctx_ref(tls);
    if (strncmp(url, "https://", 8) == 0) rc = listen_tcp(l, url + 8);
    else if (strncmp(url, "tcp://", 6) == 0) rc = listen_tcp(l, url + 6);
    else rc = ML_EINVALID;
  } else if (strncmp(url, "unix:", 5) == 0 && url[5]) {
    l->is_unix = true;
    rc = listen_unix(l, url + 5, mode);
  } else if (strncmp(url, "tcp://", 6) == 0) {
    rc = listen_tcp(l, url + 6);
  } else {
    rc = ML_EINVALID;
  }
  if (rc == 0) rc = uv_listen(&l->u.s, 511, on_connection);
  if (rc == 0 && !l->is_unix) rc = tcp_finish(l);
  if (rc == 0 && !srv->hooked) {
    rc = hook(srv);
    srv->hooked = rc == 0;
  }
  if (rc < 0) goto error;
  if (!srv->sweep_started) {
    uint64_t every = srv->opts.idle_timeout_ms / 4;
    if (every > 1000) every = 1000;
    if (every > srv->opts.shutdown_grace_ms / 4)
      every = srv->opts.shutdown_grace_ms / 4;
    if (every < 10) every = 10;
    uv_timer_start(&srv->sweep, on_sweep, every, every);
    srv->sweep_started = true;
  }
  l->next = srv->listeners;
  if (srv->listeners) srv->listeners->prev = l;
  srv->listeners = l;
  srv->stats.listeners++;
  *out = l;
  return 0;

error:
  if (l->u.h.data) {
    /* The handle exists: its close callback frees the record. */
    l->closing = true;
    l->handle_closed = false;
    if (l->created) unlink(l->path);
    uv_close(&l->u.h, on_listener_closed);
  } else {
    listener_free(l);
  }
  return rc;
}

int ml_httpd_listen(ml_httpd_t *srv, const char *url, int mode, uint64_t ev_id,
                    ml_httpd_listener_t **out) {
  return listen_any(srv, url, mode, NULL, ev_id, out);
}

int ml_httpd_listen_tls(ml_httpd_t *srv, const char *url, ml_tls_ctx_t *tls,
                        uint64_t ev_id, ml_httpd_listener_t **out) {
  if (!tls) return ML_EINVALID;
  return listen_any(srv, url, 0, tls, ev_id, out);
}

/* }====== */

int ml_httpd_new(ml_loop_t *loop, const ml_httpd_opts_t *opts,
                 ml_httpd_t **out) {
  ml_httpd_t *srv = calloc(1, sizeof *srv);
  *out = NULL;
  if (!srv) return ML_ENOMEM;
  srv->loop = loop;
  if (opts) srv->opts = *opts;
  if (!srv->opts.max_header_bytes)
    srv->opts.max_header_bytes = ML_HTTP_MAX_HEADER_BYTES;
  if (!srv->opts.max_body_bytes) srv->opts.max_body_bytes = ML_HTTP_MAX_BODY_BYTES;
  if (!srv->opts.idle_timeout_ms) srv->opts.idle_timeout_ms = 5 * 60 * 1000;
  if (!srv->opts.shutdown_grace_ms) srv->opts.shutdown_grace_ms = 30 * 1000;
  uv_timer_init(loop->uv, &srv->sweep);
  srv->sweep.data = srv;
  uv_unref((uv_handle_t *)&srv->sweep); /* never keeps the loop alive */
  srv->handles = 1;
  *out = srv;
  return 0;
}

void ml_httpd_free(ml_httpd_t *srv) {
  if (!srv || srv->freeing) return;
  srv->freeing = true;
  unhook(srv);
  ml_httpd_set_durable(srv, NULL);
  while (srv->listeners) ml_httpd_listener_close(srv->listeners);
  for (conn_t *c = srv->conns; c; c = c->next) conn_close(c);
  srv->dirty = NULL;
  uv_close((uv_handle_t *)&srv->sweep, on_sweep_closed);
}

ml_httpd_stats_t ml_httpd_stats(const ml_httpd_t *srv) { return srv->stats; }
