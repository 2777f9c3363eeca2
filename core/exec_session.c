/* kubectl exec sessions (exec_session.h): the channel protocol on one side,
 * libuv pipes (or a pty's master) on the other. Each uv handle the session
 * opens counts in `handles`; memory goes with the last close callback after
 * ml_exec_free. Backpressure both ways: stdin bytes queued for the child
 * pause the WebSocket above IN_HIGH; output the client has not taken yet
 * (ML_HTTPD_WS_HIGH_WATER) pauses our reads of the child until on_drain. */
#include "exec_session.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "ws_frame.h"

enum { CH_STDIN, CH_STDOUT, CH_STDERR, CH_ERROR, CH_RESIZE, CH_CLOSE = 255 };

#define IN_HIGH (1024 * 1024) /* stdin bytes queued: pause the client */
#define IN_LOW (256 * 1024)   /* ... and resume below this */
#define DRAIN_MS 1000         /* output kept open by a descendant */
#define READ_SIZE 32768

struct ml_exec_s {
  ml_httpd_t *srv;
  uint64_t id;
  bool v5, tty;
  int child[3];  /* the child's ends until started(); -1: none */
  uv_pipe_t in;  /* stdin's write end (no tty) */
  uv_pipe_t out; /* stdout's read end, or the pty master (both ways) */
  uv_pipe_t err; /* stderr's read end (no tty) */
  uv_timer_t timer;
  bool in_open, out_open, err_open, timer_open;
  int handles;  /* open uv handles: memory goes with the last */
  bool freed;   /* ml_exec_free was called */
  bool ws_ended;
  bool finishing; /* ml_exec_finish was called: status once drained */
  bool done;      /* status and close sent */
  bool out_paused;
  bool in_eof;    /* close stdin once what is queued was written */
  bool ws_paused;
  size_t in_pending; /* stdin bytes handed to uv_write, not written yet */
  char *status;
  size_t status_len;
};

typedef struct {
  uv_write_t req;
  ml_exec_t *e;
  size_t len;
  char data[];
} in_write_t;

/* {====== handles */

static void maybe_free(ml_exec_t *e) {
  if (e->freed && e->handles == 0) {
    free(e->status);
    free(e);
  }
}

static void on_closed(uv_handle_t *h) {
  ml_exec_t *e = h->data;
  e->handles--;
  maybe_free(e);
}

static void close_handle(ml_exec_t *e, uv_handle_t *h, bool *open) {
  if (!*open) return;
  *open = false;
  if (!uv_is_closing(h)) uv_close(h, on_closed);
  (void)e;
}

static void close_child_ends(ml_exec_t *e) {
  int *c = e->child;
  /* With a tty the three are one pty slave: closed once. */
  if (c[0] >= 0) close(c[0]);
  if (c[1] >= 0 && c[1] != c[0]) close(c[1]);
  if (c[2] >= 0 && c[2] != c[0] && c[2] != c[1]) close(c[2]);
  c[0] = c[1] = c[2] = -1;
}

/* }====== */

/* {====== the end: status once the output is drained */

static void check_done(ml_exec_t *e) {
  if (!e->finishing || e->done || e->out_open || e->err_open) return;
  e->done = true;
  if (e->timer_open) uv_timer_stop(&e->timer);
  if (!e->ws_ended) {
    uint8_t ch = CH_ERROR;
    uv_buf_t b[2] = {uv_buf_init((char *)&ch, 1),
                     uv_buf_init(e->status, (unsigned)e->status_len)};
    ml_httpd_ws_send(e->srv, e->id, ML_WS_BINARY, b, 2);
    ml_httpd_ws_close(e->srv, e->id, ML_WS_NORMAL, "");
  }
  close_handle(e, (uv_handle_t *)&e->in, &e->in_open);
}

static void on_drain_timeout(uv_timer_t *t) {
  ml_exec_t *e = t->data;
  /* A background process still holds the output: stop waiting for it. */
  close_handle(e, (uv_handle_t *)&e->out, &e->out_open);
  close_handle(e, (uv_handle_t *)&e->err, &e->err_open);
  check_done(e);
}

void ml_exec_finish(ml_exec_t *e, const char *status, size_t len) {
  if (e->finishing) return;
  e->finishing = true;
  e->status = malloc(len ? len : 1);
  if (e->status) {
    memcpy(e->status, status, len);
    e->status_len = len;
  }
  if (e->timer_open) uv_timer_start(&e->timer, on_drain_timeout, DRAIN_MS, 0);
  check_done(e);
}

bool ml_exec_ended(const ml_exec_t *e) { return e->ws_ended; }

/* }====== */

/* {====== output: child ─► client */

static char read_buf[READ_SIZE];

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  /* Each read is sent (copied into the connection's buffer) before the
   * next one: one buffer serves every session. */
  *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void pause_output(ml_exec_t *e, bool paused) {
  e->out_paused = paused;
  uv_stream_t *s[2] = {e->out_open ? (uv_stream_t *)&e->out : NULL,
                       e->err_open ? (uv_stream_t *)&e->err : NULL};
  for (int i = 0; i < 2; i++) {
    if (!s[i]) continue;
    if (paused) uv_read_stop(s[i]);
    else uv_read_start(s[i], on_alloc, s[i]->read_cb);
  }
}

