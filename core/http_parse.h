/* Incremental HTTP/1.1 request parser for the moonlet server. Bytes are fed
 * as they arrive; the parser stops right after each complete request so a
 * connection handles one request at a time (pipelining-safe) and keeps the
 * rest for later. Wraps http_parser, which nothing else includes, so the
 * engine can be swapped without touching the server. */
#ifndef ML_HTTP_PARSE_H
#define ML_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define ML_HTTP_MAX_HEADER_BYTES (1024 * 1024)
#define ML_HTTP_MAX_BODY_BYTES 3145728

typedef struct ml_http_parser_s ml_http_parser_t;

/** One header field; names are lower-cased, fields keep arrival order. */
typedef struct {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} ml_http_field_t;

/**
 * A complete request. Pointers refer to the parser's own buffer and stay
 * valid until the next ml_http_parser_feed() or ml_http_parser_free().
 * Strings are also NUL-terminated.
 */
typedef struct {
  const char *method;   /* "GET", "PATCH", ... (static storage) */
  int http_major, http_minor;
  bool keep_alive;      /* HTTP/1.1 default; Connection: close, HTTP/1.0 */
  bool upgrade;         /* Upgrade/CONNECT: the connection stops being HTTP */
  const char *url;      /* raw request target */
  size_t url_len;
  const char *path;     /* raw path, no query or fragment ("/" if none) */
  size_t path_len;
  const char *query;    /* raw query after '?', "" when absent */
  size_t query_len;
  bool has_query;
  const ml_http_field_t *fields;
  size_t nfields;
  const char *body;     /* de-chunked */
  size_t body_len;
} ml_http_request_t;

typedef enum {
  ML_HTTP_MORE = 0, /* every byte consumed, the request is not complete */
  ML_HTTP_COMPLETE, /* a request ended; bytes after it were not consumed */
  ML_HTTP_ERROR     /* malformed or over a limit: answer and close */
} ml_http_result_t;

/**
 * @param max_header_bytes request line + header fields (0: 1 MiB)
 * @param max_body_bytes   body after de-chunking (0: 3 MiB)
 * @return a parser, or NULL when out of memory
 */
ml_http_parser_t *ml_http_parser_new(size_t max_header_bytes,
                                     size_t max_body_bytes);
void ml_http_parser_free(ml_http_parser_t *p);

/**
 * Feeds bytes. After ML_HTTP_COMPLETE the next call starts a new request.
 * After ML_HTTP_ERROR every call returns ML_HTTP_ERROR.
 * @param consumed set to the number of bytes used from `data`
 * @return ML_HTTP_MORE, ML_HTTP_COMPLETE or ML_HTTP_ERROR
 */
ml_http_result_t ml_http_parser_feed(ml_http_parser_t *p, const char *data,
                                     size_t len, size_t *consumed);

/** @return the request after ML_HTTP_COMPLETE, NULL otherwise. */
const ml_http_request_t *ml_http_parser_request(const ml_http_parser_t *p);

/**
 * @return true once per request when its headers asked for
 * "Expect: 100-continue" and a body within limits is still to come: the
 * caller sends "100 Continue" then. Never true for an oversized body.
 */
bool ml_http_parser_take_continue(ml_http_parser_t *p);

/** @return true while a request is partly received. */
bool ml_http_parser_in_request(const ml_http_parser_t *p);

/** @return the status to answer after ML_HTTP_ERROR: 400, 413 or 431. */
int ml_http_parser_error_status(const ml_http_parser_t *p);
/** @return a short reason for the error ("" when none). */
const char *ml_http_parser_error(const ml_http_parser_t *p);

/**
 * Percent-decodes `in` into `out` (room for `len` bytes; may equal `in`).
 * Malformed escapes are kept as they are.
 * @param plus_space decode '+' as a space (form/query encoding)
 * @return the decoded length
 */
size_t ml_http_unescape(const char *in, size_t len, char *out,
                        bool plus_space);

/** @return the reason phrase of an HTTP status ("OK"), "" if unknown. */
const char *ml_http_reason(int status);

#endif
