/* Kubernetes field selectors (apimachinery pkg/fields): `a=b`, `a==b`,
 * `a!=b` terms joined by commas, with backslash escapes in values, matched
 * against JSON objects by dotted paths such as metadata.name. */
#ifndef ML_FIELD_SELECTOR_H
#define ML_FIELD_SELECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct ml_fieldsel_s ml_fieldsel_t;

/**
 * Parses a field selector the way fields.ParseSelector does: terms are
 * sorted by their text, "" terms skipped, values unescaped (`\\`, `\,`,
 * `\=`).
 * @param errmsg on failure a malloc'd message worded as Kubernetes words
 *        it (`invalid selector: 'x'; can't understand 'x'`, `invalid field
 *        selector: invalid escape sequence: \q`, ...); caller frees.
 * @return 0 or ML_EPARSE.
 */
int ml_fieldsel_parse(const char *text, ml_fieldsel_t **out, char **errmsg);

/**
 * Looks up a field for matching.
 * @return the field's text ("" when absent); may point into `buf`.
 */
typedef const char *(*ml_field_get_fn)(void *ud, const char *path, char *buf,
                                       size_t buflen);

/** True when every term matches the fields `get` reports. */
bool ml_fieldsel_matches(const ml_fieldsel_t *fs, ml_field_get_fn get,
                         void *ud);

/**
 * Matches a JSON object: each key is a dotted path into it (missing = "",
 * numbers and booleans compare by their JSON text).
 */
bool ml_fieldsel_matches_json(const ml_fieldsel_t *fs, const json_t *obj);

/** @return the number of terms. */
int ml_fieldsel_count(const ml_fieldsel_t *fs);
/** @return the field (left-hand side) of term `i`. */
const char *ml_fieldsel_key(const ml_fieldsel_t *fs, int i);
/** @return the unescaped value of term `i`. */
const char *ml_fieldsel_value(const ml_fieldsel_t *fs, int i);
/** @return the operator of term `i`: "=" or "!=" ("==" is kept as "="). */
const char *ml_fieldsel_op(const ml_fieldsel_t *fs, int i);

/** @return the String() form (`a=b,c!=d`, values escaped), malloc'd. */
char *ml_fieldsel_string(const ml_fieldsel_t *fs);
void ml_fieldsel_free(ml_fieldsel_t *fs);

/** @return `s` escaped for a field selector value (fields.EscapeValue). */
char *ml_fieldsel_escape(const char *s);

#endif
