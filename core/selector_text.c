/* Text helpers behind the selector units: apimachinery field errors and how
 * Go prints them (strconv.Quote, encoding/json), and the label key / value /
 * DNS-1123 subdomain checks with their exact messages. Also the private
 * string builder declared in selector_util.h. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selector.h"
#include "selector_util.h"

/* {====================================================== allocation/strings */

void *ml__xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fputs("moonlet: out of memory\n", stderr);
    abort();
  }
  return p;
}

void *ml__xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) {
    fputs("moonlet: out of memory\n", stderr);
    abort();
  }
  return p;
}

char *ml__xstrndup(const char *s, size_t n) {
  char *d = ml__xmalloc(n + 1);
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *ml__xstrdup(const char *s) { return ml__xstrndup(s, strlen(s)); }

static void sb_reserve(ml__sb_t *b, size_t extra) {
  if (b->n + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap * 2 : 64;
  while (cap < b->n + extra + 1) cap *= 2;
  b->p = ml__xrealloc(b->p, cap);
  b->cap = cap;
}

void ml__sb_putn(ml__sb_t *b, const char *s, size_t n) {
  sb_reserve(b, n);
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

void ml__sb_puts(ml__sb_t *b, const char *s) { ml__sb_putn(b, s, strlen(s)); }

void ml__sb_putc(ml__sb_t *b, char c) { ml__sb_putn(b, &c, 1); }

void ml__sb_printf(ml__sb_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n <= 0) return;
  sb_reserve(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)n;
}

char *ml__sb_take(ml__sb_t *b) {
  char *p = b->p ? b->p : ml__xstrdup("");
  b->p = NULL;
  b->n = b->cap = 0;
  return p;
}

void ml__strv_push(ml__strv_t *v, char *owned) {
  if (v->n == v->cap) {
    v->cap = v->cap ? v->cap * 2 : 8;
    v->v = ml__xrealloc(v->v, v->cap * sizeof *v->v);
  }
  v->v[v->n++] = owned;
}

void ml__strv_free(ml__strv_t *v) {
  for (size_t i = 0; i < v->n; i++) free(v->v[i]);
  free(v->v);
  v->v = NULL;
  v->n = v->cap = 0;
}

/* }====================================================== */

/* {====================================================== Go printing */

/* Decodes one UTF-8 sequence the way Go's utf8.DecodeRuneInString does:
 * overlong forms, surrogates and values past U+10FFFF are errors.
 * @return the rune, or -1 (width 1) for an invalid byte. */
static int32_t utf8_decode(const unsigned char *s, size_t *width) {
  unsigned c = s[0];
  *width = 1;
  if (c < 0x80) return (int32_t)c;
  int need;
  int32_t r, min;
  if ((c & 0xE0) == 0xC0) {
    need = 1, r = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    need = 2, r = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    need = 3, r = c & 0x07, min = 0x10000;
  } else {
    return -1;
  }
  for (int i = 1; i <= need; i++) {
    if ((s[i] & 0xC0) != 0x80) return -1;
    r = (r << 6) | (s[i] & 0x3F);
  }
  if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) return -1;
  *width = (size_t)need + 1;
  return r;
}

/* strconv.IsPrint for non-ASCII runes. Go consults the full Unicode tables;
 * this keeps the classes a label, name or message can realistically hold:
 * C1 controls, non-ASCII spaces, format characters, private use and
 * noncharacters are escaped, everything else prints as itself. */
static int rune_is_print(int32_t r) {
  if (r < 0x80) return r >= 0x20 && r < 0x7F;
  if (r < 0xA0 || r == 0xA0 || r == 0xAD) return 0;
  if (r == 0x061C || r == 0x1680 || r == 0x180E) return 0;
  if (r >= 0x2000 && r <= 0x200F) return 0;
  if (r >= 0x2028 && r <= 0x202F) return 0;
  if (r >= 0x205F && r <= 0x206F) return 0;
  if (r == 0x3000 || r == 0xFEFF) return 0;
  if (r >= 0xE000 && r <= 0xF8FF) return 0;
  if (r >= 0xFFF0 && r <= 0xFFFB) return 0;
  if ((r & 0xFFFE) == 0xFFFE) return 0;
  if (r >= 0xF0000) return 0;
  return 1;
}

char *ml_go_quote(const char *s) {
  ml__sb_t b = {0};
  const unsigned char *p = (const unsigned char *)s;
  ml__sb_putc(&b, '"');
  while (*p) {
    size_t w;
    int32_t r = utf8_decode(p, &w);
    if (r < 0) {
      ml__sb_printf(&b, "\\x%02x", *p);
    } else if (r == '"' || r == '\\') {
      ml__sb_putc(&b, '\\');
      ml__sb_putc(&b, (char)r);
    } else if (rune_is_print(r)) {
      ml__sb_putn(&b, (const char *)p, w);
    } else {
      switch (r) {
      case '\a': ml__sb_puts(&b, "\\a"); break;
      case '\b': ml__sb_puts(&b, "\\b"); break;
      case '\f': ml__sb_puts(&b, "\\f"); break;
      case '\n': ml__sb_puts(&b, "\\n"); break;
      case '\r': ml__sb_puts(&b, "\\r"); break;
      case '\t': ml__sb_puts(&b, "\\t"); break;
      case '\v': ml__sb_puts(&b, "\\v"); break;
      default:
        if (r < 0x20 || r == 0x7F) ml__sb_printf(&b, "\\x%02x", (unsigned)r);
        else if (r < 0x10000) ml__sb_printf(&b, "\\u%04x", (unsigned)r);
        else ml__sb_printf(&b, "\\U%08x", (unsigned)r);
      }
    }
    p += w;
  }
  ml__sb_putc(&b, '"');
  return ml__sb_take(&b);
}

static void go_json_string(ml__sb_t *b, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  ml__sb_putc(b, '"');
  while (*p) {
    size_t w;
    int32_t r = utf8_decode(p, &w);
    if (r < 0) {
      ml__sb_puts(b, "\\ufffd"); /* encoding/json replaces invalid bytes */
    } else if (r == '"' || r == '\\') {
      ml__sb_putc(b, '\\');
      ml__sb_putc(b, (char)r);
    } else if (r == '\n') {
      ml__sb_puts(b, "\\n");
    } else if (r == '\r') {
      ml__sb_puts(b, "\\r");
    } else if (r == '\t') {
      ml__sb_puts(b, "\\t");
    } else if (r == '\b') {
      ml__sb_puts(b, "\\b");
    } else if (r == '\f') {
      ml__sb_puts(b, "\\f");
    } else if (r < 0x20 || r == '<' || r == '>' || r == '&' || r == 0x2028 ||
               r == 0x2029) {
      /* json.Marshal escapes HTML-significant runes and JS line breaks. */
      ml__sb_printf(b, "\\u%04x", (unsigned)r);
    } else {
      ml__sb_putn(b, (const char *)p, w);
    }
    p += w;
  }
  ml__sb_putc(b, '"');
}

char *ml_go_json_string(const char *s) {
  ml__sb_t b = {0};
  go_json_string(&b, s);
  return ml__sb_take(&b);
}

/* A float64 the way Go prints it: fmt's %v (%g, shortest digits, exponent
 * below 1e-4 and from 1e6 up: 1e+06) or encoding/json (plain decimal
 * below 1e21, exponent only outside [1e-6, 1e21)). */
static void go_float(ml__sb_t *b, double d, int json) {
  if (isnan(d) || isinf(d)) {
    ml__sb_puts(b, isnan(d) ? "NaN" : d > 0 ? "+Inf" : "-Inf");
    return;
  }
  char buf[64];
  int prec;
  for (prec = 1; prec < 17; prec++) {
    snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
    if (strtod(buf, NULL) == d) break;
  }
  /* buf is d.ddde±XX with the shortest exact mantissa */
  char *e = strchr(buf, 'e');
  int exp = atoi(e + 1);
  double a = fabs(d);
  int use_exp = json ? (a != 0 && (a < 1e-6 || a >= 1e21))
                     : (exp < -4 || exp >= 6);
  if (use_exp) {
    /* mantissa without trailing zeros, exponent with at least 2 digits */
    *e = '\0';
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '0') buf[--len] = '\0';
    if (len > 0 && buf[len - 1] == '.') buf[--len] = '\0';
    /* fmt pads the exponent to two digits; encoding/json does not. */
    ml__sb_printf(b, json ? "%se%c%d" : "%se%c%02d", buf, exp < 0 ? '-' : '+',
                  exp < 0 ? -exp : exp);
    return;
  }
  int decimals = prec - 1 - exp;
  snprintf(buf, sizeof buf, "%.*f", decimals > 0 ? decimals : 0, d);
  ml__sb_puts(b, buf);
}

