/* Unit tests of the object store (core/store.h) against both backends:
 * metadata rules, conflicts, generation, status subresource, finalizers and
 * graceful deletion, generateName, list paging and selectors, watch order,
 * 410 Gone and selector transitions, persistence across reopen and across
 * kill -9 of a writer. Prints TAP; ends with a clean uv_loop_close(). */
#include <signal.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <sqlite3.h>

#include "err.h"
#include "loop.h"
#include "store.h"

/* {====== TAP */

static int ntests, nfail;

static void ok_at(int cond, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%s %d - ", cond ? "ok" : "not ok", ++ntests);
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  if (!cond) {
    nfail++;
    printf("#   failed at line %d\n", line);
  }
}

#define OK(cond, ...) ok_at(!!(cond), __LINE__, __VA_ARGS__)
#define IS(got, want, what)                                      \
  do {                                                           \
    const char *g_ = (got), *w_ = (want);                        \
    int eq_ = g_ && w_ ? strcmp(g_, w_) == 0 : g_ == w_;         \
    ok_at(eq_, __LINE__, "%s", what);                            \
    if (!eq_)                                                    \
      printf("#   got:  %s\n#   want: %s\n", g_ ? g_ : "(null)", \
             w_ ? w_ : "(null)");                                \
  } while (0)
#define RC(expr, want, what)                                               \
  do {                                                                     \
    int r_ = (expr);                                                       \
    ok_at(r_ == (want), __LINE__, "%s", what);                             \
    if (r_ != (want))                                                      \
      printf("#   rc %s (%s)\n", ml_err_name(r_), ml_store_last_error(s)); \
  } while (0)

/* }====== */

/* {====== helpers */

static const char *backend;
static char tmpdir[256];
static int dbseq;

static json_t *J(const char *text) {
  json_error_t e;
  json_t *j = json_loads(text, 0, &e);
  if (!j) {
    fprintf(stderr, "bad test JSON: %s: %s\n", text, e.text);
    exit(2);
  }
  return j;
}

/* Dotted path lookup: "metadata.labels.app". */
static json_t *at(const json_t *doc, const char *path) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  json_t *cur = (json_t *)doc;
  for (char *save, *p = strtok_r(buf, ".", &save); p && cur;
       p = strtok_r(NULL, ".", &save))
    cur = json_object_get(cur, p);
  return cur;
}

static const char *str(const json_t *doc, const char *path) {
  return json_string_value(at(doc, path));
}

static char *db_path(void) {
  static char p[300];
  snprintf(p, sizeof p, "%s/store-%d.db", tmpdir, ++dbseq);
  return p;
}

static ml_store_t *open_store(const char *path, size_t window) {
  ml_store_options_t o = {
      .backend = backend, .path = path, .watch_window = window};
  ml_store_t *s = NULL;
  char *err = NULL;
  if (ml_store_open(&o, &s, &err) != 0) {
    fprintf(stderr, "open %s: %s\n", backend, err ? err : "?");
    exit(2);
  }
  ml_store_set_time(s, 1795946645); /* 2026-11-29T10:04:05Z */
  return s;
}

static ml_store_t *fresh(void) {
  return open_store(strcmp(backend, "sqlite") == 0 ? db_path() : NULL, 0);
}

/* Creates from JSON text; returns the stored object (caller decrefs). */
static json_t *mk(ml_store_t *s, const char *res, const char *ns,
                  const char *text, unsigned flags) {
  json_t *in = J(text);
  ml_store_result_t r;
  int rc = ml_store_create(s, res, ns, in, flags, &r);
  json_decref(in);
  if (rc != 0) {
    printf("# create failed: %s\n", ml_store_last_error(s));
    return NULL;
  }
  ml_store_text_unref(r.text);
  return r.obj;
}

static int upd(ml_store_t *s, const char *res, json_t *in, unsigned flags,
               ml_store_result_t *out) {
  int rc = ml_store_update(s, res, in, flags, out);
  json_decref(in);
  return rc;
}

/* A watcher that records "TYPE name rv" lines. */
typedef struct {
  char buf[4096];
  int n;
} rec_t;

static void rec_fn(void *ud, int type, ml_store_text_t *t) {
  rec_t *r = ud;
  char line[160];
  if (type == ML_STORE_CLOSED) {
    snprintf(line, sizeof line, "CLOSED");
  } else {
    json_t *d = json_loads(t->data, 0, NULL);
    snprintf(line, sizeof line, "%s %s %s", ml_store_event_name(type),
             str(d, "metadata.name"), str(d, "metadata.resourceVersion"));
    json_decref(d);
  }
  size_t len = strlen(r->buf);
  snprintf(r->buf + len, sizeof r->buf - len, "%s%s", r->n++ ? ", " : "", line);
}

static void rec_reset(rec_t *r) {
  r->buf[0] = '\0';
  r->n = 0;
}

/* Keeps the text of the first event. */
typedef struct {
  char first[512];
} last_text_t;

static void last_text_fn(void *ud, int type, ml_store_text_t *t) {
  last_text_t *lt = ud;
  if (type != ML_STORE_CLOSED && !lt->first[0])
    snprintf(lt->first, sizeof lt->first, "%s", t->data);
}

static ml_store_watch_t *watch(ml_store_t *s, const char *res, const char *ns,
                               const char *labels, const char *fields,
                               const char *rv, rec_t *r) {
  ml_store_watch_opts_t o = {.ns = ns, .label_selector = labels, .field_selector = fields,
                            .resource_version = rv};
  ml_store_watch_t *w = NULL;
  rec_reset(r);
  int rc = ml_store_watch(s, res, &o, rec_fn, r, &w);
  if (rc != 0) printf("# watch: %s\n", ml_store_last_error(s));
  return w;
}

static const char *rvstr(ml_store_t *s) {
  static char b[32];
  snprintf(b, sizeof b, "%llu",
           (unsigned long long)ml_store_resource_version(s));
  return b;
}

/* }====== */

