/* Minimal TAP output for the C unit tests: ok(cond, fmt, ...) prints one
 * numbered line, IS_INT/IS_STR show got/want on failure; a test's main
 * ends with `printf("1..%d\n", ntests); return nfailed ? 1 : 0;`. One
 * translation unit per test, so the counters live here. */
#ifndef ML_TAP_H
#define ML_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int ntests, nfailed;

static inline void ok(int cond, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void ok(int cond, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%sok %d - ", cond ? "" : "not ", ++ntests);
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  if (!cond) nfailed++;
}

#define IS_INT(a, b, name)                                                     \
  do {                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                        \
    ok(a_ == b_, "%s (got %lld, want %lld)", name, a_, b_);                    \
  } while (0)

#define IS_STR(a, b, name)                                                     \
  do {                                                                         \
    const char *a_ = (a), *b_ = (b);                                           \
    ok(a_ && b_ && strcmp(a_, b_) == 0, "%s (got '%s', want '%s')", name,      \
       a_ ? a_ : "(null)", b_);                                                \
  } while (0)

#endif