static void go_json(ml__sb_t *b, const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_STRING: go_json_string(b, json_string_value(v)); break;
  case JSON_INTEGER:
    ml__sb_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    break;
  case JSON_REAL: go_float(b, json_real_value(v), 1); break;
  case JSON_TRUE: ml__sb_puts(b, "true"); break;
  case JSON_FALSE: ml__sb_puts(b, "false"); break;
  case JSON_NULL: ml__sb_puts(b, "null"); break;
  case JSON_ARRAY: {
    ml__sb_putc(b, '[');
    for (size_t i = 0; i < json_array_size(v); i++) {
      if (i) ml__sb_putc(b, ',');
      go_json(b, json_array_get(v, i));
    }
    ml__sb_putc(b, ']');
    break;
  }
  case JSON_OBJECT: {
    /* encoding/json writes map keys sorted. */
    size_t n = json_object_size(v), i = 0;
    const char **keys = ml__xmalloc(n * sizeof *keys);
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)v, k, e) keys[i++] = k;
    for (size_t x = 1; x < n; x++)
      for (size_t y = x; y > 0 && strcmp(keys[y - 1], keys[y]) > 0; y--) {
        const char *t = keys[y];
        keys[y] = keys[y - 1];
        keys[y - 1] = t;
      }
    ml__sb_putc(b, '{');
    for (i = 0; i < n; i++) {
      if (i) ml__sb_putc(b, ',');
      go_json_string(b, keys[i]);
      ml__sb_putc(b, ':');
      go_json(b, json_object_get(v, keys[i]));
    }
    ml__sb_putc(b, '}');
    free(keys);
    break;
  }
  }
}

