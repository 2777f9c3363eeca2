/* libFuzzer target for the duplicate-field walk: on every text jansson
 * reads, json_fields walks to the end (or its bound) and finds a
 * duplicate exactly when jansson's JSON_REJECT_DUPLICATES refuses it; the
 * paths handed out stay inside their bound. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json_fields.h"

#include <jansson.h>

typedef struct {
  int dups;
  size_t bytes;
} seen_t;

static int count(void *ud, const char *path, size_t plen, int dup) {
  seen_t *s = ud;
  if (plen && !path) abort();
  s->bytes += plen;
  s->dups += dup;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  seen_t s = {0, 0};
  int rc = ml_json_fields(text, size, count, &s);
  if (s.bytes > 8 * size + 4096) abort();
  json_t *any = json_loadb(text, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  if (any && json_is_object(any) == 0 && json_is_array(any) == 0) {
    json_decref(any);
    return 0; /* a bare scalar: jansson's number grammar is stricter */
  }
  if (any) {
    json_t *strict = json_loadb(text, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    if (rc == 0 && (s.dups > 0) != (strict == NULL)) abort();
    if (rc != 0 && rc != ML_ETOOLARGE && rc != ML_EPARSE) abort();
    json_decref(strict);
  }
  json_decref(any);
  return 0;
}
