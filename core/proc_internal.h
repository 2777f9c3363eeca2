/* Private interfaces between the units of the process runtime: proc.c
 * (spawn, watch, kill), proc_log.c (CRI log writer), proc_cgroup.c
 * (memory limits) and proc_path.c (the PATH lookup). Not for use outside
 * core/proc*.c. */
#ifndef ML_PROC_INTERNAL_H
#define ML_PROC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proc.h"

/* {====== CRI log writer (proc_log.c) */

/* One log file, shared by the streams that write into it. */
typedef struct ml__clog_s ml__clog_t;

/**
 * Opens (appending) or creates a log file. A log that is not opened now
 * (no `from`, or `from` missing) is made by its first line: a process
 * that writes nothing leaves no file (readers take a missing log for an
 * empty one); its directory must exist and be writable now.
 * @param from NULL, or an existing file to open instead; the caller renames
 *        it to `path` before anything is written (the writer names `path`)
 * @param make_from create `from` (or empty it) and open it, or fail:
 *        `path` is neither opened nor created (a writer readied before its
 *        process exists)
 * @param used_from NULL or receives whether `from` was opened (else `path`,
 *        as when `from` does not exist)
 * @param err receives a negative UV_E* code on failure
 * @return the writer with one reference, or NULL
 */
ml__clog_t *ml__clog_open(const char *path, const char *from,
                          bool make_from, bool *used_from, uint64_t max_bytes,
                          int max_files, int *err);
/**
 * Tells whether a writer opened earlier still writes into a file with a
 * name (not one removed or replaced since), and takes its size afresh.
 * @return false when the file has no name left (or cannot be checked)
 */
bool ml__clog_still_named(ml__clog_t *f);
void ml__clog_ref(ml__clog_t *f);
void ml__clog_unref(ml__clog_t *f);

/* One output stream of a process: cuts its bytes into CRI lines. */
typedef struct {
  ml__clog_t *file; /* NULL: the stream is discarded */
  const char *name; /* "stdout" | "stderr" */
  char *part;       /* the line read so far without its newline */
  uint32_t plen, pcap;
} ml__clog_stream_t;

/** Writes the complete lines of `data` (P parts for long lines). */
void ml__clog_feed(ml__clog_stream_t *s, const char *data, size_t len);
/** Writes a pending unterminated line (as F) and frees the line buffer. */
void ml__clog_finish(ml__clog_stream_t *s);

/* }====== */

/* {====== cgroups (proc_cgroup.c) */

/**
 * Creates a cgroup for one process with memory limit `limit`.
 * @param dir receives the malloc'd cgroup directory
 * @param procs_fd receives an O_CLOEXEC fd of its cgroup.procs; the child
 *        writes "0" into it before exec to move itself in
 * @return 0, or a negative code (ML_EINVALID: cgroups not available)
 */
int ml__cgroup_create(uint64_t limit, char **dir, int *procs_fd);
/** @return true when the cgroup's OOM killer has killed a process in it. */
bool ml__cgroup_oom_killed(const char *dir);
/** SIGKILLs every process in the cgroup (cgroup.kill when there is one). */
void ml__cgroup_kill(const char *dir);
/** Removes the cgroup, waiting a little for killed members to be gone. */
int ml__cgroup_remove(const char *dir);

/* }====== */

/* {====== executable lookup (proc_path.c) */

/**
 * Looks `cmd` up as execvp does, in the PATH of `env` (NULL: the
 * server's; no PATH: a default one); a `cmd` with a '/' is taken as is.
 * Recent lookups are cached per (command, PATH) for at most a second (the
 * rule is in proc_path.c).
 * @param check verify a cached file with one stat (a spawn now); false
 *        takes a cached entry as is (an armed replacement, spawned later)
 * @param out receives the malloc'd file name
 * @param msg receives a runc-style message on failure
 * @return 0, UV_ENOENT, UV_EACCES or ML_ENOMEM
 */
int ml__proc_resolve(const char *cmd, const char *const *env, bool check,
                     char **out, char *msg, size_t mlen);
/** Test hook: how many PATH searches were made (cache misses). */
unsigned long ml__proc_path_searches(void);
/** Test hook: empties the cache of lookups. */
void ml__proc_path_forget(void);

/* }====== */

/** A zeroed exit event for `id` (type, kind, destroy, udata, pid set), or
 * NULL; the process runtime and kept containers (keeper.c) post these. */
ml_proc_exit_t *ml__proc_exit_new(uint64_t id, intptr_t udata, int pid);

/** Reads field 22 (starttime, clock ticks since boot) of /proc/PID/stat. */
int ml__proc_starttime(int pid, unsigned long long *out);

#endif
