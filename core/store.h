/* The moonlet object store: Kubernetes objects (jansson documents) addressed
 * by (resource, namespace, name), one global resourceVersion counter, the
 * metadata rules of the apiserver's generic registry (uid, generation,
 * status subresource, finalizers, graceful deletion), list with selectors
 * and continue tokens, and watch from a resourceVersion. Persistence goes
 * through a backend vtable (store_backend.h): sqlite by default, memory.
 *
 *   write ─► backend put (open txn) ─► index ─► watch window ─► watchers
 *   end of loop turn: ml_store_commit() ─► one COMMIT for the whole turn
 *
 * Each object is kept as its serialized text (shared by refcount, never
 * modified) plus a small copy of its labels for selector matching; documents
 * are parsed from the text on demand. A document this API hands out is the
 * caller's own; a text is a new reference the caller releases.
 */
#ifndef ML_STORE_H
#define ML_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json_write.h"

typedef struct ml_store_s ml_store_t;
typedef struct ml_store_watch_s ml_store_watch_t;

/** A serialized object (compact JSON, NUL-terminated), shared by refcount
 * between the index, the watch window and queued watch events. */
typedef struct ml_store_text_s {
  uint32_t refs;
  size_t len;
  char data[];
} ml_store_text_t;

/** @return `t` with one more reference. */
ml_store_text_t *ml_store_text_ref(ml_store_text_t *t);
/** Drops one reference (NULL is ignored). */
void ml_store_text_unref(ml_store_text_t *t);

/** Watch event types; ML_STORE_CLOSED tells a watcher its store closed. */
enum {
  ML_STORE_CLOSED = 0,
  ML_STORE_ADDED,
  ML_STORE_MODIFIED,
  ML_STORE_DELETED
};
/** @return "ADDED", "MODIFIED", "DELETED" (or "CLOSED"). */
const char *ml_store_event_name(int type);

/* Write flags. */
enum {
  /** Track metadata.generation (1 on create, +1 on spec changes). */
  ML_STORE_GENERATION = 1 << 0,
  /** The kind has a status subresource: main writes keep stored status. */
  ML_STORE_STATUS_SUBRESOURCE = 1 << 1,
  /** This update targets the status subresource: only status changes. */
  ML_STORE_WRITE_STATUS = 1 << 2,
  /** Create: keep a non-empty metadata.uid the caller assigned (from
   * ml_store_new_uid), for kinds whose create needs the uid before it is
   * stored (a Job's generated selector), as the apiserver fills system
   * metadata before validation. */
  ML_STORE_KEEP_UID = 1 << 3,
  /** Create/update: `obj` is the caller's own, unshared document, which it
   * releases after the call without reading it again: the store takes it
   * (and may change it) instead of copying it. */
  ML_STORE_TAKE = 1 << 4
};

typedef struct {
  const char *backend; /* "sqlite" (default) or "memory" */
  const char *path;    /* sqlite database file */
  /** sqlite durability: "full" (default: fsync per commit, survives power
   * loss), "normal" (survives kill -9, not power loss; no fsync per
   * commit), "off". */
  const char *sync;
  size_t watch_window;           /* events kept for resumption; 0: 10000 */
  uint32_t watch_window_seconds; /* and at most this old; 0: 300 */
} ml_store_options_t;

/** What a write returns. Both members are new references (or NULL). */
typedef struct {
  json_t *obj;           /* the object as stored (or as deleted) */
  ml_store_text_t *text; /* its serialized form */
  bool removed;          /* delete/update: the object is gone now */
} ml_store_result_t;

/** Releases the references in `r` and zeroes it. */
void ml_store_result_clear(ml_store_result_t *r);

/**
 * Opens a store and loads every stored object into memory; the
 * resourceVersion counter continues from the highest value ever used.
 * @param errmsg on failure receives a malloc'd message (caller frees).
 * @return 0, ML_EINVALID (unknown backend) or ML_EIO.
 */
int ml_store_open(const ml_store_options_t *opts, ml_store_t **out,
                  char **errmsg);

/**
 * Commits pending writes and frees the store. Remaining watchers get one
 * ML_STORE_CLOSED callback and are freed: their handles become invalid.
 */
void ml_store_close(ml_store_t *s);

/**
 * Commits the writes made since the last commit in one transaction. Meant
 * as an end-of-turn hook (ml_loop_add_hook), registered before the HTTP
 * server's flush hook so nothing is acknowledged before it is durable. With
 * sync "full" the commit is durable only after ml_store_sync: the hook hands
 * it to the loop's durability gate (core/durable.h), which holds answers
 * until then.
 * @return 0 or ML_EIO (the store then refuses further writes).
 */
