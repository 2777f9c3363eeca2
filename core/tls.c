/* TLS for the API listener (see tls.h): the data dir's self-signed serving
 * certificate, and a server TLS engine over OpenSSL memory BIOs. Nothing
 * here does socket I/O or knows about the loop; http_server.c moves the
 * bytes. OpenSSL's error queue is per thread and sticky, so every entry
 * point clears it first and turns what is left into one message.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include "err.h"
/* OpenSSL is loaded at the first TLS use: calls go through ml__ssl. */
#define ML_SSL_REDIRECT
#include "ssl_load.h"

#define CERT_DAYS 3650
#define RENEW_BEFORE_S (30L * 24 * 3600) /* replace when this close to expiry */
#define MAX_NAMES 32

struct ml_tls_ctx_s {
  SSL_CTX *ssl;
  int refs; /* single-threaded: the loop thread owns every reference */
};

struct ml_tls_s {
  SSL *ssl;
  BIO *rbio; /* ciphertext from the peer, read by OpenSSL */
  BIO *wbio; /* ciphertext OpenSSL produced, taken by the caller */
  ml_tls_ctx_t *ctx;
  bool said_bye;
  char err[160];
};

/* {====== errors */

/* Sets *err to a malloc'd "what: detail" where detail is OpenSSL's last
 * reason, if any. */
static int fail(char **err, int code, const char *fmt, ...) {
  if (err) {
    char msg[256], what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    if (reason) snprintf(msg, sizeof msg, "%s: %s", what, reason);
    else snprintf(msg, sizeof msg, "%s", what);
    *err = strdup(msg);
  }
  ERR_clear_error();
  return code;
}

/* }====== */

/* Loads OpenSSL before a first use; fail() itself needs it for the
 * library's error queue, so a missing library is reported here. */
static int load_openssl(char **err) {
  const char *why;
  if (ml_ssl_load(&why) == 0) return 0;
  if (err) *err = strdup(why);
  return ML_EIO;
}

/* {====== certificate files */

static bool valid_dns(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 253) return false;
  for (const char *p = s; *p; p++) {
    char ch = *p;
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_';
    if (!ok) return false;
  }
  return true;
}

