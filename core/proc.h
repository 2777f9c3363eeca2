/* Process runtime: containers are processes. ml_proc_spawn() starts a
 * command in its own process group with PR_SET_PDEATHSIG, its
 * stdout/stderr captured through pipes into CRI-format log files (or kept in
 * memory for exec probes); the exit is watched with a pidfd (or SIGCHLD +
 * waitpid) and posted as ML_EV_PROC_EXIT once the pipes are drained. An
 * optional memory limit puts the process in its own cgroup (proc_cgroup.c).
 * A replacement may be armed: spawned at the exit, before the event, and
 * handed over in it (a restart without a trip through the event queue).
 * Running groups are recorded under a state dir so that a restarted server
 * can kill what a crashed one left behind. Log files: proc_log.c. */
#ifndef ML_PROC_H
#define ML_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"

/* {====== processes */

typedef struct ml_proc_s ml_proc_t;

/* Kinds of ML_EV_PROC_EXIT events (the one event type of this module). */
enum {
  ML_PROC_EV_EXIT = 1, /* ml_proc_exit_t: a process ended */
  ML_PROC_EV_LOG,      /* ml_proc_log_ev_t: followed log text */
  ML_PROC_EV_LOG_END,  /* ml_proc_log_ev_t: a follower closed; always last */
  ML_PROC_EV_SPAWNED   /* ml_proc_spawned_t: ml_proc_spawn_async's answer */
};

/* Common head of every ML_EV_PROC_EXIT event. */
typedef struct {
  ml_event_t ev;
  int kind; /* ML_PROC_EV_* */
} ml_proc_evhead_t;

/* kubelet containerLogMaxSize and containerLogMaxFiles */
#define ML_PROC_LOG_MAX_BYTES (10u * 1024 * 1024)
#define ML_PROC_LOG_MAX_FILES 5
#define ML_PROC_LOG_MAX_LINE 16384 /* longer lines are cut into P parts */
#define ML_PROC_MAX_OUTPUT 10240   /* capture default (kubelet exec probes) */

typedef struct {
  const char *const *argv;     /* NULL-terminated; argv[0] without '/' is looked
                                  up in the PATH of env (else the server's) */
  const char *const *env;      /* NULL-terminated "K=V"; NULL: the server's */
  const char *cwd;             /* NULL: the server's */
  const char *stdout_log;      /* CRI log file; NULL: discard */
  const char *stderr_log;      /* may name the same file (one shared writer) */
  const char *stdout_log_from; /* NULL, or an existing file that becomes
                                  stdout_log: written in its place and
                                  renamed to it once the exec is done, off
                                  the way to the exec (missing: ignored) */
  uint64_t log_max_bytes;      /* 0: ML_PROC_LOG_MAX_BYTES */
  int log_max_files;           /* files kept, the live one included; 0: 5 */
  uint64_t memory_limit_bytes; /* 0: none; else needs a cgroup */
  const char *state_dir;       /* record the group here while it runs */
  bool capture;                /* keep stdout+stderr in memory, not in logs */
  size_t max_output;           /* capture: bytes kept; 0: ML_PROC_MAX_OUTPUT */
  uint64_t timeout_ms;         /* kill the group after this long; 0: never */
  const int *stdio;            /* NULL, or the child's stdin, stdout and
                                  stderr (-1: as without), e.g. an exec
                                  session's pipes; the caller keeps them.
                                  ml_proc_spawn only (not async, not armed) */
  bool new_session;            /* setsid() rather than a process group of
                                  its own; with stdio, its stdin becomes the
                                  controlling terminal (a pty's slave) */
  const char *join_cgroup;     /* an existing cgroup dir to run in (another
                                  process' limits); ignored with a limit */
  intptr_t udata;              /* copied into the exit event */
} ml_proc_opts_t;

/* The payload of the exit event. */
typedef struct {
  ml_proc_evhead_t head;
  intptr_t udata; /* from the options */
  int pid;
  int exit_code;      /* the exit status, or 128 + signal */
  int signal;         /* the signal that ended it, or 0 */
  int64_t started_ns; /* wall clock, ns since the epoch */
  int64_t finished_ns;
  bool oom_killed; /* the cgroup's OOM killer fired */
  bool timed_out;  /* timeout_ms expired and the group was killed */
  bool output_truncated;
  char *output; /* capture: stdout and stderr interleaved */
  size_t output_len;
  /* The replacement started at the exit (ml_proc_arm_restart), or NULL;
   * whoever takes it sets this to NULL, else destroying the event releases
   * it. next_spawned_ns: uv_hrtime() once its spawn had returned. */
  ml_proc_t *next;
  uint64_t next_spawned_ns;
} ml_proc_exit_t;

