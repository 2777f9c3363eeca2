/* Kubernetes label selectors and label validation in C: the string syntax
 * of labels.Parse, LabelSelector objects (matchLabels + matchExpressions)
 * with apimachinery's validation messages, matching, and the canonical
 * String() form. Field selectors live in field_selector.h. */
#ifndef ML_SELECTOR_H
#define ML_SELECTOR_H

#include <jansson.h>
#include <stdbool.h>

typedef struct ml_selector_s ml_selector_t;

/**
 * Parses a selector string ("a=b,c in (d,e),!f"). "" parses to the empty
 * selector, which matches everything.
 * @param errmsg on failure receives a malloc'd message worded as
 *        Kubernetes words it; the caller frees it.
 * @return 0, or ML_EPARSE / ML_EINVALID.
 */
int ml_selector_parse(const char *text, ml_selector_t **out, char **errmsg);

/**
 * Converts a LabelSelector object ({matchLabels, matchExpressions}).
 * A NULL json (nil selector) gives a selector that matches nothing; `{}`
 * gives one that matches everything.
 * @param field_path the path reported in errors, e.g. "spec.selector".
 * @param errmsg on failure: malloc'd, newline-separated field errors such
 *        as `spec.selector.matchExpressions[0].values: Required value: ...`.
 * @return 0 or ML_EINVALID.
 */
int ml_selector_from_json(const json_t *label_selector, const char *field_path,
                          ml_selector_t **out, char **errmsg);

/** Label lookup for matching: the value of `key`, or NULL when absent. */
typedef const char *(*ml_label_get_fn)(void *ud, const char *key);

bool ml_selector_matches(const ml_selector_t *sel, ml_label_get_fn get, void *ud);
/** Matches against a JSON object of string labels (NULL = no labels). */
bool ml_selector_matches_json(const ml_selector_t *sel, const json_t *labels);
/** True for the empty selector (matches everything). */
bool ml_selector_is_empty(const ml_selector_t *sel);
/** True for the nil selector (matches nothing). */
bool ml_selector_is_nothing(const ml_selector_t *sel);
/** @return the canonical String() form, malloc'd. */
char *ml_selector_string(const ml_selector_t *sel);
void ml_selector_free(ml_selector_t *sel);

/**
 * Label key / value validation with apimachinery's messages.
 * @return NULL when valid, else a malloc'd message (several joined by "; ").
 */
char *ml_label_key_error(const char *key);
char *ml_label_value_error(const char *value);

#endif
