/* WebSocket handshake key and frame codec (ws_frame.h). The decoder never
 * copies a frame that arrives whole: it unmasks in the caller's buffer and
 * hands out a pointer; only fragmented messages are joined in a buffer of
 * its own. Lengths are checked against the limit as soon as the header is
 * in, so a peer cannot make us wait for (or buffer) an oversized frame. */
#define ML_SSL_REDIRECT
#include "ws_frame.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ssl_load.h"

#define DEFAULT_MAX_MESSAGE (1024 * 1024)

/* RFC 6455 1.3: appended to the client's key before hashing. */
static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static const char B64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static bool b64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int ml_ws_accept_key(const char *key, size_t len,
                     char out[ML_WS_ACCEPT_LEN + 1]) {
  /* 16 random bytes in base64: 22 characters and "==". */
  if (len != 24 || key[22] != '=' || key[23] != '=') return ML_EINVALID;
  for (size_t i = 0; i < 22; i++)
    if (!b64_char(key[i])) return ML_EINVALID;
  if (ml_ssl_load(NULL) < 0) return ML_ENOTFOUND;
  char text[24 + sizeof GUID];
  memcpy(text, key, 24);
  memcpy(text + 24, GUID, sizeof GUID - 1);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!EVP_Digest(text, 24 + sizeof GUID - 1, md, &mdlen, EVP_sha1(), NULL) ||
      mdlen != 20)
    return ML_EINVALID;
  /* 20 bytes: six groups of three, then two bytes and one '='. */
  char *w = out;
  for (int i = 0; i < 18; i += 3) {
    uint32_t v = (uint32_t)md[i] << 16 | (uint32_t)md[i + 1] << 8 | md[i + 2];
    *w++ = B64[v >> 18 & 63];
    *w++ = B64[v >> 12 & 63];
    *w++ = B64[v >> 6 & 63];
    *w++ = B64[v & 63];
  }
  uint32_t v = (uint32_t)md[18] << 16 | (uint32_t)md[19] << 8;
  *w++ = B64[v >> 18 & 63];
  *w++ = B64[v >> 12 & 63];
  *w++ = B64[v >> 6 & 63];
  *w++ = '=';
  *w = '\0';
  return 0;
}

size_t ml_ws_header(uint8_t out[ML_WS_MAX_HEADER], int opcode, bool fin,
                    uint64_t payload_len) {
  out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
  if (payload_len < 126) {
    out[1] = (uint8_t)payload_len;
    return 2;
  }
  if (payload_len <= 0xffff) {
    out[1] = 126;
    out[2] = (uint8_t)(payload_len >> 8);
    out[3] = (uint8_t)payload_len;
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
  return 10;
}

bool ml_ws_utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t k; /* continuation bytes */
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) k = 1, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0) k = 2, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0) k = 3, cp = c & 0x07, min = 0x10000;
    else return false;
    if (n - i <= k) return false;
    for (size_t j = 1; j <= k; j++) {
      if ((s[i + j] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (s[i + j] & 0x3f);
    }
    /* Overlong forms, surrogates and code points past Unicode's end. */
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += k + 1;
  }
  return true;
}

void ml_ws_decoder_free(ml_ws_decoder_t *d) {
  free(d->frag);
  d->frag = NULL;
  d->frag_len = d->frag_cap = 0;
  d->frag_opcode = 0;
}

static long fail(ml_ws_decoder_t *d, int code) {
  d->error = code;
  return -1;
}

/* Codes a peer may send (RFC 6455 7.4 and IANA's registry). */
static bool close_code_ok(unsigned code) {
  if (code >= 3000 && code <= 4999) return true;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

static void unmask(uint8_t *p, uint64_t n, const uint8_t mask[4]) {
  uint64_t i = 0;
  /* A word at a time for the bulk of stdin data. */
  if (n >= 16) {
    uint32_t m;
    memcpy(&m, mask, 4);
    uint64_t m8 = (uint64_t)m << 32 | m;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      memcpy(&w, p + i, 8);
      w ^= m8;
      memcpy(p + i, &w, 8);
    }
  }
  for (; i < n; i++) p[i] ^= mask[i & 3];
}

