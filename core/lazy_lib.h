/* lazy_lib: opening a shared library at its first use and filling a table
 * of its functions (dlopen + dlsym), for libraries most processes of this
 * binary never need (libcurl, SQLite): loading and relocating them at every
 * start was most of a CLI call's or a `moonlet lua` image's start-up. */
#ifndef ML_LAZY_LIB_H
#define ML_LAZY_LIB_H

#include <stddef.h>

/** Opens `soname` (RTLD_NOW: a broken library fails here, not mid-call;
 * RTLD_LOCAL: its symbols serve the table only). The handle is kept for the
 * life of the process.
 * @param why receives the loader's reason on failure
 * @return the handle, or NULL */
void *ml_lazy_open(const char *soname, char *why, size_t whylen);

/** Looks up `prefix``name` in `lib` and stores the address in the
 * function-pointer slot `slot` (of `size` bytes).
 * @return 0, or ML_ENOTFOUND with the reason in `why` */
int ml_lazy_sym(void *lib, const char *soname, const char *prefix,
                const char *name, void *slot, size_t size, char *why,
                size_t whylen);

#endif
