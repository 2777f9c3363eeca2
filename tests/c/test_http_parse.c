/* Unit tests of the HTTP request parser (core/http_parse.c): framing,
 * pipelined requests in one buffer, chunked bodies, keep-alive rules,
 * limits (431/413) and malformed input (400). Prints TAP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

#include "tap.h"

static bool str_is(const char *s, size_t n, const char *want) {
  return s && n == strlen(want) && memcmp(s, want, n) == 0;
}

static const ml_http_field_t *field(const ml_http_request_t *r,
                                    const char *name, int nth) {
  for (size_t i = 0; i < r->nfields; i++)
    if (str_is(r->fields[i].name, r->fields[i].name_len, name) && nth-- == 0)
      return &r->fields[i];
  return NULL;
}

/* Feeds `s` in pieces of `step` bytes until one request completes. */
static ml_http_result_t feed_steps(ml_http_parser_t *p, const char *s,
                                   size_t len, size_t step, size_t *used) {
  size_t off = 0;
  ml_http_result_t r = ML_HTTP_MORE;
  while (off < len) {
    size_t n = len - off < step ? len - off : step, c;
    r = ml_http_parser_feed(p, s + off, n, &c);
    off += c;
    if (r != ML_HTTP_MORE) break;
  }
  *used = off;
  return r;
}

static void test_simple_get(void) {
  ml_http_parser_t *p = ml_http_parser_new(0, 0);
  const char *req =
      "GET /api/v1/namespaces/default/pods?labelSelector=app%3Dkubia&watch=1 "
      "HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
      "X-Multi: a\r\nx-multi: b\r\nX-Empty:\r\n\r\n";
  size_t used;
  ml_http_result_t r = ml_http_parser_feed(p, req, strlen(req), &used);
  OK(r == ML_HTTP_COMPLETE && used == strlen(req), "GET completes, all used");
  const ml_http_request_t *q = ml_http_parser_request(p);
  OK(q && strcmp(q->method, "GET") == 0, "method");
  OK(q && str_is(q->path, q->path_len, "/api/v1/namespaces/default/pods"),
     "raw path");
  OK(q && q->has_query &&
         str_is(q->query, q->query_len, "labelSelector=app%3Dkubia&watch=1"),
     "raw query");
  OK(q && q->keep_alive && q->http_major == 1 && q->http_minor == 1,
     "HTTP/1.1 keeps alive");
  OK(q && q->nfields == 5, "5 fields (%zu)", q ? q->nfields : 0);
  const ml_http_field_t *f = q ? field(q, "accept", 0) : NULL;
  OK(f && str_is(f->value, f->value_len, "application/json") &&
         f->value[f->value_len] == '\0',
     "names lower-cased, values NUL-terminated");
  const ml_http_field_t *m0 = q ? field(q, "x-multi", 0) : NULL;
  const ml_http_field_t *m1 = q ? field(q, "x-multi", 1) : NULL;
  OK(m0 && m1 && str_is(m0->value, m0->value_len, "a") &&
         str_is(m1->value, m1->value_len, "b"),
     "repeated fields kept in order");
  const ml_http_field_t *e = q ? field(q, "x-empty", 0) : NULL;
  OK(e && e->value_len == 0, "empty value");
  OK(q && q->body_len == 0 && q->body[0] == '\0', "no body");
  OK(q && q->url[q->url_len] == '\0' && q->path[q->path_len] != '\0',
     "url terminated (path is a slice of it)");
  ml_http_parser_free(p);
}

static void test_pipelined(void) {
  ml_http_parser_t *p = ml_http_parser_new(0, 0);
  const char *one = "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
  const char *two = "GET /b HTTP/1.1\r\n\r\n";
  const char *three = "DELETE /c?x HTTP/1.1\r\nConnection: close\r\n\r\n";
  char buf[512];
  snprintf(buf, sizeof buf, "%s%s%s", one, two, three);
  size_t len = strlen(buf), off = 0, used;
  ml_http_result_t r = ml_http_parser_feed(p, buf, len, &used);
  const ml_http_request_t *q = ml_http_parser_request(p);
  OK(r == ML_HTTP_COMPLETE && used == strlen(one),
     "first request stops at its end (%zu)", used);
  OK(q && str_is(q->body, q->body_len, "hello") && str_is(q->path, q->path_len, "/a"),
     "first body");
  off += used;
  r = ml_http_parser_feed(p, buf + off, len - off, &used);
  q = ml_http_parser_request(p);
  OK(r == ML_HTTP_COMPLETE && used == strlen(two), "second request");
  OK(q && strcmp(q->method, "GET") == 0 && str_is(q->path, q->path_len, "/b") &&
         q->body_len == 0 && q->nfields == 0,
     "second request is fresh");
  off += used;
  r = ml_http_parser_feed(p, buf + off, len - off, &used);
  q = ml_http_parser_request(p);
  OK(r == ML_HTTP_COMPLETE && off + used == len, "third request");
  OK(q && !q->keep_alive && strcmp(q->method, "DELETE") == 0 &&
         q->has_query && str_is(q->query, q->query_len, "x"),
     "Connection: close honoured");
  ml_http_parser_free(p);
}

