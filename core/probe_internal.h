/* Private parts of the probe runner shared by core/probe*.c: the runner
 * record and the built-in kinds. Not for bindings; see probe.h. */
#ifndef ML_PROBE_INTERNAL_H
#define ML_PROBE_INTERNAL_H

#include "http_client.h"
#include "probe.h"

struct ml_probe_runner_s {
  ml_loop_t *loop;
  /* Runs after every poll phase: delivers the private HTTP queue. Also the
   * sentinel telling whether the loop was shut down under us. */
  uv_check_t check;
  ml_probe_t *head; /* every record not yet freed */
  size_t active, closing_records;
  const ml_probe_kind_t *kinds[ML_PROBE_MAX_KINDS];
  int nkinds;
  int refs; /* records alive + the check handle */
  bool closing, orphaned;
  uint64_t started, finished;
  /* HTTP: a libcurl client posting to a private queue, which the check
   * handle turns into probe results (see probe_http.c). */
  ml_loop_t http_loop;
  ml_http_client_t *http;
  size_t max_http;
  /* exec: processes (core/proc.h) post their exits to a private queue too
   * (see probe_exec.c). */
  ml_loop_t exec_loop;
  bool exec_ready;
};

extern const ml_probe_kind_t ml__probe_http;
extern const ml_probe_kind_t ml__probe_tcp;
extern const ml_probe_kind_t ml__probe_exec;

/** Delivers finished HTTP transfers of the private queue as results. */
void ml__probe_http_drain(ml_probe_runner_t *r);
/** Closes the HTTP client and frees what its queue still holds. */
void ml__probe_http_shutdown(ml_probe_runner_t *r);
/** Delivers exited exec probes of the private queue as results. */
void ml__probe_exec_drain(ml_probe_runner_t *r);
/** Frees what the exec queue still holds (after the cancels). */
void ml__probe_exec_shutdown(ml_probe_runner_t *r);

#endif
