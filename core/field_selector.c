/* Kubernetes field selectors (apimachinery pkg/fields ParseSelector):
 * splitting on unescaped commas, the first "!=", "==" or "=" as the
 * operator, value unescaping with Kubernetes' error texts, String() with
 * EscapeValue, and matching against JSON objects by dotted field paths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "field_selector.h"
#include "selector_util.h"

typedef struct {
  char *field;
  char *value; /* unescaped */
  int negate;  /* "!=" */
} term_t;

/* The terms on one field, checked with one read of it: a selector of
 * 20,000 `!=` terms matched against each object of a list term by term
 * held the loop for seconds. */
typedef struct {
  const char *field; /* the first term's */
  const char *eq;    /* a "=" value, NULL when none */
  int eq_conflict;   /* two different "=" values: nothing matches */
  json_t *ne;        /* the "!=" values as keys, NULL when none */
} group_t;

struct ml_fieldsel_s {
  term_t *terms;
  int n;
  group_t *groups;
  int ngroups;
};

void ml_fieldsel_free(ml_fieldsel_t *fs) {
  if (!fs) return;
  for (int i = 0; i < fs->n; i++) {
    free(fs->terms[i].field);
    free(fs->terms[i].value);
  }
  for (int i = 0; i < fs->ngroups; i++) json_decref(fs->groups[i].ne);
  free(fs->groups);
  free(fs->terms);
  free(fs);
}

/* Groups the terms by field. @return 0, or ML_ENOMEM */
static int group_terms(ml_fieldsel_t *fs) {
  fs->groups = calloc(fs->n ? (size_t)fs->n : 1, sizeof *fs->groups);
  json_t *by_field = json_object(); /* field -> group index */
  if (!fs->groups || !by_field) {
    json_decref(by_field);
    return ML_ENOMEM;
  }
  int rc = 0;
  for (int i = 0; i < fs->n && rc == 0; i++) {
    const term_t *t = &fs->terms[i];
    json_t *at = json_object_get(by_field, t->field);
    group_t *g;
    if (at) {
      g = &fs->groups[json_integer_value(at)];
    } else {
      g = &fs->groups[fs->ngroups];
      g->field = t->field;
      if (json_object_set_new_nocheck(by_field, t->field, json_integer(fs->ngroups++)) < 0) {
        rc = ML_ENOMEM;
        break;
      }
    }
    if (!t->negate) {
      if (g->eq && strcmp(g->eq, t->value) != 0) g->eq_conflict = 1;
      g->eq = t->value;
    } else if ((!g->ne && !(g->ne = json_object())) ||
               json_object_set_new_nocheck(g->ne, t->value, json_true()) < 0) {
      rc = ML_ENOMEM;
    }
  }
  json_decref(by_field);
  return rc;
}

/* splitTerms: commas preceded by a backslash stay inside the term. */
static void split_terms(const char *s, ml__strv_t *out) {
  if (*s == '\0') return;
  const char *start = s;
  int in_slash = 0;
  for (const char *p = s; *p; p++) {
    if (in_slash) in_slash = 0;
    else if (*p == '\\') in_slash = 1;
    else if (*p == ',') {
      ml__strv_push(out, ml__xstrndup(start, (size_t)(p - start)));
      start = p + 1;
    }
  }
  ml__strv_push(out, ml__xstrdup(start));
}

static int str_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* UnescapeValue. @return the value, or NULL with *err set. */
static char *unescape(const char *s, char **err) {
  ml__sb_t b = {0};
  int in_slash = 0;
  for (const char *p = s; *p; p++) {
    char c = *p;
    if (in_slash) {
      in_slash = 0;
      if (c == '\\' || c == ',' || c == '=') {
        ml__sb_putc(&b, c);
        continue;
      }
      /* The sequence is the backslash and the whole next rune. */
      size_t w = 1;
      unsigned char u = (unsigned char)c;
      if (u >= 0xC0) w = u >= 0xF0 ? 4 : u >= 0xE0 ? 3 : 2;
      for (size_t i = 1; i < w; i++)
        if (((unsigned char)p[i] & 0xC0) != 0x80) w = i;
      ml__sb_t e = {0};
      ml__sb_puts(&e, "invalid field selector: invalid escape sequence: \\");
      ml__sb_putn(&e, p, w);
      *err = ml__sb_take(&e);
      free(ml__sb_take(&b));
      return NULL;
    }
    if (c == '\\') {
      in_slash = 1;
    } else if (c == ',' || c == '=') {
      ml__sb_t e = {0};
      /* Go prints the rune with %v, i.e. as its number. */
      ml__sb_printf(&e, "invalid field selector: unescaped character in value: %d",
                    c);
      *err = ml__sb_take(&e);
      free(ml__sb_take(&b));
      return NULL;
    } else {
      ml__sb_putc(&b, c);
    }
  }
  if (in_slash) {
    *err = ml__xstrdup("invalid field selector: invalid escape sequence: \\");
    free(ml__sb_take(&b));
    return NULL;
  }
  return ml__sb_take(&b);
}

