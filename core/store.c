/* Object store operations (see store.h): the apiserver's metadata rules for
 * create, update, delete, plus get, list with selectors and continue
 * tokens, open/close and the per-turn commit. The index lives in
 * store_index.c, the watch window and watchers in store_watch.c, and
 * persistence behind the backend vtable (store_backend.h). */
#include "store.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "err.h"
#include "field_selector.h"
#include "json_scan.h"
#include "json_write.h"
#include "log.h"
#include "selector.h"
#include "store_internal.h"

#define DEFAULT_WINDOW 10000
#define DEFAULT_WINDOW_SECONDS 300
/* generateName: 63 - 5 random characters, as names.SimpleNameGenerator. */
#define MAX_GENERATED_BASE 58
#define GENERATE_ATTEMPTS 8
#define CONTINUE_VERSION "meta.k8s.io/v1"

/* {====== texts, errors, clock, randomness */

ml_store_text_t *ml_store_text_ref(ml_store_text_t *t) {
  t->refs++;
  return t;
}

void ml_store_text_unref(ml_store_text_t *t) {
  if (t && --t->refs == 0) free(t);
}

const char *ml_store_event_name(int type) {
  switch (type) {
    case ML_STORE_ADDED: return "ADDED";
    case ML_STORE_MODIFIED: return "MODIFIED";
    case ML_STORE_DELETED: return "DELETED";
  }
  return "CLOSED";
}

void ml_store_result_clear(ml_store_result_t *r) {
  json_decref(r->obj);
  ml_store_text_unref(r->text);
  memset(r, 0, sizeof *r);
}

int ml__store_fail(ml_store_t *s, int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  va_end(ap);
  free(s->err);
  s->err = msg;
  return err;
}

const char *ml_store_last_error(const ml_store_t *s) {
  return s->err ? s->err : "";
}

typedef struct {
  ml_store_text_t *t;
  size_t cap;
} textbuf_t;

static int text_append(const char *buf, size_t size, void *data) {
  textbuf_t *b = data;
  if (b->t->len + size + 1 > b->cap) {
    size_t cap = b->cap * 2;
    while (cap < b->t->len + size + 1) cap *= 2;
    ml_store_text_t *t = realloc(b->t, sizeof *t + cap);
    if (!t) return -1;
    b->t = t;
    b->cap = cap;
  }
  memcpy(b->t->data + b->t->len, buf, size);
  b->t->len += size;
  return 0;
}

static ml_store_text_t *serialize_jansson(const json_t *doc) {
  textbuf_t b = {malloc(sizeof(ml_store_text_t) + 512), 512};
  if (!b.t) return NULL;
  b.t->refs = 1;
  b.t->len = 0;
  if (json_dump_callback(doc, text_append, &b, JSON_COMPACT) != 0) {
    free(b.t);
    return NULL;
  }
  b.t->data[b.t->len] = '\0';
  ml_store_text_t *t = realloc(b.t, sizeof *t + b.t->len + 1);
  return t ? t : b.t;
}

/* The ml_store_text_t a buffer became: its text was written after
 * offsetof(ml_store_text_t, data) bytes kept for the header, and one more
 * byte is reserved for the NUL. */
static ml_store_text_t *text_of_buf(ml_json_buf_t *b) {
  ml_store_text_t *t = (ml_store_text_t *)b->buf;
  t->refs = 1;
  t->len = b->len - offsetof(ml_store_text_t, data);
  t->data[t->len] = '\0';
  return t;
}

ml_store_text_t *ml__store_serialize(const json_t *doc) {
  /* The text is written after the header's room in one buffer, which then
   * becomes the ml_store_text_t. */
  const size_t head = offsetof(ml_store_text_t, data);
  ml_json_buf_t b = {malloc(head + 1024), head + 1024, head};
  if (!b.buf) return NULL;
  if (!ml_json_write_tree(&b, doc) || !ml_json_buf_reserve(&b, 1)) {
    /* Reals and the rest json_write declines: jansson's own dump. */
    free(b.buf);
    return serialize_jansson(doc);
  }
  ml_store_text_t *t = text_of_buf(&b);
  /* One serialized copy per object is most of the store's memory: keep
   * exactly what it needs. */
  ml_store_text_t *fit = realloc(t, head + t->len + 1);
  return fit ? fit : t;
}

int64_t ml__store_now_ms(const ml_store_t *s) {
  if (s->fixed_time) return s->fixed_time * 1000;
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  return tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int64_t now_seconds(const ml_store_t *s) {
  return ml__store_now_ms(s) / 1000;
}

void ml_store_set_time(ml_store_t *s, int64_t unix_seconds) {
  s->fixed_time = unix_seconds;
}

void ml_store_set_seed(ml_store_t *s, uint64_t seed) { s->seed = seed; }

static void format_time(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Parses the RFC 3339 form format_time writes (fractions are ignored). */
static bool parse_time(const char *s, int64_t *out) {
  struct tm tm = {0};
  if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
    return false;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  *out = (int64_t)timegm(&tm);
  return true;
}

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void random_bytes(ml_store_t *s, unsigned char *buf, size_t n) {
  if (s->seed) {
    for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)splitmix64(&s->seed);
    return;
  }
  /* One getrandom call per 256 bytes, not one per uid. */
  if (s->pool_left < n) {
    if (uv_random(NULL, NULL, s->pool, sizeof s->pool, 0, NULL) != 0) {
      /* Never expected on Linux; fall back to a time-seeded PRNG. */
      uint64_t st = uv_hrtime() ^ (uint64_t)(uintptr_t)s;
      for (size_t i = 0; i < sizeof s->pool; i++)
        s->pool[i] = (unsigned char)splitmix64(&st);
    }
    s->pool_left = sizeof s->pool;
  }
  s->pool_left -= n;
  memcpy(buf, s->pool + s->pool_left, n);
}

static void new_uid(ml_store_t *s, char out[37]) {
  unsigned char b[16];
  random_bytes(s, b, sizeof b);
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  static const char hex[] = "0123456789abcdef";
  char *p = out;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
    *p++ = hex[b[i] >> 4];
    *p++ = hex[b[i] & 15];
  }
  *p = '\0';
}

void ml_store_new_uid(ml_store_t *s, char out[37]) { new_uid(s, out); }

/* }====== */

/* {====== selectors */

int ml__store_selectors(ml_store_t *s, const char *label, const char *field,
                        void **lsel, void **fsel) {
  *lsel = *fsel = NULL;
  char *msg = NULL;
  if (label && *label) {
    ml_selector_t *sel = NULL;
    int rc = ml_selector_parse(label, &sel, &msg);
    if (rc < 0) {
      ml__store_fail(s, ML_EINVALID, "%s",
                     msg ? msg : "invalid label selector");
      free(msg);
      return ML_EINVALID;
    }
    *lsel = sel;
  }
  if (field && *field) {
    ml_fieldsel_t *fs = NULL;
    int rc = ml_fieldsel_parse(field, &fs, &msg);
    if (rc < 0) {
      ml__store_fail(s, ML_EINVALID, "%s",
                     msg ? msg : "invalid field selector");
      free(msg);
      ml_selector_free(*lsel);
      *lsel = NULL;
      return ML_EINVALID;
    }
    *fsel = fs;
  }
  return 0;
}

bool ml__store_matches(void *lsel, void *fsel, const json_t *doc) {
  if (lsel) {
    const json_t *labels =
        json_object_get(json_object_get(doc, "metadata"), "labels");
    if (!ml_selector_matches_json(lsel, labels)) return false;
  }
  return !fsel || ml_fieldsel_matches_json(fsel, doc);
}

void ml__store_selectors_free(void *lsel, void *fsel) {
  if (lsel) ml_selector_free(lsel);
  if (fsel) ml_fieldsel_free(fsel);
}

/* }====== */

/* {====== metadata helpers */

static const char *meta_str(const json_t *meta, const char *key) {
  return json_string_value(json_object_get(meta, key));
}

static bool has_finalizers(const json_t *meta) {
  return json_array_size(json_object_get(meta, "finalizers")) > 0;
}

