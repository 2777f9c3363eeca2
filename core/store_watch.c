/* Watch for the object store: a ring buffer of the most recent events (the
 * window a watch may resume from, bounded by count and age) and the list of
 * watchers. Events are matched per watcher the way the apiserver's watch
 * cache does it: with a selector, an object that starts matching arrives as
 * ADDED and one that stops matching as DELETED (its previous content with
 * the event's resourceVersion). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json_scan.h"
#include "log.h"
#include "store_internal.h"

int ml__store_window_init(ml_store_t *s, size_t cap) {
  s->ring = calloc(cap, sizeof *s->ring);
  if (!s->ring) return ML_ENOMEM;
  s->ring_cap = cap;
  return 0;
}

static void event_release(ml__store_event_t *ev) {
  free(ev->ns);
  ml_store_text_unref(ev->text);
  ml_store_text_unref(ev->prev);
  ml_store_text_unref(ev->exit_text);
  memset(ev, 0, sizeof *ev);
}

/* The i-th oldest event of the window. */
static ml__store_event_t *ring_at(ml_store_t *s, size_t i) {
  return &s->ring[(s->ring_head + i) % s->ring_cap];
}

static void evict_oldest(ml_store_t *s) {
  ml__store_event_t *ev = ring_at(s, 0);
  s->floor = ev->rv;
  event_release(ev);
  s->ring_head = (s->ring_head + 1) % s->ring_cap;
  s->ring_len--;
}

/* Drops events older than the time bound. */
static void prune(ml_store_t *s) {
  int64_t limit = ml__store_now_ms(s) - (int64_t)s->window_seconds * 1000;
  while (s->ring_len && ring_at(s, 0)->time_ms < limit) evict_oldest(s);
}

void ml__store_window_free(ml_store_t *s) {
  while (s->ring_len) evict_oldest(s);
  free(s->ring);
  s->ring = NULL;
}

/* The parsed states of one event, as far as some watcher needed them:
 * handed in by a live write, parsed from the texts when resuming. */
typedef struct {
  ml__store_event_t *ev;
  const json_t *obj, *prev;
  json_t *owned_obj, *owned_prev;
  int obj_owner; /* owner_relevant of the new state if known, else -1 */
} states_t;

static const json_t *state_obj(states_t *st) {
  if (!st->obj)
    st->obj = st->owned_obj =
        ml__store_parse(st->ev->text->data, st->ev->text->len, NULL);
  return st->obj;
}

static const json_t *state_prev(states_t *st) {
  if (!st->prev && st->ev->prev)
    st->prev = st->owned_prev =
        ml__store_parse(st->ev->prev->data, st->ev->prev->len, NULL);
  return st->prev;
}

static void states_free(states_t *st) {
  json_decref(st->owned_obj);
  json_decref(st->owned_prev);
}

/* The previous content of an object with the event's resourceVersion,
 * serialized once per event however many watchers need it. */
static ml_store_text_t *exit_text(states_t *st) {
  ml__store_event_t *ev = st->ev;
  if (ev->exit_text) return ev->exit_text;
  const json_t *prev = state_prev(st);
  json_t *doc = prev ? json_copy((json_t *)prev) : NULL;
  json_t *meta = doc ? json_copy(json_object_get(prev, "metadata")) : NULL;
  if (meta) {
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, ev->rv);
    json_object_set_new(meta, "resourceVersion", json_string(buf));
    json_object_set_new(doc, "metadata", meta);
    ev->exit_text = ml__store_serialize(doc);
  }
  json_decref(doc);
  return ev->exit_text;
}

static bool matches(ml_store_watch_t *w, const json_t *doc) {
  return doc && ml__store_matches(w->lsel, w->fsel, doc);
}

/* Converts the event for one watcher as the apiserver's watch cache does. */
/* True when member `key` of the object text[0..len) is there and is not
 * null, an empty list or an empty string. */
static bool member_set(const char *text, size_t len, const char *key) {
  size_t off, vlen;
  if (ml_json_member(text, len, key, &off, &vlen) != 0) return false;
  const char *v = text + off;
  return !(vlen == 4 && memcmp(v, "null", 4) == 0) &&
         !(vlen == 2 && (memcmp(v, "[]", 2) == 0 || memcmp(v, "\"\"", 2) == 0));
}

/* Whether an object's stored text matters to ownership bookkeeping: it
 * names owners, holds finalizers or is being deleted. Read from the text
 * (a scan of its metadata, no parse), which replays have too. */
