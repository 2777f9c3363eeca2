/* YAML <-> JSON with Kubernetes' rules (contract in yaml_codec.h). Reading:
 * the stream is cut into documents on `---` lines like kubectl's YAMLReader,
 * each document is parsed with libyaml and built into jansson values with
 * go-yaml v2 scalar resolution and sigs.k8s.io/yaml key conversion.
 * Writing: jansson values become libyaml emitter events with the scalar
 * styles go-yaml v2's encoder picks, so the text matches kubectl. */
#include "yaml_codec.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "err.h"

#define TAG_PREFIX "tag:yaml.org,2002:"
#define CONVERT_PREFIX "error converting YAML to JSON: "

/* {====== Go-compatible number formatting */

int ml_go_format_float(double f, int bits, char *buf, size_t buflen) {
  if (isnan(f)) return snprintf(buf, buflen, "NaN");
  if (isinf(f)) return snprintf(buf, buflen, f > 0 ? "+Inf" : "-Inf");
  if (f == 0) return snprintf(buf, buflen, signbit(f) ? "-0" : "0");
  /* Shortest digits that read back to the same value at this precision. */
  char tmp[64];
  int maxprec = bits == 32 ? 9 : 17;
  if (bits == 32) f = (double)(float)f; /* Go formats the float32 value */
  for (int prec = 1; prec <= maxprec; prec++) {
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
    if (bits == 32 ? strtof(tmp, NULL) == (float)f : strtod(tmp, NULL) == f)
      break;
  }
  /* tmp is [-]d[.ddd]e[+-]xx: take the digits and the exponent apart. */
  const char *p = tmp;
  int neg = 0;
  if (*p == '-') neg = 1, p++;
  char digits[32];
  int nd = 0;
  for (; *p && *p != 'e'; p++)
    if (*p != '.') digits[nd++] = *p;
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  digits[nd] = '\0';
  int exp = atoi(p + 1);
  size_t o = 0;
  char out[64];
  if (neg) out[o++] = '-';
  /* Go's 'g' with the shortest precision switches at exponent 6 (not 21). */
  if (exp < -4 || exp >= 6) {
    out[o++] = digits[0];
    if (nd > 1) {
      out[o++] = '.';
      memcpy(out + o, digits + 1, (size_t)nd - 1);
      o += (size_t)nd - 1;
    }
    o += (size_t)snprintf(out + o, sizeof out - o, "e%c%02d",
                          exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  } else {
    int dp = exp + 1; /* digits before the point */
    if (dp <= 0) {
      out[o++] = '0';
      out[o++] = '.';
      for (int i = 0; i < -dp; i++) out[o++] = '0';
      memcpy(out + o, digits, (size_t)nd);
      o += (size_t)nd;
    } else if (dp >= nd) {
      memcpy(out + o, digits, (size_t)nd);
      o += (size_t)nd;
      for (int i = nd; i < dp; i++) out[o++] = '0';
    } else {
      memcpy(out + o, digits, (size_t)dp);
      o += (size_t)dp;
      out[o++] = '.';
      memcpy(out + o, digits + dp, (size_t)(nd - dp));
      o += (size_t)(nd - dp);
    }
  }
  out[o] = '\0';
  return snprintf(buf, buflen, "%s", out);
}

/* }====== */

/* {====== scalar resolution (go-yaml v2 resolve.go, YAML 1.1) */

typedef enum { R_STR, R_NULL, R_BOOL, R_INT, R_UINT, R_FLOAT } rkind_t;

typedef struct {
  rkind_t kind;
  int b;
  long long i;
  unsigned long long u;
  double f;
} rval_t;

static int str_in(const char *s, size_t n, const char *const *list) {
  for (; *list; list++)
    if (strlen(*list) == n && memcmp(*list, s, n) == 0) return 1;
  return 0;
}

static const char *const true_words[] = {"y",    "Y",    "yes", "Yes",
                                         "YES",  "true", "True", "TRUE",
                                         "on",   "On",   "ON",   NULL};
static const char *const false_words[] = {"n",     "N",     "no",  "No",
                                          "NO",    "false", "False", "FALSE",
                                          "off",   "Off",   "OFF",   NULL};
static const char *const null_words[] = {"~", "null", "Null", "NULL", NULL};
static const char *const nan_words[] = {".nan", ".NaN", ".NAN", NULL};
static const char *const inf_words[] = {".inf",  ".Inf",  ".INF", "+.inf",
                                        "+.Inf", "+.INF", NULL};
static const char *const ninf_words[] = {"-.inf", "-.Inf", "-.INF", NULL};

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int digit_val(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

/* strconv.ParseInt(s, 0, 64) then ParseUint(s, 0, 64): sign, 0x/0o/0b and
 * leading-0 octal prefixes. @return 1 int, 2 uint, 0 not an integer. */
static int go_parse_int(const char *s, size_t n, long long *iv,
                        unsigned long long *uv) {
  size_t k = 0;
  int neg = 0, sign = 0;
  if (k < n && (s[k] == '+' || s[k] == '-')) neg = s[k] == '-', sign = 1, k++;
  int base = 10;
  if (k + 1 < n && s[k] == '0') {
    char c = s[k + 1];
    if (c == 'x' || c == 'X') base = 16, k += 2;
    else if (c == 'o' || c == 'O') base = 8, k += 2;
    else if (c == 'b' || c == 'B') base = 2, k += 2;
    else base = 8, k += 1;
  }
  if (k >= n) return 0;
  unsigned long long acc = 0;
  int overflow = 0;
  for (; k < n; k++) {
    int d = digit_val((unsigned char)s[k]);
    if (d >= base) return 0;
    if (acc > (ULLONG_MAX - (unsigned)d) / (unsigned)base) overflow = 1;
    else acc = acc * (unsigned)base + (unsigned)d;
  }
  if (overflow) return 0;
  if (neg) {
    if (acc > (unsigned long long)LLONG_MAX + 1) return 0;
    *iv = acc == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)acc;
    return 1;
  }
  if (acc <= (unsigned long long)LLONG_MAX) {
    *iv = (long long)acc;
    return 1;
  }
  if (sign) return 0; /* ParseUint takes no sign */
  *uv = acc;
  return 2;
}

/* ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static int yaml_style_float(const char *s, size_t n) {
  size_t k = 0;
  if (k < n && (s[k] == '+' || s[k] == '-')) k++;
  if (k < n && s[k] == '.') {
    k++;
    size_t d = k;
    while (k < n && is_digit(s[k])) k++;
    if (k == d) return 0;
  } else {
    size_t d = k;
    while (k < n && is_digit(s[k])) k++;
    if (k == d) return 0;
    if (k < n && s[k] == '.') {
      k++;
      while (k < n && is_digit(s[k])) k++;
    }
  }
  if (k < n && (s[k] == 'e' || s[k] == 'E')) {
    k++;
    if (k < n && (s[k] == '+' || s[k] == '-')) k++;
    size_t d = k;
    while (k < n && is_digit(s[k])) k++;
    if (k == d) return 0;
  }
  return k == n;
}

/* strconv.ParseFloat: overflow to infinity is an error there. */
static int parse_float(const char *s, size_t n, double *out) {
  char buf[128];
  char *heap = NULL, *p = buf;
  if (n >= sizeof buf) {
    heap = malloc(n + 1);
    if (!heap) return 0;
    p = heap;
  }
  memcpy(p, s, n);
  p[n] = '\0';
  errno = 0;
  double f = strtod(p, NULL);
  free(heap);
  if (isinf(f)) return 0;
  *out = f;
  return 1;
}

/* Resolves a plain scalar with no tag, as go-yaml v2 resolve("", s). */
static void resolve_plain(const char *s, size_t n, rval_t *r) {
  memset(r, 0, sizeof *r);
  r->kind = R_STR;
  char hint;
  if (n == 0) {
    hint = 'N';
  } else {
    unsigned char c = (unsigned char)s[0];
    if (c == '+' || c == '-') hint = 'S';
    else if (is_digit(c)) hint = 'D';
    else if (strchr("yYnNtTfFoO~", c) && c) hint = 'M';
    else if (c == '.') hint = '.';
    else return;
  }
  if (n == 0 || str_in(s, n, null_words)) {
    r->kind = R_NULL;
    return;
  }
  if (str_in(s, n, true_words) || str_in(s, n, false_words)) {
    r->kind = R_BOOL;
    r->b = str_in(s, n, true_words);
    return;
  }
  if (str_in(s, n, nan_words)) {
    r->kind = R_FLOAT;
    r->f = NAN;
    return;
  }
  if (str_in(s, n, inf_words) || str_in(s, n, ninf_words)) {
    r->kind = R_FLOAT;
    r->f = str_in(s, n, inf_words) ? INFINITY : -INFINITY;
    return;
  }
  if (hint == 'M') return;
  if (hint == '.') {
    /* ParseFloat on ".5", ".5e3": digits after the point are required. */
    if (n > 1 && yaml_style_float(s, n) && parse_float(s, n, &r->f))
      r->kind = R_FLOAT;
    return;
  }
  /* 'D' or 'S': integers (underscores dropped), then YAML-style floats. */
  char small[128];
  char *plain = small;
  if (n >= sizeof small && !(plain = malloc(n + 1))) return;
  size_t pn = 0;
  for (size_t k = 0; k < n; k++)
    if (s[k] != '_') plain[pn++] = s[k];
  int rc = go_parse_int(plain, pn, &r->i, &r->u);
  if (rc == 1) r->kind = R_INT;
  else if (rc == 2) r->kind = R_UINT;
  else if (yaml_style_float(plain, pn) && parse_float(plain, pn, &r->f))
    r->kind = R_FLOAT;
  if (plain != small) free(plain);
}

/* }====== */

/* {====== timestamps and base-60 (only to decide quoting when writing) */

static int getnum(const char *s, size_t n, size_t *k, int maxdigits) {
  if (*k >= n || !is_digit(s[*k])) return -1;
  int v = s[(*k)++] - '0';
  if (maxdigits > 1 && *k < n && is_digit(s[*k])) v = v * 10 + s[(*k)++] - '0';
  return v;
}

static int days_in(int month, int year) {
  static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
    return 29;
  return d[month - 1];
}

/* go-yaml v2 parseTimestamp: time.Parse with "2006-1-2T15:4:5.999999999Z07:00"
 * (also with 't'), "2006-1-2 15:4:5.999999999" and "2006-1-2". */
static int is_timestamp(const char *s, size_t n) {
  size_t k = 0;
  while (k < n && is_digit(s[k])) k++;
  if (k != 4 || k == n || s[k] != '-') return 0;
  int year = atoi(s);
  k++;
  int month = getnum(s, n, &k, 2);
  if (month < 1 || month > 12 || k >= n || s[k] != '-') return 0;
  k++;
  int day = getnum(s, n, &k, 2);
  if (day < 1 || day > days_in(month, year)) return 0;
  if (k == n) return 1;
  char sep = s[k++];
  if (sep != 'T' && sep != 't' && sep != ' ') return 0;
  int hour = getnum(s, n, &k, 2);
  if (hour < 0 || hour > 23 || k >= n || s[k++] != ':') return 0;
  int min = getnum(s, n, &k, 2);
  if (min < 0 || min > 59 || k >= n || s[k++] != ':') return 0;
  int sec = getnum(s, n, &k, 2);
  if (sec < 0 || sec > 59) return 0;
  if (k + 1 < n && (s[k] == '.' || s[k] == ',') && is_digit(s[k + 1])) {
    k++;
    while (k < n && is_digit(s[k])) k++;
  }
  if (sep == ' ') return k == n;
  if (k < n && s[k] == 'Z') return k + 1 == n;
  if (n - k != 6 || (s[k] != '+' && s[k] != '-') || s[k + 3] != ':') return 0;
  if (!is_digit(s[k + 1]) || !is_digit(s[k + 2]) || !is_digit(s[k + 4]) ||
      !is_digit(s[k + 5]))
    return 0;
  int zh = (s[k + 1] - '0') * 10 + s[k + 2] - '0';
  int zm = (s[k + 4] - '0') * 10 + s[k + 5] - '0';
  return zh <= 24 && zm <= 60;
}

/* ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$ */
static int is_base60_float(const char *s, size_t n) {
  size_t k = 0;
  if (k < n && (s[k] == '+' || s[k] == '-')) k++;
  if (k >= n || !is_digit(s[k])) return 0;
  while (k < n && (is_digit(s[k]) || s[k] == '_')) k++;
  int groups = 0;
  while (k < n && s[k] == ':') {
    k++;
    if (k + 1 < n && s[k] >= '0' && s[k] <= '5' && is_digit(s[k + 1])) k += 2;
    else if (k < n && is_digit(s[k])) k++;
    else return 0;
    groups++;
  }
  if (!groups) return 0;
  if (k < n && s[k] == '.') {
    k++;
    while (k < n && (is_digit(s[k]) || s[k] == '_')) k++;
  }
  return k == n;
}

/* }====== */

/* {====== building documents from libyaml events */

typedef struct {
  char *name;
  json_t *value;
  size_t nodes; /* nodes an alias to it expands to */
  int depth;
} anchor_t;

typedef struct {
  json_t *obj;    /* the array or object being filled */
  json_t *merged; /* object: entries from `<<` (explicit keys win) */
  int is_map;
  int have_key, key_merge, key_null;
  char *key;
  size_t keylen;
  char *anchor;
  size_t nodes0; /* node count when the collection started */
  int sub;       /* depth of the deepest child */
} frame_t;

typedef struct {
  frame_t *st;
  size_t n, cap;
  anchor_t *anchors;
  size_t nanchors, capanchors;
  json_t *anchor_index; /* name -> index in anchors: a scan per alias made
                           120,000 anchors and aliases take 80 s */
  size_t nodes, alias_nodes;
  json_t *root;
  int failed;
  char err[512];
  int err_line0, err_col0; /* position in the chunk, -1 unknown */
  char *dups;              /* duplicate keys, as ml_yaml_doc_t has them */
  size_t dups_len, ndups;
} builder_t;

static void builder_fail(builder_t *b, const yaml_mark_t *m, const char *fmt,
                         ...) {
  if (b->failed) return;
  b->failed = 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b->err, sizeof b->err, fmt, ap);
  va_end(ap);
  b->err_line0 = m ? (int)m->line : -1;
  b->err_col0 = m ? (int)m->column : -1;
}