static void set_rv(json_t *meta, uint64_t rv) {
  char buf[24];
  snprintf(buf, sizeof buf, "%" PRIu64, rv);
  json_object_set_new(meta, "resourceVersion", json_string(buf));
}

/* Copies `key` of `from` into `to`, or removes it from `to` if absent. */
static void keep_field(json_t *to, const json_t *from, const char *key) {
  json_t *v = json_object_get(from, key);
  if (v)
    json_object_set(to, key, v);
  else
    json_object_del(to, key);
}

/* A shallow copy of a stored document with its own metadata object, so the
 * copy's metadata can change while everything else stays shared. */
static json_t *copy_for_meta(const json_t *doc) {
  json_t *c = json_copy((json_t *)doc);
  if (!c) return NULL;
  json_t *meta = json_copy(json_object_get(doc, "metadata"));
  if (!meta) meta = json_object();
  json_object_set_new(c, "metadata", meta);
  return c;
}

bool ml__store_entry_matches(const ml__store_entry_t *e, void *lsel,
                             void *fsel) {
  if (lsel && !ml_selector_matches_json(lsel, e->labels)) return false;
  if (!fsel) return true;
  json_t *doc = ml__store_entry_doc(e);
  bool match = doc && ml_fieldsel_matches_json(fsel, doc);
  json_decref(doc);
  return match;
}

/* True if anything besides metadata and status differs: the spec changed
 * and generation moves (the rule of the apiserver's strategies). */
static bool spec_changed(const json_t *a, const json_t *b) {
  json_t *x = json_copy((json_t *)a), *y = json_copy((json_t *)b);
  json_object_del(x, "metadata");
  json_object_del(x, "status");
  json_object_del(y, "metadata");
  json_object_del(y, "status");
  bool changed = !json_equal(x, y);
  json_decref(x);
  json_decref(y);
  return changed;
}

static int not_found(ml_store_t *s, const char *qualified, const char *name) {
  return ml__store_fail(s, ML_ENOTFOUND, "%s \"%s\" not found", qualified,
                        name);
}

/* The entry an update names, or the update's error with its message. The
 * resource is made if unknown: the messages need its qualified name. */
static int entry_to_update(ml_store_t *s, const char *resource, const char *ns,
                           const char *name, ml__store_res_t **r,
                           ml__store_entry_t **e) {
  if (!name || !*name)
    return ml__store_fail(s, ML_EINVALID,
                          "metadata.name: Required value: name is required");
  *r = ml__store_res(s, resource, true);
  if (!*r) return ml__store_fail(s, ML_ENOMEM, "out of memory");
  *e = ml__store_find(*r, ns, name);
  if (!*e) return not_found(s, (*r)->qualified, name);
  return 0;
}

static int conflict(ml_store_t *s, const ml__store_res_t *r, const char *name,
                    const char *why) {
  return ml__store_fail(s, ML_ECONFLICT,
                        "Operation cannot be fulfilled on %s \"%s\": %s",
                        r->qualified, name, why);
}

/* }====== */

/* {====== writes */

static int check_writable(ml_store_t *s) {
  if (s->failed)
    return ml__store_fail(s, ML_EIO,
                          "the store failed to commit earlier and is "
                          "read-only: %s",
                          s->be->errmsg(s->db));
  if (!s->in_txn) {
    if (s->be->begin(s->db) != 0)
      return ml__store_fail(s, ML_EIO, "begin: %s", s->be->errmsg(s->db));
    s->in_txn = true;
  }
  return 0;
}

static int backend_put(ml_store_t *s, ml__store_res_t *r, const char *ns,
                       const char *name, uint64_t rv,
                       const ml_store_text_t *t) {
  int rc = check_writable(s);
  if (rc < 0) return rc;
  if (s->be->put(s->db, r->name, ns, name, rv, t->data, t->len) != 0)
    return ml__store_fail(s, ML_EIO, "write: %s", s->be->errmsg(s->db));
  return 0;
}

static int backend_remove(ml_store_t *s, ml__store_res_t *r, const char *ns,
                          const char *name) {
  int rc = check_writable(s);
  if (rc < 0) return rc;
  if (s->be->remove(s->db, r->name, ns, name) != 0)
    return ml__store_fail(s, ML_EIO, "delete: %s", s->be->errmsg(s->db));
  s->rv_unrecorded = true;
  return 0;
}

static void fill_result(ml_store_result_t *out, json_t *doc,
                        ml_store_text_t *text, bool removed) {
  out->obj = json_incref(doc);
  out->text = ml_store_text_ref(text);
  out->removed = removed;
}

/* Stores `doc` (a new reference, consumed) as the new state of `e`, with
 * resourceVersion rv already set in it; `old` is e's current state parsed
 * (NULL: watchers that need it parse it from the text). */
static int replace(ml_store_t *s, ml__store_res_t *r, ml__store_entry_t *e,
                   json_t *doc, const json_t *old, uint64_t rv,
                   ml_store_result_t *out) {
  ml_store_text_t *text = ml__store_serialize(doc);
  if (!text) {
    json_decref(doc);
    return ml__store_fail(s, ML_ENOMEM, "cannot serialize the object");
  }
  int rc = backend_put(s, r, e->ns, e->name, rv, text);
  if (rc < 0) {
    json_decref(doc);
    ml_store_text_unref(text);
    return rc;
  }
  s->rv = rv;
  ml_store_text_t *old_text = ml_store_text_ref(e->text);
  ml__store_entry_set(e, doc, text);
  e->rv = rv;
  ml__store_emit(s, r, ML_STORE_MODIFIED, rv, doc, text, old, old_text);
  ml_store_text_unref(old_text);
  fill_result(out, doc, text, false);
  json_decref(doc);
  return 0;
}

/* Removes `e` for good; `doc` (consumed) is its last state, whose
 * resourceVersion this sets to the deletion's; `old` as for replace(). */
static int remove_entry(ml_store_t *s, ml__store_res_t *r, ml__store_entry_t *e,
                        json_t *doc, const json_t *old,
                        ml_store_result_t *out) {
  uint64_t rv = s->rv + 1;
  set_rv(json_object_get(doc, "metadata"), rv);
  ml_store_text_t *text = ml__store_serialize(doc);
  if (!text) {
    json_decref(doc);
    return ml__store_fail(s, ML_ENOMEM, "cannot serialize the object");
  }
  int rc = backend_remove(s, r, e->ns, e->name);
  if (rc < 0) {
    json_decref(doc);
    ml_store_text_unref(text);
    return rc;
  }
  s->rv = rv;
  ml__store_unlink(r, e->ns, e->name);
  ml__store_emit(s, r, ML_STORE_DELETED, rv, doc, text, old, e->text);
  fill_result(out, doc, text, true);
  json_decref(doc);
  ml_store_text_unref(text);
  ml__store_entry_free(e);
  return 0;
}

static const char name_alphabet[] = "bcdfghjklmnpqrstvwxz2456789";

static void generate_name(ml_store_t *s, const char *base, char *out) {
  size_t n = strlen(base);
  if (n > MAX_GENERATED_BASE) n = MAX_GENERATED_BASE;
  memcpy(out, base, n);
  unsigned char b[5];
  random_bytes(s, b, sizeof b);
  for (int i = 0; i < 5; i++)
    out[n + (size_t)i] = name_alphabet[b[i] % (sizeof name_alphabet - 1)];
  out[n + 5] = '\0';
}

/* What both create paths decide before the object is written: the
 * checks of the caller's metadata, the name (generated from generateName
 * on demand), uid, resourceVersion and timestamp. */
typedef struct {
  ml__store_res_t *r;
  const char *name; /* the caller's, or genbuf */
  char genbuf[MAX_GENERATED_BASE + 6];
  char uid[37]; /* "" when the caller's uid stays (ML_STORE_KEEP_UID) */
  char rv[24];
  char ts[32];
  uint64_t rvn;
} create_plan_t;