static bool owner_relevant(const ml_store_text_t *t) {
  size_t off, len;
  if (!t || ml_json_member(t->data, t->len, "metadata", &off, &len) != 0) return false;
  const char *m = t->data + off;
  return member_set(m, len, "ownerReferences") || member_set(m, len, "finalizers") ||
         member_set(m, len, "deletionTimestamp");
}

/* member_set on a parsed metadata object: the same answer, no scan. */
static bool doc_member_set(const json_t *meta, const char *key) {
  const json_t *v = json_object_get(meta, key);
  if (!v || json_is_null(v)) return false;
  if (json_is_array(v)) return json_array_size(v) > 0;
  if (json_is_string(v)) return json_string_length(v) > 0;
  return true;
}

static bool doc_owner_relevant(const json_t *doc) {
  const json_t *m = json_object_get(doc, "metadata");
  return m && (doc_member_set(m, "ownerReferences") || doc_member_set(m, "finalizers") ||
               doc_member_set(m, "deletionTimestamp"));
}

/* owner_relevant of the event's new or old state: as the writer of a
 * text-only create saw it, or from the documents a live write hands in
 * (scanning the texts cost 3% of a create, 4% without the document), else
 * from the texts. */
static bool state_owner_relevant(states_t *st) {
  if (st->obj_owner >= 0) {
    if (st->obj_owner) return true;
  } else if (st->obj ? doc_owner_relevant(st->obj) : owner_relevant(st->ev->text)) {
    return true;
  }
  if (!st->ev->prev) return false;
  return st->prev ? doc_owner_relevant(st->prev) : owner_relevant(st->ev->prev);
}

static void deliver(ml_store_watch_t *w, states_t *st) {
  ml__store_event_t *ev = st->ev;
  if (w->closed || (w->ns && strcmp(w->ns, ev->ns) != 0)) return;
  if (w->owner_events && ev->type != ML_STORE_DELETED && !state_owner_relevant(st)) return;
  bool filtered = w->lsel || w->fsel;
  bool cur =
      ev->type != ML_STORE_DELETED && (!filtered || matches(w, state_obj(st)));
  bool old = ev->prev && (!filtered || matches(w, state_prev(st)));
  if (cur) {
    w->fn(w->ud, old ? ML_STORE_MODIFIED : ML_STORE_ADDED, ev->text);
  } else if (old) {
    ml_store_text_t *t =
        ev->type == ML_STORE_DELETED ? ev->text : exit_text(st);
    if (t)
      w->fn(w->ud, ML_STORE_DELETED, t);
    else
      ML_ERROR("store: cannot build a watch event (out of memory)");
  }
}

static void watch_free(ml_store_watch_t *w) {
  ml_store_t *s = w->s;
  if (w->prev)
    w->prev->next = w->next;
  else
    s->watchers = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    s->watchers_tail = w->prev;
  ml__store_selectors_free(w->lsel, w->fsel);
  free(w->ns);
  free(w);
}

/* Frees watchers closed while events were being delivered. */
static void reap(ml_store_t *s) {
  if (s->dispatching || !s->reap) return;
  s->reap = false;
  ml_store_watch_t *w = s->watchers;
  while (w) {
    ml_store_watch_t *next = w->next;
    if (w->closed && !w->pinned) watch_free(w);
    w = next;
  }
}

void ml__store_emit(ml_store_t *s, ml__store_res_t *res, int type, uint64_t rv,
                    const json_t *obj, ml_store_text_t *text,
                    const json_t *prev, ml_store_text_t *prev_text) {
  const char *ns = json_string_value(
      json_object_get(json_object_get(obj, "metadata"), "namespace"));
  ml__store_emit_ns(s, res, type, rv, ns, obj, text, prev, prev_text, -1);
}

void ml__store_emit_ns(ml_store_t *s, ml__store_res_t *res, int type,
                       uint64_t rv, const char *ns, const json_t *obj,
                       ml_store_text_t *text, const json_t *prev,
                       ml_store_text_t *prev_text, int owner_relevant) {
  prune(s);
  if (s->ring_len == s->ring_cap) evict_oldest(s);
  ml__store_event_t *ev = ring_at(s, s->ring_len);
  *ev = (ml__store_event_t){
      .rv = rv,
      .time_ms = ml__store_now_ms(s),
      .type = type,
      .res = res,
      .ns = strdup(ns ? ns : ""),
      .text = ml_store_text_ref(text),
      .prev = prev_text ? ml_store_text_ref(prev_text) : NULL};
  if (!ev->ns) {
    /* Keep the window gap-free: a watcher resuming here would miss it. */
    ML_ERROR("store: out of memory recording a watch event");
    event_release(ev);
    s->floor = rv;
    while (s->ring_len) evict_oldest(s);
    return;
  }
  s->ring_len++;
  states_t st = {ev, obj, prev, NULL, NULL, owner_relevant};
  s->dispatching++;
  for (ml_store_watch_t *w = s->watchers; w; w = w->next)
    if (w->res == res) deliver(w, &st);
  s->dispatching--;
  states_free(&st);
  reap(s);
}

