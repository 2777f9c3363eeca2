/* Container log files in the CRI format the kubelet reads:
 *   2026-11-29T10:04:05.123456789Z stdout F text
 * (P for a part of a line cut at 16 KiB), with size-based rotation (path,
 * path.1, ... path.N-1; the oldest is dropped), a reader for `logs` (tail,
 * since, timestamps, limit) across the rotated files, and a follower for
 * `logs -f` that polls on a libuv timer. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "proc.h"
#include "proc_internal.h"

#define TS_LEN 30 /* "2026-11-29T10:04:05.123456789Z" */
#define MAX_ROTATED 1000

/* {====== writer */

struct ml__clog_s {
  int fd; /* -1 after a failed rotation: writes are dropped */
  bool lazy; /* the file is made (or opened) by the first line written */
  int refs;
  int max_files;
  uint64_t size, max_bytes;
  char *path;
};

/* Lines are formatted into one scratch buffer and written with one write()
 * per read chunk. The loop is single-threaded and each chunk is flushed
 * before the next, so a single buffer serves every writer. */
static struct {
  char *buf;
  size_t len, cap;
  ml__clog_t *owner;
} scratch;

static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static void scratch_flush(void) {
  ml__clog_t *f = scratch.owner;
  if (f && scratch.len > 0 && f->fd >= 0) {
    /* A full disk loses log lines, never the process. */
    if (write_all(f->fd, scratch.buf, scratch.len) == 0) f->size += scratch.len;
  }
  scratch.len = 0;
}

static int open_log(const char *path, int flags) {
  return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | flags, 0640);
}

/* Opens a lazily made log at its first line (see ml__clog_open). */
static void make_lazy(ml__clog_t *f) {
  f->lazy = false;
  f->fd = open_log(f->path, 0);
  struct stat st;
  if (f->fd >= 0 && fstat(f->fd, &st) == 0) f->size = (uint64_t)st.st_size;
}

/* Whether a file could be made at `path`: its directory exists and we may
 * write into it. @return 0 or a negative errno */
static int dir_writable(const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[PATH_MAX];
  if (!slash) return access(".", W_OK | X_OK) == 0 ? 0 : -errno;
  size_t n = slash == path ? 1 : (size_t)(slash - path);
  if (n >= sizeof dir) return UV_ENAMETOOLONG;
  memcpy(dir, path, n);
  dir[n] = 0;
  return access(dir, W_OK | X_OK) == 0 ? 0 : -errno;
}

static void rotate(ml__clog_t *f) {
  char from[PATH_MAX + 16], to[PATH_MAX + 16];
  if (f->fd >= 0) close(f->fd);
  if (f->max_files <= 1) {
    /* A new inode (not a truncation) so that followers notice. */
    unlink(f->path);
  } else {
    for (int i = f->max_files - 1; i >= 1; i--) {
      if (i == 1)
        snprintf(from, sizeof from, "%s", f->path);
      else
        snprintf(from, sizeof from, "%s.%d", f->path, i - 1);
      snprintf(to, sizeof to, "%s.%d", f->path, i);
      rename(from, to); /* a missing one is fine */
    }
  }
  f->fd = open_log(f->path, O_TRUNC);
  f->size = 0;
}

