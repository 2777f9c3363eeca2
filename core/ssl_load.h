/* OpenSSL, loaded when the server first needs TLS (its certificate, an
 * HTTPS listener) or a SHA-1 (a WebSocket handshake): the libssl and
 * libcrypto functions core/tls.c and core/ws_frame.c call, in a
 * table filled with dlopen + dlsym. CLI calls and `moonlet lua` images never
 * load it; relocating libcrypto was most of their start-up.
 *
 * core/tls.c and ws_frame.c define ML_SSL_REDIRECT before including this
 * header: each name below then reads as the table's entry, so the code (and
 * OpenSSL's own macros, which expand to these names) calls through the
 * table. */
#ifndef ML_SSL_LOAD_H
#define ML_SSL_LOAD_H

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* Every function of the table, for the loader and the redirects. */
#define ML_SSL_FUNCTIONS(XX) \
  XX(BIO_ctrl) XX(BIO_ctrl_pending) XX(BIO_free) XX(BIO_new) \
  XX(BIO_new_file) XX(BIO_read_ex) XX(BIO_s_mem) XX(BIO_write) XX(BN_free) \
  XX(BN_new) XX(BN_rand) XX(BN_to_ASN1_INTEGER) XX(ERR_clear_error) \
  XX(ERR_peek_last_error) XX(ERR_reason_error_string) XX(EVP_Digest) \
  XX(EVP_PKEY_Q_keygen) \
  XX(EVP_PKEY_free) XX(EVP_sha1) XX(EVP_sha256) XX(OPENSSL_cleanse) \
  XX(PEM_read_bio_PrivateKey) XX(PEM_read_bio_X509) \
  XX(PEM_write_bio_PrivateKey) XX(PEM_write_bio_X509) \
  XX(X509V3_EXT_conf_nid) XX(X509V3_set_ctx) XX(X509_EXTENSION_free) \
  XX(X509_NAME_add_entry_by_txt) XX(X509_add_ext) XX(X509_check_host) \
  XX(X509_check_ip_asc) XX(X509_check_private_key) XX(X509_cmp_time) \
  XX(X509_free) XX(X509_get0_notAfter) XX(X509_get_serialNumber) \
  XX(X509_get_subject_name) XX(X509_getm_notAfter) XX(X509_getm_notBefore) \
  XX(X509_gmtime_adj) XX(X509_new) XX(X509_set_issuer_name) \
  XX(X509_set_pubkey) XX(X509_set_version) XX(X509_sign) \
  XX(X509_time_adj_ex) XX(SSL_CTX_check_private_key) XX(SSL_CTX_ctrl) \
  XX(SSL_CTX_free) XX(SSL_CTX_new) XX(SSL_CTX_set_alpn_select_cb) \
  XX(SSL_CTX_set_num_tickets) XX(SSL_CTX_set_options) \
  XX(SSL_CTX_use_PrivateKey_file) XX(SSL_CTX_use_certificate_chain_file) \
  XX(SSL_free) XX(SSL_get_error) XX(SSL_get_version) \
  XX(SSL_is_init_finished) XX(SSL_new) XX(SSL_read_ex) \
  XX(SSL_select_next_proto) XX(SSL_set_accept_state) XX(SSL_set_bio) \
  XX(SSL_shutdown) XX(SSL_write_ex) XX(TLS_server_method)

/* Pointer types from OpenSSL's own declarations: calls through the table
 * are checked against the real prototypes. */
typedef struct {
#define ML_SSL_MEMBER(name) __typeof__(name) *name;
  ML_SSL_FUNCTIONS(ML_SSL_MEMBER)
#undef ML_SSL_MEMBER
} ml_ssl_api_t;

/* The table; valid once ml_ssl_load() returned 0. */
extern ml_ssl_api_t ml__ssl;

/**
 * Loads libssl (and with it libcrypto), once per process; later calls
 * return the first outcome.
 * @param why NULL or receives the reason of a failure
 * @return 0 or ML_ENOTFOUND (no library, or a function missing)
 */
int ml_ssl_load(const char **why);

