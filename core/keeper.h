/* Kept containers (`moonlet server --keep-pods`): each container runs under
 * a small keeper process (this same binary, `moonlet-keeper`) that owns it,
 * writes its logs and records how it ended, and that outlives the server.
 * A later server adopts running keepers by their record files, so stopping
 * or upgrading the server does not stop the pods. Records live in the
 * kubelet's state dir as <base>.spec (the spawn options, read once by the
 * keeper), <base>.run (keeper and container identity) and <base>.exit (how
 * the container ended). The server talks to a keeper through its pidfd:
 * queued real-time signals carry "stop with this grace" and "send this
 * signal", so a recycled pid is never hit. */
#ifndef ML_KEEPER_H
#define ML_KEEPER_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"

typedef struct ml_keeper_s ml_keeper_t;

/**
 * Starts a keeper for one container and waits (up to 10 s) for it to report
 * the container started. The exit arrives later as an ML_EV_PROC_EXIT event
 * with an ml_proc_exit_t payload, as for ml_proc_spawn.
 * @param loop the loop the exit event is posted to
 * @param id the exit event's id
 * @param udata copied into the exit event
 * @param exe the moonlet executable to run as the keeper
 * @param base record path prefix (state dir + "/keep-" + container id)
 * @param spec JSON object: command (list), env (list of "K=V"), cwd,
 *        stdout_log, stderr_log, log_max_bytes, log_max_files,
 *        memory_limit_bytes (as in ml_proc_opts_t)
 * @param errmsg NULL or a buffer for the reason of a failed start
 * @return 0 or a negative UV_E* / ML_E* code (the container's own exec
 *         error when the command cannot run)
 */
int ml_keeper_spawn(ml_loop_t *loop, uint64_t id, intptr_t udata,
                    const char *exe, const char *base, const char *spec,
                    size_t spec_len, ml_keeper_t **out, char *errmsg,
                    size_t errlen);

/**
 * Re-attaches to the keeper recorded at `base` by an earlier server. When
 * the keeper has already finished, the recorded exit is posted at once.
 * @return 0, UV_ENOENT when there is no record (or the keeper vanished
 *         without one), or another negative code
 */
int ml_keeper_adopt(ml_loop_t *loop, uint64_t id, intptr_t udata,
                    const char *base, ml_keeper_t **out);

/** @return the container's pid (its process group id). */
int ml_keeper_pid(const ml_keeper_t *k);

/**
 * Asks the keeper to stop the container: SIGTERM to its group, SIGKILL
 * after `grace_ms`. @return 0 or UV_ESRCH once the keeper has ended
 */
int ml_keeper_stop(ml_keeper_t *k, uint64_t grace_ms);

/** Asks the keeper to send `sig` to the container's group. */
int ml_keeper_kill(ml_keeper_t *k, int sig);

/**
 * Stops watching the keeper; the container keeps running (a stopping
 * server leaves it to the next one). Once its exit was posted, the record
 * files are removed. Memory goes after the loop closes the handle.
 */
void ml_keeper_release(ml_keeper_t *k);

/**
 * The keeper process itself: `moonlet-keeper __keeper BASE`, with the
 * report pipe on fd 3. Runs the container and returns the exit status of
 * the keeper (0 once the container's end is recorded).
 */
int ml_keeper_main(int argc, char **argv);

#endif
