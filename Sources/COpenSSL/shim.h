// OpenSSL 3 for Swift: the library's headers plus plain functions for what Swift cannot call —
// function-like macros (SSL_CTX_set_mode, SSL_CTX_set_tlsext_servername_callback, ...),
// STACK_OF accessors, OSSL_PARAM arrays and option bits built with SSL_OP_BIT().
// Everything here is `static inline`: a system-library target has no .c file of its own.
#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <string.h>

// MARK: SSL_CTX configuration (macros over SSL_CTX_ctrl)

/// Protocol range, e.g. TLS1_2_VERSION ... TLS1_3_VERSION. 1 on success.
static inline int cossl_ctx_set_versions(SSL_CTX *ctx, int min, int max) {
    return SSL_CTX_set_min_proto_version(ctx, min) == 1 && SSL_CTX_set_max_proto_version(ctx, max) == 1;
}

/// Non-blocking server modes: SSL_write may return after part of the buffer (PARTIAL_WRITE),
/// a retried write may come from a different address (ACCEPT_MOVING_WRITE_BUFFER), and idle
/// connections give their read/write record buffers back (RELEASE_BUFFERS).
static inline void cossl_ctx_set_server_modes(SSL_CTX *ctx) {
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                              | SSL_MODE_RELEASE_BUFFERS);
}

/// A bulk connection (an edge tunnel): OpenSSL reads ahead into a 64 KiB buffer it keeps (one
/// recv for several records instead of two per record) and never releases its record buffers.
static inline void cossl_set_bulk(SSL *ssl) {
    SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
    SSL_set_default_read_buffer_len(ssl, 65536);
    SSL_set_read_ahead(ssl, 1);
}

/// Server option bits: no renegotiation (a CPU-cost lever for clients), no compression (CRIME),
/// EOF without close_notify reported as a clean close (SSL_ERROR_ZERO_RETURN) rather than a
/// protocol error, and SSL_OP_NO_TICKET when tickets are off.
static inline uint64_t cossl_server_options(int tickets) {
    uint64_t op = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF;
    if (!tickets) op |= SSL_OP_NO_TICKET;
    return op;
}

static inline int cossl_ctx_set_groups(SSL_CTX *ctx, const char *list) {
    return (int)SSL_CTX_set1_groups_list(ctx, list);
}

static inline void cossl_ctx_set_session_cache_off(SSL_CTX *ctx) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}

/// Adds one certificate to the chain of the certificate set last (SSL_CTX_use_certificate).
static inline int cossl_ctx_add_chain_cert(SSL_CTX *ctx, X509 *x) {
    return (int)SSL_CTX_add1_chain_cert(ctx, x);
}

typedef int (*cossl_servername_cb)(SSL *ssl, int *alert, void *arg);

static inline int cossl_ctx_set_servername_callback(SSL_CTX *ctx, cossl_servername_cb cb, void *arg) {
    if (SSL_CTX_set_tlsext_servername_callback(ctx, cb) != 1) return 0;
    return SSL_CTX_set_tlsext_servername_arg(ctx, arg) == 1;
}

// MARK: Per-connection helpers (client side is used by the tests)

static inline int cossl_set_versions(SSL *ssl, int min, int max) {
    return SSL_set_min_proto_version(ssl, min) == 1 && SSL_set_max_proto_version(ssl, max) == 1;
}

static inline int cossl_set_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

static inline int cossl_set_sigalgs(SSL *ssl, const char *list) {
    return (int)SSL_set1_sigalgs_list(ssl, list);
}

// MARK: Session tickets

/// Keys an HMAC-SHA256 context for the ticket callback (SSL_CTX_set_tlsext_ticket_key_evp_cb).
static inline int cossl_mac_set_hmac_sha256_key(EVP_MAC_CTX *mac, const unsigned char *key, size_t len) {
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)key, len);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(mac, params);
}

// MARK: Certificates and keys

/// Reads the next private key in PEM; never prompts for a passphrase (an encrypted key fails).
static inline int cossl_no_password(char *buf, int size, int rwflag, void *u) {
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}
static inline EVP_PKEY *cossl_read_private_key(BIO *bio) {
    return PEM_read_bio_PrivateKey(bio, NULL, cossl_no_password, NULL);
}
static inline X509 *cossl_read_x509(BIO *bio) {
    return PEM_read_bio_X509(bio, NULL, cossl_no_password, NULL);
}

