/* json_fields: a recursive walk of JSON text keeping the current member's
 * path in one buffer (cut back after each member), with a name set per
 * object for the duplicate check. Scalars are skipped with json_scan. */
#include "json_fields.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json_read.h"
#include "json_scan.h"
#include "json_write.h"

/* Deeper than the decoders take (512, jansson 2048): malformed here. */
#define MAX_DEPTH 1000

typedef struct {
  const char *p, *end;
  ml_json_buf_t path;
  size_t budget; /* path bytes still allowed to be handed out */
  ml_json_field_fn fn;
  void *ud;
} walk_t;

static int walk_value(walk_t *w, int depth);

static void skip_ws(walk_t *w) {
  while (w->p < w->end &&
         (*w->p == ' ' || *w->p == '\n' || *w->p == '\r' || *w->p == '\t'))
    w->p++;
}

/* Appends the name whose opening quote w->p is past, unescaped. */
static int read_name(walk_t *w) {
  while (w->p < w->end) {
    const char *s = w->p;
    while (s < w->end && *s != '"' && *s != '\\') s++;
    if (!ml_json_buf_put(&w->path, w->p, (size_t)(s - w->p))) return ML_ENOMEM;
    w->p = s;
    if (s >= w->end) break;
    if (*s == '"') {
      w->p++;
      return 0;
    }
    if (w->end - s < 2) break;
    char c = s[1], out = 0;
    w->p = s + 2;
    switch (c) {
    case '"': case '\\': case '/': out = c; break;
    case 'b': out = '\b'; break;
    case 'f': out = '\f'; break;
    case 'n': out = '\n'; break;
    case 'r': out = '\r'; break;
    case 't': out = '\t'; break;
    case 'u': {
      unsigned cp;
      int k = ml_json_read_u(w->p, w->end, &cp);
      if (k <= 0) return ML_EPARSE;
      w->p += k;
      char u[4];
      if (!ml_json_buf_put(&w->path, u, ml_json_utf8_put(u, cp))) return ML_ENOMEM;
      continue;
    }
    default: return ML_EPARSE;
    }
    if (!ml_json_buf_put(&w->path, &out, 1)) return ML_ENOMEM;
  }
  return ML_EPARSE;
}

/* After a member or element: 1 for another, 0 at `close`, ML_EPARSE. */
static int next_item(walk_t *w, char close) {
  skip_ws(w);
  if (w->p >= w->end) return ML_EPARSE;
  char c = *w->p++;
  if (c == ',') return 1;
  return c == close ? 0 : ML_EPARSE;
}

static int emit(walk_t *w, int dup) {
  size_t n = w->path.len;
  if (n > w->budget) return ML_ETOOLARGE;
  w->budget -= n;
  return w->fn(w->ud, w->path.buf ? w->path.buf : "", n, dup);
}

static int walk_object(walk_t *w, int depth) {
  size_t base = w->path.len;
  skip_ws(w);
  if (w->p < w->end && *w->p == '}') {
    w->p++;
    return 0;
  }
  json_t *seen = json_object(); /* the object's names so far */
  if (!seen) return ML_ENOMEM;
  int rc = 0;
  for (;;) {
    skip_ws(w);
    if (w->p >= w->end || *w->p != '"') {
      rc = ML_EPARSE;
      break;
    }
    w->p++;
    /* The first name of the path goes bare; the rest after a dot. */
    if (base > 0 && !ml_json_buf_put(&w->path, ".", 1)) {
      rc = ML_ENOMEM;
      break;
    }
    size_t name_at = w->path.len;
    if ((rc = read_name(w)) != 0) break;
    const char *name = w->path.buf ? w->path.buf + name_at : "";
    size_t nlen = w->path.len - name_at;
    int dup = json_object_getn(seen, name, nlen) != NULL;
    if (!dup && json_object_setn_new_nocheck(seen, name, nlen, json_true()) != 0) {
      rc = ML_ENOMEM;
      break;
    }
    if ((rc = emit(w, dup)) != 0) break;
    skip_ws(w);
    if (w->p >= w->end || *w->p != ':') {
      rc = ML_EPARSE;
      break;
    }
    w->p++;
    if ((rc = walk_value(w, depth + 1)) != 0) break;
    w->path.len = base;
    int more = next_item(w, '}');
    if (more < 0) {
      rc = more;
      break;
    }
    if (!more) break;
  }
  json_decref(seen);
  return rc;
}

static int walk_array(walk_t *w, int depth) {
  size_t base = w->path.len;
  skip_ws(w);
  if (w->p < w->end && *w->p == ']') {
    w->p++;
    return 0;
  }
  for (size_t i = 0;; i++) {
    char idx[32];
    int k = snprintf(idx, sizeof idx, "[%zu]", i);
    if (!ml_json_buf_put(&w->path, idx, (size_t)k)) return ML_ENOMEM;
    int rc = walk_value(w, depth + 1);
    if (rc != 0) return rc;
    w->path.len = base;
    int more = next_item(w, ']');
    if (more <= 0) return more;
  }
}

static int walk_value(walk_t *w, int depth) {
  if (depth > MAX_DEPTH) return ML_EPARSE;
  skip_ws(w);
  if (w->p >= w->end) return ML_EPARSE;
  if (*w->p == '{') {
    w->p++;
    return walk_object(w, depth);
  }
  if (*w->p == '[') {
    w->p++;
    return walk_array(w, depth);
  }
  const char *e = ml_json_skip(w->p, w->end);
  if (!e) return ML_EPARSE;
  w->p = e;
  return 0;
}

int ml_json_fields(const char *text, size_t len, ml_json_field_fn fn, void *ud) {
  walk_t w = {text, text + len, {0}, 8 * len + 4096, fn, ud};
  int rc = walk_value(&w, 0);
  if (rc == 0) {
    skip_ws(&w);
    if (w.p != w.end) rc = ML_EPARSE;
  }
  free(w.path.buf);
  return rc;
}