static int create_plan(ml_store_t *s, const char *resource, const char *ns,
                       const ml_store_meta_in_t *in, unsigned flags,
                       create_plan_t *p) {
  if (in->resource_version && *in->resource_version)
    return ml__store_fail(s, ML_EINVALID,
                          "resourceVersion should not be set on objects to "
                          "be created");
  if (*ns && in->ns && *in->ns && strcmp(in->ns, ns) != 0)
    return ml__store_fail(s, ML_EINVALID,
                          "the namespace of the provided object does not "
                          "match the namespace sent on the request");
  const char *name = in->name, *gen = in->generate_name;
  bool generated = !name || !*name;
  if (generated && (!gen || !*gen))
    return ml__store_fail(s, ML_EINVALID,
                          "metadata.name: Required value: name or "
                          "generateName is required");
  p->r = ml__store_res(s, resource, true);
  if (!p->r) return ml__store_fail(s, ML_ENOMEM, "out of memory");
  if (generated) {
    /* Retry on collision, as the apiserver does for generated names. */
    int i;
    for (i = 0; i < GENERATE_ATTEMPTS; i++) {
      generate_name(s, gen, p->genbuf);
      if (!ml__store_find(p->r, ns, p->genbuf)) break;
    }
    if (i == GENERATE_ATTEMPTS)
      return ml__store_fail(s, ML_EEXISTS, "%s \"%s\" already exists",
                            p->r->qualified, p->genbuf);
    name = p->genbuf;
  } else if (ml__store_find(p->r, ns, name)) {
    return ml__store_fail(s, ML_EEXISTS, "%s \"%s\" already exists",
                          p->r->qualified, name);
  }
  p->name = name;
  p->uid[0] = '\0';
  if (!(flags & ML_STORE_KEEP_UID) || !in->uid || !*in->uid) new_uid(s, p->uid);
  p->rvn = s->rv + 1;
  snprintf(p->rv, sizeof p->rv, "%" PRIu64, p->rvn);
  int64_t now = now_seconds(s);
  /* Creates come thousands a second: format each second once. */
  if (now != s->ts_second || !s->ts_text[0]) {
    format_time(now, s->ts_text);
    s->ts_second = now;
  }
  memcpy(p->ts, s->ts_text, sizeof p->ts);
  return 0;
}

/* The last steps of both create paths: persist `text` (consumed) under the
 * plan's key, index it with `labels` (consumed), tell the watchers. `doc`
 * (borrowed) is the object parsed, or NULL when only the text exists. */
static int create_store(ml_store_t *s, const char *ns, create_plan_t *p,
                        const char *name, json_t *doc, ml_store_text_t *text,
                        json_t *labels, int owner_relevant,
                        ml_store_result_t *out) {
  ml__store_entry_t *e = ml__store_entry_new(ns, name);
  if (!e) {
    ml_store_text_unref(text);
    json_decref(labels);
    return ml__store_fail(s, ML_ENOMEM, "out of memory");
  }
  int rc = backend_put(s, p->r, ns, name, p->rvn, text);
  if (rc < 0) {
    ml__store_entry_free(e);
    ml_store_text_unref(text);
    json_decref(labels);
    return rc;
  }
  s->rv = p->rvn;
  ml__store_entry_set_labels(e, text, labels);
  e->rv = p->rvn;
  ml__store_insert(p->r, e);
  ml__store_emit_ns(s, p->r, ML_STORE_ADDED, p->rvn, ns, doc, text, NULL, NULL,
                    owner_relevant);
  fill_result(out, doc, text, false);
  return 0;
}

int ml_store_create(ml_store_t *s, const char *resource, const char *ns,
                    const json_t *obj, unsigned flags, ml_store_result_t *out) {
  memset(out, 0, sizeof *out);
  if (!ns) ns = "";
  if (!json_is_object(obj))
    return ml__store_fail(s, ML_EINVALID, "the object must be a JSON object");
  json_t *meta_in = json_object_get(obj, "metadata");
  if (meta_in && !json_is_object(meta_in))
    return ml__store_fail(s, ML_EINVALID, "metadata: must be an object");
  ml_store_meta_in_t in = {
      .name = meta_str(meta_in, "name"),
      .generate_name = meta_str(meta_in, "generateName"),
      .ns = meta_str(meta_in, "namespace"),
      .resource_version = meta_str(meta_in, "resourceVersion"),
      .uid = meta_str(meta_in, "uid")};
  create_plan_t p;
  int rc = create_plan(s, resource, ns, &in, flags, &p);
  if (rc < 0) return rc;

  /* ML_STORE_TAKE: the caller's document is ours to change. */
  json_t *doc = (flags & ML_STORE_TAKE) ? json_incref((json_t *)obj)
                                        : json_deep_copy(obj);
  if (!doc) return ml__store_fail(s, ML_ENOMEM, "out of memory");
  json_t *meta = json_object_get(doc, "metadata");
  if (!meta) {
    meta = json_object();
    json_object_set_new(doc, "metadata", meta);
  }
  /* The order of these members is the stored text's: the text path
   * (ml_store_create_text) writes the same. */
  json_object_set_new(meta, "name", json_string(p.name));
  /* `name` may have pointed into the document (ML_STORE_TAKE): from here
   * on it is the stored copy's. */
  const char *name = meta_str(meta, "name");
  if (*ns)
    json_object_set_new(meta, "namespace", json_string(ns));
  else
    json_object_del(meta, "namespace");
  if (p.uid[0]) json_object_set_new(meta, "uid", json_string(p.uid));
  json_object_set_new(meta, "resourceVersion", json_string(p.rv));
  if (flags & ML_STORE_GENERATION)
    json_object_set_new(meta, "generation", json_integer(1));
  json_object_set_new(meta, "creationTimestamp", json_string(p.ts));
  json_object_del(meta, "deletionTimestamp");
  json_object_del(meta, "deletionGracePeriodSeconds");

  ml_store_text_t *text = ml__store_serialize(doc);
  if (!text) {
    json_decref(doc);
    return ml__store_fail(s, ML_ENOMEM, "out of memory");
  }
  /* A copy: the parsed document goes back to the caller, who may not
   * share it with the store. A failed copy leaves the labels empty. */
  json_t *labels = json_deep_copy(json_object_get(meta, "labels"));
  rc = create_store(s, ns, &p, name, doc, text, labels, -1, out);
  json_decref(doc);
  return rc;
}

int ml_store_create_text(ml_store_t *s, const char *resource, const char *ns,
                         const ml_store_meta_in_t *in, unsigned flags,
                         ml_store_write_fn write, void *ud,
                         ml_store_result_t *out) {
  memset(out, 0, sizeof *out);
  if (!ns) ns = "";
  /* A declined write leaves the random source as it was, so a seeded
   * store hands out the same uids whichever path wrote. */
  uint64_t seed = s->seed;
  size_t pool_left = s->pool_left;
  create_plan_t p;
  int rc = create_plan(s, resource, ns, in, flags, &p);
  if (rc < 0) return rc;
  ml_store_meta_t m = {.name = p.name,
                       .ns = ns,
                       .uid = p.uid[0] ? p.uid : NULL,
                       .resource_version = p.rv,
                       .generation = (flags & ML_STORE_GENERATION) != 0,
                       .creation_timestamp = p.ts};
  /* The text is written after the header's room in one buffer, which then
   * becomes the ml_store_text_t (as ml__store_serialize does). */
  const size_t head = offsetof(ml_store_text_t, data);
  ml_json_buf_t b = {malloc(head + 1024), head + 1024, head};
  if (!b.buf) return ml__store_fail(s, ML_ENOMEM, "out of memory");
  ml_store_written_t w = {NULL, false};
  if (!write(ud, &m, &b, &w) || !ml_json_buf_reserve(&b, 1)) {
    free(b.buf);
    json_decref(w.labels);
    s->seed = seed;
    s->pool_left = pool_left;
    return ML_STORE_DECLINED;
  }
  ml_store_text_t *text = text_of_buf(&b);
  ml_store_text_t *fit = realloc(text, head + text->len + 1);
  if (fit) text = fit;
  return create_store(s, ns, &p, p.name, NULL, text, w.labels,
                      w.owner_relevant, out);
}

/* The apiserver removes an object during an update only when the update
 * took away its last finalizer and its deletion is due now (grace 0): an
 * object in graceful termination stays until its final delete. */
static bool delete_during_update(const json_t *old_meta, const json_t *meta) {
  if (has_finalizers(meta) || !has_finalizers(old_meta)) return false;
  json_t *grace = json_object_get(meta, "deletionGracePeriodSeconds");
  return json_object_get(meta, "deletionTimestamp") && grace &&
         json_integer_value(grace) == 0;
}