static void test_create(void) {
  ml_store_t *s = fresh();
  json_t *a = mk(s, "configmaps", "default",
                 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                 "\"metadata\":{\"name\":\"a\",\"uid\":\"client-uid\"},"
                 "\"data\":{\"k\":\"v\"}}",
                 0);
  OK(a, "create configmap");
  IS(str(a, "metadata.namespace"), "default", "namespace set from request");
  IS(str(a, "metadata.resourceVersion"), "1", "first resourceVersion is 1");
  IS(str(a, "metadata.creationTimestamp"), "2026-11-29T10:04:05Z",
     "creationTimestamp is RFC 3339 UTC seconds");
  const char *uid = str(a, "metadata.uid");
  OK(uid && strlen(uid) == 36 && uid[14] == '4' && strchr("89ab", uid[19]) &&
         uid[8] == '-' && strcmp(uid, "client-uid") != 0,
     "uid is a fresh UUID v4 (%s)", uid ? uid : "");
  OK(!at(a, "metadata.generation"), "no generation without tracking");
  json_decref(a);

  json_t *d = mk(s, "apps/deployments", "default",
                 "{\"metadata\":{\"name\":\"web\"},\"spec\":{\"replicas\":1}}",
                 ML_STORE_GENERATION);
  OK(json_integer_value(at(d, "metadata.generation")) == 1,
     "generation 1 when tracked");
  IS(str(d, "metadata.resourceVersion"), "2", "one global counter");
  json_decref(d);

  ml_store_result_t r;
  json_t *in = J("{\"metadata\":{\"name\":\"a\"}}");
  RC(ml_store_create(s, "configmaps", "default", in, 0, &r), ML_EEXISTS,
     "duplicate name is AlreadyExists");
  IS(ml_store_last_error(s), "configmaps \"a\" already exists",
     "AlreadyExists message");
  json_t *web = J("{\"metadata\":{\"name\":\"web\"}}");
  RC(ml_store_create(s, "apps/deployments", "default", web, 0, &r), ML_EEXISTS,
     "duplicate deployment");
  json_decref(web);
  IS(ml_store_last_error(s), "deployments.apps \"web\" already exists",
     "group-qualified resource in messages");
  RC(ml_store_create(s, "configmaps", "other", in, 0, &r), 0,
     "same name in another namespace");
  ml_store_result_clear(&r);
  json_decref(in);
  in = J("{\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"5\"}}");
  RC(ml_store_create(s, "configmaps", "default", in, 0, &r), ML_EINVALID,
     "resourceVersion on create is refused");
  json_decref(in);
  in = J("{\"metadata\":{\"name\":\"x\",\"namespace\":\"b\"}}");
  RC(ml_store_create(s, "configmaps", "a", in, 0, &r), ML_EINVALID,
     "namespace mismatch is refused");
  json_decref(in);
  in = J("{\"metadata\":{}}");
  RC(ml_store_create(s, "configmaps", "a", in, 0, &r), ML_EINVALID,
     "name or generateName required");
  IS(ml_store_last_error(s),
     "metadata.name: Required value: name or generateName is required",
     "required-name message");
  json_decref(in);
  in = J("{\"metadata\":{\"name\":\"n1\",\"namespace\":\"x\"}}");
  RC(ml_store_create(s, "nodes", "", in, 0, &r), 0, "cluster-scoped create");
  OK(!at(r.obj, "metadata.namespace"), "cluster-scoped has no namespace");
  ml_store_result_clear(&r);
  json_decref(in);
  OK(ml_store_resource_version(s) == 4, "failed writes use no version");
  ml_store_close(s);
}

static void test_generate_name(void) {
  ml_store_t *s = fresh();
  json_t *a = mk(s, "pods", "default",
                 "{\"metadata\":{\"generateName\":\"web-7d9f-\"}}", 0);
  const char *name = str(a, "metadata.name");
  OK(name && strlen(name) == 14 && strncmp(name, "web-7d9f-", 9) == 0 &&
         strspn(name + 9, "bcdfghjklmnpqrstvwxz2456789") == 5,
     "generateName + 5 characters of the alphabet (%s)", name ? name : "");
  json_decref(a);
  char longbase[80];
  memset(longbase, 'a', 70);
  longbase[70] = '\0';
  char text[200];
  snprintf(text, sizeof text, "{\"metadata\":{\"generateName\":\"%s\"}}",
           longbase);
  a = mk(s, "pods", "default", text, 0);
  OK(strlen(str(a, "metadata.name")) == 63, "long bases are cut to 58 + 5");
  json_decref(a);
  /* Same seed twice: the second create first draws the same name. */
  ml_store_set_seed(s, 42);
  json_t *b =
      mk(s, "pods", "default", "{\"metadata\":{\"generateName\":\"x-\"}}", 0);
  ml_store_set_seed(s, 42);
  json_t *c =
      mk(s, "pods", "default", "{\"metadata\":{\"generateName\":\"x-\"}}", 0);
  OK(b && c && strcmp(str(b, "metadata.name"), str(c, "metadata.name")) != 0,
     "a colliding generated name is retried");
  json_decref(b);
  json_decref(c);
  ml_store_close(s);
}