/// DER round trips: encode into a buffer from OpenSSL (free with cossl_free / cossl_clear_free).
static inline int cossl_x509_to_der(X509 *x, unsigned char **out) { *out = NULL; return i2d_X509(x, out); }
static inline int cossl_pkey_to_der(EVP_PKEY *k, unsigned char **out) { *out = NULL; return i2d_PrivateKey(k, out); }
static inline X509 *cossl_x509_from_der(const unsigned char *p, long len) { return d2i_X509(NULL, &p, len); }
static inline EVP_PKEY *cossl_pkey_from_der(const unsigned char *p, long len) { return d2i_AutoPrivateKey(NULL, &p, len); }
static inline void cossl_free(void *p) { OPENSSL_free(p); }
static inline void cossl_clear_free(void *p, size_t len) { OPENSSL_clear_free(p, len); }

/// 1 ECDSA, 2 RSA, 3 RSA-PSS, 4 Ed25519, 5 Ed448, 0 anything else.
static inline int cossl_pkey_kind(const EVP_PKEY *k) {
    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_EC: return 1;
    case EVP_PKEY_RSA: return 2;
    case EVP_PKEY_RSA_PSS: return 3;
    case EVP_PKEY_ED25519: return 4;
    case EVP_PKEY_ED448: return 5;
    default: return 0;
    }
}

/// subjectAltName as a stack (NULL when the extension is absent); free with cossl_general_names_free.
static inline GENERAL_NAMES *cossl_x509_san(X509 *x) {
    return (GENERAL_NAMES *)X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
}
static inline int cossl_general_names_count(GENERAL_NAMES *g) { return sk_GENERAL_NAME_num(g); }
/// The i-th name if it is a dNSName: its bytes in *out and its length; -1 otherwise.
static inline int cossl_general_name_dns(GENERAL_NAMES *g, int i, const unsigned char **out) {
    const GENERAL_NAME *n = sk_GENERAL_NAME_value(g, i);
    if (n == NULL || n->type != GEN_DNS) return -1;
    *out = ASN1_STRING_get0_data(n->d.dNSName);
    return ASN1_STRING_length(n->d.dNSName);
}
static inline void cossl_general_names_free(GENERAL_NAMES *g) { GENERAL_NAMES_free(g); }

/// The subject's last commonName in UTF-8 (free with cossl_free); its length, or -1 when absent.
static inline int cossl_x509_common_name(X509 *x, unsigned char **out) {
    X509_NAME *name = X509_get_subject_name(x);
    int i = -1, last = -1;
    while ((i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0) last = i;
    *out = NULL;
    if (last < 0) return -1;
    return ASN1_STRING_to_UTF8(out, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last)));
}

/// An ASN1_TIME as seconds since the Unix epoch (UTC). 1 on success.
static inline int cossl_asn1_time_to_unix(const ASN1_TIME *t, int64_t *out) {
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    // Days from civil (proleptic Gregorian), so no dependence on timegm or the local zone.
    int64_t y = (int64_t)tm.tm_year + 1900, m = tm.tm_mon + 1, d = tm.tm_mday;
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    *out = days * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
    return 1;
}

/// The reason code of a packed error (ERR_GET_REASON is an inline in 3.0 but keep one door).
static inline int cossl_error_reason(unsigned long e) { return ERR_GET_REASON(e); }

// MARK: The socket BIO's flags (macros over BIO_set_flags / BIO_test_flags)

/// "Try again when the socket is readable" / "... writable": what SSL_get_error turns into
/// SSL_ERROR_WANT_READ / SSL_ERROR_WANT_WRITE.
static inline void cossl_bio_set_retry_read(BIO *b) { BIO_set_retry_read(b); }
static inline void cossl_bio_set_retry_write(BIO *b) { BIO_set_retry_write(b); }
static inline void cossl_bio_clear_retry(BIO *b) { BIO_clear_retry_flags(b); }
/// The peer closed its side: BIO_eof answers 1 from now on, which is how OpenSSL tells an EOF
/// without close_notify (SSL_OP_IGNORE_UNEXPECTED_EOF) from an I/O error.
static inline void cossl_bio_set_eof(BIO *b) { BIO_set_flags(b, BIO_FLAGS_IN_EOF); }
static inline int cossl_bio_is_eof(BIO *b) { return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0; }

#endif
