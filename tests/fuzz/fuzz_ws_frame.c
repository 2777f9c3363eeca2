/* libFuzzer target for the WebSocket frame decoder (core/ws_frame.c). The
 * input (after a byte choosing the limit and masking rule and up to 7 cut
 * points) is decoded twice: in one buffer, and arriving in pieces as a
 * connection would hand it over (unconsumed bytes carried to the next
 * read). Both runs must deliver the same messages and end the same way;
 * every delivered byte is read so ASan sees a view past its buffer. Each
 * message is also re-encoded with a server header, and UTF-8 checked. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_frame.h"

typedef struct {
  uint64_t digest;
  int n;
} run_t;

static void on_msg(void *ud, int opcode, const uint8_t *data, size_t len) {
  run_t *r = ud;
  uint64_t h = r->digest ^ (uint64_t)opcode;
  for (size_t i = 0; i < len; i++) h = (h ^ data[i]) * 0x100000001b3ull;
  r->digest = (h ^ len) * 0x100000001b3ull;
  r->n++;
  uint8_t head[ML_WS_MAX_HEADER];
  size_t hl = ml_ws_header(head, opcode, true, len);
  if (hl != 2 && hl != 4 && hl != 10) abort();
  (void)ml_ws_utf8_valid(data, len);
}

/* @return the decoder's error (0: none) */
static int decode(const uint8_t *in, size_t len, const size_t *cuts,
                  size_t ncuts, size_t max, bool unmasked_ok, run_t *r) {
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) return 0;
  ml_ws_decoder_t d = {.max_message = max, .unmasked_ok = unmasked_ok};
  size_t have = 0, off = 0, fed = 0;
  int err = 0;
  for (size_t k = 0; k <= ncuts; k++) {
    size_t upto = k < ncuts ? cuts[k] : len;
    if (upto < fed) continue;
    memcpy(buf + have, in + fed, upto - fed);
    have += upto - fed;
    fed = upto;
    long used = ml_ws_decode(&d, buf + off, have - off, on_msg, r);
    if (used < 0) {
      err = d.error;
      break;
    }
    off += (size_t)used;
    if (off > have) abort();
  }
  ml_ws_decoder_free(&d);
  free(buf);
  return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t ncuts = data[0] % 8;
  size_t max = (size_t)(data[0] >> 4) * 64 + 1; /* small limits are hit */
  bool unmasked_ok = data[0] & 8;
  if (size < 1 + ncuts * 2) return 0;
  const uint8_t *body = data + 1 + ncuts * 2;
  size_t len = size - 1 - ncuts * 2;
  size_t cuts[8];
  for (size_t i = 0; i < ncuts; i++)
    cuts[i] = len ? ((size_t)data[1 + 2 * i] << 8 | data[2 + 2 * i]) % (len + 1) : 0;
  for (size_t i = 1; i < ncuts; i++)
    for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
      size_t t = cuts[j];
      cuts[j] = cuts[j - 1];
      cuts[j - 1] = t;
    }
  run_t whole = {0}, split = {0};
  int e1 = decode(body, len, NULL, 0, max, unmasked_ok, &whole);
  int e2 = decode(body, len, cuts, ncuts, max, unmasked_ok, &split);
  /* A split run may stop earlier only by having less input at the error:
   * never, since each piece is decoded as far as it goes. */
  if (e1 != e2 || whole.n != split.n || whole.digest != split.digest) {
    fprintf(stderr, "split decode differs: %d/%d messages, error %d/%d\n",
            whole.n, split.n, e1, e2);
    abort();
  }
  return 0;
}
