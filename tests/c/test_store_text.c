/* The object store keeps objects as text only (plus a copy of their
 * labels): counts the parsed-JSON memory left live after many writes, and
 * checks the reads that now parse on demand (get, list, label and field
 * selectors, watch start, update and delete preconditions). Prints TAP. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "store.h"

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

/* Live bytes allocated by jansson: each block carries its size in front. */
static size_t live_json;

static void *count_malloc(size_t n) {
  size_t *p = malloc(sizeof(max_align_t) + n);
  if (!p) return NULL;
  *p = n;
  live_json += n;
  return (char *)p + sizeof(max_align_t);
}

static void count_free(void *ptr) {
  if (!ptr) return;
  size_t *p = (size_t *)((char *)ptr - sizeof(max_align_t));
  live_json -= *p;
  free(p);
}

#define N 400

static json_t *configmap(int i, const char *app) {
  json_t *o = json_pack(
      "{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:{s:s, s:s, s:s}}",
      "apiVersion", "v1", "kind", "ConfigMap", "metadata", "name", "", "namespace",
      "default", "labels", "app", app, "tier", "backend", "data", "a",
      "some configuration text of a realistic length, repeated", "b",
      "more configuration text: key = value; other = thing", "c",
      "and a third entry so the object has some body to it");
  char name[32];
  snprintf(name, sizeof name, "cm-%d", i);
  json_object_set_new(json_object_get(o, "metadata"), "name",
                      json_string(name));
  return o;
}

static int write_one(ml_store_t *s, json_t *in, bool update) {
  ml_store_result_t r;
  int rc = update ? ml_store_update(s, "configmaps", in, 0, &r)
                  : ml_store_create(s, "configmaps", "default", in, 0, &r);
  json_decref(in);
  if (rc == 0) ml_store_result_clear(&r);
  return rc;
}

static size_t list_n(ml_store_t *s, const char *label, const char *field) {
  ml_store_list_opts_t o = {.label_selector = label, .field_selector = field};
  ml_store_list_t l;
  if (ml_store_list(s, "configmaps", &o, &l) != 0) return (size_t)-1;
  size_t n = l.n;
  ml_store_list_clear(&l);
  return n;
}

static void count_event(void *ud, int type, ml_store_text_t *text) {
  (void)type;
  (void)text;
  (*(int *)ud)++;
}

int main(void) {
  json_set_alloc_funcs(count_malloc, count_free);
  ml_store_options_t so = {.backend = "memory", .watch_window = 16};
  ml_store_t *s = NULL;
  char *err = NULL;
  if (ml_store_open(&so, &s, &err) != 0) {
    printf("Bail out! open: %s\n", err ? err : "?");
    return 2;
  }
  size_t before = live_json;
  int bad = 0;
  for (int i = 0; i < N; i++)
    if (write_one(s, configmap(i, i % 2 ? "odd" : "even"), false)) bad++;
  /* Every object rewritten once: the update path reads the old state. */
  for (int i = 0; i < N; i++) {
    json_t *o = configmap(i, i % 2 ? "odd" : "even");
    json_object_set_new(json_object_get(o, "data"), "d", json_string("new"));
    if (write_one(s, o, true)) bad++;
  }
  ml_store_commit(s);
  OK(bad == 0, "%d creates and %d updates", N, N);
  size_t per = (live_json - before) / N;
  printf("# parsed JSON live after the writes: %zu bytes per object\n", per);
  /* A parsed copy of each object would be several kilobytes; what stays
   * is the labels copy. */
  OK(per < 1000, "no parsed document kept per object (%zu bytes each)", per);

  /* Reads parse on demand and hand out the caller's own copy. */
  json_t *got = NULL;
  OK(ml_store_get(s, "configmaps", "default", "cm-7", &got, NULL) == 0 &&
         strcmp(json_string_value(json_object_get(
                    json_object_get(got, "data"), "d")),
                "new") == 0,
     "get parses the latest state");
  json_object_set_new(got, "data", json_string("scribbled"));
  json_decref(got);
  got = NULL;
  ml_store_get(s, "configmaps", "default", "cm-7", &got, NULL);
  OK(got && json_is_object(json_object_get(got, "data")),
     "a caller's change to a read object does not reach the store");
  json_decref(got);

  OK(list_n(s, NULL, NULL) == N, "list all");
  OK(list_n(s, "app=odd", NULL) == N / 2, "label selector from kept labels");
  OK(list_n(s, NULL, "metadata.name=cm-3") == 1, "field selector parses");
  /* A label change moves the object between selections. */
  json_t *o = configmap(3, "even");
  OK(write_one(s, o, true) == 0, "relabel cm-3");
  OK(list_n(s, "app=odd", NULL) == N / 2 - 1 &&
         list_n(s, "app=even", NULL) == N / 2 + 1,
     "kept labels follow the update");

  int events = 0;
  ml_store_watch_t *w = NULL;
  ml_store_watch_opts_t wo = {.label_selector = "app=even"};
  int wrc = ml_store_watch(s, "configmaps", &wo, count_event, &events, &w);
  OK(wrc == 0 && events == N / 2 + 1,
     "watch start matches kept labels (%d ADDED)", events);

  /* Preconditions read the parsed old state. */
  o = configmap(5, "odd");
  json_object_set_new(json_object_get(o, "metadata"), "resourceVersion",
                      json_string("1"));
  OK(write_one(s, o, true) == ML_ECONFLICT, "stale resourceVersion conflicts");
  ml_store_delete_opts_t dopt = {.uid = "nope", .grace_seconds = -1};
  ml_store_result_t r;
  OK(ml_store_delete(s, "configmaps", "default", "cm-5", &dopt, &r) ==
         ML_ECONFLICT,
     "uid precondition on delete");
  OK(ml_store_delete(s, "configmaps", "default", "cm-4", NULL, &r) == 0 &&
         r.removed && events == N / 2 + 2,
     "delete removes and the watcher sees it");
  ml_store_result_clear(&r);
  OK(list_n(s, "app=even", NULL) == N / 2, "gone from the selection");
  ml_store_watch_close(w);
  ml_store_close(s);
  OK(live_json == 0, "no parsed JSON left after close (%zu bytes)", live_json);
  printf("1..%d\n", ntests);
  return nfail ? 1 : 0;
}