static void builder_reset(builder_t *b) {
  for (size_t i = 0; i < b->n; i++) {
    json_decref(b->st[i].obj);
    json_decref(b->st[i].merged);
    free(b->st[i].key);
    free(b->st[i].anchor);
  }
  b->n = 0;
  for (size_t i = 0; i < b->nanchors; i++) {
    free(b->anchors[i].name);
    json_decref(b->anchors[i].value);
  }
  b->nanchors = 0;
  json_decref(b->anchor_index);
  b->anchor_index = NULL;
  b->nodes = b->alias_nodes = 0;
  json_decref(b->root);
  b->root = NULL;
  b->failed = 0;
  b->err[0] = '\0';
  b->err_line0 = b->err_col0 = -1;
  free(b->dups);
  b->dups = NULL;
  b->dups_len = b->ndups = 0;
}

static void builder_free(builder_t *b) {
  builder_reset(b);
  free(b->st);
  free(b->anchors);
}

static anchor_t *find_anchor(builder_t *b, const char *name) {
  json_t *i = b->anchor_index ? json_object_get(b->anchor_index, name) : NULL;
  return i ? &b->anchors[json_integer_value(i)] : NULL;
}

/* An anchor defined again names the new node from here on (YAML 1.1): its
 * slot is reused. */
