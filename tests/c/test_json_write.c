/* Unit tests of the store's JSON text both ways. core/json_write.c writes
 * exactly jansson's JSON_COMPACT text (strings with every escape, NUL,
 * multi-byte UTF-8, integer extremes, empty and nested containers, member
 * order, and 20,000 random trees) and declines what jansson must decide
 * (reals, bad UTF-8, nesting past its bound). core/json_read.c reads the
 * same trees jansson reads, in the same member order, from compact,
 * indented and ASCII-escaped text, and declines what it must leave to
 * jansson. Prints TAP. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_read.h"
#include "json_write.h"

#include "tap.h"

/* 1 when json_write's text of v equals jansson's compact dump. */
static int same_as_jansson(const json_t *v) {
  ml_json_buf_t b = {0};
  int ok = ml_json_write_tree(&b, v);
  char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  int same = ok && want && strlen(want) == b.len && memcmp(want, b.buf, b.len) == 0;
  free(want);
  free(b.buf);
  return same;
}

static int declines(const json_t *v) {
  ml_json_buf_t b = {0};
  int ok = ml_json_write_tree(&b, v);
  free(b.buf);
  return !ok;
}

/* 1 when json_read gives the tree jansson gives, member order included;
 * with `rejected_ok`, also when both reject the text. */
static int read_agrees(const char *text, size_t n, int rejected_ok) {
  json_t *got = ml_json_read(text, n);
  json_t *want = json_loadb(text, n, JSON_ALLOW_NUL, NULL);
  char *a = got ? json_dumps(got, JSON_COMPACT) : NULL;
  char *b = want ? json_dumps(want, JSON_COMPACT) : NULL;
  int same = (a && b && strcmp(a, b) == 0 && json_equal(got, want)) ||
             (rejected_ok && !got && !want);
  free(a), free(b);
  json_decref(got), json_decref(want);
  return same;
}

static int read_same(const char *text, size_t n) { return read_agrees(text, n, 0); }

static int read_declines(const char *text) {
  json_t *got = ml_json_read(text, strlen(text));
  json_decref(got);
  return got == NULL;
}

/* The tree's text in one jansson format reads back the same (a NUL in a
 * key: both readers refuse it). */
static int reads_back(const json_t *v, size_t flags) {
  char *text = json_dumps(v, flags);
  int same = text && read_agrees(text, strlen(text), 1);
  free(text);
  return same;
}

static unsigned rnd_state = 12345;
static unsigned rnd(unsigned n) {
  rnd_state = rnd_state * 1103515245u + 12345u;
  return (rnd_state >> 8) % n;
}

/* A random string: ASCII, controls, quotes, backslashes, NUL and valid
 * 2-4 byte UTF-8. */
static json_t *random_string(void) {
  static const char *pieces[] = {"a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\x01",
                                 "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac",
                                 "\xf0\x9f\x98\x80", "\xe2\x80\xa8"};
  char buf[64];
  size_t n = 0, k = rnd(8);
  for (size_t i = 0; i < k; i++) {
    if (rnd(10) == 0) {
      buf[n++] = '\0';
      continue;
    }
    const char *p = pieces[rnd(sizeof pieces / sizeof *pieces)];
    memcpy(buf + n, p, strlen(p));
    n += strlen(p);
  }
  return json_stringn(buf, n);
}

static json_t *random_tree(int depth) {
  unsigned kind = depth > 4 ? rnd(5) : rnd(7);
  switch (kind) {
  case 0: return random_string();
  case 1: return json_integer((json_int_t)rnd(2000000) - 1000000);
  case 2: return rnd(2) ? json_true() : json_false();
  case 3: return json_null();
  case 4: return json_integer(rnd(2) ? INT64_MAX : INT64_MIN);
  case 5: {
    json_t *a = json_array();
    for (unsigned i = rnd(4); i > 0; i--) json_array_append_new(a, random_tree(depth + 1));
    return a;
  }
  default: {
    json_t *o = json_object();
    for (unsigned i = rnd(5); i > 0; i--) {
      json_t *key = random_string();
      json_object_setn_new(o, json_string_value(key), json_string_length(key),
                           random_tree(depth + 1));
      json_decref(key);
    }
    return o;
  }
  }
}

