/* Kubernetes label selectors (apimachinery pkg/labels): the lexer and the
 * recursive-descent parser of labels.Parse with its exact error texts
 * (including the 1.35 consecutive-comma rule), NewRequirement validation,
 * matching, String(), and LabelSelector objects from jansson with
 * ValidateLabelSelector's field errors. Text helpers: selector_text.c. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "selector.h"
#include "selector_util.h"

typedef enum {
  OP_IN,
  OP_NOTIN,
  OP_EQUALS,
  OP_DOUBLEEQUALS,
  OP_NOTEQUALS,
  OP_GT,
  OP_LT,
  OP_EXISTS,
  OP_DOESNOTEXIST,
  OP_COUNT
} op_t;

/* selection.Operator spellings, in validRequirementOperators order (binary
 * operators, then unary) so NotSupported lists them as Kubernetes does. */
static const char *const op_names[OP_COUNT] = {
    "in", "notin", "=", "==", "!=", "gt", "lt", "exists", "!"};

typedef struct {
  char *key;
  op_t op;
  char **values;
  size_t nvalues;
  size_t seq; /* insertion order: makes the sort by key stable */
} req_t;

struct ml_selector_s {
  int nothing; /* labels.Nothing(): matches no object */
  req_t *reqs;
  size_t n, cap;
  size_t next_seq;
};

/* {====================================================== requirements */

static void req_free(req_t *r) {
  free(r->key);
  for (size_t i = 0; i < r->nvalues; i++) free(r->values[i]);
  free(r->values);
}

static int op_from_name(const char *name) {
  for (int i = 0; i < OP_COUNT; i++)
    if (strcmp(op_names[i], name) == 0) return i;
  return -1;
}

/* strconv.ParseInt(s, 10, 64): optional sign, decimal digits, in range. */
static int parse_int64(const char *s, int64_t *out) {
  const char *p = s;
  int neg = 0;
  if (*p == '+' || *p == '-') neg = *p++ == '-';
  if (*p == '\0') return 0;
  uint64_t v = 0;
  for (; *p; p++) {
    if (*p < '0' || *p > '9') return 0;
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10) return 0;
    v = v * 10 + d;
  }
  if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX) return 0;
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 1;
}

static void add_err(ml_field_errors_t *errs, const char *type,
                    const char *field, json_t *value, const char *detail) {
  if (!errs) {
    if (value) json_decref(value);
    return;
  }
  if (errs->n == errs->cap) {
    errs->cap = errs->cap ? errs->cap * 2 : 4;
    errs->v = ml__xrealloc(errs->v, errs->cap * sizeof *errs->v);
  }
  ml_field_error_t *e = &errs->v[errs->n++];
  e->type = type;
  e->field = ml__xstrdup(field);
  e->value = value;
  e->detail = ml__xstrdup(detail ? detail : "");
}

/* field.Path helpers: child of an optional parent path. */
static char *path_child(const char *parent, const char *name) {
  ml__sb_t b = {0};
  if (parent && *parent) ml__sb_printf(&b, "%s.%s", parent, name);
  else ml__sb_puts(&b, name);
  return ml__sb_take(&b);
}

static char *path_index(const char *parent, size_t i) {
  ml__sb_t b = {0};
  ml__sb_printf(&b, "%s[%zu]", parent ? parent : "", i);
  return ml__sb_take(&b);
}

static json_t *str_array(const char *const *v, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(v[i]));
  return a;
}

static void collect_msg(void *ud, const char *msg) {
  ml__sb_t *b = ud;
  if (b->n) ml__sb_puts(b, "; ");
  ml__sb_puts(b, msg);
}

/* labels.NewRequirement's checks, in its order; `path` is the optional
 * field path the errors hang below. @return the number of errors. */
