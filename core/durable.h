/* The durability gate of one loop: commits that are written but not yet on
 * disk get a sequence number, and one fdatasync at a time runs on libuv's
 * thread pool (uv_queue_work) while the loop goes on working. A commit made
 * while a sync is in flight is covered by the next one, started as soon as
 * the current one completes (group commit). Whoever must not let bytes out
 * before a commit is durable (the HTTP server) remembers the sequence its
 * bytes depend on (ml_durable_needed) and waits until ml_durable_synced
 * reaches it; watchers are told each time it advances or the gate fails.
 *
 *   commit ─► committed++ ─► [pool: sync] ─► synced = target ─► watchers
 *                 └ one in flight: the next sync covers it
 */
#ifndef ML_DURABLE_H
#define ML_DURABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "loop.h"

typedef struct ml_durable_s ml_durable_t;
typedef struct ml_durable_source_s ml_durable_source_t;

/** Something that commits and then needs a sync (a store). */
struct ml_durable_source_s {
  /** Makes the source's commits durable. Runs on a pool thread, or on the
   * loop thread when the gate settles; never twice at once.
   * @return 0 or a negative error. */
  int (*sync)(void *ud);
  /** Loop thread: the source's sync failed with `err` (once per source). */
  void (*failed)(void *ud, int err);
  void *ud;
  /* private to the gate */
  ml_durable_source_t *next;
  bool dirty;   /* committed since its last sync started */
  bool syncing; /* part of the sync in flight */
  int rc;       /* result of its part, written by the pool thread */
};

/** Called on the loop thread after synced advanced or the gate failed. */
typedef void (*ml_durable_watch_fn)(ml_durable_t *d, void *ud);

#define ML_DURABLE_MAX_WATCHERS 8

struct ml_durable_s {
  ml_loop_t *loop;
  uint64_t committed; /* sequence of the last commit that needs a sync */
  uint64_t synced;    /* every commit up to this one is durable */
  uint64_t target;    /* what the sync in flight covers */
  uint64_t syncs;     /* syncs completed (stats and tests) */
  int err;            /* first sync failure; sticky */
  bool busy;          /* a work request is queued (its after-callback due) */
  bool reaped;        /* settle already took its result */
  bool done;          /* the pool finished the work (guarded by mu) */
  bool closed;        /* ml_durable_close ran: later syncs run inline */
  bool paused;        /* ml_durable_pause: no sync starts (tests) */
  bool inline_idle;   /* ml_durable_set_inline */
  int work_rc;
  uv_mutex_t mu;
  uv_cond_t cv;
  uv_work_t work;
  ml_durable_source_t *sources;
  ml_durable_source_t *work_head; /* the sources list as the work began */
  struct {
    ml_durable_watch_fn fn;
    void *ud;
  } watchers[ML_DURABLE_MAX_WATCHERS];
};

/** Initializes `d` on `loop`. @return 0 or a libuv error. */
int ml_durable_init(ml_durable_t *d, ml_loop_t *loop);

/**
 * With `on`, a sync that would start while the loop has nothing else to do
 * (no event queued for Lua, no handle ready, no timer due) runs at once on
 * the loop thread: nobody waits behind it, and the hand-off to a pool thread
 * and back would only add latency to the one client waiting. Off (the
 * default): every sync goes to the pool.
 */
void ml_durable_set_inline(ml_durable_t *d, bool on);

/**
 * Settles (waits for the sync in flight, syncs what is left), drops the
 * watchers and frees the gate's locks; a source still attached is synced
 * inline from then on. A work request may still be queued on the loop: run the
 * loop before freeing `d`'s memory (its after-callback only reads `d`).
 */
void ml_durable_close(ml_durable_t *d);

/** Adds a source. */
void ml_durable_add(ml_durable_t *d, ml_durable_source_t *src);

/** Settles, then removes `src`: the gate never calls it again. */
void ml_durable_remove(ml_durable_t *d, ml_durable_source_t *src);

/**
 * Records that `src` committed something that is durable only after its
 * sync (call once per loop turn that committed): the sequence advances and
 * a sync starts unless one is in flight.
 */
void ml_durable_committed(ml_durable_t *d, ml_durable_source_t *src);

/**
 * Blocks until nothing is unsynced: waits for the sync in flight, then
 * syncs what is left on the calling (loop) thread and tells the watchers.
 * For shutdown and for a source going away.
 * @return 0 or the gate's failure
 */
int ml_durable_settle(ml_durable_t *d);

/** @return the sequence that bytes produced now depend on. */
static inline uint64_t ml_durable_needed(const ml_durable_t *d) {
  return d->committed;
}

/** @return true when every commit up to `seq` is durable. */
static inline bool ml_durable_covers(const ml_durable_t *d, uint64_t seq) {
  return d->synced >= seq;
}

/** @return 0, or the first sync failure (commits after it never become
 *   durable: bytes waiting for them must not go out). */
static inline int ml_durable_error(const ml_durable_t *d) { return d->err; }

/**
 * Holds (true) or lets go (false) the syncs not yet started: a test's way
 * to look at a server whose disk is slow. A settle syncs anyway.
 */
void ml_durable_pause(ml_durable_t *d, bool paused);

/** Adds a watcher. @return 0 or ML_ETOOLARGE. */
int ml_durable_watch(ml_durable_t *d, ml_durable_watch_fn fn, void *ud);

/** Removes a watcher added with the same fn and ud. */
void ml_durable_unwatch(ml_durable_t *d, ml_durable_watch_fn fn, void *ud);

#endif
