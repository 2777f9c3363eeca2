/* lazy_lib.h: dlopen and dlsym with the reasons spelled out for the log. */
#include "lazy_lib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

void *ml_lazy_open(const char *soname, char *why, size_t whylen) {
  void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *e = dlerror();
    snprintf(why, whylen, "cannot load %s (%s)", soname, e ? e : "unknown reason");
  }
  return lib;
}

int ml_lazy_sym(void *lib, const char *soname, const char *prefix,
                const char *name, void *slot, size_t size, char *why,
                size_t whylen) {
  char full[128];
  snprintf(full, sizeof full, "%s%s", prefix, name);
  void *sym = dlsym(lib, full);
  if (!sym || size != sizeof sym) {
    snprintf(why, whylen, "%s has no %s (too old?)", soname, full);
    return ML_ENOTFOUND;
  }
  /* A function pointer is stored through its bytes: ISO C has no
   * conversion from void * to it, POSIX guarantees the representation. */
  memcpy(slot, &sym, size);
  return 0;
}
