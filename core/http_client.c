/* HTTP client over libcurl's multi_socket API on the moonlet loop (see
 * http_client.h):
 *
 *   curl ─ SOCKETFUNCTION ─► c->epfd (own epoll set) ── uv_poll ─┐
 *        ─ TIMERFUNCTION  ─► c->timer (uv_timer_t) ─── fires ────┤
 *                                                                ▼
 *             ml__curl.multi_socket_action() ─► check_done(): info_read,
 *             finish() posts END, start_queued() fills free slots
 *
 * curl's sockets live in an epoll set of our own, which the loop polls as
 * one descriptor: a socket costs an epoll_ctl per interest change, where a
 * uv_poll_t per socket cost twice that plus an ioctl and a check (probes
 * open one connection per attempt, so this is per probe).
 *
 * curl's callbacks only record state, post events and (re)arm libuv handles;
 * libcurl itself is called only from libuv callbacks or from API entry
 * points, never from inside one of its own callbacks. Every call goes
 * through the table of core/curl_load.c: the library is loaded by the first
 * ml_http_client_new() or ml_http_prepare(), not at process start. */
#include "http_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "curl_load.h"
#include "err.h"
#include "log.h"

/* Idle easy handles kept for reuse: an init and a cleanup cost about 12k
 * instructions, so a burst of probes up to the probe runner's default
 * bound (64 in flight) reuses rather than reallocates. */
#define EASY_POOL_MAX 64

/* curl's smallest receive buffer (CURL_MIN_READ_SIZE in its sources). */
#define ML_HTTP_LEAN_BUFFER 1024

#define EPOLL_BATCH 64
#define PENDING_DEL_MAX 64

enum { REQ_QUEUED = 1, REQ_ACTIVE, REQ_ENDED };

typedef struct {
  ml_http_req_t *head, *tail;
  size_t n;
} req_list_t;

/* A request is shared by the client (while queued or active), its caller
 * (when not detached) and each of its events still in the loop queue; it is
 * freed when the last of them lets go. */
struct ml_http_req_s {
  ml_http_client_t *c; /* NULL once ended */
  CURL *easy;
  uint64_t id;
  int refs;
  int state;
  ml_http_req_t *prev, *next;
  bool stream, head_sent, delivered, oom, had_body;
  bool lean, kept_last; /* kept_last: lean kept the last header line */
  int redirect_mode, redirects;
  size_t max_body;
  char *host; /* SAME_HOST: the host redirects must stay on */
  ml_http_prepared_t *prep; /* then `host` is the prepared one's */
  char *body;
  struct curl_slist *headers;
  ml_http_event_t *resp;  /* the END event being built */
  ml_http_event_t *chunk; /* a DATA event still queued: appended to */
  char errbuf[CURL_ERROR_SIZE];
};

struct ml_http_prepared_s {
  int refs; /* the creator's + one per request using it */
  char *url;
  char *host;
  bool numeric; /* host is an IP literal: nothing worth caching */
  struct curl_slist *headers; /* "Expect:" then the caller's lines */
};

struct ml_http_client_s {
  ml_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  int epfd;        /* curl's sockets */
  uv_poll_t epoll; /* readable when one of them is ready */
  /* Sockets curl stopped watching, still in the set: most are closed
   * right after (CLOSESOCKETFUNCTION), which takes them out for free. */
  curl_socket_t pending_del[PENDING_DEL_MAX];
  int npending;
  req_list_t queued, active;
  size_t nsocks;
  size_t max_inflight;
  int handles; /* uv handles not yet through their close callback */
  bool closing;
  bool orphaned; /* the loop was shut down under us: no libuv calls */
  CURL *pool[EASY_POOL_MAX];
  int npool;
  uint64_t requests, connects, easy_made;
};

static void check_done(ml_http_client_t *c);

/* Was the loop shut down under us (our timer closed by someone else, as
 * ml_runtime_close's uv_walk does)? Then libuv must not be touched: the
 * handles are closed and their memory is ours to free. */
static bool orphaned(ml_http_client_t *c) {
  if (!c->orphaned && !c->closing && uv_is_closing((uv_handle_t *)&c->timer))
    c->orphaned = true;
  return c->orphaned;
}

/* {====== small helpers */

static void list_append(req_list_t *l, ml_http_req_t *r) {
  r->next = NULL;
  r->prev = l->tail;
  if (l->tail)
    l->tail->next = r;
  else
    l->head = r;
  l->tail = r;
  l->n++;
}

static void list_remove(req_list_t *l, ml_http_req_t *r) {
  if (r->prev)
    r->prev->next = r->next;
  else
    l->head = r->next;
  if (r->next)
    r->next->prev = r->prev;
  else
    l->tail = r->prev;
  r->prev = r->next = NULL;
  l->n--;
}

