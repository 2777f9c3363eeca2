/* json_write: compact JSON text from jansson trees and raw strings, the same
 * bytes jansson's json_dump*(JSON_COMPACT) writes, without its per-token
 * callbacks and its cycle check by pointer-keyed hashtable. The store
 * serializes every object it writes, so this is on every write's path. */
#ifndef ML_JSON_WRITE_H
#define ML_JSON_WRITE_H

#include <jansson.h>
#include <stddef.h>

/** A growable output buffer; the caller owns (and frees) buf. */
typedef struct {
  char *buf;
  size_t cap, len;
} ml_json_buf_t;

/** Makes room for n more bytes. @return 1, or 0 when out of memory */
int ml_json_buf_reserve(ml_json_buf_t *b, size_t n);

/** Appends n bytes. @return 1, or 0 when out of memory */
int ml_json_buf_put(ml_json_buf_t *b, const char *s, size_t n);

/** Length of the UTF-8 sequence at s (n bytes there).
 * @return 1-4, or 0 when the bytes are not valid UTF-8 (overlong forms,
 *         surrogates and code points past U+10FFFF included) */
size_t ml_json_utf8_len(const unsigned char *s, size_t n);

/** Writes code point cp as UTF-8 into o (room for 4 bytes).
 * @return the bytes written */
size_t ml_json_utf8_put(char *o, unsigned cp);

/** Appends s[0..n) as a JSON string, quoted and escaped as jansson does
 * without JSON_ENSURE_ASCII or JSON_ESCAPE_SLASH.
 * @return 1, or 0 when s is not valid UTF-8 or memory ran out (b->len is
 *         then unspecified) */
int ml_json_write_string(ml_json_buf_t *b, const char *s, size_t n);

/** Appends the compact text of `v`.
 * @return 1, or 0 to decline: a real (jansson's formatting decides), a
 *         string that is not valid UTF-8, nesting deeper than 2048, or no
 *         memory. The caller then serializes with jansson. */
int ml_json_write_tree(ml_json_buf_t *b, const json_t *v);

#endif
