/* Probe runner: one attempt of a container check (HTTP GET, TCP connect,
 * exec, or any kind registered later) on the moonlet loop, reported as an
 * ML_EV_PROBE_DONE event (ml_probe_event_t) to the caller's id with the
 * kubelet's result and message texts. Kinds are plugins behind a const
 * vtable (ml_probe_kind_t) registered by name; nothing here calls Lua. */
#ifndef ML_PROBE_H
#define ML_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"

typedef struct ml_probe_runner_s ml_probe_runner_t;
typedef struct ml_probe_s ml_probe_t;
typedef struct ml_probe_kind_s ml_probe_kind_t;

/* Results, as the kubelet's probe.Result. WARNING counts as success (an
 * HTTP redirect to another host that was not followed). UNKNOWN is a probe
 * error: the worker throws the result away. */
enum {
  ML_PROBE_SUCCESS = 1,
  ML_PROBE_WARNING,
  ML_PROBE_FAILURE,
  ML_PROBE_UNKNOWN
};

#define ML_PROBE_MAX_BODY 10240 /* kubelet's maxRespBodyLength (10 KiB) */
#define ML_PROBE_MAX_OUTPUT 10240
#define ML_PROBE_USER_AGENT "kube-probe/1.32"
#define ML_PROBE_DEFAULT_MAX_HTTP 64 /* HTTP probes in flight at once */
#define ML_PROBE_MAX_KINDS 16
#define ML_PROBE_MAX_HANDLES 4 /* uv handles one attempt may own */

typedef struct {
  const char *name;
  const char *value;
} ml_probe_header_t;

/* Parameters of one attempt; each kind reads the fields it needs. Strings
 * are borrowed for the duration of ml_probe_start() only. */
typedef struct {
  const char *host;   /* http, tcp: NULL or "" gives 127.0.0.1 */
  int port;           /* http, tcp: 1..65535 */
  const char *scheme; /* http: "http" (NULL) or "https", any case */
  const char *path;   /* http: NULL gives "/"; may carry a query */
  const ml_probe_header_t *headers; /* http: in order, repeats allowed */
  size_t nheaders;
  const char *send; /* tcp: bytes written after connecting */
  size_t send_len;
  size_t read_max;         /* tcp: >0 reads a reply (up to a newline) */
  const char *const *argv; /* exec: the command, argc entries */
  size_t argc;
  const char *const *env; /* exec: "K=V" entries */
  size_t nenv;
  const char *cwd; /* exec */
  /* Set by a ticker: what the kind's prepare() made of these parameters
   * once, so that each attempt skips that work. NULL otherwise. */
  const void *prepared;
} ml_probe_params_t;

/* The payload of ML_EV_PROBE_DONE. */
typedef struct {
  ml_event_t ev;
  int result;    /* ML_PROBE_* */
  char *message; /* NUL-terminated; may hold binary data up to `len` */
  size_t len;
} ml_probe_event_t;

typedef struct {
  size_t active;     /* attempts running */
  size_t closing;    /* ended, waiting for their handles to close */
  uint64_t started;  /* attempts started */
  uint64_t finished; /* results posted */
  size_t http_active, http_queued;
  uint64_t http_handles; /* libcurl easy handles created (see http_client) */
  size_t tickers;    /* periodic probes alive */
  uint64_t quiet;    /* ticker successes not posted (nothing changed) */
  uint64_t quick;    /* quick retries started (see tickers) */
} ml_probe_stats_t;

/** @return the result's name: "success", "warning", "failure", "unknown". */
const char *ml_probe_result_name(int result);

/**
 * Creates a runner on `loop` with the built-in kinds (http, tcp, exec).
 * @param max_http HTTP attempts in flight at once (0: the default); more wait
 * @return the runner or NULL on allocation failure
 */
ml_probe_runner_t *ml_probe_runner_new(ml_loop_t *loop, size_t max_http);

/**
 * Cancels every attempt (no events are posted for them) and frees the
 * runner once its handles are closed (the loop must run on). Safe after the
 * loop was shut down under the runner (its handles closed by someone else):
 * then everything is freed at once without touching libuv.
 */
