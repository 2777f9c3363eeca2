/* Resource usage of containers' process groups, read from /proc in one
 * pass: cumulative CPU time (utime+stime, plus what the members' reaped
 * children used) and resident memory summed over every process of a group,
 * and the group leader's start time, or a container cgroup's own figures
 * when it has one. The node agent samples it when the
 * metrics API is asked (no timer), so one pass serves all containers. */
#ifndef ML_PROC_USAGE_H
#define ML_PROC_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  int pgid;           /* in: the container's process group (its leader's pid) */
  const char *cgroup; /* in: NULL, or the container's own cgroup dir: its
                         working set (usage - inactive file pages) counts
                         for memory, and on cgroup v2 its usage_usec for
                         CPU, instead of the members' sums */
  uint64_t cpu_ns;    /* out: CPU time of the members, reaped children's too */
  uint64_t rss_bytes; /* out: resident set of the members */
  uint64_t start_ns;  /* out: the leader's start, ns after boot; 0: none */
  int nprocs;         /* out: members seen (0: the group is gone) */
} ml_proc_usage_t;

/**
 * Fills the out fields of `groups` from `proc_root`/PID/stat.
 * @param proc_root "/proc", or a directory of the same shape (tests)
 * @param groups n groups; pgids need not be sorted, may not repeat
 * @return 0, or a negative code (the root cannot be read, ML_ENOMEM)
 */
int ml_proc_usage(const char *proc_root, ml_proc_usage_t *groups, size_t n);

/** @return the time since boot in ns (CLOCK_BOOTTIME), the clock of
 * start_ns. */
uint64_t ml_proc_boot_ns(void);

#endif
