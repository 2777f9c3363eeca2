/* Private helpers shared by the selector units (selector.c,
 * selector_text.c, field_selector.c): a growable string, a string vector
 * and allocation that aborts on exhaustion. Not part of any public API. */
#ifndef ML_SELECTOR_UTIL_H
#define ML_SELECTOR_UTIL_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
  char *p;
  size_t n, cap;
} ml__sb_t;

typedef struct {
  char **v;
  size_t n, cap;
} ml__strv_t;

/* Selectors are small and built on the request path; running out of memory
 * there leaves nothing sensible to report, so these abort (as Redis'
 * zmalloc does) instead of threading ENOMEM through every parser step. */
void *ml__xmalloc(size_t n);
void *ml__xrealloc(void *p, size_t n);
char *ml__xstrdup(const char *s);
char *ml__xstrndup(const char *s, size_t n);

void ml__sb_putn(ml__sb_t *b, const char *s, size_t n);
void ml__sb_puts(ml__sb_t *b, const char *s);
void ml__sb_putc(ml__sb_t *b, char c);
void ml__sb_printf(ml__sb_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** @return the built string (never NULL, "" when empty); resets `b`. */
char *ml__sb_take(ml__sb_t *b);

/** Appends an owned string. */
void ml__strv_push(ml__strv_t *v, char *owned);
void ml__strv_free(ml__strv_t *v);

#endif