static void test_byte_by_byte(void) {
  ml_http_parser_t *p = ml_http_parser_new(0, 0);
  const char *req =
      "PATCH /apis/apps/v1/deployments/x HTTP/1.1\r\nContent-Type: "
      "application/merge-patch+json\r\nContent-Length: 17\r\n\r\n"
      "{\"spec\":{\"r\":3}}\n";
  size_t used;
  ml_http_result_t r = feed_steps(p, req, strlen(req), 1, &used);
  const ml_http_request_t *q = ml_http_parser_request(p);
  OK(r == ML_HTTP_COMPLETE && used == strlen(req), "one byte at a time");
  OK(q && str_is(q->body, q->body_len, "{\"spec\":{\"r\":3}}\n"), "body intact");
  const ml_http_field_t *f = q ? field(q, "content-type", 0) : NULL;
  OK(f && str_is(f->value, f->value_len, "application/merge-patch+json"),
     "split field value joined");
  ml_http_parser_free(p);
}

static void test_chunked(void) {
  ml_http_parser_t *p = ml_http_parser_new(0, 0);
  const char *req =
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
      "GET /next HTTP/1.1\r\n\r\n";
  for (size_t step = 1; step <= 7; step += 3) {
    size_t used;
    ml_http_result_t r = feed_steps(p, req, strlen(req), step, &used);
    const ml_http_request_t *q = ml_http_parser_request(p);
    OK(r == ML_HTTP_COMPLETE, "chunked request completes (step %zu)", step);
    OK(q && str_is(q->body, q->body_len, "hello, world"), "de-chunked body");
    OK(q && q->nfields == 1, "trailers are not fields");
    size_t c;
    r = ml_http_parser_feed(p, req + used, strlen(req) - used, &c);
    q = ml_http_parser_request(p);
    OK(r == ML_HTTP_COMPLETE && q && str_is(q->path, q->path_len, "/next"),
       "request after a chunked one");
    /* Next round starts a new request from the top. */
    r = ml_http_parser_feed(p, "", 0, &c);
  }
  ml_http_parser_free(p);
}

static void test_keep_alive_rules(void) {
  struct {
    const char *req;
    bool keep;
  } cases[] = {
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nConnection: Keep-Alive\r\n\r\n", true},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ml_http_parser_t *p = ml_http_parser_new(0, 0);
    size_t used;
    ml_http_result_t r =
        ml_http_parser_feed(p, cases[i].req, strlen(cases[i].req), &used);
    const ml_http_request_t *q = ml_http_parser_request(p);
    OK(r == ML_HTTP_COMPLETE && q && q->keep_alive == cases[i].keep,
       "keep-alive case %zu", i);
    ml_http_parser_free(p);
  }
}

static void test_limits(void) {
  ml_http_parser_t *p = ml_http_parser_new(1024, 100);
  char big[4096];
  memset(big, 'a', sizeof big);
  size_t used;
  const char *head = "GET / HTTP/1.1\r\nX-Big: ";
  ml_http_result_t r = ml_http_parser_feed(p, head, strlen(head), &used);
  OK(r == ML_HTTP_MORE, "partial head needs more");
  OK(ml_http_parser_in_request(p), "in a request");
  r = ml_http_parser_feed(p, big, sizeof big, &used);
  OK(r == ML_HTTP_ERROR && ml_http_parser_error_status(p) == 431,
     "header bytes over the limit: 431");
  r = ml_http_parser_feed(p, "GET / HTTP/1.1\r\n\r\n", 18, &used);
  OK(r == ML_HTTP_ERROR && used == 0, "stays failed");
  ml_http_parser_free(p);

  /* Many small fields add up too (each costs its line overhead). */
  p = ml_http_parser_new(1024, 100);
  r = ml_http_parser_feed(p, "GET / HTTP/1.1\r\n", 16, &used);
  for (int i = 0; i < 400 && r == ML_HTTP_MORE; i++)
    r = ml_http_parser_feed(p, "a:\r\n", 4, &used);
  OK(r == ML_HTTP_ERROR && ml_http_parser_error_status(p) == 431,
     "many empty fields: 431");
  ml_http_parser_free(p);

  /* A declared oversized body fails on the head, before any body byte. */
  p = ml_http_parser_new(0, 0);
  const char *h413 =
      "PUT /x HTTP/1.1\r\nContent-Length: 3145729\r\nExpect: 100-continue\r\n\r\n";
  r = ml_http_parser_feed(p, h413, strlen(h413), &used);
  OK(r == ML_HTTP_ERROR && ml_http_parser_error_status(p) == 413,
     "Content-Length over 3 MiB: 413 from the head alone");
  OK(!ml_http_parser_take_continue(p), "no 100-continue for it");
  ml_http_parser_free(p);

  /* Exactly the limit is fine. */
  p = ml_http_parser_new(0, 0);
  size_t blen = ML_HTTP_MAX_BODY_BYTES;
  char *body = malloc(blen);
  memset(body, 'x', blen);
  const char *hok = "PUT /x HTTP/1.1\r\nContent-Length: 3145728\r\n\r\n";
  r = ml_http_parser_feed(p, hok, strlen(hok), &used);
  OK(r == ML_HTTP_MORE, "head of a 3 MiB body");
  r = feed_steps(p, body, blen, 65536, &used);
  const ml_http_request_t *q = ml_http_parser_request(p);
  OK(r == ML_HTTP_COMPLETE && q && q->body_len == blen, "3 MiB body accepted");
  ml_http_parser_free(p);

  /* Chunked bodies are counted as they arrive. */
  p = ml_http_parser_new(0, 100);
  const char *ch = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  r = ml_http_parser_feed(p, ch, strlen(ch), &used);
  for (int i = 0; i < 20 && r == ML_HTTP_MORE; i++)
    r = ml_http_parser_feed(p, "a\r\n0123456789\r\n", 15, &used);
  OK(r == ML_HTTP_ERROR && ml_http_parser_error_status(p) == 413,
     "chunked body over the limit: 413");
  ml_http_parser_free(p);
  free(body);
}

