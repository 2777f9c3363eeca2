/* Request parser over http_parser (see http_parse.h). Everything of one
 * request (target, fields, body) is appended to one growable buffer that is
 * reused for the next request, so a keep-alive connection stops allocating
 * once its buffer has grown to its usual request size. */
#include "http_parse.h"

#include <http_parser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { ST_IDLE, ST_IN_REQUEST, ST_COMPLETE, ST_ERROR };
enum { CB_NONE, CB_FIELD, CB_VALUE };

/* Offsets, not pointers: the buffer moves when it grows. */
typedef struct {
  size_t noff, nlen, voff, vlen;
} field_off_t;

struct ml_http_parser_s {
  http_parser hp;
  size_t max_header, max_body;
  char *buf;
  size_t len, cap;
  field_off_t *fields;
  size_t nfields, fcap;
  ml_http_field_t *view; /* filled when a request completes */
  size_t vcap;
  size_t url_off, url_len;
  size_t body_off, body_len;
  size_t header_bytes;
  int last_cb;
  int state;
  bool headers_done;
  bool continue_pending;
  int err_status;
  const char *err_msg;
  ml_http_request_t req;
};

static int fail(ml_http_parser_t *p, int status, const char *msg) {
  if (!p->err_status) {
    p->err_status = status;
    p->err_msg = msg;
  }
  return -1; /* makes http_parser stop with an HPE_CB_* error */
}

static int reserve(ml_http_parser_t *p, size_t extra) {
  if (p->cap - p->len > extra) return 0;
  size_t cap = p->cap ? p->cap : 1024;
  while (cap - p->len <= extra) cap *= 2;
  char *nb = realloc(p->buf, cap);
  if (!nb) return -1;
  p->buf = nb;
  p->cap = cap;
  return 0;
}

static int append(ml_http_parser_t *p, const char *at, size_t n) {
  if (reserve(p, n) < 0) return fail(p, 500, "out of memory");
  memcpy(p->buf + p->len, at, n);
  p->len += n;
  return 0;
}

/* Counts bytes of the request head (and trailers) against the limit. */
static int count_header(ml_http_parser_t *p, size_t n) {
  p->header_bytes += n;
  if (p->header_bytes > p->max_header)
    return fail(p, 431, "request header fields too large");
  return 0;
}

static int on_message_begin(http_parser *hp) {
  ml_http_parser_t *p = hp->data;
  p->state = ST_IN_REQUEST;
  return 0;
}

static int on_url(http_parser *hp, const char *at, size_t n) {
  ml_http_parser_t *p = hp->data;
  if (count_header(p, n) < 0) return -1;
  if (p->url_len == 0) p->url_off = p->len;
  p->url_len += n;
  return append(p, at, n);
}

static int on_header_field(http_parser *hp, const char *at, size_t n) {
  ml_http_parser_t *p = hp->data;
  /* 4 bytes for ": " and CRLF, so many empty fields still add up. */
  if (count_header(p, n + (p->last_cb != CB_FIELD ? 4 : 0)) < 0) return -1;
  if (p->headers_done) return 0; /* chunked trailers: counted, dropped */
  if (p->last_cb != CB_FIELD) {
    /* A NUL after every piece (url, value) keeps each one a C string. */
    if (append(p, "", 1) < 0) return -1;
    if (p->nfields == p->fcap) {
      size_t cap = p->fcap ? p->fcap * 2 : 16;
      field_off_t *nf = realloc(p->fields, cap * sizeof *nf);
      if (!nf) return fail(p, 500, "out of memory");
      p->fields = nf;
      p->fcap = cap;
    }
    p->fields[p->nfields++] = (field_off_t){.noff = p->len, .voff = p->len};
    p->last_cb = CB_FIELD;
  }
  p->fields[p->nfields - 1].nlen += n;
  return append(p, at, n);
}