/* }====================================================== */

/* {====================================================== field errors */

static const char *type_text(const char *type) {
  static const char *const map[][2] = {
      {"FieldValueNotFound", "Not found"},
      {"FieldValueRequired", "Required value"},
      {"FieldValueDuplicate", "Duplicate value"},
      {"FieldValueInvalid", "Invalid value"},
      {"FieldValueNotSupported", "Unsupported value"},
      {"FieldValueForbidden", "Forbidden"},
      {"FieldValueTooLong", "Too long"},
      {"FieldValueTooMany", "Too many"},
      {"InternalError", "Internal error"},
      {"FieldValueTypeInvalid", "Invalid value"},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(map[i][0], type) == 0) return map[i][1];
  return type;
}

char *ml_field_error_body(const ml_field_error_t *e) {
  ml__sb_t b = {0};
  const char *t = e->type;
  ml__sb_puts(&b, type_text(t));
  /* Required, Forbidden, TooLong and Internal never print the value. */
  int omit = strcmp(t, "FieldValueRequired") == 0 ||
             strcmp(t, "FieldValueForbidden") == 0 ||
             strcmp(t, "FieldValueTooLong") == 0 ||
             strcmp(t, "InternalError") == 0 || e->value == NULL;
  if (!omit) {
    ml__sb_puts(&b, ": ");
    if (json_is_string(e->value)) {
      char *q = ml_go_quote(json_string_value(e->value));
      ml__sb_puts(&b, q);
      free(q);
    } else if (json_is_real(e->value)) {
      go_float(&b, json_real_value(e->value), 0);
    } else {
      go_json(&b, e->value);
    }
  }
  if (e->detail && *e->detail) {
    ml__sb_puts(&b, ": ");
    ml__sb_puts(&b, e->detail);
  }
  return ml__sb_take(&b);
}

char *ml_field_error_string(const ml_field_error_t *e) {
  ml__sb_t b = {0};
  char *body = ml_field_error_body(e);
  ml__sb_printf(&b, "%s: %s", e->field ? e->field : "<nil>", body);
  free(body);
  return ml__sb_take(&b);
}

void ml_field_errors_free(ml_field_errors_t *errs) {
  if (!errs) return;
  for (size_t i = 0; i < errs->n; i++) {
    free(errs->v[i].field);
    free(errs->v[i].detail);
    if (errs->v[i].value) json_decref(errs->v[i].value);
  }
  free(errs->v);
  errs->v = NULL;
  errs->n = errs->cap = 0;
}

/* }====================================================== */

/* {====================================================== content checks */

#define LABEL_KEY_FMT "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
#define LABEL_KEY_MSG                                                        \
  "must consist of alphanumeric characters, '-', '_' or '.', and must "      \
  "start and end with an alphanumeric character (e.g. 'MyName',  or "        \
  "'my.name',  or '123-abc', regex used for validation is '" LABEL_KEY_FMT  \
  "')"