static void on_output(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  ml_exec_t *e = s->data;
  bool is_err = s == (uv_stream_t *)&e->err;
  if (n < 0) {
    /* EOF, or EIO from a pty master once the last slave is closed. */
    if (is_err) close_handle(e, (uv_handle_t *)&e->err, &e->err_open);
    else close_handle(e, (uv_handle_t *)&e->out, &e->out_open);
    check_done(e);
    return;
  }
  if (n == 0 || e->ws_ended) return; /* nobody to read it: drain only */
  uint8_t ch = is_err ? CH_STDERR : CH_STDOUT;
  uv_buf_t b[2] = {uv_buf_init((char *)&ch, 1), uv_buf_init(buf->base, (unsigned)n)};
  long rc = ml_httpd_ws_send(e->srv, e->id, ML_WS_BINARY, b, 2);
  if (rc > ML_HTTPD_WS_HIGH_WATER) pause_output(e, true);
}

static int open_output(ml_exec_t *e, uv_loop_t *uv, uv_pipe_t *p, int fd,
                       bool *open) {
  int rc = uv_pipe_init(uv, p, 0);
  if (rc < 0) return rc;
  p->data = e;
  e->handles++;
  *open = true;
  rc = uv_pipe_open(p, fd);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  return 0;
}

/* }====== */

/* {====== input: client ─► child */

static uv_stream_t *stdin_stream(ml_exec_t *e) {
  if (e->tty) return e->out_open ? (uv_stream_t *)&e->out : NULL;
  return e->in_open ? (uv_stream_t *)&e->in : NULL;
}

static void close_stdin(ml_exec_t *e) {
  if (e->tty) {
    /* A terminal has no end of input but its EOF character (^D). */
    uv_stream_t *s = stdin_stream(e);
    if (s) {
      uv_buf_t b = uv_buf_init("\x04", 1);
      uv_try_write(s, &b, 1);
    }
    return;
  }
  close_handle(e, (uv_handle_t *)&e->in, &e->in_open);
}

static void set_ws_paused(ml_exec_t *e, bool paused) {
  if (e->ws_paused == paused || e->ws_ended) return;
  e->ws_paused = paused;
  ml_httpd_ws_pause(e->srv, e->id, paused);
}

static void on_in_written(uv_write_t *req, int status) {
  in_write_t *w = (in_write_t *)req;
  ml_exec_t *e = w->e;
  (void)status; /* a child that closed its stdin: the bytes are dropped */
  e->in_pending -= w->len;
  free(w);
  if (e->in_pending < IN_LOW) set_ws_paused(e, false);
  if (e->in_pending == 0 && e->in_eof) {
    e->in_eof = false;
    close_stdin(e);
  }
}

static void write_stdin(ml_exec_t *e, const uint8_t *data, size_t len) {
  uv_stream_t *s = stdin_stream(e);
  if (!s || len == 0) return;
  in_write_t *w = malloc(sizeof *w + len);
  if (!w) return;
  w->e = e;
  w->len = len;
  memcpy(w->data, data, len);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
  if (uv_write(&w->req, s, &b, 1, on_in_written) < 0) {
    free(w);
    return;
  }
  e->in_pending += len;
  if (e->in_pending > IN_HIGH) set_ws_paused(e, true);
}

/* {"Width":W,"Height":H}, as kubectl's TerminalSize marshals. */
static long json_uint(const char *s, const char *key) {
  const char *p = strstr(s, key);
  if (!p) return -1;
  p += strlen(key);
  while (*p == ' ' || *p == ':' || *p == '\t') p++;
  char *end;
  long v = strtol(p, &end, 10);
  return end == p || v < 0 || v > 65535 ? -1 : v;
}

static void resize(ml_exec_t *e, const uint8_t *data, size_t len) {
  char text[256];
  if (!e->tty || !e->out_open || len >= sizeof text) return;
  memcpy(text, data, len);
  text[len] = '\0';
  long w = json_uint(text, "\"Width\""), h = json_uint(text, "\"Height\"");
  if (w < 0 || h < 0) return;
  struct winsize ws = {.ws_row = (unsigned short)h, .ws_col = (unsigned short)w};
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&e->out, &fd) == 0) ioctl(fd, TIOCSWINSZ, &ws);
}

static void on_message(void *ud, int opcode, const uint8_t *data, size_t len) {
  ml_exec_t *e = ud;
  /* Every remote-command protocol sends binary messages; the base64
   * variants (text) are not offered. */
  if (opcode != ML_WS_BINARY || len == 0) return;
  switch (data[0]) {
  case CH_STDIN:
    write_stdin(e, data + 1, len - 1);
    break;
  case CH_RESIZE:
    resize(e, data + 1, len - 1);
    break;
  case CH_CLOSE:
    if (e->v5 && len >= 2 && data[1] == CH_STDIN) {
      if (e->in_pending) e->in_eof = true;
      else close_stdin(e);
    }
    break;
  default:
    break; /* as Kubernetes: messages for other channels are dropped */
  }
}

