/* libFuzzer target for the HTTP request parser (core/http_parse.c). The
 * input is parsed twice: in one piece, and split at points taken from the
 * input itself. Both runs must see the same requests and end the same way
 * (the parser is incremental, so splits must not matter); every byte of
 * each request view is read so ASan catches a view past its buffer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

#define MAX_REQS 64

typedef struct {
  uint64_t digest[MAX_REQS];
  int nreq;
  int end_status; /* 0: wants more, else the error status */
} run_t;

static uint64_t mix(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return (h ^ n) * 0x100000001b3ull;
}

static uint64_t digest(const ml_http_request_t *r) {
  uint64_t h = 0xcbf29ce484222325ull;
  h = mix(h, r->method, strlen(r->method));
  h = mix(h, r->url, r->url_len + 1); /* + the NUL */
  h = mix(h, r->path, r->path_len);
  h = mix(h, r->query, r->query_len);
  for (size_t i = 0; i < r->nfields; i++) {
    h = mix(h, r->fields[i].name, r->fields[i].name_len);
    h = mix(h, r->fields[i].value, r->fields[i].value_len);
  }
  h = mix(h, r->body, r->body_len + 1);
  unsigned flags = (unsigned)r->keep_alive | (unsigned)r->upgrade << 1 |
                   (unsigned)r->has_query << 2;
  return mix(h, &flags, sizeof flags);
}

/* Feeds data[0..len) cut at `cuts` (ascending offsets), the way a server
 * does: after a complete request the rest is fed again. */
static void parse(const uint8_t *data, size_t len, const size_t *cuts,
                  size_t ncuts, run_t *out) {
  ml_http_parser_t *p = ml_http_parser_new(2048, 4096);
  memset(out, 0, sizeof *out);
  size_t off = 0, ci = 0;
  while (off < len && out->nreq < MAX_REQS) {
    size_t end = len;
    while (ci < ncuts && cuts[ci] <= off) ci++;
    if (ci < ncuts) end = cuts[ci];
    size_t used, given = end - off;
    ml_http_result_t r =
        ml_http_parser_feed(p, (const char *)data + off, given, &used);
    if (used > given) abort();
    off += used;
    (void)ml_http_parser_take_continue(p);
    if (r == ML_HTTP_ERROR) {
      out->end_status = ml_http_parser_error_status(p);
      if (out->end_status != 400 && out->end_status != 413 &&
          out->end_status != 431 && out->end_status != 500)
        abort();
      break;
    }
    if (r == ML_HTTP_COMPLETE) {
      out->digest[out->nreq++] = digest(ml_http_parser_request(p));
    } else if (used != given) {
      abort(); /* ML_HTTP_MORE must consume everything it was given */
    }
  }
  ml_http_parser_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  /* The first byte picks how many cut points the next bytes give. */
  size_t ncuts = data[0] % 8;
  if (size < 1 + ncuts * 2) return 0;
  size_t cuts[8];
  const uint8_t *body = data + 1 + ncuts * 2;
  size_t len = size - 1 - ncuts * 2;
  for (size_t i = 0; i < ncuts; i++)
    cuts[i] = len ? ((size_t)data[1 + 2 * i] << 8 | data[2 + 2 * i]) % (len + 1) : 0;
  /* ascending order */
  for (size_t i = 1; i < ncuts; i++)
    for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
      size_t t = cuts[j];
      cuts[j] = cuts[j - 1];
      cuts[j - 1] = t;
    }
  run_t whole, split;
  parse(body, len, NULL, 0, &whole);
  parse(body, len, cuts, ncuts, &split);
  if (whole.nreq != split.nreq || whole.end_status != split.end_status ||
      memcmp(whole.digest, split.digest, sizeof(uint64_t) * (size_t)whole.nreq)) {
    fprintf(stderr, "split parse differs: %d/%d requests, status %d/%d\n",
            whole.nreq, split.nreq, whole.end_status, split.end_status);
    abort();
  }
  /* The decoder must stay within its output, in place too. */
  char *copy = malloc(len + 1);
  if (copy) {
    memcpy(copy, body, len);
    size_t n = ml_http_unescape(copy, len, copy, data[0] & 1);
    if (n > len) abort();
    free(copy);
  }
  return 0;
}
