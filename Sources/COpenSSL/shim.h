// The system's OpenSSL 3 (libssl-dev), as SpindleTLS sees it. Swift cannot call C macros,
// so the few OpenSSL calls that are macros are wrapped here as static inline functions.
// Nothing else: every use of these lives in Sources/SpindleTLS.
#ifndef SPINDLE_COPENSSL_SHIM_H
#define SPINDLE_COPENSSL_SHIM_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/rand.h>
#include <openssl/opensslv.h>

static inline int spindle_ssl_ctx_set_min_proto(SSL_CTX *ctx, int v) { return (int)SSL_CTX_set_min_proto_version(ctx, v); }
static inline int spindle_ssl_ctx_set_max_proto(SSL_CTX *ctx, int v) { return (int)SSL_CTX_set_max_proto_version(ctx, v); }
static inline long spindle_ssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long spindle_ssl_ctx_set_session_cache_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_session_cache_mode(ctx, mode); }
static inline int spindle_ssl_ctx_add1_chain_cert(SSL_CTX *ctx, X509 *x) { return (int)SSL_CTX_add1_chain_cert(ctx, x); }
static inline int spindle_ssl_ctx_set_servername_callback(SSL_CTX *ctx, int (*cb)(SSL *, int *, void *), void *arg) {
    if (!SSL_CTX_set_tlsext_servername_callback(ctx, cb)) return 0;
    return (int)SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}
static inline int spindle_ssl_set_tlsext_host_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }
static inline int spindle_ssl_set_app_data(SSL *ssl, void *data) { return SSL_set_app_data(ssl, data); }
static inline void *spindle_ssl_get_app_data(const SSL *ssl) { return SSL_get_app_data(ssl); }
static inline long spindle_bio_set_mem_eof_return(BIO *b, long v) { return BIO_set_mem_eof_return(b, v); }
static inline long spindle_bio_get_mem_data(BIO *b, char **p) { return BIO_get_mem_data(b, p); }

// EVP_EC_gen is a macro over a variadic function: a fresh P-256 key.
static inline EVP_PKEY *spindle_ec_p256_keygen(void) { return EVP_EC_gen("P-256"); }

// SSL_OP_* and SSL_MODE_* are 64-bit macros built from shifts, which Swift does not import
// as constants.
static inline uint64_t spindle_ssl_op_no_renegotiation(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t spindle_ssl_op_no_compression(void) { return SSL_OP_NO_COMPRESSION; }
static inline uint64_t spindle_ssl_op_cipher_server_preference(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
static inline long spindle_ssl_mode_release_buffers(void) { return SSL_MODE_RELEASE_BUFFERS; }
static inline long spindle_ssl_mode_partial_write(void) { return SSL_MODE_ENABLE_PARTIAL_WRITE; }
static inline long spindle_ssl_mode_moving_buffer(void) { return SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER; }
static inline long spindle_ssl_mode_no_auto_chain(void) { return SSL_MODE_NO_AUTO_CHAIN; }
static inline unsigned long spindle_x509_v_flag_crl_check(void) { return X509_V_FLAG_CRL_CHECK; }
static inline unsigned long spindle_x509_v_flag_crl_check_all(void) { return X509_V_FLAG_CRL_CHECK_ALL; }

#endif
