/* HTTP client: libcurl's multi_socket API driven by the moonlet loop (one
 * CURLM per client, its sockets in one epoll set, one uv_timer_t). Results and
 * streamed data are posted as ML_EV_HTTP_DONE / ML_EV_HTTP_CHUNK events
 * (ml_http_event_t) to the request's id; nothing here calls Lua. Connections
 * are kept alive and reused across requests through the multi handle. */
#ifndef ML_HTTP_CLIENT_H
#define ML_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"

typedef struct ml_http_client_s ml_http_client_t;
typedef struct ml_http_req_s ml_http_req_t;
/* A URL and header list built once and shared by many body-less requests
 * (a probe's every attempt): see ml_http_prepare(). */
typedef struct ml_http_prepared_s ml_http_prepared_t;

#define ML_HTTP_DEFAULT_MAX_INFLIGHT 256
#define ML_HTTP_MAX_REDIRECTS 10

/* Redirect policies. SAME_HOST is the kubelet prober's: follow redirects to
 * the same host name (any port), return the 3xx response otherwise. */
enum {
  ML_HTTP_REDIRECT_NONE = 0,
  ML_HTTP_REDIRECT_ALL,
  ML_HTTP_REDIRECT_SAME_HOST
};

/* What an event carries (ev.type is ML_EV_HTTP_CHUNK for HEAD and DATA). */
enum {
  ML_HTTP_HEAD = 1, /* stream: status and headers of the final response */
  ML_HTTP_DATA,     /* stream: a piece of the body */
  ML_HTTP_END       /* the request is over (ML_EV_HTTP_DONE); always last */
};

/* Results of ml_http_cancel(). */
enum {
  ML_HTTP_CANCELLED = 1, /* was running; an END event (UV_ECANCELED) follows */
  ML_HTTP_UNDELIVERED,   /* had ended; its END event is still queued */
  ML_HTTP_DELIVERED      /* had ended and its END event was delivered */
};

typedef struct {
  const char *method;         /* NULL: GET */
  const char *url;            /* required */
  const char *const *headers; /* curl syntax: "Name: value", "Name:"
                                 removes a default, "Name;" sends empty */
  size_t nheaders;
  const char *body; /* may be NULL */
  size_t body_len;
  const char *unix_socket;     /* connect here instead of the URL host */
  uint64_t timeout_ms;         /* whole request; 0: none */
  uint64_t connect_timeout_ms; /* 0: libcurl's default */
  size_t max_body;             /* keep at most this much body; 0: all */
  int redirects;               /* ML_HTTP_REDIRECT_* */
  bool insecure;               /* skip TLS peer and host verification */
  bool no_reuse;               /* close the connection afterwards */
  bool stream;                 /* HEAD, DATA..., END instead of one END */
  /* Only what a kubelet probe reads: the END event carries no headers, the
   * body only of a 3xx response (up to max_body), and the request goes out
   * without TCP_NODELAY (it is one small write). Not with `stream`. */
  bool lean;
  /* Instead of url and headers (which are then ignored): a prepared
   * request, referenced until the request is over. GET or HEAD only. */
  const ml_http_prepared_t *prepared;
  const char *bearer_token;
  const char *ca_file;
  const char *cert_file; /* TLS client certificate (PEM) */
  const char *key_file;
} ml_http_opts_t;

typedef struct {
  char *name;  /* lower-case */
  char *value; /* trimmed */
} ml_http_header_t;

/* The payload of ML_EV_HTTP_DONE and ML_EV_HTTP_CHUNK. */
typedef struct {
  ml_event_t ev;
  int kind;                  /* ML_HTTP_HEAD | ML_HTTP_DATA | ML_HTTP_END */
  bool stream;               /* the request was a stream */
  int err;                   /* END: 0 or a negative ML_E* / UV_E* code */
  char *errmsg;              /* END with err: what went wrong */
  long status;               /* HEAD, END: the HTTP status (0 if none) */
  ml_http_header_t *headers; /* HEAD, END (not stream): in arrival order */
  size_t nheaders;
  char *body; /* DATA: the piece; END: the body (not stream) */
  size_t body_len;
  bool truncated; /* END: the body was cut at max_body */
  int redirects;  /* END: redirects followed */
  /* private */
  size_t body_cap, headers_cap;
  ml_http_req_t *req;
} ml_http_event_t;

typedef struct {
  size_t active;     /* transfers in the multi handle */
  size_t queued;     /* waiting for a free slot */
  size_t sockets;    /* sockets in the client's epoll set */
  uint64_t requests; /* requests finished */
  uint64_t connects; /* new connections made (the rest reused one) */
  uint64_t handles;  /* libcurl easy handles created (the rest reused) */
} ml_http_stats_t;

/**
 * Creates a client on `loop` (the uv loop is loop->uv).
 * @param max_inflight transfers running at once (0: the default); more wait
 * @return the client, or NULL on allocation failure or when libcurl cannot
 *         be loaded (core/curl_load.h: it is loaded by the first call)
 */
ml_http_client_t *ml_http_client_new(ml_loop_t *loop, size_t max_inflight);

/**
 * Aborts every request (each gets an END event with UV_ECANCELED) and frees
 * the client once its uv handles are closed (the loop must run on). If the
 * loop was already shut down under the client (its handles closed by
 * someone else), frees everything at once without touching libuv.
 */
void ml_http_client_close(ml_http_client_t *c);

/** Changes the in-flight bound (queued requests start when slots free). */
void ml_http_client_set_max_inflight(ml_http_client_t *c, size_t n);

/** Fills `out` with counters (for tests and benchmarks). */
void ml_http_client_stats(ml_http_client_t *c, ml_http_stats_t *out);

/**
 * Starts (or queues) a request whose events go to `id`. Strings in `o` are
 * copied. Transfer failures are not returned here: they arrive as an END
 * event with err set.
 * @param out NULL for a detached request; else receives a handle that the
 *            caller must give back with ml_http_req_release()
 * @return 0, ML_EINVALID (no url) or ML_ENOMEM
 */
int ml_http_request(ml_http_client_t *c, uint64_t id, const ml_http_opts_t *o,
                    ml_http_req_t **out);

/**
 * Builds a URL and header list for many requests (see opts.prepared): the
 * work each request would repeat (copying the header lines, finding the
 * host redirects must keep) is done once here.
 * @param headers curl syntax, as ml_http_opts_t.headers
 * @return the prepared request (free with ml_http_prepared_free) or NULL
 *         on allocation failure, an URL without a host or no libcurl
 */
ml_http_prepared_t *ml_http_prepare(const char *url,
                                    const char *const *headers,
                                    size_t nheaders);

/** Drops the creator's reference; requests using it keep it alive. */
void ml_http_prepared_free(ml_http_prepared_t *p);

/** Tests: is the prepared host an IP literal (then its requests skip
 *  libcurl's DNS cache)? @return true for "127.0.0.1", "[::1]", ... */
bool ml__http_prepared_numeric(const ml_http_prepared_t *p);

/**
 * Aborts a running or queued request. Safe after the request ended, and
 * after the client was closed.
 * @return ML_HTTP_CANCELLED, ML_HTTP_UNDELIVERED or ML_HTTP_DELIVERED
 */
int ml_http_cancel(ml_http_req_t *req);

/** Drops the caller's handle (does not cancel). */
void ml_http_req_release(ml_http_req_t *req);

#endif
