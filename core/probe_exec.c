/* The "exec" probe kind: the kubelet's exec check on the process runtime
 * (core/proc.h): the command runs in its own process group with stdout and
 * stderr captured (10 KiB), killed when the probe's timeout expires. Exit 0
 * is success, any other exit a failure with the output as message, a
 * timeout a failure `command "..." timed out`, a command that cannot start
 * a probe error. Exits are posted to a private queue of the runner, which
 * its check and prepare handles drain. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "probe_internal.h"
#include "proc.h"

typedef struct {
  ml_proc_t *proc;
  char *cmd; /* the command joined by spaces, Go-quoted (%q) */
} exec_probe_t;

/* Go's %q of the joined command (enough for printable commands: quotes,
 * backslashes and control characters escaped). */
static char *quote_command(const ml_probe_params_t *o) {
  size_t cap = 3;
  for (size_t i = 0; i < o->argc; i++) cap += 4 * strlen(o->argv[i]) + 1;
  char *q = malloc(cap);
  if (!q) return NULL;
  size_t n = 0;
  q[n++] = '"';
  for (size_t i = 0; i < o->argc; i++) {
    if (i) q[n++] = ' ';
    for (const unsigned char *c = (const unsigned char *)o->argv[i]; *c; c++) {
      if (*c == '"' || *c == '\\') {
        q[n++] = '\\';
        q[n++] = (char)*c;
      } else if (*c == '\n') {
        q[n++] = '\\';
        q[n++] = 'n';
      } else if (*c == '\t') {
        q[n++] = '\\';
        q[n++] = 't';
      } else if (*c < 0x20 || *c == 0x7f) {
        n += (size_t)snprintf(q + n, cap - n, "\\x%02x", *c);
      } else {
        q[n++] = (char)*c;
      }
    }
  }
  q[n++] = '"';
  q[n] = '\0';
  return q;
}

static int exec_start(ml_probe_t *p, const ml_probe_params_t *o) {
  if (o->argc == 0 || !o->argv || !o->argv[0] || !*o->argv[0])
    return ML_EINVALID;
  ml_probe_runner_t *r = p->runner;
  exec_probe_t *ep = calloc(1, sizeof *ep);
  if (!ep) return ML_ENOMEM;
  p->data = ep;
  ep->cmd = quote_command(o);
  /* NULL-terminated copies of the borrowed arrays. */
  const char **argv = calloc(o->argc + 1, sizeof *argv);
  const char **env = o->nenv ? calloc(o->nenv + 1, sizeof *env) : NULL;
  int rc = ML_ENOMEM;
  if (!ep->cmd || !argv || (o->nenv && !env)) goto done;
  memcpy(argv, o->argv, o->argc * sizeof *argv);
  if (env) memcpy(env, o->env, o->nenv * sizeof *env);
  if (!r->exec_ready) {
    ml_loop_init(&r->exec_loop, r->loop->uv);
    r->exec_ready = true;
  }
  ml_proc_opts_t po = {
      .argv = argv,
      .env = env,
      .cwd = o->cwd && *o->cwd ? o->cwd : NULL,
      .capture = true,
      .max_output = ML_PROBE_MAX_OUTPUT,
      .timeout_ms = p->timeout_ms,
  };
  char errmsg[512] = "";
  /* The record's address is the private id; the hold keeps it valid
   * until the exit event has been drained. */
  rc = ml_proc_spawn(&r->exec_loop, (uint64_t)(uintptr_t)p, &po, &ep->proc,
                     errmsg, sizeof errmsg);
  if (rc == 0) {
    ml_probe_hold(p);
  } else if (rc != ML_ENOMEM && rc != ML_EINVALID) {
    /* The command could not start: the kubelet's runtime reports that as
     * an error, so the attempt is a probe error, not a failure. */
    ml_probe_done(p, ML_PROBE_UNKNOWN, "%s",
                  *errmsg ? errmsg : ml_strerror(rc));
    rc = 0;
  }
done:
  free(argv);
  free(env);
  return rc;
}

/* Gives the process back: killed and reaped now; its exit event still
 * comes through the queue and releases the hold. */
static void drop_proc(ml_probe_t *p, exec_probe_t *ep) {
  if (!ep || !ep->proc) return;
  if (ml_probe_runner_orphaned(p->runner)) {
    /* The loop was shut down under us and proc's handles with it: the
     * process runtime cannot be called into any more, so only make sure
     * the group dies (its small record stays until the process exits). */
    ml_proc_kill(ep->proc, SIGKILL);
  } else {
    ml_proc_release(ep->proc);
  }
  ep->proc = NULL;
}

static void exec_cancel(ml_probe_t *p) { drop_proc(p, p->data); }

static void exec_destroy(ml_probe_t *p) {
  exec_probe_t *ep = p->data;
  if (!ep) return;
  drop_proc(p, ep);
  free(ep->cmd);
  free(ep);
}

const ml_probe_kind_t ml__probe_exec = {
    .name = "exec",
    .start = exec_start,
    .cancel = exec_cancel,
    .destroy = exec_destroy,
};

static void report(ml_probe_t *p, ml_proc_exit_t *ex) {
  exec_probe_t *ep = p->data;
  if (ex->timed_out) {
    ml_probe_done(p, ML_PROBE_FAILURE, "command %s timed out", ep->cmd);
    return;
  }
  int result = ex->exit_code == 0 ? ML_PROBE_SUCCESS : ML_PROBE_FAILURE;
  ml_probe_done_bytes(p, result, ex->output ? ex->output : "",
                      ex->output_len);
}

void ml__probe_exec_drain(ml_probe_runner_t *r) {
  ml_event_t *e;
  while ((e = ml_loop_pop(&r->exec_loop)) != NULL) {
    ml_proc_evhead_t *h = (ml_proc_evhead_t *)e;
    if (e->type == ML_EV_PROC_EXIT && h->kind == ML_PROC_EV_EXIT) {
      ml_probe_t *p = (ml_probe_t *)(uintptr_t)e->id;
      if (!p->ended) report(p, (ml_proc_exit_t *)e);
      ml_probe_release(p);
    }
    ml_event_free(e);
  }
}

void ml__probe_exec_shutdown(ml_probe_runner_t *r) {
  if (!r->exec_ready) return;
  ml__probe_exec_drain(r);
  ml_loop_close(&r->exec_loop);
}