ml__clog_t *ml__clog_open(const char *path, const char *from,
                          bool make_from, bool *used_from, uint64_t max_bytes,
                          int max_files, int *err) {
  ml__clog_t *f = calloc(1, sizeof *f);
  char *copy = strdup(path);
  if (!f || !copy) {
    free(f);
    free(copy);
    *err = ML_ENOMEM;
    return NULL;
  }
  f->fd = -1;
  if (used_from) *used_from = false;
  if (from && make_from) {
    /* A spare readied for a process that does not run yet: made here, or
     * emptied when it is an old log recycled under its name. */
    f->fd = open_log(from, O_TRUNC);
  } else if (from) {
    /* No O_CREAT: a spare that is gone means the usual file. */
    f->fd = open(from, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (f->fd >= 0 && used_from) *used_from = true;
  }
  if (f->fd < 0 && !make_from) {
    /* The file itself is made by the first line written, not now: a
     * container that writes nothing (a `sleep`) makes no inode, which cost
     * 0.04-0.5 ms of the server's CPU per start on this ext4 (more right
     * after many files were deleted). A directory that is not there still
     * fails the spawn, as the open did. */
    int rc = dir_writable(path);
    if (rc < 0) {
      *err = rc;
      free(f);
      free(copy);
      return NULL;
    }
    f->lazy = true;
  }
  if (f->fd < 0 && !f->lazy) {
    *err = from || !make_from ? -errno : UV_ENOENT;
    free(f);
    free(copy);
    return NULL;
  }
  struct stat st;
  f->size = f->fd >= 0 && fstat(f->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
  f->path = copy;
  f->refs = 1;
  f->max_bytes = max_bytes ? max_bytes : ML_PROC_LOG_MAX_BYTES;
  f->max_files = max_files > 0 ? max_files : ML_PROC_LOG_MAX_FILES;
  return f;
}

bool ml__clog_still_named(ml__clog_t *f) {
  struct stat st;
  if (f->fd < 0 || fstat(f->fd, &st) < 0 || st.st_nlink == 0) return false;
  f->size = (uint64_t)st.st_size;
  return true;
}

void ml__clog_ref(ml__clog_t *f) { f->refs++; }

void ml__clog_unref(ml__clog_t *f) {
  if (!f || --f->refs > 0) return;
  if (scratch.owner == f) {
    scratch_flush();
    scratch.owner = NULL;
  }
  if (f->fd >= 0) close(f->fd);
  free(f->path);
  free(f);
}

static void put_line(ml__clog_t *f, const char *ts, const char *stream,
                     char tag, const char *msg, size_t len) {
  if (f->lazy) make_lazy(f); /* before the size is checked for rotation */
  if (scratch.owner != f) {
    scratch_flush();
    scratch.owner = f;
  }
  size_t need = TS_LEN + strlen(stream) + len + 5;
  /* Rotate at a line boundary before the file would grow past its size. */
  if (f->size + scratch.len + need > f->max_bytes &&
      f->size + scratch.len > 0) {
    scratch_flush();
    rotate(f);
  }
  if (scratch.len + need > scratch.cap) {
    size_t cap = scratch.cap ? scratch.cap : 65536;
    while (cap < scratch.len + need) cap *= 2;
    char *nb = realloc(scratch.buf, cap);
    if (!nb) return; /* out of memory: the line is lost */
    scratch.buf = nb;
    scratch.cap = cap;
  }
  char *o = scratch.buf + scratch.len;
  memcpy(o, ts, TS_LEN);
  o += TS_LEN;
  *o++ = ' ';
  size_t sl = strlen(stream);
  memcpy(o, stream, sl);
  o += sl;
  *o++ = ' ';
  *o++ = tag;
  *o++ = ' ';
  memcpy(o, msg, len);
  o += len;
  *o++ = '\n';
  scratch.len = (size_t)(o - scratch.buf);
}

static int part_append(ml__clog_stream_t *s, const char *data, size_t len) {
  if (s->plen + len > s->pcap) {
    uint32_t cap = s->pcap ? s->pcap : 256;
    while (cap < s->plen + len) cap *= 2;
    char *nb = realloc(s->part, cap);
    if (!nb) return ML_ENOMEM;
    s->part = nb;
    s->pcap = cap;
  }
  memcpy(s->part + s->plen, data, len);
  s->plen += (uint32_t)len;
  return 0;
}

static void part_clear(ml__clog_stream_t *s) {
  /* Idle processes keep no line buffer. */
  free(s->part);
  s->part = NULL;
  s->plen = s->pcap = 0;
}

/* Emits the pending part plus data[0..len) as one line. As containerd does,
 * a full line drops its "\r\n" or "\n". */
static void emit(ml__clog_stream_t *s, const char *ts, char tag,
                 const char *data, size_t len) {
  if (s->plen > 0) {
    if (part_append(s, data, len) < 0) {
      part_clear(s);
      return;
    }
    data = s->part;
    len = s->plen;
  }
  if (tag == 'F' && len > 0 && data[len - 1] == '\r') len--;
  put_line(s->file, ts, s->name, tag, data, len);
  if (s->plen > 0) part_clear(s);
}

void ml__clog_feed(ml__clog_stream_t *s, const char *data, size_t len) {
  if (!s->file) return;
  char ts[40];
  ml_proc_format_time(ml_proc_now_ns(), ts);
  while (len > 0) {
    const char *nl = memchr(data, '\n', len);
    size_t seg = nl ? (size_t)(nl - data) : len;
    /* The line does not fit the 16 KiB buffer: cut a P part. */
    while (s->plen + seg >= ML_PROC_LOG_MAX_LINE) {
      size_t take = ML_PROC_LOG_MAX_LINE - s->plen;
      emit(s, ts, 'P', data, take);
      data += take;
      len -= take;
      seg -= take;
    }
    if (nl) {
      emit(s, ts, 'F', data, seg);
      data += seg + 1;
      len -= seg + 1;
    } else {
      if (part_append(s, data, seg) < 0) part_clear(s);
      len = 0;
    }
  }
  scratch_flush();
}

void ml__clog_finish(ml__clog_stream_t *s) {
  if (s->file && s->plen > 0) {
    char ts[40];
    ml_proc_format_time(ml_proc_now_ns(), ts);
    emit(s, ts, 'F', "", 0);
    scratch_flush();
  }
  part_clear(s);
}

/* }====== */

/* {====== parsing and formatting */

/* Parses RFC 3339 ("2026-11-29T10:04:05[.123456789](Z|+hh:mm)") to ns. */
static int parse_time(const char *s, size_t len, int64_t *out) {
  int Y, M, D, h, m, sec, n = 0;
  char buf[64];
  if (len >= sizeof buf || len < 20) return -1;
  memcpy(buf, s, len);
  buf[len] = 0;
  if (sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) !=
      6)
    return -1;
  const char *p = buf + n;
  int64_t frac = 0;
  if (*p == '.') {
    int digits = 0;
    for (p++; *p >= '0' && *p <= '9'; p++) {
      if (digits++ < 9) frac = frac * 10 + (*p - '0');
    }
    for (; digits < 9; digits++) frac *= 10;
  }
  int64_t off = 0;
  if (*p == '+' || *p == '-') {
    int oh, om;
    if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2) return -1;
    off = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
  } else if (*p != 'Z') {
    return -1;
  }
  struct tm tm = {.tm_year = Y - 1900,
                  .tm_mon = M - 1,
                  .tm_mday = D,
                  .tm_hour = h,
                  .tm_min = m,
                  .tm_sec = sec};
  *out = ((int64_t)timegm(&tm) - off) * 1000000000LL + frac;
  return 0;
}