static char *memdup0(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (!p) return NULL;
  if (n) memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

/* }====== */

/* {====== requests and events */

static void prepared_unref(ml_http_prepared_t *p) {
  if (--p->refs > 0) return;
  free(p->url);
  free(p->host);
  ml__curl.slist_free_all(p->headers);
  free(p);
}

static void req_unref(ml_http_req_t *r) {
  if (--r->refs > 0) return;
  if (r->prep)
    prepared_unref(r->prep);
  else
    free(r->host);
  free(r->body);
  ml__curl.slist_free_all(r->headers);
  free(r);
}

static void headers_clear(ml_http_event_t *ev) {
  for (size_t i = 0; i < ev->nheaders; i++) {
    free(ev->headers[i].name);
    free(ev->headers[i].value);
  }
  ev->nheaders = 0;
}

static void ev_destroy(ml_event_t *e) {
  ml_http_event_t *ev = (ml_http_event_t *)e;
  headers_clear(ev);
  free(ev->headers);
  free(ev->body);
  free(ev->errmsg);
  ml_http_req_t *r = ev->req;
  if (r) {
    if (ev->kind == ML_HTTP_END) r->delivered = true;
    if (r->chunk == ev) r->chunk = NULL;
    req_unref(r);
  }
  free(ev);
}

static ml_http_event_t *ev_new(ml_http_req_t *r, int kind) {
  ml_http_event_t *ev = calloc(1, sizeof *ev);
  if (!ev) return NULL;
  ev->ev.type = kind == ML_HTTP_END ? ML_EV_HTTP_DONE : ML_EV_HTTP_CHUNK;
  ev->ev.id = r->id;
  ev->ev.destroy = ev_destroy;
  ev->kind = kind;
  ev->stream = r->stream;
  ev->req = r;
  r->refs++;
  return ev;
}

static void ev_post(ml_http_client_t *c, ml_http_event_t *ev) {
  /* After a shutdown nobody drains the queue any more. */
  if (orphaned(c)) {
    ml_event_free(&ev->ev);
    return;
  }
  ml_loop_post(c->loop, &ev->ev);
}

static int body_append(ml_http_event_t *ev, const char *p, size_t n) {
  if (ev->body_len + n + 1 > ev->body_cap) {
    size_t cap = ev->body_cap ? ev->body_cap : 1024;
    while (cap < ev->body_len + n + 1) cap *= 2;
    char *b = realloc(ev->body, cap);
    if (!b) return ML_ENOMEM;
    ev->body = b;
    ev->body_cap = cap;
  }
  memcpy(ev->body + ev->body_len, p, n);
  ev->body_len += n;
  ev->body[ev->body_len] = '\0';
  return 0;
}

static int header_add(ml_http_event_t *ev, const char *name, size_t nlen,
                      const char *value, size_t vlen) {
  if (ev->nheaders == ev->headers_cap) {
    size_t cap = ev->headers_cap ? ev->headers_cap * 2 : 16;
    ml_http_header_t *h = realloc(ev->headers, cap * sizeof *h);
    if (!h) return ML_ENOMEM;
    ev->headers = h;
    ev->headers_cap = cap;
  }
  char *n = memdup0(name, nlen);
  char *v = memdup0(value, vlen);
  if (!n || !v) {
    free(n);
    free(v);
    return ML_ENOMEM;
  }
  for (char *p = n; *p; p++) *p = (char)tolower((unsigned char)*p);
  ev->headers[ev->nheaders++] = (ml_http_header_t){n, v};
  return 0;
}

static const char *header_find(ml_http_event_t *ev, const char *name) {
  for (size_t i = 0; i < ev->nheaders; i++)
    if (strcmp(ev->headers[i].name, name) == 0) return ev->headers[i].value;
  return NULL;
}

/* }====== */

/* {====== redirects */

static bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 ||
         status == 308;
}

/* Resolves `location` against `base`; returns the absolute URL (curl_free)
 * and its host name in *host (curl_free), or NULL. */
static char *resolve(const char *base, const char *location, char **host) {
  char *url = NULL;
  *host = NULL;
  CURLU *u = ml__curl.url();
  if (!u) return NULL;
  if ((base && ml__curl.url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK) ||
      ml__curl.url_set(u, CURLUPART_URL, location, 0) != CURLUE_OK ||
      ml__curl.url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK ||
      ml__curl.url_get(u, CURLUPART_HOST, host, 0) != CURLUE_OK) {
    ml__curl.free(url);
    url = NULL;
  }
  ml__curl.url_cleanup(u);
  return url;
}