static void test_update(void) {
  ml_store_t *s = fresh();
  json_t *d = mk(s, "apps/deployments", "ns",
                 "{\"metadata\":{\"name\":\"web\",\"labels\":{\"a\":\"1\"}},"
                 "\"spec\":{\"replicas\":1},\"status\":{\"ready\":0}}",
                 ML_STORE_GENERATION);
  const unsigned F = ML_STORE_GENERATION | ML_STORE_STATUS_SUBRESOURCE;
  ml_store_result_t r;
  json_t *in = json_deep_copy(d);
  json_object_set_new(at(in, "spec"), "replicas", json_integer(3));
  json_object_set_new(at(in, "status"), "ready", json_integer(9));
  json_object_set_new(at(in, "metadata"), "uid", json_string(""));
  json_object_set_new(at(in, "metadata"), "creationTimestamp",
                      json_string("1999-01-01T00:00:00Z"));
  RC(upd(s, "apps/deployments", in, F, &r), 0, "update spec");
  OK(json_integer_value(at(r.obj, "spec.replicas")) == 3, "spec changed");
  OK(json_integer_value(at(r.obj, "status.ready")) == 0,
     "main write keeps the stored status");
  OK(json_integer_value(at(r.obj, "metadata.generation")) == 2,
     "spec change bumps generation");
  IS(str(r.obj, "metadata.uid"), str(d, "metadata.uid"), "uid kept");
  IS(str(r.obj, "metadata.creationTimestamp"), "2026-11-29T10:04:05Z",
     "creationTimestamp kept");
  IS(str(r.obj, "metadata.resourceVersion"), "2", "new resourceVersion");
  IS(r.text->data[0] == '{' ? "json" : "?", "json", "text returned");
  ml_store_result_clear(&r);

  in = json_deep_copy(d); /* still carries resourceVersion 1 */
  RC(upd(s, "apps/deployments", in, F, &r), ML_ECONFLICT, "stale rv conflicts");
  IS(ml_store_last_error(s),
     "Operation cannot be fulfilled on deployments.apps \"web\": the object "
     "has been modified; please apply your changes to the latest version and "
     "try again",
     "conflict message");
  in = json_deep_copy(d);
  json_object_set_new(at(in, "metadata"), "uid", json_string("other"));
  json_object_del(at(in, "metadata"), "resourceVersion");
  RC(upd(s, "apps/deployments", in, F, &r), ML_ECONFLICT,
     "uid mismatch conflicts");
  char want[256];
  snprintf(want, sizeof want,
           "Operation cannot be fulfilled on deployments.apps \"web\": "
           "Precondition failed: UID in precondition: other, UID in object "
           "meta: %s",
           str(d, "metadata.uid"));
  IS(ml_store_last_error(s), want, "uid precondition message");

  /* Labels only: no generation bump; no rv = unconditional. */
  in = json_deep_copy(d);
  json_object_del(at(in, "metadata"), "resourceVersion");
  json_object_set_new(at(in, "spec"), "replicas", json_integer(3));
  json_object_set_new(at(in, "metadata.labels"), "a", json_string("2"));
  RC(upd(s, "apps/deployments", in, F, &r), 0, "unconditional label update");
  OK(json_integer_value(at(r.obj, "metadata.generation")) == 2,
     "metadata change keeps generation");
  IS(str(r.obj, "metadata.resourceVersion"), "3", "rv 3");
  json_t *cur = json_incref(r.obj);
  ml_store_result_clear(&r);

  rec_t w;
  ml_store_watch_t *wt =
      watch(s, "apps/deployments", NULL, NULL, NULL, rvstr(s), &w);
  RC(upd(s, "apps/deployments", json_deep_copy(cur), F, &r), 0, "no-op update");
  IS(str(r.obj, "metadata.resourceVersion"), "3", "no-op keeps rv");
  OK(ml_store_resource_version(s) == 3 && w.n == 0,
     "no-op: no write, no event");
  ml_store_result_clear(&r);

  /* Status subresource: only status moves. */
  in = json_deep_copy(cur);
  json_object_set_new(at(in, "status"), "ready", json_integer(3));
  json_object_set_new(at(in, "spec"), "replicas", json_integer(100));
  json_object_set_new(at(in, "metadata.labels"), "a", json_string("zzz"));
  RC(upd(s, "apps/deployments", in, F | ML_STORE_WRITE_STATUS, &r), 0,
     "status write");
  OK(json_integer_value(at(r.obj, "status.ready")) == 3, "status changed");
  OK(json_integer_value(at(r.obj, "spec.replicas")) == 3, "spec untouched");
  IS(str(r.obj, "metadata.labels.a"), "2", "metadata untouched");
  OK(json_integer_value(at(r.obj, "metadata.generation")) == 2,
     "status write keeps generation");
  IS(str(r.obj, "metadata.resourceVersion"), "4", "status write gets rv 4");
  IS(w.buf, "MODIFIED web 4", "one MODIFIED event for the status write");
  ml_store_result_clear(&r);
  /* The store keeps copies: changing the caller's object afterwards must
   * not reach the stored one. */
  in = json_deep_copy(cur);
  json_object_set_new(at(in, "status"), "ready", json_integer(7));
  json_object_del(at(in, "metadata"), "resourceVersion");
  RC(ml_store_update(s, "apps/deployments", in, F | ML_STORE_WRITE_STATUS, &r),
     0, "second status write");
  ml_store_result_clear(&r);
  json_object_set_new(at(in, "status"), "ready", json_integer(99));
  json_decref(in);
  json_t *got = NULL;
  ml_store_get(s, "apps/deployments", "ns", "web", &got, NULL);
  OK(json_integer_value(at(got, "status.ready")) == 7,
     "stored status is the store's own copy");
  json_decref(got);
  ml_store_watch_close(wt);

  /* Without a status subresource, status is written with the object. */
  json_t *cm = mk(s, "configmaps", "ns",
                  "{\"metadata\":{\"name\":\"c\"},\"data\":{}}", 0);
  in = json_deep_copy(cm);
  json_object_set_new(in, "status", json_string("x"));
  RC(upd(s, "configmaps", in, 0, &r), 0, "update without subresource");
  IS(str(r.obj, "status"), "x", "status written with the object");
  OK(!at(r.obj, "metadata.generation"), "untracked: no generation");
  ml_store_result_clear(&r);
  json_decref(cm);

  RC(upd(s, "configmaps",
         J("{\"metadata\":{\"name\":\"zz\",\"namespace\":\"ns\"}}"), 0, &r),
     ML_ENOTFOUND, "update of a missing object");
  IS(ml_store_last_error(s), "configmaps \"zz\" not found",
     "not found message");
  json_decref(cur);
  json_decref(d);
  ml_store_close(s);
}