/* RFC3339Nano as Go prints it: trailing zeros of the fraction dropped. */
static size_t format_nano(int64_t ns, char *buf) {
  ml_proc_format_time(ns, buf);
  size_t len = strlen(buf); /* ...SS.nnnnnnnnnZ */
  size_t end = len - 1;     /* at 'Z' */
  while (buf[end - 1] == '0') end--;
  if (buf[end - 1] == '.') end--;
  buf[end] = 'Z';
  buf[end + 1] = 0;
  return end + 1;
}

typedef struct {
  const char *ts;
  size_t tslen;
  bool partial;
  const char *msg;
  size_t msglen;
} cri_line_t;

/* Splits one CRI line (without its '\n'). */
static int parse_line(const char *l, size_t len, cri_line_t *out) {
  const char *end = l + len;
  const char *a = memchr(l, ' ', len);
  if (!a) return -1;
  const char *b = memchr(a + 1, ' ', (size_t)(end - a - 1));
  if (!b) return -1;
  const char *c = memchr(b + 1, ' ', (size_t)(end - b - 1));
  if (!c) return -1;
  out->ts = l;
  out->tslen = (size_t)(a - l);
  out->partial = b[1] == 'P';
  out->msg = c + 1;
  out->msglen = (size_t)(end - c - 1);
  return 0;
}

typedef struct {
  char *buf;
  size_t len, cap;
  bool oom;
} obuf_t;

static void ob_add(obuf_t *o, const char *data, size_t len) {
  if (o->oom || len == 0) return;
  if (o->len + len > o->cap) {
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + len) cap *= 2;
    char *nb = realloc(o->buf, cap);
    if (!nb) {
      o->oom = true;
      return;
    }
    o->buf = nb;
    o->cap = cap;
  }
  memcpy(o->buf + o->len, data, len);
  o->len += len;
}

/* The kubelet's log writer state (pkg/kubelet/kuberuntime/logs): a prefix
 * only at the start of a line; since compared per CRI line; output cut at
 * the byte limit. */
typedef struct {
  bool timestamps;
  int64_t since_ns;
  size_t remain; /* 0: unlimited */
  bool limited;  /* the limit was reached */
  bool mid_line; /* the previous CRI line was a P part */
} fmt_t;

/* Formats the complete lines of data[0..len) into `o`.
 * @return the bytes consumed (up to the last '\n') */
