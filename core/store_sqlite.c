/* The sqlite backend of the object store: one table of serialized objects
 * keyed by (resource, namespace, name) and a small meta table (the
 * resourceVersion counter). WAL with exclusive locking, so two servers never
 * share one data file. Statements are prepared once. Sync "full" (default):
 * a committed turn survives kill -9 and power loss once sq_sync made its WAL
 * frames durable; "normal": kill -9 only, no fsync per commit.
 *
 * In "full" mode sqlite runs with synchronous=NORMAL (in WAL mode: syncs at
 * checkpoints and WAL resets only, so the file stays consistent) and the
 * per-commit fdatasync is ours, on our own descriptor of the WAL file, so it
 * can run on another thread while the loop thread goes on (core/durable.h).
 * fdatasync flushes the inode, whichever descriptor wrote the pages. The WAL
 * keeps its inode while the database is open: exclusive locking, no
 * journal_size_limit (a truncation would keep it anyway), deleted only by
 * sqlite's close, after ours. It is zero-filled to a checkpoint cycle's
 * size at open (presize_wal), so commits overwrite it in place. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "sqlite_load.h"
#include "store_backend.h"

typedef struct {
  sqlite3 *db;
  sqlite3_stmt *put, *del, *meta, *begin, *commit, *rollback;
  int wal_fd; /* "full": our descriptor of the WAL, synced per commit */
} sq_t;

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS objects ("
    " resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,"
    " rv INTEGER NOT NULL, data TEXT NOT NULL,"
    " PRIMARY KEY (resource, namespace, name)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS meta ("
    " key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;";

static char *dup_msg(const char *prefix, sqlite3 *db) {
  const char *m = db ? ml__sqlite.errmsg(db) : "out of memory";
  size_t n = strlen(prefix) + strlen(m) + 3;
  char *s = malloc(n);
  if (s) {
    strcpy(s, prefix);
    strcat(s, ": ");
    strcat(s, m);
  }
  return s;
}

static void sq_close(void *p) {
  sq_t *q = p;
  if (!q) return;
  ml__sqlite.finalize(q->put);
  ml__sqlite.finalize(q->del);
  ml__sqlite.finalize(q->meta);
  ml__sqlite.finalize(q->begin);
  ml__sqlite.finalize(q->commit);
  ml__sqlite.finalize(q->rollback);
  if (q->wal_fd >= 0) close(q->wal_fd);
  ml__sqlite.close(q->db);
  free(q);
}

/* The first integer an sqlite PRAGMA query answers, or `dflt`. */
static long pragma_long(sq_t *q, const char *sql, long dflt) {
  sqlite3_stmt *st = NULL;
  long v = dflt;
  if (ml__sqlite.prepare_v2(q->db, sql, -1, &st, NULL) == SQLITE_OK &&
      ml__sqlite.step(st) == SQLITE_ROW)
    v = strtol((const char *)ml__sqlite.column_text(st, 0), NULL, 10);
  ml__sqlite.finalize(st);
  return v;
}

/* A WAL written past its end makes every commit's fdatasync also journal
 * the file's new size: a second device flush, 70-150 us more per commit
 * on the VMs we measure (an in-place one costs 120-160 us). sqlite starts
 * the WAL over from its beginning after each checkpoint (about every
 * wal_autocheckpoint pages), so after one cycle it is rewritten in place;
 * writing zeros up to that size once at open makes the first cycle of a
 * new WAL in place too. Recovery stops at the first frame whose salts do
 * not match the header's, so the zeros are never read as frames.
 * @return 0, or -1 with errno set */
static int presize_wal(sq_t *q) {
  long page = pragma_long(q, "PRAGMA page_size", 4096);
  long frames = pragma_long(q, "PRAGMA wal_autocheckpoint", 1000);
  if (page <= 0 || frames <= 0) return 0;
  /* A turn's commit may run past the checkpoint size by a few pages. */
  off_t want = 32 + (off_t)(frames + 16) * (24 + page);
  struct stat sb;
  if (fstat(q->wal_fd, &sb) != 0) return -1;
  if (sb.st_size >= want) return 0;
  static const char zeros[64 * 1024];
  for (off_t at = sb.st_size; at < want;) {
    size_t n = want - at < (off_t)sizeof zeros ? (size_t)(want - at)
                                                : sizeof zeros;
    ssize_t w = pwrite(q->wal_fd, zeros, n, at);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    at += w;
  }
  return fdatasync(q->wal_fd);
}

static int prepare(sq_t *q, const char *sql, sqlite3_stmt **st) {
  return ml__sqlite.prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
                            NULL);
}

