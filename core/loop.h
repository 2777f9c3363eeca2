/* The moonlet loop: one libuv loop plus a queue of events that libuv and
 * libcurl callbacks post. Callbacks never run Lua; they post an event and
 * return. After every libuv turn the loop runs its end-of-turn hooks in
 * registration order: the Lua runtime drains the queue, the store commits the
 * turn's writes in one transaction, the HTTP server flushes the responses that
 * were waiting for that commit. The drain delivers at most a time budget of
 * events per turn; API requests are queued ahead of the rest (post_first).
 * Events posted with ml_loop_post_idle wait aside until a turn finds nothing
 * queued for Lua (the loop would block in poll): work of low priority.
 *
 *   uv_run(ONCE) ─► callbacks post events ─► hooks: drain │ commit │ flush
 *        ▲                                                         │
 *        └─────────────── NOWAIT while events are queued ◄─────────┘
 */
#ifndef ML_LOOP_H
#define ML_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* Event types. A binding registers one push function per type. */
enum {
  ML_EV_TIMER = 1,
  ML_EV_SIGNAL,
  ML_EV_HTTP_DONE,     /* http client: a request finished */
  ML_EV_HTTP_CHUNK,    /* http client: streamed body data */
  ML_EV_HTTPD_REQUEST, /* http server: a complete request */
  ML_EV_HTTPD_CLOSED,  /* http server: the peer of a request went away */
  ML_EV_STORE_WATCH,   /* store: a watch event for an in-process watcher */
  ML_EV_PROC_EXIT,
  ML_EV_PROBE_DONE,
  ML_EV_IDLE,          /* loop: nothing else was queued (ml_loop_post_idle) */
  ML_EV_FS_DONE,       /* sys: a file-system call on libuv's pool finished */
  ML_EV_MAX
};

typedef struct ml_event_s ml_event_t;

/** Embed as the first member of each concrete event struct. */
struct ml_event_s {
  ml_event_t *next;
  int type;
  uint64_t id; /* the Lua-side id the result is delivered to */
  /** Frees the concrete event; called after delivery. NULL: free(). */
  void (*destroy)(ml_event_t *ev);
};

typedef struct ml_loop_s ml_loop_t;
typedef void (*ml_loop_hook_fn)(ml_loop_t *loop, void *ud);

#define ML_LOOP_MAX_HOOKS 8

struct ml_loop_s {
  uv_loop_t *uv;
  ml_event_t *head, *tail;
  size_t queued;
  /* The first `urgent` events of the list were posted with
   * ml_loop_post_first; urgent_tail is the last of them. */
  ml_event_t *urgent_tail;
  size_t urgent;
  /* Events waiting for an idle turn (ml_loop_post_idle), in post order. */
  ml_event_t *idle_head, *idle_tail;
  bool in_uv_run; /* inside ml_loop_run's uv_run call */
  bool stopping;
  bool closing; /* ml_loop_close was called: post nothing new */
  uint64_t next_id;
  struct {
    ml_loop_hook_fn fn;
    void *ud;
  } hooks[ML_LOOP_MAX_HOOKS];
  int nhooks;
};

/** Initializes `loop` over an initialized uv loop owned by the caller. */
void ml_loop_init(ml_loop_t *loop, uv_loop_t *uv);
/** Frees events still queued (undelivered, idle ones too). The uv loop is
 * the caller's. */
void ml_loop_close(ml_loop_t *loop);

/** @return a fresh id, unique for the loop's lifetime (never 0). */
uint64_t ml_loop_next_id(ml_loop_t *loop);
/** Queues `ev` (ownership passes to the loop). Safe from any loop callback. */
void ml_loop_post(ml_loop_t *loop, ml_event_t *ev);
/**
 * Queues `ev` ahead of every event posted with ml_loop_post, behind those
 * posted with this function before (the API's requests: a client waiting on
 * a socket goes before the server's own backlog of work).
 */
void ml_loop_post_first(ml_loop_t *loop, ml_event_t *ev);
/**
 * Holds `ev` aside until a turn of ml_loop_run ends with nothing queued for
 * Lua after polling without blocking (the loop had nothing else to do), then
 * queues it behind everything else. While one waits, the loop polls without
 * blocking; under constant work it may wait for ever, so a caller that needs
 * a bound arms a timer as well.
 */
void ml_loop_post_idle(ml_loop_t *loop, ml_event_t *ev);
/** @return true when the next event ml_loop_pop gives was posted first. */
bool ml_loop_next_is_first(const ml_loop_t *loop);
/**
 * Drops every queued, undelivered event for `id` (a handle closing: its
 * late events must not reach Lua), those waiting for an idle turn too.
 * @return how many were dropped.
 */
size_t ml_loop_cancel(ml_loop_t *loop, uint64_t id);
/** Pops the oldest queued event, or NULL. The caller destroys it. */
ml_event_t *ml_loop_pop(ml_loop_t *loop);
/** Destroys an event through its destroy function. */
void ml_event_free(ml_event_t *ev);

/** Adds an end-of-turn hook. @return 0 or ML_ETOOLARGE. */
int ml_loop_add_hook(ml_loop_t *loop, ml_loop_hook_fn fn, void *ud);
/** Runs the hooks once (also used to settle before shutdown). */
void ml_loop_run_hooks(ml_loop_t *loop);

/**
 * Runs until ml_loop_stop() or until `done(ud)` returns true (when given),
 * or until nothing is left to do.
 */
void ml_loop_run(ml_loop_t *loop, bool (*done)(void *ud), void *ud);
/** Asks ml_loop_run to return after the current turn. */
void ml_loop_stop(ml_loop_t *loop);

/** Monotonic milliseconds (the loop's cached time). */
uint64_t ml_loop_now(ml_loop_t *loop);

#endif
