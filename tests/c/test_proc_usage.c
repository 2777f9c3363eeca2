/* Unit tests of core/proc_usage.c: sums over a fake /proc tree (members of
 * a group, reaped children's time, a comm with spaces and ')', a kept
 * container beside its keeper, stray entries), cgroup v1 and v2 figures
 * over the members' sums, then the real /proc for this process' own group.
 * Prints TAP. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc_usage.h"

#include "tap.h"

static char root[64];

/* Writes root/pid/stat with the fields the reader uses. */
static void fake(int pid, const char *comm, int ppid, int pgid, unsigned utime,
                 unsigned stime, int cutime, int cstime, unsigned long start,
                 long rss) {
  char path[128];
  snprintf(path, sizeof path, "%s/%d", root, pid);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/%d/stat", root, pid);
  FILE *f = fopen(path, "w");
  fprintf(f,
          "%d (%s) S %d %d %d 0 -1 4194304 100 0 0 0 %u %u %d %d 20 0 1 0 "
          "%lu 1234567 %ld 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 "
          "1 0 0 0 0 0\n",
          pid, comm, ppid, pgid, pgid, utime, stime, cutime, cstime, start,
          rss);
  fclose(f);
}

static uint64_t ns_of(uint64_t ticks) {
  uint64_t hz = (uint64_t)sysconf(_SC_CLK_TCK);
  return ticks / hz * 1000000000u + ticks % hz * 1000000000u / hz;
}

static void test_fake_tree(void) {
  uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  snprintf(root, sizeof root, "/tmp/ml-usage-XXXXXX");
  OK(mkdtemp(root) != NULL, "temp root");
  fake(100, "sh", 1, 100, 10, 5, 3, 2, 5000, 100);      /* leader */
  fake(101, "a) b) c", 100, 100, 7, 1, 0, 0, 5100, 50); /* member */
  fake(200, "other", 1, 200, 1000, 1000, 0, 0, 6000, 999);
  fake(300, "moonlet-keeper", 1, 300, 50, 50, 0, 0, 7000, 10); /* keeper */
  fake(301, "app", 300, 301, 20, 20, 0, 0, 7001, 30);  /* its container */
  fake(302, "worker", 301, 301, 4, 4, 0, 0, 7002, 20); /* container's child */
  char junk[128];
  snprintf(junk, sizeof junk, "%s/self", root);
  mkdir(junk, 0700);
  snprintf(junk, sizeof junk, "%s/999", root); /* no stat: gone meanwhile */
  mkdir(junk, 0700);

  ml_proc_usage_t g[3] = {{.pgid = 100}, {.pgid = 301}, {.pgid = 4242}};
  IS_INT(ml_proc_usage(root, g, 3), 0, "usage over the fake tree");
  IS_INT(g[0].nprocs, 2, "group 100: two members");
  ok(g[0].cpu_ns == ns_of(10 + 5 + 3 + 2 + 7 + 1),
     "group 100: utime+stime+cutime+cstime of both");
  ok(g[0].rss_bytes == 150 * page, "group 100: rss of both");
  ok(g[0].start_ns == ns_of(5000), "group 100: the leader's start");
  IS_INT(g[1].nprocs, 2, "kept group 301: container and child, not keeper");
  ok(g[1].cpu_ns == ns_of(48), "kept group 301: container and child CPU");
  ok(g[1].rss_bytes == 50 * page, "kept group 301: their rss");
  ok(g[1].start_ns == ns_of(7001), "kept group 301: the container's start");
  IS_INT(g[2].nprocs, 0, "a gone group has no members");
  ok(g[2].cpu_ns == 0 && g[2].start_ns == 0, "and no usage");

  IS_INT(ml_proc_usage("/nonexistent-ml-root", g, 1), -ENOENT,
         "a missing root fails");
  IS_INT(ml_proc_usage(root, g, 0), 0, "no groups: nothing read");
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf %s", root);
  ok(system(cmd) == 0, "cleanup");
}

static void put(const char *dir, const char *file, const char *text) {
  char path[160];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

static void test_cgroups(void) {
  uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  snprintf(root, sizeof root, "/tmp/ml-usage-XXXXXX");
  OK(mkdtemp(root) != NULL, "temp root");
  fake(100, "sh", 1, 100, 10, 5, 0, 0, 5000, 100);
  char v1[96], v2[96];
  snprintf(v1, sizeof v1, "%s/v1", root);
  snprintf(v2, sizeof v2, "%s/v2", root);
  mkdir(v1, 0700);
  mkdir(v2, 0700);
  put(v1, "memory.usage_in_bytes", "10485760\n");
  put(v1, "memory.stat",
      "cache 5\ninactive_file 7\ntotal_inactive_file 2097152\n");
  put(v2, "memory.current", "8388608\n");
  put(v2, "memory.stat", "anon 1\nactive_file 3\ninactive_file 4194304\n");
  put(v2, "cpu.stat", "usage_usec 2500000\nuser_usec 2000000\n");

  ml_proc_usage_t g = {.pgid = 100, .cgroup = v1};
  IS_INT(ml_proc_usage(root, &g, 1), 0, "usage with a v1 cgroup");
  ok(g.rss_bytes == 8 * 1048576, "v1: usage_in_bytes - total_inactive_file");
  ok(g.cpu_ns == ns_of(15), "v1: CPU stays the members' sum");
  g = (ml_proc_usage_t){.pgid = 100, .cgroup = v2};
  IS_INT(ml_proc_usage(root, &g, 1), 0, "usage with a v2 cgroup");
  ok(g.rss_bytes == 4 * 1048576, "v2: memory.current - inactive_file");
  ok(g.cpu_ns == 2500000000u, "v2: cpu.stat usage_usec");
  snprintf(v2, sizeof v2, "%s/gone", root);
  g = (ml_proc_usage_t){.pgid = 100, .cgroup = v2};
  IS_INT(ml_proc_usage(root, &g, 1), 0, "usage with a missing cgroup");
  ok(g.rss_bytes == 100 * page, "a missing cgroup: the members' sums");
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf %s", root);
  ok(system(cmd) == 0, "cleanup");
}

static void test_real_proc(void) {
  /* Burn a little CPU so that this group shows some. */
  volatile double x = 0;
  for (int i = 0; i < 20000000; i++) x += i * 0.5;
  ok(x > 0, "burnt some CPU");
  ml_proc_usage_t g = {.pgid = (int)getpgrp()};
  IS_INT(ml_proc_usage("/proc", &g, 1), 0, "usage from /proc");
  ok(g.nprocs >= 1, "our group has members (%d)", g.nprocs);
  ok(g.rss_bytes > 100 * 1024, "and resident memory (%llu)",
     (unsigned long long)g.rss_bytes);
  ok(g.cpu_ns > 0, "and CPU time (%llu ns)", (unsigned long long)g.cpu_ns);
  uint64_t now = ml_proc_boot_ns();
  ok(g.start_ns == 0 || g.start_ns <= now, "a leader starts before now");
}

int main(void) {
  test_fake_tree();
  test_cgroups();
  test_real_proc();
  return tap_done();
}
