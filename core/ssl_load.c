/* Loads libssl when TLS is first needed (ssl_load.h). dlsym through the
 * libssl handle also finds libcrypto's functions: it searches the library's
 * dependencies too. The loop thread is the only caller. */
#include "ssl_load.h"

#include "err.h"
#include "lazy_lib.h"

/* OpenSSL 3's soname (the ABI the headers describe). */
#define SSL_SONAME "libssl.so.3"

ml_ssl_api_t ml__ssl;

static int state;     /* 0: not tried; 1: loaded; < 0: the failure */
static char why[512]; /* what went wrong */

int ml_ssl_load(const char **reason) {
  if (!state) {
    void *lib = ml_lazy_open(SSL_SONAME, why, sizeof why);
    state = lib ? 1 : ML_ENOTFOUND;
#define XX(name)                                                        \
  if (state > 0 && ml_lazy_sym(lib, SSL_SONAME, "", #name, &ml__ssl.name, \
                               sizeof ml__ssl.name, why, sizeof why) != 0) \
    state = ML_ENOTFOUND;
    ML_SSL_FUNCTIONS(XX)
#undef XX
  }
  if (reason) *reason = state < 0 ? why : NULL;
  return state > 0 ? 0 : state;
}