void ml_probe_runner_close(ml_probe_runner_t *r);

/** Changes the bound on HTTP attempts in flight. */
void ml_probe_runner_set_max_http(ml_probe_runner_t *r, size_t n);

/** Fills `out` with counters (tests, benchmarks). */
void ml_probe_runner_stats(ml_probe_runner_t *r, ml_probe_stats_t *out);

/**
 * Registers a kind under kind->name (replacing one of the same name).
 * The vtable must outlive the runner.
 * @return 0 or ML_ETOOLARGE (table full) / ML_EINVALID (no name or start)
 */
int ml_probe_register(ml_probe_runner_t *r, const ml_probe_kind_t *kind);

/** @return the kind registered as `name`, or NULL. */
const ml_probe_kind_t *ml_probe_find_kind(ml_probe_runner_t *r,
                                          const char *name);

/**
 * Starts one attempt whose result is posted to `id`.
 * @param timeout_ms the attempt's deadline (0: none)
 * @return 0 (an event will follow), ML_ENOTFOUND (no such kind),
 *         ML_EINVALID (bad parameters), ML_ENOMEM, ML_ECLOSED
 */
int ml_probe_start(ml_probe_runner_t *r, const char *kind,
                   const ml_probe_params_t *params, uint64_t timeout_ms,
                   uint64_t id);

/**
 * Cancels the running attempt posting to `id`; no event follows.
 * @return true if one was running
 */
bool ml_probe_cancel(ml_probe_runner_t *r, uint64_t id);

/* {====== periodic probes (tickers)
 *
 * A ticker runs one kind every period on its own timer, so that a steady
 * probe costs no Lua at all. Its results go to `id` as ML_EV_PROBE_DONE
 * events like single attempts, except for two kubelet rules it applies
 * itself: an UNKNOWN result (a probe error) is retried at once up to
 * `max_tries` attempts per tick, as prober.go's maxProbeRetries; and a
 * SUCCESS that follows `success_threshold` successes in a row is not posted,
 * as it cannot change the worker's stored result. Failures, warnings and
 * the successes that may cross the threshold are always posted. Attempts
 * never overlap: a tick that comes while one runs starts the next attempt
 * as soon as it ends (the kubelet's ticker waits for the probe too).
 *
 * Quick retries (every.quick_ms > 0; the kubelet agent uses them for
 * readiness): a server is seldom listening the instant its process starts,
 * so the first attempt after a reset usually fails, and the container would
 * wait a whole period to become Ready. After such a failure, and until the
 * ticker's first success since the reset, the ticker also retries on its
 * own back-off (quick_ms, doubling, at most ML_PROBE_QUICK_MAX_MS) within
 * one period of that first attempt. A quick retry reports only a success
 * (or warning): its failures are dropped, so the periodic attempts alone
 * make the failure results (and the kubelet's events and counts). Its
 * success is posted like a periodic one and ends the quick retries.
 */

#define ML_PROBE_QUICK_MAX_MS 250 /* longest wait between quick retries */

typedef struct ml_probe_ticker_s ml_probe_ticker_t;

typedef struct {
  uint64_t period_ms;         /* between attempt starts; > 0 */
  uint64_t timeout_ms;        /* each attempt's deadline (0: none) */
  unsigned success_threshold; /* posted successes in a row (0: 1) */
  unsigned max_tries;         /* attempts per tick on UNKNOWN (0: 1) */
  uint64_t quick_ms;          /* first quick retry delay (0: none) */
} ml_probe_every_t;

/**
 * Creates a ticker (not armed). Parameters are copied.
 * @param out receives the ticker, to be given back with
 *            ml_probe_ticker_free()
 * @return 0, ML_ENOTFOUND (no such kind), ML_EINVALID (period 0),
 *         ML_ENOMEM, ML_ECLOSED
 */
int ml_probe_ticker_new(ml_probe_runner_t *r, const char *kind,
                        const ml_probe_params_t *params,
                        const ml_probe_every_t *every, uint64_t id,
                        ml_probe_ticker_t **out);