int ml_store_commit(ml_store_t *s);

/**
 * @return true once after a commit that needs ml_store_sync to be durable
 *   (the flag is cleared: the caller now owns that sync). A commit not
 *   taken is synced by ml_store_close.
 */
bool ml_store_take_unsynced(ml_store_t *s);

/**
 * Makes every commit so far durable (fdatasync of the sqlite WAL). Safe on
 * another thread while the loop thread keeps using the store; never run two
 * at once. @return 0 or a negative errno (UV_E*).
 */
int ml_store_sync(ml_store_t *s);

/**
 * A sync failed with `err`: the store refuses further writes, as after a
 * failed commit (memory may hold what the disk lost).
 */
void ml_store_sync_failed(ml_store_t *s, int err);

/** @return the message of the last failed call on `s` ("" if none). */
const char *ml_store_last_error(const ml_store_t *s);

/**
 * The resourceVersion of one object, without reading it: a caller that
 * keeps something derived from an object (the API's view of a namespace)
 * knows from it whether the object changed.
 * @return 0 with *rv set, or ML_ENOTFOUND.
 */
int ml_store_object_version(ml_store_t *s, const char *resource,
                            const char *ns, const char *name, uint64_t *rv);

/** @return the current (highest used) resourceVersion. */
uint64_t ml_store_resource_version(const ml_store_t *s);

/** Fixes the wall clock (unix seconds) for timestamps and the watch
 * window's time bound; 0 returns to the real clock. For tests. */
void ml_store_set_time(ml_store_t *s, int64_t unix_seconds);

/** Makes uids and generated names deterministic (a PRNG seeded with
 * `seed`) so tests can force generateName collisions; 0 returns to the
 * system's random source. */
void ml_store_set_seed(ml_store_t *s, uint64_t seed);

/** Writes a new random (version 4) uid, from the same source creates use
 * (deterministic under ml_store_set_seed). */
void ml_store_new_uid(ml_store_t *s, char out[37]);

/**
 * Creates `obj` (borrowed; the store keeps a copy) in `ns` ("" for
 * cluster-scoped). Sets uid (unless ML_STORE_KEEP_UID and the object has
 * one), resourceVersion, creationTimestamp, name from generateName,
 * generation (with ML_STORE_GENERATION).
 * @return 0, ML_EEXISTS, ML_EINVALID, ML_EIO. Messages: ml_store_last_error.
 */
int ml_store_create(ml_store_t *s, const char *resource, const char *ns,
                    const json_t *obj, unsigned flags, ml_store_result_t *out);

/** The caller's metadata members a create checks: each a string, or NULL
 * when absent or not a string. */
typedef struct {
  const char *name, *generate_name, *ns, *resource_version, *uid;
} ml_store_meta_in_t;

/** What the store sets in a created object's metadata. */
typedef struct {
  const char *name;
  const char *ns;  /* "": the object has no metadata.namespace */
  const char *uid; /* NULL: the caller's uid stays (ML_STORE_KEEP_UID) */
  const char *resource_version;
  bool generation; /* metadata.generation is 1 (ML_STORE_GENERATION) */
  const char *creation_timestamp;
} ml_store_meta_t;

/** What a create writer reports of the object it wrote. */
typedef struct {
  /** A new reference to metadata.labels (left NULL when it has none). */
  json_t *labels;
  /** metadata.ownerReferences or .finalizers is there and is not null,
   * [] or "" (what ownership watchers are told about). */
  bool owner_relevant;
} ml_store_written_t;

/**
 * Writes a created object's compact JSON text for ml_store_create_text:
 * the bytes ml_store_create would store for the same object, with `m` laid
 * over its metadata as ml_store_create lays it (members it replaces keep
 * their place; new ones follow in the order name, namespace, uid,
 * resourceVersion, generation, creationTimestamp; deletionTimestamp and
 * deletionGracePeriodSeconds dropped).
 * @param b append the text here (from b->len on).
 * @param w what the store indexes of the object, filled by the writer.
 * @return 1, or 0 to decline (nothing written counts).
 */
typedef int (*ml_store_write_fn)(void *ud, const ml_store_meta_t *m,
                                 ml_json_buf_t *b, ml_store_written_t *w);

/** ml_store_create_text's answer when the writer declined. */
#define ML_STORE_DECLINED 1

/**
 * ml_store_create for a caller that writes the object's text itself
 * (a Lua table, with no jansson tree in between): the same checks of
 * `in`, the same metadata, the same stored bytes. out->obj stays NULL.
 * @return 0, ML_STORE_DECLINED when `write` declined (nothing changed:
 *         the caller then uses ml_store_create), or ml_store_create's
 *         errors.
 */