static void add_anchor(builder_t *b, const char *name, json_t *v, size_t nodes,
                       int depth) {
  anchor_t *old = find_anchor(b, name);
  if (old) {
    json_decref(old->value);
    old->value = json_incref(v);
    old->nodes = nodes;
    old->depth = depth;
    return;
  }
  if (!b->anchor_index && !(b->anchor_index = json_object()))
    return builder_fail(b, NULL, "out of memory");
  if (b->nanchors == b->capanchors) {
    size_t cap = b->capanchors ? b->capanchors * 2 : 8;
    anchor_t *a = realloc(b->anchors, cap * sizeof *a);
    if (!a) return builder_fail(b, NULL, "out of memory");
    b->anchors = a;
    b->capanchors = cap;
  }
  char *copy = strdup(name);
  /* Anchor names are whatever bytes libyaml took: no UTF-8 check. */
  if (!copy || json_object_set_new_nocheck(b->anchor_index, name,
                                           json_integer((json_int_t)b->nanchors)) < 0) {
    free(copy);
    return builder_fail(b, NULL, "out of memory");
  }
  anchor_t *a = &b->anchors[b->nanchors++];
  a->name = copy;
  a->value = json_incref(v);
  a->nodes = nodes;
  a->depth = depth;
}

/* go-yaml v2.4's guard against alias bombs ("billion laughs"): past a few
 * hundred thousand nodes, aliases may make up a shrinking share. */
static int excessive_aliasing(const builder_t *b) {
  const double low = 400000, high = 4000000;
  double total = (double)b->nodes, allowed;
  if (b->alias_nodes <= 100 || b->nodes <= 1000) return 0;
  if (total <= low) allowed = 0.99;
  else if (total >= high) allowed = 0.10;
  else allowed = 0.99 - 0.89 * ((total - low) / (high - low));
  return (double)b->alias_nodes / total > allowed;
}

static json_t *float_json(double f, builder_t *b, const yaml_mark_t *m) {
  if (isnan(f) || isinf(f)) {
    builder_fail(b, m, CONVERT_PREFIX "json: unsupported value: %s",
                 isnan(f) ? "NaN" : (f > 0 ? "+Inf" : "-Inf"));
    return NULL;
  }
  /* sigs.k8s.io/yaml goes through json.Marshal, which writes an integral
   * float64 without a fraction; read back, that is an integer. */
  if (f == floor(f) && f >= -9223372036854775808.0 &&
      f < 9223372036854775808.0)
    return json_integer((json_int_t)f);
  return json_real(f);
}

static json_t *rval_json(const rval_t *r, const char *s, size_t n,
                         builder_t *b, const yaml_mark_t *m) {
  json_t *j = NULL;
  switch (r->kind) {
  case R_NULL:
    return json_null();
  case R_BOOL:
    return json_boolean(r->b);
  case R_INT:
    j = json_integer((json_int_t)r->i);
    break;
  case R_UINT:
    j = json_real((double)r->u);
    break;
  case R_FLOAT:
    return float_json(r->f, b, m);
  case R_STR:
    j = json_stringn(s, n);
    if (!j) {
      builder_fail(b, m, CONVERT_PREFIX "yaml: invalid UTF-8 in a string");
      return NULL;
    }
    return j;
  }
  if (!j) builder_fail(b, m, "out of memory");
  return j;
}

/* Map keys become strings the way sigs.k8s.io/yaml converts them. */
static char *key_from_json(const json_t *k, size_t *len, builder_t *b,
                           const yaml_mark_t *m) {
  char buf[64];
  const char *s = buf;
  size_t n;
  switch (json_typeof(k)) {
  case JSON_STRING:
    s = json_string_value(k);
    n = json_string_length(k);
    break;
  case JSON_INTEGER:
    n = (size_t)snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT,
                         json_integer_value(k));
    break;
  case JSON_REAL:
    n = (size_t)ml_go_format_float(json_real_value(k), 32, buf, sizeof buf);
    break;
  case JSON_TRUE:
  case JSON_FALSE:
    n = (size_t)snprintf(buf, sizeof buf, "%s",
                         json_is_true(k) ? "true" : "false");
    break;
  default:
    builder_fail(b, m, CONVERT_PREFIX "yaml: invalid map key: a %s",
                 json_is_object(k) ? "mapping" : "sequence");
    return NULL;
  }
  /* jansson cannot read such a key back from JSON text; refuse it here so
   * every value we hand out survives a JSON round trip. */
  if (memchr(s, '\0', n)) {
    builder_fail(b, m, CONVERT_PREFIX "yaml: NUL byte in map key not supported");
    return NULL;
  }
  char *out = malloc(n + 1);
  if (!out) {
    builder_fail(b, m, "out of memory");
    return NULL;
  }
  memcpy(out, s, n);
  out[n] = '\0';
  *len = n;
  return out;
}

