/* klog-shaped stderr logging; the level is set once by the server flags. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "err.h"

static ml_log_level_t current = ML_LOG_INFO;

void ml_log_set_level(ml_log_level_t level) { current = level; }
ml_log_level_t ml_log_get_level(void) { return current; }

int ml_log_parse_level(const char *name, ml_log_level_t *out) {
  static const char *names[] = {"debug", "info", "warn", "error"};
  for (int i = 0; i < 4; i++) {
    if (strcmp(name, names[i]) == 0) {
      *out = (ml_log_level_t)i;
      return 0;
    }
  }
  return ML_EINVALID;
}

void ml_log(ml_log_level_t level, const char *fmt, ...) {
  if (level < current) return;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  localtime_r(&tv.tv_sec, &tm);
  char line[4096];
  int n = snprintf(line, sizeof line, "%c%02d%02d %02d:%02d:%02d.%06ld moonlet] ",
                   "DIWE"[level], tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s\n", line);
}