int ml_store_create_text(ml_store_t *s, const char *resource, const char *ns,
                         const ml_store_meta_in_t *in, unsigned flags,
                         ml_store_write_fn write, void *ud,
                         ml_store_result_t *out);

/**
 * Replaces the object named by obj.metadata.{namespace,name}. A non-empty
 * resourceVersion must match; uid/creationTimestamp/deletion fields are
 * kept. A no-op update returns the stored object and writes nothing. With
 * finalizers gone on an object being deleted with grace 0, it is removed.
 * @param flags ML_STORE_GENERATION | ML_STORE_STATUS_SUBRESOURCE |
 *        ML_STORE_WRITE_STATUS.
 * @return 0, ML_ENOTFOUND, ML_ECONFLICT, ML_EINVALID, ML_EIO.
 */
int ml_store_update(ml_store_t *s, const char *resource, const json_t *obj,
                    unsigned flags, ml_store_result_t *out);

/** The caller's metadata members a status write reads: each a string, or
 * NULL when absent or not a string. */
typedef struct {
  const char *name, *ns, *resource_version, *uid;
} ml_store_update_in_t;

/**
 * Writes one JSON value at b->len: the compact bytes the store's
 * serializer would write for it.
 * @return 1, or 0 to decline (nothing written counts).
 */
typedef int (*ml_store_value_fn)(void *ud, ml_json_buf_t *b);

/**
 * ml_store_update with ML_STORE_WRITE_STATUS for a caller that writes the
 * new status's text itself (a Lua table, no jansson tree): the stored
 * object's text keeps every byte but its status and resourceVersion, and
 * is neither parsed nor serialized again. The same checks, errors, no-op
 * rule (json_equal of the statuses), stored bytes and watch events as
 * ml_store_update; out->obj stays NULL.
 * @return 0, ML_STORE_DECLINED (nothing changed: the caller then uses
 *         ml_store_update) when `status` declined or the stored text is
 *         one this path does not take, or ml_store_update's errors.
 */
int ml_store_update_status_text(ml_store_t *s, const char *resource,
                                const ml_store_update_in_t *in,
                                ml_store_value_fn status, void *ud,
                                ml_store_result_t *out);

/** The metadata members an update keeps from the stored object, in the
 * order ml_store_update appends those the caller's object lacks. */
enum {
  ML_STORE_KEPT_UID,
  ML_STORE_KEPT_CREATION_TIMESTAMP,
  ML_STORE_KEPT_NAME,
  ML_STORE_KEPT_NAMESPACE,
  ML_STORE_KEPT_DELETION_TIMESTAMP,
  ML_STORE_KEPT_DELETION_GRACE,
  ML_STORE_KEPT_GENERATION,
  ML_STORE_KEPT_COUNT
};

/** What an update writer lays over the caller's object: raw JSON values
 * from the stored object's text (NULL when it has none). */
typedef struct {
  /** Indexed by ML_STORE_KEPT_*; with the names in `kept_names`. */
  const char *kept[ML_STORE_KEPT_COUNT];
  size_t kept_len[ML_STORE_KEPT_COUNT];
  const char *const *kept_names;
  const char *resource_version; /* the stored value, quoted */
  size_t resource_version_len;
  /** Non-NULL: the kind has a status subresource; this is the stored
   * status (NULL with keep_status: the stored object has none). */
  bool keep_status;
  const char *status;
  size_t status_len;
} ml_store_update_meta_t;

/** What an update writer reports of the text it wrote. Offsets count in
 * the buffer handed to the writer. */
typedef struct {
  /** A new reference to metadata.labels (left NULL when it has none). */
  json_t *labels;
  /** Where the stored resourceVersion value was written. */
  size_t rv_at, rv_len;
  /** Where the kept generation value was written (gen_len 0: it was not;
   * a new one goes in at gen_at, after another metadata member). */
  size_t gen_at, gen_len;
} ml_store_update_written_t;

/**
 * Writes an updated object's compact JSON text for ml_store_update_text:
 * the caller's object with `m` laid over it as ml_store_update lays the
 * stored object's fields (members it replaces keep their place; kept
 * members the object lacks follow in ML_STORE_KEEP_* order, then
 * resourceVersion if the object lacks it; kept members the stored object
 * lacks dropped; with keep_status the status likewise, appended last).
 * @return 1, or 0 to decline.
 */
typedef int (*ml_store_update_write_fn)(void *ud, const ml_store_update_meta_t *m,
                                        ml_json_buf_t *b,
                                        ml_store_update_written_t *w);