static bool valid_ip(const char *s) {
  unsigned char b[16];
  return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

typedef struct {
  const char *dns[MAX_NAMES];
  size_t ndns;
  const char *ip[MAX_NAMES];
  size_t nip;
  char host[256];
} names_t;

static void add_name(const char **list, size_t *n, const char *s) {
  for (size_t i = 0; i < *n; i++)
    if (strcmp(list[i], s) == 0) return;
  if (*n < MAX_NAMES) list[(*n)++] = s;
}

/* The names every certificate carries, then the caller's. A host name
 * that is not a valid DNS name (or an IP address) is left out. */
static int collect_names(names_t *nm, const char *const *hostnames,
                         const char *const *ips, char **err) {
  memset(nm, 0, sizeof *nm);
  add_name(nm->dns, &nm->ndns, "localhost");
  if (gethostname(nm->host, sizeof nm->host - 1) == 0 && valid_dns(nm->host) &&
      !valid_ip(nm->host))
    add_name(nm->dns, &nm->ndns, nm->host);
  add_name(nm->ip, &nm->nip, "127.0.0.1");
  add_name(nm->ip, &nm->nip, "::1");
  for (size_t i = 0; hostnames && hostnames[i]; i++) {
    if (!valid_dns(hostnames[i]))
      return fail(err, ML_EINVALID, "invalid host name %s", hostnames[i]);
    add_name(nm->dns, &nm->ndns, hostnames[i]);
  }
  for (size_t i = 0; ips && ips[i]; i++) {
    if (!valid_ip(ips[i]))
      return fail(err, ML_EINVALID, "invalid IP address %s", ips[i]);
    add_name(nm->ip, &nm->nip, ips[i]);
  }
  return 0;
}

static char *join_path(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

/* True when the pair at cert/key can serve every name for a while yet. */
static bool usable_pair(const char *cert_path, const char *key_path,
                        const names_t *nm) {
  bool ok = false;
  X509 *x = NULL;
  EVP_PKEY *k = NULL;
  BIO *b = BIO_new_file(cert_path, "r");
  if (b) x = PEM_read_bio_X509(b, NULL, NULL, NULL);
  BIO_free(b);
  b = BIO_new_file(key_path, "r");
  if (b) k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
  BIO_free(b);
  if (!x || !k || X509_check_private_key(x, k) != 1) goto done;
  time_t soon = time(NULL) + RENEW_BEFORE_S;
  if (X509_cmp_time(X509_get0_notAfter(x), &soon) <= 0) goto done;
  for (size_t i = 0; i < nm->ndns; i++)
    if (X509_check_host(x, nm->dns[i], 0, X509_CHECK_FLAG_NO_WILDCARDS,
                        NULL) != 1)
      goto done;
  for (size_t i = 0; i < nm->nip; i++)
    if (X509_check_ip_asc(x, nm->ip[i], 0) != 1) goto done;
  ok = true;
done:
  X509_free(x);
  EVP_PKEY_free(k);
  ERR_clear_error();
  return ok;
}

static int add_ext(X509 *x, int nid, const char *value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
  if (!ext) return -1;
  int rc = X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
  X509_EXTENSION_free(ext);
  return rc;
}

/* Builds the self-signed certificate for `key`. */
static X509 *make_cert(EVP_PKEY *key, const names_t *nm) {
  X509 *x = X509_new();
  BIGNUM *serial = BN_new();
  char san[4096];
  size_t off = 0;
  if (!x || !serial) goto error;
  /* Positive 127-bit serial: unique without any state kept. */
  if (!BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
      !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)))
    goto error;
  if (!X509_set_version(x, X509_VERSION_3)) goto error;
  /* An hour back: a client whose clock is a bit behind still accepts it. */
  if (!X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
      !X509_time_adj_ex(X509_getm_notAfter(x), CERT_DAYS, 0, NULL))
    goto error;
  X509_NAME *name = X509_get_subject_name(x);
  if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                  (const unsigned char *)"moonlet", -1, -1, 0) ||
      !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                  (const unsigned char *)"moonlet-apiserver",
                                  -1, -1, 0) ||
      !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key))
    goto error;
  for (size_t i = 0; i < nm->ndns; i++)
    off += (size_t)snprintf(san + off, sizeof san - off, "%sDNS:%s",
                            off ? "," : "", nm->dns[i]);
  for (size_t i = 0; i < nm->nip && off < sizeof san; i++)
    off += (size_t)snprintf(san + off, sizeof san - off, "%sIP:%s",
                            off ? "," : "", nm->ip[i]);
  if (off >= sizeof san) goto error;
  /* CA:TRUE makes the certificate its own root: clients (Go's crypto/x509
   * in kubectl) are given it as certificate-authority-data and verify the
   * server against it directly. */
  if (add_ext(x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
      add_ext(x, NID_key_usage,
              "critical,digitalSignature,keyEncipherment,keyCertSign") < 0 ||
      add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
      add_ext(x, NID_subject_key_identifier, "hash") < 0 ||
      add_ext(x, NID_subject_alt_name, san) < 0)
    goto error;
  if (!X509_sign(x, key, EVP_sha256())) goto error;
  BN_free(serial);
  return x;
error:
  BN_free(serial);
  X509_free(x);
  return NULL;
}

/* Writes `data` to `path` through a temporary file in the same directory
 * and a rename, so a reader never sees half a key. */
static int write_atomic(const char *path, const char *data, size_t len,
                        mode_t mode) {
  size_t n = strlen(path) + 16;
  char *tmp = malloc(n);
  if (!tmp) return ML_ENOMEM;
  snprintf(tmp, n, "%s.tmpXXXXXX", path);
  int fd = mkstemp(tmp); /* created 0600: the key is never readable */
  if (fd < 0) {
    free(tmp);
    return ML_EIO;
  }
  int rc = 0;
  size_t done = 0;
  while (done < len) {
    ssize_t w = write(fd, data + done, len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      rc = ML_EIO;
      break;
    }
    done += (size_t)w;
  }
  if (rc == 0 && (fchmod(fd, mode) < 0 || fsync(fd) < 0)) rc = ML_EIO;
  if (close(fd) < 0 && rc == 0) rc = ML_EIO;
  if (rc == 0 && rename(tmp, path) < 0) rc = ML_EIO;
  if (rc < 0) unlink(tmp);
  free(tmp);
  return rc;
}

