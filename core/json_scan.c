/* json_scan: skipping JSON values and finding an object's member by name
 * without building a tree (see json_scan.h). Bounds are checked on every
 * byte: the input may be anything. */
#include "json_scan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* Deep enough for any Kubernetes object, shallow enough for the C stack. */
#define MAX_DEPTH 512

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* p at the opening quote; returns one past the closing quote. */
static const char *skip_string(const char *p, const char *end) {
  for (p++; p < end; p++) {
    if (*p == '"') return p + 1;
    if (*p == '\\') {
      if (++p >= end) return NULL;
    } else if ((unsigned char)*p < 0x20) {
      return NULL;
    }
  }
  return NULL;
}

static const char *skip_literal(const char *p, const char *end, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(end - p) < n || memcmp(p, w, n) != 0) return NULL;
  return p + n;
}

static const char *skip_number(const char *p, const char *end) {
  const char *s = p;
  if (p < end && *p == '-') p++;
  const char *digits = p;
  while (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' ||
                     *p == '+' || *p == '-'))
    p++;
  return p > digits && p > s ? p : NULL;
}

static const char *skip_value(const char *p, const char *end, int depth);

/* p after '{' or '['; close is the matching bracket. */
static const char *skip_container(const char *p, const char *end, int depth, char close) {
  if (depth > MAX_DEPTH) return NULL;
  p = skip_ws(p, end);
  if (p < end && *p == close) return p + 1;
  for (;;) {
    if (close == '}') {
      p = skip_ws(p, end);
      if (p >= end || *p != '"' || !(p = skip_string(p, end))) return NULL;
      p = skip_ws(p, end);
      if (p >= end || *p++ != ':') return NULL;
    }
    if (!(p = skip_value(p, end, depth + 1))) return NULL;
    p = skip_ws(p, end);
    if (p >= end) return NULL;
    if (*p == close) return p + 1;
    if (*p++ != ',') return NULL;
  }
}

static const char *skip_value(const char *p, const char *end, int depth) {
  p = skip_ws(p, end);
  if (p >= end) return NULL;
  switch (*p) {
  case '"': return skip_string(p, end);
  case '{': return skip_container(p + 1, end, depth, '}');
  case '[': return skip_container(p + 1, end, depth, ']');
  case 't': return skip_literal(p, end, "true");
  case 'f': return skip_literal(p, end, "false");
  case 'n': return skip_literal(p, end, "null");
  default: return skip_number(p, end);
  }
}

