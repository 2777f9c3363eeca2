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
  ml_event_t *ev;
  while ((ev = ml_loop_pop(loop)) != NULL) ml_event_free(ev);
}

uint64_t ml_loop_next_id(ml_loop_t *loop) { return loop->next_id++; }

void ml_loop_post(ml_loop_t *loop, ml_event_t *ev) {
  ev->next = NULL;
  if (loop->tail) loop->tail->next = ev;
  else loop->head = ev;
  loop->tail = ev;
  loop->queued++;
  /* A timer callback runs before libuv computes its poll timeout; without
   * this the event would wait behind the next poll (as in Neovim's
   * loop_on_put). Outside uv_run it only makes the next turn non-blocking. */
  uv_stop(loop->uv);
}

ml_event_t *ml_loop_pop(ml_loop_t *loop) {
  ml_event_t *ev = loop->head;
  if (!ev) return NULL;
  loop->head = ev->next;
  if (!loop->head) loop->tail = NULL;
  loop->queued--;
  ev->next = NULL;
  return ev;
}

size_t ml_loop_cancel(ml_loop_t *loop, uint64_t id) {
  size_t dropped = 0;
  ml_event_t **link = &loop->head, *prev = NULL;
  while (*link) {
    ml_event_t *ev = *link;
    if (ev->id == id) {
      *link = ev->next;
      loop->queued--;
      dropped++;
      ml_event_free(ev);
    } else {
      prev = ev;
      link = &ev->next;
    }
  }
  loop->tail = prev;
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
    /* Block in poll only when nothing is queued for Lua. */
    uv_run(loop->uv, loop->queued ? UV_RUN_NOWAIT : UV_RUN_ONCE);
    ml_loop_run_hooks(loop);
    /* Asked after the hooks: Lua may just have armed a new handle. */
    if (!uv_loop_alive(loop->uv) && !loop->queued) break;
  }
}

uint64_t ml_loop_now(ml_loop_t *loop) { return uv_now(loop->uv); }
