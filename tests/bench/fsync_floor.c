/* The disk's floor for durable writes one at a time: N x (pwrite of one
 * small record + fdatasync) into a preallocated file in DIR, in place, as
 * SQLite writes a reused WAL. A server that answers each write only after
 * it is on disk, one request in flight, cannot beat this rate on the same
 * disk; bench_api.sh prints it beside moonlet's 1-in-flight figure.
 *   cc -O2 -o fsync_floor fsync_floor.c
 *   fsync_floor DIR [N]
 * Prints one JSON line: n, seconds, per_second. Not part of ctest. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RECORD 600     /* about one ConfigMap's stored text */
#define FILE_SIZE (4 << 20)

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: fsync_floor DIR [N]\n");
    return 2;
  }
  int n = argc > 2 ? atoi(argv[2]) : 2000;
  char path[4096];
  snprintf(path, sizeof path, "%s/fsync_floor.dat", argv[1]);
  int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
  if (fd < 0) {
    perror(path);
    return 1;
  }
  static char buf[4096];
  memset(buf, 'x', sizeof buf);
  /* Preallocated and synced first: the timed writes change no file size,
   * so fdatasync has only data to flush (as for a reused WAL). */
  for (int i = 0; i < FILE_SIZE / (int)sizeof buf; i++)
    if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) return 1;
  if (fsync(fd) != 0) return 1;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < n; i++) {
    off_t at = (off_t)(i % (FILE_SIZE / RECORD)) * RECORD;
    if (pwrite(fd, buf, RECORD, at) != RECORD || fdatasync(fd) != 0) {
      perror("write");
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  close(fd);
  unlink(path);
  double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
  printf("{\"n\":%d,\"seconds\":%f,\"per_second\":%.1f}\n", n, s, n / s);
  return 0;
}
