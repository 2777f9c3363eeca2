/* Tests of the durability gate (core/durable.c) with the HTTP server on a
 * real loop: a test source whose "fdatasync" blocks until the test lets it
 * finish (or makes it fail), a C responder and commit hook in place of Lua
 * and the store binding, raw unix-socket clients on the main thread. Checks
 * that answers wait for the sync (a read answered meanwhile too), that
 * nothing waits when nothing is unsynced, that commits made during a sync
 * share the next one, that a settle waits for the sync in flight, that
 * pipelined answers keep their order, that the inline mode syncs on the
 * loop thread only when it is idle, and that a failed sync fails the source
 * and closes the waiting connections. Then the sqlite backend: "full"
 * commits need a sync, "normal" and memory not. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "durable.h"
#include "err.h"
#include "http_server.h"
#include "store.h"

#include "tap.h"

/* {====== the test source: a sync the test lets go */

static struct {
  uv_mutex_t mu;
  uv_cond_t cv;
  int entered;  /* syncs started */
  int allowed;  /* syncs the test let finish */
  int finished; /* syncs that returned */
  int fail;     /* syncs return UV_EIO from now on */
  int on_loop;  /* the last sync ran on the loop thread */
} T;

static uv_thread_t loop_thread;

static int test_sync(void *ud) {
  (void)ud;
  uv_mutex_lock(&T.mu);
  int me = ++T.entered;
  uv_thread_t self = uv_thread_self();
  T.on_loop = uv_thread_equal(&self, &loop_thread);
  uv_cond_broadcast(&T.cv);
  while (T.allowed < me) uv_cond_wait(&T.cv, &T.mu);
  int rc = T.fail ? UV_EIO : 0;
  T.finished++;
  uv_mutex_unlock(&T.mu);
  return rc;
}

static int failed_err; /* what the source's failed callback got */

static void test_failed(void *ud, int err) {
  (void)ud;
  failed_err = err;
}

static void allow(int n) {
  uv_mutex_lock(&T.mu);
  T.allowed = n;
  uv_cond_broadcast(&T.cv);
  uv_mutex_unlock(&T.mu);
}

static int get(int *field) {
  uv_mutex_lock(&T.mu);
  int v = *field;
  uv_mutex_unlock(&T.mu);
  return v;
}

/* }====== */

/* {====== server: responder, commit hook, gate */

static struct {
  ml_loop_t loop;
  ml_durable_t gate;
  ml_durable_source_t src;
  ml_httpd_t *srv;
  bool wrote; /* this turn wrote: the commit hook hands it to the gate */
  int handled;
} S;

static void responder(ml_loop_t *loop, void *ud) {
  (void)ud;
  bool post_more = false;
  ml_event_t *ev;
  while ((ev = ml_loop_pop(loop)) != NULL) {
    if (ev->type == ML_EV_HTTPD_REQUEST) {
      ml_httpd_request_t *r = (ml_httpd_request_t *)ev;
      bool busy = strcmp(r->path, "/write-busy") == 0;
      bool write = busy || strcmp(r->path, "/write") == 0;
      post_more |= busy;
      S.wrote |= write;
      const char *body = write ? "wrote" : "read";
      ml_httpd_respond(S.srv, r->req_id, 200, NULL, 0, body, strlen(body));
      S.handled++;
    }
    ml_event_free(ev);
  }
  /* Work queued for the next turn: the loop is not idle at the commit. */
  if (post_more) ml_loop_post(loop, calloc(1, sizeof(ml_event_t)));
}

/* What bindings/lstore.c's commit hook does after a commit that needs a
 * sync; registered before the server's flush hook, as there. */
static void commit_hook(ml_loop_t *loop, void *ud) {
  (void)loop;
  (void)ud;
  if (!S.wrote) return;
  S.wrote = false;
  ml_durable_committed(&S.gate, &S.src);
}

static void pump(int turns) {
  for (int i = 0; i < turns; i++) {
    uv_run(S.loop.uv, UV_RUN_NOWAIT);
    ml_loop_run_hooks(&S.loop);
  }
}

/* Runs loop turns until cond(arg) holds or 5 s pass. */
static bool pump_until(bool (*cond)(long), long arg) {
  uint64_t deadline = uv_hrtime() + 5000000000ull;
  while (!cond(arg)) {
    if (uv_hrtime() > deadline) return false;
    pump(1);
  }
  return true;
}

static bool entered_is(long n) { return get(&T.entered) == n; }
static bool handled_is(long n) { return S.handled == n; }

/* }====== */

/* {====== clients */

static char sock_path[108];

static int client(void) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", sock_path);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void ask(int fd, const char *path) {
  char req[128];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
  if (write(fd, req, (size_t)n) != n) printf("# short write\n");
}

