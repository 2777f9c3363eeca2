/* Minimal TAP output for the C unit tests: ok(cond, fmt, ...) and
 * OK(cond, fmt, ...) (the latter names file:line on failure) print one
 * numbered line, IS_INT/IS_STR show got/want on failure; a test's main ends
 * with `return tap_done();`. One translation unit per test, so the
 * counters live here; they are atomic because some tests assert from a
 * client thread. */
#ifndef ML_TAP_H
#define ML_TAP_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_int ntests, nfailed;

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

#define OK(cond, ...)                                                          \
  do {                                                                         \
    int n_ = atomic_fetch_add(&ntests, 1) + 1;                                 \
    if (cond) {                                                                \
      printf("ok %d - ", n_);                                                  \
    } else {                                                                   \
      atomic_fetch_add(&nfailed, 1);                                           \
      printf("not ok %d - (%s:%d) ", n_, __FILE__, __LINE__);                  \
    }                                                                          \
    printf(__VA_ARGS__);                                                       \
    printf("\n");                                                              \
    fflush(stdout);                                                            \
  } while (0)

/** Prints the plan; @return the exit status (1 if anything failed). */
static inline int tap_done(void) {
  printf("1..%d\n", atomic_load(&ntests));
  return atomic_load(&nfailed) ? 1 : 0;
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
