/* Tests of core/tls.c and the TLS listener of core/http_server.c. First the
 * serving certificate (creation, reuse, replacement, its X.509 properties),
 * then the memory-BIO engine against OpenSSL's own client in-process
 * (TLS 1.3 and 1.2 handshakes, ALPN, data both ways, close_notify, a wrong
 * trust anchor, TLS 1.1 and garbage refused), then a real loop serving
 * HTTPS to a client thread: keep-alive, a large body, a chunked stream,
 * Connection: close ending with close_notify, plain HTTP answered 400. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "http_server.h"
#include "tls.h"

#include "tap.h"

static char dir[64], dir2[64], cert_path[128], key_path[128];

/* {====== certificate */

static X509 *load_cert(const char *path) {
  BIO *b = BIO_new_file(path, "r");
  X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
  BIO_free(b);
  return x;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  static char buf[8192];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strdup(buf);
}

static void test_cert(void) {
  char *err = NULL;
  int rc = ml_tls_ensure_cert(dir, NULL, NULL, &err);
  OK(rc == 1, "first start creates a certificate (%s)", err ? err : "");
  free(err);
  struct stat st;
  OK(stat(key_path, &st) == 0 && (st.st_mode & 0777) == 0600, "key is 0600");
  OK(stat(cert_path, &st) == 0 && (st.st_mode & 0777) == 0644, "cert is 0644");
  char *first = slurp(cert_path);

  X509 *x = load_cert(cert_path);
  OK(x != NULL, "certificate parses");
  OK(X509_check_ca(x) >= 1, "CA:TRUE (its own root)");
  OK(X509_check_host(x, "localhost", 0, 0, NULL) == 1, "SAN DNS localhost");
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  OK(X509_check_host(x, host, 0, 0, NULL) == 1, "SAN DNS %s (this host)", host);
  OK(X509_check_ip_asc(x, "127.0.0.1", 0) == 1, "SAN IP 127.0.0.1");
  OK(X509_check_ip_asc(x, "::1", 0) == 1, "SAN IP ::1");
  OK(X509_check_ip_asc(x, "10.1.2.3", 0) != 1, "no other IP");
  EVP_PKEY *pk = X509_get0_pubkey(x);
  char group[64] = "";
  size_t glen = 0;
  EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof group, &glen);
  OK(EVP_PKEY_is_a(pk, "EC") && strcmp(group, "prime256v1") == 0,
     "EC P-256 key (%s)", group);
  time_t in9y = time(NULL) + 9L * 365 * 86400;
  time_t in11y = time(NULL) + 11L * 365 * 86400;
  OK(X509_cmp_time(X509_get0_notAfter(x), &in9y) > 0 &&
         X509_cmp_time(X509_get0_notAfter(x), &in11y) < 0,
     "valid about ten years");
  OK(X509_verify(x, X509_get0_pubkey(x)) == 1, "self-signed");
  OK((X509_get_extended_key_usage(x) & XKU_SSL_SERVER) != 0, "EKU serverAuth");
  X509_free(x);

  rc = ml_tls_ensure_cert(dir, NULL, NULL, NULL);
  char *second = slurp(cert_path);
  OK(rc == 0 && first && second && strcmp(first, second) == 0,
     "second start reuses it");
  free(second);

  const char *hosts[] = {"api.example.test", NULL};
  const char *ips[] = {"10.1.2.3", NULL};
  rc = ml_tls_ensure_cert(dir, hosts, ips, NULL);
  x = load_cert(cert_path);
  OK(rc == 1 && x && X509_check_host(x, "api.example.test", 0, 0, NULL) == 1 &&
         X509_check_ip_asc(x, "10.1.2.3", 0) == 1,
     "a new listen host replaces it with one that covers the host");
  X509_free(x);
  OK(ml_tls_ensure_cert(dir, hosts, ips, NULL) == 0, "and that one is reused");
  OK(ml_tls_ensure_cert(dir, NULL, NULL, NULL) == 0,
     "a subset of the names reuses it too");

  const char *bad[] = {"a,DNS:evil", NULL};
  err = NULL;
  rc = ml_tls_ensure_cert(dir, bad, NULL, &err);
  OK(rc == ML_EINVALID && err && strstr(err, "invalid host name"),
     "a bad host name is refused (%s)", err ? err : "");
  free(err);
  const char *badip[] = {"300.1.1.1", NULL};
  OK(ml_tls_ensure_cert(dir, NULL, badip, NULL) == ML_EINVALID,
     "a bad IP is refused");

  /* A torn write (key of another pair) is detected and repaired. */
  FILE *f = fopen(key_path, "w");
  fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
  fclose(f);
  rc = ml_tls_ensure_cert(dir, hosts, ips, NULL);
  OK(rc == 1, "a broken key is replaced");
  OK(stat(key_path, &st) == 0 && (st.st_mode & 0777) == 0600,
     "the replacement key is 0600");
  err = NULL;
  rc = ml_tls_ensure_cert("/nonexistent/dir", NULL, NULL, &err);
  OK(rc == ML_EIO && err, "unwritable dir reported (%s)", err ? err : "");
  free(err);
  free(first);
}