static void test_delete(void) {
  ml_store_t *s = fresh();
  rec_t w;
  ml_store_watch_t *wt = watch(s, "configmaps", NULL, NULL, NULL, "0", &w);
  json_t *a = mk(s, "configmaps", "ns", "{\"metadata\":{\"name\":\"a\"}}", 0);
  ml_store_result_t r;
  ml_store_delete_opts_t o = {.uid = "nope", .grace_seconds = -1};
  RC(ml_store_delete(s, "configmaps", "ns", "a", &o, &r), ML_ECONFLICT,
     "uid precondition");
  char want[256];
  snprintf(want, sizeof want,
           "Operation cannot be fulfilled on configmaps \"a\": Precondition "
           "failed: UID in precondition: nope, UID in object meta: %s",
           str(a, "metadata.uid"));
  IS(ml_store_last_error(s), want, "uid precondition message");
  o = (ml_store_delete_opts_t){.resource_version = "7", .grace_seconds = -1};
  RC(ml_store_delete(s, "configmaps", "ns", "a", &o, &r), ML_ECONFLICT,
     "resourceVersion precondition");
  IS(ml_store_last_error(s),
     "Operation cannot be fulfilled on configmaps \"a\": Precondition failed: "
     "ResourceVersion in precondition: 7, ResourceVersion in object meta: 1",
     "rv precondition message");
  o = (ml_store_delete_opts_t){.uid = str(a, "metadata.uid"),
                               .resource_version = "1",
                               .grace_seconds = -1};
  RC(ml_store_delete(s, "configmaps", "ns", "a", &o, &r), 0, "delete");
  OK(r.removed, "removed at once");
  IS(str(r.obj, "metadata.resourceVersion"), "2",
     "deleted object has a new rv");
  ml_store_result_clear(&r);
  RC(ml_store_get(s, "configmaps", "ns", "a", NULL, NULL), ML_ENOTFOUND,
     "gone");
  RC(ml_store_delete(s, "configmaps", "ns", "a", NULL, &r), ML_ENOTFOUND,
     "second delete: not found");
  IS(w.buf, "ADDED a 1, DELETED a 2", "watch saw ADDED, DELETED");
  json_decref(a);

  /* Finalizers keep the object until an update removes the last one. */
  rec_reset(&w);
  json_t *f = mk(s, "configmaps", "ns",
                 "{\"metadata\":{\"name\":\"f\",\"finalizers\":[\"x/y\"]}}", 0);
  RC(ml_store_delete(s, "configmaps", "ns", "f", NULL, &r), 0, "delete f");
  OK(!r.removed, "finalizers: pending");
  IS(str(r.obj, "metadata.deletionTimestamp"), "2026-11-29T10:04:05Z",
     "deletionTimestamp = now");
  OK(json_integer_value(at(r.obj, "metadata.deletionGracePeriodSeconds")) ==
             0 &&
         at(r.obj, "metadata.deletionGracePeriodSeconds"),
     "deletionGracePeriodSeconds 0");
  json_t *pending = json_incref(r.obj);
  ml_store_result_clear(&r);
  RC(ml_store_delete(s, "configmaps", "ns", "f", NULL, &r), 0, "delete again");
  OK(!r.removed && strcmp(str(r.obj, "metadata.resourceVersion"), "4") == 0,
     "second delete changes nothing");
  ml_store_result_clear(&r);
  json_t *in = json_deep_copy(pending);
  json_object_set_new(at(in, "metadata"), "labels",
                      json_pack("{ss}", "k", "v"));
  RC(upd(s, "configmaps", in, 0, &r), 0, "update while terminating");
  OK(!r.removed && at(r.obj, "metadata.deletionTimestamp"),
     "still there, still terminating");
  ml_store_result_clear(&r);
  in = json_deep_copy(pending);
  json_object_del(at(in, "metadata"), "resourceVersion");
  json_object_set_new(at(in, "metadata"), "finalizers", json_array());
  json_object_del(at(in, "metadata"), "deletionTimestamp");
  RC(upd(s, "configmaps", in, 0, &r), 0, "remove the finalizer");
  OK(r.removed, "last finalizer gone: removed");
  ml_store_result_clear(&r);
  IS(w.buf, "ADDED f 3, MODIFIED f 4, MODIFIED f 5, DELETED f 6",
     "events of a finalized delete");
  json_decref(pending);
  json_decref(f);

  /* Graceful deletion (pods). */
  json_t *p = mk(s, "pods", "ns", "{\"metadata\":{\"name\":\"p\"}}", 0);
  o = (ml_store_delete_opts_t){.grace_seconds = 30};
  RC(ml_store_delete(s, "pods", "ns", "p", &o, &r), 0, "graceful delete");
  OK(!r.removed, "pending");
  IS(str(r.obj, "metadata.deletionTimestamp"), "2026-11-29T10:04:35Z",
     "deletionTimestamp = now + 30s");
  OK(json_integer_value(at(r.obj, "metadata.deletionGracePeriodSeconds")) == 30,
     "grace 30");
  ml_store_result_clear(&r);
  uint64_t rv = ml_store_resource_version(s);
  o.grace_seconds = 60;
  RC(ml_store_delete(s, "pods", "ns", "p", &o, &r), 0, "longer grace");
  OK(ml_store_resource_version(s) == rv &&
         json_integer_value(at(r.obj, "metadata.deletionGracePeriodSeconds")) ==
             30,
     "a longer grace period is ignored");
  ml_store_result_clear(&r);
  o.grace_seconds = 10;
  RC(ml_store_delete(s, "pods", "ns", "p", &o, &r), 0, "shorter grace");
  IS(str(r.obj, "metadata.deletionTimestamp"), "2026-11-29T10:04:15Z",
     "shortened: first request time + 10s");
  OK(!r.removed && json_integer_value(
                       at(r.obj, "metadata.deletionGracePeriodSeconds")) == 10,
     "grace 10");
  ml_store_result_clear(&r);
  in = json_deep_copy(p);
  json_object_del(at(in, "metadata"), "resourceVersion");
  json_object_set_new(in, "status", json_pack("{ss}", "phase", "Running"));
  RC(upd(s, "pods", in, 0, &r), 0, "status update of a terminating pod");
  OK(!r.removed,
     "a terminating pod without finalizers is not removed by updates");
  ml_store_result_clear(&r);
  o.grace_seconds = 0;
  o.uid = str(p, "metadata.uid");
  RC(ml_store_delete(s, "pods", "ns", "p", &o, &r), 0, "final delete grace 0");
  OK(r.removed, "grace 0 removes");
  ml_store_result_clear(&r);
  json_decref(p);

  /* Graceful delete with finalizers: shortened to 0, then finalizer off. */
  p = mk(s, "pods", "ns",
         "{\"metadata\":{\"name\":\"q\",\"finalizers\":[\"a\"]}}", 0);
  o = (ml_store_delete_opts_t){.grace_seconds = 30};
  RC(ml_store_delete(s, "pods", "ns", "q", &o, &r), 0, "graceful delete q");
  ml_store_result_clear(&r);
  in = json_deep_copy(p);
  json_object_del(at(in, "metadata"), "resourceVersion");
  json_object_del(at(in, "metadata"), "finalizers");
  RC(upd(s, "pods", in, 0, &r), 0, "drop finalizer during grace period");
  OK(!r.removed, "grace period still running: kept");
  ml_store_result_clear(&r);
  o.grace_seconds = 0;
  RC(ml_store_delete(s, "pods", "ns", "q", &o, &r), 0, "grace 0");
  OK(r.removed, "removed after grace 0 with no finalizers");
  ml_store_result_clear(&r);
  json_decref(p);
  ml_store_watch_close(wt);
  ml_store_close(s);
}

