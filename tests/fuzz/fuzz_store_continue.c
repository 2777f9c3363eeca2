/* libFuzzer target for the store's list continue tokens (base64url of a
 * small JSON document, decoded in core/store.c). Any input must either be
 * refused with ML_EBADREQ or give a page; a page's own token must then be
 * accepted again, and the pages together must never repeat an item. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "store.h"

static ml_store_t *store;

static void setup(void) {
  ml_store_options_t o = {.backend = "memory"};
  char *err = NULL;
  if (ml_store_open(&o, &store, &err) != 0) abort();
  const char *names[] = {"a", "b", "c", "d", "e", "f"};
  for (int i = 0; i < 6; i++) {
    json_t *obj = json_pack("{s{ss}}", "metadata", "name", names[i]);
    ml_store_result_t r;
    if (ml_store_create(store, "configmaps", i % 2 ? "x" : "y", obj, 0, &r))
      abort();
    ml_store_result_clear(&r);
    json_decref(obj);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!store) setup();
  char *tok = malloc(size + 1);
  memcpy(tok, data, size);
  tok[size] = '\0';
  ml_store_list_opts_t o = {.limit = 2, .continue_token = tok};
  ml_store_list_t l;
  int rc = ml_store_list(store, "configmaps", &o, &l);
  if (rc != 0 && rc != ML_EBADREQ) abort();
  size_t seen = 0;
  while (rc == 0) {
    seen += l.n;
    if (seen > 6) abort(); /* a token must never loop back */
    char *next = l.continue_token ? strdup(l.continue_token) : NULL;
    ml_store_list_clear(&l);
    if (!next) break;
    o.continue_token = next;
    rc = ml_store_list(store, "configmaps", &o, &l);
    free(next);
    if (rc != 0) abort(); /* our own tokens are always valid */
  }
  free(tok);
  return 0;
}