/* ml_store_update once the entry is found; `old` is its state parsed. */
static int update_entry(ml_store_t *s, ml__store_res_t *r,
                        ml__store_entry_t *e, const json_t *old,
                        const json_t *obj, unsigned flags,
                        ml_store_result_t *out);

int ml_store_update(ml_store_t *s, const char *resource, const json_t *obj,
                    unsigned flags, ml_store_result_t *out) {
  memset(out, 0, sizeof *out);
  json_t *meta_in = json_object_get(obj, "metadata");
  if (!json_is_object(obj) || !json_is_object(meta_in))
    return ml__store_fail(s, ML_EINVALID,
                          "the object must be a JSON object with metadata");
  const char *name = meta_str(meta_in, "name");
  const char *ns = meta_str(meta_in, "namespace");
  if (!ns) ns = "";
  ml__store_res_t *r = NULL;
  ml__store_entry_t *e = NULL;
  int rc = entry_to_update(s, resource, ns, name, &r, &e);
  if (rc < 0) return rc;
  json_t *old = ml__store_entry_doc(e);
  if (!old) return ml__store_fail(s, ML_ENOMEM, "out of memory");
  rc = update_entry(s, r, e, old, obj, flags, out);
  json_decref(old);
  return rc;
}

static int update_entry(ml_store_t *s, ml__store_res_t *r,
                        ml__store_entry_t *e, const json_t *old,
                        const json_t *obj, unsigned flags,
                        ml_store_result_t *out) {
  const char *name = e->name;
  const json_t *meta_in = json_object_get(obj, "metadata");
  const json_t *old_meta = json_object_get(old, "metadata");
  const char *rv_in = meta_str(meta_in, "resourceVersion");
  const char *old_rv = meta_str(old_meta, "resourceVersion");
  if (rv_in && *rv_in && strcmp(rv_in, old_rv ? old_rv : "") != 0)
    return conflict(s, r, name,
                    "the object has been modified; please apply your "
                    "changes to the latest version and try again");
  const char *uid_in = meta_str(meta_in, "uid");
  const char *old_uid = meta_str(old_meta, "uid");
  if (uid_in && *uid_in && strcmp(uid_in, old_uid ? old_uid : "") != 0) {
    char why[256];
    snprintf(why, sizeof why,
             "Precondition failed: UID in precondition: %s, UID in object "
             "meta: %s",
             uid_in, old_uid ? old_uid : "");
    return conflict(s, r, name, why);
  }

  json_t *doc, *meta;
  if (flags & ML_STORE_WRITE_STATUS) {
    doc = copy_for_meta(old);
    if (!doc) return ml__store_fail(s, ML_ENOMEM, "out of memory");
    meta = json_object_get(doc, "metadata");
    /* The caller keeps its object: the stored status is a copy. */
    json_t *status = json_object_get(obj, "status");
    if (status)
      json_object_set_new(doc, "status", (flags & ML_STORE_TAKE)
                                             ? json_incref(status)
                                             : json_deep_copy(status));
    else
      json_object_del(doc, "status");
  } else {
    doc = (flags & ML_STORE_TAKE) ? json_incref((json_t *)obj)
                                  : json_deep_copy(obj);
    if (!doc) return ml__store_fail(s, ML_ENOMEM, "out of memory");
    meta = json_object_get(doc, "metadata");
    static const char *const owned[] = {"uid",
                                        "creationTimestamp",
                                        "name",
                                        "namespace",
                                        "deletionTimestamp",
                                        "deletionGracePeriodSeconds",
                                        "generation",
                                        NULL};
    for (const char *const *k = owned; *k; k++) keep_field(meta, old_meta, *k);
    if (flags & ML_STORE_STATUS_SUBRESOURCE) keep_field(doc, old, "status");
    if ((flags & ML_STORE_GENERATION) && spec_changed(old, doc)) {
      json_int_t g =
          json_integer_value(json_object_get(old_meta, "generation"));
      json_object_set_new(meta, "generation", json_integer(g + 1));
    }
  }
  /* Same resourceVersion for the comparison: a no-op writes nothing. */
  json_object_set(meta, "resourceVersion",
                  json_object_get(old_meta, "resourceVersion"));
  if (json_equal(doc, (json_t *)old)) {
    json_decref(doc);
    fill_result(out, (json_t *)old, e->text, false);
    return 0;
  }
  if (delete_during_update(old_meta, meta))
    return remove_entry(s, r, e, doc, old, out);
  uint64_t rv = s->rv + 1;
  set_rv(meta, rv);
  return replace(s, r, e, doc, old, rv, out);
}

/* A string member found by ml_json_members in m (off (size_t)-1: absent):
 * *v..*vlen its content without quotes, NULL when absent. @return false
 * when it is one the text paths leave to the tree path (not a plain
 * string without escapes). */
static bool plain_string(const char *m, size_t off, size_t len, const char **v,
                         size_t *vlen) {
  *v = NULL;
  *vlen = 0;
  if (off == (size_t)-1) return true;
  if (len < 2 || m[off] != '"' || memchr(m + off, '\\', len)) return false;
  *v = m + off + 1;
  *vlen = len - 2;
  return true;
}

static bool span_is(const char *v, size_t vlen, const char *s) {
  return strlen(s) == vlen && (vlen == 0 || memcmp(v, s, vlen) == 0);
}

/* After a text path's backend_put of `text` at rv: the entry takes it and
 * `labels` (a reference handed over), watchers get MODIFIED, `out` the
 * result. @return 0 */
static int text_updated(ml_store_t *s, ml__store_res_t *r,
                        ml__store_entry_t *e, uint64_t rv,
                        ml_store_text_t *text, json_t *labels,
                        ml_store_result_t *out) {
  s->rv = rv;
  ml_store_text_t *old_text = ml_store_text_ref(e->text);
  ml__store_entry_set_labels(e, text, labels);
  e->rv = rv;
  ml__store_emit_ns(s, r, ML_STORE_MODIFIED, rv, e->ns, NULL, text, NULL,
                    old_text, -1);
  ml_store_text_unref(old_text);
  fill_result(out, NULL, text, false);
  return 0;
}

