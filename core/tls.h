/* TLS for the API listener, on OpenSSL 3: a self-signed serving certificate
 * kept in the data dir (made once, reused), and a server-side TLS engine over
 * memory BIOs. The engine never touches a socket: the HTTP server feeds it
 * the ciphertext it read and sends the ciphertext it produces, so TLS sits
 * between libuv and the HTTP parser without owning any I/O.
 *
 *   socket ─► ml_tls_feed ─► ml_tls_read ─► parser     (plaintext requests)
 *   socket ◄─ ml_tls_take ◄─ ml_tls_write ◄─ responses
 */
#ifndef ML_TLS_H
#define ML_TLS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ml_tls_ctx_s ml_tls_ctx_t; /* certificate + key + settings */
typedef struct ml_tls_s ml_tls_t;         /* one connection's session */

/* Result of ml_tls_read() when the peer sent close_notify. */
#define ML_TLS_EOF (-1)

/**
 * Makes sure `dir`/tls.crt and `dir`/tls.key hold a usable self-signed
 * serving certificate: EC P-256, CA:TRUE (so Go clients accept it as its
 * own root), valid ten years, SANs DNS localhost + this machine's host name
 * + `hostnames`, IP 127.0.0.1 + ::1 + `ips`. An existing pair is reused when
 * it parses, the key matches, it is valid for at least 30 more days and its
 * SANs cover every name asked for; otherwise a new pair replaces it. Both
 * files are written atomically (temporary file + rename), the key with mode
 * 0600, the certificate 0644.
 * @param hostnames NULL-terminated extra DNS names (may be NULL)
 * @param ips NULL-terminated extra IP addresses, v4 or v6 text (may be NULL)
 * @param err on failure receives a malloc'd message (caller frees); may be
 *   NULL
 * @return 1 when a new pair was written, 0 when the old one was kept,
 *   ML_EINVALID for a bad name, ML_EIO for a file or crypto failure
 */
int ml_tls_ensure_cert(const char *dir, const char *const *hostnames,
                       const char *const *ips, char **err);

/**
 * A server context from PEM files: TLS 1.2 and 1.3 only, no renegotiation,
 * no session tickets, ALPN "http/1.1" (the server speaks nothing else).
 * @param err as for ml_tls_ensure_cert
 * @return 0, ML_EIO (unreadable or mismatched files) or ML_ENOMEM
 */
int ml_tls_ctx_new(const char *cert_file, const char *key_file,
                   ml_tls_ctx_t **out, char **err);

/** Takes one more reference (each listener holds one). @return ctx */
ml_tls_ctx_t *ml_tls_ctx_ref(ml_tls_ctx_t *ctx);

/** Drops a reference; the context goes with the last one. NULL is a no-op. */
void ml_tls_ctx_unref(ml_tls_ctx_t *ctx);

/**
 * A server-side session that waits for the client's hello. Holds a
 * reference on `ctx`.
 * @return the session or NULL on allocation failure
 */
ml_tls_t *ml_tls_new(ml_tls_ctx_t *ctx);

/** Frees a session (no close_notify is sent; see ml_tls_close_notify). */
void ml_tls_free(ml_tls_t *t);

/**
 * Hands ciphertext received from the peer to the engine (copied).
 * @return 0 or ML_ENOMEM
 */
int ml_tls_feed(ml_tls_t *t, const char *data, size_t len);

/**
 * Runs the handshake and decrypts what was fed. Handshake or alert records
 * may become ciphertext to send (see ml_tls_pending) even when nothing is
 * returned.
 * @return bytes of plaintext put in `buf` (> 0), 0 when more input is
 *   needed, ML_TLS_EOF after the peer's close_notify, or ML_EIO on a
 *   protocol error (ml_tls_error says which; pending alert bytes may still
 *   be sent before closing)
 */
long ml_tls_read(ml_tls_t *t, char *buf, size_t cap);

/**
 * Encrypts `len` bytes of plaintext; all of it becomes pending ciphertext.
 * @return 0, ML_EINVALID before the handshake finished or after close, or
 *   ML_EIO
 */
int ml_tls_write(ml_tls_t *t, const char *data, size_t len);

/** Queues a close_notify alert (once). @return 0 or ML_EIO */
int ml_tls_close_notify(ml_tls_t *t);

/** @return ciphertext bytes waiting to be sent to the peer. */
size_t ml_tls_pending(const ml_tls_t *t);

/** Moves up to `cap` pending ciphertext bytes into `buf`. @return bytes */
size_t ml_tls_take(ml_tls_t *t, char *buf, size_t cap);

/** @return true once the handshake completed. */
bool ml_tls_ready(const ml_tls_t *t);

/** @return the last error's description ("" when none). */
const char *ml_tls_error(const ml_tls_t *t);

/** @return the negotiated protocol ("TLSv1.3") or "" before the handshake. */
const char *ml_tls_version(const ml_tls_t *t);

#endif