static void test_continue(void) {
  ml_http_parser_t *p = ml_http_parser_new(0, 0);
  const char *h =
      "PUT /x HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n";
  size_t used;
  ml_http_result_t r = ml_http_parser_feed(p, h, strlen(h), &used);
  OK(r == ML_HTTP_MORE && ml_http_parser_take_continue(p),
     "Expect: 100-continue asks for a Continue");
  OK(!ml_http_parser_take_continue(p), "only once");
  r = ml_http_parser_feed(p, "abc", 3, &used);
  OK(r == ML_HTTP_COMPLETE, "then the body completes it");
  ml_http_parser_free(p);
}

static void test_malformed(void) {
  const char *bad[] = {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
      "GET / HTTP/9.9x\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
      "GET /\x01 HTTP/1.1\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    ml_http_parser_t *p = ml_http_parser_new(0, 0);
    size_t used;
    ml_http_result_t r = ml_http_parser_feed(p, bad[i], strlen(bad[i]), &used);
    OK(r == ML_HTTP_ERROR && ml_http_parser_error_status(p) == 400 &&
           *ml_http_parser_error(p),
       "malformed %zu: 400 (%s)", i, ml_http_parser_error(p));
    ml_http_parser_free(p);
  }
}

static void test_targets(void) {
  ml_http_parser_t *p = ml_http_parser_new(0, 0);
  const char *req = "GET http://example.com:80/api?x=1#frag HTTP/1.1\r\n\r\n";
  size_t used;
  ml_http_result_t r = ml_http_parser_feed(p, req, strlen(req), &used);
  const ml_http_request_t *q = ml_http_parser_request(p);
  OK(r == ML_HTTP_COMPLETE && q && str_is(q->path, q->path_len, "/api") &&
         str_is(q->query, q->query_len, "x=1"),
     "absolute-form target split");
  req = "OPTIONS * HTTP/1.1\r\n\r\nGET /? HTTP/1.1\r\n\r\n";
  r = ml_http_parser_feed(p, req, strlen(req), &used);
  q = ml_http_parser_request(p);
  OK(r == ML_HTTP_COMPLETE && q && str_is(q->path, q->path_len, "*") &&
         !q->has_query,
     "asterisk-form");
  size_t u2;
  r = ml_http_parser_feed(p, req + used, strlen(req) - used, &u2);
  q = ml_http_parser_request(p);
  OK(r == ML_HTTP_COMPLETE && q && q->has_query && q->query_len == 0,
     "empty query is still a query");
  ml_http_parser_free(p);
}

static void test_unescape(void) {
  char out[64];
  const char *in = "a%20b+c%2Fd%zz%4";
  size_t n = ml_http_unescape(in, strlen(in), out, false);
  OK(str_is(out, n, "a b+c/d%zz%4"), "path unescape keeps '+', bad escapes");
  n = ml_http_unescape(in, strlen(in), out, true);
  OK(str_is(out, n, "a b c/d%zz%4"), "form unescape turns '+' into space");
  char inplace[] = "%41%42%43";
  n = ml_http_unescape(inplace, strlen(inplace), inplace, false);
  OK(str_is(inplace, n, "ABC"), "in place");
  OK(strcmp(ml_http_reason(413), "Request Entity Too Large") == 0 &&
         *ml_http_reason(799) == '\0',
     "reason phrases");
}

int main(void) {
  test_simple_get();
  test_pipelined();
  test_byte_by_byte();
  test_chunked();
  test_keep_alive_rules();
  test_limits();
  test_continue();
  test_malformed();
  test_targets();
  test_unescape();
  return tap_done();
}