#define DNS1123_LABEL_FMT "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
#define DNS1123_SUBDOMAIN_MSG                                                \
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "  \
  "characters, '-' or '.', and must start and end with an alphanumeric "     \
  "character (e.g. 'example.com', regex used for validation is '"           \
  DNS1123_LABEL_FMT "(\\." DNS1123_LABEL_FMT ")*')"
#define LABEL_VALUE_MSG                                                      \
  "a valid label must be an empty string or consist of alphanumeric "        \
  "characters, '-', '_' or '.', and must start and end with an "             \
  "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "    \
  "regex used for validation is '(" LABEL_KEY_FMT ")?')"

static int is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] over s[0..n) */
static int name_ok(const char *s, size_t n) {
  if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1])) return 0;
  for (size_t i = 1; i + 1 < n; i++)
    if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.') return 0;
  return 1;
}

static int lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)* */
static int subdomain_ok(const char *s, size_t n) {
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && s[i] != '.') continue;
    size_t len = i - start;
    if (len == 0 || !lower_alnum(s[start]) || !lower_alnum(s[i - 1])) return 0;
    for (size_t j = start; j < i; j++)
      if (!lower_alnum(s[j]) && s[j] != '-') return 0;
    start = i + 1;
  }
  return 1;
}

static int emit(ml_msg_fn fn, void *ud, const char *prefix, const char *msg) {
  if (fn) {
    ml__sb_t b = {0};
    ml__sb_puts(&b, prefix);
    ml__sb_puts(&b, msg);
    char *s = ml__sb_take(&b);
    fn(ud, s);
    free(s);
  }
  return 1;
}

static int subdomain_errors(const char *s, size_t n, const char *prefix,
                            ml_msg_fn fn, void *ud) {
  int count = 0;
  if (n > 253) count += emit(fn, ud, prefix, "must be no more than 253 characters");
  if (!subdomain_ok(s, n)) count += emit(fn, ud, prefix, DNS1123_SUBDOMAIN_MSG);
  return count;
}

int ml_dns1123_subdomain_errors(const char *value, ml_msg_fn fn, void *ud) {
  return subdomain_errors(value, strlen(value), "", fn, ud);
}

int ml_label_key_errors(const char *key, ml_msg_fn fn, void *ud) {
  int count = 0;
  const char *slash = strchr(key, '/');
  const char *name = key;
  if (slash) {
    if (strchr(slash + 1, '/')) {
      return emit(fn, ud, "a valid label key ",
                  LABEL_KEY_MSG " with an optional DNS subdomain prefix and "
                                "'/' (e.g. 'example.com/MyName')");
    }
    size_t plen = (size_t)(slash - key);
    if (plen == 0) count += emit(fn, ud, "prefix part ", "must be non-empty");
    else count += subdomain_errors(key, plen, "prefix part ", fn, ud);
    name = slash + 1;
  }
  size_t nlen = strlen(name);
  if (nlen == 0) count += emit(fn, ud, "name part ", "must be non-empty");
  else if (nlen > 63)
    count += emit(fn, ud, "name part ", "must be no more than 63 characters");
  if (!name_ok(name, nlen)) count += emit(fn, ud, "name part ", LABEL_KEY_MSG);
  return count;
}

int ml_label_value_errors(const char *value, ml_msg_fn fn, void *ud) {
  int count = 0;
  size_t n = strlen(value);
  if (n > 63) count += emit(fn, ud, "", "must be no more than 63 characters");
  if (n > 0 && !name_ok(value, n)) count += emit(fn, ud, "", LABEL_VALUE_MSG);
  return count;
}

/* Joins messages with "; " as validateLabelKey / validateLabelValue do. */
static void join_msg(void *ud, const char *msg) {
  ml__sb_t *b = ud;
  if (b->n) ml__sb_puts(b, "; ");
  ml__sb_puts(b, msg);
}

char *ml_label_key_error(const char *key) {
  ml__sb_t b = {0};
  if (ml_label_key_errors(key, join_msg, &b) == 0) return NULL;
  return ml__sb_take(&b);
}

char *ml_label_value_error(const char *value) {
  ml__sb_t b = {0};
  if (ml_label_value_errors(value, join_msg, &b) == 0) return NULL;
  return ml__sb_take(&b);
}

/* }====================================================== */
