/* WebSocket (RFC 6455) for the server side: the opening handshake's
 * Sec-WebSocket-Accept, frame headers out, and a decoder that takes a
 * client's bytes, unmasks them in place, joins fragments and hands out
 * whole messages and control frames. Any violation ends with the close
 * code the RFC asks for (1002 protocol, 1007 bad UTF-8, 1009 too big).
 * No extensions are negotiated, so RSV bits are always an error. Pure
 * code but for the SHA-1, taken from OpenSSL (core/ssl_load.h). */
#ifndef ML_WS_FRAME_H
#define ML_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
  ML_WS_CONT = 0x0,
  ML_WS_TEXT = 0x1,
  ML_WS_BINARY = 0x2,
  ML_WS_CLOSE = 0x8,
  ML_WS_PING = 0x9,
  ML_WS_PONG = 0xA
};

/* Close codes (RFC 6455 7.4.1). */
enum {
  ML_WS_NORMAL = 1000,
  ML_WS_GOING_AWAY = 1001,
  ML_WS_PROTOCOL_ERROR = 1002,
  ML_WS_BAD_DATA = 1007,
  ML_WS_TOO_BIG = 1009,
  ML_WS_INTERNAL = 1011
};

#define ML_WS_MAX_HEADER 14   /* 2 + 8 (length) + 4 (mask) */
#define ML_WS_ACCEPT_LEN 28   /* base64 of a 20-byte SHA-1 */

/**
 * Sec-WebSocket-Accept for a client's Sec-WebSocket-Key.
 * @param key the key as sent (must decode to 16 bytes of base64: 24 chars)
 * @param out receives ML_WS_ACCEPT_LEN characters and a NUL
 * @return 0, ML_EINVALID for a malformed key, ML_ENOTFOUND without OpenSSL
 */
int ml_ws_accept_key(const char *key, size_t len, char out[ML_WS_ACCEPT_LEN + 1]);

/**
 * Writes a server frame header (never masked).
 * @return the header's length (2, 4 or 10)
 */
size_t ml_ws_header(uint8_t out[ML_WS_MAX_HEADER], int opcode, bool fin,
                    uint64_t payload_len);

/** @return true when s[0..n) is well-formed UTF-8. */
bool ml_ws_utf8_valid(const uint8_t *s, size_t n);

/* A message or control frame from the decoder. `data` points into the
 * caller's buffer or the decoder's fragment buffer: valid during the call. */
typedef void (*ml_ws_message_fn)(void *ud, int opcode, const uint8_t *data,
                                 size_t len);

typedef struct {
  size_t max_message; /* bytes of a message, fragments joined; 0: 1 MiB */
  bool unmasked_ok;   /* accept unmasked frames (a client-side decoder) */
  /* Fragmented message in progress: */
  int frag_opcode; /* 0: none */
  uint8_t *frag;
  size_t frag_len, frag_cap;
  int error; /* close code once the peer broke the protocol, else 0 */
  bool done; /* a close frame came, or the callback set it: stop for good */
  bool stop; /* set by the callback: return after this frame (this call) */
} ml_ws_decoder_t;

/** Frees the fragment buffer (the struct is the caller's). */
void ml_ws_decoder_free(ml_ws_decoder_t *d);

/**
 * Decodes the complete frames at the start of buf[0..len), unmasking
 * payloads in place, and calls `fn` for each data message (once all its
 * fragments are in) and each control frame. A close frame's payload is
 * checked (code and UTF-8 reason) before it is handed out; nothing is
 * decoded after it. `fn` may set d->stop to make this call return after
 * its frame (backpressure), or d->done to end decoding for good.
 * @return bytes consumed (the rest is an incomplete frame: call again with
 *   more after it), or -1 with d->error set (the session must close with
 *   that code; nothing more is decoded)
 */
long ml_ws_decode(ml_ws_decoder_t *d, uint8_t *buf, size_t len,
                  ml_ws_message_fn fn, void *ud);

#endif