static size_t check_requirement(const char *path, const char *key, int op,
                                const char *opname, const char *const *vals,
                                size_t n, ml_field_errors_t *errs) {
  size_t count = 0;
  ml__sb_t b = {0};
  if (ml_label_key_errors(key, collect_msg, &b) > 0) {
    char *f = path_child(path, "key"), *msg = ml__sb_take(&b);
    add_err(errs, "FieldValueInvalid", f, json_string(key), msg);
    free(f), free(msg), count++;
  }
  char *vpath = path_child(path, "values");
  const char *detail = NULL;
  switch (op) {
  case OP_IN:
  case OP_NOTIN:
    if (n == 0) detail = "for 'in', 'notin' operators, values set can't be empty";
    break;
  case OP_EQUALS:
  case OP_DOUBLEEQUALS:
  case OP_NOTEQUALS:
    if (n != 1) detail = "exact-match compatibility requires one single value";
    break;
  case OP_EXISTS:
  case OP_DOESNOTEXIST:
    if (n != 0) detail = "values set must be empty for exists and does not exist";
    break;
  case OP_GT:
  case OP_LT:
    if (n != 1) detail = "for 'Gt', 'Lt' operators, exactly one value is required";
    break;
  default: {
    ml__sb_t s = {0};
    ml__sb_puts(&s, "supported values: ");
    for (int i = 0; i < OP_COUNT; i++) {
      char *q = ml_go_quote(op_names[i]);
      ml__sb_printf(&s, "%s%s", i ? ", " : "", q);
      free(q);
    }
    char *f = path_child(path, "operator"), *msg = ml__sb_take(&s);
    add_err(errs, "FieldValueNotSupported", f, json_string(opname), msg);
    free(f), free(msg), count++;
  }
  }
  if (detail) {
    add_err(errs, "FieldValueInvalid", vpath, str_array(vals, n), detail);
    count++;
  }
  if (op == OP_GT || op == OP_LT) {
    for (size_t i = 0; i < n; i++) {
      int64_t v;
      if (parse_int64(vals[i], &v)) continue;
      char *f = path_index(vpath, i);
      add_err(errs, "FieldValueInvalid", f, json_string(vals[i]),
              "for 'Gt', 'Lt' operators, the value must be an integer");
      free(f), count++;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (ml_label_value_errors(vals[i], collect_msg, &b) == 0) continue;
    /* validateLabelValue reports at values[i][key] */
    char *idx = path_index(vpath, i);
    ml__sb_t f = {0};
    ml__sb_printf(&f, "%s[%s]", idx, key);
    char *fs = ml__sb_take(&f), *msg = ml__sb_take(&b);
    add_err(errs, "FieldValueInvalid", fs, json_string(vals[i]), msg);
    free(idx), free(fs), free(msg), count++;
  }
  free(vpath);
  return count;
}

static int req_cmp(const void *a, const void *b) {
  const req_t *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  if (c) return c;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Appends without validation (the caller checked) and keeps the order by
 * key; Go's sort.Sort is not stable in general, but is for the small
 * selectors Kubernetes' tests use, and stability keeps String() a fixed
 * point of Parse. */
static void sel_append(ml_selector_t *sel, const char *key, op_t op,
                       const char *const *vals, size_t n) {
  if (sel->n == sel->cap) {
    sel->cap = sel->cap ? sel->cap * 2 : 4;
    sel->reqs = ml__xrealloc(sel->reqs, sel->cap * sizeof *sel->reqs);
  }
  req_t *r = &sel->reqs[sel->n];
  r->key = ml__xstrdup(key);
  r->op = op;
  r->nvalues = n;
  r->values = ml__xmalloc((n ? n : 1) * sizeof *r->values);
  for (size_t i = 0; i < n; i++) r->values[i] = ml__xstrdup(vals[i]);
  r->seq = sel->next_seq++;
  sel->n++;
}

static void sel_sort(ml_selector_t *sel) {
  if (sel->n > 1) qsort(sel->reqs, sel->n, sizeof *sel->reqs, req_cmp);
}

ml_selector_t *ml_selector_new(void) {
  ml_selector_t *sel = ml__xmalloc(sizeof *sel);
  memset(sel, 0, sizeof *sel);
  return sel;
}

ml_selector_t *ml_selector_nothing(void) {
  ml_selector_t *sel = ml_selector_new();
  sel->nothing = 1;
  return sel;
}

void ml_selector_free(ml_selector_t *sel) {
  if (!sel) return;
  for (size_t i = 0; i < sel->n; i++) req_free(&sel->reqs[i]);
  free(sel->reqs);
  free(sel);
}

int ml_selector_add(ml_selector_t *sel, const char *key, const char *op,
                    const char *const *values, size_t nvalues,
                    ml_field_errors_t *errs) {
  int o = op_from_name(op);
  if (check_requirement(NULL, key, o, op, values, nvalues, errs) > 0)
    return ML_EINVALID;
  if (sel->nothing) return 0; /* Nothing().Add(...) stays Nothing */
  sel_append(sel, key, (op_t)o, values, nvalues);
  sel_sort(sel);
  return 0;
}

int ml_selector_add_trusted(ml_selector_t *sel, const char *key,
                            const char *op, const char *const *values,
                            size_t nvalues) {
  int o = op_from_name(op);
  if (o < 0) return ML_EINVALID;
  if (sel->nothing) return 0;
  sel_append(sel, key, (op_t)o, values, nvalues);
  sel_sort(sel);
  return 0;
}

size_t ml_selector_count(const ml_selector_t *sel) { return sel->n; }

void ml_selector_requirement(const ml_selector_t *sel, size_t i,
                             const char **key, const char **op,
                             const char *const **values, size_t *nvalues) {
  const req_t *r = &sel->reqs[i];
  *key = r->key;
  *op = op_names[r->op];
  *values = (const char *const *)r->values;
  *nvalues = r->nvalues;
}

bool ml_selector_is_empty(const ml_selector_t *sel) {
  return !sel->nothing && sel->n == 0;
}

bool ml_selector_is_nothing(const ml_selector_t *sel) {
  return sel->nothing != 0;
}

/* }====================================================== */

/* {====================================================== matching, String */

static int has_value(const req_t *r, const char *v) {
  for (size_t i = 0; i < r->nvalues; i++)
    if (strcmp(r->values[i], v) == 0) return 1;
  return 0;
}

static int req_matches(const req_t *r, ml_label_get_fn get, void *ud) {
  const char *v = get(ud, r->key);
  switch (r->op) {
  case OP_IN:
  case OP_EQUALS:
  case OP_DOUBLEEQUALS: return v != NULL && has_value(r, v);
  case OP_NOTIN:
  case OP_NOTEQUALS: return v == NULL || !has_value(r, v);
  case OP_EXISTS: return v != NULL;
  case OP_DOESNOTEXIST: return v == NULL;
  case OP_GT:
  case OP_LT: {
    int64_t have, want;
    if (v == NULL || r->nvalues != 1 || !parse_int64(v, &have) ||
        !parse_int64(r->values[0], &want))
      return 0;
    return r->op == OP_GT ? have > want : have < want;
  }
  default: return 0;
  }
}

bool ml_selector_matches(const ml_selector_t *sel, ml_label_get_fn get,
                         void *ud) {
  if (sel->nothing) return false;
  for (size_t i = 0; i < sel->n; i++)
    if (!req_matches(&sel->reqs[i], get, ud)) return false;
  return true;
}

static const char *json_label_get(void *ud, const char *key) {
  const json_t *labels = ud;
  if (!json_is_object(labels)) return NULL;
  return json_string_value(json_object_get(labels, key));
}

bool ml_selector_matches_json(const ml_selector_t *sel, const json_t *labels) {
  return ml_selector_matches(sel, json_label_get, (void *)labels);
}

static int str_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void req_string(ml__sb_t *b, const req_t *r) {
  static const char *const sep[OP_COUNT] = {" in ", " notin ", "=", "==",
                                            "!=",   ">",       "<", "",  ""};
  if (r->op == OP_DOESNOTEXIST) ml__sb_putc(b, '!');
  ml__sb_puts(b, r->key);
  if (r->op == OP_EXISTS || r->op == OP_DOESNOTEXIST) return;
  ml__sb_puts(b, sep[r->op]);
  int paren = r->op == OP_IN || r->op == OP_NOTIN;
  if (paren) ml__sb_putc(b, '(');
  /* values print sorted without reordering the stored requirement */
  const char **v = ml__xmalloc((r->nvalues ? r->nvalues : 1) * sizeof *v);
  for (size_t i = 0; i < r->nvalues; i++) v[i] = r->values[i];
  if (r->nvalues > 1) qsort(v, r->nvalues, sizeof *v, str_cmp);
  for (size_t i = 0; i < r->nvalues; i++) {
    if (i) ml__sb_putc(b, ',');
    ml__sb_puts(b, v[i]);
  }
  free(v);
  if (paren) ml__sb_putc(b, ')');
}

char *ml_selector_string(const ml_selector_t *sel) {
  ml__sb_t b = {0};
  for (size_t i = 0; i < sel->n; i++) {
    if (i) ml__sb_putc(&b, ',');
    req_string(&b, &sel->reqs[i]);
  }
  return ml__sb_take(&b);
}

/* }====================================================== */

/* {====================================================== lexer */

static const char *const tok_names[] = {
    "ErrorToken",       "EndOfStringToken",  "ClosedParToken",
    "CommaToken",       "DoesNotExistToken", "DoubleEqualsToken",
    "EqualsToken",      "GreaterThanToken",  "IdentifierToken",
    "InToken",          "LessThanToken",     "NotEqualsToken",
    "NotInToken",       "OpenParToken"};

const char *ml_seltok_name(ml_seltok_t tok) {
  if ((unsigned)tok >= sizeof tok_names / sizeof tok_names[0]) return "?";
  return tok_names[tok];
}

static int is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_special(char c) {
  return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' ||
         c == '>' || c == '<';
}

ml_seltok_t ml_selector_lex(const char *text, size_t *pos, char **lit) {
  const char *s = text + *pos;
  while (is_ws(*s)) s++;
  if (*s == '\0') {
    *pos = (size_t)(s - text);
    *lit = ml__xstrdup("");
    return ML_SELTOK_EOS;
  }
  ml_seltok_t tok;
  size_t len = 1;
  if (is_special(*s)) {
    /* Longest match: the only two-character operators are "==" and "!=". */
    if ((s[0] == '=' || s[0] == '!') && s[1] == '=') {
      tok = s[0] == '=' ? ML_SELTOK_DOUBLEEQUALS : ML_SELTOK_NOTEQUALS;
      len = 2;
    } else {
      switch (*s) {
      case '=': tok = ML_SELTOK_EQUALS; break;
      case '!': tok = ML_SELTOK_NOTEXISTS; break;
      case '(': tok = ML_SELTOK_OPENPAR; break;
      case ')': tok = ML_SELTOK_CLOSEPAR; break;
      case ',': tok = ML_SELTOK_COMMA; break;
      case '>': tok = ML_SELTOK_GT; break;
      default: tok = ML_SELTOK_LT; break;
      }
    }
  } else {
    while (s[len] && !is_special(s[len]) && !is_ws(s[len])) len++;
    tok = ML_SELTOK_IDENT;
    if (len == 2 && memcmp(s, "in", 2) == 0) tok = ML_SELTOK_IN;
    if (len == 5 && memcmp(s, "notin", 5) == 0) tok = ML_SELTOK_NOTIN;
  }
  *lit = ml__xstrndup(s, len);
  *pos = (size_t)(s - text) + len;
  return tok;
}

/* }====================================================== */

/* {====================================================== parser */

typedef struct {
  ml_seltok_t tok;
  char *lit;
} item_t;

typedef struct {
  item_t *items;
  size_t n, pos;
  char *err; /* first error, malloc'd */
} parser_t;

enum { CTX_KEY_AND_OPERATOR, CTX_VALUES };

/* In the values context the keywords in / notin are plain identifiers. */
static ml_seltok_t ctx_tok(ml_seltok_t t, int ctx) {
  if (ctx == CTX_VALUES && (t == ML_SELTOK_IN || t == ML_SELTOK_NOTIN))
    return ML_SELTOK_IDENT;
  return t;
}

static ml_seltok_t lookahead(parser_t *p, int ctx, const char **lit) {
  item_t *it = &p->items[p->pos];
  if (lit) *lit = it->lit;
  return ctx_tok(it->tok, ctx);
}

static ml_seltok_t consume(parser_t *p, int ctx, const char **lit) {
  item_t *it = &p->items[p->pos];
  /* The last item is always EOS; never step past it. */
  if (p->pos + 1 < p->n) p->pos++;
  if (lit) *lit = it->lit;
  return ctx_tok(it->tok, ctx);
}

static int fail(parser_t *p, const char *fmt, const char *lit) {
  ml__sb_t b = {0};
  ml__sb_printf(&b, fmt, lit);
  p->err = ml__sb_take(&b);
  return -1;
}

static void scan(parser_t *p, const char *text) {
  size_t pos = 0, cap = 0;
  for (;;) {
    if (p->n == cap) {
      cap = cap ? cap * 2 : 16;
      p->items = ml__xrealloc(p->items, cap * sizeof *p->items);
    }
    item_t *it = &p->items[p->n++];
    it->tok = ml_selector_lex(text, &pos, &it->lit);
    if (it->tok == ML_SELTOK_EOS) break;
  }
}

/* A small sorted set of strings (sets.String with List()). */
static void set_insert(ml__strv_t *set, const char *v) {
  size_t lo = 0, hi = set->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(set->v[mid], v);
    if (c == 0) return;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  ml__strv_push(set, NULL);
  memmove(&set->v[lo + 1], &set->v[lo], (set->n - 1 - lo) * sizeof *set->v);
  set->v[lo] = ml__xstrdup(v);
}

static int parse_identifiers_list(parser_t *p, ml__strv_t *set) {
  for (;;) {
    const char *lit, *lit2;
    ml_seltok_t t = consume(p, CTX_VALUES, &lit), t2;
    switch (t) {
    case ML_SELTOK_IDENT:
      set_insert(set, lit);
      t2 = lookahead(p, CTX_VALUES, &lit2);
      if (t2 == ML_SELTOK_COMMA) continue;
      if (t2 == ML_SELTOK_CLOSEPAR) return 0;
      return fail(p, "found '%s', expected: ',' or ')'", lit2);
    case ML_SELTOK_COMMA:
      if (set->n == 0) set_insert(set, ""); /* "(," */
      t2 = lookahead(p, CTX_VALUES, NULL);
      if (t2 == ML_SELTOK_CLOSEPAR) {
        set_insert(set, ""); /* ",)" */
        return 0;
      }
      /* ",,": an empty value; the second comma is left for the next turn
       * so that ",,)" ends the list (the 1.35 fix; older parsers consumed
       * it here and then rejected the ')'). */
      if (t2 == ML_SELTOK_COMMA) set_insert(set, "");
      continue;
    default:
      return fail(p, "found '%s', expected: ',', or identifier", lit);
    }
  }
}

static int parse_values(parser_t *p, ml__strv_t *set) {
  const char *lit;
  if (consume(p, CTX_VALUES, &lit) != ML_SELTOK_OPENPAR)
    return fail(p, "found '%s' expected: '('", lit);
  ml_seltok_t t = lookahead(p, CTX_VALUES, &lit);
  switch (t) {
  case ML_SELTOK_IDENT:
  case ML_SELTOK_COMMA:
    if (parse_identifiers_list(p, set) < 0) return -1;
    if (consume(p, CTX_VALUES, NULL) != ML_SELTOK_CLOSEPAR)
      return fail(p, "found '%s', expected: ')'", lit);
    return 0;
  case ML_SELTOK_CLOSEPAR: /* "()" */
    consume(p, CTX_VALUES, NULL);
    set_insert(set, "");
    return 0;
  default:
    return fail(p, "found '%s', expected: ',', ')' or identifier", lit);
  }
}

static int parse_exact_value(parser_t *p, ml__strv_t *set) {
  const char *lit;
  ml_seltok_t t = lookahead(p, CTX_VALUES, NULL);
  if (t == ML_SELTOK_EOS || t == ML_SELTOK_COMMA) {
    set_insert(set, "");
    return 0;
  }
  if (consume(p, CTX_VALUES, &lit) == ML_SELTOK_IDENT) {
    set_insert(set, lit);
    return 0;
  }
  return fail(p, "found '%s', expected: identifier", lit);
}

static int operator_from_token(ml_seltok_t t) {
  switch (t) {
  case ML_SELTOK_IN: return OP_IN;
  case ML_SELTOK_EQUALS: return OP_EQUALS;
  case ML_SELTOK_DOUBLEEQUALS: return OP_DOUBLEEQUALS;
  case ML_SELTOK_GT: return OP_GT;
  case ML_SELTOK_LT: return OP_LT;
  case ML_SELTOK_NOTIN: return OP_NOTIN;
  case ML_SELTOK_NOTEQUALS: return OP_NOTEQUALS;
  default: return -1;
  }
}

#define BINARY_OPS "in, notin, =, ==, !=, gt, lt"

/* The error text of a NewRequirement failure: the aggregate of its field
 * errors ("[a, b]" when there are several distinct ones). */
static char *aggregate(const ml_field_errors_t *errs) {
  ml__strv_t seen = {0};
  for (size_t i = 0; i < errs->n; i++) {
    char *s = ml_field_error_string(&errs->v[i]);
    int dup = 0;
    for (size_t j = 0; j < seen.n && !dup; j++) dup = !strcmp(seen.v[j], s);
    if (dup) free(s);
    else ml__strv_push(&seen, s);
  }
  ml__sb_t b = {0};
  if (seen.n > 1) ml__sb_putc(&b, '[');
  for (size_t i = 0; i < seen.n; i++) {
    if (i) ml__sb_puts(&b, ", ");
    ml__sb_puts(&b, seen.v[i]);
  }
  if (seen.n > 1) ml__sb_putc(&b, ']');
  ml__strv_free(&seen);
  return ml__sb_take(&b);
}

static int parse_requirement(parser_t *p, ml_selector_t *sel) {
  const char *lit;
  int op = -1;
  ml_seltok_t t = consume(p, CTX_VALUES, &lit);
  if (t == ML_SELTOK_NOTEXISTS) {
    op = OP_DOESNOTEXIST;
    t = consume(p, CTX_VALUES, &lit);
  }
  if (t != ML_SELTOK_IDENT) return fail(p, "found '%s', expected: identifier", lit);
  const char *key = lit;
  ml__sb_t kb = {0};
  if (ml_label_key_errors(key, collect_msg, &kb) > 0) {
    /* Parse has no field path, and a nil *field.Path prints "<nil>". */
    ml_field_error_t e = {"FieldValueInvalid", NULL, json_string(key),
                          ml__sb_take(&kb)};
    p->err = ml_field_error_string(&e);
    json_decref(e.value);
    free(e.detail);
    return -1;
  }
  t = lookahead(p, CTX_VALUES, NULL);
  if (t == ML_SELTOK_EOS || t == ML_SELTOK_COMMA) {
    if (op != OP_DOESNOTEXIST) op = OP_EXISTS;
  }
  ml__strv_t set = {0};
  if (op != OP_EXISTS && op != OP_DOESNOTEXIST) {
    const char *oplit;
    t = consume(p, CTX_KEY_AND_OPERATOR, &oplit);
    op = operator_from_token(t);
    if (op < 0) return fail(p, "found '%s', expected: " BINARY_OPS, oplit);
    int rc = (op == OP_IN || op == OP_NOTIN) ? parse_values(p, &set)
                                             : parse_exact_value(p, &set);
    if (rc < 0) {
      ml__strv_free(&set);
      return -1;
    }
  }
  ml_field_errors_t errs = {0};
  if (check_requirement(NULL, key, op, op_names[op],
                        (const char *const *)set.v, set.n, &errs) > 0) {
    p->err = aggregate(&errs);
    ml_field_errors_free(&errs);
    ml__strv_free(&set);
    return -1;
  }
  sel_append(sel, key, (op_t)op, (const char *const *)set.v, set.n);
  ml__strv_free(&set);
  return 0;
}

static int parse_all(parser_t *p, ml_selector_t *sel) {
  for (;;) {
    const char *lit;
    ml_seltok_t t = lookahead(p, CTX_VALUES, &lit);
    if (t == ML_SELTOK_EOS) return 0;
    if (t != ML_SELTOK_IDENT && t != ML_SELTOK_NOTEXISTS)
      return fail(p, "found '%s', expected: !, identifier, or 'end of string'",
                  lit);
    if (parse_requirement(p, sel) < 0) {
      char *inner = p->err;
      p->err = NULL;
      fail(p, "unable to parse requirement: %s", inner);
      free(inner);
      return -1;
    }
    t = consume(p, CTX_VALUES, &lit);
    if (t == ML_SELTOK_EOS) return 0;
    if (t != ML_SELTOK_COMMA)
      return fail(p, "found '%s', expected: ',' or 'end of string'", lit);
    t = lookahead(p, CTX_VALUES, &lit);
    if (t != ML_SELTOK_IDENT && t != ML_SELTOK_NOTEXISTS)
      return fail(p, "found '%s', expected: identifier after ','", lit);
  }
}

int ml_selector_parse(const char *text, ml_selector_t **out, char **errmsg) {
  parser_t p = {0};
  ml_selector_t *sel = ml_selector_new();
  scan(&p, text);
  int rc = parse_all(&p, sel);
  for (size_t i = 0; i < p.n; i++) free(p.items[i].lit);
  free(p.items);
  if (rc < 0) {
    ml_selector_free(sel);
    *out = NULL;
    if (errmsg) *errmsg = p.err;
    else free(p.err);
    return ML_EPARSE;
  }
  sel_sort(sel);
  *out = sel;
  if (errmsg) *errmsg = NULL;
  return 0;
}

int ml_selector_parse_operator(const char *text, const char **op,
                               char **errmsg) {
  size_t pos = 0;
  char *lit;
  int o = operator_from_token(ml_selector_lex(text, &pos, &lit));
  if (o < 0) {
    ml__sb_t b = {0};
    ml__sb_printf(&b, "found '%s', expected: " BINARY_OPS, lit);
    free(lit);
    if (errmsg) *errmsg = ml__sb_take(&b);
    else free(ml__sb_take(&b));
    return ML_EPARSE;
  }
  free(lit);
  *op = op_names[o];
  if (errmsg) *errmsg = NULL;
  return 0;
}

/* }====================================================== */

/* {====================================================== LabelSelector */

typedef struct {
  ml_field_errors_t *errs;
  const char *field;
  const char *value;
} msg_ctx_t;

/* One Invalid error per message, as ValidateLabelName / ValidateLabels do. */
static void invalid_each(void *ud, const char *msg) {
  msg_ctx_t *c = ud;
  add_err(c->errs, "FieldValueInvalid", c->field, json_string(c->value), msg);
}

static int key_strcmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Object keys sorted, so errors and requirements come out deterministic
 * (Go iterates the map in random order). */
static const char **sorted_keys(const json_t *obj, size_t *n) {
  *n = json_object_size(obj);
  const char **keys = ml__xmalloc((*n ? *n : 1) * sizeof *keys);
  size_t i = 0;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)obj, k, v) keys[i++] = k;
  qsort(keys, *n, sizeof *keys, key_strcmp);
  return keys;
}

