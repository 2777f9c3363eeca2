/* The probe runner (see probe.h): kind registry, attempt records and their
 * life cycle, result events. The kinds live in probe_http.c, probe_tcp.c and
 * probe_exec.c.
 *
 *   ml_probe_start ─► kind->start ··· ml_probe_done ─► post the event
 *                                                  └─► end
 *   ml_probe_cancel ─► kind->cancel ─────────────────────► end
 *
 *   end: close the owned handles; once all are closed and no hold is left,
 *   kind->destroy and free the record.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "probe_internal.h"

const char *ml_probe_result_name(int result) {
  switch (result) {
    case ML_PROBE_SUCCESS: return "success";
    case ML_PROBE_WARNING: return "warning";
    case ML_PROBE_FAILURE: return "failure";
    default: return "unknown";
  }
}

/* Was the loop shut down under us (our check handle closed by someone
 * else, as ml_runtime_close's uv_walk does)? Then libuv is off limits and
 * the handles' memory is ours to free. */
static bool orphaned(ml_probe_runner_t *r) {
  if (!r->orphaned && !r->closing &&
      uv_is_closing((uv_handle_t *)&r->check))
    r->orphaned = true;
  return r->orphaned;
}

bool ml_probe_runner_orphaned(ml_probe_runner_t *r) { return orphaned(r); }

static void runner_unref(ml_probe_runner_t *r) {
  if (--r->refs == 0) free(r);
}

/* {====== attempt records */

static void record_free(ml_probe_t *p) {
  ml_probe_runner_t *r = p->runner;
  if (p->prev)
    p->prev->next = p->next;
  else
    r->head = p->next;
  if (p->next) p->next->prev = p->prev;
  if (p->kind->destroy)
    p->kind->destroy(p);
  else
    free(p->data);
  free(p);
  r->closing_records--;
  runner_unref(r);
}

static void maybe_free(ml_probe_t *p) {
  if (p->ended && p->open == 0 && p->holds == 0) record_free(p);
}

static void handle_closed(uv_handle_t *h) {
  ml_probe_t *p = h->data;
  p->open--;
  maybe_free(p);
}

/* The attempt is over: its handles go; the record follows once they are
 * closed. */
static void end(ml_probe_t *p) {
  ml_probe_runner_t *r = p->runner;
  p->ended = true;
  r->active--;
  r->closing_records++;
  /* Orphaned: the handles were closed with the loop; runner_close frees. */
  if (!orphaned(r)) {
    for (int i = 0; i < p->nhandles; i++) {
      uv_handle_t *h = p->handles[i];
      if (!uv_is_closing(h)) uv_close(h, handle_closed);
    }
  }
  maybe_free(p);
}

static void ev_destroy(ml_event_t *e) {
  ml_probe_event_t *ev = (ml_probe_event_t *)e;
  free(ev->message);
  free(ev);
}

void ml__probe_post(ml_probe_runner_t *r, uint64_t id, int result,
                    const char *msg, size_t len) {
  ml_probe_event_t *ev = calloc(1, sizeof *ev);
  char *m = malloc(len + 1);
  if (ev && m) {
    if (len) memcpy(m, msg, len);
    m[len] = '\0';
    ev->ev.type = ML_EV_PROBE_DONE;
    ev->ev.id = id;
    ev->ev.destroy = ev_destroy;
    ev->result = result;
    ev->message = m;
    ev->len = len;
    ml_loop_post(r->loop, &ev->ev);
    r->finished++;
  } else {
    /* Nothing to report with: the waiter would hang, so say so loudly
     * through the one channel left (an empty unknown result). */
    free(m);
    if (ev) {
      ev->ev.type = ML_EV_PROBE_DONE;
      ev->ev.id = id;
      ev->ev.destroy = ev_destroy;
      ev->result = ML_PROBE_UNKNOWN;
      ml_loop_post(r->loop, &ev->ev);
    }
  }
}

