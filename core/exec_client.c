/* moonlet exec's client (exec_client.h): poll() over our stdin and the
 * socket; frames from the server are decoded with core/ws_frame.h (they
 * come unmasked), ours are masked as RFC 6455 asks of clients. */
#include "exec_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>
#include <uv.h>

#include "err.h"
#include "ws_frame.h"

#define BUF_SIZE 65536

typedef struct {
  int fd;
  uint8_t *in; /* bytes from the server not decoded yet */
  size_t in_len, in_cap;
  ml_exec_client_result_t *res;
  bool closed; /* the server's close frame came */
  int werr;    /* a write to the socket failed */
} client_t;

static volatile sig_atomic_t winch = 1; /* the size goes out at the start */

static void on_winch(int sig) {
  (void)sig;
  winch = 1;
}

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -errno;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* One masked client frame: opcode, then `pre` (a channel byte) and data. */
static int send_frame(client_t *c, int opcode, const uint8_t *pre,
                      size_t plen, const void *data, size_t len) {
  uint8_t *f = malloc(ML_WS_MAX_HEADER + plen + len);
  if (!f) return ML_ENOMEM;
  size_t h = ml_ws_header(f, opcode, true, plen + len);
  f[1] |= 0x80;
  uint8_t mask[4];
  if (getrandom(mask, 4, 0) != 4) memset(mask, 0x5a, 4);
  memcpy(f + h, mask, 4);
  h += 4;
  if (plen) memcpy(f + h, pre, plen);
  if (len) memcpy(f + h + plen, data, len);
  for (size_t i = 0; i < plen + len; i++) f[h + i] ^= mask[i & 3];
  int rc = write_all(c->fd, f, h + plen + len);
  free(f);
  if (rc < 0) c->werr = rc;
  return rc;
}

static void on_frame(void *ud, int opcode, const uint8_t *data, size_t len) {
  client_t *c = ud;
  if (opcode == ML_WS_PING) {
    send_frame(c, ML_WS_PONG, NULL, 0, data, len);
    return;
  }
  if (opcode == ML_WS_CLOSE) {
    send_frame(c, ML_WS_CLOSE, NULL, 0, data, len >= 2 ? 2 : 0);
    c->closed = true;
    return;
  }
  if (opcode != ML_WS_BINARY || len == 0) return;
  if (data[0] == 1) write_all(1, data + 1, len - 1);
  else if (data[0] == 2) write_all(2, data + 1, len - 1);
  else if (data[0] == 3) {
    ml_exec_client_result_t *r = c->res;
    char *nb = realloc(r->body, r->body_len + len - 1 + 1);
    if (!nb) return;
    memcpy(nb + r->body_len, data + 1, len - 1);
    r->body = nb;
    r->body_len += len - 1;
    nb[r->body_len] = '\0';
  }
}

static int connect_unix(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) return UV_ENAMETOOLONG;
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  return fd;
}

/* Reads the answer's head into c->in; what follows it stays there. */
static int read_head(client_t *c, size_t *head_len) {
  for (;;) {
    if (c->in_len) {
      char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
      if (end) {
        *head_len = (size_t)(end - (char *)c->in) + 4;
        return 0;
      }
    }
    if (c->in_cap - c->in_len < 4096) {
      if (c->in_cap > (1u << 20)) return ML_ETOOLARGE;
      size_t cap = c->in_cap ? c->in_cap * 2 : BUF_SIZE;
      uint8_t *nb = realloc(c->in, cap);
      if (!nb) return ML_ENOMEM;
      c->in = nb;
      c->in_cap = cap;
    }
    ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? -errno : UV_EOF;
    c->in_len += (size_t)n;
  }
}

/* A refusal: its body (Content-Length, or up to EOF). */
static void read_body(client_t *c, size_t head_len) {
  ml_exec_client_result_t *r = c->res;
  for (;;) {
    if (c->in_cap - c->in_len < 4096) {
      if (c->in_cap > (8u << 20)) break;
      uint8_t *nb = realloc(c->in, c->in_cap * 2);
      if (!nb) break;
      c->in = nb;
      c->in_cap *= 2;
    }
    const char *cl = NULL;
    for (size_t i = 0; i + 16 < head_len; i++)
      if (strncasecmp((char *)c->in + i, "\ncontent-length:", 16) == 0) {
        cl = (char *)c->in + i + 16;
        break;
      }
    if (cl && c->in_len - head_len >= strtoul(cl, NULL, 10)) break;
    ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    c->in_len += (size_t)n;
  }
  r->body_len = c->in_len - head_len;
  r->body = malloc(r->body_len + 1);
  if (!r->body) {
    r->body_len = 0;
    return;
  }
  memcpy(r->body, c->in + head_len, r->body_len);
  r->body[r->body_len] = '\0';
}

static void send_size(client_t *c) {
  struct winsize ws;
  if (ioctl(1, TIOCGWINSZ, &ws) < 0 && ioctl(0, TIOCGWINSZ, &ws) < 0) return;
  char text[64];
  int n = snprintf(text, sizeof text, "{\"Width\":%u,\"Height\":%u}",
                   ws.ws_col, ws.ws_row);
  uint8_t ch = 4;
  send_frame(c, ML_WS_BINARY, &ch, 1, text, (size_t)n);
}