static char *key_from_rval(const rval_t *r, const char *s, size_t n,
                           size_t *len, builder_t *b, const yaml_mark_t *m) {
  char buf[64];
  if (r->kind == R_FLOAT && (isnan(r->f) || isinf(r->f))) {
    /* go-yaml's names for the specials, kept by sigs.k8s.io/yaml */
    const char *name = isnan(r->f) ? ".nan" : (r->f > 0 ? ".inf" : "-.inf");
    json_t *k = json_string(name);
    char *out = k ? key_from_json(k, len, b, m) : NULL;
    json_decref(k);
    return out;
  }
  if (r->kind == R_FLOAT) {
    /* float64 keys are formatted at float32 precision by sigs.k8s.io/yaml */
    int l = ml_go_format_float(r->f, 32, buf, sizeof buf);
    json_t *k = json_stringn(buf, (size_t)l);
    char *out = k ? key_from_json(k, len, b, m) : NULL;
    json_decref(k);
    return out;
  }
  if (r->kind == R_UINT) {
    int l = snprintf(buf, sizeof buf, "%llu", r->u);
    json_t *k = json_stringn(buf, (size_t)l);
    char *out = k ? key_from_json(k, len, b, m) : NULL;
    json_decref(k);
    return out;
  }
  json_t *k = rval_json(r, s, n, b, m);
  if (!k) return NULL;
  char *out = key_from_json(k, len, b, m);
  json_decref(k);
  return out;
}

static void go_quote(char *dst, size_t dstlen, const char *s, size_t n) {
  size_t o = 0;
  if (dstlen < 4) return;
  dst[o++] = '"';
  for (size_t i = 0; i < n && o + 3 < dstlen; i++) {
    if (s[i] == '"' || s[i] == '\\') dst[o++] = '\\';
    dst[o++] = s[i];
  }
  dst[o++] = '"';
  dst[o] = '\0';
}

/* Go's %+#v of a decoded value, for the few messages that show one. */
static void go_value(char *dst, size_t dstlen, const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_STRING:
    go_quote(dst, dstlen, json_string_value(v), json_string_length(v));
    break;
  case JSON_INTEGER:
    snprintf(dst, dstlen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    break;
  case JSON_REAL:
    ml_go_format_float(json_real_value(v), 64, dst, dstlen);
    break;
  case JSON_TRUE:
  case JSON_FALSE:
    snprintf(dst, dstlen, "%s", json_is_true(v) ? "true" : "false");
    break;
  case JSON_NULL:
    snprintf(dst, dstlen, "<nil>");
    break;
  default:
    snprintf(dst, dstlen, "%s", json_is_object(v) ? "map[interface {}]interface {}{...}"
                                                  : "[]interface {}{...}");
  }
}

static void do_merge(builder_t *b, frame_t *f, json_t *v,
                     const yaml_mark_t *m) {
  static const char *msg =
      CONVERT_PREFIX "yaml: map merge requires map or sequence of maps as the "
                     "value";
  size_t count = json_is_array(v) ? json_array_size(v) : 1;
  if (!json_is_object(v) && !json_is_array(v)) return builder_fail(b, m, msg);
  for (size_t i = 0; i < count; i++)
    if (!json_is_object(json_is_array(v) ? json_array_get(v, i) : v))
      return builder_fail(b, m, msg);
  if (!f->merged && !(f->merged = json_object()))
    return builder_fail(b, m, "out of memory");
  /* The first source to name a key wins, as YAML's merge type says. */
  for (size_t i = 0; i < count; i++) {
    json_t *src = json_is_array(v) ? json_array_get(v, i) : v;
    const char *k;
    size_t klen;
    json_t *val;
    json_object_keylen_foreach(src, k, klen, val) {
      if (!json_object_getn(f->merged, k, klen) &&
          json_object_setn_nocheck(f->merged, k, klen, val) < 0)
        return builder_fail(b, m, "out of memory");
    }
  }
}

/* A key the mapping has already: go-yaml's non-strict decoder (kubectl's)
 * keeps the last value; its strict one (kube-apiserver's, for YAML bodies)
 * says where, which the document carries. Past ML_YAML_MAX_DUPS the rest
 * are left out. */
static void add_dup(builder_t *b, const yaml_mark_t *m, const char *key,
                    size_t keylen) {
  if (b->ndups >= ML_YAML_MAX_DUPS) return;
  char quoted[256], line[320];
  go_quote(quoted, sizeof quoted, key, keylen);
  int n = snprintf(line, sizeof line, "%sline %d: key %s already set in map",
                   b->ndups ? "\n" : "", (int)m->line + 1, quoted);
  if (n < 0) return;
  size_t k = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
  char *grown = realloc(b->dups, b->dups_len + k + 1);
  if (!grown) return builder_fail(b, m, "out of memory");
  memcpy(grown + b->dups_len, line, k + 1);
  b->dups = grown;
  b->dups_len += k;
  b->ndups++;
}

/* Hands a finished node (reference stolen) to the collection being built. */
static void attach(builder_t *b, json_t *v, int vdepth, int is_merge,
                   const yaml_mark_t *m) {
  if (b->failed) {
    json_decref(v);
    return;
  }
  if ((int)b->n + vdepth > ML_YAML_MAX_DEPTH) {
    json_decref(v);
    return builder_fail(b, m, CONVERT_PREFIX "yaml: exceeded max depth of %d",
                        ML_YAML_MAX_DEPTH);
  }
  if (b->n == 0) {
    json_decref(b->root);
    b->root = v;
    return;
  }
  frame_t *f = &b->st[b->n - 1];
  if (vdepth > f->sub) f->sub = vdepth;
  if (!f->is_map) {
    if (json_array_append_new(f->obj, v) < 0)
      builder_fail(b, m, "out of memory");
    return;
  }
  if (!f->have_key) {
    if (is_merge) {
      f->key_merge = 1;
    } else if (json_is_null(v)) {
      f->key_null = 1; /* reported with its value, as sigs.k8s.io/yaml does */
    } else {
      f->key = key_from_json(v, &f->keylen, b, m);
      if (!f->key) {
        json_decref(v);
        return;
      }
    }
    json_decref(v);
    f->have_key = 1;
    return;
  }
  f->have_key = 0;
  if (f->key_null) {
    char shown[200];
    go_value(shown, sizeof shown, v);
    builder_fail(b, m,
                 CONVERT_PREFIX "unsupported map key of type: %%!s(<nil>), "
                 "key: <nil>, value: %s",
                 shown);
    json_decref(v);
    return;
  }
  if (f->key_merge) {
    f->key_merge = 0;
    do_merge(b, f, v, m);
    json_decref(v);
    return;
  }
  char *key = f->key;
  size_t keylen = f->keylen;
  f->key = NULL;
  if (json_object_getn(f->obj, key, keylen)) add_dup(b, m, key, keylen);
  if (json_object_setn_new(f->obj, key, keylen, v) < 0) {
    builder_fail(b, m, CONVERT_PREFIX "yaml: invalid UTF-8 in a map key");
  }
  free(key);
}

