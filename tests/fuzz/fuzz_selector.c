/* libFuzzer target: the input as a label selector and as a field selector.
 * Whatever parses must print a canonical form that parses again to the
 * same text (label selectors), or to a form that is then stable (field
 * selectors: Kubernetes sorts raw terms before printing them, so the first
 * print may reorder once). Nothing may crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "field_selector.h"
#include "selector.h"

static void label_roundtrip(const char *text) {
  ml_selector_t *sel = NULL, *again = NULL;
  char *err = NULL;
  if (ml_selector_parse(text, &sel, &err) != 0) {
    if (!err || !*err) abort(); /* every failure has a message */
    free(err);
    return;
  }
  char *s1 = ml_selector_string(sel);
  if (ml_selector_parse(s1, &again, &err) != 0) {
    fprintf(stderr, "canonical form does not parse: [%s] -> [%s]: %s\n", text,
            s1, err);
    abort();
  }
  char *s2 = ml_selector_string(again);
  if (strcmp(s1, s2) != 0) {
    fprintf(stderr, "round trip differs: [%s] -> [%s] -> [%s]\n", text, s1, s2);
    abort();
  }
  static const char *const labels[] = {"{}", "{\"a\":\"b\",\"x\":\"1\"}"};
  for (size_t i = 0; i < 2; i++) {
    json_t *j = json_loads(labels[i], 0, NULL);
    if (ml_selector_matches_json(sel, j) != ml_selector_matches_json(again, j))
      abort();
    json_decref(j);
  }
  free(s1);
  free(s2);
  ml_selector_free(sel);
  ml_selector_free(again);
}

static char *fields_print(const char *text) {
  ml_fieldsel_t *fs = NULL;
  char *err = NULL;
  if (ml_fieldsel_parse(text, &fs, &err) != 0) {
    if (!err || !*err) abort();
    free(err);
    return NULL;
  }
  char *s = ml_fieldsel_string(fs);
  ml_fieldsel_free(fs);
  return s;
}

static void field_roundtrip(const char *text) {
  char *s1 = fields_print(text);
  if (!s1) return;
  char *s2 = fields_print(s1);
  if (!s2) {
    fprintf(stderr, "field canonical form does not parse: [%s] -> [%s]\n",
            text, s1);
    abort();
  }
  char *s3 = fields_print(s2);
  if (!s3 || strcmp(s2, s3) != 0 || strlen(s1) != strlen(s2)) {
    fprintf(stderr, "field round trip differs: [%s] -> [%s] -> [%s] -> [%s]\n",
            text, s1, s2, s3 ? s3 : "(error)");
    abort();
  }
  free(s1);
  free(s2);
  free(s3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* The C API takes C strings: the text ends at the first NUL, as Go's
   * lexer also stops there. */
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  label_roundtrip(text);
  field_roundtrip(text);
  char *e = ml_label_key_error(text);
  free(e);
  e = ml_label_value_error(text);
  free(e);
  char *q = ml_go_quote(text);
  free(q);
  free(text);
  return 0;
}
