/* json_scan: skipping JSON values and finding an object's member by name
 * without building a tree (see json_scan.h). Bounds are checked on every
 * byte: the input may be anything. */
#include "json_scan.h"

#include <stdbool.h>
#include <string.h>

#include "err.h"

/* Deep enough for any Kubernetes object, shallow enough for the C stack. */
#define MAX_DEPTH 512

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* p at the opening quote; returns one past the closing quote. */
static const char *skip_string(const char *p, const char *end) {
  for (p++; p < end; p++) {
    if (*p == '"') return p + 1;
    if (*p == '\\') {
      if (++p >= end) return NULL;
    } else if ((unsigned char)*p < 0x20) {
      return NULL;
    }
  }
  return NULL;
}

static const char *skip_literal(const char *p, const char *end, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(end - p) < n || memcmp(p, w, n) != 0) return NULL;
  return p + n;
}

static const char *skip_number(const char *p, const char *end) {
  const char *s = p;
  if (p < end && *p == '-') p++;
  const char *digits = p;
  while (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' ||
                     *p == '+' || *p == '-'))
    p++;
  return p > digits && p > s ? p : NULL;
}

static const char *skip_value(const char *p, const char *end, int depth);

/* p after '{' or '['; close is the matching bracket. */
static const char *skip_container(const char *p, const char *end, int depth, char close) {
  if (depth > MAX_DEPTH) return NULL;
  p = skip_ws(p, end);
  if (p < end && *p == close) return p + 1;
  for (;;) {
    if (close == '}') {
      p = skip_ws(p, end);
      if (p >= end || *p != '"' || !(p = skip_string(p, end))) return NULL;
      p = skip_ws(p, end);
      if (p >= end || *p++ != ':') return NULL;
    }
    if (!(p = skip_value(p, end, depth + 1))) return NULL;
    p = skip_ws(p, end);
    if (p >= end) return NULL;
    if (*p == close) return p + 1;
    if (*p++ != ',') return NULL;
  }
}

static const char *skip_value(const char *p, const char *end, int depth) {
  p = skip_ws(p, end);
  if (p >= end) return NULL;
  switch (*p) {
  case '"': return skip_string(p, end);
  case '{': return skip_container(p + 1, end, depth, '}');
  case '[': return skip_container(p + 1, end, depth, ']');
  case 't': return skip_literal(p, end, "true");
  case 'f': return skip_literal(p, end, "false");
  case 'n': return skip_literal(p, end, "null");
  default: return skip_number(p, end);
  }
}

const char *ml_json_skip(const char *p, const char *end) {
  return p && p <= end ? skip_value(p, end, 0) : NULL;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Whether the quoted name s..e (quotes excluded) decodes to the ASCII key.
 * Names are compared after unescaping, so "\u006detadata" is "metadata". */
static bool name_is(const char *s, const char *e, const char *key) {
  for (; s < e; s++, key++) {
    char c = *s;
    if (c == '\\') {
      if (++s >= e) return false;
      switch (*s) {
      case 'u': {
        if (e - s < 5) return false;
        int v = 0;
        for (int i = 1; i <= 4; i++) {
          int h = hexval(s[i]);
          if (h < 0) return false;
          v = v * 16 + h;
        }
        if (v >= 0x80) return false; /* the key is ASCII */
        c = (char)v;
        s += 4;
        break;
      }
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      default: c = *s; break; /* \" \\ \/ */
      }
    }
    if (*key == '\0' || c != *key) return false;
  }
  return *key == '\0';
}

int ml_json_member(const char *text, size_t len, const char *key, size_t *off,
                   size_t *vlen) {
  const char *end = text + len;
  const char *p = skip_ws(text, end);
  if (p >= end || *p++ != '{') return ML_EPARSE;
  p = skip_ws(p, end);
  if (p < end && *p == '}') return ML_ENOTFOUND;
  for (;;) {
    p = skip_ws(p, end);
    if (p >= end || *p != '"') return ML_EPARSE;
    const char *name = p + 1, *after = skip_string(p, end);
    if (!after) return ML_EPARSE;
    p = skip_ws(after, end);
    if (p >= end || *p++ != ':') return ML_EPARSE;
    const char *v = skip_ws(p, end), *vend = skip_value(v, end, 1);
    if (!vend) return ML_EPARSE;
    if (name_is(name, after - 1, key)) {
      *off = (size_t)(v - text);
      *vlen = (size_t)(vend - v);
      return 0;
    }
    p = skip_ws(vend, end);
    if (p >= end) return ML_EPARSE;
    if (*p == '}') return ML_ENOTFOUND;
    if (*p++ != ',') return ML_EPARSE;
  }
}