const char *ml_json_skip(const char *p, const char *end) {
  return p && p <= end ? skip_value(p, end, 0) : NULL;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Whether the quoted name s..e (quotes excluded) decodes to the ASCII key.
 * Names are compared after unescaping, so "\u006detadata" is "metadata". */
static bool name_is(const char *s, const char *e, const char *key) {
  for (; s < e; s++, key++) {
    char c = *s;
    if (c == '\\') {
      if (++s >= e) return false;
      switch (*s) {
      case 'u': {
        if (e - s < 5) return false;
        int v = 0;
        for (int i = 1; i <= 4; i++) {
          int h = hexval(s[i]);
          if (h < 0) return false;
          v = v * 16 + h;
        }
        if (v >= 0x80) return false; /* the key is ASCII */
        c = (char)v;
        s += 4;
        break;
      }
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      default: c = *s; break; /* \" \\ \/ */
      }
    }
    if (*key == '\0' || c != *key) return false;
  }
  return *key == '\0';
}

/* Walks the members of the object `text` in order, handing each name
 * (between its quotes, escapes kept) and value to `visit`, which returns
 * true to stop there. @return 1 stopped, 0 at the object's end, ML_EPARSE. */
typedef bool (*member_fn)(void *ud, const char *name, const char *name_end,
                          const char *v, const char *vend);

static int each_member(const char *text, size_t len, member_fn visit, void *ud) {
  const char *end = text + len;
  const char *p = skip_ws(text, end);
  if (p >= end || *p++ != '{') return ML_EPARSE;
  p = skip_ws(p, end);
  if (p < end && *p == '}') return 0;
  for (;;) {
    p = skip_ws(p, end);
    if (p >= end || *p != '"') return ML_EPARSE;
    const char *name = p + 1, *after = skip_string(p, end);
    if (!after) return ML_EPARSE;
    p = skip_ws(after, end);
    if (p >= end || *p++ != ':') return ML_EPARSE;
    const char *v = skip_ws(p, end), *vend = skip_value(v, end, 1);
    if (!vend) return ML_EPARSE;
    if (visit(ud, name, after - 1, v, vend)) return 1;
    p = skip_ws(vend, end);
    if (p >= end) return ML_EPARSE;
    if (*p == '}') return 0;
    if (*p++ != ',') return ML_EPARSE;
  }
}

typedef struct {
  const char *text;
  const char *const *keys;
  size_t n, *off, *vlen;
  bool stop; /* at the first key found (ml_json_member) */
} member_find_t;

/* Records the value of the first key in f->keys that names this member and
 * is not found yet (the first member of a name counts). */
static bool note_member(void *ud, const char *name, const char *name_end,
                        const char *v, const char *vend) {
  member_find_t *f = ud;
  for (size_t i = 0; i < f->n; i++)
    if (f->off[i] == (size_t)-1 && name_is(name, name_end, f->keys[i])) {
      f->off[i] = (size_t)(v - f->text);
      f->vlen[i] = (size_t)(vend - v);
      return f->stop;
    }
  return false;
}

int ml_json_member(const char *text, size_t len, const char *key, size_t *off,
                   size_t *vlen) {
  *off = (size_t)-1;
  *vlen = 0;
  member_find_t f = {text, &key, 1, off, vlen, true};
  int rc = each_member(text, len, note_member, &f);
  return rc == 1 ? 0 : rc == 0 ? ML_ENOTFOUND : rc;
}

int ml_json_members(const char *text, size_t len, const char *const *keys, size_t n,
                    size_t *off, size_t *vlen) {
  for (size_t i = 0; i < n; i++) {
    off[i] = (size_t)-1;
    vlen[i] = 0;
  }
  /* The whole object is read, so malformed text is found even after the
   * keys (ml_json_member stops at its key). */
  member_find_t f = {text, keys, n, off, vlen, false};
  int rc = each_member(text, len, note_member, &f);
  return rc < 0 ? rc : 0;
}

/* {====== equality of two texts */

/* The kinds json_equal tells apart; reals and integers are distinct. */
static int kind_of(const char *p, const char *e) {
  switch (*p) {
  case '"': return 's';
  case '{': return 'o';
  case '[': return 'a';
  case 't': case 'f': case 'n': return 'l';
  }
  for (const char *q = p; q < e; q++)
    if (*q == '.' || *q == 'e' || *q == 'E') return 'r';
  return 'i';
}

/* An integer token's value; false when it does not fit (or is odd). */
static bool int_value(const char *p, const char *e, long long *out) {
  bool neg = p < e && *p == '-';
  if (neg) p++;
  if (p == e || e - p > 18) return false;
  long long v = 0;
  for (; p < e; p++) {
    if (*p < '0' || *p > '9') return false;
    v = v * 10 + (*p - '0');
  }
  *out = neg ? -v : v;
  return true;
}

static bool real_value(const char *p, const char *e, double *out) {
  char buf[64];
  if (e - p >= (ptrdiff_t)sizeof buf) return false;
  memcpy(buf, p, (size_t)(e - p));
  buf[e - p] = '\0';
  char *end;
  *out = strtod(buf, &end);
  return *end == '\0';
}

static int eq_value(const char *a, const char *ae, const char *b, const char *be,
                    int depth);

/* Finds member `name` (the raw quoted bytes n..ne) of the object whose
 * members start at p (after '{'); *v..*ve its value. */
static bool find_member(const char *p, const char *end, const char *n, const char *ne,
                        const char **v, const char **ve) {
  size_t nlen = (size_t)(ne - n);
  p = skip_ws(p, end);
  if (p < end && *p == '}') return false;
  for (;;) {
    p = skip_ws(p, end);
    const char *k = p, *ke = p < end && *p == '"' ? skip_string(p, end) : NULL;
    if (!ke) return false;
    p = skip_ws(ke, end);
    if (p >= end || *p++ != ':') return false;
    const char *x = skip_ws(p, end), *xe = skip_value(x, end, 1);
    if (!xe) return false;
    if ((size_t)(ke - k) == nlen && memcmp(k, n, nlen) == 0) {
      *v = x;
      *ve = xe;
      return true;
    }
    p = skip_ws(xe, end);
    if (p >= end || *p++ != ',') return false;
  }
}

/* Members or elements of the container a..ae (b..be) compared; both are
 * of kind `k` ('o' or 'a'). */
/* Whether the quoted name n..ne is one of `skip` (plain names). */
static bool skipped(const char *n, const char *ne, const char *const *skip) {
  for (; skip && *skip; skip++) {
    size_t l = strlen(*skip);
    if ((size_t)(ne - n) == l + 2 && memcmp(n + 1, *skip, l) == 0) return true;
  }
  return false;
}

/* skip: names of members left out on both sides (NULL: none). */
static int eq_container(const char *a, const char *ae, const char *b, const char *be,
                        char k, int depth, const char *const *skip) {
  if (depth > MAX_DEPTH) return -1;
  char close = k == 'o' ? '}' : ']';
  const char *pa = skip_ws(a + 1, ae), *pb = skip_ws(b + 1, be);
  bool undecided = false;
  size_t na = 0, nb = 0;
  /* b's members in step with a's: the common case is the same order. */
  const char *cb = pb;
  if (pa < ae && *pa == close) pa = NULL;
  while (pa) {
    const char *x, *xe, *y = NULL, *ye = NULL;
    const char *n = NULL, *ne = NULL;
    if (k == 'o') {
      n = skip_ws(pa, ae);
      ne = n < ae && *n == '"' ? skip_string(n, ae) : NULL;
      if (!ne) return -1;
      pa = skip_ws(ne, ae);
      if (pa >= ae || *pa++ != ':') return -1;
    }
    x = skip_ws(pa, ae);
    if (!(xe = skip_value(x, ae, depth + 1))) return -1;
    if (k == 'o' && skipped(n, ne, skip)) {
      /* Left out: b's cursor stays where it is. */
      pa = skip_ws(xe, ae);
      if (pa >= ae) return -1;
      if (*pa == close) pa = NULL;
      else if (*pa++ != ',') return -1;
      continue;
    }
    na++;
    /* b's value to compare with */
    if (cb) {
      cb = skip_ws(cb, be);
      if (cb < be && *cb == close) {
        cb = NULL;
      } else {
        const char *m = cb, *me = NULL;
        if (k == 'o') {
          me = m < be && *m == '"' ? skip_string(m, be) : NULL;
          if (!me) return -1;
          cb = skip_ws(me, be);
          if (cb >= be || *cb++ != ':') return -1;
        }
        const char *yv = skip_ws(cb, be), *yve = skip_value(yv, be, depth + 1);
        if (!yve) return -1;
        cb = skip_ws(yve, be);
        if (cb < be && *cb == ',') cb++;
        else cb = NULL;
        if (k == 'o' && skipped(m, me, skip) && cb) {
          /* b's left-out member: step over it to the next one. */
          cb = skip_ws(cb, be);
          const char *m2 = cb, *me2 = m2 < be && *m2 == '"' ? skip_string(m2, be) : NULL;
          if (!me2) return -1;
          cb = skip_ws(me2, be);
          if (cb >= be || *cb++ != ':') return -1;
          yv = skip_ws(cb, be);
          if (!(yve = skip_value(yv, be, depth + 1))) return -1;
          m = m2;
          me = me2;
          cb = skip_ws(yve, be);
          if (cb < be && *cb == ',') cb++;
          else cb = NULL;
        }
        if (k == 'a' || ((size_t)(me - m) == (size_t)(ne - n) && memcmp(m, n, (size_t)(ne - n)) == 0)) {
          y = yv;
          ye = yve;
        }
      }
    }
    if (!y) {
      if (k == 'a') return 0; /* b is shorter */
      /* Not in b: different, unless the name is escaped (b may spell it
       * otherwise). */
      if (!find_member(b + 1, be, n, ne, &y, &ye)) {
        if (!memchr(n, '\\', (size_t)(ne - n))) return 0;
        undecided = true;
      }
    }
    if (y) {
      int r = eq_value(x, xe, y, ye, depth + 1);
      if (r == 0) return 0;
      if (r < 0) undecided = true;
    }
    pa = skip_ws(xe, ae);
    if (pa >= ae) return -1;
    if (*pa == close) pa = NULL;
    else if (*pa++ != ',') return -1;
  }
  /* Count b's members. */
  pb = skip_ws(pb, be);
  if (pb < be && *pb != close) {
    for (;;) {
      bool left_out = false;
      if (k == 'o') {
        const char *me = pb < be && *pb == '"' ? skip_string(pb, be) : NULL;
        if (!me) return -1;
        left_out = skipped(pb, me, skip);
        pb = skip_ws(me, be);
        if (pb >= be || *pb++ != ':') return -1;
      }
      const char *yve = skip_value(pb, be, depth + 1);
      if (!yve) return -1;
      if (!left_out) nb++;
      pb = skip_ws(yve, be);
      if (pb >= be) return -1;
      if (*pb == close) break;
      if (*pb++ != ',') return -1;
    }
  }
  if (na != nb) return 0;
  return undecided ? -1 : 1;
}

static int eq_value(const char *a, const char *ae, const char *b, const char *be,
                    int depth) {
  a = skip_ws(a, ae);
  b = skip_ws(b, be);
  if (a >= ae || b >= be) return -1;
  size_t al = (size_t)(ae - a), bl = (size_t)(be - b);
  int ka = kind_of(a, ae), kb = kind_of(b, be);
  if (ka != kb) return 0;
  if (al == bl && memcmp(a, b, al) == 0) return 1;
  switch (ka) {
  case 's':
    /* The same string escaped two ways is possible only with escapes. */
    return memchr(a, '\\', al) || memchr(b, '\\', bl) ? -1 : 0;
  case 'l':
    return 0;
  case 'i': {
    long long x, y;
    if (!int_value(a, ae, &x) || !int_value(b, be, &y)) return -1;
    return x == y;
  }
  case 'r': {
    double x, y;
    if (!real_value(a, ae, &x) || !real_value(b, be, &y)) return -1;
    return x == y;
  }
  default:
    return eq_container(a, ae, b, be, (char)ka, depth, NULL);
  }
}

/* {====== the same in one walk of both texts */

/* Moves *p (in a container after '{' or '[', or after a member) to the
 * next member's value that `skip` does not leave out; *k..*ke its quoted
 * name (objects). @return 1 at a value, 0 past the closing bracket, -2
 * malformed. */
static int next_item(const char **p, const char *end, char close, int depth,
                     const char *const *skip, const char **k, const char **ke) {
  const char *q = *p;
  for (;;) {
    q = skip_ws(q, end);
    if (q >= end) return -2;
    if (*q == close) {
      *p = q + 1;
      return 0;
    }
    if (*q == ',') q = skip_ws(q + 1, end);
    if (close == ']') {
      *p = q;
      return 1;
    }
    if (q >= end || *q != '"') return -2;
    const char *n = q, *ne = skip_string(q, end);
    if (!ne) return -2;
    q = skip_ws(ne, end);
    if (q >= end || *q++ != ':') return -2;
    if (!skipped(n, ne, skip)) {
      *k = n;
      *ke = ne;
      *p = q;
      return 1;
    }
    if (!(q = skip_value(q, end, depth + 1))) return -2;
  }
}

/* Compares the values at *pa and *pb walking both once while their
 * members come in the same order (eq_container takes over where they do
 * not), and leaves *pa, *pb past them unless the answer is 0 or -2.
 * @return 1, 0, -1 (undecided), -2 (malformed). */
static int walk(const char **pa, const char *ae, const char **pb, const char *be, int depth,
                const char *const *skip) {
  const char *a = skip_ws(*pa, ae), *b = skip_ws(*pb, be);
  if (a >= ae || b >= be || depth > MAX_DEPTH) return -2;
  if ((*a == '{' || *a == '[') && *a == *b) {
    char close = *a == '{' ? '}' : ']';
    const char *a0 = a, *b0 = b;
    a++;
    b++;
    bool undecided = false;
    for (;;) {
      const char *ka = NULL, *kae = NULL, *kb = NULL, *kbe = NULL;
      int ra = next_item(&a, ae, close, depth, skip, &ka, &kae);
      int rb = next_item(&b, be, close, depth, skip, &kb, &kbe);
      if (ra == -2 || rb == -2) return -2;
      if (ra == 0 && rb == 0) break;
      if (ra != rb && close == ']') return 0; /* lengths differ */
      if (ra != rb || (close == '}' && ((size_t)(kae - ka) != (size_t)(kbe - kb) ||
                                        memcmp(ka, kb, (size_t)(kae - ka)) != 0))) {
        /* Another member order (or count): compare by name. */
        const char *ea = skip_value(a0, ae, depth), *eb = skip_value(b0, be, depth);
        if (!ea || !eb) return -2;
        int r = eq_container(a0, ea, b0, eb, close == '}' ? 'o' : 'a', depth, skip);
        if (r == 0) return 0;
        *pa = ea;
        *pb = eb;
        return r < 0 || undecided ? -1 : 1;
      }
      int r = walk(&a, ae, &b, be, depth + 1, NULL);
      if (r == 0 || r == -2) return r;
      if (r < 0) undecided = true;
    }
    *pa = a;
    *pb = b;
    return undecided ? -1 : 1;
  }
  const char *ea = skip_value(a, ae, depth), *eb = skip_value(b, be, depth);
  if (!ea || !eb) return -2;
  *pa = ea;
  *pb = eb;
  return eq_value(a, ea, b, eb, depth);
}

static int walk_all(const char *a, size_t alen, const char *b, size_t blen,
                    const char *const *skip) {
  const char *pa = a, *pb = b;
  int r = walk(&pa, a + alen, &pb, b + blen, 0, skip);
  return r == -2 ? -1 : r;
}

/* }====== */

int ml_json_equal_text(const char *a, size_t alen, const char *b, size_t blen) {
  return walk_all(a, alen, b, blen, NULL);
}

int ml_json_equal_text_except(const char *a, size_t alen, const char *b, size_t blen,
                              const char *const *skip) {
  const char *ae = a + alen, *be = b + blen;
  a = skip_ws(a, ae);
  b = skip_ws(b, be);
  if (a >= ae || b >= be || *a != '{' || *b != '{') return -1;
  return walk_all(a, (size_t)(ae - a), b, (size_t)(be - b), skip);
}

/* }====== */

/* {====== a quick test for different values */

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* p at the opening quote: FNV-1a of the raw bytes inside; *odd when an
 * escape is among them (the raw text is then not the value's). */
static const char *hash_string(const char *p, const char *end, uint64_t *h, bool *odd) {
  uint64_t x = 0xcbf29ce484222325ull;
  for (p++; p < end; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '"') {
      *h = x;
      return p + 1;
    }
    if (c == '\\') {
      *odd = true;
      if (++p >= end) return NULL;
      x = (x ^ c) * 0x100000001b3ull;
      c = (unsigned char)*p;
    }
    x = (x ^ c) * 0x100000001b3ull;
  }
  return NULL;
}

/* A hash of the value at p that depends only on the value json_equal
 * sees (member order left out), unless *odd is set; one past the value,
 * or NULL when malformed. `skip` as for eq_container, at this level. */
static const char *hash_value(const char *p, const char *end, int depth, const char *const *skip,
                              uint64_t *h, bool *odd) {
  p = skip_ws(p, end);
  if (p >= end || depth > MAX_DEPTH) return NULL;
  switch (*p) {
  case '"': {
    uint64_t x = 0;
    const char *e = hash_string(p, end, &x, odd);
    *h = mix64(x ^ 0x5);
    return e;
  }
  case 't': *h = 0x1111; return skip_literal(p, end, "true");
  case 'f': *h = 0x2222; return skip_literal(p, end, "false");
  case 'n': *h = 0x3333; return skip_literal(p, end, "null");
  case '{':
  case '[': {
    char close = *p == '{' ? '}' : ']';
    uint64_t acc = close == '}' ? 0 : 0x7777, n = 0;
    p = skip_ws(p + 1, end);
    if (p < end && *p == close) {
      *h = mix64(acc ^ close);
      return p + 1;
    }
    for (;;) {
      uint64_t kh = 0, vh = 0;
      bool left_out = false;
      if (close == '}') {
        p = skip_ws(p, end);
        if (p >= end || *p != '"') return NULL;
        const char *k = p;
        if (!(p = hash_string(p, end, &kh, odd))) return NULL;
        left_out = skipped(k, p, skip);
        p = skip_ws(p, end);
        if (p >= end || *p++ != ':') return NULL;
      }
      if (!(p = hash_value(p, end, depth + 1, NULL, &vh, odd))) return NULL;
      if (close == '}') {
        if (!left_out) {
          acc += mix64(kh * 31 + vh); /* commutative: order left out */
          n++;
        }
      } else {
        acc = mix64(acc * 1000003 + vh);
      }
      p = skip_ws(p, end);
      if (p >= end) return NULL;
      if (*p == close) {
        *h = mix64(acc + n * 0x9e3779b97f4a7c15ull + (uint64_t)close);
        return p + 1;
      }
      if (*p++ != ',') return NULL;
    }
  }
  default: {
    const char *e = skip_number(p, end);
    if (!e) return NULL;
    long long v = 0;
    double d = 0;
    if (kind_of(p, e) == 'i') {
      if (!int_value(p, e, &v)) *odd = true;
      *h = mix64((uint64_t)v ^ 0x11);
    } else {
      if (!real_value(p, e, &d)) *odd = true;
      if (d == 0) d = 0; /* -0.0 equals 0.0 */
      uint64_t bits;
      memcpy(&bits, &d, sizeof bits);
      *h = mix64(bits ^ 0x22);
    }
    return e;
  }
  }
}

/* The top level of ml_json_hash: an object's members summed twice, with
 * and without the skipped ones. */
static bool hash_top(const char *p, const char *end, const char *const *skip,
                     ml_json_hash_t *out) {
  p = skip_ws(p, end);
  if (p >= end || *p != '{') {
    uint64_t h;
    if (!hash_value(p, end, 0, NULL, &h, &out->odd)) return false;
    out->all = out->rest = h;
    return true;
  }
  uint64_t all = 0, rest = 0, n_all = 0, n_rest = 0;
  p = skip_ws(p + 1, end);
  if (p < end && *p == '}') p = NULL;
  while (p) {
    uint64_t kh = 0, vh = 0;
    p = skip_ws(p, end);
    if (p >= end || *p != '"') return false;
    const char *k = p;
    if (!(p = hash_string(p, end, &kh, &out->odd))) return false;
    bool left_out = skipped(k, p, skip);
    p = skip_ws(p, end);
    if (p >= end || *p++ != ':') return false;
    if (!(p = hash_value(p, end, 1, NULL, &vh, &out->odd))) return false;
    uint64_t m = mix64(kh * 31 + vh);
    all += m;
    n_all++;
    if (!left_out) {
      rest += m;
      n_rest++;
    }
    p = skip_ws(p, end);
    if (p >= end) return false;
    if (*p == '}') break;
    if (*p++ != ',') return false;
  }
  out->all = mix64(all + n_all * 0x9e3779b97f4a7c15ull + '}');
  out->rest = mix64(rest + n_rest * 0x9e3779b97f4a7c15ull + '}');
  return true;
}

bool ml_json_hash(const char *text, size_t len, const char *const *skip, ml_json_hash_t *out) {
  out->odd = false;
  out->all = out->rest = 0;
  if (!hash_top(text, text + len, skip, out)) out->odd = true;
  return !out->odd;
}

/* }====== */