/* PEM of the key or the certificate into a malloc'd buffer. */
static char *to_pem(EVP_PKEY *key, X509 *x, size_t *len) {
  BIO *b = BIO_new(BIO_s_mem());
  char *out = NULL;
  if (!b) return NULL;
  int ok = key ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
               : PEM_write_bio_X509(b, x);
  if (ok) {
    char *p;
    long n = BIO_get_mem_data(b, &p);
    out = n > 0 ? malloc((size_t)n) : NULL;
    if (out) {
      memcpy(out, p, (size_t)n);
      *len = (size_t)n;
    }
  }
  BIO_free(b);
  return out;
}

int ml_tls_ensure_cert(const char *dir, const char *const *hostnames,
                       const char *const *ips, char **err) {
  names_t nm;
  if (err) *err = NULL;
  if (load_openssl(err) != 0) return ML_EIO;
  ERR_clear_error();
  int rc = collect_names(&nm, hostnames, ips, err);
  if (rc < 0) return rc;
  char *cert_path = join_path(dir, "tls.crt");
  char *key_path = join_path(dir, "tls.key");
  EVP_PKEY *key = NULL;
  X509 *x = NULL;
  char *kpem = NULL, *cpem = NULL;
  size_t klen = 0, clen = 0;
  if (!cert_path || !key_path) {
    rc = fail(err, ML_ENOMEM, "out of memory");
    goto done;
  }
  if (usable_pair(cert_path, key_path, &nm)) {
    rc = 0;
    goto done;
  }
  key = EVP_EC_gen("P-256");
  if (!key) {
    rc = fail(err, ML_EIO, "cannot generate a P-256 key");
    goto done;
  }
  x = make_cert(key, &nm);
  if (!x) {
    rc = fail(err, ML_EIO, "cannot build the certificate");
    goto done;
  }
  kpem = to_pem(key, NULL, &klen);
  cpem = to_pem(NULL, x, &clen);
  if (!kpem || !cpem) {
    rc = fail(err, ML_EIO, "cannot encode the certificate");
    goto done;
  }
  /* Key first: a crash between the two renames leaves a pair that does not
   * match, which the next start detects and replaces. */
  rc = write_atomic(key_path, kpem, klen, 0600);
  if (rc < 0) {
    rc = fail(err, rc, "cannot write %s: %s", key_path, strerror(errno));
    goto done;
  }
  rc = write_atomic(cert_path, cpem, clen, 0644);
  if (rc < 0) {
    rc = fail(err, rc, "cannot write %s: %s", cert_path, strerror(errno));
    goto done;
  }
  rc = 1;
done:
  if (kpem) OPENSSL_cleanse(kpem, klen);
  free(kpem);
  free(cpem);
  X509_free(x);
  EVP_PKEY_free(key);
  free(cert_path);
  free(key_path);
  return rc;
}

/* }====== */

/* {====== server context */

/* The server speaks HTTP/1.1 only; a client offering h2 first (Go does)
 * is told so instead of guessing. No overlap: go on without ALPN. */