static char *url_host(const char *url) {
  char *host = NULL;
  char *abs = resolve(NULL, url, &host);
  char *out = abs && host ? strdup(host) : NULL;
  ml__curl.free(abs);
  ml__curl.free(host);
  return out;
}

/* Would this response be followed instead of returned? Decided from the
 * Location header, since libcurl resolves it only once the transfer ends. */
static bool redirect_target(ml_http_req_t *r, long status, char **abs_url) {
  if (abs_url) *abs_url = NULL;
  if (r->redirect_mode == ML_HTTP_REDIRECT_NONE || !is_redirect(status))
    return false;
  const char *loc = header_find(r->resp, "location");
  if (!loc) return false;
  if (r->redirect_mode == ML_HTTP_REDIRECT_ALL && !abs_url) return true;
  char *base = NULL, *host = NULL;
  ml__curl.easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &base);
  char *url = resolve(base, loc, &host);
  bool follow = url && host && r->host && strcasecmp(host, r->host) == 0;
  ml__curl.free(host);
  if (follow && abs_url)
    *abs_url = url;
  else
    ml__curl.free(url);
  return follow;
}

/* }====== */

/* {====== libcurl callbacks: record, post, arm; never call libcurl */

static void send_head(ml_http_req_t *r, long status) {
  r->head_sent = true;
  ml_http_event_t *ev = ev_new(r, ML_HTTP_HEAD);
  if (!ev) {
    r->oom = true;
    return;
  }
  ev->status = status;
  /* The headers move from the END event under construction. */
  ev->headers = r->resp->headers;
  ev->nheaders = r->resp->nheaders;
  ev->headers_cap = r->resp->headers_cap;
  r->resp->headers = NULL;
  r->resp->nheaders = r->resp->headers_cap = 0;
  ev_post(r->c, ev);
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud) {
  ml_http_req_t *r = ud;
  size_t len = size * n, l = len;
  ml_http_event_t *ev = r->resp;
  if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
    /* A new response (after 1xx or a followed redirect) replaces the last. */
    headers_clear(ev);
    ev->body_len = 0;
    ev->truncated = false;
    return len;
  }
  while (l > 0 && (buf[l - 1] == '\r' || buf[l - 1] == '\n')) l--;
  if (l == 0) { /* end of a header block */
    long status = 0;
    ml__curl.easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (r->stream && !r->head_sent && status >= 200 &&
        !redirect_target(r, status, NULL))
      send_head(r, status);
    return len;
  }
  if (buf[0] == ' ' || buf[0] == '\t') { /* obsolete line folding */
    if (ev->nheaders == 0 || (r->lean && !r->kept_last)) return len;
    ml_http_header_t *h = &ev->headers[ev->nheaders - 1];
    size_t old = strlen(h->value);
    char *v = realloc(h->value, old + l + 1);
    if (!v) return 0;
    v[old] = ' ';
    size_t i = 0;
    while (i < l && (buf[i] == ' ' || buf[i] == '\t')) i++;
    memcpy(v + old + 1, buf + i, l - i);
    v[old + 1 + l - i] = '\0';
    h->value = v;
    return len;
  }
  /* Lean: only the redirect target is ever read. */
  if (r->lean) {
    r->kept_last = l > 9 && strncasecmp(buf, "location:", 9) == 0;
    if (!r->kept_last) return len;
  }
  const char *colon = memchr(buf, ':', l);
  if (!colon) return len;
  const char *v = colon + 1, *end = buf + l;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
  if (header_add(ev, buf, (size_t)(colon - buf), v, (size_t)(end - v)) < 0) {
    r->oom = true;
    return 0;
  }
  return len;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud) {
  ml_http_req_t *r = ud;
  size_t len = size * n;
  if (r->stream) {
    if (!r->head_sent) return len; /* body of a 1xx or followed 3xx */
    if (!r->chunk) {
      r->chunk = ev_new(r, ML_HTTP_DATA);
      if (!r->chunk) goto oom;
      ev_post(r->c, r->chunk);
      if (!r->chunk) return len; /* orphaned: already gone */
    }
    if (body_append(r->chunk, p, len) < 0) goto oom;
    return len;
  }
  ml_http_event_t *ev = r->resp;
  if (r->lean) { /* a probe reads the body of a 3xx only */
    long status = 0;
    ml__curl.easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status < 300 || status >= 400) return len;
  }
  size_t keep = len;
  if (r->max_body && ev->body_len + len > r->max_body) {
    keep = r->max_body - ev->body_len;
    ev->truncated = true;
  }
  /* Past the cap the rest is read and dropped: not a failure. */
  if (keep && body_append(ev, p, keep) < 0) goto oom;
  return len;
