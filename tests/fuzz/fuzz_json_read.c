/* libFuzzer target: the store's reader. Whatever json_read accepts,
 * jansson reads as the same tree with the same member order; whatever
 * jansson rejects, json_read rejects too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *got = ml_json_read((const char *)data, size);
  json_t *want = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);
  if (got) {
    if (!want || !json_equal(got, want)) abort();
    char *a = json_dumps(got, JSON_COMPACT), *b = json_dumps(want, JSON_COMPACT);
    if (!a || !b || strcmp(a, b) != 0) abort();
    free(a);
    free(b);
  }
  json_decref(got);
  json_decref(want);
  return 0;
}