static void test_list(void) {
  ml_store_t *s = fresh();
  const char *items[][3] = {
      {"b", "y",
       "{\"metadata\":{\"name\":\"y\",\"labels\":{\"app\":\"web\"}}}"},
      {"a", "z", "{\"metadata\":{\"name\":\"z\",\"labels\":{\"app\":\"db\"}}}"},
      {"b", "x",
       "{\"metadata\":{\"name\":\"x\",\"labels\":{\"app\":\"web\"}}}"},
      {"a", "w", "{\"metadata\":{\"name\":\"w\"}}"},
      {"c", "v",
       "{\"metadata\":{\"name\":\"v\",\"labels\":{\"app\":\"web\"}}}"},
  };
  for (size_t i = 0; i < 5; i++)
    json_decref(mk(s, "configmaps", items[i][0], items[i][2], 0));
  json_decref(mk(s, "secrets", "a", "{\"metadata\":{\"name\":\"s\"}}", 0));

  ml_store_list_t l;
  char got[256];
#define NAMES(l)                                             \
  do {                                                       \
    got[0] = '\0';                                           \
    for (size_t i_ = 0; i_ < (l).n; i_++) {                  \
      strcat(got, str((l).items[i_], "metadata.namespace")); \
      strcat(got, "/");                                      \
      strcat(got, str((l).items[i_], "metadata.name"));      \
      strcat(got, " ");                                      \
    }                                                        \
  } while (0)
  RC(ml_store_list(s, "configmaps", NULL, &l), 0, "list all");
  NAMES(l);
  IS(got, "a/w a/z b/x b/y c/v ", "ordered by namespace, then name");
  OK(l.resource_version == 6 && !l.continue_token, "list rv, no continue");
  ml_store_list_clear(&l);
  ml_store_list_opts_t o = {.ns = "b"};
  RC(ml_store_list(s, "configmaps", &o, &l), 0, "list one namespace");
  NAMES(l);
  IS(got, "b/x b/y ", "namespace b");
  ml_store_list_clear(&l);
  o = (ml_store_list_opts_t){.label_selector = "app=web"};
  RC(ml_store_list(s, "configmaps", &o, &l), 0, "label selector");
  NAMES(l);
  IS(got, "b/x b/y c/v ", "app=web");
  ml_store_list_clear(&l);
  o = (ml_store_list_opts_t){.label_selector = "!app"};
  RC(ml_store_list(s, "configmaps", &o, &l), 0, "label selector !app");
  NAMES(l);
  IS(got, "a/w ", "!app");
  ml_store_list_clear(&l);
  o = (ml_store_list_opts_t){.field_selector = "metadata.name=z"};
  RC(ml_store_list(s, "configmaps", &o, &l), 0, "field selector");
  NAMES(l);
  IS(got, "a/z ", "metadata.name=z");
  ml_store_list_clear(&l);
  o = (ml_store_list_opts_t){.field_selector = "metadata.namespace!=b",
                             .label_selector = "app"};
  RC(ml_store_list(s, "configmaps", &o, &l), 0, "both selectors");
  NAMES(l);
  IS(got, "a/z c/v ", "app, namespace!=b");
  ml_store_list_clear(&l);
  o = (ml_store_list_opts_t){.label_selector = "app in (web"};
  RC(ml_store_list(s, "configmaps", &o, &l), ML_EINVALID, "bad label selector");
  OK(strlen(ml_store_last_error(s)) > 0, "parser message: %s",
     ml_store_last_error(s));
  o = (ml_store_list_opts_t){.field_selector = "nonsense"};
  RC(ml_store_list(s, "configmaps", &o, &l), ML_EINVALID, "bad field selector");

  /* Paging: 2 at a time, all namespaces, with a selector. */
  o = (ml_store_list_opts_t){.limit = 2};
  char all[256] = "";
  int pages = 0;
  for (;;) {
    RC(ml_store_list(s, "configmaps", &o, &l), 0, "page");
    NAMES(l);
    strcat(all, got);
    pages++;
    OK(l.resource_version == 6, "every page reports the first page's rv");
    free((char *)o.continue_token);
    o.continue_token = l.continue_token ? strdup(l.continue_token) : NULL;
    ml_store_list_clear(&l);
    if (!o.continue_token) break;
    /* A write between pages does not change the token's version. */
    if (pages == 1)
      json_decref(
          mk(s, "configmaps", "zz", "{\"metadata\":{\"name\":\"n\"}}", 0));
  }
  IS(all, "a/w a/z b/x b/y c/v zz/n ", "pages cover everything once");
  OK(pages == 3, "three pages (%d)", pages);
  o = (ml_store_list_opts_t){
      .limit = 1, .ns = "b", .label_selector = "app=web"};
  RC(ml_store_list(s, "configmaps", &o, &l), 0, "namespaced page 1");
  NAMES(l);
  IS(got, "b/x ", "b page 1");
  o.continue_token = l.continue_token;
  ml_store_list_t l2;
  RC(ml_store_list(s, "configmaps", &o, &l2), 0, "namespaced page 2");
  NAMES(l2);
  IS(got, "b/y ", "b page 2");
  OK(!l2.continue_token, "no continue after the last match");
  ml_store_list_clear(&l);
  ml_store_list_clear(&l2);
  o = (ml_store_list_opts_t){.continue_token = "bm90IGpzb24"};
  RC(ml_store_list(s, "configmaps", &o, &l), ML_EBADREQ, "bad continue token");

  /* list_json is the same list as text. */
  char *text = NULL, *cont = NULL;
  size_t len;
  uint64_t rv;
  o = (ml_store_list_opts_t){.limit = 3};
  RC(ml_store_list_json(s, "configmaps", &o, &text, &len, &rv, &cont), 0,
     "list_json");
  json_t *arr = json_loads(text, 0, NULL);
  OK(json_array_size(arr) == 3 && strlen(text) == len && cont,
     "list_json: 3 items, continue");
  RC(ml_store_list(s, "configmaps", &o, &l), 0, "list for comparison");
  int same = l.n == 3;
  for (size_t i = 0; same && i < 3; i++)
    same = json_equal(l.items[i], json_array_get(arr, i));
  OK(same, "list_json items equal list items");
  ml_store_list_clear(&l);
  json_decref(arr);
  free(text);
  free(cont);
  RC(ml_store_list_json(s, "nothing", NULL, &text, &len, &rv, &cont), 0,
     "list_json of an unknown resource");
  IS(text, "[]", "empty array");
  free(text);
  ml_store_close(s);
}

static void test_watch(void) {
  ml_store_t *s =
      open_store(strcmp(backend, "sqlite") == 0 ? db_path() : NULL, 4);
  json_decref(mk(s, "configmaps", "a",
                 "{\"metadata\":{\"name\":\"one\",\"labels\":{\"t\":\"x\"}}}",
                 0));
  json_decref(mk(s, "configmaps", "b", "{\"metadata\":{\"name\":\"two\"}}", 0));
  json_decref(mk(s, "secrets", "a", "{\"metadata\":{\"name\":\"sec\"}}", 0));
  rec_t all, ns, sel, from1, fld;
  ml_store_watch_t *wall = watch(s, "configmaps", NULL, NULL, NULL, "0", &all);
  IS(all.buf, "ADDED one 1, ADDED two 2", "rv 0: ADDED for current objects");
  ml_store_watch_t *wns = watch(s, "configmaps", "b", NULL, NULL, "", &ns);
  IS(ns.buf, "ADDED two 2", "namespace filter on initial events");
  ml_store_watch_t *wsel = watch(s, "configmaps", NULL, "t=x", NULL, "3", &sel);
  IS(sel.buf, "", "from the current rv: nothing yet");
  ml_store_watch_t *w1 = watch(s, "configmaps", NULL, NULL, NULL, "1", &from1);
  IS(from1.buf, "ADDED two 2", "from rv 1: replays the window");
  ml_store_watch_t *wf =
      watch(s, "configmaps", NULL, NULL, "metadata.name=two", "0", &fld);
  IS(fld.buf, "ADDED two 2", "field selector");

  ml_store_result_t r;
  json_t *two = NULL;
  ml_store_get(s, "configmaps", "b", "two", &two, NULL);
  json_t *in = json_deep_copy(two);
  json_object_set_new(at(in, "metadata"), "labels",
                      json_pack("{ss}", "t", "x"));
  RC(upd(s, "configmaps", in, 0, &r), 0, "two starts matching t=x");
  ml_store_result_clear(&r);
  in =
      J("{\"metadata\":{\"name\":\"one\",\"namespace\":\"a\",\"labels\":{\"t\":"
        "\"y\"}}}");
  RC(upd(s, "configmaps", in, 0, &r), 0, "one stops matching t=x");
  ml_store_result_clear(&r);
  RC(ml_store_delete(s, "configmaps", "b", "two", NULL, &r), 0, "delete two");
  ml_store_result_clear(&r);
  IS(sel.buf, "ADDED two 4, DELETED one 5, DELETED two 6",
     "selector transitions: ADDED when matching starts, DELETED when it ends");
  IS(all.buf,
     "ADDED one 1, ADDED two 2, MODIFIED two 4, MODIFIED one 5, DELETED two 6",
     "unfiltered watcher sees every change in order");
  IS(ns.buf, "ADDED two 2, MODIFIED two 4, DELETED two 6", "namespace watcher");
  IS(fld.buf, "ADDED two 2, MODIFIED two 4, DELETED two 6", "field watcher");
  json_decref(two);

  /* Resuming with a selector replays the same transitions from the window,
   * and the exit event carries the old labels with the event's rv. */
  rec_t again;
  ml_store_watch_t *wagain =
      watch(s, "configmaps", NULL, "t=x", NULL, "3", &again);
  IS(again.buf, sel.buf, "replay with a selector gives the same events");
  ml_store_watch_close(wagain);
  last_text_t lt = {0};
  ml_store_watch_opts_t lo = {.label_selector = "t=x", .resource_version = "4"};
  ml_store_watch_t *wlast = NULL;
  RC(ml_store_watch(s, "configmaps", &lo, last_text_fn, &lt, &wlast), 0,
     "watch for the exit event");
  json_t *exit_doc = json_loads(lt.first, 0, NULL);
  IS(str(exit_doc, "metadata.name"), "one", "exit event: the object");
  IS(str(exit_doc, "metadata.labels.t"), "x", "exit event: previous labels");
  IS(str(exit_doc, "metadata.resourceVersion"), "5", "exit event: event's rv");
  json_decref(exit_doc);
  ml_store_watch_close(wlast);

  ml_store_watch_close(wsel);
  ml_store_watch_close(w1);
  ml_store_watch_close(wf);
  ml_store_watch_close(wns);

  /* Window of 4 events: after rv 9 it holds 6..9, so 5 resumes, 4 is Gone. */
  for (int i = 0; i < 3; i++) {
    char t[80];
    snprintf(t, sizeof t, "{\"metadata\":{\"name\":\"n%d\"}}", i);
    json_decref(mk(s, "configmaps", "c", t, 0));
  }
  rec_t late;
  ml_store_watch_opts_t wo = {.resource_version = "5"};
  ml_store_watch_t *wl = NULL;
  RC(ml_store_watch(s, "configmaps", &wo, rec_fn, &late, &wl), 0,
     "resume at the window's floor");
  ml_store_watch_close(wl);
  wo.resource_version = "4";
  rec_reset(&late);
  RC(ml_store_watch(s, "configmaps", &wo, rec_fn, &late, &wl), ML_EGONE,
     "resume before the window: Gone");
  IS(ml_store_last_error(s), "too old resource version: 4 (5)", "Gone message");
  wo.resource_version = "100";
  RC(ml_store_watch(s, "configmaps", &wo, rec_fn, &late, &wl), ML_ETIMEDOUT,
     "future version");
  IS(ml_store_last_error(s), "Too large resource version: 100, current: 9",
     "too large message");
  wo.resource_version = "abc";
  RC(ml_store_watch(s, "configmaps", &wo, rec_fn, &late, &wl), ML_EINVALID,
     "bad version");
  wo = (ml_store_watch_opts_t){.label_selector = "a in"};
  RC(ml_store_watch(s, "configmaps", &wo, rec_fn, &late, &wl), ML_EINVALID,
     "bad selector");

  /* Time bound: after 10 quiet minutes the old events are gone. */
  ml_store_set_time(s, 1795946645 + 600);
  json_decref(
      mk(s, "configmaps", "c", "{\"metadata\":{\"name\":\"late\"}}", 0));
  wo = (ml_store_watch_opts_t){.resource_version = "8"};
  RC(ml_store_watch(s, "configmaps", &wo, rec_fn, &late, &wl), ML_EGONE,
     "events older than the time bound are gone");
  wo.resource_version = "9";
  rec_reset(&late);
  RC(ml_store_watch(s, "configmaps", &wo, rec_fn, &late, &wl), 0,
     "resume from the last evicted version");
  IS(late.buf, "ADDED late 10", "replay after the time bound");
  ml_store_watch_close(wl);

  /* Closing the store tells the remaining watchers. */
  rec_reset(&all);
  ml_store_close(s);
  IS(all.buf, "CLOSED", "store close notifies watchers");
  (void)wall;
}