oom:
  r->oom = true;
  return 0;
}

/* The interest curl asked for rides in the event data next to the fd, so
 * an error or hang-up can be reported as the directions curl waits on (as
 * libuv does). */
static uint64_t ep_data(curl_socket_t fd, int what) {
  return (uint64_t)(uint32_t)fd | ((uint64_t)(what & CURL_POLL_INOUT) << 32);
}

static void on_epoll(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  ml_http_client_t *c = h->data;
  struct epoll_event evs[EPOLL_BATCH];
  int n, running;
  do {
    n = epoll_wait(c->epfd, evs, EPOLL_BATCH, 0);
    for (int i = 0; i < n; i++) {
      curl_socket_t fd = (curl_socket_t)(uint32_t)evs[i].data.u64;
      int what = (int)(evs[i].data.u64 >> 32), flags = 0;
      uint32_t e = evs[i].events;
      if (e & (EPOLLERR | EPOLLHUP)) {
        /* Let curl find out what happened the way it expected to. */
        if (what & CURL_POLL_IN) flags |= CURL_CSELECT_IN;
        if (what & CURL_POLL_OUT) flags |= CURL_CSELECT_OUT;
        if (!flags) flags = CURL_CSELECT_ERR;
      }
      if (e & (EPOLLIN | EPOLLRDHUP)) flags |= CURL_CSELECT_IN;
      if (e & EPOLLOUT) flags |= CURL_CSELECT_OUT;
      /* A socket of this batch may be closed (and its number reused)
       * inside the call: curl then finds nothing to do on it. */
      ml__curl.multi_socket_action(c->multi, fd, flags, &running);
    }
  } while (n == EPOLL_BATCH);
  check_done(c);
}

static bool pending_take(ml_http_client_t *c, curl_socket_t fd) {
  for (int i = 0; i < c->npending; i++) {
    if (c->pending_del[i] == fd) {
      c->pending_del[i] = c->pending_del[--c->npending];
      return true;
    }
  }
  return false;
}

/* Takes out of the set what curl stopped watching but did not close (a
 * kept connection). Runs when control comes back from libcurl. */
static void pending_flush(ml_http_client_t *c) {
  struct epoll_event ev = {0};
  while (c->npending > 0)
    epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->pending_del[--c->npending], &ev);
}

/* CURLOPT_CLOSESOCKETFUNCTION: curl reports REMOVE just before this, and
 * closing a descriptor drops it from every epoll set: no EPOLL_CTL_DEL. */
static int on_close_socket(void *clientp, curl_socket_t fd) {
  pending_take(clientp, fd);
  return close(fd);
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp,
                     void *socketp) {
  (void)e;
  ml_http_client_t *c = userp;
  struct epoll_event ev = {0};
  if (what == CURL_POLL_REMOVE) {
    if (socketp) {
      ml__curl.multi_assign(c->multi, fd, NULL);
      c->nsocks--;
      /* Deferred; DEL fails harmlessly if the fd is gone by then. */
      if (c->npending < PENDING_DEL_MAX)
        c->pending_del[c->npending++] = fd;
      else
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, fd, &ev);
    }
    return 0;
  }
  /* A number that was closed behind our back and reused: the new socket
   * must not lose its registration to a deferred DEL. */
  if (c->npending) pending_take(c, fd);
  if (what & CURL_POLL_IN) ev.events |= EPOLLIN;
  if (what & CURL_POLL_OUT) ev.events |= EPOLLOUT;
  ev.data.u64 = ep_data(fd, what);
  /* A number curl closed without a REMOVE may come back as a new socket:
   * the kernel forgot the old one, so ADD and MOD swap on failure. */
  int op = socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (epoll_ctl(c->epfd, op, fd, &ev) < 0) {
    int alt = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if ((errno != EEXIST && errno != ENOENT) ||
        epoll_ctl(c->epfd, alt, fd, &ev) < 0)
      return -1;
  }
  if (!socketp) {
    /* Any non-NULL marker: "in the set". */
    ml__curl.multi_assign(c->multi, fd, c);
    c->nsocks++;
  }
  return 0;
}

static void on_timer(uv_timer_t *t) {
  ml_http_client_t *c = t->data;
  int running;
  ml__curl.multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(c);
}

