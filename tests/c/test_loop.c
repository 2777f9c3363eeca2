/* Unit tests of the moonlet loop's event queue and turn structure (TAP). */
#include <stdio.h>
#include <stdlib.h>

#include "loop.h"

#include "tap.h"

#define CHECK(cond, msg) ok((cond), "%s", (msg))

static ml_event_t *ev(uint64_t id) {
  ml_event_t *e = calloc(1, sizeof *e);
  e->id = id;
  return e;
}

static int hook_calls;
static void hook(ml_loop_t *loop, void *ud) {
  (void)loop;
  hook_calls += *(int *)ud;
}

static void on_timer(uv_timer_t *t) { ml_loop_post(t->data, ev(42)); }

static bool got_event(void *ud) { return ((ml_loop_t *)ud)->queued > 0; }

/* A server busy with its own work: every turn's hooks consume what is
 * queued and post more (Lua answering in-process calls does this). */
static int busy_fired;
static uint64_t busy_until;
static void busy_hook(ml_loop_t *loop, void *ud) {
  (void)ud;
  ml_event_t *e;
  while ((e = ml_loop_pop(loop)) != NULL) ml_event_free(e);
  if (!busy_fired && uv_hrtime() < busy_until) ml_loop_post(loop, ev(7));
}
static void on_busy_timer(uv_timer_t *t) {
  (void)t;
  busy_fired = 1;
}
static bool busy_done(void *ud) {
  (void)ud;
  return busy_fired || uv_hrtime() >= busy_until;
}

int main(void) {
  uv_loop_t uv;
  uv_loop_init(&uv);
  ml_loop_t loop;
  ml_loop_init(&loop, &uv);

  ml_loop_post(&loop, ev(1));
  ml_loop_post(&loop, ev(2));
  ml_loop_post(&loop, ev(1));
  ml_loop_post(&loop, ev(3));
  CHECK(loop.queued == 4, "four events queued");
  CHECK(ml_loop_cancel(&loop, 1) == 2, "cancel drops both events of id 1");
  CHECK(loop.queued == 2, "two left");
  ml_loop_post(&loop, ev(4));
  ml_event_t *e = ml_loop_pop(&loop);
  CHECK(e && e->id == 2, "order kept: 2 first");
  ml_event_free(e);
  e = ml_loop_pop(&loop);
  CHECK(e && e->id == 3, "then 3");
  ml_event_free(e);
  e = ml_loop_pop(&loop);
  CHECK(e && e->id == 4, "an event posted after a cancel is kept (tail fixed)");
  ml_event_free(e);
  CHECK(ml_loop_pop(&loop) == NULL && loop.tail == NULL, "queue empty");
  ml_loop_post(&loop, ev(9));
  CHECK(ml_loop_cancel(&loop, 9) == 1 && loop.head == NULL && loop.tail == NULL,
        "cancelling the only event empties head and tail");
  CHECK(ml_loop_next_id(&loop) != ml_loop_next_id(&loop), "ids are unique");

  /* Posted first: ahead of ordinary events, in their own order. */
  ml_loop_post(&loop, ev(10));
  ml_loop_post(&loop, ev(11));
  ml_loop_post_first(&loop, ev(20));
  ml_loop_post_first(&loop, ev(21));
  ml_loop_post(&loop, ev(12));
  ml_loop_post_first(&loop, ev(22));
  CHECK(loop.queued == 6 && loop.urgent == 3, "six queued, three of them first");
  CHECK(ml_loop_cancel(&loop, 21) == 1 && loop.urgent == 2, "cancelling a first event counts it");
  CHECK(ml_loop_cancel(&loop, 22) == 1 && loop.urgent == 1 && loop.urgent_tail &&
            loop.urgent_tail->id == 20,
        "cancelling the last first event moves the mark back");
  ml_loop_post_first(&loop, ev(23));
  static const uint64_t want[] = {20, 23, 10, 11, 12};
  int in_order = 1;
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    int first = ml_loop_next_is_first(&loop);
    e = ml_loop_pop(&loop);
    if (!e || e->id != want[i] || first != (i < 2)) in_order = 0;
    if (e) ml_event_free(e);
  }
  CHECK(in_order, "first events come out first, each group in posting order");
  CHECK(loop.queued == 0 && loop.urgent == 0 && loop.urgent_tail == NULL && loop.tail == NULL,
        "queue empty, no first mark left");
  ml_loop_post_first(&loop, ev(30));
  CHECK(loop.head && loop.head == loop.tail, "a first event alone is head and tail");
  ml_loop_post(&loop, ev(31));
  CHECK(ml_loop_cancel(&loop, 30) == 1 && loop.urgent == 0 && loop.urgent_tail == NULL &&
            loop.head && loop.head->id == 31,
        "cancelling the only first event clears the mark");
  e = ml_loop_pop(&loop);
  ml_event_free(e);

  /* Hooks run in order after each turn; a timer's event ends the run. */
  int one = 1;
  ml_loop_add_hook(&loop, hook, &one);
  uv_timer_t t;
  uv_timer_init(&uv, &t);
  t.data = &loop;
  uv_timer_start(&t, on_timer, 5, 0);
  ml_loop_run(&loop, got_event, &loop);
  CHECK(loop.queued == 1, "the timer's event arrived");
  CHECK(hook_calls >= 1, "end-of-turn hooks ran");
  uv_close((uv_handle_t *)&t, NULL);
  ml_loop_close(&loop);

  /* Events posted outside uv_run (by the hooks) must not keep the next
   * uv_run from polling and running timers: a busy server once served no
   * socket and no timer until its backlog ended. */
  ml_loop_t busy;
  ml_loop_init(&busy, &uv);
  ml_loop_add_hook(&busy, busy_hook, NULL);
  uv_timer_t bt;
  uv_timer_init(&uv, &bt);
  uv_timer_start(&bt, on_busy_timer, 2, 0);
  busy_until = uv_hrtime() + 300 * 1000 * 1000ull;
  ml_loop_post(&busy, ev(7));
  ml_loop_run(&busy, busy_done, NULL);
  CHECK(busy_fired, "a timer fires while every turn posts new events");
  uv_close((uv_handle_t *)&bt, NULL);
  ml_loop_close(&busy);
  uv_run(&uv, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&uv) == 0, "uv_loop_close() == 0");
  printf("1..%d\n", ntests);
  return nfailed ? 1 : 0;
}
