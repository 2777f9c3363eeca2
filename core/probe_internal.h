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
  /* The same before every poll: what a timer ended (a curl timeout, or
   * after the check in a UV_RUN_ONCE turn) is delivered before the loop
   * blocks, not at its next unrelated wakeup. */
  uv_prepare_t prepare;
  ml_probe_t *head; /* every record not yet freed */
  size_t active, closing_records;
  const ml_probe_kind_t *kinds[ML_PROBE_MAX_KINDS];
  int nkinds;
  int refs; /* records alive + the check and prepare handles */
  bool closing, orphaned;
  uint64_t started, finished;
  /* HTTP: a libcurl client posting to a private queue, which the check
   * handle turns into probe results (see probe_http.c). */
  ml_loop_t http_loop;
  ml_http_client_t *http;
  size_t max_http;
  /* Periodic probes (probe_ticker.c). */
  ml_probe_ticker_t *tickers;
  size_t ntickers;
  uint64_t quiet, quick;
  /* exec: processes (core/proc.h) post their exits to a private queue too
   * (see probe_exec.c). */
  ml_loop_t exec_loop;
  bool exec_ready;
};

/** Starts an attempt of kind `k` reporting to ticker `t` (may be NULL).
 *  @return 0 or a negative code (then no attempt exists) */
int ml__probe_start(ml_probe_runner_t *r, const ml_probe_kind_t *k,
                    const ml_probe_params_t *params, uint64_t timeout_ms,
                    uint64_t id, ml_probe_ticker_t *t);
/** Posts a result event to `id` (the message is copied). */
void ml__probe_post(ml_probe_runner_t *r, uint64_t id, int result,
                    const char *msg, size_t len);
/** Attempt `p` of ticker `t` is about to start. */
void ml__probe_ticker_began(ml_probe_ticker_t *t, ml_probe_t *p);
/** An attempt of ticker `t` ended with `result` (not cancelled). */
void ml__probe_ticker_result(ml_probe_ticker_t *t, int result,
                             const char *msg, size_t len);
/** Cancels every ticker's attempt and closes their timers (runner close;
 *  `orphan`: the loop already closed them). */
void ml__probe_tickers_shutdown(ml_probe_runner_t *r, bool orphan);
/** Lets one attempt run to its end without reporting anything. */
void ml__probe_abandon(ml_probe_t *p);

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
