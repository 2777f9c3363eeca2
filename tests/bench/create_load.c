/* Create load for the API benchmarks from a client that adds almost
 * nothing: N ConfigMap creates with C requests in flight over C keep-alive
 * connections, read with epoll, responses parsed with http_parser. The
 * same bodies go to moonlet (POST over its unix socket) and to etcd's v3
 * JSON gateway (POST /v3/kv/put over TCP), so the ratio compares the two
 * servers, not the client. api_load.lua's create modes do the same from
 * one Lua/libcurl process (CLIENT=lua in bench_api.sh). Not part of ctest.
 *   cc -O2 -o create_load create_load.c -lhttp_parser
 *   create_load moonlet SOCKET N C | create_load etcd HOST:PORT N C
 * Prints one JSON line: system, n, concurrency, seconds, per_second,
 * failures. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONC 256

typedef struct {
  int fd;
  http_parser parser;
  const char *out; /* request being written */
  size_t out_len, out_off;
  int done; /* the response to the request in hand is complete */
} conn_t;

static char **requests;
static size_t *request_len;
static int n, next_req, completed, failures;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static int dial(const char *system, const char *target) {
  int fd;
  if (strcmp(system, "moonlet") == 0) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", target);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
  } else {
    char host[256];
    snprintf(host, sizeof host, "%s", target);
    char *colon = strrchr(host, ':');
    if (!colon) die("HOST:PORT");
    *colon = '\0';
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) die("inet_pton");
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64(const char *s) {
  size_t len = strlen(s), o = 0;
  char *out = malloc(4 * ((len + 2) / 3) + 1);
  for (size_t i = 0; i < len; i += 3) {
    unsigned v = (unsigned char)s[i] << 16;
    if (i + 1 < len) v |= (unsigned char)s[i + 1] << 8;
    if (i + 2 < len) v |= (unsigned char)s[i + 2];
    out[o++] = B64[(v >> 18) & 63];
    out[o++] = B64[(v >> 12) & 63];
    out[o++] = i + 1 < len ? B64[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < len ? B64[v & 63] : '=';
  }
  out[o] = '\0';
  return out;
}

/* The i-th request, whole (headers and body), as api_load.lua makes it. */
static void make_request(const char *system, int i) {
  char cm[512], body[1536];
  snprintf(cm, sizeof cm,
           "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"bench-%d\","
           "\"namespace\":\"default\",\"labels\":{\"bench\":\"yes\",\"shard\":\"%d\"}},"
           "\"data\":{\"key\":\"value-%d\",\"other\":\"some configuration text\"}}",
           i, i % 10, i);
  const char *path;
  if (strcmp(system, "moonlet") == 0) {
    snprintf(body, sizeof body, "%s", cm);
    path = "/api/v1/namespaces/default/configmaps";
  } else {
    char key[128];
    snprintf(key, sizeof key, "/registry/configmaps/default/bench-%d", i);
    char *k = base64(key), *v = base64(cm);
    snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
    free(k);
    free(v);
    path = "/v3/kv/put";
  }
  char *req;
  int len = asprintf(&req,
                     "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     "Accept: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     path, strlen(body), body);
  if (len < 0) die("asprintf");
  requests[i] = req;
  request_len[i] = (size_t)len;
}

static int on_complete(http_parser *p) {
  conn_t *c = p->data;
  if (p->status_code >= 300 && ++failures < 3)
    fprintf(stderr, "request failed: HTTP %u\n", p->status_code);
  c->done = 1;
  return 0;
}

static http_parser_settings settings = {.on_message_complete = on_complete};

static void send_next(conn_t *c) {
  if (next_req >= n) {
    c->out = NULL;
    return;
  }
  int i = next_req++;
  c->out = requests[i];
  c->out_len = request_len[i];
  c->out_off = 0;
  c->done = 0;
  while (c->out_off < c->out_len) {
    ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (w < 0) die("write");
    c->out_off += (size_t)w;
  }
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: create_load moonlet SOCKET N C | create_load etcd HOST:PORT N C\n");
    return 2;
  }
  const char *system = argv[1], *target = argv[2];
  n = atoi(argv[3]);
  int conc = atoi(argv[4]);
  if (n <= 0 || conc <= 0 || conc > MAX_CONC) return 2;
  requests = calloc((size_t)n + 1, sizeof *requests);
  request_len = calloc((size_t)n + 1, sizeof *request_len);
  for (int i = 1; i <= n; i++) make_request(system, i);
  requests++; /* request k (0-based) is object k + 1 */
  request_len++;

  int ep = epoll_create1(EPOLL_CLOEXEC);
  static conn_t conns[MAX_CONC];
  for (int i = 0; i < conc; i++) {
    conn_t *c = &conns[i];
    c->fd = dial(system, target);
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
  }
  double t0 = now_s();
  for (int i = 0; i < conc; i++) send_next(&conns[i]);
  char buf[65536];
  struct epoll_event evs[MAX_CONC];
  while (completed < n) {
    int k = epoll_wait(ep, evs, MAX_CONC, 10000);
    if (k <= 0) die("epoll_wait (no answer in 10 s)");
    for (int e = 0; e < k; e++) {
      conn_t *c = evs[e].data.ptr;
      ssize_t r = read(c->fd, buf, sizeof buf);
      if (r <= 0) die("read (server closed the connection)");
      size_t used = http_parser_execute(&c->parser, &settings, buf, (size_t)r);
      if (c->parser.http_errno != HPE_OK || used != (size_t)r) {
        fprintf(stderr, "bad response: %s\n", http_errno_name(HTTP_PARSER_ERRNO(&c->parser)));
        return 1;
      }
      if (c->done) {
        completed++;
        send_next(c);
      }
    }
  }
  double secs = now_s() - t0;
  printf("{\"system\":\"%s\",\"n\":%d,\"concurrency\":%d,\"seconds\":%.6f,\"per_second\":%.1f,"
         "\"failures\":%d}\n",
         system, n, conc, secs, n / secs, failures);
  for (int i = 0; i < conc; i++) close(conns[i].fd);
  for (int i = 0; i < n; i++) free(requests[i]);
  free(requests - 1);
  free(request_len - 1);
  close(ep);
  return failures > 0;
}
