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
  uv_run(&uv, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&uv) == 0, "uv_loop_close() == 0");
  printf("1..%d\n", ntests);
  return nfailed ? 1 : 0;
}