/**
 * (Re)arms the ticker: the next attempt starts after `first_ms`, then one
 * every period. With an attempt running and first_ms 0, the next one
 * starts as soon as it ends.
 */
void ml_probe_ticker_arm(ml_probe_ticker_t *t, uint64_t first_ms);

/** Stops ticking; an attempt in flight still reports. */
void ml_probe_ticker_disarm(ml_probe_ticker_t *t);

/** Forgets the success streak: the next success is posted again. A new
 *  container instance also gets its quick retries again. */
void ml_probe_ticker_reset(ml_probe_ticker_t *t);

/**
 * Frees the ticker (once its timer is closed). An attempt in flight runs to
 * its end unreported, as an abandoned single attempt does. Safe after
 * ml_probe_runner_close().
 */
void ml_probe_ticker_free(ml_probe_ticker_t *t);

/* }====== */

/* {====== writing a kind
 *
 * A kind's start() sets up its I/O and returns; when the attempt is over it
 * calls ml_probe_done() exactly once (possibly from inside start()). The
 * runner then closes the uv handles the attempt registered with
 * ml_probe_own(), and once they are closed and every ml_probe_hold() is
 * released, calls destroy() and frees the record. Kinds never free handles
 * themselves, so a loop shut down under the runner cannot cause a double
 * close or a use after free.
 */

struct ml_probe_kind_s {
  const char *name;
  /** Starts attempt `p` (p->data is NULL; the kind may set it).
   *  @return 0, or a negative code: then the attempt never existed, its
   *  owned handles are closed and destroy() runs. */
  int (*start)(ml_probe_t *p, const ml_probe_params_t *params);
  /** Aborts the I/O of a running attempt (caller cancelled, runner closing).
   *  No ml_probe_done() is expected afterwards (one is ignored). NULL: the
   *  attempt runs on and its result is dropped. */
  void (*cancel)(ml_probe_t *p);
  /** Frees what start() allocated, once the owned handles are closed.
   *  NULL: free(p->data). */
  void (*destroy)(ml_probe_t *p);
  /** Optional, for tickers: works out once what every attempt with these
   *  parameters needs (start() finds it in params->prepared; an attempt
   *  abandoned by its ticker must not touch it after start()).
   *  @return the kind's data, or NULL when the parameters are bad (then
   *  each attempt reports the error) or memory ran out */
  void *(*prepare)(const ml_probe_params_t *params);
  /** Frees what prepare() returned. */
  void (*unprepare)(void *prepared);
};

/* The attempt record (read-only for kinds except `data`). */
struct ml_probe_s {
  ml_probe_runner_t *runner;
  const ml_probe_kind_t *kind;
  uint64_t id;
  uint64_t timeout_ms;
  void *data; /* the kind's */
  /* private */
  ml_probe_ticker_t *ticker; /* the ticker it reports to, if any */
  ml_probe_t *prev, *next;
  uv_handle_t *handles[ML_PROBE_MAX_HANDLES];
  int nhandles, open, holds;
  bool ended, cancelled;
};

/** Reports the attempt's outcome (printf-style message). */
void ml_probe_done(ml_probe_t *p, int result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Reports the outcome with an exact message of `len` bytes. */
void ml_probe_done_bytes(ml_probe_t *p, int result, const char *msg,
                         size_t len);

/**
 * Hands an initialized uv handle to the runner, which closes it when the
 * attempt ends. The handle's `data` must be `p`.
 * @return 0 or ML_ETOOLARGE (more than ML_PROBE_MAX_HANDLES)
 */
int ml_probe_own(ml_probe_t *p, uv_handle_t *h);

/** Keeps the record alive past its end until ml_probe_release(). */
void ml_probe_hold(ml_probe_t *p);
void ml_probe_release(ml_probe_t *p);

/** @return the uv loop attempts run on. */
uv_loop_t *ml_probe_uv(ml_probe_t *p);

/** @return true once the attempt has reported or was cancelled. */
bool ml_probe_ended(ml_probe_t *p);

/** @return true if the loop was shut down under the runner. */
bool ml_probe_runner_orphaned(ml_probe_runner_t *r);

/* }====== */

#endif