/* Bytes waiting on the client side (0: none yet, -1: closed by the peer). */
static long waiting(int fd) {
  char b[1];
  ssize_t n = recv(fd, b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return 1;
  return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) ? -1 : 0;
}

static bool readable(long fd) { return waiting((int)fd) != 0; }

/* Reads one small answer and checks its body. */
static bool answer_is(int fd, const char *body) {
  char b[1024];
  ssize_t n = recv(fd, b, sizeof b - 1, MSG_DONTWAIT);
  if (n <= 0) return false;
  b[n] = '\0';
  const char *sep = strstr(b, "\r\n\r\n");
  return strncmp(b, "HTTP/1.1 200", 12) == 0 && sep && !strcmp(sep + 4, body);
}

/* }====== */

static void t_nothing_unsynced(void) {
  int c = client();
  ask(c, "/read");
  OK(pump_until(readable, c), "a read with nothing unsynced is answered");
  OK(answer_is(c, "read"), "with its body");
  OK(get(&T.entered) == 0, "and no sync ran");
  close(c);
}

static void t_held_until_synced(void) {
  int c1 = client(), c2 = client();
  ask(c1, "/write");
  OK(pump_until(entered_is, 1), "a turn that wrote starts a sync");
  ask(c2, "/read");
  OK(pump_until(handled_is, 3), "a read during the sync is handled");
  pump(50);
  OK(waiting(c1) == 0, "the write's answer waits for the sync");
  OK(waiting(c2) == 0, "so does the read answered after it");
  OK(S.gate.synced == 0 && S.gate.committed == 1, "nothing synced yet");
  allow(1);
  OK(pump_until(readable, c1) && pump_until(readable, c2),
     "both go out once the sync completes");
  OK(answer_is(c1, "wrote") && answer_is(c2, "read"), "with their bodies");
  OK(S.gate.synced == 1, "synced advanced");
  /* Nothing unsynced again: a read goes in its own turn. */
  ask(c2, "/read");
  OK(pump_until(readable, c2) && answer_is(c2, "read"),
     "a later read is not held");
  OK(get(&T.entered) == 1, "without a sync");
  close(c1);
  close(c2);
}

static void t_group_commit(void) {
  int c1 = client(), c2 = client(), c3 = client();
  int h = S.handled;
  ask(c1, "/write");
  OK(pump_until(entered_is, 2), "sync 2 starts for the first write");
  ask(c2, "/write");
  OK(pump_until(handled_is, h + 2), "a second write during sync 2");
  ask(c3, "/write");
  OK(pump_until(handled_is, h + 3), "a third write during sync 2");
  pump(20);
  OK(get(&T.entered) == 2, "no second sync while one is in flight");
  allow(2);
  OK(pump_until(readable, c1) && answer_is(c1, "wrote"),
     "the first write is answered after sync 2");
  OK(pump_until(entered_is, 3), "sync 3 starts at once for the others");
  pump(20);
  OK(waiting(c2) == 0 && waiting(c3) == 0, "they wait for sync 3");
  allow(3);
  OK(pump_until(readable, c2) && pump_until(readable, c3),
     "both are answered after sync 3");
  OK(answer_is(c2, "wrote") && answer_is(c3, "wrote"), "with their bodies");
  OK(get(&T.entered) == 3 && S.gate.synced == S.gate.committed,
     "one sync covered both (committed %llu)",
     (unsigned long long)S.gate.committed);
  close(c1);
  close(c2);
  close(c3);
}

static atomic_int settling;

static void *releaser(void *arg) {
  (void)arg;
  while (!atomic_load(&settling)) uv_sleep(1);
  allow(4);
  return NULL;
}

static void t_settle_waits(void) {
  int c = client();
  ask(c, "/write");
  OK(pump_until(entered_is, 4), "sync 4 is in flight");
  pthread_t t;
  pthread_create(&t, NULL, releaser, NULL);
  atomic_store(&settling, 1);
  /* Blocks until the pool thread's sync returns: the releaser lets it. */
  OK(ml_durable_settle(&S.gate) == 0, "settle succeeds");
  pthread_join(t, NULL);
  OK(get(&T.finished) == 4, "settle returned after the sync in flight");
  OK(S.gate.synced == S.gate.committed, "nothing left unsynced");
  OK(readable(c) && answer_is(c, "wrote"),
     "the held answer went out during the settle, no loop turn needed");
  uint64_t syncs = S.gate.syncs;
  pump(20); /* the work request's after-callback runs now */
  OK(S.gate.syncs == syncs, "and its after-callback does not count it twice");
  close(c);
}

