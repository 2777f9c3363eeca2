/* The store's in-memory index: a list of resources, each holding a treap
 * of entries ordered by (namespace, name). A treap keeps inserts, removals
 * and ordered walks from any key at O(log n) without rebalancing code, and
 * the in-order walk is what lists and continue tokens need. */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "json_read.h"

/* Priorities only have to be independent of the keys, not secret. */
static uint32_t prio_state = 2463534242u;

static uint32_t next_prio(void) {
  uint32_t x = prio_state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return prio_state = x;
}

/* "apps/deployments" -> "deployments.apps", as apiserver messages say. */
static char *qualify(const char *resource) {
  const char *slash = strchr(resource, '/');
  if (!slash) return strdup(resource);
  size_t glen = (size_t)(slash - resource), plen = strlen(slash + 1);
  char *q = malloc(plen + glen + 2);
  if (!q) return NULL;
  memcpy(q, slash + 1, plen);
  q[plen] = '.';
  memcpy(q + plen + 1, resource, glen);
  q[plen + 1 + glen] = '\0';
  return q;
}

ml__store_res_t *ml__store_res(ml_store_t *s, const char *resource,
                               bool create) {
  for (ml__store_res_t **p = &s->resources; *p; p = &(*p)->next) {
    ml__store_res_t *r = *p;
    if (strcmp(r->name, resource) != 0) continue;
    /* To the front: a write looks up its own resource and namespaces,
     * which otherwise sat behind every kind registered after them. */
    if (p != &s->resources) {
      *p = r->next;
      r->next = s->resources;
      s->resources = r;
    }
    return r;
  }
  if (!create) return NULL;
  size_t n = strlen(resource);
  ml__store_res_t *r = calloc(1, sizeof *r + n + 1);
  if (!r) return NULL;
  memcpy(r->name, resource, n + 1);
  r->qualified = qualify(resource);
  if (!r->qualified) {
    free(r);
    return NULL;
  }
  r->next = s->resources;
  s->resources = r;
  return r;
}

ml__store_entry_t *ml__store_entry_new(const char *ns, const char *name) {
  size_t nl = strlen(ns), ml = strlen(name);
  ml__store_entry_t *e = calloc(1, sizeof *e + nl + ml + 2);
  if (!e) return NULL;
  memcpy(e->ns, ns, nl + 1);
  memcpy(e->ns + nl + 1, name, ml + 1);
  e->name = e->ns + nl + 1;
  e->prio = next_prio();
  return e;
}

void ml__store_entry_free(ml__store_entry_t *e) {
  if (!e) return;
  ml_store_text_unref(e->text);
  json_decref(e->labels);
  free(e);
}

void ml__store_entry_set(ml__store_entry_t *e, const json_t *doc,
                         ml_store_text_t *text) {
  ml_store_text_unref(e->text);
  e->text = text;
  json_decref(e->labels);
  /* A copy: the parsed document goes back to the caller, who may not
   * share it with the store. A failed copy leaves the labels empty. */
  e->labels =
      json_deep_copy(json_object_get(json_object_get(doc, "metadata"), "labels"));
}

void ml__store_entry_set_labels(ml__store_entry_t *e, ml_store_text_t *text,
                                json_t *labels) {
  ml_store_text_unref(e->text);
  e->text = text;
  json_decref(e->labels);
  e->labels = labels;
}

json_t *ml__store_parse(const char *text, size_t len, json_error_t *err) {
  json_t *doc = ml_json_read(text, len);
  if (doc) return doc;
  /* What the fast reader declines (a real, say), and the error message of
   * a text that is broken. ALLOW_NUL: strings may hold U+0000, which the
   * serializer writes as an escape. */
  return json_loadb(text, len, JSON_ALLOW_NUL, err);
}

json_t *ml__store_entry_doc(const ml__store_entry_t *e) {
  return ml__store_parse(e->text->data, e->text->len, NULL);
}