/* }====== */

/* {====== engine against an in-process OpenSSL client */

typedef struct {
  SSL_CTX *ctx;
  SSL *ssl;
  BIO *rbio, *wbio;
} client_t;

static void client_new(client_t *c, const char *ca_file, int max_version,
                       const char *host) {
  c->ctx = SSL_CTX_new(TLS_client_method());
  if (max_version) {
    SSL_CTX_set_min_proto_version(c->ctx, max_version);
    SSL_CTX_set_max_proto_version(c->ctx, max_version);
    if (max_version < TLS1_2_VERSION) {
      /* Let the old protocol out at all, so the server is what refuses. */
      SSL_CTX_set_security_level(c->ctx, 0);
      SSL_CTX_set_cipher_list(c->ctx, "DEFAULT:@SECLEVEL=0");
    }
  }
  SSL_CTX_load_verify_locations(c->ctx, ca_file, NULL);
  SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
  static const unsigned char alpn[] = "\x02h2\x08http/1.1";
  SSL_CTX_set_alpn_protos(c->ctx, alpn, sizeof alpn - 1);
  c->ssl = SSL_new(c->ctx);
  c->rbio = BIO_new(BIO_s_mem());
  c->wbio = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(c->rbio, -1);
  SSL_set_bio(c->ssl, c->rbio, c->wbio);
  SSL_set_tlsext_host_name(c->ssl, host);
  SSL_set1_host(c->ssl, host);
  SSL_set_connect_state(c->ssl);
}

static void client_free(client_t *c) {
  SSL_free(c->ssl);
  SSL_CTX_free(c->ctx);
}

/* Moves bytes both ways until neither side has anything to say. Plaintext
 * the server decrypted is appended to `plain`. @return the last server
 * read result that was not 0 (or 0). */
static long pump(client_t *c, ml_tls_t *s, char *plain, size_t *plain_len,
                 size_t cap) {
  long last = 0;
  char buf[16384];
  for (int round = 0; round < 50; round++) {
    bool moved = false;
    SSL_do_handshake(c->ssl); /* no-op once done */
    int n;
    while ((n = BIO_read(c->wbio, buf, sizeof buf)) > 0) {
      ml_tls_feed(s, buf, (size_t)n);
      moved = true;
    }
    long r;
    while ((r = ml_tls_read(s, plain + *plain_len, cap - *plain_len)) > 0)
      *plain_len += (size_t)r;
    if (r != 0) last = r;
    size_t m;
    while ((m = ml_tls_take(s, buf, sizeof buf)) > 0) {
      BIO_write(c->rbio, buf, (int)m);
      moved = true;
    }
    if (!moved || last < 0) break;
  }
  return last;
}