static void t_pipelined(void) {
  int c = client();
  int h = S.handled;
  const char two[] = "GET /write HTTP/1.1\r\nHost: t\r\n\r\n"
                     "GET /read HTTP/1.1\r\nHost: t\r\n\r\n";
  OK(write(c, two, sizeof two - 1) == (ssize_t)(sizeof two - 1),
     "two requests sent in one write");
  OK(pump_until(entered_is, 5), "the first one's sync is in flight");
  pump(20);
  OK(S.handled == h + 1, "the second waits behind the held first answer");
  OK(waiting(c) == 0, "nothing sent yet");
  allow(5);
  OK(pump_until(handled_is, h + 2), "the second is handled after the sync");
  char b[2048];
  size_t len = 0;
  uint64_t deadline = uv_hrtime() + 5000000000ull;
  while (uv_hrtime() < deadline) {
    pump(1);
    ssize_t n = recv(c, b + len, sizeof b - 1 - len, MSG_DONTWAIT);
    if (n > 0) len += (size_t)n;
    b[len] = '\0';
    if (strstr(b, "read")) break;
  }
  const char *w = strstr(b, "wrote"), *r = strstr(b, "\r\n\r\nread");
  OK(w && r && w < r, "both answers arrive, in order");
  close(c);
}

static void t_inline_when_idle(void) {
  ml_durable_set_inline(&S.gate, true);
  int c = client();
  allow(get(&T.entered) + 2); /* nothing blocks: the loop may run these */
  ask(c, "/write");
  OK(pump_until(readable, c) && answer_is(c, "wrote"), "inline: answered");
  OK(get(&T.entered) == 6 && get(&T.on_loop),
     "with nothing else to do the sync ran on the loop thread");
  ask(c, "/write-busy");
  OK(pump_until(readable, c) && answer_is(c, "wrote"), "busy: answered");
  OK(get(&T.entered) == 7 && !get(&T.on_loop),
     "with work queued it went to the pool");
  OK(S.gate.synced == S.gate.committed, "both synced");
  ml_durable_set_inline(&S.gate, false);
  close(c);
}

static void t_failure(void) {
  int c = client();
  uv_mutex_lock(&T.mu);
  T.fail = 1;
  uv_mutex_unlock(&T.mu);
  ask(c, "/write");
  OK(pump_until(entered_is, 8), "sync 8 is in flight");
  allow(8);
  OK(pump_until(readable, c) && waiting(c) == -1,
     "a failed sync closes the waiting connection without an answer");
  OK(failed_err == UV_EIO, "the source learns the failure (%s)",
     ml_err_name(failed_err));
  OK(ml_durable_error(&S.gate) == UV_EIO, "the gate stays failed");
  close(c);
  c = client();
  ask(c, "/read");
  OK(pump_until(readable, c) && waiting(c) == -1,
     "a read after the failure could show lost data: closed as well");
  close(c);
  OK(get(&T.entered) == 8, "no sync after the failure");
}

/* {====== the sqlite backend's part */

static bool unsynced_after_write(const char *backend, const char *path,
                                 const char *sync, int *sync_rc) {
  ml_store_options_t o = {.backend = backend, .path = path, .sync = sync};
  ml_store_t *s;
  char *err = NULL;
  if (ml_store_open(&o, &s, &err) != 0) {
    printf("# open: %s\n", err ? err : "?");
    free(err);
    return false;
  }
  json_t *cm = json_pack("{s:{s:s}}", "metadata", "name", "a");
  ml_store_result_t r;
  int rc = ml_store_create(s, "configmaps", "default", cm, 0, &r);
  json_decref(cm);
  if (rc == 0) ml_store_result_clear(&r);
  bool u = rc == 0 && ml_store_commit(s) == 0 && ml_store_take_unsynced(s);
  *sync_rc = ml_store_sync(s);
  if (ml_store_take_unsynced(s)) u = false; /* taken once */
  ml_store_close(s);
  return u;
}

/* Copies src to dst byte for byte. @return true on success */
static bool copy_file(const char *src, const char *dst) {
  FILE *in = fopen(src, "rb"), *out = in ? fopen(dst, "wb") : NULL;
  char buf[65536];
  size_t n;
  bool ok = in && out;
  while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
    ok = fwrite(buf, 1, n, out) == n;
  if (in) fclose(in);
  if (out && fclose(out) != 0) ok = false;
  return ok;
}