/* CURLMOPT_TIMERFUNCTION: only (re)arm; the action runs from on_timer. */
static int on_curl_timer(CURLM *m, long timeout_ms, void *userp) {
  (void)m;
  ml_http_client_t *c = userp;
  if (orphaned(c)) return 0;
  if (timeout_ms < 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

/* }====== */

/* {====== transfer life cycle */

static CURL *easy_get(ml_http_client_t *c) {
  if (c->npool > 0) return c->pool[--c->npool];
  c->easy_made++;
  return ml__curl.easy_init();
}

static void easy_put(ml_http_client_t *c, CURL *e) {
  if (c->npool < EASY_POOL_MAX && !c->closing) {
    ml__curl.easy_reset(e);
    c->pool[c->npool++] = e;
  } else {
    ml__curl.easy_cleanup(e);
  }
}

/* Idle clients must not keep the loop alive. */
static void update_ref(ml_http_client_t *c) {
  pending_flush(c);
  if (c->closing || orphaned(c)) return;
  /* The epoll poll is always active: its reference is what keeps the
   * loop running while a transfer waits on a socket. */
  if (c->active.n || c->queued.n) {
    uv_ref((uv_handle_t *)&c->timer);
    uv_ref((uv_handle_t *)&c->epoll);
  } else {
    uv_unref((uv_handle_t *)&c->timer);
    uv_unref((uv_handle_t *)&c->epoll);
  }
}

static int map_error(ml_http_req_t *r, CURLcode rc) {
  long os = 0;
  ml__curl.easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os);
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return UV_ETIMEDOUT;
    case CURLE_COULDNT_CONNECT: return os > 0 ? -(int)os : UV_ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return UV_EAI_NONAME;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: return ML_EINVALID;
    case CURLE_OUT_OF_MEMORY: return ML_ENOMEM;
    case CURLE_WRITE_ERROR: return r->oom ? ML_ENOMEM : ML_EIO;
    case CURLE_GOT_NOTHING: return UV_ECONNRESET;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR: return os > 0 ? -(int)os : UV_ECONNRESET;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE: return UV_EPROTO;
    default: return ML_EIO;
  }
}

/* Ends a queued or active request: posts its END event last. */
static void finish(ml_http_client_t *c, ml_http_req_t *r, int err,
                   const char *msg) {
  long status = 0;
  if (r->state == REQ_ACTIVE) {
    list_remove(&c->active, r);
    ml__curl.easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    ml__curl.multi_remove_handle(c->multi, r->easy);
  } else {
    list_remove(&c->queued, r);
  }
  c->requests++;
  if (r->stream && !err && !r->head_sent) send_head(r, status);
  ml_http_event_t *ev = r->resp;
  r->resp = NULL;
  r->chunk = NULL; /* a queued DATA event is complete now */
  ev->status = status;
  ev->redirects = r->redirects;
  if (err) {
    ev->err = err;
    ev->errmsg = strdup(msg && *msg ? msg : ml_strerror(err));
  }
  if (r->stream || err) {
    headers_clear(ev);
    ev->body_len = 0;
    ev->truncated = false;
  } else if (r->lean) {
    headers_clear(ev); /* the Location that was read, if any */
  }
  easy_put(c, r->easy);
  r->easy = NULL;
  r->state = REQ_ENDED;
  r->c = NULL;
  ev_post(c, ev);
  req_unref(r); /* the client's reference */
}

/* SAME_HOST policy: re-issues the request on the redirect target. */
static bool follow_same_host(ml_http_client_t *c, ml_http_req_t *r,
                             long status) {
  char *url = NULL;
  if (!redirect_target(r, status, &url)) return false;
  if (r->redirects >= ML_HTTP_MAX_REDIRECTS) {
    ml__curl.free(url);
    finish(c, r, ML_EIO, "stopped after 10 redirects");
    return true;
  }
  ml__curl.multi_remove_handle(c->multi, r->easy);
  ml__curl.easy_setopt(r->easy, CURLOPT_URL, url);
  ml__curl.free(url);
  /* What browsers and Go do: 303, and 301/302 after a POST, become GET. */
  if (status == 303 || ((status == 301 || status == 302) && r->had_body)) {
    ml__curl.easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, (char *)NULL);
    ml__curl.easy_setopt(r->easy, CURLOPT_HTTPGET, 1L);
  }
  r->redirects++;
  headers_clear(r->resp);
  r->resp->body_len = 0;
  r->resp->truncated = false;
  r->errbuf[0] = '\0';
  CURLMcode mc = ml__curl.multi_add_handle(c->multi, r->easy);
  if (mc != CURLM_OK) finish(c, r, ML_EIO, ml__curl.multi_strerror(mc));
  return true;
}