int ml_fieldsel_parse(const char *text, ml_fieldsel_t **out, char **errmsg) {
  ml__strv_t parts = {0};
  split_terms(text, &parts);
  if (parts.n > 1) qsort(parts.v, parts.n, sizeof *parts.v, str_cmp);
  ml_fieldsel_t *fs = ml__xmalloc(sizeof *fs);
  fs->n = fs->ngroups = 0;
  fs->groups = NULL;
  fs->terms = ml__xmalloc((parts.n ? parts.n : 1) * sizeof *fs->terms);
  char *err = NULL;
  for (size_t i = 0; i < parts.n && !err; i++) {
    const char *part = parts.v[i];
    if (*part == '\0') continue;
    /* The first position where "!=", "==" or "=" starts splits the term;
     * "==" is tried before "=" so no '=' is left on the value. */
    const char *p = part;
    size_t oplen = 0;
    int negate = 0;
    for (; *p; p++) {
      if (p[0] == '!' && p[1] == '=') {
        oplen = 2, negate = 1;
        break;
      }
      if (p[0] == '=') {
        oplen = p[1] == '=' ? 2 : 1;
        break;
      }
    }
    if (oplen == 0) {
      ml__sb_t e = {0};
      ml__sb_printf(&e, "invalid selector: '%s'; can't understand '%s'", text,
                    part);
      err = ml__sb_take(&e);
      break;
    }
    char *value = unescape(p + oplen, &err);
    if (!value) break;
    term_t *t = &fs->terms[fs->n++];
    t->field = ml__xstrndup(part, (size_t)(p - part));
    t->value = value;
    t->negate = negate;
  }
  ml__strv_free(&parts);
  if (!err && group_terms(fs) < 0) err = ml__xstrdup("out of memory");
  if (err) {
    ml_fieldsel_free(fs);
    *out = NULL;
    if (errmsg) *errmsg = err;
    else free(err);
    return ML_EPARSE;
  }
  *out = fs;
  if (errmsg) *errmsg = NULL;
  return 0;
}

int ml_fieldsel_count(const ml_fieldsel_t *fs) { return fs->n; }

const char *ml_fieldsel_key(const ml_fieldsel_t *fs, int i) {
  return i >= 0 && i < fs->n ? fs->terms[i].field : NULL;
}

const char *ml_fieldsel_value(const ml_fieldsel_t *fs, int i) {
  return i >= 0 && i < fs->n ? fs->terms[i].value : NULL;
}

const char *ml_fieldsel_op(const ml_fieldsel_t *fs, int i) {
  if (i < 0 || i >= fs->n) return NULL;
  return fs->terms[i].negate ? "!=" : "=";
}

char *ml_fieldsel_escape(const char *s) {
  ml__sb_t b = {0};
  for (; *s; s++) {
    if (*s == '\\' || *s == ',' || *s == '=') ml__sb_putc(&b, '\\');
    ml__sb_putc(&b, *s);
  }
  return ml__sb_take(&b);
}

char *ml_fieldsel_string(const ml_fieldsel_t *fs) {
  ml__sb_t b = {0};
  for (int i = 0; i < fs->n; i++) {
    char *v = ml_fieldsel_escape(fs->terms[i].value);
    ml__sb_printf(&b, "%s%s%s%s", i ? "," : "", fs->terms[i].field,
                  fs->terms[i].negate ? "!=" : "=", v);
    free(v);
  }
  return ml__sb_take(&b);
}

bool ml_fieldsel_matches(const ml_fieldsel_t *fs, ml_field_get_fn get,
                         void *ud) {
  char buf[64];
  for (int i = 0; i < fs->ngroups; i++) {
    const group_t *g = &fs->groups[i];
    if (g->eq_conflict) return false;
    const char *have = get(ud, g->field, buf, sizeof buf);
    if (!have) have = "";
    if (g->eq && strcmp(have, g->eq) != 0) return false;
    if (g->ne && json_object_get(g->ne, have)) return false;
  }
  return true;
}

/* Walks a dotted path ("status.phase") through nested objects. */
static const char *json_field_get(void *ud, const char *path, char *buf,
                                  size_t buflen) {
  const json_t *cur = ud;
  const char *p = path;
  while (cur && json_is_object(cur)) {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    char *seg = ml__xstrndup(p, len);
    cur = json_object_get(cur, seg);
    free(seg);
    if (!dot) break;
    p = dot + 1;
    if (cur && !json_is_object(cur)) cur = NULL; /* path goes deeper */
  }
  if (!cur || cur == ud) return "";
  switch (json_typeof(cur)) {
  case JSON_STRING: return json_string_value(cur);
  case JSON_INTEGER:
    snprintf(buf, buflen, "%" JSON_INTEGER_FORMAT, json_integer_value(cur));
    return buf;
  case JSON_REAL:
    /* the shortest text that reads back as the same number */
    for (int prec = 1; prec <= 17; prec++) {
      snprintf(buf, buflen, "%.*g", prec, json_real_value(cur));
      if (strtod(buf, NULL) == json_real_value(cur)) break;
    }
    return buf;
  case JSON_TRUE: return "true";
  case JSON_FALSE: return "false";
  default: return ""; /* null, objects and lists have no field text */
  }
}

bool ml_fieldsel_matches_json(const ml_fieldsel_t *fs, const json_t *obj) {
  return ml_fieldsel_matches(fs, json_field_get, (void *)obj);
}
