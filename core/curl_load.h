/* libcurl, loaded on first use: the functions core/http_client.c calls, in a
 * table resolved with dlopen("libcurl.so.4") + dlsym. Linking libcurl made
 * every process of this binary (each CLI call, each `moonlet lua` image)
 * load and relocate ~30 libraries it pulls in, most of its start-up time. */
#ifndef ML_CURL_LOAD_H
#define ML_CURL_LOAD_H

#include <curl/curl.h>

/* The pointer types come from curl.h's own declarations, so a call through
 * the table is checked against the same prototypes as a direct call. */
typedef struct {
  __typeof__(curl_global_init) *global_init;
  __typeof__(curl_free) *free;
  __typeof__(curl_easy_init) *easy_init;
  __typeof__(curl_easy_cleanup) *easy_cleanup;
  __typeof__(curl_easy_reset) *easy_reset;
  __typeof__(curl_easy_setopt) *easy_setopt;
  __typeof__(curl_easy_getinfo) *easy_getinfo;
  __typeof__(curl_easy_strerror) *easy_strerror;
  __typeof__(curl_multi_init) *multi_init;
  __typeof__(curl_multi_cleanup) *multi_cleanup;
  __typeof__(curl_multi_setopt) *multi_setopt;
  __typeof__(curl_multi_add_handle) *multi_add_handle;
  __typeof__(curl_multi_remove_handle) *multi_remove_handle;
  __typeof__(curl_multi_assign) *multi_assign;
  __typeof__(curl_multi_socket_action) *multi_socket_action;
  __typeof__(curl_multi_info_read) *multi_info_read;
  __typeof__(curl_multi_strerror) *multi_strerror;
  __typeof__(curl_slist_append) *slist_append;
  __typeof__(curl_slist_free_all) *slist_free_all;
  __typeof__(curl_url) *url;
  __typeof__(curl_url_cleanup) *url_cleanup;
  __typeof__(curl_url_set) *url_set;
  __typeof__(curl_url_get) *url_get;
} ml_curl_api_t;

/* The table; valid once ml_curl_load() returned 0. */
extern ml_curl_api_t ml__curl;

/**
 * Loads libcurl and runs curl_global_init, once per process; later calls
 * return the first outcome at once. A missing library or symbol is logged
 * once (ML_ERROR) with the loader's reason.
 * @return 0, or ML_ENOTFOUND (no library or a symbol missing) / ML_EIO
 *         (curl_global_init failed)
 */
int ml_curl_load(void);

/** @return why the last ml_curl_load() failed, or NULL if it did not. */
const char *ml_curl_load_error(void);

/** @return true once libcurl is loaded (tests). */
int ml_curl_loaded(void);

#endif