static void transfer_done(ml_http_client_t *c, ml_http_req_t *r, CURLcode rc) {
  long status = 0, conns = 0;
  ml__curl.easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  ml__curl.easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &conns);
  c->connects += (uint64_t)conns;
  if (rc == CURLE_OK) {
    if (r->redirect_mode == ML_HTTP_REDIRECT_SAME_HOST &&
        follow_same_host(c, r, status))
      return;
    finish(c, r, 0, NULL);
    return;
  }
  int err = map_error(r, rc);
  const char *msg = r->errbuf[0] ? r->errbuf : ml__curl.easy_strerror(rc);
  if (rc == CURLE_TOO_MANY_REDIRECTS) msg = "stopped after 10 redirects";
  finish(c, r, err, msg);
}

static void start(ml_http_client_t *c, ml_http_req_t *r) {
  list_append(&c->active, r);
  r->state = REQ_ACTIVE;
  CURLMcode mc = ml__curl.multi_add_handle(c->multi, r->easy);
  if (mc != CURLM_OK) finish(c, r, ML_EIO, ml__curl.multi_strerror(mc));
}

static void start_queued(ml_http_client_t *c) {
  while (!c->closing && c->queued.head && c->active.n < c->max_inflight) {
    ml_http_req_t *r = c->queued.head;
    list_remove(&c->queued, r);
    start(c, r);
  }
}

static void check_done(ml_http_client_t *c) {
  CURLMsg *m;
  int left;
  while ((m = ml__curl.multi_info_read(c->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE) continue;
    /* `m` dies with curl_multi_remove_handle: copy what we need first. */
    CURL *e = m->easy_handle;
    CURLcode rc = m->data.result;
    char *priv = NULL;
    ml__curl.easy_getinfo(e, CURLINFO_PRIVATE, &priv);
    if (priv) transfer_done(c, (ml_http_req_t *)priv, rc);
  }
  start_queued(c);
  update_ref(c);
}

/* }====== */

/* {====== request setup */

static bool has_header(const ml_http_opts_t *o, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < o->nheaders; i++)
    if (strncasecmp(o->headers[i], name, n) == 0 &&
        (o->headers[i][n] == ':' || o->headers[i][n] == ';'))
      return true;
  return false;
}

static int slist_add(struct curl_slist **l, const char *line) {
  struct curl_slist *n = ml__curl.slist_append(*l, line);
  if (!n) return ML_ENOMEM;
  *l = n;
  return 0;
}

#define SET(opt, val)                                            \
  do {                                                           \
    if (ml__curl.easy_setopt(e, opt, val) != CURLE_OK) goto invalid; \
  } while (0)

static int setup(ml_http_client_t *c, ml_http_req_t *r, CURL *e,
                 const ml_http_opts_t *o) {
  const char *method = o->method ? o->method : (o->body ? "POST" : "GET");
  const ml_http_prepared_t *prep = o->prepared;
  if (prep && (o->body || (strcmp(method, "GET") != 0 &&
                           strcmp(method, "HEAD") != 0)))
    return ML_EINVALID;
  SET(CURLOPT_URL, prep ? prep->url : o->url);
  SET(CURLOPT_PRIVATE, (void *)r);
  SET(CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
  SET(CURLOPT_CLOSESOCKETDATA, (void *)c);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_ERRORBUFFER, r->errbuf);
  SET(CURLOPT_WRITEFUNCTION, on_write);
  SET(CURLOPT_WRITEDATA, (void *)r);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, (void *)r);
  /* Explicitly no proxy, even when the environment names one. */
  SET(CURLOPT_PROXY, "");
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  if (o->unix_socket) SET(CURLOPT_UNIX_SOCKET_PATH, o->unix_socket);
  if (o->timeout_ms) SET(CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
  if (o->connect_timeout_ms)
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
  if (o->redirects == ML_HTTP_REDIRECT_ALL) {
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    /* Only curl's own following needs it (a parse per request). */
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_MAXREDIRS, (long)ML_HTTP_MAX_REDIRECTS);
  }
  if (o->insecure) {
    SET(CURLOPT_SSL_VERIFYPEER, 0L);
    SET(CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (o->ca_file) SET(CURLOPT_CAINFO, o->ca_file);
  if (o->cert_file) SET(CURLOPT_SSLCERT, o->cert_file);
  if (o->key_file) SET(CURLOPT_SSLKEY, o->key_file);
  if (o->bearer_token) {
    SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
    SET(CURLOPT_XOAUTH2_BEARER, o->bearer_token);
  }
  if (o->no_reuse) {
    SET(CURLOPT_FRESH_CONNECT, 1L);
    SET(CURLOPT_FORBID_REUSE, 1L);
  }
  if (r->lean) {
    /* One small write: Nagle never holds it back, so save the syscall. */
    SET(CURLOPT_TCP_NODELAY, 0L);
    /* A probe reads a status line and at most max_body of a 3xx: curl's
     * smallest receive buffer instead of its 16 KiB default, which it
     * allocates per transfer and holds while the answer is awaited (most
     * of what an attempt in flight held). */
    SET(CURLOPT_BUFFERSIZE, (long)ML_HTTP_LEAN_BUFFER);
  }

  bool sends_body = o->body || strcmp(method, "POST") == 0 ||
                    strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
  if (sends_body) {
    r->body = memdup0(o->body ? o->body : "", o->body ? o->body_len : 0);
    if (!r->body) return ML_ENOMEM;
    r->had_body = true;
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(o->body ? o->body_len : 0));
    SET(CURLOPT_POSTFIELDS, r->body);
    if (strcmp(method, "POST") != 0) SET(CURLOPT_CUSTOMREQUEST, method);
  } else if (strcmp(method, "HEAD") == 0) {
    SET(CURLOPT_NOBODY, 1L);
  } else if (strcmp(method, "GET") != 0) {
    SET(CURLOPT_CUSTOMREQUEST, method);
  }

  if (prep) {
    /* libcurl keeps one DNS cache entry per host:port, even for an IP
     * literal, and walks the whole cache on every transfer to prune it:
     * with a probe per port that walk was the hottest code of 1,000
     * probes (a cache miss per entry). A literal resolves without a
     * lookup, so it is not cached at all. */
    if (prep->numeric) SET(CURLOPT_DNS_CACHE_TIMEOUT, 0L);
    SET(CURLOPT_HTTPHEADER, prep->headers);
    return 0;
  }
  /* No 100-continue round trip; no form content type nobody asked for. */
  if (slist_add(&r->headers, "Expect:") < 0) return ML_ENOMEM;
  if (sends_body && !has_header(o, "content-type") &&
      slist_add(&r->headers, "Content-Type:") < 0)
    return ML_ENOMEM;
  for (size_t i = 0; i < o->nheaders; i++)
    if (slist_add(&r->headers, o->headers[i]) < 0) return ML_ENOMEM;
  SET(CURLOPT_HTTPHEADER, r->headers);
  return 0;
invalid:
  return ML_EINVALID;
}

