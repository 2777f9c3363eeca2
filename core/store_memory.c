/* The memory backend: nothing is persisted, every call succeeds. The store
 * already keeps all objects in memory, so this is the whole backend (tests,
 * controllers driven against a throwaway store). */
#include "store_backend.h"

/* A distinct non-NULL handle, so the store can tell "open" from "closed". */
static char memory_db;

static int mem_open(const ml_store_backend_config_t *cfg, void **db,
                    char **errmsg) {
  (void)cfg;
  (void)errmsg;
  *db = &memory_db;
  return 0;
}

static int mem_load_all(void *db, const ml_store_loader_t *loader) {
  (void)db;
  (void)loader;
  return 0;
}

static int mem_nop(void *db) {
  (void)db;
  return 0;
}

static int mem_put(void *db, const char *resource, const char *ns,
                   const char *name, uint64_t rv, const char *data,
                   size_t len) {
  (void)db, (void)resource, (void)ns, (void)name, (void)rv, (void)data;
  (void)len;
  return 0;
}

static int mem_remove(void *db, const char *resource, const char *ns,
                      const char *name) {
  (void)db, (void)resource, (void)ns, (void)name;
  return 0;
}

static int mem_set_meta(void *db, const char *key, const char *value) {
  (void)db, (void)key, (void)value;
  return 0;
}

static const char *mem_errmsg(void *db) {
  (void)db;
  return "";
}

static void mem_close(void *db) { (void)db; }

const ml_store_backend_t ml_store_backend_memory = {
    .name = "memory",
    .open = mem_open,
    .load_all = mem_load_all,
    .begin = mem_nop,
    .put = mem_put,
    .remove = mem_remove,
    .set_meta = mem_set_meta,
    .commit = mem_nop,
    .errmsg = mem_errmsg,
    .close = mem_close,
};
