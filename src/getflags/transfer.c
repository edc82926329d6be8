#include "transfer.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

/* Where an SSL_CTX keeps the run's counters for its info callback. */
static int stats_index = -1;

int gf_tls_init(struct gf_tls *t, const char *cacert, struct gf_conn_stats *stats, char *msg,
                size_t msgsz)
{
    t->extra = NULL;
    t->stats = stats;
    msg[0] = '\0';
    if (stats_index < 0)
        stats_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (stats_index < 0) {
        snprintf(msg, msgsz, "getflags: cannot set up TLS: out of memory\n");
        return -1;
    }
    if (!cacert)
        return 0;
    FILE *f = fopen(cacert, "r");
    if (!f) {
        snprintf(msg, msgsz, "getflags: cannot read --cacert %s: %s\n", cacert, strerror(errno));
        return -1;
    }
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509 *x;
    ERR_clear_error();
    while (certs && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            break;
        }
    }
    /* The loop ends at the end of the file (PEM_R_NO_START_LINE) or at a
     * certificate it cannot read. */
    unsigned long err = ERR_peek_last_error();
    int at_end = ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
    int bad = ferror(f) || (err != 0 && !at_end);
    fclose(f);
    ERR_clear_error();
    if (!certs || bad || sk_X509_num(certs) == 0) {
        snprintf(msg, msgsz, "getflags: cannot use --cacert %s: %s\n", cacert,
                 !certs ? "out of memory"
                 : bad  ? "not a readable PEM certificate file"
                        : "no PEM certificate in it");
        sk_X509_pop_free(certs, X509_free);
        return -1;
    }
    t->extra = certs;
    return 0;
}

static void on_tls_info(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_DONE))
        return;
    struct gf_conn_stats *s = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), stats_index);
    if (!s)
        return;
    s->tls_handshakes++;
    if (SSL_session_reused((SSL *)ssl))
        s->tls_resumed++;
}

/* CURLOPT_SSL_CTX_FUNCTION: runs once per new TLS connection. */
static CURLcode on_ssl_ctx(CURL *e, void *sslctx, void *arg)
{
    (void)e;
    struct gf_tls *t = arg;
    SSL_CTX *ctx = sslctx;
    SSL_CTX_set_ex_data(ctx, stats_index, t->stats);
    SSL_CTX_set_info_callback(ctx, on_tls_info);
    if (t->extra) {
        /* Whichever store the connection ends up with (libcurl's cached
         * one, or this one, which it then caches), it holds these. A
         * certificate already there is not an error. */
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        STACK_OF(X509) *certs = t->extra;
        for (int i = 0; i < sk_X509_num(certs); i++)
            if (!X509_STORE_add_cert(store, sk_X509_value(certs, i))) {
                unsigned long err = ERR_peek_last_error();
                if (ERR_GET_REASON(err) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
                    ERR_clear_error();
                    return CURLE_SSL_CACERT_BADFILE;
                }
            }
        ERR_clear_error();
    }
    return CURLE_OK;
}

CURLcode gf_tls_setup_easy(struct gf_tls *t, CURL *e, const char **what)
{
    CURLcode rc;
    const char *cainfo = curl_version_info(CURLVERSION_NOW)->cainfo;
    /* No CA path: libcurl then caches the store built from the bundle. */
    if ((rc = curl_easy_setopt(e, CURLOPT_CAPATH, NULL)) != CURLE_OK) {
        *what = "CURLOPT_CAPATH";
        return rc;
    }
    if (cainfo && (rc = curl_easy_setopt(e, CURLOPT_CAINFO, cainfo)) != CURLE_OK) {
        *what = "CURLOPT_CAINFO";
        return rc;
    }
    if ((rc = curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx)) != CURLE_OK) {
        *what = "CURLOPT_SSL_CTX_FUNCTION";
        return rc;
    }
    if ((rc = curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, t)) != CURLE_OK) {
        *what = "CURLOPT_SSL_CTX_DATA";
        return rc;
    }
    return CURLE_OK;
}

void gf_tls_free(struct gf_tls *t)
{
    if (t->extra)
        sk_X509_pop_free((STACK_OF(X509) *)t->extra, X509_free);
    t->extra = NULL;
}