static void test_engine(void) {
  ml_tls_ctx_t *ctx;
  char *err = NULL;
  int rc = ml_tls_ctx_new(cert_path, key_path, &ctx, &err);
  OK(rc == 0, "server context from the files (%s)", err ? err : "");
  free(err);

  /* TLS 1.3, hostname verified against the certificate as root. */
  client_t c;
  client_new(&c, cert_path, 0, "localhost");
  ml_tls_t *s = ml_tls_new(ctx);
  char plain[65536];
  size_t plen = 0;
  OK(ml_tls_write(s, "x", 1) == ML_EINVALID, "no plaintext before the handshake");
  long last = pump(&c, s, plain, &plen, sizeof plain);
  OK(last == 0 && ml_tls_ready(s) && SSL_is_init_finished(c.ssl),
     "handshake completes");
  OK(SSL_get_verify_result(c.ssl) == X509_V_OK, "client verified the server");
  OK(strcmp(ml_tls_version(s), "TLSv1.3") == 0, "TLS 1.3 (%s)", ml_tls_version(s));
  const unsigned char *proto;
  unsigned plen_alpn;
  SSL_get0_alpn_selected(c.ssl, &proto, &plen_alpn);
  OK(plen_alpn == 8 && memcmp(proto, "http/1.1", 8) == 0,
     "ALPN picks http/1.1 over h2");

  const char req[] = "GET /version HTTP/1.1\r\nHost: x\r\n\r\n";
  SSL_write(c.ssl, req, sizeof req - 1);
  pump(&c, s, plain, &plen, sizeof plain);
  OK(plen == sizeof req - 1 && memcmp(plain, req, plen) == 0,
     "client request decrypted by the engine");

  /* 100 KiB answer: several records. */
  static char big[100 * 1024], got[100 * 1024 + 1];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (char)('a' + i % 26);
  OK(ml_tls_write(s, big, sizeof big) == 0, "engine encrypts a large answer");
  size_t glen = 0;
  char buf[16384];
  size_t m;
  while ((m = ml_tls_take(s, buf, sizeof buf)) > 0) BIO_write(c.rbio, buf, (int)m);
  int n;
  while ((n = SSL_read(c.ssl, got + glen, (int)(sizeof got - glen))) > 0)
    glen += (size_t)n;
  OK(glen == sizeof big && memcmp(got, big, glen) == 0,
     "client reads it back intact (%zu bytes)", glen);

  OK(ml_tls_close_notify(s) == 0 && ml_tls_pending(s) > 0,
     "close_notify queued");
  while ((m = ml_tls_take(s, buf, sizeof buf)) > 0) BIO_write(c.rbio, buf, (int)m);
  n = SSL_read(c.ssl, got, sizeof got);
  OK(n <= 0 && SSL_get_error(c.ssl, n) == SSL_ERROR_ZERO_RETURN,
     "client sees a clean TLS close");
  OK(ml_tls_write(s, "x", 1) == ML_EINVALID, "no writes after close_notify");
  ml_tls_free(s);
  client_free(&c);

  /* The client's close_notify reads as EOF. */
  client_new(&c, cert_path, TLS1_2_VERSION, "127.0.0.1");
  SSL_set1_host(c.ssl, NULL);
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c.ssl), "127.0.0.1");
  s = ml_tls_new(ctx);
  plen = 0;
  pump(&c, s, plain, &plen, sizeof plain);
  OK(ml_tls_ready(s) && strcmp(ml_tls_version(s), "TLSv1.2") == 0 &&
         SSL_get_verify_result(c.ssl) == X509_V_OK,
     "TLS 1.2 handshake, IP SAN verified (%s)", ml_tls_version(s));
  SSL_shutdown(c.ssl);
  last = pump(&c, s, plain, &plen, sizeof plain);
  OK(last == ML_TLS_EOF, "peer close_notify -> ML_TLS_EOF");
  ml_tls_free(s);
  client_free(&c);

  /* A client trusting another certificate refuses ours. */
  rc = ml_tls_ensure_cert(dir2, NULL, NULL, NULL);
  char other[128];
  snprintf(other, sizeof other, "%s/tls.crt", dir2);
  client_new(&c, other, 0, "localhost");
  s = ml_tls_new(ctx);
  plen = 0;
  last = pump(&c, s, plain, &plen, sizeof plain);
  OK(rc == 1 && !SSL_is_init_finished(c.ssl) &&
         SSL_get_verify_result(c.ssl) != X509_V_OK,
     "wrong CA: client fails verification (%s)",
     X509_verify_cert_error_string(SSL_get_verify_result(c.ssl)));
  OK(last == ML_EIO && *ml_tls_error(s), "server sees the alert (%s)",
     ml_tls_error(s));
  ml_tls_free(s);
  client_free(&c);

  /* TLS 1.1 is below the floor. */
  client_new(&c, cert_path, TLS1_1_VERSION, "localhost");
  s = ml_tls_new(ctx);
  plen = 0;
  last = pump(&c, s, plain, &plen, sizeof plain);
  OK(last == ML_EIO && !ml_tls_ready(s), "TLS 1.1 refused (%s)", ml_tls_error(s));
  ml_tls_free(s);
  client_free(&c);

  /* Garbage instead of a ClientHello. */
  s = ml_tls_new(ctx);
  const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ml_tls_feed(s, junk, sizeof junk - 1);
  long r = ml_tls_read(s, plain, sizeof plain);
  OK(r == ML_EIO && *ml_tls_error(s), "bad handshake -> ML_EIO (%s)",
     ml_tls_error(s));
  ml_tls_free(s);

  /* Byte-by-byte delivery still completes the handshake. */
  client_new(&c, cert_path, 0, "localhost");
  s = ml_tls_new(ctx);
  for (int round = 0; round < 20 && !ml_tls_ready(s); round++) {
    SSL_do_handshake(c.ssl);
    while ((n = BIO_read(c.wbio, buf, 1)) > 0) {
      ml_tls_feed(s, buf, 1);
      ml_tls_read(s, plain, sizeof plain);
    }
    while ((m = ml_tls_take(s, buf, sizeof buf)) > 0) BIO_write(c.rbio, buf, (int)m);
  }
  SSL_do_handshake(c.ssl);
  OK(ml_tls_ready(s) && SSL_is_init_finished(c.ssl), "handshake fed 1 byte at a time");
  ml_tls_free(s);
  client_free(&c);

  err = NULL;
  ml_tls_ctx_t *bad;
  rc = ml_tls_ctx_new(cert_path, other, &bad, &err);
  OK(rc == ML_EIO && err, "a certificate as key is refused (%s)", err ? err : "");
  free(err);
  ml_tls_ctx_unref(ctx);
}

