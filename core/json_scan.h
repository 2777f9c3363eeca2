/* json_scan: finds spans inside JSON text without decoding it. The API
 * answers metadata-only requests (PartialObjectMetadata) by slicing the
 * `metadata` member out of each stored object this way: no parse into a
 * tree, no re-encode. */
#ifndef ML_JSON_SCAN_H
#define ML_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/** ml_json_member for several keys in one pass: off[i] is (size_t)-1 for
 * a key the object lacks (the first member of a name counts).
 * @return 0, or ML_EPARSE when the text is not an object */
int ml_json_members(const char *text, size_t len, const char *const *keys, size_t n,
                    size_t *off, size_t *vlen);

/** Whether two JSON texts, one value each, hold equal values as jansson's
 * json_equal would find their parses: objects equal whatever their member
 * order, integers and reals never equal each other.
 * @return 1 equal, 0 different, -1 undecided (malformed text, nesting
 *         deeper than 512, a string or name spelled with escapes that
 *         differ, a number out of range): the caller then decides by
 *         parsing. */
int ml_json_equal_text(const char *a, size_t alen, const char *b, size_t blen);

/** The same for two object texts with the members named in `skip` (a
 * NULL-terminated list of plain names) left out of both: the apiserver's
 * "did anything but metadata and status change" for generation. Returns
 * -1 when either text is not an object. */
int ml_json_equal_text_except(const char *a, size_t alen, const char *b, size_t blen,
                              const char *const *skip);

/** Hashes of a JSON text's value that ignore member order: texts whose
 * values are equal (json_equal) hash equally, so different hashes prove
 * different values, a quick test before ml_json_equal_text(_except). */
typedef struct {
  uint64_t all;  /* the whole value */
  uint64_t rest; /* an object's members but the `skip` ones */
  bool odd;      /* a string holds an escape, or the text is malformed:
                    the hashes prove nothing */
} ml_json_hash_t;

/** One pass over text[0..len). @return !out->odd */
bool ml_json_hash(const char *text, size_t len, const char *const *skip, ml_json_hash_t *out);

#endif