/* An empty Lua table arrives as {}; an absent or empty list is no list. */
static int list_like(const json_t *v) {
  return v == NULL || json_is_null(v) || json_is_array(v) ||
         (json_is_object(v) && json_object_size(v) == 0);
}

static size_t list_size(const json_t *v) {
  return json_is_array(v) ? json_array_size(v) : 0;
}

static const char *const api_ops[] = {"In", "NotIn", "Exists", "DoesNotExist"};
static const op_t api_op_map[] = {OP_IN, OP_NOTIN, OP_EXISTS, OP_DOESNOTEXIST};

static void validate_expr(const json_t *expr, const char *epath,
                          ml_field_errors_t *errs) {
  if (!json_is_object(expr)) {
    add_err(errs, "FieldValueTypeInvalid", epath, NULL, "must be an object");
    return;
  }
  const json_t *jkey = json_object_get(expr, "key");
  const json_t *jop = json_object_get(expr, "operator");
  const json_t *jvals = json_object_get(expr, "values");
  char *kpath = path_child(epath, "key"), *opath = path_child(epath, "operator");
  char *vpath = path_child(epath, "values");
  if (jkey && !json_is_string(jkey) && !json_is_null(jkey))
    add_err(errs, "FieldValueTypeInvalid", kpath, NULL, "must be a string");
  if (jop && !json_is_string(jop) && !json_is_null(jop))
    add_err(errs, "FieldValueTypeInvalid", opath, NULL, "must be a string");
  if (!list_like(jvals))
    add_err(errs, "FieldValueTypeInvalid", vpath, NULL, "must be a list");
  const char *key = json_is_string(jkey) ? json_string_value(jkey) : "";
  const char *op = json_is_string(jop) ? json_string_value(jop) : "";
  size_t nv = list_size(jvals);
  if (!strcmp(op, "In") || !strcmp(op, "NotIn")) {
    if (nv == 0)
      add_err(errs, "FieldValueRequired", vpath, NULL,
              "must be specified when `operator` is 'In' or 'NotIn'");
  } else if (!strcmp(op, "Exists") || !strcmp(op, "DoesNotExist")) {
    if (nv > 0)
      add_err(errs, "FieldValueForbidden", vpath, NULL,
              "may not be specified when `operator` is 'Exists' or "
              "'DoesNotExist'");
  } else {
    add_err(errs, "FieldValueInvalid", opath, json_string(op),
            "not a valid selector operator");
  }
  msg_ctx_t c = {errs, kpath, key};
  ml_label_key_errors(key, invalid_each, &c);
  for (size_t j = 0; j < nv; j++) {
    const json_t *v = json_array_get(jvals, j);
    char *ip = path_index(vpath, j);
    if (!json_is_string(v)) {
      add_err(errs, "FieldValueTypeInvalid", ip, NULL, "must be a string");
    } else {
      msg_ctx_t vc = {errs, ip, json_string_value(v)};
      ml_label_value_errors(vc.value, invalid_each, &vc);
    }
    free(ip);
  }
  free(kpath), free(opath), free(vpath);
}