int main(void) {
  json_t *pod = json_loads(
      "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"kubia-x\","
      "\"labels\":{\"app\":\"kubia\"},\"annotations\":{}},\"spec\":{\"containers\":"
      "[{\"name\":\"c\",\"args\":[\"a\\\"b\",\"tab\\there\",\"\\u0000\",\"\\u00e9\"],"
      "\"ports\":[{\"containerPort\":8080}]}],\"empty\":[]},\"status\":{\"ok\":true,"
      "\"no\":false,\"none\":null,\"neg\":-42}}",
      JSON_ALLOW_NUL, NULL);
  OK(pod && same_as_jansson(pod), "a pod-shaped object reads as jansson writes it");
  json_decref(pod);

  json_t *ordered = json_object();
  json_object_set_new(ordered, "zeta", json_integer(1));
  json_object_set_new(ordered, "alpha", json_integer(2));
  json_object_set_new(ordered, "mid", json_integer(3));
  ml_json_buf_t b = {0};
  OK(ml_json_write_tree(&b, ordered) && b.len == strlen("{\"zeta\":1,\"alpha\":2,\"mid\":3}") &&
         memcmp(b.buf, "{\"zeta\":1,\"alpha\":2,\"mid\":3}", b.len) == 0,
     "members keep their insertion order");
  free(b.buf);
  json_decref(ordered);

  json_t *ext = json_pack("[I,I,I]", (json_int_t)INT64_MIN, (json_int_t)INT64_MAX, (json_int_t)0);
  OK(same_as_jansson(ext), "integer extremes and zero");
  json_decref(ext);

  json_t *controls = json_stringn("\x00\x01\x08\x0c\x0a\x0d\x09\x1f\"\\/", 11);
  OK(same_as_jansson(controls), "every control character and escape");
  json_decref(controls);

  json_t *real = json_pack("{s:[i,f]}", "a", 1, 1.5);
  OK(declines(real), "a real anywhere is left to jansson");
  json_decref(real);

  json_t *bad = json_stringn_nocheck("\xc3(", 2);
  OK(declines(bad), "invalid UTF-8 is declined");
  json_decref(bad);

  json_t *deep = json_array(), *at = deep;
  for (int i = 0; i < 3000; i++) {
    json_t *inner = json_array();
    json_array_append_new(at, inner);
    at = inner;
  }
  OK(declines(deep), "nesting past the bound is declined, not recursed into");
  json_decref(deep);

  int wrong = 0;
  for (int i = 0; i < 20000; i++) {
    json_t *t = random_tree(0);
    if (!same_as_jansson(t)) wrong++;
    json_decref(t);
  }
  OK(wrong == 0, "20000 random trees read as jansson writes them (%d differ)", wrong);

  const char *escapes = "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\u0000x\"]";
  OK(read_same(escapes, strlen(escapes)), "read: every escape, a surrogate pair, \\u0000");
  const char *ints = " [ -9223372036854775808 , 9223372036854775807,-0,0 ,\n7 ] ";
  OK(read_same(ints, strlen(ints)), "read: integer extremes, -0, whitespace around tokens");
  const char *dup = "{\"a\":1,\"b\":{},\"a\":[true,false,null]}";
  OK(read_same(dup, strlen(dup)), "read: a repeated key keeps its last value, as jansson");
  const char *utf = "{\"caf\xc3\xa9\":\"\xf0\x9f\x98\x80\x7f\"}";
  OK(read_same(utf, strlen(utf)), "read: multi-byte UTF-8 in keys and values, DEL");
  static const char *const declined[] = {
      "[1.5]", "[1e3]", "[2E-1]", "[99999999999999999999]", "[-9223372036854775809]",
      "{\"a\\u0000\":1}", "[\"\xc3(\"]", "[\"\\ud800\"]", "[\"\\udc00\"]", "[01]",
      "{\"a\":1,}", "[1,]", "[1] x", "\"top\"", "[\"a\x01\"]", "[tru]", "{\"a\" 1}", "[",
      "", "[\"\\x\"]", "[-]", NULL};
  int accepted = 0;
  for (int i = 0; declined[i]; i++) accepted += !read_declines(declined[i]);
  OK(accepted == 0, "read: reals, out-of-range integers, a NUL in a key, bad UTF-8, "
     "lone surrogates, malformed text are declined (%d accepted)", accepted);
  char *deep_text = malloc(2 * 600 + 1);
  for (int i = 0; i < 600; i++) deep_text[i] = '[', deep_text[600 + i] = ']';
  deep_text[1200] = '\0';
  OK(read_declines(deep_text), "read: nesting past 512 is left to jansson");
  free(deep_text);

  int unread = 0, readable = 0;
  for (int i = 0; i < 20000; i++) {
    json_t *t = json_object();
    json_object_set_new(t, "v", random_tree(0));
    char *text = json_dumps(t, JSON_COMPACT);
    json_t *back = text ? json_loadb(text, strlen(text), JSON_ALLOW_NUL, NULL) : NULL;
    readable += back != NULL;
    json_decref(back);
    free(text);
    if (!reads_back(t, JSON_COMPACT) || !reads_back(t, JSON_INDENT(2)) ||
        !reads_back(t, JSON_COMPACT | JSON_ENSURE_ASCII))
      unread++;
    json_decref(t);
  }
  OK(unread == 0 && readable > 10000,
     "read: 20000 random trees, compact, indented and ASCII-escaped (%d differ; %d without "
     "a NUL in a key)", unread, readable);

  ml_json_buf_t s = {0};
  OK(ml_json_write_string(&s, "caf\xc3\xa9\n", 6) && s.len == 9 &&
         memcmp(s.buf, "\"caf\xc3\xa9\\n\"", 9) == 0,
     "write_string quotes and escapes one string");
  free(s.buf);
  return tap_done();
}