static int on_header_value(http_parser *hp, const char *at, size_t n) {
  ml_http_parser_t *p = hp->data;
  if (count_header(p, n) < 0) return -1;
  if (p->headers_done) return 0;
  field_off_t *f = &p->fields[p->nfields - 1];
  if (p->last_cb != CB_VALUE) {
    if (append(p, "", 1) < 0) return -1; /* terminates the name */
    f->voff = p->len;
    f->vlen = 0;
    p->last_cb = CB_VALUE;
  }
  f->vlen += n;
  return append(p, at, n);
}

static bool name_is(const ml_http_parser_t *p, const field_off_t *f,
                    const char *name) {
  size_t n = strlen(name);
  return f->nlen == n && memcmp(p->buf + f->noff, name, n) == 0;
}

static int on_headers_complete(http_parser *hp) {
  ml_http_parser_t *p = hp->data;
  p->headers_done = true;
  p->last_cb = CB_NONE;
  bool expect = false;
  for (size_t i = 0; i < p->nfields; i++) {
    field_off_t *f = &p->fields[i];
    for (size_t k = 0; k < f->nlen; k++) {
      char *c = &p->buf[f->noff + k];
      if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + ('a' - 'A'));
    }
    if (name_is(p, f, "expect") && f->vlen == 12 &&
        strncasecmp(p->buf + f->voff, "100-continue", 12) == 0)
      expect = true;
  }
  bool chunked = (hp->flags & F_CHUNKED) != 0;
  bool has_len = !chunked && hp->content_length != UINT64_MAX;
  /* Refuse an oversized body before reading any of it. */
  if (has_len && hp->content_length > p->max_body)
    return fail(p, 413, "request entity too large");
  if (has_len && reserve(p, (size_t)hp->content_length + 2) < 0)
    return fail(p, 500, "out of memory");
  p->continue_pending = expect && (chunked || (has_len && hp->content_length));
  if (append(p, "", 1) < 0) return -1; /* terminates the last piece */
  p->body_off = p->len;
  return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n) {
  ml_http_parser_t *p = hp->data;
  if (p->body_len + n > p->max_body)
    return fail(p, 413, "request entity too large");
  p->body_len += n;
  p->continue_pending = false; /* the client did not wait for it */
  return append(p, at, n);
}

/* Splits the target into path and query without copying. Absolute-form
 * ("http://host/p?q", RFC 7230 5.3.2) has its scheme and authority skipped. */
static void split_target(ml_http_request_t *r) {
  const char *u = r->url, *end = u + r->url_len;
  const char *start = u;
  const char *sep = strstr(u, "://");
  if (u[0] != '/' && sep && sep < end) {
    start = sep + 3;
    while (start < end && *start != '/' && *start != '?') start++;
  }
  const char *q = start;
  while (q < end && *q != '?' && *q != '#') q++;
  r->path = start;
  r->path_len = (size_t)(q - start);
  if (r->path_len == 0) {
    r->path = "/";
    r->path_len = 1;
  }
  r->has_query = q < end && *q == '?';
  r->query = "";
  r->query_len = 0;
  if (r->has_query) {
    const char *qe = q + 1;
    while (qe < end && *qe != '#') qe++;
    r->query = q + 1;
    r->query_len = (size_t)(qe - q - 1);
  }
}