#undef SET

int ml_http_request(ml_http_client_t *c, uint64_t id, const ml_http_opts_t *o,
                    ml_http_req_t **out) {
  if (out) *out = NULL;
  if (!o || (!o->url && !o->prepared)) return ML_EINVALID;
  if (c->closing) return ML_ECLOSED;
  ml_http_req_t *r = calloc(1, sizeof *r);
  if (!r) return ML_ENOMEM;
  r->refs = 1; /* the client's, until finish() */
  r->id = id;
  r->stream = o->stream;
  r->lean = o->lean && !o->stream;
  if (o->prepared) {
    r->prep = (ml_http_prepared_t *)o->prepared;
    r->prep->refs++;
  }
  r->redirect_mode = o->redirects;
  r->max_body = o->max_body;
  r->resp = ev_new(r, ML_HTTP_END);
  r->easy = easy_get(c);
  int rc = ML_ENOMEM;
  if (!r->resp || !r->easy) goto error;
  if ((rc = setup(c, r, r->easy, o)) < 0) goto error;
  if (o->redirects == ML_HTTP_REDIRECT_SAME_HOST)
    r->host = r->prep ? r->prep->host : url_host(o->url);
  r->c = c;
  if (out) {
    r->refs++;
    *out = r;
  }
  if (c->active.n < c->max_inflight) {
    start(c, r);
  } else {
    list_append(&c->queued, r);
    r->state = REQ_QUEUED;
  }
  update_ref(c);
  return 0;
error:
  if (r->easy) easy_put(c, r->easy);
  if (r->resp) {
    r->resp->req = NULL; /* not a reference to give back */
    ev_destroy(&r->resp->ev);
  }
  free(r->body);
  ml__curl.slist_free_all(r->headers);
  if (r->prep) prepared_unref(r->prep);
  free(r);
  return rc;
}

/* "10.0.0.1", "::1" or "[::1]" (curl's URL parser keeps the brackets). */
static bool is_ip_literal(const char *host) {
  unsigned char addr[sizeof(struct in6_addr)];
  char v6[INET6_ADDRSTRLEN + 1];
  size_t n = strlen(host);
  if (inet_pton(AF_INET, host, addr) == 1) return true;
  if (n > 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof v6) {
    memcpy(v6, host + 1, n - 2);
    v6[n - 2] = '\0';
    host = v6;
  }
  return inet_pton(AF_INET6, host, addr) == 1;
}

bool ml__http_prepared_numeric(const ml_http_prepared_t *p) {
  return p->numeric;
}

