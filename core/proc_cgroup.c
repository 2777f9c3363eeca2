/* Memory limits through cgroups: one child cgroup per container under the
 * server's own cgroup (a delegated subtree). cgroup v2 (memory.max,
 * memory.events oom_kill) is preferred; a writable cgroup v1 memory
 * hierarchy (memory.limit_in_bytes, memory.oom_control oom_kill) is used on
 * hosts that still mount one. Detection runs once and is cached. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "proc.h"
#include "proc_internal.h"

static struct {
  bool checked, ok;
  int version;         /* 1 or 2 */
  char base[PATH_MAX]; /* the cgroup our containers go under */
  char reason[PATH_MAX + 128];
  unsigned long seq;
} cg;

static int write_file(const char *dir, const char *file, const char *val) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, val, strlen(val));
  int err = n < 0 ? -errno : 0;
  close(fd);
  return err;
}

static int read_file(const char *dir, const char *file, char *buf, size_t len) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = read(fd, buf, len - 1);
  int err = n < 0 ? -errno : 0;
  close(fd);
  buf[n > 0 ? n : 0] = 0;
  return err;
}

static bool has_word(const char *list, const char *word) {
  size_t wl = strlen(word);
  for (const char *p = list; (p = strstr(p, word)); p += wl) {
    bool start = p == list || p[-1] == ' ' || p[-1] == ',' || p[-1] == '\n';
    char e = p[wl];
    if (start && (e == 0 || e == ' ' || e == ',' || e == '\n')) return true;
  }
  return false;
}

/* Finds the mount point of a cgroup2 fs (v2) or of the v1 hierarchy that
 * carries the memory controller, from /proc/self/mountinfo. */
static bool find_mount(int version, char *out, size_t len) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) return false;
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof line, f)) {
    char mnt[PATH_MAX], fstype[64], super[1024];
    const char *dash = strstr(line, " - ");
    if (!dash) continue;
    if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1) continue;
    if (sscanf(dash + 3, "%63s %*s %1023s", fstype, super) != 2) continue;
    if (version == 2 && strcmp(fstype, "cgroup2") == 0) found = true;
    if (version == 1 && strcmp(fstype, "cgroup") == 0 &&
        has_word(super, "memory"))
      found = true;
    if (found) snprintf(out, len, "%s", mnt);
  }
  fclose(f);
  return found;
}

/* Our own cgroup path in hierarchy `version` from /proc/self/cgroup. */
static bool own_path(int version, char *out, size_t len) {
  FILE *f = fopen("/proc/self/cgroup", "re");
  if (!f) return false;
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) continue;
    *c2 = 0;
    if (version == 2 && strcmp(line, "0") == 0 && c1[1] == 0) found = true;
    if (version == 1 && has_word(c1 + 1, "memory")) found = true;
    if (found) snprintf(out, len, "%s", c2 + 1);
  }
  fclose(f);
  return found;
}

/* Creates and removes a probe child: the real test of "writable". */
static int probe_writable(const char *base) {
  char dir[PATH_MAX + 64];
  snprintf(dir, sizeof dir, "%s/ml-probe-%d", base, (int)getpid());
  if (mkdir(dir, 0755) < 0 && errno != EEXIST) return -errno;
  rmdir(dir);
  return 0;
}

static bool detect_v2(void) {
  char mnt[PATH_MAX], own[PATH_MAX], buf[1024];
  if (!find_mount(2, mnt, sizeof mnt) || !own_path(2, own, sizeof own)) {
    snprintf(cg.reason, sizeof cg.reason, "no cgroup v2 hierarchy");
    return false;
  }
  if (snprintf(cg.base, sizeof cg.base, "%s%s", mnt,
               strcmp(own, "/") ? own : "") >= (int)sizeof cg.base)
    return false;
  if (read_file(cg.base, "cgroup.controllers", buf, sizeof buf) < 0 ||
      !has_word(buf, "memory")) {
    snprintf(cg.reason, sizeof cg.reason,
             "cgroup v2: the memory controller is not delegated to %s",
             cg.base);
    return false;
  }
  int rc = probe_writable(cg.base);
  if (rc < 0) {
    snprintf(cg.reason, sizeof cg.reason, "cgroup v2: %s is not writable: %s",
             cg.base, ml_strerror(rc));
    return false;
  }
  if (read_file(cg.base, "cgroup.subtree_control", buf, sizeof buf) == 0 &&
      !has_word(buf, "memory")) {
    rc = write_file(cg.base, "cgroup.subtree_control", "+memory");
    if (rc == UV_EBUSY) {
      /* "No internal processes": a cgroup with members cannot enable
       * controllers for children. Move the server into a leaf first, as
       * systemd's Delegate= users do. */
      char leaf[PATH_MAX + 32];
      snprintf(leaf, sizeof leaf, "%s/moonlet-server", cg.base);
      if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
        rc = -errno;
      else if ((rc = write_file(leaf, "cgroup.procs", "0")) == 0)
        rc = write_file(cg.base, "cgroup.subtree_control", "+memory");
    }
    if (rc < 0) {
      snprintf(cg.reason, sizeof cg.reason,
               "cgroup v2: cannot enable the memory controller in %s: %s",
               cg.base, ml_strerror(rc));
      return false;
    }
  }
  cg.version = 2;
  snprintf(cg.reason, sizeof cg.reason, "cgroup v2 at %s", cg.base);
  return true;
}

