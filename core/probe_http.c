/* The "http" probe kind: the kubelet's httpGet check over the shared libcurl
 * client (core/http_client.h). The client posts to a private queue of the
 * runner, which its check and prepare handles drain around every poll,
 * turning each finished transfer into a result with the kubelet's (Go's)
 * message texts.
 * One fresh connection per attempt, as the kubelet disables keep-alives. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "probe_internal.h"

/* What an attempt sends, worked out from the parameters: once per attempt,
 * or once per ticker (prepare), which then lends it to every attempt. */
typedef struct {
  char *url;
  /* Only the messages read them: allocated to size, since a ticker keeps
   * one per probed container (fixed arrays were half a KiB each). */
  char *hostport; /* Go's net.JoinHostPort(host, port) */
  char *host;
  ml_http_prepared_t *req; /* URL and curl header list, built once */
  bool https;
} http_prep_t;

typedef struct {
  ml_http_req_t *req;
  const http_prep_t *prep; /* &own, or a ticker's */
  http_prep_t own;
} http_probe_t;

/* {====== request building */

typedef struct {
  char *p;
  size_t len, cap;
  bool oom;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 128;
    while (cap < b->len + n + 1) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) {
      b->oom = true;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void buf_str(buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }

/* Bytes Go's url.URL.String() escapes in a path: everything outside the
 * unreserved and sub-delim sets, except what keeps its meaning here ('%'
 * of an existing escape, '?' starting a query, '#'). */
static bool path_keeps(unsigned char c) {
  if (isalnum(c)) return true;
  return c != 0 && strchr("-._~!$&'()*+,;=:@/?%#", c) != NULL;
}

static char *build_url(const ml_probe_params_t *o, http_prep_t *hp,
                       bool *https) {
  char scheme[8];
  const char *s = o->scheme && *o->scheme ? o->scheme : "http";
  if (strlen(s) >= sizeof scheme) return NULL;
  snprintf(scheme, sizeof scheme, "%s", s);
  for (char *c = scheme; *c; c++) *c = (char)tolower((unsigned char)*c);
  if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
    return NULL;
  *https = scheme[4] == 's';
  if (o->port < 1 || o->port > 65535) return NULL;
  const char *host = o->host && *o->host ? o->host : "127.0.0.1";
  size_t hlen = strlen(host);
  if (hlen > 255 || strpbrk(host, "/?#@ \t\r\n")) return NULL;
  bool v6 = strchr(host, ':') && host[0] != '[';
  size_t hplen = hlen + sizeof "[]:65535";
  hp->host = strdup(host);
  hp->hostport = malloc(hplen);
  if (!hp->host || !hp->hostport) return NULL;
  snprintf(hp->hostport, hplen, v6 ? "[%s]:%d" : "%s:%d", host, o->port);
  buf_t b = {0};
  buf_str(&b, scheme);
  buf_str(&b, "://");
  buf_str(&b, hp->hostport);
  const char *path = o->path && *o->path ? o->path : "/";
  if (path[0] != '/') buf_str(&b, "/");
  for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
    if (path_keeps(*c)) {
      buf_add(&b, (const char *)c, 1);
    } else {
      char esc[4];
      snprintf(esc, sizeof esc, "%%%02X", *c);
      buf_add(&b, esc, 3);
    }
  }
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

static bool header_ok(const char *name, const char *value) {
  if (!name || !*name || strpbrk(name, ": \t\r\n")) return false;
  return !value || !strpbrk(value, "\r\n");
}

/* }====== */

static void prep_clear(http_prep_t *pr) {
  free(pr->url);
  free(pr->hostport);
  free(pr->host);
  /* Requests still running keep their own reference. */
  ml_http_prepared_free(pr->req);
  pr->url = pr->hostport = pr->host = NULL;
  pr->req = NULL;
}

static void lines_free(char **lines, size_t n) {
  for (size_t i = 0; i < n; i++) free(lines[i]);
  free(lines);
}

/* @return 0, ML_EINVALID or ML_ENOMEM (then `pr` holds what to clear) */
static int prep_build(http_prep_t *pr, const ml_probe_params_t *o) {
  pr->url = build_url(o, pr, &pr->https);
  if (!pr->url) return ML_EINVALID;
  /* curl header lines: user headers in order, then the kubelet's defaults
   * where the user gave none. */
  size_t max = o->nheaders + 3, nlines = 0;
  char **lines = calloc(max, sizeof *lines);
  if (!lines) return ML_ENOMEM;
  int rc = ML_ENOMEM;
  bool has_ua = false, has_accept = false;
  for (size_t i = 0; i < o->nheaders; i++) {
    const char *name = o->headers[i].name;
    const char *value = o->headers[i].value ? o->headers[i].value : "";
    if (!header_ok(name, value)) {
      rc = ML_EINVALID;
      goto done;
    }
    size_t len = strlen(name) + strlen(value) + 3;
    char *line = malloc(len);
    if (!line) goto done;
    bool ua = strcasecmp(name, "User-Agent") == 0;
    bool accept = strcasecmp(name, "Accept") == 0;
    has_ua |= ua;
    has_accept |= accept;
    if (*value)
      snprintf(line, len, "%s: %s", name, value);
    else if (ua || accept) /* an empty one removes the default */
      snprintf(line, len, "%s:", name);
    else
      snprintf(line, len, "%s;", name); /* curl: send it empty */
    lines[nlines++] = line;
  }
  const char *defaults[3] = {
      has_ua ? NULL : "User-Agent: " ML_PROBE_USER_AGENT,
      has_accept ? NULL : "Accept: */*", "Connection: close"};
  for (int i = 0; i < 3; i++) {
    if (!defaults[i]) continue;
    if (!(lines[nlines] = strdup(defaults[i]))) goto done;
    nlines++;
  }
  pr->req = ml_http_prepare(pr->url, (const char *const *)lines, nlines);
  rc = pr->req ? 0 : ML_ENOMEM;
done:
  lines_free(lines, nlines);
  return rc;
}

static void *http_prepare(const ml_probe_params_t *o) {
  http_prep_t *pr = calloc(1, sizeof *pr);
  if (pr && prep_build(pr, o) < 0) {
    prep_clear(pr);
    free(pr);
    pr = NULL;
  }
  return pr;
}

static void http_unprepare(void *prepared) {
  prep_clear(prepared);
  free(prepared);
}

static int http_start(ml_probe_t *p, const ml_probe_params_t *o) {
  ml_probe_runner_t *r = p->runner;
  http_probe_t *hp = calloc(1, sizeof *hp);
  if (!hp) return ML_ENOMEM;
  p->data = hp;
  int rc = 0;
  if (o->prepared) {
    hp->prep = o->prepared;
  } else {
    hp->prep = &hp->own;
    rc = prep_build(&hp->own, o);
  }
  if (rc == 0 && !r->http) {
    ml_loop_init(&r->http_loop, r->loop->uv);
    r->http = ml_http_client_new(&r->http_loop, r->max_http);
    if (!r->http) rc = ML_ENOMEM;
  }
  if (rc == 0) {
    const http_prep_t *pr = hp->prep;
    ml_http_opts_t opts = {
        .prepared = pr->req,
        .lean = true,
        .timeout_ms = p->timeout_ms,
        .max_body = ML_PROBE_MAX_BODY,
        .redirects = ML_HTTP_REDIRECT_SAME_HOST,
        .insecure = pr->https, /* the kubelet skips verification */
        .no_reuse = true,
    };
    /* The record's address is the private id: the hold below keeps it
     * valid until the transfer's END event has been drained. */
    rc = ml_http_request(r->http, (uint64_t)(uintptr_t)p, &opts, &hp->req);
    if (rc == 0) ml_probe_hold(p);
  }
  return rc;
}

static void http_cancel(ml_probe_t *p) {
  http_probe_t *hp = p->data;
  /* Its END event (ECANCELED) still comes through the queue and releases
   * the hold. */
  if (hp && hp->req) ml_http_cancel(hp->req);
}

static void http_destroy(ml_probe_t *p) {
  http_probe_t *hp = p->data;
  if (!hp) return;
  if (hp->req) ml_http_req_release(hp->req);
  prep_clear(&hp->own);
  free(hp);
}

const ml_probe_kind_t ml__probe_http = {
    .name = "http",
    .start = http_start,
    .cancel = http_cancel,
    .destroy = http_destroy,
    .prepare = http_prepare,
    .unprepare = http_unprepare,
};

/* {====== results */

/* errno text as Go prints it (lower-case first letter of strerror). */
static void errno_text(int err, char *out, size_t n) {
  snprintf(out, n, "%s", strerror(-err));
  if (out[0]) out[0] = (char)tolower((unsigned char)out[0]);
}

static void report(ml_probe_t *p, ml_http_event_t *ev) {
  const http_prep_t *hp = ((http_probe_t *)p->data)->prep;
  if (ev->err == 0) {
    long st = ev->status;
    if (st >= 200 && st < 300)
      ml_probe_done_bytes(p, ML_PROBE_SUCCESS, "", 0); /* no printf */
    else if (st >= 300 && st < 400)
      ml_probe_done(p, ML_PROBE_WARNING,
                    "Probe terminated redirects, Response body: %.*s",
                    (int)ev->body_len, ev->body ? ev->body : "");
    else
      ml_probe_done(p, ML_PROBE_FAILURE,
                    "HTTP probe failed with statuscode: %ld", st);
    return;
  }
  char text[128];
  switch (ev->err) {
    case UV_ECANCELED: /* only after a cancel: nobody listens */
      ml_probe_done(p, ML_PROBE_UNKNOWN, "Get \"%s\": context canceled",
                    hp->url);
      return;
    case UV_ETIMEDOUT:
      ml_probe_done(p, ML_PROBE_FAILURE,
                    ev->status ? "Get \"%s\": context deadline exceeded "
                                 "(Client.Timeout or context cancellation "
                                 "while reading body)"
                               : "Get \"%s\": context deadline exceeded "
                                 "(Client.Timeout exceeded while awaiting "
                                 "headers)",
                    hp->url);
      return;
    case UV_EAI_NONAME:
      ml_probe_done(p, ML_PROBE_FAILURE,
                    "Get \"%s\": dial tcp: lookup %s: no such host", hp->url,
                    hp->host);
      return;
    case UV_ECONNRESET:
      if (ev->errmsg && strstr(ev->errmsg, "Empty reply"))
        ml_probe_done(p, ML_PROBE_FAILURE, "Get \"%s\": EOF", hp->url);
      else
        ml_probe_done(p, ML_PROBE_FAILURE,
                      "Get \"%s\": read tcp %s: read: connection reset by "
                      "peer",
                      hp->url, hp->hostport);
      return;
    case UV_ECONNREFUSED:
    case UV_EHOSTUNREACH:
    case UV_ENETUNREACH:
    case UV_EADDRNOTAVAIL:
    case UV_EACCES:
    case UV_EPERM:
      errno_text(ev->err, text, sizeof text);
      ml_probe_done(p, ML_PROBE_FAILURE, "Get \"%s\": dial tcp %s: connect: %s",
                    hp->url, hp->hostport, text);
      return;
    default:
      ml_probe_done(p, ML_PROBE_FAILURE, "Get \"%s\": %s", hp->url,
                    ev->errmsg ? ev->errmsg : ml_strerror(ev->err));
      return;
  }
}

void ml__probe_http_drain(ml_probe_runner_t *r) {
  ml_event_t *e;
  while ((e = ml_loop_pop(&r->http_loop)) != NULL) {
    if (e->type == ML_EV_HTTP_DONE) {
      ml_probe_t *p = (ml_probe_t *)(uintptr_t)e->id;
      /* An abandoned attempt reports to nobody, and the ticker whose
       * prepared request it borrowed may be gone: just end it. */
      if (!p->ended && p->cancelled)
        ml_probe_done_bytes(p, ML_PROBE_UNKNOWN, "", 0);
      else if (!p->ended)
        report(p, (ml_http_event_t *)e);
      ml_probe_release(p);
    }
    ml_event_free(e);
  }
}

void ml__probe_http_shutdown(ml_probe_runner_t *r) {
  if (!r->http) return;
  ml_http_client_close(r->http);
  r->http = NULL;
  /* The cancelled transfers' END events release their records. */
  ml_event_t *e;
  while ((e = ml_loop_pop(&r->http_loop)) != NULL) {
    if (e->type == ML_EV_HTTP_DONE)
      ml_probe_release((ml_probe_t *)(uintptr_t)e->id);
    ml_event_free(e);
  }
}

/* }====== */
