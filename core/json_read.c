/* json_read: a recursive-descent reader of compact JSON into jansson trees,
 * for the texts the store wrote. Strings without escapes go to jansson in
 * one piece, already checked; anything jansson might answer differently
 * (reals, big integers, a NUL in a key) is declined, never guessed. */
#include "json_read.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_write.h"

/* Deeper documents are left to jansson (its own bound is 2048). */
#define MAX_DEPTH 512

typedef struct {
  const char *p, *end;
  ml_json_buf_t scratch; /* a string with escapes, decoded */
} reader_t;

static json_t *read_value(reader_t *r, int depth);

static void skip_ws(reader_t *r) {
  while (r->p < r->end &&
         (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
    r->p++;
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

int ml_json_read_u(const char *s, const char *end, unsigned *cp) {
  unsigned hi, lo;
  if (end - s < 4 || !hex4(s, &hi)) return 0;
  if (hi >= 0xdc00 && hi <= 0xdfff) return -1;
  if (hi < 0xd800 || hi > 0xdbff) {
    *cp = hi;
    return 4;
  }
  if (end - s < 10 || s[4] != '\\' || s[5] != 'u' || !hex4(s + 6, &lo) ||
      lo < 0xdc00 || lo > 0xdfff)
    return -1;
  *cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
  return 10;
}

/* One escape after the backslash at r->p; the decoded bytes are appended. */
static int read_escape(reader_t *r) {
  if (r->end - r->p < 2) return 0;
  char c = r->p[1];
  r->p += 2;
  const char *simple = "\"\\/bfnrt", *as = "\"\\/\b\f\n\r\t";
  for (int i = 0; simple[i]; i++)
    if (c == simple[i]) return ml_json_buf_put(&r->scratch, as + i, 1);
  unsigned cp;
  int k = c == 'u' ? ml_json_read_u(r->p, r->end, &cp) : 0;
  if (k <= 0) return 0;
  r->p += k;
  char u[4];
  return ml_json_buf_put(&r->scratch, u, ml_json_utf8_put(u, cp));
}

/* The string whose opening quote r->p is past. Sets *s and *n to its bytes
 * (in the text when it has no escapes, else in r->scratch). */
static int read_string(reader_t *r, const char **s, size_t *n) {
  const char *start = r->p;
  const unsigned char *p = (const unsigned char *)r->p;
  const unsigned char *end = (const unsigned char *)r->end;
  /* The usual case: printable ASCII up to the closing quote. */
  while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
  if (p < end && *p == '"') {
    *s = start;
    *n = (size_t)((const char *)p - start);
    r->p = (const char *)p + 1;
    return 1;
  }
  r->scratch.len = 0;
  if (!ml_json_buf_put(&r->scratch, start, (size_t)((const char *)p - start)))
    return 0;
  r->p = (const char *)p;
  while (r->p < r->end) {
    unsigned char c = (unsigned char)*r->p;
    if (c == '"') {
      r->p++;
      *s = r->scratch.buf ? r->scratch.buf : "";
      *n = r->scratch.len;
      return 1;
    }
    if (c == '\\') {
      if (!read_escape(r)) return 0;
    } else if (c < 0x20) {
      return 0; /* jansson rejects raw control characters */
    } else if (c < 0x80) {
      if (!ml_json_buf_put(&r->scratch, r->p, 1)) return 0;
      r->p++;
    } else {
      size_t k = ml_json_utf8_len((const unsigned char *)r->p,
                                  (size_t)(r->end - r->p));
      if (!k || !ml_json_buf_put(&r->scratch, r->p, k)) return 0;
      r->p += k;
    }
  }
  return 0;
}

/* An integer as jansson's lexer takes it; reals and overflow decline. */
static json_t *read_integer(reader_t *r) {
  const char *p = r->p;
  int neg = 0;
  if (p < r->end && *p == '-') {
    neg = 1;
    p++;
  }
  if (p >= r->end || *p < '0' || *p > '9') return NULL;
  if (*p == '0' && p + 1 < r->end && p[1] >= '0' && p[1] <= '9') return NULL;
  uint64_t v = 0;
  const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  while (p < r->end && *p >= '0' && *p <= '9') {
    unsigned d = (unsigned)(*p - '0');
    if (v > (limit - d) / 10) return NULL;
    v = v * 10 + d;
    p++;
  }
  if (p < r->end && (*p == '.' || *p == 'e' || *p == 'E')) return NULL;
  r->p = p;
  json_int_t i = neg ? (json_int_t)(0 - v) : (json_int_t)v;
  return json_integer(i);
}

static int literal(reader_t *r, const char *word, size_t n) {
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return 0;
  r->p += n;
  return 1;
}

/* After a member or element: 1 for another, 0 at `close`, -1 malformed. */
static int next_item(reader_t *r, char close) {
  skip_ws(r);
  if (r->p >= r->end) return -1;
  char c = *r->p++;
  if (c == ',') return 1;
  return c == close ? 0 : -1;
}

static json_t *read_object(reader_t *r, int depth) {
  json_t *obj = json_object();
  if (!obj) return NULL;
  skip_ws(r);
  if (r->p < r->end && *r->p == '}') {
    r->p++;
    return obj;
  }
  for (;;) {
    skip_ws(r);
    const char *s;
    size_t n;
    if (r->p >= r->end || *r->p != '"') break;
    r->p++;
    if (!read_string(r, &s, &n) || memchr(s, '\0', n)) break;
    /* A key decoded into the scratch buffer is copied: the value may
     * reuse it. One without escapes stays in the text. */
    char small[64], *copy = NULL;
    const char *key = s;
    if (s == r->scratch.buf) {
      copy = n < sizeof small ? small : malloc(n);
      if (!copy) break;
      memcpy(copy, s, n);
      key = copy;
    }
    skip_ws(r);
    json_t *v = NULL;
    if (r->p < r->end && *r->p == ':') {
      r->p++;
      v = read_value(r, depth + 1);
    }
    int ok = v && json_object_setn_new_nocheck(obj, key, n, v) == 0;
    if (copy != small) free(copy);
    if (!ok) break;
    int more = next_item(r, '}');
    if (more < 0) break;
    if (!more) return obj;
  }
  json_decref(obj);
  return NULL;
}

static json_t *read_array(reader_t *r, int depth) {
  json_t *arr = json_array();
  if (!arr) return NULL;
  skip_ws(r);
  if (r->p < r->end && *r->p == ']') {
    r->p++;
    return arr;
  }
  for (;;) {
    json_t *v = read_value(r, depth + 1);
    if (!v || json_array_append_new(arr, v) != 0) break;
    int more = next_item(r, ']');
    if (more < 0) break;
    if (!more) return arr;
  }
  json_decref(arr);
  return NULL;
}

static json_t *read_value(reader_t *r, int depth) {
  if (depth > MAX_DEPTH) return NULL;
  skip_ws(r);
  if (r->p >= r->end) return NULL;
  const char *s;
  size_t n;
  switch (*r->p) {
  case '{':
    r->p++;
    return read_object(r, depth);
  case '[':
    r->p++;
    return read_array(r, depth);
  case '"':
    r->p++;
    if (!read_string(r, &s, &n)) return NULL;
    return json_stringn_nocheck(s, n);
  case 't':
    return literal(r, "true", 4) ? json_true() : NULL;
  case 'f':
    return literal(r, "false", 5) ? json_false() : NULL;
  case 'n':
    return literal(r, "null", 4) ? json_null() : NULL;
  default:
    return read_integer(r);
  }
}

json_t *ml_json_read(const char *text, size_t len) {
  reader_t r = {text, text + len, {0}};
  skip_ws(&r);
  json_t *v = NULL;
  if (r.p < r.end && (*r.p == '{' || *r.p == '[')) v = read_value(&r, 0);
  free(r.scratch.buf);
  if (!v) return NULL;
  skip_ws(&r);
  if (r.p != r.end) {
    json_decref(v);
    return NULL;
  }
  return v;
}
