/* Unit tests of the WebSocket codec (core/ws_frame.c): the handshake's
 * accept key (RFC 6455's own example), server frame headers at each length
 * size, and the decoder: masking, split input, fragments joined, control
 * frames between fragments, and every violation with its close code.
 * Prints TAP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ws_frame.h"

#include "tap.h"

typedef struct {
  int n;
  int op[16];
  char data[16][256];
  size_t len[16];
} got_t;

static void on_msg(void *ud, int opcode, const uint8_t *data, size_t len) {
  got_t *g = ud;
  if (g->n == 16) return;
  g->op[g->n] = opcode;
  g->len[g->n] = len;
  memcpy(g->data[g->n], data, len < 255 ? len : 255);
  g->data[g->n][len < 255 ? len : 255] = '\0';
  g->n++;
}

/* A masked client frame into out; @return its length. */
static size_t client_frame(uint8_t *out, int b0, const char *payload,
                           size_t len) {
  static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  size_t h = ml_ws_header(out, b0 & 0x0f, b0 & 0x80, len);
  out[0] = (uint8_t)b0; /* RSV bits as given */
  out[1] |= 0x80;
  memcpy(out + h, mask, 4);
  h += 4;
  for (size_t i = 0; i < len; i++) out[h + i] = (uint8_t)payload[i] ^ mask[i & 3];
  return h + len;
}

static void test_accept_key(void) {
  char out[ML_WS_ACCEPT_LEN + 1];
  const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
  int rc = ml_ws_accept_key(key, strlen(key), out);
  IS_INT(rc, 0, "accept key computed (OpenSSL's SHA-1)");
  IS_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "RFC 6455 section 1.3 example");
  IS_INT(ml_ws_accept_key("short", 5, out), ML_EINVALID, "short key refused");
  IS_INT(ml_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ!!", 24, out), ML_EINVALID,
         "key not ending in == refused");
  IS_INT(ml_ws_accept_key("dGhlIHNh*XBsZSBub25jZQ==", 24, out), ML_EINVALID,
         "key with a non-base64 character refused");
}

static void test_headers(void) {
  uint8_t h[ML_WS_MAX_HEADER];
  IS_INT(ml_ws_header(h, ML_WS_BINARY, true, 125), 2, "125 bytes: 2-byte header");
  ok(h[0] == 0x82 && h[1] == 125, "FIN + binary, length inline");
  IS_INT(ml_ws_header(h, ML_WS_TEXT, false, 126), 4, "126 bytes: 16-bit length");
  ok(h[0] == 0x01 && h[1] == 126 && h[2] == 0 && h[3] == 126, "no FIN, 16-bit 126");
  IS_INT(ml_ws_header(h, ML_WS_BINARY, true, 70000), 10, "70000: 64-bit length");
  ok(h[1] == 127 && h[7] == 0x01 && h[8] == 0x11 && h[9] == 0x70, "64-bit 70000");
}

static void test_decode_whole_and_split(void) {
  uint8_t buf[512];
  size_t n = client_frame(buf, 0x82, "\x01hello", 6);
  n += client_frame(buf + n, 0x89, "p", 1); /* ping */
  got_t g = {0};
  ml_ws_decoder_t d = {0};
  long used = ml_ws_decode(&d, buf, n, on_msg, &g);
  IS_INT(used, (long)n, "two frames consumed");
  IS_INT(g.n, 2, "two messages");
  ok(g.op[0] == ML_WS_BINARY && g.len[0] == 6 && memcmp(g.data[0], "\x01hello", 6) == 0,
     "binary message unmasked");
  ok(g.op[1] == ML_WS_PING && strcmp(g.data[1], "p") == 0, "ping handed out");
  ml_ws_decoder_free(&d);

  /* Byte by byte: nothing before the frame is whole. */
  uint8_t one[64];
  size_t m = client_frame(one, 0x82, "abcdef", 6);
  ml_ws_decoder_t d2 = {0};
  got_t g2 = {0};
  size_t have = 0, off = 0;
  uint8_t acc[64];
  for (size_t i = 0; i < m; i++) {
    acc[have++] = one[i];
    long u = ml_ws_decode(&d2, acc + off, have - off, on_msg, &g2);
    if (u < 0) break;
    off += (size_t)u;
  }
  ok(g2.n == 1 && strcmp(g2.data[0], "abcdef") == 0 && off == m,
     "frame fed one byte at a time decodes once, whole");
  ml_ws_decoder_free(&d2);
}

static void test_fragments(void) {
  uint8_t buf[512];
  size_t n = client_frame(buf, 0x02, "ab", 2);       /* binary, no FIN */
  n += client_frame(buf + n, 0x89, "", 0);           /* ping between */
  n += client_frame(buf + n, 0x00, "cd", 2);         /* continuation */
  n += client_frame(buf + n, 0x80, "ef", 2);         /* final */
  got_t g = {0};
  ml_ws_decoder_t d = {0};
  IS_INT(ml_ws_decode(&d, buf, n, on_msg, &g), (long)n, "fragments consumed");
  IS_INT(g.n, 2, "ping, then the joined message");
  ok(g.op[0] == ML_WS_PING, "control frame between fragments delivered first");
  ok(g.op[1] == ML_WS_BINARY && strcmp(g.data[1], "abcdef") == 0,
     "fragments joined under the first opcode");
  ml_ws_decoder_free(&d);
}

