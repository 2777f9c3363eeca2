/* Event queue and turn structure of the moonlet loop (see loop.h). */
#include "loop.h"

#include <stdlib.h>

#include "err.h"

void ml_loop_init(ml_loop_t *loop, uv_loop_t *uv) {
  *loop = (ml_loop_t){.uv = uv, .next_id = 1};
}

void ml_event_free(ml_event_t *ev) {
  if (ev->destroy) ev->destroy(ev);
  else free(ev);
}

void ml_loop_close(ml_loop_t *loop) {
  loop->closing = true;
  ml_event_t *ev;
  while ((ev = ml_loop_pop(loop)) != NULL) ml_event_free(ev);
  while ((ev = loop->idle_head) != NULL) {
    loop->idle_head = ev->next;
    ml_event_free(ev);
  }
  loop->idle_tail = NULL;
}

uint64_t ml_loop_next_id(ml_loop_t *loop) { return loop->next_id++; }

/* A timer callback runs before libuv computes its poll timeout; without
 * stopping uv_run the event would wait behind the next poll (as in Neovim's
 * loop_on_put). Only inside uv_run: a stop requested outside it makes the
 * next uv_run return before it polls or runs timers, and the Lua side posts
 * events on every busy turn, so sockets, timers and exits went unserved
 * for as long as the server stayed busy (seconds in a scale-up). Outside
 * uv_run, ml_loop_run sees the queue and polls without blocking. */
static void wake_for(ml_loop_t *loop) {
  if (loop->in_uv_run) uv_stop(loop->uv);
}

void ml_loop_post(ml_loop_t *loop, ml_event_t *ev) {
  ev->next = NULL;
  if (loop->tail) loop->tail->next = ev;
  else loop->head = ev;
  loop->tail = ev;
  loop->queued++;
  wake_for(loop);
}

void ml_loop_post_first(ml_loop_t *loop, ml_event_t *ev) {
  ml_event_t **link = loop->urgent_tail ? &loop->urgent_tail->next : &loop->head;
  ev->next = *link;
  *link = ev;
  if (!ev->next) loop->tail = ev;
  loop->urgent_tail = ev;
  loop->urgent++;
  loop->queued++;
  wake_for(loop);
}

void ml_loop_post_idle(ml_loop_t *loop, ml_event_t *ev) {
  ev->next = NULL;
  if (loop->idle_tail) loop->idle_tail->next = ev;
  else loop->idle_head = ev;
  loop->idle_tail = ev;
  /* A uv_run blocked in poll would not look at it: the next turn must
   * poll without blocking to find out whether the loop is idle. */
  wake_for(loop);
}

/* Queues every idle waiter behind the ordinary events. */
static void release_idle(ml_loop_t *loop) {
  ml_event_t *ev = loop->idle_head;
  loop->idle_head = loop->idle_tail = NULL;
  while (ev) {
    ml_event_t *next = ev->next;
    ml_loop_post(loop, ev);
    ev = next;
  }
}

bool ml_loop_next_is_first(const ml_loop_t *loop) { return loop->urgent > 0; }

ml_event_t *ml_loop_pop(ml_loop_t *loop) {
  ml_event_t *ev = loop->head;
  if (!ev) return NULL;
  loop->head = ev->next;
  if (!loop->head) loop->tail = NULL;
  loop->queued--;
  if (loop->urgent > 0 && --loop->urgent == 0) loop->urgent_tail = NULL;
  ev->next = NULL;
  return ev;
}

size_t ml_loop_cancel(ml_loop_t *loop, uint64_t id) {
  size_t dropped = 0, pos = 0;
  ml_event_t **link = &loop->head, *prev = NULL;
  while (*link) {
    ml_event_t *ev = *link;
    if (ev->id == id) {
      *link = ev->next;
      loop->queued--;
      if (pos < loop->urgent) {
        loop->urgent--;
        if (ev == loop->urgent_tail) loop->urgent_tail = loop->urgent ? prev : NULL;
      }
      dropped++;
      ml_event_free(ev);
    } else {
      prev = ev;
      link = &ev->next;
      pos++;
    }
  }
  loop->tail = prev;
  link = &loop->idle_head;
  prev = NULL;
  while (*link) {
    ml_event_t *ev = *link;
    if (ev->id == id) {
      *link = ev->next;
      dropped++;
      ml_event_free(ev);
    } else {
      prev = ev;
      link = &ev->next;
    }
  }
  loop->idle_tail = prev;
  return dropped;
}

int ml_loop_add_hook(ml_loop_t *loop, ml_loop_hook_fn fn, void *ud) {
  if (loop->nhooks == ML_LOOP_MAX_HOOKS) return ML_ETOOLARGE;
  loop->hooks[loop->nhooks].fn = fn;
  loop->hooks[loop->nhooks].ud = ud;
  loop->nhooks++;
  return 0;
}

void ml_loop_run_hooks(ml_loop_t *loop) {
  for (int i = 0; i < loop->nhooks; i++) loop->hooks[i].fn(loop, loop->hooks[i].ud);
}

void ml_loop_stop(ml_loop_t *loop) { loop->stopping = true; }

void ml_loop_run(ml_loop_t *loop, bool (*done)(void *ud), void *ud) {
  loop->stopping = false;
  /* Events posted before the first turn (or by synchronous completions)
   * are delivered before we ever block. */
  ml_loop_run_hooks(loop);
  while (!loop->stopping && !(done && done(ud))) {
    /* Block in poll only when nothing is queued for Lua and nothing waits
     * for an idle turn. */
    bool wait = !loop->queued && !loop->idle_head;
    loop->in_uv_run = true;
    uv_run(loop->uv, wait ? UV_RUN_ONCE : UV_RUN_NOWAIT);
    loop->in_uv_run = false;
    /* Idle: the poll found nothing to do (no I/O, timer or exit posted). */
    if (!loop->queued && loop->idle_head) release_idle(loop);
    ml_loop_run_hooks(loop);
    /* Asked after the hooks: Lua may just have armed a new handle. */
    if (!uv_loop_alive(loop->uv) && !loop->queued) break;
  }
}

uint64_t ml_loop_now(ml_loop_t *loop) { return uv_now(loop->uv); }
