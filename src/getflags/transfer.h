/* The transfer layer's run-wide TLS setup and connection counters:
 * private to getflags's libcurl code (fetch.c, run.c).
 *
 * libcurl caches the system CA store once per multi handle when the
 * store comes from a CA file alone; CURLOPT_CAPATH (set by default on
 * Debian) turns that cache off. So the store is the system bundle, with
 * no CA path, and the certificates of --cacert are parsed once here and
 * added to each connection's store from CURLOPT_SSL_CTX_FUNCTION. The same
 * callback counts TLS handshakes and resumed sessions. */
#ifndef GF_TRANSFER_H
#define GF_TRANSFER_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "gf/report.h"

struct gf_tls {
    void *extra; /* STACK_OF(X509) from --cacert, or NULL */
    struct gf_conn_stats *stats;
};

/* Reads the certificates of cacert (NULL: none). Returns 0, or -1 with a
 * "getflags: ..." line naming the file and the cause in msg. */
int gf_tls_init(struct gf_tls *t, const char *cacert, struct gf_conn_stats *stats, char *msg,
                size_t msgsz);

/* Sets the CA and TLS options of one easy handle; the CURLOPT_* name of a
 * failing option in *what. */
CURLcode gf_tls_setup_easy(struct gf_tls *t, CURL *e, const char **what);

void gf_tls_free(struct gf_tls *t);

#endif
