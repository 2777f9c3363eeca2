/* The client side of `moonlet exec`: one blocking WebSocket session on the
 * server's unix socket speaking v5.channel.k8s.io (core/exec_session.h is
 * the server side). Our stdin goes to channel 0 (EOF as v5's close
 * signal), channels 1 and 2 to our stdout and stderr, channel 3's Status is
 * handed back. With a tty our terminal is put in raw mode for the session
 * and its size is sent at the start and on every SIGWINCH. For the CLI
 * process only: it blocks its thread until the session ends. */
#ifndef ML_EXEC_CLIENT_H
#define ML_EXEC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
  const char *socket_path; /* the server's unix socket */
  const char *target;      /* ".../pods/NAME/exec?command=...": escaped */
  const char *token;       /* NULL, or a bearer token */
  bool in;                 /* send our stdin */
  bool tty;                /* raw mode and window sizes */
} ml_exec_client_opts_t;

typedef struct {
  int http_status;  /* 101, or the refusal's status */
  char *body;       /* malloc'd: channel 3's Status (101), or the refusal's
                       body; NULL when none came */
  size_t body_len;
} ml_exec_client_result_t;

/**
 * Runs the session to its end.
 * @param err receives a message on failure
 * @return 0 (see *res), or a negative error (connection, protocol)
 */
int ml_exec_client_run(const ml_exec_client_opts_t *o,
                       ml_exec_client_result_t *res, char *err, size_t errlen);

#endif