static size_t format_lines(fmt_t *st, const char *data, size_t len, obuf_t *o) {
  size_t pos = 0;
  while (pos < len && !st->limited) {
    const char *nl = memchr(data + pos, '\n', len - pos);
    if (!nl) break;
    size_t llen = (size_t)(nl - (data + pos));
    cri_line_t cl;
    const char *line = data + pos;
    pos += llen + 1;
    if (parse_line(line, llen, &cl) < 0) continue;
    bool new_line = !st->mid_line;
    st->mid_line = cl.partial;
    if (st->since_ns) {
      int64_t t;
      if (parse_time(cl.ts, cl.tslen, &t) == 0 && t < st->since_ns) continue;
    }
    char pre[48];
    size_t plen = 0;
    if (st->timestamps && new_line) {
      int64_t t;
      if (parse_time(cl.ts, cl.tslen, &t) == 0)
        plen = format_nano(t, pre);
      else {
        plen = cl.tslen < 40 ? cl.tslen : 40;
        memcpy(pre, cl.ts, plen);
      }
      pre[plen++] = ' ';
    }
    /* Assemble prefix + message + "\n" (full lines), then cut to limit. */
    size_t total = plen + cl.msglen + (cl.partial ? 0 : 1);
    size_t take = total;
    if (st->remain && take >= st->remain) {
      take = st->remain;
      st->limited = true;
    }
    size_t t1 = take < plen ? take : plen;
    ob_add(o, pre, t1);
    size_t t2 = take - t1 < cl.msglen ? take - t1 : cl.msglen;
    ob_add(o, cl.msg, t2);
    if (take - t1 - t2 > 0) ob_add(o, "\n", 1);
    if (st->remain) st->remain -= take;
  }
  return pos;
}

/* }====== */

/* {====== reader */

static int read_file(const char *path, obuf_t *o, uint64_t *size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  char buf[65536];
  uint64_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      int err = -errno;
      close(fd);
      return err;
    }
    if (r == 0) break;
    ob_add(o, buf, (size_t)r);
    n += (uint64_t)r;
  }
  close(fd);
  if (size) *size = n;
  return o->oom ? ML_ENOMEM : 0;
}

static size_t count_lines(const char *data, size_t len) {
  size_t n = 0;
  for (const char *p = data; (p = memchr(p, '\n', (size_t)(data + len - p)));
       p++)
    n++;
  return n;
}

int ml_proc_read_log(const char *path, const ml_proc_log_opts_t *o, char **out,
                     size_t *outlen, uint64_t *end_offset) {
  char name[PATH_MAX + 16];
  struct stat st;
  int nrot = 0; /* rotated files: path.1 .. path.nrot */
  while (nrot < MAX_ROTATED) {
    snprintf(name, sizeof name, "%s.%d", path, nrot + 1);
    if (stat(name, &st) < 0) break;
    nrot++;
  }
  bool have_live = stat(path, &st) == 0;
  if (!have_live && nrot == 0) return UV_ENOENT;
  /* Which files to read: all, or for a tail only the newest ones that hold
   * enough lines. Files are read newest first, then joined in order. */
  obuf_t *parts = calloc((size_t)nrot + 1, sizeof *parts);
  if (!parts) return ML_ENOMEM;
  int err = 0, first = nrot + 1;
  size_t lines = 0;
  uint64_t live_size = 0;
  for (int i = 0; i <= nrot; i++) { /* i = 0: the live file */
    if (o->tail >= 0 && lines >= (size_t)o->tail && i > 0) break;
    if (i == 0)
      snprintf(name, sizeof name, "%s", path);
    else
      snprintf(name, sizeof name, "%s.%d", path, i);
    int rc = read_file(name, &parts[i], i == 0 ? &live_size : NULL);
    if (rc == UV_ENOENT) rc = 0; /* rotated away meanwhile */
    if (rc < 0) {
      err = rc;
      goto done;
    }
    lines += count_lines(parts[i].buf, parts[i].len);
    first = i;
  }
  obuf_t all = {0};
  for (int i = first; i >= 0; i--) ob_add(&all, parts[i].buf, parts[i].len);
  size_t start = 0;
  if (o->tail >= 0 && lines > (size_t)o->tail) {
    size_t skip = lines - (size_t)o->tail;
    while (skip > 0) {
      const char *nl = memchr(all.buf + start, '\n', all.len - start);
      start = (size_t)(nl - all.buf) + 1;
      skip--;
    }
  }
  fmt_t fs = {.timestamps = o->timestamps,
              .since_ns = o->since_ns,
              .remain = o->limit_bytes};
  obuf_t res = {0};
  if (all.len > start)
    format_lines(&fs, all.buf + start, all.len - start, &res);
  free(all.buf);
  if (all.oom || res.oom) {
    free(res.buf);
    err = ML_ENOMEM;
    goto done;
  }
  if (!res.buf) res.buf = malloc(1);
  if (!res.buf) {
    err = ML_ENOMEM;
    goto done;
  }
  *out = res.buf;
  *outlen = res.len;
  if (end_offset) *end_offset = live_size;
done:
  for (int i = 0; i <= nrot; i++) free(parts[i].buf);
  free(parts);
  return err;
}