static int on_message_complete(http_parser *hp) {
  ml_http_parser_t *p = hp->data;
  if (append(p, "", 1) < 0) return -1; /* terminates the body */
  if (p->nfields > p->vcap) {
    ml_http_field_t *nv = realloc(p->view, p->nfields * sizeof *nv);
    if (!nv) return fail(p, 500, "out of memory");
    p->view = nv;
    p->vcap = p->nfields;
  }
  /* The buffer no longer moves: offsets become pointers. */
  for (size_t i = 0; i < p->nfields; i++) {
    field_off_t *f = &p->fields[i];
    p->view[i] = (ml_http_field_t){p->buf + f->noff, f->nlen,
                                   p->buf + f->voff, f->vlen};
  }
  ml_http_request_t *r = &p->req;
  r->url = p->buf + p->url_off;
  r->url_len = p->url_len;
  r->method = http_method_str((enum http_method)hp->method);
  r->http_major = hp->http_major;
  r->http_minor = hp->http_minor;
  r->upgrade = hp->upgrade;
  r->keep_alive = http_should_keep_alive(hp) && !hp->upgrade;
  r->fields = p->view;
  r->nfields = p->nfields;
  r->body = p->buf + p->body_off;
  r->body_len = p->body_len;
  split_target(r);
  p->state = ST_COMPLETE;
  p->continue_pending = false;
  /* Stop right after this request: pipelined bytes stay with the caller. */
  http_parser_pause(hp, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void reset_request(ml_http_parser_t *p) {
  p->len = 0;
  p->nfields = 0;
  p->url_off = p->url_len = 0;
  p->body_off = p->body_len = 0;
  p->header_bytes = 0;
  p->last_cb = CB_NONE;
  p->headers_done = false;
  p->continue_pending = false;
  p->state = ST_IDLE;
  memset(&p->req, 0, sizeof p->req);
}

ml_http_parser_t *ml_http_parser_new(size_t max_header_bytes,
                                     size_t max_body_bytes) {
  static bool limit_set;
  if (!limit_set) {
    /* http_parser's own limit is process-wide (80 KiB by default); ours is
     * per parser and counted in the callbacks, so lift theirs out of the
     * way. */
    http_parser_set_max_header_size(UINT32_MAX / 2);
    limit_set = true;
  }
  ml_http_parser_t *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->max_header = max_header_bytes ? max_header_bytes : ML_HTTP_MAX_HEADER_BYTES;
  p->max_body = max_body_bytes ? max_body_bytes : ML_HTTP_MAX_BODY_BYTES;
  http_parser_init(&p->hp, HTTP_REQUEST);
  p->hp.data = p;
  reset_request(p);
  return p;
}

void ml_http_parser_free(ml_http_parser_t *p) {
  if (!p) return;
  free(p->buf);
  free(p->fields);
  free(p->view);
  free(p);
}

ml_http_result_t ml_http_parser_feed(ml_http_parser_t *p, const char *data,
                                     size_t len, size_t *consumed) {
  *consumed = 0;
  if (p->state == ST_ERROR) return ML_HTTP_ERROR;
  if (p->state == ST_COMPLETE) {
    reset_request(p);
    http_parser_pause(&p->hp, 0);
  }
  if (len == 0) return ML_HTTP_MORE;
  size_t n = http_parser_execute(&p->hp, &settings, data, len);
  *consumed = n;
  if (p->state == ST_COMPLETE) return ML_HTTP_COMPLETE;
  enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
  if (e != HPE_OK || n != len) {
    if (!p->err_status) {
      p->err_status = 400;
      p->err_msg = http_errno_description(e);
    }
    p->state = ST_ERROR;
    return ML_HTTP_ERROR;
  }
  return ML_HTTP_MORE;
}

const ml_http_request_t *ml_http_parser_request(const ml_http_parser_t *p) {
  return p->state == ST_COMPLETE ? &p->req : NULL;
}

bool ml_http_parser_take_continue(ml_http_parser_t *p) {
  bool c = p->continue_pending && p->state == ST_IN_REQUEST;
  p->continue_pending = false;
  return c;
}

bool ml_http_parser_in_request(const ml_http_parser_t *p) {
  return p->state == ST_IN_REQUEST;
}

int ml_http_parser_error_status(const ml_http_parser_t *p) {
  return p->state == ST_ERROR ? p->err_status : 0;
}

const char *ml_http_parser_error(const ml_http_parser_t *p) {
  return p->err_msg ? p->err_msg : "";
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

size_t ml_http_unescape(const char *in, size_t len, char *out,
                        bool plus_space) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    char c = in[i];
    if (c == '%' && i + 2 < len) {
      int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out[o++] = (plus_space && c == '+') ? ' ' : c;
  }
  return o;
}

const char *ml_http_reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Request Entity Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
  }
  return "";
}