int ml_store_update_status_text(ml_store_t *s, const char *resource,
                                const ml_store_update_in_t *in,
                                ml_store_value_fn status, void *ud,
                                ml_store_result_t *out) {
  memset(out, 0, sizeof *out);
  /* The new status first: what the writer declines (a real, bad UTF-8,
   * a value jansson refuses) goes to the tree path before any check, as
   * ml_store_update's caller converts the whole object first. */
  ml_json_buf_t *sb = &s->scratch;
  sb->len = 0;
  if (!status(ud, sb)) return ML_STORE_DECLINED;
  const char *name = in->name, *ns = in->ns ? in->ns : "";
  ml__store_res_t *r = NULL;
  ml__store_entry_t *e = NULL;
  int rc = entry_to_update(s, resource, ns, name, &r, &e);
  if (rc < 0) return rc;

  /* The old text's metadata, its resourceVersion and uid, and its status,
   * found by scanning (no parse). */
  const ml_store_text_t *ot = e->text;
  const char *t = ot->data;
  static const char *const top_keys[] = {"metadata", "status"};
  static const char *const meta_keys[] = {"resourceVersion", "uid"};
  size_t toff[2], tlen[2], moff[2], mlen[2];
  if (ot->len < 2 || t[ot->len - 1] != '}' ||
      ml_json_members(t, ot->len, top_keys, 2, toff, tlen) != 0 || toff[0] == (size_t)-1 ||
      t[toff[0]] != '{' || ml_json_members(t + toff[0], tlen[0], meta_keys, 2, moff, mlen) != 0)
    return ML_STORE_DECLINED;
  const char *m = t + toff[0], *old_rv, *old_uid;
  size_t rvlen, uidlen;
  if (!plain_string(m, moff[0], mlen[0], &old_rv, &rvlen) || !old_rv ||
      !plain_string(m, moff[1], mlen[1], &old_uid, &uidlen))
    return ML_STORE_DECLINED;
  int found = toff[1] != (size_t)-1 ? 0 : ML_ENOTFOUND;
  size_t soff = found == 0 ? toff[1] : 0, slen = tlen[1];

  /* update_entry's checks, in its order, with its messages. */
  if (in->resource_version && *in->resource_version &&
      !span_is(old_rv, rvlen, in->resource_version))
    return conflict(s, r, e->name,
                    "the object has been modified; please apply your "
                    "changes to the latest version and try again");
  if (in->uid && *in->uid && !span_is(old_uid, uidlen, in->uid)) {
    char why[256];
    snprintf(why, sizeof why,
             "Precondition failed: UID in precondition: %s, UID in object "
             "meta: %.*s",
             in->uid, (int)uidlen, old_uid ? old_uid : "");
    return conflict(s, r, e->name, why);
  }
  /* A status equal to the stored one (json_equal) writes nothing. */
  if (found == 0) {
    ml_json_hash_t ho, hn;
    int eq = slen == sb->len && memcmp(t + soff, sb->buf, slen) == 0 ? 1
             : ml_json_hash(t + soff, slen, NULL, &ho) && ml_json_hash(sb->buf, sb->len, NULL, &hn) &&
                     ho.all != hn.all
                 ? 0
                 : ml_json_equal_text(t + soff, slen, sb->buf, sb->len);
    if (eq < 0) return ML_STORE_DECLINED;
    if (eq == 1) {
      fill_result(out, NULL, e->text, false);
      return 0;
    }
  }

  /* The new text: the old one with the resourceVersion's value and the
   * status's replaced (a status the object lacked is appended, as
   * json_object_set appends a new member). */
  uint64_t rv = s->rv + 1;
  char rvq[26];
  int rvn = snprintf(rvq, sizeof rvq, "\"%" PRIu64 "\"", rv);
  size_t rv_at = (size_t)(old_rv - 1 - t), rv_end = rv_at + rvlen + 2;
  size_t st_at, st_end;
  if (found == 0) {
    st_at = soff;
    st_end = soff + slen;
  } else {
    st_at = st_end = ot->len - 1;
  }
  if ((rv_at < st_end && st_at < rv_end)) return ML_STORE_DECLINED;
  /* One allocation of the exact size, which becomes the ml_store_text_t. */
  const size_t head = offsetof(ml_store_text_t, data);
  size_t cap = head + ot->len - (rv_end - rv_at) + (size_t)rvn - (st_end - st_at) +
               sb->len + (found == 0 ? 0 : 10) + 1;
  ml_json_buf_t b = {malloc(cap), cap, head};
  if (!b.buf) return ml__store_fail(s, ML_ENOMEM, "out of memory");
  typedef struct {
    size_t at, end;
    const char *with;
    size_t n;
    bool status;
  } cut_t;
  cut_t cut[2] = {{rv_at, rv_end, rvq, (size_t)rvn, false},
                  {st_at, st_end, sb->buf, sb->len, true}};
  if (cut[1].at < cut[0].at) {
    cut_t x = cut[0];
    cut[0] = cut[1];
    cut[1] = x;
  }
  size_t from = 0;
  for (int i = 0; i < 2; i++) {
    ml_json_buf_put(&b, t + from, cut[i].at - from);
    if (cut[i].status && found != 0) ml_json_buf_put(&b, ",\"status\":", 10);
    ml_json_buf_put(&b, cut[i].with, cut[i].n);
    from = cut[i].end;
  }
  ml_json_buf_put(&b, t + from, ot->len - from);
  ml_store_text_t *text = text_of_buf(&b);

  rc = backend_put(s, r, e->ns, e->name, rv, text);
  if (rc < 0) {
    ml_store_text_unref(text);
    return rc;
  }
  /* Metadata is unchanged: so are the labels. */
  return text_updated(s, r, e, rv, text, json_incref(e->labels), out);
}

static const char *const kept_names[ML_STORE_KEPT_COUNT] = {
    "uid", "creationTimestamp", "name", "namespace", "deletionTimestamp",
    "deletionGracePeriodSeconds", "generation"};