/**
 * ml_store_update (not ML_STORE_WRITE_STATUS) for a caller that writes
 * the object's text itself: the same stored bytes, no-op rule, generation
 * rule and watch events, with no jansson tree. Any failure, and stored
 * objects this path leaves alone (being deleted with finalizers), decline:
 * ml_store_update then answers with its own errors. out->obj stays NULL.
 * @param flags ML_STORE_GENERATION | ML_STORE_STATUS_SUBRESOURCE.
 * @return 0 or ML_STORE_DECLINED (nothing changed).
 */
int ml_store_update_text(ml_store_t *s, const char *resource,
                         const ml_store_update_in_t *in, unsigned flags,
                         ml_store_update_write_fn write, void *ud,
                         ml_store_result_t *out);

typedef struct {
  const char *uid;              /* precondition or NULL */
  const char *resource_version; /* precondition or NULL */
  /** Graceful deletion period; < 0 when the kind has none (not a pod). */
  int64_t grace_seconds;
} ml_store_delete_opts_t;

/**
 * Deletes an object, or marks it (deletionTimestamp + grace period) when it
 * has finalizers or a grace period > 0 applies: out->removed tells which.
 * A second delete may only shorten a pending grace period.
 * @return 0, ML_ENOTFOUND, ML_ECONFLICT, ML_EIO.
 */
int ml_store_delete(ml_store_t *s, const char *resource, const char *ns,
                    const char *name, const ml_store_delete_opts_t *opts,
                    ml_store_result_t *out);

/**
 * Reads one object. obj and text may be NULL when not wanted.
 * @return 0 or ML_ENOTFOUND.
 */
int ml_store_get(ml_store_t *s, const char *resource, const char *ns,
                 const char *name, json_t **obj, ml_store_text_t **text);

typedef struct {
  const char *ns;             /* NULL or "": all namespaces */
  const char *label_selector; /* NULL or "": everything */
  const char *field_selector;
  size_t limit;               /* 0: no limit */
  const char *continue_token; /* from a previous page, or NULL */
} ml_store_list_opts_t;

typedef struct {
  json_t **items; /* new references, ordered by namespace then name */
  size_t n;
  uint64_t resource_version;
  char *continue_token; /* malloc'd when more items remain, else NULL */
} ml_store_list_t;

/**
 * Lists objects of a resource.
 * @return 0, ML_EINVALID (bad selector: message from its parser) or
 *         ML_EBADREQ (bad continue token).
 */
int ml_store_list(ml_store_t *s, const char *resource,
                  const ml_store_list_opts_t *opts, ml_store_list_t *out);
void ml_store_list_clear(ml_store_list_t *l);

/**
 * Like ml_store_list but builds the JSON text of the items array from each
 * object's cached serialization.
 * @param json receives a malloc'd NUL-terminated "[...]"; len its length.
 * @param cont receives a malloc'd continue token or NULL.
 */
int ml_store_list_json(ml_store_t *s, const char *resource,
                       const ml_store_list_opts_t *opts, char **json,
                       size_t *len, uint64_t *rv, char **cont);

typedef struct {
  const char *ns; /* NULL or "": all namespaces */
  const char *label_selector;
  const char *field_selector;
  /** NULL, "" or "0": ADDED for every current object, then changes. */
  const char *resource_version;
  /** Only what ownership bookkeeping needs (the garbage collector's
   * watch): additions and changes of objects that, before or after, have
   * ownerReferences, finalizers or a deletionTimestamp, and every
   * deletion. A plain object's creation and edits are not delivered. */
  bool owner_events;
} ml_store_watch_opts_t;

/**
 * Called for each event a watcher receives, in commit order. `text` is
 * borrowed (ml_store_text_ref it to keep it). Must not write to the store.
 */
typedef void (*ml_store_watch_fn)(void *ud, int type, ml_store_text_t *text);

/**
 * Starts a watch. Events older than the window give ML_EGONE ("too old
 * resource version: N (M)"); a version above the current one gives
 * ML_ETIMEDOUT ("Too large resource version: N, current: M"). Initial and
 * replayed events are delivered before this returns; *out is set before
 * they are, so a callback may close the watcher (*out is then NULL).
 * @return 0, ML_EGONE, ML_ETIMEDOUT, ML_EINVALID.
 */
int ml_store_watch(ml_store_t *s, const char *resource,
                   const ml_store_watch_opts_t *opts, ml_store_watch_fn fn,
                   void *ud, ml_store_watch_t **out);

/** Stops and frees a watcher (safe inside its own callback). */
void ml_store_watch_close(ml_store_watch_t *w);

#endif