/* A watcher that closes itself from its callback. */
typedef struct {
  ml_store_watch_t *w;
  int n;
} selfclose_t;

static void selfclose_fn(void *ud, int type, ml_store_text_t *t) {
  (void)type, (void)t;
  selfclose_t *c = ud;
  c->n++;
  ml_store_watch_close(c->w);
}

/* owner_events: a watch that hears only what ownership bookkeeping needs
 * (objects with owners, finalizers or a deletion under way, before or
 * after the change, and every deletion), live, replayed and initial. */
static void test_watch_owner_events(void) {
  ml_store_t *s = fresh();
  json_decref(mk(s, "configmaps", "a", "{\"metadata\":{\"name\":\"plain\"}}", 0));
  json_decref(mk(s, "configmaps", "a",
                 "{\"metadata\":{\"name\":\"owned\",\"ownerReferences\":[{\"apiVersion\":"
                 "\"v1\",\"kind\":\"ConfigMap\",\"name\":\"plain\",\"uid\":\"u1\"}]}}",
                 0));
  rec_t live, init;
  ml_store_watch_opts_t o = {.resource_version = "0", .owner_events = true};
  ml_store_watch_t *wi = NULL;
  rec_reset(&init);
  RC(ml_store_watch(s, "configmaps", &o, rec_fn, &init, &wi), 0, "owner watch from 0");
  IS(init.buf, "ADDED owned 2", "initial state: only the object with owners");
  o.resource_version = "2";
  ml_store_watch_t *wl = NULL;
  rec_reset(&live);
  RC(ml_store_watch(s, "configmaps", &o, rec_fn, &live, &wl), 0, "owner watch from 2");
  json_decref(mk(s, "configmaps", "a", "{\"metadata\":{\"name\":\"other\",\"labels\":{}}}", 0));
  IS(live.buf, "", "a plain create is not delivered");
  ml_store_result_t r;
  json_t *in = J("{\"metadata\":{\"name\":\"plain\",\"namespace\":\"a\",\"labels\":{\"x\":\"y\"},"
                 "\"ownerReferences\":[],\"finalizers\":[]},\"data\":{\"k\":\"v\"}}");
  RC(upd(s, "configmaps", in, 0, &r), 0, "edit the plain object");
  ml_store_result_clear(&r);
  IS(live.buf, "", "nor its edit (empty lists count as none)");
  in = J("{\"metadata\":{\"name\":\"plain\",\"namespace\":\"a\",\"finalizers\":[\"x.io/keep\"]}}");
  RC(upd(s, "configmaps", in, 0, &r), 0, "add a finalizer");
  ml_store_result_clear(&r);
  IS(live.buf, "MODIFIED plain 5", "gaining a finalizer is delivered");
  in = J("{\"metadata\":{\"name\":\"plain\",\"namespace\":\"a\"}}");
  RC(upd(s, "configmaps", in, 0, &r), 0, "drop the finalizer");
  ml_store_result_clear(&r);
  IS(live.buf, "MODIFIED plain 5, MODIFIED plain 6", "losing it too (the old state had it)");
  rec_reset(&live);
  RC(ml_store_delete(s, "configmaps", "a", "other", NULL, &r), 0, "delete a plain object");
  ml_store_result_clear(&r);
  IS(live.buf, "DELETED other 7", "every deletion is delivered");
  rec_t replay;
  o.resource_version = "2";
  ml_store_watch_t *wr = NULL;
  rec_reset(&replay);
  RC(ml_store_watch(s, "configmaps", &o, rec_fn, &replay, &wr), 0, "replay from 2");
  IS(replay.buf, "MODIFIED plain 5, MODIFIED plain 6, DELETED other 7",
     "a replay from the window is filtered the same way");
  ml_store_watch_close(wi);
  ml_store_watch_close(wl);
  ml_store_watch_close(wr);
  ml_store_close(s);
}

