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

/* Records the ids the hooks deliver, in order; while `idle_busy_turns` is
 * above zero each turn posts another ordinary event (constant work). */
static uint64_t idle_seen[16];
static int idle_nseen, idle_busy_turns, idle_turn_of_idle, idle_turns;
static void idle_hook(ml_loop_t *loop, void *ud) {
  (void)ud;
  idle_turns++;
  ml_event_t *e;
  while ((e = ml_loop_pop(loop)) != NULL) {
    if (idle_nseen < 16) idle_seen[idle_nseen++] = e->id;
    if (e->id == 100) idle_turn_of_idle = idle_turns;
    ml_event_free(e);
  }
  if (idle_busy_turns > 0 && --idle_busy_turns > 0) ml_loop_post(loop, ev(5));
}
static bool idle_delivered(void *ud) {
  (void)ud;
  return idle_turn_of_idle > 0;
}

/* Idle turns: an event posted with ml_loop_post_idle goes to Lua only once
 * a turn finds nothing else queued, behind the rest; cancel and close drop
 * it; a loop with only an idle waiter and a far timer does not block. */
static void test_idle(uv_loop_t *uv) {
  ml_loop_t loop;
  ml_loop_init(&loop, uv);
  ml_loop_add_hook(&loop, idle_hook, NULL);
  /* Posted before ordinary events that then keep coming for 5 turns. */
  ml_loop_post_idle(&loop, ev(100));
  ml_loop_post(&loop, ev(1));
  ml_loop_post(&loop, ev(2));
  idle_busy_turns = 6;
  CHECK(loop.queued == 2, "an idle event is not queued for Lua at once");
  uv_timer_t far;
  uv_timer_init(uv, &far);
  uv_timer_start(&far, on_busy_timer, 10000, 0);
  uint64_t t0 = uv_hrtime();
  ml_loop_run(&loop, idle_delivered, NULL);
  CHECK(idle_turn_of_idle > 0, "the idle event was delivered");
  CHECK(uv_hrtime() - t0 < 2000ull * 1000 * 1000,
        "the loop did not block in poll while an idle event waited");
  CHECK(idle_nseen >= 2 && idle_seen[0] == 1 && idle_seen[1] == 2,
        "ordinary events went first");
  CHECK(idle_seen[idle_nseen - 1] == 100 && idle_busy_turns == 0,
        "the idle event waited until no more work was posted");
  CHECK(idle_nseen == 8, "two events, five posted by busy turns, then idle");
  uv_timer_stop(&far);
  uv_close((uv_handle_t *)&far, NULL);

  /* Cancel finds idle waiters (and keeps the list's tail right). */
  ml_loop_post_idle(&loop, ev(101));
  ml_loop_post_idle(&loop, ev(102));
  ml_loop_post_idle(&loop, ev(101));
  ml_loop_post(&loop, ev(101));
  CHECK(ml_loop_cancel(&loop, 101) == 3, "cancel drops idle and queued events");
  CHECK(loop.idle_head && loop.idle_head == loop.idle_tail &&
            loop.idle_head->id == 102,
        "the other idle waiter stays, as head and tail");
  ml_loop_post_idle(&loop, ev(103));
  CHECK(loop.idle_tail->id == 103 && loop.idle_head->next == loop.idle_tail,
        "an idle event posted after a cancel goes behind (tail fixed)");
  CHECK(ml_loop_cancel(&loop, 102) == 1 && ml_loop_cancel(&loop, 103) == 1 &&
            !loop.idle_head && !loop.idle_tail,
        "cancelling every idle waiter empties the list");
  /* Close frees waiters never delivered (the leak check under ASan). */
  ml_loop_post_idle(&loop, ev(104));
  ml_loop_post_idle(&loop, ev(105));
  ml_loop_close(&loop);
  CHECK(!loop.idle_head && !loop.idle_tail, "close frees idle waiters");
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
  test_idle(&uv);
  uv_run(&uv, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&uv) == 0, "uv_loop_close() == 0");
  printf("1..%d\n", ntests);
  return nfailed ? 1 : 0;
}