/* }====== */

/* {====== follower */

struct ml_proc_follow_s {
  uv_timer_t timer;
  ml_loop_t *loop;
  uint64_t id;
  char *path;
  int fd; /* -1 until the file exists */
  ino_t ino;
  uint64_t offset;
  obuf_t pending; /* an incomplete CRI line read so far */
  fmt_t fmt;
};

static void log_ev_destroy(ml_event_t *e) {
  free(((ml_proc_log_ev_t *)e)->data);
  free(e);
}

static void post_text(ml_proc_follow_t *f, int kind, obuf_t *text) {
  ml_proc_log_ev_t *ev = calloc(1, sizeof *ev);
  if (!ev) {
    free(text ? text->buf : NULL);
    return;
  }
  ev->head.ev.type = ML_EV_PROC_EXIT;
  ev->head.ev.id = f->id;
  ev->head.kind = kind;
  if (text) {
    ev->data = text->buf;
    ev->len = text->len;
  }
  ev->head.ev.destroy = log_ev_destroy;
  ml_loop_post(f->loop, &ev->head.ev);
}

/* Reads what was appended to the open file and formats complete lines. */
static void drain_fd(ml_proc_follow_t *f, obuf_t *text) {
  char buf[65536];
  for (;;) {
    ssize_t r = pread(f->fd, buf, sizeof buf, (off_t)f->offset);
    if (r <= 0) break;
    f->offset += (uint64_t)r;
    ob_add(&f->pending, buf, (size_t)r);
    size_t used = format_lines(&f->fmt, f->pending.buf, f->pending.len, text);
    memmove(f->pending.buf, f->pending.buf + used, f->pending.len - used);
    f->pending.len -= used;
  }
}

static void follow_tick(uv_timer_t *t) {
  ml_proc_follow_t *f = t->data;
  obuf_t text = {0};
  struct stat st;
  for (int round = 0; round < 2; round++) {
    if (f->fd >= 0) drain_fd(f, &text);
    if (stat(f->path, &st) < 0) break; /* between two renames: next tick */
    if (f->fd >= 0 && st.st_ino == f->ino) break;
    /* Rotated (or created): what was left in the old file was read above;
     * continue with the new file from its start. */
    if (f->fd >= 0) {
      close(f->fd);
      f->offset = 0;
      f->pending.len = 0;
    }
    f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) break;
    f->ino = st.st_ino;
  }
  if (text.len > 0)
    post_text(f, ML_PROC_EV_LOG, &text);
  else
    free(text.buf);
}

int ml_proc_follow(ml_loop_t *loop, uint64_t id, const char *path,
                   uint64_t offset, bool timestamps, uint64_t interval_ms,
                   ml_proc_follow_t **out) {
  ml_proc_follow_t *f = calloc(1, sizeof *f);
  if (!f || !(f->path = strdup(path))) {
    free(f);
    return ML_ENOMEM;
  }
  f->loop = loop;
  f->id = id;
  f->offset = offset;
  f->fmt.timestamps = timestamps;
  f->fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (f->fd >= 0 && fstat(f->fd, &st) == 0) f->ino = st.st_ino;
  uv_timer_init(loop->uv, &f->timer);
  f->timer.data = f;
  uv_timer_start(&f->timer, follow_tick, 0, interval_ms ? interval_ms : 100);
  *out = f;
  return 0;
}

static void follow_closed(uv_handle_t *h) {
  ml_proc_follow_t *f = h->data;
  post_text(f, ML_PROC_EV_LOG_END, NULL);
  if (f->fd >= 0) close(f->fd);
  free(f->pending.buf);
  free(f->path);
  free(f);
}

void ml_proc_follow_close(ml_proc_follow_t *f) {
  if (!uv_is_closing((uv_handle_t *)&f->timer)) {
    uv_close((uv_handle_t *)&f->timer, follow_closed);
    return;
  }
  /* Closed by someone else's uv_walk (runtime shutdown): our close callback
   * will never run, and no event can be delivered any more. */
  if (f->fd >= 0) close(f->fd);
  free(f->pending.buf);
  free(f->path);
  free(f);
}

/* }====== */