void ml_probe_done_bytes(ml_probe_t *p, int result, const char *msg,
                         size_t len) {
  if (p->ended) return;
  ml_probe_runner_t *r = p->runner;
  if (!p->cancelled && !orphaned(r)) {
    if (p->ticker)
      ml__probe_ticker_result(p->ticker, result, msg, len);
    else
      ml__probe_post(r, p->id, result, msg, len);
  }
  end(p);
}

void ml_probe_done(ml_probe_t *p, int result, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n < sizeof buf) {
    ml_probe_done_bytes(p, result, buf, (size_t)n);
    return;
  }
  char *big = malloc((size_t)n + 1);
  if (!big) {
    ml_probe_done_bytes(p, result, buf, sizeof buf - 1);
    return;
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  ml_probe_done_bytes(p, result, big, (size_t)n);
  free(big);
}

int ml_probe_own(ml_probe_t *p, uv_handle_t *h) {
  if (p->nhandles == ML_PROBE_MAX_HANDLES) return ML_ETOOLARGE;
  h->data = p;
  p->handles[p->nhandles++] = h;
  p->open++;
  return 0;
}

void ml_probe_hold(ml_probe_t *p) { p->holds++; }

void ml_probe_release(ml_probe_t *p) {
  p->holds--;
  maybe_free(p);
}

uv_loop_t *ml_probe_uv(ml_probe_t *p) { return p->runner->loop->uv; }

bool ml_probe_ended(ml_probe_t *p) { return p->ended; }

/* }====== */

/* {====== the runner */

static void drain(ml_probe_runner_t *r) {
  if (r->http) ml__probe_http_drain(r);
  if (r->exec_ready) ml__probe_exec_drain(r);
}

static void on_check(uv_check_t *h) { drain(h->data); }

static void on_prepare(uv_prepare_t *h) { drain(h->data); }

ml_probe_runner_t *ml_probe_runner_new(ml_loop_t *loop, size_t max_http) {
  ml_probe_runner_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->loop = loop;
  r->refs = 2; /* the check and prepare handles */
  r->max_http = max_http ? max_http : ML_PROBE_DEFAULT_MAX_HTTP;
  uv_check_init(loop->uv, &r->check);
  r->check.data = r;
  uv_check_start(&r->check, on_check);
  uv_prepare_init(loop->uv, &r->prepare);
  r->prepare.data = r;
  uv_prepare_start(&r->prepare, on_prepare);
  /* Draining is no reason to keep the loop alive. */
  uv_unref((uv_handle_t *)&r->check);
  uv_unref((uv_handle_t *)&r->prepare);
  ml_probe_register(r, &ml__probe_http);
  ml_probe_register(r, &ml__probe_tcp);
  ml_probe_register(r, &ml__probe_exec);
  return r;
}

int ml_probe_register(ml_probe_runner_t *r, const ml_probe_kind_t *kind) {
  if (!kind || !kind->name || !kind->start) return ML_EINVALID;
  for (int i = 0; i < r->nkinds; i++) {
    if (strcmp(r->kinds[i]->name, kind->name) == 0) {
      r->kinds[i] = kind;
      return 0;
    }
  }
  if (r->nkinds == ML_PROBE_MAX_KINDS) return ML_ETOOLARGE;
  r->kinds[r->nkinds++] = kind;
  return 0;
}

const ml_probe_kind_t *ml_probe_find_kind(ml_probe_runner_t *r,
                                          const char *name) {
  for (int i = 0; i < r->nkinds; i++)
    if (strcmp(r->kinds[i]->name, name) == 0) return r->kinds[i];
  return NULL;
}

