/* Unit tests of core/json_scan.c: skipping values of every JSON type,
 * finding a member by its decoded name, and refusing malformed or
 * truncated text (every prefix of a valid object) without reading past
 * the end. Prints TAP. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json_scan.h"

#include "tap.h"

/* The member's value text, or NULL with *rc set. */
static char *member(const char *text, const char *key, int *rc) {
  size_t off = 0, n = 0;
  *rc = ml_json_member(text, strlen(text), key, &off, &n);
  if (*rc != 0) return NULL;
  char *out = malloc(n + 1);
  memcpy(out, text + off, n);
  out[n] = '\0';
  return out;
}

static void member_is(const char *text, const char *key, const char *want) {
  int rc;
  char *got = member(text, key, &rc);
  OK(got && strcmp(got, want) == 0, "%s in %s -> %s (got %s, rc %d)", key, text, want,
     got ? got : "NULL", rc);
  free(got);
}

static void member_rc(const char *text, const char *key, int want) {
  int rc;
  free(member(text, key, &rc));
  OK(rc == want, "%s in %s -> rc %d (got %d)", key, text, want, rc);
}

static void skips(const char *text, size_t want) {
  const char *e = ml_json_skip(text, text + strlen(text));
  OK(e && (size_t)(e - text) == want, "skip %s -> %zu (got %ld)", text, want,
     e ? (long)(e - text) : -1L);
}

static void refuses(const char *text) {
  /* A heap copy without a terminator: ASan sees any read past the end. */
  size_t n = strlen(text);
  char *copy = malloc(n ? n : 1);
  memcpy(copy, text, n);
  OK(ml_json_skip(copy, copy + n) == NULL, "skip refuses %s", text);
  free(copy);
}

int main(void) {
  const char *pod = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\","
                    "\"labels\":{\"x\":\"}\"}},\"spec\":{\"containers\":[{\"name\":\"c\"}]}}";
  member_is(pod, "metadata", "{\"name\":\"a\",\"labels\":{\"x\":\"}\"}}");
  member_is(pod, "kind", "\"Pod\"");
  member_is(pod, "spec", "{\"containers\":[{\"name\":\"c\"}]}");
  member_rc(pod, "status", ML_ENOTFOUND);
  member_rc("{}", "metadata", ML_ENOTFOUND);
  member_rc(" { } ", "metadata", ML_ENOTFOUND);
  member_rc("[]", "metadata", ML_EPARSE);
  member_rc("", "metadata", ML_EPARSE);
  member_rc("{\"metadata\"", "metadata", ML_EPARSE);
  member_rc("{\"a\":1 \"metadata\":2}", "metadata", ML_EPARSE);
  member_rc("{\"a\":1,}", "metadata", ML_EPARSE);
  /* names compare decoded: escapes, and no prefix or suffix matches */
  member_is("{\"meta\\u0064ata\":7}", "metadata", "7");
  member_is("{\"a\\\"b\":true}", "a\"b", "true");
  member_rc("{\"metadat\":1,\"metadatas\":2}", "metadata", ML_ENOTFOUND);
  member_rc("{\"m\\u00e9\":1}", "m", ML_ENOTFOUND);
  member_is("{ \"a\" : [1, {\"b\": null}] , \"metadata\" :\t{ } }", "metadata", "{ }");
  member_is("{\"n\":-1.5e+3,\"metadata\":\"x\\\\\"}", "metadata", "\"x\\\\\"");

  skips("\"a\\\"b\"tail", 6);
  skips("  123 ", 5);
  skips("-0.5e-7,", 7);
  skips("[true,false,null]x", 17);
  skips("{\"a\":{\"b\":[{}]}}", 16);
  refuses("");
  refuses("-");
  refuses("tru");
  refuses("\"abc");
  refuses("\"a\\");
  refuses("\"a\tb\""); /* raw control characters are not allowed in strings */
  refuses("{\"a\" 1}");
  refuses("{1:2}");
  refuses("[1 2]");
  refuses("{\"a\":1");
  /* every prefix of a valid object is refused, read within bounds */
  size_t n = strlen(pod);
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    char *copy = malloc(i ? i : 1);
    memcpy(copy, pod, i);
    size_t off, vlen;
    if (ml_json_skip(copy, copy + i) != NULL) bad++;
    int rc = ml_json_member(copy, i, "status", &off, &vlen);
    if (rc != ML_EPARSE) bad++;
    free(copy);
  }
  OK(bad == 0, "every proper prefix of an object is malformed (%d wrong)", bad);
  /* nesting is bounded, not recursive without end */
  size_t deep = 100000;
  char *d = malloc(deep);
  memset(d, '[', deep);
  OK(ml_json_skip(d, d + deep) == NULL, "100000 nested arrays are refused");
  free(d);
  return tap_done();
}
