/* The transfer layer: everything that drives libcurl easy handles, private
 * to getflags's libcurl code (fetch.c, run.c).
 *
 * The per-code state machine (fetch.c) asks for one GET at a time through
 * struct gf_transfer_ops and gets back a plain struct gf_response: status,
 * reason, body, validators, Retry-After, Content-Length facts, phase
 * timings, and for a failure its kind and a message a user can act on.
 * The state machine sees no CURL handle and no CURLcode, so a unit test
 * can put a fake transfer layer in place of this one.
 *
 * The libcurl implementation (gf_curl_transfer_ops) keeps a pool of easy
 * handles, sets their options, runs the header and body callbacks, reads
 * the answer's headers through libcurl and words its errors.
 *
 * TLS: the system's CAs are looked up in libcurl's CA directory when it
 * has one in OpenSSL's hashed form (Debian's /etc/ssl/certs): OpenSSL then
 * reads only the certificate a chain needs, when it needs it. Parsing the
 * whole bundle instead costs about 25 ms of CPU, more than all the
 * requests of -a over one HTTP/2 connection; the bundle (which libcurl
 * caches once per run when no CA directory is set) is the fallback where
 * there is no such directory. The certificates of --cacert are parsed once here and
 * added to each connection's store from CURLOPT_SSL_CTX_FUNCTION. The same
 * callback counts TLS handshakes and resumed sessions. */
#ifndef GF_TRANSFER_H
#define GF_TRANSFER_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "gf/body.h"
#include "gf/cli.h"
#include "gf/report.h"

struct gf_engine;

/* ---- the interface the state machine uses ---------------------------- */

/* How a transfer ended. */
enum gf_xfer_kind {
    GF_XFER_ANSWERED,   /* status holds the final answer */
    GF_XFER_UNANSWERED, /* the connection failed before the server answered
                         * anything (a GOAWAY, a reset stream, a reused
                         * keep-alive connection closed under it): safe to
                         * ask again on a new connection; retryable */
    GF_XFER_TIMEOUT,    /* no answer within --timeout: retryable, and a sign
                         * of an overloaded server */
    GF_XFER_TRANSIENT,  /* another failure that a retry may mend */
    GF_XFER_FAILED,     /* a failure that a retry will not mend */
};

/* What one request got. The transfer layer owns it; it is valid during
 * the response callback only, except body, which the callee may take. */
struct gf_response {
    enum gf_xfer_kind kind;
    char error[512]; /* what went wrong, unless ANSWERED */
    long status;     /* of the final answer, 0 when none */
    char reason[96]; /* its reason phrase as sent, "" when none (HTTP/2) */
    /* A 200's body, not yet finished (gf_body_finish): in memory, or past
     * its spill_at in a temporary file. The callee may take it by struct
     * copy, leaving it zeroed; else it is dropped after the callback. */
    struct gf_body_sink body;
    size_t len;     /* body bytes of the final answer, kept or not */
    uint64_t bytes; /* body bytes received, decoded, of any status */
    /* Content-Length of the final answer (-1 when absent), whether one
     * was unusable, and whether a Content-Encoding makes the body's size
     * differ from it. */
    long long content_length;
    int bad_length, encoded;
    /* A 400 whose page says the port speaks TLS (http:// for https://). */
    int port_wants_tls;
    char etag[256]; /* validators of the final answer, "" when none */
    char last_modified[64];
    long retry_after_s;      /* -1 when the answer gave none */
    struct gf_phases phases; /* all but sem_wait */
    unsigned requests;       /* sent for it: redirect hops and re-sends count */
    char http_version[4];    /* "1.0", "1.1", "2", "3"; "" when unknown */
};

typedef void (*gf_response_cb)(void *arg, struct gf_response *r);

struct gf_request {
    const char *url;
    /* Where a 200's body goes: see gf_body_init(). */
    size_t limit, spill_at;
    int dirfd, is_gif;
    /* Validators to send (If-None-Match, If-Modified-Since), or NULL. */
    const char *etag, *last_modified;
    /* 0 on the first attempt of a request: a host known unresolvable
     * then fails it at once. */
    unsigned attempt;
    gf_response_cb cb;
    void *arg;
};

struct gf_transfer;

struct gf_transfer_ops {
    /* Starts req. Returns 0 and *out; cb runs once, later, on the loop
     * thread, unless cancel() comes first. Or -1 with the cause in err
     * (a line for the report, e.g. "cannot start the request: setting
     * CURLOPT_URL failed: ..."), and cb never runs. */
    int (*start)(void *ctx, const struct gf_request *req, struct gf_transfer **out, char *err,
                 size_t errsz);
    /* Stops a transfer whose cb has not run; it never will. phases gets
     * its times so far, as for a request that ended there (the time
     * since the last step reached goes to the step under way). Returns
     * the requests that went out for it, as gf_response's requests. */
    unsigned (*cancel)(void *ctx, struct gf_transfer *x, struct gf_phases *phases);
};

/* ---- the libcurl implementation ---------------------------------------- */

struct gf_tls {
    void *extra;        /* STACK_OF(X509) from --cacert, or NULL */
    const char *capath; /* the system's hashed CA directory, or NULL */
    const char *cainfo; /* else the system's CA bundle, or NULL */
    struct gf_conn_stats *stats;
};

/* What one run's transfers share. */
struct gf_curl_config {
    struct gf_engine *engine;
    CURLSH *share;
    const char *base_url;
    uint64_t timeout_ms;
    enum gf_http_version http_version; /* --http1.1 / --http2 */
    struct gf_tls *tls;                /* CA store and TLS counters, or NULL */
    size_t pool_cap;                   /* easy handles kept for reuse */
};

struct gf_curl;

extern const struct gf_transfer_ops gf_curl_transfer_ops;

/* Returns the context for gf_curl_transfer_ops (cfg is copied), or NULL
 * when out of memory. */
struct gf_curl *gf_curl_new(const struct gf_curl_config *cfg);

/* For the engine's done callback: ends the transfer whose easy handle
 * this is, calling its request's cb. */
void gf_curl_done(CURL *easy, CURLcode result, unsigned requests);

/* The run has n codes not yet done, so it can use at most n easy handles
 * at once: idle ones beyond that are freed, now and as transfers end.
 * c may be NULL. */
void gf_curl_codes_left(struct gf_curl *c, size_t n);

/* How many idle easy handles c keeps. */
size_t gf_curl_pooled(const struct gf_curl *c);

/* Frees c and the easy handles of its pool; no transfer may be running.
 * c may be NULL. */
void gf_curl_free(struct gf_curl *c);

/* Reads the certificates of cacert (NULL: none). Returns 0, or -1 with a
 * "getflags: ..." line naming the file and the cause in msg. */
int gf_tls_init(struct gf_tls *t, const char *cacert, struct gf_conn_stats *stats, char *msg,
                size_t msgsz);

/* Sets the CA and TLS options of one easy handle; the CURLOPT_* name of a
 * failing option in *what. */
CURLcode gf_tls_setup_easy(struct gf_tls *t, CURL *e, const char **what);

void gf_tls_free(struct gf_tls *t);

#endif
