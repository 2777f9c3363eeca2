/* Periodic probes (see probe.h, "tickers"): a uv timer per container probe
 * starts the attempts, and only results that can change the kubelet
 * worker's state reach the loop queue (and so Lua). A steady probe thus
 * costs one HTTP/TCP/exec attempt per period and nothing else.
 *
 *   timer ─► attempt ─► result ─┬─ UNKNOWN, tries left ─► retry at once
 *                               ├─ SUCCESS past the streak ─► dropped
 *                               └─ otherwise ─► ML_EV_PROBE_DONE to id
 *
 *   quick timer (before the first success, within one period of the first
 *   attempt) ─► attempt ─► success ─► posted as above; else dropped and
 *   retried after twice the wait
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "probe_internal.h"

struct ml_probe_ticker_s {
  ml_probe_runner_t *r; /* NULL once the runner closed */
  const ml_probe_kind_t *kind;
  ml_probe_params_t params; /* strings point into `mem` */
  void *mem;
  uv_timer_t timer;
  uint64_t id, period_ms, timeout_ms;
  unsigned success_threshold, max_tries;
  unsigned streak; /* successes in a row (warnings count) */
  unsigned tries;  /* attempts in the current tick */
  ml_probe_t *attempt; /* in flight */
  int refs;            /* the owner + each open timer */
  bool armed, due, retry, timer_open;
  /* Quick retries (probe.h): `quick` is open only when quick_ms > 0. */
  uv_timer_t quick;
  uint64_t quick_ms, quick_wait, quick_until; /* until: loop ms */
  int quick_state;
  bool quick_open, in_quick; /* in_quick: the attempt is a quick retry */
  ml_probe_ticker_t *prev, *next;
};

enum {
  QUICK_OFF = 0, /* none (quick_ms 0), or a success / the window ended */
  QUICK_WAIT,    /* armed for the first attempt after a reset */
  QUICK_ON       /* retrying failures until quick_until */
};

/* {====== copying the parameters into one block */

typedef struct {
  char *base;
  size_t used;
} arena_t;

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

static size_t str_size(const char *s) { return s ? strlen(s) + 1 : 0; }

static const char *put_bytes(arena_t *a, const char *s, size_t n) {
  char *d = a->base + a->used;
  if (n) memcpy(d, s, n);
  d[n] = '\0';
  a->used += n + 1;
  return d;
}

static const char *put_str(arena_t *a, const char *s) {
  return s ? put_bytes(a, s, strlen(s)) : NULL;
}

static size_t list_size(const char *const *l, size_t n) {
  size_t sz = 0;
  for (size_t i = 0; i < n; i++) sz += str_size(l[i]);
  return sz;
}

/* Copies `o` into t->params and t->mem. @return 0 or ML_ENOMEM */
static int copy_params(ml_probe_ticker_t *t, const ml_probe_params_t *o) {
  /* Pointer arrays first (aligned), then the bytes. */
  size_t arrays = align8(o->nheaders * sizeof(ml_probe_header_t)) +
                  align8((o->argc + 1) * sizeof(char *)) +
                  align8((o->nenv + 1) * sizeof(char *));
  size_t bytes = str_size(o->host) + str_size(o->scheme) +
                 str_size(o->path) + str_size(o->cwd) +
                 (o->send ? o->send_len + 1 : 0) +
                 list_size(o->argv, o->argc) + list_size(o->env, o->nenv);
  for (size_t i = 0; i < o->nheaders; i++)
    bytes += str_size(o->headers[i].name) + str_size(o->headers[i].value);
  char *mem = calloc(1, arrays + bytes + 1);
  if (!mem) return ML_ENOMEM;
  t->mem = mem;
  ml_probe_params_t *c = &t->params;
  *c = *o;
  c->prepared = NULL;
  ml_probe_header_t *hs = (ml_probe_header_t *)mem;
  const char **argv =
      (const char **)(mem + align8(o->nheaders * sizeof(ml_probe_header_t)));
  const char **env = (const char **)((char *)argv +
                                     align8((o->argc + 1) * sizeof(char *)));
  arena_t a = {mem + arrays, 0};
  c->host = put_str(&a, o->host);
  c->scheme = put_str(&a, o->scheme);
  c->path = put_str(&a, o->path);
  c->cwd = put_str(&a, o->cwd);
  c->send = o->send ? put_bytes(&a, o->send, o->send_len) : NULL;
  for (size_t i = 0; i < o->nheaders; i++) {
    hs[i].name = put_str(&a, o->headers[i].name);
    hs[i].value = put_str(&a, o->headers[i].value);
  }
  c->headers = o->nheaders ? hs : NULL;
  for (size_t i = 0; i < o->argc; i++) argv[i] = put_str(&a, o->argv[i]);
  c->argv = o->argv ? argv : NULL;
  for (size_t i = 0; i < o->nenv; i++) env[i] = put_str(&a, o->env[i]);
  c->env = o->env ? env : NULL;
  return 0;
}