static void test_watch_close_inside(void) {
  ml_store_t *s = fresh();
  json_decref(mk(s, "configmaps", "a", "{\"metadata\":{\"name\":\"a\"}}", 0));
  json_decref(mk(s, "configmaps", "a", "{\"metadata\":{\"name\":\"b\"}}", 0));
  selfclose_t c = {0};
  ml_store_watch_opts_t o = {.resource_version = "2"};
  RC(ml_store_watch(s, "configmaps", &o, selfclose_fn, &c, &c.w), 0, "watch");
  json_decref(mk(s, "configmaps", "a", "{\"metadata\":{\"name\":\"c\"}}", 0));
  json_decref(mk(s, "configmaps", "a", "{\"metadata\":{\"name\":\"d\"}}", 0));
  OK(c.n == 1, "closed inside its callback: one event, then nothing");
  selfclose_t c2 = {0};
  o.resource_version = "0";
  RC(ml_store_watch(s, "configmaps", &o, selfclose_fn, &c2, &c2.w), 0,
     "watch closing during its initial events");
  OK(c2.n == 1 && c2.w == NULL, "no handle for a watcher closed at once");
  ml_store_close(s);
}

/* {====== persistence (sqlite) */

static void test_reopen(void) {
  char path[300];
  snprintf(path, sizeof path, "%s", db_path());
  ml_store_t *s = open_store(path, 0);
  json_t *a = mk(s, "configmaps", "ns",
                 "{\"metadata\":{\"name\":\"a\"},\"data\":{\"k\":\"v\"}}", 0);
  json_t *b =
      mk(s, "apps/deployments", "ns",
         "{\"metadata\":{\"name\":\"b\"},\"spec\":{}}", ML_STORE_GENERATION);
  json_t *c = mk(s, "configmaps", "ns", "{\"metadata\":{\"name\":\"c\"}}", 0);
  ml_store_result_t r;
  RC(ml_store_delete(s, "configmaps", "ns", "c", NULL, &r), 0,
     "delete the newest");
  ml_store_result_clear(&r);
  RC(ml_store_commit(s), 0, "commit");
  ml_store_close(s);

  s = open_store(path, 0);
  OK(ml_store_resource_version(s) == 4,
     "rv counter continues from the highest used (4), not the newest object");
  json_t *a2 = NULL, *b2 = NULL;
  RC(ml_store_get(s, "configmaps", "ns", "a", &a2, NULL), 0, "a reloaded");
  RC(ml_store_get(s, "apps/deployments", "ns", "b", &b2, NULL), 0,
     "b reloaded");
  OK(json_equal(a, a2) && json_equal(b, b2), "same documents, same uids");
  RC(ml_store_get(s, "configmaps", "ns", "c", NULL, NULL), ML_ENOTFOUND,
     "deleted stays deleted");
  json_t *d = mk(s, "configmaps", "ns", "{\"metadata\":{\"name\":\"d\"}}", 0);
  IS(str(d, "metadata.resourceVersion"), "5", "new writes continue at 5");
  rec_t w;
  ml_store_watch_opts_t wo = {.resource_version = "3"};
  ml_store_watch_t *wt = NULL;
  RC(ml_store_watch(s, "configmaps", &wo, rec_fn, &w, &wt), ML_EGONE,
     "history before the reopen is gone");
  ml_store_text_t *t = NULL;
  ml_store_get(s, "configmaps", "ns", "a", NULL, &t);
  json_t *parsed = t ? json_loads(t->data, 0, NULL) : NULL;
  OK(parsed && json_equal(parsed, a), "cached text of a loaded object");
  json_decref(parsed);
  ml_store_text_unref(t);
  json_decref(a), json_decref(b), json_decref(c), json_decref(d);
  json_decref(a2), json_decref(b2);
  /* A delete-only commit records the counter; a later create-only commit
   * leaves the record behind its row, and a reload takes the larger. */
  RC(ml_store_commit(s), 0, "commit d");
  RC(ml_store_delete(s, "configmaps", "ns", "d", NULL, &r), 0, "delete d (rv 6)");
  ml_store_result_clear(&r);
  RC(ml_store_commit(s), 0, "commit the delete");
  json_decref(mk(s, "configmaps", "ns", "{\"metadata\":{\"name\":\"e\"}}", 0));
  RC(ml_store_commit(s), 0, "commit e (rv 7)");
  RC(ml_store_delete(s, "configmaps", "ns", "e", NULL, &r), 0, "delete e (rv 8)");
  ml_store_result_clear(&r);
  RC(ml_store_commit(s), 0, "commit the second delete");
  ml_store_close(s);
  s = open_store(path, 0);
  OK(ml_store_resource_version(s) == 8,
     "after delete, create, delete commits the counter reloads as 8 (%" PRIu64 ")",
     ml_store_resource_version(s));
  /* A string may hold U+0000 (the API takes "\u0000"): stored as an
   * escape, it must read back after a restart, not be skipped. */
  json_t *nul = json_pack("{s:{s:s},s:{s:s%}}", "metadata", "name", "f", "data", "k",
                          "a\0b", (size_t)3);
  ml_store_result_t fr;
  RC(ml_store_create(s, "configmaps", "ns", nul, 0, &fr), 0, "create f with a NUL in a value");
  ml_store_result_clear(&fr);
  RC(ml_store_commit(s), 0, "commit f (rv 9)");
  ml_store_close(s);
  s = open_store(path, 0);
  OK(ml_store_resource_version(s) == 9, "a create-only commit's row carries the counter (%" PRIu64 ")",
     ml_store_resource_version(s));
  json_t *f2 = NULL;
  RC(ml_store_get(s, "configmaps", "ns", "f", &f2, NULL), 0, "f reloaded");
  json_t *fv = json_object_get(json_object_get(f2, "data"), "k");
  OK(fv && json_string_length(fv) == 3 && memcmp(json_string_value(fv), "a\0b", 3) == 0,
     "its value keeps the NUL");
  json_decref(f2);
  json_decref(nul);
  ml_store_close(s);

  /* A second store on the same file is refused while the first is open. */
  s = open_store(path, 0);
  ml_store_options_t o = {.backend = "sqlite", .path = path};
  ml_store_t *s2 = NULL;
  char *err = NULL;
  OK(ml_store_open(&o, &s2, &err) == ML_EIO && err, "second open refused: %s",
     err ? err : "");
  free(err);
  ml_store_close(s);
}

static void commit_hook(ml_loop_t *loop, void *ud) {
  (void)loop;
  ml_store_commit(ud);
}

/* The child writes, lets the end-of-turn hook commit, writes once more
 * without a commit, reports, and dies by SIGKILL. */
static void crash_child(const char *path, const char *sync, int fd) {
  uv_loop_t uv;
  ml_loop_t loop;
  uv_loop_init(&uv);
  ml_loop_init(&loop, &uv);
  ml_store_options_t o = {.backend = "sqlite", .path = path, .sync = sync};
  ml_store_t *s = NULL;
  char *err = NULL;
  if (ml_store_open(&o, &s, &err) != 0) _exit(3);
  ml_loop_add_hook(&loop, commit_hook, s);
  for (int i = 0; i < 50; i++) {
    char t[80];
    snprintf(t, sizeof t, "{\"metadata\":{\"name\":\"cm-%d\"}}", i);
    json_t *in = json_loads(t, 0, NULL);
    ml_store_result_t r;
    if (ml_store_create(s, "configmaps", "ns", in, 0, &r) != 0) _exit(4);
    ml_store_result_clear(&r);
    json_decref(in);
  }
  ml_loop_run_hooks(&loop); /* the turn ends: committed */
  json_t *in = json_loads("{\"metadata\":{\"name\":\"uncommitted\"}}", 0, NULL);
  ml_store_result_t r;
  ml_store_create(s, "configmaps", "ns", in, 0, &r);
  if (write(fd, "x", 1) != 1) _exit(5);
  pause(); /* the parent kills us here */
  _exit(6);
}