static int keycmp(const char *ns, const char *name,
                  const ml__store_entry_t *e) {
  int c = strcmp(ns, e->ns);
  return c ? c : strcmp(name, e->name);
}

ml__store_entry_t *ml__store_find(ml__store_res_t *r, const char *ns,
                                  const char *name) {
  ml__store_entry_t *e = r ? r->root : NULL;
  while (e) {
    int c = keycmp(ns, name, e);
    if (c == 0) return e;
    e = c < 0 ? e->left : e->right;
  }
  return NULL;
}

/* Splits t into keys < (ns, name) and keys > it (the key itself absent). */
static void split(ml__store_entry_t *t, const char *ns, const char *name,
                  ml__store_entry_t **l, ml__store_entry_t **r) {
  if (!t) {
    *l = *r = NULL;
  } else if (keycmp(ns, name, t) > 0) {
    split(t->right, ns, name, &t->right, r);
    *l = t;
  } else {
    split(t->left, ns, name, l, &t->left);
    *r = t;
  }
}

static ml__store_entry_t *merge(ml__store_entry_t *l, ml__store_entry_t *r) {
  if (!l) return r;
  if (!r) return l;
  if (l->prio > r->prio) {
    l->right = merge(l->right, r);
    return l;
  }
  r->left = merge(l, r->left);
  return r;
}

static void insert(ml__store_entry_t **t, ml__store_entry_t *e) {
  if (!*t) {
    *t = e;
  } else if (e->prio > (*t)->prio) {
    split(*t, e->ns, e->name, &e->left, &e->right);
    *t = e;
  } else {
    insert(keycmp(e->ns, e->name, *t) < 0 ? &(*t)->left : &(*t)->right, e);
  }
}

void ml__store_insert(ml__store_res_t *r, ml__store_entry_t *e) {
  e->left = e->right = NULL;
  insert(&r->root, e);
  r->count++;
}

ml__store_entry_t *ml__store_unlink(ml__store_res_t *r, const char *ns,
                                    const char *name) {
  ml__store_entry_t **t = &r->root;
  while (*t) {
    int c = keycmp(ns, name, *t);
    if (c == 0) {
      ml__store_entry_t *e = *t;
      *t = merge(e->left, e->right);
      e->left = e->right = NULL;
      r->count--;
      return e;
    }
    t = c < 0 ? &(*t)->left : &(*t)->right;
  }
  return NULL;
}

typedef struct {
  const char *ns, *name;
  bool inclusive;
  ml__store_visit_fn visit;
  void *ud;
} walk_t;

/* In-order walk that skips whole left subtrees before the start key.
 * @return false once the visitor asked to stop. */
static bool walk(ml__store_entry_t *t, walk_t *w) {
  while (t) {
    int c = w->ns ? keycmp(w->ns, w->name, t) : -1; /* start vs node */
    if (c < 0 || (c == 0 && w->inclusive)) {
      if (!walk(t->left, w)) return false;
      if (!w->visit(t, w->ud)) return false;
    }
    t = t->right; /* loop instead of recursing: depth stays O(log n) */
  }
  return true;
}

void ml__store_walk(ml__store_res_t *r, const char *ns, const char *name,
                    bool inclusive, ml__store_visit_fn visit, void *ud) {
  if (!r) return;
  walk_t w = {ns, name ? name : "", inclusive, visit, ud};
  walk(r->root, &w);
}

static void free_tree(ml__store_entry_t *t) {
  while (t) {
    free_tree(t->left);
    ml__store_entry_t *right = t->right;
    ml__store_entry_free(t);
    t = right;
  }
}

void ml__store_res_free_all(ml_store_t *s) {
  ml__store_res_t *r = s->resources;
  while (r) {
    ml__store_res_t *next = r->next;
    free_tree(r->root);
    free(r->qualified);
    free(r);
    r = next;
  }
  s->resources = NULL;
}
