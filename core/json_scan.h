/* json_scan: finds spans inside JSON text without decoding it. The API
 * answers metadata-only requests (PartialObjectMetadata) by slicing the
 * `metadata` member out of each stored object this way: no parse into a
 * tree, no re-encode. */
#ifndef ML_JSON_SCAN_H
#define ML_JSON_SCAN_H

#include <stddef.h>

/** Skips one JSON value (and the whitespace before it).
 * @param p start of the text; @param end one past its last byte
 * @return one past the value's last byte, or NULL when the text is not a
 *         well-formed value (nesting deeper than 512 counts as malformed).
 *         Numbers are checked loosely (a run of digits, signs, '.', 'e'):
 *         the texts scanned are the store's, which jansson wrote. */
const char *ml_json_skip(const char *p, const char *end);

/** Finds member `key` (ASCII, matched against the decoded member name) of
 * the JSON object in text[0..len).
 * @param off set to the offset of the member's value
 * @param vlen set to the value's length
 * @return 0, ML_ENOTFOUND when the object has no such member, ML_EPARSE
 *         when the text is not an object (up to the member, or the end) */
int ml_json_member(const char *text, size_t len, const char *key, size_t *off,
                   size_t *vlen);

#endif