static int is_tag(const yaml_char_t *tag, const char *name) {
  return tag && strncmp((const char *)tag, TAG_PREFIX, strlen(TAG_PREFIX)) == 0 &&
         strcmp((const char *)tag + strlen(TAG_PREFIX), name) == 0;
}

static const char *kind_tag(rkind_t k) {
  switch (k) {
  case R_NULL: return "!!null";
  case R_BOOL: return "!!bool";
  case R_INT:
  case R_UINT: return "!!int";
  case R_FLOAT: return "!!float";
  default: return "!!str";
  }
}

static void on_scalar(builder_t *b, const yaml_event_t *ev) {
  const char *s = (const char *)ev->data.scalar.value;
  size_t n = ev->data.scalar.length;
  const yaml_char_t *tag = ev->data.scalar.tag;
  const yaml_mark_t *m = &ev->start_mark;
  rval_t r;
  int is_merge = 0;
  memset(&r, 0, sizeof r);
  r.kind = R_STR;
  if (!tag) {
    if (ev->data.scalar.plain_implicit) {
      resolve_plain(s, n, &r);
      is_merge = n == 2 && memcmp(s, "<<", 2) == 0;
    }
  } else if (is_tag(tag, "merge")) {
    is_merge = n == 2 && memcmp(s, "<<", 2) == 0;
  } else if (is_tag(tag, "null") || is_tag(tag, "bool") ||
             is_tag(tag, "int") || is_tag(tag, "float")) {
    /* An explicit type must agree with what the text resolves to. */
    resolve_plain(s, n, &r);
    const char *want = (const char *)tag + strlen(TAG_PREFIX);
    int ok = strcmp(kind_tag(r.kind) + 2, want) == 0;
    if (!ok && r.kind == R_INT && strcmp(want, "float") == 0) {
      r.f = (double)r.i;
      r.kind = R_FLOAT;
      ok = 1;
    }
    if (!ok) {
      char text[200];
      snprintf(text, sizeof text, "%.*s", (int)(n < 150 ? n : 150), s);
      return builder_fail(b, m,
                          CONVERT_PREFIX "yaml: cannot decode %s `%s` as a !!%s",
                          kind_tag(r.kind), text, want);
    }
  }
  b->nodes++;
  frame_t *f = b->n ? &b->st[b->n - 1] : NULL;
  const char *anchor = (const char *)ev->data.scalar.anchor;
  if (f && f->is_map && !f->have_key && !is_merge) {
    /* A key: converted straight from the resolved scalar. */
    if (r.kind == R_NULL) {
      f->key_null = f->have_key = 1;
      return;
    }
    f->key = key_from_rval(&r, s, n, &f->keylen, b, m);
    if (!f->key) return;
    f->have_key = 1;
    if (anchor) {
      json_t *kv = json_stringn(f->key, f->keylen);
      if (kv) add_anchor(b, anchor, kv, 1, 0);
      json_decref(kv);
    }
    return;
  }
  json_t *v = is_merge ? json_string("<<") : rval_json(&r, s, n, b, m);
  if (!v) return;
  if (anchor) add_anchor(b, anchor, v, 1, 0);
  attach(b, v, 0, is_merge, m);
}

static void on_alias(builder_t *b, const yaml_event_t *ev) {
  const char *name = (const char *)ev->data.alias.anchor;
  anchor_t *a = find_anchor(b, name);
  if (!a)
    return builder_fail(b, &ev->start_mark,
                        CONVERT_PREFIX "yaml: unknown anchor '%s' referenced",
                        name);
  b->nodes += a->nodes;
  b->alias_nodes += a->nodes;
  if (excessive_aliasing(b))
    return builder_fail(b, &ev->start_mark,
                        CONVERT_PREFIX "yaml: document contains excessive "
                        "aliasing");
  if ((int)b->n + a->depth > ML_YAML_MAX_DEPTH)
    return builder_fail(b, &ev->start_mark,
                        CONVERT_PREFIX "yaml: exceeded max depth of %d",
                        ML_YAML_MAX_DEPTH);
  /* A private copy: callers may edit the tree, and an edit must not show
   * up in every place the anchor was used. */
  json_t *v = json_deep_copy(a->value);
  if (!v) return builder_fail(b, &ev->start_mark, "out of memory");
  attach(b, v, a->depth, 0, &ev->start_mark);
}

static void on_start(builder_t *b, const yaml_event_t *ev, int is_map) {
  const yaml_mark_t *m = &ev->start_mark;
  if (b->n + 1 > ML_YAML_MAX_DEPTH)
    return builder_fail(b, m, CONVERT_PREFIX "yaml: exceeded max depth of %d",
                        ML_YAML_MAX_DEPTH);
  frame_t *top = b->n ? &b->st[b->n - 1] : NULL;
  if (top && top->is_map && !top->have_key)
    return builder_fail(b, m, CONVERT_PREFIX "yaml: invalid map key: a %s",
                        is_map ? "mapping" : "sequence");
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 16;
    frame_t *st = realloc(b->st, cap * sizeof *st);
    if (!st) return builder_fail(b, m, "out of memory");
    b->st = st;
    b->cap = cap;
  }
  const yaml_char_t *anchor = is_map ? ev->data.mapping_start.anchor
                                     : ev->data.sequence_start.anchor;
  frame_t *f = &b->st[b->n];
  memset(f, 0, sizeof *f);
  f->is_map = is_map;
  f->obj = is_map ? json_object() : json_array();
  f->anchor = anchor ? strdup((const char *)anchor) : NULL;
  f->nodes0 = b->nodes++;
  b->n++; /* counted before any failure so builder_reset frees it */
  if (!f->obj || (anchor && !f->anchor)) builder_fail(b, m, "out of memory");
}

static void on_end(builder_t *b, const yaml_event_t *ev) {
  if (b->n == 0) return;
  frame_t f = b->st[--b->n];
  if (f.is_map && f.merged) {
    const char *k;
    size_t klen;
    json_t *val;
    json_object_keylen_foreach(f.merged, k, klen, val) {
      if (!json_object_getn(f.obj, k, klen))
        json_object_setn_nocheck(f.obj, k, klen, val);
    }
  }
  json_decref(f.merged);
  free(f.key);
  int depth = f.sub + 1;
  if (f.anchor) add_anchor(b, f.anchor, f.obj, b->nodes - f.nodes0, depth);
  free(f.anchor);
  attach(b, f.obj, depth, 0, &ev->start_mark);
}

