/* Service proxy: a listener per Service port that relays each accepted
 * connection to one backend, as kube-proxy's userspace mode did.
 *
 *   client --read--> [conn] --write--> backend     (side 0 -> side 1)
 *   client <-write-- [conn] <--read--- backend     (side 1 -> side 0)
 *
 * Each direction reads into a fresh buffer that becomes the write request
 * for the other side, so no byte is copied twice. When the other side's
 * write queue passes HIGH_WATER the reading side stops until it drains
 * below LOW_WATER. EOF on one side shuts down writing on the other; the
 * connection closes when both directions are shut, or at the first error.
 * Memory is freed only in close callbacks (libuv's rule). */
#include "svc_proxy.h"

#include <stdlib.h>
#include <string.h>

#define BUF_SIZE (64 * 1024)
#define HIGH_WATER (256 * 1024)
#define LOW_WATER (64 * 1024)

typedef struct conn_s conn_t;

typedef struct {
  uv_tcp_t tcp;
  uv_shutdown_t shut;
  int open;     /* handle initialised and not yet closed */
  int eof;      /* read EOF seen */
  int paused;   /* reading stopped for backpressure */
  int shut_done;
} side_t;

struct conn_s {
  side_t side[2]; /* 0: client, 1: backend */
  uv_connect_t connect;
  ml_svc_proxy_t *owner; /* NULL once the proxy is freed */
  conn_t *prev, *next;
  int handles;  /* open handles: freed when it drops to 0 while closing */
  int closing;
  int retrying; /* backend handle closing to try the next backend */
  size_t tries;
};

struct ml_svc_proxy_s {
  uv_tcp_t listener;
  struct sockaddr_in *backends;
  size_t n, next;
  conn_t *conns;
  ml_svc_proxy_stats_t stats;
  int port;
};

typedef struct {
  uv_write_t req;
  conn_t *c;
  int from; /* the side that read the bytes */
  char *buf;
} wreq_t;

static void start_connect(conn_t *c);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static int side_of(conn_t *c, uv_handle_t *h) {
  return h == (uv_handle_t *)&c->side[0].tcp ? 0 : 1;
}

/* {====== closing */

static void conn_free(conn_t *c) {
  ml_svc_proxy_t *p = c->owner;
  if (p) {
    if (c->prev) c->prev->next = c->next;
    else p->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    p->stats.active--;
  }
  free(c);
}

static void on_close(uv_handle_t *h) {
  conn_t *c = h->data;
  c->side[side_of(c, h)].open = 0;
  c->handles--;
  if (c->retrying && !c->closing) {
    c->retrying = 0;
    start_connect(c);
    return;
  }
  if (c->closing && c->handles == 0) conn_free(c);
}

static void conn_close(conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  int pending = 0;
  for (int i = 0; i < 2; i++) {
    uv_handle_t *h = (uv_handle_t *)&c->side[i].tcp;
    if (c->side[i].open) {
      pending = 1;
      if (!uv_is_closing(h)) uv_close(h, on_close);
    }
  }
  if (!pending) conn_free(c);
}

/* Both directions shut: nothing more can flow. */
static void maybe_finish(conn_t *c) {
  if (c->side[0].eof && c->side[1].eof && c->side[0].shut_done &&
      c->side[1].shut_done)
    conn_close(c);
}

/* }====== */

/* {====== relaying */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)h;
  (void)hint;
  char *mem = malloc(BUF_SIZE);
  *b = uv_buf_init(mem, mem ? BUF_SIZE : 0);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn_t *c = req->data;
  if (c->closing) return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  c->side[req == &c->side[0].shut ? 0 : 1].shut_done = 1;
  maybe_finish(c);
}

static void on_write(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  conn_t *c = w->c;
  int from = w->from;
  free(w->buf);
  free(w);
  if (c->closing) return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  side_t *src = &c->side[from];
  side_t *dst = &c->side[1 - from];
  if (src->paused && dst->tcp.write_queue_size < LOW_WATER) {
    src->paused = 0;
    if (uv_read_start((uv_stream_t *)&src->tcp, on_alloc, on_read) < 0)
      conn_close(c);
  }
}

static void relay(conn_t *c, int from, char *buf, size_t n) {
  side_t *dst = &c->side[1 - from];
  wreq_t *w = malloc(sizeof *w);
  if (!w) {
    free(buf);
    conn_close(c);
    return;
  }
  w->c = c;
  w->from = from;
  w->buf = buf;
  uv_buf_t out = uv_buf_init(buf, (unsigned)n);
  if (uv_write(&w->req, (uv_stream_t *)&dst->tcp, &out, 1, on_write) < 0) {
    free(buf);
    free(w);
    conn_close(c);
    return;
  }
  ml_svc_proxy_t *p = c->owner;
  if (p) {
    if (from == 0) p->stats.bytes_in += n;
    else p->stats.bytes_out += n;
  }
  if (dst->tcp.write_queue_size > HIGH_WATER) {
    if (p) p->stats.pauses++;
    c->side[from].paused = 1;
    uv_read_stop((uv_stream_t *)&c->side[from].tcp);
  }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn_t *c = s->data;
  int from = side_of(c, (uv_handle_t *)s);
  if (n > 0 && !c->closing) {
    relay(c, from, b->base, (size_t)n);
    return;
  }
  free(b->base);
  if (n == 0 || c->closing) return;
  if (n != UV_EOF) {
    conn_close(c);
    return;
  }
  /* Half-close: the peer sent everything; pass the EOF on once the
   * queued writes have gone out (uv_shutdown waits for them). */
  c->side[from].eof = 1;
  uv_read_stop(s);
  side_t *dst = &c->side[1 - from];
  dst->shut.data = c;
  if (uv_shutdown(&dst->shut, (uv_stream_t *)&dst->tcp, on_shutdown) < 0)
    conn_close(c);
}

