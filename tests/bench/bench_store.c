/* Micro-benchmark of the object store (not part of ctest): per-create cost
 * per backend, per-commit cost of sqlite (WAL, synchronous=FULL), creating
 * 10,000 ConfigMaps with one commit each, list_json of 10,000 objects, and
 * the resident memory those 10,000 objects take.
 *
 * Build against a Release tree, e.g.:
 *   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release && cmake --build
 * build-rel
 *   cc -O2 -Icore tests/bench/bench_store.c build-rel/libml_core.a \
 *      $(pkg-config --cflags --libs jansson sqlite3 libuv) -o bench_store
 *   ./bench_store [DIR]      # DIR: where the sqlite file goes (default /tmp)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "store.h"

enum { N = 10000 };

static double ms_since(uint64_t t0) { return (double)(uv_hrtime() - t0) / 1e6; }

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
  }
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static json_t *configmap(int i) {
  char t[256];
  snprintf(t, sizeof t,
           "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
           "{\"name\":\"cm-%05d\",\"labels\":{\"app\":\"bench\"}},"
           "\"data\":{\"key\":\"value-%d\"}}",
           i, i);
  return json_loads(t, 0, NULL);
}

static const char *sync_mode = "full";

static ml_store_t *open_store(const char *backend, const char *path) {
  ml_store_options_t o = {.backend = backend, .path = path, .sync = sync_mode};
  ml_store_t *s;
  char *err = NULL;
  if (ml_store_open(&o, &s, &err) != 0) {
    fprintf(stderr, "open: %s\n", err);
    exit(1);
  }
  return s;
}

/* Creates N configmaps, committing every `every` creates (0: only at the
 * end). @return total milliseconds spent in create calls and in commits. */
static void fill(ml_store_t *s, int every, double *create_ms,
                 double *commit_ms) {
  *create_ms = *commit_ms = 0;
  for (int i = 0; i < N; i++) {
    json_t *in = configmap(i);
    ml_store_result_t r;
    uint64_t t0 = uv_hrtime();
    if (ml_store_create(s, "configmaps", "default", in, 0, &r) != 0) exit(1);
    *create_ms += ms_since(t0);
    ml_store_result_clear(&r);
    json_decref(in);
    if (every && i % every == every - 1) {
      t0 = uv_hrtime();
      ml_store_commit(s);
      *commit_ms += ms_since(t0);
    }
  }
  uint64_t t0 = uv_hrtime();
  ml_store_commit(s);
  *commit_ms += ms_since(t0);
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "/tmp";
  char path[512];
  snprintf(path, sizeof path, "%s/bench-store-%d.db", dir, (int)getpid());
  double c, k;

  long rss0 = rss_kib();
  ml_store_t *s = open_store("memory", NULL);
  fill(s, 0, &c, &k);
  long rss1 = rss_kib();
  printf(
      "memory: create %.2f us each; RSS +%ld KiB for %d ConfigMaps "
      "(%.0f bytes each, watch window included)\n",
      c * 1000 / N, rss1 - rss0, N, (double)(rss1 - rss0) * 1024 / N);
  /* One update per object: the window now holds every old version. */
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < N; i++) {
    json_t *in = configmap(i);
    json_object_set_new(json_object_get(in, "data"), "key", json_string("new"));
    json_object_set_new(json_object_get(in, "metadata"), "namespace",
                        json_string("default"));
    ml_store_result_t r;
    if (ml_store_update(s, "configmaps", in, 0, &r) != 0) exit(1);
    ml_store_result_clear(&r);
    json_decref(in);
  }
  double upd_ms = ms_since(t0);
  long rss2 = rss_kib();
  printf(
      "memory: update %.2f us each; RSS +%ld KiB more after updating "
      "each once (old versions in the watch window)\n",
      upd_ms * 1000 / N, rss2 - rss1);
  char *json, *cont;
  size_t len;
  uint64_t rv;
  t0 = uv_hrtime();
  ml_store_list_json(s, "configmaps", NULL, &json, &len, &rv, &cont);
  printf("list_json: %d objects, %zu bytes in %.2f ms\n", N, len, ms_since(t0));
  free(json);
  ml_store_list_t l;
  t0 = uv_hrtime();
  ml_store_list_opts_t lo = {.label_selector = "app=bench"};
  ml_store_list(s, "configmaps", &lo, &l);
  printf("list (documents, label selector): %zu in %.2f ms\n", l.n,
         ms_since(t0));
  ml_store_list_clear(&l);
  ml_store_close(s);

  s = open_store("sqlite", path);
  fill(s, 100, &c, &k);
  printf("sqlite, commit per 100: create %.2f us each, commit %.2f ms each\n",
         c * 1000 / N, k / (N / 100));
  ml_store_close(s);
  unlink(path);
  snprintf(path + strlen(path), 8, "-wal");
  unlink(path);
  path[strlen(path) - 4] = '\0';

  for (int m = 0; m < 2; m++) {
    sync_mode = m ? "normal" : "full";
    s = open_store("sqlite", path);
    t0 = uv_hrtime();
    fill(s, 1, &c, &k);
    double total = ms_since(t0);
    printf(
        "sqlite sync=%s, commit per create: create %.2f us, commit %.3f ms;"
        " %d in %.0f ms = %.0f creates/s\n",
        sync_mode, c * 1000 / N, k / N, N, total, N / (total / 1000));
    ml_store_close(s);
    if (!m) {
      unlink(path);
      snprintf(path + strlen(path), 8, "-wal");
      unlink(path);
      path[strlen(path) - 4] = '\0';
    }
  }

  t0 = uv_hrtime();
  s = open_store("sqlite", path);
  printf("reopen + load of %d objects: %.1f ms\n", N, ms_since(t0));
  ml_store_close(s);
  unlink(path);
  snprintf(path + strlen(path), 8, "-wal");
  unlink(path);
  return 0;
}
