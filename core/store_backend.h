/* Persistence behind the object store: a const vtable so a new backend
 * (etcd later) plugs in without touching store.c. The store keeps every
 * object in memory; a backend only has to load them once and record
 * changes. Writes of one loop turn arrive between begin() and commit(). */
#ifndef ML_STORE_BACKEND_H
#define ML_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

/** Receives what load_all finds. Returning non-zero stops the load. */
typedef struct {
  void *ud;
  int (*object)(void *ud, const char *resource, const char *ns,
                const char *name, const char *data, size_t len);
  int (*meta)(void *ud, const char *key, const char *value);
} ml_store_loader_t;

/** Where and how a backend stores. */
typedef struct {
  const char *path; /* file or endpoint; NULL for memory */
  /** Durability of a commit: "full" (default: fsync per commit), "normal"
   * (survives a process crash, not power loss), "off". */
  const char *sync;
} ml_store_backend_config_t;

/** commit's result: written, durable only after sync. */
#define ML_STORE_UNSYNCED 1

typedef struct ml_store_backend_s {
  const char *name;
  /** Opens (creating if needed) the database cfg->path.
   * @param errmsg on failure: a malloc'd message.
   * @return 0, ML_EINVALID (bad config) or ML_EIO. */
  int (*open)(const ml_store_backend_config_t *cfg, void **db, char **errmsg);
  /** Reports every stored object and meta entry. @return 0 or error. */
  int (*load_all)(void *db, const ml_store_loader_t *loader);
  /** Starts the transaction that collects one turn's writes. */
  int (*begin)(void *db);
  /** Inserts or replaces one object (inside begin/commit). */
  int (*put)(void *db, const char *resource, const char *ns, const char *name,
             uint64_t rv, const char *data, size_t len);
  /** Removes one object (inside begin/commit). */
  int (*remove)(void *db, const char *resource, const char *ns,
                const char *name);
  /** Records a store-wide value such as the resourceVersion counter. */
  int (*set_meta)(void *db, const char *key, const char *value);
  /** Ends the transaction. @return 0 (durable), ML_STORE_UNSYNCED (durable
   * once sync returns) or ML_EIO. */
  int (*commit)(void *db);
  /** Makes every commit so far durable. May run on another thread while
   * the loop thread uses the backend; never twice at once. NULL: nothing
   * to sync. @return 0 or a negative errno (UV_E*). */
  int (*sync)(void *db);
  /** The message of the last failure (static or owned by the backend). */
  const char *(*errmsg)(void *db);
  void (*close)(void *db);
} ml_store_backend_t;

extern const ml_store_backend_t ml_store_backend_sqlite;
extern const ml_store_backend_t ml_store_backend_memory;

#endif