int ml_store_update_text(ml_store_t *s, const char *resource,
                         const ml_store_update_in_t *in, unsigned flags,
                         ml_store_update_write_fn write, void *ud,
                         ml_store_result_t *out) {
  memset(out, 0, sizeof *out);
  /* Every answer but success comes from ml_store_update: it converts the
   * caller's object before anything else, so its errors are its own. */
  const char *name = in->name, *ns = in->ns ? in->ns : "";
  if (!name || !*name) return ML_STORE_DECLINED;
  ml__store_res_t *r = ml__store_res(s, resource, false);
  ml__store_entry_t *e = r ? ml__store_find(r, ns, name) : NULL;
  if (!e) return ML_STORE_DECLINED;
  const ml_store_text_t *ot = e->text;
  const char *t = ot->data;
  static const char *const top_keys[] = {"metadata", "status"};
  size_t toff[2] = {(size_t)-1, (size_t)-1}, tlen[2] = {0, 0};
  if (ot->len < 2 || t[ot->len - 1] != '}' ||
      ml_json_members(t, ot->len, top_keys, (flags & ML_STORE_STATUS_SUBRESOURCE) ? 2 : 1, toff,
                      tlen) != 0 ||
      toff[0] == (size_t)-1 || t[toff[0]] != '{')
    return ML_STORE_DECLINED;
  const char *m = t + toff[0];
  size_t mlen = tlen[0];
  ml_store_update_meta_t um = {.kept_names = kept_names};
  /* The kept members, then resourceVersion and finalizers: one scan. */
  const char *keys[ML_STORE_KEPT_COUNT + 2];
  size_t off[ML_STORE_KEPT_COUNT + 2], len[ML_STORE_KEPT_COUNT + 2];
  memcpy(keys, kept_names, sizeof kept_names);
  keys[ML_STORE_KEPT_COUNT] = "resourceVersion";
  keys[ML_STORE_KEPT_COUNT + 1] = "finalizers";
  if (ml_json_members(m, mlen, keys, ML_STORE_KEPT_COUNT + 2, off, len) != 0)
    return ML_STORE_DECLINED;
  for (int i = 0; i < ML_STORE_KEPT_COUNT; i++)
    if (off[i] != (size_t)-1) {
      um.kept[i] = m + off[i];
      um.kept_len[i] = len[i];
    }
  /* resourceVersion and uid: plain strings (the preconditions compare
   * their contents). */
  const char *old_rv, *old_uid;
  size_t rvlen, uidlen;
  if (!plain_string(m, off[ML_STORE_KEPT_COUNT], len[ML_STORE_KEPT_COUNT], &old_rv, &rvlen) ||
      !old_rv ||
      !plain_string(m, off[ML_STORE_KEPT_UID], len[ML_STORE_KEPT_UID], &old_uid, &uidlen) ||
      !um.kept[ML_STORE_KEPT_NAME])
    return ML_STORE_DECLINED;
  /* An update may remove an object being deleted (its last finalizer
   * gone): ml_store_update decides those. */
  if (um.kept[ML_STORE_KEPT_DELETION_TIMESTAMP] && off[ML_STORE_KEPT_COUNT + 1] != (size_t)-1)
    return ML_STORE_DECLINED;
  if (in->resource_version && *in->resource_version &&
      !span_is(old_rv, rvlen, in->resource_version))
    return ML_STORE_DECLINED;
  if (in->uid && *in->uid && !span_is(old_uid, uidlen, in->uid)) return ML_STORE_DECLINED;
  um.resource_version = old_rv - 1;
  um.resource_version_len = rvlen + 2;
  if (flags & ML_STORE_STATUS_SUBRESOURCE) {
    um.keep_status = true;
    if (toff[1] != (size_t)-1) {
      um.status = t + toff[1];
      um.status_len = tlen[1];
    }
  }
  long long gen = 0;
  if (flags & ML_STORE_GENERATION) {
    const char *g = um.kept[ML_STORE_KEPT_GENERATION];
    size_t gl = um.kept_len[ML_STORE_KEPT_GENERATION];
    if (g) {
      /* json_integer_value: an integer's value (others would be 0). */
      if (gl == 0 || gl > 18) return ML_STORE_DECLINED;
      for (size_t i = 0; i < gl; i++) {
        if (g[i] < '0' || g[i] > '9') return ML_STORE_DECLINED;
        gen = gen * 10 + (g[i] - '0');
      }
    }
  }

  const size_t head = offsetof(ml_store_text_t, data);
  ml_json_buf_t b = {malloc(head + ot->len + 256), head + ot->len + 256, head};
  if (!b.buf) return ML_STORE_DECLINED;
  ml_store_update_written_t w = {NULL, 0, 0, 0, 0};
  if (!write(ud, &um, &b, &w) || w.rv_len == 0) goto declined;
  const char *nt = b.buf + head;
  size_t nlen = b.len - head;
  /* ml_store_update's rules on the text: generation moves when anything
   * but metadata and status changed; an object equal to the stored one
   * (with the stored resourceVersion, as written) is a no-op. */
  static const char *const spec_skip[] = {"metadata", "status", NULL};
  bool same_bytes = nlen == ot->len && memcmp(nt, t, nlen) == 0;
  ml_json_hash_t hn = {0, 0, true}, ho = {0, 0, true};
  if (!same_bytes) {
    /* Different hashes prove a difference without the exact comparison. */
    ml_json_hash(nt, nlen, spec_skip, &hn);
    ml_json_hash(t, ot->len, spec_skip, &ho);
  }
  bool hashed = !hn.odd && !ho.odd;
  bool bump = false;
  if ((flags & ML_STORE_GENERATION) && !same_bytes) {
    int eq = hashed && hn.rest != ho.rest
                 ? 0
                 : ml_json_equal_text_except(nt, nlen, t, ot->len, spec_skip);
    if (eq < 0) goto declined;
    bump = eq == 0;
  }
  if (!bump) {
    int eq = same_bytes ? 1
             : hashed && hn.all != ho.all ? 0
                                          : ml_json_equal_text(nt, nlen, t, ot->len);
    if (eq < 0) goto declined;
    if (eq == 1) {
      free(b.buf);
      json_decref(w.labels);
      fill_result(out, NULL, e->text, false);
      return 0;
    }
  }

  /* The final text: the written one with the new resourceVersion (and
   * generation) spliced in. */
  uint64_t rv = s->rv + 1;
  char rvq[26], genq[40];
  int rvn = snprintf(rvq, sizeof rvq, "\"%" PRIu64 "\"", rv);
  int genn = 0;
  if (bump)
    genn = w.gen_len ? snprintf(genq, sizeof genq, "%lld", gen + 1)
                     : snprintf(genq, sizeof genq, ",\"generation\":%lld", gen + 1);
  typedef struct {
    size_t at, end;
    const char *with;
    size_t n;
  } cut_t;
  cut_t cut[2] = {{w.rv_at, w.rv_at + w.rv_len, rvq, (size_t)rvn},
                  {w.gen_at, w.gen_at + w.gen_len, genq, (size_t)genn}};
  int ncut = bump ? 2 : 1;
  if (ncut == 2 && cut[1].at < cut[0].at) {
    cut_t x = cut[0];
    cut[0] = cut[1];
    cut[1] = x;
  }
  if (ncut == 2 && cut[0].end > cut[1].at) goto declined;
  size_t cap = b.len + (size_t)rvn + (size_t)genn + 1;
  ml_json_buf_t f = {malloc(cap), cap, head};
  if (!f.buf) goto declined;
  size_t from = head;
  for (int i = 0; i < ncut; i++) {
    ml_json_buf_put(&f, b.buf + from, cut[i].at - from);
    ml_json_buf_put(&f, cut[i].with, cut[i].n);
    from = cut[i].end;
  }
  ml_json_buf_put(&f, b.buf + from, b.len - from);
  free(b.buf);
  ml_store_text_t *text = text_of_buf(&f);

  int rc = backend_put(s, r, e->ns, e->name, rv, text);
  if (rc < 0) {
    /* The store's state is unchanged; ml_store_update meets the same
     * failure and reports it. */
    ml_store_text_unref(text);
    json_decref(w.labels);
    return ML_STORE_DECLINED;
  }
  return text_updated(s, r, e, rv, text, w.labels, out);

declined:
  free(b.buf);
  json_decref(w.labels);
  return ML_STORE_DECLINED;
}

/* ml_store_delete once the entry is found; `old` is its state parsed. */
static int delete_entry(ml_store_t *s, ml__store_res_t *r,
                        ml__store_entry_t *e, const json_t *old,
                        const ml_store_delete_opts_t *opts,
                        ml_store_result_t *out);

int ml_store_delete(ml_store_t *s, const char *resource, const char *ns,
                    const char *name, const ml_store_delete_opts_t *opts,
                    ml_store_result_t *out) {
  memset(out, 0, sizeof *out);
  static const ml_store_delete_opts_t defaults = {NULL, NULL, -1};
  if (!opts) opts = &defaults;
  if (!ns) ns = "";
  /* Created if unknown: messages need its qualified name. */
  ml__store_res_t *r = ml__store_res(s, resource, true);
  if (!r) return ml__store_fail(s, ML_ENOMEM, "out of memory");
  ml__store_entry_t *e = ml__store_find(r, ns, name);
  if (!e) return not_found(s, r->qualified, name);
  json_t *old = ml__store_entry_doc(e);
  if (!old) return ml__store_fail(s, ML_ENOMEM, "out of memory");
  int rc = delete_entry(s, r, e, old, opts, out);
  json_decref(old);
  return rc;
}

static int delete_entry(ml_store_t *s, ml__store_res_t *r,
                        ml__store_entry_t *e, const json_t *old,
                        const ml_store_delete_opts_t *opts,
                        ml_store_result_t *out) {
  const char *name = e->name;
  const json_t *old_meta = json_object_get(old, "metadata");
  const char *old_uid = meta_str(old_meta, "uid");
  const char *old_rv = meta_str(old_meta, "resourceVersion");
  char why[256];
  if (opts->uid && *opts->uid && strcmp(opts->uid, old_uid ? old_uid : "")) {
    snprintf(why, sizeof why,
             "Precondition failed: UID in precondition: %s, UID in object "
             "meta: %s",
             opts->uid, old_uid ? old_uid : "");
    return conflict(s, r, name, why);
  }
  if (opts->resource_version && *opts->resource_version &&
      strcmp(opts->resource_version, old_rv ? old_rv : "")) {
    snprintf(why, sizeof why,
             "Precondition failed: ResourceVersion in precondition: %s, "
             "ResourceVersion in object meta: %s",
             opts->resource_version, old_rv ? old_rv : "");
    return conflict(s, r, name, why);
  }

  /* Decide as rest.BeforeDelete and the generic registry do. */
  enum { KEEP, MARK, REMOVE } action;
  bool fin = has_finalizers(old_meta);
  const char *dts = meta_str(old_meta, "deletionTimestamp");
  json_t *old_grace = json_object_get(old_meta, "deletionGracePeriodSeconds");
  int64_t g = opts->grace_seconds;
  int64_t new_ts = 0, new_grace = 0;
  bool mark = false, bump = false;
  if (dts) {
    int64_t t0, og = json_integer_value(old_grace);
    if (!old_grace || og == 0) {
      action = fin ? KEEP : REMOVE;
    } else if (g >= 0 && g < og && parse_time(dts, &t0)) {
      /* Only a shorter grace period is accepted, counted from the time
       * the first delete asked for. */
      new_ts = t0 - og + g;
      new_grace = g;
      mark = true;
      action = (g == 0 && !fin) ? REMOVE : MARK;
    } else {
      action = KEEP; /* graceful deletion already pending */
    }
  } else if (g >= 0) {
    new_ts = now_seconds(s) + g;
    new_grace = g;
    mark = bump = true;
    action = (g == 0 && !fin) ? REMOVE : MARK;
  } else if (fin) {
    new_ts = now_seconds(s);
    mark = bump = true;
    action = MARK;
  } else {
    action = REMOVE;
  }

  if (action == KEEP) {
    fill_result(out, (json_t *)old, e->text, false);
    return 0;
  }
  json_t *doc = copy_for_meta(old);
  if (!doc) return ml__store_fail(s, ML_ENOMEM, "out of memory");
  json_t *meta = json_object_get(doc, "metadata");
  if (mark) {
    char ts[32];
    format_time(new_ts, ts);
    json_object_set_new(meta, "deletionTimestamp", json_string(ts));
    json_object_set_new(meta, "deletionGracePeriodSeconds",
                        json_integer(new_grace));
    json_int_t gen = json_integer_value(json_object_get(meta, "generation"));
    if (bump && gen > 0)
      json_object_set_new(meta, "generation", json_integer(gen + 1));
  }
  if (action == REMOVE) return remove_entry(s, r, e, doc, old, out);
  uint64_t rv = s->rv + 1;
  set_rv(meta, rv);
  return replace(s, r, e, doc, old, rv, out);
}

