/* `kubectl exec` sessions: Kubernetes' remote-command channel protocol
 * (v4/v5.channel.k8s.io) between an upgraded WebSocket request
 * (core/http_server.h) and a process' stdio on the loop. Each binary
 * message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 the
 * final Status, 4 resize ({"Width":W,"Height":H}); v5 adds 255 + channel
 * to close one (stdin's EOF). With a tty the child gets a pty's slave as
 * stdin, stdout and stderr (stderr merges into stdout, as with Kubernetes)
 * and resizes become TIOCSWINSZ.
 *
 *   open(): 101 + pipes/pty ─► caller spawns with child_fds(), started()
 *   stdin msgs ─► pipe/pty ─► process ─► pipes/pty ─► stdout/stderr msgs
 *   finish(status): output drained (1 s at most) ─► channel 3 ─► close
 *
 * The process itself is the caller's (moonlet.proc): the session never
 * signals it; the request's CLOSED event tells the caller the client left.
 */
#ifndef ML_EXEC_SESSION_H
#define ML_EXEC_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_server.h"
#include "loop.h"

typedef struct ml_exec_s ml_exec_t;

typedef struct {
  const char *protocol; /* the negotiated subprotocol, echoed in the 101 */
  bool v5;              /* v5.channel.k8s.io: close signals understood */
  bool in, out, err;    /* which streams the client asked for */
  bool tty;             /* a pty for the child (err is then merged) */
} ml_exec_opts_t;

/**
 * Makes the child's pipes (or pty) and upgrades request `id`.
 * @return 0, or an error from ml_httpd_ws_accept (the request is then
 *   still unanswered), a pipe/openpty failure, ML_ENOMEM
 */
int ml_exec_open(ml_httpd_t *srv, ml_loop_t *loop, uint64_t id,
                 const ml_exec_opts_t *o, ml_exec_t **out);

/** The child's stdin, stdout and stderr (-1: not asked for: /dev/null). */
void ml_exec_child_fds(const ml_exec_t *e, int fds[3]);

/** The child runs (or failed to start): our copies of its ends close. */
void ml_exec_started(ml_exec_t *e);

/**
 * The process is gone: once its output is drained (EOF on every stream,
 * or 1 s after this call when a descendant keeps them open), `status` (a
 * metav1.Status JSON) goes on channel 3 and the session closes normally.
 * Without a client (it left) nothing is sent. Called at most once.
 */
void ml_exec_finish(ml_exec_t *e, const char *status, size_t len);

/** @return true once the WebSocket session is over (client gone or our
 * close written). */
bool ml_exec_ended(const ml_exec_t *e);

/**
 * Releases the session: an open WebSocket is closed (1001), the pipes are
 * closed; memory goes in the close callbacks (run the loop on).
 */
void ml_exec_free(ml_exec_t *e);

#endif