/* }====== */

/* {====== life cycle */

static void ticker_unref(ml_probe_ticker_t *t) {
  if (--t->refs > 0) return;
  if (t->params.prepared && t->kind->unprepare)
    t->kind->unprepare((void *)t->params.prepared);
  free(t->mem);
  free(t);
}

static void timer_closed(uv_handle_t *h) { ticker_unref(h->data); }

/* Takes `t` off its runner: no attempt, no timer, no runner pointer. */
static void detach(ml_probe_ticker_t *t, bool orphan) {
  ml_probe_runner_t *r = t->r;
  if (!r) return;
  if (t->attempt) {
    /* The attempt runs to its end and reports nothing, as an abandoned
     * Lua attempt does. Cancelling live HTTP transfers here (one per
     * liveness kill) left libcurl sockets that were never polled again,
     * so later probes on a reused fd timed out without sending. */
    ml_probe_t *p = t->attempt;
    t->attempt = NULL;
    p->ticker = NULL;
    ml__probe_abandon(p);
  }
  if (t->prev)
    t->prev->next = t->next;
  else
    r->tickers = t->next;
  if (t->next) t->next->prev = t->prev;
  r->ntickers--;
  t->r = NULL;
  t->armed = false;
  /* Orphaned: the loop closed the timers with itself. The owner's
   * reference is still held here, so this never frees. */
  bool gone = orphan || ml_probe_runner_orphaned(r);
  if (t->timer_open) {
    t->timer_open = false;
    if (gone)
      t->refs--;
    else
      uv_close((uv_handle_t *)&t->timer, timer_closed);
  }
  if (t->quick_open) {
    t->quick_open = false;
    if (gone)
      t->refs--;
    else
      uv_close((uv_handle_t *)&t->quick, timer_closed);
  }
}

void ml__probe_tickers_shutdown(ml_probe_runner_t *r, bool orphan) {
  while (r->tickers) detach(r->tickers, orphan);
}

void ml_probe_ticker_free(ml_probe_ticker_t *t) {
  if (!t) return;
  detach(t, false);
  ticker_unref(t); /* the owner's */
}

/* }====== */

/* {====== ticking */

static void on_tick(uv_timer_t *h);

/* `quick`: a quick retry rather than a periodic attempt. */
static void launch(ml_probe_ticker_t *t, bool quick) {
  ml_probe_runner_t *r = t->r;
  if (!t->retry) t->tries = 0;
  t->retry = false;
  t->tries++;
  t->in_quick = quick;
  if (quick) {
    r->quick++;
  } else if (t->quick_state == QUICK_WAIT) {
    /* The first attempt since the reset opens the window. */
    t->quick_state = QUICK_ON;
    t->quick_wait = t->quick_ms;
    t->quick_until = uv_now(r->loop->uv) + t->period_ms;
  }
  /* The record reports through ml__probe_ticker_result (t->attempt is
   * set from there on, and cleared when it ends, possibly inside). */
  int rc = ml__probe_start(r, t->kind, &t->params, t->timeout_ms, t->id, t);
  if (rc >= 0) return;
  /* The attempt never existed: say why, as a probe error. */
  t->attempt = NULL;
  const char *why = rc == ML_EINVALID ? "bad parameters for a probe"
                                      : ml_strerror(rc);
  ml__probe_post(r, t->id, ML_PROBE_UNKNOWN, why, strlen(why));
}

static void on_tick(uv_timer_t *h) {
  ml_probe_ticker_t *t = h->data;
  if (!t->r) return;
  if (t->attempt) {
    t->due = true; /* no overlap: start when this one ends */
    return;
  }
  launch(t, false);
}

static void on_quick(uv_timer_t *h) {
  ml_probe_ticker_t *t = h->data;
  /* An attempt in flight schedules the next quick retry if it fails. */
  if (!t->r || !t->armed || t->quick_state != QUICK_ON || t->attempt) return;
  launch(t, true);
}

/* After a failure while the window is open: the next quick retry, unless
 * it would come at or after the window's end (the periodic attempt's). */
static void quick_next(ml_probe_ticker_t *t) {
  if (t->quick_state != QUICK_ON || !t->armed || !t->quick_open) return;
  if (ml_probe_runner_orphaned(t->r)) return;
  uint64_t now = uv_now(t->r->loop->uv);
  if (now + t->quick_wait >= t->quick_until) {
    t->quick_state = QUICK_OFF;
    return;
  }
  uv_timer_start(&t->quick, on_quick, t->quick_wait, 0);
  t->quick_wait *= 2;
  if (t->quick_wait > ML_PROBE_QUICK_MAX_MS)
    t->quick_wait = ML_PROBE_QUICK_MAX_MS;
}

/* Arms the timer: first after `ms`, then every period. */
static void rearm(ml_probe_ticker_t *t, uint64_t ms) {
  if (!t->r || !t->timer_open) return;
  if (ml_probe_runner_orphaned(t->r)) return;
  uv_timer_start(&t->timer, on_tick, ms, t->period_ms);
}