static void on_drain(void *ud) {
  ml_exec_t *e = ud;
  if (e->out_paused) pause_output(e, false);
}

static void on_end(void *ud) {
  ml_exec_t *e = ud;
  e->ws_ended = true;
  /* A closed terminal: the child sees EOF; the caller signals it. */
  if (e->out_paused) pause_output(e, false); /* drain, discarding */
  if (!e->tty) close_handle(e, (uv_handle_t *)&e->in, &e->in_open);
}

static const ml_httpd_ws_ops_t ws_ops = {on_message, on_drain, on_end};

/* }====== */

/* {====== setup */

/* A pty pair: master for us (non-blocking via libuv), slave for the child. */
static int open_pty(int *master, int *slave) {
  int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0) return uv_translate_sys_error(errno);
  char name[128];
  if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof name)) {
    int rc = uv_translate_sys_error(errno);
    close(m);
    return rc;
  }
  int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0) {
    int rc = uv_translate_sys_error(errno);
    close(m);
    return rc;
  }
  struct winsize ws = {.ws_row = 24, .ws_col = 80};
  ioctl(s, TIOCSWINSZ, &ws);
  *master = m;
  *slave = s;
  return 0;
}

int ml_exec_open(ml_httpd_t *srv, ml_loop_t *loop, uint64_t id,
                 const ml_exec_opts_t *o, ml_exec_t **out) {
  *out = NULL;
  ml_exec_t *e = calloc(1, sizeof *e);
  if (!e) return ML_ENOMEM;
  e->srv = srv;
  e->id = id;
  e->v5 = o->v5;
  e->tty = o->tty;
  e->child[0] = e->child[1] = e->child[2] = -1;
  int fds[2][2] = {{-1, -1}, {-1, -1}}, in[2] = {-1, -1}, master = -1;
  int rc = 0;
  if (o->tty) {
    int slave = -1;
    rc = open_pty(&master, &slave);
    if (rc == 0) {
      /* All three, as a container runtime's terminal: a child without
       * the client's stdin still sees a terminal (that gives no input). */
      e->child[0] = e->child[1] = e->child[2] = slave;
    }
  } else {
    if (o->in && pipe2(in, O_CLOEXEC) < 0) rc = uv_translate_sys_error(errno);
    if (!rc && o->out && pipe2(fds[0], O_CLOEXEC) < 0)
      rc = uv_translate_sys_error(errno);
    if (!rc && o->err && pipe2(fds[1], O_CLOEXEC) < 0)
      rc = uv_translate_sys_error(errno);
    e->child[0] = in[0];
    e->child[1] = fds[0][1];
    e->child[2] = fds[1][1];
  }
  if (!rc) rc = ml_httpd_ws_accept(srv, id, o->protocol, &ws_ops, e);
  if (rc < 0) {
    int ends[] = {in[1], fds[0][0], fds[1][0], master};
    for (size_t i = 0; i < sizeof ends / sizeof *ends; i++)
      if (ends[i] >= 0) close(ends[i]);
    close_child_ends(e);
    free(e);
    return rc;
  }
  /* From here on the session exists: handle errors only lose a stream. */
  uv_loop_t *uv = loop->uv;
  uv_timer_init(uv, &e->timer);
  e->timer.data = e;
  e->handles++;
  e->timer_open = true;
  if (o->tty) {
    if (open_output(e, uv, &e->out, master, &e->out_open) == 0)
      uv_read_start((uv_stream_t *)&e->out, on_alloc, on_output);
  } else {
    if (in[1] >= 0) open_output(e, uv, &e->in, in[1], &e->in_open);
    if (fds[0][0] >= 0 &&
        open_output(e, uv, &e->out, fds[0][0], &e->out_open) == 0)
      uv_read_start((uv_stream_t *)&e->out, on_alloc, on_output);
    if (fds[1][0] >= 0 &&
        open_output(e, uv, &e->err, fds[1][0], &e->err_open) == 0)
      uv_read_start((uv_stream_t *)&e->err, on_alloc, on_output);
  }
  *out = e;
  return 0;
}

void ml_exec_child_fds(const ml_exec_t *e, int fds[3]) {
  for (int i = 0; i < 3; i++) fds[i] = e->child[i];
}

void ml_exec_started(ml_exec_t *e) { close_child_ends(e); }

void ml_exec_free(ml_exec_t *e) {
  if (!e || e->freed) return;
  e->freed = true;
  close_child_ends(e);
  if (!e->ws_ended) {
    e->ws_ended = true;
    ml_httpd_ws_detach(e->srv, e->id);
  }
  close_handle(e, (uv_handle_t *)&e->in, &e->in_open);
  close_handle(e, (uv_handle_t *)&e->out, &e->out_open);
  close_handle(e, (uv_handle_t *)&e->err, &e->err_open);
  close_handle(e, (uv_handle_t *)&e->timer, &e->timer_open);
  maybe_free(e);
}

/* }====== */