static void test_crash(const char *sync) {
  printf("# crash with sync=%s\n", sync);
  char path[300];
  snprintf(path, sizeof path, "%s", db_path());
  int fds[2];
  if (pipe(fds) != 0) exit(2);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    crash_child(path, sync, fds[1]);
  }
  close(fds[1]);
  char c;
  OK(read(fds[0], &c, 1) == 1, "child committed and reported");
  close(fds[0]);
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  OK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child died by SIGKILL");
  ml_store_t *s = open_store(path, 0);
  ml_store_list_t l;
  RC(ml_store_list(s, "configmaps", NULL, &l), 0, "list after crash");
  OK(l.n == 50, "all 50 committed objects survived kill -9 (%zu)", l.n);
  ml_store_list_clear(&l);
  RC(ml_store_get(s, "configmaps", "ns", "uncommitted", NULL, NULL),
     ML_ENOTFOUND, "the uncommitted write is not there");
  OK(ml_store_resource_version(s) == 50, "rv continues at 50");
  ml_store_close(s);
}

/* }====== */

/* Sanitizers slow everything down several times: report, do not judge. */
#if defined(__SANITIZE_ADDRESS__)
#define ML_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ML_SANITIZED 1
#endif
#endif
/* A bound that catches a quadratic list, not the 150 ms target:
 * that is bench_api.sh's figure. On a 2-core machine running the suite in
 * parallel a 26 ms list took over 150 ms. */
#ifdef ML_SANITIZED
#define LIST_BUDGET_MS 2000
#else
#define LIST_BUDGET_MS 1000
#endif

static void test_perf(void) {
  ml_store_t *s = fresh();
  enum { N = 10000 };
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < N; i++) {
    char t[200];
    snprintf(t, sizeof t,
             "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
             "{\"name\":\"cm-%05d\",\"labels\":{\"app\":\"bench\"}},"
             "\"data\":{\"key\":\"value-%d\"}}",
             i, i);
    json_t *in = json_loads(t, 0, NULL);
    ml_store_result_t r;
    if (ml_store_create(s, "configmaps", "default", in, 0, &r) != 0) break;
    ml_store_result_clear(&r);
    json_decref(in);
    if (i % 100 == 99) ml_store_commit(s);
  }
  ml_store_commit(s);
  double create_ms = (double)(uv_hrtime() - t0) / 1e6;
  printf("# %s: %d creates (commit per 100) in %.1f ms (%.1f us each)\n",
         backend, N, create_ms, create_ms * 1000 / N);
  t0 = uv_hrtime();
  char *text = NULL, *cont = NULL;
  size_t len;
  uint64_t rv;
  int rc = ml_store_list_json(s, "configmaps", NULL, &text, &len, &rv, &cont);
  double list_ms = (double)(uv_hrtime() - t0) / 1e6;
  printf("# list_json of %d objects: %.2f ms, %zu bytes\n", N, list_ms, len);
  OK(rc == 0 && list_ms < LIST_BUDGET_MS,
     "list_json of 10,000 objects under %d ms", LIST_BUDGET_MS);
  free(text);
  t0 = uv_hrtime();
  ml_store_list_opts_t o = {.label_selector = "app=bench"};
  rc = ml_store_list_json(s, "configmaps", &o, &text, &len, &rv, &cont);
  list_ms = (double)(uv_hrtime() - t0) / 1e6;
  printf("# list_json with a label selector: %.2f ms\n", list_ms);
  OK(rc == 0 && list_ms < LIST_BUDGET_MS, "selector list under %d ms",
     LIST_BUDGET_MS);
  free(text);
  ml_store_close(s);
}

static ml_store_t *loop_store;

static void on_write_timer(uv_timer_t *t) {
  json_t *in = json_loads("{\"metadata\":{\"name\":\"from-loop\"}}", 0, NULL);
  ml_store_result_t r;
  ml_store_create(loop_store, "configmaps", "ns", in, 0, &r);
  ml_store_result_clear(&r);
  json_decref(in);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_loop(void) {
  char path[300];
  snprintf(path, sizeof path, "%s", db_path());
  uv_loop_t uv;
  ml_loop_t loop;
  uv_loop_init(&uv);
  ml_loop_init(&loop, &uv);
  loop_store = open_store(path, 0);
  ml_store_t *s = loop_store;
  RC(ml_loop_add_hook(&loop, commit_hook, s), 0, "commit hook added");
  uv_timer_t t;
  uv_timer_init(&uv, &t);
  uv_timer_start(&t, on_write_timer, 1, 0);
  ml_loop_run(&loop, NULL, NULL);
  /* Durability of the hook's commit itself is test_crash's business. */
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int n = -1;
  ml_store_close(s); /* releases the exclusive lock (after committing) */
  if (sqlite3_open(path, &db) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "SELECT count(*) FROM objects", -1, &st, NULL) ==
          SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  OK(n == 1, "the write made in a loop callback is in the database");
  ml_loop_close(&loop);
  OK(uv_loop_close(&uv) == 0, "uv_loop_close() == 0");
}

static void run_suite(const char *name) {
  backend = name;
  printf("# backend %s\n", name);
  test_create();
  test_generate_name();
  test_update();
  test_delete();
  test_list();
  test_watch();
  test_watch_owner_events();
  test_watch_close_inside();
  test_perf();
}

static void rmtree(const char *dir) {
  uv_fs_t req;
  uv_dirent_t ent;
  if (uv_fs_scandir(NULL, &req, dir, 0, NULL) >= 0) {
    while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
      char p[600];
      snprintf(p, sizeof p, "%s/%s", dir, ent.name);
      unlink(p);
    }
  }
  uv_fs_req_cleanup(&req);
  rmdir(dir);
}

int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/ml-store-XXXXXX",
           base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 2;
  }
  run_suite("memory");
  run_suite("sqlite");
  backend = "sqlite";
  test_reopen();
  test_crash("full");
  test_crash("normal");
  ml_store_options_t so = {
      .backend = "sqlite", .path = db_path(), .sync = "sometimes"};
  ml_store_t *bad = NULL;
  char *serr = NULL;
  OK(ml_store_open(&so, &bad, &serr) == ML_EINVALID && serr,
     "unknown sync mode refused: %s", serr ? serr : "");
  free(serr);

  /* Unknown backends are refused. */
  ml_store_options_t o = {.backend = "etcd"};
  ml_store_t *s = NULL;
  char *err = NULL;
  OK(ml_store_open(&o, &s, &err) == ML_EINVALID && err, "unknown backend: %s",
     err ? err : "");
  free(err);

  test_loop();
  rmtree(tmpdir);
  printf("1..%d\n", ntests);
  return nfail ? 1 : 0;
}