/* }====== */

/* {====== reads */

int ml_store_get(ml_store_t *s, const char *resource, const char *ns,
                 const char *name, json_t **obj, ml_store_text_t **text) {
  if (obj) *obj = NULL;
  if (text) *text = NULL;
  ml__store_entry_t *e =
      ml__store_find(ml__store_res(s, resource, false), ns ? ns : "", name);
  if (!e) return ML_ENOTFOUND;
  if (obj && !(*obj = ml__store_entry_doc(e))) return ML_ENOMEM;
  if (text) *text = ml_store_text_ref(e->text);
  return 0;
}

int ml_store_object_version(ml_store_t *s, const char *resource,
                            const char *ns, const char *name, uint64_t *rv) {
  ml__store_entry_t *e =
      ml__store_find(ml__store_res(s, resource, false), ns ? ns : "", name);
  if (!e) return ML_ENOTFOUND;
  *rv = e->rv;
  return 0;
}

uint64_t ml_store_resource_version(const ml_store_t *s) { return s->rv; }

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Unpadded base64url, as Kubernetes encodes continue tokens. */
static char *b64_encode(const char *in, size_t n) {
  char *out = malloc(n / 3 * 4 + 5), *p = out;
  if (!out) return NULL;
  const unsigned char *u = (const unsigned char *)in;
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)u[i] << 16 | (uint32_t)u[i + 1] << 8 | u[i + 2];
    *p++ = b64url[v >> 18];
    *p++ = b64url[(v >> 12) & 63];
    *p++ = b64url[(v >> 6) & 63];
    *p++ = b64url[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)u[i] << 16;
    *p++ = b64url[v >> 18];
    *p++ = b64url[(v >> 12) & 63];
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)u[i] << 16 | (uint32_t)u[i + 1] << 8;
    *p++ = b64url[v >> 18];
    *p++ = b64url[(v >> 12) & 63];
    *p++ = b64url[(v >> 6) & 63];
  }
  *p = '\0';
  return out;
}

/* Accepts both alphabets, with or without padding. */
static char *b64_decode(const char *in, size_t *outlen) {
  size_t n = strlen(in);
  char *out = malloc(n / 4 * 3 + 4);
  if (!out) return NULL;
  uint32_t acc = 0;
  int bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = in[i];
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-' || c == '+')
      v = 62;
    else if (c == '_' || c == '/')
      v = 63;
    else if (c == '=')
      break;
    else {
      free(out);
      return NULL;
    }
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (char)((acc >> bits) & 0xff);
    }
  }
  out[o] = '\0';
  *outlen = o;
  return out;
}

static char *make_continue(uint64_t rv, const ml__store_entry_t *last) {
  json_t *j = json_object();
  json_object_set_new(j, "v", json_string(CONTINUE_VERSION));
  json_object_set_new(j, "rv", json_integer((json_int_t)rv));
  char *key = NULL;
  if (asprintf(&key, "%s/%s", last->ns, last->name) < 0) key = NULL;
  json_object_set_new(j, "start", json_string(key ? key : ""));
  free(key);
  char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (!text) return NULL;
  char *tok = b64_encode(text, strlen(text));
  free(text);
  return tok;
}

/* Decodes a continue token into the last key served and the list's rv. */
static int parse_continue(ml_store_t *s, const char *tok, char **ns,
                          char **name, uint64_t *rv) {
  size_t len;
  char *raw = b64_decode(tok, &len);
  json_t *j = raw ? json_loadb(raw, len, 0, NULL) : NULL;
  free(raw);
  const char *v = json_string_value(json_object_get(j, "v"));
  json_t *jrv = json_object_get(j, "rv");
  const char *start = json_string_value(json_object_get(j, "start"));
  const char *slash = start ? strchr(start, '/') : NULL;
  const char *why = NULL;
  if (!j)
    why = "not a valid continue token";
  else if (!v || strcmp(v, CONTINUE_VERSION) != 0)
    why = "incorrect encoded version (version " CONTINUE_VERSION ")";
  else if (!json_is_integer(jrv) || json_integer_value(jrv) <= 0)
    why = "incorrect encoded start resourceVersion (version " CONTINUE_VERSION
          ")";
  else if (!slash)
    why = "incorrect encoded start key";
  if (why) {
    json_decref(j);
    return ml__store_fail(s, ML_EBADREQ, "continue key is not valid: %s", why);
  }
  *ns = strndup(start, (size_t)(slash - start));
  *name = strdup(slash + 1);
  *rv = (uint64_t)json_integer_value(jrv);
  json_decref(j);
  return 0;
}

typedef struct {
  const char *ns;
  void *lsel, *fsel;
  size_t limit, n;
  bool more;
  const ml__store_entry_t *last;
  void (*add)(void *ud, const ml__store_entry_t *e);
  void *ud;
} listing_t;

static bool list_visit(ml__store_entry_t *e, void *ud) {
  listing_t *l = ud;
  if (l->ns && strcmp(e->ns, l->ns) != 0) return false;
  if (!ml__store_entry_matches(e, l->lsel, l->fsel)) return true;
  if (l->limit && l->n == l->limit) {
    l->more = true;
    return false;
  }
  l->add(l->ud, e);
  l->n++;
  l->last = e;
  return true;
}

/* The walk shared by list and list_json: calls add() for each item. */
static int list_walk(ml_store_t *s, const char *resource,
                     const ml_store_list_opts_t *o,
                     void (*add)(void *, const ml__store_entry_t *), void *ud,
                     uint64_t *rv, char **cont) {
  static const ml_store_list_opts_t none = {0};
  if (!o) o = &none;
  *cont = NULL;
  *rv = s->rv;
  listing_t l = {.ns = o->ns && *o->ns ? o->ns : NULL,
                 .limit = o->limit,
                 .add = add,
                 .ud = ud};
  char *cns = NULL, *cname = NULL;
  if (o->continue_token && *o->continue_token) {
    int rc = parse_continue(s, o->continue_token, &cns, &cname, rv);
    if (rc < 0) return rc;
  }
  int rc = ml__store_selectors(s, o->label_selector, o->field_selector, &l.lsel,
                               &l.fsel);
  if (rc < 0) goto done;
  ml__store_res_t *r = ml__store_res(s, resource, false);
  if (cns && (!l.ns || strcmp(cns, l.ns) >= 0))
    ml__store_walk(r, cns, cname, false, list_visit, &l);
  else if (l.ns)
    ml__store_walk(r, l.ns, "", true, list_visit, &l);
  else
    ml__store_walk(r, NULL, NULL, true, list_visit, &l);
  if (l.more && l.last) {
    *cont = make_continue(*rv, l.last);
    if (!*cont) rc = ml__store_fail(s, ML_ENOMEM, "out of memory");
  }
done:
  ml__store_selectors_free(l.lsel, l.fsel);
  free(cns);
  free(cname);
  return rc;
}

typedef struct {
  ml_store_list_t *out;
  size_t cap;
  bool oom;
} itembuf_t;

static void add_item(void *ud, const ml__store_entry_t *e) {
  itembuf_t *b = ud;
  ml_store_list_t *out = b->out;
  if (out->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    json_t **items = realloc(out->items, sizeof *items * cap);
    if (!items) {
      b->oom = true;
      return;
    }
    out->items = items;
    b->cap = cap;
  }
  json_t *doc = ml__store_entry_doc(e);
  if (!doc) {
    b->oom = true;
    return;
  }
  out->items[out->n++] = doc;
}