/* }====== */

/* {====== streams and documents */

static int docs_push(ml_yaml_docs_t *out, json_t *value, const char *err,
                     int line, int err_line, int err_col, const char *dups) {
  ml_yaml_doc_t *d = realloc(out->docs, (out->n + 1) * sizeof *d);
  if (!d) {
    json_decref(value);
    return ML_ENOMEM;
  }
  out->docs = d;
  d = &out->docs[out->n];
  memset(d, 0, sizeof *d);
  d->value = value;
  out->n++;
  if (err && !(d->err = strdup(err))) return ML_ENOMEM;
  if (dups && !(d->dups = strdup(dups))) return ML_ENOMEM;
  d->line = line;
  d->err_line = err_line;
  d->err_column = err_col;
  return 0;
}

/* go-yaml's error position: scanner errors count lines from 1, parser
 * errors report the 0-based line, and a zero line is left out. */
static void parser_message(const yaml_parser_t *p, char *buf, size_t len) {
  int line = 0;
  if (p->problem_mark.line != 0) {
    line = (int)p->problem_mark.line;
    if (p->error == YAML_SCANNER_ERROR) line++;
  } else if (p->context_mark.line != 0) {
    line = (int)p->context_mark.line;
  }
  const char *problem =
      p->problem ? p->problem : "unknown problem parsing YAML content";
  if (line)
    snprintf(buf, len, CONVERT_PREFIX "yaml: line %d: %s", line, problem);
  else
    snprintf(buf, len, CONVERT_PREFIX "yaml: %s", problem);
}

static int skip_blank_lines(const char *s, size_t n, int line) {
  /* The first line holding something other than blanks and comments. */
  size_t k = 0;
  while (k < n) {
    size_t e = k;
    while (e < n && s[e] != '\n') e++;
    size_t c = k;
    while (c < e && (s[c] == ' ' || s[c] == '\t' || s[c] == '\r')) c++;
    if (c < e && s[c] != '#') return line;
    k = e + 1;
    line++;
  }
  return line;
}

/* JSON is YAML, and kubectl reads a stream that starts with '{' as JSON;
 * jansson is faster and exact for it. @return 1 if taken, 0 to fall back */
static int chunk_json(const char *s, size_t n, int line0, ml_yaml_docs_t *out,
                      int *rc) {
  size_t k = 0;
  while (k < n && strchr(" \t\r\n", s[k])) k++;
  if (k == n || s[k] != '{') return 0;
  json_t *vals[64];
  size_t lines[64], nv = 0;
  size_t off = 0;
  for (;;) {
    while (off < n && strchr(" \t\r\n", s[off])) off++;
    if (off == n) break;
    json_error_t e;
    json_t *v = nv < 64 ? json_loadb(s + off, n - off,
                                     JSON_DISABLE_EOF_CHECK |
                                         JSON_REJECT_DUPLICATES,
                                     &e)
                        : NULL;
    if (!v) {
      for (size_t i = 0; i < nv; i++) json_decref(vals[i]);
      return 0;
    }
    size_t l = (size_t)line0;
    for (size_t i = 0; i < off; i++) l += s[i] == '\n';
    lines[nv] = l;
    vals[nv++] = v;
    off += e.position;
  }
  *rc = 0;
  for (size_t i = 0; i < nv; i++) {
    if (*rc == 0 && !json_is_null(vals[i]))
      *rc = docs_push(out, vals[i], NULL, (int)lines[i], 0, 0, NULL);
    else
      json_decref(vals[i]);
  }
  return 1;
}

/* libyaml's scanner walks every open flow collection (`[`, `{`) for every
 * token it reads (its simple-key bookkeeping; go-yaml dropped that walk), so
 * a stream costs its values times their flow depth: a million values 980
 * `[` deep held the loop for 5 s. A stream may spend this much of that
 * product, about 0.1 s of scanning; documents written by hand or by
 * kubectl are thousands of times below it. */
#define FLOW_WORK_MAX ((size_t)1 << 24)

/* `flow_work` is the stream's spending so far; past FLOW_WORK_MAX the
 * document gets an error and the chunk ends. */
static int parse_chunk(const char *s, size_t n, int line0, ml_yaml_docs_t *out,
                       size_t *flow_work) {
  int rc = 0;
  if (chunk_json(s, n, line0, out, &rc)) return rc;
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) return ML_ENOMEM;
  yaml_parser_set_input_string(&p, (const unsigned char *)s, n);
  builder_t b;
  memset(&b, 0, sizeof b);
  b.err_line0 = b.err_col0 = -1;
  int doc_line = skip_blank_lines(s, n, line0);
  int in_doc = 0, too_deep = 0;
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) {
      /* The parser cannot go on after an error: report this document. */
      char msg[600];
      parser_message(&p, msg, sizeof msg);
      int eline = line0 + (int)p.problem_mark.line;
      int ecol = (int)p.problem_mark.column + 1;
      if (p.problem_mark.line == 0 && p.problem_mark.column == 0 &&
          p.error == YAML_READER_ERROR)
        eline = ecol = 0;
      rc = docs_push(out, NULL, msg, in_doc ? doc_line : skip_blank_lines(s, n, line0),
                     eline, ecol, NULL);
      break;
    }
    int done = ev.type == YAML_STREAM_END_EVENT;
    *flow_work += (size_t)p.flow_level;
    if (*flow_work > FLOW_WORK_MAX) {
      yaml_event_delete(&ev);
      rc = docs_push(out, NULL,
                     CONVERT_PREFIX "yaml: document contains excessive nesting "
                     "of flow collections",
                     doc_line, line0 + (int)p.mark.line, (int)p.mark.column + 1, NULL);
      break;
    }
    switch (ev.type) {
    case YAML_DOCUMENT_START_EVENT:
      builder_reset(&b);
      in_doc = 1;
      doc_line = line0 + (int)ev.start_mark.line;
      break;
    case YAML_DOCUMENT_END_EVENT:
      in_doc = 0;
      if (b.failed) {
        rc = docs_push(out, NULL, b.err, doc_line,
                       b.err_line0 >= 0 ? line0 + b.err_line0 : 0,
                       b.err_col0 >= 0 ? b.err_col0 + 1 : 0, NULL);
      } else if (b.root && !json_is_null(b.root)) {
        rc = docs_push(out, b.root, NULL, doc_line, 0, 0, b.dups);
        b.root = NULL;
      }
      builder_reset(&b);
      /* A later document in the same chunk starts after this one. */
      doc_line = line0 + (int)ev.end_mark.line;
      break;
    case YAML_SCALAR_EVENT:
      if (!b.failed) {
        if (b.n == 0) doc_line = line0 + (int)ev.start_mark.line;
        on_scalar(&b, &ev);
      }
      break;
    case YAML_ALIAS_EVENT:
      if (!b.failed) on_alias(&b, &ev);
      break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
      if (!b.failed) {
        if (b.n == 0) doc_line = line0 + (int)ev.start_mark.line;
        on_start(&b, &ev, ev.type == YAML_MAPPING_START_EVENT);
        /* Too deep: stop the chunk here, as go-yaml's scanner does. Going
         * on to the document's end costs libyaml's scanner a pass over
         * every open flow collection per token: 100,000 `[` held the
         * server's loop for half a minute. */
        if (b.failed && b.n >= ML_YAML_MAX_DEPTH) too_deep = 1;
      }
      break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      if (!b.failed) on_end(&b, &ev);
      break;
    default:
      break;
    }
    yaml_event_delete(&ev);
    if (too_deep) {
      rc = docs_push(out, NULL, b.err, doc_line, line0 + b.err_line0, b.err_col0 + 1, NULL);
      break;
    }
    if (done || rc < 0) break;
  }
  builder_free(&b);
  yaml_parser_delete(&p);
  return rc;
}

