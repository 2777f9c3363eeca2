/* The PATH lookup of a container's command (execvp's rules, done in the
 * parent with the container's PATH), with a small cache of recent lookups
 * per (command, PATH): a pod start looked the same `sleep` up twice (spawn
 * and arm), each time a stat of every earlier PATH directory (9 failing
 * newfstatat on a usual PATH), with hundreds of pods starting at once. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "err.h"
#include "proc_internal.h"

#define DEFAULT_PATH                                                           \
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The cache's rule. A found file is used for at most LIFETIME_NS after the
 * search that found it: a command installed since into an earlier PATH
 * directory is seen within that time, as a fresh search would see it.
 * Within it, each spawn checks the file itself with one stat: the same
 * file (device, inode, ctime: a chmod or an ACL change moves the ctime)
 * means the search would find it again where it did, as no earlier
 * directory gained the command that quickly; anything else, a search. A
 * lookup that only readies a later spawn (an armed replacement, whose
 * exec reports a file gone by then) takes the entry without the stat.
 * Failed searches and files found through a relative PATH entry (they
 * depend on the working directory) are not kept. */
#define LIFETIME_NS 1000000000ull
#define SLOTS 64

typedef struct {
  uint64_t hash;
  char *cmd;  /* NULL: empty slot */
  char *path; /* the PATH the search used */
  char *file; /* what it found (absolute) */
  dev_t dev;
  ino_t ino;
  struct timespec ctime;
  uint64_t found_ns; /* uv_hrtime() of the search */
} entry_t;

static entry_t cache[SLOTS];
static unsigned long searches;

unsigned long ml__proc_path_searches(void) { return searches; }

static void entry_clear(entry_t *e) {
  free(e->cmd);
  free(e->path);
  free(e->file);
  memset(e, 0, sizeof *e);
}

void ml__proc_path_forget(void) {
  for (int i = 0; i < SLOTS; i++) entry_clear(&cache[i]);
}

/* FNV-1a over the command, a separator and the PATH. */
static uint64_t key_hash(const char *cmd, const char *path) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char *s = cmd; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  h = (h ^ 0xff) * 0x100000001b3ull;
  for (const char *s = path; *s; s++)
    h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

static bool same_file(const entry_t *e, const struct stat *st) {
  return S_ISREG(st->st_mode) && st->st_dev == e->dev &&
         st->st_ino == e->ino && st->st_ctim.tv_sec == e->ctime.tv_sec &&
         st->st_ctim.tv_nsec == e->ctime.tv_nsec;
}

static void remember(uint64_t h, const char *cmd, const char *path,
                     const char *file, const struct stat *st) {
  entry_t *e = &cache[h % SLOTS];
  entry_clear(e);
  e->cmd = strdup(cmd);
  e->path = strdup(path);
  e->file = strdup(file);
  if (!e->cmd || !e->path || !e->file) {
    entry_clear(e); /* a cache only: no memory, no entry */
    return;
  }
  e->hash = h;
  e->dev = st->st_dev;
  e->ino = st->st_ino;
  e->ctime = st->st_ctim;
  e->found_ns = uv_hrtime();
}

/* execvp's search: the first regular file named cmd in a PATH directory
 * that we may execute; a match we may not execute is remembered for the
 * error (EACCES) but the search goes on. */
static int search(const char *cmd, const char *path, uint64_t h, char **out,
                  char *msg, size_t mlen) {
  searches++;
  bool denied = false;
  size_t clen = strlen(cmd);
  for (const char *p = path;; p++) {
    const char *end = strchr(p, ':');
    size_t dlen = end ? (size_t)(end - p) : strlen(p);
    char cand[PATH_MAX];
    if (dlen + clen + 2 <= sizeof cand) {
      if (dlen == 0)
        snprintf(cand, sizeof cand, "%s", cmd);
      else
        snprintf(cand, sizeof cand, "%.*s/%s", (int)dlen, p, cmd);
      struct stat st;
      if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
        if (access(cand, X_OK) == 0) {
          if (cand[0] == '/') remember(h, cmd, path, cand, &st);
          *out = strdup(cand);
          return *out ? 0 : ML_ENOMEM;
        }
        denied = true;
      }
    }
    if (!end) break;
    p = end;
  }
  if (denied) {
    snprintf(msg, mlen, "exec: \"%s\": permission denied", cmd);
    return UV_EACCES;
  }
  snprintf(msg, mlen, "exec: \"%s\": executable file not found in $PATH", cmd);
  return UV_ENOENT;
}

int ml__proc_resolve(const char *cmd, const char *const *env, bool check,
                     char **out, char *msg, size_t mlen) {
  if (!*cmd) {
    snprintf(msg, mlen, "exec: \"\": executable file not found in $PATH");
    return UV_ENOENT;
  }
  if (strchr(cmd, '/')) {
    *out = strdup(cmd);
    return *out ? 0 : ML_ENOMEM;
  }
  const char *path = NULL;
  if (env) {
    for (const char *const *e = env; *e; e++)
      if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  } else {
    path = getenv("PATH");
  }
  if (!path) path = DEFAULT_PATH;
  uint64_t h = key_hash(cmd, path);
  entry_t *e = &cache[h % SLOTS];
  if (e->cmd && e->hash == h && strcmp(e->cmd, cmd) == 0 &&
      strcmp(e->path, path) == 0) {
    struct stat st;
    if (uv_hrtime() - e->found_ns < LIFETIME_NS &&
        (!check || (stat(e->file, &st) == 0 && same_file(e, &st)))) {
      *out = strdup(e->file);
      return *out ? 0 : ML_ENOMEM;
    }
    entry_clear(e);
  }
  return search(cmd, path, h, out, msg, mlen);
}
