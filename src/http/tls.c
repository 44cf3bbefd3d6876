/* TLS for the public listener: OpenSSL context set-up. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>

#include "server_int.h"

/* TLS 1.2 ciphers: ECDHE key exchange with AEAD only (forward secrecy,
 * no CBC, no RSA key transport). TLS 1.3 suites are OpenSSL's defaults. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

static int ssl_fail(recd_err_t *err, SSL_CTX *ctx, const char *what, const char *path)
{
    char buf[256] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return recd_err_set(err, RECD_ERR, "%s '%s': %s", what, path ? path : "", buf);
}

SSL_CTX *recd_http_tls_ctx_new(const char *cert, const char *key, recd_err_t *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ssl_fail(err, NULL, "tls: cannot create context", "");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1) {
        ssl_fail(err, ctx, "tls: cipher list", "");
        return NULL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ssl_fail(err, ctx, "tls.cert: cannot load certificate chain", cert);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        ssl_fail(err, ctx, "tls.key: cannot load private key", key);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_fail(err, ctx, "tls.key: does not match tls.cert", key);
        return NULL;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    return ctx;
}