/* kubectl's YAMLReader: a line that is `---` plus optional blanks ends a
 * document, so one bad document never hides the next. */
static int is_separator(const char *line, size_t n) {
  if (n < 3 || memcmp(line, "---", 3) != 0) return 0;
  for (size_t i = 3; i < n; i++)
    if (!strchr(" \t\r\n\v\f", line[i])) return 0;
  return 1;
}

int ml_yaml_to_json(const char *text, size_t len, ml_yaml_docs_t *out) {
  out->docs = NULL;
  out->n = 0;
  size_t start = 0, k = 0, flow_work = 0;
  int line = 1, start_line = 1;
  while (k < len) {
    size_t e = k;
    while (e < len && text[e] != '\n') e++;
    if (is_separator(text + k, e - k)) {
      int rc = parse_chunk(text + start, k - start, start_line, out, &flow_work);
      if (rc < 0) return rc;
      /* Spent: the rest of the stream is left unread. */
      if (flow_work > FLOW_WORK_MAX) return 0;
      start = e < len ? e + 1 : len;
      start_line = line + 1;
    }
    k = e + 1;
    line++;
  }
  if (start < len) return parse_chunk(text + start, len - start, start_line, out, &flow_work);
  return 0;
}

void ml_yaml_docs_free(ml_yaml_docs_t *docs) {
  for (size_t i = 0; i < docs->n; i++) {
    json_decref(docs->docs[i].value);
    free(docs->docs[i].err);
    free(docs->docs[i].dups);
  }
  free(docs->docs);
  docs->docs = NULL;
  docs->n = 0;
}

json_t *ml_yaml_load(const char *text, size_t len, char *err, size_t errlen) {
  ml_yaml_docs_t docs;
  json_t *v = NULL;
  if (errlen) err[0] = '\0';
  if (ml_yaml_to_json(text, len, &docs) < 0) {
    snprintf(err, errlen, "out of memory");
  } else if (docs.n == 0) {
    v = json_null();
  } else if (docs.docs[0].err) {
    snprintf(err, errlen, "%s", docs.docs[0].err);
  } else {
    v = json_incref(docs.docs[0].value);
  }
  ml_yaml_docs_free(&docs);
  return v;
}

/* }====== */

/* {====== writing YAML */

typedef struct {
  char *buf;
  size_t len, cap;
} outbuf_t;

static int write_handler(void *data, unsigned char *buffer, size_t size) {
  outbuf_t *o = data;
  if (o->len + size + 1 > o->cap) {
    size_t cap = o->cap ? o->cap : 1024;
    while (cap < o->len + size + 1) cap *= 2;
    char *b = realloc(o->buf, cap);
    if (!b) return 0;
    o->buf = b;
    o->cap = cap;
  }
  memcpy(o->buf + o->len, buffer, size);
  o->len += size;
  o->buf[o->len] = '\0';
  return 1;
}

/* One UTF-8 rune (input is valid: jansson checked it). */
static unsigned rune_at(const char *s, size_t n, size_t *k) {
  unsigned char c = (unsigned char)s[*k];
  size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  unsigned r = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 7;
  for (size_t i = 1; i < len && *k + i < n; i++)
    r = (r << 6) | ((unsigned char)s[*k + i] & 0x3F);
  *k += len;
  return r;
}

/* unicode.IsLetter, exact for ASCII; other scripts count as letters. */
static int rune_letter(unsigned r) {
  if (r < 0x80) return (r | 0x20) >= 'a' && (r | 0x20) <= 'z';
  if (r < 0xC0) return r == 0xAA || r == 0xB5 || r == 0xBA;
  return r != 0xD7 && r != 0xF7;
}

static int rune_digit(unsigned r) { return r >= '0' && r <= '9'; }

typedef struct {
  const char *k;
  size_t n;
  const json_t *v;
} entry_t;

/* go-yaml v2's keyList.Less for string keys: letters after other runes,
 * and runs of digits compared as numbers ("a2" < "a10"). */
static int natural_cmp(const void *pa, const void *pb) {
  const entry_t *ea = pa, *eb = pb;
  unsigned ar[256], br[256];
  size_t na = 0, nb = 0, k;
  /* Runes past the first 256 only matter for keys equal that far. */
  for (k = 0; k < ea->n && na < 256;) ar[na++] = rune_at(ea->k, ea->n, &k);
  for (k = 0; k < eb->n && nb < 256;) br[nb++] = rune_at(eb->k, eb->n, &k);
  for (size_t i = 0; i < na && i < nb; i++) {
    if (ar[i] == br[i]) continue;
    int al = rune_letter(ar[i]), bl = rune_letter(br[i]);
    if (al && bl) return ar[i] < br[i] ? -1 : 1;
    if (al || bl) return bl ? -1 : 1;
    /* Go's int wraps on long digit runs; unsigned arithmetic wraps the
     * same way without C's signed-overflow undefined behaviour. */
    unsigned long long an = 0, bn = 0;
    size_t ai, bi;
    if (ar[i] == '0' || br[i] == '0') {
      for (size_t j = i; j-- > 0 && rune_digit(ar[j]);) {
        if (ar[j] != '0') {
          an = bn = 1;
          break;
        }
      }
    }
    for (ai = i; ai < na && rune_digit(ar[ai]); ai++)
      an = an * 10 + (ar[ai] - '0');
    for (bi = i; bi < nb && rune_digit(br[bi]); bi++)
      bn = bn * 10 + (br[bi] - '0');
    if (an != bn) return (long long)an < (long long)bn ? -1 : 1;
    if (ai != bi) return ai < bi ? -1 : 1;
    return ar[i] < br[i] ? -1 : 1;
  }
  if (na != nb) return na < nb ? -1 : 1;
  /* Equal in the compared prefix: fall back to bytes for a total order. */
  size_t m = ea->n < eb->n ? ea->n : eb->n;
  int c = memcmp(ea->k, eb->k, m);
  return c ? c : (ea->n < eb->n ? -1 : ea->n > eb->n);
}

