/* json_read: jansson trees from the store's own JSON text. Every update and
 * delete parses the object's stored text first; jansson's reader (a
 * character stream, a token buffer filled byte by byte) was most of the
 * store's work in a pod status write. This reader takes what the store
 * writes and declines the rest, so the caller falls back to jansson. */
#ifndef ML_JSON_READ_H
#define ML_JSON_READ_H

#include <jansson.h>
#include <stddef.h>

/** Parses text[0..len): one object or array, with whitespace around it.
 * @return a new tree equal to what json_loadb(text, len, JSON_ALLOW_NUL)
 *         returns, or NULL to decline: malformed text, a real (jansson's
 *         conversion decides), an integer out of range, a key or string
 *         that is not valid UTF-8, nesting deeper than 512, no memory.
 *         Never a tree json_loadb would not give. */
json_t *ml_json_read(const char *text, size_t len);

/** Decodes the \\u escape whose four hex digits start at s (a high
 * surrogate takes the \\uXXXX after it as its pair); end is one past the
 * text. @return the bytes read from s (4 or 10) with *cp set, 0 when the
 * hex digits are missing or malformed, -1 for a lone or broken surrogate */
int ml_json_read_u(const char *s, const char *end, unsigned *cp);

#endif
