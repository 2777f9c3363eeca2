/* The floor for a durable API write with one request in flight: the least
 * any server can do between reading a create and answering it, on this
 * disk and this kernel. It serves HTTP/1.1 keep-alive on a unix socket,
 * one connection at a time; for each request it reads the head and the
 * Content-Length body, writes the body in place into a preallocated file
 * (as a reused SQLite WAL is written), fdatasyncs it and answers a fixed
 * 201. No parsing of the object, no index, no second copy. Driven by the
 * same client as moonlet (create_load.c), its rate is what moonlet's
 * one-in-flight figure should be read against: the disk's floor
 * (fsync_floor.c) plus the round trip over the socket.
 *   cc -O2 -o durable_floor durable_floor.c
 *   durable_floor SOCKET DIR   (serves until killed)
 * Not part of ctest. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define FILE_SIZE (4 << 20)
#define BUF_SIZE (1 << 16)

static const char answer[] =
    "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
    "Content-Length: 2\r\n\r\n{}";

/* Bytes of the request that starts at buf[0], or 0 while it is not all
 * there (head up to the blank line, then Content-Length bytes). */
static size_t request_len(const char *buf, size_t have) {
  const char *end = memmem(buf, have, "\r\n\r\n", 4);
  if (!end) return 0;
  size_t head = (size_t)(end - buf) + 4, body = 0;
  for (const char *p = buf; p && p < end;) {
    if (!strncasecmp(p, "content-length:", 15)) body = strtoul(p + 15, NULL, 10);
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    p = nl ? nl + 1 : NULL;
  }
  return have >= head + body ? head + body : 0;
}

static void serve(int conn, int fd) {
  static char buf[BUF_SIZE];
  size_t have = 0;
  off_t at = 0;
  for (;;) {
    size_t n;
    while ((n = request_len(buf, have)) == 0) {
      if (have == sizeof buf) return; /* too large for a floor */
      ssize_t r = read(conn, buf + have, sizeof buf - have);
      if (r <= 0) return;
      have += (size_t)r;
    }
    if (at + (off_t)n > FILE_SIZE) at = 0;
    if (pwrite(fd, buf, n, at) != (ssize_t)n || fdatasync(fd) != 0) {
      perror("durable write");
      exit(1);
    }
    at += (off_t)n;
    if (write(conn, answer, sizeof answer - 1) != (ssize_t)(sizeof answer - 1))
      return;
    memmove(buf, buf + n, have - n);
    have -= n;
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: durable_floor SOCKET DIR\n");
    return 2;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/durable_floor.dat", argv[2]);
  int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
  if (fd < 0) {
    perror(path);
    return 1;
  }
  /* Preallocated and synced first, so each fdatasync has only data to
   * flush, as for a reused WAL. */
  static char zero[BUF_SIZE];
  for (int i = 0; i < FILE_SIZE / BUF_SIZE; i++)
    if (write(fd, zero, sizeof zero) != (ssize_t)sizeof zero) return 1;
  if (fsync(fd) != 0) return 1;

  int lst = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (lst < 0 || strlen(argv[1]) >= sizeof sa.sun_path) return 1;
  strcpy(sa.sun_path, argv[1]);
  unlink(argv[1]);
  if (bind(lst, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lst, 16) < 0) {
    perror(argv[1]);
    return 1;
  }
  for (;;) {
    int conn = accept(lst, NULL, NULL);
    if (conn < 0) continue;
    serve(conn, fd);
    close(conn);
  }
}