#ifdef ML_SSL_REDIRECT
#define BIO_ctrl (ml__ssl.BIO_ctrl)
#define BIO_ctrl_pending (ml__ssl.BIO_ctrl_pending)
#define BIO_free (ml__ssl.BIO_free)
#define BIO_new (ml__ssl.BIO_new)
#define BIO_new_file (ml__ssl.BIO_new_file)
#define BIO_read_ex (ml__ssl.BIO_read_ex)
#define BIO_s_mem (ml__ssl.BIO_s_mem)
#define BIO_write (ml__ssl.BIO_write)
#define BN_free (ml__ssl.BN_free)
#define BN_new (ml__ssl.BN_new)
#define BN_rand (ml__ssl.BN_rand)
#define BN_to_ASN1_INTEGER (ml__ssl.BN_to_ASN1_INTEGER)
#define ERR_clear_error (ml__ssl.ERR_clear_error)
#define ERR_peek_last_error (ml__ssl.ERR_peek_last_error)
#define ERR_reason_error_string (ml__ssl.ERR_reason_error_string)
#define EVP_Digest (ml__ssl.EVP_Digest)
#define EVP_PKEY_Q_keygen (ml__ssl.EVP_PKEY_Q_keygen)
#define EVP_PKEY_free (ml__ssl.EVP_PKEY_free)
#define EVP_sha1 (ml__ssl.EVP_sha1)
#define EVP_sha256 (ml__ssl.EVP_sha256)
#define OPENSSL_cleanse (ml__ssl.OPENSSL_cleanse)
#define PEM_read_bio_PrivateKey (ml__ssl.PEM_read_bio_PrivateKey)
#define PEM_read_bio_X509 (ml__ssl.PEM_read_bio_X509)
#define PEM_write_bio_PrivateKey (ml__ssl.PEM_write_bio_PrivateKey)
#define PEM_write_bio_X509 (ml__ssl.PEM_write_bio_X509)
#define X509V3_EXT_conf_nid (ml__ssl.X509V3_EXT_conf_nid)
#define X509V3_set_ctx (ml__ssl.X509V3_set_ctx)
#define X509_EXTENSION_free (ml__ssl.X509_EXTENSION_free)
#define X509_NAME_add_entry_by_txt (ml__ssl.X509_NAME_add_entry_by_txt)
#define X509_add_ext (ml__ssl.X509_add_ext)
#define X509_check_host (ml__ssl.X509_check_host)
#define X509_check_ip_asc (ml__ssl.X509_check_ip_asc)
#define X509_check_private_key (ml__ssl.X509_check_private_key)
#define X509_cmp_time (ml__ssl.X509_cmp_time)
#define X509_free (ml__ssl.X509_free)
#define X509_get0_notAfter (ml__ssl.X509_get0_notAfter)
#define X509_get_serialNumber (ml__ssl.X509_get_serialNumber)
#define X509_get_subject_name (ml__ssl.X509_get_subject_name)
#define X509_getm_notAfter (ml__ssl.X509_getm_notAfter)
#define X509_getm_notBefore (ml__ssl.X509_getm_notBefore)
#define X509_gmtime_adj (ml__ssl.X509_gmtime_adj)
#define X509_new (ml__ssl.X509_new)
#define X509_set_issuer_name (ml__ssl.X509_set_issuer_name)
#define X509_set_pubkey (ml__ssl.X509_set_pubkey)
#define X509_set_version (ml__ssl.X509_set_version)
#define X509_sign (ml__ssl.X509_sign)
#define X509_time_adj_ex (ml__ssl.X509_time_adj_ex)
#define SSL_CTX_check_private_key (ml__ssl.SSL_CTX_check_private_key)
#define SSL_CTX_ctrl (ml__ssl.SSL_CTX_ctrl)
#define SSL_CTX_free (ml__ssl.SSL_CTX_free)
#define SSL_CTX_new (ml__ssl.SSL_CTX_new)
#define SSL_CTX_set_alpn_select_cb (ml__ssl.SSL_CTX_set_alpn_select_cb)
#define SSL_CTX_set_num_tickets (ml__ssl.SSL_CTX_set_num_tickets)
#define SSL_CTX_set_options (ml__ssl.SSL_CTX_set_options)
#define SSL_CTX_use_PrivateKey_file (ml__ssl.SSL_CTX_use_PrivateKey_file)
#define SSL_CTX_use_certificate_chain_file (ml__ssl.SSL_CTX_use_certificate_chain_file)
#define SSL_free (ml__ssl.SSL_free)
#define SSL_get_error (ml__ssl.SSL_get_error)
#define SSL_get_version (ml__ssl.SSL_get_version)
#define SSL_is_init_finished (ml__ssl.SSL_is_init_finished)
#define SSL_new (ml__ssl.SSL_new)
#define SSL_read_ex (ml__ssl.SSL_read_ex)
#define SSL_select_next_proto (ml__ssl.SSL_select_next_proto)
#define SSL_set_accept_state (ml__ssl.SSL_set_accept_state)
#define SSL_set_bio (ml__ssl.SSL_set_bio)
#define SSL_shutdown (ml__ssl.SSL_shutdown)
#define SSL_write_ex (ml__ssl.SSL_write_ex)
#define TLS_server_method (ml__ssl.TLS_server_method)
#endif

#endif