ml_http_prepared_t *ml_http_prepare(const char *url,
                                    const char *const *headers,
                                    size_t nheaders) {
  if (ml_curl_load() < 0) return NULL;
  ml_http_prepared_t *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->refs = 1;
  p->url = url ? strdup(url) : NULL;
  p->host = url ? url_host(url) : NULL;
  p->numeric = p->host && is_ip_literal(p->host);
  bool ok = p->url && p->host && slist_add(&p->headers, "Expect:") == 0;
  for (size_t i = 0; ok && i < nheaders; i++)
    ok = slist_add(&p->headers, headers[i]) == 0;
  if (!ok) {
    prepared_unref(p);
    return NULL;
  }
  return p;
}

void ml_http_prepared_free(ml_http_prepared_t *p) {
  if (p) prepared_unref(p);
}

int ml_http_cancel(ml_http_req_t *r) {
  if (r->state == REQ_ENDED)
    return r->delivered ? ML_HTTP_DELIVERED : ML_HTTP_UNDELIVERED;
  ml_http_client_t *c = r->c;
  finish(c, r, UV_ECANCELED, "request cancelled");
  start_queued(c);
  update_ref(c);
  return ML_HTTP_CANCELLED;
}

void ml_http_req_release(ml_http_req_t *r) { req_unref(r); }

/* }====== */

/* {====== client */

static void client_handle_closed(ml_http_client_t *c) {
  if (--c->handles == 0) free(c);
}

static void timer_close_cb(uv_handle_t *h) { client_handle_closed(h->data); }

static void epoll_close_cb(uv_handle_t *h) {
  ml_http_client_t *c = h->data;
  close(c->epfd); /* only now: libuv unregistered it while closing */
  client_handle_closed(c);
}

ml_http_client_t *ml_http_client_new(ml_loop_t *loop, size_t max_inflight) {
  /* libcurl is loaded here, at the first use: see curl_load.h. */
  if (ml_curl_load() < 0) return NULL;
  ml_http_client_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->multi = ml__curl.multi_init();
  c->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (!c->multi || c->epfd < 0 ||
      uv_poll_init(loop->uv, &c->epoll, c->epfd) < 0) {
    if (c->multi) ml__curl.multi_cleanup(c->multi);
    if (c->epfd >= 0) close(c->epfd);
    free(c);
    return NULL;
  }
  c->loop = loop;
  c->handles = 2; /* the timer, the epoll poll */
  uv_timer_init(loop->uv, &c->timer);
  c->timer.data = c;
  uv_unref((uv_handle_t *)&c->timer);
  /* Always watching; referenced only while requests run (update_ref). */
  c->epoll.data = c;
  uv_poll_start(&c->epoll, UV_READABLE, on_epoll);
  uv_unref((uv_handle_t *)&c->epoll);
  ml__curl.multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  ml__curl.multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  ml__curl.multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  ml__curl.multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  ml_http_client_set_max_inflight(c, max_inflight);
  return c;
}

void ml_http_client_set_max_inflight(ml_http_client_t *c, size_t n) {
  c->max_inflight = n ? n : ML_HTTP_DEFAULT_MAX_INFLIGHT;
  /* The cache counts busy connections too: leave room for idle ones to
   * other endpoints, so mixed bursts reuse rather than reconnect. */
  ml__curl.multi_setopt(c->multi, CURLMOPT_MAXCONNECTS,
                    (long)(2 * c->max_inflight));
  if (!c->closing) {
    start_queued(c);
    update_ref(c);
  }
}

void ml_http_client_stats(ml_http_client_t *c, ml_http_stats_t *out) {
  *out = (ml_http_stats_t){.active = c->active.n,
                           .queued = c->queued.n,
                           .sockets = c->nsocks,
                           .requests = c->requests,
                           .connects = c->connects,
                           .handles = c->easy_made};
}

void ml_http_client_close(ml_http_client_t *c) {
  if (c->closing) return;
  orphaned(c);
  c->closing = true;
  while (c->queued.head)
    finish(c, c->queued.head, UV_ECANCELED, "client closed");
  while (c->active.head)
    finish(c, c->active.head, UV_ECANCELED, "client closed");
  while (c->npool > 0) ml__curl.easy_cleanup(c->pool[--c->npool]);
  /* Closing cached connections reports their sockets as removed. */
  ml__curl.multi_cleanup(c->multi);
  c->multi = NULL;
  pending_flush(c);
  if (c->orphaned) {
    close(c->epfd);
    free(c);
  } else {
    uv_close((uv_handle_t *)&c->epoll, epoll_close_cb);
    uv_close((uv_handle_t *)&c->timer, timer_close_cb);
  }
}

/* }====== */
