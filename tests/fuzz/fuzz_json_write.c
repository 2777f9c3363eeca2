/* libFuzzer target: the store's serializer. Any document jansson parses is
 * written by json_write either exactly as jansson writes it, or declined
 * (reals), never differently. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_write.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  if (!doc) return 0;
  ml_json_buf_t b = {0};
  if (ml_json_write_tree(&b, doc)) {
    char *want = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!want || strlen(want) != b.len || memcmp(want, b.buf, b.len) != 0) abort();
    free(want);
  }
  free(b.buf);
  json_decref(doc);
  return 0;
}