static void t_sqlite(const char *dir) {
  char full[160], normal[160];
  snprintf(full, sizeof full, "%s/full.db", dir);
  snprintf(normal, sizeof normal, "%s/normal.db", dir);
  int rc;
  OK(unsynced_after_write("sqlite", full, "full", &rc),
     "sqlite full: a commit needs a sync");
  OK(rc == 0, "and the sync of the WAL succeeds (%s)",
     rc ? ml_strerror(rc) : "");
  OK(!unsynced_after_write("sqlite", normal, "normal", &rc) && rc == 0,
     "sqlite normal: no sync per commit");
  OK(!unsynced_after_write("memory", NULL, NULL, &rc) && rc == 0,
     "memory: nothing to sync");
  char f[200];
  /* "full" writes its WAL in place from the first commit on: zeros up to
   * the checkpoint size (1000 frames of 4 KiB pages and more) at open,
   * and a commit still reads back after a restart that recovers the WAL
   * (the store is left open, as after kill -9: its WAL stays). */
  ml_store_options_t o = {.backend = "sqlite", .path = full, .sync = "full"};
  ml_store_t *s = NULL, *s2 = NULL;
  char *err = NULL;
  OK(ml_store_open(&o, &s, &err) == 0, "sqlite full reopens");
  snprintf(f, sizeof f, "%s/full.db-wal", dir);
  struct stat sb;
  OK(stat(f, &sb) == 0 && sb.st_size >= 1000 * 4120,
     "its WAL is sized for a checkpoint cycle at open (%lld bytes)",
     (long long)sb.st_size);
  json_t *cm = json_pack("{s:{s:s}}", "metadata", "name", "b");
  ml_store_result_t r;
  OK(ml_store_create(s, "configmaps", "default", cm, 0, &r) == 0,
     "a create into the sized WAL");
  ml_store_result_clear(&r);
  json_decref(cm);
  OK(ml_store_commit(s) == 0 && ml_store_sync(s) == 0, "committed, synced");
  /* A second connection recovers the WAL the first one wrote (exclusive
   * locking: a copy of the files stands in for the dead server's). */
  char copy[200], cwal[200];
  snprintf(copy, sizeof copy, "%s/copy.db", dir);
  snprintf(cwal, sizeof cwal, "%s/copy.db-wal", dir);
  OK(copy_file(full, copy) && copy_file(f, cwal), "files copied as they are");
  ml_store_options_t o2 = {.backend = "sqlite", .path = copy, .sync = "full"};
  OK(ml_store_open(&o2, &s2, &err) == 0, "the copy opens (%s)",
     err ? err : "");
  free(err);
  OK(s2 && ml_store_get(s2, "configmaps", "default", "b", NULL, NULL) == 0,
     "and has the object in the WAL (b)");
  OK(s2 && ml_store_get(s2, "configmaps", "default", "a", NULL, NULL) == 0,
     "and the one checkpointed before (a)");
  if (s2) ml_store_close(s2);
  ml_store_close(s);
  unlink(copy);
  unlink(cwal);
  const char *names[] = {"full.db", "full.db-wal", "normal.db",
                         "normal.db-wal"};
  for (size_t i = 0; i < 4; i++) {
    snprintf(f, sizeof f, "%s/%s", dir, names[i]);
    unlink(f);
  }
}

/* }====== */

int main(void) {
  loop_thread = uv_thread_self();
  uv_mutex_init(&T.mu);
  uv_cond_init(&T.cv);
  uv_loop_t uv;
  uv_loop_init(&uv);
  ml_loop_init(&S.loop, &uv);
  OK(ml_durable_init(&S.gate, &S.loop) == 0, "gate created");
  S.src = (ml_durable_source_t){.sync = test_sync, .failed = test_failed};
  ml_durable_add(&S.gate, &S.src);
  ml_loop_add_hook(&S.loop, responder, NULL);
  ml_loop_add_hook(&S.loop, commit_hook, NULL);
  OK(ml_httpd_new(&S.loop, NULL, &S.srv) == 0, "server created");
  ml_httpd_set_durable(S.srv, &S.gate);

  char dir[] = "/tmp/ml-durable-XXXXXX";
  OK(mkdtemp(dir) != NULL, "temp dir");
  snprintf(sock_path, sizeof sock_path, "%s/api.sock", dir);
  char url[160];
  snprintf(url, sizeof url, "unix:%s", sock_path);
  ml_httpd_listener_t *l;
  OK(ml_httpd_listen(S.srv, url, 0, 1, &l) == 0, "listening");

  t_nothing_unsynced();
  t_held_until_synced();
  t_group_commit();
  t_settle_waits();
  t_pipelined();
  t_inline_when_idle();
  t_failure();

  ml_durable_remove(&S.gate, &S.src);
  ml_httpd_free(S.srv);
  while (uv_run(&uv, UV_RUN_NOWAIT)) ml_loop_run_hooks(&S.loop);
  ml_durable_close(&S.gate);
  ml_loop_close(&S.loop);
  OK(uv_loop_close(&uv) == 0, "uv_loop_close() == 0");
  uv_cond_destroy(&T.cv);
  uv_mutex_destroy(&T.mu);

  t_sqlite(dir);
  rmdir(dir);
  return tap_done();
}
