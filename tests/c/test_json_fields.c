/* Unit tests of core/json_fields.c: member paths in text order through
 * nested objects and arrays of objects, duplicates marked where their
 * object repeats a name (escaped spellings included, the same name in
 * sibling objects not), the callback's stop, malformed text, and the
 * bound on the path bytes handed out. Prints TAP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json_fields.h"

#include "tap.h"

/* The members as "path" or "path!" (a duplicate), joined by spaces. */
typedef struct {
  char out[4096];
  size_t len;
  int stop_after; /* >0: stop the walk (return 7) at that member */
  int seen;
} collect_t;

static int collect(void *ud, const char *path, size_t plen, int dup) {
  collect_t *c = ud;
  size_t room = sizeof c->out - c->len;
  int n = snprintf(c->out + c->len, room, "%s%.*s%s", c->len ? " " : "", (int)plen, path,
                   dup ? "!" : "");
  /* long paths (the bound's test) are cut off, and nothing more added */
  c->len = n > 0 && (size_t)n < room ? c->len + (size_t)n : sizeof c->out - 1;
  return ++c->seen == c->stop_after ? 7 : 0;
}

static void walks_to(const char *text, const char *want) {
  collect_t c = {{0}, 0, 0, 0};
  int rc = ml_json_fields(text, strlen(text), collect, &c);
  OK(rc == 0 && strcmp(c.out, want) == 0, "%s -> %s (got rc %d: %s)", text, want, rc, c.out);
}

static void fails_with(const char *text, int want) {
  collect_t c = {{0}, 0, 0, 0};
  int rc = ml_json_fields(text, strlen(text), collect, &c);
  OK(rc == want, "%s -> rc %d (got %d)", text, want, rc);
}

static void test_paths(void) {
  walks_to("{}", "");
  walks_to("[]", "");
  walks_to(" {\"a\":1} ", "a");
  walks_to("{\"metadata\":{\"name\":\"a\",\"labels\":{\"app\":\"x\"}},\"spec\":{}}",
           "metadata metadata.name metadata.labels metadata.labels.app spec");
  walks_to("{\"spec\":{\"containers\":[{\"name\":\"a\"},{\"name\":\"b\",\"args\":[\"x\",{\"k\":1}]}]}}",
           "spec spec.containers spec.containers[0].name spec.containers[1].name "
           "spec.containers[1].args spec.containers[1].args[1].k");
  walks_to("[{\"a\":1},[{\"b\":2}]]", "[0].a [1][0].b");
  /* names are unescaped as the decoders read them */
  walks_to("{\"a\\u002eb\":{\"c\\\"d\":true}}", "a.b a.b.c\"d");
}

static void test_duplicates(void) {
  walks_to("{\"metadata\":{\"name\":\"a\",\"name\":\"b\"}}", "metadata metadata.name metadata.name!");
  /* a third one is a duplicate too; other names in between do not matter */
  walks_to("{\"a\":1,\"b\":2,\"a\":3,\"a\":4}", "a b a! a!");
  /* the same name in sibling objects, or at another depth, is no duplicate */
  walks_to("{\"c\":[{\"n\":1},{\"n\":2}],\"n\":{\"n\":1}}", "c c[0].n c[1].n n n.n");
  /* arrays of objects: the path names the element */
  walks_to("{\"spec\":{\"containers\":[{\"name\":\"a\"},{\"name\":\"b\",\"image\":\"i\",\"name\":\"c\"}]}}",
           "spec spec.containers spec.containers[0].name spec.containers[1].name "
           "spec.containers[1].image spec.containers[1].name!");
  /* a repeated object is walked again, its members under the same path */
  walks_to("{\"spec\":{\"a\":1},\"spec\":{\"a\":2,\"a\":3}}", "spec spec.a spec! spec.a spec.a!");
  /* an escaped spelling of a name seen is the same name */
  walks_to("{\"ab\":1,\"\\u0061b\":2}", "ab ab!");
  /* a name with a dot is one name, not a path */
  walks_to("{\"a.b\":1,\"a\":{\"b\":2}}", "a.b a a.b");
}

static void test_stops_and_errors(void) {
  collect_t c = {{0}, 0, 2, 0};
  const char *t = "{\"a\":1,\"b\":2,\"c\":3}";
  int rc = ml_json_fields(t, strlen(t), collect, &c);
  OK(rc == 7 && strcmp(c.out, "a b") == 0, "the callback's non-zero stops the walk (rc %d: %s)", rc,
     c.out);
  fails_with("", ML_EPARSE);
  fails_with("{\"a\":}", ML_EPARSE);
  fails_with("{\"a\":1,}", ML_EPARSE);
  fails_with("{\"a\":1} x", ML_EPARSE);
  fails_with("{\"a\\x\":1}", ML_EPARSE);
  fails_with("{\"a\\ud800\":1}", ML_EPARSE);
  fails_with("{\"a\":[1,2", ML_EPARSE);
  /* every prefix of a valid text is malformed, never read past its end */
  const char *full = "{\"a\":[{\"b\":\"x\\\"y\"},2],\"c\":{\"d\":null}}";
  int all = 1;
  for (size_t n = 0; n < strlen(full); n++) {
    char *cut = malloc(n ? n : 1);
    memcpy(cut, full, n);
    collect_t p = {{0}, 0, 0, 0};
    if (ml_json_fields(cut, n, collect, &p) != ML_EPARSE) all = 0;
    free(cut);
  }
  OK(all, "every prefix is ML_EPARSE");
  /* nesting past 1000 is malformed */
  size_t depth = 1002;
  char *deep = malloc(2 * depth + 1);
  for (size_t i = 0; i < depth; i++) deep[i] = '[', deep[2 * depth - 1 - i] = ']';
  deep[2 * depth] = '\0';
  fails_with(deep, ML_EPARSE);
  free(deep);
}

/* A chain of objects under long names: each member's path holds every
 * name above it, so the walk stops at its bound instead of handing out
 * bytes quadratic in the text. */
static void test_budget(void) {
  size_t depth = 400, name = 200, len = 0;
  char *t = malloc(depth * (name + 4) + depth + 8);
  for (size_t i = 0; i < depth; i++) {
    t[len++] = '{';
    t[len++] = '"';
    memset(t + len, 'k', name);
    len += name;
    t[len++] = '"';
    t[len++] = ':';
  }
  t[len++] = '1';
  for (size_t i = 0; i < depth; i++) t[len++] = '}';
  collect_t c = {{0}, 0, 0, 0};
  c.stop_after = -1;
  int rc = ml_json_fields(t, len, collect, &c);
  OK(rc == ML_ETOOLARGE && c.seen > 10 && (size_t)c.seen < depth,
     "a deep chain of long names stops at the bound (rc %d after %d members)", rc, c.seen);
  free(t);
}

int main(void) {
  test_paths();
  test_duplicates();
  test_stops_and_errors();
  test_budget();
  return tap_done();
}