/* }====== */

/* {====== HTTPS listener on a real loop */

static struct {
  ml_loop_t loop;
  ml_httpd_t *srv;
  ml_httpd_listener_t *l;
  int port;
  uv_async_t wake;
  atomic_int client_done;
  int saw_tls;
} S;

static void respond(uint64_t id, const char *body, size_t len) {
  ml_http_field_t h = {"Content-Type", 12, "text/plain", 10};
  ml_httpd_respond(S.srv, id, 200, &h, 1, body, len);
}

static void responder(ml_loop_t *loop, void *ud) {
  (void)ud;
  ml_event_t *ev;
  static char big[1 << 20];
  while ((ev = ml_loop_pop(loop)) != NULL) {
    if (ev->type == ML_EV_HTTPD_REQUEST) {
      ml_httpd_request_t *r = (ml_httpd_request_t *)ev;
      if (r->tls && strcmp(r->transport, "tcp") == 0) S.saw_tls++;
      if (strcmp(r->path, "/big") == 0) {
        memset(big, 'z', sizeof big);
        respond(r->req_id, big, sizeof big);
      } else if (strcmp(r->path, "/stream") == 0) {
        ml_httpd_stream_begin(S.srv, r->req_id, 200, NULL, 0);
        ml_httpd_stream_write(S.srv, r->req_id, "one", 3);
        ml_httpd_stream_write(S.srv, r->req_id, "two", 3);
        ml_httpd_stream_end(S.srv, r->req_id);
      } else if (strcmp(r->path, "/echo") == 0) {
        respond(r->req_id, r->body, r->body_len);
      } else {
        respond(r->req_id, r->path, r->path_len);
      }
    }
    ml_event_free(ev);
  }
}

static void on_wake(uv_async_t *a) { (void)a; }

static bool client_finished(void *ud) {
  (void)ud;
  return atomic_load(&S.client_done);
}