void ml__probe_ticker_began(ml_probe_ticker_t *t, ml_probe_t *p) {
  t->attempt = p;
}

void ml__probe_ticker_result(ml_probe_ticker_t *t, int result,
                             const char *msg, size_t len) {
  ml_probe_runner_t *r = t->r;
  bool quick = t->in_quick;
  t->attempt = NULL;
  t->in_quick = false;
  if (!r) return;
  bool success = result == ML_PROBE_SUCCESS || result == ML_PROBE_WARNING;
  if (quick && !success) {
    /* A quick retry that failed (or erred): nothing to tell. */
    quick_next(t);
    if (t->due && t->armed) {
      t->due = false;
      rearm(t, 0);
    }
    return;
  }
  if (result == ML_PROBE_UNKNOWN && t->tries < t->max_tries) {
    /* A probe error: try again at once (next loop turn, never from
     * inside the attempt that just ended). */
    t->retry = true;
    if (t->armed) rearm(t, 0);
    return;
  }
  bool post = true;
  switch (result) {
    case ML_PROBE_SUCCESS:
      if (t->streak >= t->success_threshold) {
        post = false; /* already at success: nothing can change */
        r->quiet++;
      } else {
        t->streak++;
      }
      break;
    case ML_PROBE_WARNING: /* a success, but its event must be seen */
      if (t->streak < t->success_threshold) t->streak++;
      break;
    case ML_PROBE_FAILURE: t->streak = 0; break;
    default: break; /* an error changes no count */
  }
  if (post) ml__probe_post(r, t->id, result, msg, len);
  if (success)
    t->quick_state = QUICK_OFF;
  else if (result == ML_PROBE_FAILURE)
    quick_next(t);
  if (t->due && t->armed) {
    t->due = false;
    rearm(t, 0);
  }
}

/* }====== */

int ml_probe_ticker_new(ml_probe_runner_t *r, const char *kind,
                        const ml_probe_params_t *params,
                        const ml_probe_every_t *every, uint64_t id,
                        ml_probe_ticker_t **out) {
  *out = NULL;
  if (r->closing || ml_probe_runner_orphaned(r)) return ML_ECLOSED;
  const ml_probe_kind_t *k = kind ? ml_probe_find_kind(r, kind) : NULL;
  if (!k) return ML_ENOTFOUND;
  if (!every || every->period_ms == 0) return ML_EINVALID;
  ml_probe_ticker_t *t = calloc(1, sizeof *t);
  if (!t) return ML_ENOMEM;
  if (copy_params(t, params) < 0) {
    free(t);
    return ML_ENOMEM;
  }
  t->params.prepared = k->prepare ? k->prepare(&t->params) : NULL;
  t->r = r;
  t->kind = k;
  t->id = id;
  t->period_ms = every->period_ms;
  t->timeout_ms = every->timeout_ms;
  t->success_threshold = every->success_threshold ? every->success_threshold : 1;
  t->max_tries = every->max_tries ? every->max_tries : 1;
  uv_timer_init(r->loop->uv, &t->timer);
  t->timer.data = t;
  t->timer_open = true;
  t->refs = 2; /* the owner, the timer */
  t->quick_ms = every->quick_ms;
  if (t->quick_ms) {
    uv_timer_init(r->loop->uv, &t->quick);
    t->quick.data = t;
    t->quick_open = true;
    t->quick_state = QUICK_WAIT;
    t->refs++;
  }
  t->next = r->tickers;
  if (r->tickers) r->tickers->prev = t;
  r->tickers = t;
  r->ntickers++;
  *out = t;
  return 0;
}

void ml_probe_ticker_arm(ml_probe_ticker_t *t, uint64_t first_ms) {
  if (!t->r) return;
  t->armed = true;
  /* `first_ms` counts from now, and the loop's cached time is as old as
   * this turn: a turn that ran long would fire the first attempt early
   * (a liveness probe before its period, in a spec on a busy machine). */
  if (!ml_probe_runner_orphaned(t->r)) uv_update_time(t->r->loop->uv);
  if (t->attempt && first_ms == 0) {
    t->due = true;
    rearm(t, t->period_ms);
    return;
  }
  rearm(t, first_ms);
}

void ml_probe_ticker_disarm(ml_probe_ticker_t *t) {
  t->armed = false;
  t->due = false;
  t->retry = false;
  if (t->r && !ml_probe_runner_orphaned(t->r)) {
    if (t->timer_open) uv_timer_stop(&t->timer);
    if (t->quick_open) uv_timer_stop(&t->quick);
  }
}

void ml_probe_ticker_reset(ml_probe_ticker_t *t) {
  t->streak = 0;
  if (!t->quick_ms) return;
  t->quick_state = QUICK_WAIT;
  if (t->r && t->quick_open && !ml_probe_runner_orphaned(t->r))
    uv_timer_stop(&t->quick);
}
