/* libFuzzer target: the JSON scanner behind PartialObjectMetadata. On any
 * input, skip and member stay within the bytes given (ASan checks every
 * read: the input is copied to a buffer of its exact size), a value found
 * is itself a whole value, and a member found lies inside its object. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size ? size : 1);
  if (!text) return 0;
  memcpy(text, data, size);
  const char *end = text + size;
  const char *e = ml_json_skip(text, end);
  if (e && (e < text || e > end)) abort();
  static const char *keys[] = {"metadata", "kind", "", "a\"b"};
  for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
    size_t off = 0, len = 0;
    if (ml_json_member(text, size, keys[k], &off, &len) == 0) {
      if (off > size || len == 0 || len > size - off) abort();
      /* the member's value is one whole value */
      if (ml_json_skip(text + off, text + off + len) != text + off + len) abort();
    }
  }
  free(text);
  return 0;
}