/* }====== */

/* {====== connecting */

static void on_connect(uv_connect_t *req, int status) {
  conn_t *c = req->data;
  if (c->closing) return;
  if (status < 0) {
    ml_svc_proxy_t *p = c->owner;
    /* Another backend may answer (kube-proxy's userspace mode tried
     * each endpoint in turn before giving up). */
    if (p && c->tries < p->n) {
      c->retrying = 1;
      uv_close((uv_handle_t *)&c->side[1].tcp, on_close);
      return;
    }
    if (p) p->stats.rejected++;
    conn_close(c);
    return;
  }
  for (int i = 0; i < 2; i++) {
    if (uv_read_start((uv_stream_t *)&c->side[i].tcp, on_alloc, on_read) < 0) {
      conn_close(c);
      return;
    }
  }
}

static void start_connect(conn_t *c) {
  ml_svc_proxy_t *p = c->owner;
  if (!p || p->n == 0) {
    if (p) p->stats.rejected++;
    conn_close(c);
    return;
  }
  const struct sockaddr_in *addr = &p->backends[p->next++ % p->n];
  c->tries++;
  side_t *up = &c->side[1];
  memset(&up->tcp, 0, sizeof up->tcp);
  if (uv_tcp_init(p->listener.loop, &up->tcp) < 0) {
    conn_close(c);
    return;
  }
  up->tcp.data = c;
  up->open = 1;
  c->handles++;
  c->connect.data = c;
  int rc = uv_tcp_connect(&c->connect, &up->tcp, (const struct sockaddr *)addr,
                          on_connect);
  if (rc < 0) on_connect(&c->connect, rc);
}

static void on_connection(uv_stream_t *server, int status) {
  ml_svc_proxy_t *p = server->data;
  if (status < 0) return;
  conn_t *c = calloc(1, sizeof *c);
  if (!c) return;
  c->owner = p;
  c->next = p->conns;
  if (p->conns) p->conns->prev = c;
  p->conns = c;
  p->stats.active++;
  p->stats.accepted++;
  side_t *cl = &c->side[0];
  if (uv_tcp_init(server->loop, &cl->tcp) < 0) {
    conn_free(c);
    return;
  }
  cl->tcp.data = c;
  cl->open = 1;
  c->handles = 1;
  if (uv_accept(server, (uv_stream_t *)&cl->tcp) < 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&cl->tcp, 1);
  start_connect(c);
}

/* }====== */

/* {====== the proxy */

static void free_proxy(uv_handle_t *h) {
  ml_svc_proxy_t *p = h->data;
  free(p->backends);
  free(p);
}

int ml_svc_proxy_new(uv_loop_t *loop, const char *host, int port,
                     ml_svc_proxy_t **out) {
  struct sockaddr_in addr;
  int rc = uv_ip4_addr(host, port, &addr);
  if (rc < 0) return rc;
  if (port < 0 || port > 65535) return UV_EINVAL;
  ml_svc_proxy_t *p = calloc(1, sizeof *p);
  if (!p) return UV_ENOMEM;
  rc = uv_tcp_init(loop, &p->listener);
  if (rc < 0) {
    free(p);
    return rc;
  }
  p->listener.data = p;
  rc = uv_tcp_bind(&p->listener, (const struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&p->listener, 128, on_connection);
  if (rc == 0) {
    struct sockaddr_in got;
    int len = sizeof got;
    rc = uv_tcp_getsockname(&p->listener, (struct sockaddr *)&got, &len);
    p->port = ntohs(got.sin_port);
  }
  if (rc < 0) {
    uv_close((uv_handle_t *)&p->listener, free_proxy);
    return rc;
  }
  *out = p;
  return 0;
}

int ml_svc_proxy_set_backends(ml_svc_proxy_t *p, const char *const *addrs,
                              size_t n) {
  struct sockaddr_in *list = NULL;
  if (n > 0) {
    list = calloc(n, sizeof *list);
    if (!list) return UV_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    char host[64];
    const char *colon = strrchr(addrs[i], ':');
    size_t hl = colon ? (size_t)(colon - addrs[i]) : 0;
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || hl == 0 || hl >= sizeof host || !end || *end ||
        port < 1 || port > 65535) {
      free(list);
      return UV_EINVAL;
    }
    memcpy(host, addrs[i], hl);
    host[hl] = 0;
    if (uv_ip4_addr(host, (int)port, &list[i]) < 0) {
      free(list);
      return UV_EINVAL;
    }
  }
  free(p->backends);
  p->backends = list;
  p->n = n;
  return 0;
}

int ml_svc_proxy_port(const ml_svc_proxy_t *p) { return p->port; }

void ml_svc_proxy_stats(const ml_svc_proxy_t *p, ml_svc_proxy_stats_t *out) {
  *out = p->stats;
}

void ml_svc_proxy_free(ml_svc_proxy_t *p) {
  if (!p) return;
  conn_t *c = p->conns;
  p->conns = NULL;
  while (c) {
    conn_t *next = c->next;
    c->owner = NULL;
    c->retrying = 0;
    conn_close(c);
    c = next;
  }
  uv_close((uv_handle_t *)&p->listener, free_proxy);
}

/* }====== */
