/* Compact JSON writer for jansson trees (json_write.h). Byte-identical to
 * json_dump*(JSON_COMPACT): members in the object's own order, strings
 * escaped as jansson's dump_string, integers in decimal. Reals are left to
 * jansson, whose "%.17g then add .0" rules are not worth restating. */
#include "json_write.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 2048

int ml_json_buf_reserve(ml_json_buf_t *b, size_t n) {
  if (b->len + n <= b->cap) return 1;
  size_t cap = b->cap ? b->cap * 2 : 1024;
  while (cap < b->len + n) cap *= 2;
  char *p = realloc(b->buf, cap);
  if (!p) return 0;
  b->buf = p;
  b->cap = cap;
  return 1;
}

int ml_json_buf_put(ml_json_buf_t *b, const char *s, size_t n) {
  if (n == 0) return 1; /* b->buf may still be NULL */
  if (!ml_json_buf_reserve(b, n)) return 0;
  memcpy(b->buf + b->len, s, n);
  b->len += n;
  return 1;
}

size_t ml_json_utf8_put(char *o, unsigned cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

size_t ml_json_utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  unsigned cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

int ml_json_write_string(ml_json_buf_t *b, const char *s, size_t n) {
  /* Worst case: every byte a 6-byte \u00XX escape, plus the quotes. */
  if (!ml_json_buf_reserve(b, n * 6 + 2)) return 0;
  char *o = b->buf + b->len;
  *o++ = '"';
  const char *end = s + n;
  while (s < end) {
    unsigned char c = (unsigned char)*s;
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      *o++ = (char)c;
      s++;
      continue;
    }
    if (c >= 0x80) {
      size_t k = ml_json_utf8_len((const unsigned char *)s, (size_t)(end - s));
      if (k == 0) return 0;
      memcpy(o, s, k);
      o += k;
      s += k;
      continue;
    }
    *o++ = '\\';
    switch (c) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '\b': *o++ = 'b'; break;
    case '\f': *o++ = 'f'; break;
    case '\n': *o++ = 'n'; break;
    case '\r': *o++ = 'r'; break;
    case '\t': *o++ = 't'; break;
    default: {
      static const char hex[] = "0123456789ABCDEF";
      *o++ = 'u';
      *o++ = '0';
      *o++ = '0';
      *o++ = hex[c >> 4];
      *o++ = hex[c & 15];
    }
    }
    s++;
  }
  *o++ = '"';
  b->len = (size_t)(o - b->buf);
  return 1;
}

static int write_integer(ml_json_buf_t *b, json_int_t v) {
  char tmp[24], *p = tmp + sizeof tmp;
  /* Through the unsigned magnitude, so INT64_MIN needs no special case. */
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--p = '-';
  return ml_json_buf_put(b, p, (size_t)(tmp + sizeof tmp - p));
}

static int write_value(ml_json_buf_t *b, const json_t *v, int depth) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    if (depth >= MAX_DEPTH || !ml_json_buf_put(b, "{", 1)) return 0;
    int first = 1;
    /* The iterator walks members in the order jansson's dumper does. */
    for (void *it = json_object_iter((json_t *)v); it;
         it = json_object_iter_next((json_t *)v, it)) {
      const char *k = json_object_iter_key(it);
      if (!first && !ml_json_buf_put(b, ",", 1)) return 0;
      first = 0;
      if (!ml_json_write_string(b, k, json_object_iter_key_len(it)) ||
          !ml_json_buf_put(b, ":", 1) ||
          !write_value(b, json_object_iter_value(it), depth + 1))
        return 0;
    }
    return ml_json_buf_put(b, "}", 1);
  }
  case JSON_ARRAY: {
    if (depth >= MAX_DEPTH || !ml_json_buf_put(b, "[", 1)) return 0;
    size_t n = json_array_size(v);
    for (size_t i = 0; i < n; i++) {
      if ((i && !ml_json_buf_put(b, ",", 1)) ||
          !write_value(b, json_array_get(v, i), depth + 1))
        return 0;
    }
    return ml_json_buf_put(b, "]", 1);
  }
  case JSON_STRING:
    return ml_json_write_string(b, json_string_value(v), json_string_length(v));
  case JSON_INTEGER: return write_integer(b, json_integer_value(v));
  case JSON_TRUE: return ml_json_buf_put(b, "true", 4);
  case JSON_FALSE: return ml_json_buf_put(b, "false", 5);
  case JSON_NULL: return ml_json_buf_put(b, "null", 4);
  default: return 0; /* JSON_REAL */
  }
}

int ml_json_write_tree(ml_json_buf_t *b, const json_t *v) {
  return v ? write_value(b, v, 0) : 0;
}