static bool detect_v1(void) {
  char mnt[PATH_MAX], own[PATH_MAX], buf[64];
  if (!find_mount(1, mnt, sizeof mnt) || !own_path(1, own, sizeof own))
    return false;
  if (snprintf(cg.base, sizeof cg.base, "%s%s", mnt,
               strcmp(own, "/") ? own : "") >= (int)sizeof cg.base)
    return false;
  if (read_file(cg.base, "memory.limit_in_bytes", buf, sizeof buf) < 0)
    return false;
  if (probe_writable(cg.base) < 0) return false;
  cg.version = 1;
  snprintf(cg.reason, sizeof cg.reason, "cgroup v1 memory at %s", cg.base);
  return true;
}

static void detect(void) {
  if (cg.checked) return;
  cg.checked = true;
  char why[sizeof cg.reason];
  if (detect_v2()) {
    cg.ok = true;
    return;
  }
  memcpy(why, cg.reason, sizeof why);
  if (detect_v1()) {
    cg.ok = true;
    return;
  }
  memcpy(cg.reason, why, sizeof why);
}

bool ml_proc_cgroups_available(const char **reason) {
  detect();
  if (reason) *reason = cg.reason;
  return cg.ok;
}

int ml__cgroup_create(uint64_t limit, char **dir_out, int *procs_fd) {
  detect();
  if (!cg.ok) return ML_EINVALID;
  char dir[PATH_MAX + 64], val[32];
  snprintf(dir, sizeof dir, "%s/ml-%d-%lu", cg.base, (int)getpid(), ++cg.seq);
  if (mkdir(dir, 0755) < 0) return -errno;
  snprintf(val, sizeof val, "%llu", (unsigned long long)limit);
  int rc;
  if (cg.version == 2) {
    rc = write_file(dir, "memory.max", val);
    /* Over the limit means OOM, not swap (the kubelet's NoSwap). */
    if (rc == 0) write_file(dir, "memory.swap.max", "0");
  } else {
    rc = write_file(dir, "memory.limit_in_bytes", val);
    if (rc == 0) write_file(dir, "memory.memsw.limit_in_bytes", val);
  }
  char path[PATH_MAX + 80];
  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  int fd = rc < 0 ? -1 : open(path, O_WRONLY | O_CLOEXEC);
  if (rc == 0 && fd < 0) rc = -errno;
  if (rc < 0) {
    rmdir(dir);
    return rc;
  }
  *dir_out = strdup(dir);
  if (!*dir_out) {
    close(fd);
    rmdir(dir);
    return ML_ENOMEM;
  }
  *procs_fd = fd;
  return 0;
}

static unsigned long long field(const char *text, const char *key) {
  size_t kl = strlen(key);
  const char *p = text;
  while (*p) {
    if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
      return strtoull(p + kl + 1, NULL, 10);
    const char *nl = strchr(p, '\n');
    if (!nl) break;
    p = nl + 1;
  }
  return 0;
}

bool ml__cgroup_oom_killed(const char *dir) {
  char buf[1024];
  detect();
  const char *file = cg.version == 1 ? "memory.oom_control" : "memory.events";
  if (read_file(dir, file, buf, sizeof buf) < 0) return false;
  return field(buf, "oom_kill") > 0;
}

void ml__cgroup_kill(const char *dir) {
  if (cg.version == 2 && write_file(dir, "cgroup.kill", "1") == 0) return;
  char buf[8192];
  if (read_file(dir, "cgroup.procs", buf, sizeof buf) < 0) return;
  for (char *p = buf; *p;) {
    char *end;
    long pid = strtol(p, &end, 10);
    if (end == p) break;
    if (pid > 0) kill((pid_t)pid, SIGKILL);
    p = end;
    while (*p == '\n') p++;
  }
}

int ml__cgroup_remove(const char *dir) {
  /* Killed members leave the cgroup when they exit, which takes a moment. */
  for (int i = 0; i < 100; i++) {
    if (rmdir(dir) == 0 || errno == ENOENT) return 0;
    if (errno != EBUSY) return -errno;
    if (i % 10 == 0) ml__cgroup_kill(dir);
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  return UV_EBUSY;
}