typedef struct {
  yaml_emitter_t em;
  char *err;
  size_t errlen;
  int failed;
} writer_t;

static int emit(writer_t *w, yaml_event_t *ev) {
  if (w->failed) {
    yaml_event_delete(ev);
    return -1;
  }
  if (!yaml_emitter_emit(&w->em, ev)) {
    w->failed = 1;
    snprintf(w->err, w->errlen, "yaml: %s",
             w->em.problem ? w->em.problem : "cannot emit YAML");
    return -1;
  }
  return 0;
}

static int emit_scalar(writer_t *w, const char *s, size_t n,
                       yaml_scalar_style_t style) {
  yaml_event_t ev;
  if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)n,
                                    1, 1, style)) {
    w->failed = 1;
    snprintf(w->err, w->errlen, "out of memory");
    return -1;
  }
  return emit(w, &ev);
}

/* go-yaml v2 encoder.stringv: literal block for multi-line text, double
 * quotes when the plain text would read back as another type, plain
 * otherwise; the emitter itself falls back to single quotes when plain is
 * not possible (": ", leading "- ", "#", ...). */
static int emit_string(writer_t *w, const char *s, size_t n) {
  yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
  rval_t r;
  if (memchr(s, '\n', n)) {
    style = YAML_LITERAL_SCALAR_STYLE;
  } else {
    resolve_plain(s, n, &r);
    /* Deliberately unlike go-yaml: a plain "<<" would read back as a merge
     * key and lose the data, so it is quoted too. */
    if (r.kind != R_STR || is_timestamp(s, n) || is_base60_float(s, n) ||
        (n == 2 && memcmp(s, "<<", 2) == 0))
      style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
  }
  return emit_scalar(w, s, n, style);
}

static int emit_json(writer_t *w, const json_t *j, int depth) {
  char buf[64];
  int n;
  yaml_event_t ev;
  if (depth > 4 * ML_YAML_MAX_DEPTH) {
    w->failed = 1;
    snprintf(w->err, w->errlen, "yaml: nesting too deep");
    return -1;
  }
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    size_t count = json_object_size(j), i = 0;
    entry_t *es = count ? malloc(count * sizeof *es) : NULL;
    if (count && !es) {
      w->failed = 1;
      snprintf(w->err, w->errlen, "out of memory");
      return -1;
    }
    const char *k;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach((json_t *)j, k, klen, v) {
      es[i].k = k;
      es[i].n = klen;
      es[i].v = v;
      i++;
    }
    if (count) qsort(es, count, sizeof *es, natural_cmp);
    yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                        YAML_BLOCK_MAPPING_STYLE);
    int rc = emit(w, &ev);
    for (i = 0; rc == 0 && i < count; i++) {
      rc = emit_string(w, es[i].k, es[i].n);
      if (rc == 0) rc = emit_json(w, es[i].v, depth + 1);
    }
    free(es);
    if (rc < 0) return rc;
    yaml_mapping_end_event_initialize(&ev);
    return emit(w, &ev);
  }
  case JSON_ARRAY: {
    yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                         YAML_BLOCK_SEQUENCE_STYLE);
    if (emit(w, &ev) < 0) return -1;
    for (size_t i = 0; i < json_array_size(j); i++)
      if (emit_json(w, json_array_get(j, i), depth + 1) < 0) return -1;
    yaml_sequence_end_event_initialize(&ev);
    return emit(w, &ev);
  }
  case JSON_STRING:
    return emit_string(w, json_string_value(j), json_string_length(j));
  case JSON_INTEGER:
    n = snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    return emit_scalar(w, buf, (size_t)n, YAML_PLAIN_SCALAR_STYLE);
  case JSON_REAL: {
    /* kubectl's path is json.Marshal then go-yaml: an integral float is
     * written without fraction and read back as an integer. */
    double f = json_real_value(j);
    if (f == floor(f) && f >= -9223372036854775808.0 &&
        f < 9223372036854775808.0)
      n = snprintf(buf, sizeof buf, "%lld", (long long)f);
    else if (f == floor(f) && f >= 0 && f < 18446744073709551616.0)
      n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)f);
    else
      n = ml_go_format_float(f, 64, buf, sizeof buf);
    return emit_scalar(w, buf, (size_t)n, YAML_PLAIN_SCALAR_STYLE);
  }
  case JSON_TRUE:
    return emit_scalar(w, "true", 4, YAML_PLAIN_SCALAR_STYLE);
  case JSON_FALSE:
    return emit_scalar(w, "false", 5, YAML_PLAIN_SCALAR_STYLE);
  case JSON_NULL:
  default:
    return emit_scalar(w, "null", 4, YAML_PLAIN_SCALAR_STYLE);
  }
}

char *ml_json_to_yaml(const json_t *j, size_t *outlen, char *err,
                      size_t errlen) {
  writer_t w;
  outbuf_t o = {NULL, 0, 0};
  char dummy[1];
  memset(&w, 0, sizeof w);
  w.err = errlen ? err : dummy;
  w.errlen = errlen ? errlen : sizeof dummy;
  w.err[0] = '\0';
  if (!yaml_emitter_initialize(&w.em)) {
    snprintf(w.err, w.errlen, "out of memory");
    return NULL;
  }
  yaml_emitter_set_output(&w.em, write_handler, &o);
  yaml_emitter_set_unicode(&w.em, 1);
  yaml_emitter_set_indent(&w.em, 2);
  yaml_emitter_set_width(&w.em, 80);
  yaml_emitter_set_break(&w.em, YAML_LN_BREAK);
  yaml_event_t ev;
  yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
  emit(&w, &ev);
  yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
  emit(&w, &ev);
  emit_json(&w, j, 0);
  yaml_document_end_event_initialize(&ev, 1);
  emit(&w, &ev);
  yaml_stream_end_event_initialize(&ev);
  emit(&w, &ev);
  yaml_emitter_delete(&w.em);
  if (w.failed || !o.buf) {
    if (!w.failed) snprintf(w.err, w.errlen, "out of memory");
    free(o.buf);
    return NULL;
  }
  /* libyaml closes a document whose root is a plain scalar with "..."; go-
   * yaml clears that flag before the stream ends, so drop the marker. */
  if (o.len >= 4 && memcmp(o.buf + o.len - 4, "...\n", 4) == 0 &&
      (o.len == 4 || o.buf[o.len - 5] == '\n')) {
    o.len -= 4;
    o.buf[o.len] = '\0';
  }
  if (outlen) *outlen = o.len;
  return o.buf;
}

/* }====== */