/* Decodes one crafted frame sequence; @return the error code (0: none). */
static int decode_error(const uint8_t *frames, size_t n, size_t max) {
  uint8_t buf[4096];
  memcpy(buf, frames, n);
  ml_ws_decoder_t d = {.max_message = max};
  got_t g = {0};
  long used = ml_ws_decode(&d, buf, n, on_msg, &g);
  int e = used < 0 ? d.error : 0;
  ml_ws_decoder_free(&d);
  return e;
}

static void test_violations(void) {
  uint8_t b[512];
  size_t n;
  static const uint8_t unmasked[] = {0x82, 0x01, 'x'};
  IS_INT(decode_error(unmasked, sizeof unmasked, 0), ML_WS_PROTOCOL_ERROR,
         "unmasked client frame: 1002");
  n = client_frame(b, 0xC2, "x", 1);
  IS_INT(decode_error(b, n, 0), ML_WS_PROTOCOL_ERROR, "RSV1 set: 1002");
  n = client_frame(b, 0x83, "x", 1);
  IS_INT(decode_error(b, n, 0), ML_WS_PROTOCOL_ERROR, "reserved opcode 3: 1002");
  n = client_frame(b, 0x09, "x", 1);
  IS_INT(decode_error(b, n, 0), ML_WS_PROTOCOL_ERROR, "fragmented ping: 1002");
  char big[126];
  memset(big, 'p', sizeof big);
  n = client_frame(b, 0x89, big, sizeof big);
  IS_INT(decode_error(b, n, 0), ML_WS_PROTOCOL_ERROR, "126-byte ping: 1002");
  n = client_frame(b, 0x80, "x", 1);
  IS_INT(decode_error(b, n, 0), ML_WS_PROTOCOL_ERROR, "continuation with nothing to continue: 1002");
  n = client_frame(b, 0x02, "x", 1);
  n += client_frame(b + n, 0x82, "y", 1);
  IS_INT(decode_error(b, n, 0), ML_WS_PROTOCOL_ERROR, "new message inside a fragmented one: 1002");
  n = client_frame(b, 0x82, "0123456789", 10);
  IS_INT(decode_error(b, n, 8), ML_WS_TOO_BIG, "message over the limit: 1009");
  n = client_frame(b, 0x02, "01234", 5);
  n += client_frame(b + n, 0x80, "56789", 5);
  IS_INT(decode_error(b, n, 8), ML_WS_TOO_BIG, "fragments over the limit together: 1009");
  /* A 2^40-byte frame is refused from its header alone. */
  static const uint8_t huge[] = {0x82, 0xff, 0, 0, 1, 0, 0, 0, 0, 0};
  IS_INT(decode_error(huge, sizeof huge, 0), ML_WS_TOO_BIG, "huge length refused from the header: 1009");
  static const uint8_t msb[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0};
  IS_INT(decode_error(msb, sizeof msb, 0), ML_WS_PROTOCOL_ERROR, "64-bit length with its top bit: 1002");
  n = client_frame(b, 0x81, "\xc3\x28", 2);
  IS_INT(decode_error(b, n, 0), ML_WS_BAD_DATA, "text with bad UTF-8: 1007");
  n = client_frame(b, 0x88, "\x03", 1);
  IS_INT(decode_error(b, n, 0), ML_WS_PROTOCOL_ERROR, "1-byte close payload: 1002");
  n = client_frame(b, 0x88, "\x03\xed", 2); /* 1005 may not be sent */
  IS_INT(decode_error(b, n, 0), ML_WS_PROTOCOL_ERROR, "close code 1005: 1002");
  n = client_frame(b, 0x88, "\x03\xe8\xff", 3);
  IS_INT(decode_error(b, n, 0), ML_WS_BAD_DATA, "close reason with bad UTF-8: 1007");
  n = client_frame(b, 0x88, "\x03\xe8ok", 4);
  IS_INT(decode_error(b, n, 0), 0, "close 1000 with a reason is fine");
}

static void test_close_stops(void) {
  uint8_t buf[512];
  size_t n = client_frame(buf, 0x88, "\x03\xe8", 2);
  size_t first = n;
  n += client_frame(buf + n, 0x82, "late", 4);
  got_t g = {0};
  ml_ws_decoder_t d = {0};
  IS_INT(ml_ws_decode(&d, buf, n, on_msg, &g), (long)first, "decoding stops at the close");
  ok(g.n == 1 && g.op[0] == ML_WS_CLOSE, "only the close was delivered");
  IS_INT(ml_ws_decode(&d, buf + first, n - first, on_msg, &g), 0, "nothing after the close");
  ml_ws_decoder_free(&d);
}

static void test_utf8(void) {
  ok(ml_ws_utf8_valid((const uint8_t *)"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 16), "valid UTF-8");
  ok(!ml_ws_utf8_valid((const uint8_t *)"\xc0\xaf", 2), "overlong form refused");
  ok(!ml_ws_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3), "surrogate refused");
  ok(!ml_ws_utf8_valid((const uint8_t *)"\xe2\x82", 2), "truncated sequence refused");
}

int main(void) {
  test_accept_key();
  test_headers();
  test_decode_whole_and_split();
  test_fragments();
  test_violations();
  test_close_stops();
  test_utf8();
  return tap_done();
}