static int sq_open(const ml_store_backend_config_t *cfg, void **out,
                   char **errmsg) {
  const char *path = cfg->path, *sync = cfg->sync ? cfg->sync : "full";
  if (!path || !*path) {
    *errmsg = strdup("sqlite backend: a path is required");
    return ML_EINVALID;
  }
  const char *pragma = !strcmp(sync, "full")     ? "PRAGMA synchronous=NORMAL;"
                       : !strcmp(sync, "normal") ? "PRAGMA synchronous=NORMAL;"
                       : !strcmp(sync, "off")    ? "PRAGMA synchronous=OFF;"
                                                 : NULL;
  if (!pragma) {
    *errmsg = strdup("sqlite backend: sync must be full, normal or off");
    return ML_EINVALID;
  }
  const char *why;
  if (ml_sqlite_load(&why) != 0) {
    *errmsg = strdup(why);
    return ML_ENOTFOUND;
  }
  sq_t *q = calloc(1, sizeof *q);
  if (!q) return ML_ENOMEM;
  q->wal_fd = -1;
  const char *step = "open";
  int rc = ml__sqlite.open_v2(
      path, &q->db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) goto error;
  step = "configure";
  /* Exclusive locking also lets WAL work without the shared-memory file. */
  rc = ml__sqlite.exec(q->db,
                    "PRAGMA locking_mode=EXCLUSIVE;"
                    "PRAGMA journal_mode=WAL;",
                    NULL, NULL, NULL);
  if (rc == SQLITE_OK) rc = ml__sqlite.exec(q->db, pragma, NULL, NULL, NULL);
  if (rc != SQLITE_OK) goto error;
  step = "create schema";
  /* Taking the write lock now makes a second server fail at open time. */
  rc = ml__sqlite.exec(q->db, "BEGIN EXCLUSIVE;", NULL, NULL, NULL);
  if (rc != SQLITE_OK) goto error;
  rc = ml__sqlite.exec(q->db, schema, NULL, NULL, NULL);
  if (rc == SQLITE_OK) rc = ml__sqlite.exec(q->db, "COMMIT;", NULL, NULL, NULL);
  if (rc != SQLITE_OK) goto error;
  step = "prepare";
  if ((rc = prepare(q,
                    "INSERT OR REPLACE INTO objects"
                    " (resource, namespace, name, rv, data)"
                    " VALUES (?1, ?2, ?3, ?4, ?5)",
                    &q->put)) != SQLITE_OK ||
      (rc = prepare(q,
                    "DELETE FROM objects WHERE resource = ?1"
                    " AND namespace = ?2 AND name = ?3",
                    &q->del)) != SQLITE_OK ||
      (rc = prepare(q,
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                    &q->meta)) != SQLITE_OK ||
      (rc = prepare(q, "BEGIN", &q->begin)) != SQLITE_OK ||
      (rc = prepare(q, "COMMIT", &q->commit)) != SQLITE_OK ||
      (rc = prepare(q, "ROLLBACK", &q->rollback)) != SQLITE_OK)
    goto error;
  if (!strcmp(sync, "full")) {
    /* The schema transaction opened the WAL: it exists from here on. */
    size_t n = strlen(path);
    char *wal = malloc(n + 5);
    if (!wal) goto error;
    memcpy(wal, path, n);
    memcpy(wal + n, "-wal", 5);
    q->wal_fd = open(wal, O_RDWR | O_CLOEXEC);
    free(wal);
    if (q->wal_fd < 0) {
      char msg[96];
      snprintf(msg, sizeof msg, "open the WAL: %s", strerror(errno));
      *errmsg = strdup(msg);
      sq_close(q);
      return ML_EIO;
    }
  }
  if (q->wal_fd >= 0 && presize_wal(q) != 0) {
    char msg[96];
    snprintf(msg, sizeof msg, "size the WAL: %s", strerror(errno));
    *errmsg = strdup(msg);
    sq_close(q);
    return ML_EIO;
  }
  *out = q;
  return 0;

error:
  *errmsg = dup_msg(step, q->db);
  sq_close(q);
  return ML_EIO;
}