typedef struct {
  ml_store_watch_t *w;
} initial_t;

static bool initial_visit(ml__store_entry_t *e, void *ud) {
  ml_store_watch_t *w = ((initial_t *)ud)->w;
  if (w->closed || (w->ns && strcmp(e->ns, w->ns) != 0)) return false;
  if (w->owner_events && !owner_relevant(e->text)) return true;
  if (ml__store_entry_matches(e, w->lsel, w->fsel))
    w->fn(w->ud, ML_STORE_ADDED, e->text);
  return true;
}

int ml_store_watch(ml_store_t *s, const char *resource,
                   const ml_store_watch_opts_t *o, ml_store_watch_fn fn,
                   void *ud, ml_store_watch_t **out) {
  static const ml_store_watch_opts_t none = {0};
  if (!o) o = &none;
  *out = NULL;
  const char *rvs = o->resource_version;
  bool initial = !rvs || !*rvs || strcmp(rvs, "0") == 0;
  uint64_t from = 0;
  if (!initial) {
    char *end;
    errno = 0;
    from = strtoull(rvs, &end, 10);
    if (*end || errno || rvs[0] < '0' || rvs[0] > '9')
      return ml__store_fail(s, ML_EINVALID,
                            "resourceVersion: Invalid value: \"%s\": must be "
                            "a non-negative integer",
                            rvs);
    if (from > s->rv)
      return ml__store_fail(s, ML_ETIMEDOUT,
                            "Too large resource version: %" PRIu64
                            ", current: %" PRIu64,
                            from, s->rv);
    prune(s);
    if (from < s->floor)
      return ml__store_fail(
          s, ML_EGONE, "too old resource version: %" PRIu64 " (%" PRIu64 ")",
          from, s->floor);
  }
  void *lsel, *fsel;
  int rc = ml__store_selectors(s, o->label_selector, o->field_selector, &lsel,
                               &fsel);
  if (rc < 0) return rc;
  ml__store_res_t *res = ml__store_res(s, resource, true);
  ml_store_watch_t *w = res ? calloc(1, sizeof *w) : NULL;
  if (w && o->ns && *o->ns && !(w->ns = strdup(o->ns))) {
    free(w);
    w = NULL;
  }
  if (!w) {
    ml__store_selectors_free(lsel, fsel);
    return ml__store_fail(s, ML_ENOMEM, "out of memory");
  }
  w->s = s;
  w->res = res;
  w->lsel = lsel;
  w->fsel = fsel;
  w->owner_events = o->owner_events;
  w->fn = fn;
  w->ud = ud;
  w->prev = s->watchers_tail;
  if (s->watchers_tail)
    s->watchers_tail->next = w;
  else
    s->watchers = w;
  s->watchers_tail = w;

  /* Catch up: the current state, or the window's events after `from`.
   * The handle is already valid, so a callback may close it. */
  *out = w;
  w->pinned = true;
  s->dispatching++;
  if (initial) {
    initial_t it = {w};
    if (w->ns)
      ml__store_walk(res, w->ns, "", true, initial_visit, &it);
    else
      ml__store_walk(res, NULL, NULL, true, initial_visit, &it);
  } else {
    for (size_t i = 0; i < s->ring_len && !w->closed; i++) {
      ml__store_event_t *ev = ring_at(s, i);
      if (ev->rv <= from || ev->res != res) continue;
      states_t st = {ev, NULL, NULL, NULL, NULL, -1};
      deliver(w, &st);
      states_free(&st);
    }
  }
  s->dispatching--;
  w->pinned = false;
  if (w->closed) {
    watch_free(w);
    *out = NULL;
  }
  reap(s);
  return 0;
}

void ml_store_watch_close(ml_store_watch_t *w) {
  if (!w || w->closed) return;
  w->closed = true;
  ml_store_t *s = w->s;
  if (s->dispatching || w->pinned) {
    s->reap = true;
    return;
  }
  watch_free(w);
}

void ml__store_watchers_close_all(ml_store_t *s) {
  s->dispatching++;
  for (ml_store_watch_t *w = s->watchers; w; w = w->next)
    if (!w->closed) w->fn(w->ud, ML_STORE_CLOSED, NULL);
  s->dispatching--;
  while (s->watchers) watch_free(s->watchers);
}
