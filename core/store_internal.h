/* Private structures of the object store, shared by store.c (operations),
 * store_index.c (the ordered per-resource index) and store_watch.c (event
 * window and watchers). Nothing outside core/store*.c includes this. */
#ifndef ML_STORE_INTERNAL_H
#define ML_STORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"
#include "store_backend.h"

typedef struct ml__store_entry_s ml__store_entry_t;
typedef struct ml__store_res_s ml__store_res_t;

/* One stored object: a node of its resource's treap, ordered by
 * (namespace, name). The key lives in the same allocation. Only the text is
 * kept: a parsed tree costs several times its text's memory, so reads parse
 * it again (ml__store_entry_doc). */
struct ml__store_entry_s {
  ml__store_entry_t *left, *right;
  uint32_t prio;
  uint64_t rv;
  ml_store_text_t *text; /* the object, serialized */
  json_t *labels;        /* a copy of metadata.labels (or NULL): label
                            selectors match without a parse */
  const char *name;      /* points into key, after ns's NUL */
  char ns[];             /* "ns\0name\0" */
};

/* Everything stored under one resource string ("configmaps",
 * "apps/deployments"). Resources live until the store closes, so watchers
 * and window events can point at them. */
struct ml__store_res_s {
  ml__store_res_t *next;
  ml__store_entry_t *root;
  size_t count;
  char *qualified; /* "deployments.apps": how messages name it */
  char name[];
};

/* One event in the watch window (ring buffer). Only texts are kept: a
 * parsed document per old version would multiply the window's memory, and
 * the documents are parsed again only to resume a watch with a selector. */
typedef struct {
  uint64_t rv;
  int64_t time_ms;
  int type;
  ml__store_res_t *res;
  char *ns;
  ml_store_text_t *text; /* state after the event (DELETED: last state) */
  ml_store_text_t *prev; /* state before (MODIFIED, DELETED) or NULL */
  /* prev's content with this event's resourceVersion, built on first need:
   * what a watcher gets when the object stops matching its selector. */
  ml_store_text_t *exit_text;
} ml__store_event_t;

struct ml_store_watch_s {
  ml_store_watch_t *prev, *next;
  ml_store_t *s;
  ml__store_res_t *res;
  char *ns;          /* NULL: all namespaces */
  void *lsel, *fsel; /* ml_selector_t*, field selector; NULL = all */
  ml_store_watch_fn fn;
  void *ud;
  bool owner_events; /* ml_store_watch_opts_t.owner_events */
  bool closed; /* closed inside a dispatch; freed when it ends */
  bool pinned; /* ml_store_watch is still delivering the start events */
};

struct ml_store_s {
  const ml_store_backend_t *be;
  void *db;
  ml__store_res_t *resources;
  uint64_t rv; /* highest resourceVersion used */
  bool in_txn;
  /* The open transaction removed an object: its resourceVersion lives on
   * in no row, so the commit records the counter. */
  bool rv_unrecorded;
  bool failed; /* a commit failed: memory and disk may differ */
  bool unsynced; /* a commit since ml_store_take_unsynced needs a sync */
  char *err;

  /* watch window */
  ml__store_event_t *ring;
  size_t ring_cap, ring_head, ring_len;
  uint64_t floor; /* every event with rv > floor is in the window */
  uint32_t window_seconds;

  ml_store_watch_t *watchers, *watchers_tail;
  int dispatching;
  bool reap;

  ml_json_buf_t scratch; /* a status write's new status text */

  int64_t fixed_time; /* unix seconds, 0: real clock */
  int64_t ts_second;  /* the second ts_text spells (create timestamps) */
  char ts_text[32];   /* "" until the first create */
  uint64_t seed;      /* PRNG state, 0: system randomness */
  unsigned char pool[256];
  size_t pool_left;
};

/* store.c */
int ml__store_fail(ml_store_t *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
ml_store_text_t *ml__store_serialize(const json_t *doc);
int64_t ml__store_now_ms(const ml_store_t *s);
/* Label and field selectors: parse (NULL/"" gives NULL = everything),
 * match, free. Parse failures set the store's message. */
int ml__store_selectors(ml_store_t *s, const char *label, const char *field,
                        void **lsel, void **fsel);
bool ml__store_matches(void *lsel, void *fsel, const json_t *doc);
/* The same for a stored entry: parses it only for a field selector. */
bool ml__store_entry_matches(const ml__store_entry_t *e, void *lsel,
                             void *fsel);
/* Sets e's text (a new reference, consumed) and the labels of `doc`, its
 * parsed form; the old text is released. */
void ml__store_entry_set(ml__store_entry_t *e, const json_t *doc,
                         ml_store_text_t *text);
/* The same with the labels given: `labels` (a new reference or NULL) is
 * consumed, as is the reference to `text`. */
void ml__store_entry_set_labels(ml__store_entry_t *e, ml_store_text_t *text,
                                json_t *labels);
void ml__store_selectors_free(void *lsel, void *fsel);

/* store_index.c */
ml__store_res_t *ml__store_res(ml_store_t *s, const char *resource,
                               bool create);
ml__store_entry_t *ml__store_entry_new(const char *ns, const char *name);
void ml__store_entry_free(ml__store_entry_t *e);
/* An object's stored text parsed (ml_json_read, else jansson with
 * JSON_ALLOW_NUL): a new reference, or NULL with err (may be NULL) set. */
json_t *ml__store_parse(const char *text, size_t len, json_error_t *err);
/* The entry's object parsed from its text: a new reference, NULL when out
 * of memory. */
json_t *ml__store_entry_doc(const ml__store_entry_t *e);
ml__store_entry_t *ml__store_find(ml__store_res_t *r, const char *ns,
                                  const char *name);
/* Inserts `e` (its key must be absent). */
void ml__store_insert(ml__store_res_t *r, ml__store_entry_t *e);
/* Unlinks and returns the entry with that key, or NULL. */
ml__store_entry_t *ml__store_unlink(ml__store_res_t *r, const char *ns,
                                    const char *name);
/* Visits entries in key order starting at (ns, name) (inclusive or not;
 * ns NULL: from the first) until visit returns false. */
typedef bool (*ml__store_visit_fn)(ml__store_entry_t *e, void *ud);
void ml__store_walk(ml__store_res_t *r, const char *ns, const char *name,
                    bool inclusive, ml__store_visit_fn visit, void *ud);
void ml__store_res_free_all(ml_store_t *s);

/* store_watch.c */
int ml__store_window_init(ml_store_t *s, size_t cap);
void ml__store_window_free(ml_store_t *s);
/* Records an event (keeping references to the texts) and delivers it to
 * the matching watchers; obj and prev are the parsed states (prev and
 * prev_text NULL for ADDED). */
void ml__store_emit(ml_store_t *s, ml__store_res_t *res, int type, uint64_t rv,
                    const json_t *obj, ml_store_text_t *text,
                    const json_t *prev, ml_store_text_t *prev_text);
/* The same with the object's namespace given ("" for none), for writes
 * that have only the text: obj may then be NULL (parsed if a watcher's
 * selector needs it). owner_relevant: whether the new state matters to
 * ownership watchers, when the writer knows (0 or 1), else -1. */
void ml__store_emit_ns(ml_store_t *s, ml__store_res_t *res, int type,
                       uint64_t rv, const char *ns, const json_t *obj,
                       ml_store_text_t *text, const json_t *prev,
                       ml_store_text_t *prev_text, int owner_relevant);
void ml__store_watchers_close_all(ml_store_t *s);

#endif
