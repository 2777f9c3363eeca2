/* libFuzzer target for the manifest path: every document of a YAML stream
 * is decoded, written as JSON text and read back, and written as YAML and
 * read back; both trips must give the same value. Repeated keys are noted
 * only on a document with a value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yaml_codec.h"

static void check_round_trips(const json_t *v) {
  char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_SORT_KEYS);
  if (!text) abort();
  json_error_t e;
  json_t *back = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
  if (!back || !json_equal(v, back)) {
    fprintf(stderr, "JSON round trip changed %s\n", text);
    abort();
  }
  json_decref(back);
  free(text);

  char err[256];
  size_t len;
  char *yaml = ml_json_to_yaml(v, &len, err, sizeof err);
  if (!yaml) {
    fprintf(stderr, "cannot emit: %s\n", err);
    abort();
  }
  json_t *again = ml_yaml_load(yaml, len, err, sizeof err);
  if (!again || !json_equal(v, again)) {
    fprintf(stderr, "YAML round trip changed:\n%s\n(%s)\n", yaml,
            again ? "different value" : err);
    abort();
  }
  json_decref(again);
  free(yaml);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ml_yaml_docs_t docs;
  if (ml_yaml_to_json((const char *)data, size, &docs) == 0) {
    for (size_t i = 0; i < docs.n; i++) {
      if (docs.docs[i].value) check_round_trips(docs.docs[i].value);
      else if (!docs.docs[i].err) abort(); /* a value or an error, always */
      /* repeated keys are noted on a value only, one line each */
      if (docs.docs[i].dups && (!docs.docs[i].value || strncmp(docs.docs[i].dups, "line ", 5) != 0))
        abort();
    }
  }
  ml_yaml_docs_free(&docs);
  return 0;
}