int ml__probe_start(ml_probe_runner_t *r, const ml_probe_kind_t *k,
                    const ml_probe_params_t *params, uint64_t timeout_ms,
                    uint64_t id, ml_probe_ticker_t *t) {
  if (r->closing || orphaned(r)) return ML_ECLOSED;
  ml_probe_t *p = calloc(1, sizeof *p);
  if (!p) return ML_ENOMEM;
  p->runner = r;
  p->kind = k;
  p->id = id;
  p->timeout_ms = timeout_ms;
  p->ticker = t;
  if (t) ml__probe_ticker_began(t, p);
  p->next = r->head;
  if (r->head) r->head->prev = p;
  r->head = p;
  r->refs++;
  r->active++;
  /* A kind may finish inside start(): the hold keeps `p` valid here. */
  p->holds = 1;
  int rc = k->start(p, params);
  if (rc < 0) {
    p->cancelled = true; /* nothing to report: the caller gets rc */
    if (!p->ended) end(p);
  } else {
    r->started++;
  }
  ml_probe_release(p);
  return rc < 0 ? rc : 0;
}

int ml_probe_start(ml_probe_runner_t *r, const char *kind,
                   const ml_probe_params_t *params, uint64_t timeout_ms,
                   uint64_t id) {
  if (r->closing || orphaned(r)) return ML_ECLOSED;
  const ml_probe_kind_t *k = kind ? ml_probe_find_kind(r, kind) : NULL;
  if (!k) return ML_ENOTFOUND;
  return ml__probe_start(r, k, params, timeout_ms, id, NULL);
}

static void cancel(ml_probe_t *p, bool force) {
  p->cancelled = true;
  p->holds++;
  if (p->kind->cancel) p->kind->cancel(p);
  /* Without a cancel entry the attempt runs on and reports into the void,
   * unless the runner is going away: then its handles go now. */
  if (!p->ended && (p->kind->cancel || force)) end(p);
  ml_probe_release(p);
}

void ml__probe_abandon(ml_probe_t *p) {
  if (!p->ended) p->cancelled = true;
}

bool ml_probe_cancel(ml_probe_runner_t *r, uint64_t id) {
  for (ml_probe_t *p = r->head; p; p = p->next) {
    if (!p->ended && !p->cancelled && !p->ticker && p->id == id) {
      cancel(p, false);
      return true;
    }
  }
  return false;
}

void ml_probe_runner_set_max_http(ml_probe_runner_t *r, size_t n) {
  r->max_http = n ? n : ML_PROBE_DEFAULT_MAX_HTTP;
  if (r->http) ml_http_client_set_max_inflight(r->http, r->max_http);
}

void ml_probe_runner_stats(ml_probe_runner_t *r, ml_probe_stats_t *out) {
  *out = (ml_probe_stats_t){.active = r->active,
                            .closing = r->closing_records,
                            .started = r->started,
                            .finished = r->finished,
                            .tickers = r->ntickers,
                            .quiet = r->quiet,
                            .quick = r->quick};
  if (r->http) {
    ml_http_stats_t hs;
    ml_http_client_stats(r->http, &hs);
    out->http_active = hs.active;
    out->http_queued = hs.queued;
    out->http_handles = hs.handles;
  }
}

static void check_closed(uv_handle_t *h) { runner_unref(h->data); }

void ml_probe_runner_close(ml_probe_runner_t *r) {
  if (r->closing) return;
  bool orphan = orphaned(r);
  r->closing = true;
  ml__probe_tickers_shutdown(r, orphan);
  ml_probe_t *p = r->head, *next;
  while (p) {
    next = p->next;
    if (!p->ended) cancel(p, true);
    p = next;
  }
  ml__probe_http_shutdown(r);
  ml__probe_exec_shutdown(r);
  if (orphan) {
    /* The loop is gone: nothing will ever call back; free it all now. */
    p = r->head;
    while (p) {
      next = p->next;
      p->open = p->holds = 0;
      record_free(p);
      p = next;
    }
    /* The check and prepare handles, closed with the loop. */
    r->refs--;
    runner_unref(r);
    return;
  }
  uv_close((uv_handle_t *)&r->check, check_closed);
  uv_close((uv_handle_t *)&r->prepare, check_closed);
}

/* }====== */