/* How a process' exit is watched (ml_proc_watch_mode). */
enum { ML_PROC_WATCH_PIDFD = 1, ML_PROC_WATCH_SIGCHLD };

/**
 * Starts a process. Execution failures of the command (ENOENT, EACCES, a bad
 * cwd, ENOEXEC) come back here as an error, with no child left behind.
 * @param loop the moonlet loop the exit event is posted to
 * @param id the event id of the exit event
 * @param errmsg NULL or a buffer for a runc-style message on failure
 * @param out receives the process; give it back with ml_proc_release()
 * @return 0 or a negative UV_E* (errno) / ML_E* code
 */
int ml_proc_spawn(ml_loop_t *loop, uint64_t id, const ml_proc_opts_t *o,
                  ml_proc_t **out, char *errmsg, size_t errlen);

/* The payload of ML_PROC_EV_SPAWNED: the process, or why there is none. */
typedef struct {
  ml_proc_evhead_t head;
  intptr_t udata; /* from the options */
  int rc;         /* 0, or what ml_proc_spawn would have returned */
  char *msg;      /* its message when rc < 0 */
  /* The process when rc == 0: whoever takes it sets this to NULL, else
   * destroying the event releases it (ml_proc_release). */
  ml_proc_t *proc;
} ml_proc_spawned_t;

/**
 * Starts a process as ml_proc_spawn does, but the clone and the wait for
 * the child's exec run on libuv's thread pool, so the loop goes on and
 * several processes start at once. The options, paths, logs and pipes are
 * checked and made here (their errors come back at once); the rest, as an
 * ML_EV_PROC_EXIT event of kind ML_PROC_EV_SPAWNED to `done_id`, once the
 * child has exec'd or failed. Its exit then comes to `id`, as after
 * ml_proc_spawn. No CPU pinning or scheduling hand-off (a restart's
 * latency): the throughput of many starts.
 * @return 0 (the answer will come) or a negative error (no event)
 */
int ml_proc_spawn_async(ml_loop_t *loop, uint64_t id, uint64_t done_id,
                        const ml_proc_opts_t *o, char *errmsg, size_t errlen);

/** @return the pid (also the process group id). */
int ml_proc_pid(const ml_proc_t *p);

/** @return the process' own cgroup dir (it has a memory limit), or NULL. */
const char *ml_proc_cgroup(const ml_proc_t *p);

/** @return true once the process was reaped (its event may still be queued). */
bool ml_proc_exited(const ml_proc_t *p);

/** @return ML_PROC_WATCH_PIDFD or ML_PROC_WATCH_SIGCHLD. */
int ml_proc_watch_mode(const ml_proc_t *p);

/**
 * Sends `sig` to the whole process group.
 * @return 0, UV_ESRCH once the process was reaped, or another UV_E* code
 */
int ml_proc_kill(ml_proc_t *p, int sig);

/**
 * SIGTERM to the group, then SIGKILL after `grace_ms` unless it ended (0:
 * SIGKILL at once). A second call may only shorten the grace period.
 * @return 0 or UV_ESRCH once the process was reaped
 */
int ml_proc_stop(ml_proc_t *p, uint64_t grace_ms);

/* When an armed replacement starts (ml_proc_arm_restart). */
enum {
  ML_PROC_RESTART_ANY = 1, /* after every exit */
  ML_PROC_RESTART_FAILURE  /* after an exit with a non-zero code */
};