/* Decodes what was read; @return 0 or ML_EINVALID (a bad frame) */
static int decode(client_t *c, ml_ws_decoder_t *dec) {
  long used = ml_ws_decode(dec, c->in, c->in_len, on_frame, c);
  if (used < 0) return ML_EINVALID;
  memmove(c->in, c->in + used, c->in_len - (size_t)used);
  c->in_len -= (size_t)used;
  return 0;
}

/* The session proper, after the 101. */
static int pump(client_t *c, const ml_exec_client_opts_t *o) {
  ml_ws_decoder_t dec = {.unmasked_ok = true, .max_message = 16u << 20};
  bool in_open = o->in;
  uint8_t buf[BUF_SIZE];
  int rc = decode(c, &dec); /* frames that came with the 101 */
  while (!rc && !c->closed && !c->werr) {
    if (o->tty && winch) {
      winch = 0;
      send_size(c);
    }
    struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN},
                          {.fd = in_open ? 0 : -1, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      rc = -errno;
      break;
    }
    if (p[1].revents) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      uint8_t ch = 0;
      if (n > 0) {
        send_frame(c, ML_WS_BINARY, &ch, 1, buf, (size_t)n);
      } else {
        uint8_t close_stdin[2] = {255, 0};
        send_frame(c, ML_WS_BINARY, close_stdin, 2, NULL, 0);
        in_open = false;
      }
    }
    if (p[0].revents) {
      if (c->in_cap - c->in_len < BUF_SIZE) {
        size_t cap = c->in_len + BUF_SIZE;
        uint8_t *nb = realloc(c->in, cap);
        if (!nb) {
          rc = ML_ENOMEM;
          break;
        }
        c->in = nb;
        c->in_cap = cap;
      }
      ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break; /* the server went away: its Status is all */
      c->in_len += (size_t)n;
      rc = decode(c, &dec);
    }
  }
  ml_ws_decoder_free(&dec);
  return rc ? rc : c->werr;
}

int ml_exec_client_run(const ml_exec_client_opts_t *o,
                       ml_exec_client_result_t *res, char *err,
                       size_t errlen) {
  *res = (ml_exec_client_result_t){0};
  client_t c = {.res = res};
  c.fd = connect_unix(o->socket_path);
  if (c.fd < 0) {
    snprintf(err, errlen, "connect %s: %s", o->socket_path, ml_strerror(c.fd));
    return c.fd;
  }
  uint8_t nonce[16];
  if (getrandom(nonce, sizeof nonce, 0) != sizeof nonce)
    memset(nonce, 0x42, sizeof nonce);
  static const char b64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char key[25];
  for (int i = 0, k = 0; i < 16; i += 3) {
    uint32_t v = (uint32_t)nonce[i] << 16;
    if (i + 1 < 16) v |= (uint32_t)nonce[i + 1] << 8;
    if (i + 2 < 16) v |= nonce[i + 2];
    key[k++] = b64[v >> 18 & 63];
    key[k++] = b64[v >> 12 & 63];
    key[k++] = i + 1 < 16 ? b64[v >> 6 & 63] : '=';
    key[k++] = i + 2 < 16 ? b64[v & 63] : '=';
  }
  key[24] = '\0';
  size_t need = strlen(o->target) + (o->token ? strlen(o->token) : 0) + 512;
  char *req = malloc(need);
  if (!req) {
    close(c.fd);
    return ML_ENOMEM;
  }
  int n = snprintf(req, need,
                   "GET %s HTTP/1.1\r\nHost: localhost\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n"
                   "User-Agent: moonlet-exec\r\n%s%s%s\r\n",
                   o->target, key, o->token ? "Authorization: Bearer " : "",
                   o->token ? o->token : "", o->token ? "\r\n" : "");
  int rc = write_all(c.fd, req, (size_t)n);
  free(req);
  size_t head_len = 0;
  if (rc == 0) rc = read_head(&c, &head_len);
  if (rc < 0) {
    snprintf(err, errlen, "exec request: %s", ml_strerror(rc));
    free(c.in);
    close(c.fd);
    return rc;
  }
  res->http_status = c.in_len >= 12 ? atoi((char *)c.in + 9) : 0;
  if (res->http_status != 101) {
    read_body(&c, head_len);
    free(c.in);
    close(c.fd);
    return 0;
  }
  memmove(c.in, c.in + head_len, c.in_len - head_len);
  c.in_len -= head_len;
  struct termios saved;
  bool raw = o->tty && isatty(0) && tcgetattr(0, &saved) == 0;
  if (raw) {
    struct termios t = saved;
    cfmakeraw(&t);
    tcsetattr(0, TCSANOW, &t);
  }
  struct sigaction sa = {.sa_handler = on_winch}, old_winch, old_pipe;
  sigaction(SIGWINCH, &sa, &old_winch);
  struct sigaction ign = {.sa_handler = SIG_IGN};
  sigaction(SIGPIPE, &ign, &old_pipe);
  winch = 1;
  rc = pump(&c, o);
  if (raw) tcsetattr(0, TCSANOW, &saved);
  sigaction(SIGWINCH, &old_winch, NULL);
  sigaction(SIGPIPE, &old_pipe, NULL);
  free(c.in);
  close(c.fd);
  if (rc < 0) snprintf(err, errlen, "exec session: %s", ml_strerror(rc));
  return rc < 0 && !res->body ? rc : 0;
}
