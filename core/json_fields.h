/* json_fields: every member of a JSON text with its path, in text order,
 * marking the ones whose name their object already had. kube-apiserver's
 * strict decoder reports duplicate fields ("metadata.name") and words its
 * strict-decoding errors in the order they stand in the body; the API
 * walks a body this way only when it has something to report, never on a
 * clean one (the decoder's own check is a flag). */
#ifndef ML_JSON_FIELDS_H
#define ML_JSON_FIELDS_H

#include <stddef.h>

/** Called for each member in text order. `path` is its JSON path as the
 * API words it: names joined by '.', list elements as "[i]"
 * ("spec.containers[0].name"), not NUL-terminated. `dup`: the object had
 * a member of that name before this one. A non-zero return stops the walk
 * and is returned. */
typedef int (*ml_json_field_fn)(void *ud, const char *path, size_t plen, int dup);

/** Walks text[0..len), one value with whitespace around it.
 * The paths handed out add up to at most 8 * len + 4096 bytes (a document
 * nested deep under long names could make that quadratic): past it the
 * walk stops with ML_ETOOLARGE, the members so far reported.
 * @return 0, the callback's non-zero, ML_EPARSE (malformed text, nesting
 *         deeper than 1000, a name with a bad escape), ML_ETOOLARGE, or
 *         ML_ENOMEM */
int ml_json_fields(const char *text, size_t len, ml_json_field_fn fn, void *ud);

#endif