static int connect_port(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

/* Reads until `want` is seen or the stream ends; @return bytes read. */
static size_t ssl_read_until(SSL *ssl, char *buf, size_t cap, const char *want,
                             size_t need) {
  size_t len = 0;
  while (len < cap - 1) {
    int n = SSL_read(ssl, buf + len, (int)(cap - 1 - len));
    if (n <= 0) break;
    len += (size_t)n;
    buf[len] = '\0';
    if (want && strstr(buf, want) && len >= need) break;
  }
  buf[len] = '\0';
  return len;
}

static void *client_main(void *arg) {
  (void)arg;
  SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_locations(cctx, cert_path, NULL);
  SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
  static char buf[(1 << 20) + 4096];

  int fd = connect_port(S.port);
  SSL *ssl = SSL_new(cctx);
  SSL_set_fd(ssl, fd);
  SSL_set1_host(ssl, "localhost");
  int hs = SSL_connect(ssl);
  OK(hs == 1, "HTTPS handshake with the listener");
  const char r1[] = "GET /first HTTP/1.1\r\nHost: x\r\n\r\n";
  SSL_write(ssl, r1, sizeof r1 - 1);
  size_t n = ssl_read_until(ssl, buf, sizeof buf, "/first", 0);
  OK(n > 0 && strstr(buf, "HTTP/1.1 200 OK") && strstr(buf, "\r\n\r\n/first"),
     "first request answered over TLS");
  const char r2[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                    "GET /second HTTP/1.1\r\nHost: x\r\n\r\n";
  SSL_write(ssl, r2, sizeof r2 - 1);
  n = ssl_read_until(ssl, buf, sizeof buf, "/second", 0);
  OK(strstr(buf, "\r\n\r\nhello") && strstr(buf, "\r\n\r\n/second"),
     "keep-alive: pipelined requests answered in order");
  const char r3[] = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
  SSL_write(ssl, r3, sizeof r3 - 1);
  n = ssl_read_until(ssl, buf, sizeof buf, "\r\n\r\n", 1048576 + 60);
  char *body = strstr(buf, "\r\n\r\n");
  OK(body && n - (size_t)(body + 4 - buf) == 1048576 && body[4] == 'z' &&
         buf[n - 1] == 'z',
     "1 MiB body intact (%zu bytes)", body ? n - (size_t)(body + 4 - buf) : 0);
  const char r4[] = "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
  SSL_write(ssl, r4, sizeof r4 - 1);
  n = ssl_read_until(ssl, buf, sizeof buf, "0\r\n\r\n", 0);
  OK(strstr(buf, "chunked") && strstr(buf, "3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n"),
     "chunked stream over TLS");
  const char r5[] = "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  SSL_write(ssl, r5, sizeof r5 - 1);
  n = ssl_read_until(ssl, buf, sizeof buf, NULL, 0);
  int last = SSL_get_error(ssl, 0);
  OK(strstr(buf, "Connection: close") && strstr(buf, "/last"),
     "Connection: close answered");
  int n0 = SSL_read(ssl, buf, 10);
  OK(n0 <= 0 && (SSL_get_error(ssl, n0) == SSL_ERROR_ZERO_RETURN ||
                 last == SSL_ERROR_ZERO_RETURN),
     "then the server sends close_notify");
  SSL_free(ssl);
  close(fd);

  /* Plain HTTP to the TLS port. */
  fd = connect_port(S.port);
  const char plain[] = "GET /version HTTP/1.1\r\nHost: x\r\n\r\n";
  send(fd, plain, sizeof plain - 1, MSG_NOSIGNAL);
  size_t len = 0;
  ssize_t r;
  while ((r = recv(fd, buf + len, sizeof buf - 1 - len, 0)) > 0) len += (size_t)r;
  buf[len] = '\0';
  OK(strncmp(buf, "HTTP/1.0 400 Bad Request", 24) == 0 &&
         strstr(buf, "Client sent an HTTP request to an HTTPS server."),
     "plain HTTP gets Go's 400 answer");
  close(fd);

  /* A client that does not trust the certificate. */
  SSL_CTX *wrong = SSL_CTX_new(TLS_client_method());
  char other[128];
  snprintf(other, sizeof other, "%s/tls.crt", dir2);
  SSL_CTX_load_verify_locations(wrong, other, NULL);
  SSL_CTX_set_verify(wrong, SSL_VERIFY_PEER, NULL);
  fd = connect_port(S.port);
  ssl = SSL_new(wrong);
  SSL_set_fd(ssl, fd);
  OK(SSL_connect(ssl) != 1 && SSL_get_verify_result(ssl) != X509_V_OK,
     "a client with another CA fails verification");
  SSL_free(ssl);
  close(fd);
  SSL_CTX_free(wrong);

  /* The server is still fine afterwards. */
  fd = connect_port(S.port);
  ssl = SSL_new(cctx);
  SSL_set_fd(ssl, fd);
  SSL_connect(ssl);
  SSL_write(ssl, r1, sizeof r1 - 1);
  n = ssl_read_until(ssl, buf, sizeof buf, "/first", 0);
  OK(strstr(buf, "\r\n\r\n/first") != NULL, "server serves after failed peers");
  SSL_shutdown(ssl); /* our close_notify: the server closes quietly */
  SSL_free(ssl);
  close(fd);

  SSL_CTX_free(cctx);
  ERR_clear_error();
  atomic_store(&S.client_done, 1);
  uv_async_send(&S.wake);
  return NULL;
}

static void test_listener(void) {
  uv_loop_t uv;
  uv_loop_init(&uv);
  ml_loop_init(&S.loop, &uv);
  ml_loop_add_hook(&S.loop, responder, NULL);
  OK(ml_httpd_new(&S.loop, NULL, &S.srv) == 0, "server created");
  ml_tls_ctx_t *ctx;
  ml_tls_ctx_new(cert_path, key_path, &ctx, NULL);
  ml_httpd_listener_t *bad;
  OK(ml_httpd_listen_tls(S.srv, "unix:/tmp/x.sock", ctx, 1, &bad) == ML_EINVALID,
     "TLS on a unix socket refused");
  int rc = ml_httpd_listen_tls(S.srv, "https://127.0.0.1:0", ctx, 1, &S.l);
  ml_tls_ctx_unref(ctx); /* the listener keeps its own reference */
  S.port = S.l ? ml_httpd_listener_port(S.l) : 0;
  char want[64];
  snprintf(want, sizeof want, "https://127.0.0.1:%d", S.port);
  OK(rc == 0 && strcmp(ml_httpd_listener_url(S.l), want) == 0,
     "TLS listener at %s", S.l ? ml_httpd_listener_url(S.l) : "?");
  uv_async_init(&uv, &S.wake, on_wake);
  pthread_t t;
  pthread_create(&t, NULL, client_main, NULL);
  ml_loop_run(&S.loop, client_finished, NULL);
  pthread_join(t, NULL);
  OK(S.saw_tls == 7, "requests flagged tls (%d)", S.saw_tls);
  ml_httpd_free(S.srv);
  uv_close((uv_handle_t *)&S.wake, NULL);
  while (uv_run(&uv, UV_RUN_NOWAIT)) ml_loop_run_hooks(&S.loop);
  ml_loop_run_hooks(&S.loop);
  ml_loop_close(&S.loop);
  OK(uv_loop_close(&uv) == 0, "uv_loop_close() == 0");
}

/* }====== */

static void rm_dir(const char *d) {
  char p[160];
  const char *names[] = {"tls.crt", "tls.key"};
  for (int i = 0; i < 2; i++) {
    snprintf(p, sizeof p, "%s/%s", d, names[i]);
    unlink(p);
  }
  rmdir(d);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/ml-tls-XXXXXX");
  snprintf(dir2, sizeof dir2, "/tmp/ml-tls2-XXXXXX");
  if (!mkdtemp(dir) || !mkdtemp(dir2)) return 1;
  snprintf(cert_path, sizeof cert_path, "%s/tls.crt", dir);
  snprintf(key_path, sizeof key_path, "%s/tls.key", dir);
  test_cert();
  test_engine();
  test_listener();
  rm_dir(dir);
  rm_dir(dir2);
  return tap_done();
}