static int sq_load_all(void *p, const ml_store_loader_t *ld) {
  sq_t *q = p;
  sqlite3_stmt *st = NULL;
  int rc =
      ml__sqlite.prepare_v2(q->db, "SELECT key, value FROM meta", -1, &st, NULL);
  if (rc != SQLITE_OK) return ML_EIO;
  while ((rc = ml__sqlite.step(st)) == SQLITE_ROW) {
    const char *k = (const char *)ml__sqlite.column_text(st, 0);
    const char *v = (const char *)ml__sqlite.column_text(st, 1);
    if (ld->meta(ld->ud, k ? k : "", v ? v : "") != 0) {
      ml__sqlite.finalize(st);
      return ML_EIO;
    }
  }
  ml__sqlite.finalize(st);
  if (rc != SQLITE_DONE) return ML_EIO;
  rc = ml__sqlite.prepare_v2(q->db,
                          "SELECT resource, namespace, name, data FROM objects",
                          -1, &st, NULL);
  if (rc != SQLITE_OK) return ML_EIO;
  while ((rc = ml__sqlite.step(st)) == SQLITE_ROW) {
    const char *data = (const char *)ml__sqlite.column_text(st, 3);
    size_t len = (size_t)ml__sqlite.column_bytes(st, 3);
    int urc = ld->object(ld->ud, (const char *)ml__sqlite.column_text(st, 0),
                         (const char *)ml__sqlite.column_text(st, 1),
                         (const char *)ml__sqlite.column_text(st, 2),
                         data ? data : "", len);
    if (urc != 0) {
      ml__sqlite.finalize(st);
      return urc;
    }
  }
  ml__sqlite.finalize(st);
  return rc == SQLITE_DONE ? 0 : ML_EIO;
}

/* Runs a bound statement to completion and resets it for the next use. */
static int run(sqlite3_stmt *st) {
  int rc = ml__sqlite.step(st);
  ml__sqlite.reset(st);
  ml__sqlite.clear_bindings(st);
  return rc == SQLITE_DONE ? 0 : ML_EIO;
}

static int sq_begin(void *p) { return run(((sq_t *)p)->begin); }

static int sq_commit(void *p) {
  sq_t *q = p;
  int rc = run(q->commit);
  /* A failed COMMIT may leave the transaction open: end it, so the next
   * turn starts clean (the store stops accepting writes anyway). */
  if (rc != 0 && !ml__sqlite.get_autocommit(q->db)) run(q->rollback);
  if (rc == 0 && q->wal_fd >= 0) return ML_STORE_UNSYNCED;
  return rc;
}

/* Any thread: only the descriptor is touched, never the connection. */
static int sq_sync(void *p) {
  sq_t *q = p;
  if (q->wal_fd < 0) return 0;
  return fdatasync(q->wal_fd) == 0 ? 0 : -errno;
}

static int sq_put(void *p, const char *resource, const char *ns,
                  const char *name, uint64_t rv, const char *data, size_t len) {
  sqlite3_stmt *st = ((sq_t *)p)->put;
  ml__sqlite.bind_text(st, 1, resource, -1, SQLITE_STATIC);
  ml__sqlite.bind_text(st, 2, ns, -1, SQLITE_STATIC);
  ml__sqlite.bind_text(st, 3, name, -1, SQLITE_STATIC);
  ml__sqlite.bind_int64(st, 4, (sqlite3_int64)rv);
  ml__sqlite.bind_text64(st, 5, data, len, SQLITE_STATIC, SQLITE_UTF8);
  return run(st);
}

static int sq_remove(void *p, const char *resource, const char *ns,
                     const char *name) {
  sqlite3_stmt *st = ((sq_t *)p)->del;
  ml__sqlite.bind_text(st, 1, resource, -1, SQLITE_STATIC);
  ml__sqlite.bind_text(st, 2, ns, -1, SQLITE_STATIC);
  ml__sqlite.bind_text(st, 3, name, -1, SQLITE_STATIC);
  return run(st);
}

static int sq_set_meta(void *p, const char *key, const char *value) {
  sqlite3_stmt *st = ((sq_t *)p)->meta;
  ml__sqlite.bind_text(st, 1, key, -1, SQLITE_STATIC);
  ml__sqlite.bind_text(st, 2, value, -1, SQLITE_STATIC);
  return run(st);
}

static const char *sq_errmsg(void *p) {
  return ml__sqlite.errmsg(((sq_t *)p)->db);
}

const ml_store_backend_t ml_store_backend_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .load_all = sq_load_all,
    .begin = sq_begin,
    .put = sq_put,
    .remove = sq_remove,
    .set_meta = sq_set_meta,
    .commit = sq_commit,
    .sync = sq_sync,
    .errmsg = sq_errmsg,
    .close = sq_close,
};
