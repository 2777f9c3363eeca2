/* One pass over /proc for the metrics API (proc_usage.h): every process'
 * stat line is read once (openat relative to the root, one read), its
 * group looked up in a sorted table, and its CPU and RSS added there. A
 * container with its own cgroup (a memory limit) takes the cgroup's
 * figures: v2 memory.current and cpu.stat, v1 memory.usage_in_bytes (v1
 * CPU stays the members' sum: moonlet makes memory cgroups only). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "proc_usage.h"

typedef struct {
  int pid, pgid;
  uint64_t ticks, rss_pages, start_ticks;
} rec_t;

typedef struct {
  int key;
  size_t group;
} slot_t;

static int slot_cmp(const void *a, const void *b) {
  int x = ((const slot_t *)a)->key, y = ((const slot_t *)b)->key;
  return (x > y) - (x < y);
}

static const slot_t *find(const slot_t *s, size_t n, int key) {
  slot_t k = {.key = key};
  return bsearch(&k, s, n, sizeof *s, slot_cmp);
}

/* The n-th space-separated field after p (0: the one at p). */
static const char *skip_fields(const char *p, int n) {
  while (n-- > 0 && p) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  return p;
}

/* Parses a stat line: "pid (comm) state ppid pgrp ... utime stime cutime
 * cstime ... starttime vsize rss". comm may hold spaces and ')', so the
 * fields are counted from the last ')'. @return false when malformed. */
static bool parse_stat(const char *line, rec_t *r) {
  const char *p = strrchr(line, ')');
  if (!p || p[1] != ' ') return false;
  p += 2; /* field 3: state */
  char *end;
  const char *f = skip_fields(p, 2); /* 5: pgrp */
  if (!f) return false;
  r->pgid = (int)strtol(f, &end, 10);
  f = skip_fields(p, 11); /* 14: utime */
  if (!f) return false;
  uint64_t utime = strtoull(f, &end, 10);
  uint64_t stime = strtoull(end, &end, 10);
  /* cutime, cstime are signed in the kernel's format; never negative */
  long long cutime = strtoll(end, &end, 10);
  long long cstime = strtoll(end, &end, 10);
  r->ticks = utime + stime + (uint64_t)(cutime > 0 ? cutime : 0) +
             (uint64_t)(cstime > 0 ? cstime : 0);
  f = skip_fields(p, 19); /* 22: starttime */
  if (!f) return false;
  r->start_ticks = strtoull(f, &end, 10);
  (void)strtoull(end, &end, 10); /* 23: vsize */
  long long rss = strtoll(end, &end, 10);
  r->rss_pages = rss > 0 ? (uint64_t)rss : 0;
  return true;
}

/* Reads every process under root into *out. @return count or < 0 */
static long read_all(const char *root, rec_t **out) {
  int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -errno;
  DIR *d = fdopendir(dfd);
  if (!d) {
    int err = -errno;
    close(dfd);
    return err;
  }
  size_t n = 0, cap = 256;
  rec_t *recs = malloc(cap * sizeof *recs);
  if (!recs) {
    closedir(d);
    return ML_ENOMEM;
  }
  struct dirent *e;
  char path[64], buf[1024];
  while ((e = readdir(d))) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end || pid <= 0 || end == e->d_name) continue;
    snprintf(path, sizeof path, "%ld/stat", pid);
    int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue; /* gone meanwhile */
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0) continue;
    buf[len] = 0;
    if (n == cap) {
      rec_t *bigger = realloc(recs, 2 * cap * sizeof *recs);
      if (!bigger) {
        free(recs);
        closedir(d);
        return ML_ENOMEM;
      }
      recs = bigger;
      cap *= 2;
    }
    rec_t *r = &recs[n];
    r->pid = (int)pid;
    if (parse_stat(buf, r)) n++;
  }
  closedir(d); /* closes dfd */
  *out = recs;
  return (long)n;
}

/* Reads dir/file into buf. @return false when it cannot be read. */
static bool read_small(const char *dir, const char *file, char *buf,
                       size_t len) {
  char path[4096];
  if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
    return false;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, len - 1);
  close(fd);
  if (n < 0) return false;
  buf[n] = 0;
  return true;
}

/* The value of "key N" lines (memory.stat, cpu.stat). */
static bool stat_value(const char *text, const char *key, uint64_t *out) {
  size_t kl = strlen(key);
  for (const char *p = text; *p;) {
    if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
      *out = strtoull(p + kl + 1, NULL, 10);
      return true;
    }
    const char *nl = strchr(p, '\n');
    if (!nl) break;
    p = nl + 1;
  }
  return false;
}

/* A cgroup's own figures over the members' sums, where it has them. */
static void from_cgroup(ml_proc_usage_t *g) {
  char buf[8192];
  uint64_t usage = 0, inactive = 0;
  bool v2 = read_small(g->cgroup, "memory.current", buf, sizeof buf);
  if (v2 || read_small(g->cgroup, "memory.usage_in_bytes", buf, sizeof buf)) {
    usage = strtoull(buf, NULL, 10);
    if (read_small(g->cgroup, "memory.stat", buf, sizeof buf))
      stat_value(buf, v2 ? "inactive_file" : "total_inactive_file", &inactive);
    g->rss_bytes = usage > inactive ? usage - inactive : 0;
  }
  uint64_t usec;
  if (v2 && read_small(g->cgroup, "cpu.stat", buf, sizeof buf) &&
      stat_value(buf, "usage_usec", &usec))
    g->cpu_ns = usec * 1000u;
}

int ml_proc_usage(const char *proc_root, ml_proc_usage_t *groups, size_t n) {
  for (size_t i = 0; i < n; i++) {
    groups[i].cpu_ns = groups[i].rss_bytes = groups[i].start_ns = 0;
    groups[i].nprocs = 0;
  }
  if (n == 0) return 0;
  rec_t *recs = NULL;
  long nrec = read_all(proc_root, &recs);
  if (nrec < 0) return (int)nrec;
  slot_t *slots = malloc(n * sizeof *slots);
  if (!slots) {
    free(recs);
    return ML_ENOMEM;
  }
  for (size_t i = 0; i < n; i++)
    slots[i] = (slot_t){.key = groups[i].pgid, .group = i};
  qsort(slots, n, sizeof *slots, slot_cmp);
  uint64_t hz = (uint64_t)sysconf(_SC_CLK_TCK);
  uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  if (hz == 0) hz = 100;
  for (long i = 0; i < nrec; i++) {
    const rec_t *r = &recs[i];
    const slot_t *s = find(slots, n, r->pgid);
    if (!s) continue;
    ml_proc_usage_t *g = &groups[s->group];
    /* ticks * 1e9 / hz without overflow for any real tick count */
    g->cpu_ns += r->ticks / hz * 1000000000u + r->ticks % hz * 1000000000u / hz;
    g->rss_bytes += r->rss_pages * page;
    g->nprocs++;
    if (r->pid == r->pgid)
      g->start_ns = r->start_ticks / hz * 1000000000u +
                    r->start_ticks % hz * 1000000000u / hz;
  }
  for (size_t i = 0; i < n; i++)
    if (groups[i].cgroup && groups[i].nprocs > 0) from_cgroup(&groups[i]);
  free(slots);
  free(recs);
  return 0;
}

uint64_t ml_proc_boot_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
