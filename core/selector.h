/* Kubernetes label selectors and label validation in C: the string syntax
 * of labels.Parse, LabelSelector objects (matchLabels + matchExpressions)
 * with apimachinery's validation messages, matching, and the canonical
 * String() form. Field selectors live in field_selector.h. */
#ifndef ML_SELECTOR_H
#define ML_SELECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

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

/* ---- additions: requirements, field errors, tokens ---------------------- */

/**
 * One apimachinery field.Error. `type` is the ErrorType reason
 * ("FieldValueInvalid", "FieldValueRequired", ...), a static string.
 * `value` is the bad value (NULL when the error type omits it).
 */
typedef struct {
  const char *type;
  char *field;
  json_t *value;
  char *detail;
} ml_field_error_t;

/** A growable list of field errors; zero-initialise before use. */
typedef struct {
  ml_field_error_t *v;
  size_t n, cap;
} ml_field_errors_t;

/** Frees the errors' contents and leaves the list empty. */
void ml_field_errors_free(ml_field_errors_t *errs);

/**
 * @return field.Error.Error(): `<field>: <ErrorBody>`, malloc'd.
 */
char *ml_field_error_string(const ml_field_error_t *e);
/**
 * @return field.Error.ErrorBody(): `Invalid value: "x": detail`, malloc'd.
 * Strings print as Go's %q, other values as Go's encoding/json (1.34+).
 */
char *ml_field_error_body(const ml_field_error_t *e);

/** @return `s` quoted the way Go's strconv.Quote does it, malloc'd. */
char *ml_go_quote(const char *s);
/** @return `s` as a JSON string the way Go's encoding/json writes it. */
char *ml_go_json_string(const char *s);

/** An empty selector (matches everything) to add requirements to. */
ml_selector_t *ml_selector_new(void);
/** The nil selector (labels.Nothing()). */
ml_selector_t *ml_selector_nothing(void);

/**
 * labels.NewRequirement followed by Selector.Add: validates and appends one
 * requirement, keeping requirements sorted by key (stable).
 * @param op a k8s.io/apimachinery/pkg/selection spelling: "in", "notin",
 *        "=", "==", "!=", "gt", "lt", "exists", "!".
 * @param errs receives the field errors (field paths relative to the
 *        requirement: "key", "values", "values[0][key]", "operator"); may
 *        be NULL.
 * @return 0, or ML_EINVALID (nothing added).
 */
int ml_selector_add(ml_selector_t *sel, const char *key, const char *op,
                    const char *const *values, size_t nvalues,
                    ml_field_errors_t *errs);

/**
 * Appends a requirement without NewRequirement's checks, as
 * SelectorFromValidatedSet does (the caller vouches for key and values).
 * @return 0, or ML_EINVALID for an unknown operator.
 */
int ml_selector_add_trusted(ml_selector_t *sel, const char *key,
                            const char *op, const char *const *values,
                            size_t nvalues);

/**
 * Like ml_selector_from_json but returns the ValidateLabelSelector errors
 * as a list (paths below `field_path`, e.g. "spec.selector.matchLabels").
 * @return 0 or ML_EINVALID.
 */
int ml_selector_from_json_errs(const json_t *label_selector,
                               const char *field_path, ml_selector_t **out,
                               ml_field_errors_t *errs);

/** Number of requirements (0 for the empty and the nil selector). */
size_t ml_selector_count(const ml_selector_t *sel);
/**
 * Requirement `i`: its key, operator (selection spelling) and values (as
 * stored: parsed values are sorted and deduplicated).
 */
void ml_selector_requirement(const ml_selector_t *sel, size_t i,
                             const char **key, const char **op,
                             const char *const **values, size_t *nvalues);

/** Lexer tokens, in the order of apimachinery's Token constants. */
typedef enum {
  ML_SELTOK_ERROR,
  ML_SELTOK_EOS,
  ML_SELTOK_CLOSEPAR,
  ML_SELTOK_COMMA,
  ML_SELTOK_NOTEXISTS,
  ML_SELTOK_DOUBLEEQUALS,
  ML_SELTOK_EQUALS,
  ML_SELTOK_GT,
  ML_SELTOK_IDENT,
  ML_SELTOK_IN,
  ML_SELTOK_LT,
  ML_SELTOK_NOTEQUALS,
  ML_SELTOK_NOTIN,
  ML_SELTOK_OPENPAR
} ml_seltok_t;

/** @return the Go constant name of a token ("IdentifierToken"). */
const char *ml_seltok_name(ml_seltok_t tok);

/**
 * Scans one token of `text` starting at *pos and advances *pos.
 * @param lit receives the literal, malloc'd ("" at end of string).
 */
ml_seltok_t ml_selector_lex(const char *text, size_t *pos, char **lit);

/**
 * Parses the first token of `text` as a binary operator the way the
 * parser's parseOperator does.
 * @param op receives the selection spelling ("in", "=", "gt", ...).
 * @param errmsg on failure: `found '!', expected: in, notin, =, ==, !=, gt,
 *        lt`, malloc'd.
 * @return 0 or ML_EPARSE.
 */
int ml_selector_parse_operator(const char *text, const char **op,
                               char **errmsg);

/**
 * The label key / value / DNS-1123 subdomain checks as lists of messages
 * (IsQualifiedName, IsValidLabelValue, IsDNS1123Subdomain).
 * @param fn called once per message, in apimachinery's order.
 * @return the number of messages (0 = valid).
 */
typedef void (*ml_msg_fn)(void *ud, const char *msg);
int ml_label_key_errors(const char *key, ml_msg_fn fn, void *ud);
int ml_label_value_errors(const char *value, ml_msg_fn fn, void *ud);
int ml_dns1123_subdomain_errors(const char *value, ml_msg_fn fn, void *ud);

#endif