static int frag_append(ml_ws_decoder_t *d, const uint8_t *p, size_t n) {
  if (d->frag_cap - d->frag_len < n) {
    size_t cap = d->frag_cap ? d->frag_cap : 4096;
    while (cap - d->frag_len < n) cap *= 2;
    uint8_t *nb = realloc(d->frag, cap);
    if (!nb) return ML_ENOMEM;
    d->frag = nb;
    d->frag_cap = cap;
  }
  if (n) memcpy(d->frag + d->frag_len, p, n);
  d->frag_len += n;
  return 0;
}

long ml_ws_decode(ml_ws_decoder_t *d, uint8_t *buf, size_t len,
                  ml_ws_message_fn fn, void *ud) {
  if (d->error) return -1;
  if (d->done) return 0;
  d->stop = false;
  size_t max = d->max_message ? d->max_message : DEFAULT_MAX_MESSAGE;
  size_t off = 0;
  while (len - off >= 2) {
    uint8_t *p = buf + off;
    size_t avail = len - off;
    bool fin = p[0] & 0x80;
    int op = p[0] & 0x0f;
    bool masked = p[1] & 0x80;
    uint64_t plen = p[1] & 0x7f;
    size_t h = 2;
    bool control = op & 0x8;
    if (p[0] & 0x70) return fail(d, ML_WS_PROTOCOL_ERROR); /* RSV */
    if (!masked && !d->unmasked_ok) return fail(d, ML_WS_PROTOCOL_ERROR);
    if (control ? op > ML_WS_PONG || !fin || plen > 125 : op > ML_WS_BINARY)
      return fail(d, ML_WS_PROTOCOL_ERROR);
    if (plen == 126) {
      if (avail < 4) break;
      plen = (uint64_t)p[2] << 8 | p[3];
      h = 4;
    } else if (plen == 127) {
      if (avail < 10) break;
      plen = 0;
      for (int i = 0; i < 8; i++) plen = plen << 8 | p[2 + i];
      if (plen >> 63) return fail(d, ML_WS_PROTOCOL_ERROR);
      h = 10;
    }
    if (!control) {
      /* A continuation needs a message to continue, and a new message
       * must wait until the fragmented one is complete. */
      if ((op == ML_WS_CONT) != (d->frag_opcode != 0))
        return fail(d, ML_WS_PROTOCOL_ERROR);
      if (plen > max || plen + d->frag_len > max)
        return fail(d, ML_WS_TOO_BIG);
    }
    uint8_t mask[4];
    if (masked) {
      if (avail < h + 4) break;
      memcpy(mask, p + h, 4);
      h += 4;
    }
    if (avail - h < plen) break;
    uint8_t *pl = p + h;
    size_t n = (size_t)plen;
    if (masked) unmask(pl, n, mask);
    off += h + n;
    if (op == ML_WS_CLOSE) {
      if (n == 1) return fail(d, ML_WS_PROTOCOL_ERROR);
      if (n >= 2 && !close_code_ok((unsigned)pl[0] << 8 | pl[1]))
        return fail(d, ML_WS_PROTOCOL_ERROR);
      if (n > 2 && !ml_ws_utf8_valid(pl + 2, n - 2))
        return fail(d, ML_WS_BAD_DATA);
      d->done = true; /* nothing follows a close */
      fn(ud, op, pl, n);
      return (long)off;
    }
    if (control) {
      fn(ud, op, pl, n);
    } else if (fin && op != ML_WS_CONT) {
      if (op == ML_WS_TEXT && !ml_ws_utf8_valid(pl, n))
        return fail(d, ML_WS_BAD_DATA);
      fn(ud, op, pl, n);
    } else {
      if (frag_append(d, pl, n) < 0) return fail(d, ML_WS_INTERNAL);
      if (op != ML_WS_CONT) d->frag_opcode = op;
      if (fin) {
        int mop = d->frag_opcode;
        d->frag_opcode = 0;
        size_t mlen = d->frag_len;
        d->frag_len = 0;
        if (mop == ML_WS_TEXT && !ml_ws_utf8_valid(d->frag, mlen))
          return fail(d, ML_WS_BAD_DATA);
        fn(ud, mop, d->frag, mlen);
      }
    }
    if (d->done || d->stop) return (long)off; /* the callback stopped us */
  }
  return (long)off;
}