int ml_selector_from_json_errs(const json_t *ls, const char *field_path,
                               ml_selector_t **out, ml_field_errors_t *errs) {
  *out = NULL;
  if (ls == NULL || json_is_null(ls)) {
    *out = ml_selector_nothing();
    return 0;
  }
  ml_field_errors_t local = {0};
  ml_field_errors_t *e = errs ? errs : &local;
  ml_selector_t *sel = NULL;
  size_t before = e->n;
  if (!json_is_object(ls)) {
    add_err(e, "FieldValueTypeInvalid", field_path ? field_path : "", NULL,
            "must be an object");
    ml_field_errors_free(&local);
    return ML_EINVALID;
  }
  const json_t *ml = json_object_get(ls, "matchLabels");
  const json_t *me = json_object_get(ls, "matchExpressions");
  char *mlpath = path_child(field_path, "matchLabels");
  char *mepath = path_child(field_path, "matchExpressions");
  size_t nlabels = 0, nexprs = list_size(me);
  const char **keys = NULL;
  if (ml && !json_is_null(ml) && !json_is_object(ml)) {
    add_err(e, "FieldValueTypeInvalid", mlpath, NULL, "must be an object");
  } else if (json_is_object(ml)) {
    keys = sorted_keys(ml, &nlabels);
    for (size_t i = 0; i < nlabels; i++) {
      const json_t *v = json_object_get(ml, keys[i]);
      msg_ctx_t c = {e, mlpath, keys[i]};
      ml_label_key_errors(keys[i], invalid_each, &c);
      if (!json_is_string(v)) {
        add_err(e, "FieldValueTypeInvalid", mlpath, NULL, "must be a string");
        continue;
      }
      c.value = json_string_value(v);
      ml_label_value_errors(c.value, invalid_each, &c);
    }
  }
  if (!list_like(me))
    add_err(e, "FieldValueTypeInvalid", mepath, NULL, "must be a list");
  for (size_t i = 0; i < nexprs; i++) {
    char *ep = path_index(mepath, i);
    validate_expr(json_array_get(me, i), ep, e);
    free(ep);
  }
  int rc = 0;
  if (e->n > before) {
    rc = ML_EINVALID;
    goto done;
  }
  /* LabelSelectorAsSelector: no requirement at all means Everything(). */
  sel = ml_selector_new();
  for (size_t i = 0; i < nlabels; i++) {
    const char *v = json_string_value(json_object_get(ml, keys[i]));
    sel_append(sel, keys[i], OP_EQUALS, &v, 1);
  }
  for (size_t i = 0; i < nexprs; i++) {
    const json_t *x = json_array_get(me, i);
    const char *op = json_string_value(json_object_get(x, "operator"));
    const json_t *jv = json_object_get(x, "values");
    size_t nv = list_size(jv);
    const char **vals = ml__xmalloc((nv ? nv : 1) * sizeof *vals);
    for (size_t j = 0; j < nv; j++)
      vals[j] = json_string_value(json_array_get(jv, j));
    op_t o = OP_IN;
    for (size_t k = 0; k < 4; k++)
      if (!strcmp(op, api_ops[k])) o = api_op_map[k];
    sel_append(sel, json_string_value(json_object_get(x, "key")), o, vals, nv);
    free(vals);
  }
  sel_sort(sel);
  *out = sel;
done:
  free(keys);
  free(mlpath);
  free(mepath);
  ml_field_errors_free(&local);
  return rc;
}

int ml_selector_from_json(const json_t *label_selector, const char *field_path,
                          ml_selector_t **out, char **errmsg) {
  ml_field_errors_t errs = {0};
  int rc = ml_selector_from_json_errs(label_selector, field_path, out, &errs);
  if (errmsg) {
    *errmsg = NULL;
    if (rc < 0) {
      ml__sb_t b = {0};
      for (size_t i = 0; i < errs.n; i++) {
        char *s = ml_field_error_string(&errs.v[i]);
        if (i) ml__sb_putc(&b, '\n');
        ml__sb_puts(&b, s);
        free(s);
      }
      *errmsg = ml__sb_take(&b);
    }
  }
  ml_field_errors_free(&errs);
  return rc;
}

/* }====================================================== */
