/* SQLite, loaded when a store first opens one: the functions
 * core/store_sqlite.c calls, in a table filled with dlopen + dlsym. Only the
 * server opens a store; the CLI and `moonlet lua` images never load it. */
#ifndef ML_SQLITE_LOAD_H
#define ML_SQLITE_LOAD_H

#include <sqlite3.h>

/* Pointer types from sqlite3.h's own declarations, so calls through the
 * table are checked against the real prototypes. */
typedef struct {
  __typeof__(sqlite3_open_v2) *open_v2;
  __typeof__(sqlite3_close) *close;
  __typeof__(sqlite3_exec) *exec;
  __typeof__(sqlite3_errmsg) *errmsg;
  __typeof__(sqlite3_prepare_v2) *prepare_v2;
  __typeof__(sqlite3_prepare_v3) *prepare_v3;
  __typeof__(sqlite3_finalize) *finalize;
  __typeof__(sqlite3_step) *step;
  __typeof__(sqlite3_reset) *reset;
  __typeof__(sqlite3_clear_bindings) *clear_bindings;
  __typeof__(sqlite3_bind_text) *bind_text;
  __typeof__(sqlite3_bind_text64) *bind_text64;
  __typeof__(sqlite3_bind_int64) *bind_int64;
  __typeof__(sqlite3_column_text) *column_text;
  __typeof__(sqlite3_column_bytes) *column_bytes;
  __typeof__(sqlite3_get_autocommit) *get_autocommit;
} ml_sqlite_api_t;

/* The table; valid once ml_sqlite_load() returned 0. */
extern ml_sqlite_api_t ml__sqlite;

/**
 * Loads libsqlite3, once per process; later calls return the first outcome.
 * @param why NULL or receives the reason of a failure
 * @return 0 or ML_ENOTFOUND (no library, or a function missing)
 */
int ml_sqlite_load(const char **why);

#endif