int ml_store_list(ml_store_t *s, const char *resource,
                  const ml_store_list_opts_t *opts, ml_store_list_t *out) {
  memset(out, 0, sizeof *out);
  itembuf_t b = {out, 0, false};
  int rc = list_walk(s, resource, opts, add_item, &b, &out->resource_version,
                     &out->continue_token);
  if (rc == 0 && b.oom) rc = ml__store_fail(s, ML_ENOMEM, "out of memory");
  if (rc < 0) ml_store_list_clear(out);
  return rc;
}

void ml_store_list_clear(ml_store_list_t *l) {
  for (size_t i = 0; i < l->n; i++) json_decref(l->items[i]);
  free(l->items);
  free(l->continue_token);
  memset(l, 0, sizeof *l);
}

typedef struct {
  char *buf;
  size_t len, cap;
  bool oom;
} jsonbuf_t;

static void add_text(void *ud, const ml__store_entry_t *e) {
  jsonbuf_t *b = ud;
  size_t need = b->len + e->text->len + 3;
  if (need > b->cap) {
    size_t cap = b->cap * 2;
    while (cap < need) cap *= 2;
    char *p = realloc(b->buf, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->buf = p;
    b->cap = cap;
  }
  if (b->len > 1) b->buf[b->len++] = ',';
  memcpy(b->buf + b->len, e->text->data, e->text->len);
  b->len += e->text->len;
}

int ml_store_list_json(ml_store_t *s, const char *resource,
                       const ml_store_list_opts_t *opts, char **json,
                       size_t *len, uint64_t *rv, char **cont) {
  *json = NULL;
  *len = 0;
  jsonbuf_t b = {malloc(4096), 1, 4096, false};
  if (!b.buf) return ml__store_fail(s, ML_ENOMEM, "out of memory");
  b.buf[0] = '[';
  int rc = list_walk(s, resource, opts, add_text, &b, rv, cont);
  if (rc == 0 && b.oom) rc = ml__store_fail(s, ML_ENOMEM, "out of memory");
  if (rc < 0) {
    free(b.buf);
    free(*cont);
    *cont = NULL;
    return rc;
  }
  b.buf[b.len++] = ']';
  b.buf[b.len] = '\0';
  *json = b.buf;
  *len = b.len;
  return 0;
}

/* }====== */

/* {====== open, commit, close */

typedef struct {
  ml_store_t *s;
  uint64_t max_rv;
  int err;
} loading_t;

static int load_meta(void *ud, const char *key, const char *value) {
  loading_t *l = ud;
  if (strcmp(key, "resourceVersion") == 0) {
    uint64_t v = strtoull(value, NULL, 10);
    if (v > l->max_rv) l->max_rv = v;
  }
  return 0;
}

static int load_object(void *ud, const char *resource, const char *ns,
                       const char *name, const char *data, size_t len) {
  loading_t *l = ud;
  json_error_t jerr = {.text = "not an object"};
  json_t *doc = ml__store_parse(data, len, &jerr);
  if (!json_is_object(doc)) {
    /* One unreadable row must not hide the rest of the cluster. */
    ML_ERROR("store: skipping unreadable %s %s/%s: %s", resource, ns, name,
             jerr.text);
    json_decref(doc);
    return 0;
  }
  ml__store_res_t *r = ml__store_res(l->s, resource, true);
  ml__store_entry_t *e = r ? ml__store_entry_new(ns, name) : NULL;
  ml_store_text_t *t = e ? malloc(sizeof *t + len + 1) : NULL;
  if (!t) {
    ml__store_entry_free(e);
    json_decref(doc);
    return ML_ENOMEM;
  }
  /* The stored text is the serialization we wrote: reuse it verbatim. */
  t->refs = 1;
  t->len = len;
  memcpy(t->data, data, len);
  t->data[len] = '\0';
  ml__store_entry_set(e, doc, t);
  const char *rvs =
      meta_str(json_object_get(doc, "metadata"), "resourceVersion");
  e->rv = rvs ? strtoull(rvs, NULL, 10) : 0;
  json_decref(doc);
  if (e->rv > l->max_rv) l->max_rv = e->rv;
  if (ml__store_find(r, ns, name)) {
    ml__store_entry_free(e);
    return 0;
  }
  ml__store_insert(r, e);
  return 0;
}

int ml_store_open(const ml_store_options_t *opts, ml_store_t **out,
                  char **errmsg) {
  *out = NULL;
  *errmsg = NULL;
  static const ml_store_options_t none = {0};
  if (!opts) opts = &none;
  const ml_store_backend_t *be;
  if (!opts->backend || !*opts->backend || !strcmp(opts->backend, "sqlite"))
    be = &ml_store_backend_sqlite;
  else if (!strcmp(opts->backend, "memory"))
    be = &ml_store_backend_memory;
  else {
    if (asprintf(errmsg, "unknown store backend \"%s\"", opts->backend) < 0)
      *errmsg = NULL;
    return ML_EINVALID;
  }
  ml_store_t *s = calloc(1, sizeof *s);
  if (!s) return ML_ENOMEM;
  s->be = be;
  s->window_seconds = opts->watch_window_seconds ? opts->watch_window_seconds
                                                 : DEFAULT_WINDOW_SECONDS;
  int rc = ml__store_window_init(
      s, opts->watch_window ? opts->watch_window : DEFAULT_WINDOW);
  if (rc < 0) {
    free(s);
    return rc;
  }
  ml_store_backend_config_t cfg = {opts->path, opts->sync};
  rc = be->open(&cfg, &s->db, errmsg);
  if (rc < 0) {
    ml__store_window_free(s);
    free(s);
    return rc;
  }
  loading_t l = {s, 0, 0};
  ml_store_loader_t loader = {&l, load_object, load_meta};
  rc = be->load_all(s->db, &loader);
  if (rc < 0) {
    if (asprintf(errmsg, "load: %s", be->errmsg(s->db)) < 0) *errmsg = NULL;
    ml_store_close(s);
    return rc;
  }
  s->rv = l.max_rv;
  /* Events before this point are not in the window. */
  s->floor = s->rv;
  *out = s;
  return 0;
}

int ml_store_commit(ml_store_t *s) {
  if (!s->in_txn) return 0;
  s->in_txn = false;
  char buf[24];
  snprintf(buf, sizeof buf, "%" PRIu64, s->rv);
  /* The counter survives deletes of the newest objects. A load takes the
   * larger of it and every row's resourceVersion, so a transaction that
   * only created or updated rows (the newest carries the counter) leaves
   * it alone: one B-tree page less in each such commit's WAL frames. */
  bool record = s->rv_unrecorded;
  s->rv_unrecorded = false;
  int rc = record ? s->be->set_meta(s->db, "resourceVersion", buf) : 0;
  if (rc == 0) rc = s->be->commit(s->db);
  if (rc < 0) {
    s->failed = true;
    ML_ERROR("store: commit failed: %s", s->be->errmsg(s->db));
    return ml__store_fail(s, ML_EIO, "commit: %s", s->be->errmsg(s->db));
  }
  if (rc == ML_STORE_UNSYNCED) s->unsynced = true;
  return 0;
}

bool ml_store_take_unsynced(ml_store_t *s) {
  bool u = s->unsynced;
  s->unsynced = false;
  return u;
}

int ml_store_sync(ml_store_t *s) {
  return s->db && s->be->sync ? s->be->sync(s->db) : 0;
}

void ml_store_sync_failed(ml_store_t *s, int err) {
  s->failed = true;
  ml__store_fail(s, ML_EIO, "sync: %s", ml_strerror(err));
}

void ml_store_close(ml_store_t *s) {
  if (!s) return;
  if (s->db) {
    ml_store_commit(s);
    /* What no gate took is made durable here (sqlite's close would
     * checkpoint it too, but only after a sync of its own choosing). */
    if (ml_store_take_unsynced(s) && ml_store_sync(s) < 0)
      ML_ERROR("store: sync at close failed");
    s->be->close(s->db);
    s->db = NULL;
  }
  ml__store_watchers_close_all(s);
  ml__store_window_free(s);
  ml__store_res_free_all(s);
  free(s->scratch.buf);
  free(s->err);
  free(s);
}

/* }====== */
