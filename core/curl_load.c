/* Loads libcurl at the first HTTP client use (see curl_load.h): dlopen of
 * the soname the headers were built against, then one dlsym per function of
 * the table. Single-threaded like the rest of the core: the loop thread is
 * the only caller. */
#include "curl_load.h"

#include <stdio.h>

#include "err.h"
#include "lazy_lib.h"
#include "log.h"

/* The soname of libcurl 7.16 and later (the ABI the headers describe). */
#define CURL_SONAME "libcurl.so.4"

ml_curl_api_t ml__curl;

static int state;    /* 0: not tried; 1: loaded; < 0: the failure */
static char why[512]; /* what went wrong, for callers and the log */

/* Each entry: the symbol and where its address goes in the table. */
#define CURL_SYMBOLS(XX)                                                \
  XX(global_init) XX(free) XX(easy_init) XX(easy_cleanup) XX(easy_reset) \
  XX(easy_setopt) XX(easy_getinfo) XX(easy_strerror) XX(multi_init)     \
  XX(multi_cleanup) XX(multi_setopt) XX(multi_add_handle)               \
  XX(multi_remove_handle) XX(multi_assign) XX(multi_socket_action)      \
  XX(multi_info_read) XX(multi_strerror) XX(slist_append)               \
  XX(slist_free_all) XX(url) XX(url_cleanup) XX(url_set) XX(url_get)

static int fail(int err) {
  ML_ERROR("HTTP client unavailable: %s", why);
  state = err;
  return err;
}

int ml_curl_load(void) {
  if (state) return state > 0 ? 0 : state;
  void *lib = ml_lazy_open(CURL_SONAME, why, sizeof why);
  if (!lib) return fail(ML_ENOTFOUND);
#define XX(name)                                                        \
  if (ml_lazy_sym(lib, CURL_SONAME, "curl_", #name, &ml__curl.name,     \
                  sizeof ml__curl.name, why, sizeof why) != 0)          \
    return fail(ML_ENOTFOUND);
  CURL_SYMBOLS(XX)
#undef XX
  if (ml__curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(why, sizeof why, "%s: curl_global_init failed", CURL_SONAME);
    return fail(ML_EIO);
  }
  state = 1;
  why[0] = '\0';
  return 0;
}

const char *ml_curl_load_error(void) { return state < 0 ? why : NULL; }

int ml_curl_loaded(void) { return state > 0; }