/**
 * Arms a replacement: when `p` ends by itself (not through ml_proc_kill,
 * ml_proc_stop or ml_proc_release, which disarm it), the runtime starts
 * `next` at once, before the exit event is posted, and hands it over in the
 * event's `next`. A restart then waits for no event delivery and no Lua (a
 * kill -9 of a container is followed by its replacement's exec in the same
 * loop callback). If that spawn fails the exit comes without `next`, and
 * the caller starts (and reports) as it would have. Arming again replaces
 * the earlier replacement.
 * @param next_id the event id of the replacement's exit event
 * @param next its options, copied (not capture); its stdout_log_from, the
 *        spare, is created (or emptied) and opened now, so that the
 *        restart opens no new file
 * @param when ML_PROC_RESTART_ANY or ML_PROC_RESTART_FAILURE
 * @param not_before_ms only for an exit this many ms from now or later
 *        (0: any time), e.g. once a crash-loop back-off has expired
 * @return 0, UV_ESRCH once `p` was reaped, ML_EINVALID, or ML_ENOMEM
 */
int ml_proc_arm_restart(ml_proc_t *p, uint64_t next_id,
                        const ml_proc_opts_t *next, int when,
                        uint64_t not_before_ms);

/** Forgets an armed replacement (none started). @return true if armed */
bool ml_proc_disarm(ml_proc_t *p);

/**
 * Drops the caller's reference. A process still running is killed (SIGKILL
 * to its group) and reaped; its exit event is still posted. Memory is freed
 * once the uv handles are closed (the loop must run on, as for uv_close).
 * If the loop was shut down under the process (its handles closed by a
 * uv_walk), frees everything at once without touching libuv.
 */
void ml_proc_release(ml_proc_t *p);

/**
 * Kills the process groups that a previous server recorded in `state_dir`
 * and that are still alive (checked against the leader's start time, so a
 * reused pid is never hit), removes their cgroups and records. Records of
 * this very process are left alone.
 * @return the number of groups killed, or a negative UV_E* code
 */
int ml_proc_reap_leftovers(const char *state_dir);

/**
 * Tells whether memory limits can be enforced (a writable cgroup v2 subtree
 * with the memory controller, or a writable cgroup v1 memory hierarchy).
 * @param reason NULL or receives why not (a static string), or which kind
 * @return true when memory_limit_bytes will be enforced
 */
bool ml_proc_cgroups_available(const char **reason);

/** Test hook: watch exits with SIGCHLD + waitpid instead of pidfds. */
void ml_proc_force_sigchld(bool on);

/** Formats wall-clock ns as RFC 3339 with 9 fraction digits
 * ("...05.123456789Z"). */
void ml_proc_format_time(int64_t ns, char buf[40]);

/** @return the wall clock in ns since the epoch. */
int64_t ml_proc_now_ns(void);

/* }====== */

/* {====== log files (proc_log.c) */

typedef struct {
  int tail;           /* last N lines; < 0: all */
  int64_t since_ns;   /* only lines at or after this time; 0: all */
  bool timestamps;    /* prefix each line with its RFC 3339 time */
  size_t limit_bytes; /* cut the output here; 0: no limit */
} ml_proc_log_opts_t;

/**
 * Reads a CRI log file and its rotated predecessors (path.N ... path.1,
 * path), returning the messages (partial lines joined).
 * @param out receives malloc'd text (free it); *outlen its length
 * @param end_offset NULL or receives the size of `path` that was read, the
 *        offset to follow from
 * @return 0 or a negative UV_E* code (UV_ENOENT: no log at all)
 */
int ml_proc_read_log(const char *path, const ml_proc_log_opts_t *o, char **out,
                     size_t *outlen, uint64_t *end_offset);

typedef struct ml_proc_follow_s ml_proc_follow_t;

/* The payload of ML_PROC_EV_LOG / ML_PROC_EV_LOG_END events. */
typedef struct {
  ml_proc_evhead_t head;
  char *data; /* LOG: formatted text (as ml_proc_read_log gives it) */
  size_t len;
} ml_proc_log_ev_t;

/**
 * Follows `path` from `offset`: text appended later (across rotations) is
 * posted as ML_PROC_EV_LOG events to `id`, checked every `interval_ms`.
 * @return 0 or ML_ENOMEM; *out is closed with ml_proc_follow_close()
 */
int ml_proc_follow(ml_loop_t *loop, uint64_t id, const char *path,
                   uint64_t offset, bool timestamps, uint64_t interval_ms,
                   ml_proc_follow_t **out);

/**
 * Stops following; one ML_PROC_EV_LOG_END event follows, then nothing (none
 * if the loop was already shut down under the follower: freed at once).
 */
void ml_proc_follow_close(ml_proc_follow_t *f);

/* }====== */

#endif
