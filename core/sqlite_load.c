/* Loads libsqlite3 when the first sqlite store opens (sqlite_load.h). The
 * loop thread is the only caller, as for the rest of the core. */
#include "sqlite_load.h"

#include <stdio.h>

#include "err.h"
#include "lazy_lib.h"

/* The soname of SQLite 3 (the ABI the headers describe). */
#define SQLITE_SONAME "libsqlite3.so.0"

ml_sqlite_api_t ml__sqlite;

static int state;     /* 0: not tried; 1: loaded; < 0: the failure */
static char why[512]; /* what went wrong */

#define SQLITE_SYMBOLS(XX)                                              \
  XX(open_v2) XX(close) XX(exec) XX(errmsg) XX(prepare_v2) XX(prepare_v3) \
  XX(finalize) XX(step) XX(reset) XX(clear_bindings) XX(bind_text)      \
  XX(bind_text64) XX(bind_int64) XX(column_text) XX(column_bytes)       \
  XX(get_autocommit)

int ml_sqlite_load(const char **reason) {
  if (!state) {
    void *lib = ml_lazy_open(SQLITE_SONAME, why, sizeof why);
    state = lib ? 1 : ML_ENOTFOUND;
#define XX(name)                                                            \
  if (state > 0 && ml_lazy_sym(lib, SQLITE_SONAME, "sqlite3_", #name,       \
                               &ml__sqlite.name, sizeof ml__sqlite.name,    \
                               why, sizeof why) != 0)                       \
    state = ML_ENOTFOUND;
    SQLITE_SYMBOLS(XX)
#undef XX
  }
  if (reason) *reason = state < 0 ? why : NULL;
  return state > 0 ? 0 : state;
}
