/* The durability gate (see durable.h). The loop thread owns every field but
 * `done`, `work_rc` and the sources' `rc` while a work request runs: the
 * pool thread syncs the sources marked `syncing` (the list it walks starts
 * at `work_head`, taken before the request is queued: sources added later
 * are prepended and never reached; none is removed before a settle), then
 * reports under `mu`, so a settle on the loop thread can wait for it
 * without running the loop. */
#include "durable.h"

#include <poll.h>
#include <string.h>

#include "err.h"
#include "log.h"

static void notify(ml_durable_t *d) {
  for (int i = 0; i < ML_DURABLE_MAX_WATCHERS; i++)
    if (d->watchers[i].fn) d->watchers[i].fn(d, d->watchers[i].ud);
}

/* Runs every source marked syncing from `head`. @return the first error. */
static int sync_marked(ml_durable_source_t *head) {
  int first = 0;
  for (ml_durable_source_t *s = head; s; s = s->next) {
    if (!s->syncing) continue;
    s->rc = s->sync(s->ud);
    if (s->rc < 0 && first == 0) first = s->rc;
  }
  return first;
}

/* Marks the dirty sources as the next sync's. @return false: none. */
static bool take_dirty(ml_durable_t *d) {
  bool any = false;
  for (ml_durable_source_t *s = d->sources; s; s = s->next) {
    s->syncing = s->dirty;
    s->dirty = false;
    s->rc = 0;
    any |= s->syncing;
  }
  d->target = d->committed;
  return any;
}

/* Loop thread: a sync of everything up to d->target ended with `rc`. */
static void finish(ml_durable_t *d, int rc) {
  for (ml_durable_source_t *s = d->sources; s; s = s->next) {
    if (!s->syncing) continue;
    s->syncing = false;
    if (s->rc < 0 && d->err == 0 && s->failed) s->failed(s->ud, s->rc);
  }
  d->syncs++;
  if (rc < 0) {
    if (d->err == 0) {
      ML_ERROR("store: sync failed: %s; answers that wait for it are dropped",
               ml_strerror(rc));
      d->err = rc;
    }
  } else if (d->err == 0) {
    d->synced = d->target;
  }
  notify(d);
}

static void work_cb(uv_work_t *w) {
  ml_durable_t *d = w->data;
  int rc = sync_marked(d->work_head);
  uv_mutex_lock(&d->mu);
  d->work_rc = rc;
  d->done = true;
  uv_cond_signal(&d->cv);
  uv_mutex_unlock(&d->mu);
}

static void start(ml_durable_t *d);

/* Nothing else to do: no event queued for Lua, no timer or pending callback
 * due, no handle ready (libuv's level-triggered epoll descriptor polls
 * readable when one of its descriptors is). A client whose request arrived
 * meanwhile waits for one inline sync at most, as before the gate. */
static bool loop_idle(ml_durable_t *d) {
  ml_loop_t *l = d->loop;
  if (l->queued || l->idle_head || uv_backend_timeout(l->uv) == 0)
    return false;
  struct pollfd p = {.fd = uv_backend_fd(l->uv), .events = POLLIN};
  return poll(&p, 1, 0) == 0;
}

static void after_cb(uv_work_t *w, int status) {
  (void)status; /* UV_ECANCELED is never asked for */
  ml_durable_t *d = w->data;
  d->busy = false;
  if (d->reaped) d->reaped = false;
  else finish(d, d->work_rc);
  start(d);
}

/* Starts a sync of everything committed so far, unless one is in flight,
 * nothing waits, or the gate failed. */
static void start(ml_durable_t *d) {
  if (d->busy || d->err || d->paused || d->committed == d->synced) return;
  if (!take_dirty(d)) {
    d->synced = d->target; /* a removed source's commits: settled already */
    return;
  }
  if (d->closed || (d->inline_idle && loop_idle(d))) {
    finish(d, sync_marked(d->sources)); /* nobody to wait for it */
    return;
  }
  d->work_head = d->sources;
  d->done = false;
  d->work.data = d;
  int rc = uv_queue_work(d->loop->uv, &d->work, work_cb, after_cb);
  if (rc < 0) {
    /* No pool: sync here, as before the gate existed. */
    finish(d, sync_marked(d->sources));
    return;
  }
  d->busy = true;
}

int ml_durable_init(ml_durable_t *d, ml_loop_t *loop) {
  memset(d, 0, sizeof *d);
  d->loop = loop;
  int rc = uv_mutex_init(&d->mu);
  if (rc < 0) return rc;
  rc = uv_cond_init(&d->cv);
  if (rc < 0) uv_mutex_destroy(&d->mu);
  return rc;
}

int ml_durable_settle(ml_durable_t *d) {
  if (d->busy && !d->reaped) {
    uv_mutex_lock(&d->mu);
    while (!d->done) uv_cond_wait(&d->cv, &d->mu);
    uv_mutex_unlock(&d->mu);
    d->reaped = true; /* the after-callback still runs, and skips finish */
    finish(d, d->work_rc);
  }
  if (d->err == 0 && d->committed != d->synced) {
    if (take_dirty(d)) finish(d, sync_marked(d->sources));
    else d->synced = d->target;
  }
  return d->err;
}

void ml_durable_close(ml_durable_t *d) {
  ml_durable_settle(d);
  d->closed = true;
  memset(d->watchers, 0, sizeof d->watchers);
  /* The settle waited for the pool thread, which is done with the locks;
   * a queued request's after-callback still reads `d` (never the sources,
   * the watchers or the locks): the owner runs the loop before freeing. */
  uv_cond_destroy(&d->cv);
  uv_mutex_destroy(&d->mu);
}

void ml_durable_add(ml_durable_t *d, ml_durable_source_t *src) {
  src->dirty = src->syncing = false;
  src->rc = 0;
  src->next = d->sources;
  d->sources = src;
}

void ml_durable_remove(ml_durable_t *d, ml_durable_source_t *src) {
  ml_durable_settle(d);
  for (ml_durable_source_t **p = &d->sources; *p; p = &(*p)->next)
    if (*p == src) {
      *p = src->next;
      break;
    }
}

void ml_durable_committed(ml_durable_t *d, ml_durable_source_t *src) {
  src->dirty = true;
  d->committed++;
  start(d);
}

void ml_durable_set_inline(ml_durable_t *d, bool on) { d->inline_idle = on; }

void ml_durable_pause(ml_durable_t *d, bool paused) {
  d->paused = paused;
  start(d);
}

int ml_durable_watch(ml_durable_t *d, ml_durable_watch_fn fn, void *ud) {
  for (int i = 0; i < ML_DURABLE_MAX_WATCHERS; i++)
    if (!d->watchers[i].fn) {
      d->watchers[i].fn = fn;
      d->watchers[i].ud = ud;
      return 0;
    }
  return ML_ETOOLARGE;
}

void ml_durable_unwatch(ml_durable_t *d, ml_durable_watch_fn fn, void *ud) {
  for (int i = 0; i < ML_DURABLE_MAX_WATCHERS; i++)
    if (d->watchers[i].fn == fn && d->watchers[i].ud == ud)
      d->watchers[i].fn = NULL;
}