static int select_alpn(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  (void)ssl;
  (void)arg;
  static const unsigned char ours[] = "\x08http/1.1";
  unsigned char *sel;
  if (SSL_select_next_proto(&sel, outlen, ours, sizeof ours - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

int ml_tls_ctx_new(const char *cert_file, const char *key_file,
                   ml_tls_ctx_t **out, char **err) {
  *out = NULL;
  if (err) *err = NULL;
  if (load_openssl(err) != 0) return ML_EIO;
  ERR_clear_error();
  ml_tls_ctx_t *c = calloc(1, sizeof *c);
  if (!c) return fail(err, ML_ENOMEM, "out of memory");
  c->refs = 1;
  c->ssl = SSL_CTX_new(TLS_server_method());
  if (!c->ssl) {
    free(c);
    return fail(err, ML_ENOMEM, "cannot create a TLS context");
  }
  SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION);
  SSL_CTX_set_options(c->ssl, SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE |
                                  SSL_OP_NO_TICKET);
  /* Every kubectl run is a new process: resumption would never pay. */
  SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(c->ssl, 0);
  SSL_CTX_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(c->ssl, select_alpn, NULL);
  if (SSL_CTX_use_certificate_chain_file(c->ssl, cert_file) != 1) {
    ml_tls_ctx_unref(c);
    return fail(err, ML_EIO, "cannot load certificate %s", cert_file);
  }
  if (SSL_CTX_use_PrivateKey_file(c->ssl, key_file, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(c->ssl) != 1) {
    ml_tls_ctx_unref(c);
    return fail(err, ML_EIO, "cannot load key %s", key_file);
  }
  *out = c;
  return 0;
}

ml_tls_ctx_t *ml_tls_ctx_ref(ml_tls_ctx_t *ctx) {
  ctx->refs++;
  return ctx;
}

void ml_tls_ctx_unref(ml_tls_ctx_t *ctx) {
  if (!ctx || --ctx->refs > 0) return;
  SSL_CTX_free(ctx->ssl);
  free(ctx);
}

/* }====== */

/* {====== sessions */

ml_tls_t *ml_tls_new(ml_tls_ctx_t *ctx) {
  ml_tls_t *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->ssl = SSL_new(ctx->ssl);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->rbio || !t->wbio) {
    SSL_free(t->ssl);
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    free(t);
    ERR_clear_error();
    return NULL;
  }
  /* An empty input BIO means "wait for more", not end of stream. */
  BIO_set_mem_eof_return(t->rbio, -1);
  SSL_set_bio(t->ssl, t->rbio, t->wbio); /* the SSL owns both now */
  SSL_set_accept_state(t->ssl);
  t->ctx = ml_tls_ctx_ref(ctx);
  return t;
}

void ml_tls_free(ml_tls_t *t) {
  if (!t) return;
  SSL_free(t->ssl);
  ml_tls_ctx_unref(t->ctx);
  free(t);
}

int ml_tls_feed(ml_tls_t *t, const char *data, size_t len) {
  while (len > 0) {
    int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
    int n = BIO_write(t->rbio, data, chunk);
    if (n <= 0) {
      ERR_clear_error();
      return ML_ENOMEM;
    }
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

static void set_error(ml_tls_t *t, int ssl_err) {
  unsigned long e = ERR_peek_last_error();
  const char *reason = e ? ERR_reason_error_string(e) : NULL;
  if (reason) snprintf(t->err, sizeof t->err, "%s", reason);
  else if (ssl_err == SSL_ERROR_SYSCALL) snprintf(t->err, sizeof t->err, "unexpected end of TLS stream");
  else snprintf(t->err, sizeof t->err, "TLS error %d", ssl_err);
  ERR_clear_error();
}

long ml_tls_read(ml_tls_t *t, char *buf, size_t cap) {
  ERR_clear_error();
  size_t n = 0;
  if (SSL_read_ex(t->ssl, buf, cap, &n) == 1) return (long)n;
  int e = SSL_get_error(t->ssl, 0);
  switch (e) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE: /* a memory BIO never fills; defensive */
    return 0;
  case SSL_ERROR_ZERO_RETURN:
    return ML_TLS_EOF;
  default:
    set_error(t, e);
    return ML_EIO;
  }
}

int ml_tls_write(ml_tls_t *t, const char *data, size_t len) {
  if (!SSL_is_init_finished(t->ssl) || t->said_bye) return ML_EINVALID;
  ERR_clear_error();
  while (len > 0) {
    size_t n = 0;
    if (SSL_write_ex(t->ssl, data, len, &n) != 1) {
      set_error(t, SSL_get_error(t->ssl, 0));
      return ML_EIO;
    }
    data += n;
    len -= n;
  }
  return 0;
}

int ml_tls_close_notify(ml_tls_t *t) {
  if (t->said_bye) return 0;
  t->said_bye = true;
  if (!SSL_is_init_finished(t->ssl)) return 0;
  ERR_clear_error();
  if (SSL_shutdown(t->ssl) < 0) {
    set_error(t, SSL_get_error(t->ssl, 0));
    return ML_EIO;
  }
  return 0;
}

size_t ml_tls_pending(const ml_tls_t *t) { return BIO_ctrl_pending(t->wbio); }

size_t ml_tls_take(ml_tls_t *t, char *buf, size_t cap) {
  size_t got = 0;
  if (cap == 0 || ml_tls_pending(t) == 0) return 0;
  if (BIO_read_ex(t->wbio, buf, cap, &got) != 1) got = 0;
  return got;
}

bool ml_tls_ready(const ml_tls_t *t) { return SSL_is_init_finished(t->ssl); }

const char *ml_tls_error(const ml_tls_t *t) { return t->err; }

const char *ml_tls_version(const ml_tls_t *t) {
  return SSL_is_init_finished(t->ssl) ? SSL_get_version(t->ssl) : "";
}

/* }====== */
